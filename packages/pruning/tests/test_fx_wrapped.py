"""Functions registered with ``torch.fx.wrap`` (torchvision's ``shifted_window_attention``):
the graph traces through them where it can, so their channels follow the pruning; one that
cannot be traced through stays a leaf (its channels freeze, as all did before 0.5.42)."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx import _symbolic_trace

from neuronkit.pruning import DependencyGraph, Group, plan_pruning, prune, soft_prune


def _windowed_mlp(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, window: int) -> torch.Tensor:
    """Pads the sequence to whole windows (control flow on a shape: why such functions are
    wrapped), then a two-layer MLP over channels: ``[B, N, C] -> [B, N, C]``."""
    n = x.shape[1]
    if n % window:
        x = F.pad(x, (0, 0, 0, window - n % window))
    y = F.linear(torch.relu(F.linear(x, w1)), w2)
    return y[:, :n]


def _gated(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Control flow on values: no trace can follow it for every input."""
    return F.linear(x, w) if bool(x.sum() > 0) else F.linear(-x, w)


torch.fx.wrap("_windowed_mlp")
torch.fx.wrap("_gated")


class _Block(nn.Module):
    """A residual block around a wrapped function: ``[B, N, 5] -> [B, 3]``."""

    def __init__(self, gated: bool = False) -> None:
        super().__init__()
        self.gated = gated
        self.embed = nn.Linear(5, 8)
        self.w1 = nn.Parameter(torch.randn(16, 8) / 3)
        self.w2 = nn.Parameter(torch.randn(8, 16) / 4)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        if self.gated:
            h = h + _gated(h, self.w2 @ self.w1)
        else:
            h = h + _windowed_mlp(h, self.w1, self.w2, 4)
        return self.head(h).mean(1)


def _group_of(graph: DependencyGraph, producer: str) -> Group:
    return next(g for g in graph.groups if producer in g.producers)


def test_wrapped_function_is_traced_through() -> None:
    torch.manual_seed(0)
    model, x = _Block().eval(), torch.randn(2, 7, 5)
    table = dict(_symbolic_trace._wrapped_fns_to_patch)
    graph = DependencyGraph(model, x)
    assert _symbolic_trace._wrapped_fns_to_patch == table  # fx's registry is restored
    assert _group_of(graph, "embed").prunable  # the residual width, through the function
    hidden = next(g for g in graph.groups if g.size == 16)  # the MLP's (w1's rows)
    assert hidden.prunable
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), atol=1e-5, rtol=0)
        assert not torch.allclose(soft(x), model(x), atol=1e-4)
    assert hard.w1.shape == (8, 4)
    # the function still runs as a leaf for torch.fx itself
    traced = torch.fx.symbolic_trace(_Block())
    assert any(n.target is _windowed_mlp for n in traced.graph.nodes)


def test_wrapped_function_that_cannot_be_traced_stays_a_leaf() -> None:
    """Value-dependent control flow: the trace through fails, the model is traced again with
    the function a leaf; the channels it reads freeze and the graph is otherwise built."""
    torch.manual_seed(0)
    model = _Block(gated=True).eval()
    graph = DependencyGraph(model, torch.randn(2, 7, 5))
    embed = _group_of(graph, "embed")
    assert not embed.prunable
    assert "_gated" in embed.reason
