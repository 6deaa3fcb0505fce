"""Surrogate-gradient spike functions.

Forward is the Heaviside step with the firing condition ``x >= 0`` where ``x = v - threshold``
(a neuron exactly at threshold fires, as in SpikingJelly; snnTorch and Norse use ``x > 0``,
which differs only on the measure-zero set ``v == threshold``). Backward replaces the Dirac
delta by the surrogate derivative ``g'(x)`` below; ``alpha`` sets its sharpness.

=================  =======  ========================================  ===========================
class (name)       alpha    g'(x)                                     same as
=================  =======  ========================================  ===========================
``ATan``           2.0      alpha / 2 / (1 + (pi / 2 * alpha * x)^2)  SJ ``ATan``, snnTorch
                                                                      ``atan`` (same alpha)
``Sigmoid``        4.0      alpha * sig(alpha x) * (1 - sig(alpha x))  SJ ``Sigmoid``, snnTorch
                                                                      ``sigmoid(slope=alpha)``
``FastSigmoid``    10.0     1 / (alpha * abs(x) + 1)^2                snnTorch ``fast_sigmoid
                                                                      (slope=alpha)``, Norse
                                                                      ``SuperSpike`` (alpha)
``Triangle``       1.0      max(0, alpha - alpha^2 * abs(x))          SJ ``PiecewiseQuadratic``,
                                                                      SLTT (gamma = 1 / alpha)
``Gaussian``       2.0      alpha / sqrt(pi) * exp(-(alpha x)^2)      SJ ``Erf``
``Rectangular``    1.0      alpha * [abs(x) < 1 / (2 alpha)]          SJ ``Rect``, STBP (a =
                                                                      1 / alpha)
=================  =======  ========================================  ===========================

Every derivative except ``FastSigmoid``'s integrates to 1 over x (the surrogate is a smoothed
Heaviside); ``FastSigmoid`` peaks at 1 and integrates to ``2 / alpha`` (the snnTorch/Norse
convention). Surrogates are frozen dataclasses: hashable, comparable, safe as defaults.

Potential-dependent surrogates (``needs_potential = True``, e.g.
:class:`neuronkit.snn.attacks.PDSG`) shape their gradient from running statistics of the
membrane potential: neurons then call ``surrogate.fire(v - threshold, v)`` every step and
``surrogate.begin()`` at the start of every multi-step run and in ``step(x, None)`` (driving
the functional ``*_step`` by hand, or starting from a given state, call ``begin()`` at each
sequence start). The fused multi-step path has no per-step hook, so with
such a surrogate and a gradient to compute it runs the step-by-step reference loop instead
(same forward bits). :func:`swap_surrogate` puts a surrogate into every neuron of a model
(for instance to attack a model whose training surrogate is unknown) and can put the old
ones back.

>>> spike = ATan(alpha=2.0)
>>> spike(torch.tensor([-0.5, 0.0, 0.5]))
tensor([0., 1., 1.])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
from torch import Tensor, nn

from neuronkit.common import (
    check_choice,
    check_floating,
    check_number,
    check_type,
    eager_twin,
    function_for_mode,
    under_torch_func,
)

from ._core import operand

__all__ = [
    "ATan",
    "FastSigmoid",
    "Gaussian",
    "Rectangular",
    "Sigmoid",
    "SpikeFunction",
    "Surrogate",
    "SurrogateSwap",
    "Triangle",
    "get_surrogate",
    "heaviside",
    "surrogate_names",
    "swap_surrogate",
]


def _const(value: float, like: Tensor) -> Tensor:
    """A 0-d tensor of ``like``'s dtype and device (broadcasts in fused elementwise ops)."""
    c = operand(value, like)  # shared and cached for float32/64
    return c if isinstance(c, Tensor) else torch.full((), c, dtype=like.dtype, device=like.device)


def _floating(x: Any) -> Tensor:
    """``x`` itself, checked to be a floating-point tensor (what spike functions differentiate)."""
    check_type("x", x, Tensor)
    check_floating("x", x)
    return x


def _heaviside(x: Tensor) -> Tensor:
    """:func:`heaviside` without the NaN pass: what the neurons fire with (their input and
    state are checked finite upstream, so the extra ops would only slow every step)."""
    x = x.detach()
    if under_torch_func():  # torch.func's wrapped tensors take no out=
        return torch.ge(x, 0).to(x.dtype)
    return torch.ge(x, 0, out=torch.empty_like(x))  # a float out= skips the slow bool path


