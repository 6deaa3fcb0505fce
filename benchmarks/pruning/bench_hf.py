"""Coverage: eighteen tiny Hugging Face architectures pruned by neuronkit-pruning and Torch-Pruning.

The models of `neuronkit.pruning.hf_zoo()` (built from their configs, random weights, the
classes' default attention): decoder LMs (Mistral, Qwen2, Phi, Gemma, OPT, GPT-NeoX, GPT-J,
BLOOM, Falcon), encoders (DistilBERT, RoBERTa, ALBERT), T5 (keyword inputs) and vision models
(ViT, Swin, ConvNeXt, ResNet, MobileViT), then three at their published sizes (the classes'
default configs, random weights): BERT-base, GPT-2 small and ViT-B/16, where the time is the
work on the weights and the forward passes rather than per-module overhead. The same settings
and columns as
`bench_torchvision.py` (group L2 magnitude, 50% of every prunable group, the output layer
kept; each model and library in its own process with a time limit), with no per-architecture
setup for either library: Torch-Pruning gets `use_cache=False` and the logits as its
`output_transform`, as its documentation does for Hugging Face models.

    python benchmarks/pruning/bench_hf.py [--timeout 120] [--only NAME ...]

Needs transformers and torch-pruning (the benchmark environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pruning_hf.json"
for _src in (ROOT / "shared" / "src", ROOT / "packages" / "pruning" / "src", HERE):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

from bench_prune import RATIO  # noqa: E402
from bench_torchvision import one, run_coverage  # noqa: E402

# the layer that writes the model's output, kept whole (the first of these the model has)
_OUTPUT_LAYERS = ("lm_head", "lm_head.decoder", "predictions.decoder", "classifier", "classifier.1")


def full_size() -> dict[str, tuple[Any, Any]]:
    """name -> (constructor, example-input maker) of the published-size models: the default
    configs of BERT-base, GPT-2 small (124 M) and ViT-B/16, a sequence of 128 tokens or one
    224 x 224 image."""
    import transformers as tr

    def ids() -> torch.Tensor:
        return torch.randint(0, 1000, (1, 128), generator=torch.Generator().manual_seed(1))

    def image() -> torch.Tensor:
        return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))

    return {
        "bert_base": (lambda: tr.BertForSequenceClassification(tr.BertConfig()), ids),
        "gpt2_small": (lambda: tr.GPT2LMHeadModel(tr.GPT2Config()), ids),
        "vit_base": (lambda: tr.ViTForImageClassification(tr.ViTConfig()), image),
    }


def _build(name: str) -> tuple[nn.Module, Any, str]:
    import warnings

    from neuronkit.pruning import hf_zoo

    ctor, make_inputs = {**hf_zoo(), **full_size()}[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # token ids outside the tiny vocabulary
        model = ctor().eval()
    names = dict(model.named_modules())
    keep = next(n for n in _OUTPUT_LAYERS if isinstance(names.get(n), (nn.Linear, nn.Conv2d)))
    return model, make_inputs(), keep


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per model and library")
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help="run these models only (to *_only.json)"
    )
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "LIBRARY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one, _build)))
        return 0
    import torch_pruning
    import transformers

    from neuronkit.common import atomic_write_json
    from neuronkit.pruning import hf_zoo

    names = [*hf_zoo(), *full_size()]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        ap.error(f"--only: unknown models {unknown}; expected some of {names}")
    rows = run_coverage(__file__, args.only or names, args.timeout)
    out = RESULTS.with_name(RESULTS.stem + "_only.json") if args.only else RESULTS
    atomic_write_json(
        out,
        {
            "benchmark": "pruning_hf",
            "ratio": RATIO,
            "importance": "group L2 magnitude, mean over members",
            "threads": 1,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_pruning": torch_pruning.__version__,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
