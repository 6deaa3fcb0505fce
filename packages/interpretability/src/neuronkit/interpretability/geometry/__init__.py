"""Geometry of a model's input space: Level Set Traversal and confidence over paths and hulls
(Balasubramanian et al., "Exploring Geometry of Blind Spots in Vision Models", NeurIPS 2023)."""

from .level_sets import (
    LevelSetTraversal,
    TriangleConfidence,
    barycentric_grid,
    class_confidence,
    level_set_traversal,
    line_confidence,
    orthogonal_component,
    relative_distance,
    triangle_confidence,
)

__all__ = [
    "LevelSetTraversal",
    "TriangleConfidence",
    "barycentric_grid",
    "class_confidence",
    "level_set_traversal",
    "line_confidence",
    "orthogonal_component",
    "relative_distance",
    "triangle_confidence",
]
