"""Tests of ENAS / random search with weight sharing (neuronkit.pruning.nas.search)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from neuronkit.pruning.lottery import TrainConfig
from neuronkit.pruning.nas import (
    Architecture,
    CellSpace,
    ReinforceConfig,
    SearchConfig,
    enas_search,
    final_evaluation,
    random_search,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _task(n: int = 240, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Linearly separable 3-class blobs in 6 dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.randn(3, 6, generator=g) * 3
    x = centers[y] + torch.randn(n, 6, generator=g)
    return x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :]


SPACE = CellSpace(num_nodes=3)
CFG = SearchConfig(
    epochs=3,
    shared_steps=8,
    batch_size=16,
    hidden=8,
    controller_hidden=8,
    controller_steps=3,
    controller_batch=4,
    reward_batch=32,
    num_candidates=5,
    memory_capacity=4,
    memory_batch=4,
    memory_fill_epoch=0,
    memory_start_epoch=1,
    reinforce=ReinforceConfig(lr=0.01),
)


def test_searches_are_seeded_and_return_the_best_candidate() -> None:
    xtr, ytr, xv, yv = _task()
    a = enas_search(SPACE, xtr, ytr, xv, yv, CFG, seed=1)
    b = enas_search(SPACE, xtr, ytr, xv, yv, CFG, seed=1)
    assert a.method == "enas"
    assert a.controller is not None
    assert a.buffer is None
    assert a.candidates == b.candidates
    assert a.best == b.best
    assert torch.equal(a.scores, b.scores)
    assert a.best == a.candidates[int(a.scores.argmax())]
    assert a.best_score == pytest.approx(float(a.scores.max()))
    assert len(a.history["shared_loss"]) == len(a.history["reward"]) == CFG.epochs
    r = random_search(SPACE, xtr, ytr, xv, yv, CFG, seed=1)
    assert r.method == "random"
    assert r.controller is None
    assert r.history["reward"] == []
    assert r.best_score == pytest.approx(float(r.scores.max()))
    # the shared weights learn the easy task (uniform cells)
    assert r.history["shared_loss"][-1] < r.history["shared_loss"][0]


def test_memory_search_fills_the_buffer_and_adds_the_reconstruction_loss() -> None:
    xtr, ytr, xv, yv = _task()
    m = enas_search(SPACE, xtr, ytr, xv, yv, dataclasses.replace(CFG, memory_policy="best"), seed=0)
    assert m.method == "enas+memory"
    assert m.buffer is not None
    assert 1 <= len(m.buffer) <= CFG.memory_capacity
    assert m.history["memory_loss"][0] == 0.0  # before memory_start_epoch
    assert all(v > 0 for v in m.history["memory_loss"][1:])


def test_final_evaluation_trains_the_cell_from_scratch() -> None:
    xtr, ytr, xte, yte = _task(seed=3)
    arch = Architecture((1, 0, 3), (0, 1))
    cfg = TrainConfig(iterations=60, batch_size=16, lr=0.05)
    acc = final_evaluation(SPACE, arch, xtr, ytr, xte, yte, hidden=8, train_config=cfg, seed=2)
    assert acc > 0.8
    again = final_evaluation(SPACE, arch, xtr, ytr, xte, yte, hidden=8, train_config=cfg, seed=2)
    assert acc == again


def test_bad_inputs() -> None:
    xtr, ytr, xv, yv = _task()
    with pytest.raises(ValueError, match="memory_policy"):
        SearchConfig(memory_policy="fifo")
    with pytest.raises(ValueError, match="memory_start_epoch"):
        SearchConfig(memory_fill_epoch=3, memory_start_epoch=1)
    with pytest.raises(ValueError, match="epochs"):
        SearchConfig(epochs=0)
    with pytest.raises(ValueError, match="y_train"):
        random_search(SPACE, xtr, ytr.float(), xv, yv, CFG)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x_val"):
        random_search(SPACE, xtr, ytr, xv[:, :4], yv, CFG)
    with pytest.raises(ValueError, match="finite"):
        enas_search(SPACE, xtr * float("nan"), ytr, xv, yv, CFG)
    with pytest.raises(TypeError, match="config"):
        enas_search(SPACE, xtr, ytr, xv, yv, "cfg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nodes"):
        final_evaluation(SPACE, Architecture((0, 0), (0,)), xtr, ytr, xv, yv)


TINY = SearchConfig(
    epochs=1,
    shared_steps=2,
    batch_size=8,
    hidden=4,
    controller_hidden=4,
    controller_steps=1,
    controller_batch=2,
    reward_batch=8,
    num_candidates=2,
)


@pytest.mark.parametrize("search", [random_search, enas_search])
def test_searches_build_the_supernet_in_the_dtype_of_x(search) -> None:
    """float64 inputs failed with a bare matmul dtype mismatch (a float32 supernet)."""
    xtr, ytr, xv, yv = (t[:16] for t in _task(64))
    result = search(SPACE, xtr.double(), ytr, xv.double(), yv, TINY, seed=0)
    assert all(p.dtype == torch.float64 for p in result.supernet.parameters())
    assert 0.0 <= result.best_score <= 1.0
    with pytest.raises(TypeError, match="x_train must be a floating-point tensor"):
        search(SPACE, xtr.long(), ytr, xv.long(), yv, TINY)
    with pytest.raises(TypeError, match="x_val must have x_train's dtype"):
        search(SPACE, xtr.double(), ytr, xv, yv, TINY)


def test_final_evaluation_trains_in_the_dtype_of_x() -> None:
    xtr, ytr, xte, yte = _task(seed=3)
    arch = Architecture((1, 0, 3), (0, 1))
    cfg = TrainConfig(iterations=5, batch_size=16, lr=0.05)
    acc = final_evaluation(
        SPACE, arch, xtr.double(), ytr, xte.double(), yte, hidden=4, train_config=cfg
    )
    assert 0.0 <= acc <= 1.0
    with pytest.raises(TypeError, match="x_test"):
        final_evaluation(SPACE, arch, xtr.double(), ytr, xte, yte, hidden=4, train_config=cfg)


def test_searches_ignore_the_callers_grad_mode_and_leave_their_inputs_alone() -> None:
    """Under torch.no_grad() the supernet training failed with torch's own message; inputs
    that require grad got their ``.grad`` filled."""
    xtr, ytr, xv, yv = _task()
    cfg = dataclasses.replace(CFG, epochs=1)
    ref = enas_search(SPACE, xtr, ytr, xv, yv, cfg, seed=1)
    leaf = xtr.clone().requires_grad_(True)
    with torch.no_grad():
        res = enas_search(SPACE, leaf, ytr, xv, yv, cfg, seed=1)
        random_search(SPACE, leaf, ytr, xv, yv, cfg, seed=1)
    assert leaf.grad is None
    assert res.candidates == ref.candidates
    assert torch.equal(res.scores, ref.scores)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^random_search needs"):
        random_search(SPACE, xtr, ytr, xv, yv, cfg, seed=1)
