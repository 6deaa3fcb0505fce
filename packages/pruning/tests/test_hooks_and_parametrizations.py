"""Parametrized weights (weight_norm, spectral_norm) and forward hooks (on the model, on its
layers, Grad-CAM style, global ones) in OBSPA, the importance criteria, lottery masks and the
dependency graph's two tracing routes."""

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.nn.utils import parametrizations

from neuronkit.pruning import (
    DependencyGraph,
    SNIPImportance,
    TaylorImportance,
    obspa_prune,
    plan_pruning,
    prune,
    soft_prune,
)
from neuronkit.pruning.lottery import global_magnitude_prune, ones_masks, prunable_weights


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)
    ).eval()


def _weight_normed(model: nn.Sequential, layers: tuple[int, ...] = (0, 2, 4)) -> nn.Sequential:
    """The same function, its Linears' weights parametrized as ``g * v / |v|``."""
    twin = copy.deepcopy(model)
    for i in layers:
        parametrizations.weight_norm(twin[i])
    return twin


def _removed(plan: Any) -> dict[int, list[int]]:
    return {k: sorted(v.tolist()) for k, v in plan.removed.items()}


# ---------------------------------------------------------------- parametrized weights


def test_obspa_compensates_weight_normed_layers_as_plain_ones() -> None:
    base = _mlp()
    normed = _weight_normed(base, (2, 4))
    x = torch.randn(32, 8)
    torch.testing.assert_close(normed(x), base(x), atol=1e-6, rtol=0)
    small_base, plan_base = obspa_prune(DependencyGraph(base, x), 0.5, inputs=x)
    small_normed, plan_normed = obspa_prune(DependencyGraph(normed, x), 0.5, inputs=x)
    assert _removed(plan_normed) == _removed(plan_base)
    with torch.no_grad():  # the consumers' weights carry the compensation, not only the biases
        torch.testing.assert_close(small_normed(x), small_base(x), atol=1e-5, rtol=0)
    assert torch.nn.utils.parametrize.is_parametrized(small_normed[4], "weight")


@pytest.mark.parametrize("criterion", ["taylor", "snip", "synflow"])
def test_gradient_and_synflow_scores_of_parametrized_weights_are_those_of_the_weights(
    criterion: str,
) -> None:
    base = _mlp()
    normed = _weight_normed(base)
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    make = {
        "taylor": lambda: TaylorImportance(x, y),
        "snip": lambda: SNIPImportance(x, y),
        "synflow": lambda: "synflow",
    }[criterion]
    plans = [_removed(plan_pruning(DependencyGraph(m, x), make(), 0.5)) for m in (base, normed)]
    assert plans[1] == plans[0]
    # the scoring copies leave the caller's model as it was (a deep copy shares its class)
    assert torch.nn.utils.parametrize.is_parametrized(normed[2], "weight")
    torch.testing.assert_close(normed(x), base(x), atol=1e-6, rtol=0)


def test_existing_gradients_of_a_parametrized_weight_are_refused() -> None:
    """Without inputs the scores come from ``.grad``, which a parametrized weight (a computed
    tensor) never has: refused, not silently scored from the other layers only."""
    model = _weight_normed(_mlp(), (2,))
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    graph = DependencyGraph(model, x)
    with pytest.raises(ValueError, match=r"2\.weight.*parametrized.*inputs and targets"):
        plan_pruning(graph, TaylorImportance(), 0.5)


def test_lottery_masks_refuse_parametrized_layers_unless_ignored() -> None:
    model = _mlp()
    parametrizations.weight_norm(model[2])
    parametrizations.spectral_norm(model[4])
    with pytest.raises(ValueError, match=r"2\.weight.*4\.weight.*parametrized") as info:
        prunable_weights(model)
    assert "remove_parametrizations" in str(info.value)
    assert "ignore" in str(info.value)
    with pytest.raises(ValueError, match="parametrized"):
        ones_masks(model)
    assert prunable_weights(model, ignore=["2.weight", "4.weight"]) == ["0.weight"]
    masks = ones_masks(model, ignore=["2.weight", "4.weight"])
    assert list(masks) == ["0.weight"]
    assert list(global_magnitude_prune(model, masks, 0.5)) == ["0.weight"]
    assert prunable_weights(model, layer_types=(nn.Conv2d,)) == []  # not among the types


# ---------------------------------------------------------------- hooks, concrete route


class _ShapeBranching(nn.Module):
    """``forward`` branches on its input's rank: torch.fx cannot trace it symbolically, the
    concrete tracer follows the example."""

    def __init__(self, branch: bool = True, b_inputs: int = 16) -> None:
        super().__init__()
        self.branch = branch
        self.a, self.b, self.c = nn.Linear(8, 16), nn.Linear(b_inputs, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch and x.dim() == 1:
            x = x[None]
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def test_hooks_on_the_model_do_not_run_on_the_concrete_trace() -> None:
    torch.manual_seed(0)
    model = _ShapeBranching().eval()
    seen: list[Any] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(float(out.abs().mean())))
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].norm().item()))
    x = torch.randn(5, 8)
    graph = DependencyGraph(model, x)
    assert seen == []  # never called on traced values (nor on the model's)
    assert graph.groups
    assert not any(g.prunable for g in graph.groups)
    assert any("forward hooks on the model" in g.reason for g in graph.groups)
    with torch.no_grad():
        model(x)
    assert len(seen) == 2
    assert all(isinstance(v, float) for v in seen)


