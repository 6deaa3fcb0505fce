"""In-place versions of supported ops (``relu_``, ``add_``, ``F.relu_``) keep channels prunable,
as their out-of-place twins do; in-place writes through a slice of the channels still freeze."""

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune

Op = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

# (name, in place, out of place): op(module, h = module.c1(x), x), the module with a
# per-channel gamma [8, 1, 1] and a second producer c3 of the same 8 channels
PAIRS: list[tuple[str, Op, Op]] = [
    ("relu_", lambda s, h, x: h.relu_(), lambda s, h, x: h.relu()),
    ("sigmoid_", lambda s, h, x: h.sigmoid_(), lambda s, h, x: h.sigmoid()),
    ("tanh_", lambda s, h, x: h.tanh_(), lambda s, h, x: h.tanh()),
    ("abs_", lambda s, h, x: h.abs_(), lambda s, h, x: h.abs()),
    ("neg_", lambda s, h, x: h.neg_(), lambda s, h, x: h.neg()),
    ("pow_", lambda s, h, x: h.pow_(2), lambda s, h, x: h.pow(2)),
    ("sub_", lambda s, h, x: h.sub_(0.5), lambda s, h, x: h.sub(0.5)),
    ("div_", lambda s, h, x: h.div_(2.0), lambda s, h, x: h.div(2.0)),
    ("add_ residual", lambda s, h, x: h.add_(s.c3(x)), lambda s, h, x: h.add(s.c3(x))),
    ("sub_ residual", lambda s, h, x: h.sub_(s.c3(x)), lambda s, h, x: h.sub(s.c3(x))),
    ("mul_ gamma", lambda s, h, x: h.mul_(s.gamma), lambda s, h, x: h.mul(s.gamma)),
    ("div_ gamma", lambda s, h, x: h.div_(s.gamma), lambda s, h, x: h.div(s.gamma)),
    ("torch.relu_", lambda s, h, x: torch.relu_(h), lambda s, h, x: torch.relu(h)),
    ("F.relu_", lambda s, h, x: F.relu_(h), lambda s, h, x: F.relu(h)),
    ("F.leaky_relu_", lambda s, h, x: F.leaky_relu_(h, 0.1), lambda s, h, x: F.leaky_relu(h, 0.1)),
    ("F.elu_", lambda s, h, x: F.elu_(h), lambda s, h, x: F.elu(h)),
    ("torch.sigmoid_", lambda s, h, x: torch.sigmoid_(h), lambda s, h, x: torch.sigmoid(h)),
    ("torch.tanh_", lambda s, h, x: torch.tanh_(h), lambda s, h, x: torch.tanh(h)),
    ("torch.abs_", lambda s, h, x: torch.abs_(h), lambda s, h, x: torch.abs(h)),
    ("torch.neg_", lambda s, h, x: torch.neg_(h), lambda s, h, x: torch.neg(h)),
]


class _Net(nn.Module):
    def __init__(self, op: Op) -> None:
        super().__init__()
        self.op = op
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c3 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 3)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.op(self, self.c1(x), x))


def _pruned(op: Op, x: torch.Tensor) -> tuple[DependencyGraph, nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = _Net(op).eval()
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    return graph, prune(graph, plan), soft_prune(graph, plan)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("name", "inplace", "twin"), PAIRS, ids=[p[0] for p in PAIRS])
def test_inplace_op_prunes_like_its_twin(one_thread, name: str, inplace: Op, twin: Op) -> None:
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    graph, small, oracle = _pruned(inplace, x)
    twin_graph, twin_small, _ = _pruned(twin, x)
    assert [g.reason for g in graph.groups] == [g.reason for g in twin_graph.groups]
    assert len(graph.prunable_groups()) == len(twin_graph.prunable_groups()) >= 1
    assert small.c1.weight.shape[0] < 8
    assert _shapes(small) == _shapes(twin_small)
    with torch.no_grad():
        out = small(x.clone())
        torch.testing.assert_close(out, oracle(x.clone()), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out, twin_small(x.clone()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "write",
    [
        lambda s, h, x: (h.narrow(1, 0, 4).mul_(2.0), h)[1],
        lambda s, h, x: (h.select(1, 0).add_(1.0), h)[1],
    ],
    ids=["narrow mul_", "select add_"],
)
def test_inplace_write_through_a_channel_slice_freezes(one_thread, write: Op) -> None:
    torch.manual_seed(0)
    graph = DependencyGraph(_Net(write).eval(), torch.randn(2, 3, 6, 6))
    (c1,) = graph.layer_groups("c1")
    assert not c1.prunable
    assert "channel" in c1.reason


def test_inplace_write_through_a_fixed_channel_slice_keeps_those_channels(one_thread) -> None:
    """``h[:, :4].relu_()``: the 4 channels before the fixed bound stay, so the write still
    reaches the same channels; the other 4 prune (before 0.5.51 all 8 froze)."""
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    graph, small, oracle = _pruned(lambda s, h, x: (h[:, :4].relu_(), h)[1], x)
    (c1,) = graph.layer_groups("c1")
    assert c1.prunable
    assert c1.members[0].positions == [[4], [5], [6], [7]]
    assert 4 <= small.c1.weight.shape[0] < 8
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle(x), rtol=1e-5, atol=1e-5)


def test_inplace_write_through_a_spatial_slice_prunes(one_thread) -> None:
    """A slice of other axes holds every channel: an elementwise write into it is per channel."""
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    graph, small, oracle = _pruned(lambda s, h, x: (h[:, :, :2].relu_(), h)[1], x)
    assert graph.layer_groups("c1")[0].prunable
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "op",
    [lambda s, h, x: h.transpose_(2, 3), lambda s, h, x: h.unsqueeze_(0).squeeze_(0)],
    ids=["transpose_", "unsqueeze_"],
)
def test_inplace_change_of_shape_freezes(one_thread, op: Op) -> None:
    """Only in-place twins of elementwise ops are read as them: these move the tensor's axes."""
    torch.manual_seed(0)
    graph = DependencyGraph(_Net(op).eval(), torch.randn(2, 3, 6, 6))
    (c1,) = graph.layer_groups("c1")
    assert not c1.prunable
    assert "unsupported method" in c1.reason
