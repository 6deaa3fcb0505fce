"""Spike-timing classification tasks: the class lives only in relative timing across channels.

A generated stand-in for the role the Spiking Heidelberg Digits play in Hammouamri et al.
(ICLR 2024, learnable delays): ``n_groups`` groups of ``channels_per_group`` input channels;
in every sample each group fires one volley (each of its channels spikes once, with jitter)
and the groups fire in a class-specific order, ``spacing`` steps apart, after a random onset.
Every class uses the same set of group onsets (a permutation of ``0, spacing, 2 spacing, ...``),
so every class shows the same frames in a different order: a network of memoryless neurons
(``tau ~ 1`` step) that sums its per-step outputs sees only the bag of frames and stays at
chance, while synaptic delays can align the volleys of two groups on one neuron (a coincidence
detector) and read the order. Random noise spikes and dropped spikes make the coincidences
noisy, so delays that align whole volleys do better than a few lucky random ones.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from neuronkit.common import check_number, check_probability, check_seed, check_type

__all__ = ["SpikeTiming", "spike_timing_dataset", "timing_patterns"]


class SpikeTiming(NamedTuple):
    """A generated split. ``x_*: [T, N, C]`` binary spike frames (time-major; ``C = n_groups *
    channels_per_group``, group ``g`` is channels ``g * channels_per_group ...``), ``y_*: [N]``
    int64 labels; ``onsets: [n_classes, n_groups]`` each class's group onsets (steps after the
    sample's random start)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    onsets: Tensor


def timing_patterns(n_classes: int, n_groups: int, spacing: int, *, seed: int = 0) -> Tensor:
    """``n_classes`` distinct group orders: ``[n_classes, n_groups]`` onsets in steps.

    Each row is a permutation of ``0, spacing, ..., (n_groups - 1) * spacing``, drawn without
    replacement from the ``n_groups!`` orders (seeded); class 0 is not special.
    """
    check_number("n_groups", n_groups, ge=2, integer=True)
    check_number("n_classes", n_classes, ge=2, le=math.factorial(n_groups), integer=True)
    check_number("spacing", spacing, ge=1, integer=True)
    check_seed(seed)
    rng = np.random.default_rng(seed)
    perms = list(itertools.permutations(range(n_groups)))
    rows = rng.choice(len(perms), size=n_classes, replace=False)
    return torch.tensor([[spacing * r for r in perms[i]] for i in rows], dtype=torch.long)


def spike_timing_dataset(
    *,
    n_classes: int = 8,
    n_groups: int = 4,
    channels_per_group: int = 8,
    spacing: int = 4,
    T: int = 40,
    n_train: int = 512,
    n_test: int = 512,
    jitter: float = 0.5,
    noise_rate: float = 0.02,
    drop: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> SpikeTiming:
    """Generate a seeded train/test split of the relative-timing task (module docstring).

    A sample of class ``c`` starting at ``t0 ~ U{0, ..., T - 1 - span - 2 margin}`` (``span =
    (n_groups - 1) * spacing``, ``margin = ceil(3 * jitter)``) has channel ``i`` of group
    ``g`` spike at ``t0 + margin + onsets[c, g] + round(N(0, jitter^2))`` unless dropped
    (probability ``drop``), plus independent noise spikes with probability ``noise_rate`` per
    channel and step. Classes are balanced (round-robin labels, then shuffled).

    Args:
        n_classes: number of classes (distinct group orders, <= ``n_groups!``).
        n_groups / channels_per_group: channel layout.
        spacing: steps between consecutive group volleys.
        T: steps per sample (must fit the pattern: ``T > span + 2 * margin``).
        n_train / n_test: samples per split.
        jitter: std of each spike's timing jitter in steps (>= 0).
        noise_rate: probability of a noise spike per channel and step, in [0, 1).
        drop: probability that a pattern spike is missing, in [0, 1).
        seed: seed of the patterns and samples (same seed, same data).
        dtype: floating dtype of the frames.
    """
    check_number("n_groups", n_groups, ge=2, integer=True)
    check_number("n_classes", n_classes, ge=2, le=math.factorial(n_groups), integer=True)
    check_number("channels_per_group", channels_per_group, ge=1, integer=True)
    check_number("spacing", spacing, ge=1, integer=True)
    check_number("T", T, ge=2, integer=True)
    check_number("n_train", n_train, ge=1, integer=True)
    check_number("n_test", n_test, ge=1, integer=True)
    check_number("jitter", jitter, ge=0)
    check_probability("noise_rate", noise_rate, open_right=True)
    check_probability("drop", drop, open_right=True)
    check_seed(seed)
    check_type("dtype", dtype, torch.dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    span = (n_groups - 1) * spacing
    margin = math.ceil(3 * jitter)
    if span + 2 * margin >= T:
        raise ValueError(
            f"T must be > (n_groups - 1) * spacing + 2 * ceil(3 * jitter) = {span + 2 * margin} "
            f"so a pattern fits, got {T}"
        )
    onsets = timing_patterns(n_classes, n_groups, spacing, seed=seed)
    rng = np.random.default_rng([seed, 1])
    C = n_groups * channels_per_group
    group_of = np.repeat(np.arange(n_groups), channels_per_group)  # [C]

    def split(n: int) -> tuple[Tensor, Tensor]:
        y = rng.permutation(np.arange(n) % n_classes)
        t0 = rng.integers(0, T - span - 2 * margin, size=n)  # inclusive range up to T-1-span-2m
        base = t0[:, None] + margin + onsets.numpy()[y][:, group_of]  # [n, C]
        times = base + np.rint(rng.normal(0.0, jitter, size=(n, C))).astype(np.int64)
        times = np.clip(times, 0, T - 1)
        keep = rng.random((n, C)) >= drop
        x = (rng.random((T, n, C)) < noise_rate).astype(np.float32)
        ni, ci = np.nonzero(keep)
        x[times[ni, ci], ni, ci] = 1.0
        return torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=torch.long)

    x_tr, y_tr = split(n_train)
    x_te, y_te = split(n_test)
    return SpikeTiming(x_tr, y_tr, x_te, y_te, onsets)
