"""Spiking neuron models: pure step functions, multi-step functions and ``nn.Module`` shells.

Discretisation (one step of length ``dt``; every time constant enters as ``tau_s = tau / dt``,
so with the default ``dt = 1`` time constants are in steps). For a step input ``x_t``:

* charge, pre-spike membrane ``h_t`` (one op each, exactly as written; every path, step by
  step or fused over time, evaluates these same ops, so they agree bit for bit):

  - IF: ``h = x + v``
  - LIF, ``decay_input=True`` (SpikingJelly default; forward Euler of
    ``tau dv/dt = -(v - v_reset) + x``): ``h = v + (x + v_reset - v) / tau_s``, evaluated as
    ``torch.lerp(v, x + v_reset, 1 / tau_s)`` (``x + v_reset`` is ``x`` when ``v_reset = 0``)
  - LIF, ``decay_input=False`` (snnTorch style, ``x`` is a jump):
    ``h = (x + v_reset / tau_s) + lam * v`` with ``lam = 1 - 1 / tau_s``, i.e. snnTorch's
    ``h = beta * v + x`` with ``beta = 1 - dt / tau`` when ``v_reset = 0``

* fire: ``s = H(h - threshold)`` with ``H(z) = 1[z >= 0]`` (evaluated as ``h >= threshold``,
  the same bits) and the surrogate gradient;
* reset (``s`` is detached here when ``detach_reset``):

  - ``"subtract"`` (soft): ``v = h - s * threshold``
  - ``"zero"`` (hard, to the value ``v_reset``, 0 by default): ``v = h - s * h + s * v_reset``,
    i.e. exactly ``v_reset`` where ``s = 1`` and ``h`` where ``s = 0``
  - ``"none"``: ``v = h``

* ALIF adds an adaptation trace ``a`` (Bellec et al. 2018): ``theta_t = threshold + beta *
  a_{t-1}`` replaces ``threshold`` in fire and reset, then ``a_t = a_{t-1} + (s_t - a_{t-1}) /
  tau_adapt_s`` (``s`` never detached here);
* CuBa-LIF first updates a synaptic current, ``i_t = i_{t-1} - i_{t-1} / tau_syn_s + x_t``, and
  charges the LIF membrane with ``i_t`` in place of ``x_t``.

``v_reset`` is also the resting potential the leak pulls towards; the initial state is
``v = v_reset`` (and ``a = i = 0``). Time constants must satisfy ``tau >= dt``.

Functional API: ``*_step(x: [B, ...], state) -> (spikes, state)`` and
``*_multistep(x: [T, B, ...], state) -> NeuronOutput(spikes [T, B, ...], v [T, B, ...],
state)``; ``state=None`` starts at rest (a state made under ``torch.inference_mode``, a
warm-up, may continue a run with autograd: it is copied). Modules wrap them: ``module(x)``
returns the spikes of a multi-step run from rest, ``module.run(x, state)`` the full
:class:`NeuronOutput`, and ``module.step(x_t, state)`` one step. Modules hold parameters,
never state.

Under ``torch.autocast`` a float16 / bfloat16 input is integrated in float32 (membrane and
state float32, a half-precision state passed in is upcast) and the spikes come back in the
input's dtype, exactly; small increments would otherwise round away (in bfloat16 a membrane
near 1 ignores any input below 2**-8).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from neuronkit.common import check_number, check_type, under_torch_func

from . import _core
from ._core import Param, alif_core, cuba_core, lif_core
from .multistep import fused_alif, fused_current, fused_lif
from .surrogate import ATan, Surrogate, get_surrogate

__all__ = [
    "ALIF",
    "IF",
    "LIF",
    "PLIF",
    "ALIFState",
    "CuBaLIF",
    "CuBaLIFState",
    "IFState",
    "LIFState",
    "NeuronOutput",
    "alif_multistep",
    "alif_step",
    "cuba_lif_multistep",
    "cuba_lif_step",
    "if_multistep",
    "if_step",
    "lif_multistep",
    "lif_step",
]

S = TypeVar("S")
_ATAN = ATan()


class IFState(NamedTuple):
    """IF state: membrane ``v: [B, ...]``."""

    v: Tensor


class LIFState(NamedTuple):
    """LIF/PLIF state: membrane ``v: [B, ...]``."""

    v: Tensor


class ALIFState(NamedTuple):
    """ALIF state: membrane ``v`` and adaptation trace ``a``, both ``[B, ...]``."""

    v: Tensor
    a: Tensor


class CuBaLIFState(NamedTuple):
    """CuBa-LIF state: membrane ``v`` and synaptic current ``i``, both ``[B, ...]``."""

    v: Tensor
    i: Tensor


class NeuronOutput(NamedTuple, Generic[S]):
    """A multi-step run: ``spikes`` and post-reset membrane ``v`` (``[T, B, ...]``) and the
    final ``state`` (whose ``v`` is ``v[-1]``)."""

    spikes: Tensor
    v: Tensor
    state: S


# ---- shared plumbing -------------------------------------------------------------------------


def _start(
    x: Any,
    state: Any,
    state_type: Any,
    init: dict[str, float],
    params: dict[str, Any],
    *,
    multistep: bool,
    validate: bool,
) -> tuple[Tensor, ...]:
    """Validate ``x``/``state``/tensor ``params``; return the initial state's fields (one made
    under ``torch.inference_mode`` copied for a run with autograd, :func:`_core.usable_state`).

    With ``validate``, ``x`` and a given state must be finite: one reduction each, one host
    read for all (:func:`_core.check_finite_run`).
    """
    _core.check_input(x, multistep=multistep)
    shape = x.shape[1:] if multistep else x.shape
    for name, value in params.items():
        _core.check_broadcast(name, value, shape)
    if state is None:  # full tensors: a broadcast 0-d start can round differently in add(alpha=)
        if validate:
            _core.check_finite_input(x)
        return tuple(
            torch.full(shape, init[f], dtype=x.dtype, device=x.device) for f in state_type._fields
        )
    if not isinstance(state, state_type):
        raise TypeError(
            f"state must be a {state_type.__name__} or None, got {type(state).__name__}"
        )
    fields = {f"state.{field}": value for field, value in zip(state_type._fields, state)}
    for name, value in fields.items():
        _core.check_state(name, value, x, shape)
    if validate:
        _core.check_finite_run(x, fields)
    return tuple(_core.usable_state(value) for value in state)


@functools.lru_cache(maxsize=256, typed=True)
def _check_lif_floats(*args: Any) -> None:
    """:func:`_check_lif` remembered for plain-number arguments (only passing ones are kept)."""
    _check_lif(*args)


def _check_lif(
    tau: Any,
    threshold: Any,
    v_reset: Any,
    reset: Any,
    detach_reset: Any,
    decay_input: Any,
    dt: Any,
    tau_name: str = "tau",
) -> None:
    _core.check_dt(dt)
    _core.check_tau(tau_name, tau, dt)
    _core.check_common(threshold, v_reset, reset, detach_reset)
    check_type("decay_input", decay_input, bool)


def _check_flags(fused: Any, validate: Any) -> None:
    check_type("fused", fused, bool)
    check_type("validate", validate, bool)


def _steps(tau: Param, dt: float) -> Param:
    """``tau`` in steps of ``dt`` (a tensor ``tau`` itself at ``dt = 1``: no op)."""
    return tau if dt == 1.0 and isinstance(tau, Tensor) else tau / dt


def _like(p: Param, x: Tensor) -> Param:
    """A tensor parameter in ``x``'s dtype and on its device (``torch.lerp`` takes no mixed
    dtypes or devices, and the outputs keep ``x``'s dtype)."""
    return p.to(device=x.device, dtype=x.dtype) if isinstance(p, Tensor) else p


