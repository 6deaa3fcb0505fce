"""Grokking: generalizing and memorizing neurons on (corrupted) modular arithmetic."""

from .corrupted import (
    QuadraticMLP,
    TrainingHistory,
    corrupted_accuracies,
    lowest_ipr_neurons,
    neuron_ipr,
    prune_neurons,
    train_modular,
)

__all__ = [
    "QuadraticMLP",
    "TrainingHistory",
    "corrupted_accuracies",
    "lowest_ipr_neurons",
    "neuron_ipr",
    "prune_neurons",
    "train_modular",
]
