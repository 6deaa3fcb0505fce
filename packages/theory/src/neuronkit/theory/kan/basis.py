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
* ``"fourier"``: ``cos(m x / L), sin(m x / L)``, ``m = 1..n/2``, ``L`` the half range
  (FourierKAN's integer frequencies ``cos(k x), sin(k x)`` on the default range ``[-1, 1]``:
  GistNoesis/FourierKAN ``fftKAN.py``; period ``2 pi L``, so hidden-layer inputs beyond the
  grid range are not aliased);
* ``"rbf"``: Gaussians ``exp(-((x - c_m)/h)^2)`` on ``n`` equispaced centres (FastKAN);
* ``"wavelet"``: Mexican-hat wavelets ``(1 - u^2) exp(-u^2/2)``, ``u = (x - c_m)/h`` (Wav-KAN).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from neuronkit.common import (
    check_choice,
    check_finite,
    check_number,
    check_type,
    floating_dtype,
    under_torch_func,
)

from .._utils import check_input_dtype, check_positive_int, traced

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

_HALF = (torch.float16, torch.bfloat16)


def _half_in_float32(fn: Any) -> Any:
    """Evaluate a basis of half-precision ``x`` in float32 and round the values once, to
    ``x``'s dtype. Computed in bfloat16, the position of ``x`` on a 50-interval grid is off
    by up to a fifth of an interval, and the basis values by up to 18% of their maximum."""

    @functools.wraps(fn)
    def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.dtype in _HALF:
            return fn(x.float(), *args, **kwargs).to(x.dtype)
        return fn(x, *args, **kwargs)

    return wrapper


