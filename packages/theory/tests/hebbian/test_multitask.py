"""Multitasking Hebbian network: patterns, couplings, dynamics, laws; bad inputs."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory import (
    dataset_entropy,
    diluted_patterns,
    glauber_dynamics,
    hebbian_couplings,
    hebbian_factors,
    hierarchical_overlaps,
    hierarchical_stability_limit,
    mattis_overlaps,
    mean_field_overlaps,
    noisy_examples,
)


def test_patterns_are_ternary_with_the_requested_dilution() -> None:
    xi = diluted_patterns(4, 20_000, 0.3, seed=0)
    assert xi.shape == (4, 20_000)
    assert xi.dtype == np.int8
    assert set(np.unique(xi)) == {-1, 0, 1}
    assert np.mean(xi == 0) == pytest.approx(0.3, abs=0.01)
    assert np.mean(xi == 1) == pytest.approx(0.35, abs=0.01)
    assert (diluted_patterns(4, 50, 0.3, seed=1) == diluted_patterns(4, 50, 0.3, seed=1)).all()
    assert (diluted_patterns(2, 10, 1.0, seed=0) == 0).all()


def test_examples_flip_signs_with_probability_set_by_quality() -> None:
    xi = diluted_patterns(2, 5000, 0.2, seed=0)
    ex = noisy_examples(xi, 30, 0.6, seed=1)
    assert ex.shape == (2, 30, 5000)
    assert (ex[:, :, xi[0] == 0][0] == 0).all()
    active = np.broadcast_to(xi[:, None, :] != 0, ex.shape)
    agree = (ex == xi[:, None, :])[active].mean()
    assert agree == pytest.approx(0.8, abs=0.01)
    assert dataset_entropy(0.6, 30) == pytest.approx((1 - 0.36) / (30 * 0.36))
    assert dataset_entropy(0.0, 5) == math.inf


def test_couplings_follow_the_two_hebbian_rules() -> None:
    rng = np.random.default_rng(0)
    k, m, n, r = 2, 3, 7, 0.5
    ex = rng.choice([-1, 0, 1], size=(k, m, n)).astype(np.int8)
    big_r = r**2 + (1 - r**2) / m
    sup = np.zeros((n, n))
    for mu in range(k):
        bar = ex[mu].mean(axis=0)
        sup += np.outer(bar, bar)
    sup /= n * big_r
    unsup = np.zeros((n, n))
    for mu in range(k):
        for a in range(m):
            unsup += np.outer(ex[mu, a], ex[mu, a])
    unsup /= n * big_r * m
    for matrix in (sup, unsup):
        np.fill_diagonal(matrix, 0.0)
    assert np.allclose(hebbian_couplings(ex, r, "supervised"), sup)
    assert np.allclose(hebbian_couplings(ex, r, "unsupervised"), unsup)


def test_perfect_examples_reduce_both_protocols_to_hopfield() -> None:
    xi = diluted_patterns(3, 40, 0.4, seed=2)
    ex = noisy_examples(xi, 5, 1.0, seed=3)
    hopfield = xi.T.astype(float) @ xi / 40
    np.fill_diagonal(hopfield, 0.0)
    assert np.allclose(hebbian_couplings(ex, 1.0, "supervised"), hopfield)
    assert np.allclose(hebbian_couplings(ex, 1.0, "unsupervised"), hopfield)
    assert np.allclose(hebbian_couplings(xi, 1.0), hopfield)


def test_zero_temperature_dynamics_retrieves_a_stored_pattern() -> None:
    rng = np.random.default_rng(0)
    xi = diluted_patterns(1, 800, 0.0, seed=rng)
    noisy = xi[0] * np.where(rng.random(800) < 0.2, -1, 1)
    res = glauber_dynamics(hebbian_factors(xi, 1.0), noisy, sweeps=5, track=xi, seed=1)
    assert mattis_overlaps(xi, res.sigma)[0] == pytest.approx(1.0)
    assert res.overlaps.shape == (5, 1)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 1000))
def test_sequential_zero_temperature_dynamics_never_raises_the_energy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xi = diluted_patterns(3, 60, 0.4, seed=rng)
    factors = hebbian_factors(noisy_examples(xi, 4, 0.7, seed=rng), 0.7, "unsupervised")
    j = factors.T @ factors / 60
    np.fill_diagonal(j, 0.0)
    sigma = rng.choice([-1, 1], 60)
    energies = [-0.5 * sigma @ j @ sigma]
    for t in range(4):
        sigma = glauber_dynamics(factors, sigma, sweeps=1, blocks=60, seed=seed + t).sigma.astype(
            float
        )
        energies.append(-0.5 * sigma @ j @ sigma)
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(energies))


def test_dynamics_is_seeded_and_finite_temperature_runs() -> None:
    xi = diluted_patterns(2, 300, 0.5, seed=0)
    f = hebbian_factors(xi, 1.0)
    start = np.where(xi[0] != 0, xi[0], 1)
    a = glauber_dynamics(f, start, beta=5.0, sweeps=6, track=xi, seed=3)
    b = glauber_dynamics(f, start, beta=5.0, sweeps=6, track=xi, seed=3)
    assert (a.sigma == b.sigma).all()
    assert np.array_equal(a.overlaps, b.overlaps)
    assert set(np.unique(a.sigma)) <= {-1, 1}
    assert a.mean_overlaps(0.5).shape == (2,)


def _glauber_per_group(f, sigma0, beta, sweeps, blocks, track, seed):
    """The plain Glauber loop (each group's columns gathered on their own), which
    :func:`glauber_dynamics` computes from one gather per sweep: its reference, bit for bit."""
    f, s = np.asarray(f, dtype=np.float64), np.asarray(sigma0, dtype=np.float64).copy()
    n = f.shape[1]
    rng = np.random.default_rng(seed)
    self_coupling = (f**2).sum(axis=0) / n
    overlap = f @ s / n
    history = []
    for _ in range(sweeps):
        for group in np.array_split(rng.permutation(n), blocks):
            columns, old = f[:, group], s[group]
            field = columns.T @ overlap - self_coupling[group] * old
            if math.isinf(beta):
                new = np.sign(field)
                new[new == 0] = old[new == 0]
            else:
                up = rng.random(group.size) < 0.5 * (1.0 + np.tanh(beta * field))
                new = np.where(up, 1.0, -1.0)
            overlap += columns @ (new - old) / n
            s[group] = new
        history.append(overlap.copy() if track is None else track @ s / n)
    return s.astype(np.int8), np.array(history)


@pytest.mark.parametrize(
    ("n", "patterns", "beta", "blocks", "tracked"),
    [
        (600, 3, math.inf, None, True),
        (301, 2, math.inf, 301, False),  # strictly sequential: one neuron per group
        (257, 1, math.inf, 7, True),  # unequal groups
        (400, 3, 1.5, None, False),
        (120, 2, 0.7, 1, True),  # one group per sweep
    ],
)
@pytest.mark.parametrize("protocol", ["supervised", "unsupervised"])
def test_dynamics_matches_the_per_group_loop_bit_for_bit(
    n: int, patterns: int, beta: float, blocks: int | None, tracked: bool, protocol: str
) -> None:
    rng = np.random.default_rng(n)
    xi = diluted_patterns(patterns, n, 0.4, seed=rng)  # blank neurons: fields of exactly 0
    f = hebbian_factors(noisy_examples(xi, 6, 0.6, seed=rng), 0.6, protocol)
    start = np.where(xi[0] != 0, xi[0], rng.choice([-1, 1], n))
    track = xi.astype(np.float64) if tracked else None
    got = glauber_dynamics(f, start, beta=beta, sweeps=8, blocks=blocks, track=track, seed=4)
    sigma, history = _glauber_per_group(
        f, start, beta, 8, min(50, n) if blocks is None else blocks, track, 4
    )
    assert np.array_equal(got.sigma, sigma)
    assert got.overlaps.tobytes() == history.tobytes()


def test_monte_carlo_follows_the_hierarchical_law_at_mild_dilution() -> None:
    d, n = 0.2, 3000
    rng = np.random.default_rng(4)
    xi = diluted_patterns(3, n, d, seed=rng)
    start = np.where(xi[0] != 0, xi[0], rng.choice([-1, 1], n))
    res = glauber_dynamics(hebbian_factors(xi, 1.0), start, sweeps=15, track=xi, seed=5)
    m = np.sort(np.abs(res.overlaps[-1]))[::-1]
    assert np.abs(m - hierarchical_overlaps(d, 3)).max() < 0.05


def test_hierarchical_law_and_stability_limit() -> None:
    assert np.allclose(hierarchical_overlaps(0.5, 3), [0.5, 0.25, 0.125])
    assert hierarchical_stability_limit(2) == 1.0
    assert hierarchical_stability_limit(3) == pytest.approx((math.sqrt(5) - 1) / 2)
    limits = [hierarchical_stability_limit(k) for k in (3, 4, 6, 12)]
    assert limits == sorted(limits, reverse=True)
    assert limits[-1] > 0.5


@pytest.mark.parametrize("d", [0.1, 0.3, 0.5])
def test_mean_field_hierarchical_fixed_point_below_the_limit(d: float) -> None:
    assert np.allclose(mean_field_overlaps(d, 3), hierarchical_overlaps(d, 3), atol=1e-12)


def test_mean_field_noise_regimes() -> None:
    assert np.allclose(mean_field_overlaps(0.5, 3, beta=1.0), 0.0, atol=1e-6)  # above T_c = 1 - d
    parallel = mean_field_overlaps(0.9, 3, beta=20.0, iterations=5000)
    assert parallel.min() > 0.05
    assert np.ptp(parallel) < 1e-6


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: diluted_patterns(3, 10, 1.5), ValueError, "dilution"),
        (lambda: diluted_patterns(3, 10, -0.1), ValueError, "dilution"),
        (lambda: diluted_patterns(0, 10, 0.5), ValueError, "num_patterns"),
        (lambda: diluted_patterns(3, 0, 0.5), ValueError, "num_neurons"),
        (lambda: noisy_examples(np.full((2, 3), 2), 3, 0.5), ValueError, "patterns"),
        (lambda: noisy_examples(np.zeros((2, 3)), 0, 0.5), ValueError, "num_examples"),
        (lambda: noisy_examples(np.zeros((2, 3)), 2, 1.2), ValueError, "quality"),
        (lambda: hebbian_factors(np.zeros((2, 3, 4)), 0.0), ValueError, "quality"),
        (lambda: hebbian_factors(np.zeros((2, 3, 4)), 0.5, "teacher"), ValueError, "protocol"),
        (lambda: hebbian_factors(np.zeros(4), 0.5), ValueError, "examples"),
        (lambda: glauber_dynamics(np.ones((1, 4)), np.ones(3)), ValueError, "sigma0"),
        (lambda: glauber_dynamics(np.ones((1, 4)), np.ones(4), beta=-1.0), ValueError, "beta"),
        (lambda: glauber_dynamics(np.ones((1, 4)), np.ones(4), blocks=5), ValueError, "blocks"),
        (lambda: glauber_dynamics(np.ones((1, 4)), np.ones(4), sweeps=0), ValueError, "sweeps"),
        (
            lambda: glauber_dynamics(np.ones((1, 4)), np.ones(4), track=np.ones((1, 3))),
            ValueError,
            "track",
        ),
        (lambda: mattis_overlaps(np.ones((1, 4)), np.ones(3)), ValueError, "sigma"),
        # NaN spins gave NaN overlaps
        (lambda: mattis_overlaps(np.ones((1, 4)), np.full(4, np.nan)), ValueError, "sigma"),
        (lambda: mean_field_overlaps(0.5, 11), ValueError, "num_patterns"),
        (lambda: mean_field_overlaps(0.5, 3, beta=0.0), ValueError, "beta"),
        (lambda: mean_field_overlaps(0.5, 3, init=np.ones(2)), ValueError, "init"),
        (lambda: hierarchical_overlaps(2.0, 3), ValueError, "dilution"),
        (lambda: dataset_entropy(0.5, 0), ValueError, "num_examples"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    with pytest.raises(exc, match=rf"^{name} "):
        call()


def test_numpy_real_betas_are_accepted_and_bad_inits_named() -> None:
    f = np.ones((2, 5))
    ref = mean_field_overlaps(0.2, 3, beta=2.0)
    for beta in (np.float32(2.0), np.float64(2.0), np.int64(2)):  # np.float32 was rejected
        np.testing.assert_allclose(mean_field_overlaps(0.2, 3, beta=beta), ref, rtol=1e-12)
        got = glauber_dynamics(f, np.ones(5), beta=beta, sweeps=2, seed=0)
        want = glauber_dynamics(f, np.ones(5), beta=2.0, sweeps=2, seed=0)
        np.testing.assert_array_equal(got.overlaps, want.overlaps)
    with pytest.raises(ValueError, match=r"^beta must be > 0"):
        mean_field_overlaps(0.2, 3, beta=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^init must be finite"):
        mean_field_overlaps(0.2, 3, init=np.array([np.nan, 0.0, 0.0]))  # was [nan, nan, nan]
    with pytest.raises(TypeError, match=r"^init must be a real array"):
        mean_field_overlaps(0.2, 3, init="abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^factors must have at least one neuron"):
        glauber_dynamics(np.ones((2, 0)), np.ones(0))  # was numpy's "number sections"


def test_zero_dimensional_tensor_and_array_betas_are_accepted() -> None:
    """``beta=torch.tensor(2.0)`` got "beta must be > 0 ..., got tensor(2.)"."""
    f = np.ones((2, 5))
    want = glauber_dynamics(f, np.ones(5), beta=2.0, sweeps=2, seed=0)
    for beta in (torch.tensor(2.0), np.array(2.0)):
        got = glauber_dynamics(f, np.ones(5), beta=beta, sweeps=2, seed=0)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got.overlaps, want.overlaps)
        np.testing.assert_allclose(
            mean_field_overlaps(0.2, 3, beta=beta),  # type: ignore[arg-type]
            mean_field_overlaps(0.2, 3, beta=2.0),
            rtol=1e-12,
        )
    with pytest.raises(ValueError, match=r"^beta must be > 0") as err:
        glauber_dynamics(f, np.ones(5), beta=torch.ones(100, 100), sweeps=1)  # type: ignore[arg-type]
    assert len(str(err.value)) < 200


def test_mattis_overlaps_takes_tensors_that_require_grad() -> None:
    """Was torch's "Can't call numpy() on Tensor that requires grad"."""
    xi = np.where(np.random.default_rng(0).random((3, 50)) < 0.5, 1.0, -1.0)
    expected = mattis_overlaps(xi, xi[0])
    sigma = torch.tensor(xi[0], requires_grad=True)
    np.testing.assert_allclose(mattis_overlaps(xi, sigma), expected)
    np.testing.assert_allclose(mattis_overlaps(torch.tensor(xi).requires_grad_(), sigma), expected)
