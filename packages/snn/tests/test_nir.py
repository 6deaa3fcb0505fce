"""NIR export/import: round trips per node type, the documented ODE mapping, refusals."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir", reason="the optional 'nir' extra (neuronkit-snn[nir]) is absent")

from neuronkit.snn import (  # noqa: E402
    ALIF,
    IF,
    LIF,
    PLIF,
    CuBaLIF,
    SeqAvgPool2d,
    SeqBatchNorm1d,
    SeqConv1d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    SeqMaxPool2d,
    TimeDistributed,
)
from neuronkit.snn.integrator import LI, Delay  # noqa: E402
from neuronkit.snn.nir import NIRModule, Scale, from_nir, to_nir  # noqa: E402


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    """The model with positive-leaning weights, so that every layer fires."""
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim >= 2:
                fan_in = p[0].numel()
                p.normal_(0.3, 1.0).mul_(1.0 / fan_in**0.5)
    return model


# (builder, per-sample input shape, input scale); every output must contain spikes or values
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], float]] = {
    "affine_lif": (lambda: nn.Sequential(SeqLinear(6, 8), LIF(tau=3.0, reset="zero")), (6,), 3),
    "linear_lif_jump": (
        lambda: nn.Sequential(
            SeqLinear(6, 8, bias=False), LIF(tau=2.0, reset="zero", decay_input=False)
        ),
        (6,),
        2,
    ),
    "lif_v_reset": (
        lambda: nn.Sequential(SeqLinear(6, 8), LIF(tau=2.5, v_reset=-0.2, reset="zero")),
        (6,),
        3,
    ),
    "lif_none": (lambda: nn.Sequential(SeqLinear(6, 8), LIF(tau=2.0, reset="none")), (6,), 2),
    "lif_tensor_params": (
        lambda: nn.Sequential(
            SeqLinear(6, 4),
            LIF(
                tau=torch.tensor([1.5, 2.0, 3.0, 6.0]),  # type: ignore[arg-type]
                threshold=torch.tensor([0.5, 1.0, 1.5, 0.8]),  # type: ignore[arg-type]
                reset="zero",
            ),
        ),
        (6,),
        3,
    ),
    "plif": (lambda: nn.Sequential(SeqLinear(6, 8), PLIF(init_tau=3.0, reset="zero")), (6,), 3),
    "if_zero": (lambda: nn.Sequential(SeqLinear(6, 8), IF(reset="zero")), (6,), 1),
    "if_none": (lambda: nn.Sequential(SeqLinear(6, 8), IF(threshold=2.0, reset="none")), (6,), 1),
    "cubalif": (
        lambda: nn.Sequential(
            SeqLinear(6, 8), CuBaLIF(tau_mem=4.0, tau_syn=2.0, reset="zero", v_reset=-0.1)
        ),
        (6,),
        3,
    ),
    "cubalif_jump": (
        lambda: nn.Sequential(
            SeqLinear(6, 8), CuBaLIF(tau_mem=3.0, tau_syn=2.0, reset="zero", decay_input=False)
        ),
        (6,),
        1,
    ),
    "li": (lambda: nn.Sequential(SeqLinear(6, 3), LI(tau=4.0, v_leak=0.1)), (6,), 1),
    "li_jump": (lambda: nn.Sequential(SeqLinear(6, 3), LI(tau=4.0, decay_input=False)), (6,), 1),
    "delay": (
        lambda: nn.Sequential(SeqLinear(6, 4), LIF(reset="zero"), Delay(3)),
        (6,),
        3,
    ),
    "delay_per_neuron": (
        lambda: nn.Sequential(
            SeqLinear(6, 4), LIF(reset="zero"), Delay(torch.tensor([0, 1, 2, 5]))
        ),
        (6,),
        3,
    ),
    "conv1d": (
        lambda: nn.Sequential(
            SeqConv1d(2, 3, 3, stride=2, padding=1, dilation=1),
            IF(reset="zero"),
            SeqFlatten(),
            SeqLinear(3 * 5, 4),
            LIF(reset="zero"),
        ),
        (2, 10),
        2,
    ),
    "conv2d_avgpool": (
        lambda: nn.Sequential(
            SeqConv2d(1, 4, 3, padding=1),
            LIF(tau=2.0, reset="zero"),
            SeqAvgPool2d(2),
            SeqFlatten(),
            SeqLinear(4 * 4 * 4, 5),
            LIF(tau=2.0, reset="zero"),
        ),
        (1, 8, 8),
        3,
    ),
    "time_distributed": (
        lambda: nn.Sequential(
            TimeDistributed(nn.Sequential(nn.Conv2d(1, 3, 3), nn.AvgPool2d(2), nn.Flatten())),
            LIF(tau=2.0, threshold=0.3, reset="zero"),
        ),
        (1, 6, 6),
        3,
    ),
    "if_none_offset": (  # starts at v_reset = -0.5: NIR's I starts at 0
        lambda: nn.Sequential(SeqLinear(4, 5), IF(threshold=1.0, v_reset=-0.5, reset="none")),
        (4,),
        1,
    ),
    "conv2d_sumpool_groups": (
        lambda: nn.Sequential(
            SeqConv2d(2, 4, (3, 2), stride=(1, 2), padding="valid", groups=2, bias=False),
            LIF(tau=2.0, reset="zero"),
            SeqAvgPool2d(2, stride=1, padding=1, divisor_override=1),
            SeqFlatten(),
        ),
        (2, 6, 6),
        3,
    ),
}


def _check_round_trip(
    model: nn.Module, shape: tuple[int, ...], scale: float, net: nn.Module
) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, *shape, generator=g) * scale
    with torch.no_grad():
        ref, out = model(x), net(x)
    assert isinstance(out, torch.Tensor)
    assert out.shape == ref.shape
    assert torch.equal(out, ref)
    assert ref.abs().sum() > 0  # the comparison is not between two silent networks


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_is_identical(case: str) -> None:
    build, shape, scale = CASES[case]
    model = _seeded(build)
    graph = to_nir(model, shape)
    assert isinstance(graph, nir.NIRGraph)
    assert graph.metadata["dt"] == 1.0
    assert tuple(graph.nodes["input"].input_type["input"]) == shape
    net = from_nir(graph)
    assert isinstance(net, NIRModule)
    _check_round_trip(model, shape, scale, net)


@pytest.mark.parametrize("case", ["conv2d_avgpool", "cubalif", "delay_per_neuron", "lif_none"])
def test_round_trip_through_hdf5(case: str, tmp_path) -> None:
    build, shape, scale = CASES[case]
    model = _seeded(build)
    path = tmp_path / f"{case}.nir"
    nir.write(path, to_nir(model, shape))
    _check_round_trip(model, shape, scale, from_nir(nir.read(path)))
    _check_round_trip(model, shape, scale, from_nir(str(path)))


def test_grouped_non_square_conv_through_hdf5(tmp_path) -> None:
    """nir 1.0.8 re-infers a Conv2d's types from the weight alone (C_in / groups, a square
    kernel), so such a file only reads back with ``type_check=False``; the run is identical."""
    build, shape, scale = CASES["conv2d_sumpool_groups"]
    model = _seeded(build)
    path = tmp_path / "grouped.nir"
    nir.write(path, to_nir(model, shape))
    _check_round_trip(model, shape, scale, from_nir(nir.read(path, type_check=False)))


def test_hidden_layer_spikes_match() -> None:
    """Every spiking layer, not just the last, is reproduced spike for spike."""
    model = _seeded(CASES["conv2d_avgpool"][0])
    net = from_nir(to_nir(model, (1, 8, 8)))
    x = torch.rand(12, 2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 3
    h_ref, h = x, x
    mods = [m for n, m in net.nodes.items()]
    for a, b in zip(model, mods):
        h_ref, h = a(h_ref), b(h)
        assert torch.equal(h, h_ref)
        if isinstance(a, LIF):
            assert 0 < h.mean() < 1


def test_dt_rescales_time_constants() -> None:
    model = _seeded(CASES["cubalif"][0])
    graph = to_nir(model, (6,), dt=1e-3)
    node = graph.nodes["cubalif_1"]
    np.testing.assert_allclose(node.tau_mem, 4e-3)
    np.testing.assert_allclose(node.tau_syn, 2e-3)
    np.testing.assert_allclose(node.w_in, 2.0)  # the current jumps by the input
    assert graph.metadata["dt"] == 1e-3
    _check_round_trip(model, (6,), 3, from_nir(graph))  # dt from the metadata
    _check_round_trip(model, (6,), 3, from_nir(graph, dt=1e-3))
    slow = from_nir(graph, dt=5e-4)  # twice the steps per time constant: a different model
    neuron = slow.nodes["cubalif_1"].neuron  # the current now jumps by half the input
    assert slow.nodes["cubalif_1"].gain == pytest.approx(0.5)
    assert neuron.tau_mem / neuron.dt == pytest.approx(8.0)


def test_module_dt_is_kept_in_steps() -> None:
    model = nn.Sequential(SeqLinear(3, 3), LIF(tau=4.0, dt=2.0, reset="zero"))
    graph = to_nir(model, (3,))
    assert graph.metadata["dt"] == 2.0
    np.testing.assert_allclose(graph.nodes["lif_1"].tau, 4.0)
    graph = to_nir(model, (3,), dt=1.0)
    np.testing.assert_allclose(graph.nodes["lif_1"].tau, 2.0)  # 2 steps either way
    with pytest.raises(ValueError, match="different dt"):
        to_nir(nn.Sequential(LIF(dt=1.0), LIF(tau=4.0, dt=2.0)), (3,))


def test_exported_fields_follow_the_documented_mapping() -> None:
    model = nn.Sequential(
        SeqLinear(2, 2),
        LIF(tau=5.0, threshold=0.7, reset="zero", decay_input=False),
        SeqLinear(2, 2, bias=False),
        IF(threshold=1.5, v_reset=-0.5, reset="zero"),
    )
    g = to_nir(model, (2,), dt=0.1)
    lif, if_ = g.nodes["lif_1"], g.nodes["if_3"]
    assert isinstance(g.nodes["affine_0"], nir.Affine)
    assert isinstance(g.nodes["linear_2"], nir.Linear)
    np.testing.assert_allclose(lif.tau, 0.5)
    np.testing.assert_allclose(lif.r, 5.0)  # r = tau / dt: a jump of exactly the input
    np.testing.assert_allclose(lif.v_threshold, 0.7)
    np.testing.assert_allclose(lif.v_leak, 0.0)
    np.testing.assert_allclose(if_.r, 10.0)  # r = 1 / dt: v += dt * r * I = I
    np.testing.assert_allclose(if_.v_reset, -0.5)
    assert tuple(g.edges[0]) == ("input", "affine_0")
    assert tuple(g.nodes["output"].output_type["output"]) == (2,)


def test_half_precision_models_export_their_exact_values() -> None:
    """numpy has no bfloat16: weights are exported in float32, which holds them exactly."""
    scale = Scale(torch.full((2,), 2.0))
    model = _seeded(lambda: nn.Sequential(SeqLinear(3, 2), LIF(reset="zero"), scale))
    for dtype in (torch.bfloat16, torch.float16):
        half = copy.deepcopy(model).to(dtype)
        g = to_nir(half, (3,))
        assert g.nodes["affine_0"].weight.dtype == np.float32
        np.testing.assert_array_equal(
            g.nodes["affine_0"].weight, half[0].weight.detach().float().numpy()
        )
        np.testing.assert_array_equal(g.nodes["scale_2"].scale, [2.0, 2.0])


# ---- import semantics against the ODEs, by forward Euler ---------------------------------------


def _euler_lif(x: np.ndarray, tau, r, v_leak, thr, v_reset, dt, w_in=None, tau_syn=None):
    """Reference: forward Euler of NIR's (Cuba)LIF, input held over the step, reset to v_reset
    after ``v >= thr`` (NIR writes ``>``; the inputs never land on the threshold)."""
    v = np.full(x.shape[1:], v_leak, dtype=np.float64)
    i = np.zeros(x.shape[1:])
    out = []
    for x_t in x:
        if tau_syn is not None:
            i = i + dt / tau_syn * (-i + w_in * x_t)
            drive = i
        else:
            drive = x_t
        v = v + dt / tau * (v_leak - v + r * drive)
        s = v >= thr
        v = np.where(s, v_reset, v)
        out.append(s.astype(np.float64))
    return np.stack(out)


@pytest.mark.parametrize("r", [1.0, 20.0, 3.0])
def test_import_lif_follows_the_ode(r: float) -> None:
    dt, tau = 1e-3, 20e-3  # r = tau / dt = 20 is a jump; r = 3 needs an input gain
    n = 4
    lif = nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, r),
        v_leak=np.full(n, 0.1),
        v_threshold=np.full(n, 1.0),
        v_reset=np.full(n, 0.1),
    )
    net = from_nir(nir.NIRGraph.from_list(lif), dt=dt)
    x = np.random.default_rng(0).uniform(0, {1.0: 6.0, 20.0: 0.5, 3.0: 1.5}[r], size=(40, 2, n))
    out = net(torch.as_tensor(x)).numpy()
    ref = _euler_lif(x, tau, r, 0.1, 1.0, 0.1, dt)
    assert ref.sum() > 5
    np.testing.assert_array_equal(out, ref)


def test_import_cubalif_and_if_follow_the_ode() -> None:
    dt, n = 1e-3, 3
    node = nir.CubaLIF(
        tau_syn=np.full(n, 5e-3),
        tau_mem=np.full(n, 10e-3),
        r=np.full(n, 2.0),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.5),
        v_reset=np.zeros(n),
        w_in=np.full(n, 3.0),
    )
    net = from_nir(nir.NIRGraph.from_list(node), dt=dt)
    x = np.random.default_rng(1).uniform(0, 4, size=(50, 2, n))
    ref = _euler_lif(x, 10e-3, 2.0, 0.0, 0.5, 0.0, dt, w_in=3.0, tau_syn=5e-3)
    assert ref.sum() > 5
    np.testing.assert_array_equal(net(torch.as_tensor(x)).numpy(), ref)

    if_net = from_nir(
        nir.NIRGraph.from_list(nir.IF(r=np.full(n, 500.0), v_threshold=np.full(n, 1.0))), dt=dt
    )
    v, spikes = np.zeros((2, n)), []
    for x_t in x:
        v = v + dt * 500.0 * x_t
        s = v >= 1.0
        v = np.where(s, 0.0, v)
        spikes.append(s)
    np.testing.assert_array_equal(if_net(torch.as_tensor(x)).numpy(), np.stack(spikes))


def test_import_li_and_scale() -> None:
    dt, n = 0.5, 3
    li = nir.LI(tau=np.full(n, 2.0), r=np.full(n, 1.0), v_leak=np.full(n, 0.25))
    scale = nir.Scale(scale=np.array([1.0, -2.0, 0.5]))
    net = from_nir(nir.NIRGraph.from_list(scale, li), dt=dt)
    x = np.random.default_rng(2).normal(size=(10, 2, n))
    v, ref = np.full((2, n), 0.25), []
    for x_t in x:
        v = v + dt / 2.0 * (0.25 - v + x_t * np.array([1.0, -2.0, 0.5]))
        ref.append(v)
    np.testing.assert_allclose(net(torch.as_tensor(x)).numpy(), np.stack(ref), rtol=1e-12)
    assert net(torch.as_tensor(x, dtype=torch.float32)).dtype == torch.float32


def test_imported_per_neuron_settings_round_trip_through_the_state_dict() -> None:
    n, zeros = 4, np.zeros(4)

    def graph(seed: int) -> nir.NIRGraph:
        rng = np.random.default_rng(seed)
        lif = nir.LIF(
            tau=rng.uniform(2e-3, 6e-3, n),
            r=rng.uniform(0.5, 2.0, n),  # neither 1 nor tau / dt: an input gain per neuron
            v_leak=zeros,
            v_threshold=rng.uniform(0.5, 1.5, n),
            v_reset=zeros,
        )
        li = nir.LI(tau=rng.uniform(2e-3, 6e-3, n), r=np.ones(n), v_leak=zeros)
        return nir.NIRGraph.from_list(lif, nir.Threshold(rng.uniform(0.5, 1.5, n)), li)

    a, b = from_nir(graph(0), dt=1e-3), from_nir(graph(1), dt=1e-3)
    keys = a.state_dict().keys()
    assert {k.rsplit(".", 1)[-1] for k in keys} == {"gain", "tau", "threshold"}
    x = torch.rand(12, 3, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert all(v.dtype == torch.float32 for v in a.float().state_dict().values())


def test_a_per_neuron_input_gain_keeps_float64_precision() -> None:
    """NIR computes the gain ``r`` in float64: a float64 input is scaled by it exactly (it was
    rounded to float32), a float32 input stays float32."""
    r = np.array([0.3, 1.7, 0.9])
    lif = nir.LIF(tau=np.full(3, 5.0), r=r, v_leak=np.zeros(3), v_threshold=np.full(3, 1e9),
                  v_reset=np.zeros(3))  # fmt: skip
    net = from_nir(nir.NIRGraph.from_list(lif), dt=1.0)
    gains = [m.gain for m in net.modules() if isinstance(getattr(m, "gain", None), torch.Tensor)]
    assert len(gains) == 1
    assert torch.equal(gains[0], torch.as_tensor(r))  # float64, not 0.30000001...
    x = torch.rand(3, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert net(x).dtype == torch.float64
    assert net(x.float()).dtype == torch.float32


def test_dag_with_skip_connection_sums_inputs_and_re_exports() -> None:
    torch.manual_seed(0)
    w1, w2, w3 = (np.random.default_rng(i).normal(size=(4, 4)) for i in range(3))
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Linear(weight=w1),
        "b": nir.Linear(weight=w2),
        "lif": nir.LIF(
            tau=np.full(4, 2.0),
            r=np.ones(4),
            v_leak=np.zeros(4),
            v_threshold=np.ones(4),
            v_reset=np.zeros(4),
        ),
        "c": nir.Linear(weight=w3),
        "out": nir.Output(output_type={"output": np.array([4])}),
        "out2": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [("in", "a"), ("in", "b"), ("a", "lif"), ("b", "lif"), ("lif", "c"), ("c", "out"),
             ("in", "c"), ("lif", "out2")]  # fmt: skip
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0})
    net = from_nir(graph)
    x = torch.rand(10, 2, 4, dtype=torch.float64) * 2
    out = net(x)
    assert isinstance(out, dict)
    assert set(out) == {"out", "out2"}
    ta, tb, tc = (torch.as_tensor(w) for w in (w1, w2, w3))
    spikes = LIF(tau=2.0, reset="zero")(x @ ta.T + x @ tb.T)
    assert torch.equal(out["out2"], spikes)
    torch.testing.assert_close(out["out"], spikes @ tc.T + x @ tc.T)
    again = from_nir(to_nir(net))
    back = again(x)
    assert isinstance(back, dict)
    assert torch.equal(back["out2"], out["out2"])
    assert torch.equal(back["out"], out["out"])


def test_nested_graph_round_trip() -> None:
    inner = _seeded(CASES["affine_lif"][0])
    inner_net = from_nir(to_nir(inner, (6,)))
    outer = nn.Sequential(inner_net, SeqLinear(8, 2), LI(tau=3.0))
    graph = to_nir(outer, (6,))
    assert isinstance(graph.nodes["graph_0"], nir.NIRGraph)
    x = torch.rand(8, 2, 6) * 3
    assert torch.equal(from_nir(graph)(x), outer(x))


# ---- refusals and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (LIF(reset="subtract"), r"'1' \(LIF\).*reset='subtract'"),
        (IF(), "reset='subtract'"),
        (CuBaLIF(reset="zero"), None),
        (CuBaLIF(reset="none"), "CubaLI"),
        (ALIF(reset="zero"), "adaptive"),
        (SeqBatchNorm1d(4), "batch norm.*fold_batchnorm"),
        (nn.ReLU(), "no NIR mapping"),
    ],
)
def test_export_refuses_what_nir_cannot_express(module: nn.Module, match: str | None) -> None:
    model = nn.Sequential(SeqLinear(4, 4), module)
    if match is None:
        to_nir(model, (4,))  # the control: accepted
        return
    with pytest.raises(ValueError, match=match):
        to_nir(model, (4,))


def test_export_refuses_bad_layers() -> None:
    with pytest.raises(ValueError, match="only AvgPool2d and SumPool2d"):
        to_nir(nn.Sequential(SeqMaxPool2d(2)), (1, 4, 4))
    with pytest.raises(ValueError, match="ceil_mode"):
        to_nir(nn.Sequential(SeqAvgPool2d(3, ceil_mode=True)), (1, 4, 4))
    with pytest.raises(ValueError, match="SeqConv"):
        to_nir(nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 4, 4))
    with pytest.raises(ValueError, match="flatten first"):
        to_nir(nn.Sequential(SeqLinear(4, 2)), (3, 4))
    with pytest.raises(ValueError, match="does not accept"):
        to_nir(nn.Sequential(SeqLinear(4, 2)), (5,))
    with pytest.raises(ValueError, match="per-step shape"):
        to_nir(nn.Sequential(LIF(threshold=torch.ones(2, 3), reset="zero")), (3,))  # type: ignore[arg-type]
    drop = nn.Sequential(SeqLinear(4, 2), nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"model\.eval"):
        to_nir(drop, (4,))
    assert "output" in to_nir(drop.eval(), (4,)).nodes


@pytest.mark.parametrize(
    ("shape", "err"),
    [
        (None, TypeError),
        ((), TypeError),
        ((0, 3), ValueError),
        ((2.5,), TypeError),
        ("4", TypeError),
    ],
)
def test_export_bad_input_shape(shape, err) -> None:
    with pytest.raises(err, match="input_shape"):
        to_nir(nn.Sequential(SeqLinear(4, 2)), shape)


def test_export_bad_arguments() -> None:
    with pytest.raises(TypeError, match="model"):
        to_nir("net", (4,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dt"):
        to_nir(nn.Sequential(SeqLinear(4, 2)), (4,), dt=0.0)


def test_import_bad_arguments(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"graph must be .* existing \.nir file"):
        from_nir(tmp_path / "missing.nir")
    with pytest.raises(TypeError, match="modules must be dict"):
        NIRModule("net", [], {"in": (4,)}, {"out": (4,)}, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="modules must map node names"):
        NIRModule({"a": "relu"}, [], {"in": (4,)}, {"out": (4,)}, 1.0)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="edges must hold"):
        NIRModule({}, ["ab"], {"in": (4,)}, {"out": (4,)}, 1.0)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="dt must be > 0"):
        NIRModule({}, [("in", "out")], {"in": (4,)}, {"out": (4,)}, 0.0)


def _lif_node(**kw):
    fields = {
        "tau": np.full(3, 2.0),
        "r": np.ones(3),
        "v_leak": np.zeros(3),
        "v_threshold": np.ones(3),
        "v_reset": np.zeros(3),
    }
    fields.update(kw)
    return nir.LIF(**fields)


def test_import_refusals() -> None:
    ok = nir.NIRGraph.from_list(_lif_node())
    with pytest.raises(ValueError, match="dt is required"):
        from_nir(ok)
    with pytest.raises(ValueError, match="dt"):
        from_nir(ok, dt=-1.0)
    with pytest.raises(TypeError, match=r"graph must be a nir\.NIRGraph"):
        from_nir({"nodes": {}}, dt=1.0)
    with pytest.raises(ValueError, match="v_leak must equal v_reset"):
        from_nir(nir.NIRGraph.from_list(_lif_node(v_leak=np.full(3, 0.3))), dt=1.0)
    with pytest.raises(ValueError, match="v_reset must be the same"):
        from_nir(nir.NIRGraph.from_list(_lif_node(v_reset=np.array([0.0, 0.1, 0.0]))), dt=1.0)
    with pytest.raises(ValueError, match="tau must be >= dt"):
        from_nir(ok, dt=5.0)
    with pytest.raises(ValueError, match="whole multiples"):
        from_nir(nir.NIRGraph.from_list(nir.Delay(delay=np.array([1.5, 2.0]))), dt=1.0)
    cuba_li = nir.CubaLI(
        tau_syn=np.ones(2) * 2, tau_mem=np.ones(2) * 2, r=np.ones(2), v_leak=np.zeros(2)
    )
    with pytest.raises(ValueError, match="CubaLI is not supported"):
        from_nir(nir.NIRGraph.from_list(cuba_li), dt=1.0)


def test_import_refuses_recurrent_graphs() -> None:
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "lif": _lif_node(),
        "rec": nir.Linear(weight=np.eye(3)),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("in", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(ValueError, match="recurrent"):
        from_nir(graph, dt=1.0)


def test_module_input_validation() -> None:
    net = from_nir(to_nir(nn.Sequential(SeqLinear(4, 2), LIF(reset="zero")), (4,)))
    with pytest.raises(ValueError, match=r"\[T, B, 4\]"):
        net(torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match="time-major"):
        net(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="x"):
        net([1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"x\['input'\] must be a floating-point tensor"):
        net(torch.ones(3, 2, 4, dtype=torch.long))


@pytest.mark.parametrize(
    ("dt", "error", "match"),
    [
        ("abc", TypeError, r"graph\.metadata\['dt'\] must be a real number .*got str"),
        ("1.0", TypeError, r"graph\.metadata\['dt'\] must be a real number"),
        ([1.0, 2.0], ValueError, r"graph\.metadata\['dt'\] must be one number .*shape \(2,\)"),
        (True, TypeError, r"graph\.metadata\['dt'\] must be a real number"),
        ({"dt": 1.0}, TypeError, r"graph\.metadata\['dt'\]"),
        (-1.0, ValueError, r"graph\.metadata\['dt'\] must be > 0"),
        (float("nan"), ValueError, r"graph\.metadata\['dt'\] must be finite"),
    ],
)
def test_bad_metadata_dt_is_named(dt: object, error: type, match: str) -> None:
    graph = to_nir(nn.Sequential(SeqLinear(3, 2), LIF(reset="zero")), (3,))
    graph.metadata["dt"] = dt
    with pytest.raises(error, match=match):
        from_nir(graph)
    graph.metadata["dt"] = np.array([1.0])  # a one-element array, as a file may hold it
    assert from_nir(graph).dt == 1.0
    graph.metadata["dt"] = np.float32(0.5)
    assert from_nir(graph).dt == 0.5


def test_executor_modules_validate() -> None:
    from neuronkit.snn.nir import InputGain, Integrator, Scale, Threshold

    with pytest.raises(TypeError, match="threshold"):
        Threshold("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gain"):
        Integrator(torch.ones(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="scale"):
        Scale(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="neuron"):
        InputGain(2.0, "lif")  # type: ignore[arg-type]
    x = torch.tensor([[[0.5]], [[1.0]], [[-2.0]]])
    assert Integrator(2.0)(x).flatten().tolist() == [1.0, 3.0, -1.0]
    assert Threshold(1.0)(x).flatten().tolist() == [0.0, 1.0, 0.0]
    small = torch.full((600, 1, 1), 2.0**-9, dtype=torch.bfloat16)  # below 1's half ulp
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = Integrator()(small)
    assert v.dtype == torch.float32
    assert float(v[-1]) == 600 * 2.0**-9  # in bfloat16 the sum would stop at 1


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"neuronkit-snn\[nir\]"):
        to_nir(nn.Sequential(SeqLinear(2, 2)), (2,))
    with pytest.raises(ImportError, match=r"neuronkit-snn\[nir\]"):
        from_nir("model.nir")


def test_export_does_not_mutate_model() -> None:
    model = _seeded(CASES["conv2d_avgpool"][0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graph = to_nir(model, (1, 8, 8))
    graph.nodes["conv2d_0"].weight[...] = 0.0  # the graph holds copies
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_batch_norm_folded_as_the_refusal_says_exports_exactly() -> None:
    from neuronkit.snn.training import fold_batchnorm

    torch.manual_seed(0)
    model = nn.Sequential(SeqLinear(4, 6), SeqBatchNorm1d(6), LIF(reset="zero"), SeqLinear(6, 2))
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2.0)
    model.eval()
    folded = nn.Sequential(fold_batchnorm(model[0], model[1]), *model[2:]).eval()
    x = torch.rand(5, 3, 4) * 3
    imported = from_nir(to_nir(folded, (4,)))
    torch.testing.assert_close(imported(x), model(x), atol=1e-5, rtol=1e-5)


def test_export_input_shape_given_a_tensor_gets_a_short_message() -> None:
    with pytest.raises(TypeError, match=r"^input_shape must be a non-empty tuple") as err:
        to_nir(nn.Sequential(SeqLinear(4, 2)), torch.rand(8, 3, 32, 32))  # type: ignore[arg-type]
    assert len(str(err.value)) < 250  # was the whole tensor, thousands of characters


def _chain(node, in_shape=(3,), out_shape=(3,)):
    """A hand-built graph Input -> node -> Output, not type-checked (as a foreign file may be)."""
    nodes = {
        "in": nir.Input(input_type={"input": np.array(in_shape)}),
        "n": node,
        "out": nir.Output(output_type={"output": np.array(out_shape)}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in", "n"), ("n", "out")], type_check=False)


def test_import_refuses_unfed_nodes_at_import() -> None:
    """A node or Output without an input edge imported fine and failed only in forward."""
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}), "lif": _lif_node()}
    nodes["out"] = nir.Output(output_type={"output": np.array([3])})
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "out")], type_check=False)
    with pytest.raises(ValueError, match=r"^edges must feed every node .*into \['lif'\]"):
        from_nir(graph, dt=1.0)
    with pytest.raises(ValueError, match=r"no input edge into \['out'\]"):
        NIRModule({}, [], {"in": (4,)}, {"out": (4,)}, 1.0)
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "lif", "out")], type_check=False)
    with pytest.raises(TypeError, match=r"^graph\.edges must hold \(source, target\) pairs"):
        from_nir(graph, dt=1.0)  # was "too many values to unpack (expected 2)"


def test_import_directory_path_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"\(a directory\)"):
        from_nir(tmp_path, dt=1.0)


def test_import_conv_without_bias_gets_zeros_not_nan() -> None:
    """A Conv node with ``bias=None`` imported with a NaN bias (np.asarray(None) as float)."""
    conv = nir.Conv1d(
        input_shape=5, weight=np.ones((2, 1, 3)), stride=1, padding=0, dilation=1, groups=1,
        bias=None,
    )  # fmt: skip
    net = from_nir(_chain(conv, (1, 5), (2, 3)), dt=1.0)
    out = net(torch.ones(1, 1, 1, 5, dtype=torch.float64))
    assert out.flatten().tolist() == [3.0] * 6


@pytest.mark.parametrize(
    ("node", "error", "match"),
    [
        (nir.Linear(weight=np.full((2, 3), np.nan)), ValueError, r"'n': weight must be finite"),
        (nir.Linear(weight=np.ones((2, 3)) * 1j), TypeError, r"'n': weight must be a real"),
        (nir.Affine(weight=np.ones((2, 3)), bias=np.ones(3)), ValueError, r"bias must have sh"),
        (nir.Scale(scale=np.full(3, np.nan)), ValueError, r"'n': scale must be finite"),
        (nir.Threshold(threshold=np.array(["a"] * 3)), TypeError, r"'n': threshold must be a"),
        (nir.I(r=np.full(3, np.nan)), ValueError, r"'n': r must be finite"),
        (_lif_node(r=np.full(3, np.nan)), ValueError, r"'n': r must be finite"),
        (nir.Delay(delay=np.full(3, np.inf)), ValueError, r"'n': delay must be finite"),
        (nir.Delay(delay=np.array([])), ValueError, r"'n': delay must hold one or more"),
        (nir.Delay(delay=np.full(3, 1e30)), ValueError, r"'n': delays must be non-negative"),
        (
            nir.AvgPool2d(kernel_size=np.array([1.5, 1.5]), stride=np.ones(2), padding=np.zeros(2)),
            ValueError,
            r"'n': kernel_size must be 2 integer",
        ),
        (
            nir.SumPool2d(kernel_size=np.zeros(2), stride=np.ones(2), padding=np.zeros(2)),
            ValueError,
            r"'n': kernel_size must be >= 1, got 0",
        ),
    ],
)
def test_import_refuses_bad_node_fields(node, error: type, match: str) -> None:
    """NaN weights / gains / scales imported silently (NaN outputs, or a neuron complaining
    that the user's finite x was not finite); complex weights lost their imaginary part;
    fractional pool sizes were truncated; others failed deep in numpy or torch."""
    with pytest.raises(error, match=match):
        from_nir(_chain(node), dt=1.0)


def test_import_refuses_bad_shapes_and_types() -> None:
    conv = nir.Conv2d(
        input_shape=(5, 5), weight=np.ones((2, 1, 3)), stride=1, padding=0, dilation=1,
        groups=1, bias=np.ones(2),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"'n': weight must have 4 dimensions"):
        from_nir(_chain(conv, (1, 5, 5), (2, 3, 3)), dt=1.0)  # imported, failed in forward
    with pytest.raises(ValueError, match=r"'in': input_type must be 1 integer"):
        from_nir(_chain(nir.Scale(scale=np.ones(3)), in_shape=(3.5,)), dt=1.0)  # was 3
    with pytest.raises(ValueError, match=r"'in': input_type must be >= 1, got -3"):
        from_nir(_chain(nir.Scale(scale=np.ones(3)), in_shape=(-3,)), dt=1.0)
    # an integer threshold array is real numbers: imported (was refused for its dtype)
    net = from_nir(_chain(nir.Threshold(threshold=np.array([1, 2, 3]))), dt=1.0)
    assert net(torch.full((1, 1, 3), 2.0)).flatten().tolist() == [1.0, 1.0, 0.0]


def test_export_input_gain_and_scale_edge_cases() -> None:
    from neuronkit.snn.nir import InputGain

    with pytest.raises(ValueError, match=r"InputGain.*an input gain in front of Identity"):
        to_nir(nn.Sequential(InputGain(2.0, nn.Identity())), (4,))  # was an IndexError
    graph = to_nir(nn.Sequential(Scale(torch.tensor(2.0))), (4,))  # was NIR's type error
    np.testing.assert_array_equal(graph.nodes["scale_0"].scale, np.full(4, 2.0))
    x = torch.rand(3, 2, 4)
    torch.testing.assert_close(from_nir(graph)(x), 2.0 * x)
