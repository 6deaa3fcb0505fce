"""Dynamic Confidence: per-sample early exit over time steps for spiking networks.

Li, Jones & Furber, "Unleashing the Potential of Spiking Neural Networks by Dynamic
Confidence" (ICCV 2023; reference code chenlicodebank/Dynamic-Confidence-in-Spiking-Neural-
Networks). An SNN's output is accumulated over time; after every step the accumulated logits,
scaled by a smoothing factor (the reference divides by 30), go through a softmax, and a sample
stops as soon as its largest probability exceeds a confidence threshold (0.6 in the
reference):

    ``z_t = scale * sum_{s <= t} out_s``,  ``p_t = softmax(z_t)``,
    ``exit = min {t : max_k p_t[k] > threshold}`` (``T`` if never), prediction ``argmax z_exit``.

Latency is the number of steps run (1-based). Sweeping the threshold traces the accuracy /
latency trade-off (:func:`confidence_sweep`, :func:`pareto_front`); :func:`calibrate_threshold`
picks the fastest threshold that keeps a validation accuracy within a tolerance of the full-T
accuracy. :func:`oracle_exit` is the paper's "potential" of an SNN: each sample stops at the
earliest step whose accumulated prediction is correct, a bound no causal exit rule can beat.

Everything works on recorded per-step outputs ``[T, B, classes]`` (so any model fits);
:func:`run_dynamic_confidence` runs a model step by step and stops computing the samples that
have exited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from neuronkit.common import check_choice, check_finite, check_floating, check_number, check_type

__all__ = [
    "ConfidenceSweep",
    "ExitResult",
    "OracleResult",
    "RunResult",
    "accumulated_confidence",
    "calibrate_threshold",
    "confidence_sweep",
    "dynamic_confidence",
    "oracle_exit",
    "pareto_front",
    "run_dynamic_confidence",
    "stepwise_accuracy",
]

REF_SCALE = 1.0 / 30.0
REF_THRESHOLD = 0.6


class ExitResult(NamedTuple):
    """Per-sample early-exit outcome (all ``[B]``).

    ``prediction``: int64 class at exit; ``exit_step``: int64 steps run, in ``1..T``;
    ``confidence``: max softmax probability at exit; ``exited``: bool, the threshold was
    crossed (False: ran to the last step).
    """

    prediction: Tensor
    exit_step: Tensor
    confidence: Tensor
    exited: Tensor

    def accuracy(self, targets: Tensor) -> float:
        """Fraction of ``targets [B]`` predicted correctly (an exact count over ``B``, as in
        :func:`stepwise_accuracy`, so a tie with the full-T accuracy compares equal)."""
        _check_targets(targets, self.prediction.shape[0], None)
        return int((self.prediction == targets).sum()) / targets.shape[0]

    def mean_latency(self) -> float:
        """Mean number of steps run per sample."""
        return int(self.exit_step.sum()) / self.exit_step.shape[0]


class ConfidenceSweep(NamedTuple):
    """A threshold sweep: ``thresholds``, ``accuracy`` and ``mean_latency`` (all ``[n]``,
    float64) plus the full-T reference ``full_accuracy`` and ``T``."""

    thresholds: Tensor
    accuracy: Tensor
    mean_latency: Tensor
    full_accuracy: float
    T: int


class OracleResult(NamedTuple):
    """The earliest-correct-step bound: ``exit_step [B]`` (1-based), ``correct [B]`` (bool,
    correct at some step), ``accuracy`` and ``mean_latency``."""

    exit_step: Tensor
    correct: Tensor
    accuracy: float
    mean_latency: float


# ---- validation --------------------------------------------------------------------------------


def _check_outputs(outputs: Any) -> None:
    check_type("outputs", outputs, Tensor)
    check_floating("outputs", outputs)
    if outputs.ndim != 3 or min(outputs.shape[:2]) < 1 or outputs.shape[2] < 2:
        raise ValueError(
            f"outputs must have shape [T >= 1, B >= 1, classes >= 2] (per-step outputs, "
            "time-major), "
            f"got {tuple(outputs.shape)}"
        )
    check_finite("outputs", outputs)


def _check_targets(targets: Any, B: int, n_classes: int | None) -> None:
    check_type("targets", targets, Tensor)
    if targets.dtype != torch.long or targets.shape != (B,):
        raise ValueError(
            f"targets must be an int64 tensor of shape [{B}], got dtype {targets.dtype} and "
            f"shape {tuple(targets.shape)}"
        )
    if n_classes is None or targets.numel() == 0:
        return
    if targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(
            f"targets must hold class indices in [0, {n_classes - 1}], got values in "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )


def _check_rule(threshold: Any, scale: Any, min_steps: Any) -> None:
    check_number("threshold", threshold, ge=0, le=1)
    check_number("scale", scale, gt=0)
    check_number("min_steps", min_steps, ge=1, integer=True)


# ---- recorded outputs --------------------------------------------------------------------------


def accumulated_confidence(outputs: Tensor, *, scale: float = REF_SCALE) -> Tensor:
    """Softmax of the scaled running sum: ``outputs [T, B, K]`` -> probabilities ``[T, B, K]``
    in float64 (the running sums of a long run are accumulated in double precision)."""
    _check_outputs(outputs)
    check_number("scale", scale, gt=0)
    return torch.softmax(scale * outputs.detach().double().cumsum(0), dim=-1)


def stepwise_accuracy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Accuracy of the accumulated prediction after each step: ``[T]`` float64."""
    _check_outputs(outputs)
    _check_targets(targets, outputs.shape[1], outputs.shape[2])
    pred = outputs.detach().double().cumsum(0).argmax(-1)
    return (pred == targets).double().mean(1)


