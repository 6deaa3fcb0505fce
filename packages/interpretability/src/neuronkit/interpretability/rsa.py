"""Representational similarity analysis: RDMs, RDM comparisons, geo-topological transforms.

Conventions and numbers follow rsatoolbox (``rsatoolbox.rdm.calc_rdm``,
``rsatoolbox.rdm.compare``, ``rsatoolbox.data.noise``), written as pure numpy functions:

* An RDM is stored as its **vector** form, the upper triangle read row by row (the order of
  ``scipy.spatial.distance.squareform`` and of rsatoolbox), or as a **square** symmetric matrix
  with a zero diagonal; :func:`rdm_to_square` / :func:`rdm_to_vector` convert, also for stacks.
* ``"euclidean"`` is the *squared* Euclidean distance divided by the number of channels
  (rsatoolbox's definition); ``"mahalanobis"`` and ``"crossnobis"`` are normalized the same
  way; ``"correlation"`` is ``1 - Pearson r``; ``"cosine"`` is ``1 - cosine similarity``;
  ``"poisson"`` and ``"poisson_cv"`` are the symmetrized KL divergence of Poisson rates
  (spike counts) per channel.
* When observations carry condition labels they are averaged per condition, and conditions are
  ordered by their sorted labels (rsatoolbox sorts by the descriptor too).

No function modifies its inputs (rsatoolbox's in-place transforms and noise estimates can; see
the tests). Every function validates its arguments and raises ``ValueError`` / ``TypeError``
naming the argument.

Data shapes: ``data: [n_observations, n_channels]``; RDM vector ``[n_pairs]`` with
``n_pairs = n (n - 1) / 2``; stacks ``[n_rdms, n_pairs]`` or ``[n_rdms, n, n]``.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Literal

import numpy as np
from scipy.linalg import cho_factor, cho_solve, cholesky
from scipy.linalg.blas import dsyr2, dsyr2k, dsyrk, dtrmm
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import csgraph_from_dense, shortest_path
from scipy.stats import rankdata

try:  # Fenwick-tree count of discordant pairs, O(P log P): the kernel rsatoolbox's tau-a uses
    from scipy.stats._stats import _kendall_dis
except ImportError:  # pragma: no cover - private scipy helper; fall back to sign products
    _kendall_dis = None

from neuronkit.common import as_float_array, check_choice, check_finite, check_number, host_array

__all__ = [
    "COMPARISONS",
    "KERNEL_COMPARISONS",
    "NOISE_ESTIMATORS",
    "RDM_METHODS",
    "compare_rdms",
    "geo_topological",
    "geodesic",
    "kendall_tau_a",
    "n_conditions",
    "noise_precision",
    "noise_precision_from_measurements",
    "rank_transform",
    "rdm",
    "rdm_to_square",
    "rdm_to_vector",
]

RDM_METHODS = (
    "euclidean",
    "correlation",
    "cosine",
    "mahalanobis",
    "crossnobis",
    "poisson",
    "poisson_cv",
)
_POISSON = ("poisson", "poisson_cv")
COMPARISONS = (
    "cosine",
    "correlation",
    "spearman",
    "kendall_tau_a",
    "rho_a",
    "whitened_cosine",
    "whitened_correlation",
)
#: comparisons of the RDMs' centred kernel (second-moment) matrices, :func:`compare_rdms` only
#: (no pooling, noise ceilings or model fits are defined for them)
KERNEL_COMPARISONS = ("bures", "bures_metric")
NOISE_ESTIMATORS = ("shrinkage_diag", "shrinkage_eye", "diag", "full")

# --------------------------------------------------------------------------------------------
# input handling


def _as_float_array(name: str, x: Any, *, finite: bool = True) -> np.ndarray:
    """A float64 view or copy of ``x`` (array, tensor or nested sequence), for reading only.

    ``finite=False``: the caller checks finiteness itself (``check_finite``, same message)."""
    arr = as_float_array(name, x)  # refuses strings, complex, objects and sparse matrices
    if finite:
        check_finite(name, arr)
    return arr


@functools.lru_cache(maxsize=8)
def _upper_mask(n: int) -> np.ndarray:
    """``[n, n]`` boolean mask of the strict upper triangle; ``square[mask]`` is the RDM vector
    (row by row, the order of ``np.triu_indices(n, 1)``) in one compress pass. Cached and
    read-only: a 1000-condition mask costs as much to build as to use."""
    idx = np.arange(n)
    mask = idx[:, None] < idx[None, :]
    mask.flags.writeable = False
    return mask


def _symmetric(arr: np.ndarray, atol: float, rtol: float) -> bool:
    """``np.allclose(arr, arr^T, atol, rtol)`` over the last two axes; exactly symmetric
    inputs (the usual case) are accepted after one equality pass."""
    swapped = np.swapaxes(arr, -1, -2)
    return bool(np.array_equal(arr, swapped)) or bool(
        np.allclose(arr, swapped, atol=atol, rtol=rtol)
    )


def n_conditions(n_pairs: int) -> int:
    """Number of conditions ``n`` of an RDM vector with ``n_pairs = n (n - 1) / 2`` entries."""
    check_number("n_pairs", n_pairs, ge=1, integer=True)
    n = round((1 + math.sqrt(1 + 8 * n_pairs)) / 2)
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(
            f"rdm vector length must be n(n-1)/2 for some number of conditions n, got {n_pairs}"
        )
    return n


def _square_rdm_problem(arr: np.ndarray, atol: float = 1e-8) -> str | None:
    """Why a square ``[n, n]`` matrix is not a square RDM (symmetric, zero diagonal), or
    ``None`` if it is one. The diagonal tolerance is relative to the largest entry, as
    :func:`_check_square`'s (a Gram-formed RDM of large distances has a diagonal that is zero
    only up to its rounding)."""
    scale = max(1.0, float(np.abs(arr).max(initial=0.0)))
    diag = float(np.abs(np.diag(arr)).max(initial=0.0))
    if diag > atol * scale:
        return f"max |diagonal| {diag:.3g} exceeds the tolerance {atol * scale:.3g}"
    if not _symmetric(arr, atol, 1e-6):
        return (
            f"max |M - M^T| {_max_asymmetry(arr):.3g} exceeds the tolerance {atol:.3g} + 1e-06 |M|"
        )
    return None


def _check_square(name: str, arr: np.ndarray, atol: float) -> None:
    """Validate a stack ``[..., n, n]`` of square RDMs."""
    if arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be square [n, n], got shape {arr.shape}")
    if arr.shape[-1] < 2:
        raise ValueError(f"{name} must compare at least 2 conditions, got shape {arr.shape}")
    if not np.array_equal(arr, np.swapaxes(arr, -1, -2)) and not np.allclose(
        arr,
        np.swapaxes(arr, -1, -2),
        atol=atol * max(1.0, float(np.abs(arr).max(initial=0.0))),
        rtol=0.0,
    ):
        raise ValueError(
            f"{name} must be symmetric, got a non-symmetric matrix of shape {arr.shape}"
        )
    diag = np.diagonal(arr, axis1=-2, axis2=-1)
    scale = max(1.0, float(np.abs(arr).max(initial=0.0))) if diag.any() else 1.0
    if not np.allclose(diag, 0.0, atol=atol * scale):
        raise ValueError(
            f"{name} must have a zero diagonal, got diagonal values up to {np.abs(diag).max():.3g}"
        )


def rdm_to_vector(rdm: Any, *, atol: float = 1e-8) -> np.ndarray:
    """Vector form(s) of an RDM or stack of RDMs.

    Args:
        rdm: a vector ``[n_pairs]`` (returned as a copy), a square RDM ``[n, n]``, or a stack
            of square RDMs ``[k, n, n]``. Square inputs must be symmetric with a zero diagonal
            (tolerance ``atol`` relative to the largest entry).

    Returns:
        ``[n_pairs]`` or ``[k, n_pairs]`` float64 array.
    """
    arr = _as_float_array("rdm", rdm)
    if arr.ndim == 1:
        _check_length("rdm", arr.shape[0])
        return arr.copy()
    if arr.ndim not in (2, 3):
        raise ValueError(f"rdm must be [n_pairs], [n, n] or [k, n, n], got shape {arr.shape}")
    _check_square("rdm", arr, atol)
    return arr[..., _upper_mask(arr.shape[-1])]


def rdm_to_square(rdm: Any) -> np.ndarray:
    """Square form(s) of an RDM vector ``[n_pairs]`` or stack of vectors ``[k, n_pairs]``."""
    arr = _as_float_array("rdm", rdm)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"rdm must be a vector [n_pairs] or a stack [k, n_pairs], got shape {arr.shape}"
        )
    if not _is_pair_count(arr.shape[-1]):
        square = arr.ndim == 2 and arr.shape[0] == arr.shape[1]
        raise ValueError(
            "rdm must be in vector form [n_pairs] or [k, n_pairs] with n_pairs = n(n-1)/2 (n >= 2),"
            f" got shape {arr.shape}" + ("; it is already square" if square else "")
        )
    n = n_conditions(arr.shape[-1])
    rows, cols = np.triu_indices(n, k=1)
    out = np.zeros((*arr.shape[:-1], n, n))
    out[..., rows, cols] = arr
    out[..., cols, rows] = arr
    return out


def _as_vectors(name: str, rdms: Any, *, finite: bool = True) -> tuple[np.ndarray, str]:
    """``[k, n_pairs]`` stack and the input layout (``vector``, ``square``, ``stack``, ``squares``).

    A 2-D input is read as one square RDM if it is square, symmetric and has a zero diagonal,
    and as a stack of RDM vectors otherwise. A square ``[m, m]`` that is not a square RDM but
    whose side ``m = n (n - 1) / 2`` could be ``m`` RDM vectors is ambiguous: ``ValueError``.
    ``finite=False``: a vector or a stack of vectors is not checked finite (the caller reads
    that off its result, and calls this again with ``finite=True`` for the error).
    """
    arr = _as_float_array(name, rdms, finite=False)
    if finite or (arr.ndim == 2 and arr.shape[0] == arr.shape[1]) or arr.ndim > 2:
        check_finite(name, arr)  # square layouts: before their symmetry checks
    if arr.ndim == 1:
        _check_length(name, arr.shape[0])
        return arr[None, :], "vector"
    if arr.ndim == 2:
        m = arr.shape[0]
        if m == arr.shape[1] and m >= 2:
            problem = _square_rdm_problem(arr)
            if problem is None:
                return arr[_upper_mask(m)][None, :], "square"
            if m >= 3 and _is_pair_count(m):
                raise ValueError(
                    f"{name} of shape {arr.shape} is ambiguous: not accepted as one square RDM "
                    f"({problem}), but {m} = n(n-1)/2 for n = {n_conditions(m)}, so it could "
                    f"be a stack of {m} RDM vectors. For one square RDM, zero its diagonal and "
                    "symmetrize it (e.g. (d + d.T) / 2); for a stack of vectors, pass it as "
                    "squares [k, n, n] (rdm_to_square) or in a shape that is not square"
                )
        if arr.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one RDM, got shape {arr.shape}")
        _check_length(name, arr.shape[1], arr.shape)
        return arr, "stack"
    if arr.ndim == 3:
        _check_square(name, arr, 1e-8)
        return arr[:, _upper_mask(arr.shape[-1])], "squares"
    raise ValueError(f"{name} must have 1, 2 or 3 dimensions, got shape {arr.shape}")


def _as_stack(name: str, rdms: Any) -> np.ndarray:
    """``rdms`` read as a stack of RDM vectors ``[k >= 1, n_pairs]`` (never as a square RDM)."""
    arr = _as_float_array(name, rdms)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must be a stack of RDM vectors [k, n_pairs], got shape {arr.shape}"
        )
    _check_length(name, arr.shape[1], arr.shape)
    return arr


def _is_pair_count(n_pairs: int) -> bool:
    """Whether ``n_pairs = n (n - 1) / 2`` for some ``n >= 2`` (an RDM vector length)."""
    n = round((1 + math.sqrt(1 + 8 * n_pairs)) / 2) if n_pairs > 0 else 0
    return n_pairs >= 1 and n * (n - 1) // 2 == n_pairs


def _check_length(name: str, n_pairs: int, shape: tuple[int, ...] | None = None) -> None:
    if not _is_pair_count(n_pairs):
        got = f"shape {shape}" if shape is not None else f"length {n_pairs}"
        raise ValueError(
            f"{name} must be an RDM vector of length n(n-1)/2 (n >= 2 conditions), a square RDM "
            f"[n, n] (symmetric, zero diagonal) or a stack [k, n_pairs] / [k, n, n], got {got}"
        )


def _restore(vectors: np.ndarray, layout: str) -> np.ndarray:
    if layout == "vector":
        return vectors[0]
    if layout == "stack":
        return vectors
    squares = rdm_to_square(vectors)
    return squares[0] if layout == "square" else squares


# --------------------------------------------------------------------------------------------
# noise precision


def _demeaned(residuals: np.ndarray) -> np.ndarray:
    return residuals - residuals.mean(axis=0, keepdims=True)


def _covariance(matrix: np.ndarray, dof: float, method: str) -> np.ndarray:
    """rsatoolbox's covariance estimators for demeaned ``matrix [n, channels]``."""
    n = matrix.shape[0]
    if method == "full":
        return matrix.T @ matrix / dof
    if method == "diag":
        return np.diag(np.einsum("ij,ij->j", matrix, matrix) / dof)
    xtx = np.einsum("ni,nj->nij", matrix, matrix) if n * matrix.shape[1] ** 2 <= 4e7 else None
    if xtx is not None:
        s_sum = xtx.sum(0)
        s2_sum = (xtx**2).sum(0)
    else:  # large: accumulate without the [n, c, c] temporary
        s_sum = matrix.T @ matrix
        s2_sum = (matrix**2).T @ (matrix**2)
    if method == "shrinkage_eye":  # Ledoit & Wolf (2004)
        s = s_sum / n
        b2 = float(np.sum(s2_sum / n - s * s) / n)
        m = float(np.trace(s)) / s.shape[0]
        d2 = float(np.sum((s - m * np.eye(s.shape[0])) ** 2))
        b2 = min(d2, b2)
        shrunk = b2 / d2 * m * np.eye(s.shape[0]) + (d2 - b2) / d2 * s
        return shrunk * n / dof
    # shrinkage_diag: Schäfer & Strimmer (2005)
    s = s_sum / dof
    var = np.diag(s)
    std = np.sqrt(var)
    s_mean = s_sum / std[None, :] / std[:, None] / (n - 1)
    s2_mean = s2_sum / var[None, :] / var[:, None] / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    off = ~np.eye(s.shape[0], dtype=bool)
    denom = float(np.sum(s_mean[off] ** 2))
    # no off-diagonal correlation (one channel, or exactly uncorrelated ones): nothing to
    # shrink, any lambda gives the same matrix (0 / 0 would make it NaN)
    lamb = float(np.sum(var_hat[off]) / denom) if denom > 0 else 0.0
    lamb = max(min(lamb, 1.0), 0.0)
    return s * (np.eye(s.shape[0]) + (1.0 - lamb) * off)


