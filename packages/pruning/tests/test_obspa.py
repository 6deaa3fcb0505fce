"""OBSPA: OBS compensation lowers the layer-wise reconstruction error; data-free Hessians."""

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    MLP,
    DependencyGraph,
    DigitsCNN,
    OBSImportance,
    layer_hessians,
    obspa_prune,
    plan_pruning,
    prune,
)


class _TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 10)
        self.b = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_obs_compensation_beats_plain_removal_on_calibration_data() -> None:
    torch.manual_seed(0)
    model = _TwoLayer().eval()
    x = torch.randn(256, 6) + 0.5
    graph = DependencyGraph(model, x[:2])
    compensated, plan = obspa_prune(graph, 0.4, inputs=x, damp=1e-6)
    plain = prune(graph, plan)
    with torch.no_grad():
        ref = model(x)
        err_obs = ((compensated(x) - ref) ** 2).mean()
        err_plain = ((plain(x) - ref) ** 2).mean()
    assert err_obs < 0.5 * err_plain
    assert compensated.a.out_features == 6


def test_obs_saliency_equals_brute_force_least_squares() -> None:
    torch.manual_seed(1)
    model = _TwoLayer().eval()
    x = torch.randn(512, 6)
    graph = DependencyGraph(model, x[:2])
    h = layer_hessians(graph, inputs=x)
    (group,) = graph.prunable_groups()
    importance = OBSImportance(h, damp=1e-10)
    importance.normalize = None
    saliency = importance.group_scores(graph, group)
    with torch.no_grad():
        feats = torch.relu(model.a(x)).double()
        aug = torch.cat([feats, torch.ones(512, 1, dtype=torch.float64)], 1)
        target = model.b(torch.relu(model.a(x))).double()
        exact = []
        for j in range(10):  # refit the other inputs and the bias after dropping input j
            keep = [i for i in range(11) if i != j]
            sol = torch.linalg.lstsq(aug[:, keep], target).solution
            exact.append(float(((aug[:, keep] @ sol - target) ** 2).sum(1).mean()))
    torch.testing.assert_close(
        saliency, torch.tensor(exact, dtype=torch.float64), rtol=1e-3, atol=1e-6
    )


def test_data_free_hessians_follow_batchnorm_statistics() -> None:
    torch.manual_seed(2)
    model = DigitsCNN((4, 6, 6)).eval()
    with torch.no_grad():
        bn = model.features[0][1]
        bn.bias.copy_(torch.tensor([3.0, -3.0, 0.0, 1.0]))
        bn.weight.fill_(0.1)
    graph = DependencyGraph(model, torch.randn(2, 1, 8, 8))
    h = layer_hessians(graph, ["features.1.0"], samples=16, seed=0)["features.1.0"]
    # input channel c occupies columns 9c..9c+8; the centre tap (4) is never padding
    second = torch.stack([h[9 * c + 4, 9 * c + 4] for c in range(4)])
    assert second[0] > 8.0
    assert second[1] < 1e-6
    assert torch.allclose(h, h.T)


def test_obspa_runs_and_validates() -> None:
    torch.manual_seed(3)
    model = MLP(in_features=8, hidden=(16, 16), num_classes=4).eval()
    x = torch.randn(4, 8)
    graph = DependencyGraph(model, x)
    small, plan = obspa_prune(graph, 0.5)
    assert small(x).shape == (4, 4)
    assert plan.num_removed() == 16
    assert model.body[0].out_features == 16
    with pytest.raises(ValueError, match="ratio"):
        obspa_prune(graph, 1.5)
    with pytest.raises(ValueError, match="damp"):
        obspa_prune(graph, 0.5, damp=0.0)
    with pytest.raises(ValueError, match="nope"):
        obspa_prune(graph, 0.5, ignored_layers=["nope"])
    with pytest.raises(ValueError, match="samples"):
        layer_hessians(graph, samples=0)
    plan2 = plan_pruning(graph, OBSImportance(), 0.5)
    assert plan2.num_removed() == 16


def test_obs_importance_recomputes_data_free_hessians_for_each_graph() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    shared = OBSImportance()
    graph = DependencyGraph(model, torch.zeros(1, 6))
    shared(graph)
    small = prune(graph, plan_pruning(graph, shared, 0.5))
    with pytest.raises(TypeError, match="graph: expected a DependencyGraph"):
        prune(model, plan_pruning(graph, shared, 0.5))
    small_graph = DependencyGraph(small, torch.zeros(1, 6))
    assert torch.equal(
        torch.cat(list(shared(small_graph).values())),
        torch.cat(list(OBSImportance()(small_graph).values())),
    )
    stale = OBSImportance(layer_hessians(graph))
    with pytest.raises(ValueError, match="a layer with 4 inputs"):
        stale(small_graph)


