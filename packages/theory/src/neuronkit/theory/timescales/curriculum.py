"""Single-head and multi-head curricula on N-parity / N-DMS with trainable timescales.

Khajehabdollahi et al., "Emergent mechanisms for long timescales depend on training curriculum
and affect performance in memory tasks" (ICLR 2024). A :class:`TimescaleRNN` learns tasks of
growing memory span ``N``:

* **single-head** (``curriculum="single"``): one task at a time through one shared readout head;
  once it is solved the network moves on to ``N + 1`` (and may forget ``N``);
* **multi-head** (``curriculum="multi"``): heads for ``n_start..N`` are trained simultaneously on
  the same sequences (loss summed over heads); once they are solved a head for ``N + 1`` is added.

Training follows the reference code: cross-entropy on the last step's logits, SGD (Nesterov,
momentum 0.1, lr 0.05) with gradient-norm clipping at 2, initial state ``0.1 U(0, 1)``, a
random sequence length per batch (see :mod:`neuronkit.theory.data.parity`), and after each
"epoch" of ``steps_per_epoch`` updates an evaluation on fresh batches (by default the reference's
50 batches of 256 sequences, each batch with its own random length: a single test batch is one
draw of the length and of 256 sequences, noisy enough that networks whose accuracy is ~0.95 pass
a 0.98 threshold by chance). A stage counts as solved when the mean test accuracy over its heads
and the accuracy of its newest head both reach ``threshold`` (0.98 in the paper); the single head
has one head, so this is its accuracy. For each solved stage the result keeps the step, the
accuracies, the trained ``tau`` and a copy of the weights (for the network-timescale analysis of
:mod:`.analysis`). The budget is a number of gradient steps, so both curricula get the same amount
of training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_number,
    check_probability,
    check_type,
    correct_predictions,
    grad_enabled,
    module_placement,
    progress,
)

from .._utils import check_positive_int, torch_generator
from ..data.parity import memory_task
from .rnn import TimescaleRNN

__all__ = [
    "CURRICULA",
    "CurriculumResult",
    "CurriculumStage",
    "curriculum_heads",
    "evaluate_heads",
    "train_curriculum",
]

CURRICULA = ("single", "multi")
_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class CurriculumStage:
    """A solved stage of a curriculum.

    Attributes:
        n: the largest span ``N`` the network solved at this stage.
        ns: every span trained at this stage (single-head: ``(n,)``; multi-head: ``n_start..n``).
        step: gradient steps taken when the stage was solved.
        accuracies: test accuracy per span of ``ns``.
        tau: effective single-neuron timescales ``[H]`` at that moment.
        state: a copy of the model's ``state_dict`` at that moment.
    """

    n: int
    ns: tuple[int, ...]
    step: int
    accuracies: tuple[float, ...]
    tau: np.ndarray
    state: dict[str, torch.Tensor] = field(repr=False)

    @property
    def mean_tau(self) -> float:
        """Mean single-neuron timescale at this stage."""
        return float(self.tau.mean())


@dataclass
class CurriculumResult:
    """What :func:`train_curriculum` returns.

    Attributes:
        curriculum: ``"single"`` or ``"multi"``.
        task: ``"parity"`` or ``"dms"``.
        n_start: the first span.
        stages: solved stages, in order.
        steps: gradient steps used in total.
        model: the trained model (a copy; the input model is left unchanged).
        history: one dict per epoch: ``step``, ``ns``, ``loss`` (mean training loss of the epoch),
            ``accuracies`` (test accuracy per span), ``mean_tau``.
        initial_tau: effective ``tau`` ``[H]`` before training.
    """

    curriculum: str
    task: str
    n_start: int
    stages: list[CurriculumStage]
    steps: int
    model: TimescaleRNN
    history: list[dict]
    initial_tau: np.ndarray

    @property
    def n_max(self) -> int:
        """The largest span solved (``n_start - 1`` if none)."""
        return self.stages[-1].n if self.stages else self.n_start - 1

    @property
    def ns(self) -> list[int]:
        """The solved spans, one per stage."""
        return [s.n for s in self.stages]

    @property
    def mean_taus(self) -> list[float]:
        """Mean ``tau`` at each solved stage."""
        return [s.mean_tau for s in self.stages]

    def model_at(self, n: int) -> TimescaleRNN:
        """A copy of the model as it was when span ``n`` was solved."""
        for s in self.stages:
            if s.n == n:
                m = copy.deepcopy(self.model)
                m.load_state_dict(s.state)
                return m
        raise ValueError(f"n must be a solved span {self.ns}, got {n!r:.80}")


def curriculum_heads(curriculum: str, ns: tuple[int, ...], n_start: int) -> list[int]:
    """Head index per span: single-head always uses head 0; multi-head uses ``N - n_start``."""
    check_choice("curriculum", curriculum, CURRICULA)
    if curriculum == "single":
        return [0] * len(ns)
    return [n - n_start for n in ns]


def _batch(
    model: TimescaleRNN, task: str, ns: Sequence[int], batch_size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A :func:`memory_task` batch and the initial state ``0.1 U(0, 1)`` on ``model``'s device
    and in its dtype: ``x [T, B, 1]``, ``h0 [B, H]``, labels ``[K, B]``."""
    device, dtype = module_placement(model)
    data = memory_task(task, ns, batch_size, seed=gen)
    h0 = 0.1 * torch.rand(batch_size, model.hidden_size, generator=gen)
    return data.x.to(device, dtype), h0.to(device, dtype), data.labels.to(device)


