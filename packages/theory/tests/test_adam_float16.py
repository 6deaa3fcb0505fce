"""The Adam / AdamW trainers refuse a float16 model: Adam's eps is 0 there and a step turned
weights NaN (silently, or failing later on a NaN loss or an unrelated finiteness check)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.theory import (
    QuadraticMLP,
    TimescaleRNN,
    modular_arithmetic,
    train_curriculum,
    train_modular,
)
from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.operators import MgNO, fit_operator
from neuronkit.theory.processes import ConditionalNeuralProcess, train_process
from neuronkit.theory.scaling.train import train_classifier


def _modular(m: nn.Module) -> object:
    return train_modular(m, modular_arithmetic(11, train_fraction=0.7, seed=0), steps=2)


def _operator(m: nn.Module) -> object:
    x = torch.randn(4, 1, 7, 7, generator=torch.Generator().manual_seed(0)).half()
    return fit_operator(m, x, x, epochs=1, batch_size=2)


def _process(m: nn.Module) -> object:
    b = sample_gp_tasks(2, num_context=4, num_target=4, seed=0)
    half = dataclasses.replace(b, x=b.x.half(), y=b.y.half())
    return train_process(m, lambda step: half, steps=2)


def _curriculum(m: nn.Module) -> object:
    kw = {"batch_size": 4, "test_batch_size": 4, "test_batches": 1, "seed": 0}
    return train_curriculum(m, max_steps=2, steps_per_epoch=1, optimizer="adam", **kw)


def _classifier(m: nn.Module) -> object:
    x, y = torch.rand(8, 4, 4, dtype=torch.float16), torch.randint(0, 3, (8,))
    return train_classifier(m, x, y, x, y, epochs=1, batch_size=4, optimizer="adamw")


TRAINERS: dict[str, tuple[Callable[[], nn.Module], Callable[[nn.Module], object]]] = {
    "train_modular": (lambda: QuadraticMLP(11, 8, seed=0), _modular),
    "fit_operator": (lambda: MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0), _operator),
    "train_process": (lambda: ConditionalNeuralProcess(hidden=8, seed=0), _process),
    "train_curriculum": (lambda: TimescaleRNN(hidden_size=4, seed=0), _curriculum),
    "scaling.train_classifier": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
        _classifier,
    ),
}


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_adam_trainers_refuse_a_float16_model_before_a_step(trainer: str) -> None:
    build, train = TRAINERS[trainer]
    model = build().half()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"^model: Adam cannot train float16 parameters"):
        train(model)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
