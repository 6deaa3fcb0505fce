"""Neural operators parameterized by multigrid (MgNO, He, Liu & Xu, ICLR 2024) and baselines."""

from .baselines import UNet2d
from .mgno import (
    PADDING_MODES,
    MgConv,
    MgNO,
    Prolongation,
    Restriction,
    coarse_size,
    count_parameters,
    level_sizes,
    prolong2d,
    restrict2d,
)
from .training import OperatorFit, evaluate_operator, fit_operator, relative_l2

__all__ = [
    "PADDING_MODES",
    "MgConv",
    "MgNO",
    "OperatorFit",
    "Prolongation",
    "Restriction",
    "UNet2d",
    "coarse_size",
    "count_parameters",
    "evaluate_operator",
    "fit_operator",
    "level_sizes",
    "prolong2d",
    "relative_l2",
    "restrict2d",
]
