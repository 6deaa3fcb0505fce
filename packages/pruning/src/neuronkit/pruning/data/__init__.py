"""Data loaders shared by the pruning reproductions (nothing is downloaded)."""

from .digits import DigitsSplit, load_digits

__all__ = ["DigitsSplit", "load_digits"]
