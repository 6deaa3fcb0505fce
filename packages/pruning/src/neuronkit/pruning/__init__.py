"""neuronkit.pruning: structured pruning of any architecture, lottery tickets, supermasks, dynamic
and LLM pruning.

Structural pruner (SPA, Wang et al. 2024, "Structurally Prune Anything"): a traced channel
dependency graph with coupled groups (:class:`DependencyGraph`), group-level importance
criteria, physical removal (:func:`prune`) with its soft-pruning oracle (:func:`soft_prune`),
OBSPA (:func:`obspa_prune`), the ONNX route (:mod:`neuronkit.pruning.onnx`, extra ``onnx``), a
reference model zoo and one MAC counter.
"""

from importlib.metadata import version as _version

from .graph import DependencyGraph, Group, GroupMember, UntraceableModelError
from .importance import (
    GroupImportance,
    MagnitudeImportance,
    SNIPImportance,
    SynFlowImportance,
    TaylorImportance,
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
    "Group",
    "GroupImportance",
    "GroupMember",
    "MagnitudeImportance",
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
    "count_macs",
    "count_params",
    "layer_hessians",
    "obspa_prune",
    "plan_from_masks",
    "plan_pruning",
    "prune",
    "prune_model",
    "soft_prune",
    "zoo",
]
