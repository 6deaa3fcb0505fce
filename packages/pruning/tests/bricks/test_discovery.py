"""Tests of emergent-brick discovery (neuronkit.pruning.bricks.discovery)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.bricks.discovery import (
    BrickDiscovery,
    ablation_damage,
    activation_frequency,
    assign_partitions,
    cluster_neurons,
    coactivation_affinity,
    ffn_activations,
    own_over_other_damage,
    random_ablation_masks,
)
from neuronkit.pruning.bricks.model import BrickTransformer, task_accuracy
from neuronkit.pruning.bricks.tasks import make_task_data

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _planted(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden activations with three planted groups of 4 neurons, each firing on one task."""
    gen = torch.Generator().manual_seed(seed)
    tids = torch.randint(0, 3, (n,), generator=gen)
    h = torch.zeros(n, 12)
    for t in range(3):
        rows = tids == t
        fire = torch.rand(int(rows.sum()), 4, generator=gen) < 0.8
        h[rows, 4 * t : 4 * t + 4] = fire.float() * (
            1 + torch.rand(int(rows.sum()), 4, generator=gen)
        )
    return h, tids


def test_activation_frequency_matches_counting() -> None:
    h = torch.tensor([[1.0, 0.0], [0.5, 2.0], [0.0, 0.0], [3.0, 0.2]])
    t = torch.tensor([0, 0, 1, 1])
    f = activation_frequency(h, t, 3)
    assert torch.allclose(f[:2], torch.tensor([[1.0, 0.5], [0.5, 0.5]]))
    assert bool(torch.isnan(f[2]).all())  # a task without tokens
    assert torch.allclose(
        activation_frequency(h, t, 2, threshold=0.6), torch.tensor([[0.5, 0.5], [0.5, 0.0]])
    )


def test_coactivation_affinity_is_cosine_of_firing_patterns() -> None:
    h, _ = _planted()
    a = coactivation_affinity(h)
    fired = (h > 0).float()
    ref = torch.nn.functional.cosine_similarity(fired.T[:, None], fired.T[None], dim=-1)
    assert torch.allclose(a, ref, atol=1e-5)
    assert torch.allclose(a, a.T)
    assert float(a.max()) <= 1 + 1e-6


def test_planted_partitions_are_recovered_and_assigned() -> None:
    from sklearn.metrics import adjusted_rand_score

    h, t = _planted()
    labels = cluster_neurons(coactivation_affinity(h), 3, seed=0)
    truth = np.repeat(np.arange(3), 4)
    assert adjusted_rand_score(truth, labels) == 1.0
    owner = assign_partitions(activation_frequency(h, t, 3), labels)
    assert sorted(owner.tolist()) == [0, 1, 2]
    for c in range(3):
        assert np.all(truth[labels == c] == owner[c])
    # a partition used equally by all tasks is shared
    shared = assign_partitions(torch.full((3, 4), 0.5), np.array([0, 0, 1, 1]))
    assert shared.tolist() == [-1, -1]


def test_min_share_one_keeps_single_task_partitions() -> None:
    # min_share is documented in (0, 1]; with a strict "share > min_share" the value 1 made every
    # partition shared, even one that only task 1 activates
    freq = torch.tensor([[0.0, 0.0, 0.4, 0.6], [0.8, 0.6, 0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    assert assign_partitions(freq, labels, min_share=1.0).tolist() == [1, -1]
    assert assign_partitions(freq, labels, min_share=0.5).tolist() == [1, -1]  # 0.5: a tie


def test_dead_neurons_are_excluded() -> None:
    h, _ = _planted()
    h = torch.cat([h, torch.zeros(len(h), 2)], 1)
    labels = cluster_neurons(coactivation_affinity(h), 3, seed=0)
    assert labels[-2:].tolist() == [-1, -1]
    assert set(labels[:-2].tolist()) == {0, 1, 2}


def test_own_over_other_damage() -> None:
    dmg = torch.tensor([[0.5, 0.1, 0.0], [0.0, 0.3, 0.0], [0.2, 0.2, 0.2]])
    r = own_over_other_damage(dmg, floor=0.01)
    assert torch.allclose(r, torch.tensor([0.5 / 0.05, 0.3 / 0.01, 0.2 / 0.2]))


def test_brick_discovery_on_a_model_and_ablation_consistency() -> None:
    data = make_task_data(["affine", "reverse", "count"], 30, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16).eval()
    ins, hid, tids = ffn_activations(m, data)
    assert hid[0].shape == (90 * 4, 16)
    assert ins[1].shape == (360, 8)
    assert tids.shape == (360,)
    assert torch.equal(tids, data.task_ids.repeat_interleave(4))
    d = BrickDiscovery(3, seed=0).fit(m, data)
    assert len(d.labels_) == 2
    assert d.frequency_[0].shape == (3, 16)
    masks = d.task_masks("count")
    gates = d.ablation_gates(2)
    assert torch.equal(gates[0], (~masks[0]).float())
    base = task_accuracy(m, data)
    dmg = ablation_damage(m, data, [masks], base=base)
    assert torch.allclose(dmg[0], base - task_accuracy(m, data, gates))
    nothing = [torch.zeros(16, dtype=torch.bool)] * 2
    assert torch.allclose(ablation_damage(m, data, [nothing]), torch.zeros(1, 3))
    parts = d.transform(hid)
    assert parts[0].shape == (360, 3)


def test_random_ablation_masks() -> None:
    a = random_ablation_masks([3, 0], [10, 5], seed=1)
    assert [int(m.sum()) for m in a] == [3, 0]
    assert torch.equal(a[0], random_ablation_masks([3, 0], [10, 5], seed=1)[0])


def test_bad_inputs() -> None:
    h, t = _planted()
    with pytest.raises(ValueError, match="task_ids"):
        activation_frequency(h, t[:-1], 3)
    with pytest.raises(ValueError, match="task_ids"):
        activation_frequency(h, t, 2)
    with pytest.raises(ValueError, match="hidden"):
        coactivation_affinity(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="n_partitions"):
        cluster_neurons(coactivation_affinity(h), 13)
    with pytest.raises(ValueError, match="affinity"):
        cluster_neurons(-torch.ones(3, 3), 2)
    with pytest.raises(ValueError, match="labels"):
        assign_partitions(torch.zeros(2, 4), np.zeros(3, dtype=int))
    with pytest.raises(RuntimeError, match="fitted"):
        BrickDiscovery().task_masks(0)
    with pytest.raises(ValueError, match="damage"):
        own_over_other_damage(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n_partitions"):
        BrickDiscovery(1)


def test_brick_discovery_refuses_data_without_a_task_clearly() -> None:
    data = make_task_data(["sort", "reverse", "affine"], 10, seq_len=4, n_digits=5)
    model = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16)
    with pytest.raises(ValueError, match=r"labelled tokens of every task.*'reverse'"):
        BrickDiscovery(n_partitions=2).fit(model, data.subset(data.task_ids != 1))
