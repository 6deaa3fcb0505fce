"""Private arithmetic shared by the step functions, the reference loop and the fused path.

Everything here is unvalidated and operates on one time step. Keeping a single copy of the
update equations is what makes the fused multi-step path bit-identical to the step-by-step
reference: both call these functions with the same tensors in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from neuronkit.common import check_choice, check_finite, check_number, check_type

Param = float | Tensor
SpikeFn = Callable[[Tensor], Tensor]
RESETS = ("subtract", "zero", "none")


def charge(v: Tensor, x: Tensor, tau: Param | None, v_reset: float, decay_input: bool) -> Tensor:
    """Pre-spike membrane ``h``; ``tau`` in steps (``tau / dt``), ``None`` for IF."""
    if tau is None:
        return v + x
    leak = v - v_reset if v_reset != 0.0 else v  # v - 0.0 == v exactly: skip the op
    if decay_input:
        return v + (x - leak) / tau
    return v - leak / tau + x


def operand(p: Param, like: Tensor) -> Param:
    """A float parameter as a 0-d tensor of ``like``'s dtype, for float32/float64 only.

    Bitwise the same result as the Python scalar (the kernels cast scalars to these dtypes
    anyway) but skips the per-op scalar conversion, which dominates small step ops on CPU.
    Half-precision dtypes keep the scalar, whose kernels compute in float32.
    """
    if isinstance(p, Tensor) or like.dtype not in (torch.float32, torch.float64):
        return p
    return torch.tensor(p, dtype=like.dtype, device=like.device)


def reset(h: Tensor, s: Tensor, threshold: Param, v_reset: float, mode: str) -> Tensor:
    """Membrane after the spike ``s`` (already detached if detach_reset)."""
    if mode == "subtract":
        return h - s * threshold
    if mode == "zero":
        return (1.0 - s) * h + s * v_reset
    return h


def lif_core(
    x: Tensor,
    v: Tensor,
    tau: Param | None,
    threshold: Param,
    v_reset: float,
    mode: str,
    detach_reset: bool,
    decay_input: bool,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One LIF (or IF when ``tau is None``) step: ``(spikes, v_new, h)``."""
    h = charge(v, x, tau, v_reset, decay_input)
    s = spike_fn(h - threshold)
    v_new = reset(h, s.detach() if detach_reset else s, threshold, v_reset, mode)
    return s, v_new, h


def alif_core(
    x: Tensor,
    v: Tensor,
    a: Tensor,
    tau: Param,
    tau_adapt: Param,
    beta: Param,
    threshold: Param,
    v_reset: float,
    mode: str,
    detach_reset: bool,
    decay_input: bool,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One adaptive-threshold step: ``(spikes, v_new, a_new)``."""
    h = charge(v, x, tau, v_reset, decay_input)
    theta = threshold + beta * a
    s = spike_fn(h - theta)
    v_new = reset(h, s.detach() if detach_reset else s, theta, v_reset, mode)
    a_new = a + (s - a) / tau_adapt
    return s, v_new, a_new


def cuba_core(
    x: Tensor,
    v: Tensor,
    i: Tensor,
    tau_mem: Param,
    tau_syn: Param,
    threshold: Param,
    v_reset: float,
    mode: str,
    detach_reset: bool,
    decay_input: bool,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One current-based LIF step: ``(spikes, v_new, i_new)``."""
    i_new = i - i / tau_syn + x
    s, v_new, _ = lif_core(
        i_new, v, tau_mem, threshold, v_reset, mode, detach_reset, decay_input, spike_fn
    )
    return s, v_new, i_new


# ---- validation (Python-level, cheap; tensor values are never read here) -------------------


def check_param(name: str, value: Any, *, gt: float | None = None, ge: float | None = None) -> None:
    """A float checked against bounds, or a floating tensor (values not checked)."""
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a float or a floating-point tensor, got {value.dtype}")
        return
    check_number(name, value, gt=gt, ge=ge)


def check_tau(name: str, tau: Any, dt: float) -> None:
    """``tau > 0`` and ``tau >= dt`` (the forward-Euler factor ``dt / tau`` stays in (0, 1])."""
    check_param(name, tau, gt=0)
    if not isinstance(tau, Tensor) and tau < dt:
        raise ValueError(f"{name} must be >= dt ({dt:g}), got {tau!r}")


def check_common(threshold: Any, v_reset: Any, reset_mode: Any, detach_reset: Any) -> None:
    """Validate the arguments every neuron shares (the surrogate is checked on lookup)."""
    check_param("threshold", threshold, gt=0)
    check_number("v_reset", v_reset)
    check_type("reset", reset_mode, str)
    check_choice("reset", reset_mode, RESETS)
    check_type("detach_reset", detach_reset, bool)
    if not isinstance(threshold, Tensor) and v_reset >= threshold:
        raise ValueError(f"v_reset must be < threshold ({threshold:g}), got {v_reset!r}")


def check_dt(dt: Any) -> None:
    check_number("dt", dt, gt=0)


def check_input(x: Any, *, multistep: bool, validate: bool) -> None:
    """``x`` is a floating tensor ``[T, B, ...]`` (``[B, ...]`` for a single step)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if multistep and x.ndim < 3:
        raise ValueError(
            "x must have at least 3 dimensions [T, B, ...] (time-major multi-step input; use "
            f".step() or *_step for one time step [B, ...]), got shape {tuple(x.shape)}"
        )
    if not multistep and x.ndim < 2:
        raise ValueError(
            f"x must have at least 2 dimensions [B, ...] for one time step, got shape "
            f"{tuple(x.shape)}"
        )
    if multistep and x.shape[0] < 1:
        raise ValueError(f"x must have T >= 1 time steps, got shape {tuple(x.shape)}")
    # one reduction: a finite sum proves every element finite; otherwise check exactly
    if validate and not torch.compiler.is_compiling() and not bool(torch.isfinite(x.sum())):
        check_finite("x", x)


def check_broadcast(name: str, value: Any, shape: torch.Size) -> None:
    """A tensor parameter must broadcast to one step's shape ``[B, ...]`` without growing it."""
    if isinstance(value, Tensor):
        try:
            ok = torch.broadcast_shapes(value.shape, shape) == shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name} must broadcast to the per-step shape {list(shape)}, got a tensor of "
                f"shape {list(value.shape)}"
            )


def check_state(name: str, value: Any, shape: torch.Size) -> None:
    """A state field must be a tensor of exactly one step's shape ``[B, ...]``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.shape != shape:
        raise ValueError(
            f"{name} must have shape {list(shape)} (one time step of x), got {list(value.shape)}"
        )