def heaviside(x: Tensor) -> Tensor:
    """``1.0`` where ``x >= 0`` else ``0.0``, in ``x``'s dtype (no gradient).

    NaN where ``x`` is NaN: an undefined membrane has no defined spike, and ``x >= 0`` alone
    would report it as "no spike". This costs three float elementwise ops (no bool mask, which
    is several times slower on the CPU; no reduction, no host sync, fine under
    ``torch.compile``); the neurons skip them.
    """
    check_type("x", x, Tensor)
    s = _heaviside(x)
    if s.is_floating_point():  # clamp(x, -1, 1) * 0: +-0 for any number, inf included; NaN
        s.add_(torch.clamp(x.detach(), -1.0, 1.0).mul_(0.0))
    return s


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward (NaN where ``x`` is NaN, as :func:`heaviside`), ``grad *
    surrogate.derivative(x)`` backward, and the same surrogate in forward mode (``jvp``:
    ``tangent * surrogate.derivative(x)``), so ``torch.func`` transforms (``vmap``, ``grad``,
    ``jacrev``, ``jacfwd``, ``jvp``) run through spikes with the surrogate gradient."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, surrogate: Surrogate) -> Tensor:
        return heaviside(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, surrogate = inputs
        ctx.surrogate = surrogate
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor, _: None) -> Tensor:
        (x,) = ctx.saved_tensors
        return tangent * ctx.surrogate.derivative(x)


class _NeuronSpike(SpikeFunction):
    """:class:`SpikeFunction` without the NaN pass, for the neurons (inputs checked upstream)."""

    @staticmethod
    def forward(x: Tensor, surrogate: Surrogate) -> Tensor:
        return _heaviside(x)


class _CompiledSpike(SpikeFunction):
    """:class:`SpikeFunction` as ``torch.compile`` traces it: dynamo refuses a custom ``jvp``."""

    jvp = torch.autograd.Function.jvp  # type: ignore[assignment]  # the base method, restored


class _CompiledNeuronSpike(_NeuronSpike):
    """:class:`_NeuronSpike` as ``torch.compile`` traces it (no custom ``jvp``)."""

    jvp = torch.autograd.Function.jvp  # type: ignore[assignment]  # the base method, restored


# old-style twins for eager autograd: a new-style apply binds its arguments with
# inspect.signature every call (~25 us, three times a spike's own cost in a step loop)
_EagerSpike = eager_twin(SpikeFunction)
_EagerNeuronSpike = eager_twin(_NeuronSpike)


@dataclass(frozen=True)
class Surrogate:
    """Base class: a spike function ``x -> H(x)`` whose gradient is ``derivative(x)``.

    Subclass it and implement :meth:`derivative` to add a surrogate; neurons (and the fused
    multi-step path) only ever call ``surrogate(x)`` and ``surrogate.derivative(x)``.
    """

    alpha: float = 1.0
    name: ClassVar[str] = "surrogate"
    #: True for surrogates that need the membrane potential (see :meth:`fire`).
    needs_potential: ClassVar[bool] = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Checked here rather than in __post_init__: a subclass with its own __init__ skips that.
        if cls.derivative is Surrogate.derivative:
            raise TypeError(f"{cls.__name__} must implement derivative(x) (a Surrogate subclass)")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, gt=0)

    def __call__(self, x: Tensor) -> Tensor:
        """Spikes ``H(x)`` (``x = v - threshold``, any shape) with the surrogate gradient; NaN
        where ``x`` is NaN (see :func:`heaviside`)."""
        fn = function_for_mode(SpikeFunction, _EagerSpike, _CompiledSpike)
        out: Tensor = fn.apply(_floating(x), self)
        return out

    def _spike(self, x: Tensor) -> Tensor:
        """``self(x)`` as the neurons call it: without the NaN pass (their inputs are checked
        upstream), unless a subclass overrides ``__call__``, which is then honoured."""
        if type(self).__call__ is not Surrogate.__call__:
            return self(x)
        fn = function_for_mode(_NeuronSpike, _EagerNeuronSpike, _CompiledNeuronSpike)
        out: Tensor = fn.apply(x, self)
        return out

    def derivative(self, x: Tensor) -> Tensor:
        """The surrogate ``g'(x)``, elementwise, as a new tensor; ``x`` is left unchanged.

        Built-ins work in place on new tensors (still autograd-safe: the reference path
        differentiates through it for double backward).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement derivative(x)")

    def _derivative_over(self, x: Tensor) -> Tensor:
        """``derivative(x)`` for a temporary ``x`` the caller reads no more (the fused backward's
        ``[T, B, ...]`` ``h - threshold``, no graph): built-ins write the result over ``x``, with
        the same ops, so the same bits, and no new ``[T, B, ...]`` tensor. Others: a new one."""
        return self.derivative(x)

    def fire(self, x: Tensor, v: Tensor) -> Tensor:
        """Spikes ``H(x)`` for ``x = v - threshold`` given the membrane ``v`` (same shape).

        Neurons call this instead of ``self(x)`` when :attr:`needs_potential` is set; the base
        class ignores ``v``.
        """
        return self(x)

    def begin(self) -> None:
        """A new sequence starts (called by every multi-step run); stateless: nothing to do."""

    def for_module(self) -> Surrogate:
        """The instance one neuron module should hold: ``self`` for stateless surrogates, a fresh
        copy (own statistics) for stateful ones. Used by :func:`swap_surrogate`."""
        return self


class _Elementwise(Surrogate):
    """A built-in: one formula, :meth:`_formula`, that writes each op into ``out`` (``None``:
    new tensors, as autograd needs them; ``x``: in place)."""

    def derivative(self, x: Tensor) -> Tensor:
        """The surrogate ``g'(x)``, elementwise, as a new tensor; ``x`` is left unchanged."""
        return self._formula(_floating(x), None)

    def _derivative_over(self, x: Tensor) -> Tensor:
        if type(self).derivative is not _Elementwise.derivative:  # a subclass's own formula
            return self.derivative(x)
        return self._formula(x, x)

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class ATan(_Elementwise):
    """``g'(x) = alpha / 2 / (1 + (pi / 2 * alpha * x)^2)`` (Fang et al. 2021)."""

    alpha: float = 2.0
    name: ClassVar[str] = "atan"

    def _coefficients(self) -> tuple[float, float]:
        """``(k, c)`` with ``g'(x) = 1 / (k + c * x * x)`` (the compiled backward uses them too)."""
        half = self.alpha / 2
        return 1.0 / half, (math.pi * half) ** 2 / half

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        # half / (1 + (pi half x)^2) = 1 / (k + c x^2): one addcmul, one reciprocal
        k, c = self._coefficients()
        return torch.addcmul(_const(k, x), x, x, value=c, out=out).reciprocal_()


