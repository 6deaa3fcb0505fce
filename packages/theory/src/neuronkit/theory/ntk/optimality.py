"""Infinitely wide and deep NTK classifiers: 1-NN, majority vote or a singular kernel.

Radhakrishnan, Belkin & Uhler, "Wide and deep neural networks achieve consistency for
classification" (PNAS 2023). For inputs on the unit sphere and an activation ``phi`` normalized
so that ``E[phi(z)^2] = 1`` (``z ~ N(0, 1)``), the infinite-width network with ``L`` hidden
layers (NTK parametrization, no biases) has the NNGP and NTK recursions

    Sigma_0(x, x') = K_0(x, x') = rho = <x, x'>,
    Sigma_l = dual(Sigma_{l-1}),
    K_l = Sigma_l + K_{l-1} * dual'(Sigma_{l-1}),

where ``dual(rho) = E[phi(u) phi(v)]`` (``(u, v)`` standard Gaussians with correlation ``rho``)
is the *dual activation*, with ``dual(1) = 1`` and ``dual' = (phi')^dual``. Kernel regression
(interpolation) with ``K_L`` is the trained infinitely wide network. As ``L -> inf`` its
classifier becomes, depending only on the dual activation (the taxonomy of the paper):

* **majority vote** when every ``rho < 1`` is driven to a fixed point ``rho* > 0`` or to 1
  (``dual(0) > 0`` or ``dual'(1) <= 1``, e.g. ReLU);
* **1-nearest neighbour** when ``dual(0) = dual'(0) = 0`` and ``dual'(1) > 1`` (e.g.
  ``dual(rho) = rho^3``: the kernel decays infinitely fast away from the diagonal);
* **a singular kernel classifier** ``sign(sum_i y_i S(<x, x_i>))`` when ``dual(0) = 0``,
  ``0 < dual'(0) = lambda < 1 < dual'(1) = c``; ``S`` is the Koenigs function of ``dual`` at 0,
  ``S(rho) = lim_l dual^l(rho) / lambda^l``, which behaves like ``(1 - rho)^(-beta)`` with
  ``beta = log(1/lambda) / log(c)`` near ``rho = 1``. With ``beta = d/2`` (``d`` the dimension
  of the data manifold, ``||x - x'||^2 = 2(1 - rho)``) this is Devroye's Hilbert kernel
  estimate, which is consistent: its error tends to the Bayes error.

This module gives the dual activations (ReLU arc-cosine, erf, Hermite polynomials, a numeric
dual of any activation by Gauss-Hermite quadrature), the recursions, the ``L -> inf`` limits,
the finite-depth and infinite-depth classifiers, the activation of the paper that reaches
``beta = d/2``, a matching finite network for empirical NTK checks and the paper's Dirichlet
data on the sphere with its Bayes classifier.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import optimize, stats
from scipy.linalg import LinAlgWarning
from sklearn.base import BaseEstimator, ClassifierMixin

from neuronkit.common import (
    EstimatorParams,
    as_float_array,
    check_number,
    check_type,
    grad_enabled,
)

from .._estimators import (
    accuracy,
    check_fitted,
    check_samples,
    decode_classes,
    encode_classes,
    like_input,
)
from .._utils import (
    as_float_tensor,
    check_layout,
    check_positive_int,
    label_tensor,
    long_labels,
    numpy_rng,
    torch_generator,
    writable,
)

__all__ = [
    "DeepNTKClassifier",
    "DirichletSphereData",
    "DualActivation",
    "InfiniteDepthNTKClassifier",
    "NTKNetwork",
    "depth_limit",
    "dirichlet_sphere_data",
    "dual_from_activation",
    "erf_dual",
    "hermite_dual",
    "koenigs_kernel",
    "majority_vote",
    "nearest_neighbor_classify",
    "ntk_recursion",
    "relu_dual",
    "singular_activation",
    "singular_kernel_classify",
    "sphere_kernel",
]

Tensor = torch.Tensor
_CHUNK = 2048  # test rows per block in the kernel classifiers


@dataclass(frozen=True)
class DualActivation:
    """A normalized activation with its dual: ``dual(rho) = E[phi(u) phi(v)]``, ``dual(1) = 1``.

    Attributes:
        name: label used in reports.
        dual: ``rho [..] -> [..]`` on ``[-1, 1]``.
        derivative: ``dual'(rho)``, which is also the dual of ``phi'``.
        activation: the scalar activation ``phi`` itself (``E[phi(z)^2] = 1``) when known, so
            that a finite network with this activation can be built (:class:`NTKNetwork`).
        coefficients: for polynomial duals ``sum_k c_k rho^k``, the ``c_k`` (Hermite energies).
    """

    name: str
    dual: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    activation: Callable[[Tensor], Tensor] | None = None
    coefficients: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for field in ("dual", "derivative"):
            if not callable(getattr(self, field)):
                raise TypeError(
                    f"{field} must be callable as {field}(rho), "
                    f"got {type(getattr(self, field)).__name__}"
                )
        if self.activation is not None and not callable(self.activation):
            raise TypeError(
                f"activation must be None or callable, got {type(self.activation).__name__}"
            )
        # The recursions assume unit-norm features: dual(1) = E[phi(z)^2] = 1. The built-ins
        # and quadrature duals hit it to ~1e-15; 1e-6 leaves room for float32 user duals.
        value = self.dual(torch.ones(1, dtype=torch.float64))
        if not isinstance(value, Tensor) or value.numel() != 1:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"dual must map cosines rho [n] to a tensor [n], got {got} for rho of shape (1,)"
            )
        at_one = float(value.reshape(-1)[0])
        if not abs(at_one - 1.0) <= 1e-6:
            raise ValueError(
                f"activation {self.name!r} must have dual(1) = 1, got dual(1) = {at_one:.6g}: "
                "the activation must be elementwise and normalized, E[phi(z)^2] = 1 for "
                "z ~ N(0, 1)"
            )

    def __call__(self, rho: Tensor) -> Tensor:
        return self.dual(rho)

    def __repr__(self) -> str:
        return f"DualActivation({self.name!r})"


# The duals and activations are module-level functions (or partials of them), so models and
# fitted estimators holding a DualActivation pickle (torch.save of a whole NTKNetwork).


def _relu_dual(rho: Tensor) -> Tensor:
    r = rho.clamp(-1.0, 1.0)
    return (torch.sqrt((1.0 - r * r).clamp_min(0.0)) + r * (math.pi - torch.arccos(r))) / math.pi


def _relu_derivative(rho: Tensor) -> Tensor:
    return (math.pi - torch.arccos(rho.clamp(-1.0, 1.0))) / math.pi


def _relu_activation(z: Tensor) -> Tensor:
    return math.sqrt(2.0) * torch.relu(z)


def relu_dual() -> DualActivation:
    """ReLU scaled by ``sqrt(2)``: the normalized arc-cosine kernel of degree 1 (Cho & Saul).

    ``dual(rho) = (sqrt(1 - rho^2) + rho (pi - arccos rho)) / pi``,
    ``dual'(rho) = (pi - arccos rho) / pi``.
    """
    return DualActivation("relu", _relu_dual, _relu_derivative, _relu_activation)


_ERF_NORM = math.asin(2.0 / 3.0)


def _erf_dual(rho: Tensor) -> Tensor:
    return torch.arcsin(2.0 * rho.clamp(-1.0, 1.0) / 3.0) / _ERF_NORM


def _erf_derivative(rho: Tensor) -> Tensor:
    r = rho.clamp(-1.0, 1.0)
    return (2.0 / 3.0) / torch.sqrt(1.0 - 4.0 * r * r / 9.0) / _ERF_NORM


_ERF_SCALE = 1.0 / math.sqrt(2.0 / math.pi * _ERF_NORM)


def _erf_activation(z: Tensor) -> Tensor:
    return _ERF_SCALE * torch.erf(z)


def erf_dual() -> DualActivation:
    """``phi(z) = erf(z) / sqrt((2/pi) asin(2/3))``: ``dual(rho) = asin(2 rho/3) / asin(2/3)``.

    (Williams 1997 for ``E[erf(u) erf(v)]``.)
    """
    return DualActivation("erf", _erf_dual, _erf_derivative, _erf_activation)


def _hermite_e(k: int, z: Tensor) -> Tensor:
    """Probabilists' Hermite polynomial ``He_k(z)`` by its three-term recursion."""
    h_prev, h = torch.ones_like(z), z
    if k == 0:
        return h_prev
    for n in range(1, k):
        h_prev, h = h, z * h - n * h_prev
    return h


