"""Tests of neuronkit.pruning.data.digits."""

import pytest
import torch

from neuronkit.pruning.data import DigitsSplit, load_digits


def test_shapes_split_and_stratification() -> None:
    d = load_digits(0.25, seed=0)
    assert isinstance(d, DigitsSplit)
    assert d.x_train.shape[1:] == (1, 8, 8)
    assert d.x_test.shape[1:] == (1, 8, 8)
    assert d.x_train.dtype == torch.float32
    assert d.y_train.dtype == torch.long
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(len(d.y_test) / 1797 - 0.25) < 0.01
    # every class is held out in (almost) the same proportion
    for c in range(10):
        n_te, n_tr = int((d.y_test == c).sum()), int((d.y_train == c).sum())
        assert abs(n_te / (n_te + n_tr) - 0.25) < 0.02
    assert d.num_classes == 10


def test_normalized_with_training_statistics() -> None:
    d = load_digits(seed=3)
    assert abs(float(d.x_train.mean())) < 1e-5
    assert abs(float(d.x_train.std()) - 1.0) < 1e-4
    raw = load_digits(seed=3, normalize=False)
    assert raw.mean == 0.0
    assert raw.std == 1.0
    assert float(raw.x_train.min()) >= 0.0
    assert float(raw.x_train.max()) <= 1.0
    torch.testing.assert_close((raw.x_test - d.mean) / d.std, d.x_test)


def test_seeded_and_disjoint() -> None:
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)
    # no test image also appears in the training split (digits has no exact duplicates
    # across the pixel grid for more than a handful of images; compare row sets)
    raw = load_digits(seed=1, normalize=False)
    train_rows = {tuple(r.tolist()) for r in raw.x_train.flatten(1)}
    overlap = sum(tuple(r.tolist()) in train_rows for r in raw.x_test.flatten(1))
    assert overlap <= 5


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({"test_fraction": 0.0}, ValueError),
        ({"test_fraction": 1.0}, ValueError),
        ({"test_fraction": "a"}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": 1.5}, TypeError),
        ({"normalize": 1}, TypeError),
    ],
)
def test_bad_inputs(kwargs: dict, err: type[Exception]) -> None:
    with pytest.raises(err, match=next(iter(kwargs))):
        load_digits(**kwargs)
