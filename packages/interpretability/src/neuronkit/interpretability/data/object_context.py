"""Object-in-context scenes: a digit (the object) on a class-correlated texture (the context).

Built for the contextual-fusion experiments of Akumalla, Haney & Bazhenov, "Contextual Fusion
For Adversarial Robustness" (2020), whose fused classifier combines foreground features (an
ImageNet-CNN, the *object*) with background features (a Places-CNN, the *scene*). Their data
(CIFAR-10, MS COCO) carries the class both in the object and, less reliably, in its context
(boats on water, planes in the sky). Here the same structure is generated, with nothing
downloaded:

* the object is one of scikit-learn's 8x8 digits (the label), pasted into a fixed box at the
  centre of a ``scene_size x scene_size`` scene (it occludes the background);
* the context is a sinusoidal grating whose orientation and spatial frequency are fixed by a
  *scene category* (one per class), with a random phase and pixel noise per image;
* the scene category equals the label with probability ``agreement`` and is otherwise drawn
  uniformly from the other categories, so the context is informative but not decisive.

The two streams' inputs are the object crop ``objects`` ([N, 1, 8, 8], the box of the scene)
and the full scene ``scenes`` ([N, 1, S, S]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_number, check_probability, check_seed

from ._index import subset_index
from .block_digits import load_digits

__all__ = ["ObjectContextData", "context_texture", "object_context"]

_OBJECT_SIZE = 8


def context_texture(
    categories: torch.Tensor,
    n_categories: int,
    size: int,
    *,
    phase: torch.Tensor | None = None,
    amplitude: float = 0.8,
) -> torch.Tensor:
    """Noise-free context gratings, one per entry of ``categories``.

    Category ``k`` has orientation ``pi * (k mod n_orient) / n_orient`` and spatial frequency
    ``2 * (1 + k // n_orient)`` cycles per scene, with ``n_orient = ceil(n_categories / 2)``
    (so ten categories are five orientations times two frequencies).

    Args:
        categories: ``[N]`` integer scene categories in ``[0, n_categories)``.
        n_categories: number of scene categories (``>= 2``).
        size: scene side length in pixels (``>= 4``).
        phase: ``[N]`` phases in radians (default 0).
        amplitude: peak-to-peak intensity of the grating, centred on 0.5 (in ``(0, 1]``).

    Returns:
        ``[N, 1, size, size]`` float32 textures in ``[0, 1]``.
    """
    check_number("n_categories", n_categories, ge=2, integer=True)
    check_number("size", size, ge=4, integer=True)
    check_number("amplitude", amplitude, gt=0.0, le=1.0)
    if not isinstance(categories, torch.Tensor) or categories.ndim != 1:
        raise ValueError(
            f"categories must be a 1-D integer tensor [N], got {type(categories).__name__} "
            f"with shape {tuple(getattr(categories, 'shape', ()))}"
        )
    if categories.is_floating_point():
        raise TypeError(f"categories must be an integer tensor, got dtype {categories.dtype}")
    if categories.numel() and (int(categories.min()) < 0 or int(categories.max()) >= n_categories):
        raise ValueError(
            f"categories must lie in [0, {n_categories}), got range "
            f"[{int(categories.min())}, {int(categories.max())}]"
        )
    n = categories.shape[0]
    if phase is None:
        phase = torch.zeros(n)
    if not isinstance(phase, torch.Tensor) or phase.shape != (n,):
        raise ValueError(
            f"phase must be a tensor of shape [{n}], got {tuple(getattr(phase, 'shape', ()))}"
        )
    n_orient = math.ceil(n_categories / 2)
    cat = categories.long()
    theta = math.pi * (cat % n_orient).float() / n_orient
    freq = 2.0 * (1 + cat // n_orient).float()
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    proj = xx[None] * torch.cos(theta)[:, None, None] + yy[None] * torch.sin(theta)[:, None, None]
    arg = 2 * math.pi * freq[:, None, None] * proj / size + phase.float()[:, None, None]
    tex = 0.5 + 0.5 * amplitude * torch.cos(arg)
    return tex[:, None].contiguous()


@dataclass(frozen=True)
class ObjectContextData:
    """An object-in-context dataset.

    Attributes:
        scenes: ``[N, 1, S, S]`` full scenes in ``[0, 1]`` (the context stream's input).
        objects: ``[N, 1, 8, 8]`` object crops (the scene inside ``box``; the object stream's
            input).
        y: ``[N]`` labels (the digit's class).
        context: ``[N]`` scene categories (equal to ``y`` with probability ``agreement``).
        digit_index: ``[N]`` index of the source digit (to split without leaking digits).
        box: ``(top, left, height, width)`` of the object inside the scene.
    """

    scenes: torch.Tensor
    objects: torch.Tensor
    y: torch.Tensor
    context: torch.Tensor
    digit_index: torch.Tensor
    box: tuple[int, int, int, int]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def agreement(self) -> float:
        """Observed fraction of scenes whose category equals the label."""
        return float((self.context == self.y).float().mean()) if len(self) else float("nan")

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> ObjectContextData:
        """The examples at ``index`` (``[M]`` integer indices or an ``[N]`` boolean mask; same
        box)."""
        idx = subset_index(index, len(self.y))
        return ObjectContextData(
            self.scenes[idx],
            self.objects[idx],
            self.y[idx],
            self.context[idx],
            self.digit_index[idx],
            self.box,
        )

    def split(self, train_fraction: float, *, seed: int = 0) -> tuple[ObjectContextData, ...]:
        """Random train/test split by source digit (copies of one digit stay together)."""
        check_number("train_fraction", train_fraction, gt=0.0, lt=1.0)
        check_seed(seed)
        digits = torch.unique(self.digit_index)
        gen = torch.Generator().manual_seed(int(seed))
        order = digits[torch.randperm(len(digits), generator=gen)]
        n_train = round(train_fraction * len(digits))
        train_digits = order[:n_train]
        in_train = torch.isin(self.digit_index, train_digits)
        return self.subset(torch.nonzero(in_train).flatten()), self.subset(
            torch.nonzero(~in_train).flatten()
        )


def object_context(
    classes: Sequence[int] | None = None,
    *,
    agreement: float = 0.9,
    scene_size: int = 24,
    copies: int = 1,
    amplitude: float = 0.8,
    noise: float = 0.1,
    seed: int = 0,
) -> ObjectContextData:
    """Build object-in-context scenes from scikit-learn's digits (see the module docstring).

    Args:
        classes: digits to keep (relabelled ``0..``); ``None`` keeps all ten.
        agreement: probability that the scene category equals the label (``1/K`` makes the
            context uninformative, 1 makes it decisive).
        scene_size: side of the scene (``>= 12``); the digit occupies the central 8x8 box.
        copies: scenes per source digit (each with its own context draw, phase and noise).
        amplitude: peak-to-peak intensity of the context grating.
        noise: standard deviation of the Gaussian pixel noise on the background.
        seed: seeds the scene categories, phases and noise.

    Returns:
        :class:`ObjectContextData` with ``N = copies * n_digits`` examples.
    """
    check_probability("agreement", agreement)
    check_number("scene_size", scene_size, ge=12, integer=True)
    check_number("copies", copies, ge=1, integer=True)
    check_number("amplitude", amplitude, gt=0.0, le=1.0)
    check_number("noise", noise, ge=0.0)
    check_seed(seed)
    digits, labels = load_digits(classes)
    k = int(labels.max()) + 1
    digits = digits.repeat(copies, 1, 1, 1)
    y = labels.repeat(copies)
    digit_index = torch.arange(labels.shape[0]).repeat(copies)
    n = y.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    agree = torch.rand(n, generator=gen) < agreement
    # a uniformly drawn *other* category: shift the label by 1..K-1
    shift = torch.randint(1, k, (n,), generator=gen)
    context = torch.where(agree, y, (y + shift) % k)
    phase = torch.rand(n, generator=gen) * 2 * math.pi
    scenes = context_texture(context, k, scene_size, phase=phase, amplitude=amplitude)
    if noise > 0:
        scenes = scenes + noise * torch.randn(scenes.shape, generator=gen)
    scenes = scenes.clamp(0.0, 1.0)
    top = left = (scene_size - _OBJECT_SIZE) // 2
    scenes[:, :, top : top + _OBJECT_SIZE, left : left + _OBJECT_SIZE] = digits
    box = (top, left, _OBJECT_SIZE, _OBJECT_SIZE)
    objects = scenes[:, :, top : top + _OBJECT_SIZE, left : left + _OBJECT_SIZE].clone()
    return ObjectContextData(
        scenes=scenes.contiguous(),
        objects=objects,
        y=y,
        context=context,
        digit_index=digit_index,
        box=box,
    )
