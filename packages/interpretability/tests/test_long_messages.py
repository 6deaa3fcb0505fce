"""A big tensor passed where a pair, a shape or a flag is expected gets a short message, not
its full repr (thousands of characters)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.interpretability import level_set_traversal, mds_clustering, rsa
from neuronkit.interpretability.data.cell_types import on_off_population
from neuronkit.interpretability.description import upsampled_masks
from neuronkit.interpretability.fusion import crop_box
from neuronkit.interpretability.information import bin_activations
from neuronkit.interpretability.representation.convergent import compare_networks
from neuronkit.interpretability.visualization.maximize import (
    Objective,
    class_logit,
    maximize_activation,
    unit,
)
from neuronkit.interpretability.visualization.params import image_param
from neuronkit.interpretability.visualization.transforms import RandomScale

BIG = torch.rand(64, 3, 16, 16)
NET = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
X = torch.rand(2, 3, 2, 2)
ACTS = {"l": np.random.default_rng(0).normal(size=(8, 3))}

CALLS = {
    "maximize_activation(shape)": lambda: maximize_activation(
        NET, class_logit(0), shape=BIG, steps=1
    ),
    "level_set_traversal(clamp)": lambda: level_set_traversal(NET, X, X, clamp=BIG),
    "unit(index)": lambda: unit(None, BIG),
    "Objective(layers)": lambda: Objective(lambda a: a[None], BIG),
    "image_param(value_range)": lambda: image_param("pixel", (1, 3, 4, 4), value_range=BIG),
    "upsampled_masks(size)": lambda: upsampled_masks(torch.rand(2, 4, 4), torch.rand(2), BIG),
    "RandomScale(scales)": lambda: RandomScale(BIG),
    "on_off_population(gain_range)": lambda: on_off_population(2, 4, gain_range=BIG),
    "crop_box(box)": lambda: crop_box(X, BIG),
    "geodesic(disconnected)": lambda: rsa.geodesic(np.ones(3), disconnected=BIG),
    "mds_clustering(stimulus_shape)": lambda: mds_clustering(NET, BIG, 2),
    "compare_networks(exclude_dead)": lambda: compare_networks(ACTS, ACTS, exclude_dead=BIG),
    "bin_activations(zero_bin)": lambda: bin_activations(np.ones((4, 2)), zero_bin=BIG),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_big_tensor_as_a_bad_argument_gives_a_short_message(call) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert len(str(info.value)) < 300, str(info.value)[:300]
