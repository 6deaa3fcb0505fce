"""Iterative initialization and retraining (IIR) of spiking networks down to one time step.

Chowdhury, Rathi & Roy, "One Timestep is All You Need: Training Spiking Neural Networks with
Ultra Low Latency" (IIR-SNN). A network is trained at T = 5, then retrained at successively
lower latencies (5 -> 3 -> 2 -> 1), each stage starting from the previous stage's weights,
leaks and thresholds; jumping straight to T = 1 loses the spikes in the deeper layers, while
small latency steps let the thresholds and weights adapt gradually.

The neuron is DIET-SNN's (Rathi & Roy), which the paper builds on: per layer, a trainable leak
``lam`` and threshold ``theta``,

    ``u_t = lam * u_{t-1} + x_t - theta * s_{t-1}``,   ``s_t = H(u_t / theta - 1)``,

i.e. soft reset (subtract ``theta`` after a spike), with the linear surrogate ``dH(z)/dz ~=
gamma * max(0, 1 - |z|)``, ``gamma = 0.3`` (:class:`ScaledTriangle`). Inputs are direct
encoded (the analog image at every step into the first conv) and the last layer is a
non-spiking accumulator: ``logits = sum_t W s_t + b``, the accumulated membrane as in the
reference code (``average=True``, the default of :class:`AccumulatedReadout` and
:func:`ann_to_snn`, divides it by T).

Building blocks: :class:`IIRLIF` (the neuron over ``[T, B, ...]``), :class:`AccumulatedReadout`,
:func:`iir_cnn` (a small conv net for 8x8 images), :func:`train_at_latency` (BPTT at one T),
:func:`iir_retrain` (the schedule, with per-stage accuracy, latency and spike counts),
:func:`spike_counts`, and the optional ANN -> SNN start: :func:`fold_batchnorm`,
:func:`ann_to_snn` (BN folded, leak 1, thresholds set layer by layer at the 90th percentile of
the spike-driven input current, as the reference's ``find_threshold`` does).
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_class_labels,
    check_finite,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    eval_mode,
    forked_manual_seed,
    grad_enabled,
    progress,
    torch_generator,
    under_torch_func,
)

from .._core import autocast_half, begin, check_finite_input, fire
from ..encoding import direct_encode
from ..layers import SeqAvgPool2d, SeqConv2d, SeqDropout, SeqFlatten, SeqLinear, TimeDistributed
from ..neurons import ALIF, IF, LIF, CuBaLIF
from ..surrogate import Surrogate, get_surrogate
from .bptt import _check_batch, minibatches

__all__ = [
    "IIRLIF",
    "AccumulatedReadout",
    "IIRResult",
    "IIRStage",
    "ScaledTriangle",
    "ann_to_snn",
    "cnn_ann",
    "evaluate_latency",
    "fold_batchnorm",
    "iir_cnn",
    "iir_retrain",
    "spike_counts",
    "train_ann",
    "train_at_latency",
]


@dataclass(frozen=True)
class ScaledTriangle(Surrogate):
    """DIET-SNN's linear surrogate: ``g'(z) = alpha * max(0, 1 - |z|)`` (``alpha`` = gamma =
    0.3), applied to ``z = u / theta - 1``. Unlike :class:`~neuronkit.snn.Triangle` its width
    is fixed at 1 and ``alpha`` only scales it (it integrates to ``alpha``)."""

    alpha: float = 0.3
    name: ClassVar[str] = "scaled_triangle"

    def derivative(self, x: Tensor) -> Tensor:
        # alpha - alpha |x|, clamped at 0: one new tensor, and relu_ last keeps it
        # differentiable (double backward reads relu's output)
        return x.abs().mul_(-self.alpha).add_(self.alpha).relu_()


class IIRLIF(nn.Module):
    """Leaky integrate-and-fire layer with a trainable leak and threshold (one each per layer).

    ``forward(x: [T, B, ...]) -> spikes [T, B, ...]`` from rest, with ``u_t = lam * u_{t-1} +
    x_t - theta * s_{t-1}`` and ``s_t = H(u_t / theta - 1)`` (fires at ``u >= theta``). The
    leak's value is clamped to [0, 1] in the forward pass (1 is an IF neuron) with the gradient
    passed straight through, so a leak starting at 1 trains; the threshold must stay positive
    (it is clamped at ``min_threshold``). ``x`` must be finite, as for the other neurons.
    The sequence runs in preallocated buffers with a hand-written backward through time (the
    spikes of the step-by-step autograd loop, bit for bit; its gradients up to rounding); a
    potential-dependent surrogate (PDSG), ``torch.func``, tracing and compilation run that
    plain loop instead.

    Args:
        leak: initial leak ``lam`` in [0, 1] (DIET-SNN starts converted networks at 1).
        threshold: initial threshold ``theta`` (> 0).
        surrogate: surrogate of ``H`` over ``u / theta - 1`` (:class:`ScaledTriangle` default).
        learn_leak / learn_threshold: make them ``nn.Parameter``s (else buffers).
        min_threshold: lower clamp of the threshold (> 0).
    """

    # elementwise over time (one leak and one threshold per layer): tools that map channels by
    # module (neuronkit-pruning) pass channels through it; it takes whole sequences [T, B, ...]
    channel_local: ClassVar[bool] = True

    def __init__(
        self,
        leak: float = 1.0,
        threshold: float = 1.0,
        *,
        surrogate: Surrogate | str | None = None,
        learn_leak: bool = True,
        learn_threshold: bool = True,
        min_threshold: float = 1e-3,
    ) -> None:
        super().__init__()
        check_number("leak", leak, ge=0, le=1)
        check_number("threshold", threshold, gt=0)
        check_type("learn_leak", learn_leak, bool)
        check_type("learn_threshold", learn_threshold, bool)
        check_number("min_threshold", min_threshold, gt=0)
        self.surrogate = ScaledTriangle() if surrogate is None else get_surrogate(surrogate)
        self.min_threshold = float(min_threshold)
        leak_t = torch.tensor(float(leak))
        thr_t = torch.tensor(float(threshold))
        if learn_leak:
            self.leak = nn.Parameter(leak_t)
        else:
            self.register_buffer("leak", leak_t)
        if learn_threshold:
            self.threshold = nn.Parameter(thr_t)
        else:
            self.register_buffer("threshold", thr_t)

    def forward(self, x: Tensor) -> Tensor:
        check_type("x", x, Tensor)
        if not x.is_floating_point() or x.ndim < 3:
            raise ValueError(
                f"x must be a floating tensor [T, B, ...] (>= 3 dims), got dtype {x.dtype} and "
                f"shape {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"x must have T >= 1 time steps, got shape {tuple(x.shape)}")
        half = autocast_half(x)  # under autocast: integrated in float32, spikes in x's dtype
        if half is not None:
            x = x.float()
        # clamped value, identity gradient (straight through): the plain clamp's gradient is 0
        # at the bound, and converted networks start at leak 1, so the leak would never train
        lam = (self.leak + (self.leak.clamp(0.0, 1.0) - self.leak).detach()).to(x.dtype)
        theta = self.threshold.clamp(min=self.min_threshold).to(x.dtype)
        begin(self.surrogate)  # a new sequence: a stateful surrogate (PDSG) restarts
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, lam, theta))
        if not _fusable(x) or (needs_grad and self.surrogate.needs_potential):
            spikes, u_last = _plain_iirlif(x, lam, theta, self.surrogate)
        elif needs_grad:
            spikes, u_seq = _IIRLIFSequence.apply(x, lam, theta, self.surrogate)
            u_last = u_seq[-1]
        else:
            spikes, u_seq = _iirlif_loop(x, lam, theta)
            u_last = u_seq[-1]
        check_finite_input(x, u_last)  # a NaN or infinity in x stays in u: one [B, ...] sum
        return spikes if half is None else spikes.to(half)

    def extra_repr(self) -> str:
        return (
            f"leak={float(self.leak.detach()):.4g}, threshold={float(self.threshold.detach()):.4g}"
            f", surrogate={self.surrogate!r}"
        )


def _fusable(x: Tensor) -> bool:
    """Whether :func:`_iirlif_loop` (``out=`` buffers) and :class:`_IIRLIFSequence` may run: a
    plain tensor in eager mode, outside ``torch.func`` transforms, tracing and compilation."""
    return (
        type(x) is Tensor
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not under_torch_func()
    )


def _plain_iirlif(
    x: Tensor, lam: Tensor, theta: Tensor, surrogate: Surrogate
) -> tuple[Tensor, Tensor]:
    """IIRLIF over ``x [T, B, ...]`` step by step under autograd: ``(spikes [T, B, ...], the
    last membrane [B, ...])``. Honours a potential-dependent surrogate and ``torch.func``."""
    u = x.new_zeros(())  # at rest: scalar zeros, broadcast at the first step
    s = x.new_zeros(())
    out = []
    for xt in x.unbind(0):  # one backward node for all steps (indexing x[t] makes T)
        u = lam * u + xt - theta * s
        s = fire(surrogate, u / theta, 1.0)  # spikes where u / theta - 1 >= 0
        out.append(s)
    return torch.stack(out), u


def _iirlif_loop(x: Tensor, lam: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """The forward recurrence in preallocated buffers: ``(spikes, membranes u)``, both ``[T,
    B, ...]``. The plain loop's arithmetic (``(lam * u + x_t) - theta * s``, then ``u / theta
    >= 1``, which is ``u / theta - 1 >= 0`` exactly), so the same bits, in five ops a step."""
    spikes = torch.empty_like(x, memory_format=torch.contiguous_format)
    u_seq = torch.empty_like(spikes)
    z = torch.empty_like(spikes[0])
    prev: tuple[Tensor, Tensor] | None = None
    for xt, u, s in zip(x.unbind(0), u_seq.unbind(0), spikes.unbind(0)):
        if prev is None:
            torch.add(xt, 0.0, out=u)  # lam * 0 + x_0 - theta * 0 (a -0 input becomes +0)
        else:
            torch.mul(prev[0], lam, out=u).add_(xt).addcmul_(prev[1], theta, value=-1.0)
        torch.ge(torch.div(u, theta, out=z), 1.0, out=s)
        prev = (u, s)
    return spikes, u_seq


class _IIRLIFSequence(torch.autograd.Function):
    """IIRLIF over a whole sequence with a hand-written backward through time.

    With ``z_t = u_t / theta``, ``g_t = surrogate'(z_t - 1)`` and ``U_t = dL/du_t``, the
    forward ``u_{t+1} = lam * u_t + x_{t+1} - theta * s_t`` gives the total ``dL/ds_t = G_t -
    theta * U_{t+1}`` (``G`` the incoming gradient) and ``U_t = dL/ds_t * g_t / theta + lam *
    U_{t+1}``; ``dL/dx_t = U_t``, ``dL/dlam = sum_t U_{t+1} . u_t`` and ``dL/dtheta = -sum_t
    (U_{t+1} . s_t + (dL/ds_t g_t) . z_t / theta)``. The backward runs step by step on ``[B,
    ...]`` rows in reused buffers (they stay in cache; whole ``[T, B, ...]`` passes are
    memory-bound on the CPU) and reduces with dot products. Asked for a graph of itself (double
    backward) it differentiates :func:`_plain_iirlif` instead.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, lam: Tensor, theta: Tensor, surrogate: Surrogate
    ) -> tuple[Tensor, Tensor]:
        spikes, u_seq = _iirlif_loop(x, lam, theta)
        ctx.save_for_backward(x, lam, theta, u_seq, spikes)
        ctx.surrogate = surrogate
        ctx.mark_non_differentiable(u_seq)
        ctx.set_materialize_grads(False)
        return spikes, u_seq

    @staticmethod
    def backward(ctx: Any, g_s: Tensor | None, _g_u: Tensor | None) -> tuple[Tensor | None, ...]:
        x, lam, theta, u_seq, spikes = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if g_s is None:
            return None, None, None, None
        if torch.is_grad_enabled():  # create_graph: a graph of the plain recurrence
            wanted = [t for t, n in zip((x, lam, theta), needs) if n]
            grads = iter(
                torch.autograd.grad(
                    _plain_iirlif(x, lam, theta, ctx.surrogate)[0], wanted, g_s,
                    create_graph=True, allow_unused=True, materialize_grads=True,
                )
            )  # fmt: skip
            return (*(next(grads) if n else None for n in needs), None)
        lam_f, theta_f = float(lam), float(theta)
        d_u = torch.empty_like(u_seq)
        z, ds_buf, q = (torch.empty_like(u_seq[0]) for _ in range(3))
        lam_dot = spike_dot = current_dot = lam.new_zeros(())
        later: Tensor | None = None  # U_{t+1}
        for t in range(u_seq.shape[0] - 1, -1, -1):
            torch.div(u_seq[t], theta, out=z)
            g = ctx.surrogate.derivative(torch.sub(z, 1.0, out=q))
            ds = g_s[t] if later is None else torch.add(g_s[t], later, alpha=-theta_f, out=ds_buf)
            torch.mul(ds, g, out=q)
            torch.div(q, theta, out=d_u[t])
            if later is not None:
                d_u[t].add_(later, alpha=lam_f)
                if needs[1]:
                    lam_dot = lam_dot + torch.dot(later.flatten(), u_seq[t].flatten())
                if needs[2]:
                    spike_dot = spike_dot + torch.dot(later.flatten(), spikes[t].flatten())
            if needs[2]:
                current_dot = current_dot + torch.dot(q.flatten(), z.flatten())
            later = d_u[t]
        grad_theta = -(spike_dot + current_dot / theta) if needs[2] else None
        return d_u if needs[0] else None, lam_dot if needs[1] else None, grad_theta, None


