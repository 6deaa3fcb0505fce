"""A model exported by :func:`neuronkit.snn.nir.to_nir` loads and runs in peer libraries.

snnTorch (``snntorch.import_nir.import_from_nir``) and Norse (``norse.torch.from_nir``) both
build on nirtorch. Each test exports a model whose mapping the peer implements exactly and
asserts the peer's spike trains equal ours, spike for spike. The peers are benchmark-only
dependencies (``nox -s bench``); without them these tests skip.

What the peers do not map faithfully (so it is not asserted here; see
``benchmarks/snn/nir_peers.md``): snnTorch fixes ``dt = 1e-4`` s, accepts a CubaLIF only with
``r = tau_mem / dt`` (``decay_input=False``) and runs NIR ``IF`` as a leaky neuron with
``beta = 0.9``; Norse ignores ``r`` of ``LIF`` and ``IF`` nodes (exact for ``decay_input=True``
only) and has no ``AvgPool2d``; both read ``Flatten`` dims as if they counted the batch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

pytest.importorskip("nir", reason="the optional 'nir' extra (neuronkit-snn[nir]) is absent")

from neuronkit.snn import (
    IF,
    LIF,
    CuBaLIF,
    SeqAvgPool2d,
    SeqConv2d,
    SeqLinear,
)
from neuronkit.snn.nir import to_nir

SNNTORCH_REASON = "snnTorch is not installed (a benchmark-only peer: nox -s bench)"
NORSE_REASON = "Norse is not installed (a benchmark-only peer: nox -s bench)"


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim >= 2:
                p.normal_(0.3, 1.0).mul_(1.0 / p[0].numel() ** 0.5)
    return model


def _input(shape: tuple[int, ...], T: int = 40, B: int = 4) -> torch.Tensor:
    return torch.rand(T, B, *shape, generator=torch.Generator().manual_seed(1)) * 2


def _run_snntorch(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import snntorch.utils

    snntorch.utils.reset(net)  # its neurons keep hidden state between calls
    out = []
    with torch.no_grad():
        for x_t in x:
            y = net(x_t)
            out.append(y[0] if isinstance(y, tuple) else y)
    return torch.stack(out)


def _run_norse(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    state: Any = None
    out = []
    with torch.no_grad():
        for x_t in x:
            y, state = net(x_t, state)
            out.append(y)
    return torch.stack(out)


def _assert_same_spikes(peer: torch.Tensor, ours: torch.Tensor) -> None:
    assert peer.shape == ours.shape
    assert 0.05 < float(ours.mean()) < 0.95  # neither silent nor saturated
    mismatched = int((peer != ours).sum())
    assert mismatched == 0, f"{mismatched} of {ours.numel()} spikes differ"


SNNTORCH_CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    # r = tau / dt: snnTorch's beta = 1 - dt / tau with unit input gain, exactly our jump
    "lif_cubalif_jump": (
        lambda: nn.Sequential(
            SeqLinear(6, 16),
            LIF(tau=2.0, reset="zero", decay_input=False),
            SeqLinear(16, 8),
            CuBaLIF(tau_mem=4.0, tau_syn=2.0, reset="zero", decay_input=False),
        ),
        (6,),
    ),
    # r = 1: snnTorch divides the threshold by the input gain dt / tau instead
    "lif_decay_input": (
        lambda: nn.Sequential(SeqLinear(6, 16), LIF(tau=4.0, reset="zero")),
        (6,),
    ),
    "conv2d_avgpool": (
        lambda: nn.Sequential(
            SeqConv2d(1, 4, 3, padding=1),
            LIF(tau=2.0, reset="zero", decay_input=False),
            SeqAvgPool2d(2),
            SeqConv2d(4, 2, 3),
            LIF(tau=2.0, reset="zero", decay_input=False),
        ),
        (1, 8, 8),
    ),
}

NORSE_CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "lif_if_cubalif": (
        lambda: nn.Sequential(
            SeqLinear(6, 16),
            LIF(tau=2.0, reset="zero"),
            SeqLinear(16, 16),
            IF(threshold=0.5, reset="zero"),
            SeqLinear(16, 8),
            CuBaLIF(tau_mem=4.0, tau_syn=2.0, threshold=0.5, reset="zero"),
        ),
        (6,),
    ),
    "cubalif_jump": (  # Norse applies CubaLIF's r and w_in
        lambda: nn.Sequential(
            SeqLinear(6, 16), CuBaLIF(tau_mem=4.0, tau_syn=2.0, reset="zero", decay_input=False)
        ),
        (6,),
    ),
    "conv2d_sumpool": (
        lambda: nn.Sequential(
            SeqConv2d(1, 4, 3, padding=1),
            LIF(tau=4.0, reset="zero"),
            SeqAvgPool2d(2, divisor_override=1),
            SeqConv2d(4, 2, 3),
            LIF(tau=4.0, reset="zero"),
        ),
        (1, 8, 8),
    ),
}


@pytest.mark.parametrize("case", sorted(SNNTORCH_CASES))
def test_snntorch_runs_our_export(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("snntorch", reason=SNNTORCH_REASON)
    from snntorch.import_nir import import_from_nir

    build, shape = SNNTORCH_CASES[case]
    model = _seeded(build)
    x = _input(shape)
    graph = to_nir(model, shape, dt=1e-4)  # snnTorch's importer assumes dt = 1e-4
    net = import_from_nir(graph)
    with torch.no_grad():
        ours = model(x)
    _assert_same_spikes(_run_snntorch(net, x), ours)


@pytest.mark.parametrize("case", sorted(NORSE_CASES))
def test_norse_runs_our_export(case: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("norse", reason=NORSE_REASON)
    import norse.torch as norse

    build, shape = NORSE_CASES[case]
    model = _seeded(build)
    x = _input(shape)
    dt = 1e-3
    with caplog.at_level(logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Norse's torch.jit deprecation and r != 1 notes
        net = norse.from_nir(to_nir(model, shape, dt=dt), dt=dt)
    with torch.no_grad():
        ours = model(x)
    _assert_same_spikes(_run_norse(net, x), ours)


def test_norse_reads_our_file(tmp_path) -> None:
    pytest.importorskip("norse", reason=NORSE_REASON)
    import nir
    import norse.torch as norse

    build, shape = NORSE_CASES["lif_if_cubalif"]
    model = _seeded(build)
    path = tmp_path / "model.nir"
    nir.write(path, to_nir(model, shape, dt=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = norse.from_nir(nir.read(path), dt=1e-3)
    x = _input(shape)
    with torch.no_grad():
        ours = model(x)
    _assert_same_spikes(_run_norse(net, x), ours)
