"""Two-layer Linear+LIF network: neuronkit-snn against snnTorch, SpikingJelly and Norse.

Matched dynamics for every library (PAPERS.md snn core engine; issue "neuronkit-snn, part 1"):
tau = 2 with input decay (v <- v + (x - v) / tau; snnTorch has no input decay, so its first
weights are the copied weights divided by tau), threshold 1, hard reset to 0 whose gradient is
not detached, and the fast-sigmoid (SuperSpike) surrogate with slope 1 (1 / (1 + |x|)^2, the
one Norse's `super` method computes). Every library runs layer by layer on time-major input
[T, B, H] in its fastest idiomatic multi-step form.

1. Equivalence (one process, float32): identical spike trains and weight-gradient cosine >= 0.999
   against neuronkit for every peer.
2. Timing: forward only and a full training step (forward, backward, SGD step), T in {16, 64},
   hidden in {256, 1024}, batch 32, fixed thread count, each library in its own process
   (median of --repeats timed steps after 3 warm-up steps). Every library runs --rounds times
   per configuration, the libraries interleaved in a rotating order, and the reported time is
   the median over rounds of those per-process medians, so slow drifts of a shared machine hit
   every library alike. Memory: the bytes autograd saves for backward (distinct storages) and
   the growth of the process's max RSS during the timed runs. The floor is the same Linear
   layers with no neuron dynamics (one batched matmul over T x B each) and the same loss.
   No implementation of the dense products beats it, so the fastest peer's time over the
   floor bounds the speedup any library that multiplies by the zeros can reach in that
   configuration (reported as "fastest peer x floor").

neuronkit runs the network twice: with ``nn.Linear`` layers (``neuronkit``, the same layers
as every peer's) and with :class:`neuronkit.snn.SpikeLinear` (``neuronkit_events``), whose
forward and weight gradient sum the weights at the input's spikes instead of multiplying by
every zero. Both inputs to the Linear layers are spike trains here (the input at rate 0.2, the
first layer's spikes at ~0.18), so the event-driven network does about a fifth of the floor's
additions in those products and can run below the dense floor; it is the same function, but
its sums run in another order, so its spike trains may differ from the dense network's where a
membrane lands within rounding of the threshold (counted in the equivalence part).

``--neuron plif`` runs the same network and measurements with a learnable tau (PLIF, Fang et
al. 2021: one ``w`` per layer, ``1 / tau = sigmoid(w)``, initial tau 2), whose gradient the
training step also computes and SGD updates. Only SpikingJelly's ``ParametricLIFNode`` learns
the same parameter (snnTorch's ``learn_beta`` learns ``beta`` without input decay and Norse has
no learnable time constant), so the peers are SpikingJelly alone; the equivalence part also
compares ``dL/dw``. Results go to ``snn_plif.json``.

``--arch conv`` runs the same measurements on two ``Conv2d(H, H, 3, padding=1)`` layers (H
channels) over ``[T, B, H, 16, 16]`` spike frames at batch 16, T in {4, 16}, H in {16, 32} (the
convolutions' cost keeps the grid small on a CPU), without ``neuronkit_events``
(``SpikeLinear`` has no convolution); results go to ``snn_lif_conv.json``.

``--device cuda`` runs both parts on a GPU (the issue's benchmark is the CPU one; this is the
same work where a GPU is lent): each timed step is synchronized, memory is the growth of
torch's peak CUDA allocation, and results go to ``snn_lif_cuda.json``. There SpikingJelly gets
its built-in ``SuperSpike(alpha=1)`` surrogate (the same 1 / (1 + |x|)^2), which sends its
multi-step LIF to its fused CUDA/Triton kernel; on the CPU its fused operator is no faster than
its reference path (36.4 vs 34.8 ms, T=64, hidden 256, train), so the CPU run keeps the
autograd surrogate.

    python benchmarks/snn/bench_lif.py [--threads 1] [--repeats 20] [--rounds 3] [--quick]
        [--device cpu|cuda] [--neuron lif|plif] [--arch linear|conv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TAU, THRESHOLD, SLOPE = 2.0, 1.0, 1.0
# per neuron: the floor, neuronkit's two networks (OURS), then the peers
NEURONS = {
    "lif": ["floor", "neuronkit", "neuronkit_events", "snntorch", "spikingjelly", "norse"],
    "plif": ["floor", "neuronkit", "neuronkit_events", "spikingjelly"],
}
OURS = ("neuronkit", "neuronkit_events")  # nn.Linear, snn.SpikeLinear
# --arch conv: the layers are Conv2d(H, H, 3, padding=1) on [T, B, H, SIDE, SIDE] (set by main)
ARCH, CONV_SIDE, CONV_BATCH = "linear", 16, 16


def _libraries(neuron: str) -> list[str]:
    """The libraries of a run: SpikeLinear has no convolution, so --arch conv leaves it out."""
    return [lib for lib in NEURONS[neuron] if ARCH == "linear" or lib != "neuronkit_events"]


def _peers(libraries: list[str]) -> list[str]:
    return [lib for lib in libraries if lib != "floor" and lib not in OURS]


RESULTS = Path(__file__).resolve().parents[1] / "results"  # snn_<neuron>[_cuda][_quick].json


def _fast_sigmoid():  # type: ignore[no-untyped-def]
    import torch

    class FastSigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x)
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return grad / (SLOPE * x.abs() + 1.0) ** 2

    return FastSigmoid.apply


def build(library: str, hidden: int, dtype, device: str = "cpu", neuron: str = "lif"):  # type: ignore[no-untyped-def]
    """Return (net, linears, taus): net maps x [T, B, H] to output spikes [T, B, H]; taus are
    the neurons' learnable parameters (PLIF's ``w`` per layer; none for LIF)."""
    import torch
    from torch import nn

    if library not in _libraries(neuron):
        raise ValueError(
            f"library must be one of {_libraries(neuron)} for {neuron} ({ARCH}), got {library!r}"
        )
    linear = nn.Linear
    if library == "neuronkit_events":
        from neuronkit.snn import SpikeLinear as linear  # the same layers, event-driven

        library = "neuronkit"
    if ARCH == "conv":
        fc1, fc2 = (nn.Conv2d(hidden, hidden, 3, padding=1) for _ in range(2))
    else:
        fc1, fc2 = linear(hidden, hidden), linear(hidden, hidden)
    linears = [fc1, fc2]
    lifs: list[nn.Module] = []

    def time_fold(fc: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return fc(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    if library == "floor":

        def net(x: torch.Tensor) -> torch.Tensor:
            return time_fold(fc2, time_fold(fc1, x))

    elif library == "neuronkit":
        from neuronkit import snn

        kind = snn.PLIF if neuron == "plif" else snn.LIF
        lifs = [
            kind(
                TAU,
                threshold=THRESHOLD,
                v_reset=0.0,
                reset="zero",
                detach_reset=False,
                decay_input=True,
                surrogate=snn.FastSigmoid(SLOPE),
            )
            for _ in range(2)
        ]
        lifs = [lif.to(device) for lif in lifs]

        def net(x: torch.Tensor) -> torch.Tensor:
            return lifs[1](time_fold(fc2, lifs[0](time_fold(fc1, x))))

    elif library == "snntorch":
        import snntorch
        from snntorch import surrogate

        lifs = [
            snntorch.Leaky(
                beta=1.0 - 1.0 / TAU,
                threshold=THRESHOLD,
                spike_grad=surrogate.fast_sigmoid(slope=SLOPE),
                reset_mechanism="zero",
                reset_delay=False,
            )
            for _ in range(2)
        ]
        lifs = [lif.to(device) for lif in lifs]

        def run(lif: nn.Module, current: torch.Tensor) -> torch.Tensor:
            mem = torch.zeros_like(current[0])
            spikes = []
            for t in range(current.shape[0]):
                spk, mem = lif(current[t], mem)
                spikes.append(spk)
            return torch.stack(spikes)

        def net(x: torch.Tensor) -> torch.Tensor:
            return run(lifs[1], time_fold(fc2, run(lifs[0], time_fold(fc1, x))))

    elif library == "spikingjelly":
        from spikingjelly.activation_based import functional, surrogate
        from spikingjelly.activation_based import neuron as sj_neuron

        def spike_fn() -> nn.Module:
            if device != "cpu":  # its fused GPU kernel (see the module docstring)
                return surrogate.SuperSpike(alpha=SLOPE)
            surrogate_fn = _fast_sigmoid()

            class Surrogate(nn.Module):
                spiking = True

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    return surrogate_fn(x)

            return Surrogate()

        node = sj_neuron.ParametricLIFNode if neuron == "plif" else sj_neuron.LIFNode
        lifs = [
            node(
                TAU,
                decay_input=True,
                v_threshold=THRESHOLD,
                v_reset=0.0,
                surrogate_function=spike_fn(),
                detach_reset=False,
                step_mode="m",
            )
            for _ in range(2)
        ]
        lifs = [lif.to(device) for lif in lifs]

        def net(x: torch.Tensor) -> torch.Tensor:
            for lif in lifs:
                functional.reset_net(lif)
            return lifs[1](time_fold(fc2, lifs[0](time_fold(fc1, x))))

    elif library == "norse":
        import norse.torch as norse

        params = norse.LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1.0 / (TAU * 1e-3), device=device),
            v_th=torch.as_tensor(THRESHOLD, device=device),
            v_reset=torch.as_tensor(0.0, device=device),
            method="super",
            alpha=torch.as_tensor(SLOPE, device=device),
        )
        cells = [norse.LIFBoxCell(p=params, dt=1e-3) for _ in range(2)]  # Norse 1.x: cells only

        def run_cell(cell: nn.Module, current: torch.Tensor) -> torch.Tensor:
            state = None
            spikes = []
            for t in range(current.shape[0]):
                spk, state = cell(current[t], state)
                spikes.append(spk)
            return torch.stack(spikes)

        def net(x: torch.Tensor) -> torch.Tensor:
            return run_cell(cells[1], time_fold(fc2, run_cell(cells[0], time_fold(fc1, x))))

    for fc in linears:
        fc.to(device, dtype)
    taus = [p for lif in lifs for p in lif.parameters()]
    return net, linears, taus


def load_weights(library: str, linears, reference) -> None:  # type: ignore[no-untyped-def]
    """Copy the reference weights; snnTorch (no input decay) gets them divided by tau."""
    import torch

    scale = 1.0 / TAU if library == "snntorch" else 1.0
    with torch.no_grad():
        for mine, ref in zip(linears, reference, strict=True):
            mine.weight.copy_(ref.weight * scale)
            mine.bias.copy_(ref.bias * scale)


def working_point(linears) -> None:  # type: ignore[no-untyped-def]
    """Scale the default init so both layers fire at a useful rate (~10-20%)."""
    import torch

    with torch.no_grad():
        for fc in linears:
            fc.weight.mul_(6.0)
            fc.bias.fill_(0.3)


def make_input(steps: int, batch: int, hidden: int, dtype, seed: int = 0, device: str = "cpu"):  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(seed)
    shape = (steps, batch, hidden) + ((CONV_SIDE, CONV_SIDE) if ARCH == "conv" else ())
    return (torch.rand(shape, generator=g, dtype=dtype) < 0.2).to(device, dtype)


def loss_fn(spikes):  # type: ignore[no-untyped-def]
    return (spikes.mean(0) - 0.1).pow(2).mean()


def verify(
    steps: int = 16, batch: int = 8, hidden: int = 64, device: str = "cpu", neuron: str = "lif"
) -> dict[str, dict[str, float]]:
    """Same spikes and weight-gradient cosine against neuronkit (float32: SpikingJelly 2's
    fused LIF computes in float32 whatever the input dtype); with PLIF also the largest
    relative difference of the layers' ``dL/dw``."""
    import torch

    torch.manual_seed(0)
    dtype = torch.float32
    x = make_input(steps, batch, hidden, dtype, seed=1, device=device)
    ref_net, ref_linears, ref_taus = build("neuronkit", hidden, dtype, device, neuron)
    working_point(ref_linears)
    ref_out = ref_net(x)
    loss_fn(ref_out).backward()
    ref_grads = [torch.cat([fc.weight.grad.flatten(), fc.bias.grad]) for fc in ref_linears]
    report = {}
    for library in _libraries(neuron)[2:]:  # neuronkit's event-driven network and the peers
        net, linears, taus = build(library, hidden, dtype, device, neuron)
        load_weights(library, linears, ref_linears)
        out = net(x)
        loss_fn(out).backward()
        scale = TAU if library == "snntorch" else 1.0  # d/dW of W/tau
        cosines = [
            torch.nn.functional.cosine_similarity(
                torch.cat([fc.weight.grad.flatten(), fc.bias.grad]) * scale, ref, dim=0
            ).item()
            for fc, ref in zip(linears, ref_grads, strict=True)
        ]
        report[library] = {
            "spike_mismatches": int((out != ref_out).sum()),
            "spike_rate": ref_out.mean().item(),
            "min_grad_cosine": min(cosines),
        }
        if taus:
            report[library]["max_tau_grad_rel_diff"] = max(
                (abs(p.grad - ref.grad) / abs(ref.grad)).item()
                for p, ref in zip(taus, ref_taus, strict=True)
            )
    return report


