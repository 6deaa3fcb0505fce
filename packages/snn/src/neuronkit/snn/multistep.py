"""Fused multi-step LIF/IF: a hand-written backward through time.

:func:`fused_lif` runs the same per-step update as :func:`neuronkit.snn.lif_step` (literally the
same code, :func:`neuronkit.snn._core.lif_core`) over ``x: [T, B, ...]`` inside one
``torch.autograd.Function``: the forward builds no autograd graph and keeps only the pre-spike
membrane ``h: [T, B, ...]`` (plus ``x`` and ``v`` when ``tau`` needs a gradient); the backward
runs the reverse-time recursion below with every time-parallel factor precomputed in one
vectorised pass. Forward outputs are bit-identical to the step-by-step reference; gradients
agree to rounding.

With ``g = surrogate.derivative(h - theta)``, ``s = H(h - theta)``, ``lam = dh_{t+1}/dv_t``
(``1 - 1/tau`` for LIF, ``1`` for IF) and the partials of the reset ``v_t = R(h_t, s_t)``
(``A = dR/dh``, ``B = dR/ds``; ``B = 0`` with ``detach_reset``)::

    dv_t = dL/dv_t (direct) + lam * dh_{t+1}
    dh_t = dv_t * (A_t + B_t * g_t) + dL/ds_t * g_t

==========  ============  ==================
reset       A             B
==========  ============  ==================
subtract    1             -theta
zero        1 - s         v_reset - h
none        1             0
==========  ============  ==================

``dL/dx_t = dh_t / tau`` (``decay_input``) or ``dh_t``; ``dL/dv_0 = lam * dh_0``; tensor
``tau`` and ``threshold`` gradients are the sums of their per-step partials, reduced to the
parameter's shape. The backward is ``once_differentiable`` (no double backward) and the
Function has no forward-mode/vmap rule: use the reference path (``fused=False``) for those.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._core import Param, lif_core
from .surrogate import Surrogate, heaviside

__all__ = ["fused_lif"]


def _reduce(grad: Tensor, like: Param | None) -> Tensor | None:
    """Sum a ``[T, B, ...]`` gradient down to a tensor parameter's shape (None for floats)."""
    if not isinstance(like, Tensor):
        return None
    return grad.sum_to_size(like.shape).to(like.dtype)


def _axpy(y: Tensor, a: Param, x: Tensor) -> None:
    """``y += a * x`` in place (``a`` a float or a tensor)."""
    if isinstance(a, Tensor):
        y.addcmul_(a, x)
    else:
        y.add_(x, alpha=a)


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        v0: Tensor,
        tau: Param | None,
        threshold: Param,
        v_reset: float,
        mode: str,
        detach_reset: bool,
        decay_input: bool,
        surrogate: Surrogate,
    ) -> tuple[Tensor, Tensor]:
        spikes, vs, hs = [], [], []
        v = v0
        for t in range(x.shape[0]):
            s, v, h = lif_core(
                x[t], v, tau, threshold, v_reset, mode, detach_reset, decay_input, heaviside
            )
            spikes.append(s)
            vs.append(v)
            hs.append(h)
        s_seq, v_seq = torch.stack(spikes), torch.stack(vs)
        tau_grad = isinstance(tau, Tensor) and ctx.needs_input_grad[2]
        ctx.save_for_backward(
            torch.stack(hs),
            x if tau_grad else None,
            v_seq if tau_grad else None,
            v0 if tau_grad else None,
            tau if isinstance(tau, Tensor) else None,
            threshold if isinstance(threshold, Tensor) else None,
        )
        ctx.params = (
            None if isinstance(tau, Tensor) else tau,
            None if isinstance(threshold, Tensor) else threshold,
            v_reset,
            mode,
            detach_reset,
            decay_input,
            surrogate,
        )
        return s_seq, v_seq

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_s: Tensor, g_v: Tensor) -> tuple[Tensor | None, ...]:
        h, x, v_seq, v0, tau_t, thr_t = ctx.saved_tensors
        tau_f, thr_f, v_reset, mode, detach_reset, decay_input, surrogate = ctx.params
        tau = tau_t if tau_t is not None else tau_f
        threshold = thr_t if thr_t is not None else thr_f

        z = h - threshold
        g = surrogate.derivative(z)
        s = heaviside(z)
        # v_t = R(h_t, s_t): A = dR/dh, B = dR/ds (0 when the reset path is detached)
        a: Tensor | float = (1.0 - s) if mode == "zero" else 1.0
        b: Tensor | float = 0.0
        if not detach_reset and mode == "subtract":
            b = -threshold
        elif not detach_reset and mode == "zero":
            b = v_reset - h
        coef = a + b * g  # dh_t = dv_t * coef_t + g_s_t * g_t
        drive = g_s * g
        lam = 1.0 if tau is None else 1.0 - 1.0 / tau

        # the only sequential part: two fused ops per step, written in place
        dv = g_v.clone()
        dh = torch.empty_like(h)
        last = h.shape[0] - 1
        for t in range(last, -1, -1):
            if t < last:
                _axpy(dv[t], lam, dh[t + 1])
            torch.addcmul(drive[t], dv[t], coef[t], out=dh[t])
        grad_v0 = lam * dh[0]
        grad_x = dh / tau if (tau is not None and decay_input) else dh
        grad_tau = None
        if x is not None:
            v_prev = torch.cat([v0.unsqueeze(0), v_seq[:-1]])
            leak = v_prev - v_reset
            dh_dtau = (-(x - leak) if decay_input else leak) / tau**2
            grad_tau = _reduce(dh * dh_dtau, tau)
        grad_thr = None
        if thr_t is not None and ctx.needs_input_grad[3]:
            dthr = -(g_s + dv * b) * g
            if mode == "subtract":
                dthr = dthr - dv * s
            grad_thr = _reduce(dthr, thr_t)
        return grad_x, grad_v0, grad_tau, grad_thr, None, None, None, None, None


def fused_lif(
    x: Tensor,
    v0: Tensor,
    *,
    tau: Param | None,
    threshold: Param,
    v_reset: float,
    reset_mode: str,
    detach_reset: bool,
    decay_input: bool,
    surrogate: Surrogate,
) -> tuple[Tensor, Tensor]:
    """Fused LIF (IF when ``tau is None``) over time; unvalidated, prefer ``lif_multistep``.

    Args:
        x: input ``[T, B, ...]``.
        v0: initial membrane ``[B, ...]``.
        tau: membrane time constant in steps (``tau / dt``), float or tensor broadcastable
            to ``[B, ...]``; ``None`` for IF.
        threshold, v_reset, reset_mode, detach_reset, decay_input, surrogate: as in
            :func:`neuronkit.snn.lif_step`.

    Returns:
        ``(spikes, v)``, both ``[T, B, ...]``; ``v`` is the membrane after reset.
    """
    out: tuple[Tensor, Tensor] = _FusedLIF.apply(
        x, v0, tau, threshold, v_reset, reset_mode, detach_reset, decay_input, surrogate
    )
    return out
