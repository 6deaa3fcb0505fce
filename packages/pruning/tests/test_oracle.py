"""The soft-pruning oracle: channels divided by a parameter stay finite, and an oracle can be
traced, pruned and soft-pruned again (its MaskedLayerNorm masks follow the channels)."""

from typing import Any

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
# name: (a module, or an op of (h, c) with c a per-channel parameter; whether c is sliced)
_ELEMENTWISE: dict[str, tuple[Any, bool]] = {
    "sqrt": (lambda h, c: torch.sqrt(h), False),
    "square method": (lambda h, c: h.square(), False),
    "exp_ in place": (lambda h, c: h.exp_(), False),
    "erf": (lambda h, c: torch.erf(h), False),
    "hardsigmoid": (lambda h, c: _F.hardsigmoid(h), False),
    "hardtanh": (lambda h, c: _F.hardtanh(h), False),
    "softplus": (lambda h, c: _F.softplus(h), False),
    "mish": (lambda h, c: _F.mish(h), False),
    "selu": (lambda h, c: _F.selu(h), False),
    "logsigmoid": (lambda h, c: _F.logsigmoid(h), False),
    "softshrink": (lambda h, c: _F.softshrink(h), False),
    "alpha_dropout": (lambda h, c: _F.alpha_dropout(h, 0.2, training=False), False),
    "SELU module": (nn.SELU(), False),
    "Hardtanh module": (nn.Hardtanh(), False),
    "Threshold module": (nn.Threshold(0.6, 0.0), False),
    "clamp": (lambda h, c: torch.clamp(h, 0.2, 0.7), False),
    "clamp_min_ method": (lambda h, c: h.clamp_min_(0.4), False),
    "clip keywords": (lambda h, c: torch.clip(h, max=0.6), False),
    "clamp to a parameter": (lambda h, c: h.clamp(max=c), True),
    "where of a comparison": (lambda h, c: torch.where(h > 0.5, h, 0.1 * h), False),
    "times a mask": (lambda h, c: h * h.le(c), True),
    "addcmul (an affine layer)": (lambda h, c: torch.addcmul(c, c, h), True),
    "addcdiv_ method": (lambda h, c: h.clone().addcdiv_(h, c, value=0.5), True),
    "lerp": (lambda h, c: torch.lerp(h, c, 0.3), True),
}


class _Activated(nn.Module):
    def __init__(self, op) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)
        self.cap = nn.Parameter(torch.rand(8) + 0.3)  # a per-channel operand
        self.op = op  # a module is a submodule: the module rule, not its forward, applies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.fc1(x))
        return self.fc2(self.op(h) if isinstance(self.op, nn.Module) else self.op(h, self.cap))


@pytest.mark.parametrize("name", _ELEMENTWISE)
def test_elementwise_ops_keep_channels_prunable(one_thread, name: str) -> None:
    """Activations, clamps, comparison masks and ternary ops (functions, methods, in place,
    modules) map each channel to itself; a per-channel operand is sliced with its channels."""
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    op, sliced = _ELEMENTWISE[name]
    graph = DependencyGraph(_Activated(op).eval(), x)
    (group,) = graph.prunable_groups()
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    assert small.fc1.out_features == group.size - len(plan.removed[group.index]) == 4
    assert small.cap.shape == ((4,) if sliced else (8,))
    with torch.no_grad():
        torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), rtol=1e-5, atol=1e-6)


def test_clamp_to_an_untracked_tensor_freezes_the_channels(one_thread) -> None:
    model = _Activated(lambda h, c: h.clamp(min=torch.full((8,), 0.3))).eval()
    graph = DependencyGraph(model, torch.randn(5, 4))
    assert not graph.prunable_groups()


class _GroupNorm1(nn.GroupNorm):
    """timm's ``GroupNorm1``: an ``nn.GroupNorm`` subclass calling ``F.group_norm`` itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def test_group_norm_called_by_its_own_layer_prunes_whole_groups(one_thread) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), _GroupNorm1(4, 8), nn.Conv2d(8, 2, 1)).eval()
    with torch.no_grad():
        model[1].weight.normal_(1.0, 0.3)
        model[1].bias.normal_(0.0, 0.3)
    x = torch.randn(2, 3, 4, 4)
    graph = DependencyGraph(model, x)
    (group,) = graph.prunable_groups()
    assert group.size == 4  # groups of two channels are the units
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    assert (small[1].num_groups, small[1].num_channels, small[0].out_channels) == (2, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), rtol=1e-5, atol=1e-6)

    class Outside(nn.Module):  # another module's group_norm call with the layer's parameters
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.gn, self.c2 = nn.Conv2d(3, 8, 1), nn.GroupNorm(4, 8), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c2(_F.group_norm(self.c1(x), 4, self.gn.weight, self.gn.bias))

    graph = DependencyGraph(Outside().eval(), x)
    assert not graph.prunable_groups()
    assert any("group_norm over channels outside" in g.reason for g in graph.groups)


class _SingleGroupResidual(nn.Module):
    """PoolFormer's block: a single-group GroupNorm (a layer norm over ``[C, H, W]``) on a
    residual stream."""

    def __init__(self, norm: type[nn.GroupNorm]) -> None:
        super().__init__()
        self.c1, self.norm = nn.Conv2d(3, 8, 1), norm(1, 8)
        self.c2, self.c3 = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 2, 1)
        with torch.no_grad():
            self.norm.weight.normal_(1.0, 0.3)
            self.norm.bias.normal_(0.0, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        return self.c3(h + self.c2(self.norm(h)))


@pytest.mark.parametrize("norm", [nn.GroupNorm, _GroupNorm1], ids=["module", "group_norm call"])
def test_single_group_norm_prunes_channels_with_statistics_over_the_kept(
    one_thread, norm: type[nn.GroupNorm]
) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4)
    graph = DependencyGraph(_SingleGroupResidual(norm).eval(), x)
    (group,) = graph.prunable_groups()
    assert group.size == 8  # channels, not one unit of eight
    plan = plan_pruning(graph, "l2", 0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert (small.norm.num_groups, small.norm.num_channels) == (1, 4)
    assert isinstance(oracle.norm, MaskedLayerNorm)
    with torch.no_grad():
        expected = oracle(x)
        torch.testing.assert_close(small(x), expected, rtol=1e-5, atol=1e-6)
        # the oracle's statistics span the kept channels only: plain zeroing differs
        zeroed = oracle.norm.inner
        assert not torch.allclose(
            oracle.c3(oracle.c1(x) + oracle.c2(zeroed(oracle.c1(x)))), expected
        )
    with pytest.raises(TypeError, match="got GroupNorm with 2 groups"):  # groups stay whole
        MaskedLayerNorm(nn.GroupNorm(2, 8), torch.ones(8, dtype=torch.bool))


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
