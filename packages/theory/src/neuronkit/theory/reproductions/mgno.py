"""Reproduction: MgNO beats a larger U-Net on Darcy / variable-coefficient Poisson data.

He, Liu & Xu, "MgNO: Efficient Parameterization of Linear Operators via Multigrid" (ICLR 2024).
MgNO parameterizes each layer's linear operator by a multigrid V-cycle (shared ``A`` per level,
one smoother ``B`` per step, strided-convolution restriction, transposed-convolution
prolongation), with boundary conditions set by the padding. On data from a finite-difference
solver written here, MgNO reaches a lower test relative L2 error than a U-Net with more
parameters, under Dirichlet (zero padding) and periodic (circular padding) boundaries.
"""

from __future__ import annotations

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.data.pde import DarcyDataset, darcy_dataset
from neuronkit.theory.operators import (
    MgNO,
    UNet2d,
    count_parameters,
    evaluate_operator,
    fit_operator,
)

# boundary -> (padding mode, random forcing?)
_SETUPS = {"dirichlet": ("zeros", False), "periodic": ("circular", True)}


def _inputs(data: DarcyDataset, n_train: int, with_forcing: bool) -> tuple[torch.Tensor, ...]:
    """Normalised model inputs ``[N, C, n, n]`` and targets ``[N, 1, n, n]`` (train statistics)."""
    a = data.coefficient
    channels = [(a - a[:n_train].mean()) / a[:n_train].std()]
    if with_forcing:
        channels.append(data.forcing / data.forcing[:n_train].std())
    x = torch.stack(channels, dim=1)
    y = (data.solution / data.solution[:n_train].std())[:, None]
    return x, y


