"""LRP through a ResNet: neuronkit vs zennit (and Captum, whose numbers differ there).

torchvision's ResNet-18 (random weights, random batch-norm statistics folded into the
convolutions, 10 classes) on 64 x 64 images at batch 1 and 16, float32, the epsilon rule
(1e-9) on the convolutions, the linear layer and the average pool; sums split by contribution
and the max pool passes relevance to its winners, both unstabilized:

* neuronkit: ``lrp(model, x, target, rules=...)``: its backward pass splits every residual
  sum by contribution.
* zennit 0.5.1: ``Gradient`` with a ``LayerMapComposite`` (``Epsilon`` on convolutions and
  the linear layer, its ``Norm`` rule on the sums (stabilizer 1e-30) and the average pool,
  ``Pass`` on the ReLUs, no rule on the max pool)
  and its ``ResNetCanonizer``, which routes each sum through a module of its own. Each call
  enters the attributor (hooks and canonizer on, off at the end), as neuronkit's call does.
* Captum 0.9 ``LRP``: timed on the same network with its batch norms unfolded (it refuses
  ``nn.Identity``), but its relevances are not comparable (it hands a sum's whole relevance
  to both branches: the convergence delta is reported).
* floor: one forward and backward pass of the model to the input.

First the results are compared (neuronkit against zennit, float64), then the calls alternate
in one process (order rotated every repeat, 1 thread), median of the repeats.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "interpretability_lrp.json"
for _src in (ROOT / "shared" / "src", ROOT / "packages" / "interpretability" / "src"):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

EPS = 1e-9
LIBRARIES = ("neuronkit", "zennit", "captum", "floor")


def build_model(dtype: Any, folded: bool = True) -> Any:
    """ResNet-18 with random batch-norm statistics folded into its convolutions (``folded``)
    or kept in its batch norms (the same function)."""
    import torch
    from torch import nn
    from torchvision.models import resnet18
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    model = resnet18(num_classes=10)

    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            with torch.no_grad():
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
    if not folded:
        return model.to(dtype).eval()

    def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Identity:
        with torch.no_grad():
            scale = bn.weight / (bn.running_var + bn.eps).sqrt()
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias - scale * bn.running_mean)
        return nn.Identity()

    model.bn1 = fold(model.conv1, model.bn1)
    for block in model.modules():
        if isinstance(block, BasicBlock):
            block.bn1 = fold(block.conv1, block.bn1)
            block.bn2 = fold(block.conv2, block.bn2)
            if block.downsample is not None:
                block.downsample[1] = fold(block.downsample[0], block.downsample[1])
    return model.to(dtype).eval()


def build_call(library: str, model: Any, x: Any, target: Any) -> Any:
    """A zero-argument callable returning the input relevances (the floor: the gradient)."""
    import torch
    from torch import nn

    if library == "neuronkit":
        from neuronkit.interpretability import EpsilonRule, lrp

        kinds = (nn.Conv2d, nn.Linear, nn.AdaptiveAvgPool2d)
        rules = {nn.MaxPool2d: EpsilonRule(0.0)} | {kind: EpsilonRule(EPS) for kind in kinds}
        return lambda: lrp(model, x, target, rules=rules)
    if library == "zennit":
        from zennit.attribution import Gradient
        from zennit.composites import LayerMapComposite
        from zennit.core import BasicHook, stabilize
        from zennit.layer import Sum
        from zennit.rules import Epsilon, NoMod, Pass
        from zennit.torchvision import ResNetCanonizer
        from zennit.types import Activation, AvgPool, Convolution

        def norm(eps: float) -> Any:  # zennit's Norm rule with another stabilizer
            return BasicHook(
                input_modifiers=[lambda a: a],
                param_modifiers=[NoMod(param_keys=[])],
                output_modifiers=[lambda z: z],
                gradient_mapper=lambda grad, outputs: grad / stabilize(outputs[0], eps),
                reducer=lambda inputs, grads: inputs[0] * grads[0],
            )

        layer_map = [
            (Activation, Pass()),
            (Sum, norm(1e-30)),  # split by contribution, as neuronkit's sums (unstabilized)
            (AvgPool, norm(EPS)),
            (Convolution, Epsilon(EPS)),
            (nn.Linear, Epsilon(EPS)),
        ]
        composite = LayerMapComposite(layer_map=layer_map, canonizers=[ResNetCanonizer()])
        own = copy.deepcopy(model)  # the canonizer swaps the blocks' forward while attributing

        def zennit_call() -> Any:
            with torch.no_grad():
                logits = own(x)
            grad = torch.zeros_like(logits)
            grad[torch.arange(len(x)), target] = logits[torch.arange(len(x)), target]
            with Gradient(model=own, composite=composite) as attributor:
                return attributor(x, grad)[1]

        return zennit_call
    if library == "captum":
        from captum.attr import LRP

        own = build_model(x.dtype, folded=False)  # Captum refuses nn.Identity
        return lambda: LRP(own).attribute(x, target=target)

    def floor() -> Any:
        leaf = x.detach().requires_grad_(True)
        out = model(leaf)[torch.arange(len(x)), target].sum()
        return torch.autograd.grad(out, leaf)[0]

    return floor


def equivalence(batch: int) -> dict[str, float]:
    """neuronkit against zennit in float64; Captum's convergence delta relative to the logit."""
    import warnings

    import torch

    warnings.simplefilter("ignore")
    model = build_model(torch.float64)
    x, target = _inputs(batch, torch.float64)
    ours = build_call("neuronkit", model, x, target)()
    theirs = build_call("zennit", model, x, target)()
    from captum.attr import LRP

    captum = build_model(torch.float64, folded=False)
    _, delta = LRP(captum).attribute(x, target=target, return_convergence_delta=True)
    with torch.no_grad():
        logits = model(x)[torch.arange(batch), target]
    return {
        "zennit_max_relative_diff": float((ours - theirs).abs().max() / ours.abs().max()),
        "neuronkit_delta_over_logit": float(((logits - ours.sum((1, 2, 3))) / logits).abs().max()),
        "captum_delta_over_logit": float((delta.detach() / logits).abs().max()),
    }


