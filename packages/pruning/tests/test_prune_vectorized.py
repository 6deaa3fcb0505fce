"""The batched importance reductions and the index-select pruning give the same bits as the
per-member / per-position computations they replace."""

import copy

import pytest
import torch

from neuronkit.pruning import (
    DependencyGraph,
    MagnitudeImportance,
    ResNetStyle,
    SmallViT,
    VGGStyle,
    plan_pruning,
    prune,
)
from neuronkit.pruning.graph import GroupMember
from neuronkit.pruning.importance import _member_rows, get_param, member_channel_scores


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])


def _reference_scores(graph: DependencyGraph, imp: MagnitudeImportance) -> dict[int, torch.Tensor]:
    """One ``index_add_`` per member, ``|w| ** p`` with autograd, ``torch.stack`` of the rows."""
    out = {}
    for g in graph.prunable_groups():
        rows = []
        for m in g.members:
            if m.role not in imp.roles or "running_" in m.param:
                continue
            w = get_param(graph.model, m.module, m.param).abs() ** imp.p
            w = w.detach().double()
            v = w if w.ndim == 1 else w.movedim(m.dim, 0).reshape(w.shape[m.dim], -1).sum(1)
            flat = [len(m.positions)] * v.shape[0]
            for j, pos in enumerate(m.positions):
                for p in pos:
                    flat[p] = j
            row = torch.zeros(len(m.positions) + 1, dtype=torch.float64)
            row.index_add_(0, torch.tensor(flat), v.flatten())
            rows.append(row[: len(m.positions)])
        stack = torch.stack(rows)
        s = {"mean": stack.mean(0), "sum": stack.sum(0), "max": stack.max(0).values}[imp.reduction]
        if imp.normalize is not None:
            s = s / getattr(s, imp.normalize)().clamp_min(1e-12)
        out[g.index] = s
    return out


_MODELS = {
    "resnet": (lambda: ResNetStyle(widths=(8, 16, 16), blocks=2), (2, 3, 8, 8)),
    "vgg": (lambda: VGGStyle(widths=(8, 16), image_size=8), (2, 3, 8, 8)),  # flatten: many pos
    "vit": (lambda: SmallViT(dim=32, heads=4, depth=2), (2, 3, 16, 16)),
}


@pytest.mark.parametrize("name", sorted(_MODELS))
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(p=2),
        dict(p=1, reduction="sum", normalize=None),
        dict(p=2, reduction="max", normalize="max"),
    ],
)
def test_group_scores_are_bit_identical_to_per_member_scores(name: str, kwargs: dict) -> None:
    ctor, shape = _MODELS[name]
    torch.manual_seed(0)
    graph = DependencyGraph(ctor().eval(), torch.randn(*shape))
    imp = MagnitudeImportance(**kwargs)
    got, want = imp(graph), _reference_scores(graph, imp)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(_bits(got[k]), _bits(want[k]))


def test_member_rows_falls_back_and_raises_like_the_per_member_path() -> None:
    values = [torch.arange(4, dtype=torch.float64), torch.arange(3, dtype=torch.float64)]
    a = GroupMember("a", "weight", 0, "out", "Linear", [[0, 1], [2], [3]])
    b = GroupMember("b", "weight", 0, "in", "Linear", [[2], [0], [1]])
    rows = _member_rows([a, b], values)
    want = torch.stack([member_channel_scores(a, values[0]), values[1][[2, 0, 1]]])
    assert torch.equal(rows, want)
    ragged = GroupMember("c", "weight", 0, "in", "Linear", [[0], [1]])
    with pytest.raises(RuntimeError):  # rows of different lengths cannot be stacked
        _member_rows([a, ragged], [values[0], values[1][:2]])
    outside = GroupMember("d", "weight", 0, "in", "Linear", [[0], [1], [5]])
    with pytest.raises(IndexError):
        _member_rows([a, outside], values)
    # one position per channel: gathered, and an index past its member's values still raises
    c = GroupMember("e", "weight", 0, "in", "Linear", [[1], [0], [2]])
    want = torch.stack([values[1][[2, 0, 1]], values[1][[1, 0, 2]]])
    assert torch.equal(_member_rows([b, c], [values[1], values[1]]), want)
    beyond = GroupMember("f", "weight", 0, "in", "Linear", [[3], [0], [1]])
    with pytest.raises(IndexError):
        _member_rows([beyond, b], [values[1], values[1]])


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_hard_prune_equals_boolean_mask_slicing(name: str) -> None:
    ctor, shape = _MODELS[name]
    torch.manual_seed(0)
    model = ctor().eval()
    graph = DependencyGraph(model, torch.randn(*shape))
    plan = plan_pruning(graph, "l2", 0.5)
    before = copy.deepcopy(model)
    pruned = prune(graph, plan)
    removed: dict[tuple[str, str, int], set[int]] = {}
    for gi, idx in plan.removed.items():
        for m in graph.groups[gi].members:
            acc = removed.setdefault((m.module, m.param, m.dim), set())
            for j in idx.tolist():
                acc.update(m.positions[j])
    want: dict[tuple[str, str], torch.Tensor] = {}
    for (module, param, dim), pos in removed.items():  # a weight loses rows and columns
        old = want.get((module, param), get_param(before, module, param).detach())
        keep = torch.ones(old.shape[dim], dtype=torch.bool)
        keep[sorted(pos)] = False
        want[(module, param)] = old[(slice(None),) * dim + (keep,)].clone()
    for (module, param), w in want.items():
        if module in plan.attention:  # attention rows are selected and rescaled per head too
            continue
        got = get_param(pruned, module, param)
        assert got.is_contiguous()
        assert torch.equal(_bits(got.detach()), _bits(w.contiguous()))
