"""KAN training step: neuronkit-theory's KANLayer/KAN against pykan (CPU).

Same computation first (one process, float32, needs pykan):

1. the B-spline basis of neuronkit (`bspline_basis` on `extended_grid`) equals pykan's
   `kan.spline.B_batch` on pykan's own layer grid (G = 5, k = 3);
2. a pykan `KANLayer` and a neuronkit `KANLayer` given the same weights (neuronkit
   `coef[o, i] = scale_sp[i, o] * coef_pykan[i, o]`, `base_weight[o, i] = scale_base[i, o]`,
   bias 0) give the same outputs.

Timing: one full-batch training step (forward, MSE, backward, Adam step) on the same
function-fitting task (`exp_sin4`: exp((sin(pi(x1^2+x2^2)) + sin(pi(x3^2+x4^2)))/2), 1000 points)
for networks of equal layout, grid and order. Libraries:

* `neuronkit`: `neuronkit.theory.kan.KAN` (B-spline space, base SiLU branch, bias; one weight
  tensor per layer);
* `pykan`: `kan.KAN` (MultKAN) in its fastest documented mode, `model.speed()` (no symbolic
  branch, no saved activations);
* `pykan_layers`: a bare stack of pykan `KANLayer`s (pykan's core computation, without MultKAN);
* `floor`: the same matmuls on an expanded input without any basis evaluation.

Fixed thread count (1 and 2), median of --repeats timed steps after 3 warm-up steps; the
libraries interleave in a rotating order over --rounds rounds and the reported time is the median
of the per-round medians. By default all libraries run in one process (imports are slow on a
loaded machine); --isolate runs each library in its own process instead.
Writes benchmarks/results/theory_kan.json.

    python benchmarks/theory/bench_kan.py [--repeats 30] [--rounds 3] [--threads 1 2] [--quick]

(run it with an interpreter where pykan is installed, e.g. a benchmark-only venv; the script puts
this checkout's packages/theory/src first on sys.path, so it measures the working tree.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# measure this checkout's neuronkit-theory even where the benchmark venv holds an installed copy
sys.path.insert(0, str(ROOT / "packages" / "theory" / "src"))
RESULTS = ROOT / "benchmarks" / "results" / "theory_kan.json"
LIBRARIES = ["floor", "neuronkit", "pykan_layers", "pykan"]
CONFIGS = {"small": [4, 5, 1], "medium": [4, 16, 16, 1]}
GRID, K, BATCH = 5, 3, 1000


def _task():  # type: ignore[no-untyped-def]
    from neuronkit.theory.data.functions import function_task

    t = function_task("exp_sin4", BATCH, 10, seed=0)
    return t.x_train, t.y_train


def build(library: str, widths: list[int]):  # type: ignore[no-untyped-def]
    """Return (model, forward) where forward(x) -> [batch]."""
    import torch
    from torch import nn

    if library == "neuronkit":
        from neuronkit.theory.kan import KAN

        model = KAN(widths, space="bspline", grid=GRID, k=K, seed=0)
        return model, lambda x: model(x).reshape(-1)
    if library == "pykan":
        from kan import KAN as PyKAN

        model = PyKAN(width=list(widths), grid=GRID, k=K, seed=0, auto_save=False, device="cpu")
        model = model.speed()  # pykan turns width into [[n, 0], ...] in place: pass a copy
        return model, lambda x: model(x).reshape(-1)
    if library == "pykan_layers":
        from kan.KANLayer import KANLayer as PyKANLayer

        layers = nn.ModuleList(
            PyKANLayer(in_dim=a, out_dim=b, num=GRID, k=K) for a, b in itertools.pairwise(widths)
        )

        def fwd(x: torch.Tensor) -> torch.Tensor:
            for layer in layers:
                x = layer(x)[0]
            return x.reshape(-1)

        return layers, fwd
    if library == "floor":
        m = GRID + K + 1
        mats = nn.ModuleList(nn.Linear(a * m, b) for a, b in itertools.pairwise(widths))

        def floor(x: torch.Tensor) -> torch.Tensor:
            for lin in mats:
                x = lin(x.unsqueeze(-1).expand(*x.shape, m).reshape(x.shape[0], -1))
            return x.reshape(-1)

        return mats, floor
    raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")


def n_params(model) -> int:  # type: ignore[no-untyped-def]
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def time_steps(library: str, config: str, threads: int, repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = _task()
    model, fwd = build(library, CONFIGS[config])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        F.mse_loss(fwd(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "params": n_params(model)}


def equivalence() -> dict:
    import torch
    from kan.KANLayer import KANLayer as PyKANLayer
    from kan.spline import B_batch

    from neuronkit.theory.kan import KANLayer, bspline_basis, extended_grid

    torch.manual_seed(0)
    x = torch.rand(512, 4) * 2.2 - 1.1  # also a little outside the grid range
    py = PyKANLayer(in_dim=4, out_dim=3, num=GRID, k=K)
    ours_knots = extended_grid(4, GRID, K)
    grid_diff = float((py.grid - ours_knots).abs().max())
    basis_diff = float((B_batch(x, py.grid, k=K) - bspline_basis(x, ours_knots, K)).abs().max())
    nk = KANLayer(4, 3, space="bspline", grid=GRID, k=K, seed=0)
    with torch.no_grad():
        nk.coef.copy_((py.scale_sp[:, :, None] * py.coef).permute(1, 0, 2))
        nk.base_weight.copy_(py.scale_base.T)  # type: ignore[union-attr]
        nk.bias.zero_()
        out_diff = float((py(x)[0] - nk(x)).abs().max())
    return {
        "grid_max_abs_diff": grid_diff,
        "basis_max_abs_diff": basis_diff,
        "layer_output_max_abs_diff": out_diff,
        "same": grid_diff < 1e-6 and basis_diff < 1e-5 and out_diff < 1e-4,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="5 repeats, 1 round")
    parser.add_argument(
        "--isolate", action="store_true", help="each library in its own process (slow start)"
    )
    parser.add_argument("--worker", nargs=4, metavar=("LIB", "CONFIG", "THREADS", "REPEATS"))
    args = parser.parse_args()
    if args.worker:
        lib, config, threads, repeats = args.worker
        print(json.dumps(time_steps(lib, config, int(threads), int(repeats))))
        return 0
    if args.quick:
        args.repeats, args.rounds = 5, 1
    try:
        import kan  # noqa: F401
    except ImportError:
        print("pykan is not installed in this interpreter (pip install pykan); skipping")
        return 0
    eq = equivalence()
    print("equivalence:", eq, flush=True)
    if not eq["same"]:
        print("neuronkit and pykan do not compute the same thing; not timing")
        return 1
    import torch

    results: list[dict] = []
    for threads in args.threads:
        for config in CONFIGS:
            per_lib: dict[str, list[float]] = {lib: [] for lib in LIBRARIES}
            params: dict[str, int] = {}
            for r in range(args.rounds):
                order = LIBRARIES[r % len(LIBRARIES) :] + LIBRARIES[: r % len(LIBRARIES)]
                for lib in order:
                    if args.isolate:
                        out = subprocess.run(
                            [
                                sys.executable,
                                __file__,
                                "--worker",
                                lib,
                                config,
                                str(threads),
                                str(args.repeats),
                            ],
                            check=True,
                            capture_output=True,
                            text=True,
                        )
                        res = json.loads(out.stdout.strip().splitlines()[-1])
                    else:
                        res = time_steps(lib, config, threads, args.repeats)
                    per_lib[lib].append(res["median_s"])
                    params[lib] = res["params"]
            med = {lib: statistics.median(v) for lib, v in per_lib.items()}
            row = {
                "config": config,
                "widths": CONFIGS[config],
                "threads": threads,
                "batch": BATCH,
                **{f"{lib}_ms": 1e3 * med[lib] for lib in LIBRARIES},
                **{f"{lib}_params": params[lib] for lib in LIBRARIES},
                "speedup_vs_pykan": med["pykan"] / med["neuronkit"],
                "speedup_vs_pykan_layers": med["pykan_layers"] / med["neuronkit"],
                "neuronkit_over_floor": med["neuronkit"] / med["floor"],
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    from importlib.metadata import version

    payload = {
        "benchmark": "theory_kan",
        "task": "exp_sin4 function fitting, full-batch Adam training step (forward+backward+step)",
        "grid": GRID,
        "k": K,
        "equivalence": eq,
        "versions": {
            "torch": torch.__version__,
            "pykan": version("pykan"),
            # the checkout's sources (measured above), not the installed copy's metadata
            "neuronkit-theory": tomllib.loads(
                (ROOT / "packages" / "theory" / "pyproject.toml").read_text()
            )["project"]["version"],
        },
        "repeats": args.repeats,
        "rounds": args.rounds,
        "isolated_processes": bool(args.isolate),
        "results": results,
    }
    from neuronkit.common import atomic_write_json

    out = RESULTS.with_name(RESULTS.stem + "_quick.json") if args.quick else RESULTS
    atomic_write_json(out, payload)
    print(f"wrote {out}")
    print("| layout | threads | neuronkit ms | pykan ms | pykan layers ms | floor ms | x pykan |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['widths']} | {r['threads']} | {r['neuronkit_ms']:.2f} | {r['pykan_ms']:.2f} | "
            f"{r['pykan_layers_ms']:.2f} | {r['floor_ms']:.2f} | {r['speedup_vs_pykan']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
