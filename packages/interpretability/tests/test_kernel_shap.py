import pytest
import torch
from torch import nn

from neuronkit.interpretability import kernel_shap, shapley_values


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 10), nn.Tanh(), nn.Linear(10, 3)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(3, 5, generator=_gen(1), dtype=torch.float64)
T = torch.tensor([0, 1, 2])


def test_a_linear_model_gives_weight_times_difference() -> None:
    model = nn.Linear(5, 3).double()
    base = torch.randn(5, generator=_gen(2), dtype=torch.float64)
    got = kernel_shap(model, X, T, baselines=base, n_samples=40, seed=0)
    torch.testing.assert_close(got, model.weight.detach()[T] * (X - base))


def test_the_fit_converges_to_the_shapley_values_and_is_efficient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(3, 8, generator=_gen(1), dtype=torch.float64) * 2
    exact = shapley_values(model, x, T)
    scale = float(exact.abs().max())
    # 20000 coalitions: within 0.5% (seed 2); uniform coalition sizes instead of the
    # kernel's, or one feature too many in each, stay 1.7% and 3% off
    many = kernel_shap(model, x, T, n_samples=20000, seed=2)
    assert float((many - exact).abs().max()) < 0.01 * scale
    few = kernel_shap(model, x, T, n_samples=12, seed=1)
    assert float((few - exact).abs().max()) > 0.01 * scale
    with torch.no_grad():  # the full and the empty coalition pin the sum
        difference = (model(x) - model(torch.zeros(1, 8, dtype=torch.float64)))[torch.arange(3), T]
    torch.testing.assert_close(few.sum(1), difference, rtol=0, atol=1e-5)


def test_groups_share_a_coefficient_and_one_feature_takes_the_whole_difference() -> None:
    model = _mlp()
    mask = torch.tensor([0, 0, 1, 1, 1])
    got = kernel_shap(model, X, T, feature_mask=mask, n_samples=30, seed=2)
    assert torch.equal(got[:, 0], got[:, 1])
    assert torch.equal(got[:, 2], got[:, 4])
    one = kernel_shap(model, X, T, feature_mask=torch.zeros(5, dtype=torch.long), seed=0)
    with torch.no_grad():
        difference = (model(X) - model(torch.zeros(1, 5, dtype=torch.float64)))[torch.arange(3), T]
    torch.testing.assert_close(one[:, 0], difference, atol=1e-6, rtol=0)


def test_seeds_repeat_and_leave_the_global_generator_alone() -> None:
    model = _mlp()
    state = torch.random.get_rng_state()
    first = kernel_shap(model, X, T, n_samples=20, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, kernel_shap(model, X, T, n_samples=20, generator=_gen(3)))
    assert not torch.equal(first, kernel_shap(model, X, T, n_samples=20, seed=4))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        kernel_shap(_mlp(), X, T, n_samples=1)
    with pytest.raises(ValueError, match="feature_mask must hold feature indices >= 0"):
        kernel_shap(_mlp(), X, T, feature_mask=torch.full((5,), -1))


def test_non_finite_inputs_or_outputs_are_named_before_the_fit() -> None:
    """A NaN in the outputs would reach the least-squares solve (a LAPACK argument error)."""
    nan = X.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        kernel_shap(_mlp(), nan, T, n_samples=10, seed=0)
    model = _mlp()
    with torch.no_grad():
        model[0].bias[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite outputs"):
        kernel_shap(model, X, T, n_samples=10, seed=0)
