"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

EXEMPT = {  # name: why a string is not a bad argument for it
    "parse_description": "takes text: any string is a description to parse",
    "tokenize": "takes text: any string is text to tokenize",
    "swap_labels": "takes text: any string is a reply whose labels may be swapped",
}


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.interpretability", EXEMPT) == []
