"""A DependencyGraph describes the model it was built on: once that model was pruned in place,
pruning, soft-pruning, planning and scoring with the graph raise before touching anything."""

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    MagnitudeImportance,
    plan_from_masks,
    plan_pruning,
    prune,
    soft_prune,
)

STALE = "changed since this DependencyGraph was built"


def _pruned_in_place() -> tuple[nn.Module, DependencyGraph, Any, dict[int, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)
    ).eval()
    graph = DependencyGraph(model, torch.randn(2, 4))
    k0 = torch.ones(8, dtype=torch.bool)
    k0[:2] = False
    k1 = torch.ones(8, dtype=torch.bool)
    k1[6:] = False  # in range of the pruned width too: it would remove the wrong channels
    masks = {0: k0, 1: k1}
    plan = plan_from_masks(graph, masks)
    assert prune(graph, plan, inplace=True) is model
    return model, graph, plan, masks


CALLS: dict[str, Callable[[DependencyGraph, Any, dict[int, torch.Tensor]], Any]] = {
    "prune inplace": lambda g, plan, masks: prune(g, plan, inplace=True),
    "prune": lambda g, plan, masks: prune(g, plan),
    "prune target": lambda g, plan, masks: prune(g, plan, target=g.model),
    "soft_prune": lambda g, plan, masks: soft_prune(g, plan),
    "plan_pruning": lambda g, plan, masks: plan_pruning(g, "l2", 0.5),
    "plan_pruning synflow": lambda g, plan, masks: plan_pruning(g, "synflow", 0.5),
    "importance": lambda g, plan, masks: MagnitudeImportance()(g),
    "plan_from_masks": lambda g, plan, masks: plan_from_masks(g, masks),
}


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
def test_stale_graph_raises_and_leaves_the_model_alone(one_thread, call: Callable) -> None:
    model, graph, plan, masks = _pruned_in_place()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    widths = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert widths == [(4, 6), (6, 6), (6, 3)]
    with pytest.raises(ValueError, match=STALE) as info:
        call(graph, plan, masks)
    assert "0.weight has shape (6, 4), the graph was built on shape (8, 4)" in str(info.value)
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == widths
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def test_a_new_graph_of_the_pruned_model_prunes_again(one_thread) -> None:
    model, _, _, _ = _pruned_in_place()
    x = torch.randn(2, 4)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan, inplace=True)
    assert [m.out_features for m in small if isinstance(m, nn.Linear)] == [3, 3, 3]
    with pytest.raises(ValueError, match=STALE):
        soft_prune(graph, plan)


def test_a_graph_of_an_unchanged_model_is_reused(one_thread) -> None:
    """Copies (the default), training and new tensors leave the graph valid."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.register_buffer("cache", torch.zeros(3))
    x = torch.randn(4, 4)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    first = prune(graph, plan)
    model.train()(x)  # BatchNorm statistics change values, not shapes
    model.register_buffer("extra", torch.zeros(3))  # added after the graph: not its concern
    model.register_buffer("cache", torch.zeros(5))  # a buffer regrown, e.g. for a longer input
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    second = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert [p.shape for p in first.parameters()] == [p.shape for p in second.parameters()]
    soft_prune(graph, plan)


def test_a_removed_tensor_is_a_change(one_thread) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = DependencyGraph(model, torch.randn(2, 4))
    del model[2].bias
    model[2].bias = None
    with pytest.raises(ValueError, match=f"{STALE}.*2.bias is gone"):
        plan_pruning(graph, "l2", 0.5)


def test_unused_lazy_module_is_no_change(one_thread) -> None:
    """An uninitialized parameter has no shape: the graph neither records nor checks it."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 2)
            self.unused = nn.LazyLinear(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x).relu())

    graph = DependencyGraph(Net(), torch.randn(2, 4))
    assert prune(graph, plan_pruning(graph, "l2", 0.5)).a.out_features == 4
