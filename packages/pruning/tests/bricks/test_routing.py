"""Tests of MoEfication routing (neuronkit.pruning.bricks.routing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.bricks.discovery import ffn_activations
from neuronkit.pruning.bricks.model import FFN, BrickTransformer, task_accuracy
from neuronkit.pruning.bricks.routing import (
    ExpertRouter,
    MoEfication,
    RoutedGate,
    balanced_kmeans,
    expert_scores,
    oracle_gate,
    router_recall,
    split_ffn,
    train_router,
)
from neuronkit.pruning.bricks.tasks import make_task_data

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_balanced_kmeans_sizes_and_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    x = torch.cat([c + 0.3 * torch.randn(8, 2, generator=gen) for c in centres])
    labels = balanced_kmeans(x, 3, seed=0)
    assert np.bincount(labels).tolist() == [8, 8, 8]
    for g in range(3):
        assert len(set(labels[8 * g : 8 * g + 8].tolist())) == 1
    # an unbalanced cloud is still split into equal sizes
    y = torch.cat([torch.zeros(10, 2), torch.ones(2, 2)]) + 0.01 * torch.randn(12, 2, generator=gen)
    assert np.bincount(balanced_kmeans(y, 3, seed=0)).tolist() == [4, 4, 4]


@pytest.mark.parametrize("method", ["param", "random", "coactivation"])
def test_split_ffn_is_balanced(method: str) -> None:
    torch.manual_seed(0)
    ffn = FFN(6, 12)
    hidden = ffn.hidden(torch.randn(200, 6))
    labels = split_ffn(ffn, 4, method=method, hidden=hidden, seed=0)
    assert labels.shape == (12,)
    assert np.bincount(labels).tolist() == [3, 3, 3, 3]


def test_split_param_groups_duplicate_keys() -> None:
    ffn = FFN(4, 8)
    base = torch.eye(4)
    with torch.no_grad():
        ffn.w_in.weight.copy_(torch.cat([base, 2 * base]))  # neuron i and i+4 share a direction
    labels = split_ffn(ffn, 4, method="param", seed=0)
    assert all(labels[i] == labels[i + 4] for i in range(4))


def test_expert_scores_and_router_init() -> None:
    h = torch.tensor([[1.0, 0.0, 2.0, 3.0]])
    labels = np.array([0, 1, 0, 1])
    assert expert_scores(h, labels, 2).tolist() == [[3.0, 3.0]]
    keys = torch.randn(4, 5)
    r = ExpertRouter(5, 2, keys=keys, labels=labels)
    nk = torch.nn.functional.normalize(keys, dim=1)
    assert torch.allclose(r.proj.weight[0], (nk[0] + nk[2]) / 2)
    assert torch.equal(r.mix.weight, torch.eye(2))


@pytest.mark.parametrize(
    ("dtype", "router_dtype"), [(torch.float64, torch.float64), (torch.bfloat16, torch.float32)]
)
def test_router_starts_from_its_keys_in_their_precision(
    dtype: torch.dtype, router_dtype: torch.dtype
) -> None:
    keys = torch.randn(4, 5, dtype=torch.float64).to(dtype)
    r = ExpertRouter(5, 2, keys=keys, labels=np.array([0, 1, 0, 1]))
    assert r.proj.weight.dtype == r.mix.weight.dtype == router_dtype
    nk = torch.nn.functional.normalize(keys.to(router_dtype), dim=1)
    torch.testing.assert_close(r.proj.weight[1], (nk[1] + nk[3]) / 2, rtol=0, atol=1e-15)
    assert r(keys.to(router_dtype)).dtype == router_dtype


def test_routed_and_oracle_gates_keep_exactly_k_experts() -> None:
    torch.manual_seed(0)
    ffn = FFN(6, 12)
    labels = np.repeat(np.arange(4), 3)
    r = ExpertRouter(6, 4)
    x = torch.randn(5, 7, 6)
    for gate in (RoutedGate(r, labels, 2), oracle_gate(ffn, labels, 4, 2)):
        mask = gate(x)
        assert mask.shape == (5, 7, 12)
        assert bool(((mask == 0) | (mask == 1)).all())
        assert bool((mask.sum(-1) == 6).all())
        # whole experts are kept or dropped together
        per_expert = mask.view(5, 7, 4, 3)
        assert bool((per_expert.amin(-1) == per_expert.amax(-1)).all())
    # the oracle keeps the experts with the largest activation mass
    h = ffn.hidden(x)
    best = expert_scores(h.reshape(-1, 12), labels, 4).topk(2, dim=-1).indices
    kept = oracle_gate(ffn, labels, 4, 2)(x).reshape(-1, 12)[:, ::3].nonzero()[:, 1].view(-1, 2)
    assert torch.equal(kept.sort(1).values, best.sort(1).values)


def test_router_training_improves_recall_and_all_experts_is_exact() -> None:
    data = make_task_data(["affine", "reverse"], 60, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16).eval()
    ins, hid, _ = ffn_activations(m, data, labelled_only=False)
    labels = split_ffn(m.ffns[0], 4, seed=0)
    router = ExpertRouter(8, 4)
    before = router_recall(router, ins[0], hid[0], labels, 1)
    losses = train_router(router, ins[0], hid[0], labels, epochs=30, lr=3e-2, seed=0)
    after = router_recall(router, ins[0], hid[0], labels, 1)
    assert losses[-1] < losses[0]
    assert after > before
    moe = MoEfication(4, router_epochs=2, seed=0).fit(m, data)
    assert moe.neuron_fraction(0.5) == 0.5
    full = task_accuracy(m, data, moe.gates(1.0))
    assert torch.allclose(full, task_accuracy(m, data))
    assert len(moe.recall(m, data, 0.5)) == 2


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_clusters"):
        balanced_kmeans(torch.randn(10, 2), 3)
    with pytest.raises(ValueError, match="n_experts"):
        split_ffn(FFN(4, 10), 3)
    with pytest.raises(ValueError, match="method"):
        split_ffn(FFN(4, 8), 2, method="metis")
    with pytest.raises(ValueError, match="hidden"):
        split_ffn(FFN(4, 8), 2, method="coactivation")
    with pytest.raises(ValueError, match="k"):
        RoutedGate(ExpertRouter(4, 2), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="keys and labels"):
        ExpertRouter(4, 2, keys=torch.randn(4, 4))
    with pytest.raises(RuntimeError, match="fitted"):
        MoEfication(2).gates(0.5)
    with pytest.raises(ValueError, match="inputs and hidden"):
        train_router(
            ExpertRouter(4, 2), torch.randn(3, 4), torch.randn(2, 4), np.array([0, 0, 1, 1])
        )


def test_moefication_of_a_float64_model() -> None:
    data = make_task_data(["affine", "reverse"], 40, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16).double()
    moe = MoEfication(4, router_epochs=1, seed=0).fit(m, data)
    assert all(r.proj.weight.dtype == torch.float64 for r in moe.routers_)


def test_router_training_ignores_the_callers_grad_mode_and_leaves_their_inputs_alone() -> None:
    """Under torch.no_grad() training failed with torch's own message; inputs that require
    grad got their ``.grad`` filled."""
    data = make_task_data(["affine"], 30, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16).eval()
    ins, hid, _ = ffn_activations(m, data, labelled_only=False)
    labels = split_ffn(m.ffns[0], 4, seed=0)
    torch.manual_seed(1)
    router = ExpertRouter(8, 4)
    twin = ExpertRouter(8, 4)
    twin.load_state_dict(router.state_dict())
    ref = train_router(router, ins[0], hid[0], labels, epochs=2, seed=0)
    leaf = ins[0].clone().requires_grad_(True)
    with torch.no_grad():
        losses = train_router(twin, leaf, hid[0], labels, epochs=2, seed=0)
        moe = MoEfication(4, router_epochs=1, seed=0).fit(m, data)
    assert leaf.grad is None
    assert losses == ref
    assert len(moe.routers_) == len(m.ffns)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^train_router needs"):
        train_router(twin, ins[0], hid[0], labels, epochs=1, seed=0)
