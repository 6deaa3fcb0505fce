"""Configurable foundation models at small scale: emergent and customized bricks.

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective".

- :mod:`.tasks`: synthetic multi-task token data marked by a task token.
- :mod:`.model`: a tiny transformer whose FFN neurons are exposed and gateable.
- :mod:`.discovery`: emergent bricks: activation frequency per task, co-activation clustering
  of FFN neurons into partitions, task-partition assignment, ablation damage.
- :mod:`.routing`: MoEfication (Zhang et al. 2022): balanced experts, learned per-token
  router, routed inference with a fraction of the FFN neurons.
- :mod:`.merging`: customized bricks as task vectors, weight averaging and task arithmetic.
- :mod:`.growing`: function-preserving addition of neurons / a new brick to an FFN.
"""

from .discovery import (
    BrickDiscovery,
    ablation_damage,
    activation_frequency,
    assign_partitions,
    cluster_neurons,
    coactivation_affinity,
    ffn_activations,
    own_over_other_damage,
    random_ablation_masks,
)
from .growing import GROW_METHODS, grow_ffn, grow_model
from .merging import average_weights, customize_brick, task_arithmetic, task_vector
from .model import (
    FFN,
    Block,
    BrickTransformer,
    SelfAttention,
    TrainResult,
    task_accuracy,
    train_multitask,
)
from .routing import (
    SPLIT_METHODS,
    ExpertRouter,
    MoEfication,
    RoutedGate,
    balanced_kmeans,
    expert_scores,
    oracle_gate,
    router_recall,
    split_ffn,
    train_router,
)
from .tasks import IGNORE_INDEX, TASKS, TaskData, make_task_data, task_targets

__all__ = [
    "FFN",
    "GROW_METHODS",
    "IGNORE_INDEX",
    "SPLIT_METHODS",
    "TASKS",
    "Block",
    "BrickDiscovery",
    "BrickTransformer",
    "ExpertRouter",
    "MoEfication",
    "RoutedGate",
    "SelfAttention",
    "TaskData",
    "TrainResult",
    "ablation_damage",
    "activation_frequency",
    "assign_partitions",
    "average_weights",
    "balanced_kmeans",
    "cluster_neurons",
    "coactivation_affinity",
    "customize_brick",
    "expert_scores",
    "ffn_activations",
    "grow_ffn",
    "grow_model",
    "make_task_data",
    "oracle_gate",
    "own_over_other_damage",
    "random_ablation_masks",
    "router_recall",
    "split_ffn",
    "task_accuracy",
    "task_arithmetic",
    "task_targets",
    "task_vector",
    "train_multitask",
    "train_router",
]
