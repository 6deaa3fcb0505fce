"""Kumar et al. lazy-to-rich model: closed-form NTK, kernel plateau, delay measurement."""

import pytest
import torch

from neuronkit.theory.grokking import (
    LazyRichHistory,
    ScaledQuadraticNet,
    grokking_delay,
    initial_ntk_regression,
    quadratic_feature_data,
    train_lazy_rich,
)
from neuronkit.theory.measures import empirical_ntk


def test_closed_form_ntk_equals_torch_func() -> None:
    model = ScaledQuadraticNet(5, 20, alpha=3.0, eps=0.4, seed=0)
    x = torch.randn(6, 5, dtype=torch.float64)
    assert torch.allclose(model.ntk(x), empirical_ntk(model, x), atol=1e-10)


def test_data_and_forward_shapes() -> None:
    data = quadratic_feature_data(30, 10, 4, seed=1)
    assert data.x_train.shape == (30, 4)
    assert data.y_test.shape == (10,)
    assert torch.allclose(data.y_train, (data.x_train @ data.beta) ** 2 / 2)
    model = ScaledQuadraticNet(4, 8, seed=0)
    assert model(data.x_test).shape == (10,)


def test_lazy_limit_follows_kernel_regression() -> None:
    """For a very lazy net, GD converges to the initial-NTK interpolant."""
    data = quadratic_feature_data(6, 50, 10, seed=2)
    model = ScaledQuadraticNet(10, 40, alpha=200.0, eps=0.5, seed=3)
    kr = initial_ntk_regression(model, data.x_train, data.y_train, data.x_test, data.y_test)
    hist = train_lazy_rich(
        model, data.x_train, data.y_train, data.x_test, data.y_test, steps=2000, eval_every=100
    )
    assert hist.train_loss[-1] < 1e-3 * hist.train_loss[0]
    assert hist.test_loss[-1] == pytest.approx(kr, rel=0.05)
    assert hist.weight_change[-1] < 0.01


def test_grokking_delay_reads_the_events() -> None:
    h = LazyRichHistory(
        steps=[0, 10, 20, 30, 40],
        train_loss=[1.0, 0.05, 0.01, 0.0, 0.0],
        test_loss=[1.0, 0.6, 0.6, 0.25, 0.1],
    )
    ev = grokking_delay(h)
    assert ev == {"t_fit": 10.0, "plateau": 0.6, "t_drop": 30.0, "delay": 20.0}


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="width"):
        ScaledQuadraticNet(3, 0)
    with pytest.raises(ValueError, match="alpha"):
        ScaledQuadraticNet(3, 4, alpha=-1.0)
    model = ScaledQuadraticNet(3, 4, seed=0)
    with pytest.raises(ValueError, match="y_train"):
        train_lazy_rich(
            model, torch.ones(5, 3), torch.ones(4), torch.ones(2, 3), torch.ones(2), steps=2
        )
    with pytest.raises(ValueError, match="x_test"):
        initial_ntk_regression(
            model, torch.ones(5, 3), torch.ones(5), torch.ones(2, 4), torch.ones(2)
        )