def extended_grid(
    in_features: int,
    grid: int,
    k: int,
    grid_range: tuple[float, float] = (-1.0, 1.0),
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Uniform knots ``[in_features, grid + 2k + 1]`` over ``grid_range``, extended by ``k``
    knot spacings on both sides (pykan's grid), computed in ``dtype`` (``None``: torch's
    default dtype; use ``torch.float64`` for double-precision bases: float32 knots are off by
    ~1e-8)."""
    in_features = check_positive_int("in_features", in_features)
    grid = check_positive_int("grid", grid)
    k = check_positive_int("k", k, minimum=0)
    lo, hi = float(grid_range[0]), float(grid_range[1])
    if not hi > lo:
        raise ValueError(f"grid_range must be (lo, hi) with hi > lo, got {grid_range!r:.80}")
    dtype = floating_dtype("dtype", dtype)
    h = (hi - lo) / grid
    # checked on Python floats (also while tracing): knots beyond dtype's range were inf or NaN,
    # and a range narrower than dtype resolves gave equal knots (a NaN or all-zero basis)
    info = torch.finfo(dtype)
    reach = max(abs(lo - k * h), abs(hi + k * h), h * (grid + k))  # h * arange too
    if not (math.isfinite(h) and reach <= info.max):
        raise ValueError(
            f"grid_range must keep the extended knots within {info.dtype}'s range "
            f"(+-{info.max:.3g}), got {grid_range!r:.80} (knots up to {reach:.3g})"
        )
    if not h > info.eps * reach:  # the knots' rounding is up to eps/2 |knot|
        raise ValueError(
            f"grid_range must be wide enough for distinct knots in {info.dtype}: spacing "
            f"{h:.3g} at knots up to {reach:.3g}, got {grid_range!r:.80}"
        )
    knots = lo + h * torch.arange(-k, grid + k + 1, dtype=dtype)
    return knots.expand(in_features, -1).contiguous()


@_half_in_float32
def bspline_basis(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """B-spline basis of order ``k`` by the Cox-de Boor recursion, vectorised.

    Args:
        x: floating ``[batch, in]``; knots: ``[in, n_knots]`` non-decreasing, ``n_knots >= k +
            2`` (e.g. :func:`extended_grid`); repeated knots (e.g. clamped ends) are allowed.

    Returns:
        ``[batch, in, n_knots - k - 1]`` in ``x``'s dtype.
    """
    _check_tensor("x", x, "[batch, in]")
    _check_tensor("knots", knots, "[in, n_knots]")
    k = check_positive_int("k", k, minimum=0)
    if x.ndim != 2 or knots.ndim != 2 or x.shape[1] != knots.shape[0]:
        raise ValueError(
            f"x [batch, in] and knots [in, n_knots] must agree on in, got {tuple(x.shape)} "
            f"and {tuple(knots.shape)}"
        )
    if not traced(x) and not x.is_floating_point():  # the recursion divides in x's dtype
        raise TypeError(f"x must be a floating tensor [batch, in], got dtype {x.dtype}")
    if knots.shape[1] < k + 2:  # fewer spanned no basis function (an empty or garbled result)
        raise ValueError(
            f"knots must have at least k + 2 = {k + 2} columns for order k = {k}, got "
            f"{knots.shape[1]}"
        )
    return _cox_de_boor(x, knots, k)


def _cox_de_boor(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`bspline_basis` without its checks; ``knots`` ``[in or 1, n_knots]``."""
    g = knots.unsqueeze(0).to(x.dtype)  # [1, in, n]
    xe = x.unsqueeze(-1)  # [B, in, 1]
    b = ((xe >= g[..., :-1]) & (xe < g[..., 1:])).to(x.dtype)
    for p in range(1, k + 1):
        # repeated knots (clamped ends) give 0/0 terms, which are 0 (Cox-de Boor's convention):
        # an infinite span makes them 0 (it was NaN) and leaves every other quotient as it is
        left = (xe - g[..., : -(p + 1)]) / _span(g[..., p:-1] - g[..., : -(p + 1)])
        right = (g[..., p + 1 :] - xe) / _span(g[..., p + 1 :] - g[..., 1:-p])
        b = left * b[..., :-1] + right * b[..., 1:]
    return b


def _span(d: torch.Tensor) -> torch.Tensor:
    """Knot spans ``d`` (``[1, in, n]``) with zero spans replaced by infinity."""
    return torch.where(d == 0, torch.full_like(d, math.inf), d)


def _local_bspline_polys(k: int) -> tuple[tuple[float, ...], ...]:
    """Polynomial coefficients ``P [k+1 (power), k+1 (r)]`` of the ``k + 1`` nonzero cardinal
    B-splines on one knot interval: ``B_{j-k+r}(j + u) = sum_d P[d, r] u^d``, ``u in [0, 1)``.

    From the Cox-de Boor step on unit knots restricted to the nonzero functions,
    ``N^p_r = ((u + p - r) N^{p-1}_{r-1} + (r + 1 - u) N^{p-1}_r) / p`` (out-of-range terms 0),
    in integers ``M^p = p! N^p`` (polynomials in ``u`` as coefficient lists), divided by ``k!``
    at the end (correctly rounded). Plain Python integers only, so ``torch.compile`` folds it
    into constants.
    """

    def add(a: list[int], b: list[int]) -> list[int]:
        n = max(len(a), len(b))
        return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]

    def mul_lin(a: list[int], c0: int, c1: int) -> list[int]:
        # a(u) * (c0 + c1 u)
        out = [0] * (len(a) + 1)
        for i, ai in enumerate(a):
            out[i] += ai * c0
            out[i + 1] += ai * c1
        return out

    polys: list[list[int]] = [[1]]
    scale = 1
    for p in range(1, k + 1):
        new: list[list[int]] = []
        for r in range(p + 1):
            term: list[int] = [0]
            if r >= 1:
                term = add(term, mul_lin(polys[r - 1], p - r, 1))
            if r <= p - 1:
                term = add(term, mul_lin(polys[r], r + 1, -1))
            new.append(term)
        polys = new
        scale *= p
    return tuple(
        tuple(polys[r][d] / scale if d < len(polys[r]) else 0.0 for r in range(k + 1))
        for d in range(k + 1)
    )


def _eager(x: torch.Tensor) -> bool:
    """Whether ``x`` is a plain tensor in plain eager mode, so :func:`_constants` may read and
    fill its module-level caches. Not while ``torch.compile`` / ``torch.export``
    (FakeTensors, functional tensors), ``torch.jit.trace``, ``torch.fx`` (a Proxy:
    neuronkit-pruning's dependency graph) or a ``TorchDispatchMode`` runs: a tensor made there
    must not outlive the trace (cached, it gave later eager calls other values and the next
    export a fake constant)."""
    return (
        type(x) is torch.Tensor  # not a FakeTensor, FunctionalTensor, fx Proxy or subclass
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not is_in_torch_dispatch_mode()
    )


