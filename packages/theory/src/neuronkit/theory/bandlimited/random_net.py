"""Shallow random networks with bandlimited (bounded) hidden weights.

Li, Sonoda, Cao, Wang & Liang, "How Powerful are Shallow Neural Networks with Bandlimited Random
Weights?" (ICML 2023). A depth-2 *random net*

    f(x) = (1/sqrt(N)) sum_j c_j sigma(a_j . x + b_j)

freezes the hidden parameters ``(a_j, b_j)`` at random draws and fits only the output weights ``c``
by loss minimization: least squares, optionally with a ridge penalty ``ridge * ||c||^2`` (with the
``1/sqrt(N)`` scaling, the limit ``N -> inf`` is kernel ridge regression with the band's
random-feature kernel). The hidden parameters are drawn from a bounded domain ("bandlimited": a_j ~
U[-band, band]^d, b_j ~ U[-bias_band, bias_band]), so a feature carries the frequencies ``|a_j|``
times those of the activation. For a strictly bandlimited activation (``cos``) that caps the
features' frequencies at ``band``, and a target beyond it keeps an error floor however wide the net
(on a bounded domain only superoscillating combinations with enormous weights could beat it, which
float64 least squares cannot resolve). tanh, sigmoid and the Gaussian are not bandlimited (their
spectra decay but never vanish): least squares can still reach a frequency a few times ``band`` with
larger output weights, and a floor then appears only under a norm penalty (a ridge) or when the
features' spectrum at the target's frequency falls below float64 precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin

from neuronkit.common import EstimatorParams, check_choice, check_number

from .._estimators import check_fitted, check_samples, like_input
from .._utils import Seed, as_float_tensor, check_positive_int, torch_generator

__all__ = [
    "ACTIVATIONS",
    "ApproximationCurve",
    "BandlimitedRandomNet",
    "approximation_curve",
    "draw_bandlimited_weights",
    "relative_l2_error",
]


def _gaussian(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gaussian": _gaussian,
    "relu": torch.relu,
    "cos": torch.cos,
}


def draw_bandlimited_weights(
    width: int,
    dim: int,
    band: float,
    *,
    bias_band: float | None = None,
    seed: int | torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden weights ``a [width, dim] ~ U[-band, band]`` and biases ``b [width] ~ U[-bias_band,
    bias_band]`` (``bias_band`` defaults to ``band``), float64."""
    width = check_positive_int("width", width)
    dim = check_positive_int("dim", dim)
    check_number("band", band, gt=0)
    bias_band = band if bias_band is None else bias_band
    check_number("bias_band", bias_band, ge=0)
    gen = torch_generator(seed)
    a = (2.0 * torch.rand(width, dim, generator=gen, dtype=torch.float64) - 1.0) * band
    b = (2.0 * torch.rand(width, generator=gen, dtype=torch.float64) - 1.0) * bias_band
    return a, b


def relative_l2_error(prediction: Any, target: Any) -> float:
    """``||prediction - target|| / ||target||`` over samples (both ``[n]``; tensors, arrays or
    lists of numbers).

    Raises ``ValueError`` for an all-zero (or empty) ``target``, whose relative error is
    undefined, as :func:`neuronkit.theory.operators.relative_l2` does (it read
    ``||prediction|| / 1e-300``, e.g. 2e300). Both are scaled by one power of two (exact, and
    cancelling in the ratio) that brings ``max |target|`` near 1, so targets near the ends of
    the float range neither overflow (NaN) nor underflow (a ratio of 0 or of rounding)."""
    p = as_float_tensor("prediction", prediction, 1, "[n]")
    t = as_float_tensor("target", target, 1, "[n]")
    if p.shape != t.shape:
        raise ValueError(
            f"prediction and target must have the same shape, got {tuple(p.shape)} and "
            f"{tuple(t.shape)}"
        )
    peak = t.abs().max() if t.numel() else torch.zeros((), dtype=t.dtype)
    if peak == 0:
        raise ValueError(
            "target must have a nonzero norm (the relative error of an all-zero target is "
            f"undefined), got {'an empty target' if t.numel() == 0 else 'all zeros'}"
        )
    # the factor itself stays finite: 2**1022 still brings a subnormal peak above 2**-52
    exponent = (-torch.frexp(peak).exponent).clamp(-1022, 1022)
    factor = torch.ldexp(torch.ones((), dtype=t.dtype), exponent)
    p, t = p * factor, t * factor
    return float(torch.linalg.norm(p - t) / torch.linalg.norm(t))


