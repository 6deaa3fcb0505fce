"""Packaging contract of neuronkit-medimaging: version, typing marker, namespace layout."""

import importlib.metadata
import tomllib
from pathlib import Path

import neuronkit.medimaging as pkg

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_comes_from_pyproject() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert pkg.__version__ == declared == importlib.metadata.version("neuronkit-medimaging")


def test_installed_as_typed_namespace_portion() -> None:
    root = Path(pkg.__file__).parent
    assert (root / "py.typed").is_file()
    assert not (root.parent / "__init__.py").exists(), "neuronkit must stay a PEP 420 namespace"
