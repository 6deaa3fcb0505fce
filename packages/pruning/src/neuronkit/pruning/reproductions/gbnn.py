"""Reproduction: Gradient Boosted Neural Networks (GBNN) vs an Adam-trained MLP of equal width.

Emami & Martínez-Muñoz (IEEE Access 2023), "Sequential Training of Neural Networks with
Gradient Boosting". On scikit-learn's diabetes (regression, R^2) and digits (10-class
classification, accuracy):

1. a GBNN with ``U = T * J`` hidden units scores within 2% of a one-hidden-layer MLP of the same
   width ``U`` trained with Adam;
2. switching off the last-trained 25% of the GBNN's units costs at most 2%, while switching off
   25% random units of the Adam MLP costs at least twice as much.

Definitions (fixed before running): with ``S`` a test score averaged over the seeds (random
train/test splits), the *shortfall* is ``(S_mlp - S_gbnn) / |S_mlp|`` (one-sided: a GBNN that
beats the MLP passes); a *drop* is ``(S_full - S_kept) / |S_full|`` with ``S_kept`` the score
with 75% of the units kept (for the MLP averaged over random unit subsets); the *drop ratio*
is ``drop_mlp / max(drop_gbnn, 0.001)``.
Protocol (the paper's: hyper-parameters of both models chosen by a grid search on training
data): for each split, each model's small grid is scored on a validation quarter of the
training set, the chosen setting is refitted on the whole training set and scored on the test
set.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.pruning.boosting import GBNNClassifier, GBNNRegressor

FRACTIONS = (0.25, 0.5, 0.625, 0.75, 0.875, 1.0)


def _mlp_score(mlp: Any, X: np.ndarray, y: np.ndarray, keep: np.ndarray, task: str) -> float:
    """Test score of a fitted one-hidden-layer sklearn MLP with only the ``keep`` units on."""
    W1, W2 = mlp.coefs_
    b1, b2 = mlp.intercepts_
    H = expit(X @ W1 + b1)  # logistic hidden layer
    out = H[:, keep] @ W2[keep] + b2
    if task == "regression":
        pred = out[:, 0]
        return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    return float(np.mean(mlp.classes_[np.argmax(out, axis=1)] == y))


def _gbnn_score(gbnn: Any, X: np.ndarray, y: np.ndarray, units: Any, task: str) -> float:
    """``gbnn.score(X, y, units=units)``; for digits the accuracy is computed here, the same
    value without scikit-learn's per-call checks (about a thousand calls a run)."""
    if task == "regression":
        return float(gbnn.score(X, y, units=units))
    return float(np.mean(gbnn.predict(X, units=units) == y))


def _select(make: Any, grid: list[dict], split: tuple[np.ndarray, ...]) -> dict:
    """The grid point with the best validation score; ``split = (Xa, Xv, ya, yv)``."""
    Xa, Xv, ya, yv = split
    scores = [make(**params).fit(Xa, ya).score(Xv, yv) for params in grid]
    return grid[int(np.argmax(scores))]


