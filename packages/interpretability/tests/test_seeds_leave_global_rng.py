"""A seeded constructor leaves torch's global RNG where it was."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch

from neuronkit.interpretability.data import PlantedConceptNet, planted_population
from neuronkit.interpretability.description import (
    DescriptionLM,
    ExemplarCaptioner,
    ExemplarEncoder,
    Vocabulary,
)
from neuronkit.interpretability.fusion import StreamCNN


def _vocabulary() -> Vocabulary:
    return Vocabulary(["a red thing", "blue shape"])


# each setup builds the inputs (drawing from the global RNG) and returns the seeded call
SETUPS: dict[str, Callable[[], Callable[[], object]]] = {
    "StreamCNN": lambda: functools.partial(StreamCNN, 1, 4, 8, seed=0),
    "ExemplarEncoder": lambda: functools.partial(ExemplarEncoder, 3, 4, seed=0),
    "DescriptionLM": lambda: functools.partial(
        DescriptionLM, _vocabulary(), embedding_size=4, hidden_size=4, seed=0
    ),
    "ExemplarCaptioner": lambda: functools.partial(
        ExemplarCaptioner,
        _vocabulary(),
        ExemplarEncoder(3, 4),
        embedding_size=4,
        hidden_size=4,
        seed=0,
    ),
    "PlantedConceptNet": lambda: functools.partial(
        PlantedConceptNet, planted_population(3, seed=1).concepts, seed=0
    ),
    "planted_population": lambda: functools.partial(planted_population, 4, seed=0),
}


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
def test_seeded_build_leaves_the_global_rng(setup: Callable[[], Callable[[], object]]) -> None:
    call = setup()
    state = torch.get_rng_state()
    call()
    assert torch.equal(torch.get_rng_state(), state)
