"""Structural pruning: neuronkit-pruning (SPA) against Torch-Pruning on one model zoo (CPU).

Same importance (group L2 magnitude, mean over members), same channel ratio (50% of every
prunable group, local), the classifier output kept, for: ResNet-56-style, VGG-style,
MobileNetV2-style (depthwise), DenseNet-style (concat), a small ViT with nn.MultiheadAttention,
a time-major spiking CNN from neuronkit-snn (``[T, B, C, H, W]`` events through LIF neurons), an
LSTM classifier, a hand-written Elman RNN (parameter matrices used as ``x @ W.T`` in a loop over
time) and a tiny GPT-2 built from a Hugging Face config (when transformers is installed).
Reported per model and library: whether it handled the model (pruned model runs, output shape
kept), MACs before/after (one counter, neuronkit.pruning.count_macs, for both), time to build
the graph and prune (median of --repeats, each on a fresh copy, the libraries taking turns), CPU
latency before/after (median of timed forwards, fixed thread count). The tiny GPT-2 goes through
the same pruner (its Hugging Face tracer): residual width (wte/wpe/LayerNorms/lm_head, tie
kept), whole attention heads and MLP channels, 50% each, the vocabulary logits kept. neuronkit's
ONNX route is reported separately: each model exported as users do (torch's default dynamo
exporter, dynamic batch axis, and dynamic sequence for the GPT-2), pruned (median of --repeats
calls), and run in onnxruntime at another batch size.

    python benchmarks/pruning/bench_prune.py [--threads 1] [--repeats 9] [--quick]
        [--only NAME ...]

Needs torch-pruning (a benchmark-only environment); without it only neuronkit runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "pruning_spa.json"
RATIO = 0.5
# benchmark the workspace sources, not a stale copy installed in the benchmark environment
for _src in (
    ROOT / "shared" / "src",
    ROOT / "packages" / "pruning" / "src",
    ROOT / "packages" / "snn" / "src",
):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))


def models() -> dict[str, tuple[Any, Any, list[str]]]:
    """name -> (constructor, example-input maker, names of output layers to keep)."""
    from neuronkit.pruning import DenseNetStyle, MobileNetV2Style, ResNetStyle, SmallViT, VGGStyle

    img = lambda: torch.randn(1, 3, 32, 32)  # noqa: E731
    out: dict[str, tuple[Any, Any, list[str]]] = {
        "resnet56": (lambda: ResNetStyle(blocks=9), img, ["fc"]),
        "vgg": (lambda: VGGStyle(widths=(64, 128, 256, 256), image_size=32), img, ["classifier.3"]),
        "mobilenetv2": (lambda: MobileNetV2Style(expand=6), img, ["fc"]),
        "densenet": (lambda: DenseNetStyle(growth=12, layers=6), img, ["fc"]),
        "vit": (lambda: SmallViT(image_size=32, patch=4, dim=128, depth=4, heads=4), img, ["head"]),
    }
    out["spiking_cnn"] = (_spiking_cnn, _events, ["11"])
    out["lstm"] = (_LSTMClassifier, lambda: torch.randn(1, 32, 16), ["head"])
    out["elman_rnn"] = (_ElmanRNN, lambda: torch.randn(1, 32, 16), ["head"])
    try:
        from transformers import GPT2Config, GPT2LMHeadModel

        def gpt() -> nn.Module:
            cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=128)
            cfg._attn_implementation = "eager"
            return GPT2LMHeadModel(cfg)

        out["tiny_gpt2"] = (gpt, lambda: torch.randint(0, 128, (1, 16)), ["lm_head"])
    except ImportError:
        pass
    return out


class _LSTMClassifier(nn.Module):
    """A sequence classifier: ``[B, 32, 16]`` -> Linear -> bidirectional LSTM -> last step."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True, bidirectional=True)
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(torch.relu(self.embed(x)))
        return self.head(y[:, -1])


