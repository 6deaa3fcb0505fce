"""Radial classification tasks: labels that depend on the input only through its norm.

Used to compare quadratic and conventional networks (Fan et al., "Expressivity and
Trainability of Quadratic Networks"): one quadratic neuron draws a sphere, a ReLU network must
tile it with hyperplanes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._utils import check_positive_int, torch_generator

__all__ = ["RadialDataset", "radial_shells"]


@dataclass(frozen=True)
class RadialDataset:
    """Inputs ``x [n, dim]`` (float32), labels ``y [n]`` (int64) and the shell edges ``[shells-1]``
    (squared radii) that separate the classes."""

    x: torch.Tensor
    y: torch.Tensor
    edges: torch.Tensor


def radial_shells(
    n: int,
    dim: int,
    *,
    shells: int = 2,
    seed: int | torch.Generator | None = None,
) -> RadialDataset:
    """Gaussian inputs labelled by alternating concentric shells of equal probability mass.

    ``x ~ N(0, I_dim)``; ``||x||^2`` is chi-square with ``dim`` degrees of freedom, cut at its
    ``k / shells`` quantiles (``k = 1..shells-1``) into ``shells`` shells with label ``k mod 2``.
    ``shells = 2`` is the balanced ball-versus-outside task.

    Args:
        n: number of samples (``>= 1``); dim: input dimension (``>= 1``);
        shells: number of shells (``>= 2``); seed: int or ``torch.Generator``.

    Returns:
        a :class:`RadialDataset` with ``x [n, dim]``, ``y [n]`` in ``{0, 1}``.
    """
    n = check_positive_int("n", n)
    dim = check_positive_int("dim", dim)
    shells = check_positive_int("shells", shells, minimum=2)
    gen = torch_generator(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    q = torch.arange(1, shells, dtype=torch.float64) / shells
    from scipy.stats import chi2  # imported here: scipy.stats takes about a second to import

    edges = torch.as_tensor(chi2.ppf(q.numpy(), df=dim), dtype=torch.float64)
    shell = torch.bucketize((x * x).sum(dim=1), edges)
    return RadialDataset(x=x.float(), y=(shell % 2).long(), edges=edges)