class BandlimitedRandomNet(RegressorMixin, EstimatorParams, BaseEstimator):  # sklearn regressor
    """A depth-2 random net with bandlimited hidden weights; only the output layer is fitted.

    Args:
        width: hidden units N (``>= 1``).
        band: hidden weights ``a ~ U[-band, band]^d`` (``> 0``).
        bias_band: biases ``b ~ U[-bias_band, bias_band]`` (default ``band``).
        activation: ``"tanh"`` (default), ``"sigmoid"``, ``"gaussian"``, ``"relu"`` or ``"cos"``.
        ridge: penalty on ``||c||^2`` relative to the mean squared error (``>= 0``; default
            1e-6), with features scaled by ``1/sqrt(N)`` so the limit ``N -> inf`` is kernel ridge
            regression with the band's random-feature kernel; ``0`` is the minimum-norm least
            squares fit, the paper's unpenalized loss minimization.
        seed: int or ``torch.Generator`` for the hidden parameters.

    Follows the scikit-learn regressor API: ``fit(x [n, d], y [n])``, ``predict(x) -> [n]``,
    ``score(x, y)`` (the coefficient of determination R^2, higher is better, so that model
    selection such as ``GridSearchCV`` maximizes it), ``get_params()`` / ``set_params()``;
    :meth:`relative_error` gives the relative L2 error (lower is better) that
    :func:`approximation_curve` records.

    Fitted attributes (set by ``fit`` only): ``hidden_weight_ [N, dim]``, ``hidden_bias_ [N]``,
    ``coef_ [N]``, ``activation_`` (the activation the fit used) and ``n_features_in_``.
    ``features`` / ``predict`` use them: a ``set_params`` after ``fit`` takes effect at the next
    ``fit`` (as in scikit-learn).
    """

    def __init__(
        self,
        width: int,
        band: float,
        *,
        bias_band: float | None = None,
        activation: str = "tanh",
        ridge: float = 1e-6,
        seed: int | torch.Generator | None = None,
    ) -> None:
        self.width = check_positive_int("width", width)
        check_number("band", band, gt=0)
        if bias_band is not None:
            check_number("bias_band", bias_band, ge=0)
        check_choice("activation", activation, ACTIVATIONS)
        check_number("ridge", ridge, ge=0)
        self.band = float(band)
        self.bias_band = None if bias_band is None else float(bias_band)
        self.activation = activation
        self.ridge = float(ridge)
        self.seed = seed

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")

    def _features(
        self, x: Any, weight: torch.Tensor, bias: torch.Tensor, activation: str
    ) -> torch.Tensor:
        xt = as_float_tensor("x", x, 2, "[n, dim]")
        if xt.shape[1] != weight.shape[1]:
            raise ValueError(
                f"x must have {weight.shape[1]} columns like the training data, got {xt.shape[1]}"
            )
        z = xt @ weight.T + bias
        return ACTIVATIONS[activation](z) / weight.shape[0] ** 0.5

    def _fitted_features(self, x: Any) -> torch.Tensor:
        check_fitted(self, "coef_", "features/predict")
        return self._features(x, self.hidden_weight_, self.hidden_bias_, self.activation_)

    def features(self, x: Any) -> Any:
        """Hidden activations ``sigma(x a^T + b) / sqrt(N)``: ``[n, N]`` (after ``fit``, with the
        fitted hidden layer and activation; a tensor for a tensor ``x``, else an array)."""
        return like_input(x, self._fitted_features(x))

    def fit(self, x: Any, y: Any) -> BandlimitedRandomNet:
        """Draw the hidden layer and solve the ridge least squares for the output weights.

        Args:
            x: ``[n, dim]`` inputs; y: ``[n]`` targets.
        """
        xt = as_float_tensor("x", x, 2, "[n, dim]")
        yt = as_float_tensor("y", y, 1, "[n]")
        if yt.shape[0] != xt.shape[0]:
            raise ValueError(
                f"y must have one target per row of x ({xt.shape[0]}), got {yt.shape[0]}"
            )
        check_samples("x", xt)
        # computed into locals, assigned only at the end: a failed refit leaves the old fit whole
        weight, bias = draw_bandlimited_weights(
            self.width, xt.shape[1], self.band, bias_band=self.bias_band, seed=self.seed
        )
        h = self._features(xt, weight, bias, self.activation)
        if self.ridge == 0:  # minimum-norm least squares: the normal equations may be singular
            coef = torch.linalg.lstsq(h, yt[:, None], driver="gelsd").solution[:, 0]
        else:
            n = xt.shape[0]
            gram = h.T @ h / n + self.ridge * torch.eye(self.width, dtype=torch.float64)
            coef = torch.linalg.solve(gram, h.T @ yt / n)
        self.hidden_weight_, self.hidden_bias_ = weight, bias
        self.activation_ = self.activation
        self.n_features_in_ = int(xt.shape[1])
        self.coef_ = coef
        return self

    def predict(self, x: Any) -> Any:
        """Network outputs ``[n]`` (a tensor for a tensor ``x``, else an array)."""
        return like_input(x, self._fitted_features(x) @ self.coef_)

    def score(self, x: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R^2 of :meth:`predict` on ``(x, y)`` (higher is better;
        1 is a perfect fit), as for every scikit-learn regressor (``sklearn.metrics.r2_score``).
        See :meth:`relative_error` for the relative L2 error."""
        from sklearn.metrics import r2_score

        pred = self._fitted_features(x) @ self.coef_
        target = as_float_tensor("y", y, 1, "[n]")
        if target.shape != pred.shape:
            raise ValueError(
                f"y must have one target per row of x ({pred.shape[0]}), got shape "
                f"{tuple(target.shape)}"
            )
        return float(r2_score(target.numpy(), pred.numpy(), sample_weight=sample_weight))

    def relative_error(self, x: Any, y: Any) -> float:
        """Relative L2 error ``||predict(x) - y|| / ||y||`` on ``(x, y)`` (lower is better;
        :func:`relative_l2_error`: an all-zero ``y`` raises ``ValueError``)."""
        return relative_l2_error(self._fitted_features(x) @ self.coef_, y)


@dataclass(frozen=True)
class ApproximationCurve:
    """Relative test errors ``errors [len(bands), len(widths), repeats]`` of random nets."""

    bands: list[float]
    widths: list[int]
    errors: torch.Tensor

    def median(self) -> torch.Tensor:
        """Median over repeats: ``[len(bands), len(widths)]`` (the mean of the two middle values
        for an even number of repeats)."""
        return self.errors.quantile(0.5, dim=2)


def _as_list(name: str, values: Any) -> list[Any]:
    """A sequence, 1-D array or 1-D tensor of numbers as a list (tensor / array entries as
    Python numbers)."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        if values.ndim != 1:
            raise ValueError(
                f"{name} must be a 1-D sequence of numbers, got shape {tuple(values.shape)}"
            )
        return list(values.tolist())
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    return list(values)


def approximation_curve(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    bands: Sequence[float],
    widths: Sequence[int],
    repeats: int = 3,
    activation: str = "tanh",
    ridge: float = 1e-6,
    bias_band: float | None = None,
    seed: Seed = None,
) -> ApproximationCurve:
    """Test error of :class:`BandlimitedRandomNet` over a grid of bands and widths.

    Args:
        x_train ``[n, d]``, y_train ``[n]``, x_test ``[m, d]``, y_test ``[m]``: the task
            (``y_test`` not all zeros: the errors are relative to ``||y_test||``).
        bands: hidden-weight bounds (each ``> 0``); widths: hidden sizes (each ``>= 1``);
            sequences, 1-D arrays or 1-D tensors.
        repeats: independent hidden-layer draws per cell (``>= 1``).
        activation, ridge, bias_band: as in :class:`BandlimitedRandomNet` (``bias_band``
            None: each band's own value).
        seed: int, numpy Generator or None; each draw gets its own derived torch seed.
    """
    from .._utils import numpy_rng

    xtr = as_float_tensor("x_train", x_train, 2, "[n, d]")
    ytr = as_float_tensor("y_train", y_train, 1, "[n]")
    xte = as_float_tensor("x_test", x_test, 2, "[m, d]")
    yte = as_float_tensor("y_test", y_test, 1, "[m]")
    if ytr.shape[0] != xtr.shape[0]:
        raise ValueError(
            f"y_train must have {xtr.shape[0]} targets like x_train, got {ytr.shape[0]}"
        )
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(
            f"x_test must have {xtr.shape[1]} columns like x_train, got {xte.shape[1]}"
        )
    if yte.shape[0] != xte.shape[0]:
        raise ValueError(f"y_test must have {xte.shape[0]} targets like x_test, got {yte.shape[0]}")
    if not bool((yte != 0).any()):  # before any fit: every relative error would be undefined
        raise ValueError(
            "y_test must not be all zeros: the relative L2 error ||f - y_test|| / ||y_test|| "
            "is undefined"
        )
    band_values, width_values = _as_list("bands", bands), _as_list("widths", widths)
    if not band_values or not width_values:
        raise ValueError("bands and widths must be non-empty")
    for i, b in enumerate(band_values):
        check_number(f"bands[{i}]", b, gt=0)
    band_list = [float(b) for b in band_values]
    width_list = [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(width_values)]
    repeats = check_positive_int("repeats", repeats)
    rng = numpy_rng(seed)
    seeds = rng.integers(0, 2**31, size=(len(band_list), len(width_list), repeats))
    errors = torch.empty(len(band_list), len(width_list), repeats, dtype=torch.float64)
    for i, band in enumerate(band_list):
        for j, width in enumerate(width_list):
            for r in range(repeats):
                net = BandlimitedRandomNet(
                    width,
                    band,
                    bias_band=bias_band,
                    activation=activation,
                    ridge=ridge,
                    seed=int(np.int64(seeds[i, j, r])),
                )
                errors[i, j, r] = net.fit(xtr, ytr).relative_error(xte, yte)
    return ApproximationCurve(bands=band_list, widths=width_list, errors=errors)
