"""Trainable single-neuron timescales, curricula and network-mediated timescales.

Khajehabdollahi, Zeraati, Giannakakis, Schaefer, Martius & Levina, "Emergent mechanisms for long
timescales depend on training curriculum and affect performance in memory tasks" (ICLR 2024):
:class:`TimescaleRNN` (leaky RNN with a trainable ``tau >= 1`` per neuron),
:func:`train_curriculum` (single-head and multi-head curricula on N-parity / N-DMS, tasks in
:mod:`neuronkit.theory.data.parity`) and :func:`network_timescales` (autocorrelation timescales of
the trained network).
"""

from .analysis import NetworkTimescales, autocorrelation, fit_ac_timescale, network_timescales
from .curriculum import (
    CURRICULA,
    CurriculumResult,
    CurriculumStage,
    curriculum_heads,
    evaluate_heads,
    train_curriculum,
)
from .rnn import ACTIVATIONS, PLACEMENTS, TimescaleRNN, timescale_rnn_step

__all__ = [
    "ACTIVATIONS",
    "CURRICULA",
    "PLACEMENTS",
    "CurriculumResult",
    "CurriculumStage",
    "NetworkTimescales",
    "TimescaleRNN",
    "autocorrelation",
    "curriculum_heads",
    "evaluate_heads",
    "fit_ac_timescale",
    "network_timescales",
    "timescale_rnn_step",
    "train_curriculum",
]