def _scan(core: Any, x: Tensor, state: tuple[Tensor, ...], *params: Any) -> Any:
    """The reference loop: ``core(x_t, *state, *params) -> (s, *state)`` under autograd.

    Returns ``(spikes [T, B, ...], v [T, B, ...], final state tuple)``; ``v`` is ``state[0]``.
    """
    _core.begin(params[-1])  # the surrogate is always the last parameter
    spikes, vs = [], []
    for t in range(x.shape[0]):
        s, *new = core(x[t], *state, *params)
        state = tuple(new)
        spikes.append(s)
        vs.append(state[0])
    return torch.stack(spikes), torch.stack(vs), state


def _lif_state_step(x: Tensor, v: Tensor, *params: Any) -> tuple[Tensor, Tensor]:
    s, v, _ = lif_core(x, v, *params)
    return s, v


def _operands(x: Tensor, tau: Param | None, threshold: Param) -> tuple[Param | None, Param]:
    """``tau`` and ``threshold`` as every LIF/IF path takes them: tensors in ``x``'s dtype, a
    float threshold as a 0-d tensor (float32/64), a float ``tau`` left as a float."""
    if isinstance(tau, Tensor):
        tau = tau.to(device=x.device, dtype=x.dtype)
    return tau, _core.operand(threshold, x)


