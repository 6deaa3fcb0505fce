"""Coverage: timm models pruned by neuronkit-pruning and Torch-Pruning.

One model per timm family (random weights, 10 classes, batch 1 at the model's default input
size), the same settings and columns as `bench_torchvision.py`: group L2 magnitude (mean over
members), 50% of every prunable group, the classifier kept; each model and library in its own
process with a time limit. neuronkit gets no setup. Torch-Pruning gets the setup of its timm
example: the head count of every attention module's fused qkv projection (`num_heads`, pruning
whole heads at the same ratio, `head_pruning_ratio`), then `num_heads`, `head_dim` and
`attn_dim` rewritten after the step.

    python benchmarks/pruning/bench_timm.py [--quick] [--only NAME ...] [--timeout 180]

Needs timm and torch-pruning (the benchmark environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pruning_timm.json"
for _src in (ROOT / "shared" / "src", ROOT / "packages" / "pruning" / "src", HERE):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

from bench_prune import RATIO, _logits  # noqa: E402
from bench_torchvision import one, run_coverage  # noqa: E402

MODELS = (
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "eva02_tiny_patch14_224",
    "cait_xxs24_224",
    "xcit_nano_12_p16_224",
    "crossvit_tiny_240",
    "pit_ti_224",
    "swin_tiny_patch4_window7_224",
    "twins_svt_small",
    "pvt_v2_b0",
    "coat_lite_tiny",
    "tiny_vit_5m_224",
    "levit_128s",
    "efficientvit_b0",
    "mobilevit_xxs",
    "fastvit_t8",
    "efficientformer_l1",
    "edgenext_xx_small",
    "coatnet_nano_rw_224",
    "visformer_tiny",
    "convnext_atto",
    "poolformer_s12",
    "mixer_s32_224",
    "resmlp_12_224",
    "convmixer_768_32",
    "resnet18",
    "resnet50d",
    "regnetx_002",
    "densenet121",
    "dpn68",
    "dla34",
    "cspresnet50",
    "inception_v3",
    "efficientnet_b0",
    "mobilenetv3_small_050",
    "mobilenetv4_conv_small",
    "ghostnet_100",
    "rexnet_100",
    "repvit_m0_9",
    "hgnetv2_b0",
)
QUICK = ("vit_tiny_patch16_224", "efficientnet_b0", "convnext_atto", "resnet18")


def _build(name: str) -> tuple[nn.Module, torch.Tensor, str]:
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10).eval()
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(1))
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for _, layer in layers:  # MLP-Mixer's and ResMLP's zero heads: the oracle would compare 0s
        if not layer.weight.any():
            nn.init.normal_(layer.weight, std=0.02)
    last = layers[-1][0]
    return model, x, last


def prune_tp_timm(model: nn.Module, x: torch.Tensor, keep: list[str]) -> nn.Module:
    """Torch-Pruning as its timm example sets it up: whole heads of every fused qkv."""
    import torch_pruning as tp

    attention = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "qkv", None), nn.Linear) and isinstance(m.num_heads, int)
    ]
    pruner = tp.pruner.MetaPruner(
        model,
        x,
        output_transform=_logits,
        importance=tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean"),
        pruning_ratio=RATIO,
        ignored_layers=[model.get_submodule(k) for k in keep],
        num_heads={m.qkv: m.num_heads for m in attention},
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=RATIO,
    )
    pruner.step()
    for m in attention:
        m.num_heads = pruner.num_heads[m.qkv]
        m.head_dim = m.qkv.out_features // (3 * m.num_heads)
        if hasattr(m, "attn_dim"):
            m.attn_dim = m.num_heads * m.head_dim
    return model


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help="run these models only (to *_only.json)"
    )
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per model and library")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "LIBRARY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one, _build, prune_tp_timm)))
        return 0
    import timm
    import torch_pruning

    from neuronkit.common import atomic_write_json

    names = args.only or (QUICK if args.quick else MODELS)
    rows = run_coverage(__file__, names, args.timeout)
    suffix = "_only" if args.only else "_quick" if args.quick else ""
    out = RESULTS.with_name(RESULTS.stem + suffix + ".json")
    atomic_write_json(
        out,
        {
            "benchmark": "pruning_timm",
            "ratio": RATIO,
            "importance": "group L2 magnitude, mean over members",
            "threads": 1,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "torch_pruning": torch_pruning.__version__,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