def _invert_covariance(cov: np.ndarray, method: str, n_independent: int) -> np.ndarray:
    """``inv(cov)``, refusing a singular (or numerically singular) covariance estimate, whose
    "inverse" is rounding noise of size ~1e16 instead of a precision matrix.

    ``n_independent``: the rank bound of the residuals (rows minus the means removed); a
    ``"full"`` covariance of more channels than that is singular by construction. Otherwise the
    1-norm condition number of the covariance scaled to unit diagonal (a correlation matrix:
    channel units do not matter) is formed from the inverse at O(c^2) cost and must leave at
    least 3 significant digits (``cond < 1e-3 / eps``)."""
    n_channels = cov.shape[0]
    others = "'shrinkage_diag', 'shrinkage_eye' or 'diag'" if method == "full" else "'diag'"
    if method == "full" and n_independent < n_channels:
        raise ValueError(
            f"method='full' needs more independent residuals than channels: {n_independent} "
            f"residual degree(s) of freedom for {n_channels} channels give a singular covariance; "
            f"use method={others} (or more measurements)"
        )
    singular = ValueError(
        f"method={method!r} gives a singular noise covariance (channels that are linear "
        f"combinations of others, or too few measurements); use method={others}"
    )
    try:
        prec = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        raise singular from None
    scale = np.sqrt(np.diagonal(cov))  # > 0: zero-variance channels are rejected before
    cond = float(np.abs(cov / scale[:, None] / scale[None, :]).sum(axis=0).max()) * float(
        np.abs(prec * scale[:, None] * scale[None, :]).sum(axis=0).max()
    )
    if not cond * np.finfo(np.float64).eps < 1e-3:  # NaN too
        raise singular
    return prec


def noise_precision(
    residuals: Any, *, method: str = "shrinkage_diag", dof: int | None = None
) -> np.ndarray:
    """Noise precision (inverse covariance) over channels, estimated from residuals.

    Equals ``rsatoolbox.data.noise.prec_from_residuals(residuals, dof, method)``.

    Args:
        residuals: ``[n_residuals, n_channels]``; their mean over rows is removed first.
        method: ``"shrinkage_diag"`` (default; shrink toward the diagonal, Schäfer & Strimmer
            2005), ``"shrinkage_eye"`` (toward a multiple of the identity, Ledoit & Wolf
            2004), ``"diag"`` (univariate noise normalization) or ``"full"`` (no shrinkage).
        dof: degrees of freedom of the estimate (default ``n_residuals - 1``).

    Returns:
        ``[n_channels, n_channels]`` precision matrix.

    Raises:
        ValueError: the covariance estimate is singular (``"full"`` with ``n_residuals - 1 <
            n_channels``, or collinear channels): use a shrinkage estimator or ``"diag"``.
    """
    res = _as_float_array("residuals", residuals)
    if res.ndim != 2 or res.shape[0] < 2 or res.shape[1] < 1:
        raise ValueError(f"residuals must be [n_residuals >= 2, n_channels], got shape {res.shape}")
    check_choice("method", method, NOISE_ESTIMATORS)
    if dof is None:
        dof = res.shape[0] - 1
    check_number("dof", dof, gt=0)
    return _scaled_precision(
        _demeaned(res),
        float(dof),
        method,
        res.shape[0] - 1,
        "residuals",
        "residuals must vary in every channel; a channel has zero variance",
    )


def _scaled_precision(
    matrix: np.ndarray, dof: float, method: str, n_independent: int, name: str, constant: str
) -> np.ndarray:
    """The precision of demeaned residuals ``matrix [n, c]``, estimated on a copy scaled by a
    power of two (exact) so that no sum of squares under- or overflows; ``name``: the
    argument they come from, ``constant``: the message for a channel without variance."""
    exponent = _max_exponent(matrix)
    matrix = np.ldexp(matrix, -exponent)
    if np.any(np.einsum("ij,ij->j", matrix, matrix) == 0):
        raise ValueError(constant)
    prec = _invert_covariance(_covariance(matrix, dof, method), method, n_independent)
    with np.errstate(over="ignore", under="ignore"):
        prec = np.ldexp(prec, -2 * exponent)
    if not (np.isfinite(prec).all() and np.diagonal(prec).min() >= np.finfo(np.float64).tiny):
        size = "small" if exponent < 0 else "large"
        raise ValueError(
            f"{name} are too {size}: their noise precision (inverse covariance) is out of "
            "float64's range; rescale them"
        )
    return prec


def _group(conditions: Any, n_obs: int, name: str = "conditions") -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(host_array(conditions))
    if labels.ndim != 1 or labels.shape[0] != n_obs:
        raise ValueError(
            f"{name} must be a 1-D label per observation ({n_obs}), got shape {labels.shape}"
        )
    try:
        unique, inverse = np.unique(labels, return_inverse=True)
    except TypeError:  # e.g. None among numbers: labels that cannot be sorted
        kinds = sorted({type(v).__name__ for v in labels.tolist()})
        raise TypeError(
            f"{name} must hold labels of one sortable kind (all numbers or all strings), "
            f"got a mix of {kinds}"
        ) from None
    return unique, inverse.reshape(-1)


