"""Reproduction: lottery tickets with rewinding and linear mode connectivity.

Frankle, Dziugaite, Roy & Carbin (2019), "Stabilizing the Lottery Ticket Hypothesis", and
(2020), "Linear Mode Connectivity and the Lottery Ticket Hypothesis".

On the 8x8 digits with a small LeNet-style CNN (conv 8 - pool - conv 16 - pool - fc 32 - fc 10)
trained with the authors' recipe for their small (MNIST LeNet) model in ``open_lth``
(``models/mnist_lenet.py`` ``default_hparams``): kaiming-normal weights
(``models/initializers.py``), plain SGD at learning rate 0.1 without momentum, weight decay or
schedule, batch 128, 40 epochs; global magnitude pruning of 20% of the remaining weights per
round with the output layer left dense (``pruning_layers_to_ignore='fc.weight'``).

1. Iterative magnitude pruning with the survivors rewound to ``W_k`` (``k`` = 10% of
   training) after every round. At the first round with >= 85% sparsity of all conv/linear
   weights (the output layer counted, dense, as in open_lth's sparsity report) the rewound
   ticket must stay within 2 points of the dense network and beat both controls by >= 3
   points: the same mask on a fresh kaiming-normal initialization trained from iteration
   ``k`` (open_lth's ``randomly_reinitialize`` branch), and a random mask with the ticket's
   per-layer sparsity rewound to ``W_k`` (open_lth's ``randomly_prune``, ``layerwise``).
2. Instability analysis: IMP is also run with ``k = 0`` (the original lottery ticket); for each
   ``k`` two copies of the ticket are trained from ``W_k`` with different data orders and the
   test error is measured at evenly spaced points of the linear path between them. The error
   barrier (max on the path minus the mean of the endpoints) at the largest ``k`` must not
   exceed the one at ``k = 0``.
"""

from __future__ import annotations

import copy
import math
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
    prunable_weights,
    random_masks_like,
    reinitialize,
    train,
    train_from,
)

# open_lth models/mnist_lenet.py default_hparams: SGD, lr 0.1 (momentum 0.0, no weight decay
# and no milestones: the TrainingHparams defaults), batch 128, 40 epochs
LR = 0.1
BATCH = 128
EPOCHS = 40
OUTPUT_LAYER = "9.weight"  # pruning_layers_to_ignore='fc.weight' in open_lth
TARGET_SPARSITY = 0.85


