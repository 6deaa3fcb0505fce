import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    gradient_shap,
    integrated_gradients,
    layer_gradient_shap,
    layer_integrated_gradients,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp() -> nn.Module:
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    torch.random.set_rng_state(gen_state)
    return model


def test_a_linear_model_gives_weight_times_difference_from_the_mean_baseline() -> None:
    model = nn.Linear(5, 3).double()
    x = torch.randn(2, 5, generator=_gen(1), dtype=torch.float64)
    refs = torch.randn(4, 5, generator=_gen(2), dtype=torch.float64)
    w = model.weight.detach()[1]
    # one baseline: every draw gives w (x - b) exactly
    torch.testing.assert_close(gradient_shap(model, x, refs[:1], 1, seed=0), w * (x - refs[0]))
    # several: the draws pick baselines uniformly (sampling error ~ 1 / sqrt(4000 draws))
    got = gradient_shap(model, x, refs, 1, n_samples=4000, seed=0)
    torch.testing.assert_close(got, w * (x - refs.mean(0)), rtol=0, atol=0.1)


def test_the_mean_over_points_is_integrated_gradients() -> None:
    model = _mlp()
    x = torch.randn(3, 5, generator=_gen(3), dtype=torch.float64) * 2
    base = torch.randn(1, 5, generator=_gen(4), dtype=torch.float64)
    got = gradient_shap(model, x, base, [0, 1, 2], n_samples=4000, seed=1)
    ig = integrated_gradients(model, x, [0, 1, 2], baselines=base)
    assert float((got - ig).norm() / ig.norm()) < 0.03
    # and summation to f(x) - f(b) in expectation
    with torch.no_grad():
        difference = (model(x) - model(base))[torch.arange(3), [0, 1, 2]]
    torch.testing.assert_close(got.sum(1), difference, rtol=0, atol=0.03)
    # few draws are not yet there (the check above can fail)
    few = gradient_shap(model, x, base, [0, 1, 2], n_samples=2, seed=1)
    assert float((few - ig).norm() / ig.norm()) > 0.03


def test_noise_moves_the_input_before_each_draw() -> None:
    model = nn.Linear(5, 1).double()
    x = torch.zeros(1, 5, dtype=torch.float64)
    base = torch.zeros(1, 5, dtype=torch.float64)
    assert gradient_shap(model, x, base, n_samples=8, seed=0).abs().max() == 0
    noisy = gradient_shap(model, x, base, n_samples=8, stdev=0.5, seed=0)
    assert noisy.abs().min() > 0


def test_seeds_repeat_and_leave_the_global_generator_alone() -> None:
    model = _mlp()
    x = torch.randn(2, 5, generator=_gen(5), dtype=torch.float64)
    refs = torch.randn(6, 5, generator=_gen(6), dtype=torch.float64)
    state = torch.random.get_rng_state()
    first = gradient_shap(model, x, refs, 0, stdev=0.1, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, gradient_shap(model, x, refs, 0, stdev=0.1, generator=_gen(7)))
    assert not torch.equal(first, gradient_shap(model, x, refs, 0, stdev=0.1, seed=8))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"baselines": torch.zeros(4)}, ValueError, r"baselines must be \[K, 4\] with K >= 1"),
        ({"baselines": torch.zeros(0, 4)}, ValueError, r"baselines must be \[K, 4\] with K >= 1"),
        ({"baselines": torch.zeros(2, 4, dtype=torch.long)}, TypeError, "baselines must be a f"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"stdev": -1.0}, ValueError, "stdev"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, "seed and generator"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    args = {"baselines": torch.zeros(2, 4), **kwargs}
    with pytest.raises(error, match=match):
        gradient_shap(nn.Linear(4, 2), torch.zeros(3, 4), target=0, **args)


@pytest.mark.parametrize("stdev", [0.0, 0.2])
def test_layer_version_at_the_models_input_is_gradient_shap(stdev) -> None:
    """The same draws: at an identity first layer the layer's values are the inputs."""
    model = nn.Sequential(nn.Identity(), _mlp())
    x = torch.randn(3, 5, generator=_gen(7), dtype=torch.float64)
    refs = torch.randn(9, 5, generator=_gen(8), dtype=torch.float64)
    for layer, layer_input in (("0", False), ("1", True), ("0", True)):
        got = layer_gradient_shap(
            model, x, layer, refs, 2, n_samples=6, stdev=stdev, layer_input=layer_input, seed=3
        )
        want = gradient_shap(model, x, refs, 2, n_samples=6, stdev=stdev, seed=3)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_layer_version_at_a_hidden_layer_is_layer_integrated_gradients_on_average() -> None:
    """One baseline, no noise: the mean over points on the input path is layer IG (the
    first layer is linear, so the input path maps onto the layer's)."""
    model = _mlp()
    x = torch.randn(3, 5, generator=_gen(9), dtype=torch.float64) * 2
    base = torch.randn(1, 5, generator=_gen(10), dtype=torch.float64)
    got = layer_gradient_shap(model, x, "0", base, [0, 1, 2], n_samples=4000, seed=2)
    lig = layer_integrated_gradients(model, x, "0", [0, 1, 2], baselines=base[0])
    assert float((got - lig).norm() / lig.norm()) < 0.03
    few = layer_gradient_shap(model, x, "0", base, [0, 1, 2], n_samples=2, seed=2)
    assert float((few - lig).norm() / lig.norm()) > 0.03


def test_layer_version_credits_a_layer_read_linearly_with_weight_times_change() -> None:
    model = _mlp()
    x = torch.randn(2, 5, generator=_gen(11), dtype=torch.float64)
    refs = torch.randn(3, 5, generator=_gen(12), dtype=torch.float64)
    got = layer_gradient_shap(model, x, "1", refs[:1], 1, seed=0)  # Tanh output, read by a Linear
    with torch.no_grad():
        change = model[:2](x) - model[:2](refs[:1])
    torch.testing.assert_close(got, model[2].weight.detach()[1] * change)


def test_layer_version_bad_arguments() -> None:
    model, x, refs = _mlp(), torch.zeros(2, 5, dtype=torch.float64), torch.zeros(3, 5)
    with pytest.raises(ValueError, match="layer"):
        layer_gradient_shap(model, x, "7", refs.double(), 0)
    with pytest.raises(ValueError, match="batch_dim"):
        layer_gradient_shap(model, x, "1", refs.double(), 0, batch_dim=-1)
    with pytest.raises(ValueError, match="on axis 1"):
        layer_gradient_shap(model, x, "1", refs.double(), 0, batch_dim=1)
    with pytest.raises(ValueError, match="n_samples"):
        layer_gradient_shap(model, x, "1", refs.double(), 0, n_samples=0)
