"""Tests of the multifaceted-digits data set."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.data.facets import multifaceted_digits


def test_structure_and_labels() -> None:
    data = multifaceted_digits((0, 1), (2, 3), size=20, digit_size=16, max_shift=1, seed=0)
    n = len(data)
    assert data.x.shape == (n, 1, 20, 20)
    assert data.x.min() >= 0
    assert data.x.max() <= 1
    assert data.n_classes == 3
    assert data.n_facets == 2
    assert set(data.y.tolist()) == {0, 1, 2}
    # the facet class is exactly the union of the facet digits, facets follow the digits
    assert torch.equal(data.y == 0, (data.digit == 0) | (data.digit == 1))
    assert torch.equal(
        data.facet[data.digit == 0], torch.zeros(int((data.digit == 0).sum()), dtype=torch.long)
    )
    assert (data.facet[data.digit == 1] == 1).all()
    assert (data.facet[data.y != 0] == -1).all()
    assert (data.y[data.digit == 3] == 2).all()
    # the canvas border outside the largest shift is empty
    assert data.x[..., :1, :].abs().sum() == 0
    assert data.x[..., -1:, :].abs().sum() == 0


def test_seeded_and_facets_differ() -> None:
    a = multifaceted_digits(seed=1, noise=0.1)
    b = multifaceted_digits(seed=1, noise=0.1)
    c = multifaceted_digits(seed=2, noise=0.1)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.allclose(a.x, c.x)
    means = multifaceted_digits(max_shift=0).facet_mean_images()
    assert means.shape == (2, 1, 20, 20)
    assert (means[0] - means[1]).abs().sum() > 10  # a ring and a bar


def test_subset() -> None:
    data = multifaceted_digits((0, 1, 7), (2,))
    sub = data.subset(data.y == 0)
    assert len(sub) == int((data.y == 0).sum())
    assert (sub.y == 0).all()
    assert sub.n_facets == 3
    assert set(sub.facet.tolist()) == {0, 1, 2}
    assert len(data.subset(torch.tensor([0, 2]))) == 2
    with pytest.raises(ValueError, match="index"):
        data.subset(torch.tensor([0.5]))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="facet_digits"):
        multifaceted_digits((0,), (1,))
    with pytest.raises(ValueError, match="disjoint"):
        multifaceted_digits((0, 1), (1, 2))
    with pytest.raises(ValueError, match="other_digits\\[0\\]"):
        multifaceted_digits((0, 1), (12,))
    with pytest.raises(ValueError, match="max_shift"):
        multifaceted_digits(size=16, digit_size=16, max_shift=1)
    with pytest.raises(TypeError, match="facet_digits"):
        multifaceted_digits("01", (2,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise"):
        multifaceted_digits(noise=-0.1)
