"""Reproduction: the inverted-bottleneck MLP's test error follows a power law in compute and
beats a plain MLP of equal parameters.

Bachmann, Anagnostidis & Hofmann, "Scaling MLPs: A Tale of Inductive Bias" (NeurIPS 2023). The
paper trains MLPs on flattened images with blocks ``z + W_2 GELU(W_1 LN(z))`` (expansion 4),
Lion, label smoothing 0.3, MixUp 0.8 and random crops, and finds that the test error falls as a
power law of the training compute; the inverted bottleneck (with its residual) improves on the
standard MLP.

Here: sklearn's 8x8 digits (flattened, 64 inputs), one model per *scale*, where a scale grows
both the width (x2) and the epochs (x2), so the compute grows ~8x per scale (quick mode's last
width step is x1.5, ~4.5x). The power law is
fitted to the final test errors of the bottleneck MLPs (mean over seeds) against their
training compute (``3 x`` exact forward FLOPs ``x`` examples seen).

Decided before any run: the comparison with the plain MLP (same depth, width solved for equal
parameters, same recipe and budget) is judged *at the matched scale*, the largest scale, where
both families have equal parameters and equal training examples; the per-scale wins are
reported as a metric, not a check. The paper's own S-MLP vs B-MLP comparison (its Table 1, and
the authors' ``models/__init__.py``: ``--model MLP`` builds ``StandardMLP`` from the same
``B_L-Wi_d`` string, i.e. width ``d`` and ``L - 1`` hidden layers) is at equal *width*, where the
bottleneck MLP has several times more parameters; that comparison is trained with the same
recipe and reported as a metric (``bottleneck_over_plain_equal_width_error``), not a check. The
power-law check is the pure law ``a C^-b`` fitted in log-log space (R^2 >= 0.9, PAPERS.md) with
``b > 0``; the saturating variant ``a C^-b + c`` is reported alongside.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.scaling import (
    BottleneckMLP,
    PlainMLP,
    TrainingRecord,
    count_parameters,
    fit_power_law,
    fit_power_law_offset,
    pareto_frontier,
    plain_width_for_params,
    plot_scaling,
    train_classifier,
)

FAMILIES = ("bottleneck", "plain", "plain_equal_width")


@reproduction(
    id="theory.scaling_mlps",
    paper="Scaling MLPs: A Tale of Inductive Bias",
    claim=(
        "inverted-bottleneck MLP test error follows a power law in compute over >= 4 scales "
        "(R^2 >= 0.9) and beats a plain MLP of equal parameters"
    ),
    checks=[
        Check(
            "power_law_r2",
            ">=",
            0.9,
            "R^2 of log(test error) vs log(compute), bottleneck MLP, >= 4 scales",
        ),
        Check("power_law_exponent", ">", 0.0, "b in error = a C^-b (error falls with compute)"),
        Check(
            "bottleneck_over_plain_error",
            "<",
            1.0,
            "test error of the bottleneck MLP / plain MLP of equal parameters at the matched "
            "(largest) scale, mean over seeds",
        ),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    widths: list[int]
    epochs: list[int]
    if ctx.quick:
        widths, epochs, seeds, depth = [8, 16, 32, 48], [4, 8, 16, 32], 2, 4
    else:
        widths, epochs, seeds, depth = [8, 16, 32, 64, 128], [4, 8, 16, 32, 64], 3, 4
    lr, batch, smooth, mix, shift, test_size = 1e-3, 128, 0.3, 0.8, 1, 0.3
    split_seed, train_seed = (int(s) for s in ctx.rng.integers(0, 2**31, size=2))

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=test_size, stratify=digits.target, random_state=split_seed
    )
    mean, std = float(x_tr.mean()), float(x_tr.std())
    xtr = torch.tensor((x_tr - mean) / std)
    xte = torch.tensor((x_te - mean) / std)
    ytr, yte = torch.tensor(y_tr), torch.tensor(y_te)
    background = (0.0 - mean) / std
    in_features, classes = int(np.prod(images.shape[1:])), 10

    records: dict[str, list[list[TrainingRecord]]] = {f: [] for f in FAMILIES}
    rows = []
    jobs = [(k, s) for k in range(len(widths)) for s in range(seeds)]
    for k, s in ctx.progress(jobs, desc="scales x seeds", total=len(jobs)):
        width, ep = widths[k], epochs[k]
        bott = BottleneckMLP(in_features, classes, width, depth, seed=train_seed + 97 * s + k)
        plain_w = plain_width_for_params(count_parameters(bott), in_features, classes, depth)
        plain = PlainMLP(in_features, classes, plain_w, depth, seed=train_seed + 97 * s + k)
        # the authors' S-MLP for architecture B_L-Wi_d: width d, L - 1 hidden layers
        plain_eq_w = PlainMLP(in_features, classes, width, depth - 1, seed=train_seed + 97 * s + k)
        shapes = {
            "bottleneck": (width, depth),
            "plain": (plain_w, depth),
            "plain_equal_width": (width, depth - 1),
        }
        for family, model in (
            ("bottleneck", bott),
            ("plain", plain),
            ("plain_equal_width", plain_eq_w),
        ):
            rec = train_classifier(
                model,
                xtr,
                ytr,
                xte,
                yte,
                epochs=ep,
                batch_size=batch,
                lr=lr,
                optimizer="lion",
                label_smoothing=smooth,
                mixup_alpha=mix,
                max_shift=shift,
                fill=background,
                eval_every=max(1, ep // 8),
                seed=train_seed + 1000 * s + k,  # same batches/augmentation for both families
            )
            if s == 0:
                records[family].append([])
            records[family][k].append(rec)
            rows.append(
                {
                    "scale": k,
                    "seed": s,
                    "family": family,
                    "width": shapes[family][0],
                    "depth": shapes[family][1],
                    "params": rec.params,
                    "epochs": ep,
                    "compute_flops": rec.compute[-1],
                    "test_error": rec.final_test_error,
                }
            )

    summary = {}
    for family in FAMILIES:
        compute = np.array([records[family][k][0].compute[-1] for k in range(len(widths))])
        error = np.array(
            [np.mean([r.final_test_error for r in records[family][k]]) for k in range(len(widths))]
        )
        summary[family] = {
            "params": [records[family][k][0].params for k in range(len(widths))],
            "compute": compute.tolist(),
            "test_error": error.tolist(),
        }
    ctx.table("Final test error per scale, family and seed", rows)

    fits = {}
    for family in FAMILIES:
        c = np.array(summary[family]["compute"])
        e = np.maximum(np.array(summary[family]["test_error"]), 0.5 / len(yte))
        fits[family] = {"power": fit_power_law(c, e), "offset": fit_power_law_offset(c, e)}
        for kind, fit in fits[family].items():
            ctx.metric(
                f"{family}_{kind}_law",
                {"a": fit.a, "b": fit.b, "c": fit.c, "r2": fit.r2, "n_points": fit.n_points},
            )
    # the paper's view: the compute-optimal frontier over every checkpoint of every model
    all_c, all_e = [], []
    for per_scale in records["bottleneck"]:
        for k_ckpt in range(1, len(per_scale[0].compute)):
            all_c.append(per_scale[0].compute[k_ckpt])
            all_e.append(float(np.mean([r.test_error[k_ckpt] for r in per_scale])))
    front = pareto_frontier(all_c, all_e)
    ctx.metric("frontier_points", len(front))
    if len(front) >= 3:
        f_front = fit_power_law(np.array(all_c)[front], np.maximum(np.array(all_e)[front], 1e-4))
        ctx.metric(
            "bottleneck_frontier_power_law", {"a": f_front.a, "b": f_front.b, "r2": f_front.r2}
        )

    err_b = np.array(summary["bottleneck"]["test_error"])
    err_p = np.array(summary["plain"]["test_error"])
    ratios = (err_b / np.maximum(err_p, 1e-12)).tolist()
    err_w = np.array(summary["plain_equal_width"]["test_error"])
    ratios_w = (err_b / np.maximum(err_w, 1e-12)).tolist()
    for key, value in {
        "widths": list(widths),
        "epochs": list(epochs),
        "depth": depth,
        "seeds": seeds,
        "n_train": int(xtr.shape[0]),
        "n_test": int(xte.shape[0]),
        "bottleneck": summary["bottleneck"],
        "plain": summary["plain"],
        "plain_equal_width": summary["plain_equal_width"],
        "error_ratio_per_scale": ratios,
        "scales_won_by_bottleneck": int(np.sum(err_b < err_p)),
        "error_ratio_equal_width_per_scale": ratios_w,
        "bottleneck_over_plain_equal_width_error": ratios_w[-1],
    }.items():
        ctx.metric(key, value)

    ctx.check("power_law_r2", fits["bottleneck"]["power"].r2)
    ctx.check("power_law_exponent", fits["bottleneck"]["power"].b)
    ctx.check("bottleneck_over_plain_error", ratios[-1])

    _figure(ctx, records, summary, fits)
    ctx.note(
        f"Data: sklearn digits (8x8, flattened to 64 inputs), stratified {1 - test_size:.0%} / "
        f"{test_size:.0%} train/test split ({xtr.shape[0]} / {xte.shape[0]} images), centred and "
        "scaled by the training mean and std. Recipe of the paper (authors' train.py): Lion "
        f"(lr {lr:g}, betas 0.9/0.99, no weight decay, constant learning rate), batch {batch}, "
        f"cross-entropy with label smoothing {smooth}, MixUp alpha {mix} (one weight per batch), "
        f"random crops as random shifts of up to {shift} pixel (no flips: they change digits). "
        f"Inverted-bottleneck MLP: linear embedding, {depth} blocks z + W2 GELU(W1 LN(z)) with "
        "expansion 4, linear head, PyTorch default init. Plain MLP: the authors' StandardMLP "
        f"(linear embedding, {depth} layers W GELU(LN(z)), head) with its width solved for the "
        "same parameter count. One learning rate for every scale and all families (no "
        "per-scale tuning)."
    )
    ctx.note(
        f"Scales: widths {list(widths)} with epochs {list(epochs)} (compute grows ~8x where "
        "both double, ~4.5x where the width grows x1.5); compute = 3 x exact forward FLOPs (2 "
        "per multiply-add, "
        "LayerNorm 5 per element) x examples seen; the authors count with fvcore (1 FLOP per "
        "multiply-add, biases not counted), i.e. about half of these numbers (within 1% for "
        "the bottleneck MLPs), which moves the law's prefactor, not its exponent or R^2. "
        f"Errors are means over {seeds} seeds (init, batches, augmentation). The "
        "pure power law is the checked one; the saturating law a C^-b + c and the power law on "
        "the compute-optimal frontier of all checkpoints are reported as metrics."
    )
    won = int(np.sum(err_b < err_p))
    ctx.note(
        "The plain-MLP comparison was fixed before running at the matched (largest) scale: "
        f"bottleneck / plain test error there = {ratios[-1]:.3f}; the bottleneck MLP has the "
        f"lower error at {won} of {len(widths)} scales. Differences of one test image are "
        f"{1 / len(yte):.2%}. The paper's advantage of the inverted bottleneck is measured on "
        "CIFAR/ImageNet-scale images with 6-12 blocks and width 512-1024 (and, in its Table 1, "
        "at equal width rather than equal parameters); on 64-pixel digits at equal parameters "
        "the plain MLP gets a much wider embedding (64 -> ~2.7x the bottleneck's width), and "
        "where the bottleneck does not win the check is left failing, not retuned."
    )
    won_w = int(np.sum(err_b < err_w))
    ctx.note(
        "The paper's own comparison (Table 1; authors' models/__init__.py, where --model MLP "
        "builds StandardMLP from the same B_L-Wi_d string) is at equal width, not equal "
        f"parameters: the plain MLP of width d with {depth - 1} hidden layers, same recipe and "
        "epochs (so several times less compute), reported and not checked. Bottleneck / "
        f"equal-width plain test error at the largest scale = {ratios_w[-1]:.3f}; the "
        f"bottleneck MLP has the lower error at {won_w} of {len(widths)} scales (with "
        f"{summary['bottleneck']['params'][-1] / summary['plain_equal_width']['params'][-1]:.1f}x "
        "the parameters at the largest scale)."
    )


def _figure(
    ctx: RunContext,
    records: dict[str, list[list[TrainingRecord]]],
    summary: dict[str, dict],
    fits: dict[str, dict],
) -> None:
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10.0, 4.0))
    colors = {"bottleneck": "C0", "plain": "C3", "plain_equal_width": "C2"}
    for family in FAMILIES:
        for per_scale in records[family]:
            rec = per_scale[0]
            c = np.array(rec.compute[1:])
            e = np.mean([r.test_error[1:] for r in per_scale], axis=0)
            ax1.loglog(c, np.maximum(e, 1e-3), color=colors[family], alpha=0.35, lw=1)
        c, e = np.array(summary[family]["compute"]), np.array(summary[family]["test_error"])
        plot_scaling(
            ax1, c, np.maximum(e, 1e-3), fits[family]["power"], label=family, color=colors[family]
        )
        plot_scaling(
            ax2,
            c,
            np.maximum(e, 1e-3),
            fits[family]["offset"],
            label=family,
            color=colors[family],
            marker={"bottleneck": "o", "plain": "s"}.get(family, "^"),
        )
    ax1.set_title("test error vs compute (curves: checkpoints)", fontsize=9)
    ax2.set_title("saturating law a C^-b + c", fontsize=9)
    for ax in (ax1, ax2):
        ax.legend(fontsize=6)
    ctx.save_figure("error_vs_compute", fig)
