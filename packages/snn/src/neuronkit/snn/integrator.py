"""Non-spiking leaky integrator (LI) and a fixed integer delay over time.

The leaky integrator is the read-out neuron of many SNNs and NIR's ``LI`` node
(``tau dv/dt = (v_leak - v) + r I``): a LIF membrane that never fires. It is discretised
exactly as :mod:`neuronkit.snn.neurons` discretises the LIF charge (one step of length ``dt``,
``tau_s = tau / dt`` in steps), so an :class:`LI` followed by a threshold gives the same bits
as ``LIF(reset="none")``:

* ``decay_input=True`` (forward Euler of ``tau dv/dt = (v_leak - v) + x``):
  ``v_t = v_{t-1} + (x_t + v_leak - v_{t-1}) / tau_s``, evaluated as
  ``torch.lerp(v, x + v_leak, 1 / tau_s)`` (``x + v_leak`` is ``x`` when ``v_leak = 0``);
* ``decay_input=False`` (``x`` is a jump, snnTorch style):
  ``v_t = (x_t + v_leak / tau_s) + (1 - 1 / tau_s) v_{t-1}``.

The initial state is ``v = v_leak``. The output of the integrator is its membrane ``v``.

:class:`Delay` shifts a time-major signal by a whole number of steps per element (NIR's
``Delay`` node, ``y(t) = x(t - d)``), with zeros before the first delayed sample.

Functional API: ``li_step(x [B, ...], state) -> (v [B, ...], LIState)``,
``li_multistep(x [T, B, ...], state) -> (v [T, B, ...], LIState)``, ``delay(x [T, B, ...],
steps) -> [T, B, ...]``; the modules :class:`LI` and :class:`Delay` wrap them and hold
parameters, never state. Under ``torch.autocast`` a float16 / bfloat16 input is integrated,
and the membrane returned, in float32 (as autocast's own sums are).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from neuronkit.common import check_number, check_type, integer_dtype

from ._core import (
    ChannelLocal,
    broadcasts,
    check_broadcast,
    check_finite_input,
    check_finite_run,
    check_input,
    check_scalar,
    check_state,
    check_tau,
    describe,
    hold,
    integrates_in_float32,
    usable_state,
)

__all__ = ["LI", "Delay", "LIState", "delay", "li_multistep", "li_step"]

Param = float | Tensor


class LIState(NamedTuple):
    """Leaky-integrator state: membrane ``v: [B, ...]``."""

    v: Tensor


def _check_params(tau: Any, v_leak: Any, decay_input: Any, dt: Any) -> None:
    check_scalar("dt", dt, gt=0)
    check_tau("tau", tau, dt)  # a tensor's values too: one reduction
    check_scalar("v_leak", v_leak)
    check_type("decay_input", decay_input, bool)


def _start(x: Tensor, state: Any, shape: torch.Size, v_leak: float, validate: bool) -> Tensor:
    """The initial membrane; with ``validate``, ``x`` (and a given state) must be finite."""
    if state is None:
        if validate:
            check_finite_input(x)
        return torch.full(shape, v_leak, dtype=x.dtype, device=x.device)
    if not isinstance(state, LIState):
        raise TypeError(f"state must be a LIState or None, got {type(state).__name__}")
    v = state.v
    check_state("state.v", v, x, shape)
    if validate:  # x and state.v with one host read
        check_finite_run(x, {"state.v": v})
    return usable_state(v)  # a copy of an inference tensor for a run with autograd


def _leak(tau: Param, dt: float, x: Tensor, decay_input: bool) -> tuple[Param | None, Param | None]:
    """``(w, lam)``: the lerp weight ``1 / tau_s`` or the decay ``1 - 1 / tau_s``."""
    tau_s = (tau.to(device=x.device, dtype=x.dtype) if isinstance(tau, Tensor) else tau) / dt
    return (1.0 / tau_s, None) if decay_input else (None, 1.0 - 1.0 / tau_s)


def _drive(x: Tensor, tau: Param, dt: float, v_leak: float, decay_input: bool) -> Tensor:
    if v_leak == 0.0:
        return x
    if decay_input:
        return x + v_leak
    tau_s = (tau.to(device=x.device, dtype=x.dtype) if isinstance(tau, Tensor) else tau) / dt
    return x + v_leak / tau_s


def _charge(u: Tensor, v: Tensor, w: Param | None, lam: Param | None) -> Tensor:
    """The same single op as the LIF charge in :mod:`neuronkit.snn.neurons`."""
    if w is not None:
        return torch.lerp(v, u, w)
    if isinstance(lam, Tensor):
        return torch.addcmul(u, lam, v)
    return torch.add(u, v, alpha=lam)


@integrates_in_float32(spikes=False)
def li_step(
    x: Tensor,
    state: LIState | None = None,
    *,
    tau: Param = 2.0,
    v_leak: float = 0.0,
    decay_input: bool = True,
    dt: float = 1.0,
    validate: bool = True,
) -> tuple[Tensor, LIState]:
    """One leaky-integrator step. ``x: [B, ...]`` -> ``(v [B, ...], LIState)``.

    Args:
        x: input current of one step ``[B, ...]``.
        state: previous :class:`LIState`, or None to start at rest (``v = v_leak``).
        tau: membrane time constant (>= dt; float or tensor broadcastable to ``[B, ...]``).
        v_leak: resting potential the membrane leaks towards.
        decay_input: scale the input by ``dt / tau`` (True, forward Euler of NIR's ``LI``
            with ``r = 1``) or add it as a jump (False, NIR ``r = tau / dt``).
        dt: step length, in the units of ``tau``.
        validate: check parameters (a tensor's values too, one reduction each) and the
            finiteness of ``x`` and ``state`` (shapes and dtypes are always checked).

    Returns:
        The membrane after the step (the integrator's output) and the new state.
    """
    check_input(x, multistep=False)
    check_type("validate", validate, bool)
    if validate:
        _check_params(tau, v_leak, decay_input, dt)
    check_broadcast("tau", tau, x.shape)
    v = _start(x, state, x.shape, v_leak, validate)
    w, lam = _leak(tau, dt, x, decay_input)
    v = _charge(_drive(x, tau, dt, v_leak, decay_input), v, w, lam)
    return v, LIState(v)


@integrates_in_float32(spikes=False)
def li_multistep(
    x: Tensor,
    state: LIState | None = None,
    *,
    tau: Param = 2.0,
    v_leak: float = 0.0,
    decay_input: bool = True,
    dt: float = 1.0,
    validate: bool = True,
) -> tuple[Tensor, LIState]:
    """The leaky integrator over ``x: [T, B, ...]``; arguments as :func:`li_step`.

    Returns ``(v [T, B, ...], LIState)``: the membrane after every step and the final state.
    """
    check_input(x, multistep=True)
    check_type("validate", validate, bool)
    if validate:
        _check_params(tau, v_leak, decay_input, dt)
    shape = x.shape[1:]
    check_broadcast("tau", tau, shape)
    v = _start(x, state, shape, v_leak, validate)
    w, lam = _leak(tau, dt, x, decay_input)
    u = _drive(x, tau, dt, v_leak, decay_input)
    out = []
    for u_t in u.unbind(0):
        v = _charge(u_t, v, w, lam)
        out.append(v)
    return torch.stack(out), LIState(v)


class LI(ChannelLocal, nn.Module):
    """Leaky integrator (non-spiking) neurons; see :func:`li_step` for the arguments.

    A tensor ``tau`` is a buffer (an ``nn.Parameter`` stays a parameter).

    ``forward(x [T, B, ...]) -> v [T, B, ...]``, ``run(x, state) -> (v, LIState)``,
    ``step(x_t [B, ...], state) -> (v_t, LIState)``.

    >>> LI(tau=4.0)(torch.ones(3, 2, 5)).shape
    torch.Size([3, 2, 5])
    """

    tau: Param

    def __init__(
        self,
        tau: Param = 2.0,
        v_leak: float = 0.0,
        *,
        decay_input: bool = True,
        dt: float = 1.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_params(tau, v_leak, decay_input, dt)
        check_type("validate", validate, bool)
        hold(self, "tau", tau)
        self.v_leak = v_leak
        self.decay_input = decay_input
        self.dt = dt
        self.validate = validate

    def _kw(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "v_leak": self.v_leak,
            "decay_input": self.decay_input,
            "dt": self.dt,
            "validate": self.validate,
        }

    def forward(self, x: Tensor, state: LIState | None = None) -> Tensor:
        """Membrane ``[T, B, ...]`` for ``x: [T, B, ...]`` from ``state`` (rest if None)."""
        return li_multistep(x, state, **self._kw())[0]

    def run(self, x: Tensor, state: LIState | None = None) -> tuple[Tensor, LIState]:
        """``x: [T, B, ...]`` -> ``(v [T, B, ...], final LIState)``."""
        return li_multistep(x, state, **self._kw())

    def step(self, x: Tensor, state: LIState | None = None) -> tuple[Tensor, LIState]:
        """One step: ``x: [B, ...]`` -> ``(v [B, ...], LIState)``."""
        return li_step(x, state, **self._kw())

    def extra_repr(self) -> str:
        tau = describe(self.tau) if isinstance(self.tau, Tensor) else f"{self.tau:.4g}"
        return f"tau={tau}, v_leak={self.v_leak}, decay_input={self.decay_input}, dt={self.dt}"


# ---- delay -------------------------------------------------------------------------------------


def _check_steps(steps: Any) -> None:
    if isinstance(steps, Tensor):
        if not integer_dtype(steps):
            raise TypeError(f"steps must be an int or an integer tensor, got dtype {steps.dtype}")
        # (a value read is a data-dependent guard under torch.compile: checked eagerly only)
        if steps.numel() and not torch.compiler.is_compiling() and int(steps.min()) < 0:
            raise ValueError(f"steps must be >= 0, got a minimum of {int(steps.min())}")
        return
    check_number("steps", steps, ge=0, integer=True)


def delay(x: Tensor, steps: int | Tensor) -> Tensor:
    """Delay ``x: [T, B, ...]`` by ``steps`` time steps: ``y[t] = x[t - d]``, 0 for ``t < d``.

    Args:
        x: time-major input ``[T, B, ...]``.
        steps: an int >= 0 (every element), or an integer tensor broadcastable to one sample
            ``[...]`` (per-element delays; NIR's ``Delay`` node in steps).

    Returns:
        ``[T, B, ...]``, same dtype as ``x``; delays >= T give all zeros.
    """
    check_input(x, multistep=True)
    _check_steps(steps)
    T = x.shape[0]
    if not isinstance(steps, Tensor):
        d = int(steps)
        if d == 0:
            return x.clone()
        out = torch.zeros_like(x)
        if d < T:
            out[d:] = x[: T - d]
        return out
    sample = x.shape[2:]
    if not broadcasts(steps.shape, sample):
        raise ValueError(
            f"steps must broadcast to one sample's shape {list(sample)}, got a tensor of shape "
            f"{list(steps.shape)}"
        )
    per = steps.to(device=x.device, dtype=torch.long).expand(sample)
    t = torch.arange(T, device=x.device).view(T, *([1] * len(sample)))
    src = t - per  # [T, ...]
    valid = src >= 0
    idx = src.clamp(min=0).unsqueeze(1).expand(x.shape)
    out = torch.gather(x, 0, idx)
    return torch.where(valid.unsqueeze(1), out, torch.zeros((), dtype=x.dtype, device=x.device))


class Delay(ChannelLocal, nn.Module):
    """Fixed integer delay over time: ``[T, B, ...] -> [T, B, ...]``; see :func:`delay`.

    ``steps`` is an int or an integer tensor of one sample's shape (kept as a buffer).
    """

    steps: Tensor | int

    def __init__(self, steps: int | Tensor) -> None:
        super().__init__()
        _check_steps(steps)
        if isinstance(steps, Tensor):
            self.register_buffer("steps", steps.detach().to(torch.long).clone())
        else:
            self.steps = int(steps)

    def forward(self, x: Tensor) -> Tensor:
        return delay(x, self.steps)

    def extra_repr(self) -> str:
        if isinstance(self.steps, Tensor):
            return f"steps=tensor(shape={list(self.steps.shape)}, max={int(self.steps.max())})"
        return f"steps={self.steps}"
