"""The fused multi-step path equals the step-by-step reference, forward exactly."""

import dataclasses
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.snn import (
    ALIF,
    IF,
    LI,
    LIF,
    PLIF,
    ATan,
    CuBaLIF,
    FastSigmoid,
    Gaussian,
    IFState,
    LIFState,
    Rectangular,
    Sigmoid,
    Surrogate,
    Triangle,
    if_multistep,
    lif_multistep,
)
from neuronkit.snn.multistep import fused_lif

F64 = torch.float64
SURROGATES = [ATan(), Sigmoid(2.5), FastSigmoid(), Triangle(0.7), Gaussian(), Rectangular(0.4)]


def _grad_fn_names(t: torch.Tensor) -> str:
    return type(t.grad_fn).__name__


def _run_both(x: torch.Tensor, leaves: list[torch.Tensor], call: Any) -> tuple[Any, ...]:
    """Run ``call(fused)`` both ways; return outputs and gradients of one random loss."""
    results = []
    for fused in (True, False):
        out = call(fused)
        g = torch.Generator().manual_seed(1)
        w_s = torch.randn(out.spikes.shape, generator=g, dtype=x.dtype)
        w_v = torch.randn(out.v.shape, generator=g, dtype=x.dtype)
        loss = (out.spikes * w_s).sum() + (out.v * w_v).sum() + out.state.v.square().sum()
        results.append((out, torch.autograd.grad(loss, leaves, allow_unused=True)))
    return tuple(results)


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 6),
    B=st.integers(1, 3),
    N=st.integers(1, 4),
    neuron=st.sampled_from(["lif", "if"]),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    detach_reset=st.booleans(),
    decay_input=st.booleans(),
    tau_kind=st.sampled_from(["float", "scalar", "per_neuron"]),
    thr_kind=st.sampled_from(["float", "scalar", "per_neuron"]),
    surrogate=st.sampled_from(SURROGATES),
    v_reset=st.sampled_from([0.0, -0.3]),
    seed=st.integers(0, 2**16),
    from_rest=st.booleans(),
    time_last=st.booleans(),
)
def test_fused_equals_reference(
    T: int,
    B: int,
    N: int,
    neuron: str,
    reset: str,
    detach_reset: bool,
    decay_input: bool,
    tau_kind: str,
    thr_kind: str,
    surrogate: Surrogate,
    v_reset: float,
    seed: int,
    from_rest: bool,
    time_last: bool,
) -> None:
    g = torch.Generator().manual_seed(seed)
    if time_last:  # a non-contiguous [T, B, N] view
        x = (torch.randn(B, N, T, generator=g, dtype=F64) * 1.5).requires_grad_()
        x_in = x.permute(2, 0, 1)
    else:
        x = x_in = (torch.randn(T, B, N, generator=g, dtype=F64) * 1.5).requires_grad_()
    v0 = (torch.randn(B, N, generator=g, dtype=F64) * 0.3).requires_grad_()
    leaves = [x] if from_rest else [x, v0]

    def param(kind: str, value: float) -> Any:
        if kind == "float":
            return value
        shape = () if kind == "scalar" else (N,)
        p = (value + 0.5 * torch.rand(shape, generator=g, dtype=F64)).requires_grad_()
        leaves.append(p)
        return p

    thr = param(thr_kind, 0.8)
    common = {"threshold": thr, "v_reset": v_reset, "reset": reset, "surrogate": surrogate}
    common["detach_reset"] = detach_reset
    if neuron == "lif":
        tau = param(tau_kind, 1.5)
        state = None if from_rest else LIFState(v0)

        def call(fused: bool) -> Any:
            kw = {"tau": tau, "decay_input": decay_input, "fused": fused}
            return lif_multistep(x_in, state, **kw, **common)
    else:

        def call(fused: bool) -> Any:
            return if_multistep(x_in, None if from_rest else IFState(v0), fused=fused, **common)

    (fused, g_fused), (ref, g_ref) = _run_both(x, leaves, call)
    assert "Fused" in _grad_fn_names(fused.spikes)
    assert "Fused" not in _grad_fn_names(ref.spikes)
    assert torch.equal(fused.spikes, ref.spikes)
    assert torch.equal(fused.v, ref.v)
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_float32_forward_identical() -> None:
    x = (torch.randn(16, 4, 8) * 2).requires_grad_()
    for reset in ("subtract", "zero", "none"):
        a = lif_multistep(x, reset=reset, tau=3.0)
        b = lif_multistep(x, reset=reset, tau=3.0, fused=False)
        assert torch.equal(a.spikes, b.spikes)
        assert torch.equal(a.v, b.v)
        (ga,) = torch.autograd.grad(a.spikes.sum(), x)
        (gb,) = torch.autograd.grad(b.spikes.sum(), x)
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_without_grad_runs_the_loop_without_a_graph(reset: str) -> None:
    x = torch.randn(7, 2, 3) * 2
    out = lif_multistep(x, reset=reset)  # nothing requires grad: the loop, no autograd node
    assert out.spikes.grad_fn is None
    with torch.no_grad():
        out2 = lif_multistep(x.clone().requires_grad_(), reset=reset)
    assert out2.spikes.grad_fn is None
    ref = lif_multistep(x, reset=reset, fused=False)
    for a in (out, out2):
        assert torch.equal(a.spikes, ref.spikes)
        assert torch.equal(a.v, ref.v)
        assert torch.equal(a.state.v, ref.state.v)


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["lif", "if", "plif"]),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    detach_reset=st.booleans(),
    decay_input=st.booleans(),
    v_reset=st.sampled_from([0.0, -0.25]),
    grad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_module_forward_equals_reference(
    kind: str,
    reset: str,
    detach_reset: bool,
    decay_input: bool,
    v_reset: float,
    grad: bool,
    seed: int,
) -> None:
    """``module(x)`` skips the membrane trace (its own loop variant): same spikes, same grads."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(6, 2, 5, generator=g, dtype=F64) * 1.5).requires_grad_(grad)
    kw: dict[str, Any] = {"reset": reset, "detach_reset": detach_reset, "v_reset": v_reset}
    if kind != "if":
        kw["decay_input"] = decay_input
    cls = {"lif": lambda **k: LIF(tau=1.7, **k), "if": IF, "plif": lambda **k: PLIF(2.5, **k)}
    spikes, grads = [], []
    needs_grad = grad or kind == "plif"  # PLIF's tau is a parameter
    for fused in (True, False):
        module = cls[kind](fused=fused, **kw).double()
        out = module(x)
        spikes.append(out)
        if needs_grad:
            w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
            leaves = [x] * grad + list(module.parameters())
            grads.append(torch.autograd.grad((out * w).sum(), leaves))
    assert torch.equal(spikes[0], spikes[1])
    assert ("Fused" in _grad_fn_names(spikes[0])) == needs_grad
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_fused_lif_final_membrane_only() -> None:
    x = torch.randn(5, 2, 3, dtype=F64) * 2
    for grad in (False, True):
        xg = x.clone().requires_grad_(grad)
        spikes, v_last = fused_lif(
            xg, torch.zeros(2, 3, dtype=F64), tau=2.0, threshold=1.0, v_reset=0.0,
            reset_mode="zero", detach_reset=False, decay_input=True, surrogate=ATan(),
            keep_v=False,
        )  # fmt: skip
        ref = lif_multistep(xg, reset="zero", fused=False)
        assert torch.equal(spikes, ref.spikes)
        assert torch.equal(v_last, ref.state.v)
        if grad:  # a loss on the final membrane alone reaches x through the fused backward
            (g1,) = torch.autograd.grad(v_last.sum() + spikes.sum(), xg)
            (g2,) = torch.autograd.grad(ref.state.v.sum() + ref.spikes.sum(), xg)
            torch.testing.assert_close(g1, g2, rtol=0, atol=1e-12)


def test_parameter_only_grad_uses_fused() -> None:
    tau = torch.tensor(2.0, requires_grad=True)
    out = lif_multistep(torch.rand(5, 2, 3) * 3, tau=tau)
    assert "Fused" in _grad_fn_names(out.spikes)
    out.spikes.sum().backward()
    assert tau.grad is not None


def test_custom_surrogate_in_fused_path() -> None:
    @dataclasses.dataclass(frozen=True)
    class Box(Surrogate):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return (x.abs() < self.alpha).to(x.dtype)

    x = (torch.randn(6, 2, 3, dtype=F64) * 2).requires_grad_()
    grads = [
        torch.autograd.grad(lif_multistep(x, surrogate=Box(0.5), fused=f).spikes.sum(), x)[0]
        for f in (True, False)
    ]
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


class _Broadcast(Surrogate):
    """A straight-through surrogate whose derivative only broadcasts to x (0-d, a [last]
    row, an expanded view): the fused backward must not write into it."""

    def __init__(self, kind: str) -> None:
        object.__setattr__(self, "kind", kind)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "scalar":
            return torch.tensor(0.5, dtype=x.dtype)
        if self.kind == "row":
            return x.new_full(x.shape[-1:], 0.5)
        return x.new_full((), 0.5).expand_as(x)


@pytest.mark.parametrize("kind", ["scalar", "row", "expanded"])
@pytest.mark.parametrize(
    ("reset", "detach"), [("subtract", False), ("zero", False), ("subtract", True)]
)
@pytest.mark.parametrize("thr_grad", [False, True])
def test_fused_backward_takes_a_broadcastable_derivative(
    kind: str, reset: str, detach: bool, thr_grad: bool
) -> None:
    # The fused backward wrote into the derivative in place: "output with shape [] doesn't
    # match the broadcast shape" (0-d), "more than one element ... refers to a single memory
    # location" (expanded view).
    x = (torch.randn(6, 2, 3, dtype=F64) * 2).requires_grad_()
    thr = torch.tensor(1.0, dtype=F64, requires_grad=thr_grad)
    leaves = (x, thr) if thr_grad else (x,)
    grads = []
    for fused in (True, False):
        out = lif_multistep(
            x, threshold=thr, reset=reset, detach_reset=detach, surrogate=_Broadcast(kind),
            fused=fused,
        )  # fmt: skip
        loss = (out.spikes * torch.arange(3.0, dtype=F64)).sum()
        grads.append(torch.autograd.grad(loss, leaves))
    for fused_grad, ref_grad in zip(*grads):
        torch.testing.assert_close(fused_grad, ref_grad, rtol=0, atol=1e-12)


def test_a_subclass_of_a_builtin_keeps_its_own_derivative_in_the_fused_path() -> None:
    """The fused backward writes built-in derivatives over its temporary with the built-in's
    formula; a subclass that overrides ``derivative`` must still be the one used."""

    @dataclasses.dataclass(frozen=True)
    class Doubled(FastSigmoid):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().derivative(x)

    x = (torch.randn(6, 2, 3, dtype=F64) * 2).requires_grad_()

    def grad(surrogate: Surrogate, fused: bool) -> torch.Tensor:
        return torch.autograd.grad(
            lif_multistep(x, surrogate=surrogate, fused=fused).spikes.sum(), x
        )[0]

    doubled = grad(Doubled(), True)
    torch.testing.assert_close(doubled, grad(Doubled(), False), rtol=0, atol=1e-12)
    assert not torch.allclose(doubled, grad(FastSigmoid(), True))


def test_fused_backward_names_a_derivative_of_the_wrong_shape() -> None:
    class Bad(Surrogate):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones(7, dtype=x.dtype)

    x = torch.randn(4, 2, 3, requires_grad=True)
    with pytest.raises(
        ValueError, match=r"^Bad\.derivative\(x\) must return a tensor broadcastable"
    ):
        LIF(surrogate=Bad())(x).sum().backward()


def test_fused_lif_low_level_matches() -> None:
    x = torch.randn(4, 2, 3, dtype=F64, requires_grad=True)
    v0 = torch.zeros(2, 3, dtype=F64)
    spikes, v = fused_lif(
        x, v0, tau=2.0, threshold=1.0, v_reset=0.0, reset_mode="subtract", detach_reset=False,
        decay_input=True, surrogate=ATan(),
    )  # fmt: skip
    ref = lif_multistep(x, fused=False)
    assert torch.equal(spikes, ref.spikes)
    assert torch.equal(v, ref.v)


def test_fused_backward_refuses_a_higher_order_graph() -> None:
    # autograd skips a once_differentiable error node that does not lead to the inputs, so the
    # second derivative came out silently incomplete; asking for the graph now raises
    x = (torch.rand(5, 2, 3, dtype=F64) * 2).requires_grad_()
    with pytest.raises(RuntimeError, match="fused=False"):
        out = lif_multistep(x, surrogate="sigmoid")
        torch.autograd.grad((out.v**2).sum() + (x**3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="fused=False"):
        torch.autograd.grad(lif_multistep(x).v.sum(), x, create_graph=True)
    # the reference path supports double backward; first-order gradients agree
    ref = lif_multistep(x, surrogate="sigmoid", fused=False)
    (g_ref,) = torch.autograd.grad((ref.v**2).sum() + (x**3).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g_ref.sum(), x)
    assert torch.isfinite(g2).all()
    out = lif_multistep(x, surrogate="sigmoid")
    (g,) = torch.autograd.grad((out.v**2).sum() + (x**3).sum(), x)
    torch.testing.assert_close(g, g_ref.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    from neuronkit.snn import IF, LIF, PLIF

    torch.manual_seed(0)
    net = torch.nn.Sequential(LIF(tau=2.0), PLIF(init_tau=3.0), IF(reset="zero")).double()
    x = (torch.randn(4, 3, 5, dtype=F64) * 2).requires_grad_()
    eager = net(x)
    (g_eager,) = torch.autograd.grad((eager * torch.arange(5.0, dtype=F64)).sum(), x)
    compiled = torch.compile(net, fullgraph=True)
    out = compiled(x)
    (g_comp,) = torch.autograd.grad((out * torch.arange(5.0, dtype=F64)).sum(), x)
    assert torch.equal(out, eager)
    torch.testing.assert_close(g_comp, g_eager, rtol=1e-9, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    neuron=st.sampled_from(["lif", "if"]),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    decay_input=st.booleans(),
    tau=st.sampled_from([1.0, 1.3, 2.0, 50.0]),  # 1.0 = dt: lerp weight 1, decay factor 0
    v_reset=st.sampled_from([0.0, -0.4]),
    bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    where=st.tuples(st.integers(0, 5), st.integers(0, 1), st.integers(0, 2)),
    entry=st.sampled_from(["function", "module", "run"]),
)
def test_nonfinite_input_is_caught_through_the_final_membrane(
    neuron: str,
    reset: str,
    decay_input: bool,
    tau: float,
    v_reset: float,
    bad: float,
    where: tuple[int, int, int],
    entry: str,
) -> None:
    """The fused path checks finiteness on the final membrane, not on all of x: any NaN/inf
    anywhere in x must still reach it (and then be reported against x)."""
    x = torch.rand(6, 2, 3, dtype=F64) * 2
    x[where] = bad
    kw: dict[str, Any] = {"reset": reset, "v_reset": v_reset}
    if neuron == "lif":
        kw.update(tau=tau, decay_input=decay_input)
    fn = lif_multistep if neuron == "lif" else if_multistep
    module = (LIF if neuron == "lif" else IF)(**kw)
    call = {
        "function": lambda: fn(x, **kw),
        "module": lambda: module(x),
        "run": lambda: module.run(x),
    }
    with pytest.raises(ValueError, match="x must be finite"):
        call[entry]()
    fn(x, validate=False, **kw)  # not checked when asked not to


def test_finite_but_overflowing_input_is_accepted() -> None:
    x = torch.full((4, 1, 2), 3e38)  # finite, but the membrane overflows to inf
    out = if_multistep(x)
    assert not torch.isfinite(out.v).all()  # the witness fails, the exact check on x passes


def test_state_dtype_must_match_input() -> None:
    x = torch.zeros(3, 2, 4)
    with pytest.raises(TypeError, match=r"state\.v must have x's dtype torch\.float32"):
        lif_multistep(x, LIFState(torch.zeros(2, 4, dtype=F64)))


@pytest.mark.parametrize(
    "make",
    [IF, LIF, lambda: LIF(fused=False), ALIF, CuBaLIF, LI],
    ids=["IF", "LIF", "LIF-unfused", "ALIF", "CuBaLIF", "LI"],
)
@pytest.mark.parametrize("how", ["run", "step"])
def test_state_on_another_device_than_the_input_is_refused(make: Any, how: str) -> None:
    """A state left on another device (a model moved with .to(device) mid-sequence) is named
    before any loop runs: the compiled CPU loop would read its memory as host memory (it
    crashed the process with a meta-device state)."""
    neuron = make()
    x = torch.rand(4, 3, 5)
    fields = neuron.run(x)[-1]
    moved = type(fields)(*(torch.zeros(3, 5, device="meta") for _ in fields))
    with pytest.raises(ValueError, match=r"state\.v must be on x's device cpu, got meta"):
        getattr(neuron, how)(x if how == "run" else x[0], moved)


def test_inference_mode_then_training() -> None:
    """Shared 0-d constants made under inference mode must not poison a later autograd run."""
    with torch.inference_mode():
        LIF(threshold=0.7)(torch.rand(3, 2, 4) * 2)
    x = (torch.rand(3, 2, 4) * 2).requires_grad_()
    LIF(threshold=0.7)(x).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_fused_equals_reference_when_dt_is_not_one(reset: str, decay_input: bool) -> None:
    """With dt = 0.5 and per-neuron tau and threshold: same spikes and membranes, and the same
    gradients for x, tau and threshold (the hypothesis test above keeps dt = 1)."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(3, 5, 7, generator=g, dtype=F64) * 1.5).requires_grad_()
    x_in = x.permute(2, 0, 1)  # a non-contiguous [T, B, N] view
    tau = torch.tensor([0.6, 1.2, 2.0, 3.0, 5.5], dtype=F64, requires_grad=True)
    thr = torch.tensor([0.8, 1.0, 1.2, 0.9, 1.1], dtype=F64, requires_grad=True)

    def call(fused: bool) -> Any:
        return lif_multistep(
            x_in, tau=tau, threshold=thr, v_reset=-0.2, reset=reset, decay_input=decay_input,
            dt=0.5, fused=fused,
        )  # fmt: skip

    (fused, g_fused), (ref, g_ref) = _run_both(x, [x, tau, thr], call)
    assert "Fused" in _grad_fn_names(fused.spikes)
    assert "Fused" not in _grad_fn_names(ref.spikes)
    assert 0 < float(fused.spikes.detach().mean()) < 1
    assert torch.equal(fused.spikes, ref.spikes)
    assert torch.equal(fused.v, ref.v)
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_module_forward_gradients_equal_run_for_per_neuron_tau_and_threshold(reset: str) -> None:
    """``module(x)`` (fused, no membrane trace kept) and ``module.run(x).spikes`` give the same
    spikes and the same gradients for x and learnable per-neuron tau and threshold."""
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(7, 3, 5, generator=g, dtype=F64) * 1.5).requires_grad_()
    tau = torch.nn.Parameter(1.2 + 3.0 * torch.rand(5, generator=g, dtype=F64))
    thr = torch.nn.Parameter(0.8 + 0.4 * torch.rand(5, generator=g, dtype=F64))
    lif = LIF(tau=tau, threshold=thr, v_reset=-0.2, reset=reset, dt=0.5)  # type: ignore[arg-type]
    w = torch.randn(7, 3, 5, generator=g, dtype=F64)
    spikes, grads = [], []
    for out in (lif(x), lif.run(x).spikes):
        assert "Fused" in _grad_fn_names(out)
        spikes.append(out)
        grads.append(torch.autograd.grad((out * w).sum(), [x, tau, thr]))
    assert 0 < float(spikes[0].detach().mean()) < 1
    assert torch.equal(spikes[0], spikes[1])
    for a, b in zip(*grads):
        assert bool(b.abs().max() > 0)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def _assert_fused_matches_reference(runs: list[tuple[Any, tuple[torch.Tensor, ...]]]) -> None:
    """``runs``: ``(output, gradients)`` of a two-state neuron, fused then reference: the fused
    Function ran, the forward is exact and the gradients agree to 1e-10."""
    (fused_out, fused_grads), (ref, ref_grads) = runs
    assert "Fused" in _grad_fn_names(fused_out.spikes)
    assert "Fused" not in _grad_fn_names(ref.spikes)
    for a, b in [
        (fused_out.spikes, ref.spikes),
        (fused_out.v, ref.v),
        *zip(fused_out.state, ref.state),
    ]:
        assert torch.equal(a, b)
    for a, b in zip(fused_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(1, 6),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    detach_reset=st.booleans(),
    decay_input=st.booleans(),
    tau_syn_kind=st.sampled_from(["float", "scalar", "per_neuron"]),
    tau_mem_kind=st.sampled_from(["float", "scalar", "per_neuron"]),
    surrogate=st.sampled_from(SURROGATES),
    v_reset=st.sampled_from([0.0, -0.3]),
    from_rest=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fused_cuba_equals_its_reference_loop(
    T: int, reset: str, detach_reset: bool, decay_input: bool, tau_syn_kind: str,
    tau_mem_kind: str, surrogate: Surrogate, v_reset: float, from_rest: bool, seed: int,
) -> None:  # fmt: skip
    from neuronkit.snn import CuBaLIFState, cuba_lif_multistep

    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, 2, 4, generator=g, dtype=F64) * 1.5).requires_grad_()
    v0 = (torch.randn(2, 4, generator=g, dtype=F64) * 0.3).requires_grad_()
    i0 = (torch.randn(2, 4, generator=g, dtype=F64) * 0.3).requires_grad_()
    leaves = [x] if from_rest else [x, v0, i0]

    def param(kind: str, value: float) -> Any:
        if kind == "float":
            return value
        p = value + torch.rand(() if kind == "scalar" else (4,), generator=g, dtype=F64)
        leaves.append(p.requires_grad_())
        return p

    kw = {"tau_syn": param(tau_syn_kind, 1.5), "tau_mem": param(tau_mem_kind, 2.0)}
    kw |= {"reset": reset, "detach_reset": detach_reset, "decay_input": decay_input}
    kw |= {"surrogate": surrogate, "v_reset": v_reset, "threshold": 0.7}
    state = None if from_rest else CuBaLIFState(v0, i0)
    runs = []
    for fused in (True, False):
        out = cuba_lif_multistep(x, state, fused=fused, **kw)
        w = torch.randn(out.spikes.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
        loss = (out.spikes * w).sum() + (out.v * w).sum() + out.state.i.square().sum()
        runs.append((out, torch.autograd.grad(loss, leaves)))
    _assert_fused_matches_reference(runs)


def test_fused_cuba_backward_refuses_a_higher_order_graph_and_the_module_runs_fused() -> None:
    from neuronkit.snn import CuBaLIF, cuba_lif_multistep

    x = (torch.rand(5, 2, 3, dtype=F64) * 2).requires_grad_()
    with pytest.raises(RuntimeError, match="fused=False"):
        torch.autograd.grad(cuba_lif_multistep(x).v.sum(), x, create_graph=True)
    ref = cuba_lif_multistep(x, fused=False)
    (g_ref,) = torch.autograd.grad(ref.v.square().sum(), x, create_graph=True)
    assert torch.isfinite(torch.autograd.grad(g_ref.sum(), x)[0]).all()
    spikes = CuBaLIF(tau_mem=3.0, tau_syn=2.0)(x)
    assert "Fused" in _grad_fn_names(spikes)
    reference = CuBaLIF(tau_mem=3.0, tau_syn=2.0, fused=False)(x)
    assert "Fused" not in _grad_fn_names(reference)
    assert torch.equal(spikes, reference)
    with pytest.raises(TypeError, match="fused"):
        CuBaLIF(fused="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fused"):
        cuba_lif_multistep(x, fused=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("i0_shape", [(), (3,), (1, 3), (2, 3)])
@pytest.mark.parametrize("per_neuron_tau", [False, True])
def test_fused_current_aten_loop_takes_a_broadcastable_initial_current(
    i0_shape: tuple[int, ...], per_neuron_tau: bool
) -> None:
    # the ATen loop (CUDA, NEURONKIT_SNN_NATIVE=0) wrote a 0-d or [N] i0 through out= tensors
    # of shape [B, N]: "output with shape [...] doesn't match the broadcast shape"
    from neuronkit.snn.multistep import _current_loop, fused_current

    x = torch.rand(4, 2, 3, dtype=F64)
    i0 = torch.rand(i0_shape, dtype=F64)
    tau = torch.tensor([2.0, 3.0, 5.0], dtype=F64) if per_neuron_tau else 2.5
    expected, i = [], i0
    for x_t in x:
        i = (i - i / tau) + x_t
        expected.append(i)
    aten = _current_loop(x, i0, tau, native=False)
    torch.testing.assert_close(aten, torch.stack(expected), rtol=0, atol=1e-15)
    torch.testing.assert_close(fused_current(x, i0, tau), aten, rtol=0, atol=1e-15)


PARAMETER_KINDS = ["float", "constant", "scalar", "per_neuron"]


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(1, 7),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    detach_reset=st.booleans(),
    decay_input=st.booleans(),
    kinds=st.tuples(*[st.sampled_from(PARAMETER_KINDS)] * 4),
    surrogate=st.sampled_from(SURROGATES),
    v_reset=st.sampled_from([0.0, -0.3]),
    from_rest=st.booleans(),
    outputs=st.sampled_from(["spikes", "all"]),
    seed=st.integers(0, 2**16),
)
def test_fused_alif_equals_its_reference_loop(
    T: int, reset: str, detach_reset: bool, decay_input: bool, kinds: tuple[str, ...],
    surrogate: Surrogate, v_reset: float, from_rest: bool, outputs: str, seed: int,
) -> None:  # fmt: skip
    """Same forward bits; the hand-written gradients of x, v0, a0 and of every learnable
    parameter (``scalar``: a 0-d tensor, ``per_neuron``: one per neuron; ``float`` and
    ``constant`` per-neuron tensors have none) to 1e-10 (float64)."""
    from neuronkit.snn import ALIFState, alif_multistep

    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, 2, 5, generator=g, dtype=F64) * 1.5 + 0.5).requires_grad_()
    v0 = (torch.randn(2, 5, generator=g, dtype=F64) * 0.3).requires_grad_()
    a0 = torch.rand(2, 5, generator=g, dtype=F64).requires_grad_()
    leaves = [x] if from_rest else [x, v0, a0]

    def param(kind: str, value: float) -> Any:
        if kind == "float":
            return value
        p = value + torch.rand(() if kind == "scalar" else (5,), generator=g, dtype=F64)
        if kind != "constant":
            leaves.append(p.requires_grad_())
        return p

    names = ("tau", "tau_adapt", "beta", "threshold")
    kw: dict[str, Any] = {n: param(k, v) for n, k, v in zip(names, kinds, (2.0, 5.0, 0.8, 0.6))}
    kw |= {"reset": reset, "detach_reset": detach_reset, "decay_input": decay_input}
    kw |= {"surrogate": surrogate, "v_reset": v_reset}
    state = None if from_rest else ALIFState(v0, a0)
    runs = []
    for fused in (True, False):
        out = alif_multistep(x, state, fused=fused, **kw)
        w = torch.randn(out.spikes.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
        loss = (out.spikes * w).sum()
        if outputs == "all":
            loss = loss + (out.v * w).sum() + out.state.a.square().sum()
        # with T = 1 and only spikes in the loss, tau_adapt is not used: a zero gradient
        grads = torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)
        runs.append((out, grads))
    _assert_fused_matches_reference(runs)


