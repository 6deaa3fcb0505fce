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


class _LogitsAndInput(torch.nn.Module):
    """``x [B, 2] -> (logits [B, 3], x)``: a model whose output is a tuple, not a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.f = torch.nn.Linear(2, 3)

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.f(v), v


@pytest.fixture
def tuple_model() -> torch.nn.Module:
    """A model returning a tuple (for the "model must return a tensor" errors)."""
    return _LogitsAndInput()
