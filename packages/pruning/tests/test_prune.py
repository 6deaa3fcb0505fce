"""Physical removal against the soft-pruning oracle on the zoo; plans, ratios and bad inputs."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.pruning import (
    MLP,
    DenseNetStyle,
    DependencyGraph,
    MagnitudeImportance,
    MaskedLayerNorm,
    MaskedNorm,
    MobileNetV2Style,
    PruningPlan,
    ResNetStyle,
    SmallViT,
    VGGStyle,
    count_macs,
    plan_from_masks,
    plan_pruning,
    prune,
    prune_model,
    soft_prune,
    zoo,
)


def _randomize_bn(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.normal_(1, 0.3, generator=gen)
                m.bias.normal_(0, 0.3, generator=gen)


@pytest.mark.parametrize("name", list(zoo()))
def test_zoo_hard_equals_soft_and_shrinks(name: str) -> None:
    ctor, shape = zoo()[name]
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = ctor().eval()
    _randomize_bn(model, gen)
    x = torch.randn((4, *shape), generator=gen)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan).eval(), soft_prune(graph, plan).eval()
    with torch.no_grad():
        assert (hard(x) - soft(x)).abs().max() <= 1e-5
        assert (model(x) - soft(x)).abs().max() > 1e-3  # the oracle really differs
    assert count_macs(model, x[:1]) >= 3 * count_macs(hard, x[:1])
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, state[k])


@settings(max_examples=6, deadline=None)
@given(
    ratio=st.floats(0.0, 0.9),
    scope=st.sampled_from(["local", "global"]),
    seed=st.integers(0, 1000),
)
def test_any_ratio_matches_oracle(ratio: float, scope: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DenseNetStyle(growth=4, layers=2).eval()
    _randomize_bn(model, gen)
    x = torch.randn((2, 3, 8, 8), generator=gen)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l1", ratio, scope=scope)
    with torch.no_grad():
        diff = (prune(graph, plan)(x) - soft_prune(graph, plan)(x)).abs().max()
    assert diff <= 1e-5


def test_local_ratio_counts_round_to_and_heads() -> None:
    model = SmallViT(dim=64, heads=4, depth=1).eval()
    x = torch.randn(2, 3, 16, 16)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.3, round_to=8)
    for gi, idx in plan.removed.items():
        g = graph.groups[gi]
        assert (g.size - idx.numel()) % 8 == 0
        assert idx.numel() % g.multiple == 0
        assert g.size - idx.numel() == math.ceil((g.size - math.floor(0.3 * g.size)) / 8) * 8
    small = prune(graph, plan)
    assert small.blocks[0].attn.head_dim * 4 == small.blocks[0].attn.embed_dim == 48


def test_ignored_and_per_layer_ratios() -> None:
    model = MLP(hidden=(32, 32)).eval()
    graph = DependencyGraph(model, torch.randn(2, 64))
    plan = plan_pruning(graph, ratio=0.5, ignored_layers=["body.0"], layer_ratios={"body.2": 0.25})
    small = prune(graph, plan)
    assert small.body[0].out_features == 32
    assert small.body[2].out_features == 24
    # a container names every layer inside it; a norm names its own channels
    everything = prune(graph, plan_pruning(graph, ratio=0.5, ignored_layers=["body"]))
    assert everything.body[0].out_features == everything.body[2].out_features == 32
    vgg = VGGStyle().eval()
    vgg_graph = DependencyGraph(vgg, torch.randn(2, 3, 16, 16))
    norm = next(n for n, m in vgg.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    plan = plan_pruning(vgg_graph, ratio=0.5, ignored_layers=[norm])
    assert not any(m.module == norm for gi in plan.removed for m in vgg_graph.groups[gi].members)
    with pytest.raises(ValueError, match="layer_ratios: only used with scope='local'"):
        plan_pruning(graph, scope="global", layer_ratios={"body.2": 0.25})


def test_model_unchanged_and_clear_errors_on_bad_input() -> None:
    model = MobileNetV2Style().eval()
    x = torch.randn(2, 3, 16, 16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    graph = DependencyGraph(model, x)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="ratio"):
            plan_pruning(graph, ratio=bad)
    with pytest.raises(TypeError, match="ratio"):
        plan_pruning(graph, ratio="half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no_such_layer"):
        plan_pruning(graph, ignored_layers=["no_such_layer"])
    with pytest.raises(ValueError, match="scope"):
        plan_pruning(graph, scope="everywhere")
    with pytest.raises(ValueError, match="importance"):
        plan_pruning(graph, importance="random-ish")
    g = graph.prunable_groups()[0]
    with pytest.raises(ValueError, match="shape"):
        plan_from_masks(graph, {g.index: torch.ones(g.size + 1, dtype=torch.bool)})
    with pytest.raises(TypeError, match="bool"):
        plan_from_masks(graph, {g.index: torch.ones(g.size)})
    with pytest.raises(ValueError, match="every channel"):
        plan_from_masks(graph, {g.index: torch.zeros(g.size, dtype=torch.bool)})
    frozen = next(gr for gr in graph.groups if not gr.prunable)
    mask = torch.ones(frozen.size, dtype=torch.bool)
    mask[0] = False
    with pytest.raises(ValueError, match="cannot be pruned"):
        plan_from_masks(graph, {frozen.index: mask})
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_bad_layer_lists_inplace_flag_and_norm_masks_are_named() -> None:
    """A non-iterable layer list or a bad layer_ratios failed with "'int' object is not
    iterable" / "dictionary update sequence ..."; inplace="no" (truthy) pruned the model in
    place; a keep mask of the wrong length failed only in forward, inside our norm code."""
    model = MLP(hidden=(16,)).eval()
    graph = DependencyGraph(model, torch.randn(2, 64))
    with pytest.raises(TypeError, match="ignored_layers: expected a list of layer names, got int"):
        plan_pruning(graph, ignored_layers=3)  # type: ignore[arg-type]
    for bad in ("body.0", 3):
        with pytest.raises(TypeError, match="layer_ratios: expected a mapping"):
            plan_pruning(graph, layer_ratios=bad)  # type: ignore[arg-type]
    plan = plan_pruning(graph, ratio=0.25)
    with pytest.raises(TypeError, match="inplace: expected a bool, got str"):
        prune(graph, plan, inplace="no")  # type: ignore[arg-type]
    assert model.body[0].out_features == 16
    short = torch.tensor([True, False, True])
    with pytest.raises(ValueError, match=r"keep: expected a \[4\] mask"):
        MaskedLayerNorm(torch.nn.LayerNorm(4), short)
    with pytest.raises(ValueError, match=r"keep: expected a \[4\] mask"):
        MaskedLayerNorm(torch.nn.GroupNorm(1, 4), short)
    with pytest.raises(ValueError, match=r"keep: expected a \[4\] mask"):
        MaskedNorm(torch.nn.RMSNorm(4), short)
    with pytest.raises(ValueError, match=r"keep: expected a \[4\] mask"):
        MaskedNorm(torch.nn.RMSNorm(4), torch.ones(2, 4, dtype=torch.bool))


def test_masks_and_attention_head_constraint() -> None:
    model = SmallViT(dim=32, heads=4, depth=1).eval()
    x = torch.randn(2, 3, 16, 16)
    graph = DependencyGraph(model, x)
    g = next(gr for gr in graph.groups if gr.attention)
    mask = torch.ones(g.size, dtype=torch.bool)
    mask[:3] = False
    with pytest.raises(ValueError, match="multiple of 4"):
        plan_from_masks(graph, {g.index: mask})
    mask[3] = False
    plan = plan_from_masks(graph, {g.index: mask})
    with torch.no_grad():
        torch.testing.assert_close(
            prune(graph, plan)(x), soft_prune(graph, plan)(x), atol=1e-5, rtol=0
        )


def test_prune_model_one_call_and_inplace() -> None:
    model = MLP(hidden=(16,)).eval()
    small = prune_model(model, torch.randn(2, 64), ratio=0.5)
    assert small.body[0].out_features == 8
    assert model.body[0].out_features == 16
    graph = DependencyGraph(model, torch.randn(2, 64))
    same = prune(graph, plan_pruning(graph, ratio=0.25), inplace=True)
    assert same is model
    assert model.body[0].out_features == 12


@pytest.mark.parametrize("build", [MobileNetV2Style, lambda: SmallViT(dim=32, heads=4, depth=1)])
def test_a_saved_plan_rebuilds_the_pruned_model_for_its_weights(build) -> None:
    """Prune, change the weights (as fine-tuning would), save the plan and the weights; a fresh
    model of the same architecture is pruned by the loaded plan and takes the weights."""
    import io

    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    with torch.no_grad():
        for p in small.parameters():
            p.mul_(1.1)
    buffer = io.BytesIO()
    torch.save({"plan": plan.state_dict(), "weights": small.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    torch.manual_seed(5)  # another initialization
    fresh = build().eval()
    loaded = PruningPlan.from_state_dict(saved["plan"])
    assert set(loaded.attention) == set(plan.attention)
    rebuilt = prune(DependencyGraph(fresh, x), loaded)
    rebuilt.load_state_dict(saved["weights"])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), small(x))
    with pytest.raises(ValueError, match="state keys must be"):
        PruningPlan.from_state_dict({"kept.0": torch.tensor([1])})
    with pytest.raises(ValueError, match="1-D integer tensor"):
        PruningPlan.from_state_dict({"removed.0": torch.tensor([0.5])})
    with pytest.raises(ValueError, match="1-D integer tensor"):  # a mask, not positions
        PruningPlan.from_state_dict({"removed.0": torch.tensor([True, False])})
    group = next(iter(loaded.removed))
    repeated = PruningPlan({group: torch.tensor([0, 0])}, dict(loaded.attention))
    with pytest.raises(ValueError, match="repeats a channel index"):
        prune(DependencyGraph(fresh, x), repeated)
    foreign = PruningPlan(dict(loaded.removed), {"no.such.attn": torch.arange(4)})
    with pytest.raises(ValueError, match=r"'no\.such\.attn' is not an nn\.MultiheadAttention"):
        prune(DependencyGraph(fresh, x), foreign)


def test_global_scope_removes_exactly_k_channels_when_scores_tie() -> None:
    """Tied scores: exactly floor(ratio * total) channels, earlier group and lower index
    first, each group still capped by max_ratio (the threshold rule removed every tie)."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    for p in model.parameters():
        torch.nn.init.constant_(p, 0.5)  # every channel scores the same
    graph = DependencyGraph(model, torch.randn(2, 4))
    plan = plan_pruning(graph, "l2", 0.1, scope="global")
    assert plan.num_removed() == 1  # floor(0.1 * 14), not all 12 ties
    assert {g: v.tolist() for g, v in plan.removed.items()} == {0: [0]}
    plan = plan_pruning(graph, "l2", 0.7, scope="global", max_ratio=0.5)
    assert {g: v.tolist() for g, v in plan.removed.items()} == {0: [0, 1, 2, 3], 1: [0]}


