"""Convergent learning: do different networks learn the same units?

Li, Yosinski, Clune, Lipson & Hopcroft, "Convergent Learning: Do different neural networks
learn the same representations?" (ICLR 2016).

Two networks of the same architecture, trained from different random initializations, are
compared unit by unit on the same held-out inputs. Every statistic treats a convolutional
channel as one unit and pools its activations over all images *and* spatial positions (the
paper's choice), so a layer's activations ``[N, C, H, W]`` become ``N * H * W`` samples of
``C`` units (:func:`unit_samples`).

* :func:`correlation_blocks` / :func:`unit_correlation`: within-net and between-net Pearson
  correlation matrices (:class:`CorrelationBlocks`, whose ``joint`` is the
  ``[U_a + U_b, U_a + U_b]`` matrix of both nets' units).
* :func:`match_units`: one-to-one **bipartite matching** of net-A units to net-B units that
  maximizes the summed correlation (Hungarian algorithm,
  :func:`scipy.optimize.linear_sum_assignment`; the authors used networkx's max-weight
  matching, which solves the same problem) and **semi-matching** (each unit paired with its
  most correlated unit in the other net, with replacement). The mean matched correlation per
  layer measures one-to-one matchability; the gap semi-minus-bipartite measures how far the
  best partners collide.
* :func:`permutation_baseline`: the same matching after shuffling which image net B saw
  (spatial layout kept): what matching finds by chance in two unrelated representations.
* :class:`SparsePrediction`: the paper's sparse few-to-one mapping, an L1-regularized linear
  map from net A's layer to each unit of net B's layer (scikit-learn's ``lasso_path`` on
  standardized activations, one path per target unit), reporting for each target unit how
  many net-A units it needs (non-zero weights) and its held-out ``R^2``; either at a fixed
  L1 strength or, per unit, the sparsest model reaching a fraction of the dense
  (least-squares) ``R^2``.
* :func:`spectral_groups`: many-to-many groups by spectral clustering of the joint
  correlation graph (:class:`sklearn.cluster.SpectralClustering` on a precomputed affinity).
* :func:`compare_networks`: all of the above for several layers at once
  (:class:`LayerComparison`).

Mutual-information alignment (the paper's second similarity) uses
:mod:`neuronkit.interpretability.information` (binned MI matrices), whose matrix can be
passed to :func:`match_units` like a correlation matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from neuronkit.common import check_choice, check_number, check_seed, host_array

from ..hooks import unit_axis

__all__ = [
    "CorrelationBlocks",
    "LayerComparison",
    "SparsePrediction",
    "UnitGroups",
    "UnitMatching",
    "aligned_correlation",
    "compare_networks",
    "correlation_blocks",
    "match_units",
    "permutation_baseline",
    "spectral_groups",
    "unit_correlation",
    "unit_samples",
]

MatchMethod = Literal["bipartite", "semi"]


# --------------------------------------------------------------------------- samples


def _to_numpy(name: str, x: Any) -> np.ndarray:
    x = host_array(x)
    if isinstance(x, (list, tuple)):  # nested lists of numbers
        try:
            x = np.asarray(x)
        except ValueError:  # ragged
            raise ValueError(
                f"{name} must be a rectangular (nested) list of numbers, got a ragged "
                f"{type(x).__name__}"
            ) from None
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array, torch tensor or list, got {type(x).__name__} "
            f"({x!r:.60})"
        )
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real-valued, got dtype {x.dtype}")
    return x


def _units_first(name: str, x: Any, dim: int) -> np.ndarray:
    """``x`` as an array with its unit axis ``dim`` moved to axis 1 (after the samples)."""
    arr = _to_numpy(name, x)
    if dim == 1 or arr.ndim < 2:  # unit_samples reports arrays without a unit axis
        return arr
    return np.moveaxis(arr, unit_axis(dim, arr.ndim, f"{name} of shape {arr.shape}"), 1)


def unit_samples(activations: Any, name: str = "activations", min_samples: int = 2) -> np.ndarray:
    """A layer's activations as samples of units: ``[N, U]`` -> ``[N, U]`` and
    ``[N, C, *spatial]`` -> ``[N * prod(spatial), C]`` (channel = unit, every image and
    spatial position a sample, as in Li et al. 2016).

    Args:
        activations: numpy array, torch tensor or (nested) list, batch first, finite, at least
            ``min_samples`` samples (after pooling positions).
        name: the argument name used in error messages.
        min_samples: the fewest samples accepted (2 where statistics are taken, 1 to predict).

    Returns:
        ``float64`` array ``[samples, units]`` (a new array; the input is not modified).
    """
    arr = _to_numpy(name, activations)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must be [N, units] or [N, channels, *spatial], got shape {arr.shape}"
        )
    if arr.ndim > 2:
        arr = np.moveaxis(arr, 1, -1).reshape(-1, arr.shape[1])
    out = np.array(arr, dtype=np.float64)
    if out.shape[0] < min_samples or out.shape[1] == 0:
        raise ValueError(
            f"{name} must hold at least {min_samples} samples and 1 unit, got {out.shape[0]} "
            f"samples of {out.shape[1]} units"
        )
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return out


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x.T @ y`` for tall float64 matrices via torch (float64, same numbers; much faster
    than numpy's BLAS for this shape and it honours torch's thread setting)."""
    return (
        torch.from_numpy(np.ascontiguousarray(x)).T @ torch.from_numpy(np.ascontiguousarray(y))
    ).numpy()


