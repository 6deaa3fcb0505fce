"""The `neuronkit` command at the edges: closed pipes, odd `--out` folders, narrow encodings."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import neuronkit.common.cli as cli
from neuronkit.common.cli import main


def _run_into_closed_pipe(plugin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with stdout a pipe whose reader has already gone (``| head -1``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "neuronkit.common.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["list"], 0),
        (["list", "--json"], 0),
        (["info", "testplugin.fair_coin"], 0),
        (["reproduce", "testplugin.fair_coin", "testplugin.biased_coin"], 1),
        (["reproduce", "testplugin.fair_coin", "--json"], 0),
    ],
)
def test_closed_stdout_keeps_the_exit_status(
    plugin_dir: Path, tmp_path: Path, args: list[str], status: int
) -> None:
    extra = ["--quick", "--no-progress", "--out", str(tmp_path)] if args[0] == "reproduce" else []
    proc = _run_into_closed_pipe(plugin_dir, *args, *extra)
    assert proc.returncode == status, proc.stderr
    assert "Broken pipe" not in proc.stderr  # was "neuronkit: error: [Errno 32] Broken pipe"
    assert "BrokenPipeError" not in proc.stderr  # or "Exception ignored ..." at exit
    if args[0] == "reproduce":  # the results written before the table stay
        assert (tmp_path / "testplugin.fair_coin" / "result.json").is_file()


def test_read_only_out_is_refused_before_anything_runs(
    with_plugin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # root may write into a mode 555 folder, so the permission is faked, and the test always runs
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: Path(path) != read_only and real_access(path, mode)
    )
    ids = ["testplugin.fair_coin", "testplugin.biased_coin"]
    assert main(["reproduce", *ids, "--quick", "--out", str(read_only)]) == 2
    printed = capsys.readouterr()
    assert printed.err == f"neuronkit: error: --out {str(read_only)!r} is not writable\n"
    assert printed.out == ""
    assert list(read_only.iterdir()) == []


def test_tilde_in_out_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for out in (["--out=~/nkout"], ["--out", "~/nkout"]):
        args = cli._parser().parse_args(["reproduce", "x", *out])
        assert args.out == tmp_path / "nkout"


@pytest.fixture
def unicode_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution whose title, claim and error message are not ASCII."""
    site = tmp_path / "site"
    dist = site / "neuronkit_unicodefake-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: neuronkit-unicodefake\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[neuronkit.reproductions]\n"
        "unicodefake.ok = nk_unicodefake:ok\nunicodefake.boom = nk_unicodefake:boom\n"
    )
    (site / "nk_unicodefake.py").write_text(
        "from neuronkit.common import Check, reproduction\n"
        "@reproduction(id='unicodefake.ok', paper='\\u00dcber M\\u00fcller', claim='x \\u2265 1',"
        " checks=[Check('x', '>=', 1.0, '\\u03c3/\\u03bc')], seed=0)\n"
        "def ok(ctx):\n    ctx.check('x', 2.0)\n"
        "@reproduction(id='unicodefake.boom', paper='P', claim='C', checks=[Check('x', '>=', 1)])\n"
        "def boom(ctx):\n    raise RuntimeError('na\\u00efve failure')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("nk_unicodefake", None)


@pytest.mark.parametrize(
    ("args", "status", "shown"),
    [
        (["list"], 0, r"\xdcber M\xfcller"),
        (["info", "unicodefake.ok"], 0, r"x \u2265 1"),
        (["reproduce", "unicodefake.boom", "--no-progress"], 2, r"na\xefve failure"),
    ],
)
def test_output_that_the_terminal_cannot_encode_is_escaped(
    unicode_plugin: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    status: int,
    shown: str,
) -> None:
    # a terminal under LANG=C (PYTHONIOENCODING=ascii): UnicodeEncodeError crashed with status 1
    written = io.BytesIO()
    stdout = io.TextIOWrapper(written, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    out = ["--out", str(tmp_path / "out")] if args[0] == "reproduce" else []
    assert main([*args, *out]) == status
    stdout.flush()
    assert stdout.encoding == "ascii"  # only the error handler changes
    assert shown in written.getvalue().decode("ascii")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 300, "cannot be created ([Errno 36] File name too long"),  # did not name --out
        ("dangling", "is a broken symbolic link"),  # was "cannot be created (... File exists"
    ],
)
def test_unusable_out_is_named(
    with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    out = str(tmp_path / name)
    assert main(["reproduce", "testplugin.fair_coin", "--quick", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuronkit: error: --out {out!r} {message}")
    assert err.count("\n") == 1


def test_empty_out_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "nope.nothing", "--out", ""])  # was taken as the current folder
    assert exit_.value.code == 2
    assert "--out must name a folder, got ''" in capsys.readouterr().err


def test_unknown_id_suggestions_ignore_case(
    with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "TESTPLUGIN.FAIR_COIN", "--out", str(tmp_path / "o")]) == 2
    assert "did you mean testplugin.fair_coin" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unexpected_error_exits_2_not_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "discover", crash)
    assert main(["list"]) == 2  # 1 would say that a claim failed
    assert "RuntimeError: a bug" in capsys.readouterr().err
