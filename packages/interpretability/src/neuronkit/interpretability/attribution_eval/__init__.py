"""Evaluating attribution methods: DiffROAR (Shah et al. 2021) and signal-mass analysis."""

from .diffroar import DiffROARResult, diffroar, keep_mask, mask_inputs, roar_accuracy, signal_mass

__all__ = ["DiffROARResult", "diffroar", "keep_mask", "mask_inputs", "roar_accuracy", "signal_mass"]
