"""Neural collapse: the vicinity (perturbation) model of Tirer, Huang & Niles-Weed."""

from .vicinity import (
    VicinityCollapse,
    VicinityResult,
    fit_vicinity,
    vicinity_classifier,
    vicinity_first_order,
    vicinity_objective,
)

__all__ = [
    "VicinityCollapse",
    "VicinityResult",
    "fit_vicinity",
    "vicinity_classifier",
    "vicinity_first_order",
    "vicinity_objective",
]
