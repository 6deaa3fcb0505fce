"""Reproduction: PDSG and SDA attacks on SNNs whose surrogate gradient is invisible.

Lun et al., "Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via
Breaking Invisible Surrogate Gradients" (CVPR 2025).

Per seed, two victim SNNs are trained with one surrogate (ATan, alpha = 2: the default width
of SpikingJelly's ATan surrogate) and then treated as inference-only models whose surrogate the
attacker does not know:

1. *PGD on static digits* (direct encoding over T steps, an MLP with two LIF layers): L-inf
   PGD (10 steps of eps/4, random start, inputs clipped to [0, 1]) with the gradient taken
   through (a) the mismatched fixed surrogate an attacker might pick, here the piecewise-linear
   ``Triangle(alpha=4)`` (a different family and a 4x sharper slope than the training ATan),
   (b) PDSG, swapped into every neuron with ``swap_surrogate``, and, for reference only, (c)
   the matched training surrogate and a few other fixed ones. Success = fraction of the
   correctly classified test digits that PGD misclassifies.
2. *SDA on binary event frames* (digits seen by a DVS-like sensor while moving on a small
   circle: ON/OFF delta events over T steps), gradients through PDSG: success rate, L0 as a
   fraction of the input entries (after reduction, averaged over successful samples) and the
   L0 of generation alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.snn import (
    LIF,
    ATan,
    FastSigmoid,
    SeqFlatten,
    SeqLinear,
    Sigmoid,
    Surrogate,
    Triangle,
    load_digits,
)
from neuronkit.snn.attacks import PDSG, SDAResult, attack_success, pgd, sda, snn_logits
from neuronkit.snn.data import load_event_digits
from neuronkit.snn.surrogate import swap_surrogate

TRAIN_SURROGATE = ATan(alpha=2.0)
MISMATCHED = Triangle(alpha=4.0)


def _victim(d_in: int, width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        SeqFlatten(),
        SeqLinear(d_in, width),
        LIF(tau=2.0, surrogate=TRAIN_SURROGATE),
        SeqLinear(width, width),
        LIF(tau=2.0, surrogate=TRAIN_SURROGATE),
        SeqLinear(width, 10),
    )


def _train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    T: int | None,
    epochs: int,
    seed: int,
    batch_size: int = 64,
) -> None:
    """Adam on the cross-entropy of the time-averaged outputs (BPTT through the surrogate);
    ``x`` static ``[N, ...]`` with direct encoding over ``T``, or time-major ``[T, N, ...]``."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    n = y.shape[0]
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            xb = x[idx] if T is not None else x[:, idx]
            loss = F.cross_entropy(snn_logits(model, xb, T=T), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int | None) -> float:
    return float(snn_logits(model, x, T=T).argmax(1).eq(y).float().mean())


