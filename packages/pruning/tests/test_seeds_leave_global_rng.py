"""A seeded constructor leaves torch's global RNG where it was."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch

from neuronkit.pruning import BrickTransformer, CellSpace, ENASController
from neuronkit.pruning.bricks import FFN, grow_ffn, grow_model

# each setup builds the inputs (drawing from the global RNG) and returns the seeded call
SETUPS: dict[str, Callable[[], Callable[[], object]]] = {
    "ENASController": lambda: functools.partial(
        ENASController, CellSpace(num_nodes=3), hidden=8, seed=0
    ),
    "grow_ffn_zero": lambda: functools.partial(grow_ffn, FFN(4, 6), 3, method="zero", seed=0),
    "grow_ffn_split": lambda: functools.partial(grow_ffn, FFN(4, 6), 3, method="split", seed=0),
    "grow_model": lambda: functools.partial(
        grow_model, BrickTransformer(11, 8, d_model=8, n_heads=2, d_ff=6), 1, 2, seed=0
    ),
}


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
def test_seeded_build_leaves_the_global_rng(setup: Callable[[], Callable[[], object]]) -> None:
    call = setup()
    state = torch.get_rng_state()
    call()
    assert torch.equal(torch.get_rng_state(), state)
