"""Fixtures shared by neuronkit-snn's tests."""

import pytest

from neuronkit.snn import native_status


@pytest.fixture
def compiled() -> None:
    """Skip unless the compiled loops are in use (a C compiler found, the bit check passed)."""
    if not native_status().startswith("compiled"):
        pytest.skip(f"the compiled loops are not in use here: {native_status()}")
