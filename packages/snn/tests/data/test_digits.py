"""The bundled digits loader: shapes, scaling, stratified seeded split."""

import pytest
import torch

from neuronkit.snn.data import Digits, load_digits


def test_shapes_range_and_dtypes() -> None:
    d = load_digits()
    assert isinstance(d, Digits)
    assert d.x_train.shape == (1347, 1, 8, 8)
    assert d.x_test.shape == (450, 1, 8, 8)
    assert d.y_train.shape == (1347,)
    assert d.y_test.dtype == torch.long
    assert d.x_train.dtype == torch.float32
    assert d.x_train.min() == 0.0
    assert d.x_train.max() == 1.0
    assert load_digits(flatten=True, dtype=torch.float64).x_test.shape == (450, 64)


def test_split_is_stratified_and_seeded() -> None:
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    total = torch.bincount(torch.cat([a.y_train, a.y_test]), minlength=10).double()
    counts = torch.bincount(a.y_test, minlength=10).double()
    assert torch.all((counts - 0.25 * total).abs() <= 1)  # every class split 3:1
    small = load_digits(test_size=0.1)
    assert len(small.y_test) == 180


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_size": 0.0}, ValueError, "test_size must be > 0"),
        ({"test_size": 1.0}, ValueError, "test_size must be < 1"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"flatten": "yes"}, TypeError, "flatten must be bool"),
        ({"dtype": torch.int64}, ValueError, "dtype must be a floating-point torch dtype"),
        ({"dtype": "float32"}, TypeError, "dtype must be dtype"),
    ],
)
def test_bad_inputs(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_digits(**kwargs)


def test_default_dtype_follows_torch_default() -> None:
    """``dtype=None`` is torch's default dtype: a script that sets float64 gets float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert load_digits().x_train.dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert load_digits().x_train.dtype == previous
