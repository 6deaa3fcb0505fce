"""The synthetic signal-coordinate task of the DiffROAR paper (Shah et al. 2021, Section 5).

Each example has a label ``y`` in {-1, +1} (returned as class 0 / 1) and input ``x = y * e_j``:
a single non-zero "signal" coordinate ``j``, drawn per example. The discriminative feature of
an instance is therefore known exactly (coordinate ``j``), which makes the question "do input
gradients highlight it?" testable. With ``bias_prob`` the signal sits on coordinate 0 with that
probability and on a uniform other coordinate otherwise (the authors'
``SemiRandomSignalCoordinate``; ``bias_prob = 1 / dim`` is uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neuronkit.common import check_number, check_seed

__all__ = ["SignalCoordinateData", "signal_coordinate_data"]


@dataclass(frozen=True)
class SignalCoordinateData:
    """Attributes: ``x: [N, dim]`` float32, ``y: [N]`` classes 0/1 (sign -1/+1), ``signal: [N]``
    index of each example's signal coordinate."""

    x: torch.Tensor
    y: torch.Tensor
    signal: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


def signal_coordinate_data(
    n: int,
    dim: int = 10,
    *,
    seed: int = 0,
    bias_prob: float | None = None,
    signal_range: tuple[float, float] = (1.0, 1.0),
) -> SignalCoordinateData:
    """Draw ``n`` examples ``x = y * s * e_j``.

    Args:
        n: number of examples.
        dim: input dimension ``d`` (the paper uses 10).
        seed: random seed.
        bias_prob: probability that ``j = 0``; otherwise ``j`` is uniform over ``1..d-1``.
            ``None`` draws ``j`` uniformly over all ``d`` coordinates.
        signal_range: the magnitude ``s`` is uniform in this range (default exactly 1).
    """
    check_number("n", n, ge=1, integer=True)
    check_number("dim", dim, ge=2, integer=True)
    check_seed(seed)
    if bias_prob is not None:
        check_number("bias_prob", bias_prob, ge=0.0, le=1.0)
    if (
        isinstance(signal_range, (str, bytes))
        or not hasattr(signal_range, "__len__")
        or len(signal_range) != 2
    ):
        raise TypeError(
            f"signal_range must be a (low, high) pair of numbers, got {signal_range!r:.80}"
        )
    lo, hi = signal_range
    check_number("signal_range[0]", lo, gt=0.0)
    check_number("signal_range[1]", hi, ge=lo)
    gen = torch.Generator().manual_seed(int(seed))
    y = torch.randint(0, 2, (n,), generator=gen)
    if bias_prob is None:
        j = torch.randint(0, dim, (n,), generator=gen)
    else:
        biased = torch.rand(n, generator=gen) < bias_prob
        other = torch.randint(1, dim, (n,), generator=gen)
        j = torch.where(biased, torch.zeros_like(other), other)
    magnitude = lo + (hi - lo) * torch.rand(n, generator=gen)
    x = torch.zeros(n, dim)
    x[torch.arange(n), j] = (2 * y - 1).float() * magnitude
    return SignalCoordinateData(x=x, y=y, signal=j)
