"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

_TORCH_LAYER = "a torch layer with its constructor unchanged (only forward takes [T, B, ...])"

EXEMPT = {  # name: why a string is not a bad argument for it
    "SeqAdaptiveAvgPool2d": _TORCH_LAYER,
    "SeqAvgPool2d": _TORCH_LAYER,
    "SeqBatchNorm1d": _TORCH_LAYER,
    "SeqBatchNorm2d": _TORCH_LAYER,
    "SeqConv1d": _TORCH_LAYER,
    "SeqConv2d": _TORCH_LAYER,
    "SeqLinear": _TORCH_LAYER,
    "SeqMaxPool2d": _TORCH_LAYER,
}


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.snn", EXEMPT) == []
