"""The ``show_progress`` bars of the long training loops (``neuronkit.common.progress``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from neuronkit.common.testing import progress_bar_problems
from neuronkit.theory import QuadraticMLP, modular_arithmetic, train_modular
from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.grokking import ScaledQuadraticNet, quadratic_feature_data, train_lazy_rich
from neuronkit.theory.kan import KAN, SKAN, train_regression, train_skan
from neuronkit.theory.lazy_rich import (
    ReluRNN,
    TwoLayerTanhNet,
    low_rank_weight,
    train_recurrent_rich_lazy,
    train_rich_lazy,
)
from neuronkit.theory.operators import MgNO, fit_operator
from neuronkit.theory.processes import ConditionalNeuralProcess, train_process
from neuronkit.theory.scaling import train_classifier
from neuronkit.theory.timescales import TimescaleRNN, train_curriculum


def _rich_lazy(**kw: Any) -> Any:
    g = torch.Generator().manual_seed(0)
    h = 4
    w_hh = torch.randn(h, h, generator=g, dtype=torch.float64) / math.sqrt(h)
    w_ih = torch.rand(h, 3, generator=g, dtype=torch.float64) - 0.5
    w_ho = torch.rand(3, h, generator=g, dtype=torch.float64) - 0.5
    model = ReluRNN(w_ih, w_hh, w_ho)
    return train_recurrent_rich_lazy(
        model, iterations=3, batch_size=2, kernel_trials=2, eval_trials=4, seed=0, **kw
    )


def _operator(**kw: Any) -> Any:
    x = torch.randn(4, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    model = MgNO(1, 1, width=2, num_layers=1, levels=2, seed=0)
    return fit_operator(model, x, 2 * x, epochs=2, batch_size=2, seed=0, **kw)


def _curriculum(**kw: Any) -> Any:
    model = TimescaleRNN(1, 4, num_heads=2, seed=0)
    return train_curriculum(
        model,
        "multi",
        max_steps=5,
        steps_per_epoch=2,
        batch_size=4,
        test_batch_size=4,
        test_batches=1,
        optimizer="adam",
        lr=1e-3,
        threshold=1.0,
        seed=0,
        **kw,
    )


def _modular(**kw: Any) -> Any:
    data = modular_arithmetic(5, seed=0)
    return train_modular(QuadraticMLP(5, 8, seed=0), data, steps=3, eval_every=2, **kw)


def _process(**kw: Any) -> Any:
    batch = sample_gp_tasks(2, num_context=3, num_target=3, seed=0)
    model = ConditionalNeuralProcess(hidden=4, encoder_depth=2, decoder_depth=2, seed=0)
    return train_process(model, lambda step: batch, steps=3, **kw)


def _xy() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(8, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return x, x[:, 0] * x[:, 1]


def _regression(**kw: Any) -> Any:
    return train_regression(KAN([2, 2, 1], seed=0), *_xy(), steps=3, **kw)


def _skan(**kw: Any) -> Any:
    return train_skan(SKAN([2, 1], seed=0), *_xy(), steps=3, **kw)


def _lazy_rich(**kw: Any) -> Any:
    data = quadratic_feature_data(20, 30, 4, seed=0)
    model = ScaledQuadraticNet(4, 8, alpha=2.0, eps=0.5, seed=1)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    return train_lazy_rich(model, *args, steps=3, eval_every=2, align_every=2, **kw).test_loss


def _rich_lazy_feedforward(**kw: Any) -> Any:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, generator=gen, dtype=torch.float64), torch.randn(12, generator=gen)
    model = TwoLayerTanhNet(low_rank_weight(8, 3, 2, 2.0, seed=0), torch.ones(8, dtype=x.dtype))
    return train_rich_lazy(model, x, y, steps=3, lr=0.1, kernel_points=6, **kw).final_loss


def _classifier(**kw: Any) -> Any:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    record = train_classifier(model, x, y, x, y, epochs=2, batch_size=4, seed=0, **kw)
    return record.test_error


CASES: dict[str, Callable[..., Any]] = {
    "train_lazy_rich": _lazy_rich,
    "train_rich_lazy": _rich_lazy_feedforward,
    "train_classifier": _classifier,
    "train_recurrent_rich_lazy": _rich_lazy,
    "fit_operator": _operator,
    "train_curriculum": _curriculum,
    "train_modular": _modular,
    "train_process": _process,
    "train_regression": _regression,
    "train_skan": _skan,
}


LABELS: dict[str, str] = {"train_skan": "train_regression"}  # its stages run train_regression


@pytest.mark.parametrize("name", list(CASES))
def test_show_progress(name: str) -> None:
    assert progress_bar_problems(CASES[name], LABELS.get(name, name)) == []


def test_the_bar_leaves_the_numbers_unchanged() -> None:
    on = _curriculum(show_progress=True)
    off = _curriculum(show_progress=False)
    assert on.steps == off.steps == 5
    assert on.history == off.history
    assert len(on.history) == 3  # epochs of 2, 2 and 1 steps
    on_state, off_state = on.model.state_dict(), off.model.state_dict()
    assert on_state.keys() == off_state.keys()
    for k in on_state:
        assert torch.equal(on_state[k], off_state[k]), k


@pytest.mark.parametrize("name", ["train_lazy_rich", "train_rich_lazy", "train_classifier"])
def test_the_bar_leaves_the_results_unchanged(name: str) -> None:
    assert CASES[name](show_progress=True) == CASES[name](show_progress=False)
