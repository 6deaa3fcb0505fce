"""Simulated noisy measurements of layer responses (for RSA / tRSA experiments).

A network layer's responses to a stimulus set play the role of a brain region's true
activity; a measurement adds independent Gaussian noise to every channel on every repeat,
like fMRI or electrophysiology noise. The tRSA paper (Lin & Kriegeskorte) evaluates RDM
statistics by how well they identify the generating layer from such noisy data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronkit.common import as_float_array, check_number, check_seed

__all__ = ["noisy_responses"]


def noisy_responses(
    responses: Any,
    noise_level: float,
    *,
    n_repeats: int = 1,
    relative: bool = True,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy repeated measurements of ``responses``.

    Args:
        responses: ``[n_stimuli, n_channels]`` true responses (numpy array or torch tensor;
            not modified).
        noise_level: noise standard deviation; relative to the standard deviation of all
            response values when ``relative`` (so layers of different scale get comparable
            signal-to-noise), absolute otherwise.
        n_repeats: measurements of each stimulus (runs).
        relative: see ``noise_level``.
        seed: seed or ``numpy.random.Generator``.

    Returns:
        ``(data, conditions, runs)``: ``data [n_repeats * n_stimuli, n_channels]``, the stimulus
        index of each row and the repeat (run) index of each row, ready for
        :func:`neuronkit.interpretability.rsa.rdm` (``conditions=..., runs=...``).
    """
    arr = as_float_array("responses", responses)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"responses must be [n_stimuli, n_channels], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("responses must be finite, got NaN or infinity")
    check_number("noise_level", noise_level, ge=0.0)
    check_number("n_repeats", n_repeats, ge=1, integer=True)
    if not isinstance(relative, bool):
        raise TypeError(f"relative must be a bool, got {type(relative).__name__}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(_seed(seed))
    scale = noise_level * (float(arr.std()) if relative else 1.0)
    n_stim = arr.shape[0]
    data = np.tile(arr, (n_repeats, 1)) + scale * rng.standard_normal(
        (n_repeats * n_stim, arr.shape[1])
    )
    conditions = np.tile(np.arange(n_stim), n_repeats)
    runs = np.repeat(np.arange(n_repeats), n_stim)
    return data, conditions, runs


def _seed(seed: Any) -> int:
    check_seed(seed)
    return int(seed)
