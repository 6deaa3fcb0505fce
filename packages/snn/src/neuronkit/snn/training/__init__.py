"""Training methods for spiking networks: BPTT, online SLTT / SLTT-K, IIR-SNN latency reduction.

* :mod:`.bptt`: step-by-step networks (:class:`StepSequential`), plain BPTT, evaluation.
* :mod:`.sltt`: SLTT and SLTT-K (Meng et al., ICCV 2023), :class:`SavedTensorMeter`.
* :mod:`.iir`: iterative initialization and retraining to T = 1 (Chowdhury et al., IIR-SNN).
"""

from .bptt import (
    EpochStats,
    StepSequential,
    bptt_train_epoch,
    detach_state,
    evaluate_steps,
    minibatches,
    step_inputs,
)
from .iir import (
    IIRLIF,
    AccumulatedReadout,
    IIRResult,
    IIRStage,
    ScaledTriangle,
    ann_to_snn,
    cnn_ann,
    evaluate_latency,
    fold_batchnorm,
    iir_cnn,
    iir_retrain,
    spike_counts,
    train_ann,
    train_at_latency,
)
from .sltt import SavedTensorMeter, sltt_loss, sltt_neuron, sltt_train_epoch

__all__ = [
    "IIRLIF",
    "AccumulatedReadout",
    "EpochStats",
    "IIRResult",
    "IIRStage",
    "SavedTensorMeter",
    "ScaledTriangle",
    "StepSequential",
    "ann_to_snn",
    "bptt_train_epoch",
    "cnn_ann",
    "detach_state",
    "evaluate_latency",
    "evaluate_steps",
    "fold_batchnorm",
    "iir_cnn",
    "iir_retrain",
    "minibatches",
    "sltt_loss",
    "sltt_neuron",
    "sltt_train_epoch",
    "spike_counts",
    "step_inputs",
    "train_ann",
    "train_at_latency",
]
