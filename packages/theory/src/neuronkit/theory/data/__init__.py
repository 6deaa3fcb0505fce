"""Dataset generators: modular arithmetic with corrupted labels."""

from .modular import ModularDataset, modular_arithmetic, one_hot_pairs

__all__ = ["ModularDataset", "modular_arithmetic", "one_hot_pairs"]
