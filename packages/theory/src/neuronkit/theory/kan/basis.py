"""Activation-space bases for Kolmogorov-Arnold layers (functional core).

Each function maps inputs ``x [..., in]`` to basis values ``[..., in, n_basis]``; a KAN edge
activation is a linear combination of one space's basis functions (plus the base SiLU branch, see
:mod:`neuronkit.theory.kan.layers`). Spaces:

* ``"bspline"``: order-``k`` B-splines on a uniform grid of ``grid`` intervals over
  ``[lo, hi]``, extended by ``k`` knots on both sides (pykan's ``B_batch`` convention,
  ``grid + k`` functions; Liu et al., "KAN: Kolmogorov-Arnold Networks");
* ``"chebyshev"``: Chebyshev polynomials ``T_0..T_{n-1}(tanh x)`` (ChebyKAN);
* ``"fourier"``: ``cos(m pi x / L), sin(m pi x / L)``, ``m = 1..n/2``, ``L`` the half range
  (FourierKAN);
* ``"rbf"``: Gaussians ``exp(-((x - c_m)/h)^2)`` on ``n`` equispaced centres (FastKAN);
* ``"wavelet"``: Mexican-hat wavelets ``(1 - u^2) exp(-u^2/2)``, ``u = (x - c_m)/h`` (Wav-KAN).
"""

from __future__ import annotations

import math

import torch

from neuronkit.common import check_choice, check_number

from .._utils import check_positive_int

__all__ = [
    "SPACES",
    "basis_values",
    "bspline_basis",
    "chebyshev_basis",
    "extended_grid",
    "fourier_basis",
    "rbf_basis",
    "uniform_bspline_basis",
    "wavelet_basis",
]

SPACES = ("bspline", "chebyshev", "fourier", "rbf", "wavelet")


