"""Activation-space bases for Kolmogorov-Arnold layers (functional core).

Each function maps inputs ``x [..., in]`` to basis values ``[..., in, n_basis]``; a KAN edge
activation is a linear combination of one space's basis functions (plus the base SiLU branch, see
:mod:`neuronkit.theory.kan.layers`). Spaces:

* ``"bspline"``: order-``k`` B-splines on a uniform grid of ``grid`` intervals over
  ``[lo, hi]``, extended by ``k`` knots on both sides (pykan's ``B_batch`` convention,
  ``grid + k`` functions; Liu et al., "KAN: Kolmogorov-Arnold Networks"). Reference:
  :func:`bspline_basis` (Cox-de Boor over all knots); fast path on the uniform grid:
  :func:`uniform_bspline_basis`, :func:`bspline_features`, :func:`bspline_linear` (only the
  ``k + 1`` nonzero cardinal B-splines per input, as polynomials in the in-interval position,
  scattered into the dense basis; a custom backward uses their closed-form derivatives);
* ``"chebyshev"``: Chebyshev polynomials ``T_0..T_{n-1}(tanh x)`` (ChebyKAN);
* ``"fourier"``: ``cos(m pi x / L), sin(m pi x / L)``, ``m = 1..n/2``, ``L`` the half range
  (FourierKAN);
* ``"rbf"``: Gaussians ``exp(-((x - c_m)/h)^2)`` on ``n`` equispaced centres (FastKAN);
* ``"wavelet"``: Mexican-hat wavelets ``(1 - u^2) exp(-u^2/2)``, ``u = (x - c_m)/h`` (Wav-KAN).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from neuronkit.common import check_choice, check_finite, check_number, check_type

from .._utils import check_positive_int

__all__ = [
    "SPACES",
    "basis_values",
    "bspline_basis",
    "bspline_features",
    "bspline_linear",
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


@functools.lru_cache(maxsize=16)
def _local_bspline_polys(k: int) -> tuple[tuple[float, ...], ...]:
    """Polynomial coefficients ``P [k+1 (power), k+1 (r)]`` of the ``k + 1`` nonzero cardinal
    B-splines on one knot interval: ``B_{j-k+r}(j + u) = sum_d P[d, r] u^d``, ``u in [0, 1)``.

    From the Cox-de Boor step on unit knots restricted to the nonzero functions,
    ``N^p_r = ((u + p - r) N^{p-1}_{r-1} + (r + 1 - u) N^{p-1}_r) / p`` (out-of-range terms 0),
    with polynomials in ``u`` as coefficient lists (exact rationals, then floats).
    """
    from fractions import Fraction

    def add(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
        n = max(len(a), len(b))
        zero = Fraction(0)
        return [(a[i] if i < len(a) else zero) + (b[i] if i < len(b) else zero) for i in range(n)]

    def mul_lin(a: list[Fraction], c0: Fraction, c1: Fraction) -> list[Fraction]:
        # a(u) * (c0 + c1 u)
        out = [Fraction(0)] * (len(a) + 1)
        for i, ai in enumerate(a):
            out[i] += ai * c0
            out[i + 1] += ai * c1
        return out

    polys: list[list[Fraction]] = [[Fraction(1)]]
    for p in range(1, k + 1):
        new: list[list[Fraction]] = []
        for r in range(p + 1):
            term: list[Fraction] = [Fraction(0)]
            if r >= 1:
                term = add(term, mul_lin(polys[r - 1], Fraction(p - r), Fraction(1)))
            if r <= p - 1:
                term = add(term, mul_lin(polys[r], Fraction(r + 1), Fraction(-1)))
            new.append([c / p for c in term])
        polys = new
    return tuple(
        tuple(float(polys[r][d]) if d < len(polys[r]) else 0.0 for r in range(k + 1))
        for d in range(k + 1)
    )


_POLY_CACHE: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _poly_matrices(k: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``P [k+1, k+1]`` and ``d/du`` ``Q [k+1, k+1]`` (last row 0) coefficient
    matrices, rows by power of ``u``; cached per order, dtype and device."""
    key = (k, like.dtype, like.device)
    if key not in _POLY_CACHE:
        p = torch.tensor(_local_bspline_polys(k), dtype=like.dtype, device=like.device)
        q = torch.zeros_like(p)
        if k > 0:
            q[:-1] = p[1:] * torch.arange(1, k + 1, dtype=like.dtype, device=like.device)[:, None]
        _POLY_CACHE[key] = (p, q)
    return _POLY_CACHE[key]


