"""Test settings for neuronkit-theory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The models here are tiny: one intra-op thread is fastest and does not slow to a crawl
    when the CI machine's cores are shared. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
