"""The package's quick reproductions, run as tests (select with ``-m reproduction``)."""

from __future__ import annotations

import pytest

from neuronkit.common import reproduce


@pytest.mark.reproduction
@pytest.mark.slow
def test_trsa_quick(tmp_path) -> None:
    result = reproduce("interpretability.trsa", quick=True, out=tmp_path)
    assert result.passed, [(c.name, c.value) for c in result.checks]


@pytest.mark.reproduction
@pytest.mark.slow
def test_diffroar_quick(tmp_path) -> None:
    result = reproduce("interpretability.diffroar", quick=True, out=tmp_path)
    assert result.passed, [(c.name, c.value) for c in result.checks]
