"""The noisy linear coordinate of Shah et al., "The Pitfalls of Simplicity Bias in Neural
Networks" (NeurIPS 2020), Section 5 (the L^MS-7 data).

The authors' code (``harshays/simplicitybiaspitfalls``, ``scripts/gendata.py``, the
``corrupt_lin_margin`` branch, used with ``corrupt_lin = 0.1`` in
``03_suboptimal_generalization.ipynb``) makes the linear coordinate less predictive by moving a
fixed fraction of the samples *into the margin band*: their linear coordinate is redrawn
uniformly from ``(-band, band)``, the gap around the linear decision boundary. Such a point
carries no label information in the linear coordinate, so the linear coordinate alone predicts
about ``1 - fraction / 2`` of the labels (95% for the paper's 10%), while the slabs still predict
all of them. This differs from flipping the sign of the linear coordinate (the generator's
``linear_noise``), which leaves the mislabelled points far from the boundary.
"""

from __future__ import annotations

import dataclasses

import torch

from neuronkit.common import check_number, check_type

from .._utils import torch_generator
from ..data.lms import LMSDataset

__all__ = ["margin_band_noise"]


def margin_band_noise(
    data: LMSDataset,
    fraction: float,
    *,
    band: float,
    seed: int | torch.Generator | None = None,
) -> LMSDataset:
    """A copy of ``data`` with the linear coordinate of ``round(fraction * n)`` samples (drawn
    without replacement) redrawn uniformly from ``(-band, band)``; ``data`` is not modified.

    Args:
        data: an :class:`~neuronkit.theory.data.lms.LMSDataset` (rotated or not).
        fraction: share of the samples to move into the band, in ``[0, 1)``.
        band: half-width of the band (> 0); the authors use the linear margin, i.e. half the gap
            around 0 (``lms_data(linear_margin=m)`` leaves the gap ``(-m/2, m/2)``).
        seed: int or ``torch.Generator`` for the choice of samples and the new values.

    Returns:
        the noisy :class:`~neuronkit.theory.data.lms.LMSDataset`: ``z`` column 0 replaced for the
        chosen rows, ``x = z @ rotation`` recomputed for those rows only (the others are kept bit
        for bit), ``linear_flipped`` marking every sample whose linear coordinate now points at
        the wrong label (sign 0 counts as wrong).
    """
    check_type("data", data, LMSDataset)
    check_number("fraction", fraction, ge=0.0, lt=1.0)
    check_number("band", band, gt=0.0)
    gen = torch_generator(seed)
    n = data.z.shape[0]
    count = round(n * float(fraction))
    idx = torch.randperm(n, generator=gen)[:count]
    values = (2.0 * torch.rand(count, generator=gen, dtype=torch.float64) - 1.0) * band
    lin = data.linear_coordinates[0]
    z = data.z.clone()
    z[idx, lin] = values.to(z.dtype)
    x = data.x.clone()
    rows = z[idx].to(torch.float64) @ data.rotation.to(torch.float64)
    x[idx] = rows.to(x.dtype)
    sign = 2.0 * data.y.to(z.dtype) - 1.0
    flipped = z[:, lin] * sign <= 0
    return dataclasses.replace(data, x=x, z=z, linear_flipped=flipped)
