"""The `neuronkit` command against a really installed plugin distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from neuronkit.common.cli import main

CliRunner = Callable[..., subprocess.CompletedProcess[str]]

PLUGIN_IDS = ["testplugin.biased_coin", "testplugin.broken", "testplugin.fair_coin"]


def test_list_json_discovers_plugin_without_importing_it(plugin_dir: Path) -> None:
    probe = (
        "import json, sys\n"
        "from neuronkit.common.cli import main\n"
        "main(['list', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('neuronkit_testplugin', 'torch', 'numpy'))\n"
        "print('IMPORTED', json.dumps(heavy))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(plugin_dir))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    listing, _, imported = proc.stdout.rpartition("IMPORTED ")
    entries = json.loads(listing)
    for entry in entries:
        assert {"id", "package", "paper", "claim"} <= set(entry)
    # other neuronkit packages may be installed too (the all-packages workspace environment)
    plugin = [e for e in entries if e["id"].startswith("testplugin.")]
    assert [e["id"] for e in plugin] == PLUGIN_IDS
    assert {e["package"] for e in plugin} == {"testplugin"}
    assert json.loads(imported) == []


def test_list_human(with_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "testplugin.fair_coin" in out
    assert "A fair coin" in out
    assert "claim: " in out


def test_info_shows_checks(with_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "testplugin.biased_coin"]) == 0
    out = capsys.readouterr().out
    assert "abs_error <= 0.05" in out
    assert "n_flips >= 100" in out


def test_unknown_id_suggests(with_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "testplugin.fair_con"]) == 2
    err = capsys.readouterr().err
    assert "unknown reproduction id 'testplugin.fair_con'" in err
    assert "testplugin.fair_coin" in err


def test_reproduce_pass_writes_result_files(with_plugin: Path, tmp_path: Path) -> None:
    assert main(["reproduce", "testplugin.fair_coin", "--quick", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "testplugin.fair_coin"
    result = json.loads((folder / "result.json").read_text())
    assert {"id", "passed", "checks", "metrics", "seed", "quick", "seconds"} <= set(result)
    assert result["passed"] is True
    assert result["quick"] is True
    assert result["seed"] == 3
    assert result["checks"][0]["name"] == "abs_error"
    assert {"name", "value", "threshold", "passed"} <= set(result["checks"][0])
    report = (folder / "report.md").read_text()
    assert "PASSED" in report
    assert "flips" in report
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_same_seed_same_numbers(with_plugin: Path, tmp_path: Path) -> None:
    values = []
    for out in (tmp_path / "a", tmp_path / "b"):
        main(
            [
                "reproduce",
                "testplugin.fair_coin",
                "--seed",
                "11",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        values.append(
            json.loads((out / "testplugin.fair_coin" / "result.json").read_text())["checks"]
        )
    assert values[0] == values[1]


def test_exit_codes_and_summary(run_cli: CliRunner, tmp_path: Path) -> None:
    failing = run_cli(
        "reproduce",
        "testplugin.fair_coin",
        "testplugin.biased_coin",
        "--quick",
        "--out",
        str(tmp_path),
    )
    assert failing.returncode == 1, failing.stderr
    assert "FAILED" in failing.stdout
    assert "1 passed, 1 failed" in failing.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] == 1
    assert summary["failed"] == 1
    assert (tmp_path / "summary.md").is_file()

    # "all" where the plugin is the only distribution (CI's isolated environment); with other
    # neuronkit packages installed, "all" would run their reproductions too: name the plugin's
    listed = [e["id"] for e in json.loads(run_cli("list", "--json").stdout)]
    selection = ["all"] if listed == PLUGIN_IDS else PLUGIN_IDS
    everything = run_cli("reproduce", *selection, "--quick", "--out", str(tmp_path))
    assert everything.returncode == 2  # the broken one is a runtime error
    assert "simulated failure" in everything.stdout
    assert not (tmp_path / "testplugin.broken").exists()


def test_resume_skips_finished_unless_forced(
    with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*extra: str) -> str:
        assert main(["reproduce", "testplugin.fair_coin", "--out", str(tmp_path), *extra]) == 0
        return capsys.readouterr().err

    run("--quick")
    stamp = (tmp_path / "testplugin.fair_coin" / "result.json").stat().st_mtime_ns
    assert "reusing" in run("--quick")
    assert (tmp_path / "testplugin.fair_coin" / "result.json").stat().st_mtime_ns == stamp
    assert "reusing" not in run()  # another mode is another experiment
    assert "reusing" not in run("--force")


def test_package_selector_and_json(
    with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "testplugin", "--quick", "--json", "--out", str(tmp_path)]) == 2
    rows = json.loads(capsys.readouterr().out)
    ids = [r["id"] for r in rows]
    assert ids == ["testplugin.biased_coin", "testplugin.fair_coin", "testplugin.broken"]
    assert [r.get("reused") for r in rows] == [False, False, None]
    assert "error" in rows[2]  # the id that failed to run is reported, not left out
    assert (
        main(["reproduce", "testplugin.fair_coin", "--quick", "--json", "--out", str(tmp_path)])
        == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["reused"] is True


def test_unwritable_out_is_a_usage_error(run_cli: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    ids = ("testplugin.fair_coin", "testplugin.biased_coin")
    proc = run_cli("reproduce", *ids, "--quick", "--out", str(file / "sub"))
    assert proc.returncode == 2
    assert "cannot be created" in proc.stderr


def test_seed_survey(with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = ["testplugin.fair_coin", "testplugin.biased_coin"]
    args = ["reproduce", *ids, "--quick", "--seeds", "4-5,2,4", "--out", str(tmp_path)]
    assert main(args) == 1  # the biased coin fails at every seed
    printed = capsys.readouterr()
    assert "testplugin.fair_coin  held at 3 of 3 seeds" in printed.out
    assert "testplugin.biased_coin  held at 0 of 3 seeds" in printed.out
    for seed in (4, 5, 2):
        result = json.loads(
            (tmp_path / f"seed-{seed}" / "testplugin.fair_coin" / "result.json").read_text()
        )
        assert result["seed"] == seed
    survey = json.loads((tmp_path / "seeds.json").read_text())
    assert survey["seeds"] == [4, 5, 2]
    fair, biased = survey["reproductions"]
    values = fair["checks"][0]["values"]
    assert len(set(values)) == 3  # each seed draws its own coin flips
    assert fair["checks"][0]["mean"] == pytest.approx(sum(values) / 3)
    assert fair["held"] == 3
    assert [c["held"] for c in biased["checks"]] == [0, 3]  # abs_error fails, n_flips holds
    assert "| abs_error <= 0.05 | " in (tmp_path / "seeds.md").read_text()
    # a second run reuses every seed's result and writes the same survey
    assert main([*args, "--json"]) == 1
    printed = capsys.readouterr()
    assert "reusing" in printed.err
    assert json.loads(printed.out) == survey
    assert json.loads((tmp_path / "seeds.json").read_text()) == survey


def test_seed_survey_reports_errors(with_plugin: Path, tmp_path: Path) -> None:
    args = ["reproduce", "testplugin.broken", "--quick", "--seeds", "0-1", "--out", str(tmp_path)]
    assert main([*args, "--no-progress"]) == 2
    (broken,) = json.loads((tmp_path / "seeds.json").read_text())["reproductions"]
    assert broken["seeds"] == []
    assert broken["held"] == 0
    assert set(broken["errors"]) == {"0", "1"}
    assert "simulated failure" in broken["errors"]["0"]
    assert "- seed 1: **ERROR** RuntimeError" in (tmp_path / "seeds.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "nope.nothing"], "unknown reproduction id 'nope.nothing'"),
        (["reproduce", "all", "--seed", "-1"], "--seed must be in [0, 2**32)"),
        (["reproduce", "all", "--seed", "x"], "--seed must be an integer"),
        (["reproduce"], "the following arguments are required"),
        (["reproduce", "all", "--seed", "1", "--seeds", "0-2"], "not allowed with argument"),
        (["reproduce", "all", "--seeds", "3-1"], "--seeds range '3-1' runs backwards"),
        (["reproduce", "all", "--seeds", "0,x"], "--seeds takes integers and ranges"),
        (["reproduce", "all", "--seeds", "0-1000"], "--seeds names more than 1000 seeds"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(run_cli: CliRunner, args: list[str], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_out_must_be_a_folder(run_cli: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    proc = run_cli("reproduce", "testplugin.fair_coin", "--out", str(file))
    assert proc.returncode == 2
    assert "--out must be a folder" in proc.stderr


def test_no_plugins_means_nothing_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without the plugin only the packages of this environment are registered; an unknown id
    # is still a usage error rather than a crash.
    assert main(["reproduce", "testplugin.fair_coin", "--out", str(tmp_path)]) == 2
    assert "unknown reproduction id" in capsys.readouterr().err


def test_python_api_reproduce(with_plugin: Path, tmp_path: Path) -> None:
    from neuronkit.common import reproduce

    result = reproduce("testplugin.fair_coin", out=tmp_path)
    assert result.passed
    assert result.seed == 3
    assert (tmp_path / "testplugin.fair_coin" / "result.json").is_file()
    with pytest.raises(ValueError, match="reproduction_id must be a registered id"):
        reproduce("testplugin.nothing", out=tmp_path)


def test_broken_plugin_is_named_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuronkit.common import RegistryError, discover, reproduce

    dist = tmp_path / "neuronkit_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: neuronkit-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[neuronkit.reproductions]\nbroken.missing = no_such_module_here:run\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"broken\.missing") as caught:
        assert "broken.missing" not in discover()
    with (
        pytest.warns(UserWarning, match=r"broken\.missing") as caught_too,
        pytest.raises(ValueError, match="reproduction_id"),
    ):
        reproduce("broken.missing", out=tmp_path)
    # both warnings point at the caller's line, not inside the registry
    assert {w.filename for w in [*caught, *caught_too]} == {__file__}
    with pytest.raises(RegistryError, match=r"broken\.missing"):
        discover(strict=True)


def test_assert_quick_reproduction(with_plugin: Path, tmp_path: Path) -> None:
    from neuronkit.common.testing import assert_quick_reproduction

    with pytest.raises(AssertionError, match=r"testplugin\.biased_coin failed: .*abs_error"):
        assert_quick_reproduction("testplugin.biased_coin", tmp_path)
    # a known-failing check is tolerated, but a run must still leave a figure
    with pytest.raises(AssertionError, match="saved no figure"):
        assert_quick_reproduction("testplugin.biased_coin", tmp_path / "b", {"abs_error"})


def test_resume_reruns_results_of_another_version_or_threshold(
    with_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "testplugin.fair_coin" / "result.json"

    def run() -> str:
        assert main(["reproduce", "testplugin.fair_coin", "--quick", "--out", str(tmp_path)]) == 0
        return capsys.readouterr().err

    def edit(change: Callable[[dict], None]) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    run()
    assert json.loads(path.read_text())["environment"]["package_version"]
    edit(lambda d: d["checks"][0].update(value=None))  # a NaN value, written as null
    assert "reusing" in run()  # read back as NaN, formatted without a crash
    edit(lambda d: d["environment"].update(package_version="0.0.0"))
    assert "reusing" not in run()  # made by another version of the package
    edit(lambda d: d["checks"][0].update(threshold=d["checks"][0]["threshold"] + 1))
    assert "reusing" not in run()  # checked against another threshold
    assert "reusing" in run()