def dynamic_confidence(
    outputs: Tensor,
    *,
    threshold: float = REF_THRESHOLD,
    scale: float = REF_SCALE,
    min_steps: int = 1,
) -> ExitResult:
    """Early exit on recorded per-step outputs ``[T, B, K]`` (module docstring).

    Args:
        outputs: per-step output logits (e.g. the last layer's membrane input), time-major.
        threshold: exit when the max probability is strictly greater (0.6 in the reference).
        scale: smoothing factor applied to the accumulated logits (1/30 in the reference).
        min_steps: never exit before this many steps (1: the reference).
    """
    _check_outputs(outputs)
    _check_rule(threshold, scale, min_steps)
    conf, pred = accumulated_confidence(outputs, scale=scale).max(-1)  # [T, B]
    return _exits(conf, pred, threshold, min_steps, outputs.dtype)


def _exits(
    conf: Tensor, pred: Tensor, threshold: float, min_steps: int, dtype: torch.dtype
) -> ExitResult:
    """Exit rule on per-step max probabilities ``conf`` and predictions ``pred`` ``[T, B]``."""
    T = conf.shape[0]
    steps = torch.arange(1, T + 1, device=conf.device).unsqueeze(1)
    hit = (conf > threshold) & (steps >= min_steps)
    exited = hit.any(0)
    first = torch.where(exited, hit.to(torch.int8).argmax(0), torch.full_like(pred[0], T - 1))
    idx = first.unsqueeze(0)
    return ExitResult(
        prediction=pred.gather(0, idx)[0],
        exit_step=first + 1,
        confidence=conf.gather(0, idx)[0].to(dtype),
        exited=exited,
    )


def oracle_exit(outputs: Tensor, targets: Tensor, *, never_correct: str = "first") -> OracleResult:
    """The potential of an SNN: every sample stops at its earliest correct step.

    A step counts as correct when the target is the unique largest accumulated output (a tie,
    e.g. all-zero outputs before the first output spike, is no decision). Samples never
    correct stop at step 1 (``never_correct="first"``: nothing is gained by running them) or
    at ``T`` (``"last"``). The result is independent of the softmax scale.
    """
    _check_outputs(outputs)
    _check_targets(targets, outputs.shape[1], outputs.shape[2])
    check_choice("never_correct", never_correct, ("first", "last"))
    T = outputs.shape[0]
    z = outputs.detach().double().cumsum(0)  # [T, B, K]
    top2 = z.topk(2, dim=-1).values
    unique = top2[..., 0] > top2[..., 1]
    ok = (z.argmax(-1) == targets) & unique  # [T, B]
    correct = ok.any(0)
    fallback = 0 if never_correct == "first" else T - 1
    first = torch.where(correct, ok.to(torch.int8).argmax(0), torch.full_like(targets, fallback))
    steps = first + 1
    return OracleResult(
        exit_step=steps,
        correct=correct,
        accuracy=float(correct.double().mean()),
        mean_latency=float(steps.double().mean()),
    )


