import itertools

import pytest
import torch
from torch import nn

from neuronkit.interpretability import shapley_value_sampling, shapley_values


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(3, 4, generator=_gen(1), dtype=torch.float64)
BASE = torch.randn(4, generator=_gen(2), dtype=torch.float64)


def _by_permutations(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Shapley values by the definition: marginal gains averaged over all 4! orders."""
    values = torch.zeros(4, dtype=torch.float64)
    orders = list(itertools.permutations(range(4)))
    with torch.no_grad():
        for order in orders:
            current = BASE.clone()
            before = model(current[None])[0, target]
            for i in order:
                current[i] = x[i]
                after = model(current[None])[0, target]
                values[i] += after - before
                before = after
    return values / len(orders)


def test_exact_values_follow_the_definition() -> None:
    model = _mlp()
    got = shapley_values(model, X, 1, baselines=BASE, batch_size=5)
    expected = torch.stack([_by_permutations(model, x, 1) for x in X])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_an_interaction_is_split_equally() -> None:
    product = lambda v: v[:, 0] * v[:, 1]  # noqa: E731
    x = torch.tensor([[2.0, 3.0], [-1.0, 4.0]], dtype=torch.float64)
    expected = (x[:, :1] * x[:, 1:]).expand(2, 2) / 2
    torch.testing.assert_close(shapley_values(product, x), expected)
    # each sampled order gives the whole product to the feature added second
    sampled = shapley_value_sampling(product, x, n_samples=5, seed=0)
    counts = sampled[0] / 6 * 5  # how many of the 5 orders put each feature second
    torch.testing.assert_close(counts, counts.round())
    assert counts.sum() == 5


def test_a_linear_model_gives_weight_times_difference() -> None:
    model = nn.Linear(4, 2).double()
    expected = model.weight.detach()[0] * (X - BASE)
    torch.testing.assert_close(shapley_values(model, X, 0, baselines=BASE), expected)
    got = shapley_value_sampling(model, X, 0, baselines=BASE, n_samples=2, seed=0)
    torch.testing.assert_close(got, expected)


def test_sampling_sums_to_the_output_difference_and_converges() -> None:
    model = _mlp()
    with torch.no_grad():
        difference = model(X)[:, 0] - model(BASE[None])[0, 0]
    few = shapley_value_sampling(model, X, 0, baselines=BASE, n_samples=2, seed=3)
    torch.testing.assert_close(few.sum(1), difference)
    exact = shapley_values(model, X, 0, baselines=BASE)
    many = shapley_value_sampling(model, X, 0, baselines=BASE, n_samples=3000, seed=3)
    assert float((many - exact).abs().max()) < 0.01 * float(exact.abs().max())
    assert float((few - exact).abs().max()) > 0.01 * float(exact.abs().max())


def test_groups_of_entries_share_a_value() -> None:
    model = _mlp()
    mask = torch.tensor([[0, 0, 1, 1], [1, 0, 0, 1], [0, 1, 1, 0]])  # one grouping per example
    got = shapley_values(model, X, 0, feature_mask=mask, baselines=BASE)
    for row, m in zip(got, mask, strict=True):
        assert torch.equal(row[m == 0], row[m == 0][:1].expand(2))
    with torch.no_grad():  # two features: phi_0 = (f(0) - f({}) + f(01) - f(1)) / 2
        f = lambda keep: model(torch.where(keep, X, BASE))[:, 0]  # noqa: E731
        g0 = mask == 0
        phi0 = (f(g0) - f(torch.zeros_like(g0)) + f(torch.ones_like(g0)) - f(~g0)) / 2
    torch.testing.assert_close(got[g0].view(3, 2)[:, 0], phi0)


def test_seeds_repeat_and_the_global_generator_is_captums_source() -> None:
    model = _mlp()
    state = torch.random.get_rng_state()
    first = shapley_value_sampling(model, X, 0, n_samples=3, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, shapley_value_sampling(model, X, 0, n_samples=3, generator=_gen(4)))
    torch.manual_seed(4)  # no seed: torch's global generator, as Captum's randperm
    assert torch.equal(first, shapley_value_sampling(model, X, 0, n_samples=3))


def test_errors_name_the_argument() -> None:
    model = nn.Linear(20, 2)
    x = torch.zeros(1, 20)
    with pytest.raises(ValueError, match="20 features: exact Shapley values need 2"):
        shapley_values(model, x, 0)
    with pytest.raises(ValueError, match="n_samples"):
        shapley_value_sampling(model, x, 0, n_samples=0)
    with pytest.raises(ValueError, match="feature_mask must broadcast"):
        shapley_values(model, x, 0, feature_mask=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="inputs must be"):
        shapley_value_sampling(lambda v: v, torch.zeros(3), n_samples=1)
