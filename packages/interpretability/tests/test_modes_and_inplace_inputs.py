"""Models in training mode, models that modify their input in place, and models returning
tuples, through the gradient-based methods: the model runs in eval mode with its flags, buffers
and torch's global RNG left as they were; an in-place model gives the numbers of its
out-of-place twin; the caller's tensors are never modified."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import (
    GammaRule,
    accuracy,
    deeplift,
    deeplift_shap,
    feature_permutation,
    fgsm_attack,
    gradient_shap,
    infidelity,
    input_x_gradient,
    integrated_gradients,
    internal_influence,
    layer_activations,
    layer_conductance,
    layer_deeplift,
    layer_feature_ablation,
    layer_feature_permutation,
    layer_gradient_x_activation,
    level_set_traversal,
    loss_gradient,
    lrp,
    maximize_activation,
    mds_clustering,
    neuron_conductance,
    neuron_output,
    pgd_attack,
    saliency,
    sensitivity_max,
    smoothgrad,
)
from neuronkit.interpretability.geometry.level_sets import class_confidence
from neuronkit.interpretability.stimuli import (
    assign_to_stimuli,
    optimize_stimuli,
    response_statistics,
)
from neuronkit.interpretability.visualization.maximize import class_logit, objective_values
from neuronkit.interpretability.visualization.params import PixelImage
from neuronkit.interpretability.visualization.regularizers import Regularizer

LABELS = torch.tensor([0, 1, 2, 0, 1, 2])
NEURON_LABELS = torch.tensor([0, 0, 1, 1, 0, 1])


def _inputs() -> torch.Tensor:
    return torch.rand(6, 4, generator=torch.Generator().manual_seed(1))


def _flat(result: Any) -> list[torch.Tensor]:
    """The tensors of a result (a tensor, a tuple of them or a result dataclass)."""
    if isinstance(result, torch.Tensor):
        return [result]
    if dataclasses.is_dataclass(result):
        result = [getattr(result, f.name) for f in dataclasses.fields(result)]
    return [t for r in result for t in _flat(r)] if isinstance(result, (tuple, list)) else []


def _assert_same(got: Any, expected: Any) -> None:
    a, b = _flat(got), _flat(expected)
    assert len(a) == len(b) > 0
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# a model left in training mode (BatchNorm, dropout)


def _train_mode_classifier() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 1.5)
    return net.train()


def _snapshot(net: nn.Module) -> tuple[dict[str, torch.Tensor], list[bool]]:
    return (
        {k: v.clone() for k, v in net.state_dict().items()},
        [m.training for m in net.modules()],
    )


def _assert_unchanged(net: nn.Module, snapshot: tuple[dict[str, torch.Tensor], list[bool]]) -> None:
    state, flags = snapshot
    assert [m.training for m in net.modules()] == flags
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def _callable_method(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A user's attribution method for smoothgrad, calling the model itself."""
    xg = x.detach().requires_grad_(True)
    return torch.autograd.grad(model(xg).gather(1, target[:, None]).sum(), xg)[0]


ATTRIBUTIONS: dict[str, Callable[[nn.Module, torch.Tensor, Any], Any]] = {
    "saliency": saliency,
    "input_x_gradient": input_x_gradient,
    "loss_gradient": loss_gradient,
    "integrated_gradients": lambda m, x, y: integrated_gradients(
        m, x, y, n_steps=4, internal_batch_size=12, return_convergence_delta=True
    ),
    "smoothgrad": lambda m, x, y: smoothgrad(m, x, y, n_samples=3, seed=0),
    "smoothgrad_integrated": lambda m, x, y: smoothgrad(
        m, x, y, method="integrated_gradients", n_samples=2, seed=0, n_steps=3
    ),
    "smoothgrad_callable": lambda m, x, y: smoothgrad(
        m, x, y, method=_callable_method, n_samples=2, seed=0
    ),
    "deeplift": lambda m, x, y: deeplift(m, x, y, baselines=0.1, return_convergence_delta=True),
    "deeplift_shap": lambda m, x, y: deeplift_shap(m, x, x[:2] * 0.5, y),
    "gradient_shap": lambda m, x, y: gradient_shap(m, x, x[:2] * 0.5, y, seed=0),
    "lrp": lambda m, x, y: lrp(m, x, y, rules={"0": GammaRule(0.25)}),
    "layer_gradient_x_activation": lambda m, x, y: layer_gradient_x_activation(m, x, "2", y),
    "layer_conductance": lambda m, x, y: layer_conductance(m, x, "2", y, n_steps=4),
    "internal_influence": lambda m, x, y: internal_influence(m, x, "2", y, n_steps=4),
    "layer_deeplift": lambda m, x, y: layer_deeplift(m, x, "2", y, baselines=0.1),
    "neuron_conductance": lambda m, x, y: neuron_conductance(m, x, "2", 3, y, n_steps=4),
    "neuron_output": lambda m, x, y: saliency(neuron_output(m, "2", 3), x),
    "layer_feature_ablation": lambda m, x, y: layer_feature_ablation(m, x, "2", y),
    "layer_feature_permutation": lambda m, x, y: layer_feature_permutation(m, x, "2", y, seed=0),
    "feature_permutation": lambda m, x, y: feature_permutation(m, x, y, seed=0),
    "infidelity": lambda m, x, y: infidelity(m, x, torch.ones_like(x), y, n_samples=4, seed=0),
    "sensitivity_max": lambda m, x, y: sensitivity_max(saliency, m, x, y, n_samples=3, seed=0),
}


