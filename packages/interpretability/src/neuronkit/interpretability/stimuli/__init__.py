"""Stimulus-based analysis of neuron populations: Most Discriminative Stimuli (Burg et al. 2024)."""

from .mds import (
    MDSClustering,
    MDSResult,
    assign_to_stimuli,
    cluster_mean_responses,
    contrastive_objective,
    laplace_penalty,
    mds_clustering,
    optimize_stimuli,
    project_to_norm,
    response_statistics,
)

__all__ = [
    "MDSClustering",
    "MDSResult",
    "assign_to_stimuli",
    "cluster_mean_responses",
    "contrastive_objective",
    "laplace_penalty",
    "mds_clustering",
    "optimize_stimuli",
    "project_to_norm",
    "response_statistics",
]