def test_global_scope_without_ties_removes_the_scores_below_the_kth() -> None:
    torch.manual_seed(0)
    model = MLP(in_features=8, hidden=(16, 12), num_classes=3).eval()
    graph = DependencyGraph(model, torch.randn(2, 8))
    scores = MagnitudeImportance(p=2)(graph)
    flat = torch.cat([scores[g.index] for g in graph.prunable_groups()])
    kth = flat.sort().values[math.floor(0.4 * flat.numel()) - 1]
    plan = plan_pruning(graph, "l2", 0.4, scope="global")
    for g in graph.prunable_groups():
        want = (scores[g.index] <= kth).nonzero().flatten().tolist()
        assert plan.removed.get(g.index, torch.zeros(0)).tolist() == want


def test_a_target_of_another_shape_is_refused_before_anything_is_pruned() -> None:
    """``target`` must match ``graph.model``: a wider/narrower layer or a missing layer is a
    ValueError naming ``target`` and the mismatch, and the target keeps every tensor."""
    nn = torch.nn

    def make(hidden: int, layers: int = 3) -> torch.nn.Sequential:
        mods = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 3)]
        return nn.Sequential(*mods[: 2 * layers - 1])

    torch.manual_seed(0)
    graph = DependencyGraph(make(8), torch.randn(2, 4))
    plan = plan_pruning(graph, "l2", 0.5)
    for target, match in (
        (make(6), r"target: '2\.weight' has shape \(6, 8\), graph\.model's has \(8, 8\)"),
        (make(8, layers=2), r"target: has no submodule '3'"),
    ):
        before = {k: v.clone() for k, v in target.state_dict().items()}
        with pytest.raises(ValueError, match=match):
            prune(graph, plan, target=target)
        after = target.state_dict()
        assert after.keys() == before.keys()
        assert all(torch.equal(after[k], v) for k, v in before.items())
    # a matching copy (weights may differ) is still pruned in place
    target = make(8)
    assert prune(graph, plan, target=target) is target
    assert target[2].weight.shape == (4, 4)


