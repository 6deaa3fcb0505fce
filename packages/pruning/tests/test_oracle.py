"""The soft-pruning oracle: channels divided by a parameter stay finite, and an oracle can be
traced, pruned and soft-pruned again (its MaskedLayerNorm masks follow the channels)."""

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    MaskedLayerNorm,
    plan_from_masks,
    plan_pruning,
    prune,
    soft_prune,
)


class _Divided(nn.Module):
    """A layer's output divided by a per-channel parameter: ``(c1(x) / gamma)``."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        if self.how == "operator":
            h = h / self.gamma
        elif self.how == "torch.div":
            h = torch.div(h, self.gamma)
        elif self.how == "method":
            h = h.div(self.gamma)
        elif self.how == "abs":  # through ops that keep a zero divisor zero
            h = h / self.gamma.abs()
        elif self.how == "square":
            h = h / torch.sqrt(self.gamma**2)
        elif self.how == "pow":
            h = h / (-self.gamma).pow(2)
        else:  # a reciprocal, multiplied
            h = h * (1.0 / self.gamma)
        return self.fc(h.mean((2, 3)))


@pytest.mark.parametrize(
    "how", ["operator", "torch.div", "method", "abs", "square", "pow", "reciprocal"]
)
def test_oracle_of_channels_divided_by_a_parameter_is_finite(one_thread, how: str) -> None:
    torch.manual_seed(0)
    model = _Divided(how).eval()
    x = torch.randn(2, 3, 5, 5)
    gamma = model.gamma.detach().clone()
    graph = DependencyGraph(model, x)
    assert ("", "gamma") in graph.divisors
    plan = plan_pruning(graph, "l2", 0.5)
    assert plan.removed, "the c1 / gamma group should lose channels"
    oracle, small = soft_prune(graph, plan), prune(graph, plan)
    removed = plan.removed[graph.layer_groups("c1")[0].index]
    assert torch.equal(oracle.gamma.detach()[removed], torch.ones(len(removed), 1, 1))
    assert bool((oracle.c1.weight.detach()[removed] == 0).all())
    with torch.no_grad():
        expected = oracle(x)
        assert bool(expected.isfinite().all())
        torch.testing.assert_close(small(x), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(model.gamma.detach(), gamma)  # the oracle is a copy


_F = torch.nn.functional
_ELEMENTWISE = {
    "sqrt": lambda h: torch.sqrt(h),
    "square method": lambda h: h.square(),
    "exp_ in place": lambda h: h.exp_(),
    "erf": torch.erf,
    "hardsigmoid": _F.hardsigmoid,
    "hardtanh": _F.hardtanh,
    "softplus": _F.softplus,
    "mish": _F.mish,
    "selu": _F.selu,
    "logsigmoid": _F.logsigmoid,
    "softshrink": _F.softshrink,
    "alpha_dropout": lambda h: _F.alpha_dropout(h, 0.2, training=False),
    "SELU module": nn.SELU(),
    "Hardtanh module": nn.Hardtanh(),
    "Threshold module": nn.Threshold(0.6, 0.0),
    "clamp": lambda h: torch.clamp(h, 0.2, 0.7),
    "clamp_min_ method": lambda h: h.clamp_min_(0.4),
    "clip keywords": lambda h: torch.clip(h, max=0.6),
    "where of a comparison": lambda h: torch.where(h > 0.5, h, 0.1 * h),
    "times a mask": lambda h: h * h.le(0.5),
}


class _Activated(nn.Module):
    def __init__(self, op) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)
        self.cap = nn.Parameter(torch.rand(8) + 0.3)  # a per-channel clamp bound
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.fc1(x))
        h = self.op(h) if self.op is not None else h.clamp(max=self.cap)
        return self.fc2(h)


@pytest.mark.parametrize("name", [*_ELEMENTWISE, "clamp to a parameter"])
def test_elementwise_ops_keep_channels_prunable(one_thread, name: str) -> None:
    """Activations, clamps and comparison masks (functions, methods, in place, modules) map
    each channel to itself; a per-channel clamp bound is sliced with its channels."""
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    model = _Activated(_ELEMENTWISE.get(name)).eval()
    graph = DependencyGraph(model, x)
    (group,) = graph.prunable_groups()
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    assert small.fc1.out_features == group.size - len(plan.removed[group.index]) == 4
    assert small.cap.shape == ((4,) if model.op is None else (8,))
    with torch.no_grad():
        torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), rtol=1e-5, atol=1e-6)


def test_clamp_to_an_untracked_tensor_freezes_the_channels(one_thread) -> None:
    model = _Activated(lambda h: h.clamp(min=torch.full((8,), 0.3))).eval()
    graph = DependencyGraph(model, torch.randn(5, 4))
    assert not graph.prunable_groups()


def test_dividend_parameter_is_zeroed_as_before(one_thread) -> None:
    """A parameter divided (not dividing) is an ordinary member: zeroed in the oracle."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3)
            self.beta = nn.Parameter(torch.rand(8, 1, 1))
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc((self.c1(x) + self.beta / 2.0).mean((2, 3)))

    torch.manual_seed(0)
    graph = DependencyGraph(Net().eval(), torch.randn(2, 3, 5, 5))
    assert not graph.divisors
    plan = plan_pruning(graph, "l2", 0.5)
    removed = plan.removed[graph.layer_groups("c1")[0].index]
    assert bool((soft_prune(graph, plan).beta.detach()[removed] == 0).all())