@dataclass(frozen=True)
class Sigmoid(_Elementwise):
    """``g'(x) = alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x))``."""

    alpha: float = 4.0
    name: ClassVar[str] = "sigmoid"

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        sig = torch.mul(x, self.alpha, out=out).sigmoid_()
        return torch.addcmul(sig, sig, sig, value=-1.0, out=out).mul_(self.alpha)  # sig - sig^2


@dataclass(frozen=True)
class FastSigmoid(_Elementwise):
    """SuperSpike: ``g'(x) = 1 / (alpha * |x| + 1)^2`` (Zenke & Ganguli 2018)."""

    alpha: float = 10.0
    name: ClassVar[str] = "fast_sigmoid"

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        magnitude = torch.abs(x, out=out)
        return torch.add(_const(1.0, x), magnitude, alpha=self.alpha, out=out).pow_(-2)


@dataclass(frozen=True)
class Triangle(_Elementwise):
    """Piecewise linear: ``g'(x) = max(0, alpha - alpha^2 * |x|)`` (support ``|x| < 1/alpha``)."""

    alpha: float = 1.0
    name: ClassVar[str] = "triangle"

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        return torch.abs(x, out=out).mul_(-(self.alpha**2)).add_(self.alpha).relu_()


@dataclass(frozen=True)
class Gaussian(_Elementwise):
    """``g'(x) = alpha / sqrt(pi) * exp(-(alpha x)^2)`` (a normal density, sigma = 1/(alpha √2))."""

    alpha: float = 2.0
    name: ClassVar[str] = "gaussian"

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        # exp(log(alpha / sqrt(pi)) - alpha^2 x^2): one addcmul, one exp
        scale = _const(math.log(self.alpha / math.sqrt(math.pi)), x)
        return torch.addcmul(scale, x, x, value=-(self.alpha**2), out=out).exp_()


@dataclass(frozen=True)
class Rectangular(_Elementwise):
    """Boxcar: ``g'(x) = alpha`` where ``|x| < 1 / (2 alpha)``, else 0 (Wu et al. 2018)."""

    alpha: float = 1.0
    name: ClassVar[str] = "rectangular"

    def _formula(self, x: Tensor, out: Tensor | None) -> Tensor:
        t = torch.abs(x.detach(), out=out)  # piecewise constant: no gradient to carry
        return t.lt_(0.5 / self.alpha).mul_(self.alpha)


_REGISTRY: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (ATan, Sigmoid, FastSigmoid, Triangle, Gaussian, Rectangular)
}
_ALIASES = {"superspike": "fast_sigmoid", "piecewise_linear": "triangle", "rect": "rectangular"}


def surrogate_names() -> list[str]:
    """Names accepted by :func:`get_surrogate` (aliases included)."""
    return sorted([*_REGISTRY, *_ALIASES])


