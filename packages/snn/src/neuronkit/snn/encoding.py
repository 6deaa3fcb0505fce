"""Input encoders: analog data to time-major spike (or current) trains ``[T, B, ...]``.

=========================  ======================  ========================================
encoder                    input                   output ``[T, B, ...]``
=========================  ======================  ========================================
:func:`direct_encode`      ``[B, ...]`` any real   the input repeated T times (analog)
:func:`poisson_encode`     ``[B, ...]`` in [0, 1]  Bernoulli spikes, P(spike) = value
:func:`latency_encode`     ``[B, ...]`` in [0, 1]  one spike per element, earlier if larger
:func:`delta_encode`       ``[T, B, ...]``         events where the signal changed
=========================  ======================  ========================================
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    plain_tensor,
    under_torch_func,
)

__all__ = ["delta_encode", "direct_encode", "latency_encode", "poisson_encode"]


def _check_x(x: Any, *, min_ndim: int, layout: str, unit: bool) -> None:
    check_type("x", x, Tensor)
    check_floating("x", x)
    if x.ndim < min_ndim:
        raise ValueError(
            f"x must have at least {min_ndim} dimensions {layout}, got shape {tuple(x.shape)}"
        )
    check_finite("x", x)
    values = plain_tensor(x)  # readable under torch.func transforms
    if unit and values.numel() and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            f"x must lie in [0, 1], got values in [{values.min().item():g}, "
            f"{values.max().item():g}]"
        )


def direct_encode(x: Tensor, T: int) -> Tensor:
    """Repeat ``x: [B, ...]`` over time: ``[T, B, ...]`` (a copy; gradients flow to ``x``)."""
    check_number("T", T, ge=1, integer=True)
    _check_x(x, min_ndim=1, layout="[B, ...]", unit=False)
    return x.unsqueeze(0).repeat(T, *([1] * x.ndim))


def _generator(seed: int | None, generator: torch.Generator | None, device: torch.device) -> Any:
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both (got both)")
    if generator is not None:
        check_type("generator", generator, torch.Generator)
        return generator
    if seed is not None:
        check_seed(seed)
        return torch.Generator(device=device).manual_seed(int(seed))  # also a numpy integer
    return None


def poisson_encode(
    x: Tensor, T: int, *, seed: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Rate coding: ``spikes[t] ~ Bernoulli(x)`` independently per step.

    Args:
        x: firing probabilities per step ``[B, ...]`` in [0, 1].
        T: number of steps (>= 1).
        seed / generator: randomness source (at most one; neither uses torch's global RNG).

    Returns:
        ``[T, B, ...]`` of 0/1 in ``x``'s dtype (no gradient).

    The uniforms are one ``[T, *x.shape]`` draw (float64 for float64 inputs, float32
    otherwise), as in snnTorch: with the same seed, a sample's train depends on the batch's
    shape, its position in it and the dtype.
    """
    check_number("T", T, ge=1, integer=True)
    _check_x(x, min_ndim=1, layout="[B, ...]", unit=True)
    gen = _generator(seed, generator, x.device)
    # drawn in float32 or wider: half-precision uniforms sit on a grid of 2^-8 / 2^-11, which
    # would round every probability up to it (a 1e-4 rate fired 21x too often in bfloat16)
    wide = torch.promote_types(x.dtype, torch.float32)
    u = torch.rand((T, *x.shape), generator=gen, device=x.device, dtype=wide)
    p = x.detach().to(wide)
    if under_torch_func():  # torch.func's wrapped tensors take no out=
        return (u < p).to(x.dtype)
    return torch.lt(u, p, out=u).to(x.dtype)  # a float out= skips the slow bool path