def test_attention_projections_are_obs_consumers() -> None:
    from neuronkit.pruning import SmallViT

    torch.manual_seed(0)
    model = SmallViT(dim=32, heads=4, depth=1, image_size=8, patch=4).eval()
    x = torch.randn(128, 3, 8, 8)
    graph = DependencyGraph(model, x[:2])
    h = layer_hessians(graph, inputs=x)
    assert h["blocks.0.attn"].shape == (3, 33, 33)  # query, key, value inputs' moments
    torch.testing.assert_close(h["blocks.0.attn"][0], h["blocks.0.attn"][2])  # self-attention
    compensated, plan = obspa_prune(graph, 0.25, inputs=x, damp=1e-4)
    (stream,) = [g for g in graph.groups if g.attention]
    assert plan.removed[stream.index].numel() == 8  # a multiple of the 4 heads
    after = prune(graph, plan).blocks[0].attn.in_proj_weight  # same plan, no compensation
    # the residual stream's removal is compensated in the q/k/v projections (it was not)
    assert not torch.allclose(compensated.blocks[0].attn.in_proj_weight, after, atol=1e-4)
    with torch.no_grad():
        ref = model(x)
        err_obs = ((compensated(x) - ref) ** 2).mean()
        err_plain = ((prune(graph, plan)(x) - ref) ** 2).mean()
    assert err_obs < err_plain


class _BiasFreeAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.attn = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.head(self.attn(h, h, h, need_weights=False)[0])


def test_attention_without_biases_runs_after_compensation() -> None:
    torch.manual_seed(0)
    model = _BiasFreeAttention().eval()
    x = torch.randn(16, 5, 6)
    graph = DependencyGraph(model, x[:2])
    compensated, _ = obspa_prune(graph, 0.5, inputs=x, damp=1e-4)
    assert compensated.attn.in_proj_bias is not None  # created by the compensation
    with torch.no_grad():  # torch's fast path needs both biases: it raised a TypeError
        assert compensated(x).shape == (16, 5, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ignored_layers": ["features.0"]},  # the conv-BN-ReLU container
        {"ignored_layers": ["features.0.1"]},  # its BatchNorm
        {"layer_ratios": {"features.0": 0.5}},
        {"layer_ratios": {"features.0.1": 0.5}},
    ],
)
def test_obspa_reads_ignore_lists_and_layer_ratios_as_plan_pruning(kwargs: dict) -> None:
    # a container or a norm names its group's channels in plan_pruning; obspa_prune used to
    # match producers only and silently pruned the ignored group at the default ratio
    torch.manual_seed(0)
    model = DigitsCNN((16, 32, 32)).eval()
    graph = DependencyGraph(model, torch.randn(4, 1, 8, 8))
    counts = {k: len(v) for k, v in plan_pruning(graph, "l2", 0.3, **kwargs).removed.items()}
    _, plan = obspa_prune(graph, 0.3, **kwargs)
    assert {k: len(v) for k, v in plan.removed.items()} == counts


def _time_major_cnn(batch_norm: bool) -> nn.Module:
    from neuronkit.snn import LIF, SeqBatchNorm2d, SeqConv2d, SeqFlatten, SeqLinear

    torch.manual_seed(0)
    norm = [SeqBatchNorm2d(8)] if batch_norm else []
    return nn.Sequential(
        SeqConv2d(2, 8, 3, padding=1),
        *norm,
        LIF(),
        SeqConv2d(8, 8, 3, padding=1),
        LIF(),
        SeqFlatten(),
        SeqLinear(512, 4),
    ).eval()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_time_major_layers_fold_time_into_the_batch(batch_norm: bool) -> None:
    pytest.importorskip("neuronkit.snn")
    net = _time_major_cnn(batch_norm)
    x = torch.rand(4, 3, 2, 8, 8)  # [T, B, C, H, W]
    graph = DependencyGraph(net, x)
    second = str(2 + batch_norm)  # the second convolution
    h = layer_hessians(graph, [second], inputs=x)[second]
    with torch.no_grad():  # its input, time folded into the batch: [T * B, C, H, W]
        folded = nn.Sequential(*list(net)[: 2 + batch_norm])(x).flatten(0, 1)
    cols = nn.functional.unfold(folded, 3, padding=1).transpose(1, 2).reshape(-1, 72)
    cols = torch.cat([cols, torch.ones(len(cols), 1)], 1).double()
    torch.testing.assert_close(h, cols.T @ cols / len(cols))
    for inputs in (x, None):  # calibrated and data-free (BatchNorm channels on axis 2)
        small, _ = obspa_prune(graph, 0.5, inputs=inputs)
        assert small(x).shape == (4, 3, 4)


