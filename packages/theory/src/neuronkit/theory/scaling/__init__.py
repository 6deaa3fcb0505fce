"""Scaling MLPs (Bachmann, Anagnostidis & Hofmann, "Scaling MLPs: A Tale of Inductive Bias",
NeurIPS 2023): the inverted-bottleneck MLP and a plain MLP baseline (:mod:`.mlps`), compute
accounting and power-law fits of error vs compute (:mod:`.laws`), and the training recipe with
Lion, label smoothing, MixUp and random crops (:mod:`.train`)."""

from .laws import (
    PowerLawFit,
    approx_training_flops,
    fit_power_law,
    fit_power_law_offset,
    forward_flops,
    pareto_frontier,
    plot_scaling,
    training_flops,
)
from .mlps import (
    BottleneckBlock,
    BottleneckMLP,
    PlainMLP,
    bottleneck_mlp_params,
    count_parameters,
    plain_mlp_params,
    plain_width_for_params,
)
from .train import Lion, TrainingRecord, mixup, random_translate, train_classifier

__all__ = [
    "BottleneckBlock",
    "BottleneckMLP",
    "Lion",
    "PlainMLP",
    "PowerLawFit",
    "TrainingRecord",
    "approx_training_flops",
    "bottleneck_mlp_params",
    "count_parameters",
    "fit_power_law",
    "fit_power_law_offset",
    "forward_flops",
    "mixup",
    "pareto_frontier",
    "plain_mlp_params",
    "plain_width_for_params",
    "plot_scaling",
    "random_translate",
    "train_classifier",
    "training_flops",
]