def worker(
    library: str, steps: int, hidden: int, mode: str, repeats: int, threads: int, device: str,
    neuron: str = "lif",
) -> dict:  # fmt: skip
    """Time one configuration in this (fresh) process."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = CONV_BATCH if ARCH == "conv" else 32
    net, linears, taus = build(library, hidden, torch.float32, device, neuron)
    working_point(linears)
    params = [p for fc in linears for p in fc.parameters()] + taus
    optimizer = torch.optim.SGD(params, lr=1e-3)
    x = make_input(steps, batch, hidden, torch.float32, device=device)
    cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step() -> None:
        if mode == "forward":
            with torch.no_grad():
                net(x)
        else:
            optimizer.zero_grad(set_to_none=True)
            out = net(x)
            loss_fn(out).backward()
            optimizer.step()

    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    allocated = torch.cuda.memory_allocated() if cuda else 0
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    growth = (torch.cuda.max_memory_allocated() - allocated) / 2**20 if cuda else None
    result = {
        "median_ms": 1e3 * statistics.median(times),
        # on a GPU: the growth of torch's peak CUDA allocation over the timed steps
        "peak_rss_growth_mb": growth if cuda else (rss_peak - rss_base) / 1024.0,
    }
    if mode == "train":
        result["saved_for_backward_mb"] = saved_bytes(net, x) / 2**20
    return result


def saved_bytes(net, x) -> int:  # type: ignore[no-untyped-def]
    """Bytes of distinct storages autograd keeps for backward (what a training step holds)."""
    import torch

    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)
    del out
    return sum(storages.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="processes per library and config")
    parser.add_argument("--quick", action="store_true", help="one small configuration")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--neuron", choices=sorted(NEURONS), default="lif")
    parser.add_argument("--arch", choices=["linear", "conv"], default="linear")
    parser.add_argument("--worker", nargs=4, metavar=("LIB", "T", "H", "MODE"))
    args = parser.parse_args()
    global ARCH
    ARCH = args.arch
    if args.worker:
        lib, steps, hidden, mode = args.worker
        timing = worker(
            lib, int(steps), int(hidden), mode, args.repeats, args.threads, args.device, args.neuron
        )
        print(json.dumps(timing))
        return 0

    libraries = _libraries(args.neuron)
    conv = ARCH == "conv"
    equivalence = verify(hidden=8 if conv else 64, device=args.device, neuron=args.neuron)
    print("equivalence (float32, vs neuronkit):", json.dumps(equivalence, indent=1), flush=True)
    if conv:
        configs = [(4, 16)] if args.quick else [(4, 16), (16, 16), (4, 32), (16, 32)]
    else:
        configs = [(16, 256)] if args.quick else [(16, 256), (16, 1024), (64, 256), (64, 1024)]
    rows = []
    for steps, hidden in configs:
        for mode in ("forward", "train"):
            row: dict = {"T": steps, "hidden": hidden, "mode": mode}
            runs: dict[str, list[dict]] = {lib: [] for lib in libraries}
            for r in range(args.rounds):
                for lib in libraries[r % len(libraries) :] + libraries[: r % len(libraries)]:
                    runs[lib].append(_run_worker(lib, steps, hidden, mode, args))
            for lib, results in runs.items():
                errors = [res["error"] for res in results if "error" in res]
                if errors:
                    row[lib] = {"error": errors[0]}
                    continue
                row[lib] = {
                    "median_ms": statistics.median(res["median_ms"] for res in results),
                    "rounds_ms": [res["median_ms"] for res in results],
                    "peak_rss_growth_mb": max(res["peak_rss_growth_mb"] for res in results),
                }
                if mode == "train":
                    row[lib]["saved_for_backward_mb"] = results[0]["saved_for_backward_mb"]
            peers = {k: row[k]["median_ms"] for k in _peers(libraries) if "median_ms" in row[k]}
            for lib in (lib for lib in OURS if lib in row):
                ours = row[lib].get("median_ms")
                if ours:
                    fastest = min(peers.values()) / ours if peers else None
                    row[lib]["speedup_vs_fastest_peer"] = fastest
                    row[lib]["speedup_vs"] = {k: v / ours for k, v in peers.items()}
                    row[lib]["ratio_to_floor"] = ours / row["floor"]["median_ms"]
            if peers:  # the dense floor bounds the speedup of any library on dense layers
                row["fastest_peer_over_floor"] = min(peers.values()) / row["floor"]["median_ms"]
            rows.append(row)
            print(_row_text(row, libraries), flush=True)
    import torch

    from neuronkit.common import atomic_write_json
    from neuronkit.snn import native_status

    cuda = torch.device(args.device).type == "cuda"
    stem = f"snn_{args.neuron}" + ("_conv" if conv else "") + ("_cuda" if cuda else "")
    stem += "_quick" if args.quick else ""
    out = RESULTS / f"{stem}.json"
    atomic_write_json(
        out,
        {
            "benchmark": (
                f"two-layer Conv2d(H, H, 3)+{args.neuron.upper()} on {CONV_SIDE}x{CONV_SIDE}, "
                f"batch {CONV_BATCH}, "
                if conv
                else f"two-layer Linear+{args.neuron.upper()}, batch 32, "
            )
            + (torch.cuda.get_device_name(args.device) if cuda else "CPU"),
            "neuron": args.neuron,
            "device": args.device,
            "threads": args.threads,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "torch": torch.__version__,
            "neuronkit_loops": native_status(),  # compiled, or why the ATen loops ran
            "equivalence": equivalence,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    print(_markdown(rows, libraries))
    return 0


def _run_worker(lib: str, steps: int, hidden: int, mode: str, args: argparse.Namespace) -> dict:
    """One library, one configuration, in a fresh process."""
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            lib,
            str(steps),
            str(hidden),
            mode,
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
            "--neuron",
            args.neuron,
            "--arch",
            args.arch,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _markdown(rows: list[dict], libraries: list[str]) -> str:
    """The results as the Markdown table of the package README."""
    peers, ours = _peers(libraries), [lib for lib in OURS if lib in libraries]
    short = {"neuronkit": "nk", "neuronkit_events": "events"}
    names = " / ".join(short[lib] for lib in ours)
    head = ["T", "H", "mode", *(lib.replace("_", " ") for lib in libraries)]
    head += [f"vs fastest peer ({names})", f"x floor ({names})", "fastest peer x floor"]
    head.append(
        "saved MB (" + " / ".join([*(short[o] for o in ours), *(p[:2] for p in peers)]) + ")"
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ms = [
            f"{row[lib]['median_ms']:.1f}" if "median_ms" in row[lib] else "error"
            for lib in libraries
        ]
        cells = [str(row["T"]), str(row["hidden"]), row["mode"], *ms]
        for key, form in (("speedup_vs_fastest_peer", "{:.2f}x"), ("ratio_to_floor", "{:.2f}")):
            values = [row[lib].get(key) for lib in ours]
            cells.append(" / ".join(form.format(v) if v else "-" for v in values))
        bound = row.get("fastest_peer_over_floor")
        cells.append(f"{bound:.2f}" if bound else "-")
        saved = [row[lib].get("saved_for_backward_mb") for lib in [*ours, *peers]]
        cells.append(" / ".join(f"{m:.2f}" for m in saved) if all(saved) else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row_text(row: dict, libraries: list[str]) -> str:
    cells = [f"T={row['T']:<3} H={row['hidden']:<5} {row['mode']:<8}"]
    for lib in libraries:
        r = row[lib]
        cells.append(f"{lib} {r['median_ms']:.2f}ms" if "median_ms" in r else f"{lib} ERR")
    for lib in (lib for lib in OURS if lib in row):
        if row[lib].get("speedup_vs_fastest_peer"):
            cells.append(
                f"| {lib}: x{row[lib]['speedup_vs_fastest_peer']:.2f} vs best peer, "
                f"{row[lib]['ratio_to_floor']:.2f} x floor"
            )
    return "  ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
