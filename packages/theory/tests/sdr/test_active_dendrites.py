"""Active-dendrite match probabilities: formulas vs brute force, scipy, Monte Carlo; bad inputs."""

import decimal
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from neuronkit.theory import (
    MonteCarloEstimate,
    expected_union_size,
    false_match_probability,
    log_false_match_probability,
    overlap_count,
    simulate_false_match,
    simulate_union_false_match,
    union_false_match_probability,
    union_size_distribution,
    wilson_interval,
)


@st.composite
def populations(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n = draw(st.integers(1, 400))
    a = draw(st.integers(1, n))
    s = draw(st.integers(1, n))
    theta = draw(st.integers(0, min(a, s) + 2))
    return n, a, s, theta


def brute_force(n: int, a: int, s: int, theta: int) -> float:
    segment = set(range(s))
    hits = sum(len(segment.intersection(c)) >= theta for c in itertools.combinations(range(n), a))
    return hits / math.comb(n, a)


@pytest.mark.parametrize(
    ("n", "a", "s", "theta"), [(8, 3, 4, 2), (10, 4, 3, 1), (9, 5, 5, 3), (7, 7, 2, 2)]
)
def test_false_match_equals_brute_force_enumeration(n: int, a: int, s: int, theta: int) -> None:
    assert false_match_probability(n, a, s, theta) == pytest.approx(
        brute_force(n, a, s, theta), rel=1e-12
    )


def test_overlap_counts_partition_all_patterns() -> None:
    n, a, s = 30, 7, 9
    assert sum(overlap_count(n, a, s, b) for b in range(a + 1)) == math.comb(n, a)
    assert overlap_count(n, a, s, 8) == 0


@settings(max_examples=60, deadline=None)
@given(populations())
def test_false_match_is_a_hypergeometric_tail(pop: tuple[int, int, int, int]) -> None:
    n, a, s, theta = pop
    p = false_match_probability(n, a, s, theta)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(float(stats.hypergeom.sf(theta - 1, n, s, a)), rel=1e-9, abs=1e-300)
    logp = log_false_match_probability(n, a, s, theta)
    assert (p == 0.0 and logp == -math.inf) or math.exp(logp) == pytest.approx(p, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(populations())
def test_false_match_decreases_with_theta(pop: tuple[int, int, int, int]) -> None:
    n, a, s, theta = pop
    assert false_match_probability(n, a, s, theta + 1) <= false_match_probability(n, a, s, theta)
    assert false_match_probability(n, a, s, 0) == 1.0


def test_log_space_handles_huge_populations() -> None:
    logp = log_false_match_probability(10**7, 2000, 30, 15)
    assert -400 < logp < -50


def _exact_log_tail(n: int, a: int, s: int, theta: int) -> float:
    """log P from exact integers (``log1p`` of the exact complement when P > 1/2)."""
    lo, hi = max(a - (n - s), 0), min(a, s)
    if theta > hi:
        return -math.inf
    if theta <= lo:
        return 0.0
    total = math.comb(n, a)
    tail = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, hi + 1))
    if 2 * tail > total:
        return math.log1p(-float(Fraction(total - tail, total)))
    return math.log(tail) - math.log(total)


@pytest.mark.parametrize("n", [7, 50, 2048, 10**4, 10**6, 10**8, 10**12, 10**16, 10**20, 10**25])
def test_log_space_is_accurate_up_to_huge_populations(n: int) -> None:
    # gammaln(n + 1) - gammaln(n - a + 1) cancelled: -21.39 for -20.72 at n = 1e14, 0.0 at 1e20
    for a, s, theta in itertools.product([1, 10, 40, 1000], [1, 20, 1000], [1, 2, 5, 15, 999]):
        if a > n or s > n:
            continue
        exact = _exact_log_tail(n, a, s, theta)
        logp = log_false_match_probability(n, a, s, theta)
        if exact in (0.0, -math.inf):
            assert logp == exact
        else:
            assert logp == pytest.approx(exact, rel=1e-10), (a, s, theta)
        if n <= 10**6 and exact > -700:  # where scipy's own log tail is accurate
            ref = float(stats.hypergeom.logsf(theta - 1, n, s, a))
            assert logp == pytest.approx(ref, rel=1e-8, abs=1e-300), (a, s, theta)
    assert log_false_match_probability(10**14, 1000, 100, 1) == pytest.approx(-20.7232658374372)


