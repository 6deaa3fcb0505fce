"""neuronkit.theory: small exact experiments and tools from learning theory.

Implemented (see the package README for the status of the other entries):

* sparse distributed representations and active dendrites (Ahmad & Hawkins): exact false-match
  and union probabilities, Monte Carlo simulators (:mod:`neuronkit.theory.sdr`);
* multitasking Hebbian networks learning diluted patterns in parallel (Agliari et al.)
  (:mod:`neuronkit.theory.hebbian`);
* neural-collapse metrics NC1-NC4, simplex ETFs and the vicinity model (Tirer et al.)
  (:mod:`neuronkit.theory.measures`, :mod:`neuronkit.theory.collapse`);
* grokking with corrupted labels: modular arithmetic data, the quadratic MLP, Fourier IPR,
  IPR pruning (Doshi et al.) (:mod:`neuronkit.theory.data`, :mod:`neuronkit.theory.grokking`);
* rich and lazy learning: effective rank, empirical NTK (torch.func), kernel alignment,
  rank-controlled connectivity (Liu et al.) (:mod:`neuronkit.theory.lazy_rich`) and the
  lazy-to-rich grokking model (Kumar et al.) (:mod:`neuronkit.theory.grokking`);
* local complexity of ReLU networks (Humayun et al.) (:mod:`neuronkit.theory.complexity`);
* deep and infinite-depth NTK recursions and their classifiers (Radhakrishnan et al.)
  (:mod:`neuronkit.theory.ntk`);
* quadratic neurons and ReLinear (Fan et al.) (:mod:`neuronkit.theory.quadratic`);
* KAN layers with several activation spaces and S-KAN (:mod:`neuronkit.theory.kan`);
* bandlimited random-weight networks (:mod:`neuronkit.theory.bandlimited`);
* simplicity bias on LMS data (Shah et al.) (:mod:`neuronkit.theory.simplicity`);
* RNNs with trainable per-neuron timescales and single- / multi-head curricula on N-parity and
  N-DMS (Khajehabdollahi et al.) (:mod:`neuronkit.theory.timescales`);
* inverted-bottleneck MLPs, compute accounting and power-law fits (Bachmann et al.)
  (:mod:`neuronkit.theory.scaling`);
* neural processes and martingale posterior neural processes (Lee et al.)
  (:mod:`neuronkit.theory.processes`);
* MgNO multigrid neural operators, a U-Net baseline and a Darcy finite-difference solver (He et
  al.) (:mod:`neuronkit.theory.operators`, :mod:`neuronkit.theory.data`);
* open dynamical systems, wiring diagrams and SGD training as nested systems (Spivak & Hosgood)
  (:mod:`neuronkit.theory.dynamical`).
"""

from importlib.metadata import version as _version

from . import dynamical, operators, processes, scaling, timescales
from .bandlimited import BandlimitedRandomNet, approximation_curve, draw_bandlimited_weights
from .collapse import (
    VicinityCollapse,
    VicinityResult,
    fit_vicinity,
    vicinity_classifier,
    vicinity_first_order,
    vicinity_objective,
)
from .complexity import local_complexity
from .data import (
    LMSDataset,
    ModularDataset,
    darcy_dataset,
    function_task,
    lms_data,
    modular_arithmetic,
    one_hot_pairs,
)
from .dynamical import WiringDiagram, compose, simulate, training_system
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
from .kan import KAN, SKAN, KANLayer, SKANLayer, train_skan
from .lazy_rich import low_rank_weight, train_rich_lazy
from .measures import (
    center_kernel,
    class_means,
    effective_rank,
    empirical_ntk,
    fourier_ipr,
    inverse_participation_ratio,
    kernel_alignment,
    kernel_distance,
    kernel_target_alignment,
    nc1,
    nc2,
    nc3,
    nc4,
    neural_collapse_metrics,
    relative_change,
    simplex_etf,
    split_threshold,
    within_class_variability,
)
from .ntk import DeepNTKClassifier, InfiniteDepthNTKClassifier, ntk_recursion
from .operators import MgNO, UNet2d, fit_operator
from .processes import (
    ConditionalNeuralProcess,
    MartingalePosteriorNP,
    NeuralProcess,
    train_process,
)
from .quadratic import QuadraticLinear, QuadraticNet, relinear_param_groups
from .scaling import BottleneckMLP, PlainMLP, fit_power_law
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
from .simplicity import feature_reliance, randomize_coordinates, randomized_accuracy
from .timescales import TimescaleRNN, train_curriculum

__version__ = _version("neuronkit-theory")

__all__ = [
    "KAN",
    "SKAN",
    "BandlimitedRandomNet",
    "BottleneckMLP",
    "ConditionalNeuralProcess",
    "DeepNTKClassifier",
    "GlauberResult",
    "InfiniteDepthNTKClassifier",
    "KANLayer",
    "LMSDataset",
    "MartingalePosteriorNP",
    "MgNO",
    "ModularDataset",
    "MonteCarloEstimate",
    "NeuralProcess",
    "PlainMLP",
    "QuadraticLinear",
    "QuadraticMLP",
    "QuadraticNet",
    "SKANLayer",
    "TimescaleRNN",
    "TrainingHistory",
    "UNet2d",
    "VicinityCollapse",
    "VicinityResult",
    "WiringDiagram",
    "__version__",
    "approximation_curve",
    "center_kernel",
    "class_means",
    "compose",
    "corrupted_accuracies",
    "darcy_dataset",
    "dataset_entropy",
    "diluted_patterns",
    "draw_bandlimited_weights",
    "dynamical",
    "effective_rank",
    "empirical_ntk",
    "expected_union_size",
    "false_match_probability",
    "feature_reliance",
    "fit_operator",
    "fit_power_law",
    "fit_vicinity",
    "fourier_ipr",
    "function_task",
    "glauber_dynamics",
    "hebbian_couplings",
    "hebbian_factors",
    "hierarchical_overlaps",
    "hierarchical_stability_limit",
    "inverse_participation_ratio",
    "kernel_alignment",
    "kernel_distance",
    "kernel_target_alignment",
    "lms_data",
    "local_complexity",
    "log_false_match_probability",
    "low_rank_weight",
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
    "ntk_recursion",
    "one_hot_pairs",
    "operators",
    "overlap_count",
    "processes",
    "prune_neurons",
    "randomize_coordinates",
    "randomized_accuracy",
    "relative_change",
    "relinear_param_groups",
    "scaling",
    "simplex_etf",
    "simulate",
    "simulate_false_match",
    "simulate_union_false_match",
    "split_threshold",
    "timescales",
    "train_curriculum",
    "train_modular",
    "train_process",
    "train_rich_lazy",
    "train_skan",
    "training_system",
    "union_false_match_probability",
    "union_size_distribution",
    "vicinity_classifier",
    "vicinity_first_order",
    "vicinity_objective",
    "wilson_interval",
    "within_class_variability",
]
