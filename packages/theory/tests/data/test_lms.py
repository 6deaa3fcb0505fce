"""LMS data (linear + multi-slab) generator."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory.data.lms import AUTHORS_SLAB_WEIGHTS, lms_data


def _centres(k: int, gap: float = 0.1) -> torch.Tensor:
    """Slab centres of the authors' geometry: k slabs and k - 1 gaps tiling [-1, 1]."""
    width = (2.0 - (k - 1) * gap) / k
    return -1.0 + width / 2 + (width + gap) * torch.arange(k, dtype=torch.float64)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 8), st.sampled_from([3, 5, 7]), st.integers(0, 99))
def test_each_feature_alone_predicts_the_label(dim: int, k: int, seed: int) -> None:
    data = lms_data(400, dim, num_slabs=k, seed=seed)
    y, z = data.y, data.z
    assert bool(((z[:, 0] > 0).long() == y).all())  # linear coordinate
    centers = _centres(k).float()
    for j in data.slab_coordinates:
        slab = (z[:, j, None] - centers).abs().argmin(dim=1)
        assert bool(((slab % 2 == 0).long() == y).all())  # even slabs carry label 1
    assert float(z[:, 0].abs().max()) <= 1.0 + 1e-6
    assert float(z[:, 1:].abs().max()) <= 1.0 + 1e-6  # the slabs tile [-1, 1]
    assert float(z[:, 0].abs().min()) >= 0.05 - 1e-6  # linear margin 0.1


def test_slabs_have_the_authors_widths_and_tile_minus_one_to_one() -> None:
    # scripts/gendata.py get_slab_width (data width 1, slab margin 0.1 on each side): k slabs of
    # width (2 - (k - 1) 0.2) / k separated by gaps of 0.2, spanning [-1, 1] (5 slabs: 0.24)
    for k in (5, 7):
        data = lms_data(20_000, 3, num_slabs=k, slab_margin=0.2, seed=0)
        values = data.z[:, 1:].double().reshape(-1).sort().values
        assert -1.0 <= float(values[0]) < -0.99
        assert 0.99 < float(values[-1]) <= 1.0
        diffs = values[1:] - values[:-1]
        cut = (diffs > 0.1).nonzero().flatten()
        assert len(cut) == k - 1
        assert torch.allclose(diffs[cut], torch.full((k - 1,), 0.2, dtype=torch.float64), atol=2e-3)
        starts = torch.cat([values[:1], values[cut + 1]])
        ends = torch.cat([values[cut], values[-1:]])
        width = torch.full((k,), (2.0 - (k - 1) * 0.2) / k, dtype=torch.float64)
        assert torch.allclose(ends - starts, width, atol=2e-3)


def test_noisy_linear_coordinate_and_rotation() -> None:
    data = lms_data(5000, 4, linear_noise=0.1, rotate=True, seed=1)
    acc_linear = float(((data.z[:, 0] > 0).long() == data.y).float().mean())
    assert abs(acc_linear - 0.9) < 0.02
    assert torch.equal(data.linear_flipped, (data.z[:, 0] > 0).long() != data.y)
    w = data.rotation
    assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
    assert torch.allclose(data.x, data.z @ w, atol=1e-5)
    test = lms_data(10, 4, rotation=w, seed=2)
    assert torch.equal(test.rotation, w)
    assert abs(float(data.y.float().mean()) - 0.5) < 0.03


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="num_slabs"):
        lms_data(10, 3, num_slabs=4)
    with pytest.raises(ValueError, match="dim"):
        lms_data(10, 1)
    with pytest.raises(ValueError, match="n"):
        lms_data(0, 3)
    with pytest.raises(ValueError, match="linear_noise"):
        lms_data(10, 3, linear_noise=0.5)
    with pytest.raises(ValueError, match="slab_margin"):
        lms_data(10, 3, num_slabs=5, slab_margin=0.5)
    with pytest.raises(ValueError, match="orthogonal"):
        lms_data(10, 2, rotation=torch.ones(2, 2))


@pytest.mark.parametrize(
    ("k", "label0", "label1"),
    [
        (5, [0.5, 0.5], [1 / 8, 3 / 4, 1 / 8]),
        (7, [1 / 4, 1 / 2, 1 / 4], [1 / 16, 7 / 16, 7 / 16, 1 / 16]),
    ],
)
def test_authors_slab_weights(k: int, label0: list, label1: list) -> None:
    d = lms_data(100_000, 2, num_slabs=k, slab_weights=AUTHORS_SLAB_WEIGHTS[k], seed=0)
    slab = (d.z[:, 1:].double() - _centres(k)).abs().argmin(1).squeeze()
    # label 0 lives on the odd slabs, label 1 on the even ones
    for label, first, share in ((0, 1, label0), (1, 0, label1)):
        counts = torch.bincount(slab[d.y == label], minlength=k)[first::2].double()
        assert torch.allclose(counts / counts.sum(), torch.tensor(share).double(), atol=0.01)


def test_uniform_slab_weights_keep_the_default_stream() -> None:
    a = lms_data(500, 4, num_slabs=7, seed=3)
    b = lms_data(500, 4, num_slabs=7, slab_weights=[1.0] * 7, seed=3)
    assert torch.equal(a.z, b.z)
    with pytest.raises(ValueError, match="slab_weights"):
        lms_data(10, 3, num_slabs=5, slab_weights=[1.0] * 4)
    with pytest.raises(ValueError, match="slab_weights"):
        lms_data(10, 3, num_slabs=5, slab_weights=[1.0, 0.0, 1.0, 1.0, 1.0])
