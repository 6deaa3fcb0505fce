"""Measures on weights and features.

* Inverse participation ratio (IPR) and the IPR of a Fourier spectrum, which tells generalizing
  (one-frequency, IPR near 1) from memorizing (spread, IPR near 0) neurons in networks trained on
  modular arithmetic (Doshi, Das, He & Gromov, "To grok or not to grok", ICLR 2024).
* Neural-collapse metrics NC1-NC4 (Papyan, Han & Donoho, PNAS 2020), used by Tirer, Huang &
  Niles-Weed, "Perturbation Analysis of Neural Collapse" (ICML 2023):

  - NC1 ``Tr(Sigma_W Sigma_B^+) / K``: within-class variability relative to between-class;
  - NC2 distance of the normalized Gram matrix of the centred class means from that of a simplex
    equiangular tight frame (plus the equinorm and equiangularity parts);
  - NC3 ``|| W/||W|| - Mbar/||Mbar|| ||_F^2``: self-duality of classifier and centred means;
  - NC4 the fraction of samples where the classifier and the nearest class centre disagree.

  All are 0 at exact collapse. Class means that coincide (``Sigma_B = 0``: the features do not
  separate the classes at all) leave NC1-NC3 undefined: the pseudo-inverse of a zero
  ``Sigma_B`` would read NC1 as 0 (perfect collapse) although it tends to infinity as the means
  merge, so NC1-NC3 raise ``ValueError`` there. Shapes: features ``[N, D]``, labels ``[N]``,
  weights ``[K, D]``.

* Learning-regime measures (lazy versus rich training): the entropy effective rank of a matrix
  (Roy & Vetterli 2007), the empirical neural tangent kernel of any ``nn.Module`` through
  ``torch.func`` (``jacrev`` + ``vmap``), (centred) kernel alignment and kernel-target alignment
  (Cristianini et al. 2001; Cortes et al. 2012), the kernel distance ``1 - alignment`` (Fort et
  al. 2020) and the relative change ``||W_T - W_0|| / ||W_0||`` of weights or kernels used by Liu
  et al. (ICLR 2024) and Kumar et al. (ICLR 2024).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from neuronkit.common import (
    as_float_array,
    check_finite,
    check_number,
    check_shape,
    check_type,
    detached_input,
)

from ._utils import as_float_tensor, as_labels, check_positive_int, torch_generator

__all__ = [
    "center_kernel",
    "class_means",
    "effective_rank",
    "empirical_ntk",
    "fourier_ipr",
    "inverse_participation_ratio",
    "kernel_alignment",
    "kernel_distance",
    "kernel_target_alignment",
    "nc1",
    "nc2",
    "nc3",
    "nc4",
    "neural_collapse_metrics",
    "relative_change",
    "simplex_etf",
    "split_threshold",
    "within_class_variability",
]


def _check_dim(name: str, x: torch.Tensor, dim: Any) -> int:
    """``dim`` as an int indexing a dimension of the tensor ``name`` (``x``)."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be an integer, got {type(dim).__name__} ({dim!r:.80})")
    if not -x.ndim <= int(dim) < x.ndim:
        raise ValueError(
            f"dim must index a dimension of {name} (rank {x.ndim}: {-x.ndim}..{x.ndim - 1}), "
            f"got {dim}"
        )
    return int(dim)


