"""Noisy repeated measurements of responses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.interpretability.data import noisy_responses


def test_layout_scale_and_seed() -> None:
    resp = np.random.default_rng(0).normal(size=(20, 30)) * 3.0
    frozen = resp.copy()
    data, cond, runs = noisy_responses(resp, 0.5, n_repeats=3, seed=1)
    assert data.shape == (60, 30)
    assert np.array_equal(cond, np.tile(np.arange(20), 3))
    assert np.array_equal(runs, np.repeat(np.arange(3), 20))
    noise = data - np.tile(resp, (3, 1))
    assert abs(noise.std() / (0.5 * resp.std()) - 1) < 0.05
    np.testing.assert_array_equal(resp, frozen)
    again, _, _ = noisy_responses(torch.as_tensor(resp), 0.5, n_repeats=3, seed=1)
    np.testing.assert_allclose(again, data)
    absolute, _, _ = noisy_responses(resp, 0.5, relative=False, seed=2)
    assert abs((absolute - resp).std() - 0.5) < 0.05
    clean, _, _ = noisy_responses(resp, 0.0)
    np.testing.assert_array_equal(clean, resp)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((np.zeros(5), 1.0), {}, ValueError),
        ((np.full((2, 2), np.nan), 1.0), {}, ValueError),
        ((np.zeros((2, 2)), -1.0), {}, ValueError),
        ((np.zeros((2, 2)), 1.0), {"n_repeats": 0}, ValueError),
        ((np.zeros((2, 2)), 1.0), {"relative": 1}, TypeError),
        ((np.zeros((2, 2)), 1.0), {"seed": -3}, ValueError),
    ],
)
def test_bad_inputs(args, kwargs, error) -> None:
    with pytest.raises(error):
        noisy_responses(*args, **kwargs)
