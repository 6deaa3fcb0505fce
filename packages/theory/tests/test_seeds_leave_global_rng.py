"""A seeded constructor leaves torch's global RNG where it was; an evaluation whose forward
raises gives every submodule its training flag back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.theory import (
    KAN,
    QuadraticLinear,
    QuadraticMLP,
    TimescaleRNN,
    corrupted_accuracies,
    modular_arithmetic,
)
from neuronkit.theory.kan import matched_mlp
from neuronkit.theory.operators import evaluate_operator
from neuronkit.theory.processes import NeuralProcess
from neuronkit.theory.quadratic import conventional_net

BUILDS: dict[str, Callable[[], object]] = {
    "matched_mlp": lambda: matched_mlp(2, 1, 50, seed=0),
    "QuadraticMLP": lambda: QuadraticMLP(5, 4, seed=0),
    "conventional_net": lambda: conventional_net([3, 4, 1], seed=0),
    "TimescaleRNN": lambda: TimescaleRNN(1, 8, num_heads=2, seed=0),
}


@pytest.mark.parametrize("build", BUILDS.values(), ids=BUILDS.keys())
def test_seeded_build_leaves_the_global_rng(build: Callable[[], object]) -> None:
    state = torch.get_rng_state()
    build()
    assert torch.equal(torch.get_rng_state(), state)


META_BUILDS: dict[str, Callable[[], nn.Module]] = {
    "QuadraticLinear": lambda: QuadraticLinear(3, 4),
    "KAN": lambda: KAN([3, 4, 1]),
    "TimescaleRNN": lambda: TimescaleRNN(hidden_size=8),
    "NeuralProcess": lambda: NeuralProcess(hidden=4, seed=0),
}


@pytest.mark.parametrize("build", META_BUILDS.values(), ids=META_BUILDS.keys())
def test_models_build_on_the_meta_device(build: Callable[[], nn.Module]) -> None:
    """The seed (drawn, or derived from ``seed``) is drawn on the CPU under any default device;
    on the meta device there was no number to read."""
    with torch.device("meta"):
        model = build()
    assert next(model.parameters()).is_meta


class _Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.frozen = nn.Dropout()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward failed")


EVALUATIONS: dict[str, Callable[[nn.Module], object]] = {
    "evaluate_operator": lambda m: evaluate_operator(m, torch.rand(2, 1, 4), torch.rand(2, 1, 4)),
    "corrupted_accuracies": lambda m: corrupted_accuracies(m, modular_arithmetic(5, seed=0)),
}


@pytest.mark.parametrize("evaluate", EVALUATIONS.values(), ids=EVALUATIONS.keys())
def test_raising_forward_restores_training_flags(evaluate: Callable[[nn.Module], object]) -> None:
    model = _Raises().train()
    model.frozen.eval()  # a submodule kept in eval inside a training model
    with pytest.raises(RuntimeError, match="forward failed"):
        evaluate(model)
    assert [m.training for m in (model, model.linear, model.frozen)] == [True, True, False]