def test_empty_calibration_batch_is_rejected() -> None:
    """0 calibration rows gave 0/0 NaN Hessians and NaN weights."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = DependencyGraph(model, torch.randn(2, 4))
    with pytest.raises(ValueError, match="inputs: expected a non-empty calibration batch"):
        layer_hessians(graph, inputs=torch.randn(0, 4))
    with pytest.raises(ValueError, match="inputs"):
        obspa_prune(graph, 0.5, inputs=(torch.randn(0, 4),))
    with pytest.raises(ValueError, match="inputs: layer '2' received no input rows"):
        layer_hessians(graph, inputs=torch.randn(2, 0, 4))  # samples, but no rows


def test_bad_hessians_are_named() -> None:
    """A list instead of a tensor failed with "'list' object has no attribute 'shape'", a list
    of tensors with "dictionary update sequence ..."; NaN reached the solves; a layer name that
    the model lacks was silently ignored."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = DependencyGraph(model, torch.randn(2, 4))
    hessians = layer_hessians(graph)
    listed = {k: h.tolist() for k, h in hessians.items()}
    with pytest.raises(TypeError, match=r"hessians\['2'\]: expected a tensor, got list"):
        obspa_prune(graph, 0.5, hessians=listed)
    with pytest.raises(TypeError, match=r"hessians\['2'\]: expected a tensor, got list"):
        OBSImportance(hessians=listed)
    with pytest.raises(TypeError, match="hessians: expected a mapping"):
        OBSImportance(hessians=list(hessians.values()))  # type: ignore[arg-type]
    nan = {k: torch.full_like(h, float("nan")) for k, h in hessians.items()}
    with pytest.raises(ValueError, match=r"hessians\['2'\] must be finite"):
        obspa_prune(graph, 0.5, hessians=nan)
    with pytest.raises(ValueError, match="hessians: layer 'fc' does not exist"):
        obspa_prune(graph, 0.5, hessians={"fc": hessians["2"]})


def _patches(x: torch.Tensor, conv: nn.Conv1d | nn.Conv2d) -> torch.Tensor:
    """The im2col matrix ``[D, B * L]`` of a conv's input by explicit slicing (no unfold), rows
    in the order of ``conv.weight[0].flatten()`` (channel, then kernel taps)."""
    two_d = isinstance(conv, nn.Conv2d)
    if not two_d:  # a Conv1d as a Conv2d of width 1
        x = x.unsqueeze(-1)
    k, s, p, d = (
        (tuple(a) if two_d else (a[0], 1))
        for a in (conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    )
    p = p if two_d else (p[0], 0)
    x = nn.functional.pad(x, (p[1], p[1], p[0], p[0]))
    out = [(x.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    rows = []
    for c in range(x.shape[1]):
        for i in range(k[0]):
            for j in range(k[1]):
                tap = x[:, c, i * d[0] :: s[0], j * d[1] :: s[1]][:, : out[0], : out[1]]
                rows.append(tap.reshape(-1))
    return torch.stack(rows)


class _StridedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 20, 3, stride=2, padding=1)
        self.b = nn.Conv2d(20, 7, 3, stride=(1, 2), padding=(2, 1), dilation=(2, 1))
        self.c = nn.Conv1d(7, 5, 3, stride=2, padding=2, dilation=2)
        self.head = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b(torch.relu(self.a(x))))
        h = torch.relu(self.c(h.flatten(2)))  # [B, 7, H * W] as a sequence
        return self.head(h.transpose(1, 2))  # a Linear over [B, L, 5]: rows = B * L


def test_layer_hessians_match_direct_im2col_moments() -> None:
    # the blocked per-image Gram must equal [x; 1][x; 1]^T / N of the plain im2col rows,
    # stride, padding, dilation, Conv1d, a Linear over a sequence, D > one Gram block (180)
    from neuronkit.pruning import obspa

    torch.manual_seed(0)
    model = _StridedNet().eval()
    x = torch.randn(6, 3, 11, 9)
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(model, n).register_forward_pre_hook(
            lambda _m, args, n=n: seen.__setitem__(n, args[0].double())
        )
        for n in "abc"
    ] + [model.head.register_forward_pre_hook(lambda _m, a: seen.__setitem__("head", a[0]))]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    graph = DependencyGraph(model, x[:2])
    h = layer_hessians(graph, ["a", "b", "c", "head"], inputs=x)
    for name in ("a", "b", "c", "head"):
        mod = getattr(model, name)
        if name == "head":
            cols = seen[name].reshape(-1, 5).T.double()
        else:
            cols = _patches(seen[name], mod)
            with torch.no_grad():  # the reference rows reproduce the conv itself
                w = mod.weight.reshape(len(mod.weight), -1).double()
                out = (w @ cols).reshape(len(w), x.shape[0], -1).transpose(0, 1)
                ref_out = mod(seen[name].float()).reshape(x.shape[0], len(w), -1).double()
                torch.testing.assert_close(
                    out + mod.bias.double()[:, None], ref_out, atol=1e-4, rtol=1e-4
                )
        aug = torch.cat([cols, torch.ones(1, cols.shape[1], dtype=torch.float64)])
        ref = aug @ aug.T / cols.shape[1]
        assert h[name].dtype == torch.float64
        assert torch.equal(h[name], h[name].T)
        torch.testing.assert_close(h[name], ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))
    # every chunking of the images (one per product, several, all at once) gives the same sum
    cols = nn.functional.unfold(seen["b"], 3, dilation=(2, 1), padding=(2, 1), stride=(1, 2))
    want = layer_hessians(graph, ["b"], inputs=x)["b"] * cols.shape[0] * cols.shape[2]
    for columns in (1, 50, 10**9):
        got = obspa._second_moment(cols, columns)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12 * float(want.abs().max()))


