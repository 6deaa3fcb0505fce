"""Discovery of reproductions through the entry-point group ``neuronkit.reproductions``.

An entry point ``"snn.delays" = "neuronkit.snn.reproductions.delays:run"`` names a function
decorated with :func:`neuronkit.common.reproduction`. Its metadata is read from the module's
source (the decorator's literal arguments), so :func:`discover` imports neither the module nor
torch; :func:`load` imports it only to run.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from .reproduction import ATTRIBUTE, Check, ReproductionSpec, Result, RunContext, run_reproduction
from .validation import check_type

GROUP = "neuronkit.reproductions"


class RegistryError(RuntimeError):
    """A registered reproduction is broken (bad entry point or metadata)."""


@dataclass(frozen=True)
class ReproductionInfo:
    """A registered reproduction, known without importing it."""

    spec: ReproductionSpec
    package: str
    distribution: str
    version: str
    target: str

    @property
    def id(self) -> str:
        return self.spec.id

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used by ``neuronkit list --json``."""
        return {
            "id": self.spec.id,
            "package": self.package,
            "paper": self.spec.paper,
            "claim": self.spec.claim,
            "seed": self.spec.seed,
            "checks": [
                {
                    "name": c.name,
                    "comparison": c.comparison,
                    "threshold": c.threshold,
                    "description": c.description,
                }
                for c in self.spec.checks
            ],
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
        }


def _package_of(distribution: str) -> str:
    return distribution.removeprefix("neuronkit-")


def _module_file(module: str) -> Path | None:
    """Locate a module's source file without importing it or its parents."""
    path: list[str] | None = None
    spec = None
    parts = module.split(".")
    for i in range(len(parts)):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), path)
        if spec is None:
            return None
        locations = spec.submodule_search_locations
        path = list(locations) if locations is not None else None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _literal(node: ast.expr) -> Any:
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Check"
    ):
        return Check(
            *(ast.literal_eval(a) for a in node.args),
            **{k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg},
        )
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_literal(e) for e in node.elts)
    return ast.literal_eval(node)


def _static_spec(module: str, attr: str) -> ReproductionSpec | None:
    """The decorator's arguments of ``module:attr`` read from source, or ``None``."""
    path = _module_file(module)
    if path is None:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name != attr:
            continue
        for deco in node.decorator_list:
            func = getattr(deco, "func", None)
            name = getattr(func, "id", getattr(func, "attr", None))
            if isinstance(deco, ast.Call) and name == "reproduction":
                try:
                    kwargs = {k.arg: _literal(k.value) for k in deco.keywords if k.arg}
                    return ReproductionSpec(**kwargs)
                except (ValueError, TypeError, SyntaxError):
                    return None
    return None


def _imported_spec(target: str) -> ReproductionSpec:
    fn = _import_target(target)
    spec = getattr(fn, ATTRIBUTE, None)
    if not isinstance(spec, ReproductionSpec):
        raise RegistryError(f"{target} is not decorated with @neuronkit.common.reproduction")
    return spec


def _import_target(target: str) -> Callable[[RunContext], None]:
    module, _, attr = target.partition(":")
    fn = importlib.import_module(module)
    for part in attr.split("."):
        fn = getattr(fn, part)
    return fn  # type: ignore[return-value]


def _info(ep: EntryPoint) -> ReproductionInfo:
    dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
    version = ep.dist.version if ep.dist is not None else "0"
    module, _, attr = ep.value.partition(":")
    if not attr:
        raise RegistryError(
            f"entry point {ep.name!r} of {dist} must be 'module:function', got {ep.value!r}"
        )
    spec = _static_spec(module, attr) or _imported_spec(ep.value)
    if spec.id != ep.name:
        raise RegistryError(
            f"entry point {ep.name!r} of {dist} points to {ep.value}, whose id is {spec.id!r}"
        )
    return ReproductionInfo(spec, _package_of(dist), dist, version, ep.value)


def discover(*, strict: bool = False) -> dict[str, ReproductionInfo]:
    """All installed reproductions by id, sorted by id.

    A broken entry point (unreadable metadata, id mismatch) is skipped with a warning, or
    raises :class:`RegistryError` when ``strict``.
    """
    check_type("strict", strict, bool)
    return _discover(strict=strict, stacklevel=3)


def _discover(*, strict: bool = False, stacklevel: int) -> dict[str, ReproductionInfo]:
    """:func:`discover`, its warnings attributed ``stacklevel`` frames up (the user's call to
    ``discover`` or ``reproduce``)."""
    found: dict[str, ReproductionInfo] = {}
    for ep in entry_points(group=GROUP):
        try:
            info = _info(ep)
        except Exception as err:
            error = (
                err
                if isinstance(err, RegistryError)
                else RegistryError(f"entry point {ep.name!r} ({ep.value}) cannot be read: {err}")
            )
            if strict:
                raise error from err
            warnings.warn(f"skipping a broken reproduction: {error}", stacklevel=stacklevel)
            continue
        other = found.get(info.id)
        if other is not None and other.distribution != info.distribution:
            raise RegistryError(
                f"reproduction id {info.id!r} is registered by both {other.distribution} "
                f"and {info.distribution}"
            )
        found[info.id] = info
    return dict(sorted(found.items()))


def load(info: ReproductionInfo) -> Callable[[RunContext], None]:
    """Import and return the reproduction's ``run`` function (this may import torch)."""
    if not isinstance(info, ReproductionInfo):
        raise TypeError(
            "info must be a ReproductionInfo (a value of neuronkit.common.discover()), "
            f"got {type(info).__name__}"
        )
    fn = _import_target(info.target)
    spec = getattr(fn, ATTRIBUTE, None)
    if spec != info.spec:
        raise RegistryError(
            f"{info.target}: the decorator's metadata changed after discovery or is not literal"
        )
    return fn


def reproduce(
    reproduction_id: str,
    *,
    quick: bool = True,
    seed: int | None = None,
    out: str | Path = "neuronkit-results",
    show_progress: bool = False,
) -> Result:
    """Run one registered reproduction from Python (what ``neuronkit reproduce`` does).

    Writes ``<out>/<id>/`` and returns the :class:`Result`; ``seed=None`` uses the
    reproduction's own default seed. Package tests call this for their quick reproductions.
    """
    check_type("reproduction_id", reproduction_id, str)
    registry = _discover(stacklevel=3)
    if reproduction_id not in registry:
        raise ValueError(
            f"reproduction_id must be a registered id ({len(registry)} installed), "
            f"got {reproduction_id!r}"
        )
    info = registry[reproduction_id]
    return run_reproduction(
        info.spec,
        load(info),
        package=info.package,
        quick=quick,
        seed=info.spec.seed if seed is None else seed,
        out_root=Path(out),
        show_progress=show_progress,
    )
