"""Private arithmetic shared by the step functions, the reference loop and the fused path,
the validation helpers, and what the stateful module shells share: :class:`ChannelLocal`,
:func:`hold` (tensor settings are buffers).

Everything here is unvalidated. Keeping a single copy of the update equations is what makes
the fused multi-step path bit-identical to the step-by-step reference: both call
:func:`charge` and :func:`reset` once per step with the same tensors in the same order (the
fused loop passes ``out=`` buffers), and :func:`drive` is elementwise and exact to hoist out
of the loop. The LIF step is ``h = charge(drive(x), v, *leak(tau))``, ``s = h >= threshold``,
``v = reset(h, s)``. Spikes are fired through :func:`fire`, which hands a potential-dependent
surrogate (``needs_potential``) the membrane ``h`` as well as ``h - threshold``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_type,
    plain_tensor,
)

Param = float | Tensor
SpikeFn = Callable[[Tensor], Tensor]
_F = TypeVar("_F", bound=Callable[..., Any])
RESETS = ("subtract", "zero", "none")


def drive(x: Tensor, tau: Param | None, v_reset: float, decay_input: bool) -> Tensor:
    """The input ``u`` of :func:`charge`: ``x + v_reset`` (LIF with ``decay_input``),
    ``x + v_reset / tau`` (LIF without), ``x`` for IF or ``v_reset == 0`` (no op at all)."""
    if tau is None or v_reset == 0.0:
        return x
    return x + v_reset if decay_input else x + v_reset / tau


def leak(tau: Param | None, decay_input: bool) -> tuple[Param | None, Param | None]:
    """``(w, lam)`` of :func:`charge` for ``tau`` in steps: ``(1 / tau, None)`` with
    ``decay_input``, ``(None, 1 - 1 / tau)`` without, ``(None, None)`` for IF."""
    if tau is None:
        return None, None
    return (1.0 / tau, None) if decay_input else (None, 1.0 - 1.0 / tau)


def charge(
    u: Tensor, v: Tensor, w: Param | None, lam: Param | None, out: Tensor | None = None
) -> Tensor:
    """Pre-spike membrane ``h``, one op, into ``out`` if given.

    ``torch.lerp(v, u, w)``, i.e. ``v + (u - v) * w``, when ``w`` is given (LIF with input
    decay); else ``u + lam * v`` (LIF without input decay), ``u + v`` for IF.
    """
    if w is not None:
        return torch.lerp(v, u, w, out=out)
    if lam is None:
        return torch.add(u, v, out=out)
    if isinstance(lam, Tensor):
        return torch.addcmul(u, lam, v, out=out)
    return torch.add(u, v, alpha=lam, out=out)


def operand(p: Param, like: Tensor) -> Param:
    """A threshold (or lerp weight) as a tensor of ``like``'s dtype: floats become 0-d tensors
    (float32/64).

    Bitwise the same result as the Python scalar (the kernels cast scalars to these dtypes
    anyway) but skips the per-op scalar conversion, which dominates small step ops on CPU
    (``torch.ge(h, thr)`` takes about half the time with a 0-d tensor). Half-precision dtypes
    keep the scalar, whose kernels compute in float32. Tensors are cast to ``like``'s dtype
    and moved to its device (a per-neuron tensor held on the CPU, e.g. by an imported NIR
    graph, then works with inputs on an accelerator).
    """
    if isinstance(p, Tensor):
        return p.to(device=like.device, dtype=like.dtype)
    if like.dtype not in (torch.float32, torch.float64):
        return p
    if torch.compiler.is_compiling():
        return torch.tensor(p, dtype=like.dtype, device=like.device)
    return _constant(float(p), like.dtype, like.device)


@functools.lru_cache(maxsize=64)
def _constant(value: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A shared, never-written 0-d tensor (a normal tensor even if first made in inference mode);
    saves the ~10 us of ``torch.tensor`` on every call."""
    with torch.inference_mode(False):
        return torch.tensor(value, dtype=dtype, device=device)


