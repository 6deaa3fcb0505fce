"""The hand-written backward passes against an independent reference: the documented
recurrences written here with plain autograd ops (not ``neuronkit.snn._core``), and each spike
as ``H(x) + G(x) - G(x).detach()`` for a smooth step ``G`` whose derivative is the documented
surrogate. Covers what the fused-vs-``fused=False`` tests leave out: losses on only some outputs
(``g_s`` or ``g_v`` absent), non-contiguous and stride-0 incoming gradients, per-neuron
parameters shaped ``[1, N]`` and ``[B, N]``, parameter-only gradients, the final-membrane-only
output (``keep_v=False``), and finite differences where the output is smooth."""

import itertools
import math
import random
from typing import Any

import pytest
import torch
from torch.autograd import gradcheck

from neuronkit.snn import (
    ALIFState,
    ATan,
    CuBaLIFState,
    FastSigmoid,
    Gaussian,
    IFState,
    LIFState,
    Rectangular,
    Sigmoid,
    SpikeLinear,
    Triangle,
    alif_multistep,
    cuba_lif_multistep,
    if_multistep,
    lif_multistep,
)
from neuronkit.snn.multistep import fused_current, fused_lif
from neuronkit.snn.training.iir import IIRLIF, ScaledTriangle

F64 = torch.float64
SURROGATES = [
    ATan(0.7),
    Sigmoid(2.5),
    FastSigmoid(3.0),
    Triangle(0.6),
    Gaussian(1.1),
    Rectangular(0.4),
    ScaledTriangle(0.7),
]


def _smooth(sg: Any, x: torch.Tensor) -> torch.Tensor:
    """A smooth step whose derivative is the documented surrogate ``g'(x)``."""
    a, name = sg.alpha, type(sg).__name__
    if name == "ATan":
        return torch.atan(math.pi / 2 * a * x) / math.pi
    if name == "Sigmoid":
        return torch.sigmoid(a * x)
    if name == "FastSigmoid":
        return x / (1 + a * x.abs())
    if name == "Triangle":
        y = x.clamp(-1 / a, 1 / a)
        return a * y - a * a * y * y.abs() / 2
    if name == "Gaussian":
        return 0.5 * torch.erf(a * x)
    if name == "Rectangular":
        return a * x.clamp(-0.5 / a, 0.5 / a)
    y = x.clamp(-1.0, 1.0)  # ScaledTriangle: alpha * max(0, 1 - |x|)
    return a * (y - y * y.abs() / 2)


def _spike(sg: Any, x: torch.Tensor) -> torch.Tensor:
    G = _smooth(sg, x)
    return (x >= 0).to(x.dtype) + (G - G.detach())


def _lif_step(x, v, tau, thr, v_reset, mode, detach, decay_input, sg):
    if tau is None:
        h = v + x
    elif decay_input:
        h = v + (x - (v - v_reset)) / tau
    else:
        h = v - (v - v_reset) / tau + x
    s = _spike(sg, h - thr)
    r = s.detach() if detach else s
    v = {"subtract": h - r * thr, "zero": h * (1 - r) + r * v_reset, "none": h}[mode]
    return s, v


def _reference(
    neuron: str,
    x: torch.Tensor,
    v: torch.Tensor,
    second: torch.Tensor,
    p: dict[str, Any],
    c: dict[str, Any],
) -> tuple[torch.Tensor, ...]:
    """``(spikes, v [T, B, N], v_T, a_T or i_T)`` by the documented equations."""
    ss, vs = [], []
    for t in range(x.shape[0]):
        if neuron == "alif":
            theta = p["threshold"] + p["beta"] * second
            s, v = _lif_step(x[t], v, p["tau"], theta, **c)
            second = second + (s - second) / p["tau_adapt"]
        elif neuron == "cuba":
            second = second - second / p["tau_syn"] + x[t]
            s, v = _lif_step(second, v, p["tau_mem"], p["threshold"], **c)
        else:
            s, v = _lif_step(x[t], v, p.get("tau"), p["threshold"], **c)
        ss.append(s)
        vs.append(v)
    return torch.stack(ss), torch.stack(vs), v, second


