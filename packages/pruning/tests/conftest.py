"""Fixtures shared by the pruning tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread (on a shared CPU extra threads only spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
