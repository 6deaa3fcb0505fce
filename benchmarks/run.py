"""Run the side-by-side benchmarks under benchmarks/<package>/ (nox session `bench`).

Each benchmark is a script `benchmarks/<package>/bench_*.py` that first proves the libraries
compute the same thing, then times them (median of repeats, fixed thread count, each library in
its own process) and writes `benchmarks/results/<name>.json`. Pass names to run a subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("*/bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in str(s) for a in argv)]
    if not scripts:
        print("no benchmarks yet: they arrive with the package issues (see benchmarks/README.md)")
        return 0
    failed = 0
    for script in scripts:
        print(f"== {script.relative_to(HERE)}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