class _ElmanRNN(nn.Module):
    """A recurrent classifier as research code writes it: ``[B, 32, 16]`` through
    ``h = tanh(x_t W_ih^T + h W_hh^T + b)`` from a learned initial state, then a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w_ih = nn.Parameter(torch.randn(128, 16) / 4)
        self.w_hh = nn.Parameter(torch.randn(128, 128) / 128**0.5)
        self.b, self.h0 = nn.Parameter(torch.zeros(128)), nn.Parameter(torch.zeros(128))
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.h0.expand(x.shape[0], -1)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ self.w_ih.T + h @ self.w_hh.T + self.b)
        return self.head(h)


def _spiking_cnn() -> nn.Module:
    """A time-major spiking CNN (neuronkit-snn): ``[T, B, 2, 32, 32]`` events -> ``[T, B, 10]``."""
    from neuronkit.snn import LIF, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d, SeqFlatten, SeqLinear

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [SeqConv2d(c_in, c_out, 3, padding=1), SeqBatchNorm2d(c_out), LIF(), SeqAvgPool2d(2)]

    return nn.Sequential(
        *block(2, 32),
        *block(32, 64),
        SeqFlatten(),
        SeqLinear(64 * 8 * 8, 256),
        LIF(),
        SeqLinear(256, 10),
    )


def _events() -> torch.Tensor:
    """8 steps of binary events on two polarity channels, ``[8, 1, 2, 32, 32]``."""
    return (torch.rand(8, 1, 2, 32, 32) > 0.8).float()


def _logits(y: Any) -> torch.Tensor:
    if hasattr(y, "logits"):
        return y.logits
    return y[0] if isinstance(y, (tuple, list)) else y


def prune_neuronkit(model: nn.Module, x: torch.Tensor, keep: list[str]) -> nn.Module:
    from neuronkit.pruning import DependencyGraph, plan_pruning, prune

    graph = DependencyGraph(model, x)
    return prune(graph, plan_pruning(graph, "l2", RATIO, ignored_layers=keep), inplace=True)


def prune_tp(model: nn.Module, x: torch.Tensor, keep: list[str]) -> nn.Module:
    import torch_pruning as tp

    ignored = [model.get_submodule(k) for k in keep]
    heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    unwrapped = [
        (p, p.ndim - 1) for n, p in model.named_parameters(recurse=False) if p.ndim >= 2
    ]  # e.g. a ViT's class token and position embedding: prune their channel axis too
    config: Any = getattr(model, "config", None)
    if config is not None:  # a Hugging Face model: no key/value cache in the traced outputs
        config.use_cache = False
    pruner = tp.pruner.MetaPruner(
        model,
        x,
        output_transform=_logits,  # trace from the logits (its documented hook)
        unwrapped_parameters=unwrapped or None,
        importance=tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean"),
        pruning_ratio=RATIO,
        ignored_layers=ignored,
        num_heads=heads,
        prune_head_dims=True,
        prune_num_heads=False,
    )
    pruner.step()
    for m, h in heads.items():  # Torch-Pruning's documented MHA post-fix
        m.embed_dim = m.in_proj_weight.shape[1]
        m.head_dim = m.embed_dim // h
        m.kdim = m.vdim = m.embed_dim
    return model


PRUNERS = {"neuronkit": prune_neuronkit, "torch_pruning": prune_tp}


def latency(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    model.eval()
    with torch.no_grad():
        for _ in range(3):
            model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, libraries: list[str], repeats: int) -> list[dict[str, Any]]:
    """One row per library. The libraries take turns (order reversed every repeat), each prune
    on a fresh copy, so neither profits from running second or from a quieter moment."""
    from neuronkit.pruning import count_macs

    ctor, make_x, keep = models()[name]
    torch.manual_seed(0)
    base = ctor().eval()
    x = make_x()
    times: dict[str, list[float]] = {lib: [] for lib in libraries}
    pruned: dict[str, nn.Module] = {}
    errors: dict[str, Exception] = {}
    for r in range(repeats):
        for lib in libraries if r % 2 == 0 else libraries[::-1]:
            if lib in errors:
                continue
            m = copy.deepcopy(base)
            try:
                t = time.perf_counter()
                pruned[lib] = PRUNERS[lib](m, x, keep)
                times[lib].append(time.perf_counter() - t)
            except Exception as exc:  # a library failing on a model is a result, not a crash
                errors[lib] = exc
    rows = []
    for lib in libraries:
        row: dict[str, Any] = {"library": lib, "model": name}
        try:
            if lib in errors:
                raise errors[lib]
            with torch.no_grad():
                y0, y1 = _logits(base(x)), _logits(pruned[lib](x))
            if y0.shape != y1.shape:
                raise RuntimeError(f"output shape changed {tuple(y0.shape)} -> {tuple(y1.shape)}")
            row.update(
                handled=True,
                macs_before=count_macs(base, x),
                macs_after=count_macs(pruned[lib], x),
                params_before=sum(p.numel() for p in base.parameters()),
                params_after=sum(p.numel() for p in pruned[lib].parameters()),
                graph_and_prune_s=statistics.median(times[lib]),
                graph_and_prune_all_s=times[lib],
                latency_before_ms=1e3 * latency(base, x, 5 * repeats),
                latency_after_ms=1e3 * latency(pruned[lib], x, 5 * repeats),
            )
        except Exception as exc:
            row.update(handled=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        rows.append(row)
    return rows


class _Logits(nn.Module):
    """The model with plain tensor output (a Hugging Face LM returns an output object)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _logits(self.model(x))


