"""Coverage: torchvision's classification models pruned by neuronkit-pruning and Torch-Pruning.

One model per torchvision family (random weights, 10 classes), the same settings as
`bench_prune.py`: group L2 magnitude (mean over members), 50% of every prunable group (local),
the classifier's output kept. Each (model, library) runs in its own process with a time limit.
Reported: whether the library handled the model (the pruned model runs and keeps the output
shape), parameters and MACs before/after (one counter, `neuronkit.pruning.count_macs`), the
time to build the graph and prune (the fastest of at least two calls and of up to seven while
they take less than a second together, each after a garbage collection and with the collector
off while it runs, as `timeit` does), the memory the first of them needs (the resident set's
peak above what it was before the call, on Linux), and for neuronkit the relative
difference to the soft-pruning oracle and how many of its channel groups stayed frozen.

    python benchmarks/pruning/bench_torchvision.py [--quick] [--only NAME ...] [--timeout 180]

Needs torchvision and torch-pruning (the benchmark environment).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pruning_torchvision.json"
for _src in (ROOT / "shared" / "src", ROOT / "packages" / "pruning" / "src", HERE):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

from bench_prune import RATIO, _logits, prune_tp  # noqa: E402

# name -> input size (ViT, Swin and MaxViT are built for 224 x 224 images)
MODELS = {
    "alexnet": 64,
    "vgg11_bn": 64,
    "resnet18": 64,
    "resnet50": 64,
    "wide_resnet50_2": 64,
    "resnext50_32x4d": 64,
    "regnet_x_400mf": 64,
    "regnet_y_400mf": 64,
    "densenet121": 64,
    "googlenet": 96,
    "inception_v3": 96,
    "squeezenet1_0": 64,
    "shufflenet_v2_x0_5": 64,
    "mobilenet_v2": 64,
    "mobilenet_v3_small": 64,
    "mnasnet0_5": 64,
    "efficientnet_b0": 64,
    "efficientnet_v2_s": 64,
    "convnext_tiny": 64,
    "vit_b_32": 224,
    "swin_t": 224,
    "swin_v2_t": 224,
    "maxvit_t": 224,
}
QUICK = ("resnext50_32x4d", "convnext_tiny", "efficientnet_b0", "vit_b_32")
# timed calls per model and library: at least two, more (up to MAX_CALLS) while they take less
# than CALLS_WITHIN_S together, so a burst of noise on a shared machine rarely sets a tiny
# model's best time (since 2026-12-06; the faster of two before)
MAX_CALLS, CALLS_WITHIN_S = 7, 1.0


def _build(name: str) -> tuple[nn.Module, torch.Tensor, str]:
    import torchvision

    kwargs: dict[str, Any] = {"num_classes": 10}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True)
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    size = MODELS[name]
    x = torch.randn(1, 3, size, size)
    last = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    return model, x, last


def _neuronkit(model: nn.Module, x: Any, keep: str) -> nn.Module:
    from neuronkit.pruning import DependencyGraph, plan_pruning, prune

    graph = DependencyGraph(model, x)
    return prune(graph, plan_pruning(graph, "l2", RATIO, ignored_layers=[keep]), inplace=True)


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """Collect garbage, then keep the collector off while the block runs: a full collection
    of the heap the imports leave (~0.2 s with transformers) would otherwise land in whichever
    call allocates past its threshold (seen on Torch-Pruning's DistilBERT: 12 or 212 ms)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _config_sync_time() -> Iterator[list[float]]:
    """Seconds spent in ``sync_hf_config`` (Hugging Face models) while the block runs."""
    import importlib

    module = importlib.import_module("neuronkit.pruning.prune")
    original, spent = module.sync_hf_config, []

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    module.sync_hf_config = timed
    try:
        yield spent
    finally:
        module.sync_hf_config = original


def _status_kib(field: str) -> int | None:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process in KiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _peak_rise() -> Iterator[list[float]]:
    """MiB by which the resident set's peak while the block runs exceeds the resident set
    before it (the peak is reset through ``/proc/self/clear_refs``); nothing off Linux."""
    rise: list[float] = []
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        yield rise
        return
    before = _status_kib("VmRSS")
    yield rise
    peak = _status_kib("VmHWM")
    if before is not None and peak is not None:
        rise.append((peak - before) / 1024)


def _run(model: nn.Module, x: Any) -> torch.Tensor:
    """The model's output tensor (logits of a Hugging Face output; keyword inputs as a dict)."""
    return _logits(model(**x) if isinstance(x, dict) else model(x))


def _oracle(model: nn.Module, x: Any, keep: str) -> dict[str, Any]:
    """The pruned model against the soft-pruning oracle (zeroed channels in the original)."""
    from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune

    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", RATIO, ignored_layers=[keep])
    with torch.no_grad():
        oracle = _run(soft_prune(graph, plan), x)
        err = (_run(prune(graph, plan), x) - oracle).abs().max() / oracle.abs().max().clamp_min(
            1e-12
        )
    frozen = [g for g in graph.groups if not g.prunable]
    return {
        "oracle_relative_error": float(err),
        "groups": len(graph.groups),
        "frozen_groups": len(frozen),
        "frozen_reasons": sorted({g.reason for g in frozen})[:5],
    }


def one(
    name: str,
    library: str,
    build: Callable[[str], tuple[nn.Module, Any, str]],
    tp: Callable[[nn.Module, Any, list[str]], nn.Module] = prune_tp,
) -> dict[str, Any]:
    """Prune one model with one library (run in a child process); ``tp`` prunes with
    Torch-Pruning."""
    from neuronkit.pruning import count_macs

    torch.set_num_threads(1)
    model, x, keep = build(name)
    shape = {k: list(v.shape) for k, v in x.items()} if isinstance(x, dict) else list(x.shape)
    row: dict[str, Any] = {"model": name, "library": library, "input": shape}
    try:
        with torch.no_grad():
            y0 = _run(model, x)
        times: list[float] = []
        syncs: list[float] = []
        peaks: list[float] = []
        while len(times) < 2 or (len(times) < MAX_CALLS and sum(times) < CALLS_WITHIN_S):
            # in place on a fresh copy, as Torch-Pruning prunes
            m = copy.deepcopy(model)
            with _peak_rise() as rise, _config_sync_time() as synced, _collector_off():
                t = time.perf_counter()
                pruned = _neuronkit(m, x, keep) if library == "neuronkit" else tp(m, x, [keep])
                times.append(time.perf_counter() - t)
            syncs.append(sum(synced))
            peaks += rise
        best = min(range(len(times)), key=times.__getitem__)
        info = _oracle(model, x, keep) if library == "neuronkit" else {}
        with torch.no_grad():
            y1 = _run(pruned, x)
        if y1.shape != y0.shape:
            raise RuntimeError(f"output shape changed {tuple(y0.shape)} -> {tuple(y1.shape)}")
        row.update(
            handled=True,
            params_before=sum(p.numel() for p in model.parameters()),
            params_after=sum(p.numel() for p in pruned.parameters()),
            macs_before=count_macs(model, x),
            macs_after=count_macs(pruned, x),
            graph_and_prune_s=times[best],
            timed_calls=len(times),
            config_sync_s=syncs[best],  # of which neuronkit's Hugging Face config check
            # memory the first prune (as in a user's fresh process) needs beyond the model copy
            first_call_peak_mib=peaks[0] if peaks else None,
            **info,
        )
    except Exception as exc:  # a library failing on a model is a result
        row.update(handled=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
    return row


def run_coverage(script: str, names: Any, timeout: float) -> list[dict[str, Any]]:
    """``script --one NAME LIBRARY`` for every model and library, each in its own process with
    ``timeout`` seconds; a library failing, or not finishing, on a model is a result."""
    rows = []
    for name in names:
        for library in ("neuronkit", "torch_pruning"):
            cmd = [sys.executable, script, "--one", name, library]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
                lines = done.stdout.strip().splitlines()
                row = json.loads(lines[-1]) if lines else {}
                if not row:
                    err = done.stderr.strip().splitlines()
                    row = {"handled": False, "error": err[-1] if err else f"exit {done.returncode}"}
            except subprocess.TimeoutExpired:
                row = {"handled": False, "error": f"no result within {timeout:g} s"}
            row = {"model": name, "library": library, **row}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "frozen_reasons"}), flush=True)
    return rows


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
        print(json.dumps(one(*args.one, _build)))
        return 0
    import torch_pruning
    import torchvision

    from neuronkit.common import atomic_write_json

    names = args.only or (QUICK if args.quick else MODELS)
    rows = run_coverage(__file__, names, args.timeout)
    suffix = "_only" if args.only else "_quick" if args.quick else ""
    out = RESULTS.with_name(RESULTS.stem + suffix + ".json")
    atomic_write_json(
        out,
        {
            "benchmark": "pruning_torchvision",
            "ratio": RATIO,
            "importance": "group L2 magnitude, mean over members",
            "threads": 1,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "torch_pruning": torch_pruning.__version__,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