def _incoming(shape: tuple[int, ...], layout: str, g: torch.Generator) -> torch.Tensor:
    if layout == "transposed":
        return torch.randn(shape[::-1], generator=g, dtype=F64).permute(*range(len(shape))[::-1])
    if layout == "expanded":  # stride 0 over time (or batch)
        return torch.randn((1, *shape[1:]), generator=g, dtype=F64).expand(shape)
    if layout == "ones":  # what .sum() sends back
        return torch.ones((), dtype=F64).expand(shape)
    return torch.randn(shape, generator=g, dtype=F64)


def _case(seed: int) -> None:
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    neuron = rng.choice(["lif", "if", "alif", "cuba"])
    T, B, N = rng.choice([1, 2, 6]), rng.choice([1, 3]), rng.choice([1, 4])
    mode, detach = rng.choice(["subtract", "zero", "none"]), rng.random() < 0.5
    c = {
        "v_reset": rng.choice([0.0, -0.3]),
        "mode": mode,
        "detach": detach,
        "decay_input": neuron != "if" and rng.random() < 0.5,
        "sg": rng.choice(SURROGATES),
    }
    x = (torch.randn(T, B, N, generator=g, dtype=F64) * 1.5 + 0.4).requires_grad_(
        rng.random() < 0.8
    )
    v0 = (torch.randn(B, N, generator=g, dtype=F64) * 0.4).requires_grad_()
    second0 = (torch.rand(B, N, generator=g, dtype=F64) * 0.5).requires_grad_()
    given = rng.random() < 0.6
    leaves = [t for t in ([x, v0, second0] if given else [x]) if t.requires_grad]
    names = {
        "lif": ("threshold", "tau"),
        "if": ("threshold",),
        "alif": ("threshold", "tau", "tau_adapt", "beta"),
        "cuba": ("threshold", "tau_mem", "tau_syn"),
    }[neuron]
    p: dict[str, Any] = {}
    for name, base in zip(names, (0.7, 1.3, 2.0, 0.8)):
        kind = rng.choice(["float", "fixed", "scalar", "per_neuron", "row", "per_element"])
        if kind == "float":
            p[name] = base + 0.3
            continue
        shape = {"per_neuron": (N,), "row": (1, N), "per_element": (B, N)}.get(kind, ())
        p[name] = base + 0.6 * torch.rand(shape, generator=g, dtype=F64)
        if kind != "fixed":
            leaves.append(p[name].requires_grad_())
    if not leaves:
        return
    kw = {
        "threshold": p["threshold"],
        "v_reset": c["v_reset"],
        "reset": mode,
        "detach_reset": detach,
        "surrogate": c["sg"],
    }
    if neuron == "lif":
        out = lif_multistep(
            x, LIFState(v0) if given else None, tau=p["tau"], decay_input=c["decay_input"], **kw
        )
        outputs = (out.spikes, out.v, out.state.v, None)
    elif neuron == "if":
        out = if_multistep(x, IFState(v0) if given else None, **kw)
        outputs = (out.spikes, out.v, out.state.v, None)
    elif neuron == "alif":
        out = alif_multistep(
            x,
            ALIFState(v0, second0) if given else None,
            tau=p["tau"],
            tau_adapt=p["tau_adapt"],
            beta=p["beta"],
            decay_input=c["decay_input"],
            **kw,
        )
        outputs = (out.spikes, out.v, out.state.v, out.state.a)
    else:
        out = cuba_lif_multistep(
            x,
            CuBaLIFState(v0, second0) if given else None,
            tau_mem=p["tau_mem"],
            tau_syn=p["tau_syn"],
            decay_input=c["decay_input"],
            **kw,
        )
        outputs = (out.spikes, out.v, out.state.v, out.state.i)
    assert "Fused" in type(out.spikes.grad_fn).__name__
    start_v = v0 if given else torch.full((B, N), c["v_reset"], dtype=F64)
    start_2 = second0 if given else torch.zeros(B, N, dtype=F64)
    want_out = _reference(neuron, x, start_v, start_2, p, c)
    assert torch.equal(outputs[0], want_out[0])
    chosen = [i for i in range(4) if outputs[i] is not None and rng.random() < 0.5] or [0]
    layout = rng.choice(["dense", "transposed", "expanded", "ones"])
    incoming = [_incoming(tuple(outputs[i].shape), layout, g) for i in chosen]
    grads = []
    for outs in (outputs, want_out):
        pairs = [(outs[i], gi) for i, gi in zip(chosen, incoming) if outs[i].requires_grad]
        grads.append(
            torch.autograd.grad(
                [o for o, _ in pairs],
                leaves,
                [gi for _, gi in pairs],
                allow_unused=True,
                materialize_grads=True,
            )
            if pairs
            else [torch.zeros_like(t) for t in leaves]
        )
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("chunk", range(3))
def test_fused_gradients_equal_the_documented_equations(chunk: int) -> None:
    for seed in range(chunk * 50, (chunk + 1) * 50):
        _case(seed)