def reset(
    h: Tensor, s: Tensor, threshold: Param, v_reset: float, mode: str, out: Tensor | None = None
) -> Tensor:
    """Membrane after the spike ``s`` (already detached if detach_reset), into ``out`` if given.

    ``"subtract"``: ``h - s * threshold``; ``"zero"``: ``h - s * h (+ s * v_reset)``, which is
    exactly ``v_reset`` where ``s = 1`` and ``h`` where ``s = 0``; ``"none"``: ``h``.
    """
    if mode == "subtract":
        if isinstance(threshold, Tensor):
            return torch.addcmul(h, s, threshold, value=-1.0, out=out)
        return torch.sub(h, s, alpha=threshold, out=out)
    if mode == "zero":
        v = torch.addcmul(h, s, h, value=-1.0, out=out)
        return v if v_reset == 0.0 else torch.add(v, s, alpha=v_reset, out=out)
    return h if out is None or out is h else out.copy_(h)


def fire(spike_fn: SpikeFn, h: Tensor, theta: Param) -> Tensor:
    """Spikes ``spike_fn(h - theta)``; a surrogate with ``needs_potential`` (its running
    statistics need the membrane itself) gets ``spike_fn.fire(h - theta, h)`` instead. A
    :class:`~neuronkit.snn.Surrogate` fires through its ``_spike``, which skips the public
    call's NaN pass (the inputs are checked upstream)."""
    if getattr(spike_fn, "needs_potential", False):
        out: Tensor = spike_fn.fire(h - theta, h)  # type: ignore[attr-defined]
        return out
    spike: Tensor = getattr(spike_fn, "_spike", spike_fn)(h - theta)
    return spike


def begin(spike_fn: Any) -> None:
    """A multi-step run starts a new sequence: a surrogate with ``needs_potential`` restarts
    its running statistics (stateless surrogates ignore it)."""
    if getattr(spike_fn, "needs_potential", False):
        spike_fn.begin()


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
    h = charge(drive(x, tau, v_reset, decay_input), v, *leak(tau, decay_input))
    s = fire(spike_fn, h, threshold)
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
    h = charge(drive(x, tau, v_reset, decay_input), v, *leak(tau, decay_input))
    theta = threshold + beta * a
    s = fire(spike_fn, h, theta)
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


# ---- validation (Python-level, cheap: a tensor parameter costs one reduction) --------------


def check_scalar(name: str, value: Any, **bounds: Any) -> None:
    """:func:`~neuronkit.common.check_number`, skipped while compiling: dynamo may trace a float
    setting as a symbol (a second module with another ``tau``), whose finiteness cannot be
    read; modules checked theirs at construction."""
    if not torch.compiler.is_compiling():
        check_number(name, value, **bounds)


def _value_range(value: Tensor) -> tuple[float, float] | None:
    """``(min, max)`` of a floating tensor: one reduction and one host read (both NaN if any
    element is NaN). None for an empty tensor, or while compiling (a read is a graph break)."""
    if value.numel() == 0 or torch.compiler.is_compiling():
        return None
    lo, hi = torch.stack(torch.aminmax(plain_tensor(value).detach())).tolist()
    return lo, hi


def check_param(
    name: str, value: Any, *, gt: float | None = None, ge: float | None = None
) -> float | None:
    """A float, or a floating tensor whose every element is finite, checked against bounds.

    A tensor (also a learnable one) is checked with one ``aminmax`` over its values, a number
    with :func:`check_scalar` (neither is read while compiling). Returns a tensor's minimum
    (None for a float, an empty tensor, or while compiling), so callers can check further
    bounds without another reduction.
    """
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a float or a floating-point tensor, got {value.dtype}")
        rng = _value_range(value)
        if rng is None:
            return None
        lo, hi = rng
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(
                f"{name} must be finite, got NaN or infinity in a tensor of shape "
                f"{list(value.shape)}"
            )
        if gt is not None and not lo > gt:
            raise ValueError(f"{name} must be > {gt:g}, got a tensor with minimum {lo:g}")
        if ge is not None and not lo >= ge:
            raise ValueError(f"{name} must be >= {ge:g}, got a tensor with minimum {lo:g}")
        return lo
    check_scalar(name, value, gt=gt, ge=ge)
    return None


