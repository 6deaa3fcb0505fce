"""Random nets with bandlimited hidden weights."""

import pytest
import torch

from neuronkit.theory.bandlimited import (
    ApproximationCurve,
    BandlimitedRandomNet,
    approximation_curve,
    draw_bandlimited_weights,
    relative_l2_error,
)


def test_weights_lie_in_the_band_and_are_seeded() -> None:
    a, b = draw_bandlimited_weights(500, 3, 2.5, bias_band=0.5, seed=0)
    assert a.shape == (500, 3)
    assert b.shape == (500,)
    assert float(a.abs().max()) <= 2.5
    assert float(b.abs().max()) <= 0.5
    assert float(a.abs().max()) > 2.0  # actually spread over the band
    a2, _ = draw_bandlimited_weights(500, 3, 2.5, bias_band=0.5, seed=0)
    assert torch.equal(a, a2)


def test_fit_is_the_ridge_solution() -> None:
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    y = torch.sin(3 * x[:, 0])
    net = BandlimitedRandomNet(20, 4.0, ridge=1e-3, seed=1).fit(x, y)
    h = net.features(x)
    grad = h.T @ (h @ net.coef_ - y) / 50 + 1e-3 * net.coef_  # type: ignore[operator]
    assert float(grad.abs().max()) < 1e-8
    assert net.predict(x).shape == (50,)


def test_wide_band_fits_and_narrow_band_has_a_floor_under_a_ridge() -> None:
    x = torch.linspace(-1, 1, 300, dtype=torch.float64)[:, None]
    y = torch.sin(20 * x[:, 0])
    curve = approximation_curve(
        x, y, x, y, bands=[4.0, 40.0], widths=[400], repeats=1, ridge=1e-6, seed=0
    )
    err = curve.median()
    assert err.shape == (2, 1)
    assert float(err[0, 0]) > 0.3
    assert float(err[1, 0]) < 0.05


def test_relative_error() -> None:
    assert relative_l2_error(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])) == 0.0
    assert relative_l2_error([0.0, 0.0], [3.0, 4.0]) == pytest.approx(1.0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="width"):
        BandlimitedRandomNet(0, 1.0)
    with pytest.raises(ValueError, match="band"):
        BandlimitedRandomNet(5, -1.0)
    with pytest.raises(ValueError, match="activation"):
        BandlimitedRandomNet(5, 1.0, activation="swish")
    with pytest.raises(RuntimeError, match="fit"):
        BandlimitedRandomNet(5, 1.0).predict(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="y must"):
        BandlimitedRandomNet(5, 1.0).fit(torch.zeros(4, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        BandlimitedRandomNet(5, 1.0).fit(torch.full((4, 1), float("nan")), torch.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        relative_l2_error(torch.zeros(3), torch.ones(2))


def test_no_ridge_is_the_minimum_norm_least_squares_fit() -> None:
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(40, 2, generator=g, dtype=torch.float64) - 1
    y = torch.sign(x[:, 0] * x[:, 1]) + 0.1 * torch.randn(40, generator=g, dtype=torch.float64)
    net = BandlimitedRandomNet(1000, 3.0, ridge=0.0, seed=0).fit(x, y)  # more features than rows
    ref = torch.linalg.pinv(net.features(x)) @ y
    assert torch.allclose(net.coef_, ref, rtol=1e-6, atol=1e-8)


def test_median_of_an_even_number_of_repeats_averages_the_middle_two() -> None:
    errors = torch.tensor([[[0.1, 0.3]], [[0.4, 0.2]]], dtype=torch.float64)
    curve = ApproximationCurve(bands=[1.0, 2.0], widths=[10], errors=errors)
    assert torch.allclose(curve.median(), torch.tensor([[0.2], [0.3]], dtype=torch.float64))


def test_bands_and_widths_may_be_arrays_or_tensors_and_fit_needs_samples() -> None:
    import numpy as np

    x = torch.linspace(-1, 1, 30, dtype=torch.float64)[:, None]
    y = torch.sin(3 * x[:, 0])
    kw = {"repeats": 1, "seed": 0}
    ref = approximation_curve(x, y, x, y, bands=[1.0, 2.0], widths=[10, 20], **kw)
    for bands, widths in (
        (np.array([1.0, 2.0]), np.array([10, 20])),  # were "truth value ... ambiguous"
        (torch.tensor([1.0, 2.0]), torch.tensor([10, 20])),
    ):
        got = approximation_curve(x, y, x, y, bands=bands, widths=widths, **kw)
        assert got.bands == ref.bands
        assert got.widths == ref.widths
        assert torch.equal(got.errors, ref.errors)
    with pytest.raises(ValueError, match=r"^bands must be a 1-D sequence"):
        approximation_curve(x, y, x, y, bands=np.ones((2, 2)), widths=[10], **kw)
    with pytest.raises(TypeError, match=r"^widths\[0\] must be an integer"):
        approximation_curve(x, y, x, y, bands=[1.0], widths=np.array([10.5]), **kw)
    with pytest.raises(ValueError, match=r"^x must hold at least one sample"):
        BandlimitedRandomNet(10, 1.0).fit(torch.zeros(0, 1), torch.zeros(0))  # was NaN weights


def _sine_task() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(200, 1, generator=g, dtype=torch.float64) - 1
    return x, torch.sin(8 * x[:, 0])


def test_score_is_r2_so_model_selection_picks_the_best_band() -> None:
    # score was the relative L2 error (lower is better): GridSearchCV, which maximizes, chose the
    # band that cannot fit the target (0.5: error 0.96) over the one that fits it (20: 0.015)
    from sklearn.base import is_regressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV

    x, y = _sine_task()
    search = GridSearchCV(BandlimitedRandomNet(100, 1.0, seed=0), {"band": [0.5, 20.0]}, cv=3)
    search.fit(x.numpy(), y.numpy())
    assert search.best_params_ == {"band": 20.0}
    net = BandlimitedRandomNet(100, 20.0, seed=0)
    assert is_regressor(net)
    net.fit(x, y)
    assert net.score(x, y) == pytest.approx(r2_score(y.numpy(), net.predict(x).numpy()))
    assert net.score(x, y) > 0.99
    assert net.relative_error(x, y) == relative_l2_error(net.predict(x), y)
    assert net.relative_error(x, y) < 0.05


def test_unfitted_net_is_not_fitted_and_set_params_keeps_the_fit() -> None:
    # __init__ created coef_ = None: check_is_fitted passed on an unfitted net, and set_params
    # (which reruns __init__) threw the fit away ("call fit before predict")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    x, y = _sine_task()
    net = BandlimitedRandomNet(50, 10.0, seed=0).fit(x, y)
    pred = net.predict(x)
    net.set_params(band=1.0, width=7, activation="cos", seed=3)
    assert torch.equal(net.predict(x), pred)  # the fitted model, until the next fit
    check_is_fitted(net)
    assert net.activation_ == "tanh"
    assert net.n_features_in_ == 1
    unfitted = BandlimitedRandomNet(50, 10.0, seed=0)
    with pytest.raises(NotFittedError):
        check_is_fitted(unfitted)
    with pytest.raises(NotFittedError, match="fit"):
        unfitted.predict(x)
    with pytest.raises(RuntimeError, match="fit"):  # as before, for callers catching it
        unfitted.features(x)
    assert net.fit(x, y).predict(x).shape == pred.shape
    assert net.activation_ == "cos"
    assert net.coef_.shape == (7,)