def bench_onnx(name: str, repeats: int) -> dict[str, Any]:
    """The ONNX route on the model as users export it: torch's default (dynamo) exporter with a
    dynamic batch axis (and sequence axis for the LM), pruned (median time of ``repeats``
    calls), then run in onnxruntime on a batch of 3 (a shorter sequence for the LM) against the
    zeroed oracle."""
    tokens = name == "tiny_gpt2"
    axis = 1 if name == "spiking_cnn" else 0  # time-major [T, B, ...]: the batch is axis 1
    row: dict[str, Any] = {
        "library": "neuronkit-onnx",
        "model": name,
        "export": "torch.onnx.export(dynamo=True), dynamic batch" + (" and sequence" * tokens),
    }
    try:
        import numpy as np
        import onnxruntime as ort

        from neuronkit.pruning.onnx import prune_onnx

        ctor, make_x, _ = models()[name]
        torch.manual_seed(0)
        model, x = _Logits(ctor().eval()).eval(), make_x()
        dims: dict[int, Any] = {axis: torch.export.Dim("batch")}
        if tokens:
            dims[1] = torch.export.Dim("seq", max=32)
        program = torch.onnx.export(
            model,
            (torch.cat([x, x], axis),),  # torch.export specializes a batch of 1
            dynamo=True,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=(dims,),
            verbose=False,
        )
        proto = program.model_proto
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            hard = prune_onnx(proto, RATIO)
            times.append(time.perf_counter() - t)
        row["graph_and_prune_s"] = statistics.median(times)
        row["graph_and_prune_all_s"] = times
        soft = prune_onnx(proto, RATIO, soft=True)
        x3 = torch.cat([x, x, x])[:, :11] if tokens else torch.cat([x, x, x], axis)

        def run(p: Any) -> Any:
            s = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
            return s.run(None, {"x": x3.numpy()})[0]

        row["max_abs_hard_minus_soft"] = float(np.abs(run(hard) - run(soft)).max())
        row["bytes_before"] = len(proto.SerializeToString())
        row["bytes_after"] = len(hard.SerializeToString())
        row["handled"] = True
    except Exception as exc:
        row.update(handled=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
    return row


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these models (to *_only.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    libraries = ["neuronkit"]
    try:
        import torch_pruning

        libraries.append("torch_pruning")
        tp_version = torch_pruning.__version__
    except ImportError:
        tp_version = None
    rows = []
    zoo = models()
    unknown = set(args.only or ()) - set(zoo)
    if unknown:
        ap.error(f"--only: unknown models {sorted(unknown)}; expected some of {sorted(zoo)}")
    for name in args.only or zoo:
        for row in bench(name, libraries, repeats):
            rows.append(row)
            print(json.dumps(row), flush=True)
        row = bench_onnx(name, repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    import neuronkit.pruning as nkp
    from neuronkit.common import atomic_write_json

    suffix = "_only" if args.only else "_quick" if args.quick else ""
    out = RESULTS.with_name(RESULTS.stem + suffix + ".json")
    atomic_write_json(
        out,
        {
            "benchmark": "pruning_spa",
            "ratio": RATIO,
            "importance": "group L2 magnitude, mean over members",
            "threads": args.threads,
            "repeats": repeats,
            "torch": torch.__version__,
            # the workspace sources' version (the environment's installed metadata may lag)
            "neuronkit_pruning": tomllib.loads(
                (ROOT / "packages" / "pruning" / "pyproject.toml").read_text()
            )["project"]["version"],
            "neuronkit_pruning_source": os.path.relpath(Path(nkp.__file__).parent, ROOT),
            "torch_pruning": tp_version,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