@reproduction(
    id="theory.mgno",
    paper="MgNO: Efficient Parameterization of Linear Operators via Multigrid",
    claim=(
        "on generated 2D Darcy / variable-coefficient Poisson data (own finite-difference "
        "solver), MgNO's relative L2 error <= a U-Net baseline's with fewer parameters, under "
        "both Dirichlet and periodic boundaries"
    ),
    checks=[
        Check(
            "dirichlet_error_ratio",
            "<=",
            1.0,
            "MgNO / U-Net test relative L2 error, Darcy flow with u = 0 on the boundary",
        ),
        Check(
            "periodic_error_ratio",
            "<=",
            1.0,
            "MgNO / U-Net test relative L2 error, periodic variable-coefficient Poisson",
        ),
        Check(
            "param_ratio",
            "<",
            1.0,
            "MgNO parameters / U-Net parameters (largest over the compared pairs)",
        ),
    ],
    seed=0,
    threads=1,  # small convolutions: a second thread costs more than it gives, worse when loaded
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        n, levels, depth, n_train, n_test = 15, 3, 2, 160, 100
        epochs, batch, lr, layers = 8, 10, 2e-3, 3
        mgno_widths, unet_widths = [10], [10]
    else:
        n, levels, depth, n_train, n_test = 31, 4, 3, 300, 100
        epochs, batch, lr, layers = 200, 10, 2e-3, 3  # near convergence (the authors: 500)
        mgno_widths, unet_widths = [8, 12], [4, 8]
    seeds = {b: [int(s) for s in ctx.rng.integers(0, 2**31, size=3)] for b in _SETUPS}
    ctx.metric("mgno_layers", layers)
    ctx.metric("levels", levels)
    ctx.metric("unet_depth", depth)
    ctx.metric("n_train", n_train)
    ctx.metric("n_test", n_test)
    ctx.metric("epochs", epochs)

    rows: list[dict] = []
    panels: dict[str, dict] = {}
    ratios: dict[str, float] = {}
    param_ratios: list[float] = []
    pairs: list[dict] = []
    for boundary, (mode, random_forcing) in _SETUPS.items():
        grid = n if boundary == "dirichlet" else n + 1  # 2**k - 1 interior nodes / 2**k nodes
        seed_data, seed_model, seed_train = seeds[boundary]
        ctx.log(f"{boundary}: solving {n_train + n_test} problems on a {grid}x{grid} grid")
        data = darcy_dataset(
            n_train + n_test,
            grid,
            boundary=boundary,
            forcing="random" if random_forcing else None,
            seed=seed_data,
        )
        x, y = _inputs(data, n_train, random_forcing)
        results: dict[str, list[dict]] = {"mgno": [], "unet": []}
        specs = [("mgno", w) for w in mgno_widths] + [("unet", w) for w in unet_widths]
        for kind, width in ctx.progress(specs, desc=boundary, total=len(specs)):
            model: torch.nn.Module
            if kind == "mgno":
                model = MgNO(
                    x.shape[1],
                    1,
                    width=width,
                    num_layers=layers,
                    levels=levels,
                    padding_mode=mode,
                    seed=seed_model,
                )
            else:
                model = UNet2d(
                    x.shape[1], 1, width=width, depth=depth, padding_mode=mode, seed=seed_model
                )
            fit = fit_operator(
                model,
                x[:n_train],
                y[:n_train],
                epochs=epochs,
                batch_size=batch,
                lr=lr,
                seed=seed_train,
            )
            errors = evaluate_operator(model, x[n_train:], y[n_train:])
            with torch.no_grad():
                example = model.eval()(x[n_train : n_train + 1])[0, 0]
            entry = {
                "boundary": boundary,
                "model": kind,
                "width": width,
                "params": count_parameters(model),
                "train_loss": fit.train_loss[-1],
                "test_rel_l2": float(errors.mean()),
                "test_rel_l2_median": float(errors.median()),
                "train_seconds": round(fit.seconds, 2),
            }
            rows.append(entry)
            results[kind].append({**entry, "curve": fit.train_loss, "example": example})
        mg, un = results["mgno"][-1], results["unet"][-1]
        for m in results["mgno"]:  # every pairing with a larger U-Net, for the report
            for u in results["unet"]:
                if u["params"] > m["params"]:
                    pairs.append(
                        {
                            "boundary": boundary,
                            "mgno_params": m["params"],
                            "unet_params": u["params"],
                            "error_ratio": m["test_rel_l2"] / u["test_rel_l2"],
                        }
                    )
        ratios[boundary] = mg["test_rel_l2"] / un["test_rel_l2"]
        param_ratios.append(mg["params"] / un["params"])
        ctx.metric(f"{boundary}_grid", grid)
        ctx.metric(f"{boundary}_mgno_test_rel_l2", mg["test_rel_l2"])
        ctx.metric(f"{boundary}_unet_test_rel_l2", un["test_rel_l2"])
        ctx.metric(f"{boundary}_mgno_params", mg["params"])
        ctx.metric(f"{boundary}_unet_params", un["params"])
        panels[boundary] = {"data": data, "target": y[n_train, 0], "results": results}
    ctx.table("Test relative L2 error by model and size", rows)
    ctx.table("MgNO / U-Net error ratio for every U-Net with more parameters", pairs)
    ctx.check("dirichlet_error_ratio", ratios["dirichlet"])
    ctx.check("periodic_error_ratio", ratios["periodic"])
    ctx.check("param_ratio", max(param_ratios))
    _figures(ctx, panels, n_train)
    ctx.note(
        "Data (own solver, neuronkit.theory.data.pde): conservative 5-point finite differences "
        "for -div(a grad u) = f on the unit square, harmonic-mean face coefficients, "
        "second-order accurate (unit-tested against manufactured solutions), solved with "
        "scipy.sparse (batched preconditioned CG, checked against sparse LU). Coefficient a: "
        "FNO's Darcy prior, a Gaussian random field with covariance (-Laplacian + 9)^-2 "
        "thresholded to 12 / 3. Dirichlet: u = 0 on the boundary, f = 1, "
        f"{n}x{n} interior nodes (h = 1/{n + 1}), input a, output u. Periodic: a constant f has "
        "no periodic solution and a fixed f would make the map not translation-equivariant, so "
        "each sample draws its own zero-mean Gaussian-random-field forcing; "
        f"{n + 1}x{n + 1} nodes, input (a, f), output the zero-mean u. Inputs standardised and "
        "outputs scaled with training statistics."
    )
    ctx.note(
        f"MgNO (neuronkit.theory.operators.MgNO): {layers} layers u <- GELU(MgConv(u) + K u + b), "
        f"{levels}-level V-cycles with one smoothing step per level and two on the coarsest (the "
        "authors' Darcy setting), shared A per level, residual restriction (paper Algorithm 1), "
        "3x3 stride-2 restriction and 3x3 stride-2 transposed-convolution prolongation, zero "
        "padding for Dirichlet and circular padding (also in the strided and transposed "
        "convolutions) for periodic data; no lifting, a 1x1 output. Baseline: U-Net with "
        f"{depth} down/up levels, two 3x3 convolutions per block, channels width * 2^level, the "
        "same padding. Both trained identically: Adam, one-cycle schedule peaking at "
        f"lr {lr} with the authors' shape (from lr / 2, 20% warm-up, down to lr / 200; their "
        "utilities3.getOptimizerScheduler and darcy.py), stepped per batch, batch "
        f"{batch}, {epochs} epochs, relative L2 loss, {n_train} training and "
        f"{n_test} test samples; the check compares the largest MgNO ({mgno_widths[-1]} "
        f"channels) with the largest U-Net ({unet_widths[-1]} base channels)."
    )
    ctx.note(
        "Scale: the paper trains on 1000 Darcy samples at 211x211 (and 421x421) for hundreds of "
        "epochs and reports errors around 1e-3 to 1e-2; here the grids, the data and the "
        "training budget are far smaller, so the absolute errors are much larger; the claim "
        "tested is the ordering at fewer parameters. The authors' code uses a kernel-4 "
        "transposed convolution on even grids; a kernel-3 one is used here because it is the "
        "adjoint shape of the 3x3 restriction on every grid (odd Dirichlet grids and periodic "
        "ones included). Each layer's bias b is one constant per channel (a constant "
        "function), as in the authors' code; a per-node bias field would tie the model to one "
        "grid. The claim is checked on one seed; quick mode uses 15x15 / 16x16 grids and 3 "
        "levels, full mode 31x31 / 32x32 grids, 4 levels and two sizes of each model."
    )
    ctx.note(
        "Training length (an audit, neuronkit-theory 0.6.10, measured outside this run with "
        "torch's default one-cycle shape, from lr / 25 with 30% warm-up, before the authors' "
        "shape was adopted; at quick size, seed 0, that change moved the ratios from 0.90 / 0.92 "
        "to 0.87 / 0.90; quick mode with --seed 0-4 now gives Dirichlet 0.87, 0.89, 0.90, 1.0002, "
        "0.91 and periodic 0.90, 0.60, 0.81, 0.61, 0.87): at "
        "short budgets neither model has converged (train error about equal to test error), "
        "and the Dirichlet ratio changes sign with the number of epochs. Quick size, seed 0: "
        "0.90 at 8 epochs (quick mode), 0.71 at 30, 1.08 at 100, 1.20 at 300 (both models "
        "overfit 160 samples on the 15x15 grid; 2 of 3 seed draws above 1). Full size: 1.05 at "
        "20 epochs (full mode before 0.6.10, an unlucky MgNO initialization: other seed draws "
        "0.67-0.80), 1.00 at 60, 0.88 at 200 (0.86 on a second draw); periodic 0.55 at 20, "
        "1.03 at 80, 0.89 at 160. Full mode therefore trains 200 epochs (the authors' Darcy "
        "runs use 500; with their schedule shape it gives 0.843 / 0.806 at seed 0, was 0.881 / "
        "0.889); quick mode cannot converge in its time budget, so its pass is a "
        "short-training result; trained to convergence at quick size, MgNO loses on 2 of 3 seed "
        "draws."
    )


def _figures(ctx: RunContext, panels: dict[str, dict], n_train: int) -> None:
    fig, axes = new_figure(2, 5, figsize=(15, 6))
    for row, (boundary, panel) in enumerate(panels.items()):
        data: DarcyDataset = panel["data"]
        target = panel["target"].numpy()
        mg = panel["results"]["mgno"][-1]
        un = panel["results"]["unet"][-1]
        pred_mg, pred_un = mg["example"].numpy(), un["example"].numpy()
        vmax = float(np.abs(target).max())
        err_max = float(max(np.abs(pred_mg - target).max(), np.abs(pred_un - target).max()))
        images = [
            (data.coefficient[n_train].numpy(), f"{boundary}: coefficient a", "viridis", None),
            (target, "true u (scaled)", "RdBu_r", (-vmax, vmax)),
            (pred_mg, f"MgNO ({mg['params']} params)", "RdBu_r", (-vmax, vmax)),
            (np.abs(pred_mg - target), "|MgNO - u|", "magma", (0, err_max)),
            (
                np.abs(pred_un - target),
                f"|U-Net - u| ({un['params']} params)",
                "magma",
                (0, err_max),
            ),
        ]
        for ax, (img, title, cmap, lim) in zip(axes[row], images, strict=True):
            kw = {} if lim is None else {"vmin": lim[0], "vmax": lim[1]}
            im = ax.imshow(img.T, origin="lower", cmap=cmap, **kw)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    ctx.save_figure("darcy_predictions", fig)

    fig, axes = new_figure(1, 3, figsize=(13, 4))
    for ax, (boundary, panel) in zip(axes[:2], panels.items(), strict=True):
        for kind, color, label in (("mgno", "C0", "MgNO"), ("unet", "C1", "U-Net")):
            res = panel["results"][kind]
            ax.plot(
                [r["params"] for r in res],
                [r["test_rel_l2"] for r in res],
                "o-",
                color=color,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test relative L2 error")
        ax.set_title(boundary, fontsize=9)
        ax.legend(fontsize=7)
    for (boundary, panel), style in zip(panels.items(), ("-", "--"), strict=True):
        for kind, color in (("mgno", "C0"), ("unet", "C1")):
            res = panel["results"][kind][-1]
            axes[2].semilogy(res["curve"], style, color=color, label=f"{kind}, {boundary}")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("training relative L2")
    axes[2].legend(fontsize=7)
    ctx.save_figure("error_vs_params", fig)
