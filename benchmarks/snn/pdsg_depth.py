"""Does PDSG's advantage over a mismatched fixed surrogate grow with victim depth? (GPU study)

The quick reproduction ``snn.pdsg_sda`` fails its PGD check on a two-layer digits MLP SNN: there,
PGD success barely depends on the attack surrogate. Lun et al. (CVPR 2025) measured the gap on
deep VGG/ResNet SNNs. This script trains VGG-style convolutional SNNs of several depths (ATan(2)
surrogate, BatchNorm, LIF tau=2, direct encoding over T steps, digits upsampled 4x inside the
model) and attacks each with L-inf PGD (10 steps of eps/4, random start) through the mismatched
Triangle(4), PDSG and the matched ATan(2) (an oracle). Success = fraction of correctly
classified test digits that PGD misclassifies.

Before the study, it checks the engine on the chosen device: the fused multi-step LIF against
the step-by-step reference (spikes identical, input gradients close) and under torch.compile.

Usage: ``python benchmarks/snn/pdsg_depth.py --device cuda --out results.json`` (``--quick`` for a
tiny CPU smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import atomic_write_json
from neuronkit.snn import (
    LIF,
    ATan,
    SeqAdaptiveAvgPool2d,
    SeqBatchNorm2d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    SeqMaxPool2d,
    TimeDistributed,
    Triangle,
    load_digits,
)
from neuronkit.snn.attacks import PDSG, attack_success, pgd, snn_logits
from neuronkit.snn.surrogate import swap_surrogate

TRAIN = ATan(alpha=2.0)
MISMATCHED = Triangle(alpha=4.0)
WIDTHS = (64, 128, 256, 256)  # one stage per resolution 32, 16, 8, 4


def engine_parity(device: torch.device) -> dict[str, float | bool]:
    """Fused multi-step LIF vs the step-by-step reference, and under torch.compile, on device."""
    torch.manual_seed(0)
    x = (torch.randn(16, 8, 256, device=device) * 1.5).requires_grad_()
    w = torch.arange(16.0, device=device)[:, None, None]
    fused, ref = LIF(tau=2.0), LIF(tau=2.0, fused=False)
    s_f, s_r = fused(x), ref(x)
    (g_f,) = torch.autograd.grad((s_f * w).sum(), x)
    (g_r,) = torch.autograd.grad((s_r * w).sum(), x)
    compiled = torch.compile(nn.Sequential(LIF(tau=2.0), LIF(tau=3.0)))
    eager = nn.Sequential(LIF(tau=2.0), LIF(tau=3.0))
    s_c, s_e = compiled(x), eager(x)
    (g_c,) = torch.autograd.grad((s_c * w).sum(), x)
    (g_e,) = torch.autograd.grad((s_e * w).sum(), x)
    return {
        "fused_spikes_equal": bool(torch.equal(s_f, s_r)),
        "fused_grad_max_abs_diff": float((g_f - g_r).abs().max()),
        "compiled_spikes_equal": bool(torch.equal(s_c, s_e)),
        "compiled_grad_max_abs_diff": float((g_c - g_e).abs().max()),
    }


def vgg_snn(depth: int, seed: int) -> nn.Module:
    """``depth`` conv+BN+LIF layers spread over four stages (max-pool between), global average
    pool and a linear readout; input ``[T, B, 1, 8, 8]`` upsampled to 32x32 inside."""
    if depth % 4:
        raise ValueError(f"depth must be a multiple of 4, got {depth}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = [TimeDistributed(nn.Upsample(scale_factor=4, mode="bilinear"))]
    cin = 1
    for stage, width in enumerate(WIDTHS):
        for _ in range(depth // 4):
            layers += [
                SeqConv2d(cin, width, 3, padding=1, bias=False),
                SeqBatchNorm2d(width),
                LIF(tau=2.0, surrogate=TRAIN),
            ]
            cin = width
        if stage < len(WIDTHS) - 1:
            layers.append(SeqMaxPool2d(2))
    layers += [SeqAdaptiveAvgPool2d(1), SeqFlatten(), SeqLinear(cin, 10)]
    return nn.Sequential(*layers)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int, epochs: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            idx = idx.to(x.device)
            loss = F.cross_entropy(snn_logits(model, x[idx], T=T), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()


def study(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    rows = []
    for depth in args.depths:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            data = load_digits(seed=seed)
            xtr, ytr = data.x_train.to(device), data.y_train.to(device)
            xte, yte = data.x_test.to(device), data.y_test.to(device)
            model = vgg_snn(depth, seed).to(device)
            train(model, xtr, ytr, args.T, args.epochs, seed)
            with torch.no_grad():
                pred = snn_logits(model, xte, T=args.T).argmax(1)
            acc = float(pred.eq(yte).float().mean())
            ok = pred.eq(yte)
            x, y = xte[ok][: args.n_attack], yte[ok][: args.n_attack]
            row: dict[str, object] = {"depth": depth, "seed": seed, "clean_acc": round(acc, 4)}
            for eps in args.eps:
                for name, sg in (("mismatched", MISMATCHED), ("pdsg", None), ("matched", TRAIN)):
                    with swap_surrogate(model, PDSG() if sg is None else sg):
                        x_adv = pgd(model, x, y, eps=eps, steps=10, T=args.T, seed=seed)
                    rate = float(attack_success(model, x_adv, y, T=args.T).double().mean())
                    row[f"{name}@{eps:g}"] = round(rate, 4)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--out", type=Path, default=Path("pdsg_depth.json"))
    args = p.parse_args()
    quick = args.quick
    args.depths = (4,) if quick else (4, 8, 12)
    args.seeds = 1 if quick else 3
    args.epochs = 1 if quick else 30
    args.n_attack = 16 if quick else 400
    args.eps = (0.05,) if quick else (0.02, 0.05, 0.1)
    args.T = 4
    device = torch.device(args.device)
    parity = engine_parity(device)
    print(json.dumps(parity), flush=True)
    rows = study(args, device)
    summary = {}
    for depth in args.depths:
        sub = [r for r in rows if r["depth"] == depth]
        summary[str(depth)] = {
            k: round(sum(float(r[k]) for r in sub) / len(sub), 4)  # type: ignore[arg-type]
            for k in sub[0]
            if k not in ("depth", "seed", "seconds")
        }
    print(json.dumps(summary, indent=1))
    atomic_write_json(
        args.out,
        {
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "T": args.T,
            "epochs": args.epochs,
            "engine_parity": parity,
            "rows": rows,
            "mean_by_depth": summary,
        },
    )


if __name__ == "__main__":
    main()