def test_log_space_near_probability_one_is_relatively_accurate() -> None:
    # log P = -1.59e-12 (P = 1 - 1.59e-12): the complement, not the tail, fixes the digits
    logp = log_false_match_probability(2048, 40, 1000, 1)
    assert logp == pytest.approx(_exact_log_tail(2048, 40, 1000, 1), rel=1e-10)
    assert log_false_match_probability(2048, 1000, 100, 1) < 0.0  # P = 1 - 7e-31, not 1


def test_union_size_distribution_has_the_exact_mean() -> None:
    n, s, m = 200, 12, 7
    dist = union_size_distribution(n, s, m)
    assert dist.sum() == pytest.approx(1.0)
    assert (dist >= 0).all()
    assert np.dot(np.arange(n + 1), dist) == pytest.approx(expected_union_size(n, s, m), rel=1e-10)
    assert dist[:s].sum() == 0.0


def test_union_with_one_pattern_is_a_false_match() -> None:
    assert union_false_match_probability(300, 20, 15, 1, 3) == pytest.approx(
        false_match_probability(300, 20, 15, 3), rel=1e-9
    )


def test_union_false_match_matches_brute_force() -> None:
    n, a, s, m, theta = 6, 2, 2, 2, 2
    pairs = list(itertools.combinations(range(n), s))
    patterns = list(itertools.combinations(range(n), a))
    hits = total = 0
    for x1, x2 in itertools.product(pairs, repeat=m):
        union = set(x1) | set(x2)
        for y in patterns:
            hits += len(union.intersection(y)) >= theta
            total += 1
    assert union_false_match_probability(n, a, s, m, theta) == pytest.approx(hits / total, rel=1e-9)


def test_expected_size_formula_is_close_to_exact() -> None:
    exact = union_false_match_probability(1024, 32, 12, 8, 5)
    paper = union_false_match_probability(1024, 32, 12, 8, 5, method="expected")
    assert paper == pytest.approx(exact, rel=0.05)


def test_union_grows_with_more_patterns() -> None:
    probs = [union_false_match_probability(512, 20, 10, m, 4) for m in (1, 3, 6, 12)]
    assert probs == sorted(probs)


def test_monte_carlo_agrees_with_formula_within_ci() -> None:
    est = simulate_false_match(256, 16, 16, 3, trials=20_000, seed=1, confidence=0.999)
    assert est.contains(false_match_probability(256, 16, 16, 3))
    union = simulate_union_false_match(512, 24, 10, 5, 4, trials=10_000, seed=2, confidence=0.999)
    assert union.contains(union_false_match_probability(512, 24, 10, 5, 4))
    assert abs(union.z_score(union_false_match_probability(512, 24, 10, 5, 4))) < 3.3


def test_simulation_is_seeded() -> None:
    a = simulate_false_match(128, 10, 10, 2, trials=3000, seed=5)
    b = simulate_false_match(128, 10, 10, 2, trials=3000, seed=5)
    assert a == b


def test_random_subsets_have_exactly_k_cells() -> None:
    # theta = a forces a hit only if the pattern lies inside the segment: s = n makes it certain
    est = simulate_false_match(50, 7, 50, 7, trials=500, seed=0)
    assert est.rate == 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500), st.data())