def _poly_rows(k: int, h: float) -> tuple[tuple[float, ...], ...]:
    """``[P | Q / h]`` as plain floats ``[k+1][2(k+1)]``: the coefficients of the ``k + 1``
    local values (``P``, :func:`_local_bspline_polys`) and of their ``d/dx = d/du / h`` (``Q``,
    last row 0), rows by power of ``u``. Not cached (:func:`_constants` caches the tensor;
    ``torch.compile`` traces an ``lru_cache`` with a warning)."""
    p = _local_bspline_polys(k)
    q = [[(d + 1) * v for v in p[d + 1]] for d in range(k)] + [[0.0] * (k + 1)]
    return tuple(tuple(p[d]) + tuple(v * (1.0 / h) for v in q[d]) for d in range(k + 1))


def _column_offsets(k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[k+1, 1]``: ``-k, ..., 0``, the basis index of local value ``r`` relative to the
    interval ``j``."""
    return torch.arange(-k, 1, dtype=dtype, device=device).unsqueeze(1)


def _flat_offsets(batch: int, in_features: int, width: int, device: torch.device) -> torch.Tensor:
    """``[1, batch * in]`` int64: flat feature position of basis ``m = 0`` of input ``(b, i)``,
    ``b * (1 + in * width) + 1 + i * width`` (see :func:`_bspline_buffer`)."""
    b = torch.arange(batch, device=device).unsqueeze(1) * (1 + in_features * width)
    i = torch.arange(in_features, device=device) * width
    return (b + i + 1).view(1, -1)


def _positions(j: torch.Tensor, k: int, n: int, batch: int, in_features: int) -> torch.Tensor:
    """:func:`_bspline_buffer`'s flat positions ``[k+1, B*in]`` for the intervals ``j [B*in]``
    without a ``[B*in]`` constant: :func:`_flat_offsets` broadcast from ``[B]`` and ``[in]``.
    Clamps ``j`` in place to ``[-1, n + k]`` first (which leaves ``m`` unchanged), so that the
    int cast is exact."""
    width = n + 1
    start = torch.arange(in_features, device=j.device).mul_(width).add_(1)  # 1 + i * width
    jl = j.clamp_(-1, n + k).to(torch.long).view(batch, in_features).add_(start).view(1, -1)
    pos = jl + torch.arange(-k, 1, device=j.device).unsqueeze(1)  # [k+1, B*in]
    step = 1 + in_features * width
    rows = torch.arange(0, batch * step, step, device=j.device).view(-1, 1)
    return pos.view(k + 1, batch, -1).clamp_(start - 1, start + n).add_(rows).view(k + 1, -1)


# batch * in_features up to which _flat_offsets are cached (128 KiB each): larger ones, cached
# per batch size, kept hundreds of MB alive; those batches use _positions (as fast there)
_CACHED_FLAT = 1 << 14
_POLY_CACHE: dict[tuple[int, float, torch.dtype, torch.device], torch.Tensor] = {}
_cached_column_offsets = functools.lru_cache(maxsize=16)(_column_offsets)
_cached_flat_offsets = functools.lru_cache(maxsize=32)(_flat_offsets)


def _constants(
    k: int, h: float, batch: int, in_features: int, width: int, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The constant tensors of :func:`_bspline_buffer` for ``x``: :func:`_column_offsets`,
    :func:`_flat_offsets` (None for ``batch * in_features > _CACHED_FLAT`` in eager mode) and
    the matrix of :func:`_poly_rows` ``[k+1, 2(k+1)]``. Read-only, cached per order, spacing,
    sizes, dtype and device in plain eager mode; built afresh while anything traces ``x`` (see
    :func:`_eager`), so no traced, fake or functional tensor is ever cached."""
    if not _eager(x):
        pq = torch.tensor(_poly_rows(k, h), dtype=x.dtype, device=x.device)
        cols = _column_offsets(k, x.dtype, x.device)
        return cols, _flat_offsets(batch, in_features, width, x.device), pq
    key = (k, h, x.dtype, x.device)
    cached = _POLY_CACHE.get(key)
    if cached is None:
        if len(_POLY_CACHE) > 64:
            _POLY_CACHE.clear()
        cached = torch.tensor(_poly_rows(k, h), dtype=x.dtype, device=x.device)
        _POLY_CACHE[key] = cached
    cols = _cached_column_offsets(k, x.dtype, x.device)
    if batch * in_features > _CACHED_FLAT:
        return cols, None, cached
    return cols, _cached_flat_offsets(batch, in_features, width, x.device), cached


def _horner_t(coef: torch.Tensor, u: torch.Tensor, degree: int) -> torch.Tensor:
    """``sum_d coef[d] u^d`` for every column of ``coef [degree+1, cols]`` (Horner):
    ``u [N]`` -> ``[cols, N]`` (the long axis innermost, so each step is one vectorised
    pass)."""
    c = coef.unsqueeze(-1)  # [degree + 1, cols, 1]
    if degree == 0:
        return c[0].expand(-1, u.shape[0]).contiguous()
    out = torch.addcmul(c[degree - 1], c[degree], u)
    for d in range(degree - 2, -1, -1):
        out = torch.addcmul(c[d], out, u)
    return out


def _bspline_buffer(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool, with_deriv: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None]:
    """Features ``[B, 1 + in * (G + k + 1)]`` of the fast B-spline path, and what the backward
    needs (if ``with_deriv``), from the ``k + 1`` local values per input.

    Row ``b`` holds a 1 (for a bias), then per input ``i`` the block ``[B_0(x_bi), ...,
    B_{G+k-1}(x_bi), silu(x_bi)]`` (``silu`` column 0 if not ``base``). With ``t = (x - lo)/h
    + k`` (extended knot ``m`` at ``t = m``) and ``j = floor(t)``, local value ``r`` (a
    polynomial in ``u = t - j``) is basis ``m = j - k + r``; it is scattered to the flat
    position ``b (1 + in (G+k+1)) + 1 + i (G+k+1) + m`` with ``m`` clamped to
    ``[-1, G + k]``. Out-of-basis values (``m < 0`` or ``m >= G + k``: inputs near or beyond
    the grid ends) thereby land only in the column just before the input's block (the row's 1
    or the previous input's ``silu``) or in its own ``silu`` column, which are all written
    afterwards; basis columns get only their own values, so they equal pykan's ``B_batch``
    (0 beyond the extended grid).

    The backward data are the flat positions ``[k+1, B*in]``, the local derivatives
    ``d B_m / dx`` there ``[k+1, B*in]`` (out-of-basis ones sit at the overwritten columns,
    whose gradients the backward zeroes) and ``silu'(x)`` ``[B, in]`` (None without base).
    """
    n = grid + k
    width = n + 1
    batch, in_f = x.shape
    # knot coordinate: knot m sits at t = m (reshape: x may be a transposed, strided view)
    t = (x * (1.0 / h)).add_(k - lo / h).reshape(-1)
    j = torch.floor(t)
    if k == 0:  # a step function: on a knot, rounding in t can pick the interval below;
        # compared with the knots of extended_grid itself, as the reference path is
        step, xf = ((lo + grid * h) - lo) / grid, x.reshape(-1)
        j += (xf >= lo + step * (j + 1)).to(j.dtype)
        j -= (xf < lo + step * j).to(j.dtype)
    u = t.sub_(j)
    cols, flat, pq = _constants(k, h, batch, in_f, width, x)
    if flat is None:
        pos = _positions(j, k, n, batch, in_f)
    else:  # callers reject NaN/inf; m is clamped before the int cast
        pos = (j + cols).clamp_(-1, n).to(torch.long).add_(flat)  # [k+1, B*in]
    vals = _horner_t(pq if with_deriv else pq[:, : k + 1], u, k)  # [(2)(k+1), B*in]
    feats = x.new_zeros(batch, 1 + in_f * width)
    feats.view(-1).scatter_(0, pos.view(-1), vals[: k + 1].reshape(-1))
    feats[:, 0] = 1.0
    blocks = feats[:, 1:].view(batch, in_f, width)
    blocks[..., n] = F.silu(x) if base else 0.0
    if not with_deriv:
        return feats, None
    deriv = vals[k + 1 :]
    dsilu = None
    if base:  # silu'(x) = s (1 + x (1 - s))
        s = torch.sigmoid(x)
        dsilu = (1 - s).mul_(x).add_(1).mul_(s)
    return feats, (pos, deriv, dsilu)


class _BSplineBuffer(torch.autograd.Function):
    """The features of :func:`_bspline_buffer` ``[B, 1 + in (G + k + 1)]`` with a
    closed-form sparse backward: ``grad_x = sum_r grad[pos_r] dB_{m_r}/dx + grad_silu
    silu'(x)`` over the ``k + 1`` local basis functions only. Asked for a graph of its backward
    (``create_graph=True``: gradient penalties, Hessians), it differentiates
    :func:`_plain_features` instead, so higher derivatives are exact too."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool
    ) -> torch.Tensor:
        need = bool(ctx.needs_input_grad[0])
        feats, saved = _bspline_buffer(x, lo, h, grid, k, base, need)
        if saved is not None:
            pos, deriv, dsilu = saved
            ctx.args = (lo, h, grid, k, base)
            ctx.save_for_backward(x, pos, deriv, dsilu if dsilu is not None else deriv)
        return feats

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        x, pos, deriv, dsilu = ctx.saved_tensors
        lo, h, grid, k, base = ctx.args
        if torch.is_grad_enabled():  # autograd runs backward with grad mode = create_graph
            (grad_x,) = torch.autograd.grad(
                _plain_features(x, lo, h, grid, k, base), x, grad, create_graph=True
            )
            return grad_x, None, None, None, None, None
        batch, in_f = x.shape
        width = grid + k + 1
        grad = grad.contiguous()
        blocks = grad[:, 1:].view(batch, in_f, width)
        grad_silu = blocks[..., -1] * dsilu if base else None
        # out-of-basis local values were scattered to the 1 and silu columns: zero those there
        grad = grad.clone()
        grad[:, 0] = 0.0
        grad[:, 1:].view(batch, in_f, width)[..., -1] = 0.0
        local = grad.view(-1).index_select(0, pos.view(-1)).view_as(deriv)
        grad_x = (local * deriv).sum(0).view(batch, in_f)
        if grad_silu is not None:
            grad_x = grad_x.add_(grad_silu)
        return grad_x, None, None, None, None, None


def _plain_features(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool
) -> torch.Tensor:
    """The features of :func:`_bspline_buffer` from :func:`bspline_basis`'s Cox-de Boor
    recursion in plain ops (differentiable any number of times, and under ``torch.func``)."""
    # one row of knots for every input (broadcast): no size of x is read, so a
    # torch.jit.trace of it holds for every batch size
    knots = extended_grid(1, grid, k, (lo, lo + grid * h), dtype=x.dtype)
    basis = _cox_de_boor(x, knots.to(x.device), k)  # [B, in, G + k]
    last = F.silu(x) if base else torch.zeros_like(x)
    blocks = torch.cat([basis, last.unsqueeze(-1)], dim=-1)
    return torch.cat([torch.ones_like(x[:, :1]), blocks.flatten(1)], dim=1)


@_half_in_float32
def _features(x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool) -> torch.Tensor:
    """The features of :func:`_bspline_buffer` ``[B, 1 + in (G + k + 1)]``: the fast Function,
    or under a ``torch.func`` transform or forward-mode AD (``vmap``, ``jacrev``, ``jvp``,
    ``forward_ad``: its scatter into a new buffer and its closed-form backward have no
    transform rules) or ``torch.jit.trace`` (also
    ONNX's legacy exporter, which cannot trace a Python autograd Function's saved state)
    :func:`_plain_features`, the same values differentiated by autograd."""
    if under_torch_func() or torch.jit.is_tracing():
        return _plain_features(x, lo, h, grid, k, base)
    out: torch.Tensor = _BSplineBuffer.apply(x, lo, h, grid, k, base)
    return out


def _bspline_layer(
    x: torch.Tensor, weight: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool
) -> torch.Tensor:
    """``[B, in] -> [B, out]``: the features of :func:`_bspline_buffer` times
    ``weight [out, 1 + in * (G + k + 1)]`` (the bias, then per input
    ``[coef_0..coef_{G+k-1}, base]``). No input checks (callers validate)."""
    return _features(x, lo, h, grid, k, base) @ weight.T


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
    input, scattered with ``silu(x)`` into features ``[batch, in, G + k + 1]``), so the layer is
    ``features @ W^T`` with ``W = [bias | [coef | base_weight] per input]`` (the bias against
    a column of ones); the backward uses the closed-form derivatives of the same ``k + 1``
    functions and of ``silu``.

    Args:
        x: ``[batch, in]``; coef: ``[out, in, G + k]``; base_weight: ``[out, in]`` or None;
        bias: ``[out]`` or None (tensors, floating, all of ``coef``'s dtype); lo, h: grid
        start and spacing (``h > 0``); k: order.

    Returns:
        ``[batch, out]``. Second and higher derivatives (``create_graph=True``) go through the
        Cox-de Boor recursion (:func:`bspline_basis`). NaN or infinite inputs are rejected
        (``ValueError``).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(coef, torch.Tensor):
        raise TypeError(
            f"x and coef must be torch.Tensors, got {type(x).__name__} and {type(coef).__name__}"
        )
    for name, value in (("base_weight", base_weight), ("bias", bias)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor or None, got {type(value).__name__}")
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
    # torch's bare scatter / matmul dtype errors otherwise
    if not coef.is_floating_point():
        raise TypeError(f"coef must be a floating tensor, got dtype {coef.dtype}")
    for name, value in (("base_weight", base_weight), ("bias", bias)):
        if value is not None:
            check_input_dtype(name, value, coef.dtype, owner="coef")
    check_input_dtype("x", x, coef.dtype, owner="coef")
    check_number("h", h, gt=0)
    check_finite("x", x)
    if base_weight is None:
        weight = F.pad(coef, (0, 1))
    else:
        weight = torch.cat([coef, base_weight.unsqueeze(-1)], dim=-1)
    first = bias.unsqueeze(-1) if bias is not None else coef.new_zeros(out_f, 1)
    weight = torch.cat([first, weight.reshape(out_f, -1)], dim=-1)
    return _bspline_layer(x, weight, lo, h, n - k, k, base_weight is not None)


def bspline_features(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, *, base: bool = False
) -> torch.Tensor:
    """Fast B-spline features on a uniform extended grid (closed-form, sparse backward).

    Evaluates only the ``k + 1`` nonzero cardinal B-splines per input (de Boor's local
    recursion in the knot coordinate ``t = (x - lo)/h + k``, no recursion over all knots) and
    scatters them into the dense basis; the backward pass uses the closed-form derivative
    ``dB^k_m/dx = (B^{k-1}_m - B^{k-1}_{m+1}) / h`` of those ``k + 1`` functions only. Values
    equal :func:`bspline_basis` on ``extended_grid(in, grid, k, (lo, lo + grid*h))`` (pykan's
    ``B_batch``); inputs outside the extended grid give zeros, as there. Higher derivatives
    (``create_graph=True``) differentiate :func:`bspline_basis`'s recursion.

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
    return _bspline_features(x, float(lo), float(h), grid, k, base)


def _bspline_features(
    x: torch.Tensor, lo: float, h: float, grid: int, k: int, base: bool
) -> torch.Tensor:
    """:func:`bspline_features` without its input checks (callers validate)."""
    feats = _features(x, lo, h, grid, k, base)
    blocks = feats[:, 1:].view(x.shape[0], x.shape[1], grid + k + 1)
    if base:  # silu first
        return torch.cat([blocks[..., -1:], blocks[..., :-1]], dim=-1)
    return blocks[..., :-1]


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


def _check_tensor(name: str, x: Any, layout: str) -> None:
    if traced(x):  # a torch.fx proxy (neuronkit-pruning's dependency graph): nothing to read
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")


def _check_range(lo: float, hi: float) -> None:
    check_number("lo", lo)
    check_number("hi", hi)
    if not hi > lo:
        raise ValueError(f"hi must be > lo, got lo={lo!r} and hi={hi!r}")
    if not math.isfinite(hi - lo):  # an infinite spacing made every u 0 (or NaN)
        raise ValueError(f"hi - lo must be finite, got lo={lo!r} and hi={hi!r}")


@_half_in_float32
def chebyshev_basis(x: torch.Tensor, n: int) -> torch.Tensor:
    """``T_0..T_{n-1}(tanh x)``: ``[..., in] -> [..., in, n]``."""
    _check_tensor("x", x, "[..., in]")
    n = check_positive_int("n", n)
    t = torch.tanh(x)
    values = [torch.ones_like(t)]
    if n > 1:
        values.append(t)
    for _ in range(2, n):
        values.append(2 * t * values[-1] - values[-2])
    return torch.stack(values[:n], dim=-1)


@_half_in_float32
def fourier_basis(x: torch.Tensor, n: int, half_range: float = 1.0) -> torch.Tensor:
    """``[cos(m x/L), sin(m x/L)]`` for ``m = 1..ceil(n/2)``, truncated to ``n`` (FourierKAN's
    ``cos(k x), sin(k x)``, ``k = 1..gridsize``, for ``L = 1``)."""
    _check_tensor("x", x, "[..., in]")
    n = check_positive_int("n", n)
    check_number("half_range", half_range, gt=0)
    m = math.ceil(n / 2)
    freq = torch.arange(1, m + 1, dtype=x.dtype, device=x.device) * (1.0 / half_range)
    arg = x.unsqueeze(-1) * freq
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)[..., :n]