@pytest.mark.parametrize("name", sorted(ATTRIBUTIONS))
def test_attribution_runs_a_train_mode_model_in_eval_mode(name: str) -> None:
    net = _train_mode_classifier()
    twin = copy.deepcopy(net).eval()
    before = _snapshot(net)
    rng = torch.get_rng_state()
    got = ATTRIBUTIONS[name](net, _inputs(), LABELS)
    _assert_unchanged(net, before)  # BatchNorm statistics, training flags
    assert torch.equal(torch.get_rng_state(), rng)  # no dropout draws
    _assert_same(got, ATTRIBUTIONS[name](twin, _inputs(), LABELS))  # the eval-mode numbers


@pytest.mark.parametrize("name", ["saliency", "input_x_gradient", "loss_gradient"])
def test_bad_target_checked_after_the_forward_leaves_the_model_unchanged(name: str) -> None:
    net = _train_mode_classifier()
    before = _snapshot(net)
    with pytest.raises(ValueError, match="target must be in"):
        ATTRIBUTIONS[name](net, _inputs(), 7)
    _assert_unchanged(net, before)


def test_smoothgrad_seed_reproducible_whatever_the_global_seed() -> None:
    net = _train_mode_classifier()
    torch.manual_seed(1)
    first = smoothgrad(net, _inputs(), LABELS, n_samples=4, seed=0)
    torch.manual_seed(2)
    second = smoothgrad(net, _inputs(), LABELS, n_samples=4, seed=0)
    assert torch.equal(first, second)


def test_eval_mode_model_gives_the_plain_input_gradient() -> None:
    net = _train_mode_classifier().eval()
    x = _inputs().requires_grad_(True)
    (expected,) = torch.autograd.grad(net(x).gather(1, LABELS[:, None]).sum(), x)
    torch.testing.assert_close(saliency(net, _inputs(), LABELS, abs=False), expected)
    assert not any(m.training for m in net.modules())


# --------------------------------------------------------------------------------------------
# MDS with a response model in training mode


def _train_mode_responses() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 1.5)
    return net.train()


def _stimuli() -> torch.Tensor:
    return torch.randn(2, 4, generator=torch.Generator().manual_seed(2))


MDS_CALLS: dict[str, Callable[[Any], Any]] = {
    # BatchNorm1d in training mode refuses mds_clustering's batch-1 probe
    "mds_clustering": lambda m: mds_clustering(
        m, (4,), 2, n_steps=2, max_iter=2, n_norm_samples=8, seed=0
    ),
    "response_statistics": lambda m: response_statistics(m, (4,), norm=1.0, n_samples=8),
    "optimize_stimuli": lambda m: optimize_stimuli(m, NEURON_LABELS, (4,), n_steps=2),
    "assign_to_stimuli": lambda m: assign_to_stimuli(m, _stimuli()),
}


@pytest.mark.parametrize("name", sorted(MDS_CALLS))
def test_mds_runs_a_train_mode_model_in_eval_mode(name: str) -> None:
    net = _train_mode_responses()
    twin = copy.deepcopy(net).eval()
    before = _snapshot(net)
    got = MDS_CALLS[name](net)
    _assert_unchanged(net, before)
    _assert_same(got, MDS_CALLS[name](twin))


# --------------------------------------------------------------------------------------------
# a model that modifies its input in place


