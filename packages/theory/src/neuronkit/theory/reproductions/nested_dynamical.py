"""Reproduction: deep networks as nested dynamical systems (Spivak & Hosgood, 2021).

1. An MLP trained by minibatch SGD is a nested dynamical system: each layer (or each single
   "neuron") is a system whose state is its weights, wires carry activations forward and
   gradients back, the update is the gradient step, and the training loop is the network nested
   in a diagram with a data stream and a loss. Simulating that system must reproduce a directly
   coded ``torch`` SGD run (autograd + ``torch.optim.SGD``) of the same MLP from the same
   weights on the same minibatches, to 1e-6 in every loss and every weight at every step
   (and after the last step).
2. A deeply interacting learning system: a feedback loop (reference -> controller -> plant ->
   controller) in which the controller holds a learner (the same dense-layer box as in the MLP)
   that re-identifies the plant online. When the plant's gain flips sign mid-run, the adaptive
   controller recovers tracking while the fixed controller (same wiring, learning rate 0)
   keeps a large error.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.dynamical import (
    adaptive_controller,
    closed_loop,
    first_order_plant,
    minibatch_schedule,
    mlp_learner,
    mlp_parameters,
    signal_source,
    simulate,
    tracking_error,
    training_system,
)

# Our thresholds, fixed before any run (PAPERS.md gives none for these two):
# * the adaptive controller's mean tracking error after the change (past a 50-tick settling
#   window) must be below half the fixed controller's;
# * training must actually train (otherwise matching the reference run is trivial): the mean
#   loss over the last 10% of steps must be below half the first step's loss.
TRACKING_RATIO = 0.5
SETTLE = 50
LOSS_RATIO = 0.5
# learning rates of the reported (unchecked) sensitivity sweep of the gain-flip scenario
LR_SWEEP = (0.1, 0.25, 0.4, 0.5, 0.9)


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float64)
    labels = torch.tensor(data.target, dtype=torch.long)
    return x, labels, F.one_hot(labels, 10).to(torch.float64)


def _init(widths: list[int], seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(widths):
        bound = fan_in**-0.5
        weights.append(
            (torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        )
        biases.append((torch.rand(fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
    return weights, biases


def _direct_sgd(
    x: torch.Tensor,
    labels: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    schedule: torch.Tensor,
    lr: float,
) -> tuple[np.ndarray, list[list[torch.Tensor]]]:
    """The reference: nn.Linear layers, tanh, F.cross_entropy, autograd, torch.optim.SGD."""
    layers = [torch.nn.Linear(w.shape[1], w.shape[0]).double() for w in weights]
    with torch.no_grad():
        for layer, w, b in zip(layers, weights, biases):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    opt = torch.optim.SGD(params, lr=lr)
    losses, snapshots = [], []
    for idx in schedule:
        snapshots.append([p.detach().clone() for p in params])
        h = x[idx]
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = torch.tanh(h)
        loss = F.cross_entropy(h, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        losses.append(loss.item())
    snapshots.append([p.detach().clone() for p in params])  # after the last step
    return np.array(losses), snapshots


def _nested_sgd(
    x: torch.Tensor,
    onehot: torch.Tensor,
    widths: list[int],
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    schedule: torch.Tensor,
    lr: float,
    granularity: str,
) -> tuple[np.ndarray, list[list[torch.Tensor]], float]:
    net = mlp_learner(
        widths, lr=lr, activations="tanh", weights=weights, biases=biases, granularity=granularity
    )
    system = training_system(x, onehot, net, schedule=schedule, loss="cross_entropy")
    start = time.perf_counter()
    traj = simulate(
        system,
        schedule.shape[0],
        record=lambda _t, s: [p.clone() for wb in mlp_parameters(s) for p in wb],
    )
    seconds = time.perf_counter() - start
    final = [p.clone() for wb in mlp_parameters(traj.final_state) for p in wb]
    return traj.stack("loss").numpy(), [*traj.records, final], seconds


def _compare(
    a: tuple[np.ndarray, list[list[torch.Tensor]]], b: tuple[np.ndarray, list[list[torch.Tensor]]]
) -> tuple[float, float]:
    """Max |difference| of the losses and of every parameter at every step (the snapshots hold
    the weights before each step and after the last). Mismatched lengths or shapes raise
    instead of being skipped."""
    if a[0].shape != b[0].shape:
        raise ValueError(f"loss curves differ in length: {a[0].shape} vs {b[0].shape}")
    loss_diff = float(np.max(np.abs(a[0] - b[0])))
    weight_diff = 0.0
    for sa, sb in zip(a[1], b[1], strict=True):
        for p, q in zip(sa, sb, strict=True):
            if p.shape != q.shape:
                raise ValueError(f"parameter shapes differ: {tuple(p.shape)} vs {tuple(q.shape)}")
            weight_diff = max(weight_diff, float((p - q).abs().max()))
    return loss_diff, weight_diff


def _control_run(
    lr: float, gains: torch.Tensor, noise: torch.Tensor, ref: torch.Tensor, a: float
) -> dict[str, np.ndarray]:
    loop = closed_loop(
        first_order_plant(a, gains, noise=noise),
        adaptive_controller(lr=lr, a0=a, b0=1.0),
        signal_source(ref),
    )
    traj = simulate(loop, ref.shape[0])
    y, r = traj.stack("y"), traj.stack("r")
    return {
        "error": tracking_error(y, r).numpy(),
        "y": y[:, 0].numpy(),
        "r": r[:, 0].numpy(),
        "b_hat": traj.stack("weight")[:, 0, 1].numpy(),
    }


@reproduction(
    id="theory.nested_dynamical",
    paper="Deep neural networks as nested dynamical systems",
    claim=(
        "an MLP's SGD training composed as nested dynamical systems (layers/neurons holding "
        "weights, wires carrying activations forward and gradients back) reproduces a directly "
        "coded SGD run to 1e-6; a feedback loop whose controller holds a learner adapts to a "
        "plant change where the fixed controller does not"
    ),
    checks=[
        Check(
            "sgd_max_abs_diff",
            "<=",
            1e-6,
            "max |difference| of losses and weights at every step, nested system vs direct "
            "torch SGD (layer- and neuron-granularity runs)",
        ),
        Check(
            "training_loss_ratio",
            "<",
            0.5,
            "ours: mean loss over the last 10% of steps / first-step loss (the run trains)",
        ),
        Check(
            "tracking_error_ratio",
            "<",
            0.5,
            "ours: mean |tracking error| after the gain change, adaptive / fixed controller",
        ),
    ],
    seed=0,
    threads=1,
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        layer_widths, layer_steps = [64, 32, 10], 300
        neuron_widths, neuron_steps = [64, 12, 10], 300
        horizon, n_seeds = 400, 3
    else:
        layer_widths, layer_steps = [64, 64, 32, 10], 3000
        neuron_widths, neuron_steps = [64, 32, 10], 1500
        horizon, n_seeds = 2000, 10
    batch, lr = 32, 0.1
    seed_init, seed_batches, seed_noise = (int(s) for s in ctx.rng.integers(0, 2**31, size=3))
    x, labels, onehot = _digits()

    # 1. SGD as a nested dynamical system vs directly coded SGD
    rows = []
    curves = {}
    worst = 0.0
    loss_ratios = []
    for gran, widths, steps in (
        ("layer", layer_widths, layer_steps),
        ("neuron", neuron_widths, neuron_steps),
    ):
        weights, biases = _init(widths, seed_init)
        schedule = minibatch_schedule(x.shape[0], batch, steps, seed=seed_batches)
        ctx.log(f"SGD as a nested system, {gran} granularity {widths}, {steps} steps")
        nested = _nested_sgd(x, onehot, widths, weights, biases, schedule, lr, gran)
        direct = _direct_sgd(x, labels, weights, biases, schedule, lr)
        loss_diff, weight_diff = _compare(nested[:2], direct)
        worst = max(worst, loss_diff, weight_diff)
        tail = max(1, steps // 10)
        ratio = float(nested[0][-tail:].mean() / nested[0][0])
        loss_ratios.append(ratio)
        curves[gran] = (nested[0], direct[0])
        rows.append(
            {
                "granularity": gran,
                "widths": str(widths),
                "steps": steps,
                "max_loss_diff": loss_diff,
                "max_weight_diff": weight_diff,
                "first_loss": float(nested[0][0]),
                "final_loss": float(nested[0][-tail:].mean()),
                "nested_seconds": round(nested[2], 2),
            }
        )
    ctx.table("Nested dynamical system vs directly coded SGD (float64)", rows)
    ctx.metric("sgd_comparison", rows)
    ctx.check("sgd_max_abs_diff", worst)
    ctx.check("training_loss_ratio", max(loss_ratios))

    # 2. deeply interacting learning system: adaptive vs fixed controller
    a, change = 0.7, horizon // 2
    t = torch.arange(horizon)
    ref = torch.where((t // 25) % 2 == 0, 1.0, -1.0).to(torch.float64)[:, None]
    scenarios = {"gain_flip": -0.8, "gain_drop": 0.3}
    ctrl_rows = []
    traces: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for scen, new_gain in scenarios.items():
        gains = torch.ones(horizon, dtype=torch.float64)
        gains[change:] = new_gain
        post: dict[str, list[float]] = {"fixed": [], "adaptive": []}
        pre: dict[str, list[float]] = {"fixed": [], "adaptive": []}
        for s in ctx.progress(range(n_seeds), desc=f"control {scen}", total=n_seeds):
            gen = torch.Generator().manual_seed(seed_noise + s)
            noise = 0.02 * torch.randn(horizon, generator=gen, dtype=torch.float64)
            for kind, lr_ctrl in (("fixed", 0.0), ("adaptive", 0.5)):
                res = _control_run(lr_ctrl, gains, noise, ref, a)
                pre[kind].append(float(res["error"][: change - 1].mean()))
                post[kind].append(float(res["error"][change + SETTLE :].mean()))
                if s == 0:
                    traces.setdefault(scen, {})[kind] = res
        row: dict[str, Any] = {
            "scenario": f"{scen} (b: 1 -> {new_gain})",
            "fixed_pre": float(np.mean(pre["fixed"])),
            "adaptive_pre": float(np.mean(pre["adaptive"])),
            "fixed_post": float(np.mean(post["fixed"])),
            "adaptive_post": float(np.mean(post["adaptive"])),
        }
        row["post_ratio"] = row["adaptive_post"] / max(row["fixed_post"], 1e-12)
        ctrl_rows.append(row)
    ctx.table("Mean |tracking error| before / after the plant change (mean over seeds)", ctrl_rows)
    ctx.metric("control", ctrl_rows)
    ctx.check("tracking_error_ratio", ctrl_rows[0]["post_ratio"])

    # reported, not checked: how the gain-flip result depends on the model's learning rate
    gains = torch.ones(horizon, dtype=torch.float64)
    gains[change:] = scenarios["gain_flip"]
    gen = torch.Generator().manual_seed(seed_noise)
    noise = 0.02 * torch.randn(horizon, generator=gen, dtype=torch.float64)
    sweep = []
    for lr_ctrl in LR_SWEEP:
        res = _control_run(lr_ctrl, gains, noise, ref, a)
        sweep.append(
            {
                "lr": lr_ctrl,
                "adaptive_post": float(res["error"][change + SETTLE :].mean()),
                "final_b_hat": float(res["b_hat"][-1]),
            }
        )
    ctx.table("Gain flip, first noise seed: adaptive controller vs its learning rate", sweep)
    ctx.metric("control_lr_sweep", sweep)

    _figures(ctx, curves, traces, change)
    ctx.note(
        f"SGD: sklearn digits (1797 x 64, pixels / 16), {batch}-example minibatches (fresh "
        f"permutation per epoch, same schedule for both runs), lr {lr}, tanh hidden layers, "
        "softmax cross-entropy, float64, nn.Linear's uniform init drawn once and given to both "
        "runs. The nested system is mlp_learner(...) wired with a data stream and a loss "
        "(training_system): one tick = one SGD step; every forward/backward formula is written "
        "by hand in the layer/neuron systems. The reference is nn.Linear + autograd + "
        "torch.optim.SGD. 'neuron' granularity builds each layer as a wiring diagram of "
        "single-neuron systems (state: one weight vector and bias) plus a copier (copies "
        "activations forward, sums gradients back) and a gatherer, so the network is nested "
        "three deep; it is slower (Python per neuron), hence the smaller network. (A first quick "
        "configuration ran the neuron net for only 60 steps, too few to train: loss ratio 0.83; "
        "it now runs as many steps as the layer net, the threshold unchanged.)"
    )
    ctx.note(
        f"Control: plant y_(t+1) = {a} y_t + b_t u_t + N(0, 0.02^2) noise, reference a +-1 "
        f"square wave (period 50), {horizon} ticks, gain b changes from 1 at tick {change}. The "
        "controller is a nested system: a dense_learner (the MLP's layer box) predicting y_t "
        "from (y_(t-1), u_(t-1)) trained each tick by normalized-LMS gradient steps (lr 0.5) on "
        "its squared prediction error, whose weights (a_hat, b_hat) travel on wires into a "
        "certainty-equivalence policy u = clip((r - a_hat y - c_hat) / b_hat, +-3). The fixed "
        "controller is the same nested system with lr 0 (the deadbeat controller of the nominal "
        f"plant). Error |y_(t+1) - r_t| averaged after tick {change} + {SETTLE}, over "
        f"{n_seeds} noise seeds. Thresholds {TRACKING_RATIO} (tracking ratio, gain-flip "
        f"scenario) and {LOSS_RATIO} (loss ratio) are ours, chosen before any run; the "
        "gain-drop scenario is reported, not checked. The paper gives no numerical control "
        "example: plant, policy, noise and lr are ours. With the squared error's factor 2, lr "
        "0.5 is the normalized projection step of size 1 (the model fits the newest sample "
        "exactly); the gain-flip pass depends on that speed. In the learning-rate sweep "
        "(reported, not checked) smaller steps let the loop saturate (|u| = 3) before b_hat "
        "changes sign; the saturated loop then excites the model too little and the adaptive "
        "controller stays locked as far from the reference as the fixed one (on one noise "
        "seed, lr <= 0.4 locked and lr 0.45-0.9 recovered); the gain-drop scenario adapted at "
        "every lr from 0.1 to 0.9."
    )


def _figures(
    ctx: RunContext,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    traces: dict[str, dict[str, dict[str, np.ndarray]]],
    change: int,
) -> None:
    fig, axes = new_figure(1, 2)
    for gran, color in (("layer", "C0"), ("neuron", "C2")):
        nested, direct = curves[gran]
        axes[0].plot(direct, color="k", lw=2.5, alpha=0.35, label=f"direct SGD ({gran} net)")
        axes[0].plot(nested, color=color, lw=0.8, label=f"nested system ({gran})")
        diff = np.abs(nested - direct)
        axes[1].semilogy(np.maximum(diff, 1e-18), color=color, lw=0.8, label=gran)
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("minibatch cross-entropy")
    axes[0].set_title("loss: nested system vs direct SGD", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].axhline(1e-6, color="r", ls="--", lw=1, label="1e-6")
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("|loss difference| (floored at 1e-18)")
    axes[1].set_title("difference", fontsize=9)
    axes[1].legend(fontsize=7)
    ctx.save_figure("sgd_nested_vs_direct", fig)

    fig, axes = new_figure(1, 3)
    flip = traces["gain_flip"]
    for kind, color in (("fixed", "C3"), ("adaptive", "C0")):
        axes[0].semilogy(np.maximum(flip[kind]["error"], 1e-4), color=color, lw=0.8, label=kind)
        axes[1].plot(flip[kind]["y"], color=color, lw=0.8, label=f"y ({kind})")
        axes[2].plot(flip[kind]["b_hat"], color=color, lw=1, label=f"b_hat ({kind})")
    axes[1].plot(flip["fixed"]["r"], color="k", lw=0.8, ls=":", label="reference")
    for ax in axes:
        ax.axvline(change, color="gray", ls="--", lw=1)
        ax.set_xlabel("tick")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|y_(t+1) - r_t|")
    axes[0].set_title("tracking error (gain 1 -> -0.8)", fontsize=9)
    axes[1].set_ylabel("output")
    axes[1].set_title("plant output", fontsize=9)
    axes[2].set_ylabel("model gain estimate")
    axes[2].set_title("learner state (b_hat)", fontsize=9)
    ctx.save_figure("control_fixed_vs_adaptive", fig)