def _centres(n: int, lo: float, hi: float, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    c = torch.linspace(lo, hi, n, dtype=x.dtype, device=x.device)
    h = (hi - lo) / max(n - 1, 1)
    return c, h


@_half_in_float32
def rbf_basis(x: torch.Tensor, n: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Gaussian RBFs ``exp(-((x - c_m)/h)^2)`` on ``n`` centres in ``[lo, hi]``."""
    _check_tensor("x", x, "[..., in]")
    n = check_positive_int("n", n)
    _check_range(lo, hi)
    c, h = _centres(n, lo, hi, x)
    u = (x.unsqueeze(-1) - c) / h
    return torch.exp(-u * u)


@_half_in_float32
def wavelet_basis(x: torch.Tensor, n: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Mexican-hat wavelets ``(1 - u^2) exp(-u^2/2)``, ``u = (x - c_m)/h``, ``n`` centres."""
    _check_tensor("x", x, "[..., in]")
    n = check_positive_int("n", n)
    _check_range(lo, hi)
    c, h = _centres(n, lo, hi, x)
    u = (x.unsqueeze(-1) - c) / h
    # capped where exp(-u^2/2) is 0 in any dtype: u^2 = inf (huge x) gave (1 - inf) 0 = NaN
    u2 = (u * u).clamp_max(1e4)
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

    For ``"bspline"`` pass ``knots`` (``[in, n_basis + k + 1]``) and the order ``k``; the other
    spaces also take ``x [..., in]`` (``-> [..., in, n_basis]``).
    """
    check_choice("space", space, SPACES)
    n_basis = check_positive_int("n_basis", n_basis)
    lo, hi = float(grid_range[0]), float(grid_range[1])
    check_number("grid_range[1] - grid_range[0]", hi - lo, gt=0)
    if space == "bspline":
        if knots is None:
            raise ValueError("knots must be given for the 'bspline' space")
        _check_tensor("knots", knots, "[in, n_basis + k + 1]")
        k = check_positive_int("k", k, minimum=0)
        # the knots fix the basis size: other knots gave n_knots - k - 1 functions, not n_basis
        if not traced(knots) and (knots.ndim != 2 or knots.shape[-1] != n_basis + k + 1):
            raise ValueError(
                f"knots must be [in, n_basis + k + 1] = [in, {n_basis + k + 1}] for n_basis = "
                f"{n_basis} and k = {k}, got shape {tuple(knots.shape)}"
            )
        return bspline_basis(x, knots, k)
    if space == "chebyshev":
        return chebyshev_basis(x, n_basis)
    if space == "fourier":
        return fourier_basis(x, n_basis, (hi - lo) / 2)
    if space == "rbf":
        return rbf_basis(x, n_basis, lo, hi)
    return wavelet_basis(x, n_basis, lo, hi)