def _inputs(batch: int, dtype: Any) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(batch)
    return torch.rand(batch, 3, 64, 64, generator=g).to(dtype), torch.arange(batch) % 10


def timings(batch: int, repeats: int) -> dict[str, float]:
    import warnings

    import torch

    warnings.simplefilter("ignore")
    model = build_model(torch.float32)
    x, target = _inputs(batch, torch.float32)
    calls = {lib: build_call(lib, model, x, target) for lib in LIBRARIES}
    for call in calls.values():  # warm-up
        call()
    times: dict[str, list[float]] = {lib: [] for lib in LIBRARIES}
    for i in range(repeats):
        order = LIBRARIES[i % len(LIBRARIES) :] + LIBRARIES[: i % len(LIBRARIES)]
        for lib in order:
            start = time.perf_counter()
            calls[lib]()
            times[lib].append(time.perf_counter() - start)
    return {lib: 1e3 * statistics.median(t) for lib, t in times.items()}


def main(argv: list[str]) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    rows = []
    for batch in (1, 16):
        row: dict[str, Any] = {"batch": batch, **equivalence(batch)}
        row["ms"] = timings(batch, args.repeats)
        row["vs_zennit"] = row["ms"]["zennit"] / row["ms"]["neuronkit"]
        row["vs_captum"] = row["ms"]["captum"] / row["ms"]["neuronkit"]
        row["x_floor"] = row["ms"]["neuronkit"] / row["ms"]["floor"]
        row["zennit_x_floor"] = row["ms"]["zennit"] / row["ms"]["floor"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    passed = all(r["zennit_max_relative_diff"] <= 1e-8 for r in rows)
    from importlib.metadata import version

    from neuronkit.common import atomic_write_json

    atomic_write_json(
        RESULTS,
        {
            "benchmark": __doc__.splitlines()[0],
            "model": "torchvision resnet18, 10 classes, batch norms folded, 64 x 64 inputs",
            "rules": f"epsilon {EPS} on convolutions, linear, pools; sums split by contribution",
            "threads": args.threads,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "zennit": version("zennit"),
            "captum": version("captum"),
            "cpu_count": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "wall_s": time.perf_counter() - wall,
            "equivalence_passed": passed,
            "rows": rows,
        },
    )
    print(f"wrote {RESULTS}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
