"""BlockDigits: layout, masks, label independence of the placement."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.data import block_digits, load_digits
from neuronkit.interpretability.data.block_digits import null_patch


def test_load_digits_range_and_relabelling() -> None:
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    x3, y3 = load_digits([7, 3])
    assert set(y3.tolist()) == {0, 1}
    torch.testing.assert_close(x3[y3 == 0][0], x[y == 7][0])


def test_block_layout_and_signal_mask() -> None:
    data = block_digits((0, 1), seed=0)
    assert data.x.shape == (len(data), 1, 16, 8)
    digits, labels = load_digits((0, 1))
    torch.testing.assert_close(data.y, labels)
    mask = data.signal_mask()
    assert mask.shape == data.x.shape
    assert mask.dtype == torch.bool
    assert torch.all(mask.reshape(len(data), -1).sum(1) == 64)
    signal = data.x[mask].reshape(len(data), 1, 8, 8)
    torch.testing.assert_close(signal, digits)
    null = data.x[~mask].reshape(len(data), 8, 8)
    torch.testing.assert_close(null, null_patch().expand(len(data), 8, 8))


def test_placement_is_seeded_and_balanced() -> None:
    a, b = block_digits(seed=1), block_digits(seed=1)
    torch.testing.assert_close(a.signal_top, b.signal_top)
    assert not torch.equal(a.signal_top, block_digits(seed=2).signal_top)
    for c in (0, 1):
        share = a.signal_top[a.y == c].float().mean()
        assert 0.35 < float(share) < 0.65
    sub = a.subset([0, 5, 7])
    assert len(sub) == 3
    assert torch.equal(sub.y, a.y[[0, 5, 7]])
    # a boolean mask selects its rows (it was read as the indices 0 and 1)
    assert torch.equal(a.subset(a.y == 1).y, a.y[a.y == 1])
    assert torch.equal(a.subset((a.y == 1).numpy()).y, a.y[a.y == 1])
    with pytest.raises(ValueError, match="boolean mask"):
        a.subset(torch.tensor([True, False]))
    with pytest.raises(ValueError, match="integer or boolean"):
        a.subset([0.5, 1.5])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"classes": [1, 1]}, ValueError),
        ({"classes": [11]}, ValueError),
        ({"seed": -1}, ValueError),
    ],
)
def test_bad_inputs(kwargs, error) -> None:
    with pytest.raises(error):
        block_digits(**kwargs)
    with pytest.raises(ValueError, match="size"):
        null_patch(2)
    with pytest.raises(ValueError, match="classes"):
        load_digits([12])
