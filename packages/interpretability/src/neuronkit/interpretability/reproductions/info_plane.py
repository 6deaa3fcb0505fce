"""Reproduction: the information plane of a tanh network on the 12-bit task (and ReLU).

Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via Information" (2017).

Networks 12-10-7-5-4-3-2 (softmax output) are trained on 80% of the 4096 inputs of the 12-bit
task; at epochs on a log grid every layer's response to all 4096 inputs is placed in the
plane ``(I(X;T), I(T;Y))`` with the paper's binning estimator (30 equal bins per unit,
``I(X;T) = H(T)``) and with the Kolchinsky-Tracey KDE upper bound (noise variance 0.1, Saxe
et al. 2018), averaged over independent runs. The claim: ``I(T;Y)`` rises toward ``H(Y)``;
tanh layers compress (``I(X;T)`` falls after its peak); the data-processing inequality holds
across layers. ReLU networks are measured the same way and reported, not checked (Saxe et al.
found that they need not compress).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability.data.twelve_bit import twelve_bit_task
from neuronkit.interpretability.dynamics import (
    InformationPlane,
    compression,
    dpi_violation,
    plot_information_plane,
    track_information_plane,
)


@reproduction(
    id="interpretability.info_plane",
    paper="Opening the Black Box of Deep Neural Networks via Information",
    claim=(
        "on the 12-bit task, I(T;Y) rises toward H(Y) during training; for tanh networks at "
        "least one layer's I(X;T) falls after its peak (compression); the data-processing "
        "inequality holds across layers within estimator tolerance; ReLU reported too"
    ),
    checks=[
        Check(
            "tanh_final_ity_over_hy",
            ">=",
            0.9,
            "last layer's binned I(T;Y) / H(Y) at the last epoch, tanh, mean over runs (ours)",
        ),
        Check(
            "tanh_ity_gain_bits",
            ">=",
            0.5,
            "last layer's binned I(T;Y) at the end minus at initialization, tanh (ours)",
        ),
        Check(
            "tanh_compression_bits",
            ">=",
            1.0,
            "max over layers of peak minus final binned I(X;T), run-mean tanh curves (ours)",
        ),
        Check(
            "tanh_dpi_violation_bits",
            "<=",
            0.1,
            "largest increase of binned I(X;T) or I(T;Y) from a layer to the next, any epoch, "
            "run-mean tanh curves (ours)",
        ),
    ],
    seed=0,
    threads=1,  # a 12-10-7-5-4-3-2 network: one thread is fastest
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    task = twelve_bit_task()
    train_idx, _ = task.split(0.8, seed=ctx.seed)
    # quick: full-batch Adam; full: the paper's minibatches, more epochs, runs and KDE inputs
    n_runs, epochs, n_records = (3, 1000, 16) if quick else (5, 2500, 25)
    lr, batch_size, kde_samples = (1e-2, None, 256) if quick else (1e-3, 512, 1024)
    planes: dict[str, InformationPlane] = {}
    kinds: tuple[Literal["tanh", "relu"], ...] = ("tanh", "relu")
    for kind in kinds:
        bar = iter(ctx.progress(range(n_records), desc=kind))

        def advance(done: int, total: int, bar: Iterator[int] = bar) -> None:
            next(bar, None)

        planes[kind] = track_information_plane(
            task.x,
            task.y,
            train_idx,
            activation=kind,
            n_runs=n_runs,
            epochs=epochs,
            n_records=n_records,
            lr=lr,
            batch_size=batch_size,
            optimizer="adam",
            n_bins=30,
            kde_noise_variance=0.1,
            kde_samples=kde_samples,
            seed=ctx.seed,
            callback=advance,
        )
        for _ in bar:  # drain the progress bar
            pass

    rows: list[dict[str, object]] = []
    summary: dict[str, dict[str, float]] = {}
    for activation, plane in planes.items():
        for estimator in ("binning", "kde"):
            ixt, ity = plane.mean(estimator)
            comp = compression(ixt)
            for layer, name in enumerate(plane.layer_names):
                rows.append(
                    {
                        "net": activation,
                        "estimator": estimator,
                        "layer": name,
                        "I(X;T) init": round(float(ixt[0, layer]), 3),
                        "I(X;T) peak": round(float(ixt[:, layer].max()), 3),
                        "peak epoch": int(plane.epochs[int(ixt[:, layer].argmax())]),
                        "I(X;T) final": round(float(ixt[-1, layer]), 3),
                        "rise to peak": round(float(ixt[:, layer].max() - ixt[0, layer]), 3),
                        "compression": round(float(comp[layer]), 3),
                        "I(T;Y) init": round(float(ity[0, layer]), 3),
                        "I(T;Y) final": round(float(ity[-1, layer]), 3),
                    }
                )
            summary[f"{activation}_{estimator}"] = {
                "final_ity_last_over_hy": float(ity[-1, -1] / plane.h_y),
                "ity_gain_last": float(ity[-1, -1] - ity[0, -1]),
                "max_compression": float(comp.max()),
                "compressing_layer": int(comp.argmax()) + 1,
                # a rise then a fall (the paper's fitting then compression phases): the smaller
                # of the rise from initialization to the peak and the fall after it
                "max_fit_then_compress": float(np.minimum(ixt.max(0) - ixt[0], comp).max()),
                "fit_then_compress_layer": int(np.minimum(ixt.max(0) - ixt[0], comp).argmax()) + 1,
                "dpi_violation_ixt": dpi_violation(ixt),
                "dpi_violation_ity": dpi_violation(ity),
            }
        ctx.metric(
            f"{activation}_accuracy",
            {
                "train_final": float(plane.train_accuracy[:, -1].mean()),
                "test_final": float(plane.test_accuracy[:, -1].mean()),
            },
        )
        ctx.metric(
            f"{activation}_trajectories",
            {
                "epochs": plane.epochs.tolist(),
                **{
                    f"{q}_{est}": np.round(plane.mean(est)[i], 4).tolist()
                    for est in ("binning", "kde")
                    for i, q in enumerate(("ixt", "ity"))
                },
            },
        )
    ctx.metric("summary", summary)
    ctx.metric("h_y_bits", planes["tanh"].h_y)
    ctx.table("Information plane per layer (run means; bits)", rows)

    tanh = summary["tanh_binning"]
    ctx.check("tanh_final_ity_over_hy", tanh["final_ity_last_over_hy"])
    ctx.check("tanh_ity_gain_bits", tanh["ity_gain_last"])
    ctx.check("tanh_compression_bits", tanh["max_compression"])
    ctx.check("tanh_dpi_violation_bits", max(tanh["dpi_violation_ixt"], tanh["dpi_violation_ity"]))

    for activation, plane in planes.items():
        fig, axes = new_figure(1, 2, figsize=(10.0, 4.0))
        for ax, estimator in zip(axes, ("binning", "kde"), strict=True):
            ixt, ity = plane.mean(estimator)
            artist = plot_information_plane(
                ax, ixt, ity, plane.epochs, layer_names=plane.layer_names
            )
            ax.axhline(plane.h_y, color="grey", lw=0.6, ls=":")
            ax.set_title(
                f"{activation}: "
                + ("binning, 30 bins" if estimator == "binning" else "KDE upper bound, var 0.1"),
                fontsize=9,
            )
        axes[0].legend(fontsize=7, loc="lower right")
        fig.colorbar(artist, ax=axes, label="epoch")
        ctx.save_figure(f"info_plane_{activation}", fig)

    relu = summary["relu_binning"]
    names = planes["tanh"].layer_names
    ixt_tanh = planes["tanh"].mean("binning")[0]
    rise_tanh = ixt_tanh.max(0) - ixt_tanh[0]
    comp_layer = int(tanh["compressing_layer"])
    ftc_layer = int(tanh["fit_then_compress_layer"])
    relu_comp = compression(planes["relu"].mean("binning")[0])
    relu_hidden = float(relu_comp[:-1].max())
    tanh_hidden = float(compression(ixt_tanh)[:-1].max())
    s = planes["tanh"].settings
    ctx.note(
        f"Setup: the 12-bit task (all 4096 inputs; labels threshold a rotation-invariant "
        f"function of 12 charges on the icosahedron vertices, since the authors' var_u.mat "
        f"labels cannot be regenerated; P(y=1) = {float(task.y.float().mean()):.4f}, H(Y) = "
        f"{planes['tanh'].h_y:.4f} bits), 80/20 split, networks {s['sizes']} trained with "
        f"Adam (lr {s['lr']}, batch "
        f"{s['batch_size']} of {s['train_size']}) for {s['epochs']} epochs, "
        f"{planes['tanh'].ixt['binning'].shape[0]} runs averaged (the paper: 50 runs; the "
        f"authors' code: batch 256, lr 4e-4, 8000 epochs). Binning: 30 equal bins per "
        f"unit over [-1, 1] for tanh "
        f"layers, over [0, max] (the layer's largest activation over training) for ReLU "
        f"layers, over [0, 1] for the softmax output; I(X;T) = H(T) over all 4096 inputs. "
        f"KDE: Kolchinsky-Tracey pairwise-distance upper bound with noise variance 0.1 on "
        f"{s['kde_samples']} fixed random inputs (so its I(X;T) is at most "
        f"log2({s['kde_samples']}) bits). Thresholds are ours, fixed before the runs."
    )
    ctx.note(
        f"Compression is measured from each layer's peak, wherever it lies. With the "
        f"authors' initialization (std 1/sqrt(fan_in)) the deep tanh layers start near their "
        f"highest binned I(X;T): the most compressing layer, {names[comp_layer - 1]}, rises "
        f"{rise_tanh[comp_layer - 1]:.2f} bits above its initial value before falling "
        f"{tanh['max_compression']:.2f} bits from its peak. The paper's two phases (I(X;T) "
        f"first rises, then falls) show most clearly in {names[ftc_layer - 1]}: "
        f"min(rise, fall) = {tanh['max_fit_then_compress']:.2f} bits (table: 'rise to peak')."
    )
    ctx.note(
        f"ReLU (reported, not checked): binned last-layer I(T;Y)/H(Y) = "
        f"{relu['final_ity_last_over_hy']:.3f}; largest compression of a hidden ReLU layer "
        f"{relu_hidden:.2f} bits (tanh: {tanh_hidden:.2f}), of the softmax output "
        f"{relu_comp[-1]:.2f} bits (the saturating softmax compresses like tanh). Saxe et al. "
        f"(2018) attribute tanh compression to saturation of the units into the edge bins, "
        f"which ReLU units do not have. The ReLU binned DPI violation "
        f"({max(relu['dpi_violation_ixt'], relu['dpi_violation_ity']):.2f} bits) comes from "
        f"each layer having its own [0, max] bin grid, so a wide-range layer is binned more "
        f"coarsely than the next one: binning estimates obey the DPI only with a common grid. "
        f"The KDE "
        f"estimator adds the same noise to every layer whatever its scale, so it need not "
        f"obey the DPI across layers; it is reported, not checked."
    )