def test_a_leaf_hook_that_changes_its_output_shape_is_traced_on_both_routes() -> None:
    """The symbolic route runs a hooked leaf with its hooks on the example: the concrete route
    too (it used to call its ``forward``, and b then got 16 inputs)."""
    for branch in (False, True):  # symbolic, concrete
        torch.manual_seed(0)
        model = _ShapeBranching(branch, b_inputs=8).eval()
        model.a.register_forward_hook(lambda _m, _i, out: out[:, :8])  # b takes 8 inputs
        x = torch.randn(5, 8)
        graph = DependencyGraph(model, x)
        assert [(g.size, g.prunable) for g in graph.groups] == [(16, True), (4, False)]
        plan = plan_pruning(graph, "l2", 0.5)
        torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class _Nested(nn.Module):
    def __init__(self, branch: bool) -> None:
        super().__init__()
        self.branch = branch
        self.a, self.blk, self.c = nn.Linear(8, 16), _Block(), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch and x.dim() == 1:
            x = x[None]
        return self.c(self.blk(torch.relu(self.a(x))))


def test_backward_hooks_of_traced_through_modules_do_not_see_traced_values() -> None:
    """A module traced through runs its ``forward``, not ``__call__``: its full backward hook
    (which wraps the outputs) is not set up on traced values (torch warned about them)."""
    for branch in (False, True):  # symbolic, concrete
        model = _Nested(branch).eval()
        model.blk.register_full_backward_hook(lambda _m, _gi, _go: None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            graph = DependencyGraph(model, torch.randn(2, 8))
        assert [(g.size, g.prunable) for g in graph.groups] == [(16, True), (16, True), (4, False)]


# ---------------------------------------------------------------- Grad-CAM-style hooks


def _cnn(branch: bool) -> nn.Module:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3)
            self.c3, self.fc = nn.Conv2d(8, 8, 1), nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if branch and x.dim() == 3:
                x = x[None]
            x = torch.relu(self.c3(torch.relu(self.c2(torch.relu(self.c1(x))))))
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(0)
    return Net().eval()


def _check_grad_cam(branch: bool) -> None:
    model = _cnn(branch)
    grads: dict[str, torch.Tensor] = {}
    calls: list[bool] = []

    def save(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        calls.append(out.requires_grad)
        out.register_hook(lambda g: grads.__setitem__("c2", g))  # needs a grad-tracking output

    model.c2.register_forward_hook(save)
    x = torch.randn(2, 3, 16, 16)
    graph = DependencyGraph(model, x)
    assert calls == [True]  # run once, on the example's values
    assert not any(g.prunable for g in graph.layer_groups("c1"))  # c2 (hooked) reads them
    assert [g.prunable for g in graph.layer_groups("c3")] == [True]
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)
    torch.testing.assert_close(small(x), soft_prune(graph, plan)(x))
    small(x).sum().backward()  # the copied hook works on the pruned model
    assert grads["c2"].shape == (2, 8, 12, 12)


def test_a_grad_cam_hook_does_not_break_the_graph() -> None:
    """A hooked layer runs with its hooks on both routes, with gradients enabled (the graph is
    built under no_grad): a hook that registers a tensor hook on the output works."""
    _check_grad_cam(branch=False)  # symbolic
    _check_grad_cam(branch=True)  # concrete


def test_a_failing_hook_is_named_in_the_error() -> None:
    model = _cnn(False)

    def broken(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        raise RuntimeError("hook exploded")

    model.c2.register_forward_hook(broken)
    with pytest.raises(ValueError, match=r"hook exploded.*`c2` by its forward hook `.*broken`"):
        DependencyGraph(model, torch.randn(2, 3, 16, 16))


# ---------------------------------------------------------------- global module hooks


@pytest.fixture
def global_hooks() -> Iterator[list[Any]]:
    handles: list[Any] = []
    yield handles
    for h in handles:
        h.remove()


class _Branching(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:  # the concrete tracer's route
            x = x[None]
        return super().forward(x)


@pytest.mark.parametrize("branch", [False, True], ids=["symbolic", "concrete"])
@pytest.mark.parametrize("kind", ["forward", "pre"])
def test_global_module_hooks_freeze_every_group(
    kind: str, branch: bool, global_hooks: list[Any]
) -> None:
    torch.manual_seed(0)
    layers = (nn.Linear(8, 16), nn.ReLU(), _Block(), nn.Linear(16, 4))
    model = (_Branching if branch else nn.Sequential)(*layers).eval()
    x = torch.randn(5, 8)
    seen: list[str] = []

    def flip(mod: nn.Module, _i: Any, out: Any) -> Any:
        seen.append(type(out).__name__)
        return out.flip(-1) if isinstance(mod, nn.ReLU) else None

    def flip_pre(mod: nn.Module, args: Any) -> Any:
        seen.append(type(args[0]).__name__)
        return (args[0].flip(-1),) if isinstance(mod, nn.ReLU) else None

    if kind == "forward":
        global_hooks.append(register_module_forward_hook(flip))
    else:
        global_hooks.append(register_module_forward_pre_hook(flip_pre))
    graph = DependencyGraph(model, x)
    assert set(seen) == {"Tensor"}  # never run on traced values
    hidden = [g for g in graph.groups if g.size == 16]
    assert len(hidden) == 2
    assert not any(g.prunable for g in graph.groups)
    assert all("global forward hooks" in g.reason for g in hidden)
    plan = plan_pruning(graph, "l2", 0.5)
    torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))
    global_hooks.pop().remove()
    assert DependencyGraph(model, x).prunable_groups()  # gone with the hook