def confidence_sweep(
    outputs: Tensor,
    targets: Tensor,
    thresholds: Sequence[float] | Tensor | None = None,
    *,
    scale: float = REF_SCALE,
    min_steps: int = 1,
) -> ConfidenceSweep:
    """Accuracy and mean latency of :func:`dynamic_confidence` for each threshold.

    ``thresholds`` defaults to 0 (every sample exits at step 1), a fine grid in (0.1, 1) dense
    near 1, and 1 (never exit: full T).
    """
    _check_outputs(outputs)
    _check_targets(targets, outputs.shape[1], outputs.shape[2])
    if thresholds is None:
        grid = 1.0 - torch.logspace(-6, 0, 61, dtype=torch.float64)
        th = torch.cat([grid, torch.linspace(0.1, 0.99, 90, dtype=torch.float64)])
        th = torch.unique(torch.cat([th, torch.tensor([0.0, 1.0], dtype=torch.float64)]))
    else:
        if isinstance(thresholds, np.ndarray) and not thresholds.flags.writeable:
            thresholds = thresholds.copy()  # torch warns on sharing a read-only array's memory
        try:
            th = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError) as err:  # a string, None entries, ...
            raise TypeError(
                f"thresholds must be None or a list or tensor of numbers in [0, 1], got "
                f"{type(thresholds).__name__} ({err})"
            ) from None
        if th.numel() == 0 or not bool(((th >= 0) & (th <= 1)).all()):
            raise ValueError(
                f"thresholds must be a non-empty list of values in [0, 1], got {th!r:.80}"
            )
    _check_rule(0.5, scale, min_steps)
    conf, pred = accumulated_confidence(outputs, scale=scale).max(-1)
    accs, lats = [], []
    for t in th.tolist():
        res = _exits(conf, pred, t, min_steps, outputs.dtype)
        accs.append(res.accuracy(targets))
        lats.append(res.mean_latency())
    full = float(stepwise_accuracy(outputs, targets)[-1])
    return ConfidenceSweep(
        th,
        torch.tensor(accs, dtype=torch.float64),
        torch.tensor(lats, dtype=torch.float64),
        full,
        outputs.shape[0],
    )


def pareto_front(accuracy: Tensor, latency: Tensor) -> Tensor:
    """Indices of the points no other point beats (higher-or-equal accuracy at lower-or-equal
    latency, one of them strictly), sorted by latency; of identical points only the first is
    kept. ``accuracy, latency: [n]``; the indices are on their device."""
    check_type("accuracy", accuracy, Tensor)
    check_type("latency", latency, Tensor)
    if accuracy.ndim != 1 or accuracy.shape != latency.shape:
        raise ValueError(
            f"accuracy and latency must be 1-D of the same length, got {tuple(accuracy.shape)} "
            f"and {tuple(latency.shape)}"
        )
    check_finite("accuracy", accuracy)
    check_finite("latency", latency)
    a, lat = accuracy.double(), latency.double()
    keep = []
    for i in range(a.numel()):
        better = (a >= a[i]) & (lat <= lat[i]) & ((a > a[i]) | (lat < lat[i]))
        same = (a[:i] == a[i]) & (lat[:i] == lat[i])  # keep one of identical points
        if not bool(better.any()) and not bool(same.any()):
            keep.append(i)
    idx = torch.tensor(keep, dtype=torch.long, device=accuracy.device)
    if idx.numel() == 0:
        return idx
    return idx[torch.argsort(lat[idx], stable=True)]


def calibrate_threshold(
    outputs: Tensor,
    targets: Tensor,
    *,
    max_drop: float = 0.0,
    thresholds: Sequence[float] | Tensor | None = None,
    scale: float = REF_SCALE,
    min_steps: int = 1,
) -> float:
    """The threshold of lowest mean latency whose accuracy is ``>= full-T accuracy - max_drop``.

    Run it on held-out (validation) outputs, then apply the threshold to test data. Ties in
    latency go to the higher threshold (the safer one).
    """
    check_number("max_drop", max_drop, ge=0, le=1)
    sweep = confidence_sweep(outputs, targets, thresholds, scale=scale, min_steps=min_steps)
    ok = sweep.accuracy >= sweep.full_accuracy - max_drop - 1e-12
    if not bool(ok.any()):  # only possible with explicit thresholds that all lose accuracy
        return float(sweep.thresholds.max())
    lat = torch.where(ok, sweep.mean_latency, torch.full_like(sweep.mean_latency, float("inf")))
    best = lat.min()
    cand = torch.nonzero(ok & (lat == best)).flatten()
    return float(sweep.thresholds[cand].max())


