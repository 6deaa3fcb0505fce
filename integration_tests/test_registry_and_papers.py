"""All packages together: the registry, the CLI contract, and docs/papers.md."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuronkit.common import discover, load

PAPERS_MD = Path(__file__).resolve().parents[1] / "docs" / "papers.md"
PACKAGES = [
    "snn",
    "pruning",
    "interpretability",
    "neurodecoding",
    "medimaging",
    "theory",
    "hardware",
]
REGISTRY = discover(strict=True)


def _paper_rows() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for line in PAPERS_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            rid = cells[1].strip("`")
            assert rid not in rows, f"docs/papers.md lists {rid} twice"
            rows[rid] = {"package": cells[2], "module": cells[4].strip("`"), "status": cells[5]}
    return rows


def test_papers_table_lists_all_72_papers() -> None:
    rows = _paper_rows()
    assert len(rows) == 72
    for rid, row in rows.items():
        assert rid.split(".")[0] == row["package"], rid
        assert row["package"] in PACKAGES, rid


def test_every_registered_reproduction_is_in_the_table_as_done() -> None:
    rows = _paper_rows()
    for rid in REGISTRY:
        assert rid in rows, f"{rid} is registered but missing from docs/papers.md"
        assert rows[rid]["status"] == "done", f"{rid} is registered: mark it done in papers.md"


def test_every_done_row_is_registered_and_its_module_exists() -> None:
    for rid, row in _paper_rows().items():
        if row["status"] != "done":
            continue
        assert rid in REGISTRY, f"docs/papers.md says {rid} is done but it is not registered"
        assert importlib.util.find_spec(row["module"]) is not None, row["module"]


def test_static_metadata_matches_the_decorator() -> None:
    for rid, info in REGISTRY.items():
        assert rid.split(".")[0] == info.package
        load(info)  # raises if the source-read metadata differs from the imported one


def test_listing_imports_no_torch_and_no_reproduction() -> None:
    probe = (
        "import json, sys\n"
        "from neuronkit.common.cli import main\n"
        "main(['list', '--json'])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' "
        "or '.reproductions' in m)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    listing, _, imported = proc.stdout.rstrip().rpartition("\n")
    assert [e["id"] for e in json.loads(listing)] == list(REGISTRY)
    assert json.loads(imported) == []


@pytest.mark.parametrize("name", PACKAGES)
def test_packages_import_together_with_their_own_versions(name: str) -> None:
    module = importlib.import_module(f"neuronkit.{name}")
    assert module.__version__ == importlib.metadata.version(f"neuronkit-{name}")
    assert re.fullmatch(r"\d+\.\d+\.\d+", module.__version__)
    namespace = Path(module.__file__).parents[1]
    assert not (namespace / "__init__.py").exists()


@pytest.mark.parametrize("name", ["common", *PACKAGES])
def test_the_front_readme_gives_each_package_its_installed_version(name: str) -> None:
    readme = (PAPERS_MD.parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if f"| `neuronkit.{name}` |" in line)
    status = row.rstrip(" |").rpartition("|")[2].strip()
    version = importlib.metadata.version(f"neuronkit-{name}")
    # a scaffold names no version; a released package's row starts with its own
    assert status.startswith("scaffold") or status.startswith(f"{version}:"), (name, status)
