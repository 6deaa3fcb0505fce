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
:mod:`neuronkit.pruning.dynamic`. Federated sign supermasks over a SynFlow-pruned network
(HideNseek, Vallapuram et al.; Flower deployment with the extra ``flwr``):
:mod:`neuronkit.pruning.federated`. Sensitive Neuron Dropout and Efficient EigenScore for
Hugging Face causal LMs (SeND, Mohammadzadeh et al.; extra ``transformers``):
:mod:`neuronkit.pruning.send`. ENAS, random search with weight sharing and controller analysis
(Adam & Lorraine): :mod:`neuronkit.pruning.nas`. Emergent and customized bricks of a tiny
transformer: discovery, MoEfication routing, merging, growing (Xiao et al.):
:mod:`neuronkit.pruning.bricks`. Data loaders: :mod:`neuronkit.pruning.data`.
"""

from importlib import import_module as _import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from . import bricks, data, dynamic, federated, lottery, nas, send
from .bricks import BrickDiscovery, BrickTransformer, MoEfication
from .dynamic import DynamicCNN, FTWTConfig, MaskPredictor, estimate_flops, train_ftwt
from .federated import SignSupermask, dirichlet_partition, run_hidenseek, synflow_prune
from .graph import DependencyGraph, Group, GroupMember, Positions, UntraceableModelError
from .hf_config import sync_hf_config
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
    hf_zoo,
    zoo,
)
from .nas import CellSpace, ENASController, WeightSharingSupernet, enas_search, random_search
from .obspa import OBSImportance, layer_hessians, obspa_prune
from .plot import LayerWidth, layer_widths, plot_widths
from .prune import (
    MaskedLayerNorm,
    MaskedNorm,
    PruningPlan,
    plan_from_masks,
    plan_pruning,
    prune,
    prune_model,
    soft_prune,
)
from .send import efficient_eigenscore, eigenscore, train_send
from .tracing import ConcreteTracer, trace_model

if TYPE_CHECKING:
    from . import boosting
    from .boosting import GBNNClassifier, GBNNRegressor

__version__ = _version("neuronkit-pruning")


def __getattr__(name: str) -> Any:
    """GBNN subclasses scikit-learn estimators: it (and scikit-learn, ~2 s) loads on first use."""
    if name in ("boosting", "GBNNClassifier", "GBNNRegressor"):
        boosting = _import_module(".boosting", __name__)
        return boosting if name == "boosting" else getattr(boosting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MLP",
    "BrickDiscovery",
    "BrickTransformer",
    "CellSpace",
    "ConcreteTracer",
    "DenseNetStyle",
    "DependencyGraph",
    "DigitsCNN",
    "DynamicCNN",
    "ENASController",
    "FTWTConfig",
    "GBNNClassifier",
    "GBNNRegressor",
    "Group",
    "GroupImportance",
    "GroupMember",
    "LayerWidth",
    "MagnitudeImportance",
    "MaskPredictor",
    "MaskedLayerNorm",
    "MaskedNorm",
    "MoEfication",
    "MobileNetV2Style",
    "OBSImportance",
    "Positions",
    "PruningPlan",
    "ResNetStyle",
    "SNIPImportance",
    "SignSupermask",
    "SmallViT",
    "SynFlowImportance",
    "TaylorImportance",
    "UntraceableModelError",
    "VGGStyle",
    "WeightSharingSupernet",
    "__version__",
    "boosting",
    "bricks",
    "count_macs",
    "count_params",
    "data",
    "dirichlet_partition",
    "dynamic",
    "efficient_eigenscore",
    "eigenscore",
    "enas_search",
    "estimate_flops",
    "federated",
    "hf_zoo",
    "iterative_magnitude_pruning",
    "layer_hessians",
    "layer_widths",
    "linear_mode_connectivity",
    "lottery",
    "nas",
    "obspa_prune",
    "plan_from_masks",
    "plan_pruning",
    "plot_widths",
    "prune",
    "prune_model",
    "random_search",
    "run_hidenseek",
    "send",
    "soft_prune",
    "sync_hf_config",
    "synflow_prune",
    "trace_model",
    "train_ftwt",
    "train_send",
    "zoo",
]