@functools.lru_cache(maxsize=64)
def _rounded(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype`` (one conversion per pair, not a tensor per call)."""
    return float(torch.tensor(value, dtype=dtype).item())


def check_tau(name: str, tau: Any, dt: float) -> None:
    """``tau > 0`` and ``tau >= dt`` (the forward-Euler factor ``dt / tau`` stays in (0, 1]).

    A tensor is compared with ``dt`` rounded to its dtype (``torch.tensor(0.7)`` is a valid
    ``tau`` for ``dt=0.7`` although float32 stores it just below 0.7).
    """
    low = check_param(name, tau, gt=0)
    if isinstance(tau, Tensor):
        if low is not None and low < _rounded(dt, tau.dtype):
            raise ValueError(f"{name} must be >= dt ({dt:g}), got a tensor with minimum {low:g}")
    elif tau < dt:
        raise ValueError(f"{name} must be >= dt ({dt:g}), got {tau!r}")


def check_common(threshold: Any, v_reset: Any, reset_mode: Any, detach_reset: Any) -> None:
    """Validate the arguments every neuron shares (the surrogate is checked on lookup)."""
    low = check_param("threshold", threshold, gt=0)
    check_scalar("v_reset", v_reset)
    check_type("reset", reset_mode, str)
    check_choice("reset", reset_mode, RESETS)
    check_type("detach_reset", detach_reset, bool)
    if isinstance(threshold, Tensor):
        if low is not None and v_reset >= low:
            raise ValueError(
                f"v_reset must be < threshold (a tensor with minimum {low:g}), got {v_reset!r}"
            )
    elif v_reset >= threshold:
        raise ValueError(f"v_reset must be < threshold ({threshold:g}), got {v_reset!r}")


def check_dt(dt: Any) -> None:
    check_scalar("dt", dt, gt=0)


def check_input(x: Any, *, multistep: bool) -> None:
    """``x`` is a floating tensor ``[T, B, ...]`` (``[B, ...]`` for a single step)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_floating("x", x)
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


def check_finite_input(
    x: Tensor, witness: Tensor | None = None, state: dict[str, Tensor] | None = None
) -> None:
    """Raise unless ``x`` (and every ``state`` tensor, by name) is finite, with one reduction
    over ``witness`` (default ``x``).

    A finite sum proves every summed element finite; otherwise ``x`` and then the ``state``
    tensors are checked exactly (a sum can overflow), and the first non-finite one is named. A
    LIF/IF run's final membrane is a valid witness for its input and initial state: a NaN or
    infinity at any step makes that step's membrane NaN or infinite, and no charge (an affine
    map with a positive weight on ``v``, or ``0 * v``, which is NaN for a non-finite ``v``) or
    reset brings it back, so the ``[B, ...]`` final state stands in for the whole ``[T, B,
    ...]`` input and the initial membrane.
    """
    witness = x if witness is None else witness
    if not torch.compiler.is_compiling() and not math.isfinite(
        float(plain_tensor(witness).detach().sum())
    ):
        check_finite("x", x)
        for name, value in (state or {}).items():
            check_finite(name, value)


def check_finite_run(x: Tensor, state: dict[str, Tensor]) -> None:
    """Raise unless ``x`` and every ``state`` tensor (by name) are finite: one reduction each
    and a single host read of their total (:func:`check_finite_input` names the culprit)."""
    if torch.compiler.is_compiling():  # reading a value is a graph break
        return
    witness = plain_tensor(x).detach().sum()
    for value in state.values():
        witness = witness + plain_tensor(value).detach().sum()
    check_finite_input(x, witness, state)


def broadcasts(shape: Any, target: Any) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without growing it. Plain Python:
    ``torch.broadcast_shapes`` costs seconds on its first call (it imports torch's reference
    implementations)."""
    dims, target = tuple(shape), tuple(target)
    return len(dims) <= len(target) and all(
        d in (1, s) for d, s in zip(reversed(dims), reversed(target))
    )


def check_broadcast(name: str, value: Any, shape: torch.Size) -> None:
    """A tensor parameter must broadcast to one step's shape ``[B, ...]`` without growing it."""
    if isinstance(value, Tensor) and not broadcasts(value.shape, shape):
        raise ValueError(
            f"{name} must broadcast to the per-step shape {list(shape)}, got a tensor of "
            f"shape {list(value.shape)}"
        )


def check_state(name: str, value: Any, x: Tensor, shape: torch.Size) -> None:
    """A state field must be a tensor of exactly one step's shape ``[B, ...]``, on x's device
    (the compiled CPU loops would read another device's memory as host memory) and of x's
    dtype."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.device != x.device:
        raise ValueError(
            f"{name} must be on x's device {x.device}, got {value.device} (move the state "
            "with the model, or start at rest with state=None)"
        )
    if value.shape != shape:
        raise ValueError(
            f"{name} must have shape {list(shape)} (one time step of x), got {list(value.shape)}"
        )
    if value.dtype != x.dtype:
        raise TypeError(f"{name} must have x's dtype {x.dtype}, got {value.dtype}")


def usable_state(value: Tensor) -> Tensor:
    """A state field as a run takes it: a copy of a tensor made under ``torch.inference_mode``
    when this run is outside it and records a graph (an inference tensor cannot be saved for
    the backward of a learnable ``tau`` or ``threshold``), else ``value`` itself."""
    if (
        torch.is_grad_enabled()
        and not torch.is_inference_mode_enabled()
        and not torch.compiler.is_compiling()
        and value.is_inference()
    ):
        return value.clone()
    return value


_HALF = (torch.float16, torch.bfloat16)


def autocast_half(x: Any) -> torch.dtype | None:
    """``x``'s dtype if it is float16 / bfloat16 under an autocast of its device, else None.

    There the neurons integrate in float32 and return spikes in this dtype (exact: 0 and 1),
    as autocast itself runs sums and ``cumsum`` in float32: in bfloat16 a membrane near 1 takes
    no increment below 2**-8 (an IF neuron driven by 0.0015 per step never fires)."""
    if isinstance(x, Tensor) and x.dtype in _HALF and torch.is_autocast_enabled(x.device.type):
        return x.dtype
    return None


def integrates_in_float32(*, spikes: bool) -> Callable[[_F], _F]:
    """Decorate ``fn(x, state, ...) -> (out, ...)``: with ``x`` half precision under autocast
    (:func:`autocast_half`) ``fn`` runs on float32 ``x`` and state; ``out`` (spikes) comes back
    in ``x``'s dtype if ``spikes``, else (a membrane) in float32, as autocast's float32 ops
    return; states stay float32."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(x: Any, state: Any = None, *args: Any, **kwargs: Any) -> Any:
            half = autocast_half(x)
            if half is None:
                return fn(x, state, *args, **kwargs)
            out, *rest = fn(x.float(), float32_state(state), *args, **kwargs)
            return (out.to(half) if spikes else out, *rest)

        return wrapper  # type: ignore[return-value]

    return decorate


def float32_state(state: Any) -> Any:
    """A state tuple (``LIFState``, ...) with its half-precision fields in float32; anything
    else (None, or a bad value for the state checks to name) as it is."""
    if isinstance(state, tuple) and all(isinstance(f, Tensor) for f in state):
        return type(state)(*(f.float() if f.dtype in _HALF else f for f in state))
    return state


def hold(module: nn.Module, name: str, value: Any) -> None:
    """Keep a setting (``tau``, ``threshold``, ...) on ``module``: a plain tensor as a buffer
    of its own (a copy: in the state dict, moved and cast with the module, and loading a state
    dict leaves the caller's tensor alone), an ``nn.Parameter`` as a parameter (shared, as
    parameters are), a number as an attribute."""
    if isinstance(value, Tensor) and not isinstance(value, nn.Parameter):
        module.register_buffer(name, value.detach().clone())
    else:
        setattr(module, name, value)


def describe(value: Any) -> str:
    """A setting as ``extra_repr`` shows it: a one-value tensor by its value, a larger one by
    its shape and range (a number by ``repr``)."""
    if not isinstance(value, Tensor):
        return repr(value)
    t = value.detach()
    if t.numel() == 1 and not t.is_meta:
        return f"{float(t):.4g}"
    if t.numel() == 0 or t.is_meta:
        return f"tensor(shape={list(t.shape)})"
    lo, hi = torch.aminmax(t.float())
    return f"tensor(shape={list(t.shape)}, min={float(lo):.4g}, max={float(hi):.4g})"


class ChannelLocal:
    """Mixin of modules over ``[T, B, ...]`` whose every output element depends only on the same
    input element (over time): spiking neurons, leaky integrators, delays.

    ``channel_local`` tells tools that map channels by module (neuronkit-pruning removes channels
    through such a module as through an activation) whether that holds for this instance.
    Settings that differ per element (a per-neuron ``tau`` or ``threshold``) are parameters or
    buffers (:func:`hold`), broadcast against the input: a tool reads them from the module's
    state and carries them along with the channels (the pruner slices a setting that varies
    along the channel axis only and keeps the channels of any other).
    """

    @property
    def channel_local(self) -> bool:
        """True unless a plain (not parameter or buffer) tensor attribute holds more than one
        value, which a tool could not see in the module's state."""
        return all(v.numel() == 1 for v in vars(self).values() if isinstance(v, Tensor))