def inverse_participation_ratio(x: torch.Tensor, r: float = 2.0, dim: int = -1) -> torch.Tensor:
    """IPR ``sum_i |x_i|^(2r) / (sum_i |x_i|^2)^r`` along ``dim``.

    1 for a vector with one non-zero entry, ``n^(1 - r)`` for a flat vector of length ``n``;
    invariant to scaling. All-zero vectors give 0. Works on real or complex tensors; NaN or
    infinite entries raise ``ValueError``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.bool:
        raise TypeError("x must be a real or complex tensor, got dtype torch.bool")
    check_number("r", r, gt=1.0)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    dim = _check_dim("x", x, dim)
    if x.shape[dim] == 0:
        raise ValueError(f"x must have entries along dim {dim}, got shape {tuple(x.shape)}")
    check_finite("x", x)
    return _ipr(x, r, dim)


def _ipr(x: torch.Tensor, r: float, dim: int) -> torch.Tensor:
    mag = x.abs().to(torch.float64)
    # scaled by the largest entry first: the squares of tiny or huge vectors neither underflow
    # nor overflow
    mag2 = (mag / mag.amax(dim=dim, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)) ** 2
    total = mag2.sum(dim=dim, keepdim=True)
    ratio = torch.where(total > 0, mag2 / total.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    return (ratio**r).sum(dim=dim)


def fourier_ipr(w: torch.Tensor, r: float = 2.0, dim: int = -1) -> torch.Tensor:
    """IPR of the magnitudes of the real FFT of ``w`` along ``dim`` (Doshi et al.).

    A weight vector that is one sinusoid over the residues has IPR close to 1; a random one has
    IPR close to ``2 / (n/2 + 1)`` for ``n`` residues.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
    check_number("r", r, gt=1.0)
    if w.ndim != 0:
        dim = _check_dim("w", w, dim)
    if w.ndim == 0 or w.shape[dim] < 2:
        raise ValueError(f"w must have >= 2 entries along dim {dim}, got shape {tuple(w.shape)}")
    check_finite("w", w)
    spectrum = torch.fft.rfft(w.detach().to(torch.float64), dim=dim).abs()
    return _ipr(spectrum, r, dim)


def split_threshold(values: Any) -> float:
    """Otsu's threshold of a 1-D sample: the cut maximizing the between-group variance.

    Returns the midpoint between the two values around the best cut, e.g. to separate low-IPR
    (memorizing) from high-IPR (generalizing) neurons without looking at any labels.
    """
    if isinstance(values, torch.Tensor):  # on any device, e.g. neuron_ipr of a GPU model
        values = values.detach().cpu()
    v = np.sort(as_float_array("values", values).ravel())
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 numbers, got {v.size}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite, got NaN or infinity")
    # scaled by a power of two (exact) to max |v| in [0.5, 1): the squared mean differences of
    # huge or tiny values overflowed (or underflowed) and the first cut won
    shift = int(np.frexp(np.abs(v).max())[1])
    v = np.ldexp(v, -shift)
    n = v.size
    csum = np.cumsum(v)
    k = np.arange(1, n)
    w0, w1 = k / n, (n - k) / n
    mu0 = csum[:-1] / k
    mu1 = (csum[-1] - csum[:-1]) / (n - k)
    score = w0 * w1 * (mu0 - mu1) ** 2
    best = int(np.argmax(score))
    return float(np.ldexp((v[best] + v[best + 1]) / 2.0, shift))


def _prepare(
    features: Any, labels: Any, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    h = as_float_tensor("features", features, 2, "[N, D]")
    y, k = as_labels("labels", labels, h.shape[0], num_classes)
    counts = torch.bincount(y, minlength=k)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"labels must contain every class 0..{k - 1}; classes {missing} are empty")
    return h, y, k


