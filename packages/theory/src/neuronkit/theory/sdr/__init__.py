"""Sparse distributed representations (Ahmad & Hawkins): match probabilities and simulators."""

from .active_dendrites import (
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
