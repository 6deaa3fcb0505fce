"""Helpers for package test suites (import only from tests; needs nothing beyond common)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from .registry import reproduce
from .reproduction import Result

__all__ = ["assert_quick_reproduction", "devices"]


def assert_quick_reproduction(
    reproduction_id: str, out: str | Path, known_failing: Collection[str] = ()
) -> Result:
    """Run ``reproduction_id`` in quick mode under ``out`` and assert that it held.

    Every check must pass except those named in ``known_failing`` (checks whose paper effect
    does not show at quick scale; they still run and are reported), and the run must have
    written its ``result.json`` and at least one figure. Returns the result.
    """
    result = reproduce(reproduction_id, quick=True, out=out)
    failed = {
        c.name: f"{c.value:.4g} (needs {c.comparison} {c.threshold:g})"
        for c in result.checks
        if not c.passed
    }
    unexpected = set(failed) - set(known_failing)
    assert not unexpected, f"{reproduction_id} failed: {failed}"
    assert (Path(out) / reproduction_id / "result.json").is_file(), "no result.json written"
    assert result.figures, f"{reproduction_id} saved no figure"
    return result


def devices() -> list[Any]:
    """Pytest parameters for device tests: ``"cpu"`` always, and ``"cuda"``, skipped with a
    reason where torch sees no CUDA device (use with ``pytest.mark.parametrize("device",
    devices())``)."""
    import pytest
    import torch

    reason = "needs a CUDA device (torch.cuda.is_available() is False)"
    cuda = pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=reason)
    )
    return ["cpu", cuda]
