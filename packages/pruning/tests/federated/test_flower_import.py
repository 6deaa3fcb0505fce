"""Flower stays an optional extra: lazy import and a clear ImportError without it."""

import subprocess
import sys

import pytest

from neuronkit.pruning.federated import flower


def test_missing_flwr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)  # makes `import flwr` fail
    flower._classes.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"neuronkit-pruning\[flwr\]"):
            flower.import_flwr()
        with pytest.raises(ImportError, match=r"neuronkit-pruning\[flwr\]"):
            flower._classes()
    finally:
        flower._classes.cache_clear()


def test_importing_the_subpackage_does_not_import_flwr() -> None:
    code = (
        "import sys; import neuronkit.pruning.federated.flower, neuronkit.pruning.federated; "
        "sys.exit(int('flwr' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
