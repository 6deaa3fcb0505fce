"""Reproduction: single-neuron vs network-mediated timescales under two curricula.

Khajehabdollahi, Zeraati, Giannakakis, Schaefer, Martius & Levina, "Emergent mechanisms for long
timescales depend on training curriculum and affect performance in memory tasks" (ICLR 2024).
Leaky RNNs with a trainable timescale ``tau >= 1`` per neuron learn N-parity with growing ``N``:

* single-head curriculum: one ``N`` at a time through a shared head, ``N -> N + 1`` when solved;
* multi-head curriculum: heads for ``2..N`` trained together, a head for ``N + 1`` added when
  they are solved.

Both get the same number of gradient steps from the same initial network. The paper finds that
single-head networks raise their mean ``tau`` with ``N`` while multi-head networks keep ``tau``
near 1 (their long timescales are network-mediated) and reach larger ``N``. The thresholds of the
checks are ours (PAPERS.md gives none).
"""

from __future__ import annotations

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.timescales import (
    CurriculumResult,
    TimescaleRNN,
    network_timescales,
    train_curriculum,
)


def _slope(ns: list[int], taus: list[float]) -> float:
    if len(set(ns)) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(ns, float), np.asarray(taus, float), 1)[0])


@reproduction(
    id="theory.timescales",
    paper=(
        "Emergent mechanisms for long timescales depend on training curriculum and affect "
        "performance in memory tasks"
    ),
    claim=(
        "on N-parity, single-head training raises mean tau with N while multi-head keeps tau "
        "near 1 and reaches at least as large N"
    ),
    checks=[
        Check(
            "single_tau_slope",
            ">",
            0.0,
            "least-squares slope of the single-head mean tau vs N over the solved N "
            "(all seeds pooled)",
        ),
        Check(
            "single_tau_growth",
            ">=",
            1.2,
            "single head: mean tau at the largest solved N / mean tau at the first N "
            "(mean over seeds)",
        ),
        Check(
            "multi_tau_final",
            "<=",
            1.25,
            "multi head: mean tau at the largest solved N (mean over seeds); tau starts U[1, 2), "
            "so <= 1.25 is nearer 1 than the initial mean 1.5",
        ),
        Check(
            "n_max_multi_minus_single",
            ">=",
            0.0,
            "largest N solved within the same step budget, multi-head minus single-head "
            "(mean over seeds)",
        ),
    ],
    seed=0,
    threads=2,  # the training matmuls are too small to split; the ragged test batch uses two
)
def run(ctx: RunContext) -> None:
    hidden, budget, batch, per_epoch, heads, ts_trials = 64, 5000, 128, 50, 60, 8
    if ctx.quick:  # the full mode's first seed; timescale fits at the last stage only
        seeds, ts_len, all_stages = 1, 1000, False
    else:
        seeds, ts_len, all_stages = 2, 2000, True
    lr, threshold, fit_lag, max_lag, burn_in = 0.01, 0.98, 30, 60, 200
    test_batches = 50  # the reference's TEST_STEPS: 50 batches of 256, each its own length
    base = [int(s) for s in ctx.rng.integers(0, 2**31, size=3 * seeds)]

    results: dict[str, list[CurriculumResult]] = {"single": [], "multi": []}
    rows = []
    for s in range(seeds):
        model = TimescaleRNN(1, hidden, num_heads=heads, seed=base[3 * s])
        for j, kind in enumerate(("single", "multi")):
            bar = ctx.progress(range(budget // per_epoch), desc=f"{kind} seed {s}")

            def tick(record: dict, _bar=bar) -> None:
                next(_bar, None)

            res = train_curriculum(
                model,
                kind,
                "parity",
                max_steps=budget,
                steps_per_epoch=per_epoch,
                batch_size=batch,
                test_batch_size=256,
                test_batches=test_batches,
                optimizer="adam",
                lr=lr,
                threshold=threshold,
                seed=base[3 * s + 1 + j],
                callback=tick,
            )
            for _ in bar:
                pass
            results[kind].append(res)
            ctx.log(
                f"seed {s} {kind}: N_max {res.n_max}, mean tau "
                f"{[round(t, 3) for t in res.mean_taus]}"
            )
            for st in res.stages:
                rows.append(
                    {
                        "seed": s,
                        "curriculum": kind,
                        "N": st.n,
                        "step": st.step,
                        "mean_tau": round(st.mean_tau, 4),
                        "median_tau": round(float(np.median(st.tau)), 4),
                        "max_tau": round(float(st.tau.max()), 4),
                    }
                )

    # network-mediated timescales at the solved stages (quick: the last stage only)
    ts_rows = []
    for kind, runs in results.items():
        for s, res in enumerate(runs):
            stages = res.stages if all_stages else res.stages[-1:]
            for st in stages:
                nt = network_timescales(
                    res.model_at(st.n),
                    length=ts_len,
                    burn_in=burn_in,
                    trials=ts_trials,
                    max_lag=max_lag,
                    fit_lag=fit_lag,
                    seed=base[3 * s] + st.n,
                )
                ts_rows.append(
                    {
                        "seed": s,
                        "curriculum": kind,
                        "N": st.n,
                        "mean_tau": round(nt.mean_tau, 4),
                        "mean_tau_net": round(nt.mean_tau_net, 4),
                        "median_tau_net": round(float(np.nanmedian(nt.tau_net)), 4)
                        if np.isfinite(nt.tau_net).any()
                        else float("nan"),
                        "tau_population": round(nt.tau_population, 4),
                        "fitted_neurons": int(np.isfinite(nt.tau_net).sum()),
                    }
                )

    single, multi = results["single"], results["multi"]
    pooled_n = [n for r in single for n in r.ns]
    pooled_tau = [t for r in single for t in r.mean_taus]
    growth = [r.mean_taus[-1] / r.mean_taus[0] if r.stages else float("nan") for r in single]
    multi_final = [r.mean_taus[-1] if r.stages else float("nan") for r in multi]
    n_single = [r.n_max for r in single]
    n_multi = [r.n_max for r in multi]

    ctx.metric("hidden_size", hidden)
    ctx.metric("seeds", seeds)
    ctx.metric("step_budget", budget)
    ctx.metric("batch_size", batch)
    ctx.metric("single_tau_growth_per_seed", growth)
    ctx.metric("multi_tau_final_per_seed", multi_final)
    ctx.metric("n_max_single", n_single)
    ctx.metric("n_max_multi", n_multi)
    ctx.metric("initial_mean_tau", [float(r.initial_tau.mean()) for r in single])
    ctx.metric("single_mean_tau_per_N", [dict(zip(r.ns, r.mean_taus)) for r in single])
    ctx.metric("multi_mean_tau_per_N", [dict(zip(r.ns, r.mean_taus)) for r in multi])
    ctx.table("Solved stages: trained single-neuron timescales", rows)
    ctx.table("Network-mediated timescales (autocorrelation fits)", ts_rows)

    ctx.check("single_tau_slope", _slope(pooled_n, pooled_tau))
    mean_growth = float(np.mean(growth))
    growth_ok = ctx.check("single_tau_growth", mean_growth)
    ctx.check("multi_tau_final", float(np.mean(multi_final)))
    ctx.check("n_max_multi_minus_single", float(np.mean(n_multi) - np.mean(n_single)))

    _figures(ctx, results, ts_rows)
    ctx.note(
        f"Model: {hidden} LeakyReLU neurons, tau_i = clamp(tau_raw, 1) trained with the weights "
        "(init U[1, 2)), h_t = f((1 - 1/tau) h_{t-1} + (W h_{t-1} + W_in x_t + b)/tau), no "
        "self-connections, one linear head per N; 2-class cross-entropy on the last step "
        "summed over heads, gradient clipping 2, initial state 0.1 U(0, 1). N-parity batches: "
        "length uniform in [N+2, N+2+3N), bits Bernoulli(p) with p ~ U(0, 1) per sequence "
        "(the reference code's generator)."
    )
    ctx.note(
        f"Curricula: both start at N=2 from the same initial network and get the same budget of "
        f"{budget} gradient steps (batch {batch}); a stage is solved when the test accuracy "
        f"({test_batches} fresh batches of 256 sequences, each batch with its own length, as in "
        f"the reference code, after every {per_epoch} steps) reaches {threshold} on average "
        "over its heads and on its newest head. Single head: one shared head, N -> N+1. Multi "
        f"head: heads 2..N, a head added per solved stage. {seeds} seed(s)."
    )
    ctx.note(
        "Differences from the paper: 32-64 neurons instead of 500, a budget of a few thousand "
        "steps instead of up to 1000 epochs x 600 steps (so N stays small), and Adam (lr "
        f"{lr}) instead of SGD (lr 0.05, Nesterov momentum 0.1): with SGD the taus barely move "
        "within a CPU budget. Network-mediated timescales: per-neuron autocorrelation under "
        f"random binary input ({ts_len} steps after {burn_in} burn-in, {ts_trials} trials), "
        f"single vs double exponential on lags 0..{fit_lag} chosen by AIC, slowest timescale "
        "kept (the paper's analysis, with shorter simulations; double exponentials whose weaker "
        "component weighs < 5% are rejected as fits of the AC's noise floor)."
    )
    ctx.note(
        "Thresholds are ours (PAPERS.md gives none), fixed before this reproduction's results: "
        "slope > 0 and growth >= 1.2 for the single-head mean tau, multi-head final mean tau <= "
        "1.5 (the mean of the U[1, 2) init), N_max(multi) >= N_max(single). Since 0.6.19 the "
        "multi-head bound is 1.25, nearer 1 than the initial mean (set after seeing the "
        "results, 1.09 +- 0.04 over seeds 0-4: a tightening, as 1.5 also passed a network "
        "whose tau never moved). Pilot runs on 32 "
        "neurons showed the learning rate matters: with Adam lr 0.03 both curricula raise tau, "
        "with 0.003 both lower it within the budget; lr 0.01 is used throughout. At this scale "
        "the single-head tau first drops (N = 2..5 need little memory) and only starts to rise "
        "at larger N, so its growth over the N reached within a short budget is small."
    )
    for s, (r_single, r_multi) in enumerate(zip(single, multi)):
        if not (r_single.stages and r_multi.stages and r_single.history):
            continue
        last = r_single.history[-1]
        ctx.note(
            f"Observed (seed {s}, {'quick' if ctx.quick else 'full'} mode, budget {budget}): the "
            f"single head solved N = {r_single.ns[0]}..{r_single.n_max} (N = {r_single.n_max} at "
            f"step {r_single.stages[-1].step}) with mean tau {r_single.mean_taus[0]:.3f} -> "
            f"{r_single.mean_taus[-1]:.3f} (min {min(r_single.mean_taus):.3f}); when the budget "
            f"ended it was training N = {last['ns'][-1]} (test accuracy "
            f"{last['accuracies'][-1]:.3f}, mean tau {last['mean_tau']:.3f}). The multi head "
            f"solved N = {r_multi.ns[0]}..{r_multi.n_max} with mean tau "
            f"{r_multi.mean_taus[0]:.3f} -> {r_multi.mean_taus[-1]:.3f}."
        )
    if ctx.quick:
        ctx.note(
            f"Quick mode is the full mode's first seed: the same network, budget ({budget} "
            f"steps per curriculum), batch ({batch}) and heads; the network-mediated timescales "
            f"are fitted at the last solved stage only, on {ts_len}-step runs (full: every "
            "stage, 2000 steps). Before 0.6.4 quick mode trained 1250 steps at batch 64, too "
            "short for the single-head tau to rise (it stopped at N = 9 with growth 1.009). "
            "A quick run takes about 110 s on a 2-core machine (over the ~30 s quick "
            "budget: the growing spans make the later steps long, and the reference's "
            "evaluation is 50 x 256 sequences after every 50 steps)."
            + (
                ""
                if growth_ok
                else f" This run's single-head growth ({mean_growth:.3f}) is below 1.2."
            )
        )


def _figures(
    ctx: RunContext, results: dict[str, list[CurriculumResult]], ts_rows: list[dict]
) -> None:
    colors = {"single": "C3", "multi": "C0"}
    fig, (ax1, ax2, ax3) = new_figure(1, 3, figsize=(13.0, 3.6))
    for kind, runs in results.items():
        for i, res in enumerate(runs):
            label = f"{kind}-head" if i == 0 else None
            ax1.plot(res.ns, res.mean_taus, "o-", color=colors[kind], label=label, alpha=0.8)
            if res.stages:
                parts = ax1.violinplot(
                    [st.tau for st in res.stages],
                    positions=res.ns,
                    widths=0.6,
                    showextrema=False,
                )
                for body in parts["bodies"]:
                    body.set_facecolor(colors[kind])
                    body.set_alpha(0.2)
    ax1.axhline(1.0, color="k", lw=0.5, ls=":")
    ax1.set_xlabel("N (N-parity)")
    ax1.set_ylabel("single-neuron tau (mean, distribution)")
    ax1.set_title("trained tau per solved N", fontsize=9)
    ax1.legend(fontsize=7)
    for kind, runs in results.items():
        for i, res in enumerate(runs):
            steps = [0] + [st.step for st in res.stages]
            ns = [res.n_start - 1, *res.ns]
            ax2.step(
                steps,
                ns,
                where="post",
                color=colors[kind],
                label=f"{kind}-head" if i == 0 else None,
            )
    ax2.set_xlabel("gradient step")
    ax2.set_ylabel("largest N solved")
    ax2.set_title("curriculum progress (same budget)", fontsize=9)
    ax2.legend(fontsize=7)
    for kind in results:
        pts = [(r["N"], r["mean_tau_net"]) for r in ts_rows if r["curriculum"] == kind]
        if pts:
            ax3.plot(*zip(*pts), "s", color=colors[kind], label=f"{kind}: tau_net")
        pts = [(r["N"], r["mean_tau"]) for r in ts_rows if r["curriculum"] == kind]
        if pts:
            ax3.plot(*zip(*pts), "o", mfc="none", color=colors[kind], label=f"{kind}: tau")
    ax3.set_xlabel("N")
    ax3.set_ylabel("timescale (steps)")
    ax3.set_title("network-mediated vs single-neuron", fontsize=9)
    ax3.legend(fontsize=7)
    ctx.save_figure("timescales_tau_vs_n", fig)

    fig, ax = new_figure(1, 1)
    kinds = list(results)
    means = [float(np.mean([r.n_max for r in results[k]])) for k in kinds]
    ax.bar([f"{k}-head" for k in kinds], means, color=[colors[k] for k in kinds])
    for k_i, k in enumerate(kinds):
        ax.plot([k_i] * len(results[k]), [r.n_max for r in results[k]], "k.")
    ax.set_ylabel("largest N solved within the budget")
    ax.set_title("N-parity: largest N reached", fontsize=9)
    ctx.save_figure("timescales_n_max", fig)
