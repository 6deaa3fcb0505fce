"""The row selection the datasets' ``subset`` methods share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def subset_index(index: torch.Tensor | np.ndarray | Sequence[int], n: int) -> torch.Tensor:
    """``index`` as int64 row indices into ``n`` examples: integer indices ``[M]`` (negative
    ones count from the end) or a boolean mask ``[n]``; floats and other shapes raise."""
    idx = torch.as_tensor(np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index))
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"index must be a [{n}] boolean mask, got shape {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.ndim != 1 or idx.is_floating_point() or idx.is_complex():
        raise ValueError(
            f"index must be a 1-D integer or boolean array, got {idx.dtype} of shape "
            f"{tuple(idx.shape)}"
        )
    return idx.long()
