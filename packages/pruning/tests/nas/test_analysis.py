"""Tests of the hidden-state / graph-similarity analysis (neuronkit.pruning.nas.analysis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from neuronkit.pruning.nas import (
    CellSpace,
    hidden_graph_correlation,
    hidden_state_distances,
    pairwise_graph_similarity,
    position_correlations,
    random_architectures,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_distances_match_torch_cdist() -> None:
    h = torch.randn(9, 5, generator=torch.Generator().manual_seed(0))
    d = hidden_state_distances(h)
    assert np.allclose(d, torch.cdist(h.double(), h.double()).numpy(), atol=1e-6)
    assert np.allclose(np.diag(d), 0.0)


def test_one_hot_encoding_gives_perfect_edit_correlation() -> None:
    """A hidden state that is the one-hot token sequence makes L2 distance a function of the
    Hamming distance, i.e. exactly of the edit similarity: Spearman r = 1."""
    space = CellSpace(num_nodes=5)
    archs = random_architectures(space, 40, seed=1)
    width = max(space.choices)
    onehot = np.zeros((40, space.num_decisions * width))
    for i, a in enumerate(archs):
        for t, tok in enumerate(a.to_sequence()):
            onehot[i, t * width + tok] = 1.0
    res = hidden_graph_correlation(onehot, archs, metric="edit")
    assert res.r == pytest.approx(1.0)
    assert res.n_pairs == 40 * 39 // 2
    # against a reference computation on the jaccard metric
    iu = np.triu_indices(40, k=1)
    ref = stats.spearmanr(
        -hidden_state_distances(onehot)[iu], pairwise_graph_similarity(archs)[iu]
    ).statistic
    assert hidden_graph_correlation(onehot, archs).r == pytest.approx(ref)
    pear = hidden_graph_correlation(torch.tensor(onehot), archs, method="pearson")
    assert 0.5 < pear.r <= 1.0


def test_unrelated_hidden_states_give_no_correlation_and_constant_gives_nan() -> None:
    space = CellSpace(num_nodes=6)
    archs = random_architectures(space, 60, seed=2)
    noise = torch.randn(60, 16, generator=torch.Generator().manual_seed(3))
    assert abs(hidden_graph_correlation(noise, archs).r) < 0.1
    same = torch.ones(60, 16)
    assert np.isnan(hidden_graph_correlation(same, archs).r)


def test_position_correlations_find_the_encoded_positions() -> None:
    """A hidden state that one-hot encodes only the last two tokens is seen at those two
    positions and nowhere else."""
    space = CellSpace(num_nodes=5)
    archs = random_architectures(space, 50, seed=4)
    t_last = space.num_decisions - 1
    h = np.zeros((50, 8))
    for i, a in enumerate(archs):
        seq = a.to_sequence()
        h[i, seq[t_last]] = 1.0
        h[i, 4 + seq[t_last - 1]] = 1.0
    r = position_correlations(h, archs)
    assert r.shape == (space.num_decisions,)
    assert np.isnan(r[1])  # node 1 always reads node 0
    assert r[t_last] > 0.4
    assert r[t_last - 1] > 0.4
    others = np.delete(r, [1, t_last - 1, t_last])
    assert np.all(np.abs(others) < 0.15)


def test_bad_inputs() -> None:
    space = CellSpace(num_nodes=3)
    archs = random_architectures(space, 4, seed=0)
    with pytest.raises(ValueError, match="hidden must be"):
        hidden_graph_correlation(torch.zeros(4), archs)
    with pytest.raises(ValueError, match="one entry per hidden state"):
        hidden_graph_correlation(torch.zeros(5, 2), archs)
    with pytest.raises(ValueError, match="at least 3"):
        hidden_graph_correlation(torch.zeros(2, 2), archs[:2])
    with pytest.raises(ValueError, match="finite"):
        hidden_graph_correlation(torch.full((4, 2), float("nan")), archs)
    with pytest.raises(ValueError, match="method"):
        hidden_graph_correlation(torch.zeros(4, 2), archs, method="kendall")
    with pytest.raises(TypeError, match="hidden"):
        hidden_state_distances([[0.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one entry per hidden state"):
        position_correlations(torch.zeros(3, 2), archs)
