"""Tests of the ENAS cell space and graph similarity (neuronkit.pruning.nas.space)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.nas import (
    SIMILARITY_METRICS,
    Architecture,
    CellSpace,
    graph_similarity,
    pairwise_graph_similarity,
    random_architectures,
)


def test_space_choices_and_size() -> None:
    space = CellSpace(num_nodes=4, ops=("tanh", "relu"))
    assert space.num_decisions == 7
    assert space.choices == (2, 1, 2, 2, 2, 3, 2)
    assert space.is_op_position == (True, False, True, False, True, False, True)
    assert space.size == 2**4 * 1 * 2 * 3


def test_sequence_round_trip_and_leaves() -> None:
    space = CellSpace(num_nodes=4)
    arch = Architecture(ops=(0, 1, 2, 3), inputs=(0, 0, 2))
    seq = arch.to_sequence()
    assert seq == (0, 0, 1, 0, 2, 2, 3)
    assert Architecture.from_sequence(space, seq) == arch
    assert arch.leaves() == (1, 3)
    assert arch.edges(space) == frozenset(
        {(-1, 0, "tanh"), (0, 1, "relu"), (0, 2, "sigmoid"), (2, 3, "identity")}
    )
    assert "3:identity(2)" in arch.describe(space)


def test_random_architectures_are_seeded_and_cover_choices() -> None:
    space = CellSpace(num_nodes=5)
    a = random_architectures(space, 300, seed=3)
    b = random_architectures(space, 300, seed=3)
    assert a == b
    seqs = np.array([x.to_sequence() for x in a])
    for t, n in enumerate(space.choices):
        assert set(seqs[:, t]) == set(range(n))  # every choice appears (300 draws)


def test_graph_similarity_values() -> None:
    a = Architecture(ops=(0, 1, 2, 3), inputs=(0, 0, 2))
    b = Architecture(ops=(0, 1, 0, 3), inputs=(0, 1, 2))
    # labelled edges: a and b share (-1,0,0), (0,1,1), (2,3,3): 3 of 5 distinct edges.
    assert graph_similarity(a, b, "jaccard") == pytest.approx(3 / 5)
    assert graph_similarity(a, b, "connections") == pytest.approx(2 / 3)
    assert graph_similarity(a, b, "activations") == pytest.approx(3 / 4)
    assert graph_similarity(a, b, "edit") == pytest.approx(1 - 2 / 7)
    for m in SIMILARITY_METRICS:
        assert graph_similarity(a, a, m) == 1.0


def test_pairwise_matches_scalar_similarity() -> None:
    space = CellSpace(num_nodes=5)
    archs = random_architectures(space, 12, generator=torch.Generator().manual_seed(0))
    for m in SIMILARITY_METRICS:
        mat = pairwise_graph_similarity(archs, m)
        assert mat.shape == (12, 12)
        assert np.allclose(mat, mat.T)
        assert np.allclose(np.diag(mat), 1.0)
        for i, j in [(0, 1), (3, 7), (11, 2)]:
            assert mat[i, j] == pytest.approx(graph_similarity(archs[i], archs[j], m))


def test_bad_inputs() -> None:
    space = CellSpace(num_nodes=3)
    with pytest.raises(ValueError, match="num_nodes"):
        CellSpace(num_nodes=1)
    with pytest.raises(ValueError, match="ops"):
        CellSpace(ops=("tanh", "tanh"))
    with pytest.raises(ValueError, match="ops"):
        CellSpace(ops=("gelu",))
    with pytest.raises(ValueError, match="inputs"):
        Architecture(ops=(0, 0, 0), inputs=(0, 2))  # node 2 cannot read itself
    with pytest.raises(ValueError, match="inputs"):
        Architecture(ops=(0, 0, 0), inputs=(0,))
    with pytest.raises(ValueError, match="sequence"):
        Architecture.from_sequence(space, [0, 0, 0])
    with pytest.raises(ValueError, match=r"sequence\[1\]"):
        Architecture.from_sequence(space, [0, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="nodes"):
        Architecture(ops=(0, 0), inputs=(0,)).validate(space)
    with pytest.raises(ValueError, match="metric"):
        graph_similarity(Architecture((0, 0), (0,)), Architecture((0, 0), (0,)), "cosine")
    with pytest.raises(ValueError, match="nodes"):
        graph_similarity(Architecture((0, 0), (0,)), Architecture((0, 0, 0), (0, 1)))
    with pytest.raises(ValueError, match="seed"):
        random_architectures(space, 2)
    with pytest.raises(ValueError, match="exclusive"):
        random_architectures(space, 2, generator=torch.Generator(), seed=0)
    with pytest.raises(TypeError, match="architectures"):
        pairwise_graph_similarity("abc")
    with pytest.raises(ValueError, match="architectures"):
        pairwise_graph_similarity([])