# a unit varies when its std exceeds this fraction of its largest |value|: purely relative
# (Pearson correlation is scale-invariant), above the rounding-level std of a constant unit
_LIVE_TOL = 1e-14


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores (population std) of ``x [N, U]`` and the ``[U]`` mask of units that vary
    (an all-zero or constant unit, up to rounding, is dead: z = 0)."""
    # each unit scaled by a power of two near its max |x| (exact, z unchanged): its squares
    # neither under- nor overflow
    mantissa, exponent = np.frexp(np.abs(x).max(0))  # max |x| = mantissa * 2**exponent
    x = np.ldexp(x, -exponent)
    centered = x - x.mean(0)
    std = centered.std(0)
    live = std > _LIVE_TOL * mantissa
    z = np.zeros_like(centered)
    z[:, live] = centered[:, live] / std[live]
    return z, live


# --------------------------------------------------------------------------- correlation


def unit_correlation(a: Any, b: Any | None = None) -> np.ndarray:
    """Pearson correlation between every unit of ``a`` and every unit of ``b``.

    Args:
        a: activations ``[N, U_a]`` or ``[N, C_a, *spatial]`` (see :func:`unit_samples`).
        b: activations of the same inputs (same number of samples); ``None``: ``a`` itself.

    Returns:
        ``[U_a, U_b]`` correlations over samples. A unit with zero variance (a dead ReLU)
        has correlation 0 with every unit; within one net (``b is None``) the diagonal is 1.
    """
    xa = unit_samples(a, "a")
    xb = xa if b is None else unit_samples(b, "b")
    if xb.shape[0] != xa.shape[0]:
        raise ValueError(
            f"b must have as many samples as a ({xa.shape[0]} after pooling positions), got "
            f"{xb.shape[0]}"
        )
    za, _ = _standardize(xa)
    zb = za if b is None else _standardize(xb)[0]
    corr = np.clip(_cross(za, zb) / xa.shape[0], -1.0, 1.0)
    if b is None:
        np.fill_diagonal(corr, 1.0)
    return corr


@dataclass(frozen=True)
class CorrelationBlocks:
    """Within- and between-net correlation matrices of one layer of two networks.

    Attributes:
        within_a: ``[U_a, U_a]`` correlations among net A's units.
        within_b: ``[U_b, U_b]`` among net B's units.
        between: ``[U_a, U_b]`` net A unit ``i`` vs net B unit ``j``.
        dead_a, dead_b: ``[U_a]`` / ``[U_b]`` masks of zero-variance units.
    """

    within_a: np.ndarray
    within_b: np.ndarray
    between: np.ndarray
    dead_a: np.ndarray
    dead_b: np.ndarray

    @property
    def joint(self) -> np.ndarray:
        """``[U_a + U_b, U_a + U_b]``: net A's units first, then net B's."""
        return np.block([[self.within_a, self.between], [self.between.T, self.within_b]])


def correlation_blocks(a: Any, b: Any) -> CorrelationBlocks:
    """Within-net and between-net unit correlations of one layer of two networks.

    Args:
        a, b: the layer's activations in net A and net B on the same inputs,
            ``[N, U]`` or ``[N, C, *spatial]``.
    """
    xa, xb = unit_samples(a, "a"), unit_samples(b, "b")
    if xa.shape[0] != xb.shape[0]:
        raise ValueError(
            f"b must have as many samples as a ({xa.shape[0]} after pooling positions), got "
            f"{xb.shape[0]}"
        )
    za, live_a = _standardize(xa)
    zb, live_b = _standardize(xb)
    n = xa.shape[0]
    within_a = np.clip(_cross(za, za) / n, -1.0, 1.0)
    within_b = np.clip(_cross(zb, zb) / n, -1.0, 1.0)
    np.fill_diagonal(within_a, 1.0)
    np.fill_diagonal(within_b, 1.0)
    between = np.clip(_cross(za, zb) / n, -1.0, 1.0)
    return CorrelationBlocks(within_a, within_b, between, ~live_a, ~live_b)


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class UnitMatching:
    """Pairing of each net-A unit (row) with a net-B unit (column).

    Attributes:
        method: ``"bipartite"`` (one-to-one) or ``"semi"`` (best partner, with replacement).
        partner: ``[U_a]`` index of the matched net-B unit, ``-1`` if unmatched (bipartite
            matching with more rows than columns).
        correlation: ``[U_a]`` similarity of each matched pair (``nan`` if unmatched).
    """

    method: str
    partner: np.ndarray
    correlation: np.ndarray

    @property
    def mean(self) -> float:
        """Mean similarity over matched units."""
        return float(np.nanmean(self.correlation))

    @property
    def n_unique_partners(self) -> int:
        """How many distinct net-B units were used (``U_a`` for a full bipartite matching)."""
        return int(np.unique(self.partner[self.partner >= 0]).size)

    def sorted_correlation(self) -> np.ndarray:
        """Matched similarities in decreasing order (unmatched units dropped)."""
        vals = self.correlation[np.isfinite(self.correlation)]
        return -np.sort(-vals)


def _check_similarity(name: str, sim: Any) -> np.ndarray:
    arr = _to_numpy(name, sim).astype(np.float64)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty [U_a, U_b] matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return arr


def match_units(similarity: Any, method: MatchMethod = "bipartite") -> UnitMatching:
    """Match net-A units (rows) to net-B units (columns) of a similarity matrix.

    Args:
        similarity: ``[U_a, U_b]`` between-net correlations (or mutual information).
        method: ``"bipartite"``: the one-to-one assignment maximizing the summed similarity
            (Hungarian algorithm; with ``U_a > U_b`` only ``U_b`` rows get a partner);
            ``"semi"``: every row takes its most similar column (Li et al.'s semi-matching).

    Returns:
        :class:`UnitMatching`.
    """
    sim = _check_similarity("similarity", similarity)
    check_choice("method", method, ["bipartite", "semi"])
    n_a = sim.shape[0]
    partner = np.full(n_a, -1, dtype=np.int64)
    corr = np.full(n_a, np.nan)
    if method == "semi":
        partner = sim.argmax(1).astype(np.int64)
        corr = sim[np.arange(n_a), partner]
    else:
        rows, cols = linear_sum_assignment(sim, maximize=True)
        partner[rows] = cols
        corr[rows] = sim[rows, cols]
    return UnitMatching(method, partner, corr)


def aligned_correlation(
    similarity: Any, matching: UnitMatching, *, sort: bool = True
) -> np.ndarray:
    """The between-net matrix with net B's columns reordered so matched partners sit on the
    diagonal (the paper's Fig. 2 view).

    Args:
        similarity: ``[U_a, U_b]`` matrix the matching was computed from.
        matching: a :class:`UnitMatching` of its rows.
        sort: also order the pairs by decreasing matched similarity.

    Returns:
        ``[U_m, U_m]``: rows = matched net-A units, column ``k`` = row ``k``'s partner.
    """
    sim = _check_similarity("similarity", similarity)
    if not isinstance(matching, UnitMatching):
        raise TypeError(f"matching must be a UnitMatching, got {type(matching).__name__}")
    if not isinstance(sort, bool):
        raise TypeError(f"sort must be a bool, got {sort!r:.80}")
    if (
        matching.partner.shape != (sim.shape[0],)
        or matching.partner.max() >= sim.shape[1]
        or matching.partner.min() < -1
    ):
        raise ValueError(
            f"matching must pair the {sim.shape[0]} rows of similarity {sim.shape} with its "
            f"columns, got {matching.partner.shape[0]} partners"
        )
    rows = np.flatnonzero(matching.partner >= 0)
    if sort:
        rows = rows[np.argsort(-matching.correlation[rows], kind="stable")]
    return sim[rows][:, matching.partner[rows]]


def permutation_baseline(
    a: Any,
    b: Any,
    *,
    method: MatchMethod = "bipartite",
    shuffle: Literal["inputs", "samples"] = "inputs",
    n_permutations: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Matched correlations of two representations whose inputs were shuffled.

    With ``shuffle="inputs"`` net B's activations are permuted along the image axis (axis 0;
    the spatial layout of convolutional maps is kept), so any correlation left comes from
    shared spatial statistics (e.g. where digits have ink) and from the max-selection of the
    matching, not from shared features. ``shuffle="samples"`` permutes every (image,
    position) sample independently: the chance level of matching unrelated signals.

    Args:
        a, b: one layer's activations ``[N, U]`` or ``[N, C, *spatial]`` on the same ``N``
            inputs (``N >= 2``).
        method: ``"bipartite"`` or ``"semi"`` (see :func:`match_units`).
        shuffle: ``"inputs"`` or ``"samples"`` (identical for ``[N, U]`` activations).
        n_permutations: independent shuffles.
        seed: seed of the shuffles.

    Returns:
        ``[n_permutations, U_m]`` matched correlations, each row sorted decreasingly.
    """
    arr_b = _to_numpy("b", b)
    if arr_b.ndim < 2 or arr_b.shape[0] < 2:
        raise ValueError(f"b must be a batch of at least 2 inputs, got shape {arr_b.shape}")
    if _to_numpy("a", a).shape[0] != arr_b.shape[0]:
        raise ValueError(
            f"a and b must hold the same inputs, got {_to_numpy('a', a).shape[0]} and "
            f"{arr_b.shape[0]}"
        )
    check_choice("method", method, ["bipartite", "semi"])
    check_choice("shuffle", shuffle, ["inputs", "samples"])
    check_number("n_permutations", n_permutations, ge=1, integer=True)
    check_seed(seed)
    rng = np.random.default_rng(seed)
    xa = unit_samples(a, "a")
    za, _ = _standardize(xa)
    zb_all, _ = _standardize(unit_samples(arr_b, "b"))
    rows = []
    for _ in range(n_permutations):
        if shuffle == "samples":
            zb = zb_all[rng.permutation(zb_all.shape[0])]
        else:
            zb, _ = _standardize(unit_samples(arr_b[rng.permutation(arr_b.shape[0])], "b"))
        corr = np.clip(_cross(za, zb) / xa.shape[0], -1.0, 1.0)
        rows.append(match_units(corr, method).sorted_correlation())
    return np.stack(rows)


# --------------------------------------------------------------------------- sparse prediction


class SparsePrediction(BaseEstimator):
    """L1-regularized linear prediction of each net-B unit from all net-A units.

    Li et al. (Sec. 4) learn a 1x1-convolution map from one net's layer to the other's with
    an L1 penalty on its weights and count how many inputs each output unit keeps: a few-to-one
    mapping. Here each standardized target unit ``y_j`` gets a lasso path
    (``min_w 1/(2n) ||y_j - X w||^2 + alpha ||w||_1`` over a shared decreasing grid of
    ``alpha``; scikit-learn's :func:`~sklearn.linear_model.lasso_path` with a precomputed
    Gram matrix) on standardized net-A activations, fitted on one part of the samples and
    scored (``R^2``) on the rest.

    Args:
        alpha: fixed L1 strength for every unit (the paper's setting); ``None`` selects per
            unit the sparsest model on the path whose held-out ``R^2`` reaches
            ``r2_fraction`` of the dense least-squares ``R^2`` (falling back to the best
            ``R^2`` on the path).
        r2_fraction: the reconstruction target of the selection, in ``(0, 1]``.
        n_alphas: grid size, from the smallest ``alpha`` that zeroes every weight down to
            ``eps`` times it.
        eps: ratio of the grid's smallest to largest ``alpha``.
        test_fraction: share of samples held out for ``R^2`` (0: score on the fitting data).
        max_samples: subsample (without replacement) to at most this many samples first.
        max_iter, tol: coordinate-descent settings.
        seed: seed of the subsample and split.

    Attributes (after :meth:`fit`):
        coef_: ``[U_b, U_a]`` weights on standardized activations.
        n_nonzero_: ``[U_b]`` inputs used by each target unit.
        r2_: ``[U_b]`` held-out ``R^2`` of the selected model (``nan`` for dead targets).
        dense_r2_: ``[U_b]`` held-out ``R^2`` of unregularized least squares.
        alpha_: ``[U_b]`` the selected ``alpha`` per unit.
        alphas_: ``[n_alphas]`` the grid; ``r2_path_`` and ``n_nonzero_path_``:
            ``[U_b, n_alphas]`` along it.
        live_: ``[U_b]`` target units with non-zero variance in both the fitting and the
            held-out samples (the others are skipped).
        n_features_in_: ``U_a``.
    """

    def __init__(
        self,
        alpha: float | None = None,
        *,
        r2_fraction: float = 0.9,
        n_alphas: int = 30,
        eps: float = 1e-3,
        test_fraction: float = 0.5,
        max_samples: int | None = 20_000,
        max_iter: int = 5000,
        tol: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.alpha = alpha
        self.r2_fraction = r2_fraction
        self.n_alphas = n_alphas
        self.eps = eps
        self.test_fraction = test_fraction
        self.max_samples = max_samples
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _check_params(self) -> None:
        if self.alpha is not None:
            check_number("alpha", self.alpha, gt=0.0)
        check_number("r2_fraction", self.r2_fraction, gt=0.0, le=1.0)
        check_number("n_alphas", self.n_alphas, ge=1, integer=True)
        check_number("eps", self.eps, gt=0.0, lt=1.0)
        check_number("test_fraction", self.test_fraction, ge=0.0, lt=1.0)
        if self.max_samples is not None:
            check_number("max_samples", self.max_samples, ge=4, integer=True)
        check_number("max_iter", self.max_iter, ge=1, integer=True)
        check_number("tol", self.tol, gt=0.0)
        check_seed(self.seed)

    def fit(self, X: Any, y: Any) -> SparsePrediction:
        """Fit the maps.

        Args:
            X: net A's layer, ``[N, U_a]`` or ``[N, C_a, *spatial]``.
            y: net B's layer on the same inputs, ``[N, U_b]`` or ``[N, C_b, *spatial]``; or
                one unit ``[N]`` (then :meth:`predict` returns ``[N]``, as scikit-learn's
                regressors do for a 1-D target).
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import lasso_path

        self._check_params()
        xs, (yt, one_target) = unit_samples(X, "X"), _target_units(y)
        if xs.shape[0] != yt.shape[0]:
            raise ValueError(
                f"y must have as many samples as X ({xs.shape[0]} after pooling positions), "
                f"got {yt.shape[0]}"
            )
        rng = np.random.default_rng(self.seed)
        idx = np.arange(xs.shape[0])
        if self.max_samples is not None and idx.size > self.max_samples:
            idx = np.sort(rng.choice(idx, self.max_samples, replace=False))
        idx = rng.permutation(idx)
        n_test = round(self.test_fraction * idx.size)
        if idx.size - n_test < 2 or (self.test_fraction > 0 and n_test < 2):
            raise ValueError(
                f"X must provide enough samples to fit and test, got {idx.size} with "
                f"test_fraction={self.test_fraction}"
            )
        fit_idx = idx[n_test:]
        test_idx = idx[:n_test] if n_test > 0 else fit_idx
        # non-zero variance relative to the magnitude, as in _standardize: a constant unit of
        # large magnitude has a rounding-level std, not zero
        x_tol = _LIVE_TOL * np.abs(xs).max(0)
        y_tol = _LIVE_TOL * np.abs(yt).max(0)
        x_mean, x_std = xs[fit_idx].mean(0), xs[fit_idx].std(0)
        x_std = np.where(x_std > x_tol, x_std, 1.0)
        y_mean, y_std = yt[fit_idx].mean(0), yt[fit_idx].std(0)
        # a target needs variance where it is fitted and where it is scored
        live = (y_std > y_tol) & (yt[test_idx].std(0) > y_tol)
        y_std = np.where(y_std > y_tol, y_std, 1.0)
        xf, xe = (xs[fit_idx] - x_mean) / x_std, (xs[test_idx] - x_mean) / x_std
        yf, ye = (yt[fit_idx] - y_mean) / y_std, (yt[test_idx] - y_mean) / y_std
        n_fit, n_in = xf.shape
        n_out = yf.shape[1]

        def r2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
            sst = ((truth - truth.mean(0)) ** 2).sum(0)
            sse = ((truth[:, :, None] if pred.ndim == 3 else truth) - pred) ** 2
            sse_sum = sse.sum(0)
            denom = sst[:, None] if pred.ndim == 3 else sst
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(denom > 0, 1.0 - sse_sum / denom, np.nan)

        xf = np.asfortranarray(xf)
        gram = _cross(xf, xf)
        xy = _cross(xf, yf)  # [U_a, U_b]
        dense_w = np.linalg.lstsq(gram, xy, rcond=None)[0]  # normal equations, [U_a, U_b]
        dense_r2 = r2(xe @ dense_w, ye)
        if self.alpha is not None:
            alphas = np.array([float(self.alpha)])
        else:
            alpha_max = float(np.abs(xy).max()) / n_fit if n_out else 1.0
            alpha_max = alpha_max if alpha_max > 0 else 1.0
            alphas = np.geomspace(alpha_max, alpha_max * self.eps, self.n_alphas)
        coef_path = np.zeros((n_out, n_in, alphas.size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for j in np.flatnonzero(live):
                # inputs are validated float64 here, so skip sklearn's per-call checks
                _, coefs, _ = lasso_path(
                    xf,
                    np.ascontiguousarray(yf[:, j]),
                    alphas=alphas,
                    precompute=gram,
                    Xy=np.ascontiguousarray(xy[:, j]),
                    max_iter=self.max_iter,
                    tol=self.tol,
                    check_input=False,
                )
                coef_path[j] = coefs
        flat = coef_path.transpose(1, 0, 2).reshape(n_in, n_out * alphas.size)
        pred_path = _cross(xe.T, flat).reshape(-1, n_out, alphas.size)  # [N_test, U_b, n_a]
        r2_path = r2(pred_path, ye)
        nnz_path = (np.abs(coef_path) > 0).sum(1)
        chosen = np.full(n_out, alphas.size - 1)
        for j in np.flatnonzero(live):
            if self.alpha is not None:
                chosen[j] = 0
                continue
            target = self.r2_fraction * dense_r2[j]
            ok = np.flatnonzero(r2_path[j] >= target) if dense_r2[j] > 0 else np.array([])
            chosen[j] = ok[0] if ok.size else int(np.nanargmax(r2_path[j]))
        rows = np.arange(n_out)
        self.coef_ = coef_path[rows, :, chosen]
        self.coef_[~live] = 0.0
        self.alphas_ = alphas
        self.alpha_ = alphas[chosen]
        self.r2_path_ = np.where(live[:, None], r2_path, np.nan)
        self.n_nonzero_path_ = np.where(live[:, None], nnz_path, 0)
        self.n_nonzero_ = nnz_path[rows, chosen] * live
        self.r2_ = np.where(live, r2_path[rows, chosen], np.nan)
        self.dense_r2_ = np.where(live, dense_r2, np.nan)
        self.live_ = live
        self.n_features_in_ = n_in
        self._x_stats = (x_mean, x_std)
        self._y_stats = (y_mean, y_std)
        self._one_target = one_target
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(  # a ValueError and AttributeError, as scikit-learn's
                "This SparsePrediction instance is not fitted yet: call fit(X, y) first"
            )

    def predict(self, X: Any) -> np.ndarray:
        """Predicted net-B activations ``[samples, U_b]`` (original scale; ``[samples]``
        after a fit on one unit ``y [N]``) from net A's layer ``X`` (``[N, U_a]`` or
        ``[N, C_a, *spatial]``)."""
        self._check_fitted()
        xs = unit_samples(X, "X", min_samples=1)
        if xs.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have {self.n_features_in_} units (as in fit), got {xs.shape[1]}"
            )
        x_mean, x_std = self._x_stats
        y_mean, y_std = self._y_stats
        pred = ((xs - x_mean) / x_std) @ self.coef_.T * y_std + y_mean
        return pred[:, 0] if self._one_target else pred

    def score(self, X: Any, y: Any) -> float:
        """Mean ``R^2`` over the live target units of :meth:`predict` on ``(X, y)``."""
        pred = self.predict(X).reshape(-1, self.coef_.shape[0])
        yt, _ = _target_units(y)
        if yt.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape} after pooling, got {yt.shape}")
        sst = ((yt - yt.mean(0)) ** 2).sum(0)
        keep = self.live_ & (sst > 0)
        if not keep.any():
            raise ValueError("y has no unit with non-zero variance to score")
        sse = ((yt - pred) ** 2).sum(0)
        return float(np.mean(1.0 - sse[keep] / sst[keep]))


def _target_units(y: Any) -> tuple[np.ndarray, bool]:
    """``y`` as :func:`unit_samples` ``[samples, U_b]``, and whether it was one unit ``[N]``."""
    arr = _to_numpy("y", y)
    one = arr.ndim == 1
    return unit_samples(arr[:, None] if one else arr, "y"), one


# --------------------------------------------------------------------------- spectral groups


@dataclass(frozen=True)
class UnitGroups:
    """Many-to-many groups of units from two nets.

    Attributes:
        labels: ``[U_a + U_b]`` cluster of each unit (net A's units first).
        network: ``[U_a + U_b]`` 0 for net A's units, 1 for net B's.
        n_clusters: number of clusters.
    """

    labels: np.ndarray
    network: np.ndarray
    n_clusters: int

    @property
    def composition(self) -> np.ndarray:
        """``[n_clusters, 2]``: units of net A and of net B in each cluster."""
        out = np.zeros((self.n_clusters, 2), dtype=np.int64)
        np.add.at(out, (self.labels, self.network), 1)
        return out

    @property
    def mixed_fraction(self) -> float:
        """Share of clusters that contain units of both nets."""
        comp = self.composition
        nonempty = comp.sum(1) > 0
        return float(((comp[:, 0] > 0) & (comp[:, 1] > 0))[nonempty].mean())


def spectral_groups(
    blocks: CorrelationBlocks,
    n_clusters: int,
    *,
    affinity: Literal["positive", "absolute"] = "positive",
    seed: int = 0,
) -> UnitGroups:
    """Cluster the units of both nets on their joint correlation graph (Li et al., Sec. 5).

    Args:
        blocks: the layer's :class:`CorrelationBlocks`.
        n_clusters: number of groups (``2 <= n_clusters < U_a + U_b``).
        affinity: edge weights from correlations: ``"positive"`` keeps ``max(r, 0)``,
            ``"absolute"`` uses ``|r|``.
        seed: seed of the spectral embedding / k-means.

    Returns:
        :class:`UnitGroups`.
    """
    from sklearn.cluster import SpectralClustering

    if not isinstance(blocks, CorrelationBlocks):
        raise TypeError(f"blocks must be CorrelationBlocks, got {type(blocks).__name__}")
    joint = blocks.joint
    check_number("n_clusters", n_clusters, ge=2, lt=joint.shape[0], integer=True)
    check_choice("affinity", affinity, ["positive", "absolute"])
    check_seed(seed)
    weights = np.maximum(joint, 0.0) if affinity == "positive" else np.abs(joint)
    weights = 0.5 * (weights + weights.T)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        labels = SpectralClustering(
            n_clusters=n_clusters, affinity="precomputed", random_state=seed
        ).fit_predict(weights)
    n_a = blocks.within_a.shape[0]
    network = np.r_[np.zeros(n_a, np.int64), np.ones(blocks.within_b.shape[0], np.int64)]
    return UnitGroups(labels.astype(np.int64), network, int(n_clusters))


# --------------------------------------------------------------------------- convenience


@dataclass(frozen=True)
class LayerComparison:
    """Everything :func:`compare_networks` measured for one layer.

    Attributes:
        layer: the layer's name.
        blocks: within/between-net correlations.
        matching: one-to-one (bipartite) matching of net A's units to net B's.
        semi_matching: best-partner matching.
        baseline: ``[n_permutations, U_m]`` bipartite matched correlations after shuffling
            net B's inputs (:func:`permutation_baseline`).
        sparse: fitted :class:`SparsePrediction` (net A -> net B) or ``None``.
        units_a, units_b: indices of the units compared (all units, or the live ones with
            ``exclude_dead=True``); matrices and matchings index into these.
    """

    layer: str
    blocks: CorrelationBlocks
    matching: UnitMatching
    semi_matching: UnitMatching
    baseline: np.ndarray
    sparse: SparsePrediction | None
    units_a: np.ndarray
    units_b: np.ndarray

    @property
    def mean_matched(self) -> float:
        """Mean one-to-one matched correlation."""
        return self.matching.mean

    @property
    def mean_semi_matched(self) -> float:
        """Mean semi-matched (best-partner) correlation."""
        return self.semi_matching.mean

    @property
    def mean_baseline(self) -> float:
        """Mean matched correlation of the shuffled-input baseline."""
        return float(self.baseline.mean())


def compare_networks(
    activations_a: Mapping[str, Any],
    activations_b: Mapping[str, Any],
    *,
    layers: Sequence[str] | None = None,
    n_permutations: int = 1,
    sparse: SparsePrediction | None = None,
    exclude_dead: bool = True,
    seed: int = 0,
    dim: int = 1,
) -> dict[str, LayerComparison]:
    """Compare two networks layer by layer (Li et al. 2016).

    Args:
        activations_a, activations_b: ``{layer: [N, U] or [N, C, *spatial]}`` activations of
            the two nets on the same ``N`` inputs, units on axis ``dim`` (e.g. from
            :func:`neuronkit.interpretability.layer_activations` with ``flatten=False``).
            Every other axis but the first is pooled into samples, as spatial positions are.
        layers: which layers (default: those of ``activations_a``, in order).
        n_permutations: shuffles of the permutation baseline.
        sparse: an unfitted :class:`SparsePrediction` template, cloned and fitted net A ->
            net B per layer; ``None`` skips sparse prediction.
        exclude_dead: drop units with zero variance on these inputs (dead ReLUs, whose
            correlation is undefined) from both nets before comparing.
        seed: seed of the baseline shuffles.
        dim: the unit (channel) axis of every activation array (default 1: ``[N, U]``,
            ``[N, C, *spatial]``; negative from the end). Time-major layers (spiking neurons)
            read by ``layer_activations(..., batch_dim=1, flatten=False)`` come as ``[N, T, U]``
            and need ``dim=-1``: their ``T`` time steps are then pooled as samples, while the
            default would take the time steps for the units.

    Returns:
        ``{layer: LayerComparison}`` (units ordered as on axis ``dim``).
    """
    for name, acts in (("activations_a", activations_a), ("activations_b", activations_b)):
        if not isinstance(acts, Mapping):
            raise TypeError(f"{name} must be a mapping layer -> activations, got {acts!r:.60}")
    if layers is not None and (isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__")):
        raise TypeError(f"layers must be a sequence of layer names, got {layers!r:.80}")
    names = list(activations_a) if layers is None else list(layers)
    if not names:
        raise ValueError("layers must name at least one layer, got none")
    for name in names:
        for label, acts in (("activations_a", activations_a), ("activations_b", activations_b)):
            if name not in acts:
                raise ValueError(f"{label} has no layer {name!r} (has {list(acts)})")
    if sparse is not None and not isinstance(sparse, SparsePrediction):
        raise TypeError(f"sparse must be a SparsePrediction or None, got {type(sparse).__name__}")
    check_number("n_permutations", n_permutations, ge=1, integer=True)
    check_seed(seed)
    if not isinstance(exclude_dead, bool):
        raise TypeError(f"exclude_dead must be a bool, got {exclude_dead!r:.80}")
    unit_axis(dim)
    out: dict[str, LayerComparison] = {}
    for i, name in enumerate(names):
        a = _units_first(f"activations_a[{name!r}]", activations_a[name], dim)
        b = _units_first(f"activations_b[{name!r}]", activations_b[name], dim)
        blocks = correlation_blocks(a, b)
        units_a = np.arange(blocks.dead_a.size)
        units_b = np.arange(blocks.dead_b.size)
        if exclude_dead and (blocks.dead_a.any() or blocks.dead_b.any()):
            units_a, units_b = np.flatnonzero(~blocks.dead_a), np.flatnonzero(~blocks.dead_b)
            if units_a.size == 0 or units_b.size == 0:
                raise ValueError(f"layer {name!r} has no live unit in one of the networks")
            a, b = a[:, units_a], b[:, units_b]
            blocks = correlation_blocks(a, b)
        fitted = clone(sparse).fit(a, b) if sparse is not None else None
        out[name] = LayerComparison(
            layer=name,
            blocks=blocks,
            matching=match_units(blocks.between, "bipartite"),
            semi_matching=match_units(blocks.between, "semi"),
            baseline=permutation_baseline(
                a, b, n_permutations=n_permutations, seed=seed + 1000 * i
            ),
            sparse=fitted,
            units_a=units_a,
            units_b=units_b,
        )
    return out
