"""Dependency graph: coupled groups on real architectures, freezing rules, untraceable models."""

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DenseNetStyle,
    DependencyGraph,
    GroupMember,
    MobileNetV2Style,
    Positions,
    ResNetStyle,
    SmallViT,
    UntraceableModelError,
    plan_pruning,
    prune,
    soft_prune,
)


def test_residual_stage_is_one_group() -> None:
    model = ResNetStyle(widths=(8, 16, 16), blocks=2).eval()
    graph = DependencyGraph(model, torch.randn(2, 3, 8, 8))
    stage1 = [g for g in graph.groups if "stem.0" in g.producers]
    assert len(stage1) == 1
    # the stem and both blocks' second convs write the same residual stream
    assert {"layers.0.conv2", "layers.1.conv2"} <= set(stage1[0].producers)
    assert stage1[0].size == 8


def test_vit_attention_group_keeps_whole_heads() -> None:
    model = SmallViT(dim=32, heads=4, depth=1).eval()
    graph = DependencyGraph(model, torch.randn(2, 3, 16, 16))
    stream = [g for g in graph.groups if g.attention]
    assert len(stream) == 1
    assert stream[0].multiple == 4
    assert "pos_embed" in stream[0].producers
    assert "cls_token" in stream[0].producers


class _Split(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(4, 6, 1)
        self.c = nn.Conv2d(4, 6, 1)
        self.d = nn.Conv2d(12, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = torch.relu(self.a(x)).chunk(2, dim=1)
        y = torch.cat([self.b(u), self.c(v)], 1)
        return self.d(torch.sigmoid(y)).mean((2, 3))


def test_split_and_concat_index_mapping() -> None:
    torch.manual_seed(0)
    model = _Split().eval()
    x = torch.randn(3, 3, 6, 6)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l1", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.a.out_channels == 4
    assert hard.b.in_channels == 2
    assert hard.d.in_channels == 6
    torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.h = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(self.g(self.a(x)))


class _ResNeXtBlock(nn.Module):
    """A ResNeXt / RegNet bottleneck: 1x1 -> grouped 3x3 (groups=4) -> 1x1, residual."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.a, self.bn_a = nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)
        self.g, self.bn_g = nn.Conv2d(16, 24, 3, padding=1, groups=4), nn.BatchNorm2d(24)
        self.c = nn.Conv2d(24, 8, 1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        y = torch.relu(self.bn_g(self.g(torch.relu(self.bn_a(self.a(h))))))
        return self.head(h + self.c(y))


@pytest.mark.parametrize("model", [_Grouped(), _ResNeXtBlock()])
def test_grouped_conv_prunes_the_same_local_channels_in_every_group(model) -> None:
    torch.manual_seed(0)
    model = model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    x = torch.randn(2, 3, 5, 5)
    graph = DependencyGraph(model, x)
    into = graph.layer_groups("a")[0]  # channels read by the grouped conv
    assert into.prunable, into.reason
    conv = model.g
    d_in = conv.in_channels // conv.groups
    assert into.size == d_in  # a unit is local channel j of every group
    assert graph.layer_groups("g")[0].size == conv.out_channels // conv.groups
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.g.groups == conv.groups
    assert hard.g.in_channels == conv.in_channels // 2
    assert hard.g.out_channels == conv.out_channels // 2
    removed = plan.removed[into.index]
    # the producer loses the same local channels from each group
    lost = np.sort(graph.groups[into.index].members[0].positions.take(removed.numpy()))
    assert np.array_equal(
        lost, np.sort(np.add.outer(np.arange(conv.groups) * d_in, removed)).ravel()
    )
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _ChannelMix(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.cumsum(self.a(x), dim=-1))


def test_unknown_op_freezes_instead_of_guessing() -> None:
    graph = DependencyGraph(_ChannelMix(), torch.randn(2, 4))
    a = graph.layer_groups("a")[0]
    assert not a.prunable
    assert "cumsum" in a.reason


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow
            return self.fc(x)
        return x


def test_untraceable_model_names_the_operation() -> None:
    model = _Untraceable()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UntraceableModelError, match=r"x\.sum\(\) > 0"):
        DependencyGraph(model, torch.randn(2, 4))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_wrapped_models_are_refused_naming_what_to_pass() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = torch.randn(2, 4)
    with pytest.raises(TypeError, match=r"model\._orig_mod"):
        DependencyGraph(torch.compile(model), x)
    with pytest.raises(TypeError, match=r"model\.module"):
        DependencyGraph(nn.DataParallel(model), x)
    with pytest.raises(TypeError, match="TorchScript"):
        DependencyGraph(torch.jit.trace(model, x), x)
    # a torch.nn layer given as the model is traced through (it was left a call of itself)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).eval()
    assert DependencyGraph(layer, torch.randn(3, 2, 8)).prunable_groups()


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="model"):
        DependencyGraph("not a model", torch.randn(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="example_inputs"):
        DependencyGraph(nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match="example_inputs"):
        DependencyGraph(nn.Linear(2, 2), torch.randn(1, 5))


def test_tracing_keeps_each_module_mode() -> None:
    # a training model with a frozen (eval) BN: the trace runs in eval mode, and afterwards
    # every module has its own mode back, not the root's
    model = ResNetStyle(widths=(8, 16, 16), blocks=1).train()
    model.stem[1].eval()
    before = {name: m.training for name, m in model.named_modules()}
    stats = model.stem[1].running_mean.clone()
    DependencyGraph(model, torch.randn(2, 3, 8, 8))
    assert {name: m.training for name, m in model.named_modules()} == before
    assert not before["stem.1"]
    assert before["layers.0.bn1"]
    assert torch.equal(model.stem[1].running_mean, stats)  # no BN statistics were updated
    assert torch.equal(model.layers[0].bn1.running_mean, torch.zeros(8))


def test_positions_are_a_sequence_of_channel_index_lists() -> None:
    lists = [[4, 5], [0], [], [7, 8, 9]]
    pos = Positions.from_lists(lists)
    assert len(pos) == 4
    assert pos == lists
    assert list(pos) == lists
    assert pos[-1] == [7, 8, 9]
    assert pos[1:3] == [[0], []]
    assert pos.counts.tolist() == [2, 1, 0, 3]
    assert pos.take(np.array([3, 0, 2])).tolist() == [7, 8, 9, 4, 5]
    single = Positions(np.array([3, 1, 2]))
    assert single == [[3], [1], [2]]
    assert single.take(np.array([2, 0])).tolist() == [2, 3]
    assert pos != [[4, 5], [0], [], [7, 8]]
    assert pos != single
    with pytest.raises(IndexError, match="channel 4"):
        pos[4]
    with pytest.raises(ValueError, match="bounds"):
        Positions(np.array([1, 2]), np.array([0, 3]))
    with pytest.raises(ValueError, match="flat"):
        Positions(np.array([-1]))
    # a group's members hold Positions; given as lists, a member converts them
    model = ResNetStyle(widths=(8, 16, 16), blocks=1).eval()
    member = DependencyGraph(model, torch.randn(1, 3, 8, 8)).groups[0].members[0]
    assert isinstance(member.positions, Positions)
    assert GroupMember(**{**vars(member), "positions": list(member.positions)}) == member


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResNetStyle(widths=(8, 16, 16), blocks=2),
        lambda: SmallViT(dim=32, heads=4, depth=1),
        lambda: MobileNetV2Style(expand=2),
        lambda: DenseNetStyle(growth=4, layers=2),
    ],
)
def test_plain_tracer_records_the_stock_fx_graph(make) -> None:
    """The dependency graph's tracer skips module-scope metadata, nothing else."""
    from torch import fx

    from neuronkit.pruning.tracing import _PlainTracer, trace_model

    model = make()
    plain, stock = _PlainTracer().trace(model), fx.Tracer().trace(model)
    assert str(plain) == str(stock)
    assert not any("nn_module_stack" in n.meta for n in plain.nodes)
    # the public trace_model keeps what torch.fx.symbolic_trace records
    traced = trace_model(model, (torch.randn(1, 3, 16, 16),))
    assert any("nn_module_stack" in n.meta for n in traced.graph.nodes)


def test_positions_owners_name_the_channel_of_each_flat_index() -> None:
    positions = Positions.from_lists([[4], [0, 2], [], [7, 1, 3]])
    assert positions.owners.tolist() == [0, 1, 1, 3, 3, 3]
    assert Positions.from_lists([[5], [6]]).owners.tolist() == [0, 1]


class _SwapChunks(nn.Module):
    """Pieces of a channel split go separate ways (swapped before a concat)."""

    def __init__(self, sliced: bool) -> None:
        super().__init__()
        self.sliced = sliced
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        p, q = (y[:, :4], y[:, 4:]) if self.sliced else y.chunk(2, 1)
        return self.b(torch.cat([q, torch.relu(p)], 1)).mean((2, 3))


class _ChannelPoolAndFriends(nn.Module):
    """Ops that act across channels while keeping the shape."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)
        self.pool, self.softmax = nn.AvgPool1d(3, 1, 1), nn.Softmax()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.kind == "pool":  # a 1-d pool of [B, features] pools over the features
            h = self.pool(h)
        elif self.kind == "softmax":  # dim=None: torch's implicit dim 1, the channels
            h = self.softmax(h)
        else:  # .T: channels on the first axis
            return self.fc2(torch.relu(h)).T
        return self.fc2(h)


@pytest.mark.parametrize(
    "model",
    [
        _SwapChunks(sliced=False),
        _SwapChunks(sliced=True),
        _ChannelPoolAndFriends("pool"),
        _ChannelPoolAndFriends("softmax"),
        _ChannelPoolAndFriends("transpose"),
    ],
)
def test_ops_across_channels_keep_the_pruned_model_equal_to_the_soft_oracle(model) -> None:
    torch.manual_seed(0)
    model = model.eval()
    x = torch.randn(4, 3, 6, 6) if isinstance(model, _SwapChunks) else torch.randn(5, 6)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():
        assert hard(x).shape == model(x).shape
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _Awkward(nn.Module):
    """Layouts that crashed the pruned model: attention by keyword, a non-affine LayerNorm,
    a concat of a traced list."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8, elementwise_affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # [B, T, 8]
        if self.kind == "mha_keywords":
            h = self.attn(query=h, key=h, value=h, need_weights=False)[0]
        elif self.kind == "layernorm":
            h = self.norm(h)
        else:
            parts = h.chunk(2, dim=1)  # along time: a traced tuple
            h = torch.cat(parts[1:], dim=1)
        return self.fc2(h)


@pytest.mark.parametrize("kind", ["mha_keywords", "layernorm", "traced_list"])
def test_awkward_layouts_prune_to_a_working_model(kind: str) -> None:
    torch.manual_seed(0)
    model = _Awkward(kind).eval()
    x = torch.randn(2, 4, 6)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _ReusedLayer(torch.nn.Module):
    """``b`` is applied twice: its input and output channels are one set."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (
            torch.nn.Linear(8, 16),
            torch.nn.Linear(16, 16),
            torch.nn.Linear(16, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b(torch.relu(self.a(x))))
        return self.c(torch.relu(self.b(h)))


class _TiedLayers(torch.nn.Module):
    """``b.weight is a.weight`` while ``a`` reads the model input: b's input stays whole."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.mid = torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)
        self.b, self.c = torch.nn.Linear(8, 16), torch.nn.Linear(16, 3)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(torch.relu(self.a(x)))
        return self.c(torch.relu(self.b(h)))


def test_reused_module_and_tied_weights_are_pruned_consistently() -> None:
    from neuronkit.pruning import plan_pruning, prune, soft_prune

    torch.manual_seed(0)
    x = torch.randn(4, 8)
    reused = _ReusedLayer().eval()
    graph = DependencyGraph(reused, x)
    (group,) = graph.prunable_groups()  # a's output = b's input = b's output = c's input
    assert group.size == 16
    assert sorted((m.module, m.dim) for m in group.members if m.param == "weight") == [
        ("a", 0),
        ("b", 0),
        ("b", 1),
        ("c", 1),
    ]  # b listed once although called twice
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    assert small.b.weight.shape == (8, 8)
    with torch.no_grad():  # it used to raise a shape mismatch
        assert (small(x) - soft_prune(graph, plan)(x)).abs().max() <= 1e-6

    tied = _TiedLayers().eval()
    graph = DependencyGraph(tied, x)
    frozen = [g for g in graph.groups if not g.prunable and "mid" in g.producers]
    assert frozen  # shrinking it would change a's input
    assert "shared" in frozen[0].reason
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    assert small.b.weight is small.a.weight
    assert small.a.weight.shape == (8, 8)
    with torch.no_grad():  # it used to raise an IndexError
        assert (small(x) - soft_prune(graph, plan)(x)).abs().max() <= 1e-6


def _drop_path(x: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """Stand-in for torchvision.ops.stochastic_depth (an fx-wrapped function, matched by its
    qualified name; torchvision is not a test dependency)."""
    return x


_drop_path.__module__, _drop_path.__qualname__ = (
    "torchvision.ops.stochastic_depth",
    ("stochastic_depth"),
)
torch.fx.wrap("_drop_path")


class _ChannelsFirstLayerNorm(nn.LayerNorm):
    """torchvision's LayerNorm2d: an nn.LayerNorm subclass normalizing NCHW over C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _ConvNeXtBlock(nn.Module):
    """torchvision's ConvNeXt layouts: a channels-first LayerNorm called through
    F.layer_norm, a layer scale [C, 1, 1] read in forward, stochastic depth."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = _ChannelsFirstLayerNorm(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 8)
        self.layer_scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.stem(x))
        y = self.down(torch.relu(self.up(self.dw(h).permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)
        return self.head(h + _drop_path(self.layer_scale * y, 0.1, "row", False))


def test_convnext_layouts_are_prunable_and_match_the_oracle() -> None:
    torch.manual_seed(0)
    model = _ConvNeXtBlock().eval()
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 6, 6)
    graph = DependencyGraph(model, x)
    stem = graph.layer_groups("stem")[0]
    assert stem.prunable, stem.reason  # layer scale, F.layer_norm and drop path follow it
    roles = {(m.module, m.param): m.role for m in stem.members}
    assert roles[("norm", "weight")] == "norm"
    assert roles[("", "layer_scale")] == "embed"
    assert graph.layer_groups("up")[0].prunable
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.norm.normalized_shape == (4,)
    assert hard.layer_scale.shape == (4, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _ConstantSizes(nn.Module):
    """Sizes in forward: heads in a view, a hidden size in a reshape, each a module attribute
    read nowhere else or a literal."""

    def __init__(self, kind: str, literal: bool) -> None:
        super().__init__()
        self.kind, self.literal, self.heads, self.hidden = kind, literal, 2, 8
        self.inp, self.qkv, self.out = nn.Linear(6, 8), nn.Linear(8, 24), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)  # [B, N, 8]
        b, n, _ = h.shape
        if self.kind == "hidden":  # torchvision ViT: x.reshape(n, self.hidden_dim, h * w)
            hidden = 8 if self.literal else self.hidden
            return self.out(h.transpose(1, 2).reshape(b, hidden, n).transpose(1, 2))
        heads = 2 if self.literal else self.heads
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, heads, -1).transpose(1, 2) for t in (q, k, v))
        a = (q @ k.transpose(-1, -2)).softmax(-1) @ v  # [B, heads, N, 4]
        return self.out(a.transpose(1, 2).reshape(b, n, -1))


@pytest.mark.parametrize("literal", [True, False], ids=["literal", "attribute"])
@pytest.mark.parametrize("kind", ["heads", "hidden"])
def test_constant_sizes_in_forward_freeze_unless_module_attributes(
    kind: str, literal: bool
) -> None:
    """A literal size freezes its channels; a module attribute read only as that size is
    rewritten to the kept count (``heads`` -> 1, ``hidden`` -> 4)."""
    torch.manual_seed(0)
    model = _ConstantSizes(kind, literal).eval()
    x = torch.randn(2, 5, 6)
    graph = DependencyGraph(model, x)
    group = graph.layer_groups("qkv" if kind == "heads" else "inp")[0]
    assert group.prunable is not literal
    if literal:
        assert "constant of forward" in group.reason
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)  # the pruned model still runs
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)
        if not literal:
            assert not torch.allclose(soft(x), model(x), atol=1e-4)  # channels were removed
    attr = "heads" if kind == "heads" else "hidden"
    assert getattr(hard, attr) == {"heads": 2, "hidden": 8}[attr] // (1 if literal else 2)