# ---- running a model ---------------------------------------------------------------------------


def _select(state: Any, idx: Tensor) -> Any:
    """Rows ``idx`` of every tensor in a state tree (None, tensors, tuples, lists, dicts)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state[idx]
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(_select(s, idx) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_select(s, idx) for s in state)
    if isinstance(state, dict):
        return {k: _select(v, idx) for k, v in state.items()}
    raise TypeError(
        f"state must be None, a tensor, or a tuple/list/dict of them (batch first), got "
        f"{type(state).__name__}"
    )


class RunResult(NamedTuple):
    """:func:`run_dynamic_confidence`'s outcome: the :class:`ExitResult` fields plus
    ``sample_steps`` (sample-steps actually computed, ``= exit_step.sum()``)."""

    prediction: Tensor
    exit_step: Tensor
    confidence: Tensor
    exited: Tensor
    sample_steps: int

    def accuracy(self, targets: Tensor) -> float:
        """Fraction of ``targets [B]`` predicted correctly (an exact count over ``B``, as in
        :func:`stepwise_accuracy`, so a tie with the full-T accuracy compares equal)."""
        _check_targets(targets, self.prediction.shape[0], None)
        return int((self.prediction == targets).sum()) / targets.shape[0]

    def mean_latency(self) -> float:
        """Mean number of steps run per sample."""
        return int(self.exit_step.sum()) / self.exit_step.shape[0]


@torch.no_grad()
def run_dynamic_confidence(
    step: Callable[[Tensor, Any], tuple[Tensor, Any]],
    x: Tensor,
    state: Any = None,
    *,
    threshold: float = REF_THRESHOLD,
    scale: float = REF_SCALE,
    min_steps: int = 1,
) -> RunResult:
    """Run a model step by step with Dynamic Confidence, computing only the active samples.

    Args:
        step: ``step(x_t [b, ...], state) -> (out_t [b, K], state)``, the model's one-step
            update on the ``b`` still-active samples (``state`` is None at the start, then
            whatever ``step`` returned: tensors, or tuples/lists/dicts of tensors, batch first).
        x: inputs ``[T, B, ...]`` (e.g. a direct or Poisson encoding).
        state: initial state for the full batch (None: the model's rest state).
        threshold, scale, min_steps: as :func:`dynamic_confidence`.

    Gives the same exits and predictions as :func:`dynamic_confidence` on the recorded outputs
    of the full run (for a model whose samples do not interact, e.g. BatchNorm in eval mode).
    """
    if not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    check_type("x", x, Tensor)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape [T >= 1, B, ...] (time-major), got {tuple(x.shape)}")
    _check_rule(threshold, scale, min_steps)
    T, B = x.shape[:2]
    active = torch.arange(B, device=x.device)
    acc: Tensor | None = None
    pred = torch.zeros(B, dtype=torch.long, device=x.device)
    exit_step = torch.full((B,), T, dtype=torch.long, device=x.device)
    conf_out = torch.zeros(B, dtype=torch.float64, device=x.device)
    exited = torch.zeros(B, dtype=torch.bool, device=x.device)
    sample_steps = 0
    for t in range(T):
        out, state = step(x[t, active], state)
        if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != active.numel():
            raise ValueError(
                f"step must return outputs of shape [{active.numel()}, classes], got "
                f"{getattr(out, 'shape', type(out).__name__)}"
            )
        check_finite("step output", out)
        sample_steps += active.numel()
        out_dtype = out.dtype  # the confidence is returned in the outputs' dtype
        acc = out.double() if acc is None else acc + out.double()
        conf, p = torch.softmax(scale * acc, dim=-1).max(-1)
        crossed = (conf > threshold) & (t + 1 >= min_steps)
        stop = torch.ones_like(crossed) if t == T - 1 else crossed
        if bool(stop.any()):
            done = active[stop]
            pred[done] = p[stop]
            exit_step[done] = t + 1
            conf_out[done] = conf[stop]
            exited[done] = crossed[stop]
            keep = ~stop
            active, acc = active[keep], acc[keep]
            if active.numel() == 0:
                break
            state = _select(state, torch.nonzero(keep).flatten())
    return RunResult(pred, exit_step, conf_out.to(out_dtype), exited, sample_steps)
