"""Rank-controlled initial connectivity and the richness measures (Liu et al. 2024)."""

import math

import pytest
import torch

from neuronkit.theory.lazy_rich import TwoLayerTanhNet, low_rank_weight, train_rich_lazy
from neuronkit.theory.measures import effective_rank


@pytest.mark.parametrize("rank", [1, 3, 8])
def test_low_rank_weight_has_rank_and_norm(rank: int) -> None:
    w = low_rank_weight(12, 8, rank, 5.0, seed=0)
    assert w.shape == (12, 8)
    assert float(torch.linalg.norm(w)) == pytest.approx(5.0)
    assert int(torch.linalg.matrix_rank(w)) == rank
    assert effective_rank(w) == pytest.approx(rank)


def test_aligned_weight_contains_the_task_direction() -> None:
    beta = torch.randn(8, dtype=torch.float64)
    beta = beta / beta.norm()
    w = low_rank_weight(12, 8, 1, 3.0, row_space=beta[None], seed=1)
    _, _, vh = torch.linalg.svd(w)
    assert abs(float(vh[0] @ beta)) == pytest.approx(1.0)


def test_training_fits_and_aligned_init_is_lazier() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 6, generator=g, dtype=torch.float64)
    beta = torch.randn(6, generator=g, dtype=torch.float64)
    beta = beta / beta.norm()
    y = torch.tanh(x @ beta)
    v = torch.randn(30, generator=g, dtype=torch.float64)
    rand = train_rich_lazy(
        TwoLayerTanhNet(low_rank_weight(30, 6, 1, math.sqrt(30), seed=2), v),
        x,
        y,
        steps=200,
        kernel_points=20,
    )
    aligned = train_rich_lazy(
        TwoLayerTanhNet(low_rank_weight(30, 6, 1, math.sqrt(30), row_space=beta[None], seed=2), v),
        x,
        y,
        steps=200,
        kernel_points=20,
    )
    assert aligned.final_loss < 0.05
    assert aligned.weight_change < rand.weight_change
    assert rand.effective_rank_init == pytest.approx(1.0)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="rank"):
        low_rank_weight(4, 3, 4, 1.0)
    with pytest.raises(ValueError, match="frobenius_norm"):
        low_rank_weight(4, 3, 1, 0.0)
    with pytest.raises(ValueError, match="row_space"):
        low_rank_weight(4, 3, 1, 1.0, row_space=torch.ones(2, 3))
    with pytest.raises(ValueError, match="readout"):
        TwoLayerTanhNet(torch.ones(4, 3), torch.ones(5))
    net = TwoLayerTanhNet(torch.ones(4, 3), torch.ones(4))
    with pytest.raises(ValueError, match="y"):
        train_rich_lazy(net, torch.ones(5, 3), torch.ones(4), steps=1)


def test_weight_kernel_distance_is_the_alignment_of_the_hidden_weights_kernel() -> None:
    """Liu et al.'s code measures 1 - <K_0, K_T> / (|K_0| |K_T|) of the varied weight's kernel."""
    import copy

    g = torch.Generator().manual_seed(3)
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.tanh(x[:, 0])
    net = TwoLayerTanhNet(low_rank_weight(16, 5, 2, 4.0, seed=4), torch.randn(16, generator=g))
    before = copy.deepcopy(net)
    res = train_rich_lazy(net, x, y, steps=50, kernel_points=12)

    def kernel(model: TwoLayerTanhNet) -> torch.Tensor:
        rows = []
        for xi in x[:12]:
            (gw,) = torch.autograd.grad(model(xi[None])[0], model.weight)
            rows.append(gw.reshape(-1))
        j = torch.stack(rows)
        return j @ j.T

    k0, kt = kernel(before), kernel(net)
    expected = 1 - float((k0 * kt).sum() / (k0.norm() * kt.norm()))
    assert res.weight_kernel_distance == pytest.approx(expected, rel=1e-9)
    assert res.weight_kernel_distance != pytest.approx(res.kernel_distance, rel=1e-6)
