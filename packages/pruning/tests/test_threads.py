"""Threads. Tracing patches process-wide names (torch.fx: ``nn.Module.__call__``; the tracers:
torch's tensor factories): graphs built in threads must match serial ones, leave torch as it was
and not disturb another thread's inference. An importance object keeps per-graph state while it
scores: one shared by threads must still score each model."""

import threading

import torch
from torch import nn

from neuronkit.pruning import MLP, DependencyGraph, ResNetStyle, SynFlowImportance, trace_model

_FACTORIES = ("zeros", "ones", "arange", "empty", "full", "tensor", "randn", "rand", "eye")


def _groups(graph: DependencyGraph) -> list[tuple[object, ...]]:
    return [
        (g.size, g.prunable, tuple((m.module, m.param, m.dim, m.role) for m in g.members))
        for g in graph.groups
    ]


def _run_threads(target, n: int = 4) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_graphs_built_in_threads_match_serial_ones_and_leave_torch_unpatched() -> None:
    originals = {n: getattr(torch, n) for n in _FACTORIES}
    call = nn.Module.__call__
    x = torch.randn(1, 3, 16, 16)
    expected = _groups(DependencyGraph(ResNetStyle(), (x,)))
    results: list[object] = []

    def build(_: int) -> None:
        for _ in range(5):
            try:
                results.append(_groups(DependencyGraph(ResNetStyle(), (x,))))
            except Exception as exc:  # collected: an exception in a thread is lost otherwise
                results.append(exc)

    _run_threads(build)
    assert all(r == expected for r in results), [r for r in results if r != expected][:2]
    assert {n: getattr(torch, n) for n in _FACTORIES} == originals
    assert nn.Module.__call__ is call


def test_inference_in_another_thread_runs_while_a_graph_is_built() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    inputs = torch.randn(4, 8)
    with torch.no_grad():
        reference = net(inputs)
    stop = threading.Event()
    calls, bad = [0], []

    def infer() -> None:
        while not stop.is_set():
            try:
                with torch.no_grad():
                    out = net(inputs) + torch.zeros(2)
                if not torch.equal(out, reference):
                    bad.append("different output")
            except Exception as exc:
                bad.append(f"{type(exc).__name__}: {exc}")
            calls[0] += 1

    worker = threading.Thread(target=infer)
    worker.start()
    try:
        x = torch.randn(1, 3, 16, 16)
        for _ in range(4):
            DependencyGraph(ResNetStyle(), (x,))
            trace_model(ResNetStyle(), x)
    finally:
        stop.set()
        worker.join()
    assert calls[0] > 0
    assert not bad, bad[:3]


def test_one_importance_object_shared_by_threads_scores_each_model() -> None:
    graphs = []
    for seed in range(4):
        torch.manual_seed(seed)
        graphs.append(DependencyGraph(MLP(16, (32, 32), 5), (torch.randn(8, 16),)))
    expected = [SynFlowImportance()(g) for g in graphs]
    shared = SynFlowImportance()
    wrong: list[int] = []

    def score(i: int) -> None:
        for _ in range(10):
            got = shared(graphs[i])
            if not all(torch.equal(got[k], v) for k, v in expected[i].items()):
                wrong.append(i)

    _run_threads(score)
    assert not wrong