@functools.lru_cache(maxsize=16)
def _column_offsets(k: int, device: torch.device) -> torch.Tensor:
    """``[1, 2, ..., k + 1]``: buffer columns of the local values relative to ``j``."""
    return torch.arange(1, k + 2, device=device)


def _horner(coef: torch.Tensor, u: torch.Tensor, degree: int) -> torch.Tensor:
    """``sum_d coef[d] u^d`` for every column: ``u [...]`` -> ``[..., coef.shape[1]]``."""
    uu = u.unsqueeze(-1)
    if degree == 0:
        return coef[0].expand(*u.shape, coef.shape[1]).contiguous()
    out = torch.addcmul(coef[degree - 1], coef[degree], uu)
    for d in range(degree - 2, -1, -1):
        out = torch.addcmul(coef[d], out, uu)
    return out


def _bspline_buffer_width(grid: int, k: int, base: bool) -> int:
    """Width of the per-input work buffer of the fast B-spline path (see
    :func:`_bspline_buffer`): basis ``m`` at column ``m + k + 1``, ``silu(x)`` last if
    ``base``."""
    return grid + 3 * k + 2 + int(base)


def _bspline_buffer(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool, with_deriv: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Scatter the ``k + 1`` local B-spline values per input into a work buffer.

    Buffer ``[B, in, G + 3k + 2 (+1 if base)]``: with ``j = floor(t)`` clamped to
    ``[-1, G + 2k]``, local value ``r`` goes to column ``q = j + r + 1``, i.e. basis
    ``m = j - k + r`` sits at column ``m + k + 1``. Basis columns are
    ``[k + 1, k + 1 + n)``; every other column collects values that are not basis functions
    of the grid (``m`` outside ``0..n-1`` or inputs outside the extended grid) and must get a
    zero weight. ``silu(x)`` (if ``base``) is in the last column, which no local value reaches.

    Returns the buffer, the columns ``[B, in, k+1]`` and ``d value / dx`` (if ``with_deriv``).
    """
    t = (x * (1.0 / h)).add_(k - lo / h)  # knot coordinate: extended knot m sits at t = m
    j = torch.floor(t)
    u = t.sub_(j)
    # callers reject NaN (its floor would not be a valid column)
    pos = j.clamp_(-1, grid + 2 * k).long().unsqueeze(-1) + _column_offsets(k, x.device)
    pmat, qmat = _poly_matrices(k, x)
    vals = _horner(pmat, u, k)  # [B, in, k+1]
    buf = x.new_zeros(*x.shape, _bspline_buffer_width(grid, k, base))
    buf.scatter_(-1, pos, vals)
    if base:
        buf[..., -1] = F.silu(x)
    deriv = None
    if with_deriv:
        deriv = _horner(qmat * (1.0 / h), u, k - 1) if k > 0 else torch.zeros_like(vals)
    return buf, pos, deriv


class _BSplineBuffer(torch.autograd.Function):
    """The work buffer of :func:`_bspline_buffer` with a sparse closed-form backward (only the
    ``k + 1`` nonzero basis derivatives per input). Gradients arriving at non-basis columns
    must be zero (they are, when those columns get zero weights)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool
    ) -> torch.Tensor:
        need = bool(ctx.needs_input_grad[0])
        buf, pos, deriv = _bspline_buffer(x, lo, h, grid, k, base, need)
        ctx.base = base
        if need:
            ctx.save_for_backward(x, pos, deriv)
        return buf

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        x, pos, deriv = ctx.saved_tensors
        grad_x = (grad.gather(-1, pos) * deriv).sum(-1)
        if ctx.base:
            s = torch.sigmoid(x)
            grad_x = grad_x + grad[..., -1] * (s * (1 + x * (1 - s)))
        return grad_x, None, None, None, None, None


