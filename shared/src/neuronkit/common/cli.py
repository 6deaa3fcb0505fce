"""The ``neuronkit`` command: list, describe and run the installed reproductions.

    neuronkit list [--json]
    neuronkit info ID
    neuronkit reproduce ID [ID ...] | PACKAGE | all [--quick] [--seed N | --seeds 0-4]
                        [--out DIR] [--json] [--force] [--no-progress]

Exit status: 0 every claim held, 1 a claim failed, 2 usage or runtime error.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import math
import os
import signal
import statistics
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .io import atomic_write_json, atomic_write_text, json_text
from .registry import RegistryError, ReproductionInfo, discover, load
from .reproduction import Result, load_result, run_reproduction

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad arguments: reported in one line, exit status 2."""


def _version() -> str:
    from . import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuronkit",
        description="Re-create the key claims of neuro-inspired ML papers, one command each.",
    )
    parser.add_argument("--version", action="version", version=f"neuronkit-common {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_list = sub.add_parser("list", help="list the installed reproductions")
    p_list.add_argument("--json", action="store_true", help="print a JSON array")

    p_info = sub.add_parser("info", help="show a reproduction's paper, claim and checks")
    p_info.add_argument("id", metavar="ID")
    p_info.add_argument("--json", action="store_true", help="print a JSON object")

    p_run = sub.add_parser("reproduce", help="run reproductions and check their claims")
    p_run.add_argument("ids", nargs="+", metavar="ID", help="ids, package names, or 'all'")
    p_run.add_argument("--quick", action="store_true", help="small version (~30 s each on 2 cores)")
    seeding = p_run.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=_seed, default=None, help="seed (default: each one's own)")
    seeding.add_argument(
        "--seeds",
        type=_seed_list,
        default=None,
        metavar="SEEDS",
        help="run at each of several seeds, e.g. 0-4 or 0,3,7: one folder per seed "
        "(DIR/seed-N) and a survey of every check over the seeds (DIR/seeds.md, seeds.json)",
    )
    p_run.add_argument(
        "--out",
        type=_out_path,
        default=Path("neuronkit-results"),
        metavar="DIR",
        help="output folder (default: ./neuronkit-results)",
    )
    p_run.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p_run.add_argument("--force", action="store_true", help="rerun ids that already finished")
    p_run.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    return parser


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**32), got {value}")
    return value


def _out_path(text: str) -> Path:
    """``--out``: a folder, ``~`` meaning the home folder also where the shell leaves it
    (``--out=~/x``, ``'~/x'``)."""
    if not text:
        raise argparse.ArgumentTypeError("--out must name a folder, got ''")
    return Path(os.path.expanduser(text))


MAX_SEEDS = 1000