class AccumulatedReadout(nn.Module):
    """Non-spiking output layer: ``logits = (1/T) * sum_t layer(x_t)`` (or the plain sum).

    ``forward(x: [T, B, ...]) -> [B, ...]``: the membrane of non-firing, non-leaking output
    neurons accumulated over the T steps (``average=True`` divides by T).
    """

    def __init__(self, layer: nn.Module, *, average: bool = True) -> None:
        super().__init__()
        check_type("layer", layer, nn.Module)
        check_type("average", average, bool)
        self.layer = layer
        self.average = average

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, torch.fx.Proxy):  # traced symbolically by neuronkit-pruning
            check_type("x", x, Tensor)
        if x.ndim < 3:
            raise ValueError(f"x must be [T, B, ...] (>= 3 dims), got shape {tuple(x.shape)}")
        T, B = x.shape[:2]
        y = self.layer(x.flatten(0, 1)).unflatten(0, (T, B))
        return y.mean(0) if self.average else y.sum(0)


def iir_cnn(
    *,
    in_channels: int = 1,
    image_size: int = 8,
    channels: Sequence[int] = (16, 32, 32),
    hidden: int = 64,
    num_classes: int = 10,
    leak: float = 1.0,
    threshold: float = 1.0,
    seed: int | None = None,
) -> nn.Sequential:
    """A small IIR-SNN conv net: ``x [T, B, C, H, W] -> logits [B, num_classes]``.

    ``conv3x3(channels[0]) -> IIRLIF``, then for every further width ``conv3x3 -> IIRLIF ->
    avgpool2`` (the first pooling follows the second conv), ``flatten -> linear(hidden) ->
    IIRLIF -> AccumulatedReadout(linear(num_classes))``: ``len(channels) + 2`` weight layers
    (5 by default). Each pooling halves the image (``image_size`` must stay divisible).

    Args:
        seed: seed of the weight initialization (``None``: torch's global RNG).
    """
    pools = _check_cnn_args(in_channels, image_size, channels, hidden, num_classes)
    with forked_manual_seed(seed):
        layers: list[nn.Module] = []
        c_prev = in_channels
        for i, c in enumerate(channels):
            layers += [SeqConv2d(c_prev, c, 3, padding=1), IIRLIF(leak, threshold)]
            if i > 0:
                layers.append(SeqAvgPool2d(2))
            c_prev = c
        side = image_size // (2**pools)
        layers += [
            SeqFlatten(),
            SeqLinear(c_prev * side * side, hidden),
            IIRLIF(leak, threshold),
            AccumulatedReadout(nn.Linear(hidden, num_classes)),
        ]
        return nn.Sequential(*layers)