class _WidthLayerNorm(nn.LayerNorm):
    """Calls F.layer_norm with its own width attribute, or with its bias only."""

    def __init__(self, width: int, bias_only: bool) -> None:
        super().__init__(width)
        self.width, self.bias_only = width, bias_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias_only:
            return nn.functional.layer_norm(x, self.normalized_shape, None, self.bias, self.eps)
        return nn.functional.layer_norm(x, (self.width,), self.weight, self.bias, self.eps)


class _NormLayouts(nn.Module):
    """LayerNorm uses the pruner cannot follow (frozen) or must keep working in the oracle."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)
        self.ln = (
            _WidthLayerNorm(8, kind == "bias_only")
            if "only" in kind or kind == "width"
            else nn.LayerNorm(8)
        )
        self.tok = nn.Parameter(torch.randn(1, 1, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)  # [B, T, 8]
        if self.kind == "parent_call":  # the parent calls F.layer_norm with the layer's weights
            ln = self.ln
            return self.b(nn.functional.layer_norm(h, ln.normalized_shape, ln.weight, ln.bias))
        if self.kind == "reads_bias":  # the model reads the LayerNorm's bias elsewhere
            return self.b(self.ln(h) + self.ln.bias)
        if self.kind == "keyword_view":
            return self.b(h.reshape(shape=(h.shape[0] * h.shape[1], 8)))
        if self.kind == "expand":
            return self.b(torch.cat([self.tok.expand(h.shape[0], 1, 8), h], 1))
        return self.b(self.ln(h))


@pytest.mark.parametrize(
    "kind", ["width", "bias_only", "parent_call", "reads_bias", "keyword_view", "expand"]
)
def test_layouts_the_rules_cannot_follow_freeze_and_the_oracle_runs(kind: str) -> None:
    torch.manual_seed(0)
    model = _NormLayouts(kind).eval()
    with torch.no_grad():
        model.ln.bias.normal_()
    x = torch.randn(2, 5, 6)
    graph = DependencyGraph(model, x)
    group = graph.layer_groups("a")[0]
    assert group.prunable == (kind == "reads_bias"), group.reason
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    for inputs in (x, torch.randn(3, 4, 6)):
        with torch.no_grad():
            torch.testing.assert_close(hard(inputs), soft(inputs), atol=1e-6, rtol=0)


class _LayerNorm1P(nn.LayerNorm):
    """Nemotron's ``LayerNorm1P``: the weight is stored minus one (``F.layer_norm(x, ...,
    self.weight + 1.0, self.bias, ...)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight + 1.0
        return nn.functional.layer_norm(x, self.normalized_shape, w, self.bias, self.eps)


