"""Gradient attributions: neuronkit-interpretability against Captum (CPU, float32).

Matched settings, Captum's defaults stated explicitly on both sides (issue #5; agreement to
1e-5 is also tested in packages/interpretability/tests/test_attribution_captum.py):

* saliency: ``saliency(model, x, t, abs=True)`` vs ``Saliency(model).attribute(x, target=t,
  abs=True)``;
* integrated gradients: 50 steps, Gauss-Legendre nodes, zero baseline, no internal batching:
  ``integrated_gradients(model, x, t, baselines=None, n_steps=50, method="gausslegendre")`` vs
  ``IntegratedGradients(model).attribute(x, baselines=None, target=t, n_steps=50,
  method="gausslegendre")``;
* SmoothGrad: 50 noisy samples, stdev 0.15, all samples in one pass, saliency with abs=True:
  ``smoothgrad(model, x, t, n_samples=50, stdev=0.15, kind="smoothgrad", seed=0)`` vs
  ``torch.manual_seed(0); NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad",
  nt_samples=50, stdevs=0.15, target=t)`` (identical noise);
* guided backpropagation: ``guided_backprop(model, x, t)`` vs
  ``GuidedBackprop(model).attribute(x, target=t)`` (every ``nn.ReLU`` passes only positive
  gradients where its input was positive; the floor is saliency's).
* DeepLIFT (MLP only): Rescale rule, zero baseline: ``deeplift(model, x, t)`` vs
  ``DeepLift(model).attribute(x, target=t)`` (on the CNN, whose max pools follow ReLUs, Captum
  leaves the pools' rule out and the two differ: see neuronkit.interpretability.deeplift). The
  floor is saliency's plus a no-grad forward of one zero example (the reference activations).
* LRP (MLP only): epsilon rule (1e-9) on every linear layer: ``lrp(model, x, t)`` vs
  ``LRP(model).attribute(x, target=t)``, on flattened inputs and the MLP after its
  ``nn.Flatten`` (Captum has no LRP rule for it; the CNN has one inside). The floor is
  saliency's on the same.

* Grad-CAM (CNN only) of the second convolution's output: ``grad_cam(model, x, "3", t)`` vs
  ``LayerGradCam(model, model[3]).attribute(x, target=t)`` (no ReLU, channels summed: both
  defaults);
* occlusion (CNN only): 1 x 4 x 4 windows, strides 1 x 2 x 2 (13 x 13 positions), zero
  baseline, 256 occluded rows per forward on both sides: ``occlusion(model, x, (1, 4, 4), t,
  strides=(1, 2, 2), batch_size=256)`` vs ``Occlusion(model).attribute(x,
  sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0.0, target=t,
  perturbations_per_eval=256 // B)`` (Captum's default is one position per forward);
* feature ablation (CNN only): 4 x 4 superpixels shared by the channel (49 features), zero
  baseline, 256 ablated rows per forward on both sides: ``feature_ablation(model, x, t,
  feature_mask=m, batch_size=256)`` vs ``FeatureAblation(model).attribute(x, target=t,
  feature_mask=m, perturbations_per_eval=256 // B)``;
* Shapley value sampling (CNN only): the same 49 superpixels, 4 random orders (197 rows per
  example), 256 rows per forward on both sides: ``shapley_value_sampling(model, x, t,
  feature_mask=m, n_samples=4, seed=0)`` vs ``torch.manual_seed(0);
  ShapleyValueSampling(model).attribute(x, target=t, feature_mask=m, n_samples=4,
  perturbations_per_eval=256 // B)`` (the same orders: both draw them with ``torch.randperm``).

Models: an MLP 784-256-256-10 (ReLU) and a small CNN (1x28x28 -> conv 8 -> pool -> conv 16 ->
pool -> linear 10), in eval mode, at batch 1 and 32, targets ``arange(B) % 10``.

1. Equivalence: every worker saves its first attribution of every configuration; neuronkit's and
   Captum's are compared elementwise on exactly the timed inputs (max |diff| <= 1e-5).
2. Timing: each library runs all configurations in its own process (median of repeats after two
   warm-up calls; the repeat count adapts to about 0.5 s per configuration, at least 3), with a
   fixed thread count. Every library runs --rounds times, the libraries interleaved in a
   rotating order; the reported time is the median over rounds of the per-process medians.
   The floor is the bare batched forward+backward the method cannot beat: the same model on
   exactly the rows it evaluates (the B inputs for saliency; x at the 50 Gauss-Legendre nodes,
   prebuilt, for integrated gradients; for SmoothGrad the 50 B noisy copies, drawn in the
   timed call because no SmoothGrad can skip the draw: randn and one fused add), the target
   outputs summed and differentiated with respect to the input only. Grad-CAM's floor runs
   the layers up to the attributed one without a graph (none is needed there), the rest
   forward and backward to that layer's output, and the map's three ops; occlusion's is the
   model's forward (no gradients) on every occluded copy, built before the timed calls, in
   the same chunks.
   (Until 2026-11-29 the floor ran on B identical copies of x and left the noise out; on the
   CNN identical rows run ~10% faster than noisy ones, so that floor was below what the
   method can reach.)
   "x floor" is measured in each library's own process: its calls alternate with the floor's
   (order swapped every repeat), and the ratio of the two medians is taken per process
   (median over rounds), so both see the same machine state; the floor's own process
   times it alone, for the ms column.

    python benchmarks/interpretability/bench_attribution.py [--threads 1] [--repeats 30]
        [--rounds 3] [--quick]

neuronkit is imported from this checkout (packages/interpretability/src is put first on the
path, so a benchmark environment holding an installed copy still measures the working tree);
the file used is recorded in the JSON as ``neuronkit_source``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "packages" / "interpretability" / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # the working tree, not an installed copy

from _paired import time_alternating  # noqa: E402  (this script's folder)

LIBRARIES = ["floor", "neuronkit", "captum"]
RESULTS = Path(__file__).resolve().parents[1] / "results" / "interpretability_attribution.json"
N_STEPS, N_SAMPLES, STDEV = 50, 50, 0.15
METHODS = ["saliency", "integrated_gradients", "smoothgrad", "guided_backprop"]
CNN_METHODS = ["grad_cam", "occlusion", "feature_ablation", "shapley_value_sampling"]  # CNN only
MLP_METHODS = ["deeplift", "lrp"]  # Captum: pools after ReLUs skip DeepLIFT's rule, no Flatten
CAM_LAYER = 3  # Grad-CAM of the second convolution's output [B, 16, 14, 14]
WINDOW, STRIDES, ROWS = (1, 4, 4), (1, 2, 2), 256  # occlusion: 13 x 13 positions, rows/forward
SUPERPIXEL = 4  # feature ablation: 7 x 7 features of 4 x 4 pixels
ORDERS = 4  # Shapley value sampling: random feature orders


def configs(quick: bool) -> list[tuple[str, int, str]]:
    """(model, batch, method)."""
    models = ["mlp"] if quick else ["mlp", "cnn"]
    out = [(m, b, meth) for m in models for b in (1, 32) for meth in METHODS]
    out += [("mlp", b, meth) for b in (1, 32) for meth in MLP_METHODS]
    if not quick:
        out += [("cnn", b, meth) for b in (1, 32) for meth in CNN_METHODS]
    return out


def _superpixels(x):  # type: ignore[no-untyped-def]
    """Feature ablation's mask: ``SUPERPIXEL`` x ``SUPERPIXEL`` blocks, ``[1, 1, H, W]``."""
    import torch

    h, w = x.shape[2:]
    rows = torch.arange(h)[:, None] // SUPERPIXEL * (w // SUPERPIXEL)
    return (rows + torch.arange(w)[None, :] // SUPERPIXEL).view(1, 1, h, w)


def _occluded_chunks(x, method):  # type: ignore[no-untyped-def]
    """Every occluded (or ablated) copy of ``x`` (zero baseline), in forward-sized chunks: the
    rows occlusion (feature ablation) must evaluate, built before the floor's timed calls."""
    import itertools

    import torch

    h, w = x.shape[2:]
    if method == "feature_ablation":
        mask = _superpixels(x)
        masks = [mask == f for f in range(int(mask.max()) + 1)]
    elif method == "shapley_value_sampling":  # all at the baseline, then features joining
        mask = _superpixels(x)
        n, gen = int(mask.max()) + 1, torch.Generator().manual_seed(0)
        masks = [torch.ones_like(mask, dtype=torch.bool)]
        for _ in range(ORDERS):
            ranks = torch.empty(n, dtype=torch.long)
            ranks[torch.randperm(n, generator=gen)] = torch.arange(n)
            masks += [ranks[mask] >= j for j in range(1, n)]
    else:
        corners = itertools.product(
            range(0, h - WINDOW[1] + 1, STRIDES[1]), range(0, w - WINDOW[2] + 1, STRIDES[2])
        )
        masks = []
        for i, j in corners:
            m = torch.zeros(1, 1, h, w, dtype=torch.bool)
            m[:, :, i : i + WINDOW[1], j : j + WINDOW[2]] = True
            masks.append(m)
    rows = [x.masked_fill(m, 0.0) for m in masks]
    per_forward = max(1, ROWS // x.shape[0])
    return [torch.cat(rows[k : k + per_forward]) for k in range(0, len(rows), per_forward)]


def build_model(name: str):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
    elif name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 10),
        )
    else:
        raise ValueError(f"model must be 'mlp' or 'cnn', got {name!r}")
    return model.eval()


