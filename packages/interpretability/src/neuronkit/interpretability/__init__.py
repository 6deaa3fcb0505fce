"""neuronkit.interpretability: tools to understand what neurons and representations do.

Reusable core:

* :mod:`.hooks`: :class:`LayerRecorder` (activations / gradients of named layers, hooks
  always removed), :func:`layer_activations`.
* :mod:`.attribution`: batched saliency, gradient x input, integrated gradients, SmoothGrad,
  loss gradients and a random baseline, numerically equal to Captum.
* :mod:`.rsa`: RDMs (squared Euclidean, correlation, cosine, Mahalanobis, crossnobis) with
  rsatoolbox's conventions and numbers, noise precision estimates, RDM comparisons (cosine,
  correlation, Spearman, Kendall tau-a), geo-topological and geodesic transforms.
* :mod:`.information`: binned mutual information between unit activations (per-unit
  quantile bins, MI matrices, entropies).
* :mod:`.robustness`: FGSM / PGD attacks and (adversarial) training of small classifiers.
* :mod:`.data`: BlockDigits, the synthetic signal-coordinate task, noisy layer responses.

Paper methods (each with a reproduction ``interpretability.<name>``):
:mod:`.attribution_eval.diffroar` (DiffROAR), :mod:`.representation.trsa` (topological RSA),
:mod:`.representation.convergent` (convergent learning: unit matching, sparse prediction,
spectral groups), :mod:`.geometry.level_sets` (level set traversal, ``lst``),
:mod:`.dynamics.info_plane` (information plane), :mod:`.fusion.contextual` (contextual fusion),
:mod:`.evaluators.widedeep` (WideDeep evaluator networks), :mod:`.stimuli.mds` (most
discriminative stimuli), :mod:`.visualization` (activation maximization engine and multifaceted
feature visualization, ``mfv``), :mod:`.description` (MILAN neuron descriptions) and
:mod:`.codebook` (codebook features for torch and Hugging Face models).
"""

from importlib.metadata import version as _version

from . import codebook, description, dynamics, evaluators, fusion, geometry, stimuli, visualization
from .attribution import (
    IG_METHODS,
    input_x_gradient,
    integrated_gradients,
    integration_nodes,
    loss_gradient,
    random_attribution,
    saliency,
    smoothgrad,
)
from .attribution_eval import (
    DiffROARResult,
    diffroar,
    keep_mask,
    mask_inputs,
    roar_accuracy,
    signal_mass,
)
from .codebook import CodebookLayer, insert_codebooks, insert_hf_codebooks
from .description import ExemplarCaptioner, compute_exemplars, describe_units
from .dynamics import InformationPlane, track_information_plane
from .evaluators import WideDeep, WideDeepResult
from .fusion import LateFusionClassifier, robustness_curves
from .geometry import level_set_traversal, line_confidence, triangle_confidence
from .hooks import LayerRecorder, get_layer, layer_activations, layer_names
from .information import kde_information, mutual_information, mutual_information_matrix
from .representation import (
    GeoTopological,
    TRSASelection,
    compare_networks,
    gt_grid,
    identification_accuracy,
    match_units,
    select_geo_topological,
)
from .robustness import accuracy, fgsm_attack, pgd_attack, train_classifier
from .rsa import (
    COMPARISONS,
    NOISE_ESTIMATORS,
    RDM_METHODS,
    compare_rdms,
    geo_topological,
    geodesic,
    kendall_tau_a,
    n_conditions,
    noise_precision,
    noise_precision_from_measurements,
    rank_transform,
    rdm,
    rdm_to_square,
    rdm_to_vector,
)
from .stimuli import MDSClustering, mds_clustering
from .visualization import discover_facets, maximize_activation, visualize_facets

__version__ = _version("neuronkit-interpretability")

__all__ = [
    "COMPARISONS",
    "IG_METHODS",
    "NOISE_ESTIMATORS",
    "RDM_METHODS",
    "CodebookLayer",
    "DiffROARResult",
    "ExemplarCaptioner",
    "GeoTopological",
    "InformationPlane",
    "LateFusionClassifier",
    "LayerRecorder",
    "MDSClustering",
    "TRSASelection",
    "WideDeep",
    "WideDeepResult",
    "__version__",
    "accuracy",
    "codebook",
    "compare_networks",
    "compare_rdms",
    "compute_exemplars",
    "describe_units",
    "description",
    "diffroar",
    "discover_facets",
    "dynamics",
    "evaluators",
    "fgsm_attack",
    "fusion",
    "geo_topological",
    "geodesic",
    "geometry",
    "get_layer",
    "gt_grid",
    "identification_accuracy",
    "input_x_gradient",
    "insert_codebooks",
    "insert_hf_codebooks",
    "integrated_gradients",
    "integration_nodes",
    "kde_information",
    "keep_mask",
    "kendall_tau_a",
    "layer_activations",
    "layer_names",
    "level_set_traversal",
    "line_confidence",
    "loss_gradient",
    "mask_inputs",
    "match_units",
    "maximize_activation",
    "mds_clustering",
    "mutual_information",
    "mutual_information_matrix",
    "n_conditions",
    "noise_precision",
    "noise_precision_from_measurements",
    "pgd_attack",
    "random_attribution",
    "rank_transform",
    "rdm",
    "rdm_to_square",
    "rdm_to_vector",
    "roar_accuracy",
    "robustness_curves",
    "saliency",
    "select_geo_topological",
    "signal_mass",
    "smoothgrad",
    "stimuli",
    "track_information_plane",
    "train_classifier",
    "triangle_confidence",
    "visualization",
    "visualize_facets",
]