def evaluate_heads(
    model: TimescaleRNN,
    task: str,
    ns: tuple[int, ...],
    heads: list[int],
    *,
    batch_size: int,
    batches: int,
    generator: torch.Generator,
) -> list[float]:
    """Test accuracy of ``heads[k]`` on span ``ns[k]`` over fresh random batches.

    Args:
        model: the network (evaluated without gradients; not modified).
        task: ``"parity"`` or ``"dms"``.
        ns: spans; heads: the head index answering each span.
        batch_size, batches: size and number of test batches.
        generator: source of the test batches and initial states.

    Returns:
        Accuracy per span, in ``[0, 1]``.
    """
    check_type("generator", generator, torch.Generator)
    if len(heads) != len(ns):
        raise ValueError(f"heads must have one entry per span ({len(ns)}), got {len(heads)}")
    batch_size = check_positive_int("batch_size", batch_size)
    batches = check_positive_int("batches", batches)
    with torch.no_grad():
        # the batches drawn in order, then run as one ragged batch (each read at its own length)
        drawn = [_batch(model, task, ns, batch_size, generator) for _ in range(batches)]
        lengths = [x.shape[0] for x, _, _ in drawn]
        padded = [F.pad(x, (0, 0, 0, 0, 0, max(lengths) - len(x))) for x, _, _ in drawn]
        logits = model(
            torch.cat(padded, 1),
            torch.cat([h0 for _, h0, _ in drawn]),
            heads=heads,
            lengths=torch.tensor(lengths, device=padded[0].device).repeat_interleave(batch_size),
        )
        correct = correct_predictions(logits, torch.cat([y for _, _, y in drawn], 1))
    return [float(c) / (batch_size * batches) for c in correct.float().sum(dim=1).cpu()]


