"""Reproduction: convergent learning across networks trained from different seeds.

Li, Yosinski, Clune, Lipson & Hopcroft, "Convergent Learning: Do different neural networks
learn the same representations?" (ICLR 2016).

Small CNNs of one architecture (conv1 - conv2 - pool - conv3 - pool - fc1 - logits) are
trained on scikit-learn's digits from different random seeds. On held-out digits their
post-ReLU units (a conv channel pooled over images and positions, as in the paper) are
compared layer by layer:

1. one-to-one (bipartite, Hungarian) and semi-matching of units by correlation, against a
   permutation baseline (net B sees the images in shuffled order, spatial layout kept) and,
   for context, two untrained nets;
2. one-to-one matchability (mean matched correlation) across depth;
3. sparse prediction: a lasso map from net A's layer to each net-B unit, counting the
   inputs each unit needs to reach 90% of the dense (least-squares) held-out R^2;
4. for context: mutual-information matching (binned MI) vs correlation matching, and
   spectral clustering of the joint correlation graph into many-to-many groups.

The thresholds of the three checks are ours (PAPERS.md gives none), fixed before running.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability import accuracy, layer_activations, train_classifier
from neuronkit.interpretability.data import load_digits
from neuronkit.interpretability.information import bin_activations, mutual_information_matrix
from neuronkit.interpretability.representation.convergent import (
    LayerComparison,
    SparsePrediction,
    aligned_correlation,
    compare_networks,
    match_units,
    permutation_baseline,
    spectral_groups,
)

# post-ReLU outputs of the hidden layers, in depth order
LAYERS = {"conv1": "1", "conv2": "3", "conv3": "6", "fc1": "10"}
R2_FRACTION = 0.9


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),  # 1: conv1 [32, 8, 8]
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),  # 3: conv2 [32, 8, 8]
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),  # 6: conv3 [64, 4, 4]
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 128),
        nn.ReLU(),  # 10: fc1 [128]
        nn.Linear(128, 10),
    )


def _activations(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    model.eval()
    acts = layer_activations(model, x, list(LAYERS.values()), flatten=False)
    return {name: acts[key].numpy() for name, key in LAYERS.items()}


@reproduction(
    id="interpretability.convergent",
    paper="Convergent Learning: Do different neural networks learn the same representations?",
    claim=(
        "networks trained on digits from different seeds: one-to-one matched unit "
        "correlations are far above a permuted baseline, one-to-one matchability decreases "
        "with depth, and sparse prediction needs few inputs per unit"
    ),
    checks=[
        Check(
            "matched_over_permuted_min",
            ">=",
            2.0,
            "min over hidden layers of mean bipartite-matched correlation / the same under "
            "shuffled inputs for net B (spatial layout kept); 'far above' read as >= 2x (ours)",
        ),
        Check(
            "depth_rank_correlation",
            "<=",
            -0.5,
            "Spearman rank correlation between depth (conv1, conv2, conv3, fc1) and mean "
            "bipartite-matched correlation (ours: at most one adjacent swap of 4 layers)",
        ),
        Check(
            "median_nonzero_fraction",
            "<=",
            0.1,
            "median over net-B units (all hidden layers) of lasso inputs used / net-A live "
            "units, at the sparsest model with held-out R^2 >= 0.9 x dense R^2 (ours)",
        ),
    ],
    seed=0,
    threads=1,  # small CNNs: one thread is fastest and immune to oversubscription
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    n_nets = 2 if quick else 4
    epochs = 10 if quick else 30
    n_perm = 1 if quick else 5
    sparse_template = SparsePrediction(
        r2_fraction=R2_FRACTION,
        n_alphas=20 if quick else 40,
        max_samples=3000 if quick else 20_000,
        seed=ctx.seed,
    )

    x, y = load_digits()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.seed))
    n_test = 500
    train_idx, test_idx = order[n_test:], order[:n_test]
    x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]

    acts: list[dict[str, np.ndarray]] = []
    untrained: list[dict[str, np.ndarray]] = []
    rows = []
    for k in ctx.progress(range(n_nets), desc="training", total=n_nets):
        seed = ctx.seed + k
        model = _cnn(seed)
        untrained.append(_activations(model, x_test))
        model.train()
        losses = train_classifier(
            model, x_train, y_train, epochs=epochs, batch_size=32, lr=1e-3, seed=seed
        )
        model.eval()
        acc = accuracy(model, x_test, y_test)
        acts.append(_activations(model, x_test))
        rows.append(
            {
                "net": k,
                "seed": seed,
                "final train loss": round(losses[-1], 4),
                "test acc": round(acc, 4),
            }
        )
        ctx.log(f"net {k} (seed {seed}): test accuracy {acc:.3f}")
    ctx.table("Networks (held-out accuracy on 500 digits)", rows)
    ctx.metric("test_accuracy", [r["test acc"] for r in rows])

    pairs = list(itertools.combinations(range(n_nets), 2))
    comparisons: dict[tuple[int, int], dict[str, LayerComparison]] = {}
    for i, j in ctx.progress(pairs, desc="comparing", total=len(pairs)):
        comparisons[(i, j)] = compare_networks(
            acts[i],
            acts[j],
            n_permutations=n_perm,
            sparse=sparse_template if (quick is False or (i, j) == pairs[0]) else None,
            seed=ctx.seed + 17 * i + j,
        )
    untrained_cmp = compare_networks(untrained[0], untrained[1], seed=ctx.seed)

    layers = list(LAYERS)
    stats: dict[str, dict[str, float]] = {}
    layer_rows = []
    for name in layers:
        per_pair = [comparisons[p][name] for p in pairs]
        s = {
            "bipartite": float(np.mean([c.mean_matched for c in per_pair])),
            "semi": float(np.mean([c.mean_semi_matched for c in per_pair])),
            "baseline": float(np.mean([c.mean_baseline for c in per_pair])),
            "sample_shuffle": float(
                np.mean(
                    [
                        permutation_baseline(
                            acts[i][name][:, c.units_a],
                            acts[j][name][:, c.units_b],
                            shuffle="samples",
                            seed=ctx.seed,
                        ).mean()
                        for (i, j), c in zip(pairs, per_pair)
                    ]
                )
            ),
            "untrained": untrained_cmp[name].mean_matched,
            "live_a": float(np.mean([c.units_a.size for c in per_pair])),
            "unique_semi": float(np.mean([c.semi_matching.n_unique_partners for c in per_pair])),
        }
        s["ratio"] = s["bipartite"] / s["baseline"]
        stats[name] = s
        layer_rows.append(
            {
                "layer": name,
                "live units (net A)": s["live_a"],
                "bipartite matched r": round(s["bipartite"], 4),
                "semi-matched r": round(s["semi"], 4),
                "semi - bipartite": round(s["semi"] - s["bipartite"], 4),
                "distinct semi partners": s["unique_semi"],
                "shuffled-input baseline r": round(s["baseline"], 4),
                "matched / baseline": round(s["ratio"], 3),
                "all-samples-shuffled baseline r": round(s["sample_shuffle"], 4),
                "untrained nets matched r": round(s["untrained"], 4),
            }
        )
    ctx.table(f"Unit matching by correlation (mean over {len(pairs)} net pair(s))", layer_rows)
    ctx.metric("matching", stats)

    ratio_min = min(s["ratio"] for s in stats.values())
    rho = float(spearmanr(np.arange(len(layers)), [stats[n]["bipartite"] for n in layers])[0])

    # sparse prediction
    nz_fractions: list[float] = []
    sparse_rows = []
    sparse_pairs = [p for p in pairs if comparisons[p][layers[0]].sparse is not None]
    for name in layers:
        fracs, nnz, r2, dense = [], [], [], []
        for p in sparse_pairs:
            sp = comparisons[p][name].sparse
            assert sp is not None
            live = sp.live_
            fracs.extend(sp.n_nonzero_[live] / sp.n_features_in_)
            nnz.extend(sp.n_nonzero_[live])
            r2.extend(sp.r2_[live])
            dense.extend(sp.dense_r2_[live])
        nz_fractions.extend(fracs)
        sparse_rows.append(
            {
                "layer": name,
                "net-A inputs": comparisons[sparse_pairs[0]][name].units_a.size,
                "median non-zeros": float(np.median(nnz)),
                "mean non-zeros": round(float(np.mean(nnz)), 2),
                "median fraction": round(float(np.median(fracs)), 4),
                "mean R^2 (sparse)": round(float(np.mean(r2)), 4),
                "mean R^2 (dense)": round(float(np.mean(dense)), 4),
            }
        )
    ctx.table(
        f"Sparse prediction net A -> net B (lasso, sparsest model with held-out R^2 >= "
        f"{R2_FRACTION} x dense R^2; {len(sparse_pairs)} pair(s))",
        sparse_rows,
    )
    ctx.metric("sparse_prediction", sparse_rows)
    median_fraction = float(np.median(nz_fractions))

    _mutual_information_and_groups(ctx, acts, comparisons[pairs[0]])
    _figures(ctx, comparisons[pairs[0]], stats, untrained_cmp, pairs)

    ctx.check("matched_over_permuted_min", ratio_min)
    ctx.check("depth_rank_correlation", rho)
    ctx.check("median_nonzero_fraction", median_fraction)
    conv = [n for n in layers if n.startswith("conv")]
    rho_conv = float(spearmanr(np.arange(len(conv)), [stats[n]["bipartite"] for n in conv])[0])
    weakest = min(layers, key=lambda n: stats[n]["ratio"])
    ctx.metric("conv_only_depth_rank_correlation", rho_conv)
    ctx.note(
        "Reading the checks (computed from this run). Matched vs baseline: the weakest layer "
        f"is {weakest} ({stats[weakest]['bipartite']:.3f} vs {stats[weakest]['baseline']:.3f}"
        f", ratio {stats[weakest]['ratio']:.2f}); against an all-samples shuffle the "
        "matched/baseline ratios are "
        + ", ".join(
            f"{n} {stats[n]['bipartite'] / stats[n]['sample_shuffle']:.0f}x" for n in layers
        )
        + ". The input-shuffle baseline of conv layers is high because every channel of a "
        "net trained (or not) on centred digits responds more where digits usually have ink, "
        "so the 2x criterion on it is demanding at this scale. Depth: mean matched r by layer "
        + ", ".join(f"{n} {stats[n]['bipartite']:.3f}" for n in layers)
        + f" (Spearman over the conv layers alone: {rho_conv:.2f}; the paper's per-layer "
        "comparison is over conv1..conv5). fc1's surviving units are largely class detectors, "
        "which two nets share one-to-one, so the fully connected layer breaks the trend here. "
        "Sparse prediction: median inputs per unit / width by layer "
        + ", ".join(
            f"{r['layer']} {r['median non-zeros']:g}/{r['net-A inputs']}" for r in sparse_rows
        )
        + ": a few inputs per unit, but with layers of 32-80 units rather than AlexNet's "
        "96-384 they are a larger share of the layer than the 10% threshold."
    )
    ctx.note(
        "What the authors' own analysis gives (read from their repository, "
        "YixuanLi/convergent_learning): the executed notebook matches conv layers only, and "
        "its mean bipartite-matched correlations for nets 0 and 1 are 0.663, 0.507, 0.446, "
        "0.342, 0.385 over conv1..conv5, not monotone (Spearman -0.9). Its only chance level "
        "is a unit permutation, far weaker than the shuffled-input baseline here. Its sparse "
        "maps (conv1 and conv2 only; a 1x1 convolution with L1 weight decay, every position a "
        "sample) keep, counting weights above 1% of each row's maximum, 17 of 96 conv1 inputs "
        "(18%) where the loss stays at the dense level and 4.4 (4.6%) where it is 1.39x the "
        "dense loss; conv2 keeps 9 of 256 (3.5%) at 1.04x. So the 2x baseline and the 10% "
        "threshold here are stricter than the paper's own numbers; they were fixed before "
        "the first run and are kept."
    )
    ctx.note(
        f"Setup: scikit-learn digits (8x8), {len(x_train)} training / {n_test} held-out images; "
        f"{n_nets} CNNs (conv 32-32-pool-64-pool, fc 128) from seeds {ctx.seed}.."
        f"{ctx.seed + n_nets - 1}, Adam (lr 1e-3, batch 32) for {epochs} epochs. The paper "
        f"compares four AlexNets on ImageNet (conv1..conv5, fc6..fc8). Statistics use the "
        f"post-ReLU outputs on the held-out images; a conv channel is one unit and its "
        f"samples are all images x spatial positions (the paper's convention). Units that are "
        f"silent on every held-out image (dead ReLUs, undefined correlation) are left out of "
        f"the comparison (see 'live units'); it is mostly fc1 that has them."
    )
    ctx.note(
        "Baseline: net B's activations are re-paired with shuffled images (positions within a "
        "map kept), then matched the same way; this keeps the correlation that any two "
        "position-dependent feature maps of centred digits share, so it is a stricter chance "
        "level than shuffling every sample (also shown, for context: 'all-samples-shuffled'). "
        "Two untrained nets are shown for context only. "
        "Matching is the optimal assignment (scipy's Hungarian linear_sum_assignment; the "
        "authors used networkx max-weight matching, the same optimum)."
    )
    ctx.note(
        "Thresholds are ours, chosen before the first run: 'far above' = every hidden layer's "
        "mean matched correlation at least 2x its baseline; 'decreases with depth' = Spearman "
        "rho(depth, mean matched r) <= -0.5 over the four hidden layers; 'few inputs' = median "
        "non-zero lasso weights per unit <= 10% of the source layer's live units at 90% of "
        "the dense held-out R^2 (the paper reports non-zeros at fixed L1 strengths where the "
        "prediction loss 'does not rise much' over the dense map)."
    )


def _mutual_information_and_groups(
    ctx: RunContext,
    acts: list[dict[str, np.ndarray]],
    comparison: dict[str, LayerComparison],
) -> None:
    rows = []
    for name in ("conv1", "fc1"):
        cmp_ = comparison[name]
        a = _pool(acts[0][name])[:, cmp_.units_a]
        b = _pool(acts[1][name])[:, cmp_.units_b]
        codes_a = bin_activations(a, 10, strategy="quantile", zero_bin=True)
        codes_b = bin_activations(b, 10, strategy="quantile", zero_bin=True)
        mi = mutual_information_matrix(codes_a, codes_b, bias_correction=True)
        by_mi = match_units(mi, "bipartite")
        same = float(np.mean(by_mi.partner == cmp_.matching.partner))
        groups = spectral_groups(
            cmp_.blocks, n_clusters=max(2, cmp_.units_a.size // 4), seed=ctx.seed
        )
        rows.append(
            {
                "layer": name,
                "MI-matched mean MI (bits)": round(by_mi.mean, 4),
                "same partner as correlation matching": round(same, 3),
                "spectral groups": groups.n_clusters,
                "groups with units of both nets": round(groups.mixed_fraction, 3),
            }
        )
    ctx.table("Mutual information matching and spectral many-to-many groups (nets 0 and 1)", rows)
    ctx.metric("mi_and_groups", rows)


def _pool(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]) if x.ndim > 2 else x


def _figures(
    ctx: RunContext,
    comparison: dict[str, LayerComparison],
    stats: dict[str, dict[str, float]],
    untrained: dict[str, LayerComparison],
    pairs: list[tuple[int, int]],
) -> None:
    layers = list(comparison)
    fig, axes = new_figure(1, len(layers), figsize=(3.2 * len(layers), 3.0), squeeze=False)
    for ax, name in zip(axes[0], layers):
        c = comparison[name]
        ax.plot(c.semi_matching.sorted_correlation(), color="yellowgreen", label="semi-matching")
        ax.plot(c.matching.sorted_correlation(), color="darkgreen", label="bipartite")
        ax.plot(c.baseline.mean(0), color="grey", ls="--", label="shuffled inputs")
        ax.plot(
            untrained[name].matching.sorted_correlation(),
            color="tab:orange",
            ls=":",
            label="untrained nets",
        )
        ax.set_title(name)
        ax.set_xlabel("unit (sorted)")
        ax.set_ylim(-0.05, 1.0)
    axes[0, 0].set_ylabel("correlation of matched pair")
    axes[0, 0].legend(fontsize=7)
    ctx.save_figure("matched_correlation", fig)

    fig, axes = new_figure(1, len(layers), figsize=(3.2 * len(layers), 3.2), squeeze=False)
    for ax, name in zip(axes[0], layers):
        c = comparison[name]
        im = ax.imshow(
            aligned_correlation(c.blocks.between, c.matching), vmin=-1, vmax=1, cmap="RdBu_r"
        )
        ax.set_title(f"{name} (matched order)", fontsize=9)
        ax.set_xlabel("net1 unit (partner order)")
    axes[0, 0].set_ylabel("net0 unit (by matched r)")
    fig.colorbar(im, ax=axes[0, -1], shrink=0.8)
    ctx.save_figure("between_net_correlation", fig)

    fig, ax = new_figure()
    depth = np.arange(len(layers))
    for key, style, label in (
        ("bipartite", "o-", "bipartite"),
        ("semi", "s-", "semi-matching"),
        ("baseline", "x--", "shuffled inputs"),
        ("untrained", "^:", "untrained nets"),
    ):
        ax.plot(depth, [stats[n][key] for n in layers], style, label=label)
    ax.set_xticks(depth, layers)
    ax.set_ylabel("mean matched correlation")
    ax.set_title(f"Matchability vs depth ({len(pairs)} pair(s))")
    ax.legend(fontsize=7)
    ctx.save_figure("matchability_by_depth", fig)
