"""Markdown reports for one reproduction and for a whole run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .reproduction import Result


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + f", ... ({len(value)} values)]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A GitHub-flavoured markdown table from dicts (columns in first-seen order)."""
    if not rows:
        return "(empty)\n"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_report(result: Result) -> str:
    """``report.md`` of one reproduction."""
    status = "PASSED" if result.passed else "FAILED"
    mode = "quick" if result.quick else "full"
    parts = [
        f"# {result.id}: {status}\n",
        f"**Paper:** {result.paper}  \n**Package:** neuronkit-{result.package}  \n"
        f"**Claim:** {result.claim}  \n**Mode:** {mode}, seed {result.seed}, "
        f"{result.seconds:.1f} s\n",
        "## Checks\n",
        markdown_table(
            [
                {
                    "check": c.name,
                    "value": c.value,
                    "needs": f"{c.comparison} {c.threshold:g}",
                    "passed": "yes" if c.passed else "**no**",
                    "meaning": c.description,
                }
                for c in result.checks
            ]
        ),
    ]
    if result.metrics:
        parts += [
            "## Metrics\n",
            markdown_table([{"metric": k, "value": v} for k, v in result.metrics.items()]),
        ]
    for table in result.tables:
        parts += [f"## {table['title']}\n", markdown_table(table["rows"])]
    if result.figures:
        parts += ["## Figures\n", "\n".join(f"![{f}]({f})" for f in result.figures) + "\n"]
    if result.notes:
        parts += ["## Notes\n", "\n\n".join(result.notes) + "\n"]
    env = ", ".join(f"{k} {v}" for k, v in result.environment.items())
    parts.append(f"---\nFinished {result.finished_at}; {env}.\n")
    return "\n".join(parts)


def render_summary(
    results: Sequence[Result], errors: dict[str, str], skipped: Sequence[str] = ()
) -> str:
    """``summary.md`` of a run over several reproductions."""
    passed = sum(r.passed for r in results)
    lines = [
        "# neuronkit reproductions\n",
        f"{passed} of {len(results)} claims held"
        + (f"; {len(errors)} failed to run" if errors else "")
        + (f"; {len(skipped)} reused from an earlier run" if skipped else "")
        + ".\n",
    ]
    rows: list[dict[str, Any]] = [
        {
            "id": f"[{r.id}]({r.id}/report.md)",
            "status": "passed" if r.passed else "**FAILED**",
            "checks": "; ".join(f"{c.name}={c.value:.3g}" for c in r.checks),
            "mode": "quick" if r.quick else "full",
            "seconds": f"{r.seconds} (reused)" if r.id in skipped else r.seconds,
        }
        for r in results
    ]
    rows += [
        {"id": rid, "status": "**ERROR**", "checks": msg, "mode": "", "seconds": ""}
        for rid, msg in errors.items()
    ]
    lines.append(markdown_table(rows))
    return "\n".join(lines)


def render_seed_survey(survey: dict[str, Any]) -> str:
    """``seeds.md`` of ``neuronkit reproduce ... --seeds``: every check at every seed."""
    seeds = survey["seeds"]
    mode = "quick" if survey["quick"] else "full"
    lines = [
        "# neuronkit seed survey\n",
        f"{mode} mode, seeds {', '.join(map(str, seeds))}; each seed's reports are in "
        "`seed-N/ID/report.md`. A check's 'held' counts the seeds where it held.\n",
    ]
    for entry in survey["reproductions"]:
        n = len(entry["seeds"])
        lines.append(f"## {entry['id']}: held at {entry['held']} of {n} seeds\n")
        rows = [
            {
                "check": f"{c['name']} {c['comparison']} {c['threshold']:g}",
                **{f"seed {s}": v for s, v in zip(entry["seeds"], c["values"])},
                "mean": c["mean"],
                "sd": c["sd"],
                "held": f"{c['held']}/{n}",
            }
            for c in entry["checks"]
        ]
        lines.append(markdown_table(rows))
        lines += [f"- seed {seed}: **ERROR** {msg}\n" for seed, msg in entry["errors"].items()]
    return "\n".join(lines)
