"""Topological RSA (tRSA): model selection with geo-topological RDM statistics.

Lin & Kriegeskorte, "The Topology and Geometry of Neural Representations" (PNAS 2024).

tRSA replaces the RDM by its geo-topological transform GT(l, u)
(:func:`neuronkit.interpretability.rsa.geo_topological`), optionally followed by geodesic
distances (:func:`neuronkit.interpretability.rsa.geodesic`), and asks how well such summary
statistics identify which region (here: which network layer) produced a noisy measurement.
The paper's evaluation, reproduced here, is leave-one-subject-out nearest-centroid
classification of RDM vectors: for each held-out subject (network instance trained from
another seed), every region's RDM is assigned to the region whose mean RDM over the other
subjects is closest (Euclidean). :func:`select_geo_topological` adds nested
cross-validation over a grid of (l, u), so the chosen statistic never sees the test subject.

* :class:`GeoTopological`: a scikit-learn transformer for stacks of RDM vectors.
* :func:`identification_accuracy`: leave-one-group-out nearest-centroid accuracy.
* :func:`select_geo_topological`: nested selection of (l, u) and its unbiased accuracy.
* :func:`gt_grid`: the (l, u) grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, TransformerMixin

from neuronkit.common import as_float_array, check_number, host_array

from ..rsa import (
    _as_stack,
    _check_bool,
    _check_bounds,
    _geodesic_vectors,
    _gt_vectors,
    _rank_vectors,
)

__all__ = [
    "GeoTopological",
    "TRSASelection",
    "gt_grid",
    "identification_accuracy",
    "select_geo_topological",
]


class GeoTopological(TransformerMixin, BaseEstimator):
    """Geo-topological transform of a stack of RDM vectors (stateless transformer).

    Args:
        lower, upper: GT quantiles (``0 <= lower <= upper <= 1``).
        rank: rank-transform each RDM first (the authors' reference code; default ``True``).
        geodesic: follow GT with geodesic distances (the RGDM variant).
        rank_after: only with ``geodesic=True``: replace each RDM's geodesic distances by
            their ranks (average ranks for ties, ``1 .. n_pairs``, not rescaled), with pairs
            that have no path ranked above every finite distance. This is the last step of the
            authors' reference code (``utils_transform.geodesic_transform(...,
            gd_type="twostep", rank_transform_after=True)`` in doerlbh/TopologicalRSA, where
            it is on by default: ``scipy.stats.rankdata`` of the Floyd-Warshall distances,
            ``inf`` for unreachable pairs). Distances equal up to floating-point rounding
            (closer than ``1e-9 * max(1, largest finite distance)``) count as ties, so ranks
            do not depend on the order in which path lengths were summed (the reference ranks
            the raw floats). Default ``False`` (geodesic distances as they are,
            disconnected pairs at the largest finite distance, see
            :func:`neuronkit.interpretability.rsa.geodesic`); rsatoolbox's
            ``geodesic_transform`` does not rank afterwards either. For ranks scaled to
            [0, 1], apply :func:`neuronkit.interpretability.rsa.rank_transform` to the output.
            ``rank_after=True`` without ``geodesic=True`` is a ``ValueError``.

    As everywhere in :func:`~neuronkit.interpretability.rsa.geodesic`, pairs whose GT value is
    0 keep their edge at distance 0 (the reference's networkx graph drops them).
    """

    def __init__(
        self,
        lower: float = 0.0,
        upper: float = 1.0,
        *,
        rank: bool = True,
        geodesic: bool = False,
        rank_after: bool = False,
    ) -> None:
        self.lower = lower
        self.upper = upper
        self.rank = rank
        self.geodesic = geodesic
        self.rank_after = rank_after

    def fit(self, X: Any, y: Any = None) -> GeoTopological:
        """Nothing to learn: validates the parameters and ``X`` (``[k, n_pairs]`` RDM
        vectors), and records ``n_features_in_ = n_pairs``, which :meth:`transform` then
        expects."""
        self._check_params()
        self.n_features_in_ = _as_stack("X", X).shape[1]
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        """Always fitted: a stateless transformer (``check_is_fitted``, and a ``Pipeline``
        ending in it, accept it before ``fit``)."""
        return True

    def _check_params(self) -> None:
        _check_bounds(self.lower, self.upper)
        _check_bool("rank", self.rank)
        _check_bool("geodesic", self.geodesic)
        _check_rank_after(self.rank_after, self.geodesic)

    def transform(self, X: Any) -> np.ndarray:
        """``X: [k, n_pairs]`` RDM vectors -> transformed ``[k, n_pairs]``."""
        self._check_params()
        arr = _as_stack("X", X)  # a stack even when k == n_pairs (never one square RDM)
        n_fit = getattr(self, "n_features_in_", arr.shape[1])
        if arr.shape[1] != n_fit:
            raise ValueError(f"X must have {n_fit} pairs per RDM (as in fit), got {arr.shape[1]}")
        if self.rank:
            arr = _rank_vectors(arr)
        if not self.geodesic:
            return _gt_vectors(arr, self.lower, self.upper)
        if not self.rank_after:
            return _geodesic_vectors(arr, self.lower, self.upper, "max")
        # unreachable pairs as inf, so that they rank above every finite distance
        dist = _geodesic_vectors(arr, self.lower, self.upper, float("inf"))
        return np.stack([_tied_ranks(row) for row in dist])


def _tied_ranks(v: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Average ranks (``1 .. len(v)``) of ``v``, with values closer than ``rtol`` times the
    largest finite ``|v|`` (at least ``rtol``) tied, and every ``inf`` tied above them."""
    order = np.argsort(v, kind="stable")
    ordered = v[order]
    finite = ordered[np.isfinite(ordered)]
    tol = rtol * max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    with np.errstate(invalid="ignore"):  # inf - inf: nan, not a new group
        new_group = np.diff(ordered) > tol
    groups = np.concatenate(([0], np.cumsum(new_group)))
    ranks = np.empty(v.shape, dtype=np.float64)
    ranks[order] = rankdata(groups)
    return ranks


def _check_rank_after(rank_after: Any, use_geodesic: Any) -> None:
    if not isinstance(rank_after, (bool, np.bool_)):
        raise TypeError(
            f"rank_after must be a bool, got {type(rank_after).__name__} ({rank_after!r:.40})"
        )
    if rank_after and not use_geodesic:
        raise ValueError(
            "rank_after=True ranks geodesic distances and needs geodesic=True, got "
            f"geodesic={use_geodesic!r}"
        )


def _check_design(rdms: Any, labels: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_float_array("rdms", rdms)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"rdms must be a stack of RDM vectors [k, n_pairs], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("rdms must be finite, got NaN or infinity")
    lab = np.asarray(host_array(labels))
    grp = np.asarray(host_array(groups))
    for name, arr in (("labels", lab), ("groups", grp)):
        if arr.shape != (x.shape[0],):
            raise ValueError(
                f"{name} must have one entry per RDM ({x.shape[0]}), got shape {arr.shape}"
            )
    for name, arr in (("labels", lab), ("groups", grp)):
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise ValueError(f"{name} must not hold NaN or infinity")
    if len(np.unique(grp)) < 2:
        raise ValueError("groups must contain at least 2 subjects for leave-one-out evaluation")
    return x, lab, grp


def _check_grid(grid: Any) -> list[tuple[float, float]]:
    """``grid`` as a list of ``(lower, upper)`` pairs with ``0 <= lower <= upper <= 1``."""
    if isinstance(grid, (str, bytes)) or not hasattr(grid, "__iter__"):
        raise TypeError(f"grid must be a sequence of (lower, upper) pairs, got {grid!r:.80}")
    pairs = []
    for i, pair in enumerate(grid):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise TypeError(f"grid[{i}] must be a (lower, upper) pair, got {pair!r:.80}")
        lo, hi = pair
        check_number(f"grid[{i}] lower", lo, ge=0.0, le=1.0)
        check_number(f"grid[{i}] upper", hi, ge=0.0, le=1.0)
        if lo > hi:
            raise ValueError(f"grid[{i}] must have lower <= upper, got {tuple(pair)}")
        pairs.append((lo, hi))
    return pairs


class _CentroidStats:
    """Per-(group, class) sums of RDM vectors, for fast leave-groups-out nearest centroids.

    The centroid of class ``c`` over all groups except a set ``E`` is
    ``(S_tot[c] - sum_{g in E} S[g, c]) / (N_tot[c] - sum_{g in E} N[g, c])``; distances to it
    are assembled from precomputed dot products, so every leave-one-out (and nested
    leave-two-out) split costs no pass over the data.
    """

    def __init__(self, x: np.ndarray, cls: np.ndarray, grp: np.ndarray, n_cls: int, n_grp: int):
        # centred first: distances do not change, and |x|^2 - 2 x.c + |c|^2 does not cancel
        # when every RDM shares a large offset
        x = x - x.mean(0)
        onehot = np.zeros((n_grp, n_cls, x.shape[0]))
        onehot[grp, cls, np.arange(x.shape[0])] = 1.0
        self.sums = onehot @ x  # [G, C, P]
        self.counts = onehot.sum(2)  # [G, C]
        self.sums_total = self.sums.sum(0)  # [C, P]
        self.counts_total = self.counts.sum(0)  # [C]
        self.dots = np.einsum("ip,gcp->igc", x, self.sums)  # [k, G, C]
        self.dots_total = x @ self.sums_total.T  # [k, C]
        self.gram = np.einsum("gcp,hcp->ghc", self.sums, self.sums)  # [G, G, C]
        self.gram_total = np.einsum("gcp,cp->gc", self.sums, self.sums_total)  # [G, C]
        self.norm_total = np.einsum("cp,cp->c", self.sums_total, self.sums_total)  # [C]
        self.sq = np.einsum("ip,ip->i", x, x)  # [k]

    def predict_excluding(self, rows: np.ndarray, excluded: list[np.ndarray]) -> np.ndarray:
        """Predicted class of each row when the groups ``excluded[j][i]`` (one array per
        excluded slot, each ``[len(rows)]``) are left out of the centroids."""
        dot = self.dots_total[rows].copy()  # [r, C]
        cnt = np.broadcast_to(self.counts_total, dot.shape).copy()
        norm = np.broadcast_to(self.norm_total, dot.shape).copy()
        for j, ex in enumerate(excluded):
            dot -= self.dots[rows, ex]
            cnt -= self.counts[ex]
            norm -= 2.0 * self.gram_total[ex]
            norm += self.gram[ex, ex]
            for other in excluded[:j]:
                norm += 2.0 * self.gram[ex, other]
        with np.errstate(divide="ignore", invalid="ignore"):
            d2 = self.sq[rows, None] - 2.0 * dot / cnt + norm / cnt**2
        d2 = np.where(cnt > 0, d2, np.inf)
        return np.argmin(d2, axis=1)


def _encode(
    labels: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    classes, cls = np.unique(labels, return_inverse=True)
    group_ids, grp = np.unique(groups, return_inverse=True)
    return classes, cls.reshape(-1), group_ids, grp.reshape(-1)


def _logo_predictions(x: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Leave-one-group-out nearest-centroid predictions (Euclidean; ties to the first class)."""
    classes, cls, group_ids, grp = _encode(labels, groups)
    stats = _CentroidStats(x, cls, grp, len(classes), len(group_ids))
    rows = np.arange(x.shape[0])
    return classes[stats.predict_excluding(rows, [grp])]


def identification_accuracy(rdms: Any, labels: Any, groups: Any) -> float:
    """Leave-one-group-out nearest-centroid accuracy of ``labels`` from ``rdms``.

    Args:
        rdms: ``[k, n_pairs]`` RDM vectors (already transformed as wanted).
        labels: ``[k]`` region / layer of each RDM (what is identified).
        groups: ``[k]`` subject / network instance of each RDM (held out together).

    Returns:
        Fraction of RDMs whose region is identified; chance is ``1 / n_regions``.
    """
    x, lab, grp = _check_design(rdms, labels, groups)
    return float(np.mean(_logo_predictions(x, lab, grp) == lab))


def gt_grid(step: float = 0.1) -> list[tuple[float, float]]:
    """All ``(l, u)`` with ``0 <= l <= u <= 1`` on a grid of ``step``, except the degenerate
    ``(0, 0)`` and ``(1, 1)`` (constant RDMs), as in the authors' search."""
    check_number("step", step, gt=0.0, le=1.0)
    values = np.round(np.arange(0.0, 1.0 + step / 2, step), 9)
    values = values[values <= 1.0]
    pairs = [(float(lo), float(hi)) for i, lo in enumerate(values) for hi in values[i:]]
    return [p for p in pairs if p not in ((0.0, 0.0), (1.0, 1.0))]


@dataclass
class TRSASelection:
    """Result of :func:`select_geo_topological`.

    Attributes:
        accuracy: nested (unbiased) identification accuracy of the selected statistic.
        chosen: the (l, u) chosen in each outer fold, ``{group: (l, u)}``.
        grid_accuracy: leave-one-group-out accuracy of every grid point on all data (biased
            by selection; for plots), ``{(l, u): accuracy}``.
    """

    accuracy: float
    chosen: dict[Any, tuple[float, float]] = field(default_factory=dict)
    grid_accuracy: dict[tuple[float, float], float] = field(default_factory=dict)


def select_geo_topological(
    rdms: Any,
    labels: Any,
    groups: Any,
    *,
    grid: Sequence[tuple[float, float]] | None = None,
    rank: bool = True,
    geodesic: bool = False,
    rank_after: bool = False,
) -> TRSASelection:
    """Choose GT(l, u) by inner leave-one-group-out accuracy; report outer accuracy.

    For each held-out group, every grid point is scored by leave-one-group-out accuracy on the
    remaining groups; the best (first on ties) transforms the data, a nearest-centroid
    classifier is fit on the remaining groups and predicts the held-out group's labels.

    Args:
        rdms, labels, groups: as :func:`identification_accuracy` (untransformed RDMs).
        grid: candidate ``(l, u)`` pairs (default :func:`gt_grid` with step 0.1).
        rank, geodesic, rank_after: see :class:`GeoTopological`.
    """
    _check_bool("rank", rank)
    _check_bool("geodesic", geodesic)
    _check_rank_after(rank_after, geodesic)
    x, lab, grp = _check_design(rdms, labels, groups)
    if len(np.unique(grp)) < 3:
        raise ValueError("groups must contain at least 3 subjects for nested selection")
    candidates = gt_grid(0.1) if grid is None else _check_grid(grid)
    if not candidates:
        raise ValueError("grid must contain at least one (lower, upper) pair")
    base = _rank_vectors(x) if rank else x  # rank once, not per grid point
    transformed = {
        (float(lo), float(hi)): GeoTopological(
            lo, hi, rank=False, geodesic=geodesic, rank_after=rank_after
        ).transform(base)
        for lo, hi in candidates
    }
    classes, cls, group_ids, grp_idx = _encode(lab, grp)
    n_grp = len(group_ids)
    rows = np.arange(x.shape[0])
    # inner[key][o]: accuracy of leave-one-group-out within the groups other than o
    inner: dict[tuple[float, float], np.ndarray] = {}
    outer_pred: dict[tuple[float, float], np.ndarray] = {}
    grid_accuracy: dict[tuple[float, float], float] = {}
    for key, tx in transformed.items():
        stats = _CentroidStats(tx, cls, grp_idx, len(classes), n_grp)
        outer_pred[key] = stats.predict_excluding(rows, [grp_idx])
        grid_accuracy[key] = float(np.mean(outer_pred[key] == cls))
        scores = np.zeros(n_grp)
        for o in range(n_grp):
            keep = grp_idx != o
            pred = stats.predict_excluding(rows[keep], [grp_idx[keep], np.full(keep.sum(), o)])
            scores[o] = np.mean(pred == cls[keep])
        inner[key] = scores
    correct = np.zeros(len(lab), dtype=bool)
    chosen: dict[Any, tuple[float, float]] = {}
    keys = list(transformed)
    for o in range(n_grp):
        best = max(range(len(keys)), key=lambda i: (inner[keys[i]][o], -i))
        key = keys[best]
        test = grp_idx == o
        correct[test] = outer_pred[key][test] == cls[test]
        gid = group_ids[o]
        chosen[gid.item() if hasattr(gid, "item") else gid] = key
    return TRSASelection(accuracy=float(correct.mean()), chosen=chosen, grid_accuracy=grid_accuracy)
