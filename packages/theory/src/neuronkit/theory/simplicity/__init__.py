"""Simplicity-bias tools (Shah et al., "The Pitfalls of Simplicity Bias in Neural Networks"):
S-randomization feature-reliance tests and the authors' margin-band noise model for the noisy
linear coordinate; the LMS data live in :mod:`neuronkit.theory.data.lms`."""

from .noise import margin_band_noise
from .randomization import feature_reliance, randomize_coordinates, randomized_accuracy

__all__ = [
    "feature_reliance",
    "margin_band_noise",
    "randomize_coordinates",
    "randomized_accuracy",
]
