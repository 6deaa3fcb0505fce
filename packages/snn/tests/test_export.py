"""Spiking networks leave PyTorch: ``torch.export`` and the ONNX exporter's ``dynamo=True``
path give the eager spikes (the legacy ``dynamo=False`` exporter cannot trace the fused
neurons' autograd functions; the README says so)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from neuronkit.snn import ALIF, LIF, SeqLinear


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(SeqLinear(6, 8), LIF(tau=2.0), SeqLinear(8, 4), ALIF()).eval()


def _input() -> torch.Tensor:
    return 2 * torch.rand(5, 3, 6, generator=torch.Generator().manual_seed(1))


def test_torch_export_gives_the_eager_spikes() -> None:
    net, x = _net(), _input()
    exported = torch.export.export(net, (x,)).module()
    other = 2 * torch.rand(5, 3, 6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(exported(other), net(other))


def test_onnx_export_gives_the_eager_spikes(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript")
    ort = pytest.importorskip("onnxruntime", reason="running the ONNX graph needs onnxruntime")
    net, x = _net(), _input()
    path = tmp_path / "snn.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert (out == net(x).numpy()).all()
