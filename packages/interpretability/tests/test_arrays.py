"""Low-precision tensors (bfloat16, float16) in the numpy-based analyses: read as the float32
tensors of the same values (numpy has no bfloat16: ``tensor.numpy()`` used to fail)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from neuronkit.interpretability import (
    compare_networks,
    identification_accuracy,
    kde_information,
    rdm,
)
from neuronkit.interpretability.data.responses import noisy_responses
from neuronkit.interpretability.data.twelve_bit import charge_dipole, icosahedron_vertices
from neuronkit.interpretability.dynamics import binned_information, compression
from neuronkit.interpretability.information import bin_activations
from neuronkit.interpretability.visualization.facets import FacetClustering

LOW = [torch.bfloat16, torch.float16]


def _values(*shape: int, seed: int = 0) -> torch.Tensor:
    """float32 values that bfloat16 and float16 both hold exactly (multiples of 1/8 in
    [-4, 4])."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-32, 33, shape, generator=g).float() / 8


ANALYSES: dict[str, Callable[[Callable[[torch.Tensor], torch.Tensor]], Any]] = {
    "rdm": lambda t: rdm(t(_values(6, 5)), "correlation"),
    "rdm_conditions": lambda t: rdm(
        t(_values(8, 5)),
        "crossnobis",
        conditions=t(torch.tensor([0.0, 1, 2, 3] * 2)),
        runs=[0] * 4 + [1] * 4,
    ),
    "bin_activations": lambda t: bin_activations(t(_values(20, 3)), 4),
    "kde_information": lambda t: kde_information(t(_values(20, 3)), [0, 1] * 10),
    "binned_information": lambda t: binned_information(t(_values(20, 3) / 4), [0, 1] * 10),
    "compression": lambda t: compression(t(_values(5, 2))),
    "compare_networks": lambda t: (
        compare_networks({"x": t(_values(30, 4, 2))}, {"x": t(_values(30, 4, 2, seed=1))})[
            "x"
        ].blocks.joint
    ),
    "identification_accuracy": lambda t: identification_accuracy(
        t(_values(8, 6)), [0, 1] * 4, [0, 0, 1, 1, 2, 2, 3, 3]
    ),
    "noisy_responses": lambda t: noisy_responses(t(_values(4, 3)), 0.5, n_repeats=2)[0],
    "charge_dipole": lambda t: charge_dipole(
        t(torch.randint(0, 2, (5, 12), generator=torch.Generator().manual_seed(0)).float()),
        icosahedron_vertices(),
    ),
    "facets": lambda t: (
        FacetClustering(2, n_components=2, embedding="pca").fit(t(_values(12, 4))).labels_
    ),
}


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", list(ANALYSES))
def test_low_precision_tensors_give_the_float32_result(name: str, dtype: torch.dtype) -> None:
    def same_float32(x: torch.Tensor) -> torch.Tensor:
        return x.float()

    def low(x: torch.Tensor) -> torch.Tensor:
        return x.to(dtype)

    want = ANALYSES[name](same_float32)
    got = ANALYSES[name](low)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
