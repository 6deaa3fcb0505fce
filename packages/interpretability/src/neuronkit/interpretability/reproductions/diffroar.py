"""Reproduction: input gradients of standard vs adversarially robust models (DiffROAR).

Shah, Jain & Netrapalli, "Do Input Gradients Highlight Discriminative Features?" (NeurIPS 2021).

1. Synthetic data ``x = y * e_j`` (d = 10; the authors' notebook): one-hidden-layer ReLU MLPs
   are trained normally and with L-inf PGD adversarial training. Their input (loss) gradients
   rank coordinates; DiffROAR retrains fresh models on inputs keeping only the top-k or only
   the bottom-k coordinates (others set to 0, this distribution's mean) and reports
   ``acc(top-k) - acc(bottom-k)``. The paper finds it negative for standard models (feature
   inversion in gradients: the signal coordinate gets the *smallest* gradient) and positive for
   robust ones.
2. BlockDigits (BlockMNIST built from scikit-learn digits): the fraction of input-gradient
   magnitude on the signal block is larger for robust than for standard models, whose
   gradients leak onto the uninformative null block.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability import (
    DiffROARResult,
    accuracy,
    diffroar,
    loss_gradient,
    pgd_attack,
    random_attribution,
    signal_mass,
    train_classifier,
)
from neuronkit.interpretability.data import (
    SignalCoordinateData,
    block_digits,
    signal_coordinate_data,
)

# Value of the removed coordinates of the y*e_j data: 0, the distribution's mean and the value of
# every uninformative coordinate (the paper's unmasked instance x^S zeroes the coordinates outside
# S). The sample mean (the authors' ``mask_val = X.mean()`` for images, our helper's default) is
# off by the label imbalance of a finite sample (about +-0.005): retrained models then read
# *which* coordinates were kept, and gradient rankings depend on the label (with it, full-mode
# seed 0 gave standard top-1 0.75 and robust bottom-1 0.77, though neither ever keeps the signal).
SYNTHETIC_FILL = 0.0


def _synthetic_diffroar(
    train: SignalCoordinateData,
    test: SignalCoordinateData,
    a_train: torch.Tensor,
    a_test: torch.Tensor,
    k: int,
    trainer: Callable[[torch.Tensor, torch.Tensor], nn.Module],
) -> DiffROARResult:
    """DiffROAR(k) on the synthetic data, removed coordinates set to :data:`SYNTHETIC_FILL`."""
    return diffroar(
        train.x, train.y, test.x, test.y, a_train, a_test, k=k, trainer=trainer, fill=SYNTHETIC_FILL
    )


def _mlp(seed: int, d_in: int, width: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, 2))


@reproduction(
    id="interpretability.diffroar",
    paper="Do Input Gradients Highlight Discriminative Features?",
    claim=(
        "on synthetic y*e_j data, DiffROAR of input gradients at small k is negative for a "
        "standard model and positive for an adversarially robust one; on block digits the "
        "robust model's gradient mass on the signal block exceeds the standard model's"
    ),
    checks=[
        Check("standard_diffroar", "<", 0.0, "DiffROAR(k=1 of 10) of a standard MLP's gradients"),
        Check("robust_diffroar", ">", 0.0, "DiffROAR(k=1 of 10) of a PGD-trained MLP's gradients"),
        Check(
            "signal_mass_gap",
            ">",
            0.0,
            "robust minus standard mean fraction of |input gradient| on the signal block",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: one thread is fastest and immune to oversubscription
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    seeds = [ctx.seed + i for i in range(3)]  # quick too since 0.5.15 (it ran one seed)
    synthetic = _synthetic(ctx, seeds, quick)
    blocks = _block_digits(ctx, seeds, quick)

    std = float(np.mean([r[("standard", 1)] for r in synthetic]))
    rob = float(np.mean([r[("robust", 1)] for r in synthetic]))
    gap = float(np.mean([b["robust"] - b["standard"] for b in blocks]))
    ctx.check("standard_diffroar", std)
    ctx.check("robust_diffroar", rob)
    ctx.check("signal_mass_gap", gap)


def _synthetic(
    ctx: RunContext, seeds: list[int], quick: bool
) -> list[dict[tuple[str, int], float]]:
    dim = 10
    n_train = 2000 if quick else 5000
    width = 256 if quick else 512
    epochs = 30 if quick else 40
    eps = 0.3
    ks = [1, 2] if quick else [1, 2, 3, 5, 8]
    retrain_epochs = 20 if quick else 30
    results: list[dict[tuple[str, int], float]] = []
    rows: list[dict[str, object]] = []
    roar_rows: list[dict[str, object]] = []
    for seed in seeds:
        train = signal_coordinate_data(n_train, dim, seed=2 * seed + 1)
        test = signal_coordinate_data(1000, dim, seed=2 * seed + 2)
        adversary = functools.partial(
            pgd_attack, eps=eps, n_steps=8, step_size=0.25 * eps, clamp=(-1.0, 1.0)
        )

        def retrain(x: torch.Tensor, y: torch.Tensor, seed: int = seed) -> nn.Module:
            model = _mlp(10_000 + seed, dim, 64)
            train_classifier(model, x, y, epochs=retrain_epochs, batch_size=250, lr=1e-2, seed=seed)
            return model

        out: dict[tuple[str, int], float] = {}
        attributions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
            "random": (
                random_attribution(train.x, seed=seed),
                random_attribution(test.x, seed=seed + 1),
            )
        }
        for name, adv in (("standard", None), ("robust", adversary)):
            model = _mlp(seed, dim, width)
            train_classifier(
                model,
                train.x,
                train.y,
                epochs=epochs,
                batch_size=250,
                lr=1e-2,
                adversary=adv,
                seed=seed,
            )
            model.eval()
            clean = accuracy(model, test.x, test.y)
            robust = accuracy(model, adversary(model, test.x, test.y), test.y)
            g_train = loss_gradient(model, train.x, train.y)
            g_test = loss_gradient(model, test.x, test.y)
            top_hit = float((g_test.abs().argmax(1) == test.signal).float().mean())
            bottom_hit = float((g_test.abs().argmin(1) == test.signal).float().mean())
            attributions[name] = (g_train, g_test)
            ctx.log(f"seed {seed} {name}: clean acc {clean:.3f}, PGD({eps}) acc {robust:.3f}")
            rows.append(
                {
                    "seed": seed,
                    "model": name,
                    "clean acc": round(clean, 4),
                    f"PGD eps={eps} acc": round(robust, 4),
                    "P[top-1 gradient = signal]": round(top_hit, 4),
                    "P[bottom-1 gradient = signal]": round(bottom_hit, 4),
                }
            )
        for name, (a_train, a_test) in attributions.items():
            for k in ks:
                res = _synthetic_diffroar(train, test, a_train, a_test, k, retrain)
                out[(name, k)] = res.diffroar
                roar_rows.append(
                    {
                        "seed": seed,
                        "model": f"{name} gradients" if name != "random" else "random attribution",
                        "k": k,
                        "acc top-k": round(res.top_accuracy, 4),
                        "acc bottom-k": round(res.bottom_accuracy, 4),
                        "DiffROAR": round(res.diffroar, 4),
                    }
                )
        results.append(out)
    ctx.table("Synthetic y*e_j data (d=10): trained models", rows)
    ctx.table("Synthetic y*e_j data: DiffROAR (retrained on top-k / bottom-k kept)", roar_rows)
    curves = {
        name: [float(np.mean([r[(name, k)] for r in results])) for k in ks]
        for name in ("standard", "robust", "random")
    }
    ctx.metric("synthetic_diffroar_by_k", {"k": ks, **curves})
    fig, ax = new_figure()
    for name, style in (("standard", "o-"), ("robust", "s-"), ("random", "x:")):
        ax.plot(ks, curves[name], style, label=name)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("k (coordinates kept of 10)")
    ax.set_ylabel("DiffROAR = acc(top-k) - acc(bottom-k)")
    ax.set_title("Synthetic y*e_j data")
    ax.legend(fontsize=8)
    ctx.save_figure("diffroar_synthetic", fig)
    ctx.note(
        f"Synthetic task: d={dim}, {n_train} training / 1000 test points, one-hidden-layer ReLU "
        f"MLPs of width {width} (the paper: 25,000), Adam (lr 0.01, batch 250), {epochs} "
        f"epochs (the paper: SGD, 500 epochs); robust models use L-inf PGD adversarial "
        f"training with eps={eps} (8 steps of 0.25 eps; the paper uses eps=0.45, which our "
        f"narrower, shorter-trained MLPs do not fit). Attributions are input gradients of the "
        f"loss (the authors' synthetic notebook; the paper's main text uses logit gradients and "
        f"its Appendix C loss gradients, with the same findings). DiffROAR retrains a width-64 "
        f"MLP for {retrain_epochs} epochs on inputs keeping the top-k or bottom-k coordinates "
        f"(the others set to 0, the paper's masking and this distribution's mean: any other "
        f"value, the training sample's mean of about +-0.005 included, lets the retrained model "
        f"read which coordinates were kept, and gradient rankings depend on the label). A "
        f"random ranking keeps the signal with probability k/10, so its accuracies sit near "
        f"0.5 + k/20 on both sides; for gradients, acc(top-1) is about 0.5 + P[top-1 gradient "
        f"= signal] / 2 (and likewise bottom-1; a little more where the examples whose signal "
        f"is dropped are mostly of one class), so DiffROAR(1) is about half the attribution "
        f"quality P[top-1] - P[bottom-1] that the authors' "
        f"notebook reports (-0.521 standard, 1.000 robust)."
    )
    return results


def _block_digits(ctx: RunContext, seeds: list[int], quick: bool) -> list[dict[str, float]]:
    data = block_digits((0, 1), seed=ctx.seed)
    eps = 0.2
    epochs = 20 if quick else 40
    rows: list[dict[str, object]] = []
    results: list[dict[str, float]] = []
    example: dict[str, torch.Tensor] = {}
    for seed in seeds:
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        n_train = int(0.7 * len(data))
        train, test = data.subset(order[:n_train]), data.subset(order[n_train:])
        adversary = functools.partial(pgd_attack, eps=eps, n_steps=7, clamp=(0.0, 1.0))
        masses: dict[str, float] = {}
        for name, adv in (("standard", None), ("robust", adversary)):
            model = _mlp(seed, 128, 256)
            train_classifier(
                model,
                train.x,
                train.y,
                epochs=epochs,
                batch_size=32,
                lr=1e-3,
                adversary=adv,
                seed=seed,
            )
            model.eval()
            grads = loss_gradient(model, test.x, test.y)
            masses[name] = float(signal_mass(grads, test.signal_mask()).mean())
            rows.append(
                {
                    "seed": seed,
                    "model": name,
                    "clean acc": round(accuracy(model, test.x, test.y), 4),
                    f"PGD eps={eps} acc": round(
                        accuracy(model, adversary(model, test.x, test.y), test.y), 4
                    ),
                    "gradient mass on signal block": round(masses[name], 4),
                }
            )
            if seed == seeds[0]:
                example[name] = grads[:4].abs()
                example["x"] = test.x[:4]
        results.append(masses)
    ctx.table("BlockDigits (digits 0 vs 1, signal + null block)", rows)
    ctx.metric(
        "block_signal_mass",
        {k: float(np.mean([r[k] for r in results])) for k in ("standard", "robust")},
    )
    fig, axes = new_figure(3, 4, figsize=(6.0, 6.0))
    for col in range(4):
        for row, key in enumerate(("x", "standard", "robust")):
            axes[row, col].imshow(
                example[key][col, 0].numpy(), cmap="gray" if key == "x" else "magma"
            )
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[0, col].set_title(f"test {col}", fontsize=8)
    for row, key in enumerate(("input", "|grad| standard", "|grad| robust")):
        axes[row, 0].set_ylabel(key, fontsize=8)
    ctx.save_figure("block_digits_gradients", fig)
    ctx.note(
        f"BlockDigits: scikit-learn 8x8 digits 0 and 1 stacked with a fixed hollow-square null "
        f"block at a random (label-independent) position; 70/30 split; MLP 128-256-2 trained "
        f"{epochs} epochs, robust model with L-inf PGD (eps={eps}, 7 steps). Gradient mass = "
        f"share of |d loss / d x| on the signal block, averaged over test images."
    )
    return results
