"""The ``show_progress`` bars of the long training loops (``neuronkit.common.progress``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from neuronkit.common.testing import progress_bar_problems
from neuronkit.snn.training import cnn_ann, iir_cnn, train_ann, train_at_latency


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread (on a shared CPU extra threads only spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(8) % 10


def _latency(**kw: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    model = iir_cnn(channels=(4, 4), hidden=8, seed=0, threshold=0.3)
    losses = train_at_latency(model, *_data(), T=2, epochs=2, batch_size=4, seed=0, **kw)
    return losses, model.state_dict()


def _ann(**kw: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    ann = cnn_ann(channels=(4, 4), hidden=8, seed=0)
    losses = train_ann(ann, *_data(), epochs=2, batch_size=4, seed=0, **kw)
    return losses, ann.state_dict()


CASES: dict[str, Callable[..., Any]] = {"train_at_latency": _latency, "train_ann": _ann}


LABELS: dict[str, str] = {}


@pytest.mark.parametrize("name", list(CASES))
def test_show_progress(name: str) -> None:
    assert progress_bar_problems(CASES[name], LABELS.get(name, name)) == []


def test_the_bar_leaves_the_numbers_unchanged() -> None:
    losses_on, state_on = _latency(show_progress=True)
    losses_off, state_off = _latency(show_progress=False)
    assert losses_on == losses_off
    assert len(losses_on) == 2
    assert state_on.keys() == state_off.keys()
    for k in state_on:
        assert torch.equal(state_on[k], state_off[k]), k
