"""scikit-learn's bundled 8x8 handwritten digits as a seeded, normalized train/test split.

1797 grayscale images of the digits 0-9 (UCI optical recognition of handwritten digits, as
shipped with scikit-learn; nothing is downloaded), returned as image tensors ``[N, 1, 8, 8]``
for the pruning reproductions (SPA, lottery tickets, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neuronkit.common import check_number, check_seed, check_type, floating_dtype

__all__ = ["DigitsSplit", "load_digits"]


@dataclass(frozen=True)
class DigitsSplit:
    """A train/test split of the digits.

    Attributes:
        x_train: ``[N_train, 1, 8, 8]`` images (float32 unless another ``dtype`` was asked).
        y_train: ``[N_train]`` int64 labels in ``0..9``.
        x_test: ``[N_test, 1, 8, 8]`` images (the dtype of ``x_train``).
        y_test: ``[N_test]`` int64 labels.
        mean: the scalar pixel mean subtracted (0 when not normalized).
        std: the scalar pixel standard deviation divided by (1 when not normalized).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: float
    std: float

    @property
    def num_classes(self) -> int:
        """The number of classes (10)."""
        return 10


def load_digits(
    test_fraction: float = 0.25,
    *,
    seed: int = 0,
    normalize: bool = True,
    dtype: torch.dtype | None = None,
) -> DigitsSplit:
    """Load the 8x8 digits as images and split them with a seeded stratified permutation.

    Args:
        test_fraction: fraction of each class held out for testing, in ``(0, 1)``.
        seed: seed of the split (the same seed always gives the same split).
        normalize: scale pixels to ``[0, 1]`` and then standardize them with the training
            split's scalar mean and standard deviation (test images use the same constants);
            ``False`` returns pixels scaled to ``[0, 1]`` only.
        dtype: floating dtype of the images; ``None`` (default): ``torch.get_default_dtype()``
            (float32 unless it was changed).

    Returns:
        :class:`DigitsSplit` with images ``[N, 1, 8, 8]`` (``dtype``) and labels ``[N]``
        (int64).
    """
    check_number("test_fraction", test_fraction, gt=0.0, lt=1.0)
    check_seed(seed)
    check_type("normalize", normalize, bool)
    dtype = floating_dtype("dtype", dtype)
    from sklearn.datasets import load_digits as _sk_load_digits

    data = _sk_load_digits()
    x = torch.tensor(data.data / 16.0, dtype=dtype).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(int(seed))
    test_idx, train_idx = [], []
    for c in range(10):  # stratified: the same fraction of every class is held out
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = max(1, round(float(test_fraction) * len(idx)))
        if n_test >= len(idx):
            raise ValueError(
                f"test_fraction leaves no training images of class {c}, got {test_fraction!r}"
            )
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr = torch.cat(train_idx)
    te = torch.cat(test_idx)
    tr = tr[torch.randperm(len(tr), generator=gen)]
    te = te[torch.randperm(len(te), generator=gen)]
    mean, std = 0.0, 1.0
    if normalize:
        mean = float(x[tr].mean())
        std = float(x[tr].std())
    return DigitsSplit(
        x_train=(x[tr] - mean) / std,
        y_train=y[tr].clone(),
        x_test=(x[te] - mean) / std,
        y_test=y[te].clone(),
        mean=mean,
        std=std,
    )
