"""The vectorized group construction and the one-pass shape recording give exactly what the
straightforward per-slot algorithm and ``torch.fx.Interpreter`` give."""

import math
from typing import Any

import pytest
import torch
from torch import fx, nn

from neuronkit.pruning import (
    MLP,
    DenseNetStyle,
    DependencyGraph,
    MobileNetV2Style,
    ResNetStyle,
    SmallViT,
    VGGStyle,
    trace_model,
)
from neuronkit.pruning.graph import GroupMember, _roots, _UnionFind


class _ScalarUnionFind:
    """The plain per-element union-find (path compression, smaller root wins)."""

    def __init__(self, parent: list[int]) -> None:
        self.parent = parent

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _reference_groups(graph: Any) -> list[tuple[Any, ...]]:
    """The per-slot algorithm (one ``find`` per slot and per member slot), as plain tuples."""
    uf = _ScalarUnionFind(list(graph._uf.parent))
    find = uf.find
    frozen = {find(s): r for s, r in graph._frozen.items()}
    link = _ScalarUnionFind(list(range(len(uf.parent))))
    for m in graph._members:
        if m.role in ("out", "embed"):
            roots = [find(s) for s in m.slots]
            for r in roots[1:]:
                link.union(roots[0], r)
    order: dict[int, list[int]] = {}
    producers: dict[int, list[str]] = {}
    seen: set[int] = set()
    for m in graph._members:
        if m.role not in ("out", "embed"):
            continue
        for s in m.slots:
            r = find(s)
            if r not in seen:
                seen.add(r)
                order.setdefault(link.find(r), []).append(r)
        comp = link.find(find(m.slots[0])) if m.slots else -1
        label = m.module if m.role == "out" else f"{m.module}.{m.param}".strip(".")
        names = producers.setdefault(comp, [])
        if label not in names:
            names.append(label)
    groups: list[dict[str, Any]] = []
    root_pos: dict[int, tuple[int, int]] = {}
    for comp, roots in order.items():
        reason = next((frozen[r] for r in roots if r in frozen), "")
        for j, r in enumerate(roots):
            root_pos[r] = (len(groups), j)
        groups.append(dict(size=len(roots), producers=producers[comp], reason=reason, roots=roots))
        groups[-1].update(members=[], multiple=1, attention=[], prunable=not reason)
    for m in graph._members:
        per_group: dict[int, list[list[int]]] = {}
        for pos, s in enumerate(m.slots):
            hit = root_pos.get(find(s))
            if hit is not None:
                gi, j = hit
                lists = per_group.setdefault(gi, [[] for _ in range(groups[gi]["size"])])
                lists[j].append(pos)
        for gi, positions in per_group.items():
            groups[gi]["members"].append((m.module, m.param, m.dim, m.role, m.kind, positions))
    for name, slots, heads in graph._mha:
        gis = {root_pos[find(s)][0] for s in slots if find(s) in root_pos}
        for gi in gis:
            g = groups[gi]
            if len(gis) != 1 or g["size"] != len(slots):
                g["prunable"], g["reason"] = False, f"{name}: attention embedding spans groups"
            g["multiple"] = math.lcm(g["multiple"], heads)
            g["attention"].append(name)
    for g in groups:
        if g["prunable"] and g["size"] <= g["multiple"]:
            g["prunable"], g["reason"] = False, "too few channels to remove whole units"
    return [
        (
            i,
            g["size"],
            g["producers"],
            g["prunable"],
            g["reason"],
            g["multiple"],
            g["attention"],
            g["roots"],
            g["members"],
        )
        for i, g in enumerate(groups)
    ]


def _as_tuples(graph: DependencyGraph) -> list[tuple[Any, ...]]:
    out = []
    for g in graph.groups:
        members = [(m.module, m.param, m.dim, m.role, m.kind, m.positions) for m in g.members]
        assert all(isinstance(m, GroupMember) for m in g.members)
        fields = (g.index, g.size, g.producers, g.prunable, g.reason, g.multiple, g.attention)
        out.append((*fields, g.roots, members))
    return out


