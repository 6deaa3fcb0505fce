"""Write the last quick results from a results folder into docs/papers.md.

    uv run neuronkit reproduce all --quick --out neuronkit-results
    uv run python tools/update_papers_table.py neuronkit-results

For every `<DIR>/<id>/result.json` of a quick run, the row of `<id>` gets its status set to
`done` and its last column set to the checks' values, pass/fail and the run date. Rows of
reproductions that have no quick result are left as they are.
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


def main(results_dir: str) -> int:
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
