"""ONNX route: prune exported models; the result runs in onnxruntime and equals the oracle."""

import io

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from neuronkit.pruning import DenseNetStyle, MobileNetV2Style, ResNetStyle  # noqa: E402
from neuronkit.pruning.onnx import OnnxDependencyGraph, prune_onnx  # noqa: E402


def _export(model: torch.nn.Module, x: torch.Tensor) -> "onnx.ModelProto":
    f = io.BytesIO()
    torch.onnx.export(model.eval(), (x,), f, dynamo=False, input_names=["x"], output_names=["y"])
    return onnx.load_from_string(f.getvalue())


def _run(model: "onnx.ModelProto", x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.numpy()})[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "ctor",
    [
        lambda: ResNetStyle(widths=(8, 16, 16), blocks=1),
        lambda: MobileNetV2Style(expand=2),
        lambda: DenseNetStyle(growth=4, layers=2),
    ],
)
def test_pruned_onnx_runs_and_matches_soft_oracle(ctor, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    proto = _export(ctor(), x)
    before = proto.SerializeToString()
    path = tmp_path / "pruned.onnx"
    hard = prune_onnx(proto, 0.5, output_path=path)
    soft = prune_onnx(proto, 0.5, soft=True)
    assert proto.SerializeToString() == before  # input untouched
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    assert len(hard.SerializeToString()) < 0.8 * len(before)
    assert _run(onnx.load(str(path)), x).shape == (2, 10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_bad_inputs() -> None:
    proto = _export(ResNetStyle(widths=(4, 4, 4), blocks=1), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="ratio"):
        prune_onnx(proto, 1.0)
    with pytest.raises(ValueError, match="nope"):
        prune_onnx(proto, 0.5, ignored=["nope"])
    with pytest.raises(TypeError, match="model"):
        OnnxDependencyGraph(42)
    graph = OnnxDependencyGraph(proto)
    assert any(not g.prunable and g.reason == "model output" for g in graph.groups)