class _Frozen(nn.Module):
    """Grouped convolution, a split, a concat and a channel-mixing reshape: frozen slots."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.b = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        p, q = torch.split(y, [3, 5], dim=1)
        y = torch.cat([q, p], dim=1) + self.g(y)
        y = self.b(y)
        return self.fc(y.reshape(y.shape[0], 6, 16).transpose(1, 2).reshape(y.shape[0], -1))


_MODELS = {
    "mlp": (lambda: MLP(in_features=12, hidden=(16, 8)), (3, 12)),
    "vgg": (lambda: VGGStyle(widths=(8, 16), image_size=8), (2, 3, 8, 8)),
    "resnet": (lambda: ResNetStyle(widths=(8, 16, 16), blocks=2), (2, 3, 8, 8)),
    "mobilenet": (lambda: MobileNetV2Style(expand=2), (2, 3, 16, 16)),
    "densenet": (lambda: DenseNetStyle(growth=4, layers=3), (2, 3, 8, 8)),
    "vit": (lambda: SmallViT(dim=32, heads=4, depth=2), (2, 3, 16, 16)),
    "frozen": (_Frozen, (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_groups_match_the_per_slot_algorithm(name: str) -> None:
    ctor, shape = _MODELS[name]
    torch.manual_seed(0)
    graph = DependencyGraph(ctor().eval(), torch.randn(*shape))
    assert _as_tuples(graph) == _reference_groups(graph)
    if name == "frozen":
        assert any(not g.prunable for g in graph.groups)
    if name == "vgg":  # the flatten expands channels over space: several positions each
        assert any(len(p) > 1 for g in graph.groups for m in g.members for p in m.positions)


def test_hf_groups_match_the_per_slot_algorithm() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, n_positions=16, vocab_size=64)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    graph = DependencyGraph(transformers.GPT2LMHeadModel(cfg).eval(), torch.randint(0, 64, (2, 8)))
    assert _as_tuples(graph) == _reference_groups(graph)


class _Defaults(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
        return self.conv(x) * scale


@pytest.mark.parametrize("name", ["resnet", "vit", "frozen"])
def test_recorded_shapes_match_the_fx_interpreter(name: str) -> None:
    ctor, shape = _MODELS[name]
    model, x = ctor().eval(), torch.randn(*shape)
    with torch.no_grad():
        gm = trace_model(model, (x,))
        reference = fx.symbolic_trace(model)
        shapes: dict[str, tuple[int, ...]] = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n: fx.Node) -> Any:
                out = super().run_node(n)
                if isinstance(out, torch.Tensor):
                    shapes[n.name] = tuple(out.shape)
                return out

        Recorder(reference).run(x)
        mine = {n.name: n.meta["nk_shape"] for n in gm.graph.nodes if "nk_shape" in n.meta}
        assert mine == shapes
        assert torch.equal(gm(x), model(x))


def test_graph_module_is_generated_on_demand_and_runs() -> None:
    model, x = _Defaults().eval(), torch.randn(2, 3, 4, 4)
    graph = DependencyGraph(model, x)  # the default of ``scale`` fills its placeholder
    assert graph.groups[0].producers == ["conv"]
    assert graph._gm is None
    gm = graph.gm
    assert isinstance(gm, fx.GraphModule)
    assert graph.gm is gm
    with torch.no_grad():
        assert torch.equal(gm(x), model(x))


def test_shape_run_failure_names_the_node() -> None:
    model = ResNetStyle(widths=(8, 16, 16), blocks=1).eval()
    with pytest.raises(ValueError, match=r"example_inputs: .* failed at `%stem_0 .*3 channels"):
        DependencyGraph(model, torch.randn(2, 5, 8, 8))  # 5 input channels, stem expects 3


@pytest.mark.parametrize("seed", range(5))
def test_batched_union_find_matches_the_scalar_one(seed: int) -> None:
    """``unite`` on whole slot lists (repeated roots, chains, pairs already joined) gives every
    slot the root the per-pair algorithm gives: the smallest slot of its component (one at a
    time with ``roots`` and ``find``, all at once with ``_roots``)."""
    gen = torch.Generator().manual_seed(seed)
    uf = _UnionFind()
    ref = _ScalarUnionFind([])
    for _ in range(30):
        n = int(torch.randint(1, 40, (1,), generator=gen))
        uf.new(n)
        ref.parent.extend(range(len(ref.parent), len(ref.parent) + n))
        k = int(torch.randint(1, 25, (1,), generator=gen))
        a = torch.randint(0, len(uf.parent), (k,), generator=gen).tolist()
        b = torch.randint(0, len(uf.parent), (k,), generator=gen).tolist()
        uf.unite(a, b)
        for x, y in zip(a, b, strict=True):
            ref.union(x, y)
    expected = [ref.find(i) for i in range(len(ref.parent))]
    assert _roots(uf).tolist() == expected
    assert uf.roots(list(range(len(ref.parent)))).tolist() == expected