class Net(nn.Module):
    """Normalizes its input in place (``ip=True``) or out of place."""

    def __init__(self, ip: bool) -> None:
        super().__init__()
        self.ip = ip
        self.f = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x.sub_(0.5).mul_(2.0) if self.ip else (x - 0.5) * 2.0)


def _twins(cls: type[nn.Module]) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    out_of_place = cls(False)
    in_place = cls(True)
    in_place.load_state_dict(out_of_place.state_dict())
    return out_of_place.eval(), in_place.eval()


_BASELINES = torch.full((6, 4), 0.25)
_TARGETS = torch.rand(2, 4, generator=torch.Generator().manual_seed(3))

IN_PLACE_CALLS: dict[str, Callable[[nn.Module, torch.Tensor], Any]] = {
    "saliency": lambda m, x: saliency(m, x, LABELS),
    "input_x_gradient": lambda m, x: input_x_gradient(m, x, LABELS),
    "loss_gradient": lambda m, x: loss_gradient(m, x, LABELS),
    "integrated_gradients": lambda m, x: integrated_gradients(
        m, x, LABELS, baselines=_BASELINES, n_steps=4, return_convergence_delta=True
    ),
    "smoothgrad": lambda m, x: smoothgrad(m, x, LABELS, n_samples=3, stdev=0.1, seed=0),
    "deeplift": lambda m, x: deeplift(
        m, x, LABELS, baselines=_BASELINES, return_convergence_delta=True
    ),
    "deeplift_shap": lambda m, x: deeplift_shap(m, x, _BASELINES[:3], LABELS),
    "gradient_shap": lambda m, x: gradient_shap(m, x, _BASELINES, LABELS, stdev=0.1, seed=0),
    "lrp": lambda m, x: lrp(m, x, LABELS, rules={"f": GammaRule(0.25)}),
    "layer_gradient_x_activation": lambda m, x: layer_gradient_x_activation(
        m, x, "f", LABELS, layer_input=True
    ),
    "internal_influence": lambda m, x: internal_influence(m, x, "f", LABELS, n_steps=4),
    "layer_deeplift": lambda m, x: layer_deeplift(m, x, "f", LABELS, baselines=_BASELINES),
    "neuron_conductance": lambda m, x: neuron_conductance(m, x, "f", 1, LABELS, n_steps=4),
    "layer_feature_ablation": lambda m, x: layer_feature_ablation(
        m, x, "f", LABELS, layer_input=True
    ),
    "feature_permutation": lambda m, x: feature_permutation(m, x, LABELS, seed=0),
    "infidelity": lambda m, x: infidelity(m, x, torch.ones_like(x), LABELS, seed=0),
    "sensitivity_max": lambda m, x: sensitivity_max(saliency, m, x, LABELS, seed=0),
    "pgd_attack": lambda m, x: pgd_attack(m, x, LABELS, eps=0.1, n_steps=2),
    "fgsm_attack": lambda m, x: fgsm_attack(m, x, LABELS, eps=0.1),
    "level_set_traversal": lambda m, x: level_set_traversal(m, x[:2], _TARGETS, n_iterations=3),
    "mds_clustering": lambda m, x: mds_clustering(
        m, (4,), 2, n_steps=2, max_iter=2, n_norm_samples=8, seed=0
    ),
    "optimize_stimuli": lambda m, x: optimize_stimuli(
        m, torch.tensor([0, 0, 1]), (4,), init=x[:2], n_steps=2
    ),
    # no gradients: the caller's tensor is still not modified
    "accuracy": lambda m, x: torch.tensor(accuracy(m, x, LABELS)),
    "class_confidence": lambda m, x: class_confidence(m, x, LABELS),
    "layer_activations": lambda m, x: layer_activations(m, x, "f")["f"],
    "assign_to_stimuli": lambda m, x: assign_to_stimuli(m, x[:2]),
}


@pytest.mark.parametrize("name", sorted(IN_PLACE_CALLS))
def test_in_place_model_gives_the_out_of_place_numbers(name: str) -> None:
    out_of_place, in_place = _twins(Net)
    x = _inputs()
    expected = IN_PLACE_CALLS[name](out_of_place, x.clone())
    got = IN_PLACE_CALLS[name](in_place, x)
    _assert_same(got, expected)
    assert torch.equal(x, _inputs())  # the caller's tensors are not modified
    assert torch.equal(_BASELINES, torch.full((6, 4), 0.25))
    assert torch.equal(_TARGETS, torch.rand(2, 4, generator=torch.Generator().manual_seed(3)))


