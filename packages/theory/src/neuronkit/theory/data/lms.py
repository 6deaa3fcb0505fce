"""LMS data: one linear coordinate plus k-slab coordinates (Shah et al., NeurIPS 2020).

Shah, Tamuly, Raghunathan, Jain & Netrapalli, "The Pitfalls of Simplicity Bias in Neural
Networks". Binary labels ``y in {0, 1}``; coordinate 0 is the *linear* (simplest) feature, the
other ``dim - 1`` coordinates are *k-slab* features (a union of ``k`` slabs with alternating
labels: a linear classifier cannot use them, a network needs ``k - 1`` boundaries). Each feature
alone predicts the label perfectly:

* linear coordinate: ``x_0 ~ U[margin/2, 1]`` for ``y = 1`` and ``U[-1, -margin/2]`` for
  ``y = 0`` (a gap of width ``linear_margin`` around 0);
* k-slab coordinate: ``k`` slabs of equal width ``(2 - (k-1) slab_margin) / k`` tiling
  ``[-1, 1]``, separated by gaps of width ``slab_margin`` (the authors' geometry,
  ``scripts/gendata.py`` ``get_slab_width``: 5 slabs of width 0.24 at a gap of 0.2); slab ``i``
  carries label ``1`` when ``i`` is even. Given the label a
  slab of that label is drawn uniformly, then the value uniformly inside the slab; coordinates are
  drawn independently given ``y``.

``linear_noise = p`` makes the linear coordinate *less* predictive (the paper's Section 5
variant): for a random fraction ``p`` of the samples ``x_0`` is drawn from the other label's range,
so the linear coordinate alone reaches only ``1 - p`` accuracy while the slabs stay fully
predictive. ``rotate=True`` applies a random orthogonal matrix ``W`` to every sample
(``x = z W``, the paper's rotated LMS) so features are not axis aligned; randomization tests then
act on the coordinates of ``z = x W^T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from neuronkit.common import check_number, check_probability, check_type

from .._utils import check_positive_int, torch_generator

__all__ = ["AUTHORS_SLAB_WEIGHTS", "LMSDataset", "lms_data"]

# Per-slab sampling weights (left to right, normalised within each label) of the authors' code
# (harshays/simplicitybiaspitfalls, scripts/gendata.py: slab3_pval = 1/2, slab5_pval = 3/4,
# slab7_pval = 7/8): the 5-slab puts 3/4 of its three-slab label in the central slab, the 7-slab
# 7/8 of its four-slab label in the inner pair.
AUTHORS_SLAB_WEIGHTS: dict[int, tuple[float, ...]] = {
    3: (0.5, 1.0, 0.5),
    5: (1 / 8, 1 / 2, 3 / 4, 1 / 2, 1 / 8),
    7: (1 / 16, 1 / 4, 7 / 16, 1 / 2, 7 / 16, 1 / 4, 1 / 16),
}


@dataclass(frozen=True)
class LMSDataset:
    """An LMS sample.

    Attributes:
        x: inputs ``[n, dim]`` (float32), ``z @ rotation``.
        y: labels ``[n]`` (int64, 0 or 1).
        z: the unrotated features ``[n, dim]``: column 0 linear, the others k-slab.
        rotation: orthogonal ``[dim, dim]`` (identity when not rotated).
        linear_flipped: ``[n]`` bool, samples whose linear coordinate points at the wrong label.
        num_slabs: k.
    """

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    rotation: torch.Tensor
    linear_flipped: torch.Tensor
    num_slabs: int

    @property
    def linear_coordinates(self) -> list[int]:
        """``[0]``: the index of the linear coordinate in ``z``."""
        return [0]

    @property
    def slab_coordinates(self) -> list[int]:
        """``[1, ..., dim-1]``: the indices of the slab coordinates in ``z``."""
        return list(range(1, self.z.shape[1]))


def lms_data(
    n: int,
    dim: int,
    *,
    num_slabs: int = 5,
    linear_margin: float = 0.1,
    slab_margin: float = 0.1,
    linear_noise: float = 0.0,
    slab_weights: Sequence[float] | None = None,
    rotate: bool = False,
    rotation: torch.Tensor | None = None,
    seed: int | torch.Generator | None = None,
) -> LMSDataset:
    """Sample ``n`` points of LMS-k data (one linear + ``dim - 1`` k-slab coordinates).

    Args:
        n: samples (``>= 1``); labels are balanced in expectation (``y ~ Bernoulli(1/2)``).
        dim: input dimension (``>= 2``).
        num_slabs: k (odd, ``>= 3``) slabs per slab coordinate (the paper uses 3, 5 and 7).
        linear_margin: gap around 0 in the linear coordinate, in ``[0, 1)``.
        slab_margin: gap between consecutive slabs, in ``[0, 2/(k-1))``.
        linear_noise: fraction of samples whose linear coordinate is drawn from the other label's
            range, in ``[0, 0.5)``.
        slab_weights: ``k`` positive sampling weights of the slabs (left to right), normalised
            within each label; None: uniform over a label's slabs. ``AUTHORS_SLAB_WEIGHTS[k]``
            gives the authors' distribution.
        rotate: apply a random orthogonal rotation drawn from ``seed``.
        rotation: an explicit orthogonal ``[dim, dim]`` matrix to use instead (e.g. the training
            set's, for a test set); overrides ``rotate``.
        seed: int or ``torch.Generator``.

    Returns:
        an :class:`LMSDataset`.
    """
    n = check_positive_int("n", n)
    dim = check_positive_int("dim", dim, minimum=2)
    k = check_positive_int("num_slabs", num_slabs, minimum=3)
    if k % 2 == 0:
        raise ValueError(f"num_slabs must be odd (slabs alternate labels), got {k}")
    check_number("linear_margin", linear_margin, ge=0.0, lt=1.0)
    check_number("slab_margin", slab_margin, ge=0.0, lt=2.0 / (k - 1))
    check_probability("linear_noise", linear_noise)
    if linear_noise >= 0.5:
        raise ValueError(f"linear_noise must be < 0.5, got {linear_noise}")
    check_type("rotate", rotate, bool)
    weights = None
    if slab_weights is not None:
        if isinstance(slab_weights, (str, bytes)) or not isinstance(slab_weights, Sequence):
            raise TypeError(
                f"slab_weights must be a sequence of {k} numbers, got {slab_weights!r:.80}"
            )
        if len(slab_weights) != k:
            raise ValueError(
                f"slab_weights must have num_slabs = {k} entries, got {len(slab_weights)}"
            )
        for i, v in enumerate(slab_weights):
            check_number(f"slab_weights[{i}]", v, gt=0.0)
        weights = torch.tensor([float(v) for v in slab_weights], dtype=torch.float64)
    gen = torch_generator(seed)
    y = (torch.rand(n, generator=gen) < 0.5).long()
    sign = 2.0 * y.double() - 1.0
    flipped = torch.rand(n, generator=gen) < linear_noise
    lin_sign = torch.where(flipped, -sign, sign)
    half = linear_margin / 2.0
    x0 = lin_sign * (half + (1.0 - half) * torch.rand(n, generator=gen, dtype=torch.float64))

    # slabs: label-1 slabs are the even indices 0, 2, ..., k-1; label-0 the odd ones
    width = (2.0 - (k - 1) * slab_margin) / k  # k slabs and k - 1 gaps tile [-1, 1]
    centers = -1.0 + width / 2.0 + (width + slab_margin) * torch.arange(k, dtype=torch.float64)
    halfwidth = width / 2.0
    m = dim - 1
    n_pos, n_neg = (k + 1) // 2, (k - 1) // 2
    pick = torch.rand(n, m, generator=gen, dtype=torch.float64)
    if weights is None:
        pos_idx = 2 * torch.clamp((pick * n_pos).long(), max=n_pos - 1)
        neg_idx = 1 + 2 * torch.clamp((pick * n_neg).long(), max=n_neg - 1)
    else:
        # inverse CDF of each label's slab distribution
        def draw(first: int, count: int) -> torch.Tensor:
            w = weights[first::2]
            cdf = torch.cumsum(w, 0) / w.sum()
            j = torch.searchsorted(cdf, pick.contiguous(), right=True)
            return first + 2 * torch.clamp(j, max=count - 1)

        pos_idx, neg_idx = draw(0, n_pos), draw(1, n_neg)
    slab = torch.where(y[:, None] == 1, pos_idx, neg_idx)
    offset = (2.0 * torch.rand(n, m, generator=gen, dtype=torch.float64) - 1.0) * halfwidth
    z = torch.cat([x0[:, None], centers[slab] + offset], dim=1)

    if rotation is not None:
        if not isinstance(rotation, torch.Tensor):
            raise TypeError(f"rotation must be a torch.Tensor [dim, dim], got {type(rotation)}")
        if rotation.shape != (dim, dim):
            raise ValueError(
                f"rotation must have shape [{dim}, {dim}], got {tuple(rotation.shape)}"
            )
        w = rotation.detach().to(torch.float64)
        if not torch.allclose(w @ w.T, torch.eye(dim, dtype=torch.float64), atol=1e-5):
            raise ValueError("rotation must be orthogonal (rotation @ rotation.T = I)")
    elif rotate:
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        w = q * torch.sign(torch.diagonal(r))[None, :]
    else:
        w = torch.eye(dim, dtype=torch.float64)
    x = z @ w
    return LMSDataset(
        x=x.float(),
        y=y,
        z=z.float(),
        rotation=w.float(),
        linear_flipped=flipped,
        num_slabs=k,
    )