def get_surrogate(surrogate: Surrogate | str, alpha: float | None = None) -> Surrogate:
    """A :class:`Surrogate` from an instance or a name such as ``"atan"`` (default alpha).

    >>> get_surrogate("superspike", alpha=25.0)
    FastSigmoid(alpha=25.0)
    """
    if isinstance(surrogate, Surrogate):
        if alpha is not None:
            raise ValueError(
                f"alpha must be None when surrogate is an instance, got alpha={alpha!r:.80} "
                f"with surrogate={surrogate!r}"
            )
        return surrogate
    check_type("surrogate", surrogate, (Surrogate, str))
    name = check_choice("surrogate", surrogate.lower(), surrogate_names())
    cls = _REGISTRY[_ALIASES.get(name, name)]
    return cls() if alpha is None else cls(alpha=alpha)


class SurrogateSwap:
    """The handle :func:`swap_surrogate` returns: which surrogates it replaced, and how to put
    them back (:meth:`restore`, or leave a ``with`` block).

    Attributes:
        old: ``{module name: surrogate it held before}``.
        new: ``{module name: surrogate it holds now}``.
    """

    def __init__(self, swapped: list[tuple[str, nn.Module, Surrogate, Surrogate]]) -> None:
        check_type("swapped", swapped, list)
        for entry in swapped:
            if not (
                isinstance(entry, tuple)
                and len(entry) == 4
                and isinstance(entry[0], str)
                and isinstance(entry[1], nn.Module)
                and isinstance(entry[2], Surrogate)
                and isinstance(entry[3], Surrogate)
            ):
                raise TypeError(
                    "swapped must hold (name, module, old surrogate, new surrogate) tuples, "
                    f"got {entry!r:.80}"
                )
        self._swapped = swapped
        self.old = {name: old for name, _, old, _ in swapped}
        self.new = {name: new for name, _, _, new in swapped}
        self.restored = False

    def __len__(self) -> int:
        return len(self._swapped)

    def __iter__(self) -> Iterator[str]:
        return iter(self.old)

    def begin(self) -> None:
        """Call ``begin()`` on every new surrogate (needed only when driving the functional
        ``*_step`` by hand, or a sequence that starts from a given state)."""
        for sg in self.new.values():
            sg.begin()

    def restore(self) -> None:
        """Put the old surrogates back (idempotent).

        Raises:
            RuntimeError: a module no longer holds the surrogate this swap installed (a later
                swap on it is still in place: restore swaps last in, first out); nothing is
                restored then.
        """
        if self.restored:
            return
        for name, module, _, new in self._swapped:
            held = getattr(module, "surrogate", None)
            if held is not new:
                raise RuntimeError(
                    f"cannot restore: module {name!r} holds {held!r}, not the {new!r} this "
                    "swap installed; restore the later swap_surrogate on it first (swaps are "
                    "undone last in, first out)"
                )
        for _, module, old, _ in self._swapped:
            setattr(module, "surrogate", old)  # noqa: B010 (plain attribute)
        self.restored = True

    def __enter__(self) -> SurrogateSwap:
        if self.restored:
            raise RuntimeError(
                "this SurrogateSwap was already restored and cannot be entered again; call "
                "swap_surrogate(model, surrogate) for a new swap"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def __repr__(self) -> str:
        return f"SurrogateSwap({len(self)} modules, restored={self.restored})"


def swap_surrogate(model: nn.Module, surrogate: Surrogate | str) -> SurrogateSwap:
    """Replace the surrogate of every neuron module in ``model`` (in place).

    A neuron module is any submodule (``model`` included) whose ``surrogate`` attribute is a
    :class:`Surrogate`: every neuron class of this package and anything built the same way.
    Each one gets ``surrogate.for_module()``, so stateful surrogates (running statistics) are
    not shared between layers. The forward pass is unchanged (spikes are always the Heaviside
    step); only the gradient changes. Use the result as a context manager to restore the old
    surrogates on exit, or call its ``restore()``::

        with swap_surrogate(model, PDSG()):
            x_adv = pgd(model, x, y, eps=0.1)

    Args:
        model: the network (an ``nn.Module``).
        surrogate: a :class:`Surrogate` or its name (see :func:`surrogate_names`).

    Returns:
        A :class:`SurrogateSwap` with the replaced (``old``) and new surrogates per module name.

    Raises:
        ValueError: ``model`` holds no neuron module with a surrogate.
    """
    check_type("model", model, nn.Module)
    sg = get_surrogate(surrogate)
    swapped = []
    for name, module in model.named_modules():
        old = getattr(module, "surrogate", None)
        if isinstance(old, Surrogate):
            new = sg.for_module()
            setattr(module, "surrogate", new)  # noqa: B010
            swapped.append((name, module, old, new))
    if not swapped:
        raise ValueError(
            f"model must contain at least one neuron module with a Surrogate in its "
            f"'surrogate' attribute, got a {type(model).__name__} with none"
        )
    return SurrogateSwap(swapped)
