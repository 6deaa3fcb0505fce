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


def _texts() -> list[str]:
    return ["a red thing", "blue shape"]


# each setup builds the model and inputs and returns the seeded training call
TRAININGS: dict[str, Callable[[], Callable[[], object]]] = {
    "DescriptionLM.fit": lambda: functools.partial(
        DescriptionLM(_vocabulary(), embedding_size=4, hidden_size=4, seed=0).fit,
        _texts(),
        epochs=1,
        seed=3,
    ),
    "ExemplarEncoder.pretrain": lambda: functools.partial(
        ExemplarEncoder(3, 4, seed=0).pretrain,
        torch.zeros(2, 3, 4, 4),
        torch.ones(2, 1, 4, 4, dtype=torch.long),
        epochs=1,
        seed=3,
    ),
    "ExemplarCaptioner.fit_features": lambda: _fit_features(
        ExemplarCaptioner(_vocabulary(), ExemplarEncoder(3, 4), hidden_size=4, seed=0)
    ),
}


def _fit_features(captioner: ExemplarCaptioner) -> Callable[[], object]:
    features = torch.ones(2, 1, captioner.encoder.feature_size)
    return functools.partial(
        captioner.fit_features, features, [[text] for text in _texts()], epochs=1, seed=3
    )


@pytest.mark.parametrize("setup", TRAININGS.values(), ids=TRAININGS.keys())
def test_seeded_training_leaves_the_global_rngs(setup: Callable[[], Callable[[], object]]) -> None:
    """The training seeded torch's CPU RNG inside a fork but, through ``torch.manual_seed``,
    also queued a reseed of every GPU for when CUDA starts: the caller's CUDA seed was lost."""
    call = setup()
    tracker = getattr(torch.cuda, "_lazy_seed_tracker", None)
    state = torch.get_rng_state()
    queued = tracker.get_calls() if tracker is not None else None
    first = call()
    assert torch.equal(torch.get_rng_state(), state)
    if tracker is not None and not torch.cuda.is_initialized():
        assert tracker.get_calls() == queued
    assert setup()() == first  # the seed still fixes the training
