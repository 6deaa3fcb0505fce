"""The README's examples and the docstrings' ``>>>`` examples run as written."""

from pathlib import Path

import pytest

from neuronkit.common.testing import run_docstring_examples, run_readme_examples

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes lands here
    assert run_readme_examples(README) >= 1


def test_docstring_examples_run() -> None:
    assert run_docstring_examples("neuronkit.snn") >= 1
