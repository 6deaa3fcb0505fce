"""Packaging contract of neuronkit-interpretability: version, typing marker, namespace layout."""

import importlib.metadata
import tomllib
from pathlib import Path
from types import ModuleType

import neuronkit.interpretability as pkg
from neuronkit.common.testing import imported_modules

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_comes_from_pyproject() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert pkg.__version__ == declared == importlib.metadata.version("neuronkit-interpretability")


def test_installed_as_typed_namespace_portion() -> None:
    root = Path(pkg.__file__).parent
    assert (root / "py.typed").is_file()
    assert not (root.parent / "__init__.py").exists(), "neuronkit must stay a PEP 420 namespace"


def test_import_is_lazy() -> None:
    """The package imports its submodules (and torch, SciPy, scikit-learn) on first use."""
    loaded = imported_modules("import neuronkit.interpretability")
    heavy = {m for m in loaded if m.split(".")[0] in {"torch", "scipy", "sklearn"}}
    assert heavy == set()
    assert {m for m in loaded if m.startswith("neuronkit.interpretability.")} == set()


def test_every_public_name_resolves() -> None:
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert value is getattr(pkg, name)
        if not isinstance(value, (str, dict, tuple, list, frozenset, ModuleType)):
            assert value.__module__.startswith("neuronkit.interpretability."), name
    assert set(pkg.__all__) <= set(dir(pkg))
