"""Argument checks shared by modules of the package (private)."""

from __future__ import annotations

from typing import Any

import numpy as np


def float64_array(name: str, x: Any) -> np.ndarray:
    """``np.asarray(x, dtype=np.float64)``, or a TypeError naming ``name`` when ``x`` does not
    convert (a string, ragged nested lists, ...); values that convert are unchanged."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a numeric array or tensor, got {type(x).__name__} ({err})"
        ) from err
