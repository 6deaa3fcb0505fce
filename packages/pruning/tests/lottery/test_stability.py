"""Tests of neuronkit.pruning.lottery.stability (linear mode connectivity)."""

import pytest
import torch
from torch import nn

from neuronkit.pruning.lottery import (
    TrainConfig,
    accuracy,
    global_magnitude_prune,
    instability,
    interpolate_states,
    interpolation_errors,
    linear_mode_connectivity,
    ones_masks,
)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def _data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=gen)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def test_interpolate_states_endpoints_midpoint_and_int_buffers() -> None:
    a, b = _net(0).state_dict(), _net(1).state_dict()
    b["1.num_batches_tracked"] = torch.tensor(7)
    b["1.running_var"] = torch.full((16,), 3.0)
    for key, v in interpolate_states(a, b, 0.0).items():
        torch.testing.assert_close(v, a[key])
    for key, v in interpolate_states(a, b, 1.0).items():
        if key != "1.num_batches_tracked":
            torch.testing.assert_close(v, b[key])
    mid = interpolate_states(a, b, 0.5)
    torch.testing.assert_close(mid["0.weight"], (a["0.weight"] + b["0.weight"]) / 2)
    torch.testing.assert_close(mid["1.running_var"], torch.full((16,), 2.0))
    assert int(mid["1.num_batches_tracked"]) == int(a["1.num_batches_tracked"])


def test_instability_is_barrier_height() -> None:
    assert instability([0.1, 0.3, 0.5, 0.2, 0.1]) == pytest.approx(0.4)
    assert instability(torch.tensor([0.2, 0.1, 0.4])) == pytest.approx(0.1)
    assert instability([0.1, 0.1]) == 0.0  # endpoints only: no barrier
    assert instability([0.3, 0.1, 0.1]) == pytest.approx(0.1)  # max includes the endpoints


def test_interpolation_errors_endpoints_and_identical_states() -> None:
    x, y = _data()
    a, b = _net(0), _net(1)
    a.eval()
    b.eval()
    alphas, errs = interpolation_errors(a, a.state_dict(), b.state_dict(), x, y, points=5)
    assert alphas.tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert float(errs[0]) == pytest.approx(1 - accuracy(a, x, y))
    assert float(errs[-1]) == pytest.approx(1 - accuracy(b, x, y))
    _, same = interpolation_errors(a, a.state_dict(), a.state_dict(), x, y, points=4)
    assert instability(same) == pytest.approx(0.0, abs=1e-12)


def test_lmc_with_masks_trains_two_different_masked_copies() -> None:
    x, y = _data()
    model = _net()
    masks = global_magnitude_prune(model, ones_masks(model), 0.5)
    cfg = TrainConfig(iterations=16, batch_size=16, lr=0.1)
    res = linear_mode_connectivity(
        model, model.state_dict(), x, y, x, y, cfg, masks=masks, data_seeds=(1, 2), points=6
    )
    assert res.alphas.shape == (6,)
    assert res.errors.shape == (6,)
    assert res.instability == pytest.approx(instability(res.errors))
    assert res.instability >= 0.0
    assert any(not torch.equal(res.state_a[k], res.state_b[k]) for k in res.state_a)
    for k, m in masks.items():
        assert bool((res.state_a[k][~m] == 0).all())
        assert bool((res.state_b[k][~m] == 0).all())
    net = _net()
    net.load_state_dict(res.state_a)
    assert res.endpoint_errors[0] == pytest.approx(1 - accuracy(net, x, y))


def test_bad_inputs() -> None:
    x, y = _data()
    a = _net().state_dict()
    with pytest.raises(ValueError, match="alpha"):
        interpolate_states(a, a, 1.5)
    with pytest.raises(ValueError, match="state_b"):
        interpolate_states(a, {k: v for k, v in a.items() if k != "0.bias"}, 0.5)
    with pytest.raises(ValueError, match="state_b"):
        interpolate_states(a, {**a, "0.bias": torch.zeros(3)}, 0.5)
    with pytest.raises(TypeError, match="state_a"):
        interpolate_states([1], a, 0.5)
    with pytest.raises(ValueError, match="errors"):
        instability([0.1])
    with pytest.raises(ValueError, match="errors"):
        instability([0.1, float("nan")])
    with pytest.raises(ValueError, match="points"):
        interpolation_errors(_net(), a, a, x, y, points=1)
    cfg = TrainConfig(iterations=2)
    with pytest.raises(ValueError, match="data_seeds"):
        linear_mode_connectivity(_net(), a, x, y, x, y, cfg, data_seeds=(3, 3))


def test_bad_arguments_are_named_as_the_caller_passed_them() -> None:
    """Lists in a state failed with "'list' object has no attribute 'shape'", a state of
    another model with torch's RuntimeError; linear_mode_connectivity named a negative seed
    "data_seed" and bad y_eval labels "y" (after training both copies)."""
    x, y = _data()
    a = _net().state_dict()
    with pytest.raises(TypeError, match=r"state_a\['0.weight'\] must be Tensor, got list"):
        interpolate_states({k: v.tolist() for k, v in a.items()}, a, 0.5)
    foreign = {"w": torch.ones(1)}
    with pytest.raises(ValueError, match="state_a must be a state_dict of the model"):
        interpolation_errors(_net(), foreign, foreign, x, y, points=2)
    cfg = TrainConfig(iterations=2)
    with pytest.raises(ValueError, match=r"data_seeds\[0\] must be >= 0"):
        linear_mode_connectivity(_net(), a, x, y, x, y, cfg, data_seeds=(-1, 2))
    with pytest.raises(ValueError, match=r"y_eval must hold class labels in \[0, 2\]"):
        linear_mode_connectivity(_net(), a, x, y, x, y + 5, cfg, points=2)


def test_lmc_ignores_the_callers_grad_mode_and_leaves_their_inputs_alone() -> None:
    """Under torch.no_grad() it failed with torch's own message; inputs that require grad
    got their ``.grad`` filled."""
    x, y = _data()
    cfg = TrainConfig(iterations=4, batch_size=16, lr=0.1)
    start = _net().state_dict()
    ref = linear_mode_connectivity(_net(), start, x, y, x, y, cfg, points=3)
    leaf = x.clone().requires_grad_(True)
    with torch.no_grad():
        res = linear_mode_connectivity(_net(), start, leaf, y, x, y, cfg, points=3)
    assert leaf.grad is None
    torch.testing.assert_close(res.errors, ref.errors, rtol=0, atol=0)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^linear_mode_connectivity"):
        linear_mode_connectivity(_net(), start, x, y, x, y, cfg, points=3)
