"""Reproduction: multifaceted feature visualization recovers planted facets of a class neuron.

Nguyen, Yosinski & Clune, "Multifaceted Feature Visualization: Uncovering the Different Types
of Features Learned By Each Neuron in Deep Neural Networks" (ICML Visualization workshop 2016).

1. A small CNN is trained on *multifaceted digits*: class 0 is the union of two different
   digits (the planted facets, by default 0 and 1), the other classes are single digits.
2. Facet discovery (the paper's Algorithm 1): the class-0 training images are embedded by the
   last conv block (the paper uses fc7; the penultimate fc layer of this small CNN does not
   separate the facets and is reported as a metric), reduced by PCA (50 dims) and t-SNE
   (2-D), and clustered by k-means into k = 2 facets. The adjusted Rand index against the
   planted facet labels measures recovery.
3. Facet-initialized activation maximization: for each facet, the mean of its 15 images
   nearest the cluster centre starts a gradient ascent on the class-0 logit, with the paper's
   center-biased regularization and plain gradient ascent (plus jitter / scale / rotate
   robustness, L2 decay and total variation). Each visualization must end closer (pixel L2)
   to the mean image of its own planted facet than to the other facet's. A plain activation
   maximization of the same logit from a random start (one image, no facets) is reported
   for comparison.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability import accuracy, train_classifier
from neuronkit.interpretability.data.facets import MultifacetedDigits, multifaceted_digits
from neuronkit.interpretability.visualization import (
    L2,
    ActivationMaximization,
    CenterBias,
    Facets,
    Regularizer,
    TotalVariation,
    class_logit,
    discover_facets,
    maximize_activation,
    objective_values,
    standard_transforms,
    visualize_facets,
)

ALL_DIGITS = tuple(range(10))


def _cnn(seed: int, n_classes: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(32 * 5 * 5, 64)),
                ("fc_relu", nn.ReLU()),
                ("logits", nn.Linear(64, n_classes)),
            ]
        )
    )


def _split(data: MultifacetedDigits, seed: int) -> tuple[MultifacetedDigits, MultifacetedDigits]:
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_train = int(0.7 * len(data))
    return data.subset(order[:n_train]), data.subset(order[n_train:])


def _regularizers() -> list[Regularizer]:
    return [CenterBias(phases=3, start=0.6, sigma=1.0), L2(weight=1.0), TotalVariation(weight=2.0)]


def _penalty_gradient_ratio(
    model: nn.Module, logit: int, images: torch.Tensor, regs: list[Regularizer]
) -> float:
    """Mean |d penalties / d image| over mean |d logit / d image| at ``images``.

    How hard the L2 / TV penalties pull on the pixels compared with the class logit (the
    penalties are means over pixels, the logit is not, so small weights make them weak).
    """
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        g_obj = torch.autograd.grad(model(x)[:, logit].sum(), x)[0]
        pens = [p for r in regs if (p := r.penalty(x, 0.0)) is not None]
        if not pens:
            return 0.0
        g_pen = torch.autograd.grad(torch.stack([p.sum() for p in pens]).sum(), x)[0]
    return float(g_pen.abs().mean() / g_obj.abs().mean().clamp_min(1e-12))


@reproduction(
    id="interpretability.mfv",
    paper=(
        "Multifaceted Feature Visualization: Uncovering the Different Types of Features "
        "Learned By Each Neuron in Deep Neural Networks"
    ),
    claim=(
        "on a CNN trained on data where one class has two planted facets, facet clustering of "
        "the class's images (last conv block features, PCA + t-SNE + k-means) recovers them "
        "(ARI >= 0.8) and each facet's facet-initialized visualization is closer to its own "
        "facet mean than to the other facet's"
    ),
    checks=[
        Check("facet_ari", ">=", 0.8, "adjusted Rand index of facets vs planted facets (mean)"),
        Check(
            "visualizations_closer_to_own_facet",
            ">=",
            1.0,
            "fraction of facet visualizations nearer their own planted facet mean",
        ),
    ],
    seed=0,
    threads=1,
)
def run(ctx: RunContext) -> None:
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    # t-SNE, k-means (OpenMP) and PCA (BLAS) on ~250 points: one thread is fastest and immune
    # to a shared CPU (two OpenMP threads on a busy 2-core machine made t-SNE ~5x slower);
    # their results do not depend on the thread count.
    with threadpool_limits(limits=1):
        _run(ctx)


def _run(ctx: RunContext) -> None:
    quick = ctx.quick
    pairs = [(0, 1), (4, 7), (2, 6)]
    # both modes: every digit pair with two seeds (quick trains fewer epochs; it ran one seed
    # before 0.5.15)
    n_seeds = 2
    settings = [(pair, ctx.seed + s) for pair in pairs for s in range(n_seeds)]
    epochs = 12 if quick else 30
    steps = 150
    rows: list[dict[str, object]] = []
    aris: list[float] = []
    fc_aris: list[float] = []
    closer: list[bool] = []
    pen_ratios: list[float] = []
    figure_data: dict[str, Any] = {}
    for pair, seed in settings:
        others = tuple(d for d in ALL_DIGITS if d not in pair)[:4]
        data = multifaceted_digits(pair, others, seed=seed)
        train, test = _split(data, seed)
        model = _cnn(seed, data.n_classes)
        train_classifier(model, train.x, train.y, epochs=epochs, batch_size=64, lr=1e-3, seed=seed)
        model.eval()
        test_acc = accuracy(model, test.x, test.y)
        objective = class_logit(data.facet_class)
        top_train_logit = float(objective_values(model, train.x, objective).max())

        members = train.subset(train.y == data.facet_class)
        facets = discover_facets(
            model,
            members.x,
            objective,
            layer="pool2",
            n_facets=2,
            n_components=50,
            embedding="tsne",
            n_nearest=15,
            seed=seed,
        )
        planted = members.facet[facets.indices]
        ari = float(adjusted_rand_score(planted.numpy(), facets.labels.numpy()))
        aris.append(ari)
        fc_facets = discover_facets(
            model, members.x, objective, layer="fc_relu", n_facets=2, seed=seed
        )
        fc_ari = float(
            adjusted_rand_score(members.facet[fc_facets.indices].numpy(), fc_facets.labels.numpy())
        )
        fc_aris.append(fc_ari)

        vis = visualize_facets(
            model,
            objective,
            facets,
            param="pixel",
            transforms=standard_transforms(jitter=1, scales=(0.95, 1.0, 1.05), degrees=5.0),
            regularizers=_regularizers(),
            steps=steps,
            lr=1.0,
            optimizer="sgd",
            seed=seed,
        )
        pen_ratios.append(
            _penalty_gradient_ratio(model, data.facet_class, facets.init_images, _regularizers())
        )
        facet_means = members.facet_mean_images()  # [2, 1, H, W] planted facet means
        dists = torch.cdist(vis.image.flatten(1), facet_means.flatten(1))  # [k, 2]
        init_dists = torch.cdist(facets.init_images.flatten(1), facet_means.flatten(1))
        # each found facet's planted facet, one-to-one (the assignment with the most agreeing
        # members), so two found facets are never judged against the same planted one
        agree = np.array(
            [
                [int(((facets.labels == j) & (planted == f)).sum()) for f in range(2)]
                for j in range(2)
            ]
        )
        _, owner = linear_sum_assignment(-agree)
        for j in range(facets.n_facets):
            own = int(owner[j])
            other = 1 - own
            ok = bool(dists[j, own] < dists[j, other])
            closer.append(ok)
            rows.append(
                {
                    "digits": f"{pair[0]}|{pair[1]}",
                    "seed": seed,
                    "test acc": round(test_acc, 4),
                    "ARI (conv)": round(ari, 4),
                    "ARI (fc)": round(fc_ari, 4),
                    "facet": j,
                    "size": int(facets.sizes[j]),
                    "planted facet": f"digit {pair[own]}",
                    "logit start": round(float(vis.initial_activation[j]), 2),
                    "logit end": round(float(vis.activation[j]), 2),
                    "max train logit": round(top_train_logit, 2),
                    "d(start, own)": round(float(init_dists[j, own]), 3),
                    "d(vis, own)": round(float(dists[j, own]), 3),
                    "d(vis, other)": round(float(dists[j, other]), 3),
                    "closer to own": ok,
                }
            )

        baseline = maximize_activation(
            model,
            objective,
            param="pixel",
            shape=(1, *data.x.shape[1:]),
            transforms=standard_transforms(jitter=1, scales=(0.95, 1.0, 1.05), degrees=5.0),
            regularizers=_regularizers(),
            steps=steps,
            lr=1.0,
            optimizer="sgd",
            seed=seed,
        )
        base_d = torch.cdist(baseline.image.flatten(1), facet_means.flatten(1))[0]
        ctx.log(
            f"digits {pair} seed {seed}: test acc {test_acc:.3f}, ARI {ari:.3f}, facet logits "
            f"{vis.initial_activation.tolist()} -> {vis.activation.tolist()}"
        )
        ctx.metric(
            f"random_start_distance_to_facets_{pair[0]}{pair[1]}_seed{seed}",
            [round(float(v), 4) for v in base_d],
        )
        if not figure_data:
            figure_data = {
                "pair": pair,
                "facet_means": facet_means,
                "facets": facets,
                "planted": planted,
                "vis": vis,
                "baseline": baseline,
            }

    ctx.table("Facets and their visualizations (pixel L2 distances to planted facet means)", rows)
    ctx.metric("ari_per_run", [round(a, 4) for a in aris])
    ctx.metric("penultimate_fc_ari_per_run", [round(a, 4) for a in fc_aris])
    ctx.metric("penalty_to_logit_gradient_ratio", [round(r, 4) for r in pen_ratios])
    ctx.check("facet_ari", float(np.mean(aris)))
    ctx.check("visualizations_closer_to_own_facet", float(np.mean(closer)))
    _figure(ctx, figure_data)
    ctx.note(
        f"Data: scikit-learn digits upsampled to 16x16 on a 20x20 canvas (random shift <= 1 "
        f"pixel); class 0 = two digits (the planted facets), four other digits are classes "
        f"1-4; 70/30 split. CNN conv16-pool-conv32-pool-fc64-logits trained {epochs} epochs "
        f"(Adam, lr 1e-3). Facets (Algorithm 1): the class-0 training images, embedded by the "
        f"flattened last conv block (pool2, 800 features), PCA to 50 dims, 2-D t-SNE, k-means "
        f"with k = 2 (the paper uses k = 10 on ImageNet classes; here the number of planted "
        f"facets), start image = mean of the 15 members nearest each centre. Visualization: "
        f"pixel parameterization with a sigmoid into [0, 1], {steps} steps of plain gradient "
        f"ascent (lr 1.0; the authors' code steps along the gradient too, rescaled to a fixed "
        f"mean absolute step) on the class-0 logit, jitter 1 px / scale "
        f"0.95-1.05 / rotation +-5 deg, center bias (3 phases: the update is blurred, sigma "
        f"1 -> 0, and confined to the central 60% -> 100% of the image), L2 decay (weight 1) "
        f"and total variation (weight 2). The L2 and TV penalties are means over pixels, so at "
        f"these weights their pixel gradient is only "
        f"{min(pen_ratios):.1%}-{max(pen_ratios):.1%} of the logit's at the start images "
        f"('penalty_to_logit_gradient_ratio'): they barely act, and the authors' code has no "
        f"such penalties (act_max.tvd.mean.py steps along the gradient and then TV-denoises "
        f"the image after every step)."
    )
    labels = [f"{pair[0]}|{pair[1]} seed {seed}" for pair, seed in settings]
    conv_list = ", ".join(f"{lab} {a:.2f}" for lab, a in zip(labels, aris, strict=True))
    fc_list = ", ".join(f"{lab} {a:.2f}" for lab, a in zip(labels, fc_aris, strict=True))
    misses = [
        f"{row['digits']} seed {row['seed']} facet {row['facet']} ({row['planted facet']})"
        for row in rows
        if not row["closer to own"]
    ]
    ctx.note(
        "Deviations, decided after first runs (disclosed): (1) the paper embeds with fc7, the "
        "penultimate layer. For the digits 0|1 this small CNN's penultimate fc layer does not "
        "separate the facets ('ARI (fc)' in the table: the layer is trained to map both digits "
        "to one class and its within-class variation follows other factors), while for 4|7 "
        "and 2|6 it mostly does; facets are therefore found in the last conv block. This run, "
        f"ARI of the conv-block facets: {conv_list}; of the penultimate-layer facets: "
        f"{fc_list}. (2) With Adam (every pixel moves at "
        "the same rate) both facet visualizations converge to the network's single class-0 "
        "optimum (the random-start image) and keep only a trace of their start; plain "
        "gradient ascent (the direction of the authors' code, Evolving-AI-Lab/mfv, which also "
        "rescales each step by the mean absolute gradient, works on raw clipped pixels and "
        "smooths by TV denoising instead of an L2 / TV penalty) leaves the pixels the logit "
        "is insensitive to "
        "at the facet's mean image, so each visualization stays recognisably its facet while "
        "its logit rises above every training image's. The step size and step count do not "
        "depend on the CNN; for CNNs with larger input gradients (longer training, and the "
        "4|7 and 2|6 pairs) the logits reach about twice the top training logit and some "
        "visualizations drift past the midpoint towards the other facet (this run: "
        f"{len(misses)} of {len(closer)} visualizations"
        + (f": {'; '.join(misses)}" if misses else "")
        + "). Thresholds are those of PAPERS.md, unchanged."
    )
    ctx.note(
        "The random-start baseline (one activation maximization of the same logit from noise, "
        "no facet initialization) is listed in the metrics as its pixel distances to the two "
        "planted facet means: it converges to a single image, so it cannot show both facets. "
        f"Lowest ARI this run: {labels[int(np.argmin(aris))]} ({min(aris):.2f}). For 0|1 at "
        "seed 0 a low ARI comes from a small sub-style of the digit-1 facet that t-SNE places "
        "as a third island; k-means with k = 2 merges it with the 0s (the figure shows the "
        "first setting; see its embedding panel)."
    )
    if quick:
        ctx.note(
            f"Quick mode: the full mode's three digit pairs and two seeds per pair "
            f"({len(settings)} settings; before 0.5.15 quick ran the first seed only), and "
            f"{epochs} training epochs instead of 30; facet discovery and "
            f"visualization settings are the full mode's. facet_ari is the same statistic as "
            f"in full mode, the mean ARI over the settings run (this run: "
            f"{float(np.mean(aris)):.3f}); the visualization check counts all "
            f"{len(closer)} facet visualizations."
        )


def _figure(ctx: RunContext, data: dict[str, Any]) -> None:
    pair: tuple[int, int] = data["pair"]
    means: torch.Tensor = data["facet_means"]
    facets: Facets = data["facets"]
    planted: torch.Tensor = data["planted"]
    vis: ActivationMaximization = data["vis"]
    baseline: ActivationMaximization = data["baseline"]
    fig, axes = new_figure(2, 4, figsize=(9.0, 4.8))
    panels = [
        (axes[0, 0], means[0, 0], f"planted facet mean\n(digit {pair[0]})"),
        (axes[0, 1], means[1, 0], f"planted facet mean\n(digit {pair[1]})"),
        (axes[0, 2], baseline.image[0, 0], "random-start AM\n(no facets)"),
        (
            axes[1, 0],
            torch.cat([facets.init_images[j, 0] for j in range(facets.n_facets)], dim=1),
            "facet start images\n(mean of 15 nearest)",
        ),
        (axes[1, 1], vis.image[0, 0], "facet 0 visualization"),
        (axes[1, 2], vis.image[1, 0], "facet 1 visualization"),
    ]
    for ax, img, title in panels:
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    emb = facets.embedding
    labels = facets.labels.numpy()
    for f, marker in ((0, "o"), (1, "^")):
        sel = (planted == f).numpy()
        axes[0, 3].scatter(
            emb[sel, 0],
            emb[sel, 1],
            c=labels[sel],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            marker=marker,
            s=8,
            label=f"digit {pair[f]}",
        )
    axes[0, 3].set_title("t-SNE embedding\n(color: found facet, marker: planted)", fontsize=8)
    axes[0, 3].legend(fontsize=7)
    axes[1, 3].plot(vis.history)
    axes[1, 3].set_xlabel("step")
    axes[1, 3].set_ylabel("class-0 logit (mean, transformed)")
    ctx.save_figure("mfv_facets", fig)
