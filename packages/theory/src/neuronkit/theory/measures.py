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

  All are 0 at exact collapse. Shapes: features ``[N, D]``, labels ``[N]``, weights ``[K, D]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neuronkit.common import check_number, check_shape

from ._utils import as_float_tensor, as_labels, check_positive_int, torch_generator

__all__ = [
    "class_means",
    "fourier_ipr",
    "inverse_participation_ratio",
    "nc1",
    "nc2",
    "nc3",
    "nc4",
    "neural_collapse_metrics",
    "simplex_etf",
    "split_threshold",
    "within_class_variability",
]


def inverse_participation_ratio(x: torch.Tensor, r: float = 2.0, dim: int = -1) -> torch.Tensor:
    """IPR ``sum_i |x_i|^(2r) / (sum_i |x_i|^2)^r`` along ``dim``.

    1 for a vector with one non-zero entry, ``n^(1 - r)`` for a flat vector of length ``n``;
    invariant to scaling. All-zero vectors give 0. Works on real or complex tensors.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_number("r", r, gt=1.0)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    mag2 = x.abs().to(torch.float64) ** 2
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
    if w.ndim == 0 or w.shape[dim] < 2:
        raise ValueError(f"w must have >= 2 entries along dim {dim}, got shape {tuple(w.shape)}")
    spectrum = torch.fft.rfft(w.detach().to(torch.float64), dim=dim).abs()
    return inverse_participation_ratio(spectrum, r=r, dim=dim)


def split_threshold(values: Any) -> float:
    """Otsu's threshold of a 1-D sample: the cut maximizing the between-group variance.

    Returns the midpoint between the two values around the best cut, e.g. to separate low-IPR
    (memorizing) from high-IPR (generalizing) neurons without looking at any labels.
    """
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 numbers, got {v.size}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite, got NaN or infinity")
    n = v.size
    csum = np.cumsum(v)
    k = np.arange(1, n)
    w0, w1 = k / n, (n - k) / n
    mu0 = csum[:-1] / k
    mu1 = (csum[-1] - csum[:-1]) / (n - k)
    score = w0 * w1 * (mu0 - mu1) ** 2
    best = int(np.argmax(score))
    return float((v[best] + v[best + 1]) / 2.0)


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
    """``Tr(Sigma_W) / Tr(Sigma_T)``: the share of the feature variance that is within classes."""
    h, y, k = _prepare(features, labels, num_classes)
    means, _ = _means(h, y, k)
    within = ((h - means[y]) ** 2).sum()
    total = ((h - h.mean(dim=0)) ** 2).sum()
    return float(within / total) if total > 0 else 0.0


def _nc1(h: torch.Tensor, y: torch.Tensor, k: int) -> float:
    means, glob = _means(h, y, k)
    centred = h - means[y]
    sigma_w = centred.T @ centred / h.shape[0]
    mbar = means - glob
    sigma_b = mbar.T @ mbar / k
    return float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / k)


def nc1(features: Any, labels: Any, num_classes: int | None = None) -> float:
    """NC1 ``Tr(Sigma_W Sigma_B^+) / K`` (0 when every sample sits on its class mean).

    ``Sigma_W`` is the within-class covariance over all samples, ``Sigma_B`` the covariance of
    the class means around their mean, ``^+`` the Moore-Penrose pseudo-inverse.
    """
    h, y, k = _prepare(features, labels, num_classes)
    return _nc1(h, y, k)


def _etf_gram(k: int) -> torch.Tensor:
    e = torch.eye(k, dtype=torch.float64) - 1.0 / k
    return e / torch.linalg.norm(e)


def _nc2_parts(mbar: torch.Tensor) -> dict[str, float]:
    k = mbar.shape[0]
    gram = mbar @ mbar.T
    norm = torch.linalg.norm(gram)
    if norm == 0:
        return {"nc2": float(torch.linalg.norm(_etf_gram(k))), "equinorm": 0.0, "equiangular": 0.0}
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
    and ``E = I - 11^T/K`` that of a simplex ETF (0 for an ETF of any scale and rotation)."""
    h, y, k = _prepare(features, labels, num_classes)
    means, glob = _means(h, y, k)
    return _nc2_parts(means - glob)["nc2"]


def _check_weights(weights: Any, k: int, d: int) -> torch.Tensor:
    w = as_float_tensor("weights", weights, 2, "[K, D]")
    check_shape("weights", w, (k, d))
    return w


def _nc3(w: torch.Tensor, mbar: torch.Tensor) -> float:
    wn, mn = torch.linalg.norm(w), torch.linalg.norm(mbar)
    if wn == 0 or mn == 0:
        return float("nan")
    return float(torch.linalg.norm(w / wn - mbar / mn) ** 2)


def nc3(features: Any, labels: Any, weights: Any, num_classes: int | None = None) -> float:
    """NC3 ``|| W/||W||_F - Mbar/||Mbar||_F ||_F^2`` (0 when the classifier rows are the centred
    class means up to scale). ``weights [K, D]``."""
    h, y, k = _prepare(features, labels, num_classes)
    w = _check_weights(weights, k, h.shape[1])
    means, glob = _means(h, y, k)
    return _nc3(w, means - glob)


def _nc4(h: torch.Tensor, means: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> float:
    logits = h @ w.T + (0.0 if b is None else b)
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
    """
    h, y, k = _prepare(features, labels, num_classes)
    means, glob = _means(h, y, k)
    parts = _nc2_parts(means - glob)
    out = {
        "nc1": _nc1(h, y, k),
        "nc2": parts["nc2"],
        "nc2_equinorm": parts["equinorm"],
        "nc2_equiangular": parts["equiangular"],
    }
    if weights is not None:
        w = _check_weights(weights, k, h.shape[1])
        out["nc3"] = _nc3(w, means - glob)
        out["nc4"] = _nc4(h, means, w, _check_bias(bias, k))
    elif bias is not None:
        raise ValueError("bias must come with weights (NC4 needs the classifier)")
    return out


def simplex_etf(
    num_classes: int,
    dim: int | None = None,
    *,
    scale: float = 1.0,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """A simplex equiangular tight frame: ``K`` rows ``[K, D]`` of norm ``scale`` with pairwise
    cosine ``-1/(K-1)`` that sum to zero.

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