def extended_grid(
    in_features: int, grid: int, k: int, grid_range: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Uniform knots ``[in_features, grid + 2k + 1]`` over ``grid_range``, extended by ``k``
    knot spacings on both sides (pykan's grid)."""
    in_features = check_positive_int("in_features", in_features)
    grid = check_positive_int("grid", grid)
    k = check_positive_int("k", k, minimum=0)
    lo, hi = float(grid_range[0]), float(grid_range[1])
    if not hi > lo:
        raise ValueError(f"grid_range must be (lo, hi) with hi > lo, got {grid_range}")
    h = (hi - lo) / grid
    knots = lo + h * torch.arange(-k, grid + k + 1, dtype=torch.float32)
    return knots.expand(in_features, -1).contiguous()


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """B-spline basis of order ``k`` by the Cox-de Boor recursion, vectorised.

    Args:
        x: ``[batch, in]``; knots: ``[in, n_knots]`` increasing (e.g. :func:`extended_grid`).

    Returns:
        ``[batch, in, n_knots - k - 1]``.
    """
    if x.ndim != 2 or knots.ndim != 2 or x.shape[1] != knots.shape[0]:
        raise ValueError(
            f"x [batch, in] and knots [in, n_knots] must agree on in, got {tuple(x.shape)} "
            f"and {tuple(knots.shape)}"
        )
    g = knots.unsqueeze(0).to(x.dtype)  # [1, in, n]
    xe = x.unsqueeze(-1)  # [B, in, 1]
    b = ((xe >= g[..., :-1]) & (xe < g[..., 1:])).to(x.dtype)
    for p in range(1, k + 1):
        left = (xe - g[..., : -(p + 1)]) / (g[..., p:-1] - g[..., : -(p + 1)])
        right = (g[..., p + 1 :] - xe) / (g[..., p + 1 :] - g[..., 1:-p])
        b = left * b[..., :-1] + right * b[..., 1:]
    return b


def uniform_bspline_basis(x: torch.Tensor, lo: float, h: float, grid: int, k: int) -> torch.Tensor:
    """B-spline basis on the uniform extended grid of :func:`extended_grid` (fast path).

    Same values as :func:`bspline_basis` with ``extended_grid(in, grid, k, (lo, lo + grid*h))``,
    but on a uniform grid every Cox-de Boor denominator is ``p h``, so in the knot coordinate
    ``u_j = (x - lo)/h + k - j`` the recursion is ``B^p_j = (u_j B^{p-1}_j + (p + 1 - u_j)
    B^{p-1}_{j+1}) / p``: no per-element division and no knot tensor.

    Args:
        x: ``[batch, in]``; lo: left end of the grid range; h: knot spacing (``> 0``);
        grid: intervals G; k: order.

    Returns:
        ``[batch, in, grid + k]``.
    """
    n = grid + 2 * k  # order-0 functions
    j = torch.arange(n, dtype=x.dtype, device=x.device)
    u = ((x - lo) / h + k).unsqueeze(-1) - j  # [B, in, n]
    b = ((u >= 0) & (u < 1)).to(x.dtype)
    for p in range(1, k + 1):
        up = u[..., : n - p]
        b = (up * b[..., :-1] + (p + 1 - up) * b[..., 1:]) * (1.0 / p)
    return b


def chebyshev_basis(x: torch.Tensor, n: int) -> torch.Tensor:
    """``T_0..T_{n-1}(tanh x)``: ``[..., in] -> [..., in, n]``."""
    t = torch.tanh(x)
    values = [torch.ones_like(t)]
    if n > 1:
        values.append(t)
    for _ in range(2, n):
        values.append(2 * t * values[-1] - values[-2])
    return torch.stack(values[:n], dim=-1)


def fourier_basis(x: torch.Tensor, n: int, half_range: float = 1.0) -> torch.Tensor:
    """``[cos(m pi x/L), sin(m pi x/L)]`` for ``m = 1..ceil(n/2)``, truncated to ``n``."""
    m = math.ceil(n / 2)
    freq = torch.arange(1, m + 1, dtype=x.dtype, device=x.device) * (math.pi / half_range)
    arg = x.unsqueeze(-1) * freq
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)[..., :n]


def _centres(n: int, lo: float, hi: float, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    c = torch.linspace(lo, hi, n, dtype=x.dtype, device=x.device)
    h = (hi - lo) / max(n - 1, 1)
    return c, h


def rbf_basis(x: torch.Tensor, n: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Gaussian RBFs ``exp(-((x - c_m)/h)^2)`` on ``n`` centres in ``[lo, hi]``."""
    c, h = _centres(n, lo, hi, x)
    u = (x.unsqueeze(-1) - c) / h
    return torch.exp(-u * u)


def wavelet_basis(x: torch.Tensor, n: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Mexican-hat wavelets ``(1 - u^2) exp(-u^2/2)``, ``u = (x - c_m)/h``, ``n`` centres."""
    c, h = _centres(n, lo, hi, x)
    u = (x.unsqueeze(-1) - c) / h
    u2 = u * u
    return (1.0 - u2) * torch.exp(-0.5 * u2)


def basis_values(
    space: str,
    x: torch.Tensor,
    n_basis: int,
    *,
    knots: torch.Tensor | None = None,
    k: int = 3,
    grid_range: tuple[float, float] = (-1.0, 1.0),
) -> torch.Tensor:
    """Basis values of ``space`` (one of :data:`SPACES`): ``[batch, in] -> [batch, in, n_basis]``.

    For ``"bspline"`` pass ``knots`` (``[in, n_basis + k + 1]``) and the order ``k``.
    """
    check_choice("space", space, SPACES)
    n_basis = check_positive_int("n_basis", n_basis)
    lo, hi = float(grid_range[0]), float(grid_range[1])
    check_number("grid_range[1] - grid_range[0]", hi - lo, gt=0)
    if space == "bspline":
        if knots is None:
            raise ValueError("knots must be given for the 'bspline' space")
        return bspline_basis(x, knots, k)
    if space == "chebyshev":
        return chebyshev_basis(x, n_basis)
    if space == "fourier":
        return fourier_basis(x, n_basis, (hi - lo) / 2)
    if space == "rbf":
        return rbf_basis(x, n_basis, lo, hi)
    return wavelet_basis(x, n_basis, lo, hi)