@pytest.mark.parametrize(
    ("surrogate", "reset", "detach_reset", "decay_input"),
    list(
        itertools.product(
            SURROGATES[:6], ["subtract", "zero", "none"], [False, True], [True, False]
        )
    ),
)
def test_a_gradient_on_the_final_membrane_alone(
    surrogate: Any, reset: str, detach_reset: bool, decay_input: bool
) -> None:
    """``keep_v=False`` returns ``v_T [B, ...]``: its gradient enters the backward as one step."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 3, 4, generator=g, dtype=F64) * 1.5 + 0.4).requires_grad_()
    v0 = (torch.randn(3, 4, generator=g, dtype=F64) * 0.3).requires_grad_()
    tau = torch.tensor(1.7, dtype=F64, requires_grad=True)
    thr = torch.tensor(0.7, dtype=F64, requires_grad=True)
    g_v = torch.randn(3, 4, generator=g, dtype=F64)
    c = {
        "v_reset": -0.3,
        "mode": reset,
        "detach": detach_reset,
        "decay_input": decay_input,
        "sg": surrogate,
    }
    _, v_last = fused_lif(
        x,
        v0,
        tau=tau,
        threshold=thr,
        v_reset=-0.3,
        reset_mode=reset,
        detach_reset=detach_reset,
        decay_input=decay_input,
        surrogate=surrogate,
        keep_v=False,
    )
    want_v = _reference("lif", x, v0, v0, {"tau": tau, "threshold": thr}, c)[2]
    got = torch.autograd.grad(
        v_last, [x, v0, tau, thr], g_v, allow_unused=True, materialize_grads=True
    )
    want = torch.autograd.grad(
        want_v, [x, v0, tau, thr], g_v, allow_unused=True, materialize_grads=True
    )
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("reset", ["none", "subtract", "zero"])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_finite_differences_where_the_membrane_is_smooth(
    reset: str, decay_input: bool, neuron: str
) -> None:
    """With the reset's spike detached (or no reset) the membrane is piecewise smooth in x, v0,
    tau and threshold: its true gradient, which no surrogate shapes."""
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(5, 2, 3, generator=g, dtype=F64) * 1.5 + 0.4).requires_grad_()
    v0 = (torch.randn(2, 3, generator=g, dtype=F64) * 0.3).requires_grad_()
    tau = (1.5 + torch.rand(3, generator=g, dtype=F64)).requires_grad_()
    thr = (0.6 + 0.3 * torch.rand(3, generator=g, dtype=F64)).requires_grad_()

    def membrane(x: torch.Tensor, v0: torch.Tensor, tau: torch.Tensor, thr: torch.Tensor) -> Any:
        return fused_lif(
            x,
            v0,
            tau=tau if neuron == "lif" else None,
            threshold=thr,
            v_reset=-0.2,
            reset_mode=reset,
            detach_reset=True,
            decay_input=decay_input,
            surrogate=ATan(),
        )[1]

    assert gradcheck(membrane, (x, v0, tau, thr), eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("tau_kind", ["float", "scalar", "per_neuron", "per_element"])
@pytest.mark.parametrize("T", [1, 5])
def test_synaptic_current_backward_by_finite_differences(tau_kind: str, T: int) -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(T, 2, 3, generator=g, dtype=F64).requires_grad_()
    i0 = torch.randn(3, generator=g, dtype=F64).requires_grad_()  # broadcast over the batch
    if tau_kind == "float":
        assert gradcheck(lambda x, i0: fused_current(x, i0, 1.7), (x, i0))
        return
    shape = {"scalar": (), "per_neuron": (3,), "per_element": (2, 3)}[tau_kind]
    tau = (1.2 + torch.rand(shape, generator=g, dtype=F64)).requires_grad_()
    assert gradcheck(fused_current, (x, i0, tau))


@pytest.mark.parametrize(
    "surrogate", [ScaledTriangle(), ScaledTriangle(0.7), ATan(), Rectangular(0.5)]
)
@pytest.mark.parametrize("leak", [0.0, 0.6, 1.0, 1.3])  # 1.3: outside [0, 1], straight through
@pytest.mark.parametrize("threshold", [0.8, 1e-4])  # 1e-4: clamped at min_threshold
@pytest.mark.parametrize("leaves", ["all", "x", "leak", "threshold"])
def test_iirlif_backward_equals_the_documented_equations(
    surrogate: Any, leak: float, threshold: float, leaves: str
) -> None:
    g = torch.Generator().manual_seed(9)
    layer = IIRLIF(leak=min(leak, 1.0), threshold=threshold, surrogate=surrogate).double()
    with torch.no_grad():
        layer.leak.fill_(leak)
    x = (torch.randn(5, 3, 4, generator=g, dtype=F64) * 1.2 + 0.5).requires_grad_(
        leaves in ("all", "x")
    )
    layer.leak.requires_grad_(leaves in ("all", "leak"))
    layer.threshold.requires_grad_(leaves in ("all", "threshold"))
    wanted = [t for t in (x, layer.leak, layer.threshold) if t.requires_grad]
    spikes = layer(x)
    assert "IIR" in type(spikes.grad_fn).__name__
    lam = layer.leak + (layer.leak.clamp(0, 1) - layer.leak).detach()
    theta = layer.threshold.clamp(min=layer.min_threshold)
    u = s = torch.zeros(3, 4, dtype=F64)
    ref = []
    for t in range(5):
        u = lam * u + x[t] - theta * s
        s = _spike(surrogate, u / theta - 1)
        ref.append(s)
    incoming = _incoming((5, 3, 4), "transposed", g)
    got = torch.autograd.grad(spikes, wanted, incoming)
    want = torch.autograd.grad(torch.stack(ref), wanted, incoming)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("layout", ["transposed", "expanded"])
def test_spike_linear_takes_any_incoming_gradient_layout(layout: str) -> None:
    g = torch.Generator().manual_seed(0)
    layer = SpikeLinear(13, 9, dtype=F64)
    x = (torch.rand(7, 3, 13, generator=g) < 0.3).to(F64).requires_grad_()
    out = layer(x)
    incoming = _incoming((7, 3, 9), layout, g)
    params = [x, layer.weight, layer.bias]
    got = torch.autograd.grad(out, params, incoming)
    want = torch.autograd.grad(
        torch.nn.functional.linear(x, layer.weight, layer.bias), params, incoming
    )
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
