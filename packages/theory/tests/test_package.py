"""Packaging contract of neuronkit-theory: version, typing marker, namespace layout."""

import importlib.metadata
import tomllib
from pathlib import Path
from types import ModuleType

import neuronkit.theory as pkg
from neuronkit.common.testing import imported_modules

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


def test_import_is_lazy() -> None:
    """The package imports its submodules (and torch, SciPy, scikit-learn) on first use."""
    loaded = imported_modules("import neuronkit.theory")
    heavy = {m for m in loaded if m.split(".")[0] in {"torch", "scipy", "sklearn"}}
    assert heavy == set()
    assert {m for m in loaded if m.startswith("neuronkit.theory.")} == set()


def test_every_public_name_resolves() -> None:
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert value is getattr(pkg, name)
        if not isinstance(value, (str, dict, tuple, list, frozenset, ModuleType)):
            assert value.__module__.startswith("neuronkit.theory."), name
    assert set(pkg.__all__) <= set(dir(pkg))
