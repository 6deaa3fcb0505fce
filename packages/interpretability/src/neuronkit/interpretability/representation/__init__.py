"""Comparing representations: topological RSA (Lin & Kriegeskorte) and convergent learning
across networks (Li et al.)."""

from .convergent import (
    CorrelationBlocks,
    LayerComparison,
    SparsePrediction,
    UnitGroups,
    UnitMatching,
    aligned_correlation,
    compare_networks,
    correlation_blocks,
    match_units,
    permutation_baseline,
    spectral_groups,
    unit_correlation,
    unit_samples,
)
from .trsa import (
    GeoTopological,
    TRSASelection,
    gt_grid,
    identification_accuracy,
    select_geo_topological,
)

__all__ = [
    "CorrelationBlocks",
    "GeoTopological",
    "LayerComparison",
    "SparsePrediction",
    "TRSASelection",
    "UnitGroups",
    "UnitMatching",
    "aligned_correlation",
    "compare_networks",
    "correlation_blocks",
    "gt_grid",
    "identification_accuracy",
    "match_units",
    "permutation_baseline",
    "select_geo_topological",
    "spectral_groups",
    "unit_correlation",
    "unit_samples",
]
