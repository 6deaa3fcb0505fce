"""Complexity measures of trained networks: local complexity (linear-region density)."""

from .local import cross_polytope, decision_boundary_points, local_complexity, relu_preactivations

__all__ = ["cross_polytope", "decision_boundary_points", "local_complexity", "relu_preactivations"]