def class_means(
    features: Any, labels: Any, num_classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means ``[K, D]`` and the global mean ``[D]`` (the mean of the class means)."""
    h, y, k = _prepare(features, labels, num_classes)
    return _means(h, y, k)


def _means(h: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    sums = torch.zeros(k, h.shape[1], dtype=h.dtype).index_add_(0, y, h)
    means = sums / torch.bincount(y, minlength=k).to(h.dtype)[:, None]
    return means, means.mean(dim=0)


def within_class_variability(features: Any, labels: Any, num_classes: int | None = None) -> float:
    """``Tr(Sigma_W) / Tr(Sigma_T)``: the share of the feature variance that is within classes.

    Raises ``ValueError`` when all samples coincide (``Sigma_T = 0``): the share is then 0/0.
    """
    h, y, k = _prepare(features, labels, num_classes)
    h = _unit_scale(h)  # exact (a power of two): huge features' squares would overflow
    means, _ = _means(h, y, k)
    centred = h - h.mean(dim=0)
    # a mean of N entries of size <= max|h| is exact to about N eps max|h|: below that, the
    # "variance" of identical samples is rounding, and the ratio of two roundings any number
    if float(centred.abs().max()) <= h.shape[0] * torch.finfo(h.dtype).eps * float(h.abs().max()):
        raise ValueError(
            "features must vary across samples: all samples coincide (total variance "
            "Tr(Sigma_T) = 0), so the within-class share Tr(Sigma_W) / Tr(Sigma_T) is undefined"
        )
    within = ((h - means[y]) ** 2).sum()
    return float(within / (centred**2).sum())


def _shift(h: torch.Tensor) -> torch.Tensor:
    """The power of two (as an exponent) that brings ``max |h|`` into ``[0.5, 1)``."""
    peak = h.abs().max()
    return torch.zeros((), dtype=torch.int32) if peak == 0 else -torch.frexp(peak).exponent


def _unit_scale(h: torch.Tensor) -> torch.Tensor:
    """``h`` scaled by a power of two (exact) to ``max |h|`` in ``[0.5, 1)``: the collapse
    metrics are scale-free, and tiny features would otherwise underflow in their products."""
    return torch.ldexp(h, _shift(h))


def _centred_means(h: torch.Tensor, means: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
    """``Mbar = M - mean(M)``; raises when the class means coincide (to rounding): then
    ``Sigma_B = 0`` and NC1 (``Tr(Sigma_W Sigma_B^+)``, infinite in the limit although the
    pseudo-inverse of 0 would give 0), NC2 and NC3 are undefined."""
    mbar = means - glob
    # a mean of N entries of size <= max|h| is exact to about N eps max|h|
    tol = h.shape[0] * torch.finfo(h.dtype).eps * float(h.abs().max())
    if float(mbar.abs().max()) <= tol:
        raise ValueError(
            "features must separate the classes given by labels: all class means coincide "
            "(between-class covariance Sigma_B = 0), so the collapse metrics NC1 = "
            "Tr(Sigma_W Sigma_B^+)/K, NC2 and NC3 are undefined"
        )
    return mbar


def _nc1(h: torch.Tensor, y: torch.Tensor, means: torch.Tensor, mbar: torch.Tensor) -> float:
    """``Tr(Sigma_W Sigma_B^+) / K`` with ``Sigma_W = sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T / N``
    (over all samples) and ``Sigma_B = Mbar^T Mbar / K``, without forming a ``[D, D]`` matrix.

    ``Sigma_B`` has rank ``<= K - 1``: with ``Mbar = U diag(s) V^T``, ``Sigma_B = V diag(lam) V^T``
    (``lam = s^2 / K``) and ``Sigma_B^+ = V diag(1 / lam) V^T`` over the directions that
    ``torch.linalg.pinv`` keeps for the ``[D, D]`` matrix (``lam > D eps max(lam)``), so
    ``Tr(Sigma_W Sigma_B^+) = sum_j v_j^T Sigma_W v_j / lam_j``: ``O(N D r)`` instead of
    ``O(N D^2 + D^3)``.
    """
    n, d = h.shape
    k = mbar.shape[0]
    _, s, vh = torch.linalg.svd(mbar, full_matrices=False)
    lam = s.square() / k
    keep = lam > lam.max() * (d * torch.finfo(h.dtype).eps)  # pinv's default rtol, D x D
    proj = (h - means[y]) @ vh[keep].T  # [N, r]: within-class residuals along kept directions
    return float((proj.square().sum(dim=0) / n / lam[keep]).sum() / k)


def nc1(features: Any, labels: Any, num_classes: int | None = None) -> float:
    """NC1 ``Tr(Sigma_W Sigma_B^+) / K`` (0 when every sample sits on its class mean).

    ``Sigma_W`` is the within-class covariance over all samples, ``Sigma_B`` the covariance of
    the class means around their mean, ``^+`` the Moore-Penrose pseudo-inverse. Raises
    ``ValueError`` when all class means coincide (``Sigma_B = 0``): NC1 is then undefined
    (infinite in the limit), not 0.
    """
    h, y, k = _prepare(features, labels, num_classes)
    h = _unit_scale(h)
    means, glob = _means(h, y, k)
    return _nc1(h, y, means, _centred_means(h, means, glob))


def _etf_gram(k: int) -> torch.Tensor:
    e = torch.eye(k, dtype=torch.float64) - 1.0 / k
    return e / torch.linalg.norm(e)


def _nc2_parts(mbar: torch.Tensor) -> dict[str, float]:
    k = mbar.shape[0]
    gram = mbar @ mbar.T
    norm = torch.linalg.norm(gram)
    lengths = torch.linalg.norm(mbar, dim=1)
    unit = mbar / lengths.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    cos = (unit @ unit.T)[~torch.eye(k, dtype=torch.bool)]
    return {
        "nc2": float(torch.linalg.norm(gram / norm - _etf_gram(k))),
        "equinorm": float(lengths.std(correction=0) / lengths.mean()),
        "equiangular": float((cos + 1.0 / (k - 1)).abs().mean()),
    }


def nc2(features: Any, labels: Any, num_classes: int | None = None) -> float:
    """NC2: ``|| G/||G||_F - E/||E||_F ||_F`` with ``G`` the Gram matrix of the centred class means
    and ``E = I - 11^T/K`` that of a simplex ETF (0 for an ETF of any scale and rotation).
    Raises ``ValueError`` when all class means coincide (no Gram matrix to normalize)."""
    h, y, k = _prepare(features, labels, num_classes)
    h = _unit_scale(h)
    means, glob = _means(h, y, k)
    return _nc2_parts(_centred_means(h, means, glob))["nc2"]


def _check_weights(weights: Any, k: int, d: int) -> torch.Tensor:
    w = as_float_tensor("weights", weights, 2, "[K, D]")
    check_shape("weights", w, (k, d))
    return w


def _nc3(w: torch.Tensor, mbar: torch.Tensor) -> float:
    w = _unit_scale(w)  # exact; NC3 is scale-free in W, and huge weights' squares would overflow
    wn, mn = torch.linalg.norm(w), torch.linalg.norm(mbar)
    if wn == 0:
        raise ValueError("weights must not be all zeros (NC3 compares W/||W||_F to the means)")
    return float(torch.linalg.norm(w / wn - mbar / mn) ** 2)


def nc3(features: Any, labels: Any, weights: Any, num_classes: int | None = None) -> float:
    """NC3 ``|| W/||W||_F - Mbar/||Mbar||_F ||_F^2`` (0 when the classifier rows are the centred
    class means up to scale). ``weights [K, D]``, not all zeros. Raises ``ValueError`` when all
    class means coincide."""
    h, y, k = _prepare(features, labels, num_classes)
    w = _check_weights(weights, k, h.shape[1])
    h = _unit_scale(h)
    means, glob = _means(h, y, k)
    return _nc3(w, _centred_means(h, means, glob))


def _nc4(h: torch.Tensor, means: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> float:
    # both decisions are unchanged when h, the means and b scale together: scaled by a power
    # of two (exact), tiny features do not underflow in the distances
    shift = _shift(h)
    h, means = torch.ldexp(h, shift), torch.ldexp(means, shift)
    logits = h @ w.T + (0.0 if b is None else torch.ldexp(b, shift))
    ncc = torch.cdist(h, means).argmin(dim=1)
    return float((logits.argmax(dim=1) != ncc).to(torch.float64).mean())


def _check_bias(bias: Any, k: int) -> torch.Tensor | None:
    if bias is None:
        return None
    b = as_float_tensor("bias", bias, 1, "[K]")
    check_shape("bias", b, (k,))
    return b


def nc4(
    features: Any, labels: Any, weights: Any, bias: Any = None, num_classes: int | None = None
) -> float:
    """NC4: fraction of samples where ``argmax(W h + b)`` differs from the nearest class mean."""
    h, y, k = _prepare(features, labels, num_classes)
    w = _check_weights(weights, k, h.shape[1])
    means, _ = _means(h, y, k)
    return _nc4(h, means, w, _check_bias(bias, k))


def neural_collapse_metrics(
    features: Any,
    labels: Any,
    weights: Any = None,
    bias: Any = None,
    num_classes: int | None = None,
) -> dict[str, float]:
    """All collapse metrics in one pass: ``nc1``, ``nc2`` (with ``nc2_equinorm`` and
    ``nc2_equiangular``) and, when ``weights [K, D]`` are given, ``nc3`` and ``nc4``.

    Args:
        features: penultimate-layer features ``[N, D]``.
        labels: class labels ``[N]`` in ``0..K-1`` (every class present).
        weights: last-layer weights ``[K, D]`` (optional).
        bias: last-layer bias ``[K]`` (optional, used by NC4).
        num_classes: ``K`` (default: ``max(labels) + 1``).

    Raises ``ValueError`` when all class means coincide (NC1-NC3 undefined) or ``weights`` are
    all zeros.
    """
    h, y, k = _prepare(features, labels, num_classes)
    if weights is None and bias is not None:
        raise ValueError("bias must come with weights (NC4 needs the classifier)")
    scaled = _unit_scale(h)  # NC1-NC3 are scale-free; NC4 (with a bias) is not
    means, glob = _means(scaled, y, k)
    mbar = _centred_means(scaled, means, glob)
    parts = _nc2_parts(mbar)
    out = {
        "nc1": _nc1(scaled, y, means, mbar),
        "nc2": parts["nc2"],
        "nc2_equinorm": parts["equinorm"],
        "nc2_equiangular": parts["equiangular"],
    }
    if weights is not None:
        w = _check_weights(weights, k, h.shape[1])
        out["nc3"] = _nc3(w, mbar)
        out["nc4"] = _nc4(h, _means(h, y, k)[0], w, _check_bias(bias, k))
    return out


def simplex_etf(
    num_classes: int,
    dim: int | None = None,
    *,
    scale: float = 1.0,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """A simplex equiangular tight frame: ``K`` rows ``[K, D]`` (float64) of norm ``scale`` with
    pairwise cosine ``-1/(K-1)`` that sum to zero.

    Built in the ``K - 1``-dimensional subspace orthogonal to the all-ones vector; with ``dim``
    larger than ``K - 1`` it is embedded by a random orthonormal map drawn from ``seed`` (the
    first ``K - 1`` coordinates when ``seed`` is None).
    """
    k = check_positive_int("num_classes", num_classes, minimum=2)
    d = k - 1 if dim is None else check_positive_int("dim", dim)
    if d < k - 1:
        raise ValueError(f"dim must be >= num_classes - 1 = {k - 1}, got {d}")
    check_number("scale", scale, gt=0)
    centring = torch.eye(k, dtype=torch.float64) - 1.0 / k
    _, vecs = torch.linalg.eigh(centring)
    basis = vecs[:, 1:]  # [K, K-1], orthonormal basis of 1-perp (eigenvalue 1)
    frame = basis * (scale * (k / (k - 1)) ** 0.5)
    if d == k - 1:
        return frame
    if seed is None:
        embed = torch.eye(d, k - 1, dtype=torch.float64)
    else:
        gauss = torch.randn(d, k - 1, generator=torch_generator(seed), dtype=torch.float64)
        embed, _ = torch.linalg.qr(gauss)
    return frame @ embed.T


# --- learning-regime measures: effective rank, NTK, alignment, relative change ------------------


def effective_rank(matrix: Any) -> float:
    """Entropy effective rank ``exp(H(p))`` with ``p_i = s_i / sum_j s_j`` over the singular values.

    Roy & Vetterli (2007), the measure Liu et al. (ICLR 2024) use for the initial connectivity:
    ``k`` for a matrix with ``k`` equal non-zero singular values, 1 for rank one, 0 for the zero
    matrix. ``matrix``: ``[M, N]``.
    """
    m = as_float_tensor("matrix", matrix, 2, "[M, N]")
    # exact (a power of two): the sum of huge singular values overflowed to inf, every p to 0
    s = torch.linalg.svdvals(_unit_scale(m)) if m.numel() else torch.zeros(0, dtype=m.dtype)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def _flat_params(params: Any, name: str) -> torch.Tensor:
    if isinstance(params, torch.Tensor):
        return params.detach().reshape(-1).to(torch.float64)
    if isinstance(params, torch.nn.Module):
        params = list(params.parameters())
    elif isinstance(params, Mapping):
        params = list(params.values())
    if not isinstance(params, Iterable) or isinstance(params, (str, bytes)):
        raise TypeError(
            f"{name} must be a tensor, a module, a dict or a list of tensors, "
            f"got {type(params).__name__}"
        )
    items = list(params)
    if not items or not all(isinstance(p, torch.Tensor) for p in items):
        raise TypeError(f"{name} must hold at least one tensor and only tensors")
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in items])


def relative_change(after: Any, before: Any) -> float:
    """``||after - before||_F / ||before||_F``: relative weight (or kernel) change.

    Liu et al. (ICLR 2024) measure richness by the relative change of the weights between
    initialization and the end of training, larger meaning richer. ``after`` and ``before``: two
    tensors of the same shape, two modules with the same parameters, two dicts or two lists of
    tensors (their entries are concatenated).
    """
    a = _flat_params(after, "after")
    b = _flat_params(before, "before")
    if a.shape != b.shape:
        raise ValueError(
            f"after must have as many entries as before ({b.numel()}), got {a.numel()}"
        )
    check_finite("after", a)
    check_finite("before", b)
    if a.numel():  # one exact power-of-two scale for both: huge weights' squares would overflow
        shift = _shift(torch.stack([a.abs().max(), b.abs().max()]))
        a, b = torch.ldexp(a, shift), torch.ldexp(b, shift)
    nb = torch.linalg.norm(b)
    if nb == 0:
        raise ValueError("before must not be all zeros (the relative change is undefined)")
    return float(torch.linalg.norm(a - b) / nb)


def _square_kernel(name: str, k: Any) -> torch.Tensor:
    kk = as_float_tensor(name, k, 2, "[N, N]")
    if kk.shape[0] != kk.shape[1]:
        raise ValueError(f"{name} must be square [N, N], got shape {tuple(kk.shape)}")
    return kk


def center_kernel(kernel: Any) -> torch.Tensor:
    """``H K H`` with ``H = I - 11^T/N``: the kernel of the centred features. ``[N, N]``."""
    k = _square_kernel("kernel", kernel)
    return _center(k)


def _center(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()


def _rounding_zero(centred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``centred`` (``x`` less its means over ``N`` rows), or zeros where it is all rounding
    (``<= 4 N eps max|x|``: the means are exact to about ``N eps max|x|``). Centred constant
    kernels or targets are rounding noise, whose alignment read anything in [-1, 1]."""
    tol = 4 * x.shape[0] * torch.finfo(x.dtype).eps * float(x.abs().max())
    return torch.zeros_like(centred) if float(centred.abs().max()) <= tol else centred


def _centered_or_zero(k: torch.Tensor) -> torch.Tensor:
    return _rounding_zero(_center(k), k)


def kernel_alignment(kernel1: Any, kernel2: Any, *, centered: bool = False) -> float:
    """``<K1, K2>_F / (||K1||_F ||K2||_F)`` (Cristianini et al. 2001); centred: CKA-style.

    1 for kernels equal up to a positive scale. ``kernel1``, ``kernel2``: ``[N, N]``.
    """
    check_type("centered", centered, bool)
    k1 = _square_kernel("kernel1", kernel1)
    k2 = _square_kernel("kernel2", kernel2)
    if k1.shape != k2.shape:
        raise ValueError(
            f"kernel2 must have the shape of kernel1 {tuple(k1.shape)}, got {tuple(k2.shape)}"
        )
    k1, k2 = _unit_scale(k1), _unit_scale(k2)  # exact; huge kernels' squares would overflow
    if centered:
        k1, k2 = _centered_or_zero(k1), _centered_or_zero(k2)
    n1, n2 = torch.linalg.norm(k1), torch.linalg.norm(k2)
    if n1 == 0 or n2 == 0:
        raise ValueError(
            "kernel1 and kernel2 must be non-zero"
            + (" after centring (not constant)" if centered else "")
            + " to compute an alignment"
        )
    return float((k1 * k2).sum() / (n1 * n2))


def kernel_distance(kernel1: Any, kernel2: Any, *, centered: bool = False) -> float:
    """``1 - kernel_alignment(K1, K2)`` (Fort et al. 2020): 0 when the kernel kept its shape."""
    return 1.0 - kernel_alignment(kernel1, kernel2, centered=centered)


def kernel_target_alignment(kernel: Any, targets: Any, *, centered: bool = True) -> float:
    """Kernel-target alignment ``<K, Y Y^T>_F / (||K||_F ||Y Y^T||_F)``.

    ``kernel``: ``[N, N]``; ``targets``: ``[N]`` or ``[N, C]`` (one-hot or regression targets).
    With ``centered`` (default, as in Kumar et al. 2024) both ``K`` and the targets are centred
    over the samples first. Rises when the kernel adapts to the task (rich learning).
    Integer class indices ``[N]`` are read as one scalar target: pass one-hot ``[N, C]`` for
    classes.
    """
    check_type("centered", centered, bool)
    k = _square_kernel("kernel", kernel)
    y = as_float_tensor("targets", targets, (1, 2), "[N] or [N, C]")
    if y.ndim == 1:
        y = y[:, None]
    if y.shape[0] != k.shape[0]:
        raise ValueError(
            f"targets must have one row per kernel row ({k.shape[0]}), got {y.shape[0]}"
        )
    k, y = _unit_scale(k), _unit_scale(y)  # exact; huge kernels' squares would overflow
    if centered:
        k = _centered_or_zero(k)
        y = _rounding_zero(y - y.mean(dim=0, keepdim=True), y)
    yy = y @ y.T
    nk, ny = torch.linalg.norm(k), torch.linalg.norm(yy)
    if nk == 0 or ny == 0:
        raise ValueError("kernel and targets must be non-zero (after centring) for an alignment")
    return float((k * yy).sum() / (nk * ny))


def empirical_ntk(
    model: torch.nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    params: Mapping[str, torch.Tensor] | None = None,
    output: str = "trace",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Empirical neural tangent kernel ``Theta(x, x') = J(x) J(x')^T`` of ``model``.

    Computed with ``torch.func``: per-sample Jacobians by ``vmap(jacrev(functional_call))``,
    contracted over all (trainable) parameters.

    Args:
        model: any ``nn.Module`` mapping ``[B, *in]`` to ``[B]`` or ``[B, O]``.
        x1: inputs ``[N1, *in]``.
        x2: inputs ``[N2, *in]`` (default ``x1``).
        params: the parameters to differentiate, name -> tensor (default: the module's
            parameters with ``requires_grad``, those training would update; pass
            ``dict(model.named_parameters())`` for the kernel over all of them, frozen ones
            too); pass e.g. only ``{"weight_hh": ...}`` to get the kernel of one weight matrix.
        output: ``"trace"`` sums over the output dimension (``[N1, N2]``), ``"full"`` keeps it
            (``[N1, N2, O, O]``, ``O = 1`` for scalar outputs).
        chunk_size: passed to ``vmap`` to bound memory (a positive integer or None).

    Returns:
        ``[N1, N2]`` (or ``[N1, N2, O, O]``), in the dtype of the model; computed on detached
        copies of the inputs and parameters, so it holds no autograd graph and is not
        differentiable in ``x1``, ``x2`` or ``params``.

    Raises:
        ValueError: NaN or infinity in ``x1``, ``x2`` or the parameters; ``params`` entries
            that are not tensors shaped like the model's (``TypeError`` / ``ValueError``); a
            batch the model cannot take (a wrong feature size; a dtype other than the
            parameters' raises ``TypeError``), naming ``x1`` or ``x2``; no parameter to
            differentiate (a model whose parameters are all frozen, with ``params`` left to
            its default, or an empty ``params``).
    """
    from torch.func import functional_call, jacrev, vmap

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if output not in ("trace", "full"):
        raise ValueError(f"output must be 'trace' or 'full', got {output!r}")
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if not isinstance(x1, torch.Tensor):
        raise TypeError(f"x1 must be a torch.Tensor, got {type(x1).__name__}")
    if x1.ndim < 1 or x1.shape[0] == 0:
        raise ValueError(f"x1 must be a non-empty batch [N1, ...], got shape {tuple(x1.shape)}")
    check_finite("x1", x1)
    if x2 is not None:
        if not isinstance(x2, torch.Tensor):
            raise TypeError(f"x2 must be a torch.Tensor or None, got {type(x2).__name__}")
        if x2.shape[1:] != x1.shape[1:] or x2.shape[0] == 0:
            raise ValueError(
                f"x2 must be a non-empty batch shaped like x1 [N2, *{tuple(x1.shape[1:])}]"
                f", got {tuple(x2.shape)}"
            )
        check_finite("x2", x2)
    x1 = detached_input(x1)  # the kernel neither holds nor extends the inputs' graph
    x2 = detached_input(x2)
    if params is None:
        params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
        if not params:
            raise ValueError(
                "model must have at least one parameter with requires_grad=True (the default "
                "params are the trainable ones); pass params=dict(model.named_parameters()) "
                "for the kernel over its frozen parameters"
            )
        for k, v in params.items():
            check_finite(f"model parameter {k!r}", v)
    else:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict name -> tensor, got {type(params).__name__}")
        known = dict(model.named_parameters(remove_duplicate=False))  # tied names too
        unknown = [k for k in params if k not in known]
        if unknown:
            raise ValueError(f"params must name parameters of model, unknown: {unknown}")
        for k, v in params.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(
                    f"params[{k!r}] must be a torch.Tensor, got {type(v).__name__} ({v!r:.80})"
                )
            if v.shape != known[k].shape:
                raise ValueError(
                    f"params[{k!r}] must have the shape of the model's parameter "
                    f"{tuple(known[k].shape)}, got {tuple(v.shape)}"
                )
            check_finite(f"params[{k!r}]", v)
        params = {k: v.detach() for k, v in params.items()}
        if not params:
            raise ValueError("params must hold at least one parameter to differentiate, got {}")

    def f_single(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (x.unsqueeze(0),))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"model must return a tensor, got {type(out).__name__}")
        return out.reshape(-1)

    jac_fn: Callable[..., dict[str, torch.Tensor]] = vmap(
        jacrev(f_single), in_dims=(None, 0), chunk_size=chunk_size
    )

    def jacobian(name: str, x: torch.Tensor) -> list[torch.Tensor]:
        try:
            jac = jac_fn(params, x)
        except RuntimeError as err:  # the model cannot take x: name it, keep torch's reason
            if isinstance(err, torch.OutOfMemoryError):
                raise
            dtypes = sorted({str(p.dtype) for p in params.values()})
            if str(x.dtype) in dtypes:
                cause = (
                    "a wrong input shape, or a model without batching rules, e.g. spiking "
                    "neurons or in-place counters"
                )
                modal = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
                for m in model.modules():
                    if m.training and isinstance(m, modal):  # running-stat updates, random masks
                        cause = f"likely its {type(m).__name__} in training mode: call model.eval()"
                        break
                raise ValueError(
                    f"{name} of shape {tuple(x.shape)}: model could not be run on it under "
                    f"torch.func's vmap over jacrev ({cause}): {err}"
                ) from err
            raise TypeError(
                f"{name} of dtype {x.dtype} could not be passed through model (its parameters "
                f"are {', '.join(dtypes)}): {err}"
            ) from err
        return [j.reshape(j.shape[0], j.shape[1], -1) for j in jac.values()]  # [N, O, P_k]

    # in the model's own precision: under autocast, bfloat16 Jacobians and sums give a kernel
    # that is not positive semi-definite
    with torch.autocast(x1.device.type, enabled=False):
        j1 = jacobian("x1", x1)
        j2 = j1 if x2 is None else jacobian("x2", x2)
        spec = "aip,bjp->abij" if output == "full" else "aip,bip->ab"
        terms = [torch.einsum(spec, a, b) for a, b in zip(j1, j2, strict=True)]
        return torch.stack(terms).sum(dim=0)