class ColumnNet(nn.Module):
    """Zeroes its input's first column in place, through a view (``ip=True``), or out of place."""

    def __init__(self, ip: bool) -> None:
        super().__init__()
        self.ip = ip
        self.f = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.ip:
            x[:, 0].zero_()
            return self.f(x)
        return self.f(torch.cat((torch.zeros_like(x[:, :1]), x[:, 1:]), 1))


@pytest.mark.parametrize("name", ["integrated_gradients", "smoothgrad"])
def test_methods_copy_their_own_rows_only_for_a_model_modifying_them_in_place(
    name: str,
) -> None:
    out_of_place, in_place = _twins(ColumnNet)
    x = _inputs()
    call = {
        "integrated_gradients": lambda m: integrated_gradients(m, x, LABELS, n_steps=4),
        "smoothgrad": lambda m: smoothgrad(m, x, LABELS, n_samples=3, stdev=0.1, seed=0),
    }[name]
    received: list[torch.Tensor] = []
    hook = out_of_place.register_forward_pre_hook(lambda _m, args: received.append(args[0]))
    expected = call(out_of_place)
    hook.remove()
    # the interpolated / noisy rows themselves (no copy: a leaf), one forward pass
    assert out_of_place.calls == 1
    assert received[0].is_leaf
    assert received[0].requires_grad
    # an in-place model fails on that leaf before changing it and runs again on a copy
    _assert_same(call(in_place), expected)
    assert in_place.calls == 2
    assert torch.equal(x, _inputs())


class ConvNet(nn.Module):
    """Rectifies its input image in place (``ip=True``) or out of place."""

    def __init__(self, ip: bool) -> None:
        super().__init__()
        self.ip = ip
        self.c = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(F.relu(x, inplace=self.ip)).mean((2, 3))


def test_maximize_activation_of_raw_pixels_with_an_in_place_model() -> None:
    out_of_place, in_place = _twins(ConvNet)
    results = []
    for model in (out_of_place, in_place):
        param = PixelImage((1, 1, 5, 5), value_range=None, sd=1.0)
        results.append(maximize_activation(model, class_logit(0), param=param, steps=3).image)
        assert torch.equal(param.pixels, PixelImage((1, 1, 5, 5), value_range=None, sd=1.0).pixels)
    _assert_same(results[1], results[0])


def test_objective_values_leave_the_inputs_of_an_in_place_model() -> None:
    out_of_place, in_place = _twins(ConvNet)
    x = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(4))
    expected = objective_values(out_of_place, x.clone(), class_logit(1))
    _assert_same(objective_values(in_place, x, class_logit(1)), expected)
    assert torch.equal(x, torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(4)))


def test_maximize_activation_filters_the_raw_pixel_gradient_once_per_step() -> None:
    progress: list[float] = []

    class Record(Regularizer):
        def filter_gradient(self, grad: torch.Tensor, fraction: float) -> torch.Tensor:
            progress.append(fraction)
            return grad

    model, _ = _twins(ConvNet)
    param = PixelImage((1, 1, 5, 5), value_range=None, sd=1.0)
    maximize_activation(model, class_logit(0), param=param, steps=4, regularizers=[Record()])
    assert progress == [0.0, 0.25, 0.5, 0.75]


# --------------------------------------------------------------------------------------------
# a model returning a tuple


class TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.f(x), x


@pytest.mark.parametrize("labels", [None, LABELS[:2]])
def test_level_set_traversal_names_a_model_returning_a_tuple(labels: Any) -> None:
    x = _inputs()
    with pytest.raises(TypeError, match="model must return a tensor, got tuple"):
        level_set_traversal(TupleNet(), x[:2], x[2:4], labels, n_iterations=2)


def test_robustness_names_a_model_returning_a_tuple() -> None:
    x = _inputs()
    for call in (
        lambda: fgsm_attack(TupleNet(), x[:2], LABELS[:2], eps=0.1),
        lambda: accuracy(TupleNet(), x[:2], LABELS[:2]),
    ):
        with pytest.raises(TypeError, match="model must return a tensor, got tuple"):
            call()


def test_mds_names_a_model_returning_a_tuple() -> None:
    with pytest.raises(TypeError, match="model must return a tensor, got tuple"):
        response_statistics(TupleNet(), (4,), norm=1.0, n_samples=8)
