"""Reproduction: functional cell-type clustering by Most Discriminative Stimuli (MDS).

Burg et al., "Most discriminative stimuli for functional cell type clustering" (ICLR 2024).

The MDS algorithm alternates (like EM / k-means) between optimizing one norm-constrained
stimulus per cluster for the contrastive objective (log-softmax over clusters of the
z-scored mean responses, temperature 1, plus log K) and moving every neuron to the cluster
whose MDS drives it most; empty clusters are removed. It only needs a differentiable model of
the neurons' responses; here the models are simulated linear-nonlinear populations with known
types (``neuronkit.interpretability.data.cell_types``):

1. a toy retina of ON and OFF cells (1D stimuli, heterogeneous receptive fields, gains and
   thresholds), started from 5 random clusters: the paper's claim is that the superfluous
   clusters empty out and the two types are recovered;
2. a V1-like population of 4 orientation-tuned types (Gabor energy-model complex cells with
   orientation, position and phase jitter), started from 6 random clusters (more than the
   true 4) and, for context, from 4.

Adjusted Rand index (scikit-learn) against the true types, averaged over seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability.data.cell_types import (
    LNPopulation,
    on_off_population,
    orientation_population,
)
from neuronkit.interpretability.stimuli.mds import MDSResult, mds_clustering

NORM = 3.0  # L2 norm of every stimulus (the z-scoring uses random stimuli of the same norm)


@reproduction(
    id="interpretability.mds",
    paper="Most discriminative stimuli for functional cell type clustering",
    claim=(
        "MDS clustering (contrastive stimulus optimization alternating with reassignment) "
        "reduces a toy ON/OFF population started with 5 clusters to 2 clusters with ARI >= "
        "0.9, and recovers a synthetic population of 4 orientation-tuned types with ARI >= 0.8"
    ),
    checks=[
        Check("onoff_ari", ">=", 0.9, "mean ARI vs ON/OFF types, started from 5 clusters"),
        Check(
            "onoff_two_clusters",
            ">=",
            1.0,
            "fraction of seeds whose ON/OFF clustering ended with exactly 2 clusters",
        ),
        Check(
            "orientation_ari",
            ">=",
            0.8,
            "mean ARI vs 4 orientation types, started from 6 clusters",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: one thread is fastest and immune to oversubscription
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    n_seeds = 3 if quick else 10
    seeds = [ctx.seed + i for i in range(n_seeds)]
    n_steps = 50 if quick else 100
    max_iter = 20 if quick else 40

    def cluster(pop: LNPopulation, k0: int, seed: int) -> MDSResult:
        return mds_clustering(
            pop,
            pop.stimulus_shape,
            k0,
            norm=NORM,
            temperature=1.0,
            n_steps=n_steps,
            lr=0.05,
            max_iter=max_iter,
            seed=seed,
        )

    # 1. ON/OFF toy retina -----------------------------------------------------------------
    onoff_rows: list[dict[str, object]] = []
    onoff_runs: list[tuple[LNPopulation, MDSResult]] = []
    for seed in ctx.progress(seeds, desc="ON/OFF"):
        pop = on_off_population(30 if quick else 100, 20, seed=seed)
        res = cluster(pop, 5, seed)
        onoff_runs.append((pop, res))
        onoff_rows.append(_row(seed, 5, pop, res))
    ctx.table("ON/OFF toy retina, started from 5 clusters", onoff_rows)
    onoff_ari = float(np.mean([r["ARI"] for r in onoff_rows]))
    two = float(np.mean([r["final clusters"] == 2 for r in onoff_rows]))

    # 2. orientation-tuned types ---------------------------------------------------------
    ori_rows: list[dict[str, object]] = []
    ori_runs: list[tuple[LNPopulation, MDSResult]] = []
    for k0 in (6, 4):
        for seed in ctx.progress(seeds, desc=f"orientation K0={k0}"):
            pop = orientation_population(40 if quick else 100, 16, 4, seed=seed)
            res = cluster(pop, k0, seed)
            if k0 == 6:
                ori_runs.append((pop, res))
            ori_rows.append(_row(seed, k0, pop, res))
    ctx.table("4 orientation types (complex cells, 16x16 images)", ori_rows)
    ori_ari = {
        k0: float(np.mean([r["ARI"] for r in ori_rows if r["initial clusters"] == k0]))
        for k0 in (6, 4)
    }

    # optional: ON/OFF with more receptive-field heterogeneity (full mode only)
    if not quick:
        _heterogeneity_sweep(ctx, seeds[:5], cluster)

    ctx.metric("onoff_ari_per_seed", [r["ARI"] for r in onoff_rows])
    ctx.metric("onoff_final_clusters", [r["final clusters"] for r in onoff_rows])
    ctx.metric("orientation_ari_k0_6", ori_ari[6])
    ctx.metric("orientation_ari_k0_4", ori_ari[4])
    ctx.metric(
        "orientation_final_clusters_k0_6",
        [r["final clusters"] for r in ori_rows if r["initial clusters"] == 6],
    )
    _figures(ctx, onoff_runs, ori_runs)
    ctx.note(
        f"Method: {n_steps} Adam steps (lr 0.05) per EM iteration on all cluster stimuli at "
        f"once (warm-started from the previous MDS) on the gradient's component tangent to the "
        f"norm sphere, stimuli projected to L2 norm {NORM} after each step (the authors use "
        f"SGD + norm re-projection; plain Adam + re-projection would drift to sign-like "
        f"stimuli); responses z-scored per neuron with statistics over 256 random stimuli of "
        f"the same norm (the authors normalize by data statistics); temperature 1; stop when "
        f"no neuron changes cluster (at most {max_iter} iterations). Initial clusters: neurons "
        f"shuffled and dealt into K0 equal chunks (the authors' initialization). Seeds "
        f"{seeds}. No splits (optional in the library; with the authors' acceptance rule, "
        f"mean objective including +log K, splitting over-fragments these populations)."
    )
    ctx.note(
        "Populations: ON/OFF cells have unit-norm Gaussian receptive fields on a 20-pixel "
        "stimulus (centre jitter 0.5 px, width jitter 10%, filter noise 5%), gains U(1,3), "
        "thresholds U(-1,0), softplus output. Orientation types: 16x16 Gabor energy-model "
        "complex cells (0.15 cycles/px, envelope sigma 3 px), orientation jitter 5 deg, "
        "position jitter 1.5 px, random phase. Where within-type receptive fields vary along "
        "a continuum that a stimulus can exploit (positions, orientations), MDS can keep "
        "sub-clusters of one type: started from 6 clusters the orientation population often "
        "ends with 5-6 clusters whose members each come from one type (the ARI stays high), "
        "and ON/OFF runs can keep an ON or OFF sub-cluster, more often with more positional "
        "jitter (see the full-mode sweep table). Gains and thresholds never split a type, "
        "since a neuron's choice among stimuli is unaffected by monotone output transforms."
    )
    extra = [r for r in onoff_rows if r["final clusters"] != 2]
    if extra:
        ctx.note(
            f"{len(extra)} of {len(onoff_rows)} ON/OFF runs ended with more than 2 clusters "
            f"(seeds {[r['seed'] for r in extra]}; purity "
            f"{[r['purity'] for r in extra]}): one type stayed split into sub-clusters along "
            f"its receptive-field continuum, a fixed point of the EM (no neuron moves) whose "
            f"mean contrastive objective is higher than that of the 2-cluster solutions, not "
            f"a failure to optimize. The claim's 'converges to 2' then does not hold for "
            f"those seeds; the check is left as declared."
        )
    ctx.check("onoff_ari", onoff_ari)
    ctx.check("onoff_two_clusters", two)
    ctx.check("orientation_ari", ori_ari[6])


def _row(seed: int, k0: int, pop: LNPopulation, res: MDSResult) -> dict[str, object]:
    return {
        "seed": seed,
        "initial clusters": k0,
        "final clusters": res.n_clusters,
        "iterations": len(res.history),
        "converged": res.converged,
        "ARI": round(float(adjusted_rand_score(pop.labels.numpy(), res.labels.numpy())), 4),
        "purity": round(_purity(pop.labels, res.labels), 4),
        "mean objective": round(float(res.objectives.mean()), 4),
    }


def _purity(truth: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of neurons whose cluster's majority type is their own type."""
    hits = sum(int(torch.bincount(truth[labels == c]).max()) for c in labels.unique())
    return hits / truth.numel()