def _seed_list(text: str) -> list[int]:
    """``"0-4"`` or ``"0,3,7"`` (or a mix) -> distinct seeds in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            lo = _seed(first)
            hi = _seed(last) if sep else lo
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"--seeds takes integers and ranges such as 0-4 or 0,3,7, got {text!r}"
            ) from None
        if hi < lo:
            raise argparse.ArgumentTypeError(f"--seeds range {part.strip()!r} runs backwards")
        if len(seeds) + hi - lo >= MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"--seeds names more than {MAX_SEEDS} seeds")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def _resolve(names: Sequence[str], registry: dict[str, ReproductionInfo]) -> list[ReproductionInfo]:
    """Expand ids, package names and ``all`` into reproductions, in order, without repeats."""
    packages = {info.package for info in registry.values()}
    chosen: dict[str, ReproductionInfo] = {}
    for name in names:
        if name == "all":
            chosen.update(registry)
        elif name in registry:
            chosen[name] = registry[name]
        elif name in packages:
            chosen.update({k: v for k, v in registry.items() if v.package == name})
        else:
            raise UsageError(_unknown(name, registry))
    return list(chosen.values())


def _unknown(name: str, registry: dict[str, ReproductionInfo]) -> str:
    by_lower = {rid.lower(): rid for rid in registry}  # THEORY.X suggests theory.x
    close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if not registry:
        hint = "; no reproductions are installed (install a neuronkit package)"
    return f"unknown reproduction id {name!r}{hint} (see `neuronkit list`)"


def _cmd_list(args: argparse.Namespace) -> int:
    registry = discover()
    if args.json:
        _print_out(json.dumps([info.as_dict() for info in registry.values()], indent=2))
        return EXIT_OK
    if not registry:
        _print_out("no reproductions installed: install a package such as neuronkit-snn")
        return EXIT_OK
    width = max(len(i) for i in registry)
    lines = []
    for info in registry.values():
        lines.append(f"{info.id:<{width}}  {info.package:<16}  {info.spec.paper}")
        lines.append(f"{'':<{width}}  claim: {info.spec.claim}")
    lines.append(
        f"\n{len(registry)} reproductions; `neuronkit info ID` shows the claim and its checks"
    )
    _print_out("\n".join(lines))
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    registry = discover()
    if args.id not in registry:
        raise UsageError(_unknown(args.id, registry))
    info = registry[args.id]
    if args.json:
        _print_out(json.dumps(info.as_dict(), indent=2))
        return EXIT_OK
    spec = info.spec
    _print_out(
        "\n".join(
            [
                f"{spec.id}  ({info.distribution} {info.version})",
                f"paper:  {spec.paper}",
                f"claim:  {spec.claim}",
                f"seed:   {spec.seed}",
                "checks:",
                *(f"  {check}" for check in spec.checks),
                f"run:    neuronkit reproduce {spec.id} --quick",
            ]
        )
    )
    return EXIT_OK


def _cmd_reproduce(args: argparse.Namespace) -> int:
    registry = discover()
    selected = _resolve(args.ids, registry)
    out: Path = args.out
    _prepare_out(out)
    say = (
        (lambda msg: None)
        if args.no_progress
        else (lambda msg: print(msg, file=sys.stderr, flush=True))
    )
    if not selected:
        say("no reproductions installed: nothing to run")
    if args.seeds is not None:
        return _reproduce_over_seeds(selected, args, say)
    outcome = _run_selected(selected, args, args.seed, out, say)
    if outcome is None:
        return EXIT_ERROR
    results, errors, reused = outcome
    if len(selected) > 1 or "all" in args.ids:
        _write_summary(out, results, errors, reused)
    table = _summary_table(results, errors, reused)
    if args.json:  # one object per id: a result (with "reused"), or {"id", "error"}
        rows = [{**r.to_dict(), "reused": r.id in reused} for r in results]
        _print_out(json_text(rows + [{"id": rid, "error": msg} for rid, msg in errors.items()]))
        print(table, file=sys.stderr)
    else:
        _print_out(table)
    if errors:
        return EXIT_ERROR
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _prepare_out(out: Path) -> None:
    """Create the output folder, or say in one line naming --out why it cannot be used:
    checked before anything runs (a read-only folder failed only per id, after the imports)."""
    where = repr(str(out))
    try:
        if out.is_symlink() and not out.exists():
            raise UsageError(f"--out {where} is a broken symbolic link (to {os.readlink(out)!r})")
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out must be a folder, got the file {where}")
        out.mkdir(parents=True, exist_ok=True)  # fails if a missing one's parent is read-only
    except OSError as err:
        raise UsageError(f"--out {where} cannot be created ({err})") from err
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {where} is not writable")


def _run_selected(
    selected: list[ReproductionInfo],
    args: argparse.Namespace,
    seed: int | None,
    out: Path,
    say: Callable[[str], None],
) -> tuple[list[Result], dict[str, str], list[str]] | None:
    """Run (or reuse) each selected reproduction into ``out``; None if interrupted."""
    results: list[Result] = []
    errors: dict[str, str] = {}
    reused: list[str] = []
    for n, info in enumerate(selected, 1):
        run_seed = info.spec.seed if seed is None else seed
        previous = None if args.force else load_result(out, info.id)
        if previous is not None and _still_current(previous, info, args.quick, run_seed):
            say(f"[{n}/{len(selected)}] {info.id}: finished earlier, reusing (--force reruns)")
            results.append(previous)
            reused.append(info.id)
            continue
        mode = "quick" if args.quick else "full"
        say(f"[{n}/{len(selected)}] {info.id}: running ({mode}, seed {run_seed})")
        try:
            result = run_reproduction(
                info.spec,
                load(info),
                package=info.package,
                quick=args.quick,
                seed=run_seed,
                out_root=out,
                show_progress=False if args.no_progress else None,  # None: bars only on a terminal
                version=info.version,
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see main): not progress, always said
            _warn(f"interrupted during {info.id}; run the same command again to resume")
            return None
        except Exception as err:  # a broken reproduction must not stop the others
            errors[info.id] = f"{type(err).__name__}: {err}"
            _warn(f"[{n}/{len(selected)}] {info.id}: ERROR {errors[info.id]}")
            if not args.no_progress:
                traceback.print_exc(file=sys.stderr)
            continue
        results.append(result)
        say(
            f"[{n}/{len(selected)}] {info.id}: {'passed' if result.passed else 'FAILED'} "
            f"in {result.seconds:.1f} s -> {out / info.id / 'report.md'}"
        )
    return results, errors, reused


def _reproduce_over_seeds(
    selected: list[ReproductionInfo], args: argparse.Namespace, say: Callable[[str], None]
) -> int:
    """``--seeds``: each seed into ``DIR/seed-N`` (resumable), then a survey of every check."""
    runs: dict[int, tuple[list[Result], dict[str, str]]] = {}
    for seed in args.seeds:
        say(f"== seed {seed} ==")
        outcome = _run_selected(selected, args, seed, args.out / f"seed-{seed}", say)
        if outcome is None:
            return EXIT_ERROR
        runs[seed] = outcome[0], outcome[1]
    survey = _seed_survey(selected, runs, quick=args.quick)
    from .report import render_seed_survey

    atomic_write_json(args.out / "seeds.json", survey)
    atomic_write_text(args.out / "seeds.md", render_seed_survey(survey))
    table = _survey_table(survey)
    if args.json:
        _print_out((args.out / "seeds.json").read_text(), end="")
        print(table, file=sys.stderr)
    else:
        _print_out(table)
    if any(entry["errors"] for entry in survey["reproductions"]):
        return EXIT_ERROR
    held_everywhere = all(e["held"] == len(e["seeds"]) for e in survey["reproductions"])
    return EXIT_OK if held_everywhere else EXIT_FAILED


def _seed_survey(
    selected: list[ReproductionInfo],
    runs: dict[int, tuple[list[Result], dict[str, str]]],
    *,
    quick: bool,
) -> dict[str, Any]:
    """Per reproduction and check: the value at each seed, mean, standard deviation, holds."""
    entries = []
    for info in selected:
        by_seed = {
            seed: r for seed, (results, _) in runs.items() for r in results if r.id == info.id
        }
        checks = []
        for check in info.spec.checks:
            # every finished (or reused, see _still_current) run holds every declared check
            found = [next(c for c in r.checks if c.name == check.name) for r in by_seed.values()]
            finite = [c.value for c in found if math.isfinite(c.value)]
            checks.append(
                {
                    "name": check.name,
                    "comparison": check.comparison,
                    "threshold": check.threshold,
                    "values": [c.value for c in found],
                    "mean": statistics.fmean(finite) if finite else math.nan,
                    "sd": statistics.stdev(finite) if len(finite) > 1 else math.nan,
                    "held": sum(c.passed for c in found),
                }
            )
        entries.append(
            {
                "id": info.id,
                "seeds": list(by_seed),
                "held": sum(r.passed for r in by_seed.values()),
                "seconds": [r.seconds for r in by_seed.values()],
                "checks": checks,
                "errors": {
                    str(seed): errors[info.id]
                    for seed, (_, errors) in runs.items()
                    if info.id in errors
                },
            }
        )
    return {"quick": quick, "seeds": list(runs), "reproductions": entries}


def _survey_table(survey: dict[str, Any]) -> str:
    lines = []
    for e in survey["reproductions"]:
        checks = ", ".join(
            f"{c['name']} {c['mean']:.3g}+-{c['sd']:.2g} ({c['held']}/{len(e['seeds'])})"
            for c in e["checks"]
        )
        error_note = f", {len(e['errors'])} errors" if e["errors"] else ""
        lines.append(f"{e['id']}  held at {e['held']} of {len(e['seeds'])} seeds{error_note}")
        lines.append(f"    {checks}")
    return "\n".join(lines) if lines else "nothing was run"


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _print_out(text: str, end: str = "\n") -> None:
    """Print ``text`` on stdout. A reader that stopped reading (``neuronkit list | head -1``)
    is not an error: the rest of the output goes to devnull (the recipe in Python's
    documentation of SIGPIPE) and the command's exit status stands."""
    try:
        print(text, end=end, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # also for what Python flushes at exit
        os.close(devnull)


def _tolerate_unencodable_output() -> None:
    """Write what the terminal's encoding lacks (a non-ASCII paper title under LANG=C) as
    backslash escapes rather than fail with UnicodeEncodeError; the encoding is kept."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _write_summary(
    out: Path, results: list[Result], errors: dict[str, str], reused: list[str]
) -> None:
    from .report import render_summary

    atomic_write_text(out / "summary.md", render_summary(results, errors, reused))
    atomic_write_json(
        out / "summary.json",
        {
            "passed": sum(r.passed for r in results),
            "failed": sum(not r.passed for r in results),
            "errors": errors,
            "results": [
                {
                    "id": r.id,
                    "reused": r.id in reused,
                    "passed": r.passed,
                    "quick": r.quick,
                    "seed": r.seed,
                    "seconds": r.seconds,
                    "checks": {c.name: c.value for c in r.checks},
                }
                for r in results
            ],
        },
    )


def _still_current(previous: Result, info: ReproductionInfo, quick: bool, seed: int) -> bool:
    """Whether a finished result answers this run: the same mode and seed, made by the
    installed version of the package, against the same checks and thresholds."""
    return (
        previous.quick == quick
        and previous.seed == seed
        and previous.environment.get("package_version") == info.version
        and [(c.name, c.comparison, c.threshold) for c in previous.checks]
        == [(c.name, c.comparison, c.threshold) for c in info.spec.checks]
    )


def _summary_table(results: list[Result], errors: dict[str, str], reused: list[str]) -> str:
    rows = [
        (
            r.id,
            "passed" if r.passed else "FAILED",
            "reused" if r.id in reused else f"{r.seconds:.1f}s",
            ", ".join(f"{c.name}={c.value:.3g}{'' if c.passed else '!'}" for c in r.checks),
        )
        for r in results
    ]
    rows += [(rid, "ERROR", "", msg[:80]) for rid, msg in errors.items()]
    if not rows:
        return "nothing was run"
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows
    ]
    n_pass = sum(r.passed for r in results)
    lines.append(f"{n_pass} passed, {len(results) - n_pass} failed, {len(errors)} errors")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neuronkit`` command; returns the exit status."""
    _tolerate_unencodable_output()
    args = _parser().parse_args(argv)
    commands = {"list": _cmd_list, "info": _cmd_info, "reproduce": _cmd_reproduce}
    previous = signal.getsignal(signal.SIGTERM)
    if args.command == "reproduce":  # a terminated run cleans up as after Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return commands[args.command](args)
    except UsageError as err:
        print(f"neuronkit: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except RegistryError as err:
        print(f"neuronkit: broken reproduction registry: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # a summary or survey that cannot be written
        print(f"neuronkit: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:  # a bug: exit status 1 would claim that a claim failed
        traceback.print_exc()
        return EXIT_ERROR
    finally:
        if args.command == "reproduce":
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
