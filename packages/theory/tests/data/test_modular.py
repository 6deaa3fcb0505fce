"""Modular arithmetic datasets with corrupted labels."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory import modular_arithmetic, one_hot_pairs


@pytest.mark.parametrize(
    ("op", "fn"),
    [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b)],
)
def test_labels_are_the_operation_mod_p(op: str, fn) -> None:
    data = modular_arithmetic(13, operation=op, seed=0)
    assert data.a.numel() == 169
    assert torch.equal(data.labels, fn(data.a, data.b) % 13)
    assert torch.equal(data.y_test, data.labels[data.test_idx])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.floats(0.05, 0.95), st.floats(0.0, 1.0), st.integers(0, 99))
def test_split_and_corruption(p: int, frac: float, xi: float, seed: int) -> None:
    data = modular_arithmetic(p, train_fraction=frac, corruption=xi, seed=seed)
    n_train = data.train_idx.numel()
    assert n_train + data.test_idx.numel() == p * p
    assert set(data.train_idx.tolist()).isdisjoint(data.test_idx.tolist())
    assert int(data.corrupted.sum()) == round(xi * n_train)
    true = data.labels[data.train_idx]
    assert bool((data.train_labels[data.corrupted] != true[data.corrupted]).all())
    assert torch.equal(data.train_labels[~data.corrupted], true[~data.corrupted])
    assert bool(((data.train_labels >= 0) & (data.train_labels < p)).all())


def test_inputs_are_two_one_hot_blocks_and_seeded() -> None:
    data = modular_arithmetic(7, train_fraction=0.5, corruption=0.2, seed=3)
    x = data.x_train
    assert x.shape == (data.train_idx.numel(), 14)
    assert torch.equal(x.sum(dim=1), torch.full((x.shape[0],), 2.0))
    assert torch.equal(x[:, :7].argmax(1), data.a[data.train_idx])
    again = modular_arithmetic(7, train_fraction=0.5, corruption=0.2, seed=3)
    assert torch.equal(again.train_labels, data.train_labels)
    assert torch.equal(again.test_idx, data.test_idx)
    assert data.corruption == pytest.approx(data.corrupted.float().mean().item())


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: modular_arithmetic(1), ValueError, "p"),
        (lambda: modular_arithmetic(0), ValueError, "p"),
        (lambda: modular_arithmetic(7.0), TypeError, "p"),
        (lambda: modular_arithmetic(7, operation="div"), ValueError, "operation"),
        (lambda: modular_arithmetic(7, train_fraction=0.0), ValueError, "train_fraction"),
        (lambda: modular_arithmetic(7, train_fraction=1.0), ValueError, "train_fraction"),
        (lambda: modular_arithmetic(7, corruption=1.5), ValueError, "corruption"),
        (lambda: modular_arithmetic(7, seed=-1), ValueError, "seed"),
        (lambda: one_hot_pairs(torch.tensor([0, 7]), torch.tensor([0, 1]), 7), ValueError, "a"),
        (lambda: one_hot_pairs(torch.tensor([0.0]), torch.tensor([0]), 7), TypeError, "a"),
        (lambda: one_hot_pairs(torch.tensor([0]), torch.tensor([0, 1]), 7), ValueError, "a and b"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    with pytest.raises(exc, match=rf"^{name} "):
        call()
