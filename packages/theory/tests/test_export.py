"""Models whose forward validates input values still trace: ``torch.export`` and
``torch.jit.trace`` skip the value reads (``neuronkit.common.values_hidden``) and give the eager
numbers; a neural process's ``ProcessPrediction`` output is a pytree node."""

from __future__ import annotations

import warnings

import pytest
import torch

from neuronkit.theory import ConditionalNeuralProcess, MgNO, TimescaleRNN, UNet2d


def test_export_timescale_rnn_and_neural_process() -> None:
    gen = torch.Generator().manual_seed(0)
    rnn = TimescaleRNN(1, 8, num_heads=2, seed=0).eval()
    x = torch.randn(3, 5, 1, generator=gen)
    exported = torch.export.export(rnn, (x,)).module()
    other = torch.randn(3, 5, 1, generator=gen)
    torch.testing.assert_close(exported(other), rnn(other))
    cnp = ConditionalNeuralProcess(hidden=8, seed=0).eval()
    sets = tuple(torch.randn(2, n, 1, generator=gen) for n in (5, 5, 4))
    pred = torch.export.export(cnp, sets).module()(*sets)
    assert torch.equal(pred.mean, cnp(*sets).mean)
    assert torch.equal(pred.std, cnp(*sets).std)


@pytest.mark.parametrize(
    "build", [lambda: MgNO(width=4, num_layers=1, levels=2, seed=0), lambda: UNet2d(seed=0)]
)
def test_jit_trace_operators(build) -> None:
    """The grid check read traced sizes (tensors) and raised 'n must be an integer'.
    (``torch.jit.trace`` is deprecated, but the legacy ONNX exporter still runs it.)"""
    model = build().eval()
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in torch 2.13
        traced = torch.jit.trace(model, (x,))
    torch.testing.assert_close(traced(x), model(x))
