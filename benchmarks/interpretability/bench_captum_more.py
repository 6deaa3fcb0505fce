"""Layer, neuron, permutation, evaluation and language-model attribution: neuronkit against Captum.

The methods added in neuronkit-interpretability 0.5.39, each against its Captum twin with the
same settings (CPU, 1 thread):

* neuron integrated gradients (50 Gauss-Legendre steps) and neuron conductance (50 Riemann
  trapezoid steps) of unit (5, 7, 7) of the CNN's second convolution:
  ``integrated_gradients(neuron_output(cnn, "3", unit), x)`` vs ``NeuronIntegratedGradients``,
  ``neuron_conductance`` vs ``NeuronConductance``;
* layer gradient x activation, internal influence (50 steps) and layer feature ablation (whole
  channels, 256 rows per forward on both sides, class 3 for every example: Captum's
  ``LayerFeatureAblation`` fails on a target tensor with several perturbations per forward)
  at that convolution's output;
* layer DeepLIFT at the MLP's second linear layer (``LayerDeepLift``);
* layer LRP (epsilon rule, 1e-9) at the MLP's second linear layer, on flattened inputs and
  the MLP after its ``nn.Flatten`` (``LayerLRP``; Captum has no LRP rule for it);
* layer GradientSHAP (5 draws per example) at the CNN's last pooling layer, against the
  batch's mean image (``LayerGradientShap``; one baseline and a layer read linearly, so the
  two libraries' different random draws give the same attributions);
* feature permutation of the CNN's 49 superpixels (256 rows per forward on both sides, the
  same permutations from the global generator);
* infidelity (50 perturbations per example, the same perturbations, normalized) of saliency
  maps, and max-sensitivity (10 perturbations, the same ones) of saliency;
* TracIn influence of 256 training digits on 32 test digits for the CNN, three checkpoint files
  with their learning rates, over every parameter and over the last layer's
  (``tracin_influence`` vs ``TracInCP`` with its per-batch sample-wise gradients, its faster
  setting: a summed loss, 64 examples per batch on both sides);
* similarity influence of the same 256 training digits on 32 test digits for the CNN: the 5
  training digits closest in cosine similarity at its second convolution and at its logits
  (two layers: Captum 0.9.0's ``SimilarityInfluence`` fails on a single layer, wrapping its
  one activation in a list twice), 64 per forward on both sides
  (``similarity_influence(..., top_k=5)`` vs ``SimilarityInfluence``, its activations
  recomputed on every call, ``load_src_from_disk=False``, as neuronkit keeps none; Captum
  writes them to its activation folder each time);
* influence functions of the same 256 training digits on 32 test digits for the MLP at its
  last layer's 2570 parameters, inverting the Hessian on its 50 largest eigenvalues
  (``hessian_influence(..., rank=50)`` vs ``NaiveInfluenceFunction`` with
  ``projection_dim=50``, its default); and by Arnoldi iteration over all 9098 parameters of
  the CNN (30 Krylov steps, 10 directions; ``method="arnoldi"`` vs
  ``ArnoldiInfluenceFunction``, the same seed and damping);
* prompt-token attribution of a 2-layer GPT-2 (width 64, 16 prompt and 8 target tokens):
  ``llm_attribution`` with feature ablation and Shapley value sampling (2 orders) against
  ``LLMAttribution`` with its single-pass forward (``forward_in_tokens=False``; its default
  decodes token by token with a KV cache, which with transformers 5.24 gives other numbers and
  fails on longer prompts), and ``llm_gradient_attribution`` against ``LLMGradientAttribution``
  with ``LayerIntegratedGradients`` (20 steps).

1. Equivalence: both libraries' results are compared on the timed inputs (max |diff|).
2. Timing: each library runs every configuration in its own process (median of repeats after
   one warm-up call, about 1 s per configuration and at least 5 repeats), ``--rounds``
   processes per library in alternating order; the table is the median over rounds.

    python benchmarks/interpretability/bench_captum_more.py [--rounds 3] [--threads 1]

Needs captum and transformers (the benchmark environment).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "interpretability_more.json"
for _src in (ROOT / "shared" / "src", ROOT / "packages" / "interpretability" / "src", HERE):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

from bench_attribution import _superpixels, build_model, make_input  # noqa: E402

UNIT, LAYER = (5, 7, 7), "3"
CONFIGS = [
    ("neuron_integrated_gradients", 8),
    ("neuron_conductance", 8),
    ("layer_gradient_x_activation", 32),
    ("internal_influence", 8),
    ("layer_feature_ablation", 8),
    ("layer_deeplift", 32),
    ("layer_gradient_shap", 32),
    ("layer_lrp", 32),
    ("feature_permutation", 32),
    ("infidelity", 8),
    ("sensitivity_max", 8),
    ("tracin", 32),
    ("tracin_last_layer", 32),
    ("similarity_influence", 32),
    ("hessian_influence", 32),
    ("arnoldi_influence", 32),
    ("llm_feature_ablation", 1),
    ("llm_shapley_value_sampling", 1),
    ("llm_gradient_attribution", 1),
]


class _IdTokenizer:
    """Text of space-separated token ids (what Captum's TextTokenInput reads)."""

    def encode(self, text: str, return_tensors: Any = None) -> Any:
        import torch

        return torch.tensor([[int(t) for t in text.split()]])

    def convert_ids_to_tokens(self, ids: Any) -> list[str]:
        return [str(i) for i in (ids if isinstance(ids, list) else [ids])]

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [int(t) for t in tokens]

    def decode(self, ids: Any, **kwargs: Any) -> str:
        return " ".join(str(int(i)) for i in (ids if hasattr(ids, "__len__") else [ids]))

    def __call__(self, text: str, **kwargs: Any) -> dict[str, Any]:
        ids, offsets, pos = [], [], 0
        for token in text.split():
            start = text.index(token, pos)
            ids.append(int(token))
            offsets.append((start, start + len(token)))
            pos = start + len(token)
        return {"input_ids": ids, "offset_mapping": offsets}


def _gpt2() -> tuple[Any, Any, Any]:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(
        vocab_size=500,
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    g = torch.Generator().manual_seed(0)
    prompt = " ".join(str(int(i)) for i in torch.randint(1, 500, (16,), generator=g))
    return model, prompt, torch.randint(1, 500, (8,), generator=g)


def build_call(library: str, method: str, batch: int) -> Any:
    """A zero-argument call computing ``method`` with ``library`` (``neuronkit``/``captum``)."""
    import torch

    torch.manual_seed(0)
    if method.startswith("llm"):
        model, prompt, target = _gpt2()
        tok = _IdTokenizer()
        if library == "neuronkit":
            from neuronkit.interpretability import llm_attribution, llm_gradient_attribution

            ids = tok.encode(prompt)
            if method == "llm_gradient_attribution":
                return lambda: llm_gradient_attribution(model, ids, target, n_steps=20).seq_attr
            name = method.removeprefix("llm_")
            kw = {"n_samples": 2} if "shapley" in name else {}

            def ours() -> Any:
                torch.manual_seed(1)
                return llm_attribution(model, ids, target, method=name, **kw).seq_attr

            return ours
        import captum.attr as ca

        if method == "llm_gradient_attribution":
            lig = ca.LLMGradientAttribution(
                ca.LayerIntegratedGradients(model, model.transformer.wte), tok
            )
            return lambda: (
                lig.attribute(ca.TextTokenInput(prompt, tok), target=target, n_steps=20).seq_attr
            )
        cls = ca.ShapleyValueSampling if "shapley" in method else ca.FeatureAblation
        llm = ca.LLMAttribution(cls(model), tok)
        kw = {"n_samples": 2} if "shapley" in method else {}

        def theirs() -> Any:
            torch.manual_seed(1)
            return llm.attribute(
                ca.TextTokenInput(prompt, tok), target=target, forward_in_tokens=False, **kw
            ).seq_attr

        return theirs

    if method in (
        "tracin",
        "tracin_last_layer",
        "similarity_influence",
        "hessian_influence",
        "arnoldi_influence",
    ):
        return _influence_call(library, method, batch)
    model = build_model("mlp" if method in ("layer_deeplift", "layer_lrp") else "cnn")
    x, t = make_input(batch)
    mask = _superpixels(x)
    if method == "layer_lrp":
        model, x = model[1:], x.flatten(1)
    mean = x.mean(0, keepdim=True)
    channels = torch.arange(16).view(1, 16, 1, 1)
    g = torch.Generator().manual_seed(2)
    shifts = torch.randn(batch * 50, *x.shape[1:], generator=g) * 0.1
    moves = (torch.rand(batch * 10, *x.shape[1:], generator=g) - 0.5) * 0.04
    if library == "neuronkit":
        import neuronkit.interpretability as nk

        calls = {
            "neuron_integrated_gradients": lambda: nk.integrated_gradients(
                nk.neuron_output(model, LAYER, UNIT), x
            ),
            "neuron_conductance": lambda: nk.neuron_conductance(model, x, LAYER, UNIT, t),
            "layer_gradient_x_activation": lambda: nk.layer_gradient_x_activation(
                model, x, LAYER, t
            ),
            "internal_influence": lambda: nk.internal_influence(model, x, LAYER, t),
            "layer_feature_ablation": lambda: nk.layer_feature_ablation(
                model, x, LAYER, 3, layer_mask=channels
            ),
            "layer_deeplift": lambda: nk.layer_deeplift(model, x, "3", t),
            "layer_gradient_shap": lambda: nk.layer_gradient_shap(model, x, "5", mean, t),
            "layer_lrp": lambda: nk.layer_lrp(model, x, model[2], t),
            "feature_permutation": lambda: _seeded(
                lambda: nk.feature_permutation(model, x, t, feature_mask=mask)
            ),
            "infidelity": lambda: nk.infidelity(
                model,
                x,
                nk.saliency(model, x, t, abs=False),
                t,
                perturbation=lambda rows: (shifts, rows - shifts),
                n_samples=50,
                batch_size=batch * 50,
            ),
            "sensitivity_max": lambda: nk.sensitivity_max(
                nk.saliency, model, x, t, perturbation=lambda rows: rows + moves
            ),
        }
        return calls[method]
    import captum.attr as ca
    from captum.metrics import infidelity, sensitivity_max

    layer = model[int(LAYER)]
    saliency = ca.Saliency(model)
    calls = {
        "neuron_integrated_gradients": lambda: ca.NeuronIntegratedGradients(model, layer).attribute(
            x, UNIT
        ),
        "neuron_conductance": lambda: ca.NeuronConductance(model, layer).attribute(
            x, UNIT, target=t
        ),
        "layer_gradient_x_activation": lambda: ca.LayerGradientXActivation(model, layer).attribute(
            x, t
        ),
        "internal_influence": lambda: ca.InternalInfluence(model, layer).attribute(x, target=t),
        "layer_feature_ablation": lambda: ca.LayerFeatureAblation(model, layer).attribute(
            x, target=3, layer_mask=channels, perturbations_per_eval=256 // batch
        ),
        "layer_deeplift": lambda: ca.LayerDeepLift(model, model[3]).attribute(x, target=t),
        "layer_gradient_shap": lambda: ca.LayerGradientShap(model, model[5]).attribute(
            x, mean, target=t
        ),
        "layer_lrp": lambda: ca.LayerLRP(model, model[2]).attribute(x, target=t),
        "feature_permutation": lambda: _seeded(
            lambda: ca.FeaturePermutation(model).attribute(
                x, target=t, feature_mask=mask, perturbations_per_eval=256 // batch
            )
        ),
        "infidelity": lambda: infidelity(
            model,
            lambda rows: (shifts, rows - shifts),
            x,
            saliency.attribute(x, target=t, abs=False),
            target=t,
            n_perturb_samples=50,
            normalize=True,
        ),
        "sensitivity_max": lambda: sensitivity_max(
            saliency.attribute, x, perturb_func=lambda rows: rows + moves, target=t
        ),
    }
    return calls[method]


def _influence_call(library: str, method: str, batch: int) -> Any:
    """TracIn (three checkpoints on disk) or influence functions of 256 training inputs on
    ``batch`` test inputs."""
    import tempfile

    import torch
    from torch import nn

    x, y = make_input(256)
    x_test, y_test = make_input(batch)
    folder = Path(tempfile.mkdtemp(prefix="nk-influence-"))
    if method == "similarity_influence":  # the 5 closest training digits at two layers
        cnn, layers = build_model("cnn"), ["3", "7"]
        if library == "neuronkit":
            from neuronkit.interpretability import similarity_influence

            def ours() -> Any:
                found = similarity_influence(cnn, x, x_test, layers, top_k=5, batch_size=64)
                return torch.cat([found[layer][0] for layer in layers], 1)

            return ours
        from captum.influence import SimilarityInfluence
        from torch.utils.data import TensorDataset

        similar = SimilarityInfluence(cnn, layers, TensorDataset(x), str(folder), batch_size=64)

        def theirs() -> Any:
            found = similar.influence(x_test, top_k=5, load_src_from_disk=False)
            return torch.cat([found[layer][1] for layer in layers], 1)

        return theirs
    if method == "hessian_influence":
        mlp = build_model("mlp")
        if library == "neuronkit":
            from neuronkit.interpretability import hessian_influence

            return lambda: hessian_influence(mlp, (x, y), (x_test, y_test), layers=["5"], rank=50)
        from captum.influence import NaiveInfluenceFunction
        from torch.utils.data import TensorDataset

        torch.save(mlp.state_dict(), folder / "mlp.pt")

        def load_mlp(net: Any, path: str) -> float:
            net.load_state_dict(torch.load(path, weights_only=True))
            return 1.0

        def theirs() -> Any:  # the Hessian is formed when the object is built
            return NaiveInfluenceFunction(
                mlp,
                TensorDataset(x, y),
                str(folder / "mlp.pt"),
                checkpoints_load_func=load_mlp,
                layers=["5"],
                loss_fn=nn.CrossEntropyLoss(reduction="none"),
                batch_size=64,
                projection_dim=50,
            ).influence((x_test, y_test))

        return theirs
    model = build_model("cnn")
    if method == "arnoldi_influence":
        settings = {"rank": 10, "damping": 1e-3, "tol": 1e-4, "arnoldi_dim": 30, "seed": 0}
        if library == "neuronkit":
            from neuronkit.interpretability import hessian_influence

            return lambda: hessian_influence(
                model, (x, y), (x_test, y_test), method="arnoldi", **settings
            )
        from captum.influence._core.arnoldi_influence_function import (
            ArnoldiInfluenceFunction,
        )
        from torch.utils.data import TensorDataset

        torch.save(model.state_dict(), folder / "cnn.pt")

        def load_cnn(net: Any, path: str) -> float:
            net.load_state_dict(torch.load(path, weights_only=True))
            return 1.0

        def arnoldi() -> Any:
            return ArnoldiInfluenceFunction(
                model,
                TensorDataset(x, y),
                str(folder / "cnn.pt"),
                checkpoints_load_func=load_cnn,
                loss_fn=nn.CrossEntropyLoss(reduction="none"),
                batch_size=64,
                projection_dim=10,
                arnoldi_dim=30,
            ).influence((x_test, y_test))

        return arnoldi
    paths, rates = [], [0.1, 0.05, 0.01]
    for k, rate in enumerate(rates):
        torch.manual_seed(100 + k)
        torch.save({"state": build_model("cnn").state_dict(), "lr": rate}, folder / f"{k}.pt")
        paths.append(str(folder / f"{k}.pt"))
    layers = ["7"] if method == "tracin_last_layer" else None
    if library == "neuronkit":
        from neuronkit.interpretability import tracin_influence

        def ours() -> Any:
            states = [torch.load(p, weights_only=True)["state"] for p in paths]
            return tracin_influence(
                model, states, (x, y), (x_test, y_test), learning_rates=rates, layers=layers
            )

        return ours
    from captum.influence import TracInCP
    from torch.utils.data import TensorDataset

    def load(net: Any, path: str) -> float:
        saved = torch.load(path, weights_only=True)
        net.load_state_dict(saved["state"])
        return float(saved["lr"])

    tracin = TracInCP(
        model,
        TensorDataset(x, y),
        paths,
        checkpoints_load_func=load,
        layers=layers,
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        batch_size=64,
        sample_wise_grads_per_batch=True,
    )
    return lambda: tracin.influence((x_test, y_test))


def _seeded(call: Any) -> Any:
    import torch

    torch.manual_seed(1)
    return call()


def worker(library: str, threads: int) -> dict[str, float]:
    import warnings

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    out = {}
    for method, batch in CONFIGS:
        call = build_call(library, method, batch)
        call()
        times: list[float] = []
        while len(times) < 5 or (sum(times) < 1.0 and len(times) < 300):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out[f"{method}/{batch}"] = statistics.median(times)
    return out


def equivalence() -> dict[str, float]:
    import warnings

    warnings.simplefilter("ignore")
    diffs = {}
    for method, batch in CONFIGS:
        a = build_call("neuronkit", method, batch)()
        b = build_call("captum", method, batch)()
        diffs[f"{method}/{batch}"] = float((a.double() - b.double()).abs().max())
    return diffs


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", choices=["neuronkit", "captum"])
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    diffs = equivalence()
    runs: dict[str, list[dict[str, float]]] = {"neuronkit": [], "captum": []}
    for r in range(args.rounds):
        for lib in ("neuronkit", "captum") if r % 2 == 0 else ("captum", "neuronkit"):
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", lib, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            runs[lib].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = []
    for method, batch in CONFIGS:
        key = f"{method}/{batch}"
        nk = statistics.median(run[key] for run in runs["neuronkit"])
        ca = statistics.median(run[key] for run in runs["captum"])
        rows.append(
            {
                "method": method,
                "batch": batch,
                "neuronkit_ms": nk * 1e3,
                "captum_ms": ca * 1e3,
                "speedup": ca / nk,
                "max_abs_diff": diffs[key],
            }
        )
        print(
            f"| {method} | {batch} | {nk * 1e3:.2f} | {ca * 1e3:.2f} | {ca / nk:.2f}x | "
            f"{diffs[key]:.1e} |"
        )
    import captum
    import torch

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "captum": captum.__version__,
        "rows": rows,
        "runs": runs,
    }
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(RESULTS)  # atomic
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
