"""Reproduction: low-rank initial connectivity makes learning richer, unless task-aligned.

Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie (ICLR 2024). A two-layer tanh network
``f(x) = v . tanh(W x) / sqrt(h)`` learns ``y = tanh(2 beta . x)`` by full-batch gradient
descent from initial hidden weights ``W_0`` of rank 1, 2, 5 and full rank with the same Frobenius
norm (equal singular values), and from a rank-1 ``W_0`` whose row space is the task direction
``beta``. Richness: relative weight change ``||W_T - W_0|| / ||W_0||`` and relative change of the
empirical NTK (``torch.func``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.lazy_rich import TwoLayerTanhNet, low_rank_weight, train_rich_lazy


@reproduction(
    id="theory.rich_lazy",
    paper="How connectivity structure shapes rich and lazy learning in neural circuits",
    claim=(
        "low-rank initial weights produce larger relative weight and kernel change (richer) than "
        "high-rank ones of equal norm; a low-rank init aligned with the task is lazy again"
    ),
    checks=[
        Check("weight_change_low_over_high", ">", 1.0, "rank-1 / full-rank relative dW"),
        Check("kernel_change_low_over_high", ">", 1.0, "rank-1 / full-rank relative dK"),
        Check("aligned_over_random_weight_change", "<", 1.0, "aligned / random rank-1 dW"),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add contention
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        dim, hidden, n, steps, seeds = 20, 100, 200, 500, 3
    else:
        dim, hidden, n, steps, seeds = 40, 400, 600, 2000, 5
    ranks = [1, 2, 5, dim]
    lr = 0.5
    results: dict[str, list] = {f"rank {r}": [] for r in ranks}
    results["rank 1 aligned"] = []
    base = int(ctx.rng.integers(0, 2**31))
    for s in ctx.progress(range(seeds), desc="seeds"):
        g = torch.Generator().manual_seed(base + s)
        x = torch.randn(n, dim, generator=g, dtype=torch.float64)
        beta = torch.randn(dim, generator=g, dtype=torch.float64)
        beta = beta / torch.linalg.norm(beta)
        y = torch.tanh(2.0 * x @ beta)
        v = torch.randn(hidden, generator=g, dtype=torch.float64)
        inits = {
            f"rank {r}": low_rank_weight(hidden, dim, r, math.sqrt(hidden), seed=base + 100 + s)
            for r in ranks
        }
        inits["rank 1 aligned"] = low_rank_weight(
            hidden, dim, 1, math.sqrt(hidden), row_space=beta[None], seed=base + 100 + s
        )
        for name, w0 in inits.items():
            res = train_rich_lazy(TwoLayerTanhNet(w0, v), x, y, steps=steps, lr=lr)
            results[name].append(res)
    rows = []
    for name, runs in results.items():
        row: dict[str, float | str] = {"init": name}
        for key in (
            "effective_rank_init",
            "weight_change",
            "kernel_change",
            "kernel_distance",
            "alignment_init",
            "alignment_final",
            "final_loss",
        ):
            row[key] = float(np.mean([getattr(r, key) for r in runs]))
        rows.append(row)
    ctx.table(f"Richness per initial connectivity (mean over {seeds} seeds)", rows)
    by = {str(r["init"]): {k: float(v) for k, v in r.items() if k != "init"} for r in rows}
    ctx.metric("per_init", rows)
    low, high, aligned = by["rank 1"], by[f"rank {dim}"], by["rank 1 aligned"]
    ctx.check("weight_change_low_over_high", low["weight_change"] / high["weight_change"])
    ctx.check("kernel_change_low_over_high", low["kernel_change"] / high["kernel_change"])
    ctx.check("aligned_over_random_weight_change", aligned["weight_change"] / low["weight_change"])
    fig, (ax1, ax2) = new_figure(1, 2)
    names = [r["init"] for r in rows]
    ax1.bar(names, [r["weight_change"] for r in rows], color="tab:blue")
    ax1.set_ylabel("||W_T - W_0|| / ||W_0||")
    ax2.bar(names, [r["kernel_change"] for r in rows], color="tab:orange")
    ax2.set_ylabel("||K_T - K_0|| / ||K_0||")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ctx.save_figure("richness_by_rank", fig)
    ctx.note(
        f"D = {dim} Gaussian inputs, {n} samples, h = {hidden} tanh units, target tanh(2 beta.x) "
        f"with a random unit beta; W_0 = U diag(s) V^T with equal singular values and "
        f"||W_0||_F = sqrt(h) for every rank; readout v ~ N(0, 1) shared by all inits of a seed; "
        f"both layers trained by full-batch GD (lr {lr}, {steps} steps). Aligned init: rank 1 "
        "with V = beta. Kernel: empirical NTK over both layers on 100 training inputs. The "
        "paper studies RNNs on neuroscience tasks and a 2-layer theory; this is the 2-layer "
        "feed-forward version. Here the kernel change grows clearly as the rank falls, while the "
        "relative change of W is almost rank independent (rank 1 exceeds full rank by < 1%): "
        "the readout is trained too and absorbs much of the fit."
    )
