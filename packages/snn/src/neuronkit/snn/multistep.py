"""Fused multi-step LIF/IF: a lean loop of in-place ops and a hand-written backward through time.

Every LIF/IF step is ``h = charge(u, v)`` (one op: ``torch.lerp(v, u, w)`` with ``w = dt /
tau`` for LIF with input decay, ``u + lam * v`` with ``lam = 1 - dt / tau`` without, ``u + v``
for IF; ``u = drive(x)`` is ``x`` itself unless ``v_reset != 0``), then ``s = h >= threshold``
and the reset. These live once, in :mod:`neuronkit.snn._core`, and the step functions, the
reference loop and this path all call them, so the forward here is bit-identical to the
step-by-step reference.

:func:`fused_lif` runs them over ``x: [T, B, ...]`` with three ops per step written straight
into preallocated ``[T, B, ...]`` outputs (no per-step allocation, no ``torch.stack``). Without
a gradient, ``h`` goes straight into the ``v`` buffer and the reset overwrites it in place; a
membrane trace nobody asked for (``keep_v=False``, what ``module(x)`` uses) lives in one
``[B, ...]`` scratch buffer. With a gradient, a ``torch.autograd.Function`` builds no graph
inside the loop and keeps only ``h`` (plus ``u`` and ``v_0`` when a tensor ``w`` / ``lam``
needs its gradient).

The backward precomputes every time-parallel factor in vectorised, mostly in-place ops and
then runs one fused op per step in reverse time. With ``g = surrogate.derivative(h - theta)``,
``s = H(h - theta)``, ``lam = dh_{t+1}/dv_t`` (``1 - w`` for the lerp, ``1`` for IF) and the
partials of the reset ``v_t = R(h_t, s_t)`` (``A = dR/dh``, ``B = dR/ds``; ``B = 0`` with
``detach_reset``)::

    dv_t = dL/dv_t (direct) + lam * dh_{t+1}
    dh_t = dv_t * coef_t + dL/ds_t * g_t,      coef_t = A_t + B_t * g_t
         = (dL/ds_t * g_t + dL/dv_t * coef_t) + lam * coef_t * dh_{t+1}

==========  ============  ==================
reset       A             B
==========  ============  ==================
subtract    1             -theta
zero        1 - s         v_reset - h
none        1             0
==========  ============  ==================

``dL/du = w * dh`` (lerp) or ``dh``; ``dL/dv_0 = lam * dh_0``; a tensor ``w`` gets ``sum_t dh_t
* (u_t - v_{t-1})``, a tensor ``lam`` ``sum_t dh_t * v_{t-1}`` (the membranes recomputed from
``h`` with the forward's own reset op, so bit-identical), a tensor ``threshold`` the sum of its
per-step partials, each reduced to the parameter's shape (autograd carries them on to
``tau``). The backward is once-differentiable: asked for a graph of itself (``create_graph=True``,
for double backward) it raises; use the reference path (``fused=False``) there. Under a
``torch.func`` transform (``vmap``, ``grad``, ``jvp``, ...) :func:`fused_lif` runs the reference
recurrence itself: the same forward bits, and the surrogate in both modes.

On the CPU (float32/float64, scalar ``tau`` and ``threshold``) both loops, and the backward's
time-parallel factors after the surrogate derivative, run instead as one call each of a
compiled C loop (:mod:`neuronkit.snn._native`), checked at load time to give the ATen loops'
bits; with the built-in ``FastSigmoid`` or ``ATan`` (and no threshold gradient) that call
also computes ``g`` from ``h``, and ``w * dh`` when nothing else reads ``dh``. CuBa-LIF's
synaptic current (:func:`fused_current`) is a linear filter run the same way. ALIF
(:func:`fused_alif`) runs its steps without a graph and its two-state backward by hand,
compiled the same way.

A potential-dependent surrogate (``surrogate.needs_potential``, e.g. PDSG) shapes each step's
gradient from running statistics of the membrane, which the time-parallel backward cannot
see: when a gradient is needed, :func:`fused_lif` then runs the step-by-step reference
recurrence under autograd (the same ``_core`` ops, so the same forward bits) and honours the
surrogate exactly. Without a gradient the fused loop runs as usual (the forward never depends
on the surrogate).
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import torch
from torch import Tensor

from neuronkit.common import check_type, under_torch_func

from . import _native
from ._core import Param, begin, charge, drive, fire, leak, lif_core, operand, reset
from .surrogate import Surrogate

__all__ = ["fused_alif", "fused_current", "fused_lif"]


def _reduce(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a ``[T, B, ...]`` gradient down to a tensor parameter's shape and dtype."""
    return grad.sum_to_size(like.shape).to(like.dtype)


def _membrane_grads(dh: Tensor, g_v: Tensor | None, decay: Param | None) -> Tensor:
    """The membranes' total gradients ``dL/dv_t = g_v_t + decay dh_{t+1}`` ``[T, B, ...]``
    (a new tensor; ``decay`` None is 1), from ``dh = dL/dh`` and the loss's own ``g_v``."""
    dv = g_v.clone() if g_v is not None else torch.zeros_like(dh)
    if decay is None:
        dv[:-1].add_(dh[1:])
    elif isinstance(decay, Tensor):
        dv[:-1].addcmul_(decay, dh[1:])
    else:
        dv[:-1].add_(dh[1:], alpha=decay)
    return dv


