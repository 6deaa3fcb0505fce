"""neuronkit.snn: spiking neural networks: neuron models, surrogate gradients, fast multi-step
engine, encoders, time-folded layers, readouts, NIR interchange.

Paper methods live in role subpackages: ``neuronkit.snn.training`` (BPTT, SLTT, IIR-SNN),
``neuronkit.snn.synapses`` (learnable delays), ``neuronkit.snn.inference`` (Dynamic
Confidence), ``neuronkit.snn.attacks`` (PDSG, FGSM/PGD, SDA).

``neuronkit.snn.plot`` draws spike rasters, membrane traces and population rates.

Time-major throughout: multi-step tensors are ``[T, B, ...]``.
"""

from importlib.metadata import version as _version

from ._native import native_status
from .data import (
    Digits,
    EventDigits,
    SpikeFrames,
    SpikeTiming,
    event_frames,
    load_digits,
    load_event_digits,
    load_shd,
    spike_timing_dataset,
)
from .encoding import delta_encode, direct_encode, latency_encode, poisson_encode
from .integrator import LI, Delay, LIState, delay, li_multistep, li_step
from .layers import (
    SeqAdaptiveAvgPool2d,
    SeqAvgPool2d,
    SeqBatchNorm1d,
    SeqBatchNorm2d,
    SeqConv1d,
    SeqConv2d,
    SeqDropout,
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
from .nir import NIRModule, from_nir, to_nir
from .readout import (
    mean_membrane_ce,
    softmax_sum_ce,
    softmax_sum_predict,
    spike_count_ce,
    spike_count_mse,
    tet_ce,
)
from .spike_linear import SpikeLinear
from .surrogate import (
    ATan,
    FastSigmoid,
    Gaussian,
    Rectangular,
    Sigmoid,
    SpikeFunction,
    Surrogate,
    SurrogateSwap,
    Triangle,
    get_surrogate,
    heaviside,
    surrogate_names,
    swap_surrogate,
)
from .synops import LayerOps, synaptic_operations

__version__ = _version("neuronkit-snn")

__all__ = [
    "ALIF",
    "IF",
    "LI",
    "LIF",
    "PLIF",
    "ALIFState",
    "ATan",
    "CuBaLIF",
    "CuBaLIFState",
    "Delay",
    "Digits",
    "EventDigits",
    "FastSigmoid",
    "Gaussian",
    "IFState",
    "LIFState",
    "LIState",
    "LayerOps",
    "NIRModule",
    "NeuronOutput",
    "Rectangular",
    "SeqAdaptiveAvgPool2d",
    "SeqAvgPool2d",
    "SeqBatchNorm1d",
    "SeqBatchNorm2d",
    "SeqConv1d",
    "SeqConv2d",
    "SeqDropout",
    "SeqFlatten",
    "SeqLinear",
    "SeqMaxPool2d",
    "Sigmoid",
    "SpikeFrames",
    "SpikeFunction",
    "SpikeLinear",
    "SpikeTiming",
    "Surrogate",
    "SurrogateSwap",
    "TimeDistributed",
    "Triangle",
    "__version__",
    "alif_multistep",
    "alif_step",
    "cuba_lif_multistep",
    "cuba_lif_step",
    "delay",
    "delta_encode",
    "direct_encode",
    "event_frames",
    "from_nir",
    "get_surrogate",
    "heaviside",
    "if_multistep",
    "if_step",
    "latency_encode",
    "li_multistep",
    "li_step",
    "lif_multistep",
    "lif_step",
    "load_digits",
    "load_event_digits",
    "load_shd",
    "mean_membrane_ce",
    "native_status",
    "over_time",
    "poisson_encode",
    "softmax_sum_ce",
    "softmax_sum_predict",
    "spike_count_ce",
    "spike_count_mse",
    "spike_timing_dataset",
    "surrogate_names",
    "swap_surrogate",
    "synaptic_operations",
    "tet_ce",
    "to_nir",
]