@pytest.mark.parametrize("ndim", [4, 5])
def test_pruned_weights_keep_their_memory_format(ndim: int) -> None:
    """A channels_last (channels_last_3d) model prunes to weights in the same memory format,
    not the default contiguous one; a default-contiguous model stays contiguous."""
    nn = torch.nn
    if ndim == 4:
        fmt, shape = torch.channels_last, (2, 3, 16, 16)
        make = ResNetStyle
    else:
        fmt, shape = torch.channels_last_3d, (2, 3, 4, 6, 6)

        def make() -> nn.Module:
            conv = nn.Conv3d
            return nn.Sequential(conv(3, 8, 3, padding=1), nn.ReLU(), conv(8, 8, 3), nn.ReLU())

    torch.manual_seed(0)
    x = torch.randn(shape)
    for channels_last in (True, False):
        model = make().eval()
        if channels_last:
            model = model.to(memory_format=fmt)
        graph = DependencyGraph(model, x.contiguous(memory_format=fmt) if channels_last else x)
        plan = plan_pruning(graph, "l2", 0.5)
        small = prune(graph, plan)
        convs = [p for p in small.parameters() if p.ndim == ndim]
        assert sum(p.numel() for p in convs) < sum(p.numel() for p in model.parameters())
        for p in convs:
            assert p.is_contiguous(memory_format=fmt if channels_last else torch.contiguous_format)
            if p.shape[1] > 1 and p.shape[2:].numel() > 1:  # the two formats differ
                assert p.is_contiguous() != channels_last
        with torch.no_grad():
            torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), atol=1e-5, rtol=0)


