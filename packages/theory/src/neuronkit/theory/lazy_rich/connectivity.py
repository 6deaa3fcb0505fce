"""Connectivity structure and rich versus lazy learning.

Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie, "How connectivity structure shapes rich
and lazy learning in neural circuits" (ICLR 2024). At a fixed weight norm, a low-rank initial
connectivity makes learning *richer* (larger relative weight change ``||W_T - W_0|| / ||W_0||``
and larger change of the tangent kernel) than a high-rank one, unless the low-rank structure is
aligned with the task, in which case learning is lazy again. This module builds initial weights
with a controlled rank at fixed Frobenius norm (equal singular values, random or aligned with given
task directions; or, as the authors' code does, the truncated SVD of a given random matrix), a
two-layer network ``f(x) = v . tanh(W x) / sqrt(h)`` and full-batch training that records the
richness measures. Shapes: inputs ``[P, D]``, targets ``[P]``, ``W [h, D]``, ``v [h]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from neuronkit.common import check_number, grad_enabled, progress

from .._utils import as_float_tensor, check_layout, check_positive_int, torch_generator
from ..measures import (
    effective_rank,
    empirical_ntk,
    kernel_distance,
    kernel_target_alignment,
    relative_change,
)

__all__ = [
    "RichLazyResult",
    "TwoLayerTanhNet",
    "low_rank_weight",
    "train_rich_lazy",
    "truncated_rank_weight",
]


def _orthonormal(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    return q


def low_rank_weight(
    out_dim: int,
    in_dim: int,
    rank: int,
    frobenius_norm: float,
    *,
    row_space: Any = None,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """``W = U diag(s) V^T`` ``[out_dim, in_dim]`` of the given rank and Frobenius norm.

    ``U`` ``[out_dim, rank]`` and ``V`` ``[in_dim, rank]`` have random orthonormal columns and the
    ``rank`` singular values are equal (``frobenius_norm / sqrt(rank)``), so that the effective
    rank equals ``rank``. With ``row_space`` ``[k, in_dim]`` (task directions, ``k <= rank``) the
    first ``k`` right singular vectors span those rows: the task-aligned initialization.
    """
    m = check_positive_int("out_dim", out_dim)
    n = check_positive_int("in_dim", in_dim)
    r = check_positive_int("rank", rank)
    if r > min(m, n):
        raise ValueError(f"rank must be <= min(out_dim, in_dim) = {min(m, n)}, got {r}")
    check_number("frobenius_norm", frobenius_norm, gt=0)
    gen = torch_generator(seed)
    u = _orthonormal(m, r, gen)
    if row_space is None:
        v = _orthonormal(n, r, gen)
    else:
        rs = as_float_tensor("row_space", row_space, 2, "[k, in_dim]")
        if rs.shape[1] != n or rs.shape[0] > r:
            raise ValueError(
                f"row_space must be [k <= rank={r}, in_dim={n}], got shape {tuple(rs.shape)}"
            )
        extra = torch.randn(n, r - rs.shape[0], generator=gen, dtype=torch.float64)
        v, _ = torch.linalg.qr(torch.cat([rs.T, extra], dim=1))
    return (frobenius_norm / math.sqrt(r)) * u @ v.T


def truncated_rank_weight(weight: Any, rank: int) -> torch.Tensor:
    """The rank-``rank`` truncated SVD of ``weight`` ``[M, N]``, rescaled to its Frobenius norm.

    Liu et al.'s construction of low-rank initial weights of equal norm (reference code
    ``BioRNN_RichLazy/main.py``): keep the top ``rank`` singular triplets of one random matrix
    (its own singular values, not equal ones), then rescale to ``||weight||_F``; ``rank =
    min(M, N)`` returns ``weight`` itself.
    """
    w = as_float_tensor("weight", weight, 2, "[M, N]")
    r = check_positive_int("rank", rank)
    if r > min(w.shape):
        raise ValueError(f"rank must be <= min(M, N) = {min(w.shape)}, got {r}")
    peak = w.abs().max()
    if peak == 0:
        raise ValueError("weight must not be all zeros")
    w = w / peak  # the norms below would overflow (|w| ~ 1e155) or underflow (~ 1e-155)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    low = (u[:, :r] * s[:r]) @ vh[:r]
    return low * (torch.linalg.norm(w) / torch.linalg.norm(low)) * peak


class TwoLayerTanhNet(torch.nn.Module):
    """``f(x) = v . tanh(W x) / sqrt(h)``; ``W [h, D]`` and ``v [h]`` given (float64 copies).
    ``x [B, D] -> [B]``, ``x`` in the parameters' dtype."""

    def __init__(self, weight: torch.Tensor, readout: torch.Tensor) -> None:
        super().__init__()
        w = as_float_tensor("weight", weight, 2, "[h, D]")
        v = as_float_tensor("readout", readout, 1, "[h]")
        if v.shape[0] != w.shape[0]:
            raise ValueError(
                f"readout must have {w.shape[0]} entries (rows of weight), got {v.shape[0]}"
            )
        self.weight = torch.nn.Parameter(w.clone())
        self.readout = torch.nn.Parameter(v.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` -> ``[B]``."""
        d = self.weight.shape[1]
        check_layout("x", x, 2, f"[B, {d}]", d, self.weight.dtype)
        return torch.tanh(x @ self.weight.T) @ self.readout / math.sqrt(self.weight.shape[0])


@dataclass(frozen=True)
class RichLazyResult:
    """Richness measures of one training run.

    Attributes:
        weight_change: ``||W_T - W_0||_F / ||W_0||_F`` of the hidden weights.
        weight_kernel_distance: ``1 - alignment(K_0, K_T)`` (uncentred) of the tangent kernels
            of the hidden weights ``W`` alone, the measure of Liu et al.'s code (the kernel of
            the weight matrix whose rank is varied).
        kernel_distance: ``1 - alignment(K_0, K_T)`` of the empirical NTKs over both layers.
        kernel_change: ``||K_T - K_0||_F / ||K_0||_F`` of the NTKs over both layers.
        alignment_init, alignment_final: centred kernel-target alignments of ``K_0``, ``K_T``.
        effective_rank_init: effective rank of ``W_0``.
        final_loss: training MSE at the end.
    """

    weight_change: float
    weight_kernel_distance: float
    kernel_distance: float
    kernel_change: float
    alignment_init: float
    alignment_final: float
    effective_rank_init: float
    final_loss: float


@grad_enabled("train_rich_lazy")
def train_rich_lazy(
    model: TwoLayerTanhNet,
    x: Any,
    y: Any,
    *,
    steps: int,
    lr: float = 0.5,
    kernel_points: int = 100,
    show_progress: bool | None = None,
) -> RichLazyResult:
    """Full-batch gradient descent on ``mean (f(x) - y)^2`` (in place), with richness measures.

    The kernels are the empirical ones (``torch.func``) on the first ``kernel_points`` inputs:
    the NTK over both layers and the tangent kernel of ``W`` alone. ``x [P, D]``, ``y [P]``
    (moved to the device and dtype of ``model.weight``). ``show_progress``: a bar over the
    steps (``None``: only on a terminal).
    """
    if not isinstance(model, TwoLayerTanhNet):
        raise TypeError(f"model must be a TwoLayerTanhNet, got {type(model).__name__}")
    device, dtype = model.weight.device, model.weight.dtype
    xt = as_float_tensor("x", x, 2, "[P, D]").to(device, dtype)
    yt = as_float_tensor("y", y, 1, "[P]").to(device, dtype)
    if yt.shape[0] != xt.shape[0]:
        raise ValueError(f"y must have one target per row of x ({xt.shape[0]}), got {yt.shape[0]}")
    if xt.shape[1] != model.weight.shape[1]:
        raise ValueError(f"x must have {model.weight.shape[1]} columns, got {xt.shape[1]}")
    steps = check_positive_int("steps", steps)
    check_number("lr", lr, gt=0)
    kp = check_positive_int("kernel_points", kernel_points, minimum=2)
    xk, yk = xt[:kp], yt[:kp]
    w0 = model.weight.detach().clone()
    k0 = empirical_ntk(model, xk)
    kw0 = empirical_ntk(model, xk, params={"weight": model.weight})
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in progress(range(steps), show_progress=show_progress, desc="train_rich_lazy"):
        loss = ((model(xt) - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
    with torch.no_grad():
        final = float(((model(xt) - yt) ** 2).mean())
    kt = empirical_ntk(model, xk)
    kwt = empirical_ntk(model, xk, params={"weight": model.weight})
    return RichLazyResult(
        weight_change=relative_change(model.weight, w0),
        weight_kernel_distance=kernel_distance(kw0, kwt),
        kernel_distance=kernel_distance(k0, kt),
        kernel_change=relative_change(kt, k0),
        alignment_init=kernel_target_alignment(k0, yk),
        alignment_final=kernel_target_alignment(kt, yk),
        effective_rank_init=effective_rank(w0),
        final_loss=final,
    )
