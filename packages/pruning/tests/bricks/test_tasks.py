"""Tests of the synthetic multi-task data (neuronkit.pruning.bricks.tasks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.bricks.tasks import IGNORE_INDEX, TASKS, make_task_data, task_targets


def test_task_targets_known_values() -> None:
    x = np.array([[3, 1, 2, 1]])
    assert task_targets("sort", x, 10).tolist() == [[1, 1, 2, 3]]
    assert task_targets("reverse", x, 10).tolist() == [[1, 2, 1, 3]]
    assert task_targets("mirror_add", x, 10).tolist() == [[4, 3, 3, 4]]
    assert task_targets("affine", x, 10).tolist() == [[0, 4, 7, 4]]
    assert task_targets("square", x, 5).tolist() == [[4, 1, 4, 1]]
    assert task_targets("neighbor_max", x, 10).tolist() == [[3, 3, 2, 2]]
    assert task_targets("count", x, 10).tolist() == [[1, 2, 1, 2]]


def test_make_task_data_layout_and_determinism() -> None:
    tasks = ("sort", "affine", "count")
    d = make_task_data(tasks, 20, seq_len=5, n_digits=7, seed=3)
    assert d.tokens.shape == (60, 6)
    assert d.targets.shape == (60, 6)
    assert d.vocab_size == 10
    assert d.seq_len == 6
    assert len(d) == 60
    assert torch.equal(d.tokens[:, 0], 7 + d.task_ids)
    assert bool((d.targets[:, 0] == IGNORE_INDEX).all())
    for k, name in enumerate(tasks):
        sub = d.task(name)
        assert bool((sub.task_ids == k).all())
        assert len(sub) == 20
        want = task_targets(name, sub.tokens[:, 1:].numpy(), 7)
        assert np.array_equal(sub.targets[:, 1:].numpy(), want)
    again = make_task_data(tasks, 20, seq_len=5, n_digits=7, seed=3)
    assert torch.equal(d.tokens, again.tokens)
    other = make_task_data(tasks, 20, seq_len=5, n_digits=7, seed=4)
    assert not torch.equal(d.tokens, other.tokens)


def test_every_task_is_registered_and_in_range() -> None:
    x = np.random.default_rng(0).integers(0, 9, size=(50, 7))
    for name in TASKS:
        y = task_targets(name, x, 9)
        assert y.shape == x.shape
        assert y.min() >= 0
        assert y.max() < 9


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="tasks"):
        make_task_data(["nope"], 5)
    with pytest.raises(ValueError, match="tasks"):
        make_task_data(["sort", "sort"], 5)
    with pytest.raises(TypeError, match="tasks"):
        make_task_data("sort", 5)
    with pytest.raises(ValueError, match="n_per_task"):
        make_task_data(["sort"], 0)
    with pytest.raises(ValueError, match="x must hold digits"):
        task_targets("sort", np.array([[0, 12]]), 10)
    with pytest.raises(ValueError, match="task"):
        task_targets("bogus", np.array([[0, 1]]), 10)
    d = make_task_data(["sort"], 3)
    with pytest.raises(ValueError, match="name_or_id"):
        d.task(2)
