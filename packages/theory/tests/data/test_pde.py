"""Finite-difference Darcy / variable-coefficient Poisson solver and data generators."""

import numpy as np
import pytest
import torch

from neuronkit.theory.data.pde import (
    darcy_coefficient,
    darcy_dataset,
    darcy_matrix,
    default_forcing,
    gaussian_random_field,
    grid_coordinates,
    solve_darcy,
)

PI = np.pi


def _dirichlet_problem(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = sin(pi x) sin(2 pi y) e^x, a = 1 + x/2 + y^2 and f = -div(a grad u) by hand."""
    x = grid_coordinates(n, "dirichlet")
    xx, yy = np.meshgrid(x, x, indexing="ij")
    e, sx, cx = np.exp(xx), np.sin(PI * xx), np.cos(PI * xx)
    s2y, c2y = np.sin(2 * PI * yy), np.cos(2 * PI * yy)
    u = sx * s2y * e
    a = 1 + 0.5 * xx + yy**2
    ux = (PI * cx + sx) * e * s2y
    uxx = (-(PI**2) * sx + 2 * PI * cx + sx) * e * s2y
    uy = sx * e * 2 * PI * c2y
    uyy = -4 * PI**2 * u
    f = -(0.5 * ux + 2 * yy * uy + a * (uxx + uyy))
    return a, f, u


def _periodic_problem(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = sin(2 pi x) cos(2 pi y) + 0.3 cos(4 pi x), a = 2 + sin(2 pi x) sin(2 pi y)."""
    x = grid_coordinates(n, "periodic")
    xx, yy = np.meshgrid(x, x, indexing="ij")
    u = np.sin(2 * PI * xx) * np.cos(2 * PI * yy) + 0.3 * np.cos(4 * PI * xx)
    a = 2 + np.sin(2 * PI * xx) * np.sin(2 * PI * yy)
    ax = 2 * PI * np.cos(2 * PI * xx) * np.sin(2 * PI * yy)
    ay = 2 * PI * np.sin(2 * PI * xx) * np.cos(2 * PI * yy)
    ux = 2 * PI * np.cos(2 * PI * xx) * np.cos(2 * PI * yy) - 1.2 * PI * np.sin(4 * PI * xx)
    uy = -2 * PI * np.sin(2 * PI * xx) * np.sin(2 * PI * yy)
    lap = -8 * PI**2 * np.sin(2 * PI * xx) * np.cos(2 * PI * yy) - 4.8 * PI**2 * np.cos(4 * PI * xx)
    f = -(ax * ux + ay * uy + a * lap)
    return a, f, u


@pytest.mark.parametrize("method", ["direct", "cg"])
@pytest.mark.parametrize(
    ("boundary", "problem", "sizes"),
    [
        ("dirichlet", _dirichlet_problem, (15, 31, 63)),
        ("periodic", _periodic_problem, (16, 32, 64)),
    ],
)
def test_manufactured_solution_converges_at_second_order(boundary, problem, sizes, method) -> None:
    errors = []
    for n in sizes:
        a, f, u = problem(n)
        errors.append(np.abs(solve_darcy(a, f, boundary=boundary, method=method) - u).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 5e-3
    assert np.all(rates > 1.85), rates


def test_cg_matches_the_direct_solver_on_random_coefficients() -> None:
    for boundary, n in (("dirichlet", 15), ("periodic", 16)):
        for kind in ("threshold", "lognormal"):
            a = darcy_coefficient(6, n, kind=kind, boundary=boundary, seed=3)
            f = default_forcing(n, boundary)
            u_cg = solve_darcy(a, f, boundary=boundary, method="cg")
            u_lu = solve_darcy(a, f, boundary=boundary, method="direct")
            assert np.abs(u_cg - u_lu).max() <= 1e-8 * np.abs(u_lu).max()


def test_matrix_structure() -> None:
    a = darcy_coefficient(1, 8, boundary="periodic", seed=0)[0]
    per = darcy_matrix(a, "periodic").toarray()
    assert np.allclose(per, per.T)
    assert np.allclose(per @ np.ones(64), 0.0)  # constants are in the kernel
    eig = np.linalg.eigvalsh(per)
    assert eig[0] > -1e-9
    assert eig[1] > 1e-3
    dirichlet = darcy_matrix(a, "dirichlet").toarray()
    assert np.allclose(dirichlet, dirichlet.T)
    assert np.linalg.eigvalsh(dirichlet)[0] > 0
    # constant coefficient: the standard 5-point Laplacian times a
    lap = darcy_matrix(np.full((5, 5), 2.0), "dirichlet").toarray() * (1 / 6) ** 2
    assert np.allclose(np.diag(lap), 8.0)
    assert np.allclose(lap[0, 1], -2.0)
    assert np.allclose(lap[0, 5], -2.0)
    assert lap[0, 6] == 0


def test_constant_coefficient_eigenfunction_is_solved_exactly() -> None:
    n = 15
    x = grid_coordinates(n, "dirichlet")
    xx, yy = np.meshgrid(x, x, indexing="ij")
    u = np.sin(PI * xx) * np.sin(3 * PI * yy)
    h = 1 / (n + 1)
    lam = 4 / h**2 * (np.sin(PI * h / 2) ** 2 + np.sin(3 * PI * h / 2) ** 2)
    got = solve_darcy(np.full((n, n), 3.0), 3.0 * lam * u, boundary="dirichlet")
    assert np.allclose(got, u, atol=1e-10)


def test_dataset_solutions_satisfy_the_discrete_equation() -> None:
    for boundary, forcing in (("dirichlet", None), ("periodic", "random")):
        data = darcy_dataset(
            4, 16 if boundary == "periodic" else 15, boundary=boundary, forcing=forcing, seed=1
        )
        assert data.coefficient.shape == data.solution.shape == data.forcing.shape
        assert len(data) == 4
        assert data.resolution == data.coordinates.shape[0]
        for s in range(4):
            a = data.coefficient[s].double().numpy()
            u = data.solution[s].double().numpy()
            f = data.forcing[s].double().numpy()
            res = darcy_matrix(a, boundary) @ u.ravel() - f.ravel()
            assert np.abs(res).max() < 1e-4 * np.abs(f).max() * 10
        if boundary == "periodic":
            assert np.abs(data.solution.double().numpy().mean(axis=(1, 2))).max() < 1e-6
            assert not np.allclose(data.forcing[0], data.forcing[1])
    again = darcy_dataset(4, 15, seed=1)
    first = darcy_dataset(4, 15, seed=1)
    assert np.array_equal(again.solution.numpy(), first.solution.numpy())


def test_random_fields() -> None:
    per = gaussian_random_field(3000, 16, boundary="periodic", seed=0)
    assert per.shape == (3000, 16, 16)
    assert np.allclose(per.mean(axis=(1, 2)), 0.0, atol=1e-12)  # constant mode removed
    # periodic fields have no preferred position: the variance is the same at every node
    var = per.var(axis=0)
    assert var.max() / var.min() < 1.25
    dct = gaussian_random_field(3, 15, seed=0)
    assert np.array_equal(dct, gaussian_random_field(3, 15, seed=0))
    assert not np.array_equal(dct, gaussian_random_field(3, 15, seed=1))
    coef = darcy_coefficient(5, 15, seed=2)
    assert set(np.unique(coef)) <= {3.0, 12.0}
    assert len(np.unique(coef)) == 2
    assert (darcy_coefficient(5, 15, kind="lognormal", seed=2) > 0).all()


def test_bad_inputs() -> None:
    a = np.ones((8, 8))
    with pytest.raises(ValueError, match="boundary"):
        solve_darcy(a, boundary="neumann")
    with pytest.raises(ValueError, match="a must be > 0"):
        solve_darcy(-a)
    with pytest.raises(ValueError, match="zero mean"):
        solve_darcy(a, 1.0, boundary="periodic")
    with pytest.raises(ValueError, match="f must have shape"):
        solve_darcy(a, np.ones((7, 7)))
    with pytest.raises(ValueError, match="a must hold square"):
        solve_darcy(np.ones((8, 7)))
    with pytest.raises(ValueError, match="a must be finite"):
        solve_darcy(np.full((8, 8), np.nan))
    with pytest.raises(TypeError, match="a must be a real array"):
        solve_darcy("grid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        solve_darcy(a, method="multigrid")
    with pytest.raises(ValueError, match="kind"):
        darcy_coefficient(2, 8, kind="binary")
    with pytest.raises(ValueError, match="forcing"):
        darcy_dataset(2, 8, forcing="smooth")
    with pytest.raises(ValueError, match="forcing must have shape"):
        darcy_dataset(2, 8, forcing=np.ones((4, 4)))
    with pytest.raises(ValueError, match="tau"):
        gaussian_random_field(2, 8, tau=0.0)


def test_numpy_and_0d_scalar_forcings_and_an_empty_batch() -> None:
    import torch

    a = np.ones((5, 5))
    ref = solve_darcy(a, 2.0)
    for f in (np.float32(2.0), np.int64(2), np.array(2.0), torch.tensor(2.0)):  # were rejected
        np.testing.assert_array_equal(solve_darcy(a, f), ref)
    with pytest.raises(
        ValueError, match=r"^f must have 2 or 3 dimensions \[n, n\] or \[num, n, n\]"
    ):
        solve_darcy(a, np.ones(5))
    for method in ("direct", "cg"):
        out = solve_darcy(np.ones((0, 4, 4)), method=method)  # was numpy's "zero-size array"
        assert out.shape == (0, 4, 4)


def test_darcy_dataset_dtype() -> None:
    """The solve is float64; the tensors come in ``dtype`` (torch's default for ``None``)."""
    wide = darcy_dataset(2, 7, seed=0, dtype=torch.float64)
    narrow = darcy_dataset(2, 7, seed=0)
    assert wide.solution.dtype == wide.coefficient.dtype == wide.coordinates.dtype == torch.float64
    assert narrow.solution.dtype == torch.get_default_dtype()
    torch.testing.assert_close(wide.solution.float(), narrow.solution, rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"dtype must be a floating torch\.dtype"):
        darcy_dataset(2, 7, seed=0, dtype=torch.int64)


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
@pytest.mark.parametrize("method", ["direct", "cg"])
@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_solve_darcy_extreme_coefficient_scale(boundary: str, method: str, scale: float) -> None:
    # u(s a) = u(a) / s; the harmonic face mean 2 a b / (a + b) used to overflow to inf (NaN
    # or non-converging solves) or underflow to 0 (a singular matrix, garbage from "cg")
    n = 9
    a = np.exp(np.random.default_rng(0).standard_normal((n, n)))
    f = default_forcing(n, boundary)
    ref = solve_darcy(a, f, boundary=boundary, method=method)
    u = solve_darcy(a * scale, f, boundary=boundary, method=method)
    np.testing.assert_allclose(u * scale, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())