def _check_cnn_args(
    in_channels: Any, image_size: Any, channels: Any, hidden: Any, num_classes: Any
) -> int:
    """Validate the shared arguments of :func:`iir_cnn` / :func:`cnn_ann`; return the number of
    poolings."""
    for name, value in (("in_channels", in_channels), ("image_size", image_size)):
        check_number(name, value, ge=1, integer=True)
    check_number("hidden", hidden, ge=1, integer=True)
    check_number("num_classes", num_classes, ge=2, integer=True)
    check_type("channels", channels, (list, tuple))
    if not channels or not all(isinstance(c, int) and c >= 1 for c in channels):
        raise ValueError(
            f"channels must be a non-empty sequence of ints >= 1, got {channels!r:.80}"
        )
    pools = len(channels) - 1
    if image_size % (2**pools):
        raise ValueError(
            f"image_size must be divisible by 2**{pools} (one pooling per extra conv), got "
            f"{image_size}"
        )
    return pools


_NEURONS = (IIRLIF, LIF, IF, ALIF, CuBaLIF)


def _check_model(model: Any) -> None:
    check_type("model", model, nn.Module)


def _check_data(data: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if not isinstance(data, tuple) or len(data) != 4:
        raise TypeError(
            "data must be a 4-tuple (x_train, y_train, x_test, y_test), e.g. "
            f"neuronkit.snn.load_digits(), got {type(data).__name__}"
        )
    for name, t in zip(("x_train", "y_train", "x_test", "y_test"), data):
        check_type(f"data.{name}", t, Tensor)
    x_tr, y_tr, x_te, y_te = data
    for xs, ys, split in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if ys.ndim != 1 or xs.shape[0] != ys.shape[0] or ys.dtype != torch.long:
            raise ValueError(
                f"data's {split} split must be x [N, ...] and int64 y [N], got shapes "
                f"{tuple(xs.shape)} and {tuple(ys.shape)} ({ys.dtype})"
            )
    return x_tr, y_tr, x_te, y_te


@torch.no_grad()
def spike_counts(model: nn.Module, x: Tensor, T: int, *, batch_size: int = 512) -> dict[str, float]:
    """Mean spikes per sample of every neuron layer of ``model`` at latency ``T``.

    ``x: [N, ...]`` is direct encoded. Returns ``{layer name: spikes per sample}`` for every
    :class:`IIRLIF` (and :mod:`neuronkit.snn` neuron module) plus ``"total"``.
    """
    _check_model(model)
    check_type("x", x, Tensor)
    if x.ndim < 1:
        raise ValueError(f"x must be a batch [N, ...] of inputs, got shape {tuple(x.shape)}")
    check_number("T", T, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    counts: dict[str, float] = {}
    hooks = []

    def make_hook(name: str) -> Any:
        def hook(_m: nn.Module, _inp: Any, out: Tensor) -> None:
            # summed in float64: a half-precision sum of a batch's spikes is inexact past 256
            # (bfloat16) or infinite past 65504 (float16)
            counts[name] = counts.get(name, 0.0) + float(out.sum(dtype=torch.float64))

        return hook

    for name, module in model.named_modules():
        if isinstance(module, _NEURONS):
            counts[name] = 0.0
            hooks.append(module.register_forward_hook(make_hook(name)))
    try:
        with eval_mode(model):
            for i in range(0, x.shape[0], batch_size):
                model(direct_encode(x[i : i + batch_size], T))
    finally:
        for h in hooks:
            h.remove()
    n = max(int(x.shape[0]), 1)
    per = {k: v / n for k, v in counts.items()}
    per["total"] = sum(per.values())
    return per


def _latency_logits(model: nn.Module, x: Tensor, T: int) -> Tensor:
    """``model(direct_encode(x, T))`` checked to be logits ``[B, C]`` for ``x: [B, ...]``."""
    logits = model(direct_encode(x, T))
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"model must return logits [B, C] (B = {x.shape[0]}, the batch), got {got}; a "
            "time-major [T, B, C] output needs an AccumulatedReadout as its last layer"
        )
    return logits


@torch.no_grad()
def evaluate_latency(
    model: nn.Module, x: Tensor, y: Tensor, T: int, *, batch_size: int = 512
) -> float:
    """Accuracy of ``argmax(model(direct_encode(x, T)))`` over ``x: [N, ...]``, ``y: [N]``."""
    _check_model(model)
    _check_batch(x, y)
    check_number("T", T, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    correct = 0
    with eval_mode(model):
        for i in range(0, x.shape[0], batch_size):
            logits = _latency_logits(model, x[i : i + batch_size], T)
            if i == 0:
                check_class_labels("y", y, logits.shape[-1])
            correct += int(correct_predictions(logits, y[i : i + batch_size]).sum())
    return correct / max(int(x.shape[0]), 1)


def _adam(
    model: nn.Module, lr: float, weight_decay: float, name: str = "model"
) -> torch.optim.Adam:
    """Adam over ``model``'s parameters, with the multi-tensor update (CUDA's default): on the
    CPU the same arithmetic as the per-tensor loop, in fewer Python steps. A float16 parameter
    is refused (``TypeError`` naming the argument ``name``): Adam's eps is 0 there and the
    weights would turn NaN after a step."""
    check_adam_dtype(name, model.named_parameters())
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)


@grad_enabled("train_at_latency")
def train_at_latency(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    T: int,
    epochs: int,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train ``model`` in place with BPTT at latency ``T`` (direct-encoded ``x: [N, ...]``).

    Adam (a fresh optimizer, as every IIR stage starts one), cross-entropy on the model's
    logits ``[B, C]``, cosine learning-rate decay over the stage's epochs, shuffled
    mini-batches from ``seed``. Returns the mean training loss of every epoch.

    Args:
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    _check_model(model)
    _check_batch(x, y)
    check_number("T", T, ge=1, integer=True)
    check_number("epochs", epochs, ge=0, integer=True)
    check_number("lr", lr, gt=0)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("weight_decay", weight_decay, ge=0)
    check_seed(seed)
    if epochs == 0:
        return []
    opt = _adam(model, lr, weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch_generator(seed)
    y = y.long()  # any integer labels (cross-entropy takes int64)
    model.train()
    losses = []
    for epoch in progress(range(epochs), show_progress=show_progress, desc="train_at_latency"):
        total, seen = 0.0, 0
        for xb, yb in minibatches(x, y, batch_size, generator=gen):
            opt.zero_grad(set_to_none=True)
            logits = _latency_logits(model, xb, T)
            if epoch == 0 and seen == 0:
                check_class_labels("y", y, logits.shape[-1])
            loss = F.cross_entropy(logits, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at T={T}")
            loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            total += float(loss.detach()) * yb.shape[0]
            seen += yb.shape[0]
        sched.step()
        losses.append(total / max(seen, 1))
    return losses


@dataclass
class IIRStage:
    """One latency stage: ``T``, epochs trained, test accuracy, spikes per sample (``total``
    and per neuron layer), the per-layer leaks and thresholds after training, losses, time."""

    T: int
    epochs: int
    accuracy: float
    spikes: dict[str, float]
    leaks: list[float]
    thresholds: list[float]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class IIRResult:
    """The stages of :func:`iir_retrain`, in training order."""

    stages: list[IIRStage]

    @property
    def final(self) -> IIRStage:
        """The last (lowest-latency) stage."""
        return self.stages[-1]

    def rows(self) -> list[dict[str, Any]]:
        """One table row per stage: T (latency), epochs, accuracy, total spikes, seconds."""
        return [
            {
                "T": s.T,
                "epochs": s.epochs,
                "accuracy": round(s.accuracy, 4),
                "spikes_per_sample": round(s.spikes["total"], 1),
                "seconds": round(s.seconds, 2),
            }
            for s in self.stages
        ]


def _neuron_params(model: nn.Module) -> tuple[list[float], list[float]]:
    leaks, thrs = [], []
    for m in model.modules():
        if isinstance(m, IIRLIF):
            leaks.append(float(m.leak.detach().clamp(0, 1)))
            thrs.append(float(m.threshold.detach()))
    return leaks, thrs


@grad_enabled("iir_retrain")
def iir_retrain(
    model: nn.Module,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    *,
    timesteps: Sequence[int] = (5, 3, 2, 1),
    epochs_per_stage: int | Sequence[int] = 10,
    lr: float | Sequence[float] = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> IIRResult:
    """Iterative initialization and retraining: train at ``timesteps[0]``, then retrain at
    each next (lower) latency starting from the previous stage's network.

    ``model`` (``[T, B, ...] -> logits [B, C]``, e.g. :func:`iir_cnn` or :func:`ann_to_snn`)
    is trained **in place**; every stage uses a fresh Adam optimizer (:func:`train_at_latency`)
    and ends with its test accuracy and spike counts at its own latency. ``timesteps=(1,)``
    with the summed epochs is the train-from-scratch-at-T=1 baseline.

    Args:
        data: ``(x_train, y_train, x_test, y_test)`` with ``x: [N, ...]`` (direct encoded) and
            int64 ``y: [N]``, e.g. ``neuronkit.snn.load_digits()``.
        timesteps: strictly decreasing latencies (each >= 1).
        epochs_per_stage: one count for all stages or one per stage.
        lr: Adam learning rate, one for all stages or one per stage.
        seed: seed of each stage's batch order (stage ``i`` uses ``seed + i``).

    Returns:
        :class:`IIRResult` with one :class:`IIRStage` per latency.
    """
    _check_model(model)
    x_tr, y_tr, x_te, y_te = _check_data(data)
    check_type("timesteps", timesteps, (list, tuple))
    if not timesteps or not all(isinstance(t, int) and t >= 1 for t in timesteps):
        raise ValueError(
            f"timesteps must be a non-empty sequence of ints >= 1, got {timesteps!r:.80}"
        )
    if any(a <= b for a, b in itertools.pairwise(timesteps)):
        raise ValueError(f"timesteps must be strictly decreasing, got {list(timesteps)}")
    n = len(timesteps)
    epochs = _per_stage("epochs_per_stage", epochs_per_stage, n, int)
    lrs = _per_stage("lr", lr, n, float)
    check_seed(seed)
    stages = []
    for i, (T, ep, rate) in enumerate(zip(timesteps, epochs, lrs)):
        start = time.perf_counter()
        losses = train_at_latency(
            model, x_tr, y_tr, T, ep, lr=rate, batch_size=batch_size,
            weight_decay=weight_decay, seed=seed + i,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        acc = evaluate_latency(model, x_te, y_te, T)
        spikes = spike_counts(model, x_te, T)
        leaks, thrs = _neuron_params(model)
        stages.append(IIRStage(T, ep, acc, spikes, leaks, thrs, losses, seconds))
    return IIRResult(stages)


def _per_stage(name: str, value: Any, n: int, kind: type) -> list[Any]:
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name} must have one entry per stage ({n}), got {len(value)}")
        values = list(value)
    else:
        values = [value] * n
    for v in values:
        if kind is int:
            check_number(name, v, ge=0, integer=True)
        else:
            check_number(name, v, gt=0)
    return values


# ---- ANN -> SNN start -----------------------------------------------------------------------


def fold_batchnorm(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of ``layer`` (``nn.Conv2d``/``nn.Conv1d``/``nn.Linear``) with the eval-mode
    ``bn`` (``nn.BatchNorm2d``/``1d``, running statistics) folded into its weight and bias:
    ``bn(layer(x)) == folded(x)``. Neither argument is modified.
    """
    check_type("layer", layer, (nn.Conv1d, nn.Conv2d, nn.Linear))
    check_type("bn", bn, (nn.BatchNorm1d, nn.BatchNorm2d))
    lay: Any = layer
    norm: Any = bn
    out_features = lay.weight.shape[0]
    if norm.num_features != out_features:
        raise ValueError(
            f"bn must have num_features equal to the layer's outputs ({out_features}), got "
            f"{norm.num_features}"
        )
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("bn must track running statistics (track_running_stats=True), got None")
    folded: Any = copy.deepcopy(layer)
    with torch.no_grad():
        scale = norm.running_var.add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        shape = (-1,) + (1,) * (lay.weight.ndim - 1)
        folded.weight.copy_(lay.weight * scale.reshape(shape))
        bias = lay.bias if lay.bias is not None else torch.zeros_like(shift)
        new_bias = bias * scale + shift
        if folded.bias is None:
            folded.bias = nn.Parameter(new_bias.clone())
        else:
            folded.bias.copy_(new_bias)
    return folded


_STATELESS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Linear,
    nn.AvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Dropout,
)


@torch.no_grad()
def ann_to_snn(
    ann: nn.Sequential,
    x_calib: Tensor,
    *,
    percentile: float = 90.0,
    leak: float = 1.0,
    average_readout: bool = True,
    calibration: str = "spikes",
    calib_steps: int = 500,
) -> nn.Sequential:
    """Convert a ReLU ``ann`` (an ``nn.Sequential`` on ``[B, ...]``) into an IIR-SNN.

    Every ``BatchNorm`` is folded into the conv/linear layer before it (:func:`fold_batchnorm`,
    eval-mode statistics); every ``nn.ReLU`` becomes an :class:`IIRLIF` with leak ``leak``;
    other layers are wrapped in :class:`~neuronkit.snn.TimeDistributed`; the final
    ``nn.Linear`` (after the last ReLU) becomes the :class:`AccumulatedReadout`. Supported
    layers: Conv1d/2d, Linear, BatchNorm1d/2d, ReLU, AvgPool2d, MaxPool2d, AdaptiveAvgPool2d,
    Flatten, Dropout (a :class:`~neuronkit.snn.SeqDropout` of the same ``p``: one mask per
    sample for all time steps, as the IIR-SNN reference retrains with dropout). The result
    maps ``[T, B, ...] -> logits [B, C]``; ``ann`` and ``x_calib`` are not modified. Each
    converted layer takes the training mode of the ANN layer it replaces and the returned
    ``nn.Sequential`` that of ``ann`` (an ANN in eval mode gives an SNN in eval mode);
    calibration runs in eval mode (no dropout) and leaves the global RNG alone.

    Thresholds (``x_calib: [N, ...]``, direct encoded):

    * ``calibration="spikes"`` (the IIR-SNN / DIET-SNN reference's ``find_threshold``): the
      weights stay the ANN's (BN folded); layer by layer, the network converted so far is run
      for ``calib_steps`` steps and the neuron's threshold is the largest, over the steps, of
      the ``percentile``-th percentile of its input current at that step (the current the
      previous layers' spikes, at their thresholds just set, drive into it);
    * ``calibration="ann"``: the ``percentile``-th percentile of the ANN's pre-activation of
      that ReLU, with the next conv/linear layer's weights multiplied by the threshold so a
      unit spike stands for one threshold of activation (Rueckauer et al. 2017's weight
      normalization).

    A threshold that is not positive becomes the largest current (1 if none is positive).
    """
    check_type("ann", ann, nn.Sequential)
    check_type("x_calib", x_calib, Tensor)
    if x_calib.ndim < 2 or x_calib.shape[0] == 0:
        raise ValueError(
            f"x_calib must be a non-empty batch [N, ...] of calibration inputs, got shape "
            f"{tuple(x_calib.shape)}"
        )
    check_finite("x_calib", x_calib)
    check_number("percentile", percentile, gt=0, le=100)
    check_number("leak", leak, ge=0, le=1)
    check_choice("calibration", calibration, ("spikes", "ann"))
    check_number("calib_steps", calib_steps, ge=1, integer=True)
    mods = list(ann)
    folded: list[nn.Module] = []
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            raise ValueError(
                f"ann[{i}] is a BatchNorm that does not follow a conv/linear layer; only "
                "conv/linear -> BatchNorm pairs can be folded"
            )
        if (
            isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)
            and i + 1 < len(mods)
            and isinstance(mods[i + 1], nn.BatchNorm1d | nn.BatchNorm2d)
        ):
            folded.append(fold_batchnorm(m, mods[i + 1]))
            i += 2
            continue
        if not isinstance(m, (*_STATELESS, nn.ReLU)):
            raise TypeError(
                f"ann[{i}] must be one of Conv1d/2d, Linear, BatchNorm, ReLU, pooling, Flatten, "
                f"Dropout, got {type(m).__name__}"
            )
        folded.append(copy.deepcopy(m))
        i += 1
    relus = [j for j, m in enumerate(folded) if isinstance(m, nn.ReLU)]
    last = len(folded) - 1
    if not isinstance(folded[last], nn.Linear) or not relus:
        raise ValueError(
            "ann must hold at least one nn.ReLU and end with an nn.Linear output layer, got "
            f"{[type(m).__name__ for m in folded]}"
        )
    if calibration == "ann":
        net = _convert_ann_calibrated(folded, x_calib, percentile, leak, average_readout)
    else:
        net = _convert_spike_calibrated(
            folded, relus, x_calib, percentile, leak, average_readout, calib_steps
        )
    net.training = ann.training  # its layers already hold their ANN layer's flag
    return net


def _snn_layers(
    folded: list[nn.Module], thresholds: dict[int, float], leak: float, average: bool
) -> list[nn.Module]:
    """The converted layers: each ReLU ``j`` an :class:`IIRLIF` at ``thresholds.get(j, 1)``,
    the last layer the readout, Dropout a :class:`SeqDropout`, the rest time-distributed; each
    in the training mode of the ANN layer it replaces."""
    last = len(folded) - 1
    device = next(folded[last].parameters()).device  # the neurons live with the ANN's layers
    snn: list[nn.Module] = []
    for j, m in enumerate(folded):
        if j == last:
            layer: nn.Module = AccumulatedReadout(m, average=average)
        elif isinstance(m, nn.ReLU):
            layer = IIRLIF(leak, thresholds.get(j, 1.0)).to(device)
        elif isinstance(m, nn.Dropout):
            layer = SeqDropout(m.p)
        else:
            layer = TimeDistributed(m)
        snn.append(layer.train(m.training))
    return snn


def _usable_threshold(q: float, top: float) -> float:
    """``q`` if it is a positive number, else the largest current ``top`` (1 if not positive)."""
    if q > 0 and math.isfinite(q):
        return q
    return top if top > 0 else 1.0


@torch.no_grad()
def _convert_spike_calibrated(
    folded: list[nn.Module],
    relus: list[int],
    x_calib: Tensor,
    percentile: float,
    leak: float,
    average: bool,
    steps: int,
) -> nn.Sequential:
    """``calibration="spikes"`` of :func:`ann_to_snn`: the ANN's weights, thresholds set layer
    by layer from the spike-driven currents (the reference's ``find_threshold``)."""
    snn = _snn_layers(folded, {}, leak, average)
    with eval_mode(*snn):  # calibrate without dropout, whatever the layers' modes
        for j in relus:
            q, top = -math.inf, 0.0
            for c in _step_currents(snn[:j], x_calib, steps):
                if c.numel():
                    q = _max_percentile(c, percentile, q)
                    top = max(top, float(c.max()))
            neuron: Any = snn[j]
            neuron.threshold.fill_(_usable_threshold(q, top))
    return nn.Sequential(*snn)


def _percentile(t: Tensor, q: float) -> float:
    """The reference's percentile of ``t``: its k-th smallest value, k = 1 + round(q (n-1)/100)."""
    flat = t.flatten()
    return float(flat.kthvalue(1 + round(q / 100.0 * (flat.numel() - 1))).values)


def _max_percentile(t: Tensor, q: float, floor: float) -> float:
    """``max(floor, _percentile(t, q))``, without the k-th value search when at least k values
    of ``t`` are <= ``floor`` (its k-th smallest is then <= ``floor`` too): the same value, and
    a running maximum over many steps rarely needs the search."""
    flat = t.flatten()
    k = 1 + round(q / 100.0 * (flat.numel() - 1))
    if int(torch.count_nonzero(flat <= floor)) >= k:
        return floor
    return max(floor, float(flat.kthvalue(k).values))


@torch.no_grad()
def _step_currents(layers: Sequence[nn.Module], x: Tensor, steps: int) -> Iterator[Tensor]:
    """Run ``layers`` (a converted prefix) on the direct-encoded ``x`` one step at a time and
    yield the output (the next neuron's input current) of every step. The layers before the
    first neuron (stateless, in eval mode) get the same input at every step: they run once."""
    first = next((k for k, m in enumerate(layers) if isinstance(m, IIRLIF)), len(layers))
    head = x
    for m in layers[:first]:
        head = m(head.unsqueeze(0)).squeeze(0)
    state: dict[int, tuple[Tensor, Tensor]] = {}
    for _ in range(steps):
        h = head
        for k in range(first, len(layers)):
            m = layers[k]
            if isinstance(m, IIRLIF):
                lam = float(m.leak.clamp(0.0, 1.0))
                theta = float(m.threshold.clamp(min=m.min_threshold))
                if k not in state:  # at rest (a default in state.get would be built every step)
                    state[k] = (torch.zeros_like(h), torch.zeros_like(h))
                u, s = state[k]
                if lam != 1.0:  # a leak of 1 (converted networks) leaves u as it is
                    u.mul_(lam)
                u.add_(h).sub_(theta * s)  # u = lam * u + h - theta * s, in place
                s = torch.ge(u, theta, out=torch.empty_like(u))  # float out=: no bool copy
                state[k] = (u, s)
                h = s
            else:
                h = m(h.unsqueeze(0)).squeeze(0)
        yield h


@torch.no_grad()
def _convert_ann_calibrated(
    folded: list[nn.Module], x_calib: Tensor, percentile: float, leak: float, average: bool
) -> nn.Sequential:
    """``calibration="ann"`` of :func:`ann_to_snn`: thresholds from the ANN's pre-activations,
    weight normalization."""
    thresholds: dict[int, float] = {}
    h = x_calib.clone()  # an in-place layer (ReLU(inplace=True)) must not write into x_calib
    with eval_mode(*folded):
        for j, m in enumerate(folded):
            if isinstance(m, nn.ReLU):
                pre = h.flatten()
                q = _percentile(pre, percentile) if pre.numel() else math.nan
                thresholds[j] = _usable_threshold(q, float(pre.max()) if pre.numel() else 0.0)
            h = m(h)
    # a unit spike of a neuron layer stands for its threshold of activation: the next
    # conv/linear layer's weights carry that factor, so its input current is in the ANN's
    # units and its own threshold applies (Rueckauer et al. 2017's weight normalization)
    scale = None
    for j, m in enumerate(folded):
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear) and scale is not None:
            m.weight.mul_(scale)
            scale = None
        if j in thresholds:
            scale = thresholds[j]
    return nn.Sequential(*_snn_layers(folded, thresholds, leak, average))


def cnn_ann(
    *,
    in_channels: int = 1,
    image_size: int = 8,
    channels: Sequence[int] = (8, 16, 16),
    hidden: int = 64,
    num_classes: int = 10,
    batchnorm: bool = True,
    seed: int | None = None,
) -> nn.Sequential:
    """The ReLU ANN twin of :func:`iir_cnn` (``[B, C, H, W] -> logits [B, num_classes]``),
    with a BatchNorm after every conv/linear hidden layer when ``batchnorm``; convert it with
    :func:`ann_to_snn` (trained first or not) to start IIR from it."""
    check_type("batchnorm", batchnorm, bool)
    pools = _check_cnn_args(in_channels, image_size, channels, hidden, num_classes)
    with forked_manual_seed(seed):
        layers: list[nn.Module] = []
        c_prev = in_channels
        for i, c in enumerate(channels):
            layers.append(nn.Conv2d(c_prev, c, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU())
            if i > 0:
                layers.append(nn.AvgPool2d(2))
            c_prev = c
        side = image_size // (2**pools)
        layers += [nn.Flatten(), nn.Linear(c_prev * side * side, hidden)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.ReLU(), nn.Linear(hidden, num_classes)]
        return nn.Sequential(*layers)


@grad_enabled("train_ann")
def train_ann(
    ann: nn.Module,
    x: Tensor,
    y: Tensor,
    epochs: int,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train a (ReLU) ``ann: [B, ...] -> logits [B, C]`` in place, as the start of an ANN ->
    SNN conversion: Adam, cross-entropy, cosine decay, shuffled batches from ``seed``.
    Returns the mean training loss of every epoch; the ANN is left in eval mode.

    Args:
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    check_type("ann", ann, nn.Module)
    _check_batch(x, y)
    check_finite("x", x)  # a NaN would silently turn every weight into NaN
    check_number("epochs", epochs, ge=0, integer=True)
    check_number("lr", lr, gt=0)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("weight_decay", weight_decay, ge=0)
    check_seed(seed)
    losses: list[float] = []
    if epochs > 0:
        opt = _adam(ann, lr, weight_decay, "ann")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        gen = torch_generator(seed)
        y = y.long()  # any integer labels (cross-entropy takes int64)
        ann.train()
        for epoch in progress(range(epochs), show_progress=show_progress, desc="train_ann"):
            total, seen = 0.0, 0
            for xb, yb in minibatches(x, y, batch_size, generator=gen):
                opt.zero_grad(set_to_none=True)
                logits = ann(xb)
                if epoch == 0 and seen == 0:
                    check_class_labels("y", y, logits.shape[-1])
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                opt.step()
                torch.clear_autocast_cache()
                total += float(loss.detach()) * yb.shape[0]
                seen += yb.shape[0]
            sched.step()
            losses.append(total / max(seen, 1))
    ann.eval()
    return losses
