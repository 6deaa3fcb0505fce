"""Sparse dynamic attack (SDA) on binary event inputs.

Lun et al., "Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via
Breaking Invisible Surrogate Gradients" (CVPR 2025).

Event frames are binary, so a perturbation flips entries (0 -> 1 or 1 -> 0) and its size is
the number of flips (L0). SDA attacks one sample at a time in two phases, minimising the
Carlini-Wagner margin ``max(z_y - max_{j != y} z_j, 0)`` of the time-averaged logits:

1. **Generation** (iteration ``n = 1, 2, ...``): the input gradient ``g`` of the margin (through
   the surrogate, e.g. :class:`~neuronkit.snn.attacks.PDSG`) ranks the *gradient-consistent*
   flips, those whose first-order change ``(1 - 2 x) g`` lowers the margin (0 -> 1 where
   ``g < 0``, 1 -> 0 where ``g > 0``), by ``|g|``; every other entry (``g = 0`` or a flip that
   would raise the margin) gets a random score below the smallest consistent one, so the
   search never stalls and such entries are tried only once the consistent ones run out, as
   in the authors' code. The ``n * k_init`` best not yet selected entries are each flipped
   alone in a batch and scored by the finite difference ``FD = margin(flipped) -
   margin(current)``; those with ``FD <= 0`` join the selected set (any entry whose FD is
   positive leaves it). The adversarial example is the input with every selected entry
   flipped; generation stops as soon as it is misclassified (or after ``max_iters``).
2. **Reduction**: the selected entries sorted by ``|FD|`` (least useful first), a binary search
   finds the longest prefix that can be flipped back while the sample stays misclassified,
   and removes those flips.

The result reports L0 per sample after generation and after reduction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuronkit.common import (
    check_class_labels,
    check_number,
    check_type,
    detached_input,
    grad_enabled,
)

from ..encoding import _generator
from .gradient import _check_inputs, _check_model, snn_logits

__all__ = ["SDAResult", "cw_margin", "sda"]


def cw_margin(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample Carlini-Wagner loss ``max(z_y - max_{j != y} z_j, 0)``: ``[B, K], [B] -> [B]``
    (zero once the sample is misclassified)."""
    return _cw_margin(logits, y, check_labels=True)


def _cw_margin(logits: Tensor, y: Tensor, check_labels: bool = False) -> Tensor:
    """:func:`cw_margin`; ``check_labels``: first check ``y``'s values against ``K`` (one host
    read, which the attack's loops skip: :func:`sda` checks its labels once)."""
    check_type("logits", logits, Tensor)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor [B, K], got dtype {logits.dtype}")
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [B, K] with K >= 2, got shape {tuple(logits.shape)}")
    check_type("y", y, Tensor)
    if y.dtype != torch.long or y.shape != logits.shape[:1]:
        raise ValueError(
            f"y must be an int64 tensor of shape [{logits.shape[0]}], got dtype {y.dtype} and "
            f"shape {tuple(y.shape)}"
        )
    if check_labels:
        check_class_labels("y", y, logits.shape[1])
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return (true - others).clamp_min(0)


@dataclass(frozen=True)
class SDAResult:
    """Outcome of :func:`sda` for a batch of ``B`` samples.

    Attributes:
        x_adv: adversarial inputs ``[T, B, ...]`` (the clean input where the attack failed).
        success: ``[B]`` bool, misclassified at the end.
        l0: ``[B]`` number of flipped entries in ``x_adv`` (after reduction; 0 on failure).
        l0_generation: ``[B]`` number of flips the generation phase selected.
        iterations: ``[B]`` generation iterations used.
        queries: ``[B]`` model evaluations of single samples (gradient steps, candidates,
            success tests, reduction tests).
        entries: number of input entries per sample (``T * prod(...)``).
    """

    x_adv: Tensor
    success: Tensor
    l0: Tensor
    l0_generation: Tensor
    iterations: Tensor
    queries: Tensor
    entries: int

    @property
    def l0_fraction(self) -> Tensor:
        """``[B]`` flipped fraction of the input entries (after reduction)."""
        return self.l0.double() / self.entries

    @property
    def l0_generation_fraction(self) -> Tensor:
        """``[B]`` flipped fraction after generation alone."""
        return self.l0_generation.double() / self.entries