def test_a_layer_norm_called_with_its_weight_plus_one_follows_its_channels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), _LayerNorm1P(8), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[1].weight.normal_(0, 0.5)
        model[1].bias.normal_()
    x = torch.randn(2, 5, 6)
    graph = DependencyGraph(model, x)
    group = graph.layer_groups("0")[0]
    assert group.prunable, group.reason  # "outside an affine nn.LayerNorm" before 0.5.48
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard[1].normalized_shape == (4,)
    for inputs in (x, torch.randn(3, 4, 6)):
        with torch.no_grad():
            torch.testing.assert_close(hard(inputs), soft(inputs), atol=1e-6, rtol=0)
            assert not torch.allclose(soft(inputs), model(inputs), atol=1e-3)


class _FullOfTracedSize(nn.Module):
    """``h.new_full(h.size(), v)``: a fill sized by a traced shape (Longformer), which raised
    ``TypeError: 'Node' object is not iterable`` while building the graph before 0.5.48."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.b(torch.relu(h - h.new_full(h.size(), 0.5)))


def test_a_fill_sized_by_a_traced_shape_builds() -> None:
    torch.manual_seed(0)
    model, x = _FullOfTracedSize().eval(), torch.randn(2, 5, 6)
    graph = DependencyGraph(model, {"x": x})  # keyword inputs: the concrete tracer
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _KeywordOperands(nn.Module):
    """torch.add(input=..., other=...): operands the binary rule does not read."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 8), nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.add(input=self.a(x), other=self.b(x)))


