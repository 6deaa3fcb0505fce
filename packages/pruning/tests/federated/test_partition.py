"""Dirichlet non-IID splits (neuronkit.pruning.federated.partition)."""

import numpy as np
import pytest
import torch

from neuronkit.pruning.federated.partition import dirichlet_partition

LABELS = np.repeat(np.arange(10), 50)


def test_partition_is_disjoint_covering_and_seeded() -> None:
    parts = dirichlet_partition(LABELS, 7, 0.5, seed=3, min_size=5)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(LABELS.size))
    assert min(len(p) for p in parts) >= 5
    again = dirichlet_partition(torch.tensor(LABELS), 7, 0.5, seed=3, min_size=5)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = dirichlet_partition(LABELS, 7, 0.5, seed=4, min_size=5)
    assert any(not np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def _mean_entropy(parts: list[np.ndarray]) -> float:
    out = []
    for p in parts:
        counts = np.bincount(LABELS[p], minlength=10).astype(float)
        q = counts / counts.sum()
        out.append(-(q[q > 0] * np.log(q[q > 0])).sum())
    return float(np.mean(out))


def test_small_alpha_is_more_skewed_than_large_alpha() -> None:
    skewed = _mean_entropy(dirichlet_partition(LABELS, 5, 0.1, seed=0, min_size=1))
    iid = _mean_entropy(dirichlet_partition(LABELS, 5, 1000.0, seed=0, min_size=1))
    assert skewed < iid - 0.5
    assert iid > np.log(10) - 0.05


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((LABELS, 0, 0.5), {}, ValueError, "n_clients"),
        ((LABELS, 3, 0.0), {}, ValueError, "alpha"),
        ((LABELS, 3, 0.5), {"min_size": 400}, ValueError, "min_size"),
        ((np.array([], dtype=int), 3, 0.5), {}, ValueError, "empty"),
        ((LABELS.astype(float), 3, 0.5), {}, TypeError, "integer"),
        ((LABELS.reshape(10, 50), 3, 0.5), {}, ValueError, "1-D"),
    ],
)
def test_bad_inputs(args: tuple, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        dirichlet_partition(*args, seed=0, **kwargs)


def test_impossible_min_size_gives_up_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="could not give"):
        dirichlet_partition(LABELS, 50, 0.01, seed=0, min_size=10, max_tries=3)