def _one_split(ctx: RunContext, task: str, seed: int, cfg: dict) -> dict:
    if task == "regression":
        X, y = load_diabetes(return_X_y=True)
        strat = None
    else:
        X, y = load_digits(return_X_y=True)
        strat = y
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=strat)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    if task == "regression":  # standardized target (R^2 is unchanged); Adam needs it
        mu, sd = ytr.mean(), ytr.std()
        ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
    U, J = cfg["units"], cfg["units_per_step"]
    gb_cls = GBNNRegressor if task == "regression" else GBNNClassifier
    mlp_cls = MLPRegressor if task == "regression" else MLPClassifier
    gb_grid = [
        {
            "n_units": U,
            "units_per_step": J,
            "learning_rate": lr,
            "max_iter": it,
            "subsample": 0.5,
            "activation": "logistic",
            "random_state": seed,
        }
        for lr, it in itertools.product(cfg["gbnn_learning_rates"], cfg["gbnn_max_iters"])
    ]
    mlp_grid = [
        {
            "hidden_layer_sizes": (U,),
            "activation": "logistic",
            "solver": "adam",
            "alpha": alpha,
            "learning_rate_init": lr,
            "max_iter": cfg["mlp_max_iter"],
            "random_state": seed,
        }
        for lr, alpha in itertools.product(cfg["mlp_learning_rates"], cfg["mlp_alphas"])
    ]
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # one validation quarter of the training set, shared by both models' grids
        val_split = train_test_split(
            Xtr, ytr, test_size=0.25, random_state=seed, stratify=None if strat is None else ytr
        )
        gb_params = _select(gb_cls, gb_grid, val_split)
        mlp_params = _select(mlp_cls, mlp_grid, val_split)
        gbnn = gb_cls(**gb_params).fit(Xtr, ytr)
        mlp = mlp_cls(**mlp_params).fit(Xtr, ytr)
    gen = np.random.default_rng(seed)
    out: dict[str, Any] = {
        "gbnn_params": {k: gb_params[k] for k in ("learning_rate", "max_iter")},
        "mlp_params": {k: mlp_params[k] for k in ("learning_rate_init", "alpha")},
        "gbnn_last": [],
        "gbnn_random": [],
        "mlp_random": [],
    }
    for frac in FRACTIONS:
        k = round(frac * U)
        out["gbnn_last"].append(_gbnn_score(gbnn, Xte, yte, k, task))
        g_r, m_r = [], []
        for _ in range(cfg["random_draws"] if k < U else 1):
            subset = np.sort(gen.choice(U, size=k, replace=False))
            g_r.append(_gbnn_score(gbnn, Xte, yte, subset, task))
            keep = np.zeros(U, dtype=bool)
            keep[subset] = True
            m_r.append(_mlp_score(mlp, Xte, yte, keep, task))
        out["gbnn_random"].append(float(np.mean(g_r)))
        out["mlp_random"].append(float(np.mean(m_r)))
    return out


@reproduction(
    id="pruning.gbnn",
    paper="Sequential Training of Neural Networks with Gradient Boosting",
    claim=(
        "GBNN scores within 2% of an Adam-trained MLP of equal width (diabetes R^2, digits "
        "accuracy); switching off the last-trained 25% of units costs <= 2% while switching "
        "off 25% random units of the MLP costs >= 2x more"
    ),
    checks=[
        Check("diabetes_shortfall", "<=", 0.02, "(R2_mlp - R2_gbnn) / |R2_mlp|"),
        Check("digits_shortfall", "<=", 0.02, "(acc_mlp - acc_gbnn) / acc_mlp"),
        Check("diabetes_gbnn_drop", "<=", 0.02, "relative R2 drop, last 25% units off"),
        Check("digits_gbnn_drop", "<=", 0.02, "relative accuracy drop, last 25% units off"),
        Check("diabetes_drop_ratio", ">=", 2.0, "MLP random-25% drop / GBNN last-25% drop"),
        Check("digits_drop_ratio", ">=", 2.0, "MLP random-25% drop / GBNN last-25% drop"),
    ],
    seed=0,
    threads=1,
)
def run(ctx: RunContext) -> None:
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    # small matrices: one BLAS thread is fastest and immune to a shared CPU
    with threadpool_limits(limits=1, user_api="blas"):
        _run(ctx)


