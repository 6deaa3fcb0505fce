"""neuronkit-theory's models pruned by neuronkit-pruning: their input checks step aside while
the pruner traces them, and the pruned models equal the soft-pruning oracle."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune
from neuronkit.theory import BottleneckMLP, PlainMLP, QuadraticNet

MODELS: dict[str, Callable[[], nn.Module]] = {
    "bottleneck_mlp": lambda: BottleneckMLP(
        in_features=12, out_features=3, width=16, depth=2, expansion=4
    ),
    "plain_mlp": lambda: PlainMLP(in_features=12, out_features=3, width=16, depth=2),
    "quadratic_net": lambda: QuadraticNet([12, 16, 8, 3]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_theory_models_prune_to_their_oracle(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, x)
    assert all(g.prunable for g in graph.groups if g.reason != "model output")
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    with torch.no_grad():
        torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), atol=1e-6, rtol=0)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="x must"):  # the checks are back outside the trace
        small(torch.randn(4, 5))
