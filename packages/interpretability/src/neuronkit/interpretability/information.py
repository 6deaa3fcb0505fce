"""Binned mutual information between unit activations (plain, vectorized numpy).

Plug-in (histogram) estimators over discretized activations, as used by Li et al.,
"Convergent Learning: Do different neural networks learn the same representations?"
(ICLR 2016) to align units of two networks by mutual information, and reusable for
layer-level quantities such as the information plane (Shwartz-Ziv & Tishby 2017):

* :func:`bin_activations`: per-unit discretization of ``[N, U]`` activations into
  ``n_bins`` bins: equal-width over each unit's range (or a fixed common ``value_range``),
  equal-count (quantile) bins, optionally with exact zeros (silent ReLU units) in a bin of
  their own, as in the authors' percentile binning.
* :func:`entropy`: entropy of each column of discrete codes.
* :func:`mutual_information`: MI of two discrete variables.
* :func:`mutual_information_matrix`: the ``[U_a, U_b]`` MI matrix between every pair of
  units of two binned layers, from one matrix product of one-hot codes (no Python loop over
  pairs).
* :func:`joint_codes`: one integer per distinct row pattern, so a whole binned layer
  ``T`` becomes a single discrete variable (``I(T; Y) = mutual_information(joint_codes(T),
  y)``).
* :func:`kde_information`: the Kolchinsky-Tracey pairwise-distance (KDE) upper bound on
  ``I(X; T)`` and ``I(T; Y)`` for a layer ``T`` plus isotropic Gaussian noise, the second
  estimator used for information planes by Saxe et al. (ICLR 2018).

Every estimator is the plug-in estimate; ``bias_correction=True`` subtracts the
Miller-Madow first-order bias of the plug-in MI, ``(K_a - 1)(K_b - 1) / (2 N)`` nats with
``K`` the number of occupied bins, clipped at zero.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from neuronkit.common import check_choice, check_interval, check_number, host_array

__all__ = [
    "bin_activations",
    "entropy",
    "joint_codes",
    "kde_information",
    "mutual_information",
    "mutual_information_matrix",
]

BinStrategy = Literal["uniform", "quantile"]


def _as_matrix(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(host_array(x))
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real-valued array or tensor, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [N, units] array, got shape {arr.shape}")
    return arr


def _as_codes(name: str, codes: Any) -> np.ndarray:
    arr = _as_matrix(name, codes)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise TypeError(f"{name} must hold integer bin codes, got non-integer values")
        arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative bin codes, got minimum {arr.min()}")
    return arr.astype(np.int64, copy=False)


def _dense_codes(codes: np.ndarray) -> np.ndarray:
    """Each column of ``codes [N, U]`` replaced by the ranks of its distinct values
    (``0 .. n_distinct - 1``, in the order of the values): the inverse of ``np.unique`` per
    column, vectorized. Information measures do not change under such a relabelling, and
    codes used as indices then stay below ``N`` however large or sparse they were."""
    order = np.argsort(codes, axis=0, kind="stable")
    ordered = np.take_along_axis(codes, order, axis=0)
    new = np.empty(codes.shape, dtype=np.int64)
    new[:1] = 0
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:], casting="unsafe")
    np.cumsum(new, axis=0, out=new)
    out = np.empty_like(new)
    np.put_along_axis(out, order, new, axis=0)
    return out


def _compact_codes(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """``codes`` for dense indexing and the number of code values ``k`` per column: the codes
    as they are when ``max + 1 <= N`` (bin codes; tables of size ``k`` are no larger than the
    samples), else re-mapped per column by :func:`_dense_codes` (huge or sparse codes, which
    would otherwise size the tables by their largest value)."""
    k = int(codes.max()) + 1
    if k <= codes.shape[0]:
        return codes, k
    dense = _dense_codes(codes)
    return dense, int(dense.max()) + 1


def _check_base(base: float) -> float:
    check_number("base", base, gt=0.0)
    if base == 1:
        raise ValueError("base must be > 0 and != 1, got 1")
    return float(np.log(base))


def bin_activations(
    x: Any,
    n_bins: int = 10,
    *,
    strategy: BinStrategy = "uniform",
    value_range: tuple[float, float] | None = None,
    zero_bin: bool = False,
) -> np.ndarray:
    """Discretize each unit (column) of ``x`` into integer bin codes.

    Args:
        x: activations ``[N, U]`` (a 1-D ``[N]`` array is one unit), numpy or torch, finite.
        n_bins: bins per unit (``>= 2``); codes are ``0 .. n_bins - 1``.
        strategy: ``"uniform"``: equal-width bins over each unit's ``[min, max]`` (or over
            ``value_range`` for every unit, the information-plane convention of fixed bins);
            ``"quantile"``: equal-count bins at each unit's percentiles (ties share a bin, so
            fewer than ``n_bins`` codes may be used).
        value_range: ``(low, high)`` finite common bin range for ``"uniform"``; values
            outside are put in the first / last bin.
        zero_bin: code 0 is reserved for exact zeros (silent ReLU units); the non-zero values
            share the remaining ``n_bins - 1`` bins (Li et al.'s percentile binning).

    Returns:
        ``[N, U]`` ``int64`` codes. A constant unit gets code 0 everywhere.

    Raises:
        TypeError / ValueError: bad shapes, non-finite values or parameters.
    """
    arr = _as_matrix("x", x).astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("x must be finite, got NaN or infinity")
    check_number("n_bins", n_bins, ge=2, integer=True)
    check_choice("strategy", strategy, ["uniform", "quantile"])
    if value_range is not None:
        if strategy != "uniform":
            raise ValueError(f"value_range needs strategy='uniform', got strategy={strategy!r}")
        # finite: an infinite bound makes every bin but one empty
        value_range = check_interval("value_range", value_range)
    if not isinstance(zero_bin, bool):
        raise TypeError(f"zero_bin must be a bool, got {zero_bin!r:.80}")
    n_free = n_bins - 1 if zero_bin else n_bins
    # zero_bin: only the non-zero values of a unit are binned (its range / quantiles)
    live = arr != 0 if zero_bin else None
    if strategy == "uniform":
        inner = _uniform_codes(arr, live, n_free, value_range)
    else:
        inner = _quantile_codes(arr, live, n_free)
    np.clip(inner, 0, n_free - 1, out=inner)
    if live is None:
        return inner
    inner += 1
    inner[~live] = 0
    return inner


def _uniform_codes(
    arr: np.ndarray,
    live: np.ndarray | None,
    n_free: int,
    value_range: tuple[float, float] | None,
) -> np.ndarray:
    """Equal-width bin index ``floor((x - lo) / (hi - lo) * n_free)`` of every entry, with
    ``[lo, hi]`` each unit's range (of its ``live`` entries) or ``value_range``, all units at
    once; 0 for a unit with ``hi <= lo``. Not clipped to ``n_free - 1``."""
    n_units = arr.shape[1]
    if value_range is not None:
        lo = np.full(n_units, float(value_range[0]))
        hi = np.full(n_units, float(value_range[1]))
    elif live is None:
        lo, hi = arr.min(axis=0), arr.max(axis=0)
    else:  # no live entry: lo = inf > hi = -inf
        lo = np.where(live, arr, np.inf).min(axis=0)
        hi = np.where(live, arr, -np.inf).max(axis=0)
    spread = hi > lo
    lo = np.where(spread, lo, 0.0)  # placeholders, overwritten by code 0 below
    hi = np.where(spread, hi, 1.0)
    # clipped to [lo, hi] and scaled by a power of two per unit (exact) so that neither
    # x - lo nor hi - lo overflows: the ratio is in [0, 1] before the cast
    shift = -np.frexp(np.maximum(np.abs(lo), np.abs(hi)))[1]
    lo_s, hi_s = np.ldexp(lo, shift), np.ldexp(hi, shift)
    ratio = np.clip(arr, lo, hi)
    np.ldexp(ratio, shift, out=ratio)
    ratio -= lo_s
    ratio /= hi_s - lo_s
    ratio *= n_free
    np.floor(ratio, out=ratio)
    inner = ratio.astype(np.int64)
    inner[:, ~spread] = 0
    return inner


def _quantile_codes(arr: np.ndarray, live: np.ndarray | None, n_free: int) -> np.ndarray:
    """Equal-count bin index of every entry: the number of distinct quantile edges of its unit
    (of the unit's ``live`` entries) that are ``<= x``, i.e. ``np.searchsorted(np.unique(
    edges), x, side="right")`` per unit, all units at once."""
    levels = np.linspace(0.0, 1.0, n_free + 1)[1:-1]
    if live is None:
        edges = np.quantile(arr, levels, axis=0)  # [n_free - 1, U]
    else:
        # np.quantile of each unit's live values; units with as many live values share one
        # call (a unit with none keeps NaN edges: no edge is <= x)
        edges = np.full((levels.size, arr.shape[1]), np.nan)
        n_live = live.sum(axis=0)
        arr_t, live_t = arr.T, live.T
        for count in np.unique(n_live[n_live > 0]):
            units = np.flatnonzero(n_live == count)
            vals = arr_t[units][live_t[units]].reshape(units.size, int(count))
            edges[:, units] = np.quantile(vals, levels, axis=1)
    # as np.unique leaves them: sorted, a repeated edge counted once (NaN compares False)
    edges.sort(axis=0)
    edges[1:][edges[1:] == edges[:-1]] = np.nan
    counts = np.zeros(arr.shape, dtype=np.min_scalar_type(levels.size))  # small: fast
    for edge in edges:
        counts += arr >= edge
    return counts.astype(np.int64)


def _entropy_of_counts(counts: np.ndarray, n: int, axis: int) -> np.ndarray:
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=axis)


def entropy(codes: Any, *, base: float = 2.0) -> np.ndarray:
    """Plug-in entropy of each column of discrete ``codes``.

    Args:
        codes: ``[N, U]`` (or ``[N]``) non-negative integer codes (e.g. from
            :func:`bin_activations` or class labels).
        base: logarithm base (2: bits, ``e``: nats).

    Returns:
        ``[U]`` entropies (``float64``).
    """
    arr = _as_codes("codes", codes)
    log_base = _check_base(base)
    n, n_units = arr.shape
    arr, k = _compact_codes(arr)
    counts = np.zeros((n_units, k))
    np.add.at(counts, (np.broadcast_to(np.arange(n_units), arr.shape), arr), 1.0)
    return _entropy_of_counts(counts, n, axis=1) / log_base


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    n, units = codes.shape
    out = np.zeros((n, units * k), dtype=np.float64)
    out[np.arange(n)[:, None], np.arange(units)[None, :] * k + codes] = 1.0
    return out


def mutual_information_matrix(
    a: Any, b: Any | None = None, *, base: float = 2.0, bias_correction: bool = False
) -> np.ndarray:
    """Mutual information between every unit of ``a`` and every unit of ``b``.

    Args:
        a: ``[N, U_a]`` non-negative integer codes (see :func:`bin_activations`).
        b: ``[N, U_b]`` codes of the same ``N`` samples; ``None`` uses ``a`` (within-layer).
        base: logarithm base (2: bits).
        bias_correction: subtract the Miller-Madow bias ``(K_a - 1)(K_b - 1) / (2N)`` (nats,
            ``K`` = occupied bins of each unit), clipping at 0.

    Returns:
        ``[U_a, U_b]`` MI matrix; ``I(a_i; a_i) = H(a_i)`` on the diagonal when ``b`` is
        ``None`` (without bias correction).

    The joint histograms of all pairs come from one product of one-hot encodings,
    ``onehot(a)^T onehot(b)``: ``[U_a * K, U_b * K]`` counts.
    """
    ca = _as_codes("a", a)
    cb = ca if b is None else _as_codes("b", b)
    if cb.shape[0] != ca.shape[0]:
        raise ValueError(
            f"b must have the same number of samples as a ({ca.shape[0]}), got {cb.shape[0]}"
        )
    log_base = _check_base(base)
    if not isinstance(bias_correction, bool):
        raise TypeError(f"bias_correction must be a bool, got {bias_correction!r:.80}")
    n = ca.shape[0]
    ca, ka = _compact_codes(ca)
    cb, kb = (ca, ka) if b is None else _compact_codes(cb)
    oa, ob = _one_hot(ca, ka), _one_hot(cb, kb)
    joint = (oa.T @ ob).reshape(ca.shape[1], ka, cb.shape[1], kb)  # [Ua, Ka, Ub, Kb]
    pa = oa.sum(0).reshape(ca.shape[1], ka) / n
    pb = ob.sum(0).reshape(cb.shape[1], kb) / n
    pij = joint / n
    outer = pa[:, :, None, None] * pb[None, None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pij > 0, pij / np.where(outer > 0, outer, 1.0), 1.0)
        mi = (pij * np.log(ratio)).sum(axis=(1, 3))
    if bias_correction:
        occ_a = (pa > 0).sum(1)
        occ_b = (pb > 0).sum(1)
        mi = np.maximum(mi - (occ_a[:, None] - 1) * (occ_b[None, :] - 1) / (2.0 * n), 0.0)
    return np.maximum(mi, 0.0) / log_base


def mutual_information(
    x: Any, y: Any, *, base: float = 2.0, bias_correction: bool = False
) -> float:
    """Plug-in mutual information ``I(x; y)`` of two discrete variables.

    Args:
        x, y: ``[N]`` non-negative integer codes (use :func:`joint_codes` to turn a binned
            layer ``[N, U]`` into one variable).
        base, bias_correction: as in :func:`mutual_information_matrix`.
    """
    cx = _as_codes("x", x)
    cy = _as_codes("y", y)
    for name, arr in (("x", cx), ("y", cy)):
        if arr.shape[1] != 1:
            raise ValueError(f"{name} must be a 1-D array of codes [N], got shape {arr.shape}")
    if cx.shape[0] != cy.shape[0]:
        raise ValueError(f"y must have as many samples as x ({cx.shape[0]}), got {cy.shape[0]}")
    log_base = _check_base(base)
    if not isinstance(bias_correction, bool):
        raise TypeError(f"bias_correction must be a bool, got {bias_correction!r:.80}")
    # sparse contingency table: only the occupied (x, y) cells, so many distinct codes
    # (e.g. from joint_codes) stay cheap
    n = cx.shape[0]
    dx, dy = _dense_codes(cx)[:, 0], _dense_codes(cy)[:, 0]
    kx, ky = int(dx.max()) + 1, int(dy.max()) + 1
    cells, cell_counts = np.unique(dx * ky + dy, return_counts=True)
    px = np.bincount(dx, minlength=kx) / n
    py = np.bincount(dy, minlength=ky) / n
    pxy = cell_counts / n
    mi = float(np.sum(pxy * np.log(pxy / (px[cells // ky] * py[cells % ky]))))
    if bias_correction:
        mi -= (kx - 1) * (ky - 1) / (2.0 * n)
    return max(mi, 0.0) / log_base


def joint_codes(codes: Any) -> np.ndarray:
    """One integer per distinct row of ``codes`` ``[N, U]`` (``0 .. n_distinct - 1``).

    Turns a binned layer into a single discrete variable ``T`` whose entropy / MI with labels
    is the layer-level quantity of the information plane.
    """
    arr = _as_codes("codes", codes)
    _, inverse = np.unique(arr, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


_KDE_BLOCK_ELEMENTS = 1 << 20
"""Entries of each ``[rows, M]`` block of distances in :func:`_log_mean_kernel` (8 MiB)."""


def _log_mean_kernel(h: np.ndarray, rows: np.ndarray, noise_variance: float) -> np.ndarray:
    """``log(1/M sum_j exp(-|h_i - h_j|^2 / (2 var)))`` for each ``i``, ``j`` over ``rows``.

    ``h``: ``[N, U]``; returns ``[N]``. The distances come from the differences
    ``h_i - h_j`` (not ``|h_i|^2 + |h_j|^2 - 2 h_i.h_j``, which cancels at large scale or
    offset), so ``d(h_i, h_i) = 0`` exactly. Computed for blocks of ``i`` of about
    ``_KDE_BLOCK_ELEMENTS`` distances, never the whole ``[N, M]`` matrix; each row's result
    does not depend on the blocking.
    """
    ht = torch.from_numpy(np.ascontiguousarray(h))
    centres = ht[torch.from_numpy(rows)]
    step = max(1, _KDE_BLOCK_ELEMENTS // max(1, centres.shape[0]))
    out = np.empty(h.shape[0])
    for start in range(0, h.shape[0], step):
        a = torch.cdist(
            ht[start : start + step], centres, compute_mode="donot_use_mm_for_euclid_dist"
        ).numpy()  # [rows, M], a fresh array: the steps below work in place
        with np.errstate(over="ignore"):  # beyond float64: -inf, a kernel of exactly 0
            np.square(a, out=a)
            np.negative(a, out=a)
            a /= 2.0 * noise_variance
        amax = a.max(1, keepdims=True)
        a -= amax
        np.exp(a, out=a)
        out[start : start + step] = amax[:, 0] + np.log(a.mean(1))
    return out


def kde_information(
    t: Any, y: Any, *, noise_variance: float = 0.1, base: float = 2.0
) -> tuple[float, float]:
    """Pairwise-distance (KDE) upper bounds on ``I(X; T)`` and ``I(T; Y)``.

    Kolchinsky & Tracey, "Estimating mixture entropy with pairwise distances" (2017), as used
    by Saxe et al., "On the information bottleneck theory of deep learning" (ICLR 2018): the
    deterministic layer ``h(x)`` gets additive noise ``T = h(X) + N(0, var I)``, so ``T`` is a
    mixture of Gaussians centred on the ``N`` samples (X uniform over them), and its entropy is
    bounded with the KL pairwise distances:

    ``I(X; T) <= -1/N sum_i log(1/N sum_j exp(-|h_i - h_j|^2 / (2 var)))`` and
    ``I(T; Y) <= that bound - sum_c p(c) (the same bound within class c)``.

    Args:
        t: ``[N, U]`` layer activations (numpy or torch), finite.
        y: ``[N]`` non-negative integer class labels.
        noise_variance: ``var > 0`` of the added Gaussian noise (Saxe et al.: 0.1).
        base: logarithm base (2: bits).

    Returns:
        ``(I(X; T), I(T; Y))``, both in ``[0, log N]`` (``I(T;Y) <= H(Y)``).
    """
    h = _as_matrix("t", t).astype(np.float64)
    if not np.isfinite(h).all():
        raise ValueError("t must be finite, got NaN or infinity")
    labels = _as_codes("y", y)
    if labels.shape[1] != 1:
        raise ValueError(f"y must be a 1-D array of labels [N], got shape {labels.shape}")
    if labels.shape[0] != h.shape[0]:
        raise ValueError(f"y must have as many samples as t ({h.shape[0]}), got {labels.shape[0]}")
    check_number("noise_variance", noise_variance, gt=0.0)
    log_base = _check_base(base)
    labels = labels[:, 0]
    n = h.shape[0]
    h_t = -float(_log_mean_kernel(h, np.arange(n), float(noise_variance)).mean())
    h_t_given_y = 0.0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        h_c = -float(_log_mean_kernel(h[idx], np.arange(idx.size), float(noise_variance)).mean())
        h_t_given_y += idx.size / n * h_c
    ixt = min(max(h_t, 0.0), np.log(n))
    ity = max(h_t - h_t_given_y, 0.0)
    return ixt / log_base, ity / log_base
