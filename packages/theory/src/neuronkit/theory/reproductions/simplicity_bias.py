"""Reproduction: extreme simplicity bias on LMS data (S-randomization tests).

Shah, Tamuly, Raghunathan, Jain & Netrapalli, "The Pitfalls of Simplicity Bias in Neural
Networks" (NeurIPS 2020). A ReLU MLP trained by SGD on rotated LMS-5 data (one linear coordinate,
the rest 5-slab coordinates, each alone fully predictive) relies on the linear coordinate only:
randomizing it across the test set drops the accuracy to chance, randomizing *all* slab
coordinates barely changes it. In the noisy variant (LMS-7, the linear coordinate predicts only
95% of the labels, the slabs still 100%) the network keeps leaning on the linear coordinate and
its test accuracy stays near the linear coordinate's 95% instead of the 100% the slabs allow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.data.lms import LMSDataset, lms_data
from neuronkit.theory.simplicity import feature_reliance

# "~50%" for balanced binary labels, declared before running: accuracy <= 0.6.
CHANCE_LEVEL = 0.6


def _mlp(dim: int, width: int, depth: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    a = dim
    for _ in range(depth):
        layers += [nn.Linear(a, width), nn.ReLU()]
        a = width
    layers.append(nn.Linear(a, 2))
    return nn.Sequential(*layers)


def _train(
    model: nn.Module, data: LMSDataset, *, epochs: int, lr: float, batch: int, seed: int
) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    n = data.x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            F.cross_entropy(model(data.x[idx]), data.y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return float((model(data.x).argmax(dim=1) == data.y).float().mean())


def _datasets(
    dim: int, slabs: int, noise: float, n_train: int, n_test: int, seed: int
) -> tuple[LMSDataset, LMSDataset]:
    """Rotated LMS training and test sets sharing the training set's rotation."""
    train = lms_data(n_train, dim, num_slabs=slabs, linear_noise=noise, rotate=True, seed=seed)
    test = lms_data(
        n_test, dim, num_slabs=slabs, linear_noise=noise, rotation=train.rotation, seed=seed + 1
    )
    return train, test


def _experiment(
    ctx: RunContext,
    name: str,
    *,
    dim: int,
    slabs: int,
    noise: float,
    n_train: int,
    n_test: int,
    seeds: int,
    epochs: int,
    width: int,
    depth: int,
    base_seed: int,
) -> tuple[list[dict], LMSDataset]:
    train, test = _datasets(dim, slabs, noise, n_train, n_test, base_seed)
    rows = []
    for s in ctx.progress(range(seeds), desc=name, total=seeds):
        model = _mlp(dim, width, depth, seed=base_seed + 10 + s)
        train_acc = _train(model, train, epochs=epochs, lr=0.1, batch=128, seed=base_seed + s)
        acc = feature_reliance(
            model,
            test.x,
            test.y,
            {"linear": train.linear_coordinates, "slabs": train.slab_coordinates},
            rotation=train.rotation,
            seed=base_seed + 100 + s,
        )
        rows.append(
            {
                "dataset": name,
                "seed": s,
                "train_acc": train_acc,
                "test_acc": acc["original"],
                "linear_randomized_acc": acc["linear"],
                "slabs_randomized_acc": acc["slabs"],
            }
        )
    return rows, train


def _slab_only_accuracy(
    dim: int,
    slabs: int,
    noise: float,
    n_train: int,
    n_test: int,
    epochs: int,
    width: int,
    depth: int,
    base_seed: int,
    s: int,
) -> float:
    """Test accuracy of :func:`_experiment`'s run ``s`` with the linear coordinate zeroed."""
    train, test = _datasets(dim, slabs, noise, n_train, n_test, base_seed)

    def strip(d: LMSDataset) -> LMSDataset:
        z = d.z.clone()
        z[:, d.linear_coordinates] = 0.0
        return dataclasses.replace(d, x=(z.double() @ d.rotation.double()).float(), z=z)

    model = _mlp(dim, width, depth, seed=base_seed + 10 + s)
    _train(model, strip(train), epochs=epochs, lr=0.1, batch=128, seed=base_seed + s)
    held_out = strip(test)
    with torch.no_grad():
        return float((model(held_out.x).argmax(1) == held_out.y).float().mean())


