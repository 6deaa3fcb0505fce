"""The theory.bandlimited reproduction fits the output layer by plain least squares.

The paper's random net trains only the output weights "by loss minimization"; a ridge penalty
(1e-6 in earlier versions) is what made the narrow-band tanh floor: without it, tanh features
with |a| <= omega / 4 fit sin(omega x) almost exactly.
"""

import torch

from neuronkit.theory.bandlimited import BandlimitedRandomNet
from neuronkit.theory.reproductions.bandlimited import RIDGE


def _task() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.linspace(-1, 1, 300, dtype=torch.float64)[:, None]
    g = torch.Generator().manual_seed(0)
    xt = 2 * torch.rand(500, 1, generator=g, dtype=torch.float64) - 1
    return x, torch.sin(20 * x[:, 0]), xt, torch.sin(20 * xt[:, 0])


def test_reproduction_fits_output_weights_by_unpenalized_least_squares() -> None:
    assert RIDGE == 0.0


def test_narrow_band_tanh_floor_comes_from_the_ridge_not_the_band() -> None:
    x, y, xt, yt = _task()
    least_squares = BandlimitedRandomNet(400, 5.0, ridge=RIDGE, seed=0).fit(x, y)
    ridged = BandlimitedRandomNet(400, 5.0, ridge=1e-6, seed=0).fit(x, y)
    assert least_squares.relative_error(xt, yt) < 1e-6  # band omega / 4, yet no floor
    assert ridged.relative_error(xt, yt) > 0.5  # the old protocol's "floor"


def test_a_strictly_bandlimited_activation_keeps_a_floor_under_least_squares() -> None:
    x, y, xt, yt = _task()
    net = BandlimitedRandomNet(400, 5.0, activation="cos", ridge=0.0, seed=0).fit(x, y)
    assert net.relative_error(xt, yt) > 0.3