def test_numpy_scalars_are_accepted_as_python_numbers() -> None:
    """A numpy float ratio, a numpy int round_to / samples / group index / model width was
    rejected ("expected a float ..., got float32", "unknown group index np.int64(0)")."""
    import numpy as np

    from neuronkit.pruning import obspa_prune

    model = MLP(in_features=np.int64(8), hidden=(np.int64(16), 16), num_classes=np.int64(3))
    assert model.body[0].out_features == 16
    assert type(model.body[0].out_features) is int
    model.eval()
    graph = DependencyGraph(model, torch.randn(4, 8))
    plan = plan_pruning(graph, "l2", 0.5, round_to=2)
    numpy_plan = plan_pruning(
        graph,
        "l2",
        np.float32(0.5),
        round_to=np.int64(2),
        max_ratio=np.float64(0.95),
        layer_ratios={"body.2": np.float32(0.5)},
    )
    assert plan.removed.keys() == numpy_plan.removed.keys()
    assert all(torch.equal(plan.removed[k], numpy_plan.removed[k]) for k in plan.removed)
    g = graph.prunable_groups()[0]
    mask = torch.ones(g.size, dtype=torch.bool)
    mask[:4] = False
    from_masks = plan_from_masks(graph, {np.int64(g.index): mask})
    assert list(from_masks.removed) == [g.index]
    assert all(type(k) is int for k in from_masks.removed)
    _, obs_plan = obspa_prune(graph, np.float64(0.25), samples=np.int64(8), round_to=np.int16(2))
    assert obs_plan.removed
    with pytest.raises(TypeError, match="masks: expected int group indices, got str"):
        plan_from_masks(graph, {"0": mask})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"round_to: expected a positive int, got 2\.0"):
        plan_pruning(graph, round_to=2.0)  # type: ignore[arg-type]


class _DenseBlock(torch.nn.Module):
    """Two layers whose outputs are concatenated (DenseNet style) and added to a projection of
    the input, which makes all 12 channels one group; the second layer has small weights and
    a tiny layer scale (timm's RDNet), so its channels score lowest."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 4, 3, padding=1)
        self.skip = torch.nn.Conv2d(3, 12, 1)
        self.gamma = torch.nn.Parameter(torch.full((4, 1, 1), 1e-6))
        self.out = torch.nn.Conv2d(12, 5, 1)
        with torch.no_grad():  # b's channels: small in every layer that holds them
            self.b.weight.mul_(1e-3)
            self.skip.weight[8:].mul_(1e-3)
            self.out.weight[:, 8:].mul_(1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(torch.cat([h, self.gamma * self.b(h)], 1) + self.skip(x))


def test_every_concatenated_layer_keeps_an_output_channel() -> None:
    """Before 0.5.48 the plan removed all of ``b``'s channels (the 6 lowest of the 12 are its
    4 and 2 of ``a``'s): a convolution with no output, so the pruned model failed on its
    first call. Now ``b`` keeps its best channel, and one more of ``a``'s goes instead."""
    torch.manual_seed(0)
    model, x = _DenseBlock().eval(), torch.randn(2, 3, 6, 6)
    graph = DependencyGraph(model, x)
    assert [g.size for g in graph.prunable_groups()] == [12]
    plan = plan_pruning(graph, "l2", 0.5)
    assert plan.num_removed() == 6
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert (hard.a.out_channels, hard.b.out_channels) == (5, 1)
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


def test_ignoring_the_root_module_ignores_every_layer() -> None:
    """``""`` (the model itself, first in ``named_modules()``) holds every layer: ignoring it
    (e.g. every ``Sequential`` of a ``Sequential`` model) still removed channels."""
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    graph = DependencyGraph(model, torch.randn(2, 4))
    assert plan_pruning(graph, "l2", 0.5).removed  # something to ignore
    assert not plan_pruning(graph, "l2", 0.5, ignored_layers=[""]).removed
    assert not plan_pruning(graph, "l2", 0.5, layer_ratios={"": 0.0}).removed
