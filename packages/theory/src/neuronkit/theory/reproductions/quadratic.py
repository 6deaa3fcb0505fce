"""Reproduction: quadratic networks on radial tasks, and ReLinear against collapse.

Fan, Li, Wang et al., "Expressivity and Trainability of Quadratic Networks" (IEEE TNNLS).
Quadratic neurons ``(w_r.x+b_r)(w_g.x+b_g) + w_b.(x*x) + c``:

1. expressivity: on a radial task (is ``x ~ N(0, I)`` inside the median-mass ball?) a one-hidden
   -layer quadratic ReLU network beats a conventional ReLU network with the same number of
   parameters (the conventional one gets a wider hidden layer);
2. trainability: a deeper quadratic network whose quadratic weights are initialized at random
   collapses at a high learning rate, while ReLinear (quadratic terms initialized at the
   conventional neuron, ``w_g = 0, b_g = 1, w_b = 0, c = 0``, and trained at ``1e-4 x`` the
   learning rate, the authors' code's setting) trains.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.data.radial import RadialDataset, radial_shells
from neuronkit.theory.quadratic import (
    QuadraticNet,
    conventional_net,
    quadratic_net_size,
    relinear_param_groups,
)

# A run "collapses" when its training loss becomes NaN/inf at any step, or when it ends at
# chance level: final training accuracy <= CHANCE_MARGIN (balanced binary task, chance = 0.5).
CHANCE_MARGIN = 0.6


def _train(
    model: nn.Module,
    data: RadialDataset,
    test: RadialDataset,
    *,
    groups: list[dict] | None,
    lr: float,
    steps: int,
    optimizer: str,
) -> dict:
    params = groups if groups is not None else model.parameters()
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    target = data.y.float()
    losses: list[float] = []
    diverged = False
    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(data.x).squeeze(-1), target)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            diverged = True
            break
        loss.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
    with torch.no_grad():
        train_acc = float(((model(data.x).squeeze(-1) > 0).long() == data.y).float().mean())
        test_acc = float(((model(test.x).squeeze(-1) > 0).long() == test.y).float().mean())
    if diverged or not math.isfinite(train_acc):
        train_acc = test_acc = 0.5
    collapsed = diverged or train_acc <= CHANCE_MARGIN
    return {
        "losses": losses,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "diverged": diverged,
        "collapsed": collapsed,
    }


@reproduction(
    id="theory.quadratic",
    paper="On Expressivity and Trainability of Quadratic Networks",
    claim=(
        "on radial tasks a quadratic net beats a conventional one of equal parameters; ReLinear "
        "(quadratic terms start at the standard neuron, smaller learning rate) lowers the "
        "collapse rate across seeds at a high learning rate"
    ),
    checks=[
        Check(
            "radial_error_ratio",
            "<",
            1.0,
            "test error of the quadratic net / conventional net of equal parameters (mean over "
            "seeds)",
        ),
        Check(
            "collapse_rate_reduction",
            ">",
            0.0,
            "collapse rate with random quadratic init minus with ReLinear (high learning rate)",
        ),
    ],
    seed=0,
    threads=1,  # tiny matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        dim, n_train, seeds, hidden, steps = 6, 600, 3, 4, 300
        deep_width, deep_depth, collapse_seeds, collapse_steps, lr_high = 16, 3, 6, 150, 0.1
    else:
        dim, n_train, seeds, hidden, steps = 8, 2000, 5, 6, 1000
        deep_width, deep_depth, collapse_seeds, collapse_steps, lr_high = 24, 4, 20, 400, 0.1
    # ReLinear's gradient shrinking: the authors' reference code trains both quadratic groups at
    # lr_gb = 1e-5 with lr = 0.1 (FengleiFan/ReLinear,
    # TrainQuadraticNetworksViaReLinear/qtrainer_10_5.py), i.e. gamma_g = gamma_b = 1e-4
    gamma_g = gamma_b = 1e-4
    seed_data, seed_test, seed_model = (int(s) for s in ctx.rng.integers(0, 2**31, size=3))
    train = radial_shells(n_train, dim, shells=2, seed=seed_data)
    test = radial_shells(4000, dim, shells=2, seed=seed_test)

    # 1. expressivity at equal parameter count
    q_widths = [dim, hidden, 1]
    n_q = quadratic_net_size(q_widths)
    conv_hidden = max(1, round((n_q - 1) / (dim + 2)))  # (dim+1)H + H + 1 parameters
    n_c = (dim + 2) * conv_hidden + 1
    rows = []
    curves: dict[str, list[list[float]]] = {"quadratic": [], "conventional": []}
    for s in ctx.progress(range(seeds), desc="radial task", total=seeds):
        q = QuadraticNet(q_widths, seed=seed_model + s)
        c = conventional_net([dim, conv_hidden, 1], seed=seed_model + s)
        rq = _train(q, train, test, groups=None, lr=1e-2, steps=steps, optimizer="adam")
        rc = _train(c, train, test, groups=None, lr=1e-2, steps=steps, optimizer="adam")
        curves["quadratic"].append(rq["losses"])
        curves["conventional"].append(rc["losses"])
        rows.append(
            {
                "seed": s,
                "quadratic_test_acc": rq["test_acc"],
                "conventional_test_acc": rc["test_acc"],
            }
        )
    err_q = float(np.mean([1 - r["quadratic_test_acc"] for r in rows]))
    err_c = float(np.mean([1 - r["conventional_test_acc"] for r in rows]))
    ctx.metric("dim", dim)
    ctx.metric("n_train", n_train)
    ctx.metric("quadratic_widths", q_widths)
    ctx.metric("conventional_widths", [dim, conv_hidden, 1])
    ctx.metric("quadratic_params", n_q)
    ctx.metric("conventional_params", n_c)
    ctx.metric("quadratic_test_error", err_q)
    ctx.metric("conventional_test_error", err_c)
    ctx.table("Radial task: test accuracy at equal parameter count", rows)
    ctx.check("radial_error_ratio", err_q / max(err_c, 1e-12))

    # 2. trainability at a high learning rate: random quadratic init vs ReLinear
    widths = [dim] + [deep_width] * deep_depth + [1]
    col_rows = []
    deep_curves: dict[str, list[list[float]]] = {"random": [], "relinear": []}
    for s in ctx.progress(range(collapse_seeds), desc="collapse", total=collapse_seeds):
        res = {}
        for init in ("random", "relinear"):
            model = QuadraticNet(widths, init=init, seed=seed_model + 1000 + s)
            groups = (
                relinear_param_groups(model, lr_high, gamma_g=gamma_g, gamma_b=gamma_b)
                if init == "relinear"
                else None
            )
            res[init] = _train(
                model,
                train,
                test,
                groups=groups,
                lr=lr_high,
                steps=collapse_steps,
                optimizer="sgd",
            )
            deep_curves[init].append(res[init]["losses"])
        conv = conventional_net(widths, seed=seed_model + 1000 + s)
        res["conventional"] = _train(
            conv, train, test, groups=None, lr=lr_high, steps=collapse_steps, optimizer="sgd"
        )
        col_rows.append(
            {
                "seed": s,
                **{f"{k}_collapsed": bool(v["collapsed"]) for k, v in res.items()},
                **{f"{k}_test_acc": v["test_acc"] for k, v in res.items()},
            }
        )
    rates = {
        k: float(np.mean([r[f"{k}_collapsed"] for r in col_rows]))
        for k in ("random", "relinear", "conventional")
    }
    ctx.metric("deep_widths", widths)
    ctx.metric("high_lr", lr_high)
    ctx.metric("relinear_gammas", {"gamma_g": gamma_g, "gamma_b": gamma_b})
    ctx.metric("collapse_rates", rates)
    ctx.table("High learning rate: collapse per seed", col_rows)
    ctx.check("collapse_rate_reduction", rates["random"] - rates["relinear"])

    _figures(ctx, rows, curves, deep_curves, rates)
    ctx.note(
        f"Radial task: x ~ N(0, I_{dim}), label = [||x||^2 above the chi-square median] "
        "(balanced); "
        f"{n_train} training and 4000 test points. Quadratic net {q_widths} with ReLU "
        f"({n_q} parameters, ReLinear init) against a ReLU MLP {[dim, conv_hidden, 1]} "
        f"({n_c} parameters); full-batch Adam, lr 1e-2, {steps} steps, logistic loss, "
        f"{seeds} seeds."
    )
    ctx.note(
        f"Collapse: quadratic ReLU nets {widths}, full-batch SGD with momentum 0.9 at lr "
        f"{lr_high}, {collapse_steps} steps, {collapse_seeds} seeds. A run counts as collapsed "
        f"when its loss becomes NaN/inf at any step or its final training accuracy is <= "
        f"{CHANCE_MARGIN} (chance is 0.5). 'random' draws every quadratic weight like nn.Linear "
        "(uniform +-1/sqrt(fan_in)); ReLinear starts at w_g = 0, b_g = 1, w_b = 0, c = 0 and "
        f"trains (w_g, b_g) at {gamma_g:g} x lr and (w_b, c) at {gamma_b:g} x lr (the paper's "
        "gradient-shrinking variant with the authors' code's setting: lr 0.1, lr_gb 1e-5 in "
        "FengleiFan/ReLinear qtrainer_10_5.py). With so small a gamma the quadratic terms barely "
        "move in this short run, so ReLinear trains essentially like the conventional ReLU net of "
        "the same layout, run alongside for reference (the linear branch starts from the same "
        "weights)."
    )


def _figures(
    ctx: RunContext,
    rows: list[dict],
    curves: dict[str, list[list[float]]],
    deep_curves: dict[str, list[list[float]]],
    rates: dict[str, float],
) -> None:
    fig, (ax1, ax2, ax3) = new_figure(1, 3)
    for name, style in (("quadratic", "C0"), ("conventional", "C1")):
        for i, loss in enumerate(curves[name]):
            ax1.semilogy(loss, color=style, lw=1, label=name if i == 0 else None)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_title("radial task, equal parameters", fontsize=9)
    ax1.legend(fontsize=7)
    for name, style in (("random", "C3"), ("relinear", "C2")):
        for i, loss in enumerate(deep_curves[name]):
            finite = [v if math.isfinite(v) else np.nan for v in loss]
            ax2.semilogy(finite, color=style, lw=1, label=name if i == 0 else None)
            if loss and not math.isfinite(loss[-1]):
                ax2.plot(len(loss) - 1, np.nanmax([*finite, 1.0]), "x", color=style)
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (x: diverged)")
    ax2.set_title("high learning rate", fontsize=9)
    ax2.legend(fontsize=7)
    names = list(rates)
    ax3.bar(names, [rates[k] for k in names], color=["C3", "C2", "C1"])
    ax3.set_ylabel("collapse rate")
    ax3.set_ylim(0, 1.05)
    ax3.set_title("collapse across seeds", fontsize=9)
    ctx.save_figure("quadratic_radial_and_collapse", fig)
