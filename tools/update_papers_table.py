"""Write the last quick results from a results folder into docs/papers.md.

    uv run neuronkit reproduce all --quick --out neuronkit-results
    uv run python tools/update_papers_table.py neuronkit-results

For every `<DIR>/<id>/result.json` of a quick run, the row of `<id>` gets its status set to
`done` and its last column set to the checks' values, pass/fail and the run date. Rows of
reproductions that have no quick result are left as they are.

A folder written by `neuronkit reproduce all --quick --seeds 0-4` (it holds `seeds.json`)
instead replaces the "Seed survey" section at the end of the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from neuronkit.common import atomic_write_text

TABLE = Path(__file__).resolve().parents[1] / "docs" / "papers.md"


def summarize(result: dict) -> str:
    checks = ", ".join(
        f"{c['name']}={c['value']:.3g}{'' if c['passed'] else ' (fail)'}" for c in result["checks"]
    )
    verdict = "passed" if result["passed"] else "FAILED"
    return f"{verdict}: {checks} ({result['finished_at'][:10]})"


SURVEY_HEADING = "## Seed survey"


def survey_section(survey: dict, date: str) -> str:
    """The "Seed survey" section: per quick reproduction, seeds held and each check's spread."""
    seeds = survey["seeds"]
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    span = f"{seeds[0]}-{seeds[-1]}" if contiguous else ",".join(map(str, seeds))
    lines = [
        SURVEY_HEADING,
        "",
        f"`neuronkit reproduce all --quick --seeds {span}` ({date}): at how many of the "
        f"{len(seeds)} seeds each quick reproduction's claim held, and each check's mean +- "
        "standard deviation over the seeds with the number of seeds it held at. The table "
        "above gives one run at each reproduction's default seed.",
        "",
        "| reproduction id | claim held at | checks: mean +- sd (seeds held) |",
        "|---|---|---|",
    ]
    for entry in survey["reproductions"]:
        checks = "; ".join(
            f"{c['name']} {c['mean']:.3g} +- {c['sd']:.2g} ({c['held']})" for c in entry["checks"]
        )
        held = f"{entry['held']} of {len(entry['seeds'])}"
        if entry["errors"]:
            held += f" ({len(entry['errors'])} errors)"
        lines.append(f"| `{entry['id']}` | {held} | {checks} |")
    return "\n".join(lines) + "\n"


def write_survey(path: Path) -> int:
    survey = json.loads(path.read_text(encoding="utf-8"))
    if not survey["quick"]:
        sys.exit(f"{path} is a survey of full runs; the section lists quick runs")
    first = path.parent / f"seed-{survey['seeds'][0]}"
    date = min(
        json.loads(p.read_text(encoding="utf-8"))["finished_at"][:10]
        for p in first.glob("*/result.json")
    )
    text = TABLE.read_text(encoding="utf-8")
    head = text.split(f"\n{SURVEY_HEADING}\n")[0].rstrip("\n")
    atomic_write_text(TABLE, head + "\n\n" + survey_section(survey, date))
    print(f"wrote the seed survey of {len(survey['reproductions'])} reproductions to {TABLE}")
    return 0


def main(results_dir: str) -> int:
    if (Path(results_dir) / "seeds.json").is_file():
        return write_survey(Path(results_dir) / "seeds.json")
    results = {}
    for path in Path(results_dir).glob("*/result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("quick"):
            results[result["id"]] = result
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    updated = 0
    for i, line in enumerate(lines):
        cells = line.split(" | ")
        if len(cells) == 7 and cells[1].strip("`") in results:
            cells[5] = "done"
            cells[6] = summarize(results[cells[1].strip("`")]) + " |"
            lines[i] = " | ".join(cells)
            updated += 1
    atomic_write_text(TABLE, "\n".join(lines) + "\n")
    print(f"updated {updated} rows of {TABLE}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
