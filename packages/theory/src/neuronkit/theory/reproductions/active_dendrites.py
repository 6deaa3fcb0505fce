"""Reproduction: exact false-match and union probabilities of active dendrites vs simulation.

Ahmad & Hawkins (2016). For several populations ``(n, a, s, theta)`` the exact hypergeometric
false-match probability must lie inside the Wilson interval of a Monte Carlo estimate that draws
explicit random cell sets; likewise for segments storing the union of ``m`` patterns.
"""

from __future__ import annotations

import math

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory import (
    false_match_probability,
    log_false_match_probability,
    simulate_false_match,
    simulate_union_false_match,
    union_false_match_probability,
)

CONFIDENCE = 0.999

# (n, a, s, theta): populations of 256-2048 cells, 2-6 % active, thresholds 2-5.
FALSE_MATCH = [
    (256, 16, 16, 3),
    (512, 24, 20, 3),
    (1024, 32, 24, 2),
    (1024, 40, 32, 4),
    (2048, 40, 30, 3),
    (2048, 64, 40, 5),
]
FALSE_MATCH_FULL = [*FALSE_MATCH, (4096, 80, 40, 4), (4096, 128, 24, 4), (512, 32, 32, 6)]
# (n, a, s, m, theta): a segment holding the union of m patterns of s synapses each.
UNION = [
    (512, 24, 10, 5, 4),
    (1024, 32, 12, 8, 5),
    (2048, 40, 16, 10, 6),
    (2048, 40, 16, 20, 8),
]
UNION_FULL = [*UNION, (2048, 64, 20, 10, 8), (4096, 64, 16, 30, 10)]


@reproduction(
    id="theory.active_dendrites",
    paper=(
        "How do neurons operate on sparse distributed representations? A mathematical theory "
        "of sparsity, neurons and active dendrites"
    ),
    claim=(
        "simulated false-match and union-property rates agree with the exact formulas within "
        "confidence intervals across several (n, a, s, theta)"
    ),
    checks=[
        Check(
            "false_match_within_ci",
            ">=",
            1.0,
            "share of (n, a, s, theta) whose exact P lies in the 99.9% Wilson interval",
        ),
        Check(
            "union_within_ci",
            ">=",
            1.0,
            "share of (n, a, s, m, theta) whose exact union P lies in the 99.9% Wilson interval",
        ),
    ],
    seed=0,
)
def run(ctx: RunContext) -> None:
    trials = 40_000 if ctx.quick else 400_000
    fm_configs = FALSE_MATCH if ctx.quick else FALSE_MATCH_FULL
    union_configs = UNION if ctx.quick else UNION_FULL
    union_trials = trials // 2
    seeds = ctx.rng.integers(0, 2**31, size=len(fm_configs) + len(union_configs))
    ctx.metric("trials_per_config", trials)
    ctx.metric("union_trials_per_config", union_trials)
    ctx.metric("confidence", CONFIDENCE)

    # the checks' power: the same intervals must reject the formula with theta shifted by one
    rejected = []
    rows, inside = [], []
    for (n, a, s, theta), seed in ctx.progress(
        zip(fm_configs, seeds), desc="false match", total=len(fm_configs)
    ):
        exact = false_match_probability(n, a, s, theta)
        logp = log_false_match_probability(n, a, s, theta)
        sim = simulate_false_match(
            n, a, s, theta, trials=trials, seed=int(seed), confidence=CONFIDENCE
        )
        inside.append(sim.contains(exact))
        rejected += [not sim.contains(false_match_probability(n, a, s, t)) for t in _shifted(theta)]
        rows.append(
            {
                "n": n,
                "a": a,
                "s": s,
                "theta": theta,
                "exact": exact,
                "log_space": math.exp(logp),
                "simulated": sim.rate,
                "ci_low": sim.low,
                "ci_high": sim.high,
                "z": sim.z_score(exact),
                "inside": sim.contains(exact),
            }
        )
    ctx.table("False-match probability: exact formula vs Monte Carlo", rows)
    ctx.check("false_match_within_ci", float(np.mean(inside)))

    union_rows, union_inside, paper_inside = [], [], []
    for (n, a, s, m, theta), seed in ctx.progress(
        zip(union_configs, seeds[len(fm_configs) :]), desc="union", total=len(union_configs)
    ):
        exact = union_false_match_probability(n, a, s, m, theta)
        paper = union_false_match_probability(n, a, s, m, theta, method="expected")
        sim = simulate_union_false_match(
            n, a, s, m, theta, trials=union_trials, seed=int(seed), confidence=CONFIDENCE
        )
        union_inside.append(sim.contains(exact))
        paper_inside.append(sim.contains(paper))
        rejected += [
            not sim.contains(union_false_match_probability(n, a, s, m, t)) for t in _shifted(theta)
        ]
        union_rows.append(
            {
                "n": n,
                "a": a,
                "s": s,
                "m": m,
                "theta": theta,
                "exact": exact,
                "expected_size_formula": paper,
                "simulated": sim.rate,
                "ci_low": sim.low,
                "ci_high": sim.high,
                "z": sim.z_score(exact),
                "inside": sim.contains(exact),
            }
        )
    ctx.table("Union property: exact (union-size distribution) vs Monte Carlo", union_rows)
    ctx.check("union_within_ci", float(np.mean(union_inside)))
    ctx.metric("union_expected_size_formula_within_ci", float(np.mean(paper_inside)))
    ctx.metric("theta_shift_rejected", float(np.mean(rejected)))
    ctx.metric(
        "max_abs_z",
        max(abs(r["z"]) for r in rows + union_rows),
    )
    ctx.metric(
        "max_rel_gap_expected_size_formula",
        max(abs(r["expected_size_formula"] - r["exact"]) / r["exact"] for r in union_rows),
    )

    _figure(ctx, rows, union_rows)
    ctx.note(
        "The exact false-match probability sums C(s,b) C(n-s,a-b) / C(n,a) over b >= theta in "
        "Python integers (the log-space version agrees to ~1e-12). The exact union probability "
        "averages the hypergeometric tail over the exact distribution of the union size "
        "(a Markov chain over m random s-subsets); the paper's closed form, which plugs in the "
        "expected union size n(1 - (1 - s/n)^m), is listed beside it. The simulation draws "
        "explicit random cell sets (Floyd's algorithm) and counts overlaps; intervals are "
        "Wilson score intervals at 99.9% per configuration (no multiplicity correction: with "
        "10 (quick) or 15 (full) configurations, correct formulas fail one about 1-1.5% of "
        "the time). The union "
        "simulation uses half the trials (union_trials_per_config). theta_shift_rejected is "
        "the share of (configuration, theta -/+ 1) whose shifted formula falls outside the "
        "same interval: how well the checks catch an off-by-one threshold; "
        "union_expected_size_formula_within_ci is the same test for the paper's "
        "expected-union-size formula (about 1% from the exact value here, within the noise)."
    )


