"""The quick reproductions of neuronkit-pruning hold (each ~10-30 s on 2 CPU cores)."""

import pytest

from neuronkit.common import reproduce

IDS = [
    "pruning.spa",
]


@pytest.mark.reproduction
@pytest.mark.slow
@pytest.mark.parametrize("reproduction_id", IDS)
def test_quick_reproduction_holds(reproduction_id: str, tmp_path) -> None:
    result = reproduce(reproduction_id, quick=True, out=tmp_path)
    failed = [
        f"{c.name}={c.value:.4g} (needs {c.comparison} {c.threshold:g})"
        for c in result.checks
        if not c.passed
    ]
    assert result.passed, f"{reproduction_id} failed: {failed}"
    assert (tmp_path / reproduction_id / "result.json").is_file()
    assert result.figures