@_core.integrates_in_float32(spikes=True)
def _lif_run(
    x: Tensor,
    state: Any,
    state_type: Any,
    tau: Param | None,
    threshold: Param,
    v_reset: float,
    reset: str,
    detach_reset: bool,
    decay_input: bool,
    surrogate: Surrogate,
    *,
    fused: bool,
    validate: bool,
    keep_v: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """LIF/IF over ``x: [T, B, ...]`` from ``state`` (parameters already checked).

    The fused path (with or without gradient), else the reference loop. Returns ``(spikes,
    v, v_last)``: ``v`` is ``[T, B, ...]``, or with ``keep_v=False`` (fused only) just the
    final membrane, which ``module(x)`` discards anyway.
    """
    params = {"threshold": threshold} if tau is None else {"tau": tau, "threshold": threshold}
    fields = {"v": v_reset}
    (v0,) = _start(
        x, state, state_type, fields, params, multistep=True, validate=validate and not fused
    )
    tau, threshold = _operands(x, tau, threshold)
    if not fused:
        spikes, v, _ = _scan(
            _lif_state_step,
            x,
            (v0,),
            tau,
            threshold,
            v_reset,
            reset,
            detach_reset,
            decay_input,
            surrogate,
        )
        return spikes, v, v[-1]
    spikes, v = fused_lif(
        x,
        v0,
        tau=tau,
        threshold=threshold,
        v_reset=v_reset,
        reset_mode=reset,
        detach_reset=detach_reset,
        decay_input=decay_input,
        surrogate=surrogate,
        keep_v=keep_v,
    )
    v_last = v[-1] if keep_v else v
    if validate:  # the final membrane witnesses x's (and state.v's) finiteness: one [B, ...] sum
        _core.check_finite_input(x, v_last, None if state is None else {"state.v": v0})
    return spikes, v, v_last


# ---- IF ----------------------------------------------------------------------------------------


@_core.integrates_in_float32(spikes=True)
def if_step(
    x: Tensor,
    state: IFState | None = None,
    *,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
) -> tuple[Tensor, IFState]:
    """One integrate-and-fire step. ``x: [B, ...]`` -> ``(spikes [B, ...], IFState)``.

    Args:
        threshold: firing threshold (> 0; float or tensor broadcastable to ``[B, ...]``).
        v_reset: reset value for ``reset="zero"`` and initial membrane.
        reset: ``"subtract"``, ``"zero"`` (to ``v_reset``) or ``"none"``.
        detach_reset: cut the gradient through the reset's use of the spike.
        surrogate: a :class:`Surrogate` or its name.
        validate: check parameters (a tensor's values too, one reduction each) and the
            finiteness of ``x`` and ``state`` (shapes and dtypes are always checked).
    """
    check_type("validate", validate, bool)
    if validate:
        _core.check_common(threshold, v_reset, reset, detach_reset)
    sg = get_surrogate(surrogate)
    (v,) = _start(
        x,
        state,
        IFState,
        {"v": v_reset},
        {"threshold": threshold},
        multistep=False,
        validate=validate,
    )
    _, thr = _operands(x, None, threshold)
    s, v, _ = lif_core(x, v, None, thr, v_reset, reset, detach_reset, False, sg)
    return s, IFState(v)


def if_multistep(
    x: Tensor,
    state: IFState | None = None,
    *,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    surrogate: Surrogate | str = _ATAN,
    fused: bool = True,
    validate: bool = True,
) -> NeuronOutput[IFState]:
    """IF over ``x: [T, B, ...]``; arguments as :func:`if_step`.

    ``fused=True`` runs the fused loop (:mod:`neuronkit.snn.multistep`: three in-place ops
    per step into preallocated outputs, a hand-written backward when a gradient is needed,
    finiteness checked once on the final membrane); ``fused=False`` loops :func:`if_step`'s
    update under autograd. Both give the same bits forward.
    """
    _check_flags(fused, validate)
    spikes, v, last = _if(
        x, state, threshold=threshold, v_reset=v_reset, reset=reset, detach_reset=detach_reset,
        surrogate=surrogate, fused=fused, validate=validate,
    )  # fmt: skip
    return NeuronOutput(spikes, v, IFState(last))


def _if(
    x: Tensor,
    state: IFState | None,
    *,
    threshold: Param,
    v_reset: float,
    reset: str,
    detach_reset: bool,
    surrogate: Surrogate | str,
    fused: bool,
    validate: bool,
    keep_v: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`if_multistep` as ``(spikes, v, v_last)``; see :func:`_lif_run` for ``keep_v``."""
    if validate:
        _core.check_common(threshold, v_reset, reset, detach_reset)
    return _lif_run(
        x, state, IFState, None, threshold, v_reset, reset, detach_reset, False,
        get_surrogate(surrogate), fused=fused, validate=validate, keep_v=keep_v,
    )  # fmt: skip


# ---- LIF ---------------------------------------------------------------------------------------


@_core.integrates_in_float32(spikes=True)
def lif_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    tau: Param = 2.0,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
) -> tuple[Tensor, LIFState]:
    """One leaky integrate-and-fire step. ``x: [B, ...]`` -> ``(spikes [B, ...], LIFState)``.

    Args:
        tau: membrane time constant (>= dt; float or tensor broadcastable to ``[B, ...]``).
        threshold: firing threshold (> 0; float or tensor).
        v_reset: resting potential and reset value for ``reset="zero"``.
        reset: ``"subtract"``, ``"zero"`` (to ``v_reset``) or ``"none"``.
        detach_reset: cut the gradient through the reset's use of the spike.
        decay_input: scale the input by ``dt / tau`` (True) or add it as a jump (False).
        dt: step length, in the units of ``tau``.
        surrogate: a :class:`Surrogate` or its name.
        validate: check parameters (a tensor's values too, one reduction each) and the
            finiteness of ``x`` and ``state`` (shapes and dtypes are always checked).
    """
    check_type("validate", validate, bool)
    if validate:
        _check_lif(tau, threshold, v_reset, reset, detach_reset, decay_input, dt)
    sg = get_surrogate(surrogate)
    params = {"tau": tau, "threshold": threshold}
    (v,) = _start(x, state, LIFState, {"v": v_reset}, params, multistep=False, validate=validate)
    tau_s, thr = _operands(x, _steps(tau, dt), threshold)
    s, v, _ = lif_core(x, v, tau_s, thr, v_reset, reset, detach_reset, decay_input, sg)
    return s, LIFState(v)


def lif_multistep(
    x: Tensor,
    state: LIFState | None = None,
    *,
    tau: Param = 2.0,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    fused: bool = True,
    validate: bool = True,
) -> NeuronOutput[LIFState]:
    """LIF over ``x: [T, B, ...]``; arguments as :func:`lif_step`.

    ``fused=True`` runs the fused loop (:mod:`neuronkit.snn.multistep`: three in-place ops
    per step into preallocated outputs, a hand-written backward when a gradient is needed,
    finiteness checked once on the final membrane); ``fused=False`` loops :func:`lif_step`'s
    update under autograd. Both give the same bits forward.
    """
    _check_flags(fused, validate)
    spikes, v, last = _lif(
        x, state, tau=tau, threshold=threshold, v_reset=v_reset, reset=reset,
        detach_reset=detach_reset, decay_input=decay_input, dt=dt, surrogate=surrogate,
        fused=fused, validate=validate,
    )  # fmt: skip
    return NeuronOutput(spikes, v, LIFState(last))


def _lif(
    x: Tensor,
    state: LIFState | None,
    *,
    tau: Param,
    threshold: Param,
    v_reset: float,
    reset: str,
    detach_reset: bool,
    decay_input: bool,
    dt: float,
    surrogate: Surrogate | str,
    fused: bool,
    validate: bool,
    keep_v: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`lif_multistep` as ``(spikes, v, v_last)``; see :func:`_lif_run` for ``keep_v``."""
    if validate:
        args = (tau, threshold, v_reset, reset, detach_reset, decay_input, dt)
        plain = all(type(a) in (float, int, bool, str) for a in args)
        cached = plain and not torch.compiler.is_compiling()
        (_check_lif_floats if cached else _check_lif)(*args)
    return _lif_run(
        x, state, LIFState, _steps(tau, dt), threshold, v_reset, reset, detach_reset,
        decay_input, get_surrogate(surrogate), fused=fused, validate=validate, keep_v=keep_v,
    )  # fmt: skip


# ---- two-state neurons (ALIF, CuBa-LIF): one prologue for step and multi-step ------------------


class _Spec(NamedTuple):
    """A neuron whose state is ``(v, second)``, the second starting at 0 (ALIF: ``a``, CuBa:
    ``i``): its core, state type, time constants in the core's order (the membrane's first)
    and further parameters (>= 0) passed before ``threshold``."""

    core: Any
    state_type: Any
    taus: tuple[str, ...]
    extra: tuple[str, ...]


def _check_two_state(spec: _Spec, kw: dict[str, Any]) -> None:
    """Validate a two-state neuron's parameters: the membrane ``tau`` as :func:`_check_lif`'s,
    the other time constants as time constants, the extras as ``>= 0``."""
    tau, *others = spec.taus
    dt = kw["dt"]
    args = (kw["threshold"], kw["v_reset"], kw["reset"], kw["detach_reset"], kw["decay_input"])
    _check_lif(kw[tau], *args, dt, tau)
    for name in others:
        _core.check_tau(name, kw[name], dt)
    for name in spec.extra:
        _core.check_param(name, kw[name], ge=0)


def _two_state(spec: _Spec, kw: dict[str, Any], *, multistep: bool) -> Any:
    """Run a two-state neuron given its function's arguments ``kw`` (``x``, ``state`` and the
    keyword parameters): one prologue (validation, start state) for step and multi-step.

    Returns ``(spikes, state)`` for one step, a :class:`NeuronOutput` for ``multistep``.
    """
    half = _core.autocast_half(kw["x"])
    if half is not None:
        kw = kw | {"x": kw["x"].float(), "state": _core.float32_state(kw["state"])}
    x, validate = kw["x"], kw["validate"]
    check_type("validate", validate, bool)
    if validate:
        _check_two_state(spec, kw)
    sg = get_surrogate(kw["surrogate"])
    params = {name: kw[name] for name in (*spec.taus, *spec.extra, "threshold")}
    init = dict.fromkeys(spec.state_type._fields, 0.0) | {"v": kw["v_reset"]}
    start = _start(
        x, kw["state"], spec.state_type, init, params, multistep=multistep, validate=validate
    )
    args = (
        *(_steps(_like(kw[name], x), kw["dt"]) for name in spec.taus),
        *(_like(kw[name], x) for name in (*spec.extra, "threshold")),  # tensors in x's dtype
        *(kw[name] for name in ("v_reset", "reset", "detach_reset", "decay_input")),
        sg,
    )
    if multistep:
        fused = kw["fused"] and not under_torch_func() and not torch.compiler.is_compiling()
        out = None
        if fused and spec is _CUBA:
            out = _cuba_fused(x, (start[0], start[1]), *args)
        elif fused and spec is _ALIF:
            out = _alif_fused(x, (start[0], start[1]), *args)
        spikes, vs, final = _scan(spec.core, x, start, *args) if out is None else out
        spikes = spikes if half is None else spikes.to(half)
        return NeuronOutput(spikes, vs, spec.state_type(*final))
    s, *new = spec.core(x, *start, *args)
    return s if half is None else s.to(half), spec.state_type(*new)


def _cuba_fused(
    x: Tensor, state: tuple[Tensor, Tensor], tau_mem: Param, tau_syn: Param, threshold: Param,
    v_reset: float, reset: str, detach_reset: bool, decay_input: bool, surrogate: Surrogate,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:  # fmt: skip
    """CuBa-LIF over time as :func:`_scan` of :func:`cuba_core` returns it, with the same bits:
    the synaptic currents (a linear filter of ``x``) in one pass, then the fused LIF on them."""
    v0, i0 = state
    currents = fused_current(x, i0, tau_syn)
    spikes, vs = fused_lif(
        currents, v0, tau=tau_mem, threshold=_core.operand(threshold, x), v_reset=v_reset,
        reset_mode=reset, detach_reset=detach_reset, decay_input=decay_input,
        surrogate=surrogate,
    )  # fmt: skip
    return spikes, vs, (vs[-1], currents[-1])


def _alif_fused(
    x: Tensor, state: tuple[Tensor, Tensor], tau: Param, tau_adapt: Param, beta: Param,
    threshold: Param, v_reset: float, reset: str, detach_reset: bool, decay_input: bool,
    surrogate: Surrogate,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]] | None:  # fmt: skip
    """ALIF over time as :func:`_scan` of :func:`alif_core` returns it, with the same bits
    (:func:`~neuronkit.snn.multistep.fused_alif`); None where that does not apply."""
    out = fused_alif(
        x, *state, tau=tau, tau_adapt=tau_adapt, beta=beta, threshold=threshold,
        v_reset=v_reset, reset_mode=reset, detach_reset=detach_reset, decay_input=decay_input,
        surrogate=surrogate,
    )  # fmt: skip
    if out is None:
        return None
    spikes, vs, a = out
    return spikes, vs, (vs[-1], a)


_ALIF = _Spec(alif_core, ALIFState, ("tau", "tau_adapt"), ("beta",))
_CUBA = _Spec(cuba_core, CuBaLIFState, ("tau_mem", "tau_syn"), ())

# ---- ALIF --------------------------------------------------------------------------------------


def alif_step(
    x: Tensor,
    state: ALIFState | None = None,
    *,
    tau: Param = 2.0,
    tau_adapt: Param = 20.0,
    beta: Param = 1.8,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
) -> tuple[Tensor, ALIFState]:
    """One adaptive-threshold LIF step. ``x: [B, ...]`` -> ``(spikes, ALIFState)``.

    Args:
        tau_adapt: time constant of the adaptation trace ``a`` (>= dt).
        beta: threshold increase per unit of ``a`` (>= 0); ``a`` is a leaky spike rate in
            [0, 1], so the threshold stays within ``[threshold, threshold + beta]``.
        others: as :func:`lif_step`; reset uses the adapted threshold.
    """
    out: tuple[Tensor, ALIFState] = _two_state(_ALIF, dict(locals()), multistep=False)
    return out


def alif_multistep(
    x: Tensor,
    state: ALIFState | None = None,
    *,
    tau: Param = 2.0,
    tau_adapt: Param = 20.0,
    beta: Param = 1.8,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
    fused: bool = True,
) -> NeuronOutput[ALIFState]:
    """ALIF over ``x: [T, B, ...]``; args as :func:`alif_step`.

    ``fused=True`` runs the steps without an autograd graph and backpropagates through time
    by hand (:func:`~neuronkit.snn.multistep.fused_alif`; learnable ``tau``, ``tau_adapt``,
    ``beta`` and ``threshold`` too): the same forward bits as ``fused=False``, which loops
    :func:`alif_step`'s ops under autograd (needed for double backward, and used when the
    surrogate ``needs_potential``). ``torch.compile`` and ``torch.func`` use the loop.
    """
    check_type("fused", fused, bool)
    out: NeuronOutput[ALIFState] = _two_state(_ALIF, dict(locals()), multistep=True)
    return out


# ---- CuBa-LIF ------------------------------------------------------------------------------------


def cuba_lif_step(
    x: Tensor,
    state: CuBaLIFState | None = None,
    *,
    tau_mem: Param = 10.0,
    tau_syn: Param = 5.0,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
) -> tuple[Tensor, CuBaLIFState]:
    """One current-based LIF step. ``x: [B, ...]`` -> ``(spikes, CuBaLIFState)``.

    Args:
        tau_mem: membrane time constant (>= dt); plays the role of ``tau`` in :func:`lif_step`.
        tau_syn: synaptic-current time constant (>= dt).
        others: as :func:`lif_step`. Defaults are Norse's (10 ms, 5 ms at dt = 1 ms).
    """
    out: tuple[Tensor, CuBaLIFState] = _two_state(_CUBA, dict(locals()), multistep=False)
    return out


def cuba_lif_multistep(
    x: Tensor,
    state: CuBaLIFState | None = None,
    *,
    tau_mem: Param = 10.0,
    tau_syn: Param = 5.0,
    threshold: Param = 1.0,
    v_reset: float = 0.0,
    reset: str = "subtract",
    detach_reset: bool = False,
    decay_input: bool = True,
    dt: float = 1.0,
    surrogate: Surrogate | str = _ATAN,
    validate: bool = True,
    fused: bool = True,
) -> NeuronOutput[CuBaLIFState]:
    """CuBa-LIF over ``x: [T, B, ...]``; args as :func:`cuba_lif_step`.

    ``fused=True`` computes the synaptic currents of all steps in one pass (a linear filter of
    ``x``: :func:`~neuronkit.snn.multistep.fused_current`) and runs the fused LIF loop on them;
    the same bits as ``fused=False``, which loops :func:`cuba_lif_step`'s ops under autograd
    (needed for double backward). ``torch.compile`` and ``torch.func`` use the loop.
    """
    check_type("fused", fused, bool)
    out: NeuronOutput[CuBaLIFState] = _two_state(_CUBA, dict(locals()), multistep=True)
    return out


# ---- modules -------------------------------------------------------------------------------------


class _Neuron(_core.ChannelLocal, nn.Module):
    """Common shell: parameters are validated once here; ``forward`` returns spikes only.

    A tensor setting (``threshold``, ``tau``, ...) is a buffer, an ``nn.Parameter`` a parameter
    (both in the state dict), a number a plain attribute (:func:`_core.hold`)."""

    threshold: Param

    def __init__(
        self,
        threshold: float,
        v_reset: float,
        reset: str,
        detach_reset: bool,
        surrogate: Surrogate | str,
        validate: bool,
    ) -> None:
        super().__init__()
        _core.check_common(threshold, v_reset, reset, detach_reset)
        check_type("validate", validate, bool)
        self.surrogate = get_surrogate(surrogate)
        _core.hold(self, "threshold", threshold)
        self.v_reset = v_reset
        self.reset = reset
        self.detach_reset = detach_reset
        self.validate = validate

    def _common(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "v_reset": self.v_reset,
            "reset": self.reset,
            "detach_reset": self.detach_reset,
            "surrogate": self.surrogate,
            "validate": self.validate,
        }

    def forward(self, x: Tensor, state: Any = None) -> Tensor:
        """Spikes ``[T, B, ...]`` for ``x: [T, B, ...]``, starting from ``state`` (rest if None)."""
        spikes: Tensor = self.run(x, state).spikes
        return spikes

    def run(self, x: Tensor, state: Any = None) -> NeuronOutput[Any]:
        """``x: [T, B, ...]`` from ``state`` (rest if None) -> ``NeuronOutput``: spikes and
        membrane ``[T, B, ...]`` and the final state (the fused multi-step path)."""
        raise NotImplementedError

    def step(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One time step: ``x: [B, ...]`` from ``state`` (rest if None) -> ``(spikes [B, ...],
        new state)``. ``state=None`` starts a new sequence: a stateful surrogate (PDSG)
        restarts its statistics, as in a multi-step run (the functional ``*_step`` do not)."""
        raise NotImplementedError

    def _begin(self, state: Any) -> None:
        if state is None:
            _core.begin(self.surrogate)

    def extra_repr(self) -> str:
        skip = {"validate"}
        return ", ".join(
            f"{k}={_core.describe(v)}" for k, v in self._common().items() if k not in skip
        )


class IF(_Neuron):
    """Integrate-and-fire neurons; see :func:`if_step` for the arguments.

    ``forward(x [T, B, ...]) -> spikes``, ``run(x, state) -> NeuronOutput[IFState]``,
    ``step(x_t [B, ...], state) -> (spikes, IFState)``.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        *,
        detach_reset: bool = False,
        surrogate: Surrogate | str = _ATAN,
        fused: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__(threshold, v_reset, reset, detach_reset, surrogate, validate)
        check_type("fused", fused, bool)
        self.fused = fused

    def forward(self, x: Tensor, state: IFState | None = None) -> Tensor:
        """Spikes ``[T, B, ...]`` (the ``[T, B, ...]`` membrane trace is never written)."""
        return _if(x, state, fused=self.fused, keep_v=False, **self._common())[0]

    def run(self, x: Tensor, state: IFState | None = None) -> NeuronOutput[IFState]:
        return if_multistep(x, state, fused=self.fused, **self._common())

    def step(self, x: Tensor, state: IFState | None = None) -> tuple[Tensor, IFState]:
        self._begin(state)
        return if_step(x, state, **self._common())


class LIF(_Neuron):
    """Leaky integrate-and-fire neurons; see :func:`lif_step` for the arguments.

    ``forward(x [T, B, ...]) -> spikes``, ``run(x, state) -> NeuronOutput[LIFState]``,
    ``step(x_t [B, ...], state) -> (spikes, LIFState)``.

    >>> lif = LIF(tau=2.0)
    >>> lif(torch.ones(4, 3, 5)).shape
    torch.Size([4, 3, 5])
    """

    tau: Param  # membrane time constant (a tensor derived from ``w`` for :class:`PLIF`)

    def __init__(
        self,
        tau: float = 2.0,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        *,
        detach_reset: bool = False,
        decay_input: bool = True,
        dt: float = 1.0,
        surrogate: Surrogate | str = _ATAN,
        fused: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__(threshold, v_reset, reset, detach_reset, surrogate, validate)
        _check_lif(tau, threshold, v_reset, reset, detach_reset, decay_input, dt)
        check_type("fused", fused, bool)
        self._hold_tau(tau)
        self.decay_input = decay_input
        self.dt = dt
        self.fused = fused

    def _hold_tau(self, tau: Param) -> None:
        _core.hold(self, "tau", tau)

    def _lif(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input, "dt": self.dt, **self._common()}

    def forward(self, x: Tensor, state: LIFState | None = None) -> Tensor:
        """Spikes ``[T, B, ...]`` (the ``[T, B, ...]`` membrane trace is never written)."""
        return _lif(x, state, fused=self.fused, keep_v=False, **self._lif())[0]

    def run(self, x: Tensor, state: LIFState | None = None) -> NeuronOutput[LIFState]:
        return lif_multistep(x, state, fused=self.fused, **self._lif())

    def step(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        self._begin(state)
        return lif_step(x, state, **self._lif())

    def extra_repr(self) -> str:
        tau = _core.describe(self.tau) if isinstance(self.tau, Tensor) else f"{self.tau:.4g}"
        return f"tau={tau}, decay_input={self.decay_input}, dt={self.dt}, {super().extra_repr()}"


class PLIF(LIF):
    """Parametric LIF (Fang et al. 2021): one learnable ``tau`` per layer.

    ``tau = dt * (1 + exp(-w))`` (SpikingJelly's ``1 / tau = sigmoid(w)`` at ``dt = 1``), so
    ``tau > dt`` always; ``w`` starts at ``-log(init_tau / dt - 1)``. Other arguments and
    methods as :class:`LIF`.
    """

    def __init__(
        self,
        init_tau: float = 2.0,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        *,
        detach_reset: bool = False,
        decay_input: bool = True,
        dt: float = 1.0,
        surrogate: Surrogate | str = _ATAN,
        fused: bool = True,
        validate: bool = True,
    ) -> None:
        _core.check_dt(dt)
        check_number("init_tau", init_tau, gt=dt)
        super().__init__(
            init_tau,
            threshold,
            v_reset,
            reset,
            detach_reset=detach_reset,
            decay_input=decay_input,
            dt=dt,
            surrogate=surrogate,
            fused=fused,
            validate=validate,
        )
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau / dt - 1.0)))

    def _hold_tau(self, tau: Param) -> None:
        """Nothing to keep: ``tau`` derives from ``w``."""

    @property
    def tau(self) -> Tensor:  # type: ignore[override]  # read-only: derived from w
        """``dt * (1 + exp(-w))``, a 0-d tensor that carries the gradient to ``w``."""
        return self.dt * (1.0 + torch.exp(-self.w))


class _TwoStateNeuron(_Neuron):
    """Shell of a two-state neuron (:data:`_ALIF`, :data:`_CUBA`): the spec's time constants
    and extras become attributes; ``run``/``step`` go through :func:`_two_state`."""

    _spec: ClassVar[_Spec]

    def _init_two_state(self, kw: dict[str, Any]) -> None:
        _check_two_state(self._spec, kw)
        check_type("fused", kw["fused"], bool)
        for name in (*self._spec.taus, *self._spec.extra):
            _core.hold(self, name, kw[name])
        self.decay_input, self.dt, self.fused = kw["decay_input"], kw["dt"], kw["fused"]

    def _names(self) -> tuple[str, ...]:
        return (*self._spec.taus, *self._spec.extra, "decay_input", "dt")

    def _kw(self, x: Tensor, state: Any) -> dict[str, Any]:
        own = {name: getattr(self, name) for name in self._names()}
        return {"x": x, "state": state, **own, **self._common(), "fused": self.fused}

    def run(self, x: Tensor, state: Any = None) -> Any:
        return _two_state(self._spec, self._kw(x, state), multistep=True)

    def step(self, x: Tensor, state: Any = None) -> Any:
        self._begin(state)
        return _two_state(self._spec, self._kw(x, state), multistep=False)

    def extra_repr(self) -> str:
        own = ", ".join(f"{name}={_core.describe(getattr(self, name))}" for name in self._names())
        return f"{own}, {super().extra_repr()}"


class ALIF(_TwoStateNeuron):
    """Adaptive-threshold LIF neurons; see :func:`alif_step` for the arguments.

    ``forward(x [T, B, ...]) -> spikes``, ``run(x, state) -> NeuronOutput[ALIFState]``,
    ``step(x_t [B, ...], state) -> (spikes, ALIFState)``. Multi-step runs are fused unless
    ``fused=False`` (:func:`alif_multistep`).
    """

    _spec = _ALIF

    def __init__(
        self,
        tau: float = 2.0,
        tau_adapt: float = 20.0,
        beta: float = 1.8,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        *,
        detach_reset: bool = False,
        decay_input: bool = True,
        dt: float = 1.0,
        surrogate: Surrogate | str = _ATAN,
        validate: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__(threshold, v_reset, reset, detach_reset, surrogate, validate)
        self._init_two_state(dict(locals()))


class CuBaLIF(_TwoStateNeuron):
    """Current-based LIF neurons; see :func:`cuba_lif_step` for the arguments.

    ``forward(x [T, B, ...]) -> spikes``, ``run(x, state) -> NeuronOutput[CuBaLIFState]``,
    ``step(x_t [B, ...], state) -> (spikes, CuBaLIFState)``. Multi-step runs are fused unless
    ``fused=False``: the synaptic currents of all steps in one pass, then the fused LIF loop
    (:func:`cuba_lif_multistep`).
    """

    _spec = _CUBA

    def __init__(
        self,
        tau_mem: float = 10.0,
        tau_syn: float = 5.0,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        *,
        detach_reset: bool = False,
        decay_input: bool = True,
        dt: float = 1.0,
        surrogate: Surrogate | str = _ATAN,
        validate: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__(threshold, v_reset, reset, detach_reset, surrogate, validate)
        self._init_two_state(dict(locals()))
