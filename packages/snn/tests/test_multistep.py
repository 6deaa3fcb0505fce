"""The fused multi-step path equals the step-by-step reference, forward exactly."""

import dataclasses
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.snn import (
    ATan,
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
) -> None:
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, B, N, generator=g, dtype=F64) * 1.5).requires_grad_()
    v0 = (torch.randn(B, N, generator=g, dtype=F64) * 0.3).requires_grad_()
    leaves = [x, v0]

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
        state = LIFState(v0)

        def call(fused: bool) -> Any:
            return lif_multistep(x, state, tau=tau, decay_input=decay_input, fused=fused, **common)
    else:

        def call(fused: bool) -> Any:
            return if_multistep(x, IFState(v0), fused=fused, **common)

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


def test_without_grad_takes_reference_path() -> None:
    x = torch.randn(5, 2, 3)
    out = lif_multistep(x)  # nothing requires grad: plain loop, no autograd node
    assert out.spikes.grad_fn is None
    with torch.no_grad():
        out2 = lif_multistep(x.requires_grad_())
    assert out2.spikes.grad_fn is None
    assert torch.equal(out.spikes, out2.spikes)


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


def test_fused_is_once_differentiable() -> None:
    x = (torch.randn(4, 2, 3, dtype=F64) * 2).requires_grad_()
    (g,) = torch.autograd.grad(lif_multistep(x).v.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
    (g_ref,) = torch.autograd.grad(lif_multistep(x, fused=False).v.sum(), x, create_graph=True)
    g_ref.sum().backward()  # the reference path supports double backward


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