def test_fused_alif_falls_back_refuses_double_backward_and_the_module_runs_fused() -> None:
    from neuronkit.snn import ALIF, alif_multistep
    from neuronkit.snn.attacks import PDSG

    x = (torch.rand(6, 2, 3, dtype=F64) * 2).requires_grad_()
    with pytest.raises(RuntimeError, match="fused=False"):
        torch.autograd.grad(alif_multistep(x).v.sum(), x, create_graph=True)
    runs = [alif_multistep(x, fused=f) for f in (True, False)]
    pdsg = alif_multistep(x, surrogate=PDSG())  # needs the membrane per step: reference loop
    assert "Fused" not in _grad_fn_names(pdsg.spikes)
    with torch.no_grad():  # no gradient: the graph-free loop, same bits
        assert torch.equal(alif_multistep(x).spikes, runs[1].spikes)
    spikes = ALIF(tau=3.0, tau_adapt=4.0)(x)
    assert "Fused" in _grad_fn_names(spikes)
    reference = ALIF(tau=3.0, tau_adapt=4.0, fused=False)(x)
    assert "Fused" not in _grad_fn_names(reference)
    assert torch.equal(spikes, reference)
    grads = []  # a module whose tau_adapt and beta are parameters runs fused too
    for fused in (True, False):
        tau_adapt = torch.nn.Parameter(torch.tensor(4.0, dtype=F64))
        beta = torch.nn.Parameter(torch.full((3,), 1.5, dtype=F64))
        layer = ALIF(tau_adapt=tau_adapt, beta=beta, fused=fused)
        spikes = layer(x)
        assert ("Fused" in _grad_fn_names(spikes)) == fused
        spikes.sum().backward()
        grads.append([layer.tau_adapt.grad, layer.beta.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    with pytest.raises(TypeError, match="fused"):
        ALIF(fused="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fused"):
        alif_multistep(x, fused=1)  # type: ignore[arg-type]
