"""Synapse models: learnable delays (DCLS)."""

from .delays import (
    DELAY_MODES,
    DelayedLinear,
    SigmaSchedule,
    clamp_delays,
    count_parameters,
    delay_kernel,
    delay_param_groups,
    delay_parameters,
    delayed_layers,
    delayed_linear,
    gaussian_delay_taps,
    hard_delay_kernel,
    round_delays,
    weight_parameters,
)

__all__ = [
    "DELAY_MODES",
    "DelayedLinear",
    "SigmaSchedule",
    "clamp_delays",
    "count_parameters",
    "delay_kernel",
    "delay_param_groups",
    "delay_parameters",
    "delayed_layers",
    "delayed_linear",
    "gaussian_delay_taps",
    "hard_delay_kernel",
    "round_delays",
    "weight_parameters",
]
