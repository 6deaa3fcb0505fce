"""Helpers for package test suites (import only from tests; needs nothing beyond common)."""

from __future__ import annotations

import ast
import doctest
import importlib
import io
import pkgutil
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .registry import reproduce
from .reproduction import Result

__all__ = [
    "SKETCH",
    "assert_quick_reproduction",
    "devices",
    "run_docstring_examples",
    "run_readme_examples",
]

#: First-line comment of a README example that uses the reader's own objects (``model``, ``x``):
#: :func:`run_readme_examples` runs only its imports.
SKETCH = "# sketch:"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def assert_quick_reproduction(
    reproduction_id: str, out: str | Path, known_failing: Collection[str] = ()
) -> Result:
    """Run ``reproduction_id`` in quick mode under ``out`` and assert that it held.

    Every check must pass except those named in ``known_failing`` (checks whose paper effect
    does not show at quick scale; they still run and are reported), and the run must have
    written its ``result.json`` and at least one figure. Returns the result.
    """
    result = reproduce(reproduction_id, quick=True, out=out)
    failed = {
        c.name: f"{c.value:.4g} (needs {c.comparison} {c.threshold:g})"
        for c in result.checks
        if not c.passed
    }
    unexpected = set(failed) - set(known_failing)
    assert not unexpected, f"{reproduction_id} failed: {failed}"
    assert (Path(out) / reproduction_id / "result.json").is_file(), "no result.json written"
    assert result.figures, f"{reproduction_id} saved no figure"
    return result


def devices() -> list[Any]:
    """Pytest parameters for device tests: ``"cpu"`` always, and ``"cuda"``, skipped with a
    reason where torch sees no CUDA device (use with ``pytest.mark.parametrize("device",
    devices())``)."""
    import pytest
    import torch

    reason = "needs a CUDA device (torch.cuda.is_available() is False)"
    cuda = pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=reason)
    )
    return ["cpu", cuda]


def run_readme_examples(readme: str | Path) -> int:
    """Run the ```` ```python ```` examples of a README in order, in one namespace.

    Every example runs as written, except one whose first line starts with :data:`SKETCH`
    (it names what the reader brings, e.g. ``# sketch: model, x and y are yours``): its
    imports run, so a renamed or removed name still fails. An exception propagates with the
    example's number in its traceback. Returns the number of examples run whole.
    """
    path = Path(readme)
    blocks = _FENCE.findall(path.read_text(encoding="utf-8"))
    if not blocks:
        raise ValueError(f"readme must contain ```python examples, found none in {path}")
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    whole = 0
    for number, source in enumerate(blocks, start=1):
        tree = ast.parse(source, filename=f"{path.name} example {number}")
        if source.startswith(SKETCH):
            tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        else:
            whole += 1
        exec(compile(tree, f"{path.name} example {number}", "exec"), namespace)
    return whole


def run_docstring_examples(package: str) -> int:
    """Run the ``>>>`` examples in the docstrings of every module of ``package``.

    Modules are imported as installed (``package`` and everything below it); the examples run
    with :data:`doctest.ELLIPSIS` and :data:`doctest.NORMALIZE_WHITESPACE`, and ``+SKIP``
    marks an example that is shown but not run. Raises AssertionError with doctest's report
    when an example fails; returns the number of examples run.
    """
    root = importlib.import_module(package)
    names = [package]
    if hasattr(root, "__path__"):
        names += [m.name for m in pkgutil.walk_packages(root.__path__, prefix=package + ".")]
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=flags)
    report = io.StringIO()
    for name in sorted(set(names)):
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            runner.run(test, out=report.write)
    if runner.failures:
        raise AssertionError(
            f"{runner.failures} of {runner.tries} docstring examples failed:\n{report.getvalue()}"
        )
    return runner.tries