def _shifted(theta: int) -> list[int]:
    """The thresholds one off ``theta`` (``theta - 1`` only where it is still >= 1)."""
    return [t for t in (theta - 1, theta + 1) if t >= 1]


def _figure(ctx: RunContext, rows: list[dict], union_rows: list[dict]) -> None:
    fig, (ax1, ax2) = new_figure(1, 2)
    thetas = np.arange(1, 13)
    for n, a, s in ((1024, 40, 24), (2048, 40, 24), (4096, 40, 24)):
        curve = [math.exp(log_false_match_probability(n, a, s, int(t))) for t in thetas]
        ax1.semilogy(thetas, curve, label=f"n={n}, a={a}, s={s}")
    for r in rows:
        ax1.errorbar(
            r["theta"],
            r["simulated"],
            yerr=[[r["simulated"] - r["ci_low"]], [r["ci_high"] - r["simulated"]]],
            fmt="o",
            color="k",
            ms=3,
        )
        ax1.plot(r["theta"], r["exact"], "x", color="tab:red", ms=6)
    ax1.set_xlabel("NMDA threshold theta")
    ax1.set_ylabel("false-match probability")
    ax1.set_title("false match (x: exact, o: simulated)", fontsize=9)
    ax1.legend(fontsize=7)
    ms = np.arange(1, 31)
    for n, a, s, theta in ((1024, 40, 16, 7), (2048, 40, 16, 7), (4096, 40, 16, 7)):
        ax2.semilogy(
            ms,
            [union_false_match_probability(n, a, s, int(m), theta) for m in ms],
            label=f"n={n}, a={a}, s={s}, theta={theta}",
        )
    for r in union_rows:
        ax2.plot(r["m"], r["simulated"], "o", color="k", ms=3)
        ax2.plot(r["m"], r["exact"], "x", color="tab:red", ms=6)
    ax2.set_xlabel("patterns stored on the segment m")
    ax2.set_ylabel("union false-positive probability")
    ax2.set_title("union property", fontsize=9)
    ax2.legend(fontsize=7)
    ctx.save_figure("false_match", fig)
