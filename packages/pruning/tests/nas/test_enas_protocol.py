"""The pruning.enas reproduction's memory buffer is the paper's buffer of past architectures.

Adam & Lorraine store 1,000 controller samples per epoch in a buffer of up to 10,000 (then
replace 100 per epoch) and replay a random batch of it (georgeadam/menas,
src/enas_pytorch/regularized_controllers/supervised.py, train_scripts/supervised_trainer.py):
the buffer holds ten epochs' worth of sampled cells, a history of past architectures. A buffer
smaller than one epoch's samples, refreshed by every new cell, only holds the latest ones.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from neuronkit.pruning.nas import CellSpace, enas_search
from neuronkit.pruning.reproductions.enas import MEMORY_EPOCHS, enas_search_configs

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


@pytest.mark.parametrize("quick", [True, False])
def test_memory_buffer_holds_ten_epochs_of_sampled_cells(quick: bool) -> None:
    config, memory = enas_search_configs(quick)
    assert MEMORY_EPOCHS == 10
    assert config.memory_policy is None
    assert memory.memory_policy == "random"
    per_epoch = config.controller_steps * config.controller_batch
    assert memory.memory_capacity == MEMORY_EPOCHS * per_epoch
    # within the schedule the buffer never fills: it keeps every cell sampled since it opened
    assert memory.memory_capacity >= (memory.epochs - memory.memory_fill_epoch) * per_epoch
    # everything else is the vanilla schedule
    assert dataclasses.replace(memory, memory_policy=None, memory_capacity=1) == (
        dataclasses.replace(config, memory_capacity=1)
    )


def test_quick_memory_search_keeps_the_history_of_sampled_cells() -> None:
    _, memory = enas_search_configs(True)
    memory = dataclasses.replace(memory, shared_steps=2, reward_batch=16, num_candidates=2)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.arange(64) % 3
    space = CellSpace(num_nodes=4)
    res = enas_search(space, x[:32], y[:32], x[32:], y[32:], memory, seed=0)
    assert res.buffer is not None
    offered = (memory.epochs - memory.memory_fill_epoch) * memory.controller_steps
    assert len(res.buffer) == offered * memory.controller_batch