def make_input(batch: int):  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(batch)
    return torch.rand(batch, 1, 28, 28, generator=g), torch.arange(batch) % 10


def build_call(library: str, model, method: str, x, target):  # type: ignore[no-untyped-def]
    """A zero-argument callable returning the attributions (or the floor's gradient)."""
    import torch

    if method == "lrp":  # Captum has no LRP rule for nn.Flatten: every side gets flat inputs
        model, x = model[1:], x.flatten(1)
    if library == "floor" and method == "grad_cam":  # no graph before the layer: none needed
        prefix, suffix = model[: CAM_LAYER + 1], model[CAM_LAYER + 1 :]

        def cam_floor():  # type: ignore[no-untyped-def]
            with torch.no_grad():
                acts = prefix(x)
            leaf = acts.requires_grad_(True)
            out = suffix(leaf).gather(1, target[:, None]).sum()
            grad = torch.autograd.grad(out, leaf)[0]
            return (grad.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True)  # the map

        return cam_floor
    if library == "floor" and method in ("occlusion", "feature_ablation", "shapley_value_sampling"):
        chunks = _occluded_chunks(x, method)

        def occlusion_floor():  # type: ignore[no-untyped-def]
            with torch.no_grad():
                return [model(chunk) for chunk in chunks]

        return occlusion_floor
    if library == "floor":  # on exactly the rows the method evaluates
        if method in ("saliency", "guided_backprop", "deeplift", "lrp"):  # forward+backward
            batch, t = x, target
        elif method == "integrated_gradients":  # x at the Gauss-Legendre nodes (zero baseline)
            import numpy as np

            nodes = torch.tensor((np.polynomial.legendre.leggauss(N_STEPS)[0] + 1) / 2)
            batch = (nodes.to(x.dtype)[:, None, None, None, None] * x).flatten(0, 1)
            t = target.repeat(N_STEPS)
        else:  # SmoothGrad: its noisy copies, whose draw it cannot avoid either (timed below)
            batch, t = None, target.repeat_interleave(N_SAMPLES)
            shape = (x.shape[0], N_SAMPLES, *x.shape[1:])

        reference = torch.zeros_like(x[:1]) if method == "deeplift" else None

        def floor():  # type: ignore[no-untyped-def]
            if reference is not None:  # DeepLIFT's reference activations
                with torch.no_grad():
                    model(reference)
            rows = batch
            if rows is None:  # the draw and one fused add: x + STDEV * noise
                noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
                rows = torch.add(x.unsqueeze(1), noise, alpha=STDEV).flatten(0, 1)
            leaf = rows.detach().requires_grad_(True)
            out = model(leaf).gather(1, t[:, None]).sum()
            return torch.autograd.grad(out, leaf)[0]

        return floor
    if library == "neuronkit":
        from neuronkit.interpretability import (
            deeplift,
            feature_ablation,
            grad_cam,
            guided_backprop,
            integrated_gradients,
            lrp,
            occlusion,
            saliency,
            shapley_value_sampling,
            smoothgrad,
        )

        if method == "grad_cam":
            return lambda: grad_cam(model, x, str(CAM_LAYER), target)
        if method == "occlusion":
            return lambda: occlusion(model, x, WINDOW, target, strides=STRIDES, batch_size=ROWS)
        if method == "feature_ablation":
            mask = _superpixels(x)
            return lambda: feature_ablation(model, x, target, feature_mask=mask, batch_size=ROWS)
        if method == "shapley_value_sampling":
            mask = _superpixels(x)
            return lambda: shapley_value_sampling(
                model, x, target, feature_mask=mask, n_samples=ORDERS, batch_size=ROWS, seed=0
            )
        if method == "saliency":
            return lambda: saliency(model, x, target, abs=True)
        if method == "guided_backprop":
            return lambda: guided_backprop(model, x, target)
        if method == "deeplift":
            return lambda: deeplift(model, x, target)
        if method == "lrp":
            return lambda: lrp(model, x, target)
        if method == "integrated_gradients":
            return lambda: integrated_gradients(
                model, x, target, baselines=None, n_steps=N_STEPS, method="gausslegendre"
            )
        return lambda: smoothgrad(
            model,
            x,
            target,
            method="saliency",
            n_samples=N_SAMPLES,
            stdev=STDEV,
            kind="smoothgrad",
            seed=0,
        )
    if library == "captum":
        from captum.attr import (
            LRP,
            DeepLift,
            FeatureAblation,
            GuidedBackprop,
            IntegratedGradients,
            LayerGradCam,
            NoiseTunnel,
            Occlusion,
            Saliency,
            ShapleyValueSampling,
        )

        if method == "grad_cam":
            cam = LayerGradCam(model, model[CAM_LAYER])
            return lambda: cam.attribute(x, target=target)
        if method == "occlusion":
            occ = Occlusion(model)
            per_eval = max(1, ROWS // x.shape[0])  # the same rows per forward as neuronkit's
            return lambda: occ.attribute(
                x,
                sliding_window_shapes=WINDOW,
                strides=STRIDES,
                baselines=0.0,
                target=target,
                perturbations_per_eval=per_eval,
            )
        if method == "feature_ablation":
            ablation, mask = FeatureAblation(model), _superpixels(x)
            per_eval = max(1, ROWS // x.shape[0])
            return lambda: ablation.attribute(
                x, target=target, feature_mask=mask, perturbations_per_eval=per_eval
            )
        if method == "shapley_value_sampling":
            shapley, mask = ShapleyValueSampling(model), _superpixels(x)
            per_eval = max(1, ROWS // x.shape[0])

            def sampled():  # type: ignore[no-untyped-def]
                torch.manual_seed(0)  # the orders neuronkit draws with seed=0
                return shapley.attribute(
                    x,
                    target=target,
                    feature_mask=mask,
                    n_samples=ORDERS,
                    perturbations_per_eval=per_eval,
                )

            return sampled
        if method == "guided_backprop":
            guided = GuidedBackprop(model)
            return lambda: guided.attribute(x, target=target)
        if method == "deeplift":
            lift = DeepLift(model)
            return lambda: lift.attribute(x, target=target)
        if method == "lrp":
            relevance = LRP(model)
            return lambda: relevance.attribute(x, target=target)
        if method == "saliency":
            sal = Saliency(model)
            return lambda: sal.attribute(x, target=target, abs=True)
        if method == "integrated_gradients":
            ig = IntegratedGradients(model)
            return lambda: ig.attribute(
                x, baselines=None, target=target, n_steps=N_STEPS, method="gausslegendre"
            )
        tunnel = NoiseTunnel(Saliency(model))

        def smooth():  # type: ignore[no-untyped-def]
            torch.manual_seed(0)  # the same noise as neuronkit's seed=0
            return tunnel.attribute(
                x, nt_type="smoothgrad", nt_samples=N_SAMPLES, stdevs=STDEV, target=target
            )

        return smooth
    raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")


PAIRED = ("neuronkit", "captum")  # timed alternately with the floor in their own process


def worker(library: str, quick: bool, repeats: int, threads: int, save: str | None) -> dict:
    """Time every configuration in this (fresh) process; save first outputs to ``save``."""
    import torch

    torch.set_num_threads(threads)
    models = {}
    out = {}
    saved = {}
    for name, batch, method in configs(quick):
        key = f"{name}/{batch}/{method}"
        if name not in models:
            models[name] = build_model(name)
        x, target = make_input(batch)
        call = build_call(library, models[name], method, x, target)
        first = call()
        if save and library != "floor":
            saved[key] = first.detach().clone()
        start = time.perf_counter()
        call()
        warm = time.perf_counter() - start
        count = max(3, min(repeats, round(0.5 / max(warm, 1e-6))))
        paired = build_call("floor", models[name], method, x, target) if library in PAIRED else None
        if paired is not None:
            paired()
        times, floor_times = time_alternating(call, paired, count)
        out[key] = {"median_ms": 1e3 * statistics.median(times), "repeats": count}
        if floor_times:
            out[key]["paired_floor_ms"] = 1e3 * statistics.median(floor_times)
    if save and saved:
        torch.save(saved, save)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="processes per library")
    parser.add_argument("--quick", action="store_true", help="the MLP only")
    parser.add_argument("--worker", metavar="LIB")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.quick, args.repeats, args.threads, args.save)
        print(json.dumps(result))
        return 0

    wall = time.perf_counter()
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {lib: [] for lib in LIBRARIES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for lib in LIBRARIES[r % len(LIBRARIES) :] + LIBRARIES[: r % len(LIBRARIES)]:
                save = str(Path(tmp) / f"{lib}.pt") if r == 0 else None
                runs[lib].append(_run_worker(lib, args, save))
                print(f"round {r} {lib}: done", flush=True)
        equivalence = _equivalence(Path(tmp))
    load_after = os.getloadavg()
    rows = []
    for name, batch, method in configs(args.quick):
        key = f"{name}/{batch}/{method}"
        row: dict = {"model": name, "batch": batch, "method": method}
        for lib in LIBRARIES:
            results = [res for res in runs[lib] if "error" not in res]
            if not results:
                row[lib] = {"error": runs[lib][0]["error"]}
                continue
            rounds_ms = [res[key]["median_ms"] for res in results]
            row[lib] = {"median_ms": statistics.median(rounds_ms), "rounds_ms": rounds_ms}
            if lib in PAIRED:  # time / floor in the same process, median over rounds
                row[lib]["paired_ratio_to_floor"] = statistics.median(
                    res[key]["median_ms"] / res[key]["paired_floor_ms"] for res in results
                )
        row["equivalence_max_abs_diff"] = equivalence.get(key)
        ours = row["neuronkit"].get("median_ms")
        if ours and "median_ms" in row["captum"]:
            row["speedup_vs_captum"] = row["captum"]["median_ms"] / ours
        if ours and "median_ms" in row["floor"]:
            row["ratio_to_floor"] = ours / row["floor"]["median_ms"]
            if "median_ms" in row["captum"]:
                row["captum_ratio_to_floor"] = (
                    row["captum"]["median_ms"] / row["floor"]["median_ms"]
                )
        rows.append(row)
        print(_row_text(row), flush=True)
    worst = max((v for v in equivalence.values() if v is not None), default=None)
    passed = (
        worst is not None
        and worst <= 1e-5
        and all(v is not None and math.isfinite(v) for v in equivalence.values())  # NaN fails
    )
    import torch

    from neuronkit.common import atomic_write_json
    from neuronkit.interpretability import attribution

    out = RESULTS.with_name(RESULTS.stem + "_quick.json") if args.quick else RESULTS
    atomic_write_json(
        out,
        {
            "benchmark": (
                "saliency / integrated gradients / SmoothGrad / guided backpropagation / DeepLIFT /"
                " LRP / Grad-CAM / occlusion / feature ablation / Shapley sampling vs Captum,"
                " float32, CPU"
            ),
            "settings": {
                "integrated_gradients": "n_steps=50, gausslegendre, zero baseline",
                "smoothgrad": "NoiseTunnel(Saliency abs=True), 50 samples, stdev 0.15, seed 0",
                "saliency": "abs=True",
                "guided_backprop": "GuidedBackprop defaults",
                "deeplift": "MLP only, DeepLift defaults (Rescale, zero baseline, eps 1e-10)",
                "lrp": "MLP only, LRP defaults (epsilon rule 1e-9 on every linear layer)",
                "grad_cam": "CNN layer 3 (conv 8->16), no ReLU, channels summed",
                "occlusion": "CNN, window 1x4x4, strides 1x2x2, zero baseline, 256 rows/forward",
                "feature_ablation": "CNN, 4x4 superpixels (49), zero baseline, 256 rows/forward",
                "shapley_value_sampling": "CNN, the 49 superpixels, 4 orders, 256 rows/forward",
            },
            "threads": args.threads,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "quick": args.quick,
            "torch": torch.__version__,
            "captum": _version("captum"),
            "neuronkit_source": str(Path(attribution.__file__).resolve()),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpu_count": os.cpu_count(),
            "wall_s": time.perf_counter() - wall,
            "equivalence": {
                "compared": "first output of every timed configuration, neuronkit vs Captum",
                "atol": 1e-5,
                "max_abs_diff": worst,
                "passed": passed,
            },
            "floor": (
                "model forward+backward (grad w.r.t. input) on exactly the rows the method "
                "evaluates, at once (guided backpropagation: saliency's); SmoothGrad's "
                "includes drawing its noisy copies; Grad-CAM: graph-free forward to the layer, "
                "forward+backward to it after, the map; occlusion and feature ablation: forward "
                "only on every occluded / ablated copy (prebuilt)"
            ),
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    print(_markdown(rows))
    return 0 if passed else 1


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _equivalence(tmp: Path) -> dict[str, float | None]:
    """Max |neuronkit - Captum| per configuration."""
    import torch

    files = {lib: tmp / f"{lib}.pt" for lib in ("neuronkit", "captum")}
    if not all(f.exists() for f in files.values()):
        return {}
    ours, theirs = (torch.load(files[lib]) for lib in ("neuronkit", "captum"))
    out: dict[str, float | None] = {}
    for key, a in ours.items():
        b = theirs.get(key)
        out[key] = None if b is None or a.shape != b.shape else float((a - b).abs().max())
    return out


def _run_worker(lib: str, args: argparse.Namespace, save: str | None) -> dict:
    """One library, all configurations, in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", lib, "--repeats", str(args.repeats)]
    cmd += ["--threads", str(args.threads)]
    if args.quick:
        cmd.append("--quick")
    if save:
        cmd += ["--save", save]
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _markdown(rows: list[dict]) -> str:
    """The results as the Markdown table of the package README."""
    head = ["model", "batch", "method", "floor ms", "neuronkit ms", "Captum ms"]
    head += ["vs Captum", "x floor (nk)", "x floor (Captum)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ms = [
            f"{row[lib]['median_ms']:.2f}" if "median_ms" in row[lib] else "error"
            for lib in LIBRARIES
        ]
        cells = [row["model"], str(row["batch"]), row["method"], *ms]
        cells.append(f"{row['speedup_vs_captum']:.2f}x" if "speedup_vs_captum" in row else "-")
        for lib in PAIRED:  # time over the floor timed alternately in the library's process
            ratio = row[lib].get("paired_ratio_to_floor")
            cells.append(f"{ratio:.2f}" if ratio else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row_text(row: dict) -> str:
    cells = [f"{row['model']:<4} B={row['batch']:<3} {row['method']:<21}"]
    for lib in LIBRARIES:
        r = row[lib]
        cells.append(f"{lib} {r['median_ms']:.3f}ms" if "median_ms" in r else f"{lib} ERR")
    if "speedup_vs_captum" in row:
        cells.append(f"| x{row['speedup_vs_captum']:.2f} vs Captum")
    if "paired_ratio_to_floor" in row["neuronkit"]:
        cells.append(f"{row['neuronkit']['paired_ratio_to_floor']:.2f} x floor (paired)")
    cells.append(f"diff {row['equivalence_max_abs_diff']}")
    return "  ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
