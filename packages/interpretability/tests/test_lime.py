import pytest
import torch
from torch import nn

from neuronkit.interpretability import lime
from neuronkit.interpretability.lime import _similarities


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


X = torch.randn(3, 6, generator=_gen(1), dtype=torch.float64)
T = torch.tensor([0, 1, 2])


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_a_linear_model_gives_weight_times_difference(distance) -> None:
    model = nn.Linear(6, 3).double()
    base = torch.randn(6, generator=_gen(2), dtype=torch.float64)
    got = lime(model, X, T, baselines=base, alpha=1e-9, distance=distance, n_samples=60, seed=0)
    # the Lasso stops at its tolerance (1e-4): within 1e-3 of the exact coefficients
    torch.testing.assert_close(got, model.weight.detach()[T] * (X - base), rtol=0, atol=1e-3)
    shrunk = lime(model, X, T, baselines=base, distance=distance, n_samples=60, seed=0)
    assert shrunk.abs().sum() < got.abs().sum()  # alpha = 0.01 shrinks the coefficients


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("shared_mask", [True, False])
def test_proximities_equal_those_of_the_perturbed_inputs(distance, shared_mask) -> None:
    base = torch.randn(1, 6, generator=_gen(3), dtype=torch.float64)
    mask = torch.tensor([[0, 0, 1, 2, 2, 3]])
    if not shared_mask:
        mask = torch.stack([mask[0], mask[0].flip(0), mask[0].roll(1)])
    z = torch.bernoulli(torch.full((3, 5, 4), 0.5), generator=_gen(4))  # [B, n, M]
    got = _similarities(X, base, mask, z, distance, 0.7)
    kept = z.gather(2, mask.expand(3, 6).unsqueeze(1).expand(3, 5, 6))  # [B, n, D]
    perturbed = torch.where(kept == 1, X[:, None], base)
    if distance == "cosine":
        d = 1 - torch.cosine_similarity(X[:, None].expand_as(perturbed), perturbed, dim=2)
    else:
        d = (X[:, None] - perturbed).norm(dim=2)
    torch.testing.assert_close(got, torch.exp(-(d**2) / (2 * 0.7**2)).T)


def test_seeds_repeat_and_leave_the_global_generator_alone() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    state = torch.random.get_rng_state()
    first = lime(model, X, T, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, lime(model, X, T, generator=_gen(5)))
    assert not torch.equal(first, lime(model, X, T, seed=6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"distance": "manhattan"}, "distance"),
        ({"kernel_width": -1.0}, "kernel_width"),
        ({"n_samples": 0}, "n_samples"),
    ],
)
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        lime(nn.Linear(6, 3).double(), X, T, **kwargs)


def test_non_finite_inputs_or_outputs_are_named_before_the_fit() -> None:
    """A NaN would reach scikit-learn's Lasso, whose message names its own ``y``."""
    model = nn.Linear(6, 3).double()
    nan = X.clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        lime(model, nan, T, seed=0)
    with torch.no_grad():
        model.bias[0] = float("inf")
    with pytest.raises(ValueError, match="non-finite outputs"):
        lime(model, X, T, seed=0)
