"""Tests of EigenScore and Efficient EigenScore (neuronkit.pruning.send.eigenscore)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.send.eigenscore import (
    chebyshev_log_coefficients,
    efficient_eigenscore,
    eigenscore,
    embedding_covariance,
    jackson_damping,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_covariance_matches_numpy_cov() -> None:
    z = torch.randn(6, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cov = embedding_covariance(z, alpha=1e-3)
    ref = np.cov(z.numpy()) + 1e-3 * np.eye(6)  # INSIDE: np.cov of the [K, d] matrix
    assert np.allclose(cov.numpy(), ref)


def test_eigenscore_is_mean_log_eigenvalue_and_logdet() -> None:
    z = torch.randn(5, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cov = embedding_covariance(z, 1e-3)
    assert torch.isclose(eigenscore(z, 1e-3), torch.logdet(cov) / 5)


def test_identical_responses_give_log_alpha() -> None:
    z = torch.randn(1, 16, dtype=torch.float64).repeat(8, 1)
    score = eigenscore(z, 1e-3)
    # one eigenvalue carries the shared vector, the other 7 sit at alpha
    assert score < np.log(1e-3) * 7 / 8 + 1.0
    assert eigenscore(z + 0.5 * torch.randn(8, 16, dtype=torch.float64), 1e-3) > score


def test_batched_matches_per_set() -> None:
    z = torch.randn(3, 6, 10, generator=torch.Generator().manual_seed(2))
    batched = eigenscore(z)
    for i in range(3):
        assert torch.isclose(batched[i], eigenscore(z[i]), atol=1e-5)
    ees = efficient_eigenscore(z, probes=6)
    for i in range(3):
        assert torch.isclose(ees[i], efficient_eigenscore(z[i], probes=6), atol=1e-5)


def test_chebyshev_coefficients_reproduce_log() -> None:
    lower, upper = 0.1, 4.0
    c = chebyshev_log_coefficients(40, lower, upper)
    lam = np.linspace(lower, upper, 50)
    t = (2 * lam - (upper + lower)) / (upper - lower)
    approx = np.polynomial.chebyshev.chebval(t, c)
    assert np.max(np.abs(approx - np.log(lam))) < 1e-6


def test_jackson_damping_shape_and_range() -> None:
    g = jackson_damping(10)
    assert g.shape == (11,)
    assert g[0] == pytest.approx(1.0)
    assert np.all(np.diff(g) <= 1e-12)
    assert np.all(g >= 0)


def test_ees_exact_trace_is_deterministic_and_accurate() -> None:
    # probes >= K: the unit vectors give the exact trace of the polynomial
    z = torch.randn(16, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = float(eigenscore(z))
    a = float(efficient_eigenscore(z, probes=16, moments=96, seed=0))
    b = float(efficient_eigenscore(z, probes=16, moments=96, seed=5))
    assert a == pytest.approx(b, abs=1e-3)  # only the power-method start differs
    assert float(efficient_eigenscore(z, probes=16, moments=96, seed=np.int64(5))) == b
    assert a == pytest.approx(exact, rel=0.01)


def test_ees_hutchinson_close_on_large_set_and_seeded() -> None:
    z = torch.randn(256, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = float(eigenscore(z))
    runs = [float(efficient_eigenscore(z, probes=16, seed=s)) for s in range(4)]
    assert runs[0] == float(efficient_eigenscore(z, probes=16, seed=0))
    assert len(set(runs)) == 4  # the probes depend on the seed
    assert sum(runs) / 4 == pytest.approx(exact, rel=0.05)


def test_ees_does_not_mutate_input() -> None:
    z = torch.randn(8, 16)
    before = z.clone()
    efficient_eigenscore(z)
    eigenscore(z)
    assert torch.equal(z, before)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"embeddings": torch.randn(4)}, ValueError, "embeddings must be"),
        ({"embeddings": torch.ones(3, 4, dtype=torch.long)}, TypeError, "floating-point"),
        ({"embeddings": torch.randn(1, 4)}, ValueError, "K >= 2"),
        ({"embeddings": torch.full((3, 4), float("nan"))}, ValueError, "embeddings"),
        ({"embeddings": torch.randn(3, 4), "alpha": 0.0}, ValueError, "alpha"),
        ({"embeddings": torch.randn(3, 4), "moments": 0}, ValueError, "moments"),
        ({"embeddings": torch.randn(3, 4), "probes": 0}, ValueError, "probes"),
        ({"embeddings": torch.randn(3, 4), "kernel": "lorentz"}, ValueError, "kernel"),
        ({"embeddings": torch.randn(3, 4), "seed": 1.5}, TypeError, "seed"),
        ({"embeddings": [[1.0, 2.0]]}, TypeError, "embeddings"),
    ],
)
def test_bad_inputs(kwargs: dict, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        efficient_eigenscore(**kwargs)


@pytest.mark.parametrize("score", [eigenscore, efficient_eigenscore])
def test_embeddings_whose_covariance_overflows_are_named(score) -> None:
    big = torch.randn(10, 64, generator=torch.Generator().manual_seed(0)) * 1e20
    with pytest.raises(ValueError, match=r"embeddings are too large for torch\.float32"):
        score(big)
    assert torch.isfinite(score(big.double()))


def test_bad_coefficient_bounds() -> None:
    with pytest.raises(ValueError, match="upper"):
        chebyshev_log_coefficients(8, 2.0, 1.0)
    with pytest.raises(ValueError, match="lower"):
        chebyshev_log_coefficients(8, 0.0, 1.0)


@pytest.mark.parametrize("seed", [7, 9])
def test_a_missed_top_eigenvalue_falls_back_to_a_guaranteed_bound(seed: int) -> None:
    # two close top eigenvalues: 15 power steps from an unlucky start stop below the top one
    z = torch.zeros(6, 12, dtype=torch.float64)
    for i, s in enumerate([10.0, 9.7, 1.0, 1.0, 1.0, 1.0]):
        z[i, 2 * i], z[i, 2 * i + 1] = s, -s
    exact = float(eigenscore(z))
    assert float(efficient_eigenscore(z, seed=seed)) == pytest.approx(exact, abs=0.05)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("score", [eigenscore, efficient_eigenscore])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_half_precision_embeddings_are_scored_in_float32(dtype, score, scale: float) -> None:
    """Half-precision hidden states: the CPU has no half eigensolver ("linalg_eigh_cpu" not
    implemented for 'Half'), float16 squares of values above 256 overflowed ("too large for
    torch.float16") and bfloat16 arithmetic drifted by several units in the last place."""
    z = (torch.randn(6, 32, generator=torch.Generator().manual_seed(0)) * scale).to(dtype)
    got = score(z)
    assert got.dtype == dtype
    torch.testing.assert_close(got, score(z.float()).to(dtype), rtol=0, atol=0)
