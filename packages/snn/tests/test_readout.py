"""Readout losses against their written-out definitions."""

import pytest
import torch
import torch.nn.functional as F

from neuronkit.snn import (
    mean_membrane_ce,
    softmax_sum_ce,
    softmax_sum_predict,
    spike_count_ce,
    spike_count_mse,
    tet_ce,
)

T, B, C = 5, 4, 3


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(T, B, C, generator=g) > 0.5).double().requires_grad_()
    v = torch.randn(T, B, C, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 2])
    return spikes, v, y


def test_spike_count_ce(data: tuple) -> None:
    spikes, _, y = data
    loss = spike_count_ce(spikes, y)
    torch.testing.assert_close(loss, F.cross_entropy(spikes.sum(0), y))
    loss.backward()
    assert spikes.grad is not None


def test_mean_membrane_ce(data: tuple) -> None:
    _, v, y = data
    torch.testing.assert_close(mean_membrane_ce(v, y), F.cross_entropy(v.mean(0), y))


def test_softmax_sum_ce_is_ce_of_summed_step_probabilities(data: tuple) -> None:
    _, v, y = data
    want = F.cross_entropy(torch.stack([v[t].softmax(-1) for t in range(T)]).sum(0), y)
    torch.testing.assert_close(softmax_sum_ce(v, y), want)


def test_softmax_sum_predict_votes_with_probabilities_not_membranes() -> None:
    # one large step for class 0 against two moderate ones for class 1: the mean membrane
    # picks 0, the summed probabilities (the learnable-delays reference readout) pick 1
    out = torch.tensor([[[10.0, 0.0]], [[0.0, 3.0]], [[0.0, 3.0]]])
    assert out.mean(0).argmax(1).item() == 0
    assert softmax_sum_predict(out).tolist() == [1]
    with pytest.raises(ValueError, match=r"out must be a non-empty floating-point tensor"):
        softmax_sum_predict(out[0])
    with pytest.raises(ValueError, match="must be finite"):
        softmax_sum_predict(torch.full((2, 1, 2), float("nan")))
    with pytest.raises(TypeError, match="out must be Tensor"):
        softmax_sum_predict([[1.0]])  # type: ignore[arg-type]


def test_tet_is_mean_of_per_step_ce(data: tuple) -> None:
    _, v, y = data
    per_step = torch.stack([F.cross_entropy(v[t], y) for t in range(T)]).mean()
    torch.testing.assert_close(tet_ce(v, y), per_step)
    reg = torch.stack([F.mse_loss(v[t], torch.full_like(v[t], 0.7)) for t in range(T)]).mean()
    torch.testing.assert_close(tet_ce(v, y, lamb=0.2, phi=0.7), 0.8 * per_step + 0.2 * reg)


def test_spike_count_mse(data: tuple) -> None:
    spikes, _, y = data
    loss = spike_count_mse(spikes, y, correct_rate=0.8, incorrect_rate=0.1)
    goal = torch.full((B, C), 0.1 * T, dtype=torch.float64)
    goal[torch.arange(B), y] = 0.8 * T
    want = ((spikes.sum(0) - goal) ** 2).mean() / T
    torch.testing.assert_close(loss, want)


@pytest.mark.parametrize(
    "loss", [spike_count_ce, mean_membrane_ce, softmax_sum_ce, tet_ce, spike_count_mse]
)
def test_bad_inputs(loss: object, data: tuple) -> None:
    spikes, _, y = data
    f = loss  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"must have 3 dimensions \[T, B, C\]"):
        f(spikes.sum(0), y)  # type: ignore[operator]
    with pytest.raises(TypeError, match="must be a floating-point tensor"):
        f(spikes.long(), y)  # type: ignore[operator]
    with pytest.raises(ValueError, match="must be finite"):
        f(torch.full((T, B, C), float("nan")), y)  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"target must be an int64 tensor of shape \[B\] = \[4\]"):
        f(spikes, y[:3])  # type: ignore[operator]
    with pytest.raises(ValueError, match="target must be an int64"):
        f(spikes, y.float())  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"target must hold class labels in \[0, 2\]"):
        f(spikes, torch.tensor([0, 1, 2, 3]))  # type: ignore[operator]
    with pytest.raises(TypeError, match="target must be Tensor"):
        f(spikes, [0, 1, 2, 0])  # type: ignore[operator]
    # a batch-first input run as [T, B, ...]: the outputs' time axis holds the batch
    swapped = torch.rand(B, T, C)
    with pytest.raises(ValueError, match=r"batch-first \[B, T, \.\.\.\]\? Pass it as \[T, B"):
        f(swapped, y)  # type: ignore[operator]


@pytest.mark.parametrize(
    "loss", [spike_count_ce, mean_membrane_ce, softmax_sum_ce, tet_ce, spike_count_mse]
)
def test_empty_time_batch_or_classes_raise_instead_of_nan(loss: object) -> None:
    f = loss  # type: ignore[assignment]
    empty = torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"must have a non-empty batch B >= 1 \[T, B, C\]"):
        f(torch.zeros(4, 0, 3), empty)  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"must have T >= 1 time steps \[T, B, C\]"):
        f(torch.zeros(0, 2, 3), torch.zeros(2, dtype=torch.long))  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"must have C >= 1 classes"):
        f(torch.zeros(4, 2, 0), torch.zeros(2, dtype=torch.long))  # type: ignore[operator]


def test_bad_loss_options(data: tuple) -> None:
    spikes, v, y = data
    with pytest.raises(ValueError, match="lamb must be <= 1, got 2"):
        tet_ce(v, y, lamb=2.0)
    with pytest.raises(ValueError, match="correct_rate must be <= 1"):
        spike_count_mse(spikes, y, correct_rate=1.5)
    with pytest.raises(ValueError, match="incorrect_rate must be >= 0"):
        spike_count_mse(spikes, y, incorrect_rate=-0.1)


def test_softmax_sum_predict_equals_a_hand_argmax_of_summed_step_probabilities() -> None:
    g = torch.Generator().manual_seed(2)
    out = torch.randn(T, 32, C, generator=g, dtype=torch.float64) * 3
    want = []
    for b in range(out.shape[1]):
        votes = [0.0] * C
        for t in range(T):
            e = [float(v) for v in (out[t, b] - out[t, b].max()).exp()]
            votes = [acc + v / sum(e) for acc, v in zip(votes, e)]
        want.append(max(range(C), key=votes.__getitem__))
    got = softmax_sum_predict(out)
    assert got.dtype == torch.int64
    assert got.tolist() == want
    assert want != out.mean(0).argmax(1).tolist()  # the mean membrane votes otherwise here
