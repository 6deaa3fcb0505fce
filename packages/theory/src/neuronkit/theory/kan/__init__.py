"""Kolmogorov-Arnold networks with selectable activation spaces (KAN, S-KAN)."""

from .basis import (
    SPACES,
    basis_values,
    bspline_basis,
    chebyshev_basis,
    extended_grid,
    fourier_basis,
    rbf_basis,
    uniform_bspline_basis,
    wavelet_basis,
)
from .layers import KAN, SKAN, KANLayer, SKANLayer, matched_mlp, mlp_parameter_count
from .train import train_regression

__all__ = [
    "KAN",
    "SKAN",
    "SPACES",
    "KANLayer",
    "SKANLayer",
    "basis_values",
    "bspline_basis",
    "chebyshev_basis",
    "extended_grid",
    "fourier_basis",
    "matched_mlp",
    "mlp_parameter_count",
    "rbf_basis",
    "train_regression",
    "uniform_bspline_basis",
    "wavelet_basis",
]
