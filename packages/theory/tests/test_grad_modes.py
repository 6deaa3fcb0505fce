"""Trainers under the caller's autograd modes: they run under ``torch.no_grad()`` (which
broke them with torch's "element 0 of tensors does not require grad"), name themselves under
``torch.inference_mode()``, and neither fill the ``.grad`` of inputs that require grad nor
backpropagate into their graph."""

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.theory import QuadraticMLP, modular_arithmetic, train_modular
from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.kan import KAN, SKAN, train_regression, train_skan
from neuronkit.theory.lazy_rich import (
    ReluRNN,
    TwoLayerTanhNet,
    low_rank_weight,
    train_recurrent_rich_lazy,
    train_rich_lazy,
)
from neuronkit.theory.operators import fit_operator
from neuronkit.theory.processes import ConditionalNeuralProcess, train_process
from neuronkit.theory.scaling import BottleneckMLP, train_classifier
from neuronkit.theory.timescales import TimescaleRNN, train_curriculum

F64 = torch.float64


def _modular() -> tuple[nn.Module, Any]:
    model = QuadraticMLP(5, 8, seed=0)
    return model, lambda: train_modular(model, modular_arithmetic(5, seed=0), steps=2)


def _classifier() -> tuple[nn.Module, Any]:
    x, y = torch.randn(16, 2, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    model = BottleneckMLP(2, 3, 8, 1, seed=0)
    return model, lambda: train_classifier(model, x, y, x, y, epochs=1, batch_size=8, seed=0)


def _regression() -> tuple[nn.Module, Any]:
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0))
    model = KAN([2, 3, 1], seed=0)
    return model, lambda: train_regression(model, x, x[:, 0] * x[:, 1], steps=2)


def _skan() -> tuple[nn.Module, Any]:
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0))
    model = SKAN([2, 3, 1], seed=0)
    return model, lambda: train_skan(model, x, x[:, 0] * x[:, 1], steps=3)


def _operator() -> tuple[nn.Module, Any]:
    x = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    model = nn.Conv2d(1, 1, 3, padding=1)
    return model, lambda: fit_operator(model, x, 2 * x, epochs=1, batch_size=2, seed=0)


def _process() -> tuple[nn.Module, Any]:
    batch = sample_gp_tasks(2, num_context=3, num_target=3, seed=0)
    model = ConditionalNeuralProcess(hidden=8, seed=0)
    return model, lambda: train_process(model, lambda step: batch, steps=1)


def _curriculum() -> tuple[nn.Module, Any]:
    model = TimescaleRNN(1, 6, num_classes=2, seed=0)
    opts: dict[str, Any] = dict(max_steps=1, steps_per_epoch=1, batch_size=4, test_batches=1)
    return model, lambda: train_curriculum(model, test_batch_size=4, seed=0, **opts)


def _rich_lazy() -> tuple[nn.Module, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, dtype=F64)
    v = torch.randn(5, generator=g, dtype=F64)
    model = TwoLayerTanhNet(low_rank_weight(5, 3, 1, math.sqrt(5), seed=0), v)
    return model, lambda: train_rich_lazy(model, x, x[:, 0], steps=1, kernel_points=3)


def _recurrent() -> tuple[nn.Module, Any]:
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(*s, generator=g, dtype=F64) / 3 for s in ((4, 3), (4, 4), (3, 4))]
    model = ReluRNN(*w)
    return model, lambda: train_recurrent_rich_lazy(
        model, iterations=1, batch_size=2, kernel_trials=2, eval_trials=2, seed=0
    )


TRAINERS: dict[str, Callable[[], tuple[nn.Module, Any]]] = {
    "train_modular": _modular,
    "train_classifier": _classifier,
    "train_regression": _regression,
    "train_skan": _skan,
    "fit_operator": _operator,
    "train_process": _process,
    "train_curriculum": _curriculum,
    "train_rich_lazy": _rich_lazy,
    "train_recurrent_rich_lazy": _recurrent,
}


@pytest.mark.parametrize("name", list(TRAINERS))
def test_trainers_run_under_no_grad_and_name_themselves_under_inference_mode(name: str) -> None:
    model, train = TRAINERS[name]()
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        result = train()
    trained = result.model if name == "train_curriculum" else model  # it trains a copy
    assert any(not torch.equal(b, p) for b, p in zip(before, trained.parameters()))
    with torch.inference_mode(), pytest.raises(RuntimeError, match=rf"^{name} needs autograd"):
        TRAINERS[name]()[1]()
    assert torch.is_grad_enabled()  # the caller's mode is back


def test_trainers_leave_inputs_that_require_grad_alone() -> None:
    """train_classifier filled the caller's ``x.grad``; train_regression and fit_operator
    backpropagated into the graph of an input at every step ("Trying to backward through the
    graph a second time")."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(16, 2, generator=g, requires_grad=True)
    x, y = base * 1.0, torch.arange(16) % 3  # x has a graph, as a preprocessing step's output
    train_classifier(BottleneckMLP(2, 3, 8, 1, seed=0), base, y, base, y, epochs=1, batch_size=8)
    assert base.grad is None
    train_regression(KAN([2, 3, 1], seed=0), x, x[:, 0] * x[:, 1], steps=2)
    images = base.reshape(2, 1, 4, 4) * 1.0
    fit_operator(nn.Conv2d(1, 1, 3, padding=1), images, 2 * images, epochs=1, batch_size=2)
    assert base.grad is None