def _polynomial(c: tuple[float, ...], rho: Tensor) -> Tensor:
    """``sum_k c_k rho^k`` (Horner)."""
    out = torch.zeros_like(rho)
    for k in range(len(c) - 1, -1, -1):
        out = out * rho + c[k]
    return out


def _polynomial_derivative(c: tuple[float, ...], rho: Tensor) -> Tensor:
    out = torch.zeros_like(rho)
    for k in range(len(c) - 1, 0, -1):
        out = out * rho + k * c[k]
    return out


def _hermite_activation(amps: tuple[float, ...], z: Tensor) -> Tensor:
    """``sum_k a_k He_k(z)``."""
    return sum(a * _hermite_e(k, z) for k, a in enumerate(amps) if a > 0)  # type: ignore[return-value]


def hermite_dual(coefficients: Sequence[float], name: str | None = None) -> DualActivation:
    """Polynomial dual ``dual(rho) = sum_k c_k rho^k`` from non-negative Hermite energies ``c_k``.

    Its activation is ``phi(z) = sum_k sqrt(c_k / k!) He_k(z)``; the ``c_k`` are rescaled to sum
    to 1 so that ``dual(1) = 1``. ``coefficients``: ``[c_0, c_1, ...]`` (at least one positive).
    """
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, Sequence):
        raise TypeError(
            "coefficients must be a sequence of non-negative numbers, "
            f"got {type(coefficients).__name__}"
        )
    c = [float(v) for v in coefficients]
    if not c or any(not math.isfinite(v) or v < 0 for v in c) or sum(c) <= 0:
        raise ValueError(
            f"coefficients must be finite, non-negative and not all zero, got {list(coefficients)}"
        )
    total = sum(c)
    c = [v / total for v in c]
    while len(c) > 1 and c[-1] == 0.0:
        c.pop()

    amps = tuple(math.sqrt(v / math.factorial(k)) for k, v in enumerate(c))
    label = name or "hermite(" + ", ".join(f"{v:.3g}" for v in c) + ")"
    coeffs = tuple(c)
    return DualActivation(
        label,
        functools.partial(_polynomial, coeffs),
        functools.partial(_polynomial_derivative, coeffs),
        functools.partial(_hermite_activation, amps),
        coeffs,
    )


def singular_activation(dim: int, degree: int | None = None) -> DualActivation:
    """The paper's consistent activation for data of intrinsic dimension ``dim``.

    ``dual(rho) = lambda rho + (1 - lambda) rho^k`` with ``lambda`` solving
    ``log(1/lambda) / log(lambda + k (1 - lambda)) = dim / 2``, so that the infinite-depth NTK
    is a singular kernel ``~ ||x - x'||^(-dim)``: Devroye's Hilbert kernel, Bayes consistent.
    ``degree`` ``k`` (odd, default: the smallest odd ``k > 1 + 2/dim``). E.g. ``dim = 1, k = 7``
    gives ``rho/2 + rho^7/2`` and ``dim = 2, k = 3`` gives ``rho/2 + rho^3/2`` (the authors'
    ``2d_opt`` and ``3d_opt``).
    """
    d = check_positive_int("dim", dim)
    if degree is None:
        k = 3
        while (d / 2.0) * (k - 1) <= 1.0:
            k += 2
    else:
        k = check_positive_int("degree", degree, minimum=2)
        if (d / 2.0) * (k - 1) <= 1.0:
            raise ValueError(f"degree must exceed 1 + 2/dim = {1 + 2 / d:g} for dim={d}, got {k}")

    def gap(lam: float) -> float:
        return math.log(1.0 / lam) - (d / 2.0) * math.log(lam + k * (1.0 - lam))

    hi = 1.0 - 1e-9
    while gap(hi) >= 0:  # move off the trivial root lambda = 1
        hi = 1.0 - (1.0 - hi) * 10
    lam = float(optimize.brentq(gap, 1e-12, hi, xtol=1e-14))
    coeffs = [0.0] * (k + 1)
    coeffs[1], coeffs[k] = lam, 1.0 - lam
    return hermite_dual(coeffs, name=f"singular(dim={d}, k={k}, lambda={lam:.4g})")


