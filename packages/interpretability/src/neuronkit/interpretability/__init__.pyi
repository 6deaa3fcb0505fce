"""Public names of neuronkit.interpretability, imported lazily by ``__init__.py`` on first use."""

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
    infidelity,
    keep_mask,
    mask_inputs,
    roar_accuracy,
    sensitivity_max,
    signal_mass,
)
from .codebook import CodebookLayer, insert_codebooks, insert_hf_codebooks
from .deeplift import deeplift, deeplift_shap, layer_deeplift, layer_deeplift_shap
from .description import ExemplarCaptioner, compute_exemplars, describe_units
from .dynamics import InformationPlane, track_information_plane
from .evaluators import WideDeep, WideDeepResult
from .feature_ablation import feature_ablation
from .feature_permutation import feature_permutation
from .fusion import LateFusionClassifier, robustness_curves
from .geometry import level_set_traversal, line_confidence, triangle_confidence
from .grad_cam import grad_cam
from .gradient_shap import gradient_shap, layer_gradient_shap
from .guided import deconvolution, guided_backprop, guided_grad_cam
from .hooks import LayerRecorder, get_layer, layer_activations, layer_names
from .influence_function import hessian_influence, hessian_self_influence
from .information import kde_information, mutual_information, mutual_information_matrix
from .internal_influence import internal_influence
from .kernel_shap import kernel_shap
from .layer_conductance import layer_conductance
from .layer_feature_ablation import layer_feature_ablation, layer_feature_permutation
from .layer_gradient_x_activation import layer_gradient_x_activation
from .layer_integrated_gradients import layer_integrated_gradients
from .lime import lime
from .llm_attribution import (
    LLM_METHODS,
    LLMAttributionResult,
    llm_attribution,
    llm_gradient_attribution,
    llm_lrp_attribution,
)
from .lrp import (
    ATTENTION_RULES,
    Alpha1Beta0Rule,
    AlphaBetaRule,
    EpsilonRule,
    FlatRule,
    GammaRule,
    IdentityRule,
    WSquareRule,
    ZBoxRule,
    layer_lrp,
    lrp,
)
from .neuron import neuron_conductance, neuron_output
from .occlusion import occlusion
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
    KERNEL_COMPARISONS,
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
from .rsa_crossval import (
    CV_BOOTSTRAPS,
    FITTED_COMPARISONS,
    BootstrapCrossValidation,
    CrossValidation,
    Interpolation,
    Selection,
    bootstrap_crossvalidate,
    crossvalidate,
    fit_interpolation,
    fit_weights,
)
from .rsa_inference import (
    BOOTSTRAPS,
    ModelEvaluation,
    evaluate_models,
    noise_ceiling,
    pool_rdms,
)
from .shapley import shapley_value_sampling, shapley_values
from .similarity_influence import SIMILARITY_METRICS, similarity_influence
from .stimuli import MDSClustering, mds_clustering
from .tcav import CAV, TCAVResult, layer_sensitivities, tcav, tcav_score, train_cav
from .tracin import tracin_influence, tracin_self_influence
from .visualization import discover_facets, maximize_activation, visualize_facets

__version__: str

__all__ = [
    "ATTENTION_RULES",
    "BOOTSTRAPS",
    "CAV",
    "COMPARISONS",
    "CV_BOOTSTRAPS",
    "FITTED_COMPARISONS",
    "IG_METHODS",
    "KERNEL_COMPARISONS",
    "LLM_METHODS",
    "NOISE_ESTIMATORS",
    "RDM_METHODS",
    "SIMILARITY_METRICS",
    "Alpha1Beta0Rule",
    "AlphaBetaRule",
    "BootstrapCrossValidation",
    "CodebookLayer",
    "CrossValidation",
    "DiffROARResult",
    "EpsilonRule",
    "ExemplarCaptioner",
    "FlatRule",
    "GammaRule",
    "GeoTopological",
    "IdentityRule",
    "InformationPlane",
    "Interpolation",
    "LLMAttributionResult",
    "LateFusionClassifier",
    "LayerRecorder",
    "MDSClustering",
    "ModelEvaluation",
    "Selection",
    "TCAVResult",
    "TRSASelection",
    "WSquareRule",
    "WideDeep",
    "WideDeepResult",
    "ZBoxRule",
    "__version__",
    "accuracy",
    "bootstrap_crossvalidate",
    "codebook",
    "compare_networks",
    "compare_rdms",
    "compute_exemplars",
    "crossvalidate",
    "deconvolution",
    "deeplift",
    "deeplift_shap",
    "describe_units",
    "description",
    "diffroar",
    "discover_facets",
    "dynamics",
    "evaluate_models",
    "evaluators",
    "feature_ablation",
    "feature_permutation",
    "fgsm_attack",
    "fit_interpolation",
    "fit_weights",
    "fusion",
    "geo_topological",
    "geodesic",
    "geometry",
    "get_layer",
    "grad_cam",
    "gradient_shap",
    "gt_grid",
    "guided_backprop",
    "guided_grad_cam",
    "hessian_influence",
    "hessian_self_influence",
    "identification_accuracy",
    "infidelity",
    "input_x_gradient",
    "insert_codebooks",
    "insert_hf_codebooks",
    "integrated_gradients",
    "integration_nodes",
    "internal_influence",
    "kde_information",
    "keep_mask",
    "kendall_tau_a",
    "kernel_shap",
    "layer_activations",
    "layer_conductance",
    "layer_deeplift",
    "layer_deeplift_shap",
    "layer_feature_ablation",
    "layer_feature_permutation",
    "layer_gradient_shap",
    "layer_gradient_x_activation",
    "layer_integrated_gradients",
    "layer_lrp",
    "layer_names",
    "layer_sensitivities",
    "level_set_traversal",
    "lime",
    "line_confidence",
    "llm_attribution",
    "llm_gradient_attribution",
    "llm_lrp_attribution",
    "loss_gradient",
    "lrp",
    "mask_inputs",
    "match_units",
    "maximize_activation",
    "mds_clustering",
    "mutual_information",
    "mutual_information_matrix",
    "n_conditions",
    "neuron_conductance",
    "neuron_output",
    "noise_ceiling",
    "noise_precision",
    "noise_precision_from_measurements",
    "occlusion",
    "pgd_attack",
    "pool_rdms",
    "random_attribution",
    "rank_transform",
    "rdm",
    "rdm_to_square",
    "rdm_to_vector",
    "roar_accuracy",
    "robustness_curves",
    "saliency",
    "select_geo_topological",
    "sensitivity_max",
    "shapley_value_sampling",
    "shapley_values",
    "signal_mass",
    "similarity_influence",
    "smoothgrad",
    "stimuli",
    "tcav",
    "tcav_score",
    "tracin_influence",
    "tracin_self_influence",
    "track_information_plane",
    "train_cav",
    "train_classifier",
    "triangle_confidence",
    "visualization",
    "visualize_facets",
]
