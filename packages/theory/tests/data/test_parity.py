"""N-parity and N-DMS sequence generators."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory.data.parity import (
    binary_sequences,
    dms_labels,
    memory_task,
    n_dms,
    n_parity,
    parity_labels,
    task_length,
)


def _reference_parity(x: torch.Tensor, n: int) -> torch.Tensor:
    bits = x[:, :, 0].T.tolist()  # [B, T]
    return torch.tensor([sum(b[-n:]) % 2 for b in bits])


def _reference_dms(x: torch.Tensor, n: int) -> torch.Tensor:
    bits = x[:, :, 0].T.tolist()
    return torch.tensor([int(b[-n] == b[-1]) for b in bits])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(2, 9), min_size=1, max_size=4, unique=True),
    st.integers(1, 8),
    st.integers(0, 10_000),
)
def test_labels_match_a_loop_reference(ns: list[int], batch: int, seed: int) -> None:
    x = binary_sequences(12, batch, p=0.5, seed=seed)
    par = parity_labels(x, ns)
    dms = dms_labels(x, ns)
    assert par.shape == dms.shape == (len(ns), batch)
    assert par.dtype == dms.dtype == torch.int64
    for k, n in enumerate(ns):
        assert torch.equal(par[k], _reference_parity(x, n))
        assert torch.equal(dms[k], _reference_dms(x, n))


def test_known_values() -> None:
    x = torch.tensor([1.0, 0, 1, 1, 0, 1]).reshape(6, 1, 1)
    assert parity_labels(x, [1, 2, 3, 4, 6]).flatten().tolist() == [1, 1, 0, 1, 0]
    # bits ... 1 1 0 1: N=2 compares 0 vs 1, N=3 compares 1 vs 1, N=4 compares 1 vs 1
    assert dms_labels(x, [2, 3, 4, 5]).flatten().tolist() == [0, 1, 1, 0]


def test_parity_flips_with_the_newest_bit_only_when_inside_the_window() -> None:
    x = binary_sequences(10, 64, p=0.5, seed=1)
    flipped = x.clone()
    flipped[0] = 1 - flipped[0]  # oldest bit, outside every window of N <= 9
    assert torch.equal(parity_labels(x, [3, 9]), parity_labels(flipped, [3, 9]))
    flipped = x.clone()
    flipped[-1] = 1 - flipped[-1]
    assert bool((parity_labels(x, [3, 9]) != parity_labels(flipped, [3, 9])).all())


def test_memory_task_lengths_and_seeding() -> None:
    # LevinaLab/rnn_timescale_public (main) src/tasks/tasks.py: M in [N + 2, N + 2 + 3 N) for
    # parity as for DMS
    for task, spread in (("parity", 3.0), ("dms", 3.0)):
        lengths = {task_length(task, 6, seed=s) for s in range(200)}
        assert min(lengths) == 8
        assert max(lengths) == int(8 + spread * 6) - 1
    a = n_parity([2, 3, 4], 16, seed=5)
    b = memory_task("parity", [2, 3, 4], 16, seed=5)
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.labels, b.labels)
    assert a.ns == (2, 3, 4)
    assert a.batch_size == 16
    assert a.length == a.x.shape[0] >= 6
    d = n_dms([2, 5], 4096, length=7, seed=0)
    assert d.x.shape == (7, 4096, 1)
    assert abs(float(d.x.mean()) - 0.5) < 0.02  # DMS bits are balanced
    assert abs(float(d.labels.float().mean()) - 0.5) < 0.03


def test_parity_bits_draw_one_random_p_per_sequence() -> None:
    # reference code: generate_binary_sequence draws its own p ~ U(0, 1) for every sequence
    x = binary_sequences(400, 64, seed=0)
    per_seq = x[..., 0].mean(dim=0)
    assert float(per_seq.max() - per_seq.min()) > 0.7  # sequences of one batch differ in p
    batch_means = [float(binary_sequences(200, 256, seed=s).mean()) for s in range(20)]
    assert max(batch_means) - min(batch_means) < 0.15  # so batches look alike on average
    x = binary_sequences(1000, 10, p=0.2, seed=0)
    assert abs(float(x.mean()) - 0.2) < 0.02
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}


def test_bad_inputs() -> None:
    x = binary_sequences(5, 3, seed=0)
    with pytest.raises(ValueError, match="ns"):
        parity_labels(x, [])
    with pytest.raises(TypeError, match="ns"):
        parity_labels(x, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max"):
        parity_labels(x, [6])
    with pytest.raises(ValueError, match="N >= 2"):
        dms_labels(x, [1])
    with pytest.raises(ValueError, match=r"\[T, B, 1\]"):
        parity_labels(x[..., 0], [2])
    with pytest.raises(ValueError, match="binary"):
        parity_labels(x + 0.5, [2])
    with pytest.raises(ValueError, match="task"):
        memory_task("copy", [2], 4)
    with pytest.raises(ValueError, match="length"):
        n_parity([4], 2, length=3)
    with pytest.raises(ValueError, match="p"):
        binary_sequences(4, 2, p=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        binary_sequences(4, 0)
    with pytest.raises(ValueError, match="n_max"):
        task_length("parity", 0)


def test_memory_task_parity_draws_p_per_sequence() -> None:
    # the docstring said per batch: each sequence has its own p ~ U(0, 1)
    x = memory_task("parity", [2], 2000, length=400, seed=0).x[:, :, 0]
    means = x.mean(dim=0)  # [batch]: per-sequence rate of ones
    assert float(means.std()) > 0.2  # U(0, 1): 0.29; one p per batch: ~0.02


@pytest.mark.parametrize("task", ["parity", "dms"])
def test_memory_task_labels_are_those_of_the_checked_label_functions(task: str) -> None:
    # memory_task labels its own binary draws without checking them again
    label = parity_labels if task == "parity" else dms_labels
    for seed, ns in enumerate([(2,), (2, 3, 4, 5), (5, 2, 9), (7,)]):
        data = memory_task(task, ns, 33, seed=seed)
        assert data.labels.dtype == torch.int64
        assert torch.equal(data.labels, label(data.x, ns))
    # the same stream as drawing the length and then the sequences by hand
    gen = torch.Generator().manual_seed(3)
    length = task_length("parity", 6, seed=gen)
    x = binary_sequences(length, 9, seed=gen)
    assert torch.equal(memory_task("parity", [4, 6], 9, seed=3).x, x)


def test_memory_task_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        memory_task("parity", [2], 0)
    with pytest.raises(ValueError, match="p"):
        memory_task("parity", [2], 4, p=-0.1)
    with pytest.raises(ValueError, match="N >= 2"):
        memory_task("dms", [1, 3], 4)
    with pytest.raises(TypeError, match="ns"):
        memory_task("parity", 3, 4)  # type: ignore[arg-type]
