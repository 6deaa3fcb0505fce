"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

EXEMPT: dict[str, str] = {}  # name: why a string is not a bad argument for it


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.theory", EXEMPT) == []
