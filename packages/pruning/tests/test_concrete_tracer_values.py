"""ConcreteTracer keeps an operation's traced value (of at least 64 KiB) only while a proxy of
it lives (0.5.54)."""

from __future__ import annotations

import operator
import weakref

import torch
from torch import fx, nn

from neuronkit.pruning import ConcreteTracer


class _Remember(nn.Module):
    """A leaf (runs on concrete values) that remembers its input tensor weakly."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[weakref.ref[torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(weakref.ref(x))
        return x + 1


class _Probe(nn.Module):
    """A leaf that records whether the tensors ``_Remember`` saw are still alive."""

    def __init__(self, remember: _Remember) -> None:
        super().__init__()
        self.remember = [remember]  # not a submodule
        self.alive: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.alive = [ref() is not None for ref in self.remember[0].seen]
        return x


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 512)
        self.remember = _Remember()
        self.probe = _Probe(self.remember)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.remember(self.fc(x) * 2)  # the product [64, 512] (128 KiB): no name holds it
        return self.probe(h)


def _leaves(m: nn.Module, _: str) -> bool:
    return isinstance(m, (_Remember, _Probe))


def test_an_intermediate_value_is_released_when_no_proxy_holds_it() -> None:
    net = _Net()
    graph = ConcreteTracer((torch.randn(64, 64),), leaf=_leaves).trace(net)
    assert net.probe.alive == [False]  # the product's tensor was freed before the probe ran
    assert any(n.target is operator.mul for n in graph.nodes)  # and is still in the graph


class _Transposed(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = (x * 2).T  # a lazily added getattr node, used twice
        return (t + 1) * t


def test_an_attribute_node_keeps_its_value_while_the_attribute_lives() -> None:
    x = torch.randn(128, 256)  # 128 KiB
    model = _Transposed()
    graph = ConcreteTracer((x,)).trace(model)
    assert torch.equal(fx.GraphModule(model, graph)(x), model(x))


class _ReadsWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w  # a get_attr node: the tracer fetches the parameter


def test_a_finished_trace_holds_none_of_the_models_tensors() -> None:
    model = _ReadsWeight()
    tracer = ConcreteTracer((torch.randn(2, 8),))  # kept, as fx's own cycle keeps a tracer
    tracer.trace(model)
    weight = weakref.ref(model.w)
    model.w = nn.Parameter(torch.zeros(4, 8))  # replaced, as a prune in place does
    assert weight() is None
