"""Relative L2 loss and the operator training loop."""

import pytest
import torch

from neuronkit.theory.operators import MgNO, evaluate_operator, fit_operator, relative_l2


def test_relative_l2_values() -> None:
    target = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    pred = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(relative_l2(pred, target, reduction="none"), torch.tensor([0.0, 1.0]))
    assert float(relative_l2(pred, target)) == pytest.approx(0.5)
    assert float(relative_l2(pred, target, reduction="sum")) == pytest.approx(1.0)
    assert float(relative_l2(7 * pred, 7 * target)) == pytest.approx(0.5)  # scale-invariant


def test_fit_operator_learns_a_linear_smoothing_operator() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 7, 7, generator=gen)
    y = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    model = MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0)
    before = float(evaluate_operator(model, x, y).mean())
    fit = fit_operator(model, x, y, epochs=12, batch_size=8, lr=1e-2, test=(x[:8], y[:8]), seed=0)
    after = float(evaluate_operator(model, x, y).mean())
    assert len(fit.train_loss) == len(fit.test_error) == 12
    assert fit.train_loss[-1] < fit.train_loss[0]
    assert after < 0.5 * before
    assert model.training  # left in training mode, as given


def test_bad_inputs() -> None:
    model = MgNO(1, 1, width=2, num_layers=1, levels=2)
    x = torch.randn(4, 1, 7, 7)
    with pytest.raises(ValueError, match="shape of target"):
        relative_l2(x, x[:2])
    with pytest.raises(ValueError, match="nonzero norm"):
        relative_l2(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="reduction"):
        relative_l2(x, x, reduction="max")
    with pytest.raises(ValueError, match="same N"):
        fit_operator(model, x, x[:3], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_operator(model, x, x, epochs=0)
    with pytest.raises(ValueError, match="finite"):
        fit_operator(model, x, torch.full_like(x, float("nan")), epochs=1)
    with pytest.raises(TypeError, match="model"):
        fit_operator("net", x, x, epochs=1)  # type: ignore[arg-type]
