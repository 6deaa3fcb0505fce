"""Reproduction: lottery tickets with rewinding and linear mode connectivity.

Frankle, Dziugaite, Roy & Carbin (2019), "Stabilizing the Lottery Ticket Hypothesis", and
(2020), "Linear Mode Connectivity and the Lottery Ticket Hypothesis".

On the 8x8 digits with a small LeNet-style CNN (conv 8 - pool - conv 16 - pool - fc 32 - fc 10,
every conv/linear weight prunable, biases dense):

1. Iterative magnitude pruning, global, 20% of the remaining weights per round, with the
   survivors rewound to ``W_k`` (``k`` = 10% of training) after every round. At the
   first round with >= 85% sparsity (9 rounds: 86.6%) the rewound ticket must stay within 2
   points of the dense network and beat both controls by >= 3 points: the same mask from a
   random re-initialization trained from iteration 0, and a random mask with the ticket's
   per-layer sparsity rewound to ``W_k``.
2. Instability analysis: IMP is also run with ``k = 0`` (the original lottery ticket); for each
   ``k`` two copies of the ticket are trained from ``W_k`` with different data orders and the
   test error is measured at evenly spaced points of the linear path between them. The error
   barrier (max on the path minus the mean of the endpoints) at the largest ``k`` must not
   exceed the one at ``k = 0``.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.pruning.data import load_digits
from neuronkit.pruning.lottery import (
    TrainConfig,
    accuracy,
    iterative_magnitude_pruning,
    layer_sparsity,
    linear_mode_connectivity,
    random_masks_like,
    reinitialize,
    train,
    train_from,
)

LR = 0.05


def _lenet() -> nn.Module:
    """``[B, 1, 8, 8] -> [B, 10]``: conv8-pool-conv16-pool-fc32-fc10 (3,592 weights)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def _points(a: float) -> float:
    return 100.0 * a


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