def bspline_linear(
    x: torch.Tensor,
    coef: torch.Tensor,
    base_weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    lo: float,
    h: float,
    k: int,
) -> torch.Tensor:
    """A B-spline KAN layer in one matmul (functional core of
    :class:`~neuronkit.theory.kan.layers.KANLayer`): ``y_o = bias_o + sum_i (base_oi silu(x_i)
    + sum_m coef_oim B_m(x_i))``.

    The basis is the uniform extended grid of :func:`extended_grid` over ``[lo, lo + G h]``
    (pykan's ``B_batch``), evaluated in closed form (only the ``k + 1`` nonzero B-splines per
    input) into a padded work buffer; the weights are zero-padded to the buffer, so the layer is
    ``addmm(bias, buffer, W_pad^T)`` and the backward needs no dense basis derivative.

    Args:
        x: ``[batch, in]``; coef: ``[out, in, G + k]``; base_weight: ``[out, in]`` or None;
        bias: ``[out]`` or None; lo, h: grid start and spacing (``h > 0``); k: order.

    Returns:
        ``[batch, out]``. First derivatives only (``once_differentiable`` in ``x``). NaN or
        infinite inputs are rejected (``ValueError``).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(coef, torch.Tensor):
        raise TypeError(
            f"x and coef must be torch.Tensors, got {type(x).__name__} and {type(coef).__name__}"
        )
    k = check_positive_int("k", k, minimum=0)
    if x.ndim != 2 or coef.ndim != 3 or coef.shape[1] != x.shape[1] or coef.shape[2] <= k:
        raise ValueError(
            "x must be [batch, in] and coef [out, in, G + k] with G >= 1, got x "
            f"{tuple(x.shape)}, coef {tuple(coef.shape)} and k = {k}"
        )
    out_f, in_f, n = coef.shape
    if base_weight is not None and tuple(base_weight.shape) != (out_f, in_f):
        raise ValueError(
            f"base_weight must be [out, in] = {(out_f, in_f)}, got {tuple(base_weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (out_f,):
        raise ValueError(f"bias must be [out] = ({out_f},), got {tuple(bias.shape)}")
    check_number("h", h, gt=0)
    check_finite("x", x)
    grid = n - k
    base = base_weight is not None
    buf = _BSplineBuffer.apply(x, lo, h, grid, k, base)
    parts = [coef.new_zeros(out_f, in_f, k + 1), coef, coef.new_zeros(out_f, in_f, k + 1)]
    if base_weight is not None:
        parts.append(base_weight.unsqueeze(-1))
    weight = torch.cat(parts, dim=-1).reshape(out_f, -1)
    flat = buf.reshape(x.shape[0], -1)
    if bias is None:
        return flat @ weight.T
    return torch.addmm(bias, flat, weight.T)


def bspline_features(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, *, base: bool = False
) -> torch.Tensor:
    """Fast B-spline features on a uniform extended grid (closed-form, sparse backward).

    Evaluates only the ``k + 1`` nonzero cardinal B-splines per input (de Boor's local
    recursion in the knot coordinate ``t = (x - lo)/h + k``, no recursion over all knots) and
    scatters them into the dense basis; the backward pass uses the closed-form derivative
    ``dB^k_m/dx = (B^{k-1}_m - B^{k-1}_{m+1}) / h`` of those ``k + 1`` functions only. Values
    equal :func:`bspline_basis` on ``extended_grid(in, grid, k, (lo, lo + grid*h))`` (pykan's
    ``B_batch``); inputs outside the extended grid give zeros, as there. Not twice
    differentiable (use :func:`bspline_basis` for higher derivatives).

    Args:
        x: ``[batch, in]``; lo: left end of the grid range; h: knot spacing (``> 0``);
        grid: intervals G (``>= 1``); k: order (``>= 0``); base: put ``silu(x)`` in front
            (pykan's base branch), so one matmul gives the whole KAN layer.

    Returns:
        ``[batch, in, base + grid + k]``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [batch, in], got {type(x).__name__}")
    if x.ndim != 2 or not x.is_floating_point():
        raise ValueError(
            f"x must be a floating tensor [batch, in], got shape {tuple(x.shape)} and dtype "
            f"{x.dtype}"
        )
    check_number("h", h, gt=0)
    grid = check_positive_int("grid", grid)
    k = check_positive_int("k", k, minimum=0)
    check_type("base", base, bool)
    check_finite("x", x)
    buf = _BSplineBuffer.apply(x, float(lo), float(h), grid, k, base)
    basis = buf[..., k + 1 : k + 1 + grid + k]
    if base:
        return torch.cat([buf[..., -1:], basis], dim=-1)
    return basis


def uniform_bspline_basis(x: torch.Tensor, lo: float, h: float, grid: int, k: int) -> torch.Tensor:
    """B-spline basis on the uniform extended grid of :func:`extended_grid` (fast path).

    Same values as :func:`bspline_basis` with ``extended_grid(in, grid, k, (lo, lo + grid*h))``
    (Liu et al., "KAN: Kolmogorov-Arnold Networks", pykan's ``B_batch``), computed in closed form
    from the ``k + 1`` nonzero cardinal B-splines per input; see :func:`bspline_features`.

    Args:
        x: ``[batch, in]``; lo: left end of the grid range; h: knot spacing (``> 0``);
        grid: intervals G; k: order.

    Returns:
        ``[batch, in, grid + k]``.
    """
    return bspline_features(x, lo, h, grid, k, base=False)


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
