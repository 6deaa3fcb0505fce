"""Surrogate spike functions: Heaviside forward, analytic surrogate backward, lookup."""

import copy
import dataclasses
import math
import pickle
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.snn import (
    ATan,
    FastSigmoid,
    Gaussian,
    Rectangular,
    Sigmoid,
    Surrogate,
    Triangle,
    get_surrogate,
    heaviside,
    surrogate_names,
)


# the formulas, written out independently of the package, scalar by scalar
def _atan(x: float, a: float) -> float:
    return a / 2 / (1 + (math.pi / 2 * a * x) ** 2)


def _sigmoid(x: float, a: float) -> float:
    s = 1 / (1 + math.exp(-a * x))
    return a * s * (1 - s)


def _fast_sigmoid(x: float, a: float) -> float:
    return 1 / (a * abs(x) + 1) ** 2


def _triangle(x: float, a: float) -> float:
    return max(0.0, a - a * a * abs(x))


def _gaussian(x: float, a: float) -> float:
    return a / math.sqrt(math.pi) * math.exp(-((a * x) ** 2))


def _rect(x: float, a: float) -> float:
    return a if abs(x) < 1 / (2 * a) else 0.0


FORMULAS = [
    (ATan, _atan, 2.0),
    (Sigmoid, _sigmoid, 4.0),
    (FastSigmoid, _fast_sigmoid, 10.0),
    (Triangle, _triangle, 1.0),
    (Gaussian, _gaussian, 2.0),
    (Rectangular, _rect, 1.0),
]
CLASSES = [cls for cls, _, _ in FORMULAS]


@pytest.mark.parametrize(("cls", "formula", "default"), FORMULAS)
def test_default_alpha(cls: type[Surrogate], formula: object, default: float) -> None:
    assert cls().alpha == default


@pytest.mark.parametrize("cls", CLASSES)
def test_forward_is_heaviside_with_ge(cls: type[Surrogate]) -> None:
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0])
    assert torch.equal(cls()(x), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))
    assert torch.equal(heaviside(x), cls()(x))


