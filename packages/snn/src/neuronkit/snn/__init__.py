"""neuronkit.snn: spiking neural networks: neuron models, surrogate gradients, fast multi-step
engine, encoders, time-folded layers, readouts.

Time-major throughout: multi-step tensors are ``[T, B, ...]``.
"""

from importlib.metadata import version as _version

from .data import Digits, load_digits
from .encoding import delta_encode, direct_encode, latency_encode, poisson_encode
from .layers import (
    SeqAdaptiveAvgPool2d,
    SeqAvgPool2d,
    SeqBatchNorm1d,
    SeqBatchNorm2d,
    SeqConv1d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    SeqMaxPool2d,
    TimeDistributed,
    over_time,
)
from .neurons import (
    ALIF,
    IF,
    LIF,
    PLIF,
    ALIFState,
    CuBaLIF,
    CuBaLIFState,
    IFState,
    LIFState,
    NeuronOutput,
    alif_multistep,
    alif_step,
    cuba_lif_multistep,
    cuba_lif_step,
    if_multistep,
    if_step,
    lif_multistep,
    lif_step,
)
from .readout import mean_membrane_ce, spike_count_ce, spike_count_mse, tet_ce
from .surrogate import (
    ATan,
    FastSigmoid,
    Gaussian,
    Rectangular,
    Sigmoid,
    SpikeFunction,
    Surrogate,
    Triangle,
    get_surrogate,
    heaviside,
    surrogate_names,
)

__version__ = _version("neuronkit-snn")

__all__ = [
    "ALIF",
    "IF",
    "LIF",
    "PLIF",
    "ALIFState",
    "ATan",
    "CuBaLIF",
    "CuBaLIFState",
    "Digits",
    "FastSigmoid",
    "Gaussian",
    "IFState",
    "LIFState",
    "NeuronOutput",
    "Rectangular",
    "SeqAdaptiveAvgPool2d",
    "SeqAvgPool2d",
    "SeqBatchNorm1d",
    "SeqBatchNorm2d",
    "SeqConv1d",
    "SeqConv2d",
    "SeqFlatten",
    "SeqLinear",
    "SeqMaxPool2d",
    "Sigmoid",
    "SpikeFunction",
    "Surrogate",
    "TimeDistributed",
    "Triangle",
    "__version__",
    "alif_multistep",
    "alif_step",
    "cuba_lif_multistep",
    "cuba_lif_step",
    "delta_encode",
    "direct_encode",
    "get_surrogate",
    "heaviside",
    "if_multistep",
    "if_step",
    "latency_encode",
    "lif_multistep",
    "lif_step",
    "load_digits",
    "mean_membrane_ce",
    "over_time",
    "poisson_encode",
    "spike_count_ce",
    "spike_count_mse",
    "surrogate_names",
    "tet_ce",
]
