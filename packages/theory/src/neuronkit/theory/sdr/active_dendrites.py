"""Sparse distributed representations and active dendrites: exact match probabilities.

Ahmad & Hawkins (2016), "How do neurons operate on sparse distributed representations? A
mathematical theory of sparsity, neurons and active dendrites".

Notation of the paper: a population of ``n`` cells; a pattern (an SDR) is a set of ``a`` active
cells; a dendritic segment holds synapses onto ``s`` cells of a stored pattern and fires (an NMDA
spike) when at least ``theta`` of them are active. A *false match* is a random pattern that makes
the segment fire. The number of ``a``-patterns with exactly ``b`` active cells on the segment is

    |Omega_n(s, a, b)| = C(s, b) * C(n - s, a - b),

so the false-match probability is the hypergeometric tail

    P = sum_{b >= theta} C(s, b) C(n - s, a - b) / C(n, a).

The *union property*: one segment stores synapses for ``m`` patterns (the union of ``m`` random
``s``-subsets). A random pattern is a false positive when it reaches ``theta`` active cells among
the union. The paper evaluates it with the expected union size ``n (1 - (1 - s/n)^m)`` in place
of ``s``; :func:`union_false_match_probability` also gives the exact value, averaging over the
exact distribution of the union size.

The Monte Carlo simulators draw explicit random cell sets (Floyd's algorithm), count overlaps and
return the rate with a Wilson confidence interval, so the formulas can be checked against
simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import special, stats

from neuronkit.common import check_choice, check_number, check_probability

from .._utils import Seed, check_positive_int, numpy_rng

__all__ = [
    "MonteCarloEstimate",
    "expected_union_size",
    "false_match_probability",
    "log_false_match_probability",
    "overlap_count",
    "simulate_false_match",
    "simulate_union_false_match",
    "union_false_match_probability",
    "union_size_distribution",
    "wilson_interval",
]


def _check_sizes(n: int, a: int, s: int, theta: int | None = None) -> tuple[int, int, int]:
    n = check_positive_int("n", n)
    a = check_positive_int("a", a)
    s = check_positive_int("s", s)
    if a > n:
        raise ValueError(f"a must be <= n={n} (active cells in a population), got {a}")
    if s > n:
        raise ValueError(f"s must be <= n={n} (synapses onto distinct cells), got {s}")
    if theta is not None:
        check_number("theta", theta, ge=0, integer=True)
    return n, a, s


def overlap_count(n: int, a: int, s: int, b: int) -> int:
    """Exact number of ``a``-subsets of ``n`` cells with exactly ``b`` cells on an ``s``-segment.

    ``|Omega_n(s, a, b)| = C(s, b) C(n - s, a - b)`` (Python integers, no rounding).
    """
    n, a, s = _check_sizes(n, a, s)
    check_number("b", b, ge=0, integer=True)
    if b > min(a, s) or a - b > n - s:
        return 0
    return math.comb(s, b) * math.comb(n - s, a - b)


# the exact sum's rough cost in seconds (one 2-core VM core, measured): C(n, a) grows as the
# square of its bit count (1.3 s at 1.5e6 bits), each term as its bits (1e4 terms of 2.75e5
# bits: 0.9 s); beyond the limit the log-space version is the practical one
_EXACT_SECONDS_LIMIT = 10.0


def _exact_seconds(bits: float, terms: int) -> float:
    return 1.3 * (bits / 1.5e6) ** 2 + bits * terms / 3e9


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """Probability that a random ``a``-pattern activates at least ``theta`` of ``s`` synapses.

    Exact: the tail ``sum_{b >= theta} C(s,b) C(n-s,a-b) / C(n,a)`` is summed in Python integers
    and divided once, so the result is the correctly rounded float (it underflows to 0.0 only
    below about 1e-308; use :func:`log_false_match_probability` there). The sum runs over the
    tail or its complement, whichever is shorter, term to term by the exact ratio of
    consecutive terms. Populations whose exact sum would take more than about ten seconds
    (integers of ``log2 C(n, a)`` bits: ``n = 10**9, a = 10**5`` takes about a second,
    ``a = 3 * 10**5`` about nine) raise ``ValueError``: use
    :func:`log_false_match_probability` there.

    Args:
        n: cells in the population (> 0).
        a: active cells per pattern, ``1 <= a <= n``.
        s: synapses on the segment, ``1 <= s <= n``.
        theta: NMDA threshold (>= 0); ``theta = 0`` gives probability 1.
    """
    n, a, s = _check_sizes(n, a, s, theta)
    lo, hi = max(0, a - (n - s)), min(a, s)  # support of the overlap b
    if theta > hi:
        return 0.0
    if theta <= lo:
        return 1.0
    tail, rest = hi - theta + 1, theta - lo  # terms b >= theta, terms b < theta
    bits = float(_log_binom(n, a)) / math.log(2.0)
    if _exact_seconds(bits, min(tail, rest)) > _EXACT_SECONDS_LIMIT:
        raise ValueError(
            f"n={n}, a={a}, s={s}, theta={theta} make the exact sum too large (integers of "
            f"about {bits:.3g} bits, {min(tail, rest)} terms): use "
            "log_false_match_probability(n, a, s, theta), computed in log space"
        )
    total = math.comb(n, a)
    if tail <= rest:
        numerator = _overlap_sum(n, a, s, theta, tail)
    else:
        numerator = total - _overlap_sum(n, a, s, lo, rest)
    return float(Fraction(numerator, total))


def _overlap_sum(n: int, a: int, s: int, start: int, count: int) -> int:
    """``sum_{b = start}^{start + count - 1} C(s, b) C(n - s, a - b)`` in exact integers, for
    ``b`` inside the support; each term from the previous one by the exact ratio
    ``(s - b)(a - b) / ((b + 1)(n - s - a + b + 1))`` (cheaper than two binomials per term)."""
    term = math.comb(s, start) * math.comb(n - s, a - start)
    total = term
    for b in range(start, start + count - 1):
        term = term * ((s - b) * (a - b)) // ((b + 1) * (n - s - a + b + 1))
        total += term
    return total


def log_false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """Natural log of :func:`false_match_probability`, computed in log space (``-inf`` if 0).

    Uses log-binomials (Stirling differences, accurate even for ``k << n``) and ``logsumexp``,
    so it stays accurate (to about 1e-11 relative, up to ``n = 1e25`` and beyond) for
    populations far too large for exact integers to be practical. Tails above one half are
    computed as ``log1p(-complement)``, so the log stays relatively accurate as the probability
    approaches 1.
    """
    n, a, s = _check_sizes(n, a, s, theta)
    lo, hi = max(a - (n - s), 0), min(a, s)  # support of the overlap b
    if theta > hi:
        return -math.inf
    if theta <= lo:
        return 0.0
    log_total = _log_binom(n, a)

    def log_sum(start: int, stop: int) -> float:
        b = np.arange(start, stop + 1, dtype=np.float64)
        terms = _log_binom(s, b) + _log_binom(n - s, a - b) - log_total
        return float(special.logsumexp(terms))

    log_tail = log_sum(theta, hi)
    if log_tail < -math.log(2.0):
        return log_tail
    return float(min(math.log1p(-min(math.exp(log_sum(lo, theta - 1)), 1.0)), 0.0))


def _log_binom(n: float | np.ndarray, k: float | np.ndarray) -> np.ndarray:
    """``log C(n, k)`` without the cancellation of ``gammaln(n + 1) - gammaln(n - k + 1)`` (all
    digits lost near ``n = 1e16`` for ``k << n``): with ``m = min(k, n - k)``, ``x = n - m + 1``,
    Stirling's series gives ``log Gamma(x + m) - log Gamma(x) = (x - 1/2) log1p(m / x) +
    m log(x + m) - m + r(x + m) - r(x)``; ``gammaln`` directly when ``x < 15`` (then ``n < 30``).
    """
    n_arr = np.asarray(n, dtype=np.float64)
    m = np.minimum(np.asarray(k, dtype=np.float64), n_arr - np.asarray(k, dtype=np.float64))
    x = n_arr - m + 1
    big = x >= 15
    xb = np.where(big, x, 15.0)  # keeps the unused branch finite
    stirling = (xb - 0.5) * np.log1p(m / xb) + m * np.log(xb + m) - m
    stirling += _stirling_remainder(xb + m) - _stirling_remainder(xb)
    direct = special.gammaln(n_arr + 1) - special.gammaln(x)
    return np.asarray(np.where(big, stirling, direct) - special.gammaln(m + 1))


def _stirling_remainder(x: np.ndarray) -> np.ndarray:
    """``log Gamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` for ``x >= 15`` (error < 3e-16)."""
    x2 = 1.0 / (x * x)
    return (1 / 12 - x2 * (1 / 360 - x2 * (1 / 1260 - x2 * (1 / 1680 - x2 / 1188)))) / x


def _hypergeom_pmf(k: np.ndarray, n: int, marked: np.ndarray, draws: int) -> np.ndarray:
    """P(k marked cells among ``draws`` random cells of ``n``, ``marked`` of them marked).

    Broadcasts over ``k`` and ``marked``; 0 outside the support.
    """
    k, marked = np.broadcast_arrays(
        np.asarray(k, dtype=np.float64), np.asarray(marked, dtype=np.float64)
    )
    ok = (k >= 0) & (k <= marked) & (draws - k >= 0) & (draws - k <= n - marked)
    kk, mm = np.where(ok, k, 0.0), np.where(ok, marked, 0.0)
    logp = _log_binom(mm, kk) + _log_binom(n - mm, draws - kk) - _log_binom(n, draws)
    return np.where(ok, np.exp(logp), 0.0)


def expected_union_size(n: int, s: int, m: int) -> float:
    """Expected number of distinct cells in the union of ``m`` random ``s``-subsets of ``n``.

    ``n (1 - (1 - s/n)^m)``: the size the paper substitutes for ``s`` in the union property.
    Computed as ``-n expm1(m log1p(-s/n))``, accurate also when ``s/n`` is below rounding.
    """
    n = check_positive_int("n", n)
    s = check_positive_int("s", s)
    m = check_positive_int("m", m)
    if s > n:
        raise ValueError(f"s must be <= n={n}, got {s}")
    if s / n == 1.0:  # every cell (to rounding) in each subset: log1p(-1) has no value
        return float(n)
    return -n * math.expm1(m * math.log1p(-s / n))


def union_size_distribution(n: int, s: int, m: int) -> np.ndarray:
    """Exact distribution ``[n + 1]`` of the size of the union of ``m`` random ``s``-subsets.

    A Markov chain on the union size ``u``: a new random ``s``-subset overlaps the union in
    ``k ~ Hypergeometric(n, u, s)`` cells and grows it to ``u + s - k``.
    """
    n = check_positive_int("n", n)
    s = check_positive_int("s", s)
    m = check_positive_int("m", m)
    if s > n:
        raise ValueError(f"s must be <= n={n}, got {s}")
    dist = np.zeros(n + 1)
    dist[s] = 1.0
    k = np.arange(s + 1)
    for _ in range(m - 1):
        u = np.flatnonzero(dist > 1e-300)
        pk = _hypergeom_pmf(k[None, :], n, u[:, None], s)  # [U, s + 1]
        size = u[:, None] + s - k[None, :]  # > n only where the overlap k is impossible (pk = 0)
        fits = size <= n
        new = np.zeros(n + 1)
        np.add.at(new, size[fits], (dist[u, None] * pk)[fits])
        dist = new
    return dist / dist.sum()


def union_false_match_probability(
    n: int, a: int, s: int, m: int, theta: int, *, method: str = "exact"
) -> float:
    """False-positive probability of a segment storing ``m`` patterns of ``s`` synapses each.

    A random ``a``-pattern is a false positive when at least ``theta`` of its cells lie in the
    union. ``method="exact"`` averages the hypergeometric tail over the exact union-size
    distribution (:func:`union_size_distribution`); ``method="expected"`` is the paper's formula,
    the false-match probability with ``s`` replaced by the expected union size
    (:func:`expected_union_size`, rounded to the nearest integer).
    """
    n, a, s = _check_sizes(n, a, s, theta)
    m = check_positive_int("m", m)
    check_choice("method", method, ("exact", "expected"))
    if method == "expected":
        size = max(1, round(expected_union_size(n, s, m)))
        return false_match_probability(n, a, size, theta)
    dist = union_size_distribution(n, s, m)
    sizes = np.flatnonzero(dist > 0)
    b = np.arange(theta, a + 1)
    tails = _hypergeom_pmf(b[None, :], n, sizes[:, None], a).sum(axis=1)
    return float(np.clip(np.sum(dist[sizes] * tails), 0.0, 1.0))


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A simulated rate ``successes / trials`` with its Wilson confidence interval."""

    successes: int
    trials: int
    low: float
    high: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.successes / self.trials

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the confidence interval."""
        return self.low <= value <= self.high

    def z_score(self, value: float) -> float:
        """``(rate - value) / sqrt(value (1 - value) / trials)``: how far ``value`` is off."""
        if value <= 0.0 or value >= 1.0:
            return 0.0 if self.rate == value else math.copysign(math.inf, self.rate - value)
        return (self.rate - value) / math.sqrt(value * (1.0 - value) / self.trials)


def wilson_interval(successes: int, trials: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good even for rates near 0 or 1)."""
    trials = check_positive_int("trials", trials)
    check_number("successes", successes, ge=0, le=trials, integer=True)
    check_probability("confidence", confidence, open_right=True)
    if confidence <= 0.0:
        raise ValueError(f"confidence must be > 0, got {confidence}")
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def _random_subsets(rng: np.random.Generator, rows: int, n: int, k: int) -> np.ndarray:
    """``[rows, n]`` boolean masks of independent uniformly random ``k``-subsets (Floyd)."""
    mask = np.zeros((rows, n), dtype=bool)
    idx = np.arange(rows)
    for j in range(n - k, n):
        t = rng.integers(0, j + 1, size=rows)
        pick = np.where(mask[idx, t], j, t)
        mask[idx, pick] = True
    return mask


def _simulate(
    n: int,
    a: int,
    s: int,
    m: int,
    theta: int,
    trials: int,
    seed: Seed,
    confidence: float,
    batch: int,
) -> MonteCarloEstimate:
    rng = numpy_rng(seed)
    hits = 0
    done = 0
    while done < trials:
        rows = min(batch, trials - done)
        segment = _random_subsets(rng, rows, n, s)
        for _ in range(m - 1):
            segment |= _random_subsets(rng, rows, n, s)
        pattern = _random_subsets(rng, rows, n, a)
        overlap = np.count_nonzero(segment & pattern, axis=1)
        hits += int(np.count_nonzero(overlap >= theta))
        done += rows
    low, high = wilson_interval(hits, trials, confidence)
    return MonteCarloEstimate(hits, trials, low, high, confidence)


def simulate_false_match(
    n: int,
    a: int,
    s: int,
    theta: int,
    *,
    trials: int = 100_000,
    seed: Seed = None,
    confidence: float = 0.99,
    batch: int = 4096,
) -> MonteCarloEstimate:
    """Monte Carlo false-match rate: random segment (``s`` cells) vs random pattern (``a`` cells).

    Each trial draws both sets uniformly at random and counts a match when they share at least
    ``theta`` cells. Returns the rate with a Wilson interval at ``confidence``. Trials are
    drawn ``batch`` at a time, so the draws of a ``seed`` depend on ``batch`` too.
    """
    n, a, s = _check_sizes(n, a, s, theta)
    trials = check_positive_int("trials", trials)
    batch = check_positive_int("batch", batch)
    return _simulate(n, a, s, 1, theta, trials, seed, confidence, batch)


def simulate_union_false_match(
    n: int,
    a: int,
    s: int,
    m: int,
    theta: int,
    *,
    trials: int = 100_000,
    seed: Seed = None,
    confidence: float = 0.99,
    batch: int = 2048,
) -> MonteCarloEstimate:
    """Monte Carlo union false-positive rate: a segment storing ``m`` random ``s``-subsets.

    Each trial builds the union of ``m`` random ``s``-subsets and a random ``a``-pattern and
    counts a false positive when they share at least ``theta`` cells. Trials are drawn
    ``batch`` at a time, so the draws of a ``seed`` depend on ``batch`` too.
    """
    n, a, s = _check_sizes(n, a, s, theta)
    m = check_positive_int("m", m)
    trials = check_positive_int("trials", trials)
    batch = check_positive_int("batch", batch)
    return _simulate(n, a, s, m, theta, trials, seed, confidence, batch)
