"""Classification metrics shared by the packages (tensor methods only: no torch import)."""

from __future__ import annotations

from typing import Any


def correct_predictions(logits: Any, labels: Any, dim: int = -1) -> Any:
    """Which argmax predictions equal the labels; a score vector holding NaN is never correct.

    ``argmax`` reads NaN as the largest value, so a diverged model would be credited with the
    share of whichever class its first NaN logit stands for.

    Args:
        logits: class scores, the classes along ``dim`` (e.g. ``[N, C]``).
        labels: integer labels shaped like ``logits`` without ``dim`` (e.g. ``[N]``).
        dim: the class axis.

    Returns:
        Boolean tensor shaped like ``labels``.
    """
    if not hasattr(logits, "isnan"):
        raise TypeError(f"logits must be a tensor of class scores, got {type(logits).__name__}")
    return (logits.argmax(dim) == labels) & ~logits.isnan().any(dim)
