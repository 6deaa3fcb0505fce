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


class _Scale(torch.nn.Module):
    """``y = w * x`` that records ``w`` at every forward call."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))
        self.seen: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(float(self.w.detach()))
        return self.w * x


@pytest.mark.parametrize(
    ("kwargs", "first_lr"),
    [({}, 0.5e-2), ({"div_factor": 25.0}, 0.04e-2)],
)
def test_one_cycle_schedule_has_the_authors_shape(kwargs, first_lr) -> None:
    # MgNO's utilities3.getOptimizerScheduler + darcy.py: OneCycleLR(div_factor=2,
    # final_div_factor=100, pct_start=0.2). Adam's first step moves a scalar by exactly the
    # current learning rate, so the first step shows where the schedule starts (lr / 2 by
    # default; torch's own default would start at lr / 25).
    x = torch.ones(4, 1, 3, 3)
    model = _Scale()
    fit_operator(model, x, 2 * x, epochs=10, batch_size=4, lr=1e-2, seed=0, **kwargs)
    assert len(model.seen) == 10
    assert model.seen[1] - model.seen[0] == pytest.approx(first_lr, rel=1e-3)


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
    with pytest.raises(ValueError, match="pct_start"):
        fit_operator(model, x, x, epochs=1, pct_start=1.0)
    with pytest.raises(ValueError, match="div_factor"):
        fit_operator(model, x, x, epochs=1, div_factor=0.0)
    with pytest.raises(TypeError, match="model"):
        fit_operator("net", x, x, epochs=1)  # type: ignore[arg-type]


def test_fit_operator_keeps_learning_inside_an_outer_autocast() -> None:
    """An outer ``torch.autocast`` caches the bf16 copy of every parameter until it exits:
    every forward after the first step reused the first weights, so the loss never moved."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 7, 7, generator=gen)
    y = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    model = MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0)
    losses, params = [], []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            losses += fit_operator(model, x, y, epochs=1, batch_size=16, lr=1e-2, seed=0).train_loss
            params.append([p.detach().clone() for p in model.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(params[0], params[1]))
    assert len(set(losses)) > 1, losses