def latency_encode(x: Tensor, T: int, *, method: str = "linear", threshold: float = 0.01) -> Tensor:
    """Time-to-first-spike coding: each element spikes once, larger values earlier.

    The spike time is ``round(t*)`` with ``t* = (T - 1) * (1 - x) / (1 - threshold)``
    (``"linear"``) or ``t* = (T - 1) * ln(x) / ln(threshold)`` (``"log"``): ``x = 1`` fires at
    step 0, ``x = threshold`` at step ``T - 1``, and values below ``threshold`` never fire.

    Args:
        x: intensities ``[B, ...]`` in [0, 1].
        T: number of steps (>= 1).
        method: ``"linear"`` or ``"log"``.
        threshold: smallest value that fires, in (0, 1).

    Returns:
        ``[T, B, ...]`` of 0/1 in ``x``'s dtype, at most one spike per element.
    """
    check_number("T", T, ge=1, integer=True)
    _check_x(x, min_ndim=1, layout="[B, ...]", unit=True)
    check_choice("method", method, ("linear", "log"))
    check_number("threshold", threshold, gt=0, lt=1)
    out_dtype = x.dtype
    # spike times in float32 or wider: in half precision (T - 1) * (1 - x) sits on a coarse
    # grid (a step of 4 near 1000 in bfloat16), and T - 1 itself may round up to T
    x = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    fires = x >= threshold
    if method == "linear":
        t_star = (T - 1) * (1 - x) / (1 - threshold)
    else:
        t_star = (T - 1) * torch.log(x.clamp(min=threshold)) / math.log(threshold)
    t_fire = torch.round(t_star).clamp(0, T - 1).long()
    if under_torch_func():  # no in-place scatter into a tensor the transform does not batch
        steps = torch.arange(T, device=x.device).view(T, *([1] * x.ndim))
        return ((steps == t_fire) & fires).to(out_dtype)
    # one spike (or none, below threshold) per element at its step: a scatter into zeros,
    # not T comparisons of every element in bool
    spikes = torch.zeros((T, *x.shape), dtype=out_dtype, device=x.device)
    return spikes.scatter_(0, t_fire.unsqueeze(0), fires.to(out_dtype).unsqueeze(0))


def delta_encode(
    x: Tensor, threshold: float = 0.1, *, polarity: str = "on", cumulative: bool = False
) -> Tensor:
    """Delta (event) coding of a sequence: an event where the signal moved by ``>= threshold``.

    The change at step t is ``x[t] - r`` with ``r = x[t - 1]`` (``x[-1] = 0``, so a static
    input yields events at step 0). With ``cumulative=True``, ``r`` is instead the value at the
    element's last event (send-on-delta, as an event-camera pixel), so slow drifts accumulate.

    Args:
        x: signal ``[T, B, ...]`` with ``T >= 1``.
        threshold: event threshold (> 0).
        polarity: ``"on"`` (increases only, 0/1), ``"signed"`` (+1/-1) or ``"split"`` (ON and
            OFF channels stacked at dim 2: ``[T, B, 2, ...]``).
        cumulative: reference is the last event's value instead of the previous step's.

    Returns:
        events ``[T, B, ...]`` (``[T, B, 2, ...]`` for ``"split"``) in ``x``'s dtype.
    """
    _check_x(x, min_ndim=2, layout="[T, B, ...]", unit=False)
    if x.shape[0] < 1:  # as every time-major input here (the cumulative loop has no step 0)
        raise ValueError(f"x must have T >= 1 time steps [T, B, ...], got shape {tuple(x.shape)}")
    check_number("threshold", threshold, gt=0)
    check_choice("polarity", polarity, ("on", "signed", "split"))
    check_type("cumulative", cumulative, bool)
    x = x.detach()
    if cumulative:
        ref = torch.zeros_like(x[0])
        on_steps, off_steps = [], []
        for t in range(x.shape[0]):
            d = x[t] - ref
            on_t, off_t = d >= threshold, d <= -threshold
            ref = torch.where(on_t | off_t, x[t], ref)
            on_steps.append(on_t)
            off_steps.append(off_t)
        on, off = torch.stack(on_steps), torch.stack(off_steps)
    else:
        d = torch.diff(x, dim=0, prepend=torch.zeros_like(x[:1]))
        if not under_torch_func():
            return _delta_events(d, threshold, polarity)
        on, off = d >= threshold, d <= -threshold
    if polarity == "on":
        return on.to(x.dtype)
    if polarity == "signed":
        return on.to(x.dtype) - off.to(x.dtype)
    return torch.stack([on, off], dim=2).to(x.dtype)


def _delta_events(d: Tensor, threshold: float, polarity: str) -> Tensor:
    """:func:`delta_encode`'s events from the changes ``d [T, B, ...]`` (overwritten),
    compared straight into float outputs (a bool comparison and its cast take several times
    as long)."""
    if polarity == "split":
        events = d.new_empty((*d.shape[:2], 2, *d.shape[2:]))
        torch.ge(d, threshold, out=events.select(2, 0))
        torch.le(d, -threshold, out=events.select(2, 1))
        return events
    if polarity == "on":
        return torch.ge(d, threshold, out=d)
    on = torch.ge(d, threshold, out=torch.empty_like(d))
    return on.sub_(torch.le(d, -threshold, out=d))