def test_rank_deficient_hessian_without_damping_is_refused() -> None:
    # 3 calibration samples for 10 inputs + bias: H has rank 3; undamped, its "inverse" gave
    # arbitrary saliencies (some negative, for a quadratic form of a PSD matrix), silently
    torch.manual_seed(0)
    model = _TwoLayer().eval()
    x = torch.randn(3, 6)
    graph = DependencyGraph(model, x[:2])
    hessians = layer_hessians(graph, inputs=x)
    with pytest.raises(ValueError, match=r"hessians\['b'\].*singular.*damp=0"):
        OBSImportance(hessians, damp=0.0)(graph)
    zero = layer_hessians(graph, inputs=torch.zeros(8, 6))  # every input channel dead
    with pytest.raises(ValueError, match=r"hessians\['b'\].*singular"):
        OBSImportance(zero, damp=0.0)(graph)
    scores = OBSImportance(hessians, damp=0.01)(graph)  # damping makes it well posed
    assert all(bool((s > 0).all()) for s in scores.values())


def test_obs_importance_normalizes_a_tiny_scale_group_to_mean_one() -> None:
    torch.manual_seed(0)
    model = _TwoLayer().eval()
    x = torch.randn(64, 6)
    with torch.no_grad():
        model.b.weight.mul_(2.0**-60)  # saliencies ~1e-37, below the old 1e-30 floor
        model.b.bias.mul_(2.0**-60)
    graph = DependencyGraph(model, x[:2])
    (scores,) = OBSImportance(layer_hessians(graph, inputs=x))(graph).values()
    assert float(scores.mean()) == pytest.approx(1.0)


@pytest.mark.parametrize("hessians", [False, True])
@pytest.mark.parametrize("route", ["importance", "obspa_prune"])
def test_obs_on_a_meta_model_names_the_parameter(route: str, hessians: bool) -> None:
    """A model on the meta device failed deep inside torch ("Tensor.item() cannot be called on
    meta tensors", a singular solve, "Cannot copy out of meta tensor")."""
    with torch.device("meta"):
        model = MLP(in_features=5, hidden=(7,), num_classes=3)
    graph = DependencyGraph(model, torch.randn(2, 5, device="meta"))
    given = {"head": torch.eye(8, dtype=torch.float64)} if hessians else None
    with pytest.raises(ValueError, match=r"model: body\.0\.weight is on the meta device"):
        if route == "importance":
            plan_pruning(graph, OBSImportance(given), 0.5)
        else:
            obspa_prune(graph, 0.5, hessians=given)
