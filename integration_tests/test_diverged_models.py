"""A diverged model (NaN logits) scores 0 in every package's accuracy helper: ``argmax`` reads
NaN as the largest logit, which used to credit it with the share of one class."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.interpretability import accuracy as interpretability_accuracy
from neuronkit.pruning.lottery import accuracy as lottery_accuracy
from neuronkit.snn import LIF
from neuronkit.snn.training import StepSequential, evaluate_steps
from neuronkit.theory import (
    QuadraticMLP,
    corrupted_accuracies,
    modular_arithmetic,
    randomized_accuracy,
)


def _nan_first_logit(model: nn.Module) -> nn.Module:
    """Poison the first class's output row: that logit is NaN for every input."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight[0].fill_(float("nan"))
    return model


X = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
Y = torch.zeros(40, dtype=torch.long)  # every label is the NaN class

HELPERS: dict[str, Callable[[], float]] = {
    "interpretability.accuracy": lambda: interpretability_accuracy(
        _nan_first_logit(nn.Linear(4, 3)), X, Y
    ),
    "pruning.lottery.accuracy": lambda: lottery_accuracy(_nan_first_logit(nn.Linear(4, 3)), X, Y),
    "theory.randomized_accuracy": lambda: randomized_accuracy(
        _nan_first_logit(nn.Linear(4, 3)), X, Y, [0]
    ),
    "snn.evaluate_steps": lambda: evaluate_steps(
        _nan_first_logit(StepSequential(nn.Linear(4, 6), LIF(tau=2.0), nn.Linear(6, 3))), X, Y, 3
    ),
}


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_a_nan_logit_is_never_a_correct_prediction(name: str) -> None:
    assert HELPERS[name]() == 0.0


def test_corrupted_accuracies_of_a_diverged_network_are_zero() -> None:
    data = modular_arithmetic(7, train_fraction=0.6, corruption=0.2, seed=0)
    model = QuadraticMLP(7, 8, seed=0)
    with torch.no_grad():
        model.fc2.weight.fill_(float("nan"))
    acc = corrupted_accuracies(model, data)
    assert acc["train"] == acc["test"] == acc["corrupted"] == 0.0