Model = Callable[[Tensor], Tensor]


@torch.no_grad()
def _is_adversarial(model: Model, x: Tensor, y: Tensor, labels: Tensor | None = None) -> bool:
    """Whether the model misclassifies ``x``; ``labels``: first check them (all of the attack's
    ``y``) against the model's classes."""
    logits = snn_logits(model, x)
    if labels is not None:
        check_class_labels("y", labels, logits.shape[1])  # a label >= K would count as a success
    return bool(logits.argmax(1).ne(y).all())


def _margin_and_grad(model: Model, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    xg = x.detach().requires_grad_(True)
    loss = _cw_margin(snn_logits(model, xg), y).sum()
    (grad,) = torch.autograd.grad(loss, xg)
    return loss.detach(), grad


@torch.no_grad()
def _score_flips(
    model: Model, adv: Tensor, y: Tensor, idx: Tensor, batch_limit: int
) -> Tensor:  # fmt: skip
    """Margin of ``adv: [T, 1, ...]`` with each entry ``idx[j]`` (flat) flipped alone: ``[k]``."""
    flat = adv.reshape(-1)
    shape = (adv.shape[0], *adv.shape[2:])
    out = []
    for chunk in idx.split(batch_limit):
        cand = flat.repeat(len(chunk), 1)
        rows = torch.arange(len(chunk), device=adv.device)
        cand[rows, chunk] = 1 - cand[rows, chunk]
        batch = cand.reshape(len(chunk), *shape).movedim(0, 1)  # [T, k, ...]
        out.append(_cw_margin(snn_logits(model, batch), y.expand(len(chunk))))
    return torch.cat(out)


def _generate(
    model: Model,
    x0: Tensor,
    y: Tensor,
    k_init: int,
    max_iters: int,
    batch_limit: int,
    generator: torch.Generator | None,
) -> tuple[bool, Tensor, Tensor, int, int]:
    """Generation for one sample ``x0: [T, 1, ...]``: ``(success, selected [N] bool, FD [N],
    iterations, queries)``."""
    flat0 = x0.reshape(-1)
    n_entries = flat0.numel()
    selected = torch.zeros(n_entries, dtype=torch.bool, device=x0.device)
    fd = torch.full((n_entries,), float("inf"), dtype=x0.dtype, device=x0.device)
    adv = x0
    queries = 0
    for n in range(1, max_iters + 1):
        loss, grad = _margin_and_grad(model, adv, y)
        g = grad.reshape(-1)
        a = adv.reshape(-1)
        step = a - g.sign()  # in [0, 1] iff flipping lowers the margin to first order (or g = 0)
        score = g.abs() * ((step >= 0) & (step <= 1))
        nonzero = score[score > 0]
        tiny = nonzero.min() if nonzero.numel() else torch.ones((), dtype=g.dtype)
        noise = torch.rand(n_entries, generator=generator, dtype=g.dtype, device=g.device) * tiny
        score = torch.where(score > 0, score, noise)
        score[selected] = -1.0
        k = min(n * k_init, int((~selected).sum()))
        if k == 0:
            return False, selected, fd, n, queries + 1
        idx = score.topk(k).indices
        fd[idx] = (_score_flips(model, adv, y, idx, batch_limit) - loss).to(fd.dtype)  # autocast
        selected[idx] = True
        worse = fd > 0
        selected &= ~worse
        fd[worse] = float("inf")
        adv = torch.where(selected, 1 - flat0, flat0).reshape(x0.shape)
        queries += 2 + k
        if _is_adversarial(model, adv, y):
            return True, selected, fd, n, queries
    return False, selected, fd, max_iters, queries


def _reduce(
    model: Model, x0: Tensor, y: Tensor, selected: Tensor, fd: Tensor
) -> tuple[Tensor, int]:  # fmt: skip
    """Binary search for the longest prefix of the selected flips (by ``|FD|``, ascending) that
    can be undone while staying adversarial: ``(x_adv, queries)``."""
    flat0 = x0.reshape(-1)
    chosen = selected.nonzero().squeeze(1)
    order = chosen[fd[chosen].abs().argsort(stable=True)]
    adv = torch.where(selected, 1 - flat0, flat0)
    best, lo, hi, queries = adv, 0, len(order) - 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        trial = adv.clone()
        undo = order[: mid + 1]
        trial[undo] = flat0[undo]
        queries += 1
        if _is_adversarial(model, trial.reshape(x0.shape), y):
            best, lo = trial, mid + 1
        else:
            hi = mid - 1
    return best.reshape(x0.shape), queries


def sda(
    model: Model,
    x: Tensor,
    y: Tensor,
    *,
    k_init: int = 10,
    max_iters: int = 50,
    batch_limit: int = 256,
    reduce: bool = True,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> SDAResult:
    """Sparse dynamic attack (untargeted) on binary event inputs, one sample at a time.

    Args:
        model: maps ``[T, B, ...]`` to outputs ``[T, B, K]`` (averaged over time) or ``[B, K]``;
            its surrogate gives the gradients (swap in PDSG for an unknown surrogate).
        x: binary events ``[T, B, ...]`` (values 0 or 1).
        y: true labels ``[B]`` (int64).
        k_init: candidates scored in the first iteration; iteration ``n`` scores ``n * k_init``.
        max_iters: generation iterations before giving up on a sample.
        batch_limit: most candidates evaluated in one batch (memory bound).
        reduce: run the reduction phase (False: generation alone).
        seed / generator: randomness of the tie-breaking scores of zero gradients (at most
            one; the global RNG if neither is given).

    Returns:
        :class:`SDAResult`; ``x`` is not modified and neither are the model's parameters
        (call ``model.eval()`` first: in training mode a BatchNorm updates its running
        statistics, and candidates scored in one batch would share batch statistics).
    """
    _check_model(model)
    batch = _check_inputs(x, y, None)
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("x must be binary (every entry 0 or 1)")
    check_number("k_init", k_init, ge=1, integer=True)
    check_number("max_iters", max_iters, ge=1, integer=True)
    check_number("batch_limit", batch_limit, ge=1, integer=True)
    check_type("reduce", reduce, bool)
    generator = _generator(seed, generator, x.device)
    x = detached_input(x)  # a copy of an inference tensor, which cannot enter a graph
    x_adv = x.clone()
    stats = torch.zeros(5, batch, dtype=torch.long)  # success, l0, l0_gen, iterations, queries
    with grad_enabled("sda"):
        for b in range(batch):
            x0, yb = x[:, b : b + 1], y[b : b + 1]
            # already misclassified: nothing to flip (the first call checks every label)
            if _is_adversarial(model, x0, yb, y if b == 0 else None):
                stats[:, b] = torch.tensor([1, 0, 0, 0, 1])
                continue
            ok, selected, fd, its, queries = _generate(
                model, x0, yb, k_init, max_iters, batch_limit, generator
            )
            queries += 1
            adv = x0
            if ok:
                if reduce:
                    adv, extra = _reduce(model, x0, yb, selected, fd)
                    queries += extra
                else:
                    flat0 = x0.reshape(-1)
                    adv = torch.where(selected, 1 - flat0, flat0).reshape(x0.shape)
                x_adv[:, b : b + 1] = adv
            l0 = int((adv != x0).sum())
            stats[:, b] = torch.tensor([int(ok), l0, int(selected.sum()), its, queries])
    return SDAResult(
        x_adv=x_adv,
        success=stats[0].bool(),
        l0=stats[1],
        l0_generation=stats[2],
        iterations=stats[3],
        queries=stats[4],
        entries=x[:, 0].numel(),
    )