def test_wilson_interval_brackets_the_rate(trials: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, trials))
    low, high = wilson_interval(k, trials, 0.95)
    assert 0.0 <= low <= k / trials <= high <= 1.0


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: false_match_probability(0, 1, 1, 1), ValueError, "n"),
        (lambda: false_match_probability(10, 11, 1, 1), ValueError, "a"),
        (lambda: false_match_probability(10, 2, 11, 1), ValueError, "s"),
        (lambda: false_match_probability(10, 2, 3, -1), ValueError, "theta"),
        (lambda: false_match_probability(10.0, 2, 3, 1), TypeError, "n"),
        (lambda: log_false_match_probability(10, 0, 3, 1), ValueError, "a"),
        (lambda: overlap_count(10, 2, 3, -1), ValueError, "b"),
        (lambda: expected_union_size(10, 20, 2), ValueError, "s"),
        (lambda: union_size_distribution(10, 2, 0), ValueError, "m"),
        (
            lambda: union_false_match_probability(10, 2, 2, 2, 1, method="mean"),
            ValueError,
            "method",
        ),
        (lambda: simulate_false_match(10, 2, 2, 1, trials=0), ValueError, "trials"),
        (lambda: simulate_union_false_match(10, 2, 2, 0, 1), ValueError, "m"),
        (lambda: wilson_interval(5, 4), ValueError, "successes"),
        (lambda: wilson_interval(1, 4, confidence=1.0), ValueError, "confidence"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    with pytest.raises(exc, match=rf"^{name} "):
        call()


@pytest.mark.parametrize(("n", "s", "m"), [(64, 8, 10), (100, 30, 4), (10, 6, 3)])
def test_union_size_distribution_when_the_union_can_fill_the_population(
    n: int, s: int, m: int
) -> None:
    dist = union_size_distribution(n, s, m)  # m s > n: some overlaps are forced
    assert dist.sum() == pytest.approx(1.0)
    sizes = np.arange(n + 1)
    assert float((dist * sizes).sum()) == pytest.approx(expected_union_size(n, s, m), rel=1e-9)


def test_z_score_sign_at_the_boundaries() -> None:
    below = MonteCarloEstimate(successes=9, trials=10, low=0.6, high=0.99, confidence=0.99)
    assert below.z_score(1.0) == -math.inf
    assert below.z_score(0.0) == math.inf


def test_large_populations_are_exact_and_fast_or_point_to_log_space() -> None:
    # the exact sum over 20000 big-integer terms did not return (n = 1e8, a = s = 20000)
    p = false_match_probability(10**8, 20_000, 20_000, 1)
    total = math.comb(10**8, 20_000)
    assert p == float(Fraction(total - math.comb(10**8 - 20_000, 20_000), total))
    assert p == pytest.approx(math.exp(log_false_match_probability(10**8, 20_000, 20_000, 1)))
    assert false_match_probability(10**7, 10**5, 1, 1) == 0.01  # a / n (a first guard refused)
    with pytest.raises(ValueError, match="log_false_match_probability"):
        false_match_probability(10**9, 5 * 10**5, 10**5, 5)  # C(n, a) of ~6e6 bits


@pytest.mark.parametrize("theta", [0, 1, 3, 6, 9, 12, 13])
def test_tail_and_complement_sums_agree_with_the_direct_sum(theta: int) -> None:
    n, a, s = 40, 12, 15
    direct = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, min(a, s) + 1))
    assert false_match_probability(n, a, s, theta) == float(Fraction(direct, math.comb(n, a)))


def _exact_union_size(n: int, s: int, m: int) -> float:
    """``n (1 - (1 - s/n)^m)`` in 60-digit decimal arithmetic."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        log = (1 - decimal.Decimal(s) / n).ln()
        return float(n * (1 - (m * log).exp()))


@pytest.mark.parametrize(
    ("n", "s", "m"),
    [(10**20, 1, 10**30), (10**20, 1, 10**19), (10**20, 3, 7), (10**12, 3, 1000), (200, 12, 7)],
)
def test_expected_union_size_is_accurate_for_huge_populations(n: int, s: int, m: int) -> None:
    # (1 - s/n)^m rounded 1 - s/n to 1 once s/n < 1e-16: 0.0 instead of ~1e20
    assert expected_union_size(n, s, m) == pytest.approx(_exact_union_size(n, s, m), rel=1e-13)
    assert expected_union_size(n, n, m) == float(n)
    assert expected_union_size(n, n - 1, 3) == pytest.approx(n * (1 - (1 / n) ** 3), rel=1e-13)


def test_expected_union_size_matches_exact_fractions_on_small_populations() -> None:
    for n in range(1, 40):
        for s in range(1, n + 1):
            for m in (1, 2, 3, 10):
                exact = n * (1 - (1 - Fraction(s, n)) ** m)
                assert expected_union_size(n, s, m) == pytest.approx(float(exact), rel=1e-14)