def _segment_sums(data: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Sum of the rows of ``data [n, c]`` per segment index ``segment [n]``: ``[n_segments, c]``.

    A sparse indicator matrix times ``data`` (O(n c), rows added in observation order): about
    10x faster than ``np.add.reduceat`` over sorted rows, whose per-segment overhead dominates
    when segments hold one to a few rows (as the cells of a crossnobis fold do)."""
    n = data.shape[0]
    indicator = csr_matrix((np.ones(n), (segment, np.arange(n))), shape=(n_segments, n))
    return np.asarray(indicator @ data)


def _condition_means(data: np.ndarray, inverse: np.ndarray, n_cond: int) -> np.ndarray:
    """Mean of the rows of ``data`` per condition index ``inverse``: ``[n_cond, channels]``."""
    counts = np.bincount(inverse, minlength=n_cond)
    if np.any(counts == 0):
        raise ValueError("conditions must each be measured at least once")
    return _segment_sums(data, inverse, n_cond) / counts[:, None]


def noise_precision_from_measurements(
    data: Any, conditions: Any, *, method: str = "shrinkage_diag", dof: int | None = None
) -> np.ndarray:
    """Noise precision from repeated measurements: residuals around each condition's mean.

    Args:
        data: ``[n_observations, n_channels]``.
        conditions: condition label of each observation (each condition measured >= once).
        method: see :func:`noise_precision`.
        dof: degrees of freedom; default ``n_observations - n_conditions`` (each condition
            mean costs one). rsatoolbox's ``prec_from_measurements`` uses
            ``(n_conditions - 1) * n_repeats`` for balanced data; pass ``dof`` to reproduce it.

    Raises:
        ValueError: a singular covariance estimate (``"full"`` with ``n_observations -
            n_conditions < n_channels``, or collinear channels), as :func:`noise_precision`.
    """
    arr = _as_float_array("data", data)
    if arr.ndim != 2:
        raise ValueError(f"data must be [n_observations, n_channels], got shape {arr.shape}")
    unique, inverse = _group(conditions, arr.shape[0])
    means = _condition_means(arr, inverse, len(unique))
    residuals = arr - means[inverse]
    if dof is None:
        dof = arr.shape[0] - len(unique)
        if dof <= 0:
            raise ValueError("conditions must repeat: no residual degrees of freedom are left")
    check_choice("method", method, NOISE_ESTIMATORS)
    check_number("dof", dof, gt=0)
    return _scaled_precision(
        residuals - residuals.mean(0, keepdims=True),
        float(dof),
        method,
        arr.shape[0] - len(unique),
        "data",
        "data must vary within conditions in every channel",
    )


def _max_asymmetry(matrix: np.ndarray, block: int = 256) -> float:
    """``max |M_ij - M_ji|`` over the upper triangle of a square matrix, by square tiles: tile
    ``(i, j)`` against the transposed tile ``(j, i)`` (``j >= i``), both small enough for the
    cache, so the transposed reads do not miss on every element (numpy does not block a
    transposed operand); half the entries of ``M - M^T``. NaN if an entry is NaN (or two
    mirrored entries are the same infinity), infinite if one is infinite."""
    worst = 0.0
    n = matrix.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, overflow: in the result
        for i in range(0, n, block):
            for j in range(i, n, block):
                diff = matrix[i : i + block, j : j + block] - matrix[j : j + block, i : i + block].T
                np.abs(diff, out=diff)
                tile = float(diff.max())
                if math.isnan(tile):  # a NaN entry (Python's max would drop it)
                    return tile
                worst = max(worst, tile)
    return worst


_EPS = float(np.finfo(np.float64).eps)


def _not_positive(detail: str) -> ValueError:
    return ValueError(
        f"noise must be a positive definite precision ({detail}): one that is not gives "
        "negative or zero squared distances"
    )


def _check_precision(noise: Any, n_channels: int) -> np.ndarray:
    """The precision matrix ``[c, c]`` (symmetric, positive diagonal), or its diagonal ``[c]``
    (all > 0) when given as a vector. Positive definiteness is not factorized here (O(c^3),
    more than the distances cost with many channels): a matrix that is not yet passes these
    checks shows as negative squared distances, which :func:`rdm` rejects."""
    prec = _as_float_array("noise", noise, finite=False)
    if prec.shape != (n_channels, n_channels):
        check_finite("noise", prec)  # before the shape checks, as for every other input
    if prec.ndim == 1:
        if prec.shape[0] != n_channels:
            raise ValueError(
                f"noise must have {n_channels} diagonal entries, got shape {prec.shape}"
            )
        if not prec.min() > 0:
            raise _not_positive(f"its diagonal entries must be > 0, got minimum {prec.min():.6g}")
        return prec
    if prec.shape != (n_channels, n_channels):
        raise ValueError(
            f"noise must be a precision matrix [{n_channels}, {n_channels}], got shape {prec.shape}"
        )
    # one pass for finiteness and symmetry: a NaN or infinite entry makes the asymmetry NaN or
    # infinite (inf - inf, nan - x, inf - x), so only then is the matrix scanned for them
    asymmetry = _max_asymmetry(prec)
    if not math.isfinite(asymmetry):
        check_finite("noise", prec)  # raises for non-finite entries
        # finite entries whose difference overflows: far beyond any tolerance below
        raise ValueError("noise must be a symmetric precision matrix")
    # np.allclose(prec, prec.T, atol=1e-8 * max(1, max |prec|)); accepted at once when every
    # |P_ij - P_ji| <= 1e-8 (<= that atol), e.g. an inverse that is symmetric up to rounding
    if not asymmetry <= 1e-8 and not np.allclose(
        prec, prec.T, atol=1e-8 * max(1.0, float(np.abs(prec).max()))
    ):
        raise ValueError("noise must be a symmetric precision matrix")
    low = float(np.diagonal(prec).min())
    if not low > 0:
        raise _not_positive(f"its diagonal entries must be > 0, got minimum {low:.6g}")
    return prec


# --------------------------------------------------------------------------------------------
# RDMs


def _max_exponent(x: np.ndarray) -> int:
    """``e`` with ``max |x| / 2**e`` in ``[0.5, 1)`` (0 for an all-zero or empty ``x``; two
    reductions, no ``|x|`` temporary)."""
    top = max(float(x.max()), -float(x.min())) if x.size else 0.0
    return int(np.frexp(top)[1])


def _unit_rows(v: np.ndarray) -> np.ndarray:
    """Each row of ``v [k, P]`` scaled by a power of two (exact) to a largest ``|entry|`` in
    ``[0.5, 1)`` (zero rows stay zero): for comparisons and pools that do not depend on each
    RDM's scale, so that their sums of squares neither over- nor underflow."""
    top = np.maximum(v.max(axis=1), -v.min(axis=1)) if v.size else np.zeros(v.shape[0])
    return np.ldexp(v, -np.frexp(top)[1][:, None])


# Data with max |x| in [2**-65, 2**64) is used as it is: its Gram entries (at most
# n_channels * 4**64) cannot overflow and only those below float64's normal range, ~2**-890 of
# the largest, underflow. Scaling by a power of two is exact, so skipping it changes nothing
# unless an entry is subnormal; it saves a copy of the data.
_UNSCALED_EXPONENTS = 64


def _unit_scaled(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """``arr * 2**-e`` and ``e`` (:func:`_max_exponent`) when ``arr``'s magnitude is extreme;
    ``arr`` itself and 0 otherwise (see ``_UNSCALED_EXPONENTS``)."""
    exponent = _max_exponent(arr)
    if abs(exponent) <= _UNSCALED_EXPONENTS:
        return arr, 0
    return np.ldexp(arr, -exponent), exponent


def _weighted(x: np.ndarray, prec: np.ndarray | None) -> np.ndarray:
    """``x P`` for a precision matrix ``P [c, c]``, its diagonal ``[c]`` or ``None`` (identity)."""
    if prec is None:
        return x
    return x * prec if prec.ndim == 1 else x @ prec


def _distances_from_kernel(kernel: np.ndarray, symmetric: bool) -> np.ndarray:
    """``K_ii + K_jj - K_ij - K_ji`` for all pairs ``i < j`` of a kernel ``[n, n]``, as a vector.

    ``kernel`` is the caller's temporary and is overwritten: the distances are formed in place
    by contiguous passes and the upper triangle is read out once (about 2x faster at 1000
    conditions than gathering the triangle, its transpose and an outer sum separately).
    ``symmetric``: ``K`` is symmetric in exact arithmetic (``X P X^T``), so ``K_ij + K_ji`` is
    read as ``2 K_ij``: rsatoolbox's formula ``diag_i + diag_j - 2 K_ij``.
    """
    diag = np.diagonal(kernel).copy()
    if symmetric:
        kernel *= -2.0
    else:
        kernel = kernel + kernel.T
        np.negative(kernel, out=kernel)
    kernel += diag[:, None]
    kernel += diag[None, :]
    return kernel[_upper_mask(kernel.shape[0])]


def _factor(x: np.ndarray, prec: np.ndarray | None) -> np.ndarray | None:
    """``W`` with ``x P x^T = W W^T`` where one is at hand, else ``None`` (``x [n, c]``).

    ``P`` the identity: ``x``. A full precision matrix with ``c^2 < n (n + c)`` (the Cholesky
    factor is cheap next to the products) and ``n c (n + c) >= 4e6`` (below that the three
    calls' overhead outweighs the saved multiply-adds: measured): ``x U^T`` for ``P = U^T U``,
    a triangular product (BLAS trmm), after which the symmetric product (syrk) does about half
    the multiply-adds of ``(x P) x^T``. A diagonal ``P``, a smaller full one or one that is not
    positive definite: ``None`` (the direct product).
    """
    if prec is None:
        return x
    n, c = x.shape
    if prec.ndim == 2 and c * c < n * (n + c) and n * c * (n + c) >= 4_000_000:
        try:
            upper = cholesky(prec, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return dtrmm(1.0, upper, x.T).T  # x U^T, [n, c]
    return None


# From this many rows, with no more columns than rows, the squared distances of a factor's
# rows come from the norms and one in-place syrk (:func:`_factor_distances`): measured faster
# (1.3x at 1000 x 100, 1.5x at 2000 x 100); below, the plain product's extra passes are cheap.
_SYRK_MIN_ROWS = 128


def _upper_products(w: np.ndarray, alpha: float, sums: np.ndarray | None = None) -> np.ndarray:
    """``alpha w_i . w_j`` (plus ``sums[i] + sums[j]``) for all pairs ``i < j`` of the rows of
    ``w [n, k]``, as a vector: one BLAS syrk fills one triangle (``w @ w.T`` also copies it to
    the other) and a rank-two update (syr2) adds the pairwise sums to that triangle only (an
    ``[n, n]`` outer sum costs 3x as much: numpy does not vectorize the broadcast add)."""
    # a C-ordered matrix's transpose is the Fortran one BLAS writes; its lower triangle is
    # the C-ordered upper one
    return _upper_vector(dsyrk(alpha, w.T, trans=1, lower=1), sums)


def _upper_vector(products: np.ndarray, sums: np.ndarray | None) -> np.ndarray:
    """The lower triangle BLAS wrote into the Fortran ``[n, n]`` ``products`` (plus
    ``sums[i] + sums[j]``, by syr2) as the C-ordered upper triangle's vector."""
    if sums is not None:
        products = dsyr2(1.0, sums, np.ones_like(sums), lower=1, a=products, overwrite_a=1)
    return products.T[_upper_mask(products.shape[0])]


def _cross_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """``sum_f (a_fi - a_fj) . (b_fi - b_fj)`` for all pairs ``i < j`` of the rows of
    ``a``, ``b`` ``[F, n, k]``, as a vector, and the largest ``|K_ii|`` of the kernel
    ``K = sum_f a_f b_f^T`` (the scale of their rounding).

    With ``k < n`` rows (from :data:`_SYRK_MIN_ROWS` on) on one triangle: a BLAS syr2k per
    ``f`` accumulates ``-(a_f b_f^T + b_f a_f^T)`` and syr2 adds ``K_ii + K_jj`` (2x faster
    than the product and :func:`_distances_from_kernel`'s transposed pass at 1000 x 100,
    measured; with ``k >= n`` the product is faster)."""
    n, k = a.shape[1:]
    if n < _SYRK_MIN_ROWS or k >= n:
        kernel = a[0] @ b[0].T
        for f in range(1, a.shape[0]):
            kernel += a[f] @ b[f].T
        scale = float(np.abs(np.diagonal(kernel)).max())
        return _distances_from_kernel(kernel, symmetric=False), scale
    products = dsyr2k(-1.0, a[0].T, b[0].T, trans=1, lower=1)
    for f in range(1, a.shape[0]):
        products = dsyr2k(
            -1.0, a[f].T, b[f].T, trans=1, lower=1, beta=1.0, c=products, overwrite_c=1
        )
    diagonal = np.einsum("fij,fij->i", a, b)
    return _upper_vector(products, diagonal), float(np.abs(diagonal).max())


def _factor_distances(w: np.ndarray) -> tuple[np.ndarray, float]:
    """``|w_i - w_j|^2`` for all pairs ``i < j`` of the rows of ``w [n, k]`` as a vector, and
    the largest ``|w_i|^2``: ``|w_i|^2 + |w_j|^2 - 2 w_i . w_j`` on one triangle of an
    ``[n, n]`` buffer (no passes over all of it, as ``w @ w.T`` then
    :func:`_distances_from_kernel` need)."""
    sq = np.einsum("ij,ij->i", w, w)
    return _upper_products(w, -2.0, sq), float(sq.max())


def _symmetric_distances(x: np.ndarray, prec: np.ndarray | None) -> tuple[np.ndarray, float]:
    """``(x_i - x_j)^T P (x_i - x_j)`` for all pairs ``i < j`` of the rows of ``x [n, c]``
    and the largest Gram diagonal entry ``max |K_ii|`` they were formed from."""
    w = _factor(x, prec)
    if w is not None and w.shape[0] >= _SYRK_MIN_ROWS and w.shape[1] <= w.shape[0]:
        return _factor_distances(w)
    kernel = w @ w.T if w is not None else _weighted(x, prec) @ x.T
    scale = float(np.abs(np.diagonal(kernel)).max())
    return _distances_from_kernel(kernel, symmetric=True), scale


# A difference of terms up to this many times its own size keeps at least half of float64's
# digits (rounding of order eps times the terms against the result: relative error <= 1e-8).
_MAX_CANCELLATION = 1e-8 / _EPS


def _offset_cancels(size: float, scale: float) -> bool:
    """Whether distances formed as ``K_ii + K_jj - K_ij - K_ji`` may have lost half their
    digits: rounding of order ``eps * scale`` (``scale = max |K_ii|``, read before
    :func:`_distances_from_kernel` overwrites the kernel) against distances of mean size
    ``size``, as when the patterns share an offset much larger than their differences."""
    return bool(scale > _MAX_CANCELLATION * size)


def _pair_distances(patterns: np.ndarray, prec: np.ndarray | None) -> tuple[np.ndarray, float]:
    """``(x_i - x_j)^T P (x_i - x_j)`` for all pairs ``i < j`` of the rows, as a vector, and the
    largest Gram diagonal entry they were formed from (the scale of their rounding).

    From the Gram matrix (one product); when a large common offset would leave the expansion
    without precision (:func:`_offset_cancels`), again from the patterns minus their mean,
    which leaves every distance unchanged.
    """
    out, scale = _symmetric_distances(patterns, prec)
    # squared distances are >= 0 up to rounding: their mean is their size (no |d| temporary)
    if _offset_cancels(float(out.sum()) / out.size, scale):
        out, scale = _symmetric_distances(patterns - patterns.mean(axis=0), prec)
    return out, scale


def rdm(
    data: Any,
    method: str = "euclidean",
    *,
    conditions: Any = None,
    runs: Any = None,
    noise: Any = None,
    remove_mean: bool = False,
    prior_lambda: float | None = None,
    prior_weight: float | None = None,
) -> np.ndarray:
    """Representational dissimilarity matrix of ``data``, as a vector.

    Equals ``rsatoolbox.rdm.calc_rdm(Dataset(data, obs_descriptors=...), method,
    descriptor=..., noise=..., cv_descriptor=...).get_vectors()[0]`` (``"cosine"`` is not in
    rsatoolbox and equals ``scipy.spatial.distance.pdist(..., "cosine")``).

    Args:
        data: ``[n_observations, n_channels]`` responses (rows: stimuli or trials).
        method: ``"euclidean"`` (squared, / n_channels), ``"correlation"``, ``"cosine"``,
            ``"mahalanobis"`` (``d^T P d / n_channels``), ``"crossnobis"`` (cross-validated
            Mahalanobis, unbiased: can be negative), ``"poisson"`` (for spike counts or rates
            ``>= 0``: the symmetrized KL divergence of Poisson distributions,
            ``sum_c (l_ic - l_jc)(log l_ic - log l_jc) / n_channels``, of the rates ``l``
            shrunk towards ``prior_lambda``) or ``"poisson_cv"`` (the same with the rate
            differences of the other runs against the log-rate differences of each run: less
            biased, can be negative).
        conditions: label per observation; observations with the same label are averaged and
            the RDM rows follow the sorted labels. Required for ``"crossnobis"`` and
            ``"poisson_cv"``.
        runs: cross-validation fold per observation for ``"crossnobis"`` and ``"poisson_cv"``:
            each fold's condition means are compared with the means of all other folds and the
            results averaged (leave-one-run-out, as rsatoolbox). Default: the k-th occurrence
            of each condition is fold k (needs the same number of repeats per condition).
        noise: for ``"mahalanobis"`` / ``"crossnobis"``: a symmetric positive definite
            precision matrix ``[n_channels, n_channels]`` (or its diagonal, all entries
            ``> 0``), ``None`` for the identity (then
            Mahalanobis equals Euclidean, as in rsatoolbox), or the name of an estimator from
            :data:`NOISE_ESTIMATORS` to estimate it from the residuals around the condition
            means (:func:`noise_precision_from_measurements`).
        remove_mean: subtract each pattern's mean over channels first (no effect on
            ``"correlation"``; not for the Poisson methods, whose rates must stay ``>= 0``).
        prior_lambda, prior_weight: for the Poisson methods, the rates are
            ``(mean + prior_lambda * prior_weight) / (1 + prior_weight)`` (default 1.0 and
            0.1, rsatoolbox's), which keeps a rate of 0 finite in the logarithm.

    Returns:
        ``[n_pairs]`` float64 RDM vector.

    rsatoolbox 0.3.2's ``calc_rdm_poisson_cv`` returns the RDM of its last fold only; here the
    folds' RDMs are averaged, as for ``"crossnobis"`` (equal to rsatoolbox's per fold, tested).
    """
    arr = _as_float_array("data", data, finite=False)  # checked below, where needed
    if arr.ndim != 2:
        check_finite("data", arr)
        raise ValueError(f"data must be [n_observations, n_channels], got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"data must have at least one channel, got shape {arr.shape}")
    check_choice("method", method, RDM_METHODS)
    _check_bool("remove_mean", remove_mean)
    n_channels = arr.shape[1]
    if noise is not None and method not in ("mahalanobis", "crossnobis"):
        raise ValueError(f"noise is only used by 'mahalanobis' and 'crossnobis', not {method!r}")
    if runs is not None and method not in ("crossnobis", "poisson_cv"):
        raise ValueError(f"runs is only used by 'crossnobis' and 'poisson_cv', not {method!r}")
    if method in _POISSON:
        check_finite("data", arr)
        return _poisson(arr, method, conditions, runs, remove_mean, prior_lambda, prior_weight)
    for name, value in (("prior_lambda", prior_lambda), ("prior_weight", prior_weight)):
        if value is not None:
            raise ValueError(f"{name} is only used by 'poisson' and 'poisson_cv', not {method!r}")

    prec: np.ndarray | None = None
    if isinstance(noise, str):
        check_choice("noise", noise, NOISE_ESTIMATORS)
        if conditions is None:
            raise ValueError("conditions must be given to estimate the noise from residuals")
    elif noise is not None:
        prec = _check_precision(noise, n_channels)
    if method != "crossnobis" and not isinstance(noise, str):
        # the data as it is, unchecked: its Gram diagonal (or its norms) shows whether it was
        # finite and moderate, so the finiteness and scale passes over it are saved
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite data: checked below
            out = _distances(arr, method, conditions, prec, remove_mean, exponent=None)
        if out is not None:
            return out
    check_finite("data", arr)
    # extreme data is scaled by a power of two (exact) so that the Gram matrices neither over-
    # nor underflow: squared distances scale back by 4 ** exponent, cosines do not change
    arr, exponent = _unit_scaled(arr)
    if isinstance(noise, str):
        # distances under the data's own noise do not depend on its scale: estimated on the
        # scaled data, nothing scales back (and no precision overflows at extreme scales)
        prec = noise_precision_from_measurements(arr, conditions, method=noise)
        exponent = 0
    if method == "crossnobis":
        out = _crossnobis(arr, conditions, runs, prec, remove_mean)
    else:
        out = _distances(arr, method, conditions, prec, remove_mean, exponent=exponent)
        assert out is not None
    if not exponent or method in ("correlation", "cosine"):  # cosines do not scale
        return out
    return np.ldexp(out, 2 * exponent, out=out)


# A Gram diagonal (squared norm) in this range comes from finite data whose Gram matrix can
# neither overflow nor lose its largest entries to underflow (the range of the squares of data
# within 2**+-64, _UNSCALED_EXPONENTS); outside it, or NaN, the data is checked and scaled.
_SAFE_SQUARES = (2.0 ** (-2 * _UNSCALED_EXPONENTS), 2.0 ** (4 * _UNSCALED_EXPONENTS))


def _safe_square(value: float) -> bool:
    return _SAFE_SQUARES[0] <= value <= _SAFE_SQUARES[1]  # False for NaN


def _distances(
    arr: np.ndarray,
    method: str,
    conditions: Any,
    prec: np.ndarray | None,
    remove_mean: bool,
    *,
    exponent: int | None,
) -> np.ndarray | None:
    """The RDM vector of ``arr [n_observations, n_channels]`` for every method but crossnobis.

    ``exponent``: the power-of-two scale already taken out of checked data (for messages);
    ``None``: ``arr`` is unchecked and unscaled, and the result is ``None`` unless the largest
    Gram diagonal entry (or squared norm) is :func:`_safe_square` (a NaN or infinity in the data
    makes it NaN or infinite).
    """
    if conditions is not None:
        unique, inverse = _group(conditions, arr.shape[0])
        patterns = _condition_means(arr, inverse, len(unique))
    else:
        patterns = arr
    if patterns.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 conditions, got {patterns.shape[0]}")
    centre = remove_mean or method == "correlation"
    if method in ("correlation", "cosine"):
        return _cosine_distances(patterns, method, centre=centre, guarded=exponent is None)
    if centre:
        patterns = _centred(patterns)
    out, scale = _pair_distances(patterns, prec)
    if exponent is None and not _safe_square(scale):
        return None
    n_channels = arr.shape[1]
    # K_ii + K_jj - 2 K_ij rounds to within ~4 c eps max K_ii: beyond that, P is not positive
    low = float(out.min())
    if prec is not None and prec.ndim == 2 and low < -4 * n_channels * _EPS * scale:
        low = np.ldexp(low / n_channels, 2 * (exponent or 0))
        raise _not_positive(f"a squared distance came out {low:.6g}, beyond rounding")
    out /= n_channels
    if low < 0:  # rounding below 0 (a min read is a third of np.maximum's time)
        np.maximum(out, 0.0, out=out)
    return out


def _centred(patterns: np.ndarray) -> np.ndarray:
    """Each row of ``patterns [n, c]`` minus its mean (a new array)."""
    return patterns - patterns.mean(axis=1, keepdims=True)


def _cosine_distances(
    patterns: np.ndarray, method: str, *, centre: bool, guarded: bool
) -> np.ndarray | None:
    """``1 - cos(x_i, x_j)`` for all pairs ``i < j`` of the rows of ``patterns [n, c]``, each
    row first centred on its mean with ``centre``; with ``guarded``, ``None`` unless the
    largest squared norm is :func:`_safe_square`.

    The Gram matrix is one symmetric product (BLAS syrk; one triangle of it where
    :func:`_upper_products` fills it); the rows are scaled to unit norm
    before it when that is cheaper (``c <= n``, as rsatoolbox does) and the ``n (n - 1) / 2``
    upper entries after it otherwise (many channels: one pass over ``[n, c]`` saved, and the
    centring is a rank-one correction of the Gram matrix, :func:`_centred_gram`).
    """
    n, c = patterns.shape
    if c <= n:
        if centre:
            patterns = _centred(patterns)
        squares = np.einsum("ij,ij->i", patterns, patterns)
        if guarded and not _safe_square(float(squares.max())):
            return None
        norms = np.sqrt(squares)
        _check_norms(norms, method)
        sim = _upper_products(patterns / norms[:, None], 1.0)
    else:
        centred = _centred_gram(patterns) if centre else None
        if centred is not None:
            gram, largest = centred
        else:
            if centre:
                patterns = _centred(patterns)
            gram = patterns @ patterns.T
            largest = float(np.diagonal(gram).max())
        if guarded and not _safe_square(largest):
            return None
        norms = np.sqrt(np.diagonal(gram))
        _check_norms(norms, method)
        gram /= norms[:, None]
        gram /= norms[None, :]
        sim = gram[_upper_mask(n)]
    out = np.subtract(1.0, sim, out=sim)
    if out.min() < 0:  # rounding of parallel patterns below 0
        np.maximum(out, 0.0, out=out)
    return out


def _centred_gram(patterns: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The Gram matrix of the mean-centred rows of ``patterns [n, c]`` without centring them:
    ``X X^T - c m m^T`` (``m``: the row means), its upper triangle and diagonal filled by one
    syrk onto ``-c m m^T`` (the lower triangle holds that term only), and the largest
    uncentred squared norm, ``max_i |x_i|^2``. Saves the copy of the data (20 ms at
    1000 x 10,000).

    The rounding grows from the order of ``eps |x_i - m_i| |x_j - m_j|`` (centred rows) to
    that of ``eps |x_i| |x_j|``, by a factor of about ``1 + r`` for ``r = m_i^2 / var_i``
    (3e-14 against 2e-16 for Poisson counts at rate 100). ``None`` where that could lose half
    the digits (``r > _MAX_CANCELLATION``, near-constant rows; NaN data too): then the rows
    are centred.
    """
    c = patterns.shape[1]
    means = patterns.mean(axis=1)
    offsets = c * means * means
    base = np.multiply.outer(-c * means, means)
    # the Fortran view's lower triangle is the C-ordered upper one (as in _upper_products)
    gram = dsyrk(1.0, patterns.T, trans=1, lower=1, beta=1.0, c=base.T, overwrite_c=1).T
    spreads = np.diagonal(gram)
    if not np.all(offsets <= _MAX_CANCELLATION * spreads):
        return None
    return gram, float((spreads + offsets).max())


def _check_norms(norms: np.ndarray, method: str) -> None:
    if np.any(norms == 0):
        what = "constant" if method == "correlation" else "all-zero"
        raise ValueError(f"data must not contain {what} patterns for a {method} RDM")


def _crossnobis(
    arr: np.ndarray, conditions: Any, runs: Any, prec: np.ndarray | None, remove_mean: bool
) -> np.ndarray:
    m_train, m_test = _run_means(arr, conditions, runs, "crossnobis")
    if remove_mean:
        m_train -= m_train.mean(axis=2, keepdims=True)
        m_test -= m_test.mean(axis=2, keepdims=True)
    out, scale = _cross_fold_distances(m_train, m_test, prec)
    # a large common offset: one shift of every mean (exact); cross-validated distances may be
    # negative, so their size is the mean of |d|
    if _offset_cancels(float(np.abs(out).mean()), scale):
        shift = m_test.mean(axis=(0, 1))
        out, _ = _cross_fold_distances(m_train - shift, m_test - shift, prec)
    out /= m_train.shape[0] * arr.shape[1]
    return out


def _run_means(
    arr: np.ndarray, conditions: Any, runs: Any, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-run-out condition means ``[folds, conditions, channels]`` of ``arr``: each
    fold's own (test) and all other folds' (train)."""
    if conditions is None:
        raise ValueError(
            f"conditions must be given for {method!r} (it needs repeated measurements)"
        )
    unique, inverse = _group(conditions, arr.shape[0])
    n_cond = len(unique)
    if n_cond < 2:
        raise ValueError(f"conditions must name at least 2 conditions, got {n_cond}")
    if runs is None:
        counts = np.bincount(inverse, minlength=n_cond)
        if not np.all(counts == counts[0]):
            raise ValueError(
                "runs must be given when conditions are not repeated equally often "
                f"(repeats per condition: {sorted(set(counts.tolist()))})"
            )
        order = np.argsort(inverse, kind="stable")  # k-th occurrence of a condition: fold k
        fold = np.empty(arr.shape[0], dtype=np.intp)
        fold[order] = np.arange(arr.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    else:
        _, fold = _group(runs, arr.shape[0], "runs")
    n_folds = int(fold.max()) + 1  # fold: 0 .. n_folds - 1, each used (np.unique's inverse)
    if n_folds < 2:
        raise ValueError("runs must define at least 2 cross-validation folds")
    # one grouped pass over the observations: sums and counts per (fold, condition)
    cell = fold * n_cond + inverse
    cell_counts = np.bincount(cell, minlength=n_folds * n_cond).reshape(n_folds, n_cond)
    totals = cell_counts.sum(axis=0)
    for f in range(n_folds):
        for part, counts_f in (("run", cell_counts[f]), ("other runs", totals - cell_counts[f])):
            if np.any(counts_f == 0):
                raise ValueError(f"every condition must be measured in each {part} (fold {f})")
    sums = _segment_sums(arr, cell, n_folds * n_cond).reshape(n_folds, n_cond, -1)
    m_test = sums / cell_counts[:, :, None]
    m_train = np.subtract(sums.sum(axis=0), sums)
    m_train /= (totals - cell_counts)[:, :, None]
    return m_train, m_test


def _poisson(
    arr: np.ndarray,
    method: str,
    conditions: Any,
    runs: Any,
    remove_mean: bool,
    prior_lambda: float | None,
    prior_weight: float | None,
) -> np.ndarray:
    """:func:`rdm`'s Poisson methods (rsatoolbox's ``calc_rdm_poisson`` and, averaged over
    folds, ``calc_rdm_poisson_cv``): ``K_ii + K_jj - K_ij - K_ji`` of the kernel
    ``K = rates @ log(rates)^T`` (cross-validated: the other runs' rates against each run's
    log-rates, summed over folds), over the channels."""
    if remove_mean:
        raise ValueError(f"remove_mean must be False for {method!r}: its rates must stay >= 0")
    prior_lambda = 1.0 if prior_lambda is None else prior_lambda
    prior_weight = 0.1 if prior_weight is None else prior_weight
    check_number("prior_lambda", prior_lambda, gt=0)
    check_number("prior_weight", prior_weight, ge=0)
    if arr.size and arr.min() < 0:
        raise ValueError(f"data must be spike counts or rates >= 0 for {method!r}")

    def rates(means: np.ndarray) -> np.ndarray:
        shrunk = (means + prior_lambda * prior_weight) / (1.0 + prior_weight)
        if shrunk.size and not shrunk.min() > 0:
            raise ValueError(
                f"data must have a rate > 0 in every channel of every condition for {method!r} "
                "with prior_weight=0 (log of 0); give prior_weight > 0"
            )
        return shrunk

    if method == "poisson_cv":
        m_train, m_test = _run_means(arr, conditions, runs, method)
        out, _ = _cross_fold_distances(rates(m_train), np.log(rates(m_test)), None)
        out /= m_train.shape[0] * arr.shape[1]
        return out
    if conditions is not None:
        unique, inverse = _group(conditions, arr.shape[0])
        arr = _condition_means(arr, inverse, len(unique))
    if arr.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 conditions, got {arr.shape[0]}")
    lam = rates(arr)
    out, _ = _cross_distances(lam[None], np.log(lam)[None])
    out /= arr.shape[1]
    return out


def _cross_fold_distances(
    m_train: np.ndarray, m_test: np.ndarray, prec: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """Summed over folds, ``(a_i - a_j)^T P (b_i - b_j)`` of the train means ``a`` and test
    means ``b`` ``[folds, conditions, channels]`` (the mean over folds of the per-fold RDMs is
    the RDM of the summed cross-fold kernel), and the kernel's ``max |K_ii|`` for
    :func:`_offset_cancels`."""
    weighted = _weighted(m_train.reshape(-1, m_train.shape[2]), prec).reshape(m_train.shape)
    return _cross_distances(weighted, m_test)


# --------------------------------------------------------------------------------------------
# comparisons


# Columns per block in _block_moments: both stacks' blocks (5 x 256 kB at 2 x 3 RDMs) stay in
# cache while their cross products, squared norms and sums are read from them, so these cost
# about what ``a @ b.T`` alone costs (one read of the RDMs: 1.6 against 1.5 ms at 2 x 3 RDMs
# of 1000 conditions; separate passes: 3.0 ms).
_BLOCK = 32768
# norms strictly inside this range need no scaling (their squares neither under- nor overflow)
_SAFE_NORMS = (1e-140, 1e140)


def _block_moments(a: np.ndarray, b: np.ndarray, sums: bool) -> list[np.ndarray]:
    """``[a b^T [k_a, k_b], |a_i|^2 [k_a], |b_j|^2 [k_b]]`` and, with ``sums``, the rows' sums
    ``[k_a]``, ``[k_b]``, of ``a [k_a, P]`` and ``b [k_b, P]``, accumulated over blocks of
    ``_BLOCK`` columns (one read of each)."""
    total: list[np.ndarray] = []
    for start in range(0, a.shape[1], _BLOCK):
        block_a, block_b = a[:, start : start + _BLOCK], b[:, start : start + _BLOCK]
        parts = [
            block_a @ block_b.T,
            np.einsum("ij,ij->i", block_a, block_a),
            np.einsum("ij,ij->i", block_b, block_b),
        ]
        if sums:
            parts += [block_a.sum(axis=1), block_b.sum(axis=1)]
        if not total:
            total = parts
        else:
            for acc, part in zip(total, parts, strict=True):
                acc += part
    return total


def _similarities(a: np.ndarray, b: np.ndarray, *, centre: bool) -> np.ndarray | None:
    """Cosine similarities ``[k_a, k_b]`` of the rows of ``a [k_a, P]`` and ``b [k_b, P]``, of
    their mean-centred rows (Pearson r) with ``centre``, from one read
    (:func:`_block_moments`; the centring is a rank-one correction, as in
    :func:`_centred_gram`). ``None`` where a row is non-finite, zero or constant, its norm
    tiny or huge, or (``centre``) its mean outweighs its spread beyond ``_MAX_CANCELLATION``:
    then the caller checks the rows and takes :func:`_cosine_matrix`'s careful route."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite rows: None below
        cross, sq_a, sq_b, *sums = _block_moments(a, b, centre)
        if centre:
            n = a.shape[1]
            mean_a, mean_b = sums[0] / n, sums[1] / n
            offsets = (n * mean_a * mean_a, n * mean_b * mean_b)
            sq_a, sq_b = sq_a - offsets[0], sq_b - offsets[1]
            for offset, sq in zip(offsets, (sq_a, sq_b), strict=True):
                if not np.all(offset <= _MAX_CANCELLATION * sq):
                    return None
            cross -= n * np.multiply.outer(mean_a, mean_b)
        low, high = _SAFE_NORMS[0] ** 2, _SAFE_NORMS[1] ** 2
        if not all(np.all((low < sq) & (sq < high)) for sq in (sq_a, sq_b)):
            return None
    cross /= np.sqrt(sq_a)[:, None]
    cross /= np.sqrt(sq_b)[None, :]
    return cross


def _cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities ``[k_a, k_b]`` of the rows of (finite) ``a`` and ``b``; 0 for a
    zero row."""
    fast = _similarities(a, b, centre=False)
    return fast if fast is not None else _scaled_cosines(a, b)


def _scaled_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_cosine_matrix` for rows that may be zero, tiny or huge (:func:`_rows_and_norms`)."""
    a, na = _rows_and_norms(a)
    b, nb = _rows_and_norms(b)
    ok_a, ok_b = na > 0, nb > 0
    if ok_a.all() and ok_b.all():  # no zero vector: no subsets to copy
        out = a @ b.T
        out /= na[:, None]
        out /= nb[None, :]
        return out
    out = np.zeros((a.shape[0], b.shape[0]))
    out[np.ix_(ok_a, ok_b)] = (a[ok_a] @ b[ok_b].T) / na[ok_a, None] / nb[None, ok_b]
    return out


def _rows_and_norms(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(v, |v_i|)`` for ``v [k, P]``; rows whose norm is 0, tiny or huge (a sum of squares
    that under- or overflowed) are first divided by their largest absolute entry, which leaves
    their cosines unchanged. Well-scaled rows (the usual case) cost one pass."""
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))
    risky = ~((norms > _SAFE_NORMS[0]) & (norms < _SAFE_NORMS[1]))
    if not risky.any():
        return v, norms
    top = np.abs(v[risky]).max(axis=1)
    v = v.copy()
    v[risky] /= np.where(top > 0, top, 1.0)[:, None]
    norms[risky] = np.sqrt(np.einsum("ij,ij->i", v[risky], v[risky]))
    return v, norms


def _signs(v: np.ndarray, rows: slice) -> np.ndarray:
    """``sign(v[:, i] - v[:, j])`` for ``i`` in ``rows`` and all ``j``: ``[k, len(rows) * P]``."""
    block = np.sign(v[:, rows, None] - v[:, None, :])
    return block.reshape(v.shape[0], -1)


def _sort_rows(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorting order of each row of ``v [k, P]`` and where its runs of equal values start.

    Returns ``order [k, P]`` (intp; ``v[r, order[r]]`` is non-decreasing, the order among
    equal values is arbitrary), ``new [k, P]`` (bool; ``True`` where the sorted value differs
    from the previous one, and at position 0) and ``tied [k]`` (rows with equal values).

    One value sort per row instead of an argsort (several times faster): each value is
    mapped to an order-preserving unsigned key; the key minus the row's smallest (shifted
    right when its span needs more than the ``61 - log2(P)`` free bits), the position and a
    constant bit 61 are packed into one word, and the words are sorted as the positive
    normal float64 numbers their bit patterns are (numpy sorts float64 fastest; the float
    order of positive normal numbers is their bit patterns' order). Values whose shifted keys
    collide (equal values, or distinct ones sharing the top bits) end up adjacent in position
    order; those blocks are read back and, only where their values are out of order, sorted by
    value, so the result is an exact sort whatever the collisions.
    """
    k, p = v.shape
    index_bits = max(1, (p - 1).bit_length())
    key_bits = 61 - index_bits
    if key_bits < 16:  # pragma: no cover - over 2**45 dissimilarities per RDM
        order = np.argsort(v, axis=1)
        ordered = np.take_along_axis(v, order, axis=1)
        new = np.ones(v.shape, dtype=bool)
        new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        return order, new, np.asarray(~new.all(axis=1))
    v = np.ascontiguousarray(v)
    if np.signbit(v).any():
        v = v + 0.0  # -0.0 -> +0.0: equal values get equal keys
    bits = v.view(np.uint64)
    if np.signbit(v).any():  # negative values: flip all bits of negatives, the sign of others
        key = bits >> np.uint64(63)
        key *= np.uint64(0x7FFF_FFFF_FFFF_FFFF)
        key |= np.uint64(0x8000_0000_0000_0000)
        key ^= bits
    else:  # non-negative floats order as their bit patterns
        key = bits
    low = key.min(axis=1)
    shifts = np.array(
        [max(0, int(span).bit_length() - key_bits) for span in key.max(axis=1) - low],
        dtype=np.uint64,
    )
    packed = key - low[:, None]  # < 2**key_bits once shifted
    if shifts.any():
        packed >>= shifts[:, None]
    packed <<= np.uint64(index_bits)
    packed |= np.arange(p, dtype=np.uint64) | np.uint64(1 << 61)  # position, exponent bit
    packed.view(np.float64).sort(axis=1)  # in [2**61, 2**62): positive normal floats
    order = (packed & np.uint64((1 << index_bits) - 1)).view(np.int64).astype(np.intp, copy=False)
    packed >>= np.uint64(index_bits)
    same = packed[:, 1:] == packed[:, :-1]  # same shifted key as the previous sorted value
    new = np.ones(v.shape, dtype=bool)
    tied = np.zeros(k, dtype=bool)
    for r in np.flatnonzero(same.any(axis=1)):
        s = same[r]
        if 16 * int(np.count_nonzero(s)) >= p:  # many ties: compare the whole sorted row
            vals = v[r, order[r]]  # (ascending positions within each block: near sequential)
            if not np.any(vals[1:] < vals[:-1]):  # no colliding distinct values out of order
                np.not_equal(vals[1:], vals[:-1], out=new[r, 1:])  # equal only if same key
                tied[r] = not new[r].all()
                continue
        member = np.zeros(p, dtype=bool)  # positions in a block of equal shifted keys
        member[1:] = s
        member[:-1] |= s
        pos = np.flatnonzero(member)
        idx = order[r, pos]
        vals = v[r, idx]
        inner = s[pos[1:] - 1]  # pos[j] continues the block of pos[j - 1]
        if np.any(vals[1:][inner] < vals[:-1][inner]):  # colliding distinct values, unsorted
            block = np.cumsum(np.concatenate(([True], ~inner)))
            perm = np.lexsort((vals, block))
            idx, vals = idx[perm], vals[perm]
            order[r, pos] = idx
        repeat = vals[1:][inner] == vals[:-1][inner]
        new[r, pos[1:][inner]] = ~repeat
        tied[r] = repeat.any()
    return order, new, tied


def _dense_ranks(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``v [k, P]``: the sorting order, the dense ranks (1-based, equal values share
    a rank) in sorted order and the number of tied pairs: ``[k, P]``, ``[k, P]``, ``[k]``."""
    order, new, tied = _sort_rows(v)
    k, p = v.shape
    dense = np.empty((k, p), dtype=np.intp)
    dense[:] = np.arange(1, p + 1, dtype=np.intp)
    ties = np.zeros(k, dtype=np.int64)
    for i in np.flatnonzero(tied):
        np.cumsum(new[i], dtype=np.intp, out=dense[i])
        counts = np.bincount(dense[i]).astype(np.int64)
        ties[i] = (counts * (counts - 1) // 2).sum()
    return order, dense, ties


def _average_ranks(v: np.ndarray, *, center: bool = False) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) of each row of ``v [k, P]``.

    Equals ``scipy.stats.rankdata(v, axis=1)`` exactly (the ranks are half-integers); one
    value sort per row (:func:`_sort_rows`) instead of rankdata's stable argsort. ``center``:
    subtract the mean rank ``(P + 1) / 2`` (every row's exact mean, ties or not), also exactly.
    Large rows are scattered into float32 (half-integers up to ``2**22`` are exact there; half
    the memory traffic of the random writes) and widened to float64 after.
    """
    k, p = v.shape
    order, new, tied = _sort_rows(v)
    shift = (p + 1) / 2.0 if center else 0.0
    dtype = np.float32 if 2**16 <= p <= 2**22 else np.float64
    plain = (np.arange(1, p + 1, dtype=np.float64) - shift).astype(dtype)  # sorted, no ties
    ranks = np.empty(v.shape, dtype=dtype)
    for r in range(k):
        if tied[r]:
            starts = np.flatnonzero(new[r])  # first position of each run of equal values
            stops = np.empty_like(starts)
            stops[:-1] = starts[1:]
            stops[-1] = p
            mean_rank = (starts + stops + 1) / 2.0 - shift
            ranks[r, order[r]] = mean_rank[np.cumsum(new[r]) - 1]
        else:
            ranks[r, order[r]] = plain
    return ranks.astype(np.float64, copy=False)


def _joint_ties(x: np.ndarray, y: np.ndarray, n_y: int) -> int:
    """Number of pairs tied in both ``x`` (sorted dense ranks) and ``y`` (dense ranks in
    ``1 .. n_y``, aligned with ``x``): the tie pairs of the joint key ``(x, y)``. Counted
    with one ``bincount`` when the key range is small (O(P)), else with one value sort."""
    key = x * (n_y + 1) + y
    span = int(x[-1]) * (n_y + 1) + n_y + 1
    if span <= 4 * key.shape[0]:
        counts = np.bincount(key, minlength=span)
    else:
        key.sort()
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1], [True])))
        counts = np.diff(starts)
    counts = counts[counts > 1].astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _tau_a_sorted(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """tau-a of every pair of rows by counting discordant pairs in O(P log P) per pair.

    Each RDM is sorted once (:func:`_sort_rows`); a pair then costs one gather and one
    Fenwick-tree count (the counts rsatoolbox and scipy's ``kendalltau`` compute, with integer
    arithmetic throughout). The count is symmetric in the two RDMs, so the one with fewer
    distinct values gives the tree (its size is that number: a categorical model's tree stays
    in cache) and the other the sorting order.
    """
    assert _kendall_dis is not None
    p = va.shape[1]
    total = p * (p - 1) // 2
    order_a, dense_a, ties_a = _dense_ranks(va)
    order_b, dense_b, ties_b = _dense_ranks(vb)
    distinct_a, distinct_b = dense_a[:, -1].tolist(), dense_b[:, -1].tolist()
    ranks: dict[tuple[int, int], np.ndarray] = {}  # dense ranks in the original order

    def original(side: int, row: int, order: np.ndarray, dense: np.ndarray) -> np.ndarray:
        if (side, row) not in ranks:  # only the rows that give a tree are scattered back
            scattered = np.empty(p, dtype=np.intp)
            scattered[order[row]] = dense[row]
            ranks[side, row] = scattered
        return ranks[side, row]

    out = np.empty((va.shape[0], vb.shape[0]))
    for i in range(va.shape[0]):
        for j in range(vb.shape[0]):
            if distinct_b[j] <= distinct_a[i]:  # sorted by a, tree over b's ranks
                x, n_y = dense_a[i], distinct_b[j]
                y = original(1, j, order_b, dense_b)[order_a[i]]
            else:
                x, n_y = dense_b[j], distinct_a[i]
                y = original(0, i, order_a, dense_a)[order_b[j]]
            dis = int(_kendall_dis(x, y))
            joint = _joint_ties(x, y, n_y) if ties_a[i] and ties_b[j] else 0
            out[i, j] = (total - int(ties_a[i]) - int(ties_b[j]) + joint - 2 * dis) / total
    return out


def kendall_tau_a(a: Any, b: Any) -> np.ndarray:
    """Kendall's tau-a between every RDM of ``a`` and every RDM of ``b``: ``[k_a, k_b]``.

    ``tau_a = (concordant - discordant) / (P (P - 1) / 2)`` over all pairs of the ``P``
    dissimilarities; ties count as neither (no tie correction in the denominator, which is why
    RSA prefers it when models predict tied dissimilarities; Nili et al. 2014). Each RDM is
    sorted once and each pair of RDMs costs an O(P log P) count of discordant pairs (Knight's
    algorithm, as in scipy / rsatoolbox; rsatoolbox re-sorts both RDMs for every pair).
    Equals rsatoolbox's ``compare(..., method="tau-a")``.
    """
    va, _ = _as_vectors("a", a)
    vb, _ = _as_vectors("b", b)
    _same_length(va, vb)
    return _tau_a(va, vb)


def _tau_a(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """:func:`kendall_tau_a` of two parsed stacks ``[k_a, P]``, ``[k_b, P]`` (not re-read: a
    stack with ``k = P`` could look like one square RDM)."""
    p = va.shape[1]
    if p < 2:
        raise ValueError("a and b must have at least 2 dissimilarities for a rank correlation")
    if _kendall_dis is not None:
        return _tau_a_sorted(va, vb)
    total = np.zeros((va.shape[0], vb.shape[0]))  # fallback without the scipy kernel: O(P^2)
    rows_per_block = max(1, int(2e6 // (p * max(va.shape[0], vb.shape[0]))))
    for start in range(0, p, rows_per_block):
        block = slice(start, min(p, start + rows_per_block))
        total += _signs(va, block) @ _signs(vb, block).T
    return total / (p * (p - 1))


def _same_length(va: np.ndarray, vb: np.ndarray) -> None:
    if va.shape[1] != vb.shape[1]:
        raise ValueError(
            "a and b must be RDMs of the same number of conditions, "
            f"got {n_conditions(va.shape[1])} "
            f"and {n_conditions(vb.shape[1])}"
        )


@functools.lru_cache(maxsize=8)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ends ``i < j`` ``[n_pairs]`` of the RDM vector's pairs (row-major upper triangle)."""
    return np.triu_indices(n, k=1)


def _pair_sums(v: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """``[n, k]``: for each condition, the sum of the entries of ``v [k, q]`` at its pairs
    ``(rows, cols)`` (rsatoolbox's row plus column indicator, transposed, times ``v^T``), added in
    pair order as a sparse product would."""
    sums = np.zeros((n, v.shape[0]))
    np.add.at(sums, cols, v.T)  # a condition's pairs as the larger end come first
    np.add.at(sums, rows, v.T)
    return sums


@functools.lru_cache(maxsize=4)
def _missing_pairs_fit(key: bytes, n: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """For the pairs ``key`` (a boolean mask's bytes) of an RDM of ``n`` conditions: the
    Cholesky factor of the normal equations ``B^T W B`` of :func:`_whitened`'s least squares
    (``B``: the pairs' incidence over the ``n`` diagonal entries' identity; ``W``: 1/2 for a
    pair, 1 for a diagonal entry) and the pairs' ends."""
    kept = np.frombuffer(key, dtype=bool)
    rows, cols = (ends[kept] for ends in _pairs(n))
    normal = np.eye(n)
    normal[rows, cols] = normal[cols, rows] = 0.5
    normal[np.diag_indices(n)] += 0.5 * np.bincount(np.concatenate([rows, cols]), minlength=n)
    return cho_factor(normal), rows, cols


def _whitened(v: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """RDM vectors ``v [k, q]`` holding the ``kept`` pairs of RDMs of ``n`` conditions (a
    bootstrap sample leaves out the pairs of two copies of one condition) in coordinates where
    the estimates' covariance is isotropic: ``[k, q + n]``. The second-moment matrices
    ``S = -D / 2`` are double-centred by weighted least squares over the pairs present and the
    (zero) diagonal, ``S_ij ~ (c_i + c_j) / 2``, ``S_ii ~ c_i`` (rsatoolbox's projection for
    missing pairs; with none missing, ``H S H``); the residuals' off-diagonal entries are
    scaled by sqrt(2) (each stands for two). Their plain cosine is the cosine under the
    inverse covariance of dissimilarity estimates of independent, equally noisy patterns
    (Diedrichsen et al. 2021; rsatoolbox's ``cosine_cov`` / ``corr_cov``). Without missing
    pairs see :func:`_whitened_products`."""
    n = n_conditions(kept.size)
    factor, rows, cols = _missing_pairs_fit(kept.tobytes(), n)
    half = -0.5 * v
    coef = cho_solve(factor, _pair_sums(half, rows, cols, n), check_finite=False)  # [n, k]
    off = half - 0.5 * (coef[rows] + coef[cols]).T
    return np.concatenate([off * math.sqrt(2.0), -coef.T], axis=1)


def _whitened_products(
    a: np.ndarray, b: np.ndarray, kept: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner products ``[k_a, k_b]`` and norms ``[k_a]``, ``[k_b]`` of whitened RDM vectors:
    the Frobenius products of the double-centred second-moment matrices ``H S H``,
    ``S = -D / 2``. Without missing pairs (``kept`` None) they are not formed:
    ``<H S_a H, H S_b H> = a . b / 2 - r_a . r_b / (2 n) + s_a s_b / (4 n^2)`` for the RDMs'
    row sums ``r`` and totals ``s``, one GEMM plus the row sums. (No RDM but 0 whitens to 0:
    the whitened squared norm is at least about ``1 / n`` of ``a . a / 2``, so the
    subtraction keeps all but ``log10(n)`` digits.) With missing pairs: :func:`_whitened`."""
    if kept is not None:
        wa = _whitened(a, kept)
        wb = wa if b is a else _whitened(b, kept)
        return wa @ wb.T, np.linalg.norm(wa, axis=1), np.linalg.norm(wb, axis=1)
    n = n_conditions(a.shape[1])
    rows = [_pair_sums(v, *_pairs(n), n).T for v in (a, b)]
    totals = [r.sum(axis=1) for r in rows]
    inner = 0.5 * (a @ b.T)
    inner -= (rows[0] @ rows[1].T) / (2 * n)
    inner += np.multiply.outer(totals[0], totals[1]) / (4 * n * n)
    norms = [
        np.sqrt(
            np.maximum(
                0.5 * np.einsum("ij,ij->i", v, v)
                - np.einsum("ij,ij->i", r, r) / (2 * n)
                + t**2 / (4 * n * n),
                0.0,
            )
        )
        for v, r, t in zip((a, b), rows, totals, strict=True)
    ]
    return inner, norms[0], norms[1]


def _compare_ranks(ra: np.ndarray, rb: np.ndarray, method: str) -> np.ndarray:
    """Spearman or rho-a ``[k_a, k_b]`` of centred average ranks ``[k_a, P]``, ``[k_b, P]``
    (the ranks minus their mean, exactly)."""
    if method == "rho_a":
        p = ra.shape[1]
        return (ra @ rb.T) * (12.0 / (p**3 - p))
    return _cosine_matrix(ra, rb)


def _compare_stacks(
    va: np.ndarray, vb: np.ndarray, method: str, kept: np.ndarray | None = None
) -> np.ndarray:
    """:func:`compare_rdms` of two finite parsed stacks ``[k_a, P]``, ``[k_b, P]``; ``kept``:
    the pairs the vectors hold, for the whitened methods (see :func:`_whitened`)."""
    if method == "kendall_tau_a":
        return _tau_a(va, vb)
    if method in ("spearman", "rho_a"):
        if va.shape[1] < 2:
            raise ValueError("a and b must have at least 2 dissimilarities for a rank correlation")
        ranked = (_average_ranks(va, center=True), _average_ranks(vb, center=True))
        return _compare_ranks(*ranked, method)
    if method in ("correlation", "whitened_correlation"):
        va, vb = _centred(va), _centred(vb)
    if method.startswith("whitened"):
        # not scale-free (squares of the entries): RDMs beyond ~1e+-150 over- or underflow
        inner, norms_a, norms_b = _whitened_products(_unit_rows(va), _unit_rows(vb), kept)
        scale = np.multiply.outer(norms_a, norms_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(scale > 0, inner / scale, 0.0)  # 0 for an RDM that whitens to 0
    return _cosine_matrix(va, vb)


def compare_rdms(a: Any, b: Any, method: str = "cosine") -> np.ndarray:
    """Similarity of every RDM in ``a`` with every RDM in ``b``: ``[k_a, k_b]``.

    Args:
        a, b: an RDM vector ``[P]``, a square RDM ``[n, n]`` (a 2-D input is read as one
            square RDM when it is square, symmetric and has a zero diagonal), a stack of vectors
            ``[k, P]`` or of squares ``[k, n, n]``. A square ``[m, m]`` that is not a square
            RDM while ``m`` is a vector length ``n (n - 1) / 2`` is ambiguous and refused.
        method: ``"cosine"`` (rsatoolbox's default), ``"correlation"`` (Pearson; rsatoolbox
            ``"corr"``), ``"spearman"`` (Pearson on average ranks), ``"kendall_tau_a"``
            (rsatoolbox ``"tau-a"``), ``"rho_a"`` (``12 sum r_a r_b / (P^3 - P)`` on centred
            average ranks: Spearman's rho without the tie correction of its normalization,
            rsatoolbox ``"rho-a"``), ``"whitened_cosine"`` and ``"whitened_correlation"``
            (cosine and Pearson under the inverse covariance of the dissimilarity estimates of
            independent, equally noisy patterns, Diedrichsen et al. 2021; rsatoolbox
            ``"cosine_cov"`` / ``"corr_cov"`` without ``sigma_k``). Schütt et al. (2023)
            recommend the whitened Pearson correlation for continuous model RDMs and rho-a for
            rank comparisons. :data:`KERNEL_COMPARISONS` compare the centred kernels
            ``G = -H D H / 2`` the RDMs ``D`` imply: ``"bures"``, the normalized Bures
            similarity ``tr((G_a^1/2 G_b G_a^1/2)^1/2) / sqrt(tr G_a tr G_b)`` (1 for RDMs
            equal up to scale), and ``"bures_metric"``, the squared Bures distance
            ``tr G_a + tr G_b - 2 tr((G_a^1/2 G_b G_a^1/2)^1/2)`` (0 for equal RDMs; the
            shape metric of Harvey et al. 2023); rsatoolbox's ``"bures"`` /
            ``"bures_metric"``.

    Returns:
        ``[k_a, k_b]`` float64 similarities (distances for ``"bures_metric"``), as
        rsatoolbox's ``compare``.
    """
    check_choice("method", method, COMPARISONS + KERNEL_COMPARISONS)
    if method in KERNEL_COMPARISONS:
        va, vb = _as_vectors("a", a)[0], _as_vectors("b", b)[0]
        _same_length(va, vb)
        return _bures(va, vb, method)
    moments = method in ("cosine", "correlation")  # finiteness read off the moments
    va, _ = _as_vectors("a", a, finite=not moments)
    vb, _ = _as_vectors("b", b, finite=not moments)
    _same_length(va, vb)
    if not moments:
        return _compare_stacks(va, vb, method)
    fast = _similarities(va, vb, centre=method == "correlation")
    if fast is not None:
        return fast
    _as_vectors("a", a)  # raises for a NaN or infinity
    _as_vectors("b", b)
    if method == "correlation":  # centred exactly, the moments may serve
        return _cosine_matrix(_centred(va), _centred(vb))
    return _scaled_cosines(va, vb)


def _above_rounding(values: np.ndarray) -> np.ndarray:
    """Eigenvalues ``[..., n]`` with those within rounding of 0 (below ``n eps`` times the
    largest in magnitude, or negative) set to 0: their square roots would turn rounding of
    ``1e-16`` into ``1e-8`` (rsatoolbox keeps them)."""
    floor = values.shape[-1] * _EPS * np.abs(values).max(axis=-1, keepdims=True)
    return np.where(values > floor, values, 0.0)


def _bures(va: np.ndarray, vb: np.ndarray, method: str) -> np.ndarray:
    """:data:`KERNEL_COMPARISONS` of the stacks ``[k_a, P]``, ``[k_b, P]``. With
    ``G_a = F F^T`` (``F = U Lambda^1/2``, negative eigenvalues of a non-Euclidean RDM set to
    0, as rsatoolbox), ``G_a^1/2 G_b G_a^1/2`` has the eigenvalues of ``F^T G_b F``: one
    eigendecomposition per RDM of ``a`` and one ``eigvalsh`` per pair (rsatoolbox: two
    decompositions per pair)."""
    kernels = [-0.5 * rdm_to_square(v) for v in (va, vb)]
    for g in kernels:  # double centring, in place
        g -= g.mean(axis=1, keepdims=True)
        g -= g.mean(axis=2, keepdims=True)
    values, vectors = np.linalg.eigh(kernels[0])
    roots = vectors * np.sqrt(_above_rounding(values))[:, None, :]  # [k_a, n, n]
    nuclear = np.stack(
        [
            np.sqrt(_above_rounding(np.linalg.eigvalsh(root.T @ kernels[1] @ root))).sum(axis=1)
            for root in roots
        ]
    )
    traces = [np.trace(g, axis1=1, axis2=2) for g in kernels]
    if method == "bures_metric":
        return traces[0][:, None] + traces[1][None, :] - 2.0 * nuclear
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant RDM: NaN, as rsatoolbox
        return nuclear / np.sqrt(np.multiply.outer(traces[0], traces[1]))


# --------------------------------------------------------------------------------------------
# transforms


def rank_transform(rdms: Any) -> np.ndarray:
    """Ranks (average ties) of each RDM's dissimilarities, scaled to [0, 1] (min-max).

    Same layout as the input (vector, square, or stacks; see :func:`compare_rdms`).
    """
    v, layout = _as_vectors("rdms", rdms)
    return _restore(_rank_vectors(v), layout)


def _rank_vectors(v: np.ndarray) -> np.ndarray:
    """:func:`rank_transform` of a parsed stack ``[k, P]`` (not re-read as a layout)."""
    ranks = rankdata(v, axis=1)
    lo = ranks.min(axis=1, keepdims=True)
    hi = ranks.max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (ranks - lo) / span


def _gt_vectors(v: np.ndarray, lower: float, upper: float) -> np.ndarray:
    q_lo = np.quantile(v, lower, axis=1, keepdims=True)
    q_hi = np.quantile(v, upper, axis=1, keepdims=True)
    span = q_hi - q_lo
    safe = np.where(span > 0, span, 1.0)
    linear = np.clip((v - q_lo) / safe, 0.0, 1.0)
    step = (v > q_hi).astype(np.float64)
    return np.where(span > 0, linear, step)


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r:.40})")


def _check_bounds(lower: float, upper: float) -> None:
    check_number("lower", lower, ge=0.0, le=1.0)
    check_number("upper", upper, ge=0.0, le=1.0)
    if lower > upper:
        raise ValueError(f"lower must be <= upper, got lower={lower} and upper={upper}")


def geo_topological(rdms: Any, lower: float, upper: float, *, rank: bool = False) -> np.ndarray:
    """Geo-topological transform GT(l, u) of each RDM (Lin & Kriegeskorte, tRSA).

    With ``q_l`` and ``q_u`` the ``lower`` and ``upper`` quantiles of an RDM's
    dissimilarities: ``GT(d) = 0`` for ``d < q_l``, ``(d - q_l) / (q_u - q_l)`` in between and
    ``1`` for ``d > q_u``. Small distances collapse to 0 (neighbors: topology), large ones
    saturate at 1 (far apart), and only the band in between keeps geometry. ``(0, 1)`` is the
    min-max scaled RDM; ``l = u`` gives a binary neighborhood graph.

    Args:
        rdms: RDM vector, square RDM or stack (layout is preserved).
        lower, upper: quantiles ``0 <= lower <= upper <= 1``.
        rank: rank-transform (and min-max) each RDM first, as the authors' reference code does.

    Returns:
        Transformed RDM(s), same layout as the input. Quantiles are taken per RDM, and the
        band maps linearly onto [0, 1] as in the paper; ``rsatoolbox.rdm.geotopological_transform``
        0.3.2 differs (it pools quantiles over a stack and re-saturates values above the upper
        quantile's rescaled value).
    """
    _check_bounds(lower, upper)
    _check_bool("rank", rank)
    v, layout = _as_vectors("rdms", rdms)
    if rank:
        v = _rank_vectors(v)
    return _restore(_gt_vectors(v, lower, upper), layout)


def geodesic(
    rdms: Any,
    lower: float = 0.0,
    upper: float = 1.0,
    *,
    rank: bool = False,
    disconnected: Literal["max"] | float = "max",
) -> np.ndarray:
    """Geodesic variant of the geo-topological transform (tRSA's RGDM).

    Each RDM is transformed with GT(``lower``, ``upper``); pairs at the saturated value 1
    (beyond the ``upper`` quantile) lose their edge, and the result is the shortest-path
    (geodesic) distance through the remaining weighted graph, so long distances are measured
    along the data's neighborhood structure. With the defaults (0, 1) only the largest
    dissimilarity loses its edge, as in ``rsatoolbox.rdm.geodesic_transform``.

    Unlike rsatoolbox (which builds the graph with networkx and so drops zero-weight edges),
    pairs whose transformed dissimilarity is 0 stay connected at distance 0.

    Args:
        rdms: RDM vector, square RDM or stack (layout preserved).
        lower, upper: GT quantiles.
        rank: rank-transform first (the authors' reference code).
        disconnected: value for pairs with no path: ``"max"`` (the largest finite geodesic
            distance of that RDM, as the reference code's ``nan_to_num``) or a number
            (``float("inf")`` keeps infinity).
    """
    _check_bounds(lower, upper)
    _check_bool("rank", rank)
    disconnected = _check_disconnected(disconnected)
    v, layout = _as_vectors("rdms", rdms)
    if rank:
        v = _rank_vectors(v)
    return _restore(_geodesic_vectors(v, lower, upper, disconnected), layout)


def _check_disconnected(disconnected: Any) -> Literal["max"] | float:
    """``"max"``, or the number (a numpy scalar or a 0-d array / tensor too) as a float."""
    if isinstance(disconnected, str):
        check_choice("disconnected", disconnected, ["max"])
        return "max"
    if getattr(disconnected, "ndim", None) == 0 and hasattr(disconnected, "item"):
        disconnected = disconnected.item()
    if not isinstance(disconnected, numbers.Real) or isinstance(disconnected, bool):
        raise TypeError(f"disconnected must be 'max' or a number, got {disconnected!r:.80}")
    if math.isnan(disconnected) or disconnected < 0:
        raise ValueError(f"disconnected must be >= 0, got {disconnected}")
    return float(disconnected)


def _geodesic_vectors(
    v: np.ndarray, lower: float, upper: float, disconnected: Literal["max"] | float
) -> np.ndarray:
    """:func:`geodesic` of a parsed stack ``[k, P]`` (not re-read as a layout)."""
    gt = _gt_vectors(v, lower, upper)
    n = n_conditions(v.shape[1])
    squares = rdm_to_square(gt)
    rows, cols = np.triu_indices(n, k=1)
    out = np.empty_like(gt)
    for i, square in enumerate(squares):
        weights = square.copy()
        weights[weights >= 1.0] = np.inf
        np.fill_diagonal(weights, np.inf)
        graph = csgraph_from_dense(weights, null_value=np.inf)
        dist = shortest_path(graph, method="D", directed=False)[rows, cols]
        finite = np.isfinite(dist)
        if not finite.all():
            fill = (
                (dist[finite].max() if finite.any() else 1.0)
                if disconnected == "max"
                else float(disconnected)
            )
            dist = np.where(finite, dist, fill)
        out[i] = dist
    return out
