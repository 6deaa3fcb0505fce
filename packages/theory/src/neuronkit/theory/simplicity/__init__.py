"""Simplicity-bias tools (Shah et al., "The Pitfalls of Simplicity Bias in Neural Networks"):
S-randomization feature-reliance tests; the LMS data live in :mod:`neuronkit.theory.data.lms`."""

from .randomization import feature_reliance, randomize_coordinates, randomized_accuracy

__all__ = ["feature_reliance", "randomize_coordinates", "randomized_accuracy"]