def test_channels_a_rule_loses_track_of_are_frozen_not_dropped() -> None:
    model = _KeywordOperands().eval()
    x = torch.randn(2, 4)
    graph = DependencyGraph(model, x)
    a = graph.layer_groups("a")[0]
    assert not a.prunable
    assert "untracked output" in a.reason
    plan = plan_pruning(graph, "l2", 0.5)
    with torch.no_grad():  # before, `a` and `b` were pruned and `c` kept 8 inputs: a crash
        torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))


class _ShapeChecked(nn.Module):
    """Checks its input and takes one unbatched sample too: Python control flow on shapes,
    which torch.fx cannot trace symbolically."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 12), nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.a.in_features:
            raise ValueError(f"x must have {self.a.in_features} features, got {x.shape[-1]}")
        single = x.ndim == 1
        if single:
            x = x.unsqueeze(0)
        y = self.b(torch.relu(self.a(x)))
        return y[0] if single else y


def test_control_flow_on_shapes_is_traced_on_the_example_inputs() -> None:
    torch.manual_seed(0)
    model = _ShapeChecked().eval()
    graph = DependencyGraph(model, torch.randn(4, 6))
    hidden = graph.layer_groups("a")[0]
    assert hidden.prunable
    assert hidden.size == 12
    plan = plan_pruning(graph, "l2", ratio=0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert type(small) is _ShapeChecked
    assert small.a.out_features == 6
    x = torch.randn(7, 6)
    torch.testing.assert_close(small(x), oracle(x))
    torch.testing.assert_close(small(x[0]), oracle(x)[0])  # the other branch runs too


class _TypeChecked(_ShapeChecked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError("x must be a tensor")
        return super().forward(x)


def test_control_flow_on_values_or_types_stays_untraceable() -> None:
    # values: the example's branch would not hold for other inputs (see _Untraceable too)
    with pytest.raises(UntraceableModelError, match="data-dependent control flow"):
        DependencyGraph(_Untraceable(), torch.randn(2, 4))
    with pytest.raises(UntraceableModelError, match=r"must be a tensor.*failed too"):
        DependencyGraph(_TypeChecked(), torch.randn(2, 6))


def test_modules_with_forward_hooks_keep_their_channels() -> None:
    """torch.fx calls forward without hooks: a hook that reads or rewrites a fixed width (here
    a per-channel scale of 16, as a codebook or recorder attached by hook would) must not
    see its channels removed."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    scale = torch.linspace(0.5, 1.5, 16)
    model[1].register_forward_hook(lambda _m, _i, out: out * scale)
    model[2].register_forward_pre_hook(lambda _m, args: (args[0] * scale,))
    x = torch.randn(5, 6)
    graph = DependencyGraph(model, x)
    group = graph.layer_groups("0")[0]
    assert not group.prunable
    assert "1: forward hooks" in group.reason
    assert not any(g.prunable for g in graph.layer_groups("2"))  # its call is kept whole
    small = prune(graph, plan_pruning(graph, "l2", ratio=0.5))
    assert small[2].weight.shape == (16, 16)
    torch.testing.assert_close(small(x), model(x))  # nothing was removed


