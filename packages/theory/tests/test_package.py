"""Packaging contract of neuronkit-theory: version, typing marker, namespace layout."""

import importlib.metadata
import tomllib
from pathlib import Path

import neuronkit.theory as pkg

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_comes_from_pyproject() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert pkg.__version__ == declared == importlib.metadata.version("neuronkit-theory")


def test_installed_as_typed_namespace_portion() -> None:
    root = Path(pkg.__file__).parent
    assert (root / "py.typed").is_file()
    assert not (root.parent / "__init__.py").exists(), "neuronkit must stay a PEP 420 namespace"


def test_the_readme_data_helpers_are_importable_from_the_package() -> None:
    # the README says everything in it is importable from neuronkit.theory
    from neuronkit.theory import data

    assert pkg.darcy_dataset is data.darcy_dataset
    assert pkg.function_task is data.function_task
    assert {"darcy_dataset", "function_task"} <= set(pkg.__all__)
