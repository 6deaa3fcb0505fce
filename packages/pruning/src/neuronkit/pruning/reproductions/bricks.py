"""Reproduction: emergent and customized bricks of a tiny multi-task transformer.

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective".

1. A tiny transformer (2 pre-LN blocks, ReLU FFNs) is trained on three synthetic token tasks
   marked by a task token (sort, the digit map ``3x + 1 mod 10``, neighbour maximum), with an
   L1 penalty on the FFN activations so that the FFNs reach the sparse activation regime the
   paper builds on (ProSparse-style).
2. Emergent bricks: per layer, the FFN neurons' co-activation graph on training tokens is
   partitioned by spectral clustering (``2 * n_tasks`` partitions per layer); each partition
   is owned by the task holding more than half of its activation frequency, or shared.
   Ablating a task's partitions (all layers at once) is compared on the test set with the
   damage on the other tasks, and with random ablations of the same size.
3. Routing (MoEfication): every FFN is split into 16 equal experts by balanced k-means of its
   normalised key vectors, a per-token MLP router is trained to predict each expert's
   activation mass, and routed inference keeps the top 8 of 16 experts (50% of the neurons).
4. Growing is exercised as a metric: every FFN grows by 25% neurons with function-preserving
   initialisation and the logits must not move. (Merging of customized bricks is covered by
   the unit tests of :mod:`neuronkit.pruning.bricks.merging`.)

Checks: ablating a task's partition hurts that task >= 3x more than the mean of the others
(minimum over tasks); routed inference with 50% of FFN neurons keeps >= 95% of the accuracy.
"""

from __future__ import annotations

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.pruning.bricks import (
    BrickDiscovery,
    BrickTransformer,
    MoEfication,
    ablation_damage,
    grow_model,
    make_task_data,
    own_over_other_damage,
    random_ablation_masks,
    task_accuracy,
    train_multitask,
)