def _membranes_before(h: Tensor, threshold: Param, v_reset: float, mode: str, v0: Tensor) -> Tensor:
    """The membrane before each step, ``[T, B, ...]``: ``v0``, then the membrane after each
    step's reset, recomputed bit-identically from the pre-spike membranes ``h``."""
    s = torch.ge(h, threshold, out=torch.empty_like(h))  # float out=: no bool pass
    return _before(v0, reset(h, s, threshold, v_reset, mode))


def _before(initial: Tensor, states: Tensor) -> Tensor:
    """The state before each step, ``[T, B, ...]``: ``initial`` (broadcast to one step), then
    ``states [T, B, ...]`` (the state after each step) but the last."""
    first = initial.expand_as(states[0]).to(states.dtype).unsqueeze(0)
    return torch.cat([first, states[:-1]])


def _leak_grads(
    dh: Tensor, h: Tensor, threshold: Param, v_reset: float, mode: str, v0: Tensor,
    u: Tensor | None, w: Param | None, lam: Param | None, need_w: bool, need_lam: bool,
) -> tuple[Tensor | None, Tensor | None]:  # fmt: skip
    """The gradients of the leak's ``w`` (``dh/dw = u - v_{t-1}``) and ``lam`` (``dh/dlam =
    v_{t-1}``) where needed, from ``dh = dL/dh [T, B, ...]`` (:func:`_leak_sums`)."""
    grad_w = grad_lam = None
    if need_w:
        assert u is not None  # saved
        assert isinstance(w, Tensor)
        grad_w = _reduce(_leak_sums(dh, h, threshold, v_reset, mode, v0, u).unsqueeze(0), w)
    if need_lam:
        assert isinstance(lam, Tensor)
        grad_lam = _reduce(_leak_sums(dh, h, threshold, v_reset, mode, v0, None).unsqueeze(0), lam)
    return grad_w, grad_lam


def _leak_sums(
    dh: Tensor, h: Tensor, threshold: Param, v_reset: float, mode: str, v0: Tensor,
    u: Tensor | None, *, native: bool = True,
) -> Tensor:  # fmt: skip
    """``sum_t dh_t (u_t - v_{t-1})`` with ``u`` (``w``'s), else ``sum_t dh_t v_{t-1}``
    (``lam``'s), float64 ``[B, ...]``: each product rounded in ``h``'s dtype, then added in
    time order, in one compiled pass where it applies. The membranes before each step are
    recomputed bit-identically from ``h`` and the reset's ``threshold``
    (:func:`_membranes_before`)."""
    if native and (total := _native.leak_sums(dh, h, u, v0, threshold, v_reset, mode)) is not None:
        return total
    v_prev = _membranes_before(h, threshold, v_reset, mode, v0)
    return _time_sum(dh * v_prev if u is None else dh * (u - v_prev))


def _time_sum(terms: Tensor) -> Tensor:
    """``terms [T, B, ...]`` (a temporary: may be written over) summed over time in float64,
    one step after the other (the order the compiled pass adds them in): ``[B, ...]``."""
    total = terms[0].double()
    for row in terms[1:].unbind(0):
        total.add_(row)
    return total


def _derivative(surrogate: Surrogate, z: Tensor) -> Tensor:
    """``surrogate.derivative(z)`` as a tensor of ``z``'s shape and strides that the backward
    may write into (the built-ins write it over ``z``, a temporary): a broadcastable result (a
    0-d constant, an expanded view) is copied out."""
    g = surrogate._derivative_over(z)
    if (
        isinstance(g, Tensor)
        and g.shape == z.shape
        and (g.stride() == z.stride() or g.is_contiguous())
    ):
        return g  # the built-ins: z itself; others usually a new tensor laid out like z
    name = f"{type(surrogate).__name__}.derivative(x)"
    check_type(name, g, Tensor)
    try:
        return torch.empty_like(z).copy_(g)
    except RuntimeError:
        raise ValueError(
            f"{name} must return a tensor broadcastable to x's shape {tuple(z.shape)}, "
            f"got shape {tuple(g.shape)}"
        ) from None