def _layernorm_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[1].weight.normal_(1.0, 0.3)
        model[1].bias.normal_(0.0, 0.3)
    return model


def test_pruning_an_oracle_slices_its_layernorm_mask(one_thread) -> None:
    x = torch.randn(2, 4)
    graph = DependencyGraph(_layernorm_model(), x)
    oracle = soft_prune(graph, plan_pruning(graph, "l2", 0.5))
    graph2 = DependencyGraph(oracle, x)
    (group,) = graph2.prunable_groups()
    keep = [m for m in group.members if (m.module, m.param) == ("1", "keep")]
    assert [m.role for m in keep] == ["setting"]  # sliced with the channels, never scored
    # remove some channels the oracle zeroed and some it kept
    zeroed = (oracle[1].keep == 0).nonzero().flatten()
    kept = (oracle[1].keep != 0).nonzero().flatten()
    mask = torch.ones(8, dtype=torch.bool)
    mask[zeroed[:2]] = False
    mask[kept[:1]] = False
    plan2 = plan_from_masks(graph2, {group.index: mask})
    small, oracle2 = prune(graph2, plan2), soft_prune(graph2, plan2)
    assert isinstance(small[1], MaskedLayerNorm)
    assert torch.equal(small[1].keep, oracle[1].keep[mask])
    assert small[1].inner.normalized_shape == (5,)
    # soft-pruned again: one mask, the product of both (no MaskedLayerNorm inside another)
    assert isinstance(oracle2[1], MaskedLayerNorm)
    assert isinstance(oracle2[1].inner, nn.LayerNorm)
    assert not isinstance(oracle2[1].inner, MaskedLayerNorm)
    assert torch.equal(oracle2[1].keep, oracle[1].keep * mask)
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle2(x), rtol=1e-5, atol=1e-6)


def test_pruning_an_oracle_with_a_plan_gives_the_first_pruned_model(one_thread) -> None:
    x = torch.randn(2, 4)
    model = _layernorm_model()
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    oracle, small = soft_prune(graph, plan), prune(graph, plan)
    graph2 = DependencyGraph(oracle, x)
    plan2 = plan_pruning(graph2, "l2", 0.5)  # the zeroed channels score lowest
    small2 = prune(graph2, plan2)
    with torch.no_grad():
        torch.testing.assert_close(small2(x), small(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(small2(x), soft_prune(graph2, plan2)(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_torch_rms_norm_follows_its_channels(one_thread, eps: float | None) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.RMSNorm(8, eps=eps), nn.GELU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
    x = torch.randn(5, 4)
    graph = DependencyGraph(model, x)
    (group,) = graph.prunable_groups()  # the norm's channels are not frozen
    assert ("1", "weight", 0) in {(m.module, m.param, m.dim) for m in group.members}
    plan = plan_pruning(graph, "l2", 0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert small[1].normalized_shape == (4,)
    assert small[1].weight.shape == (4,)
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle(x), rtol=1e-5, atol=1e-6)


def test_rms_norm_subclass_with_its_own_forward_is_not_pruned_through(one_thread) -> None:
    class Scaled(nn.RMSNorm):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    model = nn.Sequential(nn.Linear(4, 8), Scaled(8), nn.Linear(8, 3))
    graph = DependencyGraph(model, torch.randn(2, 4))
    assert all("0" not in {m.module for m in g.members} for g in graph.prunable_groups())