@reproduction(
    id="snn.pdsg_sda",
    paper=(
        "Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via "
        "Breaking Invisible Surrogate Gradients"
    ),
    claim=(
        "on a digits SNN trained with one surrogate and attacked without knowing it, PGD "
        "success with PDSG >= success with a mismatched fixed surrogate + 10 points at the "
        "same eps; on binary event frames made from digits, SDA succeeds on >= 70% of samples "
        "flipping <= 3% of input entries on average, and its reduction step lowers L0 "
        "versus generation alone (3 seeds)"
    ),
    checks=[
        Check(
            "pgd_pdsg_minus_mismatched",
            ">=",
            0.10,
            "PGD success rate with PDSG minus with the mismatched Triangle(alpha=4), same eps",
        ),
        Check("sda_success", ">=", 0.70, "SDA success rate on event-frame digits (PDSG)"),
        Check("sda_l0_fraction", "<=", 0.03, "mean flipped fraction of entries (successes)"),
        Check(
            "sda_reduction_l0_drop",
            ">",
            0.0,
            "mean L0 of generation alone minus L0 after reduction (successes)",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: one thread is fastest under a shared CPU
)
def run(ctx: RunContext) -> None:
    cfg = _Config.make(ctx.quick)
    ctx.metric("config", asdict(cfg))
    ctx.metric("train_surrogate", repr(TRAIN_SURROGATE))
    ctx.metric("mismatched_surrogate", repr(MISMATCHED))
    pgd_rows: list[dict[str, Any]] = []
    sda_rows: list[dict[str, Any]] = []
    curves: list[dict[str, list[float]]] = []
    samples: list[Any] = []  # SDAResult restricted to each seed's attacked samples
    for seed in ctx.progress([ctx.seed + i for i in range(3)], desc="seeds"):
        rows, curve = _pgd_part(ctx, seed, cfg)
        pgd_rows += rows
        curves.append(curve)
        row, res = _sda_part(ctx, seed, cfg)
        sda_rows.append(row)
        samples.append(res)

    at_eps = [r for r in pgd_rows if r["eps"] == cfg.eps]
    gaps = [r["PDSG"] - r[repr(MISMATCHED)] for r in at_eps]
    # the ceiling: what the training surrogate itself (an oracle) gains over the mismatched one
    ceiling = [r[f"matched {TRAIN_SURROGATE!r}"] - r[repr(MISMATCHED)] for r in at_eps]
    ctx.table("PGD success rate (correctly classified test digits) by attack surrogate", pgd_rows)
    ctx.table("SDA on event-frame digits (PDSG gradients)", sda_rows)
    success = torch.cat([r.success for r in samples])
    l0_frac = torch.cat([r.l0_fraction[r.success] for r in samples])
    l0_red = torch.cat([r.l0[r.success] for r in samples]).double()
    l0_gen = torch.cat([r.l0_generation[r.success] for r in samples]).double()
    ctx.metric("pgd_gap_per_seed", [round(g, 4) for g in gaps])
    ctx.metric("pgd_matched_minus_mismatched", float(np.mean(ceiling)))
    ctx.metric("sda_samples", int(success.numel()))
    ctx.metric("sda_l0_generation_mean", float(l0_gen.mean()))
    ctx.metric("sda_l0_reduced_mean", float(l0_red.mean()))
    ctx.metric("sda_l0_generation_fraction_mean", float(l0_gen.mean()) / samples[0].entries)
    _figure(ctx, curves, cfg)
    ctx.note(
        f"Victims are trained with {TRAIN_SURROGATE!r}; the attacker does not use it. The "
        f"mismatched fixed surrogate of the check is {MISMATCHED!r} (another family, 4x "
        "sharper), fixed before any result was seen; the tables also list the matched "
        "surrogate (an oracle the attacker lacks) and, in full mode, two other fixed "
        f"surrogates. PGD: {cfg.pgd_steps} steps of eps/4 with a random start, inputs clipped "
        f"to [0, 1], checked at eps={cfg.eps:g}. PDSG uses the authors' Gaussian (mean 0.5 "
        "sigma above threshold, sigma = running per-channel std of the membrane over the batch "
        "and the steps so far). The 'zero-gradient fraction' rows count clean test digits "
        "whose input gradient vanishes entirely under each attack surrogate. SDA L0 is "
        "averaged over successful samples; entries per sample = T x 2 polarities x 64 pixels."
    )
    mean_gap = float(np.mean(gaps))
    ctx.note(
        (
            "At this scale (8x8 digits, two LIF layers, T = 4 direct encoding) PGD success "
            "barely depends on the attack surrogate in this run (PDSG - mismatched "
            f"{100 * mean_gap:+.1f} points at eps {cfg.eps:g}, seed mean; the matched oracle "
            f"itself gains {100 * float(np.mean(ceiling)):+.1f}, the ceiling for any attack "
            "surrogate): the matched oracle, "
            "the mismatched Triangle(4) and PDSG land within a few points of each other, so "
            "the PDSG-vs-mismatched gap of the paper (measured on deep VGG/ResNet SNNs, where "
            "sharp mismatched surrogates starve the gradient through many layers) does not "
            "appear here. "
            if abs(mean_gap) < 0.05
            else f"In this run PDSG - mismatched is {100 * mean_gap:+.1f} points at eps "
            f"{cfg.eps:g} (seed mean); earlier runs at this scale found no gap beyond a few "
            "points. "
        )
        + "After the first run showed no "
        "gap, a 4-layer MLP and a 3-layer convolutional SNN victim were tried by hand, with "
        "the same outcome (no gap beyond +-5 points). The mismatched surrogate was not "
        "swapped for a sharper one after seeing results. A GPU study "
        "(benchmarks/snn/pdsg_depth.py; H200, 3 seeds) trained VGG-style convolutional SNNs "
        "with BatchNorm of 4, 8 and 12 conv layers on 4x-upsampled digits (clean accuracy "
        "98-99.5%): PGD success at eps 0.02/0.05/0.1 stayed within 3 points across the "
        "mismatched, PDSG and matched surrogates at every depth (depth 12, eps 0.1: 34.4% vs "
        "34.0% vs 36.0%), so depth alone does not produce the paper's gap on this data."
    )
    ctx.check("pgd_pdsg_minus_mismatched", float(np.mean(gaps)))
    ctx.check("sda_success", float(success.double().mean()))
    ctx.check("sda_l0_fraction", float(l0_frac.mean()) if l0_frac.numel() else float("nan"))
    drop = float(l0_gen.mean() - l0_red.mean()) if l0_gen.numel() else float("nan")
    ctx.check("sda_reduction_l0_drop", drop)


@dataclass(frozen=True)
class _Config:
    epochs: int
    eps_grid: tuple[float, ...]
    n_pgd: int
    n_sda: int
    every_surrogate: bool
    eps: float = 0.1
    T_static: int = 4
    T_events: int = 8
    width: int = 128
    pgd_steps: int = 10
    k_init: int = 10
    max_iters: int = 30

    @classmethod
    def make(cls, quick: bool) -> _Config:
        if quick:
            return cls(epochs=8, eps_grid=(0.05, 0.1), n_pgd=100, n_sda=15, every_surrogate=False)
        grid = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3)
        return cls(epochs=30, eps_grid=grid, n_pgd=400, n_sda=100, every_surrogate=True)


def _attack_surrogates(every: bool) -> dict[str, Surrogate | None]:
    """Attack-side surrogates: None stands for PDSG (a fresh one per layer). The matched one
    is an oracle for reference; ``every`` adds two more fixed surrogates (full mode)."""
    chosen: dict[str, Surrogate | None] = {
        repr(MISMATCHED): MISMATCHED,
        "PDSG": None,
        f"matched {TRAIN_SURROGATE!r}": TRAIN_SURROGATE,
    }
    if every:
        chosen |= {repr(Sigmoid()): Sigmoid(), repr(FastSigmoid()): FastSigmoid()}
    return chosen


def _pgd_part(
    ctx: RunContext, seed: int, cfg: _Config
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    T = cfg.T_static
    data = load_digits(seed=seed)
    model = _victim(64, cfg.width, seed)
    _train(model, data.x_train, data.y_train, T=T, epochs=cfg.epochs, seed=seed)
    model.eval()
    acc = _accuracy(model, data.x_test, data.y_test, T)
    with torch.no_grad():
        ok = snn_logits(model, data.x_test, T=T).argmax(1).eq(data.y_test)
    x, y = data.x_test[ok][: cfg.n_pgd], data.y_test[ok][: cfg.n_pgd]
    ctx.log(f"seed {seed}: static victim test acc {acc:.3f}; attacking {len(y)} digits")
    surrogates = _attack_surrogates(cfg.every_surrogate)
    zero: dict[str, Any] = {
        "seed": seed,
        "eps": "zero-gradient fraction",
        "clean acc": round(acc, 4),
    }
    for name, sg in surrogates.items():  # gradient vanishing on the clean inputs
        with swap_surrogate(model, PDSG() if sg is None else sg):
            xg = x.clone().requires_grad_(True)
            loss = F.cross_entropy(snn_logits(model, xg, T=T), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, xg)
        zero[name] = round(float((g.flatten(1).abs().sum(1) == 0).double().mean()), 4)
    rows: list[dict[str, Any]] = [zero]
    curve: dict[str, list[float]] = {}
    for eps in cfg.eps_grid:
        row: dict[str, Any] = {"seed": seed, "eps": eps, "clean acc": round(acc, 4)}
        for name, sg in surrogates.items():
            with swap_surrogate(model, PDSG() if sg is None else sg):
                x_adv = pgd(model, x, y, eps=eps, steps=cfg.pgd_steps, T=T, seed=seed)
            rate = float(attack_success(model, x_adv, y, T=T).double().mean())
            row[name] = round(rate, 4)
            curve.setdefault(name, []).append(rate)
        rows.append(row)
    return rows, curve


def _sda_part(ctx: RunContext, seed: int, cfg: _Config) -> tuple[dict[str, Any], SDAResult]:
    T = cfg.T_events
    data = load_event_digits(T, mode="delta", seed=seed)
    d_in = int(np.prod(data.x_train.shape[2:]))
    model = _victim(d_in, cfg.width, 100 + seed)
    _train(model, data.x_train, data.y_train, T=None, epochs=cfg.epochs, seed=seed)
    model.eval()
    acc = _accuracy(model, data.x_test, data.y_test, None)
    with torch.no_grad():
        ok = snn_logits(model, data.x_test).argmax(1).eq(data.y_test)
    x, y = data.x_test[:, ok][:, : cfg.n_sda], data.y_test[ok][: cfg.n_sda]
    with swap_surrogate(model, PDSG()):
        res = sda(model, x, y, k_init=cfg.k_init, max_iters=cfg.max_iters, seed=seed)
    s = res.success
    # the returned (reduced) examples must still fool the model
    still = bool(attack_success(model, res.x_adv[:, s], y[s]).all()) if s.any() else True
    row = {
        "seed": seed,
        "clean acc": round(acc, 4),
        "attacked": len(y),
        "success": round(float(s.double().mean()), 4),
        "L0 generation": round(float(res.l0_generation[s].double().mean()), 2),
        "L0 reduced": round(float(res.l0[s].double().mean()), 2),
        "L0 fraction": round(float(res.l0_fraction[s].mean()), 5),
        "entries": res.entries,
        "mean queries": round(float(res.queries.double().mean()), 1),
        "still adversarial": still,
    }
    ctx.log(f"seed {seed}: event victim acc {acc:.3f}; SDA {row}")
    return row, res


def _figure(ctx: RunContext, curves: list[dict[str, list[float]]], cfg: _Config) -> None:
    fig, ax = new_figure(1, 1, figsize=(6, 4))
    for name in curves[0]:
        mean = np.mean([c[name] for c in curves], axis=0)
        ax.plot(cfg.eps_grid, mean, marker="o", label=name)
    ax.set_xlabel("eps (L-inf)")
    ax.set_ylabel("PGD success rate (mean of 3 seeds)")
    ax.set_title(f"PGD on a digits SNN trained with {TRAIN_SURROGATE!r}")
    ax.legend(fontsize=7)
    ctx.save_figure("pgd_success_vs_eps", fig)