@reproduction(
    id="pruning.lth_rewind",
    paper=(
        "Stabilizing the Lottery Ticket Hypothesis / Linear Mode Connectivity and the Lottery "
        "Ticket Hypothesis"
    ),
    claim=(
        "digits CNN, global IMP (20% of remaining per round) with rewinding to iteration k: at "
        ">= 85% sparsity the rewound ticket is within 2 points of dense accuracy and beats "
        "random reinitialization and a random mask (same per-layer sparsity) by >= 3 points "
        "each; the instability (error barrier along the linear path between two copies trained "
        "with different data orders) at the largest k is <= the instability at k = 0"
    ),
    checks=[
        Check("ticket_sparsity", ">=", 0.85, "fraction of prunable weights removed"),
        Check("ticket_minus_dense", ">=", -2.0, "accuracy points, rewound ticket - dense"),
        Check("ticket_minus_reinit", ">=", 3.0, "accuracy points, ticket - random reinit"),
        Check("ticket_minus_random_mask", ">=", 3.0, "accuracy points, ticket - random mask"),
        Check(
            "instability_kmax_minus_k0",
            "<=",
            0.0,
            "error-barrier points of the ticket at the largest k minus at k = 0",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: extra threads only add contention
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    n_seeds = 1 if quick else 3
    iterations = 160 if quick else 240  # about 7.6 / 11.4 epochs of 1347 images, batch 64
    rounds = 9 if quick else 12  # 86.6% / 93.1% sparsity
    check_round = 9  # the first round at >= 85% sparsity
    ks = [0, 16] if quick else [0, 8, 24]  # up to 10% of training
    control_rounds = [5, 9] if quick else [3, 6, 9, 12]
    points = 11 if quick else 31
    pairs = 2 if quick else 3
    config = TrainConfig(
        iterations=iterations, batch_size=64, lr=LR, momentum=0.9, milestones=(iterations * 3 // 4,)
    )
    k_max = max(ks)
    ctx.metric("train_config", {**config.__dict__, "milestones": list(config.milestones)})
    ctx.metric("rewind_iterations", ks)
    ctx.metric("rounds", rounds)
    ctx.metric("lmc_pairs", pairs)
    seeds = [int(s) for s in ctx.rng.integers(0, 2**31 - 1, size=n_seeds)]
    ctx.metric("seeds", seeds)

    dense_acc: list[float] = []
    curves: dict[int, list[list[float]]] = {k: [] for k in ks}
    sparsities: list[float] = []
    reinit: dict[int, list[float]] = {r: [] for r in control_rounds}
    randmask: dict[int, list[float]] = {r: [] for r in control_rounds}
    paths: dict[int, list[list[float]]] = {k: [] for k in ks}
    inst: dict[int, list[float]] = {k: [] for k in ks}
    rows = []
    t0 = time.perf_counter()
    for seed in ctx.progress(seeds, desc="seeds"):
        data = load_digits(0.25, seed=seed % 1000)
        xtr, ytr, xte, yte = data.x_train, data.y_train, data.x_test, data.y_test
        torch.manual_seed(seed)
        model = _lenet()
        # one dense run from W_0, saving W_k for every k; every IMP run shares it (round 0)
        net = copy.deepcopy(model)
        saved = train(net, xtr, ytr, config, data_seed=seed, checkpoints=(*ks, iterations))
        dense_acc.append(accuracy(net, xte, yte))
        results = {}
        for k in ks:
            res = iterative_magnitude_pruning(
                model,
                xtr,
                ytr,
                config,
                rounds=rounds,
                rewind_iteration=k,
                data_seed=seed,
                x_eval=xte,
                y_eval=yte,
                dense=(saved[iterations], saved[k]),
            )
            results[k] = res
            curves[k].append(res.accuracies)
            ctx.log(
                f"seed {seed} k={k}: dense {res.accuracies[0]:.3f}, "
                f"round {check_round} ({res.sparsities[check_round]:.3f}) "
                f"{res.accuracies[check_round]:.3f}"
            )
        sparsities = results[k_max].sparsities
        ticket = results[k_max]
        for r in control_rounds:
            masks = ticket.masks[r]
            fresh = reinitialize(model, seed=seed + 1)
            net = train_from(
                model,
                fresh.state_dict(),
                xtr,
                ytr,
                config,
                masks=masks,
                start_iteration=0,
                data_seed=seed,
            )
            reinit[r].append(accuracy(net, xte, yte))
            net = train_from(
                model,
                ticket.rewind_state,
                xtr,
                ytr,
                config,
                masks=random_masks_like(masks, seed=seed + 2),
                start_iteration=k_max,
                data_seed=seed,
            )
            randmask[r].append(accuracy(net, xte, yte))
        for k in ks:
            k_paths, k_inst = [], []
            for pair in range(pairs):  # replicate pairs of copies (the paper uses three)
                lmc = linear_mode_connectivity(
                    model,
                    results[k].rewind_state,
                    xtr,
                    ytr,
                    xte,
                    yte,
                    config,
                    start_iteration=k,
                    masks=results[k].masks[check_round],
                    data_seeds=(seed + 101 + 2 * pair, seed + 102 + 2 * pair),
                    points=points,
                )
                k_paths.append([_points(e) for e in lmc.errors.tolist()])
                k_inst.append(_points(lmc.instability))
            paths[k].append(np.mean(k_paths, axis=0).tolist())
            inst[k].append(_mean(k_inst))
        rows.append(
            {
                "seed": seed,
                "dense": dense_acc[-1],
                **{f"ticket_k{k}": results[k].accuracies[check_round] for k in ks},
                "reinit": reinit[check_round][-1],
                "random_mask": randmask[check_round][-1],
                **{f"instability_k{k}": inst[k][-1] for k in ks},
            }
        )
    ctx.metric("experiment_seconds", round(time.perf_counter() - t0, 2))

    dense = _mean(dense_acc)
    acc = {k: np.mean(curves[k], axis=0) for k in ks}
    ticket_acc = float(acc[k_max][check_round])
    ctx.metric("sparsity_per_round", [round(s, 4) for s in sparsities])
    ctx.metric("dense_accuracy", dense)
    ctx.metric("ticket_accuracy_per_round", {f"k={k}": acc[k].tolist() for k in ks})
    ctx.metric("reinit_accuracy", {str(r): _mean(v) for r, v in reinit.items()})
    ctx.metric("random_mask_accuracy", {str(r): _mean(v) for r, v in randmask.items()})
    ctx.metric("instability_points", {f"k={k}": _mean(v) for k, v in inst.items()})
    ctx.metric("layer_sparsity_k_max", layer_sparsity(results[k_max].masks[check_round]))
    ctx.table("Per seed: test accuracy at round 9 and instability (error points)", rows)
    ctx.check("ticket_sparsity", sparsities[check_round])
    ctx.check("ticket_minus_dense", 100.0 * (ticket_acc - dense))
    ctx.check("ticket_minus_reinit", 100.0 * (ticket_acc - _mean(reinit[check_round])))
    ctx.check("ticket_minus_random_mask", 100.0 * (ticket_acc - _mean(randmask[check_round])))
    # errors are multiples of 1/len(test set): round away float noise so an exact tie is 0
    ctx.check("instability_kmax_minus_k0", round(_mean(inst[k_max]) - _mean(inst[0]), 9))

    pct = [100.0 * (1.0 - s) for s in sparsities]
    fig, ax = new_figure(figsize=(6, 3.8))
    ax.axhline(100 * dense, color="k", ls="--", lw=1, label="dense")
    for k in ks:
        ax.plot(pct, 100 * acc[k], "o-", ms=3, label=f"IMP, rewind to k={k}")
    cr = [100.0 * (1.0 - sparsities[r]) for r in control_rounds]
    ax.plot(cr, [100 * _mean(reinit[r]) for r in control_rounds], "s--", label="random reinit")
    ax.plot(cr, [100 * _mean(randmask[r]) for r in control_rounds], "^--", label="random mask")
    ax.set_xscale("log")
    ticks = pct[::3]
    ax.set_xticks(ticks, [f"{t:.1f}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Digits CNN, global IMP (mean of {n_seeds} seed(s))")
    ax.legend(fontsize=7)
    ctx.save_figure("accuracy_vs_sparsity", fig)

    fig, ax = new_figure(figsize=(5.5, 3.5))
    alphas = np.linspace(0.0, 1.0, points)
    for k in ks:
        ax.plot(
            alphas,
            np.mean(paths[k], axis=0),
            "o-",
            ms=3,
            label=f"k={k} (instability {_mean(inst[k]):.2f})",
        )
    ax.set_xlabel("interpolation alpha")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"Ticket at {100 * sparsities[check_round]:.1f}% sparsity: linear path")
    ax.legend(fontsize=7)
    ctx.save_figure("interpolation_error", fig)

    ctx.note(
        f"Instability (test-error points) per k: "
        f"{', '.join(f'k={k}: {_mean(inst[k]):.2f}' for k in ks)}; one test image is "
        f"{100.0 / len(yte):.2f} points. In this small network trained at lr {LR} the k = 0 "
        f"ticket is already close to stable (the LMC paper reports the same for LeNet on "
        f"MNIST), so the instability check compares small numbers near the test set's "
        f"resolution; it is a weak test of the paper's effect, which needs deep networks at "
        f"high learning rate (ResNet-20, VGG-16) where the k = 0 barrier is large."
    )
    ctx.note(
        f"Ticket accuracy at round {check_round}: "
        f"{', '.join(f'k={k}: {100 * acc[k][check_round]:.1f}%' for k in ks)} "
        f"(dense {100 * dense:.1f}%). Here rewinding to W_0 (the original lottery ticket) "
        f"already finds a matching ticket, as Frankle & Carbin found for small networks; the "
        f"Stabilizing paper's failure of k = 0 at scale is not exercised. The controls fall "
        f"towards chance at this sparsity: a random mask or a fresh initialization keeps the "
        f"dense initializer's scale, so (likely) the signal shrinks with the density through "
        f"the four layers and {iterations * 64 / len(ytr):.1f} epochs do not recover it, while "
        f"the magnitude-selected ticket "
        f"keeps the large weights. The controls' margins depend on the initializer, which "
        f"here is PyTorch's default (about 1/6 of kaiming-normal's variance); open_lth "
        f"initializes with kaiming-normal and keeps LeNet's output layer dense. Measured "
        f"outside this run (three seeds, round 9): with Glorot-normal init the controls reach "
        f"19-46%, and with kaiming-normal, a dense output layer and open_lth's LeNet optimizer "
        f"(SGD lr 0.1) 36-80% against tickets of 92-94%, so the ticket still wins by 3 or more "
        f"points, but by far less than here; with that recipe one seed's ticket falls 3.8 "
        f"points below dense."
    )
    ctx.note(
        f"Network: conv8-pool-conv16-pool-fc32-fc10 on 8x8 digits (75/25 stratified split); "
        f"SGD momentum 0.9, lr {LR}, batch 64, {iterations} iterations, lr x0.1 at "
        f"{config.milestones[0]}. IMP prunes 20% of the remaining conv+linear weights per round, "
        f"ranked globally by magnitude; biases stay dense. Rewinding resets all surviving "
        f"weights and biases to W_k and resumes the schedule and data order at iteration k with "
        f"a fresh optimizer (open_lth). Controls at each control round: the same mask on a "
        f"fresh initialization trained from iteration 0 (so it gets k more steps than the "
        f"ticket), and a random mask with the ticket's per-layer sparsity rewound to W_k. "
        f"Instability: two copies of each k's own IMP ticket (round {check_round}) trained "
        f"from W_k with different data orders; test error at {points} evenly spaced points; "
        f"barrier = max - mean of the endpoints, averaged over {pairs} pairs of copies per k "
        f"and over seeds."
    )
