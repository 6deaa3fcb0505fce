"""Lazy package exports: a package's names are imported from its submodules on first use.

A package keeps its public names in a stub beside its ``__init__.py``, ``__init__.pyi``, as
relative imports (``from .rsa import rdm``, ``from . import codebook``) and an ``__all__``
list. Type checkers and editors read the stub; at run time :func:`lazy_exports` reads the same
stub (without importing anything) and imports a submodule only when one of its names is first
used. ``import neuronkit.interpretability`` then does not import scikit-learn or SciPy until a
method that needs them is used.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` from the stub beside ``init_file``.

    Use in a package's ``__init__.py``::

        __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)

    ``__getattr__`` imports the submodule that defines a name on first access and caches the
    value on the package; any other submodule of the package is also reachable as an attribute.
    """
    stub = Path(init_file).with_suffix(".pyi")
    tree = ast.parse(stub.read_text("utf-8"), filename=str(stub))
    sources: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute or None)
    exported: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if node.module is None:  # from . import submodule
                    sources[alias.asname or alias.name] = (f"{package}.{alias.name}", None)
                else:
                    sources[alias.asname or alias.name] = (f"{package}.{node.module}", alias.name)
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            exported = list(ast.literal_eval(node.value))
    if exported is None:
        raise ValueError(f"{stub} has no __all__ list")
    unknown = sorted(set(exported) - set(sources) - {"__version__"})
    if unknown:
        raise ValueError(f"{stub}: __all__ names {unknown} that the stub does not import")

    # names exported from the submodule of the same name (``from .grad_cam import grad_cam``):
    # importing that submodule (from a sibling, or by its dotted path) makes the import system
    # set it as the package's attribute, which would hide the exported name from then on
    shadowed = {n for n, (module, attr) in sources.items() if attr and module == f"{package}.{n}"}
    if shadowed:
        _keep_exports_over_submodules(package, shadowed, sources)

    def __getattr__(name: str) -> Any:
        if name in sources:
            module, attribute = sources[name]
        elif name.isidentifier() and importlib.util.find_spec(f"{package}.{name}") is not None:
            module, attribute = f"{package}.{name}", None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = importlib.import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__, exported


def _keep_exports_over_submodules(
    package: str, names: set[str], sources: dict[str, tuple[str, str | None]]
) -> None:
    """Make the package module keep ``names`` bound to their exported values when the
    import system binds the same-named submodule to it (a module's class may be replaced by a
    subclass of ``ModuleType``). The submodule stays in ``sys.modules`` (``from pkg.name
    import ...`` and ``importlib.import_module`` reach it); ``import pkg.name as m`` binds the
    exported value."""
    module = sys.modules.get(package)
    if module is None:  # not called from the package's __init__
        return
    base = type(module)

    class _Package(base):  # type: ignore[valid-type,misc]
        def __setattr__(self, name: str, value: Any) -> None:
            if name in names and isinstance(value, types.ModuleType):
                attribute = sources[name][1]
                if value.__name__ == f"{package}.{name}" and attribute is not None:
                    value = getattr(value, attribute, value)  # a partly run module: as it is
            super().__setattr__(name, value)

    module.__class__ = _Package
