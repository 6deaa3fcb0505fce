"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes) as torch tensors.

The data ships inside scikit-learn; nothing is downloaded. Pixels (0..16) are scaled to [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from neuronkit.common import check_number, check_type

__all__ = ["Digits", "load_digits"]


class Digits(NamedTuple):
    """A stratified split. ``x_*``: ``[N, 1, 8, 8]`` (``[N, 64]`` if flattened) in [0, 1];
    ``y_*``: ``[N]`` int64 labels 0..9."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_digits(
    *,
    test_size: float = 0.25,
    seed: int = 0,
    flatten: bool = False,
    dtype: torch.dtype | None = None,
) -> Digits:
    """Load digits with a seeded, class-stratified train/test split.

    Args:
        test_size: fraction of the 1797 images held out, in (0, 1).
        seed: split seed (same seed, same split).
        flatten: return images as ``[N, 64]`` instead of ``[N, 1, 8, 8]``.
        dtype: floating dtype of the images (``None``: torch's default dtype).
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    check_number("test_size", test_size, gt=0, lt=1)
    check_number("seed", seed, ge=0, lt=2**32, integer=True)
    check_type("flatten", flatten, bool)
    if dtype is None:
        dtype = torch.get_default_dtype()
    check_type("dtype", dtype, torch.dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    data = _sk_load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data / 16.0, data.target, test_size=test_size, random_state=seed, stratify=data.target
    )
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)

    def images(a: object) -> Tensor:
        return torch.as_tensor(a, dtype=dtype).reshape(shape)

    def labels(a: object) -> Tensor:
        return torch.as_tensor(a, dtype=torch.long)

    return Digits(images(x_tr), labels(y_tr), images(x_te), labels(y_te))