@reproduction(
    id="pruning.bricks",
    paper="Configurable Foundation Models: Building LLMs from a Modular Perspective",
    claim=(
        "in a tiny transformer trained on >= 3 synthetic tasks, ablating a task's emergent "
        "FFN partition hurts that task >= 3x more than the others; routed inference "
        "(MoEfication) with 50% of FFN neurons keeps >= 95% of accuracy"
    ),
    checks=[
        Check(
            "own_over_other_ablation_damage",
            ">=",
            3.0,
            "min over tasks of own-task accuracy drop / mean drop of the other tasks",
        ),
        Check(
            "routed_accuracy_retention",
            ">=",
            0.95,
            "routed (50% of FFN neurons) / dense mean task accuracy",
        ),
    ],
    seed=0,
    threads=1,  # a 32-wide transformer: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        steps, n_train, n_test = 1200, 4000, 500
        alt_splits: tuple[str, ...] = ("random",)
    else:
        steps, n_train, n_test = 3000, 8000, 2000
        alt_splits = ("coactivation", "random")
    d_model, d_ff = 32, 128
    # one task per kind of computation: order statistics, a digit lookup table, a local
    # comparison (see the note on tasks that share a computation)
    tasks = ("sort", "affine", "neighbor_max")
    seq_len, n_digits, batch, lr, l1 = 6, 10, 64, 5e-3, 0.05
    n_partitions = 2 * len(tasks)
    n_experts, keep = 16, 0.5
    s_data, s_test, s_model, s_train, s_fit = (int(s) for s in ctx.rng.integers(0, 2**31 - 1, 5))

    train = make_task_data(tasks, n_train, seq_len=seq_len, n_digits=n_digits, seed=s_data)
    test = make_task_data(tasks, n_test, seq_len=seq_len, n_digits=n_digits, seed=s_test)
    fit = train.subset(torch.arange(0, len(train), 8))  # 1/8 of the training sequences

    ctx.log(f"training on {tasks} ({steps} steps)")
    torch.manual_seed(s_model)
    model = BrickTransformer(
        train.vocab_size, seq_len + 1, d_model=d_model, n_heads=4, n_layers=2, d_ff=d_ff
    )
    hist = train_multitask(
        model, train, steps=steps, batch_size=batch, lr=lr, seed=s_train % 10_000, activation_l1=l1
    )
    base = task_accuracy(model, test)
    ctx.metric("dense_accuracy", {t: round(float(a), 4) for t, a in zip(tasks, base)})
    ctx.metric("train_loss", [round(v, 4) for v in hist.loss])

    # --- emergent bricks -------------------------------------------------------------------
    ctx.log("discovering partitions")
    disc = BrickDiscovery(n_partitions, min_share=0.5, seed=s_fit % 10_000).fit(model, fit)
    freq = [f.mean().item() for f in disc.frequency_]
    ctx.metric("mean_activation_frequency", [round(f, 4) for f in freq])
    own_masks = [disc.task_masks(t) for t in range(len(tasks))]
    damage = ablation_damage(model, test, own_masks, base=base)
    ratios = own_over_other_damage(damage)
    sizes = [[int(m.sum()) for m in masks] for masks in own_masks]
    rand_masks = [
        random_ablation_masks(sz, [f.d_ff for f in model.ffns], seed=s_fit % 10_000 + i)
        for i, sz in enumerate(sizes)
    ]
    rand_damage = ablation_damage(model, test, rand_masks, base=base)
    rows = []
    for t, name in enumerate(tasks):
        others = [s for s in range(len(tasks)) if s != t]
        rows.append(
            {
                "task": name,
                "partitions_per_layer": [int((o == t).sum()) for o in disc.partition_tasks_],
                "neurons_per_layer": sizes[t],
                "own_damage": round(float(damage[t, t]), 4),
                "mean_other_damage": round(float(damage[t, others].mean()), 4),
                "ratio": round(float(ratios[t]), 3),
                "random_same_size_mean_damage": round(float(rand_damage[t].mean()), 4),
            }
        )
    ctx.table("Ablating each task's emergent partitions (test accuracy drop)", rows)
    ctx.metric("ablation_ratio_per_task", {t: round(float(r), 3) for t, r in zip(tasks, ratios)})
    ctx.metric("shared_partitions_per_layer", [int((o < 0).sum()) for o in disc.partition_tasks_])

    # --- routing (MoEfication) -------------------------------------------------------------
    ctx.log("MoEfication")
    fractions = (0.125, 0.25, 0.5, 0.75)
    curves: dict[str, list[float]] = {}
    moe = MoEfication(n_experts, method="param", router_epochs=10, seed=s_fit % 10_000).fit(
        model, fit
    )
    routed = task_accuracy(model, test, moe.gates(keep))
    retention = float(routed.mean() / base.mean())
    curves["param split, learned router"] = [
        float(task_accuracy(model, test, moe.gates(f)).mean() / base.mean()) for f in fractions
    ]
    curves["param split, oracle selection"] = [
        float(task_accuracy(model, test, moe.oracle_gates(model, f)).mean() / base.mean())
        for f in fractions
    ]
    ctx.metric("routed_accuracy", {t: round(float(a), 4) for t, a in zip(tasks, routed)})
    ctx.metric("routed_neuron_fraction", moe.neuron_fraction(keep))
    ctx.metric("router_recall_at_50pct", [round(r, 4) for r in moe.recall(model, test, keep)])
    for method in alt_splits:
        alt = MoEfication(n_experts, method=method, router_epochs=10, seed=s_fit % 10_000).fit(
            model, fit
        )
        curves[f"{method} split, learned router"] = [
            float(task_accuracy(model, test, alt.gates(f)).mean() / base.mean()) for f in fractions
        ]
    ctx.table(
        "Routed inference: retained fraction of dense mean accuracy",
        [
            {"experts": name, **{f"keep_{f:g}": round(v, 4) for f, v in zip(fractions, vals)}}
            for name, vals in curves.items()
        ],
    )

    # --- growing ---------------------------------------------------------------------------
    tok = test.tokens
    grown = model
    for layer in range(len(model.ffns)):
        grown, _ = grow_model(grown, layer, d_ff // 4, method="zero", seed=layer)
    with torch.no_grad():
        diff = float((grown(tok) - model(tok)).abs().max())
    ctx.metric("grown_d_ff", [f.d_ff for f in grown.ffns])
    ctx.metric("grown_max_abs_logit_change", diff)

    min_ratio = float(ratios.min())
    ctx.check("own_over_other_ablation_damage", min_ratio)
    ctx.check("routed_accuracy_retention", retention)
    _figures(ctx, tasks, damage, disc, curves, fractions)
    ctx.note(
        f"Model: {len(model.ffns)} pre-LN blocks, d_model {d_model}, 4 heads, ReLU FFNs with "
        f"{d_ff} neurons, bidirectional attention; sequences [TASK, x_1..x_{seq_len}] over "
        f"{n_digits} digits, one output digit per position. Tasks: {', '.join(tasks)}. "
        f"Trained {steps} steps (AdamW {lr:g}, batch {batch}, cosine) with an L1 penalty "
        f"{l1:g} * sum_l mean(h_l) on the FFN activations: without it the 128-neuron FFNs of "
        "the quick model fire on ~20-60% of tokens, most neurons are shared by all tasks and "
        "most tasks own no partition whose ablation matters (first trials without the "
        "penalty); with it they fire on "
        f"{100 * freq[0]:.0f}% / {100 * freq[1]:.0f}% of tokens (layers 1/2), closer to the "
        "sparse activation of the LLMs the paper analyses."
    )
    ctx.note(
        f"Emergent bricks: per layer, spectral clustering (sklearn) of the co-activation "
        f"graph (cosine of binary firing patterns on {len(fit)} training sequences) into "
        f"{n_partitions} = 2 x n_tasks partitions; a partition belongs to a task holding > 50% "
        "of its summed per-task activation frequency, otherwise it is shared. A task's brick "
        "is the union of its partitions over both layers. The ratio divides the own-task "
        "accuracy drop by the mean drop of the other tasks, floored at 0.01 (one point). "
        "The partition count 2 x n_tasks is a fixed rule, not searched per run; in trials, "
        "6-8 partitions gave stable ratios while 12-24 split a task's neurons over more, "
        "partly shared clusters and the ratio became unstable."
    )
    ctx.note(
        "Routing follows MoEfication's reference code: balanced k-means (exact balanced "
        "assignment by scipy's linear_sum_assignment) of the L2-normalised key vectors into "
        f"{n_experts} experts; router x/|x| -> Linear(d, K) (initialised with the experts' mean "
        "keys) -> tanh -> Linear(K, K) (identity), BCE on each expert's positive activation "
        "mass divided by the batch maximum, 10 epochs of Adam 1e-2 on the FFN inputs of the "
        "training tokens. Routed inference gates all layers at once (layer 2's router sees "
        "the input produced by the routed layer 1). The co-activation split (full mode) uses a "
        "spectral embedding of the co-activation graph and the same balanced k-means in place "
        "of METIS."
    )
    ctx.note(
        "Task choice: each task needs its own kind of nonlinear FFN computation. Earlier "
        "quick trials (same recipe, 4 tasks) showed what happens otherwise: 'reverse' is pure "
        "attention routing and owned no FFN partition (ratio 0, the other tasks 7.5-37.6); "
        "'count' shares the counting neurons of 'sort' and 'x^2 mod 10' shares the digit "
        "lookup neurons of '3x+1 mod 10', so in those trials one of each pair owned no "
        "partition (ratio 0-0.1) while the other tasks kept ratios of 3.6-40. Tasks that "
        "share a function share a brick; the claim is tested on tasks with distinct functions. "
        "An audit (quick seeds 0-7) found that 'affine' does not always need the FFNs: with "
        "every FFN neuron of both layers removed it loses only 14-19 points at seeds 1, 2, 5, "
        "6 and 7 (37-50 at seeds 0, 3, 4), and the ablation ratio holds at seeds 0, 2, 3 and 4 "
        "only (10.5, 3.17, 3.55, 5.51; seeds 1, 5, 6, 7: 0.73, 2.10, 0.00, 0.00). Other ways "
        "of picking a task's neurons (per-neuron majority, equal-size co-activation "
        "partitions) fail on the same seeds."
    )
    if not ctx.quick:
        ctx.note(
            "Full mode trains the same architecture longer on more data and evaluates on more "
            "sequences. A first full-mode design widened the model instead (d_model 64, 256 "
            "FFN neurons, 4000 steps, same L1 weight): routing kept 100% at 50% of the neurons, "
            "but the FFNs became far sparser (0.9% / 1.1% of tokens) and 'neighbor_max' lost "
            "its brick (its 29 owned neurons cost it 1.7 points; ratio 1.7, sort 17.4, affine "
            "8.4): at a width far beyond what the tasks need, each task is carried redundantly "
            "and the claim needs the L1 weight rescaled with width, which was not explored."
        )
    if min_ratio < 3.0:
        w = int(ratios.argmin())
        ctx.note(
            f"The ablation claim does not hold for '{tasks[w]}' in this run (ratio "
            f"{min_ratio:.2f}): ablating the {sum(sizes[w])} neurons of its partitions drops "
            f"its accuracy by only {100 * float(damage[w, w]):.1f} points (random ablations of "
            f"the same size: {100 * float(rand_damage[w].mean()):.2f} points on average), so "
            "most of what it needs is carried by neurons outside the partitions it owns. With "
            f"this width the FFNs fire on {100 * freq[0]:.1f}% / {100 * freq[1]:.1f}% of tokens."
        )


def _figures(
    ctx: RunContext,
    tasks: tuple[str, ...],
    damage: torch.Tensor,
    disc: BrickDiscovery,
    curves: dict[str, list[float]],
    fractions: tuple[float, ...],
) -> None:
    fig, ax = new_figure()
    im = ax.imshow(100 * damage.numpy(), cmap="magma")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, fontsize=7)
    ax.set_yticks(range(len(tasks)), [f"ablate {t}" for t in tasks], fontsize=7)
    ax.set_xlabel("evaluated task")
    fig.colorbar(im, ax=ax, label="accuracy drop (points)")
    ctx.save_figure("ablation_damage", fig)

    fig, axes = new_figure(1, len(disc.frequency_))
    axes = np.atleast_1d(axes)
    for layer, (ax, f, lab) in enumerate(zip(axes, disc.frequency_, disc.labels_)):
        order = np.argsort(lab, kind="stable")
        ax.imshow(f.numpy()[:, order], aspect="auto", cmap="viridis", interpolation="nearest")
        bounds = np.flatnonzero(np.diff(lab[order])) + 0.5
        for b in bounds:
            ax.axvline(b, color="w", lw=0.6)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=7)
        ax.set_xlabel(f"layer {layer + 1} neurons (sorted by partition)")
    fig.suptitle("activation frequency per task", fontsize=9)
    ctx.save_figure("activation_frequency", fig)

    fig, ax = new_figure()
    for name, vals in curves.items():
        ax.plot([100 * f for f in fractions], vals, "o-", label=name)
    ax.axhline(0.95, color="k", ls=":", label="95% threshold")
    ax.set_xlabel("FFN neurons computed per token (%)")
    ax.set_ylabel("accuracy retained")
    ax.legend(fontsize=7)
    ctx.save_figure("routed_retention", fig)
