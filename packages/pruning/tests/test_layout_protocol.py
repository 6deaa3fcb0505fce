"""Modules outside torch.nn that declare how they map channels (``leading_dims``,
``channel_local``), as neuronkit-snn's time-major layers and spiking neurons do: traced as
leaves, pruned like their torch base class or an activation, equal to the soft oracle.

The stand-ins below re-create the protocol without importing neuronkit-snn (this package's
tests run without it); the integration tests prune the real spiking modules.
"""

from typing import ClassVar

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    UntraceableModelError,
    plan_pruning,
    prune,
    soft_prune,
)
from neuronkit.pruning.tracing import declares_layout, leading_dims


def _check_time_major(x: torch.Tensor) -> None:
    # real validation, as a time-major layer does it: fails on a torch.fx Proxy
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        raise TypeError("x must be a [T, B, ...] tensor")


class _OverTime(nn.Module):
    leading_dims: ClassVar[int] = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x)
        t, b = x.shape[:2]
        return super().forward(x.flatten(0, 1)).unflatten(0, (t, b))  # type: ignore[misc]


class TConv(_OverTime, nn.Conv2d):
    pass


class TBatchNorm(_OverTime, nn.BatchNorm2d):
    pass


class TPool(_OverTime, nn.MaxPool2d):
    pass


class TFlatten(_OverTime, nn.Flatten):
    pass


class TLinear(_OverTime, nn.Linear):
    pass


class Leaky(nn.Module):
    """A leaky integrator over time, elementwise: ``v_t = a v_{t-1} + x_t``, output ``v > 1``."""

    def __init__(self, decay: float | torch.Tensor = 0.5, learn: bool = False) -> None:
        super().__init__()
        self.decay = nn.Parameter(torch.as_tensor(decay)) if learn else decay

    @property
    def channel_local(self) -> bool:
        d = self.decay
        return not isinstance(d, torch.Tensor) or d.numel() == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x)
        v, out = torch.zeros_like(x[0]), []
        for x_t in x.unbind(0):  # a loop over time: not traceable by torch.fx
            v = self.decay * v + x_t
            out.append(torch.sigmoid(4 * (v - 1)))
        return torch.stack(out)


def _spiking_cnn(neuron: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        TConv(1, 8, 3, padding=1),
        TBatchNorm(8),
        Leaky(),
        TPool(2),
        TConv(8, 6, 3, padding=1),
        neuron if neuron is not None else Leaky(0.8, learn=True),
        TFlatten(),
        TLinear(6 * 4 * 4, 12),
        Leaky(),
        TLinear(12, 5),
    ).eval()


def test_declared_modules_are_leaves_with_shifted_channel_axis() -> None:
    assert leading_dims(TConv(1, 2, 3)) == 1
    assert leading_dims(nn.Conv2d(1, 2, 3)) == 0
    assert declares_layout(Leaky())
    assert declares_layout(TLinear(2, 2))
    assert not declares_layout(nn.ReLU())
    x = torch.randn(4, 2, 1, 8, 8)
    graph = DependencyGraph(_spiking_cnn(), x)
    # conv1 + bn1 (axis 2 of [T, B, C, H, W]), conv2 through the flatten into the linear, fc1
    sizes = sorted((g.size, g.prunable) for g in graph.groups)
    assert sizes == [(5, False), (6, True), (8, True), (12, True)]
    bn = next(g for g in graph.groups if g.size == 8)
    assert {m.module for m in bn.members} >= {"0", "1"}


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_time_major_model_prunes_to_the_soft_oracle(ratio: float) -> None:
    model = _spiking_cnn()
    x = torch.randn(4, 3, 1, 8, 8)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", ratio=ratio)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert type(small[0]) is TConv
    assert small[0].out_channels < 8
    assert small[7].in_features < 6 * 4 * 4
    x = torch.randn(6, 2, 1, 8, 8)  # another T and B
    torch.testing.assert_close(small(x), oracle(x), atol=1e-5, rtol=1e-5)


def test_per_element_settings_keep_their_channels() -> None:
    x = torch.randn(4, 2, 1, 8, 8)
    for neuron, reason in (
        (Leaky(torch.linspace(0.1, 0.9, 6).view(6, 1, 1)), "Leaky is not channel-local"),
        (Leaky(torch.full((6, 1, 1), 0.5), learn=True), "is not channel-local"),  # it says so
        (LocalLeaky(torch.full((4,), 0.5), learn=True), "per-element decay [4] is not one per"),
    ):
        graph = DependencyGraph(_spiking_cnn(neuron), x)
        conv2 = next(g for g in graph.groups if g.size == 6)
        assert not conv2.prunable
        assert reason in conv2.reason
        small = prune(graph, plan_pruning(graph, "l2", ratio=0.5))
        assert small[4].out_channels == 6  # kept, and the pruned model still runs
        assert small(x).shape == (4, 2, 5)


class LocalLeaky(Leaky):
    """``Leaky`` declaring itself channel-local whatever its decay: a per-channel parameter
    or buffer is then the pruner's to slice."""

    channel_local = True  # type: ignore[assignment]


def test_per_channel_settings_follow_their_channels() -> None:
    x = torch.randn(4, 2, 1, 8, 8)
    neuron = LocalLeaky(torch.linspace(0.1, 0.9, 6).view(6, 1, 1), learn=True)
    graph = DependencyGraph(_spiking_cnn(neuron), x)
    conv2 = next(g for g in graph.groups if g.size == 6)
    assert conv2.prunable
    assert [(m.param, m.dim, m.role) for m in conv2.members if m.module == "5"] == [
        ("decay", 0, "setting")
    ]
    plan = plan_pruning(graph, "l2", ratio=0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert small[5].decay.shape == (3, 1, 1)
    assert isinstance(small[5].decay, nn.Parameter)
    torch.testing.assert_close(small(x), oracle(x))


def test_undeclared_time_major_module_is_untraceable_with_a_clear_error() -> None:
    class Plain(nn.Module):  # the same loop, nothing declared
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Leaky.forward(Leaky(), x)

    model = nn.Sequential(TLinear(4, 4), Plain(), TLinear(4, 2))
    with pytest.raises(UntraceableModelError, match="cannot trace"):
        DependencyGraph(model, torch.randn(3, 2, 4))
