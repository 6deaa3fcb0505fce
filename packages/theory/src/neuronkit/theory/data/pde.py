"""2D Darcy flow / variable-coefficient Poisson data from a finite-difference solver.

The data behind neural-operator benchmarks such as MgNO (He, Liu & Xu, "MgNO: Efficient
Parameterization of Linear Operators via Multigrid", ICLR 2024) and FNO's Darcy set: on the unit
square solve

    -div(a(x) grad u(x)) = f(x)

for a random coefficient field ``a`` and learn the map ``a -> u``. Two boundary conditions:

* ``"dirichlet"``: ``u = 0`` on the boundary. Unknowns at the ``n x n`` interior nodes
  ``x_i = (i + 1) h``, ``h = 1 / (n + 1)`` (so ``n = 2**k - 1`` gives the nested grids of
  geometric multigrid).
* ``"periodic"``: ``u`` is 1-periodic in both directions. Unknowns at ``x_i = i h``,
  ``h = 1 / n``. The operator kills constants, so ``f`` must have zero mean and the solution is
  the one with zero mean.

Discretisation: the standard conservative 5-point scheme
``sum_faces c_face (u_p - u_q) / h**2 = f_p`` with the face coefficient the harmonic mean of the
two nodal values of ``a`` (exact for a coefficient that jumps between the nodes, the usual choice
for the piecewise-constant Darcy coefficient); a face to a Dirichlet boundary node uses the
interior node's ``a``. Second-order accurate for smooth ``a`` (tested against manufactured
solutions). Linear systems are solved with scipy.sparse (SuperLU).

Coefficients follow the FNO Darcy recipe: a Gaussian random field with covariance
``tau**(2 alpha - 2) (-Laplacian + tau**2)**(-alpha)`` (``alpha = 2``, ``tau = 3``), either
thresholded (``a = 12`` where the field is >= 0, ``3`` elsewhere) or exponentiated (log-normal).
The field is drawn with cosine modes (Neumann eigenfunctions, as FNO's generator) for Dirichlet
data and Fourier modes (periodic eigenfunctions) for periodic data.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from neuronkit.common import (
    check_choice,
    check_finite,
    check_ndim,
    check_number,
    check_type,
    floating_dtype,
)

from .._utils import Seed, check_positive_int, numpy_rng

__all__ = [
    "BOUNDARIES",
    "DarcyDataset",
    "darcy_coefficient",
    "darcy_dataset",
    "darcy_matrix",
    "default_forcing",
    "gaussian_random_field",
    "grid_coordinates",
    "solve_darcy",
]

#: Supported boundary conditions.
BOUNDARIES = ("dirichlet", "periodic")


def _boundary(boundary: str) -> str:
    check_type("boundary", boundary, str)
    return check_choice("boundary", boundary, BOUNDARIES)


def grid_coordinates(n: int, boundary: str = "dirichlet") -> np.ndarray:
    """The 1D coordinates ``[n]`` of the unknowns in each direction.

    ``"dirichlet"``: interior nodes ``(i + 1) / (n + 1)``; ``"periodic"``: ``i / n``.
    """
    n = check_positive_int("n", n)
    if _boundary(boundary) == "dirichlet":
        return np.arange(1, n + 1) / (n + 1)
    return np.arange(n) / n


def _spacing(n: int, boundary: str) -> float:
    return 1.0 / (n + 1) if boundary == "dirichlet" else 1.0 / n


def gaussian_random_field(
    num: int,
    n: int,
    *,
    alpha: float = 2.0,
    tau: float = 3.0,
    boundary: str = "dirichlet",
    seed: Seed = None,
) -> np.ndarray:
    """Zero-mean Gaussian random fields ``[num, n, n]`` on the grid of ``boundary``.

    Covariance ``tau**(2 alpha - 2) (-Laplacian + tau**2)**(-alpha)`` (the FNO Darcy prior),
    synthesised spectrally: with cosine modes ``cos(pi k x)`` (``"dirichlet"``, Neumann
    eigenfunctions as in FNO's generator) or Fourier modes ``exp(2 pi i k x)`` (``"periodic"``,
    so the field is periodic). The constant mode is removed.

    Args:
        num: number of fields.
        n: grid points per direction.
        alpha: smoothness exponent (> 1 gives continuous fields).
        tau: inverse length scale (> 0).
        boundary: ``"dirichlet"`` or ``"periodic"``.
        seed: int or numpy Generator.
    """
    num = check_positive_int("num", num)
    n = check_positive_int("n", n, minimum=2)
    check_number("alpha", alpha, gt=0)
    check_number("tau", tau, gt=0)
    boundary = _boundary(boundary)
    rng = numpy_rng(seed)
    xi = rng.standard_normal((num, n, n))
    if boundary == "dirichlet":
        k = np.arange(n)
        lam = np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
        coef = tau ** (alpha - 1) * (lam + tau**2) ** (-alpha / 2)
        coef[0, 0] = 0.0
        # orthonormal DCT-II inverse: sum_k c_k xi_k phi_k(x) with phi_k ~ cos(pi k x)
        return np.asarray(scipy.fft.idctn(n * coef * xi, type=2, axes=(1, 2), norm="ortho"))
    freq = np.fft.fftfreq(n, d=1.0 / n)
    lam = 4 * np.pi**2 * (freq[:, None] ** 2 + freq[None, :] ** 2)
    coef = tau ** (alpha - 1) * (lam + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    # the real part of a complex white-noise synthesis is a real field with the same spectrum
    noise = xi + 1j * rng.standard_normal((num, n, n))
    field = np.fft.ifft2(n * coef * noise, axes=(1, 2), norm="ortho")
    return np.asarray(field.real)


def darcy_coefficient(
    num: int,
    n: int,
    *,
    kind: str = "threshold",
    boundary: str = "dirichlet",
    alpha: float = 2.0,
    tau: float = 3.0,
    high: float = 12.0,
    low: float = 3.0,
    seed: Seed = None,
) -> np.ndarray:
    """Random Darcy coefficients ``[num, n, n]``, all > 0.

    ``kind="threshold"``: ``high`` where a Gaussian random field is >= 0, ``low`` elsewhere (the
    FNO Darcy data, 12 and 3). ``kind="lognormal"``: ``exp(field)`` scaled so its median is
    ``sqrt(high * low)``. See :func:`gaussian_random_field` for ``alpha``, ``tau``, ``boundary``.
    """
    check_type("kind", kind, str)
    check_choice("kind", kind, ("threshold", "lognormal"))
    check_number("high", high, gt=0)
    check_number("low", low, gt=0)
    field = gaussian_random_field(num, n, alpha=alpha, tau=tau, boundary=boundary, seed=seed)
    if kind == "threshold":
        return np.where(field >= 0, float(high), float(low))
    return np.sqrt(high * low) * np.exp(field)


def _as_field(name: str, x: object, ndim: tuple[int, ...], layout: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, (str, bytes)) or (not hasattr(x, "__len__") and not np.isscalar(x)):
        raise TypeError(f"{name} must be a real array {layout}, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array {layout}, got dtype {arr.dtype}")
    check_ndim(name, arr, ndim, layout)
    arr = arr.astype(np.float64)
    check_finite(name, arr)
    return arr


def _harmonic(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Harmonic mean ``2 p q / (p + q)`` of positive arrays, without forming ``p * q`` (which
    overflows to inf for values above ~1e154 and underflows to 0 below ~1e-154)."""
    return 2 * p * (q / (p + q))


