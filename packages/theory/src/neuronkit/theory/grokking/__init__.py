"""Grokking: generalizing and memorizing neurons on (corrupted) modular arithmetic, and grokking
as the transition from lazy to rich training (Kumar et al. 2024)."""

from .corrupted import (
    QuadraticMLP,
    TrainingHistory,
    corrupted_accuracies,
    lowest_ipr_neurons,
    neuron_ipr,
    prune_neurons,
    train_modular,
)
from .lazy_rich import (
    LazyRichHistory,
    QuadraticFeatureData,
    ScaledQuadraticNet,
    grokking_delay,
    initial_ntk_regression,
    interpolation_plateau,
    quadratic_feature_data,
    train_lazy_rich,
)

__all__ = [
    "LazyRichHistory",
    "QuadraticFeatureData",
    "QuadraticMLP",
    "ScaledQuadraticNet",
    "TrainingHistory",
    "corrupted_accuracies",
    "grokking_delay",
    "initial_ntk_regression",
    "interpolation_plateau",
    "lowest_ipr_neurons",
    "neuron_ipr",
    "prune_neurons",
    "quadratic_feature_data",
    "train_lazy_rich",
    "train_modular",
]
