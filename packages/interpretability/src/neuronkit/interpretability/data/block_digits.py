"""BlockDigits: a BlockMNIST-style dataset built from scikit-learn's bundled 8x8 digits.

Shah, Jain & Netrapalli (2021, "Do input gradients highlight discriminative features?")
introduced BlockMNIST: each image stacks a *signal* block (an MNIST digit, which determines the
label) and a *null* block (the same fixed patch in every image, carrying no information),
with the signal placed on top or at the bottom at random. Because the discriminative
coordinates are known per instance, one can measure how much of an attribution falls on them.

Here the digit is one of scikit-learn's 8x8 digits (no download), so images are
``[1, 16, 8]``: rows 0-7 are the top block, rows 8-15 the bottom block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_number, check_seed

from ._index import subset_index

__all__ = ["BlockDigits", "block_digits", "load_digits", "null_patch"]


def load_digits(classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits as ``x: [N, 1, 8, 8]`` in [0, 1] (float32) and ``y: [N]``.

    Args:
        classes: keep only these digits, relabelled ``0..len(classes)-1`` in the given order;
            ``None`` keeps all ten with their own labels.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float32) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    if classes is not None:
        classes = list(classes)
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct digits, got {classes}")
        for c in classes:
            check_number("classes[i]", c, ge=0, le=9, integer=True)
        keep = np.isin(y, classes)
        relabel = {c: i for i, c in enumerate(classes)}
        x = x[keep]
        y = np.array([relabel[int(v)] for v in y[keep]], dtype=np.int64)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def null_patch(size: int = 8) -> torch.Tensor:
    """The null block: a hollow square (value 1 on its outline, 0 elsewhere), ``[size, size]``."""
    check_number("size", size, ge=4, integer=True)
    patch = torch.zeros(size, size)
    lo, hi = 1, size - 2
    patch[lo, lo : hi + 1] = 1.0
    patch[hi, lo : hi + 1] = 1.0
    patch[lo : hi + 1, lo] = 1.0
    patch[lo : hi + 1, hi] = 1.0
    return patch


@dataclass(frozen=True)
class BlockDigits:
    """A BlockDigits dataset.

    Attributes:
        x: ``[N, 1, 16, 8]`` images in [0, 1].
        y: ``[N]`` labels.
        signal_top: ``[N]`` bool, whether the digit is the top block.
    """

    x: torch.Tensor
    y: torch.Tensor
    signal_top: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def signal_mask(self) -> torch.Tensor:
        """``[N, 1, 16, 8]`` bool mask of each image's signal block."""
        n, _, h, w = self.x.shape
        half = h // 2
        top = torch.zeros(h, w, dtype=torch.bool)
        top[:half] = True
        masks = torch.where(self.signal_top[:, None, None], top, ~top)
        return masks.reshape(n, 1, h, w)

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> BlockDigits:
        """The examples at ``index`` (``[M]`` integer indices or an ``[N]`` boolean mask)."""
        idx = subset_index(index, len(self.y))
        return BlockDigits(self.x[idx], self.y[idx], self.signal_top[idx])


def block_digits(
    classes: Sequence[int] | None = (0, 1),
    *,
    seed: int = 0,
    null_value: float = 1.0,
) -> BlockDigits:
    """Build BlockDigits from every scikit-learn digit of ``classes``.

    Args:
        classes: digits to keep (relabelled ``0..``); the paper's BlockMNIST uses two classes
            (0 and 1, the default); ``None`` keeps all ten.
        seed: seeds the top/bottom placement of the signal block (independent of the label).
        null_value: intensity of the null patch's outline.
    """
    check_seed(seed)
    check_number("null_value", null_value, ge=0.0)
    digits, labels = load_digits(classes)
    n = digits.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    top = torch.rand(n, generator=gen) < 0.5
    patch = (null_patch(8) * null_value).expand(n, 1, 8, 8)
    upper = torch.where(top[:, None, None, None], digits, patch)
    lower = torch.where(top[:, None, None, None], patch, digits)
    x = torch.cat([upper, lower], dim=2).contiguous()
    return BlockDigits(x=x, y=labels, signal_top=top)
