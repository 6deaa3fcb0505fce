"""Reproduction: tRSA identifies network layers from noisy responses (Lin & Kriegeskorte).

The paper's simulation: the ground truth is a layer of a network; models are the same and other
layers of network instances trained from different random seeds; a summary statistic is good
if the measured layer can be identified (leave-one-instance-out nearest-centroid
classification of RDMs) despite measurement noise and instance idiosyncrasies.

Here: small CNNs trained on scikit-learn's digits from several seeds; their responses at six
layers to a held-out stimulus set are measured with Gaussian noise (relative to each layer's
response spread, two repeats averaged), turned into correlation-distance RDMs, and identified
(a) from the RDMs themselves (plain RSA) and (b) from geo-topological transforms GT(l, u) of
the rank-transformed RDMs, with (l, u) chosen by nested leave-one-instance-out
cross-validation (tRSA). The claim is checked at the highest noise level.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability import (
    accuracy,
    gt_grid,
    identification_accuracy,
    layer_activations,
    rank_transform,
    rdm,
    select_geo_topological,
    train_classifier,
)
from neuronkit.interpretability.data import load_digits, noisy_responses

PAPER_RDM_NOISE = 0.4  # the reference code's highest RDM-entry noise level (x sd of all RDMs)
LAYERS = {"conv1": "1", "conv2": "3", "conv3": "6", "fc1": "10", "fc2": "12", "logits": "13"}


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),  # 1: conv1
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),  # 3: conv2
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),  # 6: conv3
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 64),
        nn.ReLU(),  # 10: fc1
        nn.Linear(64, 32),
        nn.ReLU(),  # 12: fc2
        nn.Linear(32, 10),  # 13: logits
    )


@reproduction(
    id="interpretability.trsa",
    paper="The Topology and Geometry of Neural Representations",
    claim=(
        "identifying which layer of a network produced noisy responses (networks from different "
        "seeds, leave-one-network-out): topological RSA (geo-topological transforms, nested "
        "selection of l and u) is well above chance and at least as accurate as plain RSA at the "
        "highest noise level"
    ),
    checks=[
        Check(
            "trsa_accuracy_over_chance",
            ">=",
            2.0,
            "tRSA layer-identification accuracy / chance at the highest noise ('well above "
            "chance' read as at least twice chance)",
        ),
        Check(
            "trsa_minus_rsa_accuracy",
            ">=",
            0.0,
            "tRSA minus plain-RSA accuracy at the highest noise level",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: one thread is fastest and immune to oversubscription
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    n_nets = 6 if quick else 12
    epochs = 6 if quick else 15
    per_class = 5 if quick else 8
    noise_levels = [0.0, 1.0, 2.0, 4.0]
    n_draws = 3 if quick else 10
    n_repeats = 2

    x, y = load_digits()
    order = ctx.rng.permutation(len(y))
    held_out, train = order[:300], order[300:]
    stim_idx = np.concatenate([held_out[y[held_out].numpy() == c][:per_class] for c in range(10)])
    stimuli = x[stim_idx]
    names = list(LAYERS)
    responses: list[list[np.ndarray]] = []
    test_acc = []
    for s in ctx.progress(range(n_nets), desc="train networks", total=n_nets):
        net = _cnn(ctx.seed * 1000 + s)
        train_classifier(
            net,
            x[train],
            y[train],
            epochs=epochs,
            batch_size=128,
            lr=3e-3,
            seed=ctx.seed * 1000 + s,
        )
        net.eval()
        test_acc.append(accuracy(net, x[held_out], y[held_out]))
        acts = layer_activations(net, stimuli, list(LAYERS.values()))
        responses.append([acts[LAYERS[n]].numpy() for n in names])

    labels = np.tile(np.arange(len(names)), n_nets)
    groups = np.repeat(np.arange(n_nets), len(names))
    chance = 1.0 / len(names)
    rows = []
    chosen_at_top: list[tuple[float, float]] = []
    grid_at_top: dict[tuple[float, float], list[float]] = {}
    for level in ctx.progress(noise_levels, desc="noise levels"):
        rsa_acc, rank_acc, trsa_acc = [], [], []
        for _ in range(n_draws):
            rdms = []
            for net_resp in responses:
                for resp in net_resp:
                    data, conditions, _ = noisy_responses(
                        resp, level, n_repeats=n_repeats, seed=ctx.rng
                    )
                    rdms.append(rdm(data, "correlation", conditions=conditions))
            stack = np.array(rdms)
            rsa_acc.append(identification_accuracy(stack, labels, groups))
            rank_acc.append(identification_accuracy(rank_transform(stack), labels, groups))
            sel = select_geo_topological(stack, labels, groups, grid=gt_grid(0.1), rank=True)
            trsa_acc.append(sel.accuracy)
            if level == noise_levels[-1]:
                chosen_at_top.extend(sel.chosen.values())
                for key, acc in sel.grid_accuracy.items():
                    grid_at_top.setdefault(key, []).append(acc)
        rows.append(
            {
                "noise (x response sd)": level,
                "plain RSA": round(float(np.mean(rsa_acc)), 4),
                "rank-RDM (GT 0,1)": round(float(np.mean(rank_acc)), 4),
                "tRSA (nested GT)": round(float(np.mean(trsa_acc)), 4),
                "chance": round(chance, 4),
            }
        )

    top = rows[-1]
    ctx.table("Layer identification accuracy (leave-one-network-out)", rows)
    ctx.metric("networks", n_nets)
    ctx.metric("stimuli", len(stim_idx))
    ctx.metric("layers", names)
    ctx.metric("network_test_accuracy_mean", round(float(np.mean(test_acc)), 4))
    ctx.metric("noise_draws_per_level", n_draws)
    ctx.metric("accuracy_by_noise", rows)
    keys, counts = np.unique(np.array(chosen_at_top), axis=0, return_counts=True)
    most = np.argsort(-counts, kind="stable")[:5]
    ctx.metric(
        "most_chosen_l_u_at_highest_noise",
        {f"({keys[i][0]:.1f}, {keys[i][1]:.1f})": int(counts[i]) for i in most},
    )
    ctx.note(
        f"{n_nets} CNNs trained on digits from different seeds (mean held-out accuracy "
        f"{np.mean(test_acc):.3f}); responses of {len(names)} layers to {len(stim_idx)} held-out "
        f"digits, measured {n_repeats} times with Gaussian noise of sd = level x the layer's "
        f"response sd, averaged; correlation-distance RDMs. Plain RSA classifies the RDM "
        f"vectors; tRSA classifies GT(l, u) of the rank-transformed RDMs with (l, u) chosen on "
        f"a 0.1 grid by inner leave-one-network-out accuracy. Accuracies averaged over "
        f"{n_draws} noise draws. The paper adds noise to RDM entries of a 10-layer CNN; here "
        f"the noise is added to the responses (a measurement model), and 'well above chance' "
        f"is read as at least twice chance."
    )

    # the reference code's noise model (doerlbh/TopologicalRSA, utils_analysis.get_dataset):
    # Gaussian noise on the RDM entries, sd = level x the sd of all RDMs, clipped at 0; reported
    # at its highest level (0.4), not checked (the claim reads noisy *responses*)
    clean = np.array([rdm(resp, "correlation") for net_resp in responses for resp in net_resp])
    paper_rsa, paper_trsa = [], []
    for _ in range(n_draws):
        noisy = clean + ctx.rng.normal(0.0, PAPER_RDM_NOISE * clean.std(), clean.shape)
        noisy = np.clip(noisy, 0.0, None)
        paper_rsa.append(identification_accuracy(noisy, labels, groups))
        sel = select_geo_topological(noisy, labels, groups, grid=gt_grid(0.1), rank=True)
        paper_trsa.append(sel.accuracy)
    paper = {"plain RSA": float(np.mean(paper_rsa)), "tRSA": float(np.mean(paper_trsa))}
    ctx.metric("rdm_entry_noise_0.4_accuracy", paper)
    ctx.note(
        f"With the reference code's noise model instead (Gaussian noise on the RDM entries, sd "
        f"{PAPER_RDM_NOISE} x the sd of all RDMs, clipped at 0, the paper's highest level; "
        f"{n_draws} draws, not checked): plain RSA {paper['plain RSA']:.3f}, tRSA "
        f"{paper['tRSA']:.3f}. Additive entry noise keeps each layer's overall dissimilarity "
        f"level, which identifies the layer and which the rank transform discards, so there "
        f"plain RSA "
        + ("wins" if paper["plain RSA"] > paper["tRSA"] else "does not win")
        + "; response noise instead pushes every correlation distance toward 1, which is what "
        "defeats plain RSA in the checked protocol."
    )

    gain_rank = top["rank-RDM (GT 0,1)"] - top["plain RSA"]
    gain_gt = top["tRSA (nested GT)"] - top["rank-RDM (GT 0,1)"]
    ctx.note(
        f"At the highest noise, tRSA exceeds plain RSA by "
        f"{top['tRSA (nested GT)'] - top['plain RSA']:+.3f}; of this, the rank transform alone "
        f"(GT(0, 1) of the rank-transformed RDM) accounts for {gain_rank:+.3f} and the selected "
        f"thresholds (l, u) for {gain_gt:+.3f}."
    )

    fig, axes = new_figure(1, 2, figsize=(9.0, 3.4))
    levels = [r["noise (x response sd)"] for r in rows]
    for curve, style in (
        ("plain RSA", "o-"),
        ("rank-RDM (GT 0,1)", "s--"),
        ("tRSA (nested GT)", "^-"),
    ):
        axes[0].plot(levels, [r[curve] for r in rows], style, label=curve)
    axes[0].axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
    axes[0].set_xlabel("noise sd / response sd")
    axes[0].set_ylabel("layer identification accuracy")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    grid = np.full((11, 11), np.nan)
    for (lo, hi), accs in grid_at_top.items():
        grid[round(hi * 10), round(lo * 10)] = float(np.mean(accs))
    im = axes[1].imshow(grid, origin="lower", extent=(-0.05, 1.05, -0.05, 1.05), vmin=0, vmax=1)
    axes[1].set_xlabel("lower quantile l")
    axes[1].set_ylabel("upper quantile u")
    axes[1].set_title(f"GT(l, u) accuracy, noise {levels[-1]:g}", fontsize=9)
    fig.colorbar(im, ax=axes[1])
    ctx.save_figure("layer_identification", fig)

    ctx.check("trsa_accuracy_over_chance", top["tRSA (nested GT)"] / chance)
    ctx.check("trsa_minus_rsa_accuracy", top["tRSA (nested GT)"] - top["plain RSA"])