def _face_coefficients(a: np.ndarray, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """Face coefficients of a batch ``a`` ``[num, n, n]``.

    ``cx[s, i, j]`` couples node ``i - 1`` and ``i`` along axis 1 (rows ``0`` and ``n`` are the
    boundary faces for Dirichlet, shape ``[num, n + 1, n]``); for periodic ``cx[s, i, j]`` couples
    ``i`` and ``i + 1 (mod n)`` (shape ``[num, n, n]``). ``cy`` likewise along axis 2.
    """
    if boundary == "periodic":
        nx, ny = np.roll(a, -1, axis=1), np.roll(a, -1, axis=2)
        return _harmonic(a, nx), _harmonic(a, ny)
    hx = _harmonic(a[:, 1:], a[:, :-1])
    hy = _harmonic(a[:, :, 1:], a[:, :, :-1])
    cx = np.concatenate([a[:, :1], hx, a[:, -1:]], axis=1)
    cy = np.concatenate([a[:, :, :1], hy, a[:, :, -1:]], axis=2)
    return cx, cy


def _batch_matrix(a: np.ndarray, boundary: str) -> sp.csr_matrix:
    """Block-diagonal operator ``[num*n*n, num*n*n]`` of a batch ``a`` ``[num, n, n]``."""
    num, n = a.shape[0], a.shape[1]
    h2 = _spacing(n, boundary) ** 2
    cx, cy = _face_coefficients(a, boundary)
    idx = np.arange(num * n * n).reshape(num, n, n)
    if boundary == "periodic":
        diag = cx + np.roll(cx, 1, axis=1) + cy + np.roll(cy, 1, axis=2)
        pairs = [
            (idx, np.roll(idx, -1, axis=1), cx),
            (idx, np.roll(idx, -1, axis=2), cy),
        ]
    else:
        diag = cx[:, :-1] + cx[:, 1:] + cy[:, :, :-1] + cy[:, :, 1:]
        pairs = [
            (idx[:, :-1], idx[:, 1:], cx[:, 1:-1]),
            (idx[:, :, :-1], idx[:, :, 1:], cy[:, :, 1:-1]),
        ]
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [diag.ravel()]
    for p, q, c in pairs:
        rows += [p.ravel(), q.ravel()]
        cols += [q.ravel(), p.ravel()]
        vals += [-c.ravel(), -c.ravel()]
    size = num * n * n
    mat = sp.coo_matrix(
        (np.concatenate(vals) / h2, (np.concatenate(rows), np.concatenate(cols))),
        shape=(size, size),
    )
    return mat.tocsr()


def _check_coefficient(arr: np.ndarray) -> None:
    if arr.shape[-1] != arr.shape[-2] or arr.shape[-1] < 2:
        raise ValueError(f"a must hold square grids [.., n, n] with n >= 2, got shape {arr.shape}")
    if arr.size and float(arr.min()) <= 0:
        raise ValueError(f"a must be > 0 everywhere, got min {float(arr.min()):g}")


def darcy_matrix(a: np.ndarray | torch.Tensor, boundary: str = "dirichlet") -> sp.csr_matrix:
    """The finite-difference operator of ``u -> -div(a grad u)`` as a sparse ``[n*n, n*n]``.

    Args:
        a: coefficient ``[n, n]`` at the unknowns (``a[i, j]`` at ``(x_i, y_j)``), all > 0.
        boundary: ``"dirichlet"`` or ``"periodic"`` (see the module docstring for the grids).

    Returns:
        CSR matrix acting on ``u.reshape(-1)`` (row-major, ``u[i, j]``). Symmetric; positive
        definite for Dirichlet, positive semi-definite with the constants as kernel for periodic.
    """
    boundary = _boundary(boundary)
    arr = _as_field("a", a, (2,), "[n, n]")
    _check_coefficient(arr)
    return _batch_matrix(arr[None], boundary)


def _laplacian_basis(n: int, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal eigenbasis ``[n, n]`` and eigenvalues ``[n]`` of the 1D 3-point operator.

    The constant-coefficient 2D operator is ``T (x) I + I (x) T``, so its inverse is applied with
    two small dense products per side (the sine / Fourier transform written as a matrix, fast for
    the small grids used here).
    """
    h2 = _spacing(n, boundary) ** 2
    t = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    if boundary == "periodic":
        t[0, -1] = t[-1, 0] = -1.0
    lam, q = np.linalg.eigh(t / h2)
    if boundary == "periodic":
        lam[np.argmin(np.abs(lam))] = 0.0  # the constant vector: exactly singular
    return q, lam


def _inverse_eigenvalues(lam: np.ndarray) -> np.ndarray:
    """``1 / (lam_i + lam_j)`` ``[n, n]``, 0 on the (periodic) null space."""
    total = lam[:, None] + lam[None, :]
    inv = np.zeros_like(total)
    inv[total > 0] = 1.0 / total[total > 0]
    return inv


def _laplacian_inverse(r: np.ndarray, q: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Apply the (pseudo-)inverse of the constant-coefficient operator to ``r`` ``[num, n, n]``."""
    coef = q.T @ r @ q
    return np.asarray(q @ (coef * inv) @ q.T)


def _solve_direct(batch: np.ndarray, rhs: np.ndarray, boundary: str) -> np.ndarray:
    num, n = batch.shape[0], batch.shape[1]
    out = np.empty_like(rhs)
    keep = np.ones(n * n)
    keep[0] = 0.0
    for s in range(num):
        mat = _batch_matrix(batch[s : s + 1], boundary)
        b = rhs[s].ravel()
        if boundary == "periodic":
            # pin u[0, 0] = 0 (the compatible system then has a unique solution), then remove
            # the mean; the pinned equation holds automatically because sum(f) = 0.
            mat = sp.diags(keep) @ mat + sp.diags(1.0 - keep)
            b = b * keep
        u = spla.spsolve(mat.tocsc(), b)
        if boundary == "periodic":
            u = u - u.mean()
        out[s] = u.reshape(n, n)
    return out


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _solve_cg(batch: np.ndarray, rhs: np.ndarray, boundary: str, rtol: float) -> np.ndarray:
    num, n = batch.shape[0], batch.shape[1]
    mat = _batch_matrix(batch, boundary)
    q, lam = _laplacian_basis(n, boundary)
    inv = _inverse_eigenvalues(lam)
    scale = batch.reshape(num, -1).mean(axis=1)[:, None, None]

    def precondition(r: np.ndarray) -> np.ndarray:
        return (_laplacian_inverse(r.reshape(num, n, n), q, inv) / scale).ravel()

    size = num * n * n
    pre = spla.LinearOperator((size, size), matvec=precondition, dtype=np.float64)
    with _single_threaded_blas():  # long vector dots: BLAS threads only add contention
        u, info = spla.cg(mat, rhs.ravel(), rtol=rtol, atol=0.0, maxiter=10 * n * n, M=pre)
    if info != 0:  # pragma: no cover - CG on an SPD system with this preconditioner converges
        raise RuntimeError(f"conjugate gradients did not converge (info={info})")
    u = u.reshape(num, n, n)
    if boundary == "periodic":
        u = u - u.mean(axis=(1, 2), keepdims=True)
    return u


def solve_darcy(
    a: np.ndarray | torch.Tensor,
    f: float | np.ndarray | torch.Tensor = 1.0,
    *,
    boundary: str = "dirichlet",
    method: str = "direct",
    rtol: float = 1e-11,
) -> np.ndarray:
    """Solve ``-div(a grad u) = f`` on the unit square for one or many coefficients.

    Args:
        a: coefficients ``[n, n]`` or ``[num, n, n]`` (> 0) at the unknowns.
        f: right-hand side: a scalar, one field ``[n, n]`` shared by all samples, or ``[num, n,
            n]``. For ``"periodic"`` it must have zero mean over the grid (relative 1e-8).
        boundary: ``"dirichlet"`` (``u = 0`` on the boundary) or ``"periodic"`` (zero-mean ``u``).
        method: ``"direct"``: one sparse LU solve per sample (``scipy.sparse.linalg.spsolve``);
            ``"cg"``: all samples at once as one block-diagonal sparse system solved by
            ``scipy.sparse.linalg.cg`` preconditioned with the constant-coefficient operator
            (scaled by the mean of ``a``), inverted exactly in its sine / Fourier eigenbasis.
            The preconditioned condition number is at most ``max(a) / min(a)``, so a few dozen
            iterations reach ``rtol``; many times faster than ``"direct"`` for batches.
        rtol: relative residual tolerance of ``"cg"`` (over the whole batch).

    Returns:
        ``u`` (float64) with the shape of ``a``.
    """
    boundary = _boundary(boundary)
    check_type("method", method, str)
    check_choice("method", method, ("direct", "cg"))
    check_number("rtol", rtol, gt=0, lt=1)
    arr = _as_field("a", a, (2, 3), "[n, n] or [num, n, n]")
    _check_coefficient(arr)
    single = arr.ndim == 2
    batch = arr[None] if single else arr
    num, n = batch.shape[0], batch.shape[1]
    if isinstance(f, (np.ndarray, torch.Tensor)) and f.ndim == 0:
        f = f.item()  # a 0-d array or tensor is a scalar
    if isinstance(f, numbers.Real) and not isinstance(f, (bool, np.bool_)):
        check_number("f", f)  # Python and numpy real scalars
        rhs = np.full((num, n, n), float(f))
    else:
        farr = _as_field("f", f, (2, 3), "[n, n] or [num, n, n] (or a scalar)")
        if farr.shape[-2:] != (n, n) or (farr.ndim == 3 and farr.shape[0] != num):
            raise ValueError(
                f"f must have shape [{n}, {n}] or [{num}, {n}, {n}] to match a, got {farr.shape}"
            )
        rhs = np.broadcast_to(farr, (num, n, n)).copy()
    if num == 0:  # an empty batch: nothing to solve
        return np.zeros((0, n, n))
    if boundary == "periodic":
        mean = rhs.reshape(num, -1).mean(axis=1)
        scale = np.abs(rhs).reshape(num, -1).max(axis=1)
        if np.any(np.abs(mean) > 1e-8 * np.maximum(scale, 1e-300)):
            raise ValueError(
                "f must have zero mean over the grid for periodic boundaries (the operator "
                f"annihilates constants), got mean {float(mean[np.argmax(np.abs(mean))]):g}"
            )
        rhs -= mean[:, None, None]
    if method == "direct":
        out = _solve_direct(batch, rhs, boundary)
    else:
        out = _solve_cg(batch, rhs, boundary, float(rtol))
    return out[0] if single else out


def default_forcing(n: int, boundary: str = "dirichlet") -> np.ndarray:
    """The forcing ``[n, n]`` used by :func:`darcy_dataset` when none is given.

    ``"dirichlet"``: ``f = 1`` (FNO's Darcy problem). ``"periodic"``: the zero-mean field
    ``f = sin(2 pi x) cos(2 pi y) + cos(2 pi (x - y)) / 2`` (a constant forcing has no periodic
    solution).
    """
    boundary = _boundary(boundary)
    n = check_positive_int("n", n, minimum=2)
    if boundary == "dirichlet":
        return np.ones((n, n))
    x = grid_coordinates(n, boundary)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    return np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy) + 0.5 * np.cos(2 * np.pi * (xx - yy))


@dataclass(frozen=True)
class DarcyDataset:
    """Pairs (coefficient, solution) of ``-div(a grad u) = f``.

    Attributes:
        coefficient: ``a`` ``[num, n, n]``.
        solution: ``u`` ``[num, n, n]``.
        forcing: ``f`` ``[num, n, n]``, per sample (repeated when shared).
        boundary: ``"dirichlet"`` or ``"periodic"``.
        coordinates: 1D grid coordinates ``[n]`` (see :func:`grid_coordinates`).

    All four tensors have :func:`darcy_dataset`'s ``dtype`` (torch's default dtype, float32
    unless changed, when it is None).
    """

    coefficient: torch.Tensor
    solution: torch.Tensor
    forcing: torch.Tensor
    boundary: str
    coordinates: torch.Tensor

    def __len__(self) -> int:
        return int(self.coefficient.shape[0])

    @property
    def resolution(self) -> int:
        """Grid points per direction ``n``."""
        return int(self.coefficient.shape[-1])


def darcy_dataset(
    num: int,
    n: int,
    *,
    boundary: str = "dirichlet",
    coefficient: str = "threshold",
    forcing: str
    | np.ndarray
    | torch.Tensor
    | Callable[[np.ndarray, np.ndarray], np.ndarray]
    | None = None,
    alpha: float = 2.0,
    tau: float = 3.0,
    method: str = "cg",
    seed: Seed = None,
    dtype: torch.dtype | None = None,
) -> DarcyDataset:
    """Draw ``num`` random coefficients on an ``n x n`` grid and solve for each.

    Args:
        num: number of samples.
        n: grid points per direction (for ``"dirichlet"`` the interior nodes; ``2**k - 1`` gives
            nested multigrid grids; for ``"periodic"`` use a multiple of ``2**(levels - 1)``).
        boundary: ``"dirichlet"`` or ``"periodic"``.
        coefficient: ``"threshold"`` (12 / 3, FNO's Darcy) or ``"lognormal"``.
        forcing: ``f`` shared by all samples as an array ``[n, n]``, a function ``f(X, Y)`` of
            meshgrid arrays, or ``None`` for :func:`default_forcing`; or ``"random"``: a new
            ``f`` per sample, a Gaussian random field like the coefficient's (zero mean for
            periodic data), scaled to unit average standard deviation. With a random forcing the
            operator to learn is ``(a, f) -> u``.
        alpha, tau: the Gaussian random field's parameters (FNO: 2 and 3).
        method: linear solver, ``"cg"`` (batched, default) or ``"direct"``; see
            :func:`solve_darcy`.
        seed: int or numpy Generator.
        dtype: floating dtype of the returned tensors (the solve is float64 either way);
            ``None``: torch's default dtype (float32 unless changed).
    """
    dtype = floating_dtype("dtype", dtype)
    boundary = _boundary(boundary)
    n = check_positive_int("n", n, minimum=2)
    check_type("coefficient", coefficient, str)
    check_choice("coefficient", coefficient, ("threshold", "lognormal"))
    rng = numpy_rng(seed)
    if isinstance(forcing, str):
        check_choice("forcing", forcing, ("random",))
        a = darcy_coefficient(
            num, n, kind=coefficient, boundary=boundary, alpha=alpha, tau=tau, seed=rng
        )
        f = gaussian_random_field(num, n, alpha=alpha, tau=tau, boundary=boundary, seed=rng)
        if boundary == "periodic":
            f -= f.mean(axis=(1, 2), keepdims=True)  # exact discrete compatibility
        f /= f.reshape(num, -1).std(axis=1).mean()
    else:
        if forcing is None:
            f = default_forcing(n, boundary)
        elif callable(forcing):
            x = grid_coordinates(n, boundary)
            xx, yy = np.meshgrid(x, x, indexing="ij")
            f = _as_field("forcing", forcing(xx, yy), (2,), "[n, n]")
        else:
            f = _as_field("forcing", forcing, (2,), "[n, n]")
        if f.shape != (n, n):
            raise ValueError(f"forcing must have shape [{n}, {n}], got {f.shape}")
        a = darcy_coefficient(
            num, n, kind=coefficient, boundary=boundary, alpha=alpha, tau=tau, seed=rng
        )
        f = np.broadcast_to(f, (num, n, n))
    u = solve_darcy(a, f, boundary=boundary, method=method)
    return DarcyDataset(
        coefficient=torch.as_tensor(a, dtype=dtype),
        solution=torch.as_tensor(u, dtype=dtype),
        forcing=torch.as_tensor(np.ascontiguousarray(f), dtype=dtype),
        boundary=boundary,
        coordinates=torch.as_tensor(grid_coordinates(n, boundary), dtype=dtype),
    )
