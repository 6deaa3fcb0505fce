"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

EXEMPT = {  # name: why a string is not a bad argument for it
    "is_hf_conv1d": "predicate: answers False for anything that is not an HF Conv1D layer",
    "is_hf_model": "predicate: answers False for anything that is not an HF PreTrainedModel",
    "is_rms_norm": "predicate: answers False for anything that is not an HF RMSNorm layer",
}


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.pruning", EXEMPT) == []