@grad_enabled("train_curriculum")
def train_curriculum(
    model: TimescaleRNN,
    curriculum: str = "multi",
    task: str = "parity",
    *,
    n_start: int = 2,
    n_max: int | None = None,
    max_steps: int = 10_000,
    steps_per_epoch: int = 100,
    batch_size: int = 256,
    test_batch_size: int = 256,
    test_batches: int = 50,
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.1,
    clip_norm: float | None = 2.0,
    threshold: float = 0.98,
    seed: int | torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    show_progress: bool | None = None,
) -> CurriculumResult:
    """Train a copy of ``model`` with the single-head or multi-head curriculum.

    Args:
        model: the initial network (left unchanged; a copy is trained). Multi-head needs
            ``n_max - n_start + 1`` heads (at most ``model.num_heads`` spans are reachable).
        curriculum: ``"single"`` or ``"multi"``.
        task: ``"parity"`` or ``"dms"``.
        n_start: first span (2 in the paper; DMS needs ``>= 2``).
        n_max: stop once this span is solved (``None``: as far as the budget and heads allow).
        max_steps: budget of gradient steps.
        steps_per_epoch: updates between evaluations.
        batch_size: training sequences per step.
        test_batch_size, test_batches: evaluation batches after each epoch (default 50 x 256,
            the reference code's ``TEST_STEPS`` x ``BATCH_SIZE``).
        optimizer: ``"sgd"`` (Nesterov, the paper's) or ``"adam"``.
        lr, momentum: optimizer settings (momentum only for SGD).
        clip_norm: gradient-norm clipping (``None``: off).
        threshold: test accuracy that counts as solved (0.98 in the paper).
        seed: int seed or ``torch.Generator`` for batches and initial states.
        callback: called with each epoch's history dict (e.g. for progress display).
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        A :class:`CurriculumResult`.
    """
    if not isinstance(model, TimescaleRNN):
        raise TypeError(f"model must be a TimescaleRNN, got {type(model).__name__}")
    check_choice("curriculum", curriculum, CURRICULA)
    check_choice("task", task, ("parity", "dms"))
    n_start = check_positive_int("n_start", n_start, minimum=2 if task == "dms" else 1)
    if model.input_size != 1:
        raise ValueError(f"model must take 1 binary input (input_size=1), got {model.input_size}")
    if model.num_classes != 2:
        raise ValueError(f"model must have 2 classes per head, got {model.num_classes}")
    head_cap = n_start + model.num_heads - 1 if curriculum == "multi" else math.inf
    if n_max is not None:
        n_max = check_positive_int("n_max", n_max, minimum=n_start)
        if n_max > head_cap:
            raise ValueError(
                f"n_max must be <= {head_cap} for the multi-head curriculum with "
                f"{model.num_heads} heads, got {n_max}"
            )
    last_n = float(n_max) if n_max is not None else head_cap
    max_steps = check_positive_int("max_steps", max_steps)
    steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
    batch_size = check_positive_int("batch_size", batch_size)
    test_batch_size = check_positive_int("test_batch_size", test_batch_size)
    test_batches = check_positive_int("test_batches", test_batches)
    check_choice("optimizer", optimizer, _OPTIMIZERS)
    check_number("lr", lr, gt=0)
    check_number("momentum", momentum, ge=0, lt=1)
    if clip_norm is not None:
        check_number("clip_norm", clip_norm, gt=0)
    check_probability("threshold", threshold)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    gen = torch_generator(seed)

    net = copy.deepcopy(model)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, foreach=True)
    else:
        check_adam_dtype("model", net.named_parameters())
        opt = torch.optim.Adam(params, lr=lr, foreach=True)
    initial_tau = net.effective_tau().detach().numpy().copy()
    ns: tuple[int, ...] = (n_start,)
    stages: list[CurriculumStage] = []
    history: list[dict] = []
    step = 0
    # the epochs until the budget is spent (fewer when the curriculum stops early)
    epochs = -(-max_steps // steps_per_epoch)
    for _ in progress(range(epochs), show_progress=show_progress, desc="train_curriculum"):
        heads = curriculum_heads(curriculum, ns, n_start)
        losses = []
        for _ in range(min(steps_per_epoch, max_steps - step)):
            x, h0, labels = _batch(net, task, ns, batch_size, gen)
            logits = net(x, h0, heads=heads)  # [K, B, 2]
            loss = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1)) * len(ns)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm is not None:
                nn.utils.clip_grad_norm_(params, max_norm=clip_norm)
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            losses.append(float(loss.detach()))
            step += 1
        if not all(math.isfinite(v) for v in losses):
            break
        acc = evaluate_heads(
            net, task, ns, heads, batch_size=test_batch_size, batches=test_batches, generator=gen
        )
        record = {
            "step": step,
            "ns": list(ns),
            "loss": float(np.mean(losses)),
            "accuracies": acc,
            "mean_tau": float(net.effective_tau().detach().mean()),
        }
        history.append(record)
        if callback is not None:
            callback(record)
        if float(np.mean(acc)) >= threshold and acc[-1] >= threshold:
            stages.append(
                CurriculumStage(
                    n=ns[-1],
                    ns=ns,
                    step=step,
                    accuracies=tuple(acc),
                    tau=net.effective_tau().detach().numpy().copy(),
                    state={k: v.detach().clone() for k, v in net.state_dict().items()},
                )
            )
            if ns[-1] >= last_n:
                break
            ns = (ns[-1] + 1,) if curriculum == "single" else (*ns, ns[-1] + 1)
    return CurriculumResult(
        curriculum=curriculum,
        task=task,
        n_start=n_start,
        stages=stages,
        steps=step,
        model=net,
        history=history,
        initial_tau=initial_tau,
    )