def dual_from_activation(
    activation: Callable[[Tensor], Tensor], *, name: str = "custom", points: int = 64
) -> DualActivation:
    """Numeric dual of any activation by 2-D Gauss-Hermite quadrature.

    ``phi`` is first rescaled so that ``E[phi(z)^2] = 1``; ``dual'`` uses ``phi'`` from autograd.
    ``activation``: elementwise torch function. ``points``: quadrature nodes per dimension.
    Each cosine costs ``points^2`` activation calls: an infinite-depth singular-kernel
    classifier of such a dual spends minutes on its first prediction (its Koenigs table);
    :func:`hermite_dual` with the activation's Hermite coefficients is exact and fast.
    """
    if not callable(activation):
        raise TypeError(f"activation must be callable, got {type(activation).__name__}")
    n = check_positive_int("points", points, minimum=8)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    z = torch.as_tensor(nodes, dtype=torch.float64)
    w = torch.as_tensor(weights / weights.sum(), dtype=torch.float64)
    z1, z2 = torch.meshgrid(z, z, indexing="ij")
    w2 = (w[:, None] * w[None, :]).reshape(-1)
    z1, z2 = z1.reshape(-1), z2.reshape(-1)

    second = float((w * _phi_and_grad(activation, z)[0] ** 2).sum())
    if not math.isfinite(second) or second <= 0:
        raise ValueError("activation must have a finite, positive E[phi(z)^2]")
    scale = 1.0 / math.sqrt(second)
    nodes_weights = (z1, z2, w2)
    return DualActivation(
        name,
        functools.partial(_quadrature_dual, activation, scale, nodes_weights, False),
        functools.partial(_quadrature_dual, activation, scale, nodes_weights, True),
        functools.partial(_scaled, activation, scale),
        None,
    )


def _phi(activation: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``phi(x)`` elementwise, its shape checked (with autograd recording when enabled)."""
    y = activation(x)
    if not isinstance(y, Tensor) or y.shape != x.shape:
        raise ValueError("activation must map a tensor to a tensor of the same shape")
    return y


def _phi_and_grad(activation: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``(phi(x), phi'(x))`` elementwise (``phi'`` by autograd, also under ``torch.no_grad()``;
    0 where it has no gradient)."""
    with grad_enabled("a dual from dual_from_activation"):
        x = x.detach().clone().requires_grad_(True)
        y = _phi(activation, x)
        (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x)
    return y.detach(), g.detach()


def _quadrature_dual(
    activation: Callable[[Tensor], Tensor],
    scale: float,
    nodes_weights: tuple[Tensor, Tensor, Tensor],
    deriv: bool,
    rho: Tensor,
) -> Tensor:
    """``E[phi(u) phi(v)]`` (or of ``phi'``) at correlation ``rho`` by 2-D Gauss-Hermite nodes
    ``z1, z2`` with weights ``w2``, for ``phi = scale * activation``."""
    z1, z2, w2 = nodes_weights
    flat = rho.reshape(-1, 1).clamp(-1.0, 1.0).to(torch.float64)
    n1, n2, nw = z1.to(flat.device), z2.to(flat.device), w2.to(flat.device)
    v = flat * n1[None, :] + torch.sqrt(1.0 - flat**2) * n2[None, :]
    # u = z1 is the same for every rho: evaluated once; autograd only for the derivative
    if deriv:
        prod = _phi_and_grad(activation, n1)[1][None, :] * _phi_and_grad(activation, v)[1]
    else:
        with torch.no_grad():
            prod = _phi(activation, n1)[None, :] * _phi(activation, v)
    return (scale**2 * (prod * nw[None, :]).sum(dim=1)).reshape(rho.shape).to(rho.dtype)


def _scaled(activation: Callable[[Tensor], Tensor], scale: float, x: Tensor) -> Tensor:
    return scale * activation(x)


def _as_rho(rho: Any) -> Tensor:
    if not isinstance(rho, Tensor):
        rho = torch.as_tensor(writable(as_float_array("rho", rho)))
    if not rho.dtype.is_floating_point:
        raise TypeError(f"rho must be a real floating tensor, got dtype {rho.dtype}")
    if not bool(torch.isfinite(rho).all()):
        raise ValueError("rho must be finite, got NaN or infinity")
    if bool((rho.abs() > 1.0 + 1e-6).any()):
        raise ValueError(
            f"rho must lie in [-1, 1] (cosines), got max |rho| {float(rho.abs().max()):.4g}"
        )
    return rho.to(torch.float64).clamp(-1.0, 1.0)


def _check_dual(activation: Any) -> DualActivation:
    if not isinstance(activation, DualActivation):
        raise TypeError(
            f"activation must be a DualActivation (relu_dual(), erf_dual(), hermite_dual(...)), "
            f"got {type(activation).__name__}"
        )
    return activation


def ntk_recursion(
    rho: Any, depth: int, activation: DualActivation, *, normalize: bool = False
) -> tuple[Tensor, Tensor]:
    """NNGP ``Sigma_L`` and NTK ``K_L`` of a depth-``L`` infinitely wide network at cosines ``rho``.

    ``Sigma_0 = K_0 = rho``; ``Sigma_l = dual(Sigma_{l-1})``; ``K_l = Sigma_l + K_{l-1}
    dual'(Sigma_{l-1})``. ``depth`` ``L >= 0`` counts hidden layers (``L = 1``: one hidden
    layer, ``K_1 = dual(rho) + rho dual'(rho)``). With ``normalize`` the NTK is divided by
    ``K_L(1)`` at every layer (the classifier is unchanged and deep kernels stay finite).

    Returns ``(Sigma_L, K_L)``, both shaped like ``rho``.
    """
    r = _as_rho(rho)
    depth = check_positive_int("depth", depth, minimum=0)
    act = _check_dual(activation)
    check_type("normalize", normalize, bool)
    sigma, k = r.clone(), r.clone()
    slope_one = float(act.derivative(torch.ones((), dtype=torch.float64)))
    inv_k_one = 1.0  # 1 / K_l(1), kept as a reciprocal so that deep kernels never overflow
    for _ in range(depth):
        new_sigma = act.dual(sigma)
        grad = act.derivative(sigma)
        if normalize:
            ratio = 1.0 / (inv_k_one + slope_one)  # K_{l-1}(1) / K_l(1)
            inv_k_one = inv_k_one * ratio
            k = new_sigma * inv_k_one + k * grad * ratio
        else:
            k = new_sigma + k * grad
        sigma = new_sigma
    if not normalize and not bool(torch.isfinite(k).all()):
        raise ValueError(
            f"depth {depth} overflows the NTK of this activation in float64 (K_L(1) grows "
            "geometrically with depth); use normalize=True"
        )
    return sigma, k


def _unit_rows(name: str, x: Any) -> Tensor:
    t = as_float_tensor(name, x, 2, "[N, D]")
    if t.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one feature [N, D >= 1], got shape {tuple(t.shape)}"
        )
    peaks = t.abs().amax(dim=1)
    if bool((peaks == 0).any()):
        raise ValueError(
            f"{name} must not contain zero rows (they have no direction on the sphere)"
        )
    # each row scaled by a power of two (exact) to max |x| in [0.5, 1) first: the squares of
    # huge or tiny rows would overflow or underflow in the norm
    t = torch.ldexp(t, -torch.frexp(peaks).exponent[:, None])
    return t / torch.linalg.norm(t, dim=1)[:, None]