def _loop(
    u: Tensor,
    v0: Tensor,
    w: Param | None,
    lam: Param | None,
    threshold: Param,
    v_reset: float,
    mode: str,
    *,
    keep_h: bool,
    keep_v: bool,
    native: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The forward recurrence: ``(spikes [T, B, ...], v, h)`` in ``u``'s dtype.

    ``v`` is the membrane after each reset, ``[T, B, ...]``, when ``keep_v``, else only the
    final one ``[B, ...]``; ``h`` the pre-spike membranes ``[T, B, ...]`` when ``keep_h``,
    else None. One call of the compiled loop (:mod:`neuronkit.snn._native`) where it applies
    and ``native``; else three ATen ops per step, written in place into preallocated buffers:
    a membrane nobody keeps lives in one ``[B, ...]`` scratch buffer (cache-resident), and
    without ``keep_h`` the reset overwrites ``h`` in place.
    """
    if torch.compiler.is_compiling():  # functional form for the tracer: no out= buffers
        ss, vs, hs = [], [], []
        v = v0
        for u_t in u.unbind(0):
            h = charge(u_t, v, w, lam)
            s = torch.ge(h, threshold).to(u.dtype)
            v = reset(h, s, threshold, v_reset, mode)
            ss.append(s)
            vs.append(v)
            hs.append(h)
        return (
            torch.stack(ss),
            torch.stack(vs) if keep_v else v,
            torch.stack(hs) if keep_h else None,
        )
    if native:
        compiled = _native.forward(
            u, v0, w, lam, threshold, v_reset, mode, keep_h=keep_h, keep_v=keep_v
        )
        if compiled is not None:
            return compiled
    if w is not None:  # a 0-d weight: same lerp arithmetic, no per-step scalar conversion
        w = operand(w, u)
    spikes = torch.empty_like(u, memory_format=torch.contiguous_format)
    scratch = repeat(torch.empty_like(spikes[0]))
    v_seq = torch.empty_like(spikes) if keep_v else None
    h_seq = v_seq if not keep_h or (mode == "none" and keep_v) else torch.empty_like(spikes)
    h_out = scratch if h_seq is None else h_seq.unbind(0)
    if v_seq is not None:
        v_out = h_out if v_seq is h_seq else v_seq.unbind(0)
    else:  # "none" keeps v = h: no copy into the scratch
        v_out = h_out if mode == "none" else scratch
    v = v0
    for u_t, h, s, v_t in zip(u.unbind(0), h_out, spikes.unbind(0), v_out):
        charge(u_t, v, w, lam, out=h)
        torch.ge(h, threshold, out=s)
        v = reset(h, s, threshold, v_reset, mode, out=v_t)
    return spikes, v if v_seq is None else v_seq, h_seq if keep_h else None


def _through_time(
    g: Tensor, h: Tensor, g_s: Tensor | None, g_v: Tensor | None, threshold: Param,
    v_reset: float, mode: str, detach_reset: bool, decay: Param | None, *, keep_g: bool,
    scratch: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """``dh [T, B, ...]`` from the surrogate derivatives ``g`` (written over unless ``keep_g``)
    with ATen ops: the time-parallel factors, then one op per step in reverse time (what
    ``_native.backward`` does in one call). ``scratch``: a free ``[T, B, ...]`` buffer."""
    coef: Tensor | None = None  # A + B * g; None stands for 1
    if mode == "zero":  # A = 1 - s (a float out=: no bool pass)
        coef = torch.lt(h, threshold, out=torch.empty_like(h) if scratch is None else scratch)
        if not detach_reset:  # B = v_reset - h
            if v_reset != 0.0:
                coef.add_(g, alpha=v_reset)
            coef.addcmul_(h, g, value=-1.0)
    elif mode == "subtract" and not detach_reset:  # B = -threshold
        coef = torch.mul(g, threshold).neg_().add_(1.0)

    # dh_t = drive_t + decay * coef_t * dh_{t+1}, drive = g_s * g + g_v * coef
    if g_s is None:
        dh = torch.zeros_like(h)
    elif keep_g:
        dh = torch.mul(g_s, g)  # g is still needed for the threshold gradient
    else:
        dh = g.mul_(g_s)
    if g_v is not None:
        if coef is None:
            dh.add_(g_v)
        else:
            dh.addcmul_(g_v, coef)
    if coef is None:
        _scan_back(dh, 1.0 if decay is None else decay, native=False)
        return dh
    if isinstance(decay, Tensor):
        coef = coef.mul_(decay)
    rows, coefs = dh.unbind(0), coef.unbind(0)
    value = decay if isinstance(decay, float) else 1.0  # a tensor decay is inside coef
    for t in range(len(rows) - 2, -1, -1):
        rows[t].addcmul_(coefs[t], rows[t + 1], value=value)
    return dh


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        u: Tensor,
        v0: Tensor,
        w: Param | None,
        lam: Param | None,
        threshold: Param,
        v_reset: float,
        mode: str,
        detach_reset: bool,
        surrogate: Surrogate,
        keep_v: bool,
    ) -> tuple[Tensor, Tensor]:
        spikes, v, h = _loop(u, v0, w, lam, threshold, v_reset, mode, keep_h=True, keep_v=keep_v)
        w_grad = isinstance(w, Tensor) and ctx.needs_input_grad[2]
        lam_grad = isinstance(lam, Tensor) and ctx.needs_input_grad[3]
        ctx.save_for_backward(
            h,
            u if w_grad else None,
            v0 if w_grad or lam_grad else None,
            w if isinstance(w, Tensor) else None,
            lam if isinstance(lam, Tensor) else None,
            threshold if isinstance(threshold, Tensor) else None,
        )
        ctx.floats = (
            None if isinstance(w, Tensor) else w,
            None if isinstance(lam, Tensor) else lam,
            None if isinstance(threshold, Tensor) else threshold,
        )
        ctx.params = (v_reset, mode, detach_reset, surrogate)
        ctx.set_materialize_grads(False)
        return spikes, v

    @staticmethod
    def backward(ctx: Any, g_s: Tensor | None, g_v: Tensor | None) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # autograd runs backward with grad mode = create_graph
            raise RuntimeError(
                "the fused LIF/IF backward is once-differentiable: create_graph=True (double "
                "backward, gradient penalties) needs the reference path, fused=False "
                "(lif_multistep(..., fused=False), LIF(..., fused=False))"
            )
        h, u, v0, w_t, lam_t, thr_t = ctx.saved_tensors
        w_f, lam_f, thr_f = ctx.floats
        w = w_t if w_t is not None else w_f
        lam = lam_t if lam_t is not None else lam_f
        threshold = thr_t if thr_t is not None else thr_f
        v_reset, mode, detach_reset, surrogate = ctx.params
        need_u, need_v0, need_w, need_lam, need_thr = ctx.needs_input_grad[:5]
        decay: Param | None = lam if w is None else 1.0 - w  # dh_{t+1} / dv_t; None is 1
        if g_v is not None and g_v.dim() < h.dim():  # only the final membrane was returned
            g_v = torch.cat([torch.zeros_like(h[:-1]), g_v.unsqueeze(0)])

        args = (h, g_s, g_v, threshold, v_reset, mode, detach_reset, decay)
        # dL/du = w * dh in the same pass when nothing else reads dh
        scaled = w is not None and need_u and not (need_v0 or need_w or need_lam or need_thr)
        dh = None
        if not need_thr:  # the surrogate derivative itself is not needed after
            dh = _native.backward(surrogate, *args, scale=w if scaled else 1.0)
        if dh is None:
            scaled = False
            z = h - threshold
            g = _derivative(surrogate, z)
            dh = _native.backward(g, *args, keep_g=need_thr)
            if dh is None:
                dh = _through_time(g, *args, keep_g=need_thr, scratch=z if g is not z else None)

        grad_v0 = None
        if need_v0:
            grad_v0 = dh[0].clone() if decay is None else dh[0] * decay
        grad_w = grad_lam = None
        if need_w or need_lam:
            grad_w, grad_lam = _leak_grads(
                dh, h, threshold, v_reset, mode, v0, u, w_t, lam_t, need_w, need_lam
            )
        grad_thr = None
        if need_thr:  # -g * (dL/ds + dv * B), plus -dv * s for "subtract"
            dv = _membrane_grads(dh, g_v, decay)
            dthr = torch.zeros_like(h) if g_s is None else g_s.clone()
            if not detach_reset and mode == "zero":
                dthr.addcmul_(dv, v_reset - h)
            elif not detach_reset and mode == "subtract":
                dthr.addcmul_(dv, thr_t, value=-1.0)
            dthr.mul_(g).neg_()
            if mode == "subtract":
                dthr.sub_(dv.mul_(torch.ge(h, thr_t, out=torch.empty_like(h))))  # dv is spent
            grad_thr = _reduce(dthr, thr_t)
        grad_u = None
        if need_u:  # dh/du = w for the lerp, 1 otherwise; dh is not needed any more
            grad_u = dh if w is None or scaled else dh.mul_(w)
        return grad_u, grad_v0, grad_w, grad_lam, grad_thr, None, None, None, None, None


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
    keep_v: bool = True,
) -> tuple[Tensor, Tensor]:
    """Fused LIF (IF when ``tau is None``) over time; prefer ``lif_multistep``, which validates
    every argument (here only ``x`` and ``v0`` are checked to be tensors).

    Args:
        x: input ``[T, B, ...]``.
        v0: initial membrane ``[B, ...]``, in ``x``'s dtype.
        tau: membrane time constant in steps (``tau / dt``), float or tensor broadcastable
            to ``[B, ...]``; ``None`` for IF.
        threshold, v_reset, reset_mode, detach_reset, decay_input, surrogate: as in
            :func:`neuronkit.snn.lif_step` (a float ``threshold`` runs fastest as a 0-d
            tensor of ``x``'s dtype; ``lif_multistep`` passes it so).
        keep_v: return the membrane after every step; False returns only the final one
            ``[B, ...]`` and never writes the ``[T, B, ...]`` trace (what ``module(x)`` needs).

    Returns:
        ``(spikes, v)``: ``spikes [T, B, ...]`` and ``v``, the membrane after reset
        (``[T, B, ...]``, or ``[B, ...]`` without ``keep_v``). The autograd Function runs
        only when a gradient is needed; otherwise the plain loop does.
    """
    check_type("x", x, Tensor)
    check_type("v0", v0, Tensor)
    if under_torch_func():  # torch.func: wrapped tensors take no out= and need autograd's rules
        return _reference(x, v0, tau, threshold, v_reset, reset_mode, detach_reset,
                          decay_input, surrogate, keep_v)  # fmt: skip
    u = drive(x, tau, v_reset, decay_input)
    w, lam = leak(tau, decay_input)
    if not torch.is_grad_enabled() or not any(
        isinstance(t, Tensor) and t.requires_grad for t in (u, v0, w, lam, threshold)
    ):
        spikes, v, _ = _loop(
            u, v0, w, lam, threshold, v_reset, reset_mode, keep_h=False, keep_v=keep_v
        )
        return spikes, v
    if surrogate.needs_potential:  # per-step statistics of v: the reference recurrence
        return _reference(x, v0, tau, threshold, v_reset, reset_mode, detach_reset,
                          decay_input, surrogate, keep_v)  # fmt: skip
    out: tuple[Tensor, Tensor] = _FusedLIF.apply(
        u, v0, w, lam, threshold, v_reset, reset_mode, detach_reset, surrogate, keep_v
    )
    return out


class _FusedALIF(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, u: Tensor, v0: Tensor, a0: Tensor, w: Param | None, lam: Param | None,
        tau_adapt: Param, beta: Param, threshold: Param, v_reset: float, mode: str,
        detach_reset: bool, surrogate: Surrogate,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        spikes, vs, a, h, theta = _alif_loop(
            u, v0, a0, w, lam, tau_adapt, beta, threshold, v_reset, mode, surrogate, keep=True
        )
        need_w, need_lam, need_tau_a, need_beta, need_thr = ctx.needs_input_grad[3:8]
        params = (w, lam, tau_adapt, beta, threshold)
        ctx.save_for_backward(
            h,
            theta,
            u if need_w else None,  # the inputs that the parameters' gradients read
            v0 if need_w or need_lam else None,
            a0 if need_tau_a or need_beta or need_thr else None,
            *(p if isinstance(p, Tensor) else None for p in params),
        )
        ctx.floats = tuple(None if isinstance(p, Tensor) else p for p in params)
        ctx.params = (v_reset, mode, detach_reset, surrogate)
        ctx.shapes = (v0.shape, a0.shape)
        ctx.set_materialize_grads(False)
        return spikes, vs, a

    @staticmethod
    def backward(
        ctx: Any, g_s: Tensor | None, g_v: Tensor | None, g_a: Tensor | None
    ) -> tuple[Tensor | None, ...]:  # fmt: skip
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the fused ALIF backward is once-differentiable: create_graph=True (double "
                "backward) needs the reference loop, fused=False (alif_multistep(..., "
                "fused=False), ALIF(..., fused=False))"
            )
        h, theta, u, v0, a0, *tensors = ctx.saved_tensors
        params = (f if t is None else t for t, f in zip(tensors, ctx.floats))
        w, lam, tau_adapt, beta, threshold = params
        v_reset, mode, detach_reset, surrogate = ctx.params
        need_u, need_v0, need_a0, *need_params = ctx.needs_input_grad[:8]
        decay = lam if w is None else 1.0 - w  # dh_{t+1} / dv_t
        dv = torch.zeros_like(h[0])
        da = torch.zeros_like(h[0]) if g_a is None else g_a.expand_as(h[0]).to(h.dtype).clone()
        args = (surrogate, h, theta, g_s, g_v, dv, da, mode, detach_reset, v_reset, tau_adapt)
        # dL/du = w * dh in the same pass when no parameter's gradient reads dh
        scale = None if any(need_params) else w
        dh = _alif_through_time(*args, beta, decay, scale=scale)
        grads: list[Tensor | None] = [None] * 5
        if any(need_params):
            grads = _alif_parameter_grads(
                dh, h, theta, u, v0, a0, g_v, g_a, need_params, w, lam, decay, tau_adapt, beta,
                threshold, v_reset, mode,
            )  # fmt: skip
        grad_u = None
        if need_u:  # dh/du = w for the lerp, 1 otherwise
            grad_u = dh if w is None or scale is not None else dh.mul_(w)
        grad_v0 = dv.sum_to_size(ctx.shapes[0]) if need_v0 else None
        grad_a0 = da.sum_to_size(ctx.shapes[1]) if need_a0 else None
        return grad_u, grad_v0, grad_a0, *grads, None, None, None, None


def _alif_parameter_grads(
    dh: Tensor, h: Tensor, theta: Tensor, u: Tensor | None, v0: Tensor | None,
    a0: Tensor | None, g_v: Tensor | None, g_a: Tensor | None, need: list[bool], w: Param | None,
    lam: Param | None, decay: Param, tau_adapt: Param, beta: Param, threshold: Param,
    v_reset: float, mode: str,
) -> list[Tensor | None]:  # fmt: skip
    """The gradients of ALIF's ``w``, ``lam``, ``tau_adapt``, ``beta`` and ``threshold`` (where
    ``need`` says so; tensors), from ``dh = dL/dh [T, B, ...]``: the leak's as for LIF, the
    others from the sums over time of :func:`_adapt_sums`. With ``theta_t = beta a_{t-1} +
    threshold`` and ``a_t = a_{t-1} + (s_t - a_{t-1}) k`` (``k = 1 / tau_adapt``):
    ``dthreshold = sum dtheta``, ``dbeta = sum dtheta a_{t-1}``, and ``dk = sum_t D_t (s_t -
    a_{t-1})`` for the trace's gradient ``D_t = dL/da_t`` (``D_{t-1} = (1 - k) D_t + beta
    dtheta_t``, ``D_{T-1} = dL/da_T``), which reordered is ``beta sum_t dtheta_t e_{t-1} +
    dL/da_T e_{T-1}`` with ``e_t = (1 - k) e_{t-1} + (s_t - a_{t-1})`` (``e_{-1} = 0``): one
    pass forward in time; ``dtau_adapt = -dk / tau_adapt^2``."""
    need_w, need_lam, need_tau_a, need_beta, need_thr = need
    grads: list[Tensor | None] = [None] * 5
    if need_w or need_lam:  # the reset subtracts the adapted threshold theta
        assert v0 is not None  # saved
        grads[0], grads[1] = _leak_grads(
            dh, h, theta, v_reset, mode, v0, u, w, lam, need_w, need_lam
        )
    if not (need_tau_a or need_beta or need_thr):
        return grads
    assert a0 is not None  # saved
    over_theta, over_a, over_e, e_last = _adapt_sums(dh, h, theta, g_v, a0, mode, tau_adapt, decay)
    if need_thr:
        assert isinstance(threshold, Tensor)
        grads[4] = _reduce(over_theta, threshold)
    if need_beta:
        assert isinstance(beta, Tensor)
        grads[3] = _reduce(over_a, beta)
    if need_tau_a:
        assert isinstance(tau_adapt, Tensor)
        dk = over_e.mul_(beta) if g_a is None else over_e.mul_(beta).addcmul_(g_a, e_last)
        grads[2] = _reduce(dk, tau_adapt).div_(tau_adapt**2).neg_()
    return grads


def _adapt_sums(
    dh: Tensor, h: Tensor, theta: Tensor, g_v: Tensor | None, a0: Tensor, mode: str,
    tau_adapt: Param, decay: Param, *, native: bool = True,
) -> Tensor:  # fmt: skip
    """``[sum_t dtheta_t, sum_t dtheta_t a_{t-1}, sum_t dtheta_t e_{t-1}, e_{T-1}]``, float64
    ``[4, B, ...]`` (:func:`_alif_parameter_grads`), from ``dh = dL/dh``, the saved ``h`` and
    ``theta [T, B, ...]``, the loss's ``g_v`` and the initial trace ``a0``: ``dtheta_t = (g_v_t
    + dh_{t+1} decay) (1 - s_t) - dh_t`` (without ``(1 - s_t)`` for "none"), each product
    rounded in ``h``'s dtype and added in time order; one compiled pass where it applies, else
    ATen ops and two linear recurrences (the trace and ``e``, as the synaptic current's
    filter, ``(x - x / tau_adapt) + input``)."""
    if native:
        sums = _native.alif_adapt_sums(dh, h, theta, g_v, a0, mode, tau_adapt, decay)
        if sums is not None:
            return sums
    s = torch.ge(h, theta, out=torch.empty_like(h))  # the forward's spikes (float out=)
    dv = torch.zeros_like(h) if g_v is None else g_v.to(h.dtype, copy=True)
    dv[:-1].add_(dh[1:] * decay)
    dtheta = (dv if mode == "none" else dv.mul_(1.0 - s)).sub_(dh)
    start = a0.expand_as(h[0]).to(h.dtype)
    a_prev = _before(start, _current_loop(s / tau_adapt, start, tau_adapt, native=native))
    zero = torch.zeros_like(h[0])
    e = _current_loop(s.sub_(a_prev), zero, tau_adapt, native=native)
    terms = torch.stack([dtheta, dtheta * a_prev, dtheta * _before(zero, e)], 1)
    return torch.cat([_time_sum(terms), e[-1].double().unsqueeze(0)])


def _alif_through_time(
    g: Tensor | Surrogate, h: Tensor, theta: Tensor, g_s: Tensor | None, g_v: Tensor | None,
    dv: Tensor, da: Tensor, mode: str, detach_reset: bool, v_reset: float, tau_adapt: Param,
    beta: Param, decay: Param, *, scale: Param | None, native: bool = True,
) -> Tensor:  # fmt: skip
    """ALIF's backward through time: ``dL/dh * scale [T, B, ...]``, from the surrogate
    derivatives ``g [T, B, ...]`` (written over) or the surrogate itself (its derivative at
    ``h - theta``; FastSigmoid's and ATan's are computed in the compiled loop); ``dv`` and
    ``da [B, ...]`` the gradients of the membrane and the adaptation trace, in (zero and
    ``dL/da_T``) and out (of ``v_0`` and ``a_0``), in place. One compiled call where it applies
    and ``native``, else ATen ops.

    With the reset's partials ``A = dR/dh``, ``B = dR/ds``, ``C = dR/dtheta`` and ``k = 1 /
    tau_adapt`` (``a_t = a_{t-1} + (s_t - a_{t-1}) k``), per step in reverse time::

        dv += dL/dv_t;  dz = dL/d(h - theta) = g (dL/ds + B dv + k da) = P + Q da + R dv
        dh = dz + A dv;  dtheta = C dv - dz;  da <- (1 - k) da + beta dtheta;  dv = decay dh

    ``P = g dL/ds``, ``Q = g k``, ``R = g B`` (and ``A``, ``C``) are time-parallel.
    """
    keep_a = 1.0 - 1.0 / tau_adapt
    args = (h, theta, g_s, g_v, dv, da, mode, detach_reset, v_reset, tau_adapt, keep_a, beta)
    factors = (decay, 1.0 if scale is None else scale)
    if native and (d := _native.alif_backward(g, *args, *factors)) is not None:
        return d
    if not isinstance(g, Tensor):  # not a built-in, or no compiled loop: ATen's derivative
        g = _derivative(g, h - theta)  # written over h - theta
        if native and (d := _native.alif_backward(g, *args, *factors)) is not None:
            return d
    d = g
    s = torch.ge(h, theta, out=torch.empty_like(h))  # the forward's spikes (float out=)
    q = d / tau_adapt
    r = None
    if not detach_reset and mode == "subtract":  # B = -theta
        r = (d * theta).neg_()
    elif not detach_reset and mode == "zero":  # B = v_reset - h
        r = (h - v_reset).mul_(d).neg_()
    a = 1.0 - s if mode == "zero" else None  # else 1
    c = s.neg_() if mode == "subtract" else None  # else 0
    if g_s is None:
        d.zero_()  # P = 0; d becomes dh row by row (each P row is read once, first)
    else:
        d.mul_(g_s)
    v_grad, a_grad = dv, da
    none = repeat(None)
    rows = zip(*(none if t is None else reversed(t.unbind(0)) for t in (d, q, r, a, c, g_v)))
    for dz, q_t, r_t, a_t, c_t, g_v_t in rows:
        if g_v_t is not None:
            v_grad = v_grad + g_v_t
        dz.addcmul_(q_t, a_grad)
        if r_t is not None:
            dz.addcmul_(r_t, v_grad)
        dtheta = dz.neg() if c_t is None else torch.addcmul(dz.neg(), c_t, v_grad)
        if a_t is None:
            dz.add_(v_grad)
        else:
            dz.addcmul_(a_t, v_grad)
        a_grad = (a_grad * keep_a).add_(dtheta * beta)
        v_grad = dz * decay
    dv.copy_(v_grad)
    da.copy_(a_grad)
    if scale is not None:
        d.mul_(scale)
    return d


def _alif_loop(
    u: Tensor, v0: Tensor, a0: Tensor, w: Param | None, lam: Param | None, tau_adapt: Param,
    beta: Param, threshold: Param, v_reset: float, mode: str, surrogate: Surrogate, *,
    keep: bool, native: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """ALIF's forward without a graph, with the ops (and bits) of ``_core.alif_core``:
    ``(spikes, v [T, B, ...], a_T, h, theta)``; ``h`` and ``theta [T, B, ...]`` if ``keep``.
    One compiled call where it applies and ``native``; else ATen ops per step into
    preallocated buffers, where ``h >= theta`` is the spike, as ``h - theta >= 0`` is for
    finite values (a surrogate with ``needs_potential`` fires itself, for its statistics).
    """
    begin(surrogate)
    if native and not surrogate.needs_potential:
        compiled = _native.alif_forward(
            u, v0, a0, w, lam, tau_adapt, beta, threshold, v_reset, mode, keep=keep
        )
        if compiled is not None:
            return compiled
    spikes = torch.empty_like(u, memory_format=torch.contiguous_format)
    vs = torch.empty_like(spikes)
    hs = torch.empty_like(spikes) if keep else None
    thetas = torch.empty_like(spikes) if keep else None
    v, a = v0, a0
    none = repeat(None)
    rows = zip(*(none if r is None else r.unbind(0) for r in (u, spikes, vs, hs, thetas)))
    with torch.no_grad():
        for u_t, s, v_t, h_t, theta_t in rows:
            h = charge(u_t, v, w, lam, out=h_t)
            theta = torch.add(beta * a, threshold, out=theta_t)
            if surrogate.needs_potential:
                s.copy_(fire(surrogate, h, theta))
            else:
                torch.ge(h, theta, out=s)
            v = reset(h, s, theta, v_reset, mode, out=v_t)
            a = a + (s - a) / tau_adapt
    return spikes, vs, a, hs, thetas


def fused_alif(
    x: Tensor, v0: Tensor, a0: Tensor, *, tau: Param, tau_adapt: Param, beta: Param,
    threshold: Param, v_reset: float, reset_mode: str, detach_reset: bool, decay_input: bool,
    surrogate: Surrogate,
) -> tuple[Tensor, Tensor, Tensor] | None:  # fmt: skip
    """Fused ALIF over time: ``(spikes, v [T, B, ...], a_T [B, ...])`` with the bits of the
    step loop (:func:`neuronkit.snn.alif_multistep` with ``fused=False``), and a hand-written
    backward through time for ``x``, ``v0``, ``a0`` and the parameters (no graph per step;
    :func:`_alif_parameter_grads`). ``tau`` and ``tau_adapt`` in steps. None where it does not
    apply, and the caller runs the reference loop: a surrogate that ``needs_potential``.
    Prefer ``alif_multistep``, which validates every argument (here only the tensors are
    checked).
    """
    for name, t in (("x", x), ("v0", v0), ("a0", a0)):
        check_type(name, t, Tensor)
    u = drive(x, tau, v_reset, decay_input)
    w, lam = (None if p is None else operand(p, u) for p in leak(tau, decay_input))
    # 0-d tensors of x's dtype: the same bits as Python scalars, without a conversion per op
    tau_adapt, beta, threshold = (operand(p, u) for p in (tau_adapt, beta, threshold))
    params = (w, lam, tau_adapt, beta, threshold)
    tensors = [t for t in (u, v0, a0, *params) if isinstance(t, Tensor)]
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        return _alif_loop(u, v0, a0, *params, v_reset, reset_mode, surrogate, keep=False)[:3]
    if surrogate.needs_potential:  # per-step statistics of v: the reference recurrence
        return None
    out: tuple[Tensor, Tensor, Tensor] = _FusedALIF.apply(
        u, v0, a0, *params, v_reset, reset_mode, detach_reset, surrogate
    )
    return out


def _current_loop(x: Tensor, i0: Tensor, tau: Param, *, native: bool = True) -> Tensor:
    """The synaptic currents ``[T, B, ...]``: one compiled call where it applies and
    ``native``, else three in-place ATen ops per step, ``(i - i / tau) + x_t``."""
    if native and (currents := _native.current_forward(x, i0, tau)) is not None:
        return currents
    currents = torch.empty_like(x, memory_format=torch.contiguous_format)
    scratch = torch.empty_like(currents[0])
    i = i0.expand_as(scratch)  # i0 broadcastable to [B, ...] (out= needs the full shape)
    for x_t, i_t in zip(x.unbind(0), currents.unbind(0)):
        torch.sub(i, torch.div(i, tau, out=scratch), out=i_t).add_(x_t)
        i = i_t
    return currents


def _scan_back(d: Tensor, lam: Param, *, native: bool = True) -> None:
    """``d[t] += lam * d[t + 1]`` for ``t = T-2 .. 0``, in place (``lam`` a float or a tensor
    broadcastable to ``d[0]``): one compiled call where it applies and ``native``, else one
    ATen op per step."""
    if native and _native.scan_back(d, lam):
        return
    rows = d.unbind(0)
    for t in range(len(rows) - 2, -1, -1):
        if isinstance(lam, Tensor):
            rows[t].addcmul_(lam, rows[t + 1])
        else:
            rows[t].add_(rows[t + 1], alpha=lam)


class _SynapticCurrent(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, i0: Tensor, tau: Param) -> Tensor:
        currents = _current_loop(x, i0, tau)
        tau_grad = isinstance(tau, Tensor) and ctx.needs_input_grad[2]
        ctx.save_for_backward(
            currents if tau_grad else None,
            i0 if tau_grad else None,
            tau if isinstance(tau, Tensor) else None,
        )
        ctx.tau = None if isinstance(tau, Tensor) else tau
        ctx.i0_shape = i0.shape
        return currents

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the fused synaptic-current backward is once-differentiable: create_graph=True "
                "needs the reference loop, fused=False (cuba_lif_multistep(..., fused=False))"
            )
        currents, i0, tau_t = ctx.saved_tensors
        tau = tau_t if tau_t is not None else ctx.tau
        lam = 1.0 - 1.0 / tau  # d i_t / d i_{t-1}
        d = grad.clone(memory_format=torch.contiguous_format)  # dL/di_t, all paths
        _scan_back(d, lam)
        need_x, need_i0, need_tau = ctx.needs_input_grad
        grad_i0 = (d[0] * lam).sum_to_size(ctx.i0_shape) if need_i0 else None
        grad_tau = None
        if need_tau:  # d i_t / d tau = i_{t-1} / tau^2
            before = torch.cat([i0.expand_as(currents[0]).unsqueeze(0), currents[:-1]])
            grad_tau = _reduce(d * before / tau_t.square(), tau_t)
        return d if need_x else None, grad_i0, grad_tau


def fused_current(x: Tensor, i0: Tensor, tau: Param) -> Tensor:
    """The synaptic current of CuBa-LIF over time, ``i_t = (i_{t-1} - i_{t-1} / tau) + x_t``:
    ``[T, B, ...]`` for ``x: [T, B, ...]`` from ``i0`` (broadcastable to ``[B, ...]``), with
    ``tau`` (in steps) a float or a tensor broadcastable to ``[B, ...]``.

    The current is a linear filter of the input whatever the spikes, so it runs as its own
    loop with no graph and a hand-written backward (on the CPU with a scalar ``tau``, one
    compiled call each; else in-place ATen ops per step); the same bits as the step-by-step
    ops, and once-differentiable.
    """
    check_type("x", x, Tensor)
    check_type("i0", i0, Tensor)
    out: Tensor = _SynapticCurrent.apply(x, i0, tau)
    return out


def _reference(
    x: Tensor, v0: Tensor, tau: Param | None, threshold: Param, v_reset: float, mode: str,
    detach_reset: bool, decay_input: bool, surrogate: Surrogate, keep_v: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The step-by-step recurrence under autograd (``lif_core`` per step), for surrogates that
    need the membrane potential and under ``torch.func`` transforms; returns what
    :func:`fused_lif` returns."""
    begin(surrogate)
    spikes, vs = [], []
    v = v0
    for x_t in x.unbind(0):
        s, v, _ = lif_core(x_t, v, tau, threshold, v_reset, mode, detach_reset, decay_input,
                           surrogate)  # fmt: skip
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs) if keep_v else v
