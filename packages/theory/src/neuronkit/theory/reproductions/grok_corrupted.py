"""Reproduction: memorization and generalization coexist, IPR pruning, weight decay unlearns.

Doshi, Das, He & Gromov (ICLR 2024), "To grok or not to grok". Modular addition with a fraction
of corrupted training labels, the authors' quadratic MLP and full-batch AdamW on the MSE:

1. with a small weight decay the network memorizes the corrupted labels *and* generalizes;
2. pruning its low-IPR (memorizing) neurons, cut at Otsu's threshold of the IPR distribution
   (no labels used), removes the memorized labels and keeps the test accuracy;
3. with a large weight decay the corrupted labels are not fitted (unlearned) while the test
   accuracy stays high.
"""

from __future__ import annotations

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory import (
    QuadraticMLP,
    TrainingHistory,
    corrupted_accuracies,
    lowest_ipr_neurons,
    modular_arithmetic,
    neuron_ipr,
    prune_neurons,
    split_threshold,
    train_modular,
)


@reproduction(
    id="theory.grok_corrupted",
    paper=(
        "To grok or not to grok: Disentangling generalization and memorization on corrupted "
        "algorithmic datasets"
    ),
    claim=(
        "100% clean test accuracy while memorizing corrupted labels; pruning the lowest-IPR "
        "neurons drops corrupted-train accuracy by >= 50 points while test stays >= 95%; "
        "weight decay unlearns the corrupted labels"
    ),
    checks=[
        Check("coexist_test_acc", ">=", 1.0, "test accuracy of the memorizing network (all pairs)"),
        Check("coexist_corrupted_acc", ">=", 0.9, "its accuracy on the corrupted training labels"),
        Check("prune_corrupted_drop", ">=", 50.0, "points lost on corrupted labels by IPR pruning"),
        Check("prune_test_acc", ">=", 0.95, "test accuracy after pruning"),
        Check(
            "unlearn_peak_corrupted_acc",
            ">=",
            0.9,
            "best corrupted-label accuracy in the weight-decay run (memorized first)",
        ),
        Check(
            "unlearn_corrupted_acc", "<=", 0.1, "corrupted-label accuracy with large weight decay"
        ),
        Check("unlearn_test_acc", ">=", 0.95, "test accuracy with large weight decay"),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        p, width, fraction, corruption = 41, 256, 0.8, 0.15
        steps, wd_small, wd_large, unlearn_steps = 500, 1.0, 10.0, 300
    else:  # the reference notebook's setting, except the coexistence weight decay (0 there)
        p, width, fraction, corruption = 97, 500, 0.5, 0.35
        steps, wd_small, wd_large, unlearn_steps = 1000, 1.0, 15.0, 500
    seed_data, seed_model = (int(s) for s in ctx.rng.integers(0, 2**31, size=2))
    data = modular_arithmetic(p, train_fraction=fraction, corruption=corruption, seed=seed_data)
    for key, value in {
        "p": p,
        "width": width,
        "train_fraction": fraction,
        "corruption": data.corruption,
        "train_pairs": int(data.train_idx.numel()),
        "test_pairs": int(data.test_idx.numel()),
        "steps": steps,
        "weight_decay_coexistence": wd_small,
        "weight_decay_unlearning": wd_large,
    }.items():
        ctx.metric(key, value)

    ctx.log("coexistence run")
    model = QuadraticMLP(p, width, seed=seed_model)
    coexist = train_modular(model, data, steps=steps, weight_decay=wd_small, eval_every=20)
    acc = coexist.accuracies[-1]
    ctx.metric("coexistence_accuracies", acc)
    ctx.check("coexist_test_acc", acc["test"])
    ctx.check("coexist_corrupted_acc", acc["corrupted"])

    ipr = neuron_ipr(model)
    cut = split_threshold(ipr)
    pruned_idx = lowest_ipr_neurons(ipr, threshold=cut)
    pruned = corrupted_accuracies(prune_neurons(model, pruned_idx), data)
    ctx.metric("ipr_threshold", cut)
    ctx.metric("pruned_neurons", int(pruned_idx.numel()))
    ctx.metric("pruned_accuracies", pruned)
    ctx.check("prune_corrupted_drop", 100.0 * (acc["corrupted"] - pruned["corrupted"]))
    ctx.check("prune_test_acc", pruned["test"])
    curve = []
    for frac in np.linspace(0.0, 1.0, 21):
        res = corrupted_accuracies(
            prune_neurons(model, lowest_ipr_neurons(ipr, fraction=float(frac))), data
        )
        curve.append({"fraction_pruned": float(frac), **res})
    ctx.table("Pruning neurons from the lowest IPR up", curve)

    ctx.log("unlearning run")
    model_wd = QuadraticMLP(p, width, seed=seed_model)
    unlearn = train_modular(
        model_wd, data, steps=unlearn_steps, weight_decay=wd_large, eval_every=10
    )
    acc_wd = unlearn.accuracies[-1]
    ctx.metric("unlearning_accuracies", acc_wd)
    ctx.metric("mean_ipr_coexistence", float(ipr.mean()))
    ctx.metric("mean_ipr_unlearning", float(neuron_ipr(model_wd).mean()))
    ctx.check("unlearn_peak_corrupted_acc", max(unlearn.series("corrupted")))
    ctx.check("unlearn_corrupted_acc", acc_wd["corrupted"])
    ctx.check("unlearn_test_acc", acc_wd["test"])

    _figures(ctx, coexist, unlearn, curve, ipr.numpy(), neuron_ipr(model_wd).numpy(), cut)
    ctx.note(
        f"Modular addition mod {p}, {fraction:.0%} of the pairs for training, {corruption:.0%} of "
        "the training labels replaced by a random wrong residue (the reference code draws any "
        "residue, so ~1/p of its 'corrupted' labels stay correct). Quadratic MLP "
        f"f(x) = W (U x)^2, width {width}, reference initialization; full-batch AdamW, lr 1e-2, "
        f"betas (0.9, 0.98), MSE on one-hot targets. Coexistence run: weight decay {wd_small}, "
        f"{steps} steps; unlearning run: weight decay {wd_large}, {unlearn_steps} steps "
        "(PyTorch's decoupled decay, so each step shrinks the weights by lr * wd). Pruning zeroes "
        "the neurons whose Fourier IPR (mean over U_k, V_k, W_k, r = 2) is below Otsu's "
        "threshold of the IPR distribution; the pruning curve in the table sweeps the fraction "
        "instead."
    )
    if ctx.quick:
        ctx.note(
            "Quick mode uses p = 41 instead of the paper's 97, a larger training fraction (0.8) "
            "and less corruption (0.15) so that grokking happens in a few hundred steps; with "
            "weight decay 0 and 1000 steps this small network memorizes everything but reaches "
            "only 95-98% test accuracy (seeds 0-2), so the coexistence run uses a small weight "
            "decay (1.0), which keeps the memorized labels and speeds up generalization."
        )
    else:
        ctx.note(
            "The reference notebook's coexistence run uses weight decay 0; with it this code "
            "memorizes the corrupted labels but reaches 98.5% test accuracy (seed 0; the notebook "
            "reports 98.3%), below the 0.99 check, so the coexistence run uses weight decay 1.0."
        )


def _figures(
    ctx: RunContext,
    coexist: TrainingHistory,
    unlearn: TrainingHistory,
    curve: list[dict],
    ipr: np.ndarray,
    ipr_wd: np.ndarray,
    cut: float,
) -> None:
    fig, axes = new_figure(1, 2)
    for ax, hist, title in (
        (axes[0], coexist, "small weight decay"),
        (axes[1], unlearn, "large weight decay"),
    ):
        for key, style in (("corrupted", "r--"), ("clean", "b--"), ("test", "g-")):
            ax.plot(hist.steps, [100 * v for v in hist.series(key)], style, label=f"{key}")
        twin = ax.twinx()
        twin.plot(hist.steps, hist.mean_ipr, "k:", lw=1)
        twin.set_ylim(0, 1)
        twin.set_ylabel("mean IPR (dotted)")
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-3, 103)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="center right")
    ctx.save_figure("accuracy_curves", fig)

    fig, (ax1, ax2) = new_figure(1, 2)
    frac = [r["fraction_pruned"] for r in curve]
    for key, style in (("corrupted", "r--"), ("clean", "b--"), ("test", "g-")):
        ax1.plot(frac, [100 * r[key] for r in curve], style, label=key)
    ax1.axvline(float(np.mean(ipr < cut)), color="grey", ls=":", label="Otsu cut")
    ax1.set_xlabel("fraction of neurons pruned (lowest IPR first)")
    ax1.set_ylabel("accuracy (%)")
    ax1.legend(fontsize=7)
    bins = np.linspace(0, 1, 31)
    ax2.hist(ipr, bins=bins, alpha=0.6, label="small wd")
    ax2.hist(ipr_wd, bins=bins, alpha=0.6, label="large wd")
    ax2.axvline(cut, color="grey", ls=":")
    ax2.set_xlabel("neuron IPR")
    ax2.set_ylabel("neurons")
    ax2.legend(fontsize=7)
    ctx.save_figure("ipr_pruning", fig)
