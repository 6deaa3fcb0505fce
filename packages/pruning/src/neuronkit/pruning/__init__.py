"""neuronkit.pruning: structured pruning of any architecture, lottery tickets, supermasks, dynamic
and LLM pruning.

Structural pruner (SPA, Wang et al. 2024, "Structurally Prune Anything"): a traced channel
dependency graph with coupled groups (:class:`DependencyGraph`), group-level importance
criteria, physical removal (:func:`prune`) with its soft-pruning oracle (:func:`soft_prune`),
OBSPA (:func:`obspa_prune`), the ONNX route (:mod:`neuronkit.pruning.onnx`, extra ``onnx``), a
reference model zoo and one MAC counter.

Lottery tickets with rewinding and linear-mode-connectivity instability (Frankle et al.):
:mod:`neuronkit.pruning.lottery`. Gradient-boosted networks whose last-trained units can be
switched off (GBNN, Emami & Martinez-Munoz): :mod:`neuronkit.pruning.boosting`. Dynamic
per-input filter pruning with self-supervised mask prediction (FTWT, Elkerdawy et al.):
:mod:`neuronkit.pruning.dynamic`. Data loaders:
:mod:`neuronkit.pruning.data`.
"""

from importlib.metadata import version as _version

from . import boosting, data, dynamic, lottery
from .boosting import GBNNClassifier, GBNNRegressor
from .dynamic import DynamicCNN, FTWTConfig, MaskPredictor, estimate_flops, train_ftwt
from .graph import DependencyGraph, Group, GroupMember, UntraceableModelError
from .importance import (
    GroupImportance,
    MagnitudeImportance,
    SNIPImportance,
    SynFlowImportance,
    TaylorImportance,
)
from .lottery import (
    iterative_magnitude_pruning,
    linear_mode_connectivity,
)
from .macs import count_macs, count_params
from .models import (
    MLP,
    DenseNetStyle,
    DigitsCNN,
    MobileNetV2Style,
    ResNetStyle,
    SmallViT,
    VGGStyle,
    zoo,
)
from .obspa import OBSImportance, layer_hessians, obspa_prune
from .prune import (
    MaskedLayerNorm,
    PruningPlan,
    plan_from_masks,
    plan_pruning,
    prune,
    prune_model,
    soft_prune,
)

__version__ = _version("neuronkit-pruning")

__all__ = [
    "MLP",
    "DenseNetStyle",
    "DependencyGraph",
    "DigitsCNN",
    "DynamicCNN",
    "FTWTConfig",
    "GBNNClassifier",
    "GBNNRegressor",
    "Group",
    "GroupImportance",
    "GroupMember",
    "MagnitudeImportance",
    "MaskPredictor",
    "MaskedLayerNorm",
    "MobileNetV2Style",
    "OBSImportance",
    "PruningPlan",
    "ResNetStyle",
    "SNIPImportance",
    "SmallViT",
    "SynFlowImportance",
    "TaylorImportance",
    "UntraceableModelError",
    "VGGStyle",
    "__version__",
    "boosting",
    "count_macs",
    "count_params",
    "data",
    "dynamic",
    "estimate_flops",
    "iterative_magnitude_pruning",
    "layer_hessians",
    "linear_mode_connectivity",
    "lottery",
    "obspa_prune",
    "plan_from_masks",
    "plan_pruning",
    "prune",
    "prune_model",
    "soft_prune",
    "train_ftwt",
    "zoo",
]