def _kaiming_normal(module: nn.Module) -> None:
    """open_lth's ``kaiming_normal`` initializer: conv/linear weights only (biases keep
    PyTorch's default draw)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight)


def _lenet() -> nn.Module:
    """``[B, 1, 8, 8] -> [B, 10]``: conv8-pool-conv16-pool-fc32-fc10 (3,592 weights),
    initialized as open_lth does (``model.apply(kaiming_normal)``)."""
    net = nn.Sequential(
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
    net.apply(_kaiming_normal)
    return net


def _train_config(iterations: int) -> TrainConfig:
    """open_lth's mnist_lenet training hparams: plain SGD (momentum 0.0 and no weight decay,
    the TrainingHparams defaults), constant lr 0.1 (no milestones, no warmup), batch 128."""
    return TrainConfig(
        iterations=iterations, batch_size=BATCH, lr=LR, momentum=0.0, weight_decay=0.0
    )


def _network_sparsity(masks: dict[str, torch.Tensor], n_weights: int) -> float:
    """Pruned fraction of all ``n_weights`` conv/linear weights (unmasked layers count as
    dense), open_lth's ``Mask.sparsity`` with the ignored output layer's all-ones mask."""
    return sum(int((~m).sum()) for m in masks.values()) / n_weights


def _rounds_to_reach(target: float, n_prunable: int, n_weights: int, fraction: float) -> int:
    """The first IMP round whose network sparsity is >= ``target`` (ceil per round, as IMP)."""
    kept, r = n_prunable, 0
    while (n_weights - n_prunable + kept) / n_weights > 1.0 - target:
        kept -= math.ceil(fraction * kept)  # as global_magnitude_prune
        r += 1
    return r


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
        Check(
            "ticket_sparsity",
            ">=",
            0.85,
            "fraction of conv/linear weights removed (the dense output layer included)",
        ),
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
    n_train = len(load_digits(0.25, seed=0).y_train)  # the stratified split's size is fixed
    iterations = EPOCHS * -(-n_train // BATCH)  # 40 epochs: 440 iterations of batch 128
    probe = _lenet()
    n_weights = sum(dict(probe.named_parameters())[n].numel() for n in prunable_weights(probe))
    n_prunable = sum(
        dict(probe.named_parameters())[n].numel()
        for n in prunable_weights(probe, ignore=(OUTPUT_LAYER,))
    )
    # the first round at >= 85% sparsity of all conv/linear weights (13 rounds: 86.1%)
    check_round = _rounds_to_reach(TARGET_SPARSITY, n_prunable, n_weights, 0.2)
    rounds = check_round if quick else check_round + 3
    ks = [0, iterations // 10] if quick else [0, iterations // 30, iterations // 10]
    control_rounds = (
        [check_round // 2, check_round]
        if quick
        else [check_round // 4, check_round // 2, check_round, rounds]
    )
    points = 11 if quick else 31
    pairs = 2 if quick else 3
    config = _train_config(iterations)
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
                ignore=(OUTPUT_LAYER,),
                dense=(saved[iterations], saved[k]),
            )
            results[k] = res
            curves[k].append(res.accuracies)
            ctx.log(
                f"seed {seed} k={k}: dense {res.accuracies[0]:.3f}, round {check_round} "
                f"({_network_sparsity(res.masks[check_round], n_weights):.3f}) "
                f"{res.accuracies[check_round]:.3f}"
            )
        ticket = results[k_max]
        sparsities = [_network_sparsity(m, n_weights) for m in ticket.masks]
        for r in control_rounds:
            masks = ticket.masks[r]
            # open_lth randomly_reinitialize: a new model from the same initializer, trained
            # from the rewinding step (start_at_step_zero=False is its default)
            fresh = reinitialize(model, seed=seed + 1, init=_kaiming_normal)
            net = train_from(
                model,
                fresh.state_dict(),
                xtr,
                ytr,
                config,
                masks=masks,
                start_iteration=k_max,
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
    ctx.metric("check_round", check_round)
    ctx.table(
        f"Per seed: test accuracy at round {check_round} and instability (error points)", rows
    )
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
        f"{100.0 / len(yte):.2f} points. The LMC paper finds LeNet on MNIST stable already at "
        f"k = 0, so on a network this small the instability check compares small numbers near "
        f"the test set's resolution; it is a weak test of the paper's effect, which needs deep "
        f"networks (ResNet-20, VGG-16) where the k = 0 barrier is large."
    )
    ctx.note(
        f"Ticket accuracy at round {check_round} "
        f"({100 * sparsities[check_round]:.1f}% of all conv/linear weights pruned, "
        f"{100 * (1 - (1 - 0.2) ** check_round):.1f}% of the prunable ones): "
        f"{', '.join(f'k={k}: {100 * acc[k][check_round]:.1f}%' for k in ks)} "
        f"(dense {100 * dense:.1f}%); random reinit "
        f"{100 * _mean(reinit[check_round]):.1f}%, random mask "
        f"{100 * _mean(randmask[check_round]):.1f}%. Per seed: see the table."
    )
    ctx.note(
        f"Recipe (open_lth models/mnist_lenet.py default_hparams, the authors' small-model "
        f"recipe): conv8-pool-conv16-pool-fc32-fc10 on 8x8 digits (75/25 stratified split), "
        f"conv/linear weights kaiming-normal, biases PyTorch default; plain SGD lr {LR}, "
        f"momentum 0, no weight decay, constant learning rate, batch {BATCH}, {EPOCHS} epochs "
        f"({iterations} iterations). IMP prunes 20% of the remaining conv and hidden linear "
        f"weights per round, ranked globally by magnitude; the output layer and the biases "
        f"stay dense (pruning_layers_to_ignore='fc.weight'), and sparsity counts every "
        f"conv/linear weight, the dense output layer included (open_lth's sparsity report). "
        f"Rewinding resets all surviving weights and biases to W_k and resumes the data order "
        f"at iteration k with a fresh optimizer (open_lth). Controls at each control round "
        f"(open_lth branches): randomly_reinitialize, the same mask on a fresh kaiming-normal "
        f"initialization trained from iteration k; randomly_prune (layerwise), a random mask "
        f"with the ticket's per-layer sparsity on W_k trained from k. Instability: two copies "
        f"of each k's own IMP ticket (round {check_round}) trained from W_k with different "
        f"data orders; test error at {points} evenly spaced points; barrier = max - mean of "
        f"the endpoints, averaged over {pairs} pairs of copies per k and over seeds."
    )
    ctx.note(
        "Kept where open_lth differs from the papers' text: the random-mask control starts "
        "from W_k itself (open_lth's randomly_prune loads the level's saved W_k, already "
        "multiplied by the IMP mask, so its surviving weights outside the IMP mask start at "
        "0); sparse_global prunes ceil(0.2 * remaining) + 1 weights per round (threshold at "
        "that sorted index, strict >), here exactly ceil(0.2 * remaining). open_lth has no "
        "instability code; the LMC paper's barrier is on test error along 30 evenly spaced "
        "points (here 11 in quick mode, 31 in full mode)."
    )
