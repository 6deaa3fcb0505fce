"""Declaring and running reproductions: checks, the run context and the result.

A reproduction is a function ``run(ctx: RunContext) -> None`` decorated with
:func:`reproduction`, registered under the entry-point group ``neuronkit.reproductions``::

    @reproduction(
        id="snn.delays",
        paper="Learning Delays in Spiking Neural Networks using Dilated Convolutions ...",
        claim="learned delays > fixed random delays > no delays, each gap >= 5 points",
        checks=[Check("learned_minus_fixed", ">=", 5.0, "accuracy points")],
        seed=0,
    )
    def run(ctx: RunContext) -> None:
        ...
        ctx.check("learned_minus_fixed", gap)

The decorator's arguments must be literals (and ``Check(...)`` calls of literals): the
registry reads them from the source, so listing never imports the module.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .io import atomic_path, atomic_write_json, atomic_write_text, json_text, replace_dir
from .progress import _bar, _library_bars, progress_write
from .seeding import global_rngs_restored, seed_everything
from .validation import check_choice, check_number, check_type

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t,
    ">": lambda v, t: v > t,
    "<=": lambda v, t: v <= t,
    "<": lambda v, t: v < t,
}
ATTRIBUTE = "__neuronkit_reproduction__"
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Check:
    """A claim's named check: ``value <comparison> threshold`` must hold."""

    name: str
    comparison: str
    threshold: float
    description: str = ""

    def __post_init__(self) -> None:
        check_type("name", self.name, str)
        if not _NAME_PATTERN.match(self.name):
            raise ValueError(f"name must be an identifier such as 'acc_gap', got {self.name!r}")
        check_choice("comparison", self.comparison, COMPARISONS)
        check_number("threshold", self.threshold)
        check_type("description", self.description, str)

    def evaluate(self, value: float) -> CheckResult:
        """Compare ``value`` with the threshold; NaN or infinity never passes."""
        try:
            if isinstance(value, (str, bytes)):  # float() would parse it
                raise TypeError
            v = float(value)
        except (TypeError, ValueError):  # None, a list, an array of several values
            raise TypeError(
                f"value of check {self.name!r} must be a real number, got "
                f"{type(value).__name__} ({value!r:.80})"
            ) from None
        passed = math.isfinite(v) and COMPARISONS[self.comparison](v, float(self.threshold))
        return CheckResult(
            self.name, v, float(self.threshold), self.comparison, passed, self.description
        )

    def __str__(self) -> str:
        text = f"{self.name} {self.comparison} {self.threshold:g}"
        return f"{text}  ({self.description})" if self.description else text


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one :class:`Check`."""

    name: str
    value: float
    threshold: float
    comparison: str
    passed: bool
    description: str = ""


@dataclass(frozen=True)
class ReproductionSpec:
    """What the :func:`reproduction` decorator declares."""

    id: str
    paper: str
    claim: str
    checks: tuple[Check, ...]
    seed: int = 0
    #: torch intra-op threads while the reproduction runs (None: leave torch's setting).
    #: Small models run fastest on one thread and are then immune to a shared CPU.
    threads: int | None = None

    def __post_init__(self) -> None:
        check_type("id", self.id, str)
        if not _ID_PATTERN.match(self.id):
            raise ValueError(f"id must look like '<package>.<name>' in lower case, got {self.id!r}")
        for arg in ("paper", "claim"):
            check_type(arg, getattr(self, arg), str)
        check_number("seed", self.seed, ge=0, lt=2**32, integer=True)  # what seed_everything takes
        if self.threads is not None:
            check_number("threads", self.threads, ge=1, integer=True)
        if not self.checks:
            raise ValueError(f"checks must name at least one Check for {self.id!r}")
        for i, check in enumerate(self.checks):
            check_type(f"checks[{i}]", check, Check)
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"checks must have distinct names, got {names}")


def reproduction(
    *,
    id: str,
    paper: str,
    claim: str,
    checks: Sequence[Check],
    seed: int = 0,
    threads: int | None = None,
) -> Callable[[Callable[[RunContext], None]], Callable[[RunContext], None]]:
    """Declare a function ``run(ctx)`` as the reproduction ``id`` (see module docstring).

    ``threads`` caps torch's intra-op threads during the run (restored afterwards).
    """
    if isinstance(checks, Check) or not isinstance(checks, Iterable):
        raise TypeError(f"checks must be a list of Check, got {type(checks).__name__}")
    spec = ReproductionSpec(
        id=id, paper=paper, claim=claim, checks=tuple(checks), seed=seed, threads=threads
    )

    def decorate(fn: Callable[[RunContext], None]) -> Callable[[RunContext], None]:
        setattr(fn, ATTRIBUTE, spec)
        return fn

    return decorate


@dataclass
class Result:
    """What a finished reproduction wrote to ``result.json``."""

    id: str
    package: str
    paper: str
    claim: str
    passed: bool
    checks: list[CheckResult]
    metrics: dict[str, Any]
    seed: int
    quick: bool
    seconds: float
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists: what ``result.json`` holds."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        data = dict(data)
        # NaN values are written as null (JSON has no NaN): read them back as NaN
        data["checks"] = [
            CheckResult(**{**c, "value": math.nan if c.get("value") is None else c["value"]})
            for c in data.get("checks", [])
        ]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _untensor(value: Any) -> Any:
    """``value`` with torch tensors (also inside dicts, lists and tuples) as Python numbers and
    lists: a tensor in an autograd graph would pin the graph and fail ``result.json``'s copy."""
    if isinstance(value, dict):
        return {k: _untensor(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_untensor(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor
        return value.detach().tolist()
    return value


def _recordable(what: str, value: Any) -> Any:
    """``value`` as :func:`_untensor` gives it, checked to go into ``result.json`` now: a value
    JSON cannot hold (a set, an object) would otherwise fail the run at its very end."""
    value = _untensor(value)
    try:
        json_text(value)
    except (TypeError, ValueError) as err:  # ValueError: a circular reference
        raise TypeError(
            f"{what} must hold numbers, strings, lists and dicts (it goes into result.json): {err}"
        ) from None
    return value


class RunContext:
    """Everything a reproduction gets: settings, a seeded RNG, and places to put results.

    Attributes:
        quick: run the small (about 30 s on 2 CPU cores) version.
        seed: the run's seed; every RNG was seeded with it before ``run`` was called.
        out_dir: folder for this reproduction's files (written atomically as a whole).
        rng: ``numpy.random.Generator`` seeded with ``seed``.
    """

    def __init__(
        self,
        spec: ReproductionSpec,
        *,
        quick: bool,
        seed: int,
        out_dir: Path,
        show_progress: bool | None = None,
    ) -> None:
        check_type("spec", spec, ReproductionSpec)
        check_type("quick", quick, bool)
        check_number("seed", seed, ge=0, integer=True)
        check_type("out_dir", out_dir, (str, os.PathLike))
        if show_progress is not None:
            check_type("show_progress", show_progress, bool)
        self.spec = spec
        self.quick = quick
        self.seed = seed
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        import numpy as np

        self.rng: np.random.Generator = np.random.default_rng(seed)
        self._declared = {c.name: c for c in spec.checks}
        self.checks: dict[str, CheckResult] = {}
        self.metrics: dict[str, Any] = {}
        self.figures: list[str] = []
        self.notes: list[str] = []
        self.tables: list[dict[str, Any]] = []

    def check(self, name: str, value: float) -> bool:
        """Record the measured ``value`` of the declared check ``name``; return if it holds."""
        if name not in self._declared:
            raise KeyError(
                f"name must be a check declared by {self.spec.id!r} "
                f"({sorted(self._declared)}), got {name!r}"
            )
        result = self._declared[name].evaluate(value)
        self.checks[name] = result
        self.log(
            f"check {name}: {result.value:.4g} {result.comparison} {result.threshold:g} "
            f"-> {'ok' if result.passed else 'FAILED'}"
        )
        return result.passed

    def metric(self, name: str, value: Any) -> None:
        """Record a metric (number, list or small dict) for ``result.json`` and the report;
        torch tensors are stored as Python numbers and lists."""
        self.metrics[name] = _recordable(f"metric {name!r}", value)

    def note(self, text: str) -> None:
        """Add a paragraph to the report (method details, caveats, what did not reproduce)."""
        self.notes.append(text)

    def table(self, title: str, rows: Sequence[dict[str, Any]]) -> None:
        """Add a table (a list of dicts with the same keys) to the report and ``result.json``."""
        rows = _recordable(f"table {title!r}", [dict(r) for r in rows])
        self.tables.append({"title": title, "rows": rows})

    def save_figure(self, name: str, fig: Any, *, dpi: int = 120) -> Path:
        """Save a matplotlib figure as ``<name>.png`` atomically and close it."""
        if not _NAME_PATTERN.match(name):
            raise ValueError(f"name must be an identifier such as 'loss_curve', got {name!r}")
        path = self.out_dir / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
        with contextlib.suppress(ImportError):
            import matplotlib.pyplot as plt

            plt.close(fig)
        self.figures.append(path.name)
        return path

    def progress(
        self, iterable: Iterable[T], desc: str | None = None, total: int | None = None
    ) -> Iterator[T]:
        """Wrap a loop in a progress bar on stderr (:func:`neuronkit.common.progress` with the
        run's ``show_progress``: off, on, or ``None``, only on a terminal)."""
        label = f"{self.spec.id}: {desc}" if desc else self.spec.id
        yield from _bar(iterable, self.show_progress, label, total)

    def log(self, message: str) -> None:
        """Print a progress message on stderr (unless progress is off), above any open bar."""
        if self.show_progress is not False:
            progress_write(f"  [{self.spec.id}] {message}")


def environment_info() -> dict[str, str]:
    """Versions that matter for reproducing a number."""
    import numpy as np

    info = {"python": platform.python_version(), "platform": platform.platform()}
    info["numpy"] = np.__version__
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = str(torch.__version__)
        info["torch_threads"] = str(torch.get_num_threads())
    return info


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads at ``threads`` inside the block (``None``: no change)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(min(before, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_reproduction(
    spec: ReproductionSpec,
    fn: Callable[[RunContext], None],
    *,
    package: str,
    quick: bool,
    seed: int,
    out_root: str | Path,
    show_progress: bool | None = None,
    version: str | None = None,
) -> Result:
    """Run one reproduction and write ``<out_root>/<id>/`` (result.json, report.md, figures).

    ``version``: the package's version, recorded in the result's environment
    (``package_version``), so that a later run can tell whether the result is still current.

    The folder appears only when the run finished: it is built under a temporary name and
    moved into place, so an interrupted run leaves nothing that looks finished. The run seeds
    the global RNGs of ``random``, numpy and torch with ``seed``; the caller's states are
    restored afterwards.
    """
    from .report import render_report

    check_type("spec", spec, ReproductionSpec)
    if not callable(fn):
        raise TypeError(f"fn must be the reproduction's run function, got {type(fn).__name__}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    final_dir = out_root / spec.id
    # host, process and a random token: unique also across machines sharing out_root
    work_dir = out_root / f".{spec.id}.partial-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    _remove_stale_partials(out_root, spec.id)
    work_dir.mkdir()
    try:
        ctx = RunContext(
            spec, quick=quick, seed=seed, out_dir=work_dir, show_progress=show_progress
        )
        start = time.perf_counter()
        # the run seeds the global RNGs; the caller's states come back afterwards
        with global_rngs_restored(), _torch_threads(spec.threads), _library_bars(False):
            seed_everything(seed)
            fn(ctx)  # shows its own bars
            environment = environment_info()  # inside: the thread count the run used
        if version is not None:
            environment["package_version"] = version
        seconds = time.perf_counter() - start
        missing = [c.name for c in spec.checks if c.name not in ctx.checks]
        if missing:
            raise RuntimeError(
                f"reproduction {spec.id!r} finished without reporting checks {missing}"
            )
        checks = [ctx.checks[c.name] for c in spec.checks]
        result = Result(
            id=spec.id,
            package=package,
            paper=spec.paper,
            claim=spec.claim,
            passed=all(c.passed for c in checks),
            checks=checks,
            metrics=ctx.metrics,
            seed=seed,
            quick=quick,
            seconds=round(seconds, 3),
            figures=ctx.figures,
            notes=ctx.notes,
            tables=ctx.tables,
            environment=environment,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        atomic_write_text(work_dir / "report.md", render_report(result))
        atomic_write_json(work_dir / "result.json", result.to_dict())
        replace_dir(work_dir, final_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return result


#: this machine in work folders' names (no "-": the names are split at it)
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _remove_stale_partials(out_root: Path, reproduction_id: str) -> None:
    """Remove the unfinished folders of earlier runs of ``reproduction_id`` on this machine
    whose process is gone (killed without a chance to clean up); a running one's folder, and
    every other machine's (whose processes cannot be asked), are left alone."""
    prefix = f".{reproduction_id}.partial-"
    for partial in out_root.glob(f"{prefix}*"):
        parts = partial.name[len(prefix) :].split("-")
        host, pid = (_HOST, parts[0]) if len(parts) == 1 else (parts[0], parts[1])  # 1: old
        if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not _process_alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def load_result(out_root: Path, reproduction_id: str) -> Result | None:
    """The finished result of ``reproduction_id`` under ``out_root``, or ``None`` (also when
    the file is damaged or unreadable: the caller reruns it)."""
    import json

    path = out_root / reproduction_id / "result.json"
    if not path.is_file():
        return None
    try:
        result = Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
        # a damaged file (hand-edited, a partial copy) is rerun rather than trusted
        if not isinstance(result.environment, dict) or not all(
            isinstance(c.value, (int, float)) for c in result.checks
        ):
            return None
        return result
    except (OSError, RecursionError, ValueError, TypeError, KeyError, AttributeError):
        return None  # unreadable, nested too deep for the parser, or not a result
