"""Reproduction: grokking as the transition from lazy to rich training dynamics.

Kumar, Bordelon, Gershman & Pehlevan (ICLR 2024). ``f(x) = alpha * mean_i phi(w_i . x)``,
``phi(z) = z + eps z^2/2``, target ``y = (beta . x)^2 / 2``, full-batch gradient descent on the
centred loss with learning rate ``N / alpha^2``, for several ``alpha``: the training loss is fitted
by the initial kernel first, the test loss drops later (the delay grows with ``alpha``), the
lazy plateau is the initial-NTK regression error, and the NTK aligns with the target at the drop.
"""

from __future__ import annotations

import itertools

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.grokking import (
    LazyRichHistory,
    ScaledQuadraticNet,
    grokking_delay,
    initial_ntk_regression,
    interpolation_plateau,
    quadratic_feature_data,
    train_lazy_rich,
)


@reproduction(
    id="theory.grokking_lazy_rich",
    paper="Grokking as the transition from lazy to rich training dynamics",
    claim=(
        "train loss fits long before test loss drops; the delay grows with alpha over >= 3 "
        "values; the lazy-phase test plateau matches kernel regression with the initial NTK "
        "within 10%; NTK-target alignment rises at the drop"
    ),
    checks=[
        Check("fit_before_drop", ">=", 2.0, "min over alpha of t_drop / t_fit"),
        Check("delay_increasing", ">=", 1.0, "fraction of alpha steps where the delay grows"),
        Check(
            "plateau_kernel_rel_error",
            "<=",
            0.10,
            "|test loss at interpolation - K0 regression| / K0 (laziest)",
        ),
        Check("alignment_rise", ">=", 1.2, "min over alpha of alignment after / at the fit"),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add contention
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        # 12000 steps: alpha = 2 and 4 stop after the drop; alpha = 8 runs all of them.
        dim, n_train, width, eps, alphas, max_steps = 40, 300, 100, 0.5, [2.0, 4.0, 8.0], 12000
    else:
        dim, n_train, width, eps, alphas, max_steps = (
            60,
            600,
            300,
            0.5,
            [2.0, 4.0, 8.0, 16.0],
            60000,
        )
    eval_every, align_every, stop_fraction = 20, 100, 0.4
    seed_data, seed_model = (int(s) for s in ctx.rng.integers(0, 2**31, size=2))
    data = quadratic_feature_data(n_train, 1000, dim, seed=seed_data)
    for key, value in {
        "dim": dim,
        "n_train": n_train,
        "width": width,
        "eps": eps,
        "alphas": alphas,
    }.items():
        ctx.metric(key, value)
    histories: dict[float, LazyRichHistory] = {}
    rows = []
    kernel_mse = {}
    for alpha in alphas:
        model = ScaledQuadraticNet(dim, width, alpha, eps, seed=seed_model)
        kr = initial_ntk_regression(model, data.x_train, data.y_train, data.x_test, data.y_test)
        kernel_mse[alpha] = kr
        hist = train_lazy_rich(
            model,
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            steps=max_steps,
            eval_every=eval_every,
            align_every=align_every,
            stop_drop_fraction=stop_fraction,
        )
        histories[alpha] = hist
        ev = grokking_delay(hist)
        align = np.asarray(hist.alignment)
        a_steps = np.asarray(hist.alignment_steps)
        at_fit = float(align[a_steps <= ev["t_fit"]][-1]) if np.isfinite(ev["t_fit"]) else np.nan
        row = {
            "alpha": alpha,
            "kernel_mse": kr,
            **ev,
            "t_interp": grokking_delay(hist, fit_fraction=1e-3)["t_fit"],
            "plateau_interp": interpolation_plateau(hist),
            "alignment_at_fit": at_fit,
            "alignment_end": float(align[-1]),
            "steps_run": hist.steps[-1],
            "weight_change_end": hist.weight_change[-1],
        }
        rows.append(row)
        ctx.log(", ".join(f"{k}={v:.4g}" for k, v in row.items()))
    ctx.table("Fit, plateau and drop per alpha", rows)
    ctx.metric("per_alpha", rows)
    ratios = [r["t_drop"] / r["t_fit"] for r in rows]
    ctx.check("fit_before_drop", float(np.min(ratios)) if np.all(np.isfinite(ratios)) else np.nan)
    delays = [r["delay"] for r in rows]
    grows = [float(b > a) for a, b in itertools.pairwise(delays)]
    ctx.check("delay_increasing", float(np.mean(grows)) if np.all(np.isfinite(delays)) else 0.0)
    lazy = rows[-1]
    plateau_ok = ctx.check(
        "plateau_kernel_rel_error",
        abs(lazy["plateau_interp"] - lazy["kernel_mse"]) / lazy["kernel_mse"],
    )
    rises = [r["alignment_end"] / r["alignment_at_fit"] for r in rows]
    rise_ok = ctx.check("alignment_rise", float(np.min(rises)))
    _figure(ctx, histories, kernel_mse)
    ctx.note(
        f"D = {dim}, P = {n_train} training and 1000 test points, N = {width} hidden units, "
        f"eps = {eps}, W ~ N(0, 1), readout fixed (as in the authors' notebook), centred loss "
        "mean (f - f_0 - y)^2, full-batch GD with lr = N / alpha^2 for at most "
        f"{max_steps} steps, losses every {eval_every} steps, NTK alignment every "
        f"{align_every} steps. t_fit: first step with the train loss <= 10% of its initial "
        "value; plateau: the test loss at t_fit; t_drop: first later step with test loss <= 50% "
        f"of the plateau; each run stops once the test loss is below {stop_fraction:.0%} of the "
        "plateau. The kernel check compares the initial-NTK regression error with the laziest "
        "alpha's test loss at t_interp, the first step with the train loss <= 0.1% of its "
        "initial value (plateau_interp): kernel regression is the test error of the converged, "
        "interpolating linearized network, and the test loss at t_fit is not: in the exact "
        "linearized dynamics it is still falling there and lies 6-24% above the kernel error "
        "(quick data, seeds 0-4; alpha = 1024 at seed 0: 12%), while at t_interp it is within "
        "1.3% (alpha = 1024: 0.6%). Alignment: centred kernel-target alignment of the NTK on "
        "all 1000 test points (as in the authors' notebook); alignment_at_fit is the last one "
        "recorded at or before t_fit."
    )
    ended = []
    for r, rise in zip(rows, rises, strict=True):
        h = histories[r["alpha"]]
        text = f"alpha = {r['alpha']:g}: alignment x{rise:.3f}, "
        if r["steps_run"] < max_steps:
            text += f"stopped at step {r['steps_run']}"
        else:
            half = max_steps // 2
            loss_half = h.test_loss[int(np.searchsorted(h.steps, half))]
            align_half = h.alignment[int(np.searchsorted(h.alignment_steps, half))]
            text += (
                f"ran all {max_steps} steps, ending at {h.test_loss[-1] / r['plateau']:.1%} of "
                f"its plateau with train loss {h.train_loss[-1]:.2g} (over its last "
                f"{max_steps - half} steps the test loss changed "
                f"x{h.test_loss[-1] / loss_half:.4f} and the alignment "
                f"x{h.alignment[-1] / align_half:.4f})"
            )
        ended.append(text)
    ctx.note(
        "Per alpha (alignment at the end / at the fit, and how the run ended): "
        + "; ".join(ended)
        + "."
    )
    lagging = ", ".join(f"{r['alpha']:g}" for r, x in zip(rows, rises, strict=True) if x < 1.2)
    ctx.note(
        f"{'Quick' if ctx.quick else 'Full'} mode uses eps = {eps}, D = {dim}, P = {n_train}, "
        f"N = {width} instead of the paper's eps = 0.02, D = 100, P = 550, N = 500 and 1e5 "
        "epochs (its alpha sweep: eps 0.25, P = 450), so that the drop happens within a few "
        "thousand steps. At the quick scale (measured at seed 0) no alpha both sits on the "
        "kernel-regression plateau and "
        "drops: the alphas that drop learn features from the start (their t_fit is shorter than "
        "the lazy limit's and their alignment has already risen by t_fit), and their test loss "
        "falls through the kernel line without stopping on it, so the test loss at t_fit "
        "(the delay's 'plateau') is only a reference point for the drop, not the lazy plateau."
        + (
            ""
            if rise_ok
            else f" The NTK-target alignment rises by less than 20% for alpha = {lagging} "
            "(line above), so alignment_rise fails; a run that used the whole step budget "
            "and barely changed over its second half is not limited by the budget."
        )
        + (
            ""
            if plateau_ok
            else f" plateau_kernel_rel_error fails: alpha = {lazy['alpha']:g} interpolates its "
            f"training set at step {lazy['t_interp']:.0f} (its drop: step {lazy['t_drop']:.0f}) "
            f"with test loss {lazy['plateau_interp']:.4g} against the kernel regression error "
            f"{lazy['kernel_mse']:.4g}; the lazier alpha = 128 (not in the sweep; quick data, "
            "seed 0, measured outside this run) gets within 7% of it (0.311 vs 0.333) but does "
            "not drop in 6000 steps."
        )
    )
    ctx.note(
        "Measured outside this run (neuronkit-theory 0.6.10 audit): at eps = 0.5 the laziest "
        "alphas interpolate the training set and then stop learning before their features "
        "change enough, so their test loss freezes above half its plateau and their delay is "
        "undefined. The final test loss over the plateau rises with alpha (full-mode data: "
        "0.44, 0.61, 0.73 at alpha 8, 16, 32; a 20x larger learning rate or 4x the steps give "
        "the same end point), and the paper's own alpha-sweep protocol (eps 0.25, D = 100, "
        "P = 450, 60000 steps) ends the same way from alpha = 8 on (0.63, 0.76 at alpha 8, "
        "16). Quick mode's alphas stop at 8, whose run ends at about 45% of its plateau, just "
        "past the half-plateau line; full mode's alpha = 16 does not get there. Smaller eps "
        "(0.02) brings the drop back at every alpha, but then the plateau and alignment checks "
        "fail (0.20 and x1.01 at alpha = 16)."
    )


def _figure(ctx: RunContext, histories: dict[float, LazyRichHistory], kernel_mse: dict) -> None:
    fig, (ax1, ax2) = new_figure(1, 2)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for (alpha, h), c in zip(histories.items(), colors, strict=False):
        steps = np.maximum(np.asarray(h.steps), 1)
        ax1.plot(steps, h.train_loss, "--", color=c, lw=1)
        ax1.plot(steps, h.test_loss, "-", color=c, label=f"alpha={alpha:g}")
        ax1.axhline(kernel_mse[alpha], color=c, ls=":", lw=0.8)
        ax2.plot(np.maximum(h.alignment_steps, 1), h.alignment, color=c, label=f"alpha={alpha:g}")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("MSE")
    ax1.set_title("dashed train, solid test, dotted K0 regression", fontsize=7)
    ax1.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("NTK-target alignment (test)")
    ax2.legend(fontsize=7)
    ctx.save_figure("loss_curves", fig)
