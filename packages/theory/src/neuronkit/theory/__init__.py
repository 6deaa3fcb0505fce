"""neuronkit.theory: small exact experiments and tools from learning theory.

Implemented (see the package README for the status of the other entries):

* sparse distributed representations and active dendrites (Ahmad & Hawkins): exact false-match
  and union probabilities, Monte Carlo simulators (:mod:`neuronkit.theory.sdr`);
* multitasking Hebbian networks learning diluted patterns in parallel (Agliari et al.)
  (:mod:`neuronkit.theory.hebbian`);
* neural-collapse metrics NC1-NC4, simplex ETFs and the vicinity model (Tirer et al.)
  (:mod:`neuronkit.theory.measures`, :mod:`neuronkit.theory.collapse`);
* grokking with corrupted labels: modular arithmetic data, the quadratic MLP, Fourier IPR,
  IPR pruning (Doshi et al.) (:mod:`neuronkit.theory.data`, :mod:`neuronkit.theory.grokking`).
"""

from importlib.metadata import version as _version

from .collapse import (
    VicinityCollapse,
    VicinityResult,
    fit_vicinity,
    vicinity_classifier,
    vicinity_first_order,
    vicinity_objective,
)
from .data import ModularDataset, modular_arithmetic, one_hot_pairs
from .grokking import (
    QuadraticMLP,
    TrainingHistory,
    corrupted_accuracies,
    lowest_ipr_neurons,
    neuron_ipr,
    prune_neurons,
    train_modular,
)
from .hebbian import (
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
from .measures import (
    class_means,
    fourier_ipr,
    inverse_participation_ratio,
    nc1,
    nc2,
    nc3,
    nc4,
    neural_collapse_metrics,
    simplex_etf,
    split_threshold,
    within_class_variability,
)
from .sdr import (
    MonteCarloEstimate,
    expected_union_size,
    false_match_probability,
    log_false_match_probability,
    overlap_count,
    simulate_false_match,
    simulate_union_false_match,
    union_false_match_probability,
    union_size_distribution,
    wilson_interval,
)

__version__ = _version("neuronkit-theory")

__all__ = [
    "GlauberResult",
    "ModularDataset",
    "MonteCarloEstimate",
    "QuadraticMLP",
    "TrainingHistory",
    "VicinityCollapse",
    "VicinityResult",
    "__version__",
    "class_means",
    "corrupted_accuracies",
    "dataset_entropy",
    "diluted_patterns",
    "expected_union_size",
    "false_match_probability",
    "fit_vicinity",
    "fourier_ipr",
    "glauber_dynamics",
    "hebbian_couplings",
    "hebbian_factors",
    "hierarchical_overlaps",
    "hierarchical_stability_limit",
    "inverse_participation_ratio",
    "log_false_match_probability",
    "lowest_ipr_neurons",
    "mattis_overlaps",
    "mean_field_overlaps",
    "modular_arithmetic",
    "nc1",
    "nc2",
    "nc3",
    "nc4",
    "neural_collapse_metrics",
    "neuron_ipr",
    "noisy_examples",
    "one_hot_pairs",
    "overlap_count",
    "prune_neurons",
    "simplex_etf",
    "simulate_false_match",
    "simulate_union_false_match",
    "split_threshold",
    "train_modular",
    "union_false_match_probability",
    "union_size_distribution",
    "vicinity_classifier",
    "vicinity_first_order",
    "vicinity_objective",
    "wilson_interval",
    "within_class_variability",
]
