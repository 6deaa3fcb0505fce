"""The authors' margin-band noise model for the noisy linear coordinate (Shah et al., L^MS-7)."""

import dataclasses

import pytest
import torch

from neuronkit.theory.data.lms import lms_data
from neuronkit.theory.simplicity import margin_band_noise


def test_band_noise_moves_exactly_the_fraction_into_the_band() -> None:
    data = lms_data(5000, 6, num_slabs=7, linear_margin=0.2, slab_margin=0.2, rotate=True, seed=0)
    before = dataclasses.replace(data, x=data.x.clone(), z=data.z.clone())
    noisy = margin_band_noise(data, 0.1, band=0.1, seed=1)
    # input untouched
    assert torch.equal(data.x, before.x)
    assert torch.equal(data.z, before.z)
    moved = noisy.z[:, 0] != data.z[:, 0]
    assert int(moved.sum()) == 500  # round(0.1 * 5000), drawn without replacement
    assert float(noisy.z[moved, 0].abs().max()) < 0.1  # inside the margin band
    assert float(noisy.z[~moved, 0].abs().min()) >= 0.1 - 1e-6  # the rest keep the gap
    # only the linear coordinate of the moved rows changed; x follows z, other rows bit for bit
    assert torch.equal(noisy.z[:, 1:], data.z[:, 1:])
    assert torch.equal(noisy.y, data.y)
    assert torch.equal(noisy.x[~moved], data.x[~moved])
    assert torch.allclose(noisy.x, noisy.z @ noisy.rotation, atol=1e-5)
    # a band point carries no label information: the linear coordinate alone predicts ~95%
    linear_acc = float(((noisy.z[:, 0] > 0).long() == noisy.y).float().mean())
    assert abs(linear_acc - 0.95) < 0.015
    assert torch.equal(noisy.linear_flipped, (noisy.z[:, 0] > 0).long() != noisy.y)


def test_band_noise_is_seeded_and_zero_fraction_is_identity() -> None:
    data = lms_data(300, 4, seed=0)
    a = margin_band_noise(data, 0.2, band=0.05, seed=3)
    b = margin_band_noise(data, 0.2, band=0.05, seed=3)
    assert torch.equal(a.z, b.z)
    assert torch.equal(a.x, b.x)
    same = margin_band_noise(data, 0.0, band=0.05, seed=3)
    assert torch.equal(same.z, data.z)
    assert torch.equal(same.x, data.x)


def test_band_noise_bad_inputs() -> None:
    data = lms_data(20, 3, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        margin_band_noise(data, 1.0, band=0.1)
    with pytest.raises(ValueError, match="fraction"):
        margin_band_noise(data, -0.1, band=0.1)
    with pytest.raises(ValueError, match="band"):
        margin_band_noise(data, 0.1, band=0.0)
    with pytest.raises(TypeError, match="data"):
        margin_band_noise(data.x, 0.1, band=0.1)  # type: ignore[arg-type]
