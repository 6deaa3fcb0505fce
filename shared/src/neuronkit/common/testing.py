"""Helpers for package test suites (import only from tests; needs nothing beyond common)."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import doctest
import importlib
import inspect
import io
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from .registry import reproduce
from .reproduction import Result

__all__ = [
    "SKETCH",
    "assert_quick_reproduction",
    "bad_argument_problems",
    "devices",
    "imported_modules",
    "progress_bar_problems",
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


def imported_modules(statement: str) -> set[str]:
    """Names in ``sys.modules`` after running ``statement`` in a fresh interpreter (e.g. to
    check that ``"import neuronkit.theory"`` stays lazy)."""
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise AssertionError(f"{statement!r} failed:\n{run.stderr}")
    return set(run.stdout.split())


def _modules(package: str, skip: str | None = None) -> list[Any]:
    """``package`` and every module below it, imported as installed (names containing
    ``skip`` left out)."""
    root = importlib.import_module(package)
    names = []
    if hasattr(root, "__path__"):
        names = [m.name for m in pkgutil.walk_packages(root.__path__, prefix=package + ".")]
    return [root] + [importlib.import_module(n) for n in names if not (skip and skip in n)]


def run_docstring_examples(package: str) -> int:
    """Run the ``>>>`` examples in the docstrings of every module of ``package``.

    Modules are imported as installed (``package`` and everything below it); the examples run
    with :data:`doctest.ELLIPSIS` and :data:`doctest.NORMALIZE_WHITESPACE`, and ``+SKIP``
    marks an example that is shown but not run. Raises AssertionError with doctest's report
    when an example fails; returns the number of examples run.
    """
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=flags)
    report = io.StringIO()
    for module in _modules(package):
        for test in finder.find(module, module.__name__):
            runner.run(test, out=report.write)
    if runner.failures:
        raise AssertionError(
            f"{runner.failures} of {runner.tries} docstring examples failed:\n{report.getvalue()}"
        )
    return runner.tries


#: What :func:`bad_argument_problems` passes for every required argument.
BAD_ARGUMENT = "?not-a-valid-argument?"


def _public_callables(package: str) -> dict[str, Any]:
    """Functions and classes named in the ``__all__`` of ``package`` and its modules (result
    dataclasses, named tuples and exceptions left out; ``*.reproductions`` skipped)."""
    found: dict[str, Any] = {}
    for module in _modules(package, skip=".reproductions"):
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj):
                if dataclasses.is_dataclass(obj) or issubclass(obj, (BaseException, tuple)):
                    continue
                if inspect.isabstract(obj):
                    continue
            elif not inspect.isfunction(obj):
                continue
            found.setdefault(name, obj)
    return found


_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def bad_argument_problems(package: str, exempt: Mapping[str, str] | None = None) -> list[str]:
    """Call every public function and class of ``package`` with a string for each required
    argument; return one line per callable that does not answer with a clear error.

    A clear error is a TypeError, ValueError or FileNotFoundError whose message names one of
    the callable's parameters. ``exempt`` maps names to the reason they are left out (for
    example a function whose arguments are text, or a torch layer re-exported as is). Run it
    from an empty working directory: a callable that wrongly accepts the string as a path may
    write there.
    """
    exempt = dict(exempt or {})
    callables = _public_callables(package)
    unknown = sorted(set(exempt) - set(callables))
    problems = [f"exempt names no public callable: {name}" for name in unknown]
    for name, obj in sorted(callables.items()):
        if name in exempt:
            continue
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        params = [p for p in signature.parameters.values() if p.name != "self"]
        required = [p for p in params if p.default is p.empty and p.kind in _KINDS]
        if not required:
            continue
        args = [BAD_ARGUMENT for p in required if p.kind != p.KEYWORD_ONLY]
        kwargs = {p.name: BAD_ARGUMENT for p in required if p.kind == p.KEYWORD_ONLY}
        try:
            obj(*args, **kwargs)
        except (TypeError, ValueError, FileNotFoundError) as err:
            if not any(re.search(rf"\b{re.escape(p.name)}\b", str(err)) for p in params):
                problems.append(f"{name}: {type(err).__name__} names no argument: {err}")
        except Exception as err:  # any other error is the finding
            problems.append(f"{name}: {type(err).__name__}: {err}")
        else:
            problems.append(f"{name}: accepted {BAD_ARGUMENT!r} for {[p.name for p in required]}")
    return problems


def progress_bar_problems(run: Callable[..., Any], label: str) -> list[str]:
    """What is wrong with ``run``'s progress bar, ``run(show_progress=...)`` being a small call
    of a long-running function: ``True`` must draw a bar labelled ``label`` on stderr, the
    default and ``False`` none (stderr is a buffer here, not a terminal), nothing may go to
    stdout, and a non-bool must raise ``TypeError``. An empty list means all is well."""
    problems = []
    for show in (True, None, False):
        out, err = io.StringIO(), io.StringIO()
        kwargs = {} if show is None else {"show_progress": show}
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run(**kwargs)
        if (f"{label}:" in err.getvalue()) != (show is True):
            problems.append(f"show_progress={show}: bar {'missing' if show else 'drawn'}")
        if out.getvalue():
            problems.append(f"show_progress={show}: wrote to stdout")
    try:
        run(show_progress="yes")
    except TypeError:
        pass
    else:
        problems.append("show_progress='yes' raised no TypeError")
    return problems