@pytest.mark.parametrize(("cls", "formula", "default"), FORMULAS)
@settings(max_examples=20, deadline=None)
@given(
    alpha=st.floats(0.2, 20.0),
    xs=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=16),
    upstream=st.floats(-2.0, 2.0),
)
def test_backward_equals_formula(
    cls: type[Surrogate], formula: object, default: float, alpha: float, xs: list, upstream: float
) -> None:
    f = formula  # type: ignore[assignment]
    # keep clear of the rectangle's discontinuity, where rounding decides the side
    if cls is Rectangular:
        xs = [x for x in xs if abs(abs(x) - 0.5 / alpha) > 1e-9] or [0.0]
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    (cls(alpha)(x) * upstream).sum().backward()
    want = torch.tensor([upstream * f(v, alpha) for v in xs], dtype=torch.float64)  # type: ignore[operator]
    torch.testing.assert_close(x.grad, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_derivative_is_pure_and_twice_differentiable(cls: type[Surrogate]) -> None:
    """Built-ins work in place on one new tensor: x is untouched, double backward still works."""
    x = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    g = cls(0.7).derivative(x)
    assert torch.equal(x, before)
    assert g.data_ptr() != x.data_ptr()
    if cls is not Rectangular:  # piecewise constant: no graph at all
        assert torch.autograd.gradcheck(cls(0.7).derivative, (x.clone().requires_grad_(),))
    xg = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad((cls(0.7)(xg) * xg).sum(), xg, create_graph=True)
    gx.sum().backward()  # through the surrogate's own derivative
    assert xg.grad is not None


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_derivative_over_a_temporary_is_the_same_bits_in_place(
    cls: type[Surrogate], dtype: torch.dtype
) -> None:
    """What the fused backward calls on its own ``h - threshold``: the built-in's formula,
    written over the tensor (no new ``[T, B, ...]`` tensor), bit-identical to derivative."""
    x = torch.randn(4, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 2
    expected = cls(0.7).derivative(x)
    temporary = x.clone()
    out = cls(0.7)._derivative_over(temporary)
    assert out.data_ptr() == temporary.data_ptr()
    assert torch.equal(out, expected)


@pytest.mark.parametrize("cls", CLASSES)
def test_eager_spike_matches_the_transformable_function(cls: type[Surrogate]) -> None:
    """Eager autograd fires through an old-style Function (no per-call signature binding):
    the same spikes, gradients and second derivatives as the new-style one torch.func uses."""
    from neuronkit.snn.surrogate import SpikeFunction, _NeuronSpike

    x0 = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    surrogate = cls(0.7)

    def run(fire: Any) -> list[torch.Tensor]:
        x = x0.clone().requires_grad_()
        s = fire(x)
        (gx,) = torch.autograd.grad((s * x).sum(), x, create_graph=True)
        (gx * x0).sum().backward()
        return [s.detach(), gx.detach(), x.grad]

    for eager, new_style in ((surrogate, SpikeFunction), (surrogate._spike, _NeuronSpike)):
        want = run(lambda x, fn=new_style: fn.apply(x, surrogate))
        for got, ref in zip(run(eager), want, strict=True):
            assert torch.equal(got, ref)
    assert type(surrogate._spike(x0.clone().requires_grad_()).grad_fn).__name__ == (
        "Eager_NeuronSpikeBackward"
    )


@pytest.mark.parametrize("cls", CLASSES)
def test_derivative_integrates_to_one(cls: type[Surrogate]) -> None:
    alpha = 3.0
    x = torch.linspace(-200, 200, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(cls(alpha).derivative(x), x).item()
    want = 2 / alpha if cls is FastSigmoid else 1.0
    assert area == pytest.approx(want, rel=2e-3)


def test_lookup_by_name_and_alias() -> None:
    assert get_surrogate("atan") == ATan()
    assert get_surrogate("ATan", alpha=3.0) == ATan(3.0)
    assert get_surrogate("superspike") == FastSigmoid()
    assert get_surrogate("piecewise_linear") == Triangle()
    assert get_surrogate("rect") == Rectangular()
    inst = Gaussian(0.5)
    assert get_surrogate(inst) is inst
    assert {"atan", "sigmoid", "fast_sigmoid", "triangle", "gaussian", "rectangular"} <= set(
        surrogate_names()
    )


def test_surrogates_are_frozen_and_hashable() -> None:
    s = ATan(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.alpha = 3.0  # type: ignore[misc]
    assert len({ATan(2.0), ATan(2.0), Sigmoid(2.0)}) == 2


def test_custom_surrogate_subclass() -> None:
    @dataclasses.dataclass(frozen=True)
    class Flat(Surrogate):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, self.alpha)

    x = torch.tensor([-1.0, 1.0], requires_grad=True)
    Flat(0.5)(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.5, 0.5]))


def test_a_surrogate_without_derivative_is_refused_at_construction() -> None:
    # It used to build, run forward and fail only at backward with a bare NotImplementedError.
    @dataclasses.dataclass(frozen=True)
    class NoDeriv(Surrogate):
        pass

    class OwnInit(Surrogate):  # its own __init__ skips the dataclass __post_init__
        def __init__(self, beta: float) -> None:
            object.__setattr__(self, "beta", beta)

    with pytest.raises(TypeError, match=r"^NoDeriv must implement derivative\(x\)"):
        NoDeriv()
    with pytest.raises(TypeError, match=r"^OwnInit must implement derivative\(x\)"):
        OwnInit(2.0)
    with pytest.raises(TypeError, match=r"^Surrogate must implement derivative\(x\)"):
        Surrogate()

    class Later(Surrogate):  # an abstract base may leave it to its subclasses
        pass

    class Done(Later):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones_like(x)

    assert Done()(torch.zeros(2)).tolist() == [1.0, 1.0]
    s = ATan(3.0)
    assert pickle.loads(pickle.dumps(s)) == s
    assert copy.deepcopy(s) == s
    assert dataclasses.replace(s, alpha=1.0) == ATan(1.0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="surrogate must be one of"):
        get_surrogate("nope")
    with pytest.raises(TypeError, match="surrogate must be"):
        get_surrogate(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha must be > 0, got -1"):
        ATan(-1.0)
    with pytest.raises(ValueError, match="alpha must be > 0, got 0"):
        get_surrogate("sigmoid", alpha=0.0)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        Triangle("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha must be None when surrogate is an instance"):
        get_surrogate(ATan(), alpha=2.0)


@pytest.mark.parametrize("cls", CLASSES)
def test_integer_input_is_refused(cls: type[Surrogate]) -> None:
    ints = torch.ones(3, dtype=torch.long)
    with pytest.raises(
        TypeError, match=r"x must be a floating-point tensor, got dtype torch\.int64"
    ):
        cls()(ints)
    with pytest.raises(
        TypeError, match=r"x must be a floating-point tensor, got dtype torch\.int64"
    ):
        cls().derivative(ints)


def test_nan_is_not_reported_as_no_spike() -> None:
    x = torch.tensor([float("nan"), 1.0, -1.0, float("inf"), float("-inf")])
    want = torch.tensor([float("nan"), 1.0, 0.0, 1.0, 0.0])
    torch.testing.assert_close(heaviside(x), want, equal_nan=True)
    for cls in CLASSES:
        torch.testing.assert_close(cls()(x), want, equal_nan=True)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):  # extremes of each dtype too
        info = torch.finfo(dtype)
        extremes = torch.tensor([info.max, -info.max, info.tiny, -info.tiny], dtype=dtype)
        y = torch.cat([x.to(dtype), extremes])
        expected = torch.cat([want, torch.tensor([1.0, 0.0, 1.0, 0.0])]).to(dtype)
        torch.testing.assert_close(heaviside(y), expected, equal_nan=True, rtol=0, atol=0)
    assert torch.equal(heaviside(torch.tensor([1, -1])), torch.tensor([1, 0]))  # integers as before


def test_neurons_fire_through_the_unchecked_path() -> None:
    """Neurons skip the NaN pass (their input is checked upstream) but honour a subclass that
    overrides ``__call__``."""
    from neuronkit.snn import lif_step

    calls = []

    @dataclasses.dataclass(frozen=True)
    class Loud(ATan):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape)
            return super().__call__(x)

    lif_step(torch.ones(2, 3), surrogate=Loud())
    assert calls == [torch.Size([2, 3])]
    x = torch.tensor([float("nan"), 1.0])
    assert torch.equal(ATan()._spike(x), torch.tensor([0.0, 1.0]))  # the unchecked fast path