@reproduction(
    id="theory.simplicity_bias",
    paper="The Pitfalls of Simplicity Bias in Neural Networks",
    claim=(
        "on LMS data, randomizing the linear coordinate drops accuracy to ~50% while randomizing "
        "all slab coordinates keeps >= 95%; reliance on the linear coordinate persists when it "
        "is the less predictive one"
    ),
    checks=[
        Check(
            "linear_randomized_acc",
            "<=",
            0.6,
            "LMS-5 test accuracy after randomizing the linear coordinate (~50%, declared <= 0.6)",
        ),
        Check(
            "slab_randomized_acc",
            ">=",
            0.95,
            "LMS-5 test accuracy after randomizing all slab coordinates",
        ),
        Check(
            "noisy_linear_reliance",
            ">=",
            0.2,
            "noisy LMS-7 (linear 95% predictive): accuracy lost by randomizing the linear "
            "coordinate",
        ),
        Check(
            "noisy_test_acc_shortfall",
            ">=",
            0.02,
            "noisy LMS-7: 1 - test accuracy (the slabs allow ~0; the linear coordinate 0.05)",
        ),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        seeds, n_train, n_test, epochs = 2, 2000, 4000, 15
        dim_clean, dim_noisy = 20, 50
    else:
        seeds, n_train, n_test, epochs = 5, 6000, 10000, 30
        dim_clean, dim_noisy = 50, 50
    width, depth, noise = 100, 2, 0.05
    base = int(ctx.rng.integers(0, 2**30))
    clean, clean_data = _experiment(
        ctx,
        "LMS-5",
        dim=dim_clean,
        slabs=5,
        noise=0.0,
        n_train=n_train,
        n_test=n_test,
        seeds=seeds,
        epochs=epochs,
        width=width,
        depth=depth,
        base_seed=base,
    )
    noisy, _ = _experiment(
        ctx,
        "LMS-7 noisy linear",
        dim=dim_noisy,
        slabs=7,
        noise=noise,
        n_train=n_train,
        n_test=n_test,
        seeds=seeds,
        epochs=epochs,
        width=width,
        depth=depth,
        base_seed=base + 1000,
    )
    ctx.table("S-randomized test accuracy per seed", clean + noisy)

    def mean(rows: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    for label, rows in (("lms5", clean), ("lms7_noisy", noisy)):
        for key in ("train_acc", "test_acc", "linear_randomized_acc", "slabs_randomized_acc"):
            ctx.metric(f"{label}_{key}", mean(rows, key))
    ctx.check("linear_randomized_acc", mean(clean, "linear_randomized_acc"))
    ctx.check("slab_randomized_acc", mean(clean, "slabs_randomized_acc"))
    ctx.check(
        "noisy_linear_reliance",
        mean(noisy, "test_acc") - mean(noisy, "linear_randomized_acc"),
    )
    ctx.check("noisy_test_acc_shortfall", 1.0 - mean(noisy, "test_acc"))

    # control (reported, not checked): the same noisy data with the linear coordinate made
    # uninformative (0 in z), so the network can only use the slabs; what it reaches is what
    # the slabs allow at this sample size (the reference notebook's slab-only configuration)
    slab_only = [
        _slab_only_accuracy(
            dim_noisy, 7, noise, n_train, n_test, epochs, width, depth, base + 1000, s
        )
        for s in range(seeds)
    ]
    ctx.metric("lms7_slab_only_test_acc", float(np.mean(slab_only)))
    ctx.note(
        f"Slab-only control on the noisy LMS-7 data (linear coordinate set to 0, same model and "
        f"training; not checked): test accuracy {np.mean(slab_only):.3f} against "
        f"{mean(noisy, 'test_acc'):.3f} for the network that also sees the linear coordinate. "
        + (
            "The slabs alone fall short of 100% by more than the full network does, so at this "
            "sample size noisy_test_acc_shortfall measures too little data rather than a cost "
            "of relying on the linear coordinate (the reference trains on 40,000 points)."
            if np.mean(slab_only) <= mean(noisy, "test_acc")
            else "The slab-only network is the more accurate one: relying on the linear "
            "coordinate costs accuracy here, as the paper argues."
        )
    )

    _figure(ctx, clean, noisy, clean_data)
    ctx.note(
        f"Data: rotated LMS (a random orthogonal rotation of [linear, k-slab...] features), "
        f"linear margin 0.1, slab margin 0.1, {n_train} training and {n_test} test points. "
        f"LMS-5: dim {dim_clean}, both features fully predictive. Noisy variant: LMS-7, dim "
        f"{dim_noisy}, the linear coordinate points at the wrong label for {noise:.0%} of the "
        f"samples (so it alone predicts 95%), the slabs still predict 100%. Model: ReLU MLP, "
        f"{depth} hidden layers of {width}, SGD lr 0.1 momentum 0.9, batch 128, {epochs} epochs "
        f"(training accuracy ~100%), {seeds} seeds."
    )
    ctx.note(
        "S-randomization (the paper's test): in the feature basis z = x W^T the coordinates in S "
        "are permuted jointly across the test set, then mapped back; accuracy is measured "
        f"against the true labels. '~50%' is declared as <= {CHANCE_LEVEL}. PAPERS.md gives no "
        "number for the noisy variant; the declared checks are that randomizing the linear "
        "coordinate costs >= 20 points of accuracy and that the test accuracy stays >= 2 points "
        "below the 100% the slabs allow (the paper's 'SB hurts generalization')."
    )


def _figure(ctx: RunContext, clean: list[dict], noisy: list[dict], data: LMSDataset) -> None:
    fig, (ax1, ax2) = new_figure(1, 2)
    z, y = data.z.numpy(), data.y.numpy()
    ax1.scatter(z[:600, 0], z[:600, 1], c=y[:600], cmap="coolwarm", s=6)
    ax1.set_xlabel("linear coordinate")
    ax1.set_ylabel("5-slab coordinate")
    ax1.set_title("LMS-5 (unrotated view)", fontsize=9)
    keys = ("test_acc", "linear_randomized_acc", "slabs_randomized_acc")
    labels = ("original", "linear randomized", "slabs randomized")
    xs = np.arange(len(keys))
    for j, (rows, name) in enumerate(((clean, "LMS-5"), (noisy, "LMS-7, noisy linear"))):
        vals = [float(np.mean([r[k] for r in rows])) for k in keys]
        ax2.bar(xs + 0.38 * j, vals, width=0.38, label=name)
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set_xticks(xs + 0.19, labels, fontsize=7)
    ax2.set_ylabel("test accuracy")
    ax2.set_ylim(0, 1.05)
    ax2.legend(fontsize=7)
    ctx.save_figure("randomization_accuracy", fig)
