"""Quadratic neurons and ReLinear (Fan et al., "Expressivity and Trainability of Quadratic
Networks")."""

from .neuron import (
    QuadraticLinear,
    QuadraticNet,
    conventional_net,
    quadratic_forward,
    quadratic_net_size,
    relinear_param_groups,
)

__all__ = [
    "QuadraticLinear",
    "QuadraticNet",
    "conventional_net",
    "quadratic_forward",
    "quadratic_net_size",
    "relinear_param_groups",
]
