"""Width ties: a reshape that sizes one group's channels with another group's count
(EVA's ``x.transpose(1, 2).reshape(B, N, C)``, ``C`` the residual width read from the input)
ties the two groups' kept widths instead of freezing both."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    obspa_prune,
    plan_from_masks,
    plan_pruning,
    prune,
    soft_prune,
)


class _ResidualWidthAttention(nn.Module):
    """A pre-norm attention block whose output is reshaped to the residual width ``C`` read
    from its input (``merge="count"``, else ``-1``), its head size inferred (``-1``) or
    timm's ``C // self.num_heads`` (``ratio=True``): ``x: [B, N, 5] -> [B, N, 4]`` (``[B, N,
    dim]`` without the head)."""

    def __init__(
        self,
        dim: int = 12,
        heads: int = 3,
        head: bool = True,
        ratio: bool = False,
        merge: str = "count",
    ) -> None:
        super().__init__()
        self.num_heads, self.ratio, self.merge = heads, ratio, merge
        self.embed = nn.Linear(5, dim)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, 4) if head else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        y = self.norm(h)
        b, n, c = y.shape
        d = c // self.num_heads if self.ratio else -1
        qkv = self.qkv(y).reshape(b, n, 3, self.num_heads, d).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(*qkv.unbind(0)).transpose(1, 2)
        return self.head(h + self.proj(a.reshape(b, n, c if self.merge == "count" else -1)))


def _setup(**kwargs: Any) -> tuple[nn.Module, torch.Tensor, DependencyGraph]:
    torch.manual_seed(0)
    model, x = _ResidualWidthAttention(**kwargs).eval(), torch.randn(2, 7, 5)
    return model, x, DependencyGraph(model, x)


def _group_of(graph: DependencyGraph, producer: str) -> Any:
    return next(g for g in graph.groups if producer in g.producers)


@pytest.mark.parametrize("ratio", [False, True])
@pytest.mark.parametrize("scope", ["local", "global"])
def test_a_residual_width_read_in_forward_ties_the_heads_to_it(scope: str, ratio: bool) -> None:
    model, x, graph = _setup(ratio=ratio)
    residual, heads = _group_of(graph, "embed"), _group_of(graph, "qkv")
    assert (residual.size, heads.size) == (12, 3)  # channels; heads of 4 entries
    assert residual.prunable
    assert heads.prunable
    assert graph.width_ties == [{residual.index: 1, heads.index: 4}]
    plan = plan_pruning(graph, "l2", 0.5, scope=scope, ignored_layers=["head"])
    kept = {g.index: g.size - len(plan.removed.get(g.index, ())) for g in (residual, heads)}
    assert kept[residual.index] == 4 * kept[heads.index] < 12
    with torch.no_grad():
        hard, soft, y0 = prune(graph, plan), soft_prune(graph, plan), model(x)
        torch.testing.assert_close(hard(x), soft(x), atol=1e-5, rtol=0)
    assert not torch.allclose(soft(x), y0, rtol=1e-3, atol=0)
    assert (hard.embed.out_features, hard.num_heads) == (kept[residual.index], kept[heads.index])
    if scope == "local":  # the residual's 6 widen to the 2 heads' 8 entries
        assert kept == {residual.index: 8, heads.index: 2}


def test_a_head_size_from_an_untied_count_freezes() -> None:
    """``C // self.num_heads`` is the head size only while ``C`` keeps the heads' width."""
    _, _, graph = _setup(ratio=True, merge="infer")
    for producer in ("embed", "qkv"):
        group = _group_of(graph, producer)
        assert not group.prunable
        assert "divides a channel count by the module attribute num_heads" in group.reason
    assert graph.width_ties == []
    _, _, inferred = _setup(merge="infer")  # -1 everywhere: nothing to tie, both prune
    assert _group_of(inferred, "embed").prunable
    assert _group_of(inferred, "qkv").prunable
    assert inferred.width_ties == []


class _TokensPerHead(nn.Module):
    """Heads sized by ``self.num_heads`` that also scale the output by ``N //
    self.num_heads``, a size that is no channel count: pruning heads would change it."""

    def __init__(self) -> None:
        super().__init__()
        self.num_heads = 2
        self.embed, self.qkv, self.proj = nn.Linear(5, 8), nn.Linear(8, 24), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        b, n, _ = h.shape
        qkv = self.qkv(h).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(*qkv.unbind(0)).transpose(1, 2).reshape(b, n, -1)
        return self.proj(a) * (n // self.num_heads)


def test_a_head_count_dividing_another_size_freezes_the_heads() -> None:
    graph = DependencyGraph(_TokensPerHead(), torch.randn(2, 6, 5))
    heads = _group_of(graph, "qkv")
    assert not heads.prunable
    assert "divides a size that is no channel count by the module attribute num_heads" in (
        heads.reason
    )


def test_a_tie_keeps_whole_units_of_every_group() -> None:
    _, _, graph = _setup()
    plan = plan_pruning(graph, "l2", 0.9, ignored_layers=["head"], round_to=2)
    residual, heads = _group_of(graph, "embed"), _group_of(graph, "qkv")
    # the heads keep 1 (0.9 of 3 rounds to 2 removed) but round_to=2 keeps 2: 8 entries
    assert residual.size - len(plan.removed[residual.index]) == 8
    assert heads.size - len(plan.removed[heads.index]) == 2


def test_an_ignored_group_keeps_its_whole_tie() -> None:
    _, _, graph = _setup()
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["head", "embed"])
    assert _group_of(graph, "qkv").index not in plan.removed
    assert _group_of(graph, "embed").index not in plan.removed


def test_a_tie_with_a_frozen_group_freezes_the_others() -> None:
    _, _, graph = _setup(head=False)  # the residual is the model's output
    residual, heads = _group_of(graph, "embed"), _group_of(graph, "qkv")
    assert not residual.prunable
    assert residual.reason == "model output"
    assert not heads.prunable
    assert "ties its kept width to group 'embed'" in heads.reason
    assert graph.width_ties == []


def test_plans_that_break_a_tie_are_refused() -> None:
    model, _, graph = _setup()
    heads = _group_of(graph, "qkv")
    mask = torch.ones(heads.size, dtype=torch.bool)
    mask[0] = False
    with pytest.raises(ValueError, match=r"masks: the groups of a width tie .* 'qkv' keeps 2 x 4"):
        plan_from_masks(graph, {heads.index: mask})
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["head"])
    del plan.removed[_group_of(graph, "embed").index]
    with pytest.raises(ValueError, match="plan: the groups of a width tie"):
        prune(graph, plan)
    assert model.embed.out_features == 12  # left unchanged


def test_obspa_keeps_tied_widths_equal() -> None:
    model, x, graph = _setup()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned, _ = obspa_prune(graph, 0.5, inputs=x, ignored_layers=["head"])
    assert (pruned.embed.out_features, pruned.num_heads) == (8, 2)
    assert pruned(x).shape == model(x).shape
