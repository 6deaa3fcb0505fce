"""Readouts and losses on time-major outputs ``[T, B, C]`` with class targets ``[B]``.

=========================  =============================================================
loss                       definition (mean over the batch)
=========================  =============================================================
:func:`spike_count_ce`     ``CE(sum_t spikes_t, y)``
:func:`mean_membrane_ce`   ``CE(mean_t v_t, y)``
:func:`softmax_sum_ce`     ``CE(sum_t softmax(out_t), y)``: the per-step class probabilities
                           summed over time are the logits (Hammouamri et al. 2024, the
                           learnable-delays reference's ``loss = 'sum'``); predict with
                           :func:`softmax_sum_predict`
:func:`tet_ce`             ``(1 - lamb) * mean_t CE(out_t, y) + lamb * mean_t MSE(out_t,
                           phi)`` (TET, Deng et al. 2022; ``lamb = 0`` by default)
:func:`spike_count_mse`    ``MSE(sum_t spikes_t, T * rate(y)) / T`` with ``rate = correct_rate``
                           for the target class, ``incorrect_rate`` otherwise (snnTorch's
                           ``mse_count_loss`` without its integer rounding of the targets)
=========================  =============================================================
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuronkit.common import (
    check_class_labels,
    check_finite,
    check_floating,
    check_number,
    check_type,
)

__all__ = [
    "mean_membrane_ce",
    "softmax_sum_ce",
    "softmax_sum_predict",
    "spike_count_ce",
    "spike_count_mse",
    "tet_ce",
]


def _check(out: Any, target: Any, name: str = "out") -> None:
    check_type(name, out, Tensor)
    check_floating(name, out)
    if out.ndim != 3:
        raise ValueError(f"{name} must have 3 dimensions [T, B, C], got shape {tuple(out.shape)}")
    for dim, what in enumerate(("T >= 1 time steps", "a non-empty batch B >= 1", "C >= 1 classes")):
        if out.shape[dim] < 1:  # a mean over nothing is NaN (or log C), not a loss
            raise ValueError(f"{name} must have {what} [T, B, C], got shape {tuple(out.shape)}")
    check_finite(name, out)
    check_type("target", target, Tensor)
    if target.dtype != torch.long or target.ndim != 1 or target.shape[0] != out.shape[1]:
        # the usual cause of a batch mismatch: batch-first input [B, T, ...] run as [T, B, ...]
        hint = (
            f"; {name} has {out.shape[0]} time steps, the batch size of target: was the "
            "network's input batch-first [B, T, ...]? Pass it as [T, B, ...] "
            "(x.transpose(0, 1))"
            if target.ndim == 1 and target.shape[0] == out.shape[0] != out.shape[1]
            else ""
        )
        raise ValueError(
            f"target must be an int64 tensor of shape [B] = [{out.shape[1]}] (class indices), "
            f"got dtype {target.dtype} and shape {tuple(target.shape)}{hint}"
        )
    check_class_labels("target", target, out.shape[2])


def spike_count_ce(spikes: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the spike counts: ``spikes [T, B, C]``, ``target [B]`` -> scalar."""
    _check(spikes, target, "spikes")
    return F.cross_entropy(spikes.sum(0), target)


def mean_membrane_ce(v: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the time-averaged membrane: ``v [T, B, C]``, ``target [B]``."""
    _check(v, target, "v")
    return F.cross_entropy(v.mean(0), target)


def softmax_sum_ce(out: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the per-step softmax summed over time: ``out [T, B, C]``, ``target [B]``.

    ``CE(sum_t softmax(out_t), y)``: the sum of the class probabilities of every step is used
    as the logits (so cross-entropy applies its own log-softmax on top), exactly the
    ``loss = 'sum'`` readout of the learnable-delays reference code (Thvnvtos/SNN-delays,
    ``Model.calc_loss``). Every step votes with a bounded weight, unlike :func:`mean_membrane_ce`
    where a few large membrane values can dominate. Predict with :func:`softmax_sum_predict`.
    """
    _check(out, target)
    return F.cross_entropy(out.softmax(-1).sum(0), target)


def softmax_sum_predict(out: Tensor) -> Tensor:
    """Class predictions ``[B]`` (int64) of :func:`softmax_sum_ce`'s readout: ``argmax_c sum_t
    softmax(out_t)_c`` for ``out [T, B, C]`` (the reference's ``Model.calc_metric``)."""
    check_type("out", out, Tensor)
    if not out.is_floating_point() or out.ndim != 3 or min(out.shape) < 1:
        raise ValueError(
            f"out must be a non-empty floating-point tensor [T, B, C], got dtype {out.dtype} "
            f"and shape {tuple(out.shape)}"
        )
    check_finite("out", out)
    return out.softmax(-1).sum(0).argmax(1)


def tet_ce(out: Tensor, target: Tensor, *, lamb: float = 0.0, phi: float = 1.0) -> Tensor:
    """Temporal efficient training loss: per-step CE averaged over time (``out [T, B, C]``).

    Args:
        lamb: weight of the MSE regulariser pulling every ``out_t`` towards ``phi``, in [0, 1].
        phi: the regulariser's target value.
    """
    _check(out, target)
    check_number("lamb", lamb, ge=0, le=1)
    check_number("phi", phi)
    T = out.shape[0]
    ce = F.cross_entropy(out.flatten(0, 1), target.repeat(T))
    if lamb == 0:
        return ce
    return (1 - lamb) * ce + lamb * F.mse_loss(out, torch.full_like(out, phi))


def spike_count_mse(
    spikes: Tensor, target: Tensor, *, correct_rate: float = 1.0, incorrect_rate: float = 0.0
) -> Tensor:
    """MSE between spike counts and target counts, divided by T (``spikes [T, B, C]``).

    Args:
        correct_rate: target firing rate (spikes per step) of the target class, in [0, 1].
        incorrect_rate: target rate of the other classes, in [0, 1].
    """
    _check(spikes, target, "spikes")
    check_number("correct_rate", correct_rate, ge=0, le=1)
    check_number("incorrect_rate", incorrect_rate, ge=0, le=1)
    T, _, C = spikes.shape
    # one-hot by comparison: F.one_hot reads its input's range, which vmap cannot
    onehot = (target.unsqueeze(-1) == torch.arange(C, device=target.device)).to(spikes.dtype)
    goal = T * (incorrect_rate + (correct_rate - incorrect_rate) * onehot)
    return F.mse_loss(spikes.sum(0), goal) / T