def sphere_kernel(
    x1: Any, x2: Any | None, depth: int, activation: DualActivation, *, kind: str = "ntk"
) -> Tensor:
    """Normalized NTK (``kind="ntk"``) or NNGP (``"nngp"``) between rows projected to the sphere.

    ``x1``: ``[N1, D]``, ``x2``: ``[N2, D]`` (default ``x1``); rows are scaled to unit norm.
    Returns ``[N1, N2]``; the NTK is divided by ``K_L(1)`` so that its diagonal is 1.
    """
    if kind not in ("ntk", "nngp"):
        raise ValueError(f"kind must be 'ntk' or 'nngp', got {kind!r}")
    a = _unit_rows("x1", x1)
    b = a if x2 is None else _unit_rows("x2", x2)
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"x2 must have {a.shape[1]} columns like x1, got {b.shape[1]}")
    sigma, k = ntk_recursion(
        _cosines(a, None if x2 is None else b), depth, activation, normalize=True
    )
    return k if kind == "ntk" else sigma


def _cosines(a: Tensor, b: Tensor | None) -> Tensor:
    """``a b^T`` for unit rows; with ``b`` None, ``a a^T`` with its diagonal exactly 1 (a row
    normalized in floating point can give ``<a, a> = 1 - 1e-16``, which a deep recursion drives
    away from 1 like any other pair)."""
    if b is not None:
        return (a @ b.T).clamp(-1.0, 1.0)
    rho = (a @ a.T).clamp(-1.0, 1.0)
    rho.diagonal().fill_(1.0)
    return rho


def _singular_scaled_ntk(
    rho: Tensor, depth: int, activation: DualActivation, name: str = "rho"
) -> Tensor:
    """``K_L(rho) / lambda^L`` (``lambda = dual'(0)``) of a singular-class activation, exact at
    any depth, for cosines ``|rho| < 1``.

    The recursion runs on the scaled NTK ``K_l / lambda^l`` until every pair is in the linear
    regime of the dual (``dual(s) = lambda s`` and ``dual'(s) = lambda`` to a few ulps, where
    ``|Sigma_l|`` only shrinks). From that layer ``l`` on, ``Sigma_l / lambda^l = S(rho)`` (the
    Koenigs function) is constant and each layer adds it: ``K_L / lambda^L = K_l / lambda^l +
    (L - l) S``, so depth costs nothing beyond the ~30-60 layers in which close pairs leave 1.
    """
    lam = float(activation.derivative(torch.zeros((), dtype=torch.float64)))
    tol = 4.0 * torch.finfo(torch.float64).eps
    budget = int(600.0 / math.log(1.0 / lam))  # lambda^-budget stays below ~1e260
    sigma, k = rho.clone(), rho.clone()
    inv_scale = 1.0  # lambda^-l
    for layer in range(1, depth + 1):
        new_sigma = activation.dual(sigma)
        grad = activation.derivative(sigma)
        inv_scale /= lam
        k = new_sigma * inv_scale + k * (grad / lam)
        linear = bool(
            ((new_sigma - lam * sigma).abs() <= tol * lam * sigma.abs()).all()
            and ((grad - lam).abs() <= tol * lam).all()
        )
        sigma = new_sigma
        if linear:
            return k + (depth - layer) * (sigma * inv_scale)
        if layer >= budget:
            raise ValueError(
                f"{name}: the recursion of {activation.name} did not reach its linear regime in "
                f"{budget} layers (cosines of exactly +-1, i.e. duplicate or antipodal points?)"
            )
    return k


def _derivs_at(activation: DualActivation) -> tuple[float, float, float]:
    z = torch.zeros((), dtype=torch.float64)
    o = torch.ones((), dtype=torch.float64)
    return (
        float(activation.dual(z)),
        float(activation.derivative(z)),
        float(activation.derivative(o)),
    )


def depth_limit(activation: DualActivation, *, tol: float = 1e-12) -> dict[str, Any]:
    """Which classifier the infinitely deep NTK with this activation implements.

    Returns ``{"classifier": "majority_vote" | "nearest_neighbor" | "singular_kernel",
    "dual_at_0", "slope_at_0", "slope_at_1", "beta"}`` where ``beta = log(1/dual'(0)) /
    log(dual'(1))`` is the singularity exponent in ``(1 - rho)`` (``inf`` for 1-NN, ``nan`` for
    majority vote). Follows the taxonomy of Radhakrishnan, Belkin & Uhler (2023).
    """
    act = _check_dual(activation)
    check_number("tol", tol, gt=0)
    d0, s0, s1 = _derivs_at(act)
    out: dict[str, Any] = {"dual_at_0": d0, "slope_at_0": s0, "slope_at_1": s1}
    if s1 <= 1.0 + tol or d0 > tol:
        out.update(classifier="majority_vote", beta=float("nan"))
    elif s0 <= tol:
        out.update(classifier="nearest_neighbor", beta=float("inf"))
    else:
        out.update(classifier="singular_kernel", beta=math.log(1.0 / s0) / math.log(s1))
    return out


