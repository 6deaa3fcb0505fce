"""Checks, specs, the run context and the atomic result folder."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from neuronkit.common import Check, RunContext, reproduction, run_reproduction
from neuronkit.common.reproduction import ATTRIBUTE, ReproductionSpec, load_result


@pytest.mark.parametrize(
    ("comparison", "value", "expected"),
    [
        (">=", 1.0, True),
        (">=", 0.999, False),
        (">", 1.0, False),
        ("<=", 1.0, True),
        ("<", 1.0, False),
        ("<", 0.5, True),
    ],
)
def test_check_comparisons(comparison: str, value: float, expected: bool) -> None:
    assert Check("x", comparison, 1.0).evaluate(value).passed is expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_never_passes(value: float) -> None:
    assert not Check("x", "<=", 1e9).evaluate(value).passed
    assert not Check("x", ">=", -1e9).evaluate(value).passed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name", "comparison": ">=", "threshold": 1}, "name must be an identifier"),
        ({"name": "x", "comparison": "==", "threshold": 1}, "comparison must be one of"),
        ({"name": "x", "comparison": ">=", "threshold": math.nan}, "threshold must be finite"),
    ],
)
def test_check_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Check(**kwargs)


def test_check_values_and_descriptions_must_have_their_types() -> None:
    check = Check("x", ">=", 1.0)
    # were float()'s "could not convert string to float" / "argument must be ... not 'list'"
    for value in ("2.0", None, [1.0, 2.0]):
        with pytest.raises(TypeError, match="value of check 'x' must be a real number"):
            check.evaluate(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="description must be str"):
        Check("x", ">=", 1.0, 3)  # type: ignore[arg-type]  # was accepted


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="id must look like"):
        ReproductionSpec("NoDot", "p", "c", (Check("x", ">", 0),))
    with pytest.raises(ValueError, match="at least one Check"):
        ReproductionSpec("a.b", "p", "c", ())
    with pytest.raises(ValueError, match="distinct names"):
        ReproductionSpec("a.b", "p", "c", (Check("x", ">", 0), Check("x", "<", 1)))
    with pytest.raises(ValueError, match="threads"):
        ReproductionSpec("a.b", "p", "c", (Check("x", ">", 0),), threads=0)
    # was accepted, and then every run failed in seed_everything
    with pytest.raises(ValueError, match="seed must be < 4294967296"):
        ReproductionSpec("a.b", "p", "c", (Check("x", ">", 0),), seed=2**32)
    # were AttributeError: 'int' object has no attribute 'name' / "'Check' object is not iterable"
    with pytest.raises(TypeError, match=r"checks\[1\] must be Check, got int"):
        ReproductionSpec("a.b", "p", "c", (Check("x", ">", 0), 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checks must be a list of Check, got Check"):
        reproduction(id="a.b", paper="p", claim="c", checks=Check("x", ">", 0))  # type: ignore[arg-type]


def test_run_context_and_load_reject_wrong_types(tmp_path: Path) -> None:
    from neuronkit.common import load

    spec = getattr(_ok, ATTRIBUTE)
    ok = {"quick": True, "seed": 0, "out_dir": tmp_path}
    assert RunContext(spec, **{**ok, "out_dir": str(tmp_path)}).out_dir == tmp_path
    for bad, message in [
        ({"quick": "yes"}, "quick must be bool"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"out_dir": 3}, "out_dir must be"),
        ({"show_progress": "yes"}, "show_progress must be bool"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            RunContext(spec, **{**ok, **bad})
    with pytest.raises(TypeError, match="spec must be ReproductionSpec"):
        RunContext("unit.ok", **ok)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="info must be a ReproductionInfo"):
        load("unit.ok")  # type: ignore[arg-type]
    # were AttributeError: 'NoneType' object has no attribute 'id' / "object is not callable"
    run = {"package": "unit", "quick": True, "seed": 0, "out_root": tmp_path / "runs"}
    with pytest.raises(TypeError, match="spec must be ReproductionSpec"):
        run_reproduction(None, _ok, **run)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fn must be the reproduction's run function"):
        run_reproduction(spec, None, **run)  # type: ignore[arg-type]
    assert list(tmp_path.rglob("*")) == []


def test_metrics_and_tables_json_cannot_hold_are_refused_when_recorded(tmp_path: Path) -> None:
    """A set or an object used to be accepted and fail the run only when result.json was
    written, after all its work."""
    ctx = RunContext(getattr(_ok, ATTRIBUTE), quick=True, seed=0, out_dir=tmp_path)
    ctx.metric("fine", {"a": [1, 2.5, float("nan")], "b": "text"})
    ctx.table("fine", [{"x": 1, "y": None}])
    with pytest.raises(TypeError, match="metric 'units' must hold numbers, strings, lists"):
        ctx.metric("units", {1, 2})
    with pytest.raises(TypeError, match="table 'rows' must hold numbers, strings, lists"):
        ctx.table("rows", [{"model": object()}])
    assert list(ctx.metrics) == ["fine"]
    assert len(ctx.tables) == 1


def test_threads_cap_torch_during_the_run_and_are_restored(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="the threads cap acts on torch")
    seen: list[int] = []

    @reproduction(id="unit.threads", paper="P", claim="C", checks=[Check("v", ">=", 0)], threads=1)
    def capped(ctx: RunContext) -> None:
        seen.append(torch.get_num_threads())
        ctx.check("v", 1.0)

    before = torch.get_num_threads()
    result = run_reproduction(
        getattr(capped, ATTRIBUTE), capped, package="unit", quick=True, seed=0, out_root=tmp_path
    )
    assert seen == [1]
    assert torch.get_num_threads() == before
    assert result.environment["torch_threads"] == "1"  # what the run used, not the restored count


def test_tensor_metrics_are_stored_as_numbers(tmp_path: Path) -> None:
    """A metric or table cell given as a tensor in an autograd graph is stored as Python
    numbers: it kept the graph alive and the end-of-run copy of the result raised."""
    torch = pytest.importorskip("torch", reason="tensor metrics need torch")
    x = torch.ones(3, requires_grad=True)

    @reproduction(id="unit.tensors", paper="P", claim="C", checks=[Check("v", ">=", 0)])
    def tensors(ctx: RunContext) -> None:
        loss = (x * 2).sum()  # non-leaf, with a grad_fn
        ctx.metric("loss", loss)
        ctx.metric("curve", [loss, {"last": loss * 0.5}])
        ctx.table("losses", [{"step": 1, "loss": loss}])
        ctx.check("v", 1.0)

    result = run_reproduction(
        getattr(tensors, ATTRIBUTE), tensors, package="unit", quick=True, seed=0, out_root=tmp_path
    )
    assert result.metrics["loss"] == 6.0
    assert result.metrics["curve"] == [6.0, {"last": 3.0}]
    assert result.tables[0]["rows"] == [{"step": 1, "loss": 6.0}]


def test_library_bars_stay_off_inside_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run shows its own bars; library calls inside it (``progress(show_progress=None)``)
    show none, so ``--no-progress`` silences everything and bars do not nest."""
    pytest.importorskip("tqdm", reason="progress bars need tqdm")
    from neuronkit.common import progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    list(progress(range(2), desc="library"))
    assert "library" in capsys.readouterr().err  # show_progress=None outside a run: on a terminal

    @reproduction(id="unit.bars", paper="P", claim="C", checks=[Check("v", ">=", 0)])
    def bars(ctx: RunContext) -> None:
        for _ in ctx.progress(range(2), desc="outer"):
            list(progress(range(2), desc="inner"))
        list(progress(range(2), show_progress=True, desc="forced"))
        ctx.check("v", 1.0)

    run_reproduction(
        getattr(bars, ATTRIBUTE), bars, package="unit", quick=True, seed=0, out_root=tmp_path,
        show_progress=True,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "outer" in err
    assert "forced" in err
    assert "inner" not in err


@reproduction(id="unit.ok", paper="P", claim="C", checks=[Check("v", ">=", 0.5, "value")], seed=4)
def _ok(ctx: RunContext) -> None:
    ctx.metric("draw", float(ctx.rng.random()))
    ctx.check("v", 1.0)


def test_decorator_attaches_spec() -> None:
    spec = getattr(_ok, ATTRIBUTE)
    assert spec.id == "unit.ok"
    assert spec.seed == 4
    assert spec.checks[0].threshold == 0.5


def test_run_writes_folder_atomically(tmp_path: Path) -> None:
    spec = getattr(_ok, ATTRIBUTE)
    result = run_reproduction(
        spec, _ok, package="unit", quick=True, seed=9, out_root=tmp_path, show_progress=False
    )
    assert result.passed
    on_disk = json.loads((tmp_path / "unit.ok" / "result.json").read_text())
    assert on_disk["metrics"] == result.metrics
    assert load_result(tmp_path, "unit.ok") == result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unit.ok"]


def test_failing_run_leaves_no_folder_and_keeps_old_result(tmp_path: Path) -> None:
    spec = getattr(_ok, ATTRIBUTE)
    run_reproduction(
        spec, _ok, package="unit", quick=True, seed=1, out_root=tmp_path, show_progress=False
    )

    def crash(ctx: RunContext) -> None:
        ctx.metric("half", 1)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_reproduction(
            spec, crash, package="unit", quick=False, seed=2, out_root=tmp_path, show_progress=False
        )
    kept = load_result(tmp_path, "unit.ok")
    assert kept is not None
    assert kept.seed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unit.ok"]


def test_killed_runs_folders_are_swept_and_damaged_results_rerun(tmp_path: Path) -> None:
    spec = getattr(_ok, ATTRIBUTE)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a finished process: its pid names a killed run's leftover
    from neuronkit.common.reproduction import _HOST

    (tmp_path / f".unit.ok.partial-{dead.pid}").mkdir()  # the name before 0.1.14
    (tmp_path / f".unit.ok.partial-{_HOST}-{dead.pid}-00ff00ff").mkdir()
    # another machine sharing the folder: its process cannot be asked, so its folder stays
    elsewhere = f".unit.ok.partial-{_HOST}x-{dead.pid}-00ff00ff"
    (tmp_path / elsewhere).mkdir()
    run_reproduction(
        spec, _ok, package="unit", quick=True, seed=1, out_root=tmp_path, show_progress=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [elsewhere, "unit.ok"]
    path = tmp_path / "unit.ok" / "result.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "environment": None}))
    assert load_result(tmp_path, "unit.ok") is None  # not trusted: rerun


@pytest.mark.parametrize("damage", ["nested", "unreadable"])
def test_unreadable_or_too_deeply_nested_result_is_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    spec = getattr(_ok, ATTRIBUTE)
    run_reproduction(
        spec, _ok, package="unit", quick=True, seed=1, out_root=tmp_path, show_progress=False
    )
    path = tmp_path / "unit.ok" / "result.json"
    if damage == "nested":  # RecursionError in the parser
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:  # PermissionError (faked: root reads a mode 000 file)

        def denied(self: Path, *args: object, **kwargs: object) -> str:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_text", denied)
    assert load_result(tmp_path, "unit.ok") is None


def test_missing_check_is_an_error(tmp_path: Path) -> None:
    spec = getattr(_ok, ATTRIBUTE)
    with pytest.raises(RuntimeError, match=r"without reporting checks \['v'\]"):
        run_reproduction(
            spec,
            lambda ctx: None,
            package="unit",
            quick=True,
            seed=0,
            out_root=tmp_path,
            show_progress=False,
        )
    assert not (tmp_path / "unit.ok").exists()


def test_undeclared_check_is_rejected(tmp_path: Path) -> None:
    ctx = RunContext(
        getattr(_ok, ATTRIBUTE), quick=True, seed=0, out_dir=tmp_path, show_progress=False
    )
    with pytest.raises(KeyError, match="name must be a check declared"):
        ctx.check("w", 1.0)


def test_save_figure_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="figures need the [plot] extra")
    from neuronkit.common import new_figure

    ctx = RunContext(
        getattr(_ok, ATTRIBUTE), quick=True, seed=0, out_dir=tmp_path, show_progress=False
    )
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    path = ctx.save_figure("curve", fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ctx.figures == ["curve.png"]
    with pytest.raises(ValueError, match="name must be an identifier"):
        ctx.save_figure("../escape", fig)


def test_a_run_seeds_the_global_rngs_and_gives_the_callers_back(tmp_path: Path) -> None:
    import random

    import numpy as np
    import torch

    spec = getattr(_ok, ATTRIBUTE)
    seen = []

    def draws() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))  # noqa: NPY002

    def seed_caller() -> None:
        random.seed(11)
        np.random.seed(11)  # noqa: NPY002
        torch.manual_seed(11)

    def finishes(ctx: RunContext) -> None:
        seen.append(draws())
        ctx.check("v", 1.0)

    def interrupted(ctx: RunContext) -> None:
        seen.append(draws())
        raise KeyboardInterrupt

    seed_caller()
    expected = draws()
    for fn in (finishes, interrupted):
        seed_caller()
        with contextlib.suppress(KeyboardInterrupt):
            run_reproduction(
                spec, fn, package="unit", quick=True, seed=3, out_root=tmp_path, show_progress=False
            )
        assert draws() == expected
    assert seen[0] == seen[1] != expected  # inside, the run's own seed
