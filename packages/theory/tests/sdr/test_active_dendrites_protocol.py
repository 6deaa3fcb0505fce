"""The theory.active_dendrites protocol: its within-CI checks can fail, and its metrics say so."""

import math

import pytest
from scipy import stats

from neuronkit.common.registry import reproduce
from neuronkit.theory import false_match_probability, union_false_match_probability
from neuronkit.theory.reproductions.active_dendrites import (
    CONFIDENCE,
    FALSE_MATCH,
    FALSE_MATCH_FULL,
    UNION,
    UNION_FULL,
    _shifted,
)

QUICK_TRIALS, FULL_TRIALS = 40_000, 400_000


def _half_width(p: float, trials: int) -> float:
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    return z * math.sqrt(p * (1 - p) / trials)


def test_shifted_thresholds_stay_positive() -> None:
    assert _shifted(1) == [2]
    assert _shifted(4) == [3, 5]


@pytest.mark.parametrize(
    ("configs", "trials"), [(FALSE_MATCH, QUICK_TRIALS), (FALSE_MATCH_FULL, FULL_TRIALS)]
)
def test_false_match_points_separate_an_off_by_one_threshold(configs, trials) -> None:
    # not ~0 nor ~1, and theta -/+ 1 lies more than a whole interval away from the exact value
    for n, a, s, theta in configs:
        p = false_match_probability(n, a, s, theta)
        assert 1e-3 < p < 0.5
        for t in _shifted(theta):
            gap = abs(false_match_probability(n, a, s, t) - p)
            assert gap > 2 * _half_width(p, trials), (n, a, s, theta, t)


@pytest.mark.parametrize(("configs", "trials"), [(UNION, QUICK_TRIALS), (UNION_FULL, FULL_TRIALS)])
def test_union_points_separate_an_off_by_one_threshold(configs, trials) -> None:
    for n, a, s, m, theta in configs:
        p = union_false_match_probability(n, a, s, m, theta)
        assert 1e-3 < p < 0.5
        for t in _shifted(theta):
            gap = abs(union_false_match_probability(n, a, s, m, t) - p)
            assert gap > 2 * _half_width(p, trials // 2), (n, a, s, m, theta, t)


def test_quick_run_reports_union_trials_and_the_checks_power(tmp_path) -> None:
    result = reproduce("theory.active_dendrites", quick=True, out=tmp_path)
    metrics = result.metrics
    assert metrics["trials_per_config"] == QUICK_TRIALS
    assert metrics["union_trials_per_config"] == QUICK_TRIALS // 2
    assert metrics["theta_shift_rejected"] == 1.0
    assert 0.0 <= metrics["union_expected_size_formula_within_ci"] <= 1.0
