"""Hebbian associative networks: multitasking networks learning diluted patterns in parallel."""

from .multitask import (
    GlauberResult,
    dataset_entropy,
    diluted_patterns,
    glauber_dynamics,
    hebbian_couplings,
    hebbian_factors,
    hierarchical_overlaps,
    hierarchical_stability_limit,
    mattis_overlaps,
    mean_field_overlaps,
    noisy_examples,
)

__all__ = [
    "GlauberResult",
    "dataset_entropy",
    "diluted_patterns",
    "glauber_dynamics",
    "hebbian_couplings",
    "hebbian_factors",
    "hierarchical_overlaps",
    "hierarchical_stability_limit",
    "mattis_overlaps",
    "mean_field_overlaps",
    "noisy_examples",
]
