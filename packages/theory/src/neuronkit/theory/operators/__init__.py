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
from .training import (
    LOSSES,
    OperatorFit,
    evaluate_operator,
    fit_operator,
    relative_h1_loss,
    relative_l2,
)

__all__ = [
    "LOSSES",
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
    "relative_h1_loss",
    "relative_l2",
    "restrict2d",
]
