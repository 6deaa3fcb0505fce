"""Pruning in place frees each replaced weight as it goes; tied weights stay tied (0.5.54)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No garbage collection while the test runs (as in a timed benchmark): what only a
    collection would free stays, so references held by mistake show every time."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_pruning_in_place_frees_each_replaced_weight(
    monkeypatch: pytest.MonkeyPatch, collector_off: None
) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU()
    )
    model.append(nn.Linear(32, 4))
    graph = DependencyGraph(model, torch.randn(2, 8))
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["6"])
    originals = [weakref.ref(m.weight) for m in model if isinstance(m, nn.Linear)]
    alive: list[int] = []  # original weights alive at each slice
    slice_ = torch.index_select

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        alive.append(sum(ref() is not None for ref in originals))
        return slice_(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "index_select", counted)
    prune(graph, plan, inplace=True)
    # every weight is sliced: by the last slice at most one original is still held (before
    # 0.5.54 all four were, until prune returned: by prune's table of sliced tensors, and by
    # the tracer's tables of the model's tensors, which outlived the trace in a cycle)
    assert alive[0] == len(originals)
    assert alive[-1] <= 1, alive


class _TiedSquare(nn.Module):
    """``l2.weight is l1.weight`` ([16, 16]): one tensor pruned along both axes."""

    def __init__(self) -> None:
        super().__init__()
        self.l0, self.l1, self.l2 = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)
        self.l2.weight = self.l1.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.l1(torch.relu(self.l0(x))))
        return self.head(torch.relu(self.l2(h)))


def test_a_weight_tied_between_layers_and_pruned_along_both_axes_stays_one_tensor() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    model = _TiedSquare().eval()
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    with torch.no_grad():
        oracle = soft_prune(graph, plan)(x)
    small = prune(graph, plan, inplace=True)
    assert small.l1.weight.shape == (8, 8)
    assert small.l2.weight is small.l1.weight
    with torch.no_grad():
        assert (small(x) - oracle).abs().max() <= 1e-6
