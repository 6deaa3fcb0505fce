import pytest
import torch
from torch import nn

from neuronkit.interpretability import feature_permutation


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


X = torch.randn(2, 5, generator=_gen(1), dtype=torch.float64)


def test_two_examples_swap_so_a_linear_model_gives_weight_times_difference() -> None:
    """With two examples the only permutation that is not the identity swaps them."""
    model = nn.Linear(5, 3).double()
    got = feature_permutation(model, X, [0, 2], seed=0)
    w = model.weight.detach()[[0, 2]]
    torch.testing.assert_close(got, w * (X - X.flip(0)))


def test_each_feature_draws_its_own_permutation_and_groups_share_one() -> None:
    model = nn.Linear(4, 1).double()
    x = torch.arange(24, dtype=torch.float64).view(6, 4)  # row r: 4 r + column
    mask = torch.tensor([0, 0, 1, 2])
    got = feature_permutation(model, x, feature_mask=mask, seed=3, batch_size=1)
    w = model.weight.detach()[0]
    assert torch.equal(got[:, 0], got[:, 1])  # one feature: one drop for its entries
    rows = torch.arange(6, dtype=torch.float64)
    # a feature moved from the rows p(r): its drop is 4 (r - p(r)) times its weights' sum
    orders = [
        (rows - got[:, col] / (4 * w[cols].sum())).round().long()
        for col, cols in ((0, [0, 1]), (2, [2]), (3, [3]))
    ]
    for order in orders:  # a permutation of the rows, never the identity
        assert sorted(order.tolist()) == list(range(6))
        assert not torch.equal(order, torch.arange(6))
    assert not torch.equal(orders[1], orders[2])  # each feature draws its own


def test_seeds_repeat_and_batch_size_does_not_change_the_result() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    x = torch.randn(6, 5, generator=_gen(2), dtype=torch.float64)
    a = feature_permutation(model, x, 1, seed=4)
    b = feature_permutation(model, x, 1, seed=4, batch_size=7)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, feature_permutation(model, x, 1, seed=5))


def test_one_example_cannot_be_permuted() -> None:
    with pytest.raises(ValueError, match="at least 2 examples"):
        feature_permutation(nn.Linear(5, 2), torch.zeros(1, 5), 0)


def test_a_seeded_call_leaves_the_global_generator() -> None:
    model = nn.Linear(5, 2).double()
    state = torch.get_rng_state()
    feature_permutation(model, X, 1, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
