"""Datasets that ship with the package's dependencies (nothing is ever downloaded)."""

from .digits import Digits, load_digits

__all__ = ["Digits", "load_digits"]
