"""Kolmogorov-Arnold networks with selectable activation spaces (KAN, S-KAN), and their learned
edge functions (:func:`edge_functions`, :func:`plot_edges`)."""

from .basis import (
    SPACES,
    basis_values,
    bspline_basis,
    bspline_features,
    bspline_linear,
    chebyshev_basis,
    extended_grid,
    fourier_basis,
    rbf_basis,
    uniform_bspline_basis,
    wavelet_basis,
)
from .layers import KAN, SKAN, KANLayer, SKANLayer, matched_mlp, mlp_parameter_count
from .plot import edge_functions, plot_edges
from .train import train_regression, train_skan

__all__ = [
    "KAN",
    "SKAN",
    "SPACES",
    "KANLayer",
    "SKANLayer",
    "basis_values",
    "bspline_basis",
    "bspline_features",
    "bspline_linear",
    "chebyshev_basis",
    "edge_functions",
    "extended_grid",
    "fourier_basis",
    "matched_mlp",
    "mlp_parameter_count",
    "plot_edges",
    "rbf_basis",
    "train_regression",
    "train_skan",
    "uniform_bspline_basis",
    "wavelet_basis",
]