def _singular_limit(activation: Any) -> tuple[DualActivation, dict[str, Any]]:
    """The activation and its :func:`depth_limit`; raise unless it is of the singular class."""
    act = _check_dual(activation)
    limit = depth_limit(act)
    if limit["classifier"] != "singular_kernel":
        raise ValueError(
            f"activation must be of the singular-kernel class for koenigs_kernel, "
            f"got {act.name} ({limit['classifier']})"
        )
    return act, limit


def koenigs_kernel(
    rho: Any, activation: DualActivation, *, max_iter: int = 2_000, table_size: int | None = None
) -> Tensor:
    """The infinite-depth kernel ``S(rho) = lim_l dual^l(rho) / dual'(0)^l`` (singular class).

    Up to a positive factor, ``K_L(rho) / (L dual'(0)^L) -> S(rho)`` for ``rho < 1``; ``S``
    blows up like ``(1 - rho)^(-beta)`` at ``rho = 1`` (returned as ``inf``). ``rho``: any shape.
    With ``table_size``, ``S(rho) (1 - rho)^beta`` (smooth) is tabulated on that many log-spaced
    values of ``1 - rho`` and interpolated: much faster for large kernel matrices (the table of
    an activation is computed once and kept for later calls).
    """
    act, limit = _singular_limit(activation)
    r = _as_rho(rho)
    max_iter = check_positive_int("max_iter", max_iter)
    lam = limit["slope_at_0"]
    if table_size is not None:
        size = check_positive_int("table_size", table_size, minimum=16)
        return _koenigs_interpolated(r, act, float(limit["beta"]), size, max_iter)
    step = math.log(1.0 / lam)
    # cosines within rounding of +-1 are the same point (or its antipode): infinite kernel
    active = r.abs() < 1.0 - 1e-13
    out = torch.where(active, torch.zeros_like(r), torch.full_like(r, float("inf")) * r.sign())
    s = r[active]
    log_scale = torch.zeros_like(s)
    idx = torch.nonzero(active.reshape(-1)).reshape(-1)
    flat = out.reshape(-1).clone()
    for _ in range(max_iter):
        todo = s.abs() > 1e-12
        if not bool(todo.any()):
            break
        done = ~todo
        if bool(done.any()):
            flat[idx[done]] = s[done] * torch.exp(log_scale[done])
            s, log_scale, idx = s[todo], log_scale[todo], idx[todo]
        s = act.dual(s).clamp(-1.0, 1.0)
        log_scale = log_scale + step
    flat[idx] = s * torch.exp(log_scale)
    return flat.reshape(r.shape)


