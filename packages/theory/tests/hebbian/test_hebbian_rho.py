"""Mean-field overlaps of the multitasking Hebbian network with dataset noise rho."""

import itertools
import math

import numpy as np
import pytest

from neuronkit.theory import (
    dataset_entropy,
    diluted_patterns,
    glauber_dynamics,
    hebbian_factors,
    mean_field_overlaps,
    noisy_examples,
)


def _noiseless_reference(d: float, k: int, beta: float, iterations: int = 2000) -> np.ndarray:
    """The rho = 0 iteration m <- E_xi[xi tanh(beta xi.m)], written out independently."""
    configs = np.array(list(itertools.product((-1.0, 0.0, 1.0), repeat=k)))
    probs = {-1.0: (1 - d) / 2, 0.0: d, 1.0: (1 - d) / 2}
    weights = np.array([math.prod(probs[v] for v in c) for c in configs])
    m = (1 - d) * d ** np.arange(k)
    for _ in range(iterations):
        field = configs @ m
        act = np.sign(field) if math.isinf(beta) else np.tanh(beta * field)
        new = (weights[:, None] * configs * act[:, None]).sum(axis=0)
        if np.max(np.abs(new - m)) < 1e-12:
            return new
        m = new
    return m


@pytest.mark.parametrize("beta", [math.inf, 1.5, 20.0])
@pytest.mark.parametrize("d", [0.0, 0.3, 0.62, 0.8, 0.95])
def test_rho_zero_is_the_noiseless_iteration(d: float, beta: float) -> None:
    for k in (2, 3):
        ref = _noiseless_reference(d, k, beta)
        assert np.array_equal(mean_field_overlaps(d, k, beta=beta, rho=0.0), ref)
        assert np.array_equal(mean_field_overlaps(d, k, beta=beta), ref)


def test_rho_makes_the_strongly_diluted_overlaps_equal() -> None:
    noisy = mean_field_overlaps(0.8, 3, rho=0.1)
    assert noisy == pytest.approx([0.1637] * 3, abs=2e-4)
    assert np.ptp(noisy) < 1e-9
    clean = mean_field_overlaps(0.8, 3)  # rho = 0: no equal-overlap state for K = 3
    assert np.ptp(clean) > 0.05
    mild = mean_field_overlaps(0.3, 3, rho=0.1)  # still hierarchical at mild dilution
    assert mild[0] > 3 * mild[1] > 3 * mild[2]


def test_one_and_two_steps_match_a_direct_gaussian_average() -> None:
    """m = E[xi sign(h)] (the erf) and the example overlaps n (the Stein term) after 1-2 steps."""
    d, rho, n0 = 0.2, 0.5, np.array([1.0, 0.3, 0.1])
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 0.0, 1.0], p=[(1 - d) / 2, d, (1 - d) / 2], size=(2_000_000, 3))
    c = xi * (1.0 + math.sqrt(rho) * rng.standard_normal(xi.shape))
    sign1 = np.sign(c @ n0)
    m1 = xi.T @ sign1 / len(xi)
    n1 = c.T @ sign1 / len(xi)
    m2 = xi.T @ np.sign(c @ n1) / len(xi)
    one = mean_field_overlaps(d, 3, rho=rho, init=n0, iterations=1)
    two = mean_field_overlaps(d, 3, rho=rho, init=n0, iterations=2)
    # sampling error ~7e-4; dropping the Stein term of n would be off by ~8e-3 at step 2
    assert np.abs(one - m1).max() < 4e-3
    assert np.abs(two - m2).max() < 4e-3


def test_large_network_follows_the_rho_aware_theory() -> None:
    """Zero-temperature Monte Carlo (N = 60000, M = 40 examples, rho = 0.1) vs both theories."""
    rho, m_ex, n = 0.1, 40, 60_000
    quality = 1.0 / math.sqrt(1.0 + rho * m_ex)
    assert dataset_entropy(quality, m_ex) == pytest.approx(rho)
    rng = np.random.default_rng(1)
    for d in (0.7, 0.8):
        xi = diluted_patterns(3, n, d, seed=rng)
        examples = noisy_examples(xi, m_ex, quality, seed=rng)
        cue = np.where(xi[0] != 0, xi[0], rng.choice(np.array([-1, 1]), n))
        res = glauber_dynamics(
            hebbian_factors(examples, quality), cue, sweeps=30, track=xi, seed=rng
        )
        mc = np.sort(np.abs(res.overlaps[-1]))[::-1]
        err_rho = np.abs(mc - np.sort(mean_field_overlaps(d, 3, rho=rho))[::-1]).max()
        err_clean = np.abs(mc - np.sort(mean_field_overlaps(d, 3))[::-1]).max()
        assert err_rho < 0.015
        assert err_rho < 0.4 * err_clean


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"rho": -0.1}, ValueError),
        ({"rho": math.inf}, ValueError),
        ({"rho": math.nan}, ValueError),
        ({"rho": "0.1"}, TypeError),
        ({"rho": 0.1, "beta": 5.0}, ValueError),
    ],
)
def test_bad_rho_names_the_argument(kwargs: dict, exc: type) -> None:
    with pytest.raises(exc, match=r"^rho "):
        mean_field_overlaps(0.5, 3, **kwargs)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("rho", [1e100, 1e200, 1e300])
def test_huge_rho_gives_the_small_overlap_not_zero(rho: float) -> None:
    """No dilution: m_1 = E sign(1 + sqrt(rho) Z) = erf(1 / sqrt(2 rho)) ~ sqrt(2 / (pi rho)), not
    0 from rho * n**2 overflowing (n grows to about sqrt(rho))."""
    m = mean_field_overlaps(0.0, 3, rho=rho)
    assert m[0] == pytest.approx(math.sqrt(2.0 / (math.pi * rho)), rel=1e-9)
    assert np.array_equal(m[1:], [0.0, 0.0])
