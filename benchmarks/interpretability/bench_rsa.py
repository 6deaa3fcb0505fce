"""RDMs and RDM comparisons: neuronkit-interpretability against rsatoolbox (CPU, float64).

Matched settings (issue #5; rsatoolbox 0.3.x conventions, see tests/test_rsa_rsatoolbox.py):

* RDMs: ``rdm(data, method, ...)`` vs ``calc_rdm(Dataset(data, obs_descriptors), method,
  descriptor=..., noise=..., cv_descriptor=...).get_vectors()[0]``. Euclidean (squared, /
  channels) and correlation on one pattern per condition; Mahalanobis with a given precision
  matrix; crossnobis on 4 repeats per condition in shuffled order with an explicit run label
  (4 leave-one-run-out folds) and the same precision matrix; Poisson (symmetrized KL of
  shrunk rates, rsatoolbox's default prior) on spike counts, one pattern per condition
  (``poisson_cv`` is not timed: rsatoolbox 0.3.2 returns its last fold's RDM, not the
  folds' mean). The Dataset is built outside the timed call (it is the container an
  rsatoolbox user already holds).
* Comparisons: ``compare_rdms(a, b, method)`` vs ``compare(a, b, method)`` on numpy stacks
  (no RDMs object to build): cosine, correlation ("corr"), Spearman, Kendall tau-a ("tau-a"),
  rho-a ("rho-a"), whitened cosine / correlation ("cosine_cov" / "corr_cov") and the Bures
  similarity and squared distance of the RDMs' centred kernels ("bures" / "bures_metric"), 4 model
  RDMs (one categorical, with ties) against 5 data RDMs at 100 conditions, 2 against 3 at 1000
  (rsatoolbox's tau-a takes about a second per pair there).

1. Equivalence: every worker saves its first result of every configuration; neuronkit's and
   rsatoolbox's outputs are compared elementwise on exactly the timed inputs (max |diff|, must be
   <= 1e-10 relative to the largest magnitude; 1e-6 for the Bures comparisons, where
   rsatoolbox takes square roots of the rounding of the kernels' zero eigenvalues, about 1e-8
   each, which neuronkit sets to 0).
2. Timing: each library runs all configurations in its own process (median of repeats after one
   warm-up call; the repeat count adapts to about 0.6 s per configuration, and a call slower
   than that is timed twice, its first call included), with a fixed thread count. Every
   library runs --rounds times, the libraries interleaved in a rotating order, and the reported
   time is the median over rounds of those per-process medians, so slow drifts of a shared
   machine hit every library alike.
   "x floor" is measured in each library's own process: its calls alternate with the floor's
   (order swapped every repeat) and the ratio of the two medians is taken per process (median
   over rounds); the floor's own process gives the floor ms column.
   The floor is the bare Gram-matrix GEMM the method cannot avoid: ``X @ X.T`` (Euclidean,
   correlation), ``(X @ P) @ X.T`` (Mahalanobis), per fold ``(A_train @ P) @ A_test.T``
   (crossnobis, condition means precomputed), ``L @ log(L).T`` with the shrunk rates ``L``
   and their logarithms precomputed (Poisson), ``a @ b.T`` (cosine, correlation and their
   whitened comparisons) and
   one argsort per RDM plus ``a @ b.T`` (Spearman, tau-a: ranking is the least a rank method
   must do), and one ``eigvalsh`` of an ``n x n`` matrix per pair of RDMs (Bures: the
   eigenvalues of ``G_a^1/2 G_b G_a^1/2`` are the least it must find).

   The floors leave out work every method must do: extracting the ``n (n - 1) / 2`` upper
   entries (and the centering / scaling of correlation), the condition means of crossnobis,
   the validation scans, and for tau-a the O(P log P) discordant-pair count of every pair of
   RDMs, so small sizes (where that O(n^2) or O(P) work rivals the GEMM) stay well above 1.

The workspace sources of neuronkit-interpretability are put first on ``sys.path``, so a copy
installed in the benchmark environment is not what gets measured.

    python benchmarks/interpretability/bench_rsa.py [--threads 1] [--repeats 7] [--rounds 3]
        [--quick] [--only METHOD[,METHOD...]]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "packages" / "interpretability" / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # measure the workspace, not an installed copy
    sys.path.insert(0, str(_SRC))

from _paired import time_alternating  # noqa: E402  (this script's folder)

LIBRARIES = ["floor", "neuronkit", "rsatoolbox"]
RESULTS = Path(__file__).resolve().parents[1] / "results" / "interpretability_rsa.json"
N_RUNS = 4  # crossnobis: repeats per condition = cross-validation folds
STACKS = {100: (4, 5), 1000: (2, 3)}  # comparisons: [models] x [data] RDMs per condition count
RSA_NAMES = {"cosine": "cosine", "correlation": "corr", "spearman": "spearman"}
RSA_NAMES["kendall_tau_a"] = "tau-a"
RSA_NAMES.update(rho_a="rho-a", whitened_cosine="cosine_cov", whitened_correlation="corr_cov")
RSA_NAMES.update(bures="bures", bures_metric="bures_metric")
TOLERANCE = {"bures": 1e-6, "bures_metric": 1e-6}  # relative; other methods: 1e-10 (above)


def configs(quick: bool, only: str | None = None) -> list[tuple[str, str, int, int]]:
    """(kind, method, n_conditions, n_channels); comparisons have n_channels 0.

    ``only``: comma-separated method names to keep (e.g. ``"mahalanobis,spearman"``).
    """
    every = _configs(quick)
    if not only:
        return every
    keep = set(only.split(","))
    unknown = keep - {method for _, method, _, _ in every}
    if unknown:
        raise SystemExit(f"--only: unknown method(s) {sorted(unknown)}")
    return [cfg for cfg in every if cfg[1] in keep]


def _configs(quick: bool) -> list[tuple[str, str, int, int]]:
    if quick:
        out = [("rdm", m, 100, 100) for m in ("euclidean", "correlation", "mahalanobis")]
        out.append(("rdm", "crossnobis", 100, 100))
        out += [("compare", m, 100, 0) for m in RSA_NAMES]
        return out
    out = []
    for method in ("euclidean", "correlation"):
        out += [("rdm", method, n, c) for n in (100, 1000) for c in (100, 10_000)]
    for method in ("mahalanobis", "crossnobis", "poisson"):  # full precision: channels <= 1000
        out += [("rdm", method, n, c) for n in (100, 1000) for c in (100, 1000)]
    out += [("compare", m, n, 0) for m in RSA_NAMES for n in (100, 1000)]
    return out


def make_inputs(kind: str, method: str, n: int, c: int) -> dict:
    """Deterministic inputs of one configuration (identical in every process)."""
    import numpy as np

    rng = np.random.default_rng([n, c, len(method)])
    if kind == "compare":
        pairs = n * (n - 1) // 2
        k_models, k_data = STACKS[n]
        a = rng.random((k_models, pairs))
        categories = rng.integers(0, 8, size=n)  # categorical model: 0/1, heavily tied
        rows, cols = np.triu_indices(n, k=1)
        a[0] = (categories[rows] != categories[cols]).astype(float)
        b = rng.random((k_data, pairs)) + 0.3 * a[1]
        return {"a": a, "b": b}
    mixing = rng.normal(size=(c, c)) / np.sqrt(c)
    inputs: dict = {}
    if method == "crossnobis":
        patterns = rng.normal(size=(n, c))
        conds = np.tile(np.arange(n), N_RUNS)
        runs = np.repeat(np.arange(N_RUNS), n)
        data = patterns[conds] + rng.normal(size=(n * N_RUNS, c)) @ mixing
        perm = rng.permutation(n * N_RUNS)  # observations in shuffled order
        inputs.update(data=data[perm], conds=conds[perm], runs=runs[perm])
    elif method == "poisson":  # spike counts of units with their own rates per condition
        inputs["data"] = rng.poisson(rng.gamma(2.0, 2.0, size=(n, c))).astype(float)
    else:
        inputs["data"] = rng.normal(size=(n, c)) @ mixing + rng.normal(size=(n, 1))
    if method in ("mahalanobis", "crossnobis"):
        cov = mixing @ mixing.T + 0.5 * np.eye(c)
        inputs["prec"] = np.linalg.inv(cov)
    return inputs


def build_call(library: str, kind: str, method: str, inputs: dict) -> Callable[[], Any]:
    """A zero-argument callable doing the timed work (inputs prepared outside)."""
    import numpy as np

    if library == "floor":
        if kind == "compare":
            a, b = inputs["a"], inputs["b"]
            if method in ("spearman", "kendall_tau_a", "rho_a"):
                return lambda: (np.argsort(a, axis=1), np.argsort(b, axis=1), a @ b.T)
            if method in TOLERANCE:  # one eigvalsh per pair, of a symmetric n x n matrix
                n = round((1 + math.sqrt(1 + 8 * a.shape[1])) / 2)
                sym = np.eye(n) + np.ones((n, n))
                return lambda: [np.linalg.eigvalsh(sym) for _ in range(len(a) * len(b))]
            return lambda: a @ b.T
        x = inputs["data"]
        if method in ("euclidean", "correlation"):
            return lambda: x @ x.T
        if method == "poisson":
            rates = (x + 0.1) / 1.1  # rsatoolbox's default prior: lambda 1, weight 0.1
            logs = np.log(rates)
            return lambda: rates @ logs.T
        prec = inputs["prec"]
        if method == "mahalanobis":
            return lambda: (x @ prec) @ x.T
        n = int(inputs["conds"].max()) + 1
        means = []
        for run in range(N_RUNS):  # condition means per fold, precomputed (not the floor's work)
            test, train = inputs["runs"] == run, inputs["runs"] != run
            for mask in (train, test):
                m = np.zeros((n, x.shape[1]))
                np.add.at(m, inputs["conds"][mask], x[mask])
                means.append(m / np.bincount(inputs["conds"][mask], minlength=n)[:, None])
        return lambda: [(means[2 * f] @ prec) @ means[2 * f + 1].T for f in range(N_RUNS)]
    if library == "neuronkit":
        from neuronkit.interpretability import compare_rdms, rdm

        if kind == "compare":
            return lambda: compare_rdms(inputs["a"], inputs["b"], method)
        kwargs: dict = {}
        if method in ("mahalanobis", "crossnobis"):
            kwargs["noise"] = inputs["prec"]
        if method == "crossnobis":
            kwargs.update(conditions=inputs["conds"], runs=inputs["runs"])
        return lambda: rdm(inputs["data"], method, **kwargs)
    if library == "rsatoolbox":
        from rsatoolbox.data import Dataset
        from rsatoolbox.rdm import calc_rdm, compare

        if kind == "compare":
            name = RSA_NAMES[method]
            return lambda: compare(inputs["a"], inputs["b"], method=name)
        if method == "crossnobis":
            ds = Dataset(
                inputs["data"], obs_descriptors={"cond": inputs["conds"], "run": inputs["runs"]}
            )
            return lambda: calc_rdm(
                ds, "crossnobis", descriptor="cond", cv_descriptor="run", noise=inputs["prec"]
            ).get_vectors()[0]
        ds = Dataset(inputs["data"])
        noise = inputs.get("prec")
        return lambda: calc_rdm(ds, method, noise=noise).get_vectors()[0]
    raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")


PAIRED = ("neuronkit", "rsatoolbox")  # timed alternately with the floor in their own process


def worker(
    library: str, quick: bool, repeats: int, threads: int, save: str | None, only: str | None
) -> dict:
    """Time every configuration in this (fresh) process; save first outputs to ``save``."""
    import numpy as np

    out = {}
    saved: dict[str, np.ndarray] = {}
    for kind, method, n, c in configs(quick, only):
        key = f"{kind}/{method}/{n}/{c}"
        call = build_call(library, kind, method, make_inputs(kind, method, n, c))
        start = time.perf_counter()
        result = call()
        first = time.perf_counter() - start
        if save and library != "floor":
            saved[key] = np.asarray(result, dtype=float)
        count = max(1, min(repeats, round(0.6 / max(first, 1e-6))))
        paired = None
        if library in PAIRED:
            paired = build_call("floor", kind, method, make_inputs(kind, method, n, c))
            paired()
        times, floor_times = time_alternating(call, paired, count)
        if first > 0.6:  # a slow first call is its own warm-up
            times.append(first)
        out[key] = {"median_ms": 1e3 * statistics.median(times), "repeats": count}
        if floor_times:
            out[key]["paired_floor_ms"] = 1e3 * statistics.median(floor_times)
    if save and saved:
        np.savez(save, **{k.replace("/", "|"): v for k, v in saved.items()})  # type: ignore[arg-type]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="processes per library")
    parser.add_argument("--quick", action="store_true", help="100 conditions x 100 channels")
    parser.add_argument("--only", default=None, help="comma-separated methods to run")
    parser.add_argument("--worker", metavar="LIB")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.quick, args.repeats, args.threads, args.save, args.only)
        print(json.dumps(result))
        return 0

    wall = time.perf_counter()
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {lib: [] for lib in LIBRARIES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for lib in LIBRARIES[r % len(LIBRARIES) :] + LIBRARIES[: r % len(LIBRARIES)]:
                save = str(Path(tmp) / f"{lib}.npz") if r == 0 else None
                runs[lib].append(_run_worker(lib, args, save))
                print(f"round {r} {lib}: done", flush=True)
        equivalence = _equivalence(Path(tmp))
    load_after = os.getloadavg()
    rows = []
    for kind, method, n, c in configs(args.quick, args.only):
        key = f"{kind}/{method}/{n}/{c}"
        row: dict = {"kind": kind, "method": method, "conditions": n}
        if kind == "rdm":
            row["channels"] = c
        else:
            row["rdms"] = "{} x {}".format(*STACKS[n])
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
        row["equivalence_max_rel_diff"] = equivalence.get(key)
        ours = row["neuronkit"].get("median_ms")
        if ours and "median_ms" in row["rsatoolbox"]:
            row["speedup_vs_rsatoolbox"] = row["rsatoolbox"]["median_ms"] / ours
        if ours and "median_ms" in row["floor"]:
            row["ratio_to_floor"] = ours / row["floor"]["median_ms"]
            if "median_ms" in row["rsatoolbox"]:
                row["rsatoolbox_ratio_to_floor"] = (
                    row["rsatoolbox"]["median_ms"] / row["floor"]["median_ms"]
                )
        rows.append(row)
        print(_row_text(row), flush=True)
    # any configuration without a comparison (None) or with a NaN difference fails the check
    values = list(equivalence.values())
    worst = (
        None
        if not values or any(v is None or not math.isfinite(v) for v in values)
        else max(values)
    )
    passed = worst is not None and all(
        v <= TOLERANCE.get(key.split("/")[1], 1e-10) for key, v in equivalence.items()
    )
    import numpy as np

    from neuronkit.common import atomic_write_json

    suffix = "_only" if args.only else "_quick" if args.quick else ""  # a partial run: its own file
    out = RESULTS.with_name(RESULTS.stem + suffix + ".json")
    atomic_write_json(
        out,
        {
            "benchmark": "RDMs and RDM comparisons vs rsatoolbox, float64, CPU",
            "threads": args.threads,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "quick": args.quick,
            "only": args.only,
            "neuronkit_source": _source(),
            "numpy": np.__version__,
            "rsatoolbox": _version("rsatoolbox"),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpu_count": os.cpu_count(),
            "wall_s": time.perf_counter() - wall,
            "equivalence": {
                "compared": "first output of every timed configuration, neuronkit vs rsatoolbox",
                "tolerance_rel": {"default": 1e-10, **TOLERANCE},
                "max_rel_diff": worst,
                "passed": passed,
            },
            "floors": {
                "euclidean/correlation": "X @ X.T",
                "mahalanobis": "(X @ P) @ X.T",
                "crossnobis": "per fold (means_train @ P) @ means_test.T, means precomputed",
                "poisson": "rates @ log(rates).T, rates and logs precomputed",
                "cosine/correlation comparison": "a @ b.T",
                "spearman/kendall_tau_a": "argsort of every RDM + a @ b.T",
                "bures/bures_metric": "one eigvalsh of an n x n matrix per pair of RDMs",
            },
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    print(_markdown(rows))
    return 0 if passed else 1


def _source() -> str:
    from neuronkit.interpretability import rsa

    return str(Path(rsa.__file__).resolve())


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _equivalence(tmp: Path) -> dict[str, float | None]:
    """Max |neuronkit - rsatoolbox| / max |rsatoolbox| per configuration."""
    import numpy as np

    files = {lib: tmp / f"{lib}.npz" for lib in ("neuronkit", "rsatoolbox")}
    if not all(f.exists() for f in files.values()):
        return {}
    ours, theirs = (np.load(files[lib]) for lib in ("neuronkit", "rsatoolbox"))
    out: dict[str, float | None] = {}
    for name in ours.files:
        a, b = ours[name], theirs[name]
        key = name.replace("|", "/")
        if a.shape != b.shape:
            out[key] = None
            continue
        out[key] = float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))
    return out


def _run_worker(lib: str, args: argparse.Namespace, save: str | None) -> dict:
    """One library, all configurations, in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", lib, "--repeats", str(args.repeats)]
    cmd += ["--threads", str(args.threads)]
    if args.quick:
        cmd.append("--quick")
    if args.only:
        cmd += ["--only", args.only]
    if save:
        cmd += ["--save", save]
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    env["MKL_NUM_THREADS"] = threads
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _size(row: dict) -> str:
    if row["kind"] == "rdm":
        return f"{row['conditions']} x {row['channels']}"
    return f"{row['conditions']} cond, {row['rdms']}"


