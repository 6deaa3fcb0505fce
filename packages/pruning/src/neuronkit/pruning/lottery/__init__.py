"""Lottery tickets with rewinding and linear-mode-connectivity instability.

Frankle, Dziugaite, Roy & Carbin (2019/2020), "Stabilizing the Lottery Ticket Hypothesis" /
"Linear Mode Connectivity and the Lottery Ticket Hypothesis"; Frankle & Carbin (2019), "The
Lottery Ticket Hypothesis".

- :mod:`.masks`: unstructured weight masks, global magnitude pruning, sparsity accounting.
- :mod:`.rewind`: iterative magnitude pruning with rewinding to iteration ``k`` and controls.
- :mod:`.stability`: linear interpolation between two trained copies and instability.
"""

from .masks import (
    DEFAULT_PRUNABLE,
    MaskHandle,
    apply_masks,
    attach_masks,
    detach_masks,
    global_magnitude_prune,
    layer_sparsity,
    ones_masks,
    prunable_weights,
    random_masks_like,
    sparsity,
)
from .rewind import (
    IMPResult,
    TrainConfig,
    accuracy,
    clone_state,
    iterative_magnitude_pruning,
    reinitialize,
    train,
    train_from,
)
from .stability import (
    LMCResult,
    instability,
    interpolate_states,
    interpolation_errors,
    linear_mode_connectivity,
)

__all__ = [
    "DEFAULT_PRUNABLE",
    "IMPResult",
    "LMCResult",
    "MaskHandle",
    "TrainConfig",
    "accuracy",
    "apply_masks",
    "attach_masks",
    "clone_state",
    "detach_masks",
    "global_magnitude_prune",
    "instability",
    "interpolate_states",
    "interpolation_errors",
    "iterative_magnitude_pruning",
    "layer_sparsity",
    "linear_mode_connectivity",
    "ones_masks",
    "prunable_weights",
    "random_masks_like",
    "reinitialize",
    "sparsity",
    "train",
    "train_from",
]
