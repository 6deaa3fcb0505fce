"""The ``>>>`` examples in the docstrings of every installed neuronkit package run and print
what they show (doctest), so the examples a reader copies stay true."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import neuronkit


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(neuronkit.__path__, "neuronkit."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py") and ">>> " in Path(origin).read_text("utf-8"):
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert len(MODULES) >= 10, MODULES  # the engine, training loops, validators, ...


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    # failures are printed (pytest shows them with the failed assertion)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} shows >>> examples but doctest found none"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