def _koenigs_table(
    activation: DualActivation, beta: float, size: int, max_iter: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The table of :func:`koenigs_kernel` with ``table_size=size``: a grid uniform in
    ``t = log((1 + rho) / (1 - rho))`` and ``h = S (1 - rho)^beta (1 + rho)^beta`` on it."""
    grid_t = torch.linspace(-31.0, 31.0, size, dtype=torch.float64, device=device)
    grid_rho = torch.tanh(grid_t / 2.0)
    damp = ((1.0 - grid_rho) * (1.0 + grid_rho)) ** beta
    return grid_t, koenigs_kernel(grid_rho, activation, max_iter=max_iter) * damp


# the same activation's table serves every call (e.g. each test chunk of each classifier)
_cached_koenigs_table = functools.lru_cache(maxsize=8)(_koenigs_table)


def _koenigs_interpolated(
    r: Tensor, activation: DualActivation, beta: float, size: int, max_iter: int
) -> Tensor:
    """:func:`koenigs_kernel` with ``table_size=size`` at checked cosines ``r`` (float64 in
    ``[-1, 1]``) of a singular-class ``activation`` whose exponent is ``beta``."""
    try:
        grid_t, h = _cached_koenigs_table(activation, beta, size, max_iter, r.device)
    except TypeError:  # an activation whose callables cannot be hashed: no cache
        grid_t, h = _koenigs_table(activation, beta, size, max_iter, r.device)
    rc = r.clamp(-1.0 + 1e-13, 1.0 - 1e-13)
    minus, plus = 1.0 - rc, 1.0 + rc
    pos = (torch.log(plus / minus) - grid_t[0]) / (grid_t[1] - grid_t[0])
    lo = pos.floor().clamp(0, size - 2).long()
    frac = (pos - lo).clamp(0.0, 1.0)
    out = (torch.take(h, lo) * (1.0 - frac) + torch.take(h[1:], lo) * frac) / (minus * plus) ** beta
    # cosines within rounding of +-1 are the same point (or its antipode): S = +-inf
    out = out.masked_fill(r >= 1.0 - 1e-13, math.inf)
    return out.masked_fill(r <= -(1.0 - 1e-13), -math.inf)


def majority_vote(y_train: Any, n_test: int) -> Tensor:
    """The most frequent training label (the smallest on ties), repeated ``n_test`` times.
    ``y_train``: integer-valued class labels ``[N]``."""
    y = _host_labels("y_train", y_train)
    if y.ndim != 1 or y.numel() == 0:
        raise ValueError(
            f"y_train must be a non-empty 1-D label vector, got shape {tuple(y.shape)}"
        )
    y = long_labels("y_train", y)
    check_number("n_test", n_test, ge=0, integer=True)  # 0: an empty test set
    counts = torch.bincount(y - y.min())
    return torch.full((int(n_test),), int(counts.argmax()) + int(y.min()), dtype=torch.long)


def nearest_neighbor_classify(x_train: Any, y_train: Any, x_test: Any) -> Tensor:
    """1-NN by the largest cosine (nearest point on the sphere). ``[N, D]``, ``[N]``, ``[M, D]``."""
    a = _unit_rows("x_train", x_train)
    b = _test_rows(x_test, a)
    y = _labels_for("y_train", a, y_train)
    idx = [(b[i : i + _CHUNK] @ a.T).argmax(dim=1) for i in range(0, b.shape[0], _CHUNK)]
    return y[torch.cat(idx)] if idx else y[:0]  # an empty test set: no labels


def _test_rows(x_test: Any, train: Tensor) -> Tensor:
    """``x_test`` projected to the sphere, checked to have the columns of the training rows."""
    b = _unit_rows("x_test", x_test)
    if b.shape[1] != train.shape[1]:
        raise ValueError(
            f"x_test must have {train.shape[1]} columns like x_train, got {b.shape[1]}"
        )
    return b


def _host_labels(name: str, y: Any) -> Tensor:
    """Labels as a CPU tensor (the kernels are computed on the CPU, like the inputs)."""
    return label_tensor(name, y).detach().cpu()


def _labels_for(name: str, x: Tensor, y: Any) -> Tensor:
    """``y`` as integer labels ``[N]``, one per row of ``x``."""
    t = _host_labels(name, y)
    if t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must be [N] with N = {x.shape[0]} labels, got shape {tuple(t.shape)}"
        )
    return long_labels(name, t)


def singular_kernel_classify(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    beta: float | None = None,
    *,
    activation: DualActivation | None = None,
) -> Tensor:
    """Singular kernel classifier ``argmax_c sum_{i: y_i = c} S(<x, x_i>)``.

    With ``beta``: ``S(rho) = (2 - 2 rho)^(-beta) = ||x - x_i||^(-2 beta)`` (Devroye's Hilbert
    kernel estimate for ``2 beta = d``). With ``activation`` (singular class): the exact
    infinite-depth kernel :func:`koenigs_kernel`. A test point equal to a training point takes its
    label.
    """
    if (beta is None) == (activation is None):
        raise ValueError("give exactly one of beta or activation")
    a = _unit_rows("x_train", x_train)
    b = _test_rows(x_test, a)
    y = _labels_for("y_train", a, y_train)
    if beta is not None:
        check_number("beta", beta, gt=0)
    else:
        act, limit = _singular_limit(activation)
    classes = torch.unique(y)
    onehot = (y[:, None] == classes[None, :]).to(torch.float64)  # [N, C]
    preds = []
    # blocks of about 2^18 kernel entries (a multiple of 16 rows): bounded memory for large
    # test sets, and temporaries small enough to stay in cache
    rows = max(16, (2**18 // a.shape[0]) // 16 * 16)
    for start in range(0, b.shape[0], rows):
        rho = (b[start : start + rows] @ a.T).clamp(-1.0, 1.0)
        if beta is not None:
            # log-domain weights: -beta * log(2 - 2 rho), scaled by the row maximum
            logw = -beta * torch.log((2.0 - 2.0 * rho).clamp_min(1e-300))
            w = torch.exp(logw - logw.max(dim=1, keepdim=True).values)
        else:
            # koenigs_kernel(rho, act, table_size=4096) without checking rho again
            k = _koenigs_interpolated(rho, act, float(limit["beta"]), 4096, 2_000)
            # weights k / (the row's largest finite |k|), 1e300 where k is infinite
            infinite = ~torch.isfinite(k)
            big = k.abs().masked_fill_(infinite, 0.0).amax(dim=1, keepdim=True)
            w = k.div_(big.clamp_min_(1e-300)).masked_fill_(infinite, 1e300)
        preds.append(classes[(w @ onehot).argmax(dim=1)])
    return torch.cat(preds) if preds else classes[:0]  # an empty test set: no labels


def _check_no_conflicts(rho: Tensor, codes: Tensor, classes: Any) -> None:
    """Raise if two rows at cosine 1 (to rounding: the same point on the sphere) carry different
    labels (``classes[codes]``): no interpolant fits both (the kernel rows are equal, the
    targets are not)."""
    same = rho >= 1.0 - 64.0 * torch.finfo(rho.dtype).eps
    same.fill_diagonal_(False)
    clash = same & (codes[:, None] != codes[None, :])
    if bool(clash.any()):
        i, j = (int(v) for v in torch.nonzero(clash)[0])
        a, b = (classes[int(codes[k])].item() for k in (i, j))
        raise ValueError(
            f"x rows {i} and {j} are the same point on the unit sphere (cosine "
            f"{float(rho[i, j]):.17g}) but y gives them different labels ({a!r} and {b!r}): "
            "kernel interpolation cannot fit both (drop one, or use ridge > 0)"
        )


class DeepNTKClassifier(ClassifierMixin, EstimatorParams, BaseEstimator):  # sklearn classifier
    """Kernel regression (interpolation) with the depth-``L`` NTK: the trained infinitely wide net.

    scikit-learn classifier: ``fit(X [N, D], y [N])``, ``predict(X [M, D]) -> [M]``, ``score``
    (accuracy); ``is_classifier`` holds, so model selection stratifies the folds. Inputs
    are projected to the unit sphere. Two classes use ``+-1`` targets, more classes one-hot
    targets; the prediction is the sign / argmax of ``K(X, X_train) K(X_train, X_train)^-1 Y``
    with the NTK normalized by ``K_L(1)``. For singular-class activations (:func:`depth_limit`)
    the kernel is computed scaled by ``dual'(0)^-L``, and the layers after every cosine has
    reached the dual's linear regime are added in closed form: any depth is exact and costs the
    same, even where the normalized kernel underflows double precision (beyond a few hundred
    layers). ``decision_function`` is then ``K_L(1) / dual'(0)^L`` times the normalized one (the
    same signs). Other activations raise a ``ValueError`` at a depth where a test point's
    normalized kernel underflows to all zeros.

    Fitted attributes: ``classes_`` (the sorted labels of ``y``: a tensor of integers, or an
    array of bools or strings, the kind :meth:`predict` returns), ``x_ [N, D]`` (the training
    rows on the sphere), ``coef_``, ``fit_residual_`` (``||K coef - Y|| / ||Y||``; above 1e-6
    ``fit`` warns, ``scipy.linalg.LinAlgWarning``), ``n_features_in_``, and the settings the fit
    used, ``activation_``, ``depth_`` and ``ridge_``: ``decision_function`` / ``predict`` use
    these, so a ``set_params`` after ``fit`` takes effect at the next ``fit`` (as in
    scikit-learn).
    """

    def __init__(self, activation: DualActivation, depth: int = 10, ridge: float = 0.0) -> None:
        # validate every argument before assigning any: a failed set_params leaves self as it was
        act = _check_dual(activation)
        depth = check_positive_int("depth", depth, minimum=0)
        check_number("ridge", ridge, ge=0)
        singular = depth_limit(act)["classifier"] == "singular_kernel"
        self.activation = act
        self.depth = depth
        self.ridge = float(ridge)
        self._singular = singular

    @staticmethod
    def _log_scaled_diagonal(activation: DualActivation, depth: int) -> float:
        """``log(K_L(1) / lambda^L)``: ``K_L(1) = sum_{j <= L} c^j`` with ``c = dual'(1) > 1``."""
        _, lam, c = _derivs_at(activation)
        n = depth + 1
        return n * math.log(c) + math.log1p(-(c**-n)) - math.log(c - 1.0) - depth * math.log(lam)

    def fit(self, x: Any, y: Any) -> DeepNTKClassifier:
        """Interpolate ``y [N]`` at the rows of ``x [N, D]`` (kernel regression with ``ridge``).

        With ``ridge = 0`` two rows of ``x`` in the same direction (the same point on the
        sphere, e.g. a duplicate) with different labels cannot both be interpolated: a
        ``ValueError`` names them; so does a kernel matrix that is singular for other reasons.
        """
        # computed into locals, assigned only at the end: a failed (re)fit leaves the old fit whole
        act, depth, ridge, singular = self.activation, self.depth, self.ridge, self._singular
        a = _unit_rows("x", x)
        check_samples("x", a)
        classes, idx = encode_classes("y", y, a.shape[0], min_classes=2)
        if len(classes) == 2:
            targets = (2.0 * idx - 1.0).to(torch.float64)[:, None]
        else:
            targets = torch.nn.functional.one_hot(idx, len(classes)).to(torch.float64)
        rho = _cosines(a, None)
        if ridge == 0.0:
            _check_no_conflicts(rho, idx, classes)
        if singular:  # K / K_L(1) = (K / lambda^L) (lambda^L / K_L(1)); equal points: 1
            other = rho < 1.0
            k = torch.ones_like(rho)
            scaled = _singular_scaled_ntk(rho[other], depth, act, "x")
            k[other] = scaled * math.exp(-self._log_scaled_diagonal(act, depth))
        else:
            k = sphere_kernel(a, None, depth, act)
        k = k + ridge * torch.eye(k.shape[0], dtype=k.dtype)
        try:
            coef = torch.linalg.solve(k, targets)
        except torch.linalg.LinAlgError as err:
            raise ValueError(
                f"x gives a singular kernel matrix at depth {depth} ({err}); duplicate "
                "points on the sphere or depth 0 with more points than dimensions? Use ridge > 0"
            ) from err
        if not bool(torch.isfinite(coef).all()):
            raise ValueError(
                f"x gives a kernel matrix too ill-conditioned to interpolate y at depth "
                f"{depth} (non-finite coefficients); use ridge > 0"
            )
        # LU is backward stable, not accurate: a near-singular kernel gives finite coefficients
        # that miss the targets (erf at depth 3 on 300 points of a circle: by 25x their norm)
        residual = float(torch.linalg.norm(k @ coef - targets) / torch.linalg.norm(targets))
        if residual > 1e-6:  # a warning, as scipy.linalg.solve gives for ill-conditioned systems
            warnings.warn(
                f"x gives a kernel matrix too ill-conditioned to interpolate y at depth {depth}: "
                f"the fit misses the targets by a relative residual of {residual:.3g}, so its "
                "predictions are unreliable; use ridge > 0",
                LinAlgWarning,
                stacklevel=2,
            )
        self.classes_ = classes
        self.fit_residual_ = residual
        self.x_ = a
        self.coef_ = coef
        self.activation_, self.depth_, self.ridge_ = act, depth, ridge  # what predict uses
        self._fitted_singular = singular
        self.n_features_in_ = int(a.shape[1])
        return self

    def decision_function(self, x: Any) -> Any:
        """Kernel-regression outputs for ``x [M, D]``: ``[M]`` for two classes (positive:
        ``classes_[1]``, as in scikit-learn), else ``[M, C]`` (a tensor for a tensor ``x``,
        else an array)."""
        return like_input(x, self._decision(x))

    def _decision(self, x: Any) -> Tensor:
        check_fitted(self, "coef_", "decision_function/predict")
        act, depth = self.activation_, self.depth_  # the fit's, whatever set_params did since
        b = _unit_rows("x", x)
        if b.shape[1] != self.x_.shape[1]:
            raise ValueError(f"x must have {self.x_.shape[1]} columns, got {b.shape[1]}")
        if self._fitted_singular:
            # K / lambda^L; a point equal to a training point: K_L(1)/lambda^L
            rho = _cosines(b, self.x_)
            other = rho < 1.0
            k = torch.full_like(rho, math.exp(min(self._log_scaled_diagonal(act, depth), 709.0)))
            k[other] = _singular_scaled_ntk(rho[other], depth, act, "x")
        else:
            k = sphere_kernel(b, self.x_, depth, act)
            if depth > 0 and bool((k == 0).all(dim=1).any()):
                raise ValueError(
                    f"depth {depth} is too deep for {act.name}: its normalized NTK "
                    "underflows double precision for some inputs (use InfiniteDepthNTKClassifier)"
                )
        out = k @ self.coef_
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, x: Any) -> Any:
        """Class labels ``[M]`` for ``x [M, D]`` (the sign, or the largest output; a tensor for a
        tensor ``x`` and integer labels, else an array)."""
        out = self._decision(x)
        best = (out > 0).long() if out.ndim == 1 else out.argmax(dim=1)
        return like_input(x, decode_classes(self.classes_, best))

    def score(self, x: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``x [M, D]`` against ``y [M]``."""
        return accuracy("y", self.predict(x), y)


class InfiniteDepthNTKClassifier(ClassifierMixin, EstimatorParams, BaseEstimator):
    """The ``L -> inf`` limit of :class:`DeepNTKClassifier`, chosen by :func:`depth_limit`.

    Majority vote, 1-NN (largest cosine) or the singular kernel classifier with the exact limit
    kernel :func:`koenigs_kernel`. A scikit-learn classifier: ``fit(X [N, D], y [N])``,
    ``predict(X [M, D])``, ``score`` (accuracy).

    Fitted attributes: ``classes_`` (the sorted labels of ``y``: a tensor of integers, or an
    array of bools or strings, the kind :meth:`predict` returns), ``x_ [N, D]``, ``y_ [N]``,
    ``n_features_in_``, ``limit_`` (:func:`depth_limit` of the activation) and ``activation_``,
    the activation the fit used: ``predict`` uses it, so a ``set_params`` after ``fit`` takes
    effect at the next ``fit``.
    """

    def __init__(self, activation: DualActivation) -> None:
        self.activation = _check_dual(activation)

    def fit(self, x: Any, y: Any) -> InfiniteDepthNTKClassifier:
        """Store the training rows ``x [N, D]`` (projected to the sphere) and labels ``y [N]``,
        and the limit classifier :func:`depth_limit` chooses (``limit_``)."""
        act = self.activation
        x_rows = _unit_rows("x", x)
        check_samples("x", x_rows)
        classes, codes = encode_classes("y", y, x_rows.shape[0])
        limit = depth_limit(act)
        self.y_ = decode_classes(classes, codes)  # assigned together, after all that can fail
        self._codes = codes
        self.x_ = x_rows
        self.classes_ = classes
        self.limit_ = limit
        self.activation_ = act
        self.n_features_in_ = int(x_rows.shape[1])
        return self

    def predict(self, x: Any) -> Any:
        """Class labels ``[M]`` for ``x [M, D]`` by the limit classifier (``limit_``; a tensor for
        a tensor ``x`` and integer labels, else an array)."""
        check_fitted(self, "x_", "predict")
        kind = self.limit_["classifier"]
        b = _unit_rows("x", x)
        if b.shape[1] != self.x_.shape[1]:
            raise ValueError(f"x must have {self.x_.shape[1]} columns, got {b.shape[1]}")
        if kind == "majority_vote":
            codes = majority_vote(self._codes, b.shape[0])
        elif kind == "nearest_neighbor":
            codes = nearest_neighbor_classify(self.x_, self._codes, b)
        else:
            codes = singular_kernel_classify(self.x_, self._codes, b, activation=self.activation_)
        return like_input(x, decode_classes(self.classes_, codes))

    def score(self, x: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``x [M, D]`` against ``y [M]``."""
        return accuracy("y", self.predict(x), y)


class NTKNetwork(torch.nn.Module):
    """Finite fully connected network whose NTK tends to :func:`ntk_recursion` as width grows.

    ``f(x) = v . h_L / sqrt(n)``, ``h_1 = phi(W_1 x)``, ``h_l = phi(W_l h_{l-1} / sqrt(n))``, all
    weights ``N(0, 1)``, no biases (NTK parametrization, inputs on the unit sphere).
    ``x``: ``[B, D]`` in the weights' dtype -> ``[B]``.

    Args:
        in_dim: input dimension ``D``; width: hidden units ``n``; depth: hidden layers
            ``L >= 1``.
        activation: a :class:`DualActivation` with its scalar ``activation``.
        seed: int or ``torch.Generator`` for the weights.
        dtype: floating dtype of the weights (default float64).
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        depth: int,
        activation: DualActivation,
        *,
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        d = check_positive_int("in_dim", in_dim)
        n = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth)
        act = _check_dual(activation)
        if act.activation is None:
            raise ValueError(f"activation {act.name!r} has no scalar activation to build a network")
        self.phi = act.activation
        gen = torch_generator(seed)
        dims = [d] + [n] * self.depth
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(dims[i + 1], dims[i], generator=gen, dtype=dtype))
            for i in range(self.depth)
        )
        self.readout = torch.nn.Parameter(torch.randn(n, generator=gen, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, D]`` -> ``[B]``."""
        first = self.weights[0]
        d = first.shape[1]
        check_layout("x", x, 2, f"[B, {d}]", d, first.dtype)
        h = x
        for i, w in enumerate(self.weights):
            scale = 1.0 if i == 0 else 1.0 / math.sqrt(w.shape[1])
            h = self.phi(h @ w.T * scale)
        return h @ self.readout / math.sqrt(self.readout.shape[0])


@dataclass(frozen=True)
class DirichletSphereData:
    """Two-class data: Dirichlet samples mapped to the unit sphere (the authors' benchmark).

    Attributes:
        x: ``[N, D]`` points on the unit sphere (a ``D - 1``-dimensional manifold).
        y: ``[N]`` labels in ``{0, 1}`` (class 1 with probability ``prior``).
        bayes: ``[N]`` the Bayes-optimal prediction at each point.
    """

    x: Tensor
    y: Tensor
    bayes: Tensor


def dirichlet_sphere_data(
    n: int,
    alpha0: Sequence[float],
    alpha1: Sequence[float],
    prior1: float = 0.4,
    *,
    seed: int | np.random.Generator | None = None,
) -> DirichletSphereData:
    """``n`` samples: class 1 w.p. ``prior1`` from ``Dirichlet(alpha1)``, else ``Dirichlet(alpha0)``
    (the two concentration vectors).

    The simplex points are scaled to unit Euclidean norm (a bijection from the simplex), so the
    Bayes classifier compares ``prior * Dirichlet pdf`` at the simplex point.
    """
    n = check_positive_int("n", n)
    a0 = as_float_array("alpha0", alpha0, "[K]")
    a1 = as_float_array("alpha1", alpha1, "[K]")
    # `not (a > 0)` and isfinite also refuse NaN, which every comparison lets through
    if a0.ndim != 1 or a0.size < 2 or not ((a0 > 0) & np.isfinite(a0)).all():
        raise ValueError(f"alpha0 must be >= 2 positive finite concentrations, got {alpha0}")
    if a1.shape != a0.shape or not ((a1 > 0) & np.isfinite(a1)).all():
        raise ValueError(
            f"alpha1 must be {a0.size} positive finite concentrations like alpha0, got {alpha1}"
        )
    check_number("prior1", prior1, gt=0, lt=1)
    rng = numpy_rng(seed)
    y = (rng.random(n) < prior1).astype(np.int64)
    simplex = np.where(y[:, None] == 1, rng.dirichlet(a1, n), rng.dirichlet(a0, n))
    simplex = np.clip(simplex, 1e-300, None)
    simplex = simplex / simplex.sum(axis=1, keepdims=True)
    x = simplex / np.linalg.norm(simplex, axis=1, keepdims=True)
    p1 = prior1 * stats.dirichlet.pdf(simplex.T, a1)
    p0 = (1.0 - prior1) * stats.dirichlet.pdf(simplex.T, a0)
    bayes = (p1 > p0).astype(np.int64)
    return DirichletSphereData(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(bayes))
