"""Evaluating attribution methods: DiffROAR (Shah et al. 2021), signal-mass analysis, and
infidelity and max-sensitivity (Yeh et al. 2019)."""

from .diffroar import DiffROARResult, diffroar, keep_mask, mask_inputs, roar_accuracy, signal_mass
from .infidelity import PERTURBATIONS, infidelity
from .sensitivity import sensitivity_max

__all__ = [
    "PERTURBATIONS",
    "DiffROARResult",
    "diffroar",
    "infidelity",
    "keep_mask",
    "mask_inputs",
    "roar_accuracy",
    "sensitivity_max",
    "signal_mass",
]
