"""Shallow random networks with bandlimited random weights (Li, Sonoda et al., ICML 2023)."""

from .random_net import (
    ACTIVATIONS,
    ApproximationCurve,
    BandlimitedRandomNet,
    approximation_curve,
    draw_bandlimited_weights,
    relative_l2_error,
)

__all__ = [
    "ACTIVATIONS",
    "ApproximationCurve",
    "BandlimitedRandomNet",
    "approximation_curve",
    "draw_bandlimited_weights",
    "relative_l2_error",
]