def _heterogeneity_sweep(
    ctx: RunContext, seeds: list[int], cluster: Callable[[LNPopulation, int, int], MDSResult]
) -> None:
    rows = []
    for jitter, width, noise in ((0.5, 0.1, 0.05), (1.0, 0.2, 0.05), (1.5, 0.2, 0.2)):
        finals, aris = [], []
        for seed in seeds:
            pop = on_off_population(
                100, 20, center_jitter=jitter, width_jitter=width, filter_noise=noise, seed=seed
            )
            res = cluster(pop, 5, seed)
            finals.append(res.n_clusters)
            aris.append(adjusted_rand_score(pop.labels.numpy(), res.labels.numpy()))
        rows.append(
            {
                "centre jitter (px)": jitter,
                "width jitter": width,
                "filter noise": noise,
                "final clusters per seed": str(finals),
                "mean ARI": round(float(np.mean(aris)), 4),
            }
        )
    ctx.table("ON/OFF: receptive-field heterogeneity vs final cluster count (from 5)", rows)


def _figures(
    ctx: RunContext,
    onoff: list[tuple[LNPopulation, MDSResult]],
    ori: list[tuple[LNPopulation, MDSResult]],
) -> None:
    # final MDS per cluster (first seed of each population)
    pop, res = onoff[0]
    pop_o, res_o = ori[0]
    k = res_o.n_clusters
    fig, axes = new_figure(1, 1 + k, figsize=(3.2 + 1.8 * k, 2.8))
    for c in range(res.n_clusters):
        types = torch.bincount(pop.labels[res.labels == c], minlength=2)
        name = "ON" if types[0] >= types[1] else "OFF"
        axes[0].plot(res.stimuli[c].numpy(), label=f"cluster {c} ({name}, n={int(types.sum())})")
    axes[0].set_title("ON/OFF: final MDS", fontsize=9)
    axes[0].set_xlabel("stimulus pixel")
    axes[0].legend(fontsize=6)
    vmax = float(res_o.stimuli.abs().max())
    for c in range(k):
        ax = axes[1 + c]
        ax.imshow(res_o.stimuli[c].numpy(), cmap="gray", vmin=-vmax, vmax=vmax)
        types = torch.bincount(pop_o.labels[res_o.labels == c], minlength=4)
        ax.set_title(f"cluster {c}: type {int(types.argmax())}\n(n={int(types.sum())})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    ctx.save_figure("mds_stimuli", fig)

    # cluster count over iterations
    fig, axes = new_figure(1, 2, figsize=(8.0, 3.0))
    for ax, runs, title, k0 in ((axes[0], onoff, "ON/OFF", 5), (axes[1], ori, "orientation", 6)):
        for i, (_, r) in enumerate(runs):
            counts = [k0] + [h["n_clusters"] for h in r.history]
            ax.plot(range(len(counts)), counts, "o-", alpha=0.7, label=f"seed {i}")
        ax.set_xlabel("EM iteration")
        ax.set_ylabel("clusters")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=6)
    ctx.save_figure("cluster_count", fig)

    # confusion of recovered vs true types
    fig, axes = new_figure(1, 2, figsize=(8.0, 3.4))
    for ax, (p, r), names in (
        (axes[0], onoff[0], ["ON", "OFF"]),
        (axes[1], ori[0], [f"{45 * t} deg" for t in range(4)]),
    ):
        n_true = len(names)
        cm = confusion_matrix(p.labels.numpy(), r.labels.numpy())[:n_true, : r.n_clusters]
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_yticks(range(n_true), names, fontsize=7)
        ax.set_xticks(range(r.n_clusters))
        ax.set_xlabel("MDS cluster")
        ax.set_ylabel("true type")
    ctx.save_figure("confusion", fig)