def _run(ctx: RunContext) -> None:
    base = {
        "gbnn_learning_rates": (0.025, 0.1, 0.5),
        "mlp_learning_rates": (1e-3, 1e-2),
        "mlp_alphas": (1e-4, 1e-1),
    }
    configs: dict[str, dict[str, Any]]
    if ctx.quick:
        configs = {
            "diabetes": dict(
                base,
                units=64,
                units_per_step=2,
                gbnn_max_iters=(25, 50),
                mlp_max_iter=200,
                seeds=6,
                random_draws=20,
            ),
            "digits": dict(
                base,
                units=64,
                units_per_step=4,
                gbnn_max_iters=(25, 50),
                mlp_max_iter=200,
                seeds=10,
                random_draws=20,
            ),
        }
    else:
        configs = {
            "diabetes": dict(
                base,
                units=128,
                units_per_step=2,
                gbnn_max_iters=(25, 50, 100),
                mlp_max_iter=500,
                seeds=6,
                random_draws=50,
            ),
            "digits": dict(
                base,
                units=128,
                units_per_step=4,
                gbnn_max_iters=(25, 50, 100),
                mlp_max_iter=500,
                seeds=10,
                random_draws=50,
            ),
        }
    seeds = [int(s) for s in ctx.rng.integers(0, 2**31 - 1, size=10)]
    results: dict[str, dict[str, Any]] = {}
    rows = []
    for name, cfg in configs.items():
        task = "regression" if name == "diabetes" else "classification"
        n_seeds = int(cfg["seeds"])
        runs = [
            _one_split(ctx, task, s, cfg)
            for s in ctx.progress(seeds[:n_seeds], desc=name, total=n_seeds)
        ]
        curves = {
            key: np.mean([r[key] for r in runs], axis=0)
            for key in ("gbnn_last", "gbnn_random", "mlp_random")
        }
        i75 = FRACTIONS.index(0.75)
        gb_full, mlp_full = float(curves["gbnn_last"][-1]), float(curves["mlp_random"][-1])
        shortfall = (mlp_full - gb_full) / abs(mlp_full)
        gb_drop = (gb_full - float(curves["gbnn_last"][i75])) / abs(gb_full)
        gb_rand_drop = (gb_full - float(curves["gbnn_random"][i75])) / abs(gb_full)
        mlp_drop = (mlp_full - float(curves["mlp_random"][i75])) / abs(mlp_full)
        ratio = mlp_drop / max(gb_drop, 1e-3)
        results[name] = {"curves": curves, "cfg": cfg}
        ctx.metric(f"{name}_gbnn_score", gb_full)
        ctx.metric(f"{name}_mlp_score", mlp_full)
        ctx.metric(f"{name}_gbnn_scores_per_seed", [r["gbnn_last"][-1] for r in runs])
        ctx.metric(f"{name}_mlp_scores_per_seed", [r["mlp_random"][-1] for r in runs])
        ctx.metric(f"{name}_gbnn_random25_drop", gb_rand_drop)
        ctx.metric(f"{name}_mlp_random25_drop", mlp_drop)
        ctx.metric(f"{name}_selected_gbnn_params", [r["gbnn_params"] for r in runs])
        ctx.metric(f"{name}_selected_mlp_params", [r["mlp_params"] for r in runs])
        gaps = [(r["mlp_random"][-1] - r["gbnn_last"][-1]) / abs(r["mlp_random"][-1]) for r in runs]
        ctx.metric(f"{name}_shortfall_per_seed", gaps)
        results[name].update(shortfall=shortfall, gaps=gaps)
        if not ctx.check(f"{name}_shortfall", shortfall):
            ctx.note(
                f"{name}: GBNN {gb_full:.4f} vs Adam MLP {mlp_full:.4f}, a relative shortfall of "
                f"{shortfall:.2%} against the 2% band. Per split the shortfall is "
                + ", ".join(f"{g:+.2%}" for g in gaps)
                + f" (spread {np.std(gaps):.2%} over {len(gaps)} splits), so at this scale the "
                "gap is of the order of the split-to-split noise; the claim is not confirmed "
                "here and the check is left failing."
            )
        ctx.check(f"{name}_gbnn_drop", gb_drop)
        ctx.check(f"{name}_drop_ratio", ratio)
        for j, frac in enumerate(FRACTIONS):
            rows.append(
                {
                    "dataset": name,
                    "fraction_kept": frac,
                    "gbnn_last_removed": round(float(curves["gbnn_last"][j]), 4),
                    "gbnn_random_removed": round(float(curves["gbnn_random"][j]), 4),
                    "mlp_random_removed": round(float(curves["mlp_random"][j]), 4),
                }
            )
    ctx.table("Test score vs fraction of hidden units kept (mean over seeds)", rows)
    _figure(ctx, results)
    d, g = configs["diabetes"], configs["digits"]
    ctx.note(
        "Definitions fixed before running: S = test score (R^2 on diabetes, accuracy on digits) "
        "averaged over random 75/25 train/test splits; shortfall = (S_mlp - S_gbnn) / |S_mlp| "
        "(one-sided); drop = (S_full - S_75%) / |S_full| with 75% of the hidden units kept (the "
        "first-trained ones for GBNN; random subsets, averaged, for the MLP); drop ratio = "
        "drop_mlp / max(drop_gbnn, 0.001). Both models: one logistic hidden layer of the same "
        "width, standardized inputs (and target for diabetes). GBNN: the bias starts at the "
        "loss-minimizing constant, each step fits J new units (hidden and output weights) by "
        "L-BFGS to the pseudo-residuals on a 50% subsample, earlier units frozen, step size = "
        "learning rate x one Newton step; MLP: scikit-learn's MLP with Adam. As in the paper, "
        "each model's hyper-parameters come from a small grid scored on a validation quarter of "
        f"the training set: GBNN learning rate {base['gbnn_learning_rates']} x L-BFGS "
        f"iterations per step {d['gbnn_max_iters']}; MLP Adam step {base['mlp_learning_rates']} "
        f"x L2 penalty {base['mlp_alphas']} (up to {d['mlp_max_iter']} epochs). Widths: "
        f"diabetes {d['units']} units (J = {d['units_per_step']}, {d['seeds']} splits), digits "
        f"{g['units']} units (J = {g['units_per_step']}, {g['seeds']} splits). Switching a unit "
        "off removes its contribution; a GBNN step whose units are all off also loses its "
        "output bias (keeping the first k steps is the k-step boosting ensemble), while the "
        "MLP keeps its single output bias. GBNN's robustness is to *ordered* removal only: "
        "switching off random GBNN units (dashed curve, metric *_gbnn_random25_drop) costs as "
        "much as, or more than, random removal in the Adam MLP."
    )
    if ctx.quick:
        ctx.note(
            f"Quick mode: {d['units']} hidden units (full mode: 128) and L-BFGS iterations "
            f"per step {d['gbnn_max_iters']} in the GBNN grid (full: (25, 50, 100)), up to "
            f"{d['mlp_max_iter']} MLP epochs (full: 500) and {d['random_draws']} random unit "
            f"subsets (full: 50); diabetes uses the full mode's {d['seeds']} splits and digits "
            f"its {g['seeds']} (the same train/test splits, in the same order). Until "
            "neuronkit-pruning 0.5.12 quick mode used only the first digits split, where the "
            "shortfall was 2.05% (4 test images over 2%); quick mode was moved to the full "
            "mode's 3 splits after that failure: the claim is about the expected shortfall, and "
            "one split measures it to a few test images (one image is 0.22 points). Those 3 "
            "splits averaged 1.90%, below the 10-split mean; since 0.5.15 both modes use 10 "
            "digits splits (about 45 s of CPU, over the ~30 s quick budget), which measure the "
            "expected shortfall to about +-0.25 points. Observed in this run: "
            + "; ".join(
                f"{name} shortfall {res['shortfall']:+.2%} (per split "
                + ", ".join(f"{gap:+.2%}" for gap in res["gaps"])
                + ")"
                for name, res in results.items()
            )
            + "."
        )


def _figure(ctx: RunContext, results: dict[str, dict[str, Any]]) -> None:
    fig, axes = new_figure(1, 2)
    for ax, (name, res) in zip(axes, results.items(), strict=True):
        c = res["curves"]
        ax.plot(FRACTIONS, c["gbnn_last"], "o-", label="GBNN, last-trained units off")
        ax.plot(FRACTIONS, c["gbnn_random"], "s--", label="GBNN, random units off")
        ax.plot(FRACTIONS, c["mlp_random"], "^-", label="Adam MLP, random units off")
        ax.axvline(0.75, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("fraction of hidden units kept")
        ax.set_ylabel("test R$^2$" if name == "diabetes" else "test accuracy")
        ax.set_title(f"{name} ({res['cfg']['units']} hidden units)")
        ax.legend(fontsize=8)
    ctx.save_figure("units_kept", fig)