def _markdown(rows: list[dict]) -> str:
    """The results as the Markdown table of the package README."""
    head = ["method", "size", "floor ms", "neuronkit ms", "rsatoolbox ms"]
    head += ["vs rsatoolbox", "x floor (nk)", "x floor (rsatoolbox)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ms = [
            f"{row[lib]['median_ms']:.2f}" if "median_ms" in row[lib] else "error"
            for lib in LIBRARIES
        ]
        name = ("compare " if row["kind"] == "compare" else "") + row["method"]
        cells = [name, _size(row), *ms]
        cells.append(
            f"{row['speedup_vs_rsatoolbox']:.2f}x" if "speedup_vs_rsatoolbox" in row else "-"
        )
        for lib in PAIRED:  # time over the floor timed alternately in the library's process
            ratio = row[lib].get("paired_ratio_to_floor")
            cells.append(f"{ratio:.2f}" if ratio else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row_text(row: dict) -> str:
    cells = [f"{row['kind']:<7} {row['method']:<13} {_size(row):<20}"]
    for lib in LIBRARIES:
        r = row[lib]
        cells.append(f"{lib} {r['median_ms']:.2f}ms" if "median_ms" in r else f"{lib} ERR")
    if "speedup_vs_rsatoolbox" in row:
        cells.append(f"| x{row['speedup_vs_rsatoolbox']:.2f} vs rsatoolbox")
    if "paired_ratio_to_floor" in row["neuronkit"]:
        cells.append(f"{row['neuronkit']['paired_ratio_to_floor']:.2f} x floor (paired)")
    cells.append(f"diff {row['equivalence_max_rel_diff']}")
    return "  ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
