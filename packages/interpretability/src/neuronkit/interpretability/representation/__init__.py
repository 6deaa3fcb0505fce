"""Comparing representations: topological RSA (Lin & Kriegeskorte)."""

from .trsa import (
    GeoTopological,
    TRSASelection,
    gt_grid,
    identification_accuracy,
    select_geo_topological,
)

__all__ = [
    "GeoTopological",
    "TRSASelection",
    "gt_grid",
    "identification_accuracy",
    "select_geo_topological",
]