class _ScalarGated(_ShapeChecked):
    """Branches on a scalar buffer: the same branch for every input, never pruned."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("gate", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2 and self.gate > 0:
            x = 2 * x
        return super().forward(x)


def test_control_flow_on_a_scalar_buffer_is_followed() -> None:
    model = _ScalarGated().eval()
    graph = DependencyGraph(model, torch.randn(4, 6))
    plan = plan_pruning(graph, "l2", ratio=0.5)
    x = torch.randn(3, 6)
    torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))


class _ShapeCheckedInPlace(_ShapeChecked):
    """A shape branch and an in-place op whose result nothing reads: it must stay."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.clone()
            x.mul_(2.0)
        return super().forward(x)


def test_in_place_writes_survive_the_concrete_trace() -> None:
    torch.manual_seed(0)
    model = _ShapeCheckedInPlace().eval()
    graph = DependencyGraph(model, torch.randn(4, 6))
    plan = plan_pruning(graph, "l2", ratio=0.5)
    x = torch.randn(3, 6)
    torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))
    assert any(n.target == "mul_" for n in graph._graph.nodes)


class _HooksOnFirstCall(nn.Module):
    """Registers a forward hook on its first call, with a flag on itself (as transformers'
    output capturing does): a trace must leave neither behind, or the next call would see the
    flag gone and register a second hook."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not getattr(self, "_hooked", False):
            self.fc1.register_forward_hook(lambda _m, _i, out: self._count())
            self._hooked = True
        return self.fc2(torch.relu(self.fc1(x)))

    def _count(self) -> None:
        self.calls += 1


def test_hooks_a_forward_registers_while_traced_are_removed() -> None:
    model = _HooksOnFirstCall()
    DependencyGraph(model, torch.randn(2, 6))
    assert not model.fc1._forward_hooks
    assert not hasattr(model, "_hooked")
    model(torch.randn(2, 6))
    assert model.calls == 1


def test_hooks_on_the_model_itself_freeze_every_group() -> None:
    from neuronkit.pruning.lottery import attach_masks, ones_masks

    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    handle = attach_masks(net, ones_masks(net))  # a forward pre-hook on the root
    graph = DependencyGraph(net, torch.rand(3, 8))
    hidden = next(g for g in graph.groups if g.size == 16)
    assert not hidden.prunable
    assert "forward hooks on the model" in hidden.reason
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert small(torch.rand(3, 8)).shape == (3, 4)  # the copied hook still fits
    handle.remove()
    assert DependencyGraph(net, torch.rand(3, 8)).groups[0].prunable


class _PatchMerging(nn.Module):
    """timm Swin's patch merging (``[B, H, W, C] -> [B, H/2, W/2, 4 C]``, the channel axis
    last of the merged ones), or with ``middle`` a flatten of ``[B, H, C, W]`` (the channel
    axis between merged ones)."""

    def __init__(self, middle: bool = False) -> None:
        super().__init__()
        self.middle = middle
        self.embed = nn.Linear(3, 8)
        self.norm = nn.LayerNorm(32)
        self.reduction = nn.Linear(32, 6)
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)  # [B, H, W, C]
        B, H, W, C = x.shape
        if self.middle:  # [B, H, C, W] -> [B, H * C * W]
            x = x.permute(0, 1, 3, 2).reshape(B, H * C * W)
            return self.head(self.reduction(self.norm(x[:, :32])))
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.head(self.reduction(self.norm(x)).mean((1, 2)))


@pytest.mark.parametrize("middle", [False, True])
def test_a_flatten_that_merges_axes_before_the_channels_prunes_them(middle: bool) -> None:
    """Channel c of the residual owns entries o * C + c (times the trailing axes) of the
    merged axis: the residual prunes through the merge (it froze: 'flatten splits the channel
    axis') and the pruned model equals the soft-pruning oracle."""
    torch.manual_seed(0)
    model = _PatchMerging(middle).eval()
    x = torch.randn(2, 2, 2, 3) if middle else torch.randn(2, 4, 4, 3)
    graph = DependencyGraph(model, x)
    embed = next(g for g in graph.groups if "embed" in g.producers)
    assert embed.prunable, embed.reason
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["head"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.embed.out_features == 4
    assert hard.norm.normalized_shape == (16,)
    torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _Unfold(nn.Module):
    """MobileViT's unfold and fold (timm's ``MobileVitBlock``): ``[B, C, H, W] -> [B C n_h,
    p_h, n_w, p_w] -> [B, C, N, P] -> [B P, N, C]``, a per-token MLP over the channels, and
    back ``[B P, N, C] -> [B, P, N, C] -> [B C n_h, n_w, p_h, p_w] -> [B, C, H, W]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.mlp = nn.Sequential(nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 8))
        self.fuse = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        B, C, H, W = x.shape
        n_h, n_w, p = H // 2, W // 2, 2
        t = x.reshape(B * C * n_h, p, n_w, p).transpose(1, 2)
        t = t.reshape(B, C, n_h * n_w, p * p).transpose(1, 3).reshape(B * p * p, n_h * n_w, -1)
        t = t + self.mlp(t)
        t = t.contiguous().view(B, p * p, n_h * n_w, -1).transpose(1, 3)
        t = t.reshape(B * C * n_h, n_w, p, p).transpose(1, 2).reshape(B, C, H, W)
        return self.head(self.fuse(t + x).mean((2, 3)))


@pytest.mark.parametrize("batch", [1, 2])
def test_mobilevit_unfold_and_fold_follow_the_channels(batch: int) -> None:
    """Channel c owns entries (b C + c) n_h + i of the unfolded batch axis: the conv's channels
    follow through the unfold into the MLP and back (they froze: 'splits the channel axis'),
    and the pruned model equals the soft-pruning oracle."""
    torch.manual_seed(0)
    model, x = _Unfold().eval(), torch.randn(batch, 3, 6, 4)
    graph = DependencyGraph(model, x)
    conv = next(g for g in graph.groups if "conv" in g.producers)
    assert conv.prunable, conv.reason
    assert "mlp.2" in conv.producers
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["head"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert (hard.conv.out_channels, hard.mlp[0].in_features) == (4, 4)
    torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)
    assert not torch.allclose(soft(x), model(x))


class _BiasTableAttention(nn.Module):
    """Attention with a learned bias per head and relative offset, gathered as
    ``attention_biases[:, attention_bias_idxs]`` (timm's LeViT / EfficientFormer / TinyViT),
    cached in eval mode and dropped in ``_apply`` as timm does."""

    def __init__(
        self, dim: int = 16, heads: int = 4, tokens: int = 6, branch: bool = False
    ) -> None:
        super().__init__()
        self.heads, self.d, self.branch = heads, 4, branch
        self.qkv = nn.Linear(dim, 3 * heads * self.d)
        self.proj = nn.Linear(heads * self.d, dim)
        self.attention_biases = nn.Parameter(torch.randn(heads, tokens))
        idx = torch.arange(tokens)
        self.register_buffer("attention_bias_idxs", (idx[:, None] - idx).abs(), persistent=False)
        self.attention_bias_cache: dict[str, torch.Tensor] = {}

    def _apply(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.attention_bias_cache = {}
        return super()._apply(fn, *args, **kwargs)

    def biases(self, device: torch.device) -> torch.Tensor:
        if self.training:
            return self.attention_biases[:, self.attention_bias_idxs]
        if str(device) not in self.attention_bias_cache:
            self.attention_bias_cache[str(device)] = self.attention_biases[
                :, self.attention_bias_idxs
            ]
        return self.attention_bias_cache[str(device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        if self.branch and x.shape[1] > 1:  # Python control flow: torch.fx cannot trace it
            x = x * 1.0
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.d**-0.5 + self.biases(x.device)
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(B, N, -1)
        return self.proj(out).mean(1)


@pytest.mark.parametrize("branch", [False, True])
def test_a_gathered_bias_table_follows_the_heads_and_its_cache_is_dropped(branch: bool) -> None:
    """``attention_biases[:, idxs]`` gathers the table's offsets (not channels) and keeps its
    heads: the heads prune with it (they froze: 'combines channels with an untracked
    tensor'), and the eval-mode cache of the unpruned table is dropped in the pruned model and
    the oracle, which then agree. With ``branch`` the concrete tracer runs the forward, which
    would read the filled cache as a constant: the trace drops it first (and restores it)."""
    torch.manual_seed(0)
    model = _BiasTableAttention(branch=branch).eval()
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        model(x)  # fills the eval-mode cache with all 4 heads
    cache = model.attention_bias_cache
    graph = DependencyGraph(model, x)
    assert model.attention_bias_cache is cache
    assert len(cache) == 1
    heads = next(g for g in graph.groups if "attention_biases" in {m.param for m in g.members})
    assert heads.prunable, heads.reason
    assert heads.size == 4
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["proj"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.attention_biases.shape == (2, 6)
    assert hard.qkv.out_features == 3 * 2 * 4
    torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _ConvPositionEmbedding(nn.Module):
    """PiT / Visformer: a position embedding ``[1, C, H, W]`` added to a conv's output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pos_embed = nn.Parameter(torch.randn(1, 8, 5, 5))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.conv(x) + self.pos_embed).mean((2, 3)))


def test_a_parameter_takes_its_channels_from_the_op_that_reads_it() -> None:
    """The get_attr rule guesses a parameter's last non-singleton axis (W of ``[1, C, H, W]``);
    added to ``[B, C, H, W]`` the embedding's channels move to C (they froze: 'mixes channel
    axes'), and the pruned model equals the oracle."""
    torch.manual_seed(0)
    model = _ConvPositionEmbedding().eval()
    x = torch.randn(2, 3, 5, 5)
    graph = DependencyGraph(model, x)
    conv = next(g for g in graph.groups if "conv" in g.producers)
    assert conv.prunable, conv.reason
    assert ("pos_embed", 1) in {(m.param, m.dim) for m in conv.members}
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["head"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert hard.pos_embed.shape == (1, 4, 5, 5)
    torch.testing.assert_close(hard(x), soft(x), atol=1e-6, rtol=0)


class _ReturnsSize(nn.Module):
    def __init__(self, returns: str) -> None:
        super().__init__()
        self.a, self.b, self.returns = nn.Linear(4, 8), nn.Linear(8, 3), returns

    def forward(self, x: torch.Tensor) -> object:
        y = self.b(self.a(x).relu())
        if self.returns == "shape":
            return y.shape
        if self.returns == "dict":
            return {"size": y.size()}
        if self.returns == "numel":
            return y.numel()
        return torch.zeros(y.shape)


@pytest.mark.parametrize("returns", ["shape", "dict", "numel", "zeros"])
def test_output_holding_a_channel_count_freezes_those_channels(returns: str) -> None:
    """``b``'s count reached the output through its shape, which no rule froze: the pruned
    model returned Size([2, 2]) (6 -> 4 entries, a [2, 2] tensor) where the model had 3."""
    torch.manual_seed(0)
    model, x = _ReturnsSize(returns), torch.randn(2, 4)
    graph = DependencyGraph(model, x)
    assert [g.producers for g in graph.prunable_groups()] == [["a"]]
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    want, got = model(x), small(x)
    if returns == "dict":
        want, got = want["size"], got["size"]  # type: ignore[index]
    elif returns == "zeros":
        want, got = want.shape, got.shape  # type: ignore[union-attr]
    assert got == want
    assert small.a.out_features == 4


def test_more_example_inputs_than_forward_takes_raise() -> None:
    """An extra positional input was silently left out of the trace (a ``**kwargs``
    placeholder took it as a list); calling the model with them raises."""

    class One(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)

        def forward(self, x: torch.Tensor, **kwargs: object) -> torch.Tensor:
            return self.a(x)

    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"example_inputs: One\.forward takes 1 .*got 2"):
        DependencyGraph(One(), (x, torch.randn(2)))
    DependencyGraph(One(), (x,))  # as many as it takes
