"""Inference-time methods for spiking networks: Dynamic Confidence early exit."""

from .dynamic_confidence import (
    ConfidenceSweep,
    ExitResult,
    OracleResult,
    RunResult,
    accumulated_confidence,
    calibrate_threshold,
    confidence_sweep,
    dynamic_confidence,
    oracle_exit,
    pareto_front,
    run_dynamic_confidence,
    stepwise_accuracy,
)

__all__ = [
    "ConfidenceSweep",
    "ExitResult",
    "OracleResult",
    "RunResult",
    "accumulated_confidence",
    "calibrate_threshold",
    "confidence_sweep",
    "dynamic_confidence",
    "oracle_exit",
    "pareto_front",
    "run_dynamic_confidence",
    "stepwise_accuracy",
]
