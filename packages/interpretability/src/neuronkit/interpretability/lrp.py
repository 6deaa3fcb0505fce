"""Layer-wise relevance propagation (LRP) with the epsilon, gamma, alpha-beta (and Captum's
alpha1-beta0), identity, z^B, w^2 and flat rules.

Bach, Binder, Montavon, Klauschen, Müller & Samek, "On Pixel-Wise Explanations for Non-Linear
Classifier Decisions by Layer-Wise Relevance Propagation" (PLoS ONE 2015); the gamma rule and
the choice of rules per layer follow Montavon et al., "Layer-Wise Relevance Propagation: An
Overview" (2019). The target output ``f_t(x)`` is the relevance at the top; each layer ``z = W a
+ b`` hands the relevance ``R_k`` of its outputs to its inputs as
``R_j = a_j sum_k w'_jk R_k / (z'_k + eps sign(z'_k))``, where ``w'`` are the weights the layer's
rule makes (``w`` for epsilon, ``w + gamma w+`` for gamma, ``w+`` for alpha1-beta0) and ``z'``
their output on the original activations ``a``. The identity rule passes ``R`` through
unchanged; ``nn.Dropout`` and elementwise activation modules (torch's ``nn.ReLU``,
``nn.Tanh``, ``nn.GELU``, ``nn.SiLU``, ... :data:`~neuronkit.interpretability.attribution.\
ELEMENTWISE_ACTIVATIONS`, Hugging Face's and timm's activation classes) pass it through as
well, as LRP treats activations, and parameter-free linear maps (``nn.Flatten``,
``nn.Identity``, padding, ``nn.Upsample``, pixel shuffles, ``nn.Unfold``) hand it on as their
gradient does (LRP-0); Captum passes it through ``nn.ReLU``, ``nn.Tanh`` and ``nn.Dropout``
only and refuses the others. Any other layer without a rule is checked as it runs: what it
computes from the input must be linear in it (stochastic depth in eval mode, ``Permute``, a
layer scale, a global average) or covered by the rules below, and computed by functions the
rules can see (not a fused kernel or a custom autograd function), else it needs a rule;
values that do not depend on the input (a rotary embedding's table) need nothing.

Recurrent layers (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, their cells) follow Arras, Montavon,
Müller & Samek, "Explaining Recurrent Neural Network Predictions in Sentiment Analysis"
(WASSA 2017): unrolled over time with their gates held constant (signal-take-all: a gate's
product hands all its relevance to the signal), ``tanh`` passing relevance on, and their
epsilon rule at every sum (a cell input's and a candidate's pre-activation, the cell state
``f c + i g``, a GRU's new state ``(1 - z) n + z h``), biases keeping their share. Their
output values are the layer's own; only the backward pass takes the unrolled path. Captum
and zennit have no rule for them (Captum's ``LRP`` refuses them).

Numbers equal Captum's ``LRP`` (its rules ``EpsilonRule``, ``GammaRule``, ``Alpha1_Beta0_Rule``,
``IdentityRule``; epsilon ``1e-9`` by default) on the layers Captum supports (``nn.Linear``,
``nn.Conv2d``, ``nn.MaxPool1d/2d/3d``, ``nn.AvgPool2d``, ``nn.AdaptiveAvgPool2d``,
``nn.BatchNorm2d``) in sequence; the other convolutions (transposed ones too, as zennit's),
average pools and batch norms take the same rules here. Operations between modules (residual
additions, reshapes, functional pooling or scaling) are LRP-0: a sum hands each summand the
share of relevance it contributed (with Captum, relevance is not conserved across a skip
connection; with zennit's ResNet canonizer, it is, and the numbers agree). Rules are given
per layer or per layer type (``rules={"features.0": GammaRule(0.25)}``,
``{nn.Conv2d: GammaRule(0.25)}``) instead of as module attributes, and the model's weights
are never modified: a rule's weights are used through ``torch.func.functional_call``. One
forward pass suffices for every rule (Captum runs two).

Transformers follow Ali, Schnake, Eberle, Montavon, Müller & Wolf, "XAI for Transformers: Better
Explanations through Conservative Propagation" (ICML 2022): ``nn.LayerNorm``, ``nn.RMSNorm``,
``nn.GroupNorm`` and ``nn.InstanceNorm1d/2d/3d`` (nnU-Net's; with running statistics in eval
mode an affine map) hold their scale (``1 / std``) constant (the LN rule) and
``nn.MultiheadAttention`` its attention weights (the AH rule: relevance flows through the
values only); what is left is linear and takes the epsilon (or identity) rule. While a model
with a forward of its own runs, a torch function mode applies the same rules to what it
computes with functions (:class:`_LRPFunctions`): attention by
``F.scaled_dot_product_attention`` or a softmax's output times the values (matrix product or
``torch.einsum``), ``F.layer_norm`` / ``F.rms_norm`` / ``F.group_norm``, and normalization
layers with a forward of their own (Hugging Face's ``LlamaRMSNorm``, ``LayerNorm2d``), whose
``sqrt`` / ``rsqrt`` / ``std`` / ``var`` / norms it holds constant; functional activations pass
relevance through as their layers do; a gate (an activation's output times a tensor that is
not one: a gated MLP's ``act(gate(x)) * up(x)``) is held constant, as LXT's CP-LRP does (the
signal-take-all rule of Arras, Montavon, Müller & Samek 2017 for LSTM gates); and any other
product of ``n`` tensors that depend on the input hands each ``1 / n`` of its relevance, the
uniform rule of Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin & Samek, "AttnLRP:
Attention-Aware Layer-Wise Relevance Propagation for Transformers" (ICML 2024). Its rules,
``attention="uniform"``, take the uniform rule at attention (relevance through queries and
keys too) and at gates instead of holding them. Hugging Face's ``Conv1D`` (GPT-2) is a linear
layer to every rule.
Captum has no rule for any of these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.overrides import TorchFunctionMode

from neuronkit.common import check_choice, check_number, check_type, eval_mode, grad_enabled

from .attribution import (
    ELEMENTWISE_ACTIVATIONS,
    Target,
    _check_finite_result,
    _check_graph,
    _check_inputs,
    _finite_with_inputs,
    _grad_outputs,
    _leaf,
    _select,
    _target_index,
)
from .grad_cam import _Capture
from .hooks import (
    CallInputs,
    LayerValueHook,
    call_model,
    check_not_compiled,
    checked_layer,
    get_layer,
    module_hooks,
)

__all__ = [
    "ATTENTION_RULES",
    "Alpha1Beta0Rule",
    "AlphaBetaRule",
    "EpsilonRule",
    "FlatRule",
    "GammaRule",
    "IdentityRule",
    "WSquareRule",
    "ZBoxRule",
    "layer_lrp",
    "lrp",
]


@dataclasses.dataclass(frozen=True)
class EpsilonRule:
    """``R_j = a_j sum_k w_jk R_k / (z_k + epsilon sign(z_k))`` (Captum's ``EpsilonRule``)."""

    epsilon: float = 1e-9

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, ge=0.0)


@dataclasses.dataclass(frozen=True)
class GammaRule:
    """The epsilon rule (``epsilon=1e-9``) with weights ``w + gamma max(w, 0)``, favouring
    positive contributions (Captum's ``GammaRule``); ``set_bias_to_zero`` drops the bias."""

    gamma: float = 0.25
    set_bias_to_zero: bool = False

    def __post_init__(self) -> None:
        check_number("gamma", self.gamma, ge=0.0)
        check_type("set_bias_to_zero", self.set_bias_to_zero, bool)


@dataclasses.dataclass(frozen=True)
class Alpha1Beta0Rule:
    """The epsilon rule (``epsilon=1e-9``) with weights ``max(w, 0)``: only positive
    contributions (deep Taylor decomposition; Captum's ``Alpha1_Beta0_Rule``)."""

    set_bias_to_zero: bool = False

    def __post_init__(self) -> None:
        check_type("set_bias_to_zero", self.set_bias_to_zero, bool)


@dataclasses.dataclass(frozen=True)
class AlphaBetaRule:
    """``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j`` with ``alpha - beta = 1``:
    the contributions ``z_ij = x_i w_ij`` split by sign, ``z+_j`` their positive sum with the
    bias's positive part, ``z-_j`` the negative one's (Bach et al. 2015; zennit's
    ``AlphaBeta``, for inputs of either sign). ``AlphaBetaRule(1, 0)`` differs from
    :class:`Alpha1Beta0Rule` (Captum's) in the bias, which that keeps whole, and for negative
    inputs. For linear and convolution layers."""

    alpha: float = 2.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, ge=0.0)
        check_number("beta", self.beta, ge=0.0)
        if abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise ValueError(
                f"alpha - beta must be 1 (relevance is conserved), got alpha={self.alpha}, "
                f"beta={self.beta}"
            )


@dataclasses.dataclass(frozen=True)
class IdentityRule:
    """Relevance passes through the layer unchanged (input and output of the same shape, e.g.
    batch norm; Captum's ``IdentityRule``)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ZBoxRule:
    """The z^B rule for the layer that reads inputs bounded by ``low <= x <= high`` (pixels):
    ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) R_j / z_j``, ``z_j`` the sum over ``i`` of
    the same (the biases cancel): Montavon et al., "Explaining nonlinear classification decisions
    with deep Taylor decomposition" (Pattern Recognition 2017), for the input layer in Montavon
    et al. (2019); zennit's ``ZBox``. ``low``, ``high``: numbers or tensors broadcastable to
    the layer's input (``[1, 3, 1, 1]`` per channel)."""

    low: float | torch.Tensor
    high: float | torch.Tensor

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                check_number(name, value)
        numbers = not isinstance(self.low, torch.Tensor) and not isinstance(self.high, torch.Tensor)
        if numbers and not self.low <= self.high:
            raise ValueError(f"low must be <= high, got {self.low} and {self.high}")


@dataclasses.dataclass(frozen=True)
class WSquareRule:
    """The w^2 rule for the layer that reads unbounded inputs: ``R_i = sum_j w_ij^2 R_j /
    sum_i' w_i'j^2``, whatever the inputs' values (the bias takes no part): Montavon et al.,
    "Explaining nonlinear classification decisions with deep Taylor decomposition" (Pattern
    Recognition 2017); zennit's ``WSquare`` without the bias."""


@dataclasses.dataclass(frozen=True)
class FlatRule:
    """The flat rule for the layer that reads the inputs: the w^2 rule with every weight 1,
    so each output's relevance is spread evenly over the inputs it reads (Lapuschkin et al.,
    "Unmasking Clever Hans predictors", Nature Communications 2019); zennit's ``Flat``."""


Rule = (
    EpsilonRule
    | GammaRule
    | Alpha1Beta0Rule
    | AlphaBetaRule
    | IdentityRule
    | ZBoxRule
    | WSquareRule
    | FlatRule
)
_RULES = (
    EpsilonRule,
    GammaRule,
    Alpha1Beta0Rule,
    AlphaBetaRule,
    IdentityRule,
    ZBoxRule,
    WSquareRule,
    FlatRule,
)
# rules for linear and convolution layers only: those for the layer that reads the inputs
# (z^B, w^2, flat: they hand relevance to leaves of their own) and alpha-beta
_WEIGHTED_RULES = (ZBoxRule, WSquareRule, FlatRule, AlphaBetaRule)
# linear and convolution layers, which those rules take
_WEIGHTED = (
    *(nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d),
    *(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
)

_RULE_LAYERS = (
    *_WEIGHTED,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)
# Ali et al. (2022): a normalization's scale and an attention's weights held constant (LN and
# AH rules) leave a linear map, which takes the epsilon (or identity) rule
_NORMS = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)
_HELD_CONSTANT = (*_NORMS, nn.MultiheadAttention)
_PASS_THROUGH = ELEMENTWISE_ACTIVATIONS  # relevance unchanged
# parameter-free linear maps without a bias (moves, copies, interpolations), whose gradient is
# LRP-0, known here so that they need neither a rule nor the check of layers without one as
# they run (see _LINEAR); dropout is the identity in eval mode, where LRP runs
_RESHAPES = (
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.Upsample,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ChannelShuffle,
    nn.Unfold,
    nn.Fold,
    nn.ConstantPad1d,  # zero padding too; another constant keeps its share, as a bias does
    nn.ConstantPad2d,
    nn.ConstantPad3d,
    nn.ReflectionPad1d,
    nn.ReflectionPad2d,
    nn.ReflectionPad3d,
    nn.ReplicationPad1d,
    nn.ReplicationPad2d,
    nn.ReplicationPad3d,
    nn.CircularPad1d,
    nn.CircularPad2d,
    nn.CircularPad3d,
)
# lookups of indices: no relevance reaches them, so (like a bias) they keep what they add
_SOURCES = (nn.Embedding, nn.EmbeddingBag)
# Arras et al. (2017): gates held, the rest linear up to activations that pass relevance on
_RECURRENT = (nn.RNNBase, nn.RNNCellBase)
# layers that take EpsilonRule() unless named
_DEFAULT_EPSILON = _RULE_LAYERS + _HELD_CONSTANT + _RECURRENT
_NO_RULE_NEEDED = _RESHAPES + _SOURCES  # activations pass through (_passes_through)


def _passes_through(module: nn.Module) -> bool:
    """Whether ``module`` is an elementwise activation: torch's, Hugging Face's
    (``GELUActivation``, ``SiLUActivation``, ..., BLOOM's ``BloomGelu``) or timm's (``GELU``,
    ``Swish``, ...)."""
    cls = type(module)
    if isinstance(module, _PASS_THROUGH) or cls.__module__ in _ACTIVATION_MODULES:
        return True
    return (cls.__module__, cls.__name__) in _ACTIVATION_CLASSES


def _weighted(module: nn.Module) -> bool:
    """Whether ``module`` is a linear or convolution layer (z^B, w^2, flat and alpha-beta take
    those): torch's, or Hugging Face's ``Conv1D`` (GPT-2's linear layer, its weight
    transposed)."""
    cls = type(module)
    return isinstance(module, _WEIGHTED) or (cls.__module__, cls.__name__) == _HF_LINEAR


_ACTIVATION_MODULES = frozenset(
    {"transformers.activations", "timm.layers.activations", "timm.layers.activations_me"}
)
# activations defined with models (a custom autograd function LRP could not see through)
_ACTIVATION_CLASSES = frozenset({("transformers.models.bloom.modeling_bloom", "BloomGelu")})
_HF_LINEAR = ("transformers.pytorch_utils", "Conv1D")


def _modified_parameters(module: nn.Module, rule: Rule) -> dict[str, torch.Tensor] | None:
    """The weights (and bias) a gamma or alpha1-beta0 rule uses, or ``None`` (the module's)."""
    if not isinstance(rule, (GammaRule, Alpha1Beta0Rule)):
        return None
    params: dict[str, torch.Tensor] = {}
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor):
        w = weight.detach()
        params["weight"] = (
            w + rule.gamma * w.clamp(min=0) if isinstance(rule, GammaRule) else w.clamp(min=0)
        )
    bias = getattr(module, "bias", None)
    if rule.set_bias_to_zero and isinstance(bias, torch.Tensor):
        params["bias"] = torch.zeros_like(bias)
    return params


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 0 where ``den`` is 0."""
    return torch.where(den == 0, 0.0, num / den)


def _rule_factor(z: torch.Tensor, z_rule: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """``z / (z' + epsilon sign(z'))`` (sign 0 as +1; 0 where the denominator is); ``z' = z``
    when ``z_rule`` is ``None``, where it is ``|z| / (|z| + epsilon)``."""
    if z_rule is None:
        size = z.abs()
        if epsilon >= torch.finfo(z.dtype).tiny:  # the denominator is never 0
            return size / (size + epsilon)
        return _ratio(size, size + epsilon)
    return _ratio(z, z_rule + torch.where(z_rule >= 0, epsilon, -epsilon))


class _Scaled(torch.autograd.Function):
    """Forward: ``value``; backward: the gradient into ``x``, times ``factor`` (a tensor or a
    number; ``None`` for 1) formed in the forward pass from values the backward would
    otherwise keep."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor, factor: Any) -> Any:
        if isinstance(factor, torch.Tensor):
            ctx.save_for_backward(factor)
        ctx.factor = factor
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        factor = ctx.saved_tensors[0] if ctx.saved_tensors else ctx.factor
        # the factor first: the product takes its layout (the layer output's), not that of a
        # gradient a transpose left with odd strides, which torch 2.15's CPU batch-norm
        # backward gets wrong for one example (README)
        return (grad if factor is None else factor * grad), None, None


def _affine(y: torch.Tensor, weight: Any, bias: Any) -> torch.Tensor:
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def _held_layer_norm(
    input: torch.Tensor,
    normalized_shape: Any,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.layer_norm`` with its scale ``1 / std`` held constant: linear in ``input`` (the LN
    rule of Ali et al. 2022); the same arguments."""
    dims = tuple(range(-len(normalized_shape), 0))
    scale = torch.rsqrt(input.var(dims, unbiased=False, keepdim=True) + eps).detach()
    return _affine((input - input.mean(dims, keepdim=True)) * scale, weight, bias)


def _held_rms_norm(
    input: torch.Tensor, normalized_shape: Any, weight: Any = None, eps: Any = None
) -> torch.Tensor:
    """``F.rms_norm`` with its scale ``1 / rms`` held constant; the same arguments."""
    dims = tuple(range(-len(normalized_shape), 0))
    eps = torch.finfo(input.dtype).eps if eps is None else eps
    scale = torch.rsqrt(input.square().mean(dims, keepdim=True) + eps).detach()
    return _affine(input * scale, weight, None)


def _held_group_norm(
    input: torch.Tensor, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> torch.Tensor:
    """``F.group_norm`` with its scales held constant; the same arguments."""
    groups = input.reshape(input.shape[0], num_groups, -1)
    scale = torch.rsqrt(groups.var(-1, unbiased=False, keepdim=True) + eps).detach()
    y = ((groups - groups.mean(-1, keepdim=True)) * scale).reshape(input.shape)
    shape = (1, -1) + (1,) * (input.ndim - 2)
    return _affine(y, *(None if p is None else p.view(shape) for p in (weight, bias)))


def _held_instance_norm(
    input: torch.Tensor,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.instance_norm`` with each instance's scale held constant (a group norm with a group
    per channel); with running statistics (``use_input_stats=False``) it is affine, and itself;
    the same arguments."""
    if not use_input_stats:
        return F.instance_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    return _held_group_norm(input, input.shape[1], weight, bias, eps)


def _held_scale(module: Any, x: torch.Tensor) -> torch.Tensor:
    """A torch normalization layer's output on ``x`` with its scale held constant."""
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        if x.dim() == module._get_no_batch_dim():  # one example: [C, ...]
            return _held_scale(module, x.unsqueeze(0)).squeeze(0)
        running = module.track_running_stats and not module.training
        return _held_instance_norm(
            x,
            module.running_mean,
            module.running_var,
            module.weight,
            module.bias,
            not running,
            0.0,
            module.eps,
        )
    if isinstance(module, nn.GroupNorm):
        return _held_group_norm(x, module.num_groups, module.weight, module.bias, module.eps)
    if isinstance(module, nn.RMSNorm):
        return _held_rms_norm(x, module.normalized_shape, module.weight, module.eps)
    return _held_layer_norm(x, module.normalized_shape, module.weight, module.bias, module.eps)


_TORCH_NORM_FORWARDS = frozenset(norm.forward for norm in _NORMS)


def _written_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization with a forward of its own: a subclass of torch's
    layer, group or RMS norm that overrides it (a channels-first ``LayerNorm2d``), or a layer
    without submodules from outside torch whose class name ends in ``Norm`` (Hugging Face's
    ``LlamaRMSNorm`` and ``T5LayerNorm``, nanoGPT's ``LayerNorm``)."""
    cls = type(module)
    if isinstance(module, _NORMS):
        return cls.forward not in _TORCH_NORM_FORWARDS
    named = cls.__name__.endswith("Norm") and not cls.__module__.startswith("torch.")
    return named and next(module.children(), None) is None


ATTENTION_RULES = ("constant", "uniform")


def _attention_inputs(rule: str, *qkv: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Query, key and value as the attention ``rule`` takes them. ``"constant"`` (the AH rule
    of Ali et al. 2022): query and key detached, so the attention weights stay constant and
    relevance flows through the values only. ``"uniform"`` (AttnLRP, Achtibat et al. 2024):
    the uniform rule at both matrix products, ``q k^T`` and ``softmax(.) v``, and the softmax
    by its gradient, which is AttnLRP's softmax rule; with the gradient carrying relevance per
    unit of activation that is query and key with 1/4 of their gradient, the values with
    1/2."""
    q, k, v = qkv
    if rule == "constant":
        return q.detach(), k.detach(), v
    return tuple(
        _Scaled.apply(a, a.detach(), share) if a.requires_grad else a
        for a, share in ((q, 0.25), (k, 0.25), (v, 0.5))
    )


def _attention_pre_hook(rule: str) -> Any:
    """Pre-hook of an ``nn.MultiheadAttention``: its query, key and value as ``rule`` takes
    them (:func:`_attention_inputs`)."""

    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(args) < 3:
            raise TypeError(
                "lrp needs nn.MultiheadAttention called with query, key and value as positional "
                f"arguments (as nn.TransformerEncoderLayer does), got {len(args)}"
            )
        return (*_attention_inputs(rule, *args[:3]), *args[3:])

    return hook


# what the function mode does with each function (see _LRPFunctions)
_FUNCTIONS: dict[Any, str] = {
    F.scaled_dot_product_attention: "attention",
    **dict.fromkeys((F.softmax, torch.softmax, torch.Tensor.softmax), "weights"),
    # what attention code does to its weights between the softmax and the product
    **dict.fromkeys(
        (F.dropout, torch.Tensor.to, torch.Tensor.type, torch.Tensor.contiguous), "carries"
    ),
    **dict.fromkeys(
        (
            torch.mul,
            torch.Tensor.mul,
            torch.Tensor.__mul__,
            torch.Tensor.__rmul__,
            torch.matmul,
            torch.Tensor.matmul,
            torch.Tensor.__matmul__,
            torch.bmm,
            torch.Tensor.bmm,
            torch.einsum,
        ),
        "product",
    ),
    # rectifiers: their gradient is already LRP's pass-through (R_in = R_out)
    **dict.fromkeys((F.relu, torch.relu, torch.Tensor.relu, F.leaky_relu), "rectifier"),
    # elementwise activations that are not homogeneous
    **dict.fromkeys(
        (
            F.gelu,
            F.silu,
            F.mish,
            F.softplus,
            F.elu,
            F.selu,
            F.celu,
            torch.sigmoid,
            torch.Tensor.sigmoid,
            torch.tanh,
            torch.Tensor.tanh,
            F.hardswish,
            F.hardsigmoid,
            F.hardtanh,
            F.relu6,
            F.logsigmoid,
            F.softsign,
            F.tanhshrink,
        ),
        "activation",
    ),
    # a normalization's scale, inside a normalization layer with a forward of its own
    **dict.fromkeys(
        (
            torch.rsqrt,
            torch.Tensor.rsqrt,
            torch.sqrt,
            torch.Tensor.sqrt,
            torch.std,
            torch.Tensor.std,
            torch.var,
            torch.Tensor.var,
            torch.norm,
            torch.Tensor.norm,
            torch.linalg.norm,
            torch.linalg.vector_norm,
        ),
        "scale",
    ),
}
# the elementwise products, where an activation's output is a gate (see _LRPFunctions)
_ELEMENTWISE_PRODUCTS = frozenset(
    {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__}
)
# linear in the input (sums, scalings by constants, moves, copies, averages, linear maps):
# their gradient is LRP-0, so a layer without a rule that computes only these (and what the
# rules above cover) needs none
_T = torch.Tensor
_LINEAR = frozenset(
    {
        *(_T.__add__, _T.__radd__, _T.__iadd__, _T.__sub__, _T.__rsub__, _T.__isub__),
        *(_T.__neg__, _T.add, _T.add_, _T.sub, _T.sub_, _T.neg, torch.add, torch.sub, torch.neg),
        *(_T.view, _T.view_as, _T.reshape, _T.reshape_as, _T.permute, _T.transpose, _T.t),
        *(_T.flatten, _T.unflatten, _T.squeeze, _T.unsqueeze, _T.expand, _T.expand_as),
        *(_T.clone, _T.__getitem__, _T.narrow, _T.select, _T.split, _T.chunk, _T.unbind),
        *(_T.roll, _T.flip, _T.repeat, _T.repeat_interleave, _T.movedim, _T.swapaxes),
        *(_T.unfold, _T.mean, _T.sum, _T.float, _T.double, _T.half, _T.bfloat16),
        *(_T.masked_fill, torch.where, torch.cat, torch.concat, torch.stack, torch.reshape),
        *(torch.permute, torch.transpose, torch.flatten, torch.squeeze, torch.unsqueeze),
        *(torch.split, torch.chunk, torch.roll, torch.flip, torch.movedim, torch.mean, torch.sum),
        *(torch.swapaxes, torch.swapdims, torch.moveaxis, torch.narrow, torch.select, torch.t),
        *(torch.unbind, torch.tile, torch.repeat_interleave, torch.unflatten, _T.tile),
        *(_T.swapdims, _T.moveaxis),
        *(F.pad, F.interpolate, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.linear, F.conv1d),
        *(F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.conv2d),
        *(F.conv3d, F.unfold, F.fold, F.pixel_shuffle, F.pixel_unshuffle),
        *(F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d),
    }
)
# linear when every operand but the first is constant
_SCALINGS = frozenset({torch.div, _T.div, _T.div_, _T.__truediv__, _T.__itruediv__, _T.mul_})
# ``a + b c`` (``a + b @ c``): linear unless both ``b`` and ``c`` depend on the input
_FUSED = frozenset({torch.addcmul, _T.addcmul, torch.addmm, _T.addmm, torch.baddbmm})


def _linear(func: Any, args: tuple[Any, ...]) -> bool:
    if func in _SCALINGS:
        return not any(getattr(a, "requires_grad", False) for a in args[1:])
    if func in _FUSED:
        return not all(getattr(a, "requires_grad", False) for a in args[1:3])
    return func in _LINEAR


_HELD_NORMS: dict[Any, Callable[..., torch.Tensor]] = {
    F.layer_norm: _held_layer_norm,
    F.rms_norm: _held_rms_norm,
    F.group_norm: _held_group_norm,
    F.instance_norm: _held_instance_norm,
}


class _LRPFunctions(TorchFunctionMode):
    """The rules for what a model computes with functions instead of layers, while its forward
    runs with its parameters frozen (so that a tensor requires grad exactly when it depends on
    the input). A function mode is per thread: other threads' calls are left alone.

    * Attention follows ``attention`` (:func:`_attention_inputs`): the query, key and value of
      ``F.scaled_dot_product_attention`` (timm, Hugging Face ``sdpa``) as the rule takes them.
      Under ``"constant"``, a softmax's output (kept through dropout and dtype casts) enters
      any product detached (``softmax(q k^T) @ v``, by matrix product or ``torch.einsum``:
      Hugging Face ``eager``, hand-written); under ``"uniform"`` the product rule below gives
      attention written with functions AttnLRP's rules as it is.
    * Normalization scales are held constant (the LN rule): ``F.layer_norm``, ``F.rms_norm``,
      ``F.group_norm`` and ``F.instance_norm``, and inside a normalization layer with a
      forward of its own (:func:`_written_norm`) every ``sqrt``, ``rsqrt``, ``std``, ``var``
      and norm.
    * Elementwise activations called as functions (``F.gelu``, ``torch.sigmoid``, ...) pass
      relevance through unchanged, as their layers do.
    * Under ``"constant"``, an elementwise product of two operands that depend on the input
      holds its gate constant, so that all the relevance goes to the other operand (as LXT's
      CP-LRP and the signal-take-all rule of Arras et al. 2017 for LSTM gates do): the one
      operand that is a sigmoid's output (or ``1 -`` one), else the one that is an
      activation's output (:meth:`gate`: as a function or a layer, kept through dropout and
      dtype casts): ``act(gate(x)) * up(x)`` in a gated MLP, an SE block's
      ``x * sigmoid(.)``, an LSTM cell's ``i * tanh(.)``, a GRU's ``(1 - z) * n``.
    * Any other product of ``n >= 2`` operands that depend on the input (``a * b``, ``a @ b``,
      ``torch.einsum``) hands each operand ``1 / n`` of the relevance (the uniform rule of
      Achtibat et al. 2024): its gradient times ``1 / n``."""

    def __init__(self, attention: str) -> None:
        super().__init__()
        self.attention = attention
        self._weights: dict[int, weakref.ref[torch.Tensor]] = {}  # attention weights
        self._gates: dict[int, weakref.ref[torch.Tensor]] = {}  # activations' outputs
        self._sigmoids: dict[int, weakref.ref[torch.Tensor]] = {}  # those in [0, 1]
        self.scales_held: list[int] = []  # per normalization layer running: scales held so far
        # per layer without a rule running: the first function it computes from the input
        # that is not linear (nor covered by the rules), if any
        self.nonlinear: list[str | None] = []
        # while such a layer runs: the tensors these rules saw computed (see :meth:`computed`)
        self._computed: dict[int, weakref.ref[torch.Tensor]] = {}

    def is_weights(self, x: Any) -> bool:
        return _holds(self._weights, x)

    def gate(self, x: torch.Tensor, sigmoid: bool = False) -> torch.Tensor:
        """``x``, an activation's output (``sigmoid``: a sigmoid's, in ``[0, 1]``), marked as a
        gate (under ``"constant"``)."""
        if self.attention == "constant":
            self._gates[id(x)] = weakref.ref(x)
            if sigmoid:
                self._sigmoids[id(x)] = weakref.ref(x)
        return x

    def _gate_held(self, operands: tuple[Any, ...]) -> tuple[Any, ...]:
        """``operands`` of an elementwise product, its gate detached where it has one."""
        dependent = [a for a in operands if isinstance(a, torch.Tensor) and a.requires_grad]
        if len(dependent) == 2:
            for marks in (self._sigmoids, self._gates):
                gates = [a for a in dependent if _holds(marks, a)]
                if len(gates) == 1:
                    return tuple(a.detach() if a is gates[0] else a for a in operands)
        return operands

    def _first_nonlinear(
        self, kind: str | None, func: Any, args: tuple[Any, ...], out: Any
    ) -> bool:
        """Whether a layer without a rule is running and computes its first function from the
        input that is neither linear nor covered by the rules."""
        if not self.nonlinear or self.nonlinear[-1] is not None or kind not in (None, "scale"):
            return False
        return getattr(out, "requires_grad", False) and not _linear(func, args)

    def _constant(self, x: Any) -> Any:
        return x.detach() if self.attention == "constant" and self.is_weights(x) else x

    def computed(self, out: Any, args: tuple[Any, ...]) -> bool:
        """Whether every tensor in a layer's output ``out`` (a tensor or a tuple of them) that
        depends on the input is one of its ``args`` or came from a function these rules saw,
        not from an operation they cannot see (a fused kernel such as ``nn.LSTM``'s, a
        compiled extension); forgets what it saw."""
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        seen = all(
            not getattr(t, "requires_grad", False)
            or _holds(self._computed, t)
            or any(t is a for a in args)
            for t in outputs
        )
        self._computed.clear()
        return seen

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        out = self._apply(func, args, kwargs or {})
        if self.nonlinear:  # a layer without a rule is running
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if getattr(t, "requires_grad", False):
                    self._computed[id(t)] = weakref.ref(t)
        return out

    def _apply(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        held_norm = _HELD_NORMS.get(func)
        if held_norm is not None:
            if self.scales_held:
                self.scales_held[-1] += 1
            out = func(*args, **kwargs)
            if not out.requires_grad:
                return out
            return _Scaled.apply(held_norm(*args, **kwargs), out.detach(), None)
        kind = _FUNCTIONS.get(func)
        operands: Sequence[Any] = ()
        if kind == "attention":
            kwargs = dict(kwargs)
            qkv = [
                args[i] if i < len(args) else kwargs.pop(name)
                for i, name in enumerate(("query", "key", "value"))
            ]
            args = (*_attention_inputs(self.attention, *qkv), *args[3:])
        elif kind == "product" and func is torch.einsum:
            listed = len(args) == 2 and isinstance(args[1], (list, tuple))
            operands = [self._constant(a) for a in (args[1] if listed else args[1:])]
            args = (args[0], operands) if listed else (args[0], *operands)
        elif kind == "product":
            args = operands = tuple(self._constant(a) for a in args)
            if func in _ELEMENTWISE_PRODUCTS and self._gates:
                args = operands = self._gate_held(args)
        out = func(*args, **kwargs)
        if kind == "product":
            n = sum(isinstance(a, torch.Tensor) and a.requires_grad for a in operands)
            return out if n < 2 else _Scaled.apply(out, out.detach(), 1 / n)
        if kind == "activation" and args and getattr(args[0], "requires_grad", False):
            # relevance passes unchanged: R_in = R_out
            return self.gate(_passed(args[0], out.detach()), sigmoid=func in _SIGMOIDS)
        if kind == "rectifier" and out.requires_grad:
            return self.gate(out)
        if kind == "scale" and self.scales_held:
            self.scales_held[-1] += 1
            return out.detach()
        if kind == "weights" or (kind == "carries" and args and self.is_weights(args[0])):
            self._weights[id(out)] = weakref.ref(out)
        elif kind == "carries" and args and _holds(self._gates, args[0]):
            self.gate(out, sigmoid=_holds(self._sigmoids, args[0]))
        elif _complement(func, args) and _holds(self._sigmoids, args[0]):
            self.gate(out, sigmoid=True)
        elif self._first_nonlinear(kind, func, args, out):
            self.nonlinear[-1] = getattr(func, "__name__", repr(func))
        return out


_SIGMOIDS = frozenset({torch.sigmoid, torch.Tensor.sigmoid, F.hardsigmoid})


def _complement(func: Any, args: tuple[Any, ...]) -> bool:
    """Whether ``func(*args)`` is ``1 - args[0]`` (of a sigmoid's output: a GRU's ``1 - z``)."""
    complement = func in (torch.Tensor.__rsub__, torch.rsub) and len(args) == 2
    return complement and isinstance(args[1], (int, float)) and args[1] == 1


def _holds(marks: dict[int, weakref.ref[torch.Tensor]], x: Any) -> bool:
    """Whether ``x`` itself (not a later tensor at its address) is among ``marks``."""
    ref = marks.get(id(x))
    return ref is not None and ref() is x


@contextlib.contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """``model``'s parameters without ``requires_grad`` (restored on exit)."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


_NO_FUNCTIONS = (nn.Sequential, nn.ModuleList, nn.ModuleDict, *_HELD_CONSTANT)


class _Plan(NamedTuple):
    """What LRP does at each module of a model, from one pass over its modules."""

    rules: dict[nn.Module, Rule]  # every leaf module that takes a rule, and its rule
    passing: list[nn.Module]  # modules that pass relevance through (identity)
    written_norms: dict[nn.Module, str]  # normalizations with a forward of their own: names
    unruled: dict[nn.Module, str]  # leaf modules LRP knows no way through, checked as they run
    # whether the model may compute with functions: a module has a forward of its own that
    # calls other modules (plain containers and layers cannot), is a written norm or unruled
    functions: bool


def _plan(model: nn.Module, rules: Mapping[Any, Rule] | None) -> _Plan:
    """The rule of every leaf module that takes one (a layer's own, else its type's, else
    epsilon 1e-9) and the rest of the :class:`_Plan`."""
    chosen: dict[nn.Module, Rule] = {}
    by_type: dict[type, Rule] = {}
    for key, rule in (rules or {}).items():
        if not isinstance(rule, _RULES):
            raise TypeError(
                "rules values must be EpsilonRule, GammaRule, Alpha1Beta0Rule, AlphaBetaRule, "
                "IdentityRule, ZBoxRule, WSquareRule or FlatRule, got "
                f"{type(rule).__name__} for {key!r}"
            )
        if isinstance(key, type) and issubclass(key, nn.Module):
            by_type[key] = rule
            continue
        layer = get_layer(model, key, argument="rules key") if isinstance(key, str) else key
        check_type("rules key", layer, nn.Module)
        chosen[layer] = rule
    plan = _Plan({}, [], {}, {}, False)
    functions = False
    inside: set[nn.Module] = set()  # an attention's projections, which it does not call
    for name, module in model.named_modules():
        if module in inside:
            continue
        if isinstance(module, nn.MultiheadAttention):
            inside.update(module.modules())
        leaf = next(module.children(), None) is None
        written = _written_norm(module)
        functions = functions or written or not (leaf or isinstance(module, _NO_FUNCTIONS))
        given = chosen.get(module)
        if given is None and (leaf or isinstance(module, _DEFAULT_EPSILON)):
            given = next((r for t, r in by_type.items() if isinstance(module, t)), None)
        held = isinstance(module, _HELD_CONSTANT) or written
        if held and isinstance(given, (GammaRule, Alpha1Beta0Rule)):
            raise TypeError(
                f"rules for {name!r} ({type(module).__name__}) must be EpsilonRule or "
                f"IdentityRule, got {type(given).__name__}"
            )
        if isinstance(module, _RECURRENT) and not isinstance(given, (EpsilonRule, type(None))):
            raise TypeError(
                f"rules for {name!r} ({type(module).__name__}) must be EpsilonRule, got "
                f"{type(given).__name__}"
            )
        if isinstance(given, _WEIGHTED_RULES) and not _weighted(module):
            raise TypeError(
                f"{type(given).__name__} needs a linear or convolution layer, got {name!r} "
                f"({type(module).__name__})"
            )
        if given is None and (held or isinstance(module, _DEFAULT_EPSILON) or _weighted(module)):
            given = EpsilonRule()
        if given is not None:
            plan.rules[module] = given
        if isinstance(given, IdentityRule) or (given is None and _passes_through(module)):
            plan.passing.append(module)
        elif given is not None and written:
            plan.written_norms[module] = name
        elif given is None and leaf and not isinstance(module, _NO_RULE_NEEDED):
            plan.unruled[module] = name
    return plan._replace(functions=functions or bool(plan.unruled))


def _no_rule(name: str, module: nn.Module, why: str = "") -> TypeError:
    return TypeError(
        f"lrp has no rule for module {name!r} ({type(module).__name__}){why}: give it one in "
        "rules= (IdentityRule() for an elementwise activation, EpsilonRule() for a layer linear "
        "in its input, such as a layer scale), or attribute with another method"
    )


@grad_enabled("lrp")
def lrp(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    rules: Mapping[str | nn.Module | type[nn.Module], Rule] | None = None,
    attention: str = "constant",
    return_convergence_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Layer-wise relevance propagation (Bach et al. 2015), Captum's ``LRP``.

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``), built from layers
            with a rule (linear, convolution, pooling, batch, layer, group and RMS norms,
            ``nn.MultiheadAttention`` called with positional query, key and value, as
            ``nn.TransformerEncoderLayer`` does), recurrent layers (input and initial state
            positional, padded, not packed), elementwise activation layers, ``nn.Dropout``,
            layers that compute only what is linear in their input, and the functions the
            module docstring lists (Hugging Face and timm transformers); runs in eval mode
            (flags restored), its parameters without ``requires_grad`` while it runs with
            functions.
        inputs: ``[B, ...]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        rules: a rule per layer (by name or module), e.g. ``{"0": GammaRule(0.25)}``, or per
            layer type, e.g. ``{nn.Conv2d: GammaRule(0.25), nn.Linear: EpsilonRule(0.25)}``
            (a layer's own rule first, then the first type it is an instance of); the rest
            take ``EpsilonRule(1e-9)``.
        attention: the rule at attention and gates: ``"constant"`` holds the attention
            weights constant (Ali et al. 2022), so relevance reaches the tokens through the
            values only, and the gates (an activation's output times a tensor that is not
            one), so that a gated MLP's relevance flows through its up projection only (LXT's
            CP-LRP); ``"uniform"`` is AttnLRP's (Achtibat et al. 2024): relevance also flows
            through the queries and keys, split evenly at ``q k^T`` and at ``softmax(.) v``,
            and evenly between a gate and what it gates.
        return_convergence_delta: also return ``f_t(x) - sum_i R_i`` per example (Captum's
            sign; biases and ``epsilon`` absorb relevance, so it is not 0 in general).

    Returns:
        ``[B, ...]`` relevances, and ``[B]`` deltas when asked.
    """
    _check_arguments(model, inputs, rules, attention, return_convergence_delta)
    t = _target_index(target, inputs.shape[0], inputs.device)
    relevance, selected = _propagate(model, inputs, t, rules, attention)
    return _relevance(inputs, relevance, selected, 0, return_convergence_delta)


@grad_enabled("layer_lrp")
def layer_lrp(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    rules: Mapping[str | nn.Module | type[nn.Module], Rule] | None = None,
    attention: str = "constant",
    layer_input: bool = False,
    batch_dim: int = 0,
    return_convergence_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The LRP relevance of a layer's output (or input) units, Captum's ``LayerLRP``: what
    :func:`lrp` hands that layer from above. The layers before it run without a graph.

    Args:
        model, target, rules, attention: as :func:`lrp`.
        inputs: ``[B, ...]`` tensor of any dtype (token ids for a token embedding ``layer``).
        layer: the layer (name in ``model.named_modules()`` or submodule), called once per
            forward, whose output (or first input, ``layer_input=True``) ``[B, ...]`` is
            attributed.
        layer_input: the relevance of the layer's input instead of its output.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers; the result keeps the layer's layout.
        return_convergence_delta: also return ``f_t(x) - sum_j R_j`` over the layer's units.

    Returns:
        ``[B, ...]`` relevances shaped like the layer's output (input), and ``[B]`` deltas
        when asked.
    """
    _check_arguments(model, inputs, rules, attention, return_convergence_delta, layer=True)
    module = checked_layer(model, layer, layer_input, batch_dim)
    if layer_input and isinstance(module, nn.MultiheadAttention):
        raise ValueError(
            "layer_input=True is not supported at an nn.MultiheadAttention, whose relevance "
            "enters through its query, key and value inputs apart: attribute the layer before it"
        )
    batch = inputs.shape[0]
    t = _target_index(target, batch, inputs.device)
    relevance, selected = _propagate(model, inputs, t, rules, attention, (module, layer_input))
    if relevance.ndim <= batch_dim or relevance.shape[batch_dim] != batch:
        what = "input" if layer_input else "output"
        raise ValueError(
            f"the layer's {what} must hold the {batch} examples on axis {batch_dim} (batch_dim; "
            f"1 for time-major [T, B, ...] layers), got shape {tuple(relevance.shape)}"
        )
    return _relevance(inputs, relevance, selected, batch_dim, return_convergence_delta)


def _relevance(
    inputs: torch.Tensor,
    relevance: torch.Tensor,
    selected: torch.Tensor,
    batch_dim: int,
    delta: bool,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Checked relevances (the examples on axis ``batch_dim``) and, when asked, the
    convergence deltas against the selected outputs ``[B]``."""
    relevance = _finite_with_inputs(inputs, relevance, "outputs or relevances")
    if not delta:
        return relevance
    total = relevance.movedim(batch_dim, 0).reshape(len(selected), -1).sum(1)
    return relevance, _check_finite_result(selected - total, "outputs")


def _check_arguments(
    model: Any, inputs: Any, rules: Any, attention: Any, delta: Any, layer: bool = False
) -> None:
    """The arguments of :func:`lrp` (``layer``: of :func:`layer_lrp`, whose inputs may be of
    any dtype, token ids included: its relevance starts at a layer)."""
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    if not layer:
        _check_inputs(inputs, finite=False)
    else:
        check_type("inputs", inputs, torch.Tensor)
        if inputs.ndim < 1 or inputs.shape[0] == 0:
            raise ValueError(
                f"inputs must be a non-empty batch [B, ...], got {tuple(inputs.shape)}"
            )
    check_choice("attention", attention, ATTENTION_RULES)
    check_type("return_convergence_delta", delta, bool)
    if rules is not None:
        check_type("rules", rules, Mapping)


def _propagate(
    model: nn.Module,
    inputs: torch.Tensor,
    t: int | torch.Tensor | None,
    rules: Mapping[Any, Rule] | None,
    attention: str,
    layer: tuple[nn.Module, bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The relevances at the inputs (or at ``layer``'s output or, with its flag, its input)
    and the selected outputs ``f_t(x)`` ``[B]``, from one forward and one backward pass.

    Leaf modules without a rule (``plan.unruled``) may compute from the input only what is
    linear in it (:data:`_LINEAR`) or what the function mode's rules cover (a softmax takes
    AttnLRP's rule, its gradient); ``functions`` checks them as they run.

    The backward pass carries ``c = R / a``, the relevance per unit of activation, so that
    ``R = a c`` everywhere: the rules act on each layer's output, ``c_in = W'^T (c_out z /
    (z' + eps))`` is the plain gradient through the rule's weights (``z'`` their output on the
    original activations ``a``, which every layer reads), and operations between modules
    (residual additions, reshapes, functional pooling and scaling) take their plain gradient,
    which is LRP-0 for them: a sum hands each summand the share it contributed."""
    plan = _plan(model, rules)
    batch = inputs.shape[0]
    capture = None if layer is None else (layer[0], _Capture(layer[1]))
    modified = {m: _modified_parameters(m, r) for m, r in plan.rules.items()}
    # the input rules' (x, leaves): they hand each leaf its value times its gradient
    bounds: list[tuple[torch.Tensor, list[torch.Tensor]]] = []
    functions = _LRPFunctions(attention) if plan.functions else None
    with eval_mode(model):
        hooks = _propagation_hooks(plan, modified, capture, bounds, functions, attention)
        x = _leaf(inputs) if capture is None else inputs.detach()
        with (
            torch.no_grad() if capture is not None else contextlib.nullcontext(),
            module_hooks(hooks),
        ):
            if functions is None:
                outputs = call_model(model, x)
            else:
                with functions, _frozen_parameters(model):
                    outputs = call_model(model, x)
            grad_out = _grad_outputs(outputs, t, batch)
            wrt = x if capture is None else capture[1].value
            if wrt is None:
                raise ValueError("layer did not run in the model's forward pass")
            _check_graph(outputs)
            leaves = [wrt] + [leaf for _, own in bounds for leaf in own]
            # unused: the inputs, where the layer reading them spreads relevance over ones
            grads = iter(
                torch.zeros_like(leaf) if grad is None else grad
                for leaf, grad in zip(
                    leaves, torch.autograd.grad(outputs, leaves, grad_out, allow_unused=True)
                )
            )
    relevance = wrt.detach() * next(grads)
    for read, own in bounds:
        if read.numel() != wrt.numel() or not torch.equal(read.reshape(wrt.shape), wrt.detach()):
            raise ValueError(
                "ZBoxRule, WSquareRule and FlatRule apply to the layer that reads the inputs (or, "
                "for layer_lrp, the attributed layer's input), reshaped at most"
            )
        for leaf in own:
            relevance = relevance + (leaf.detach() * next(grads)).reshape(wrt.shape)
    return relevance, _select(outputs.detach(), t, batch)


def _propagation_hooks(
    plan: _Plan,
    modified: dict[nn.Module, dict[str, torch.Tensor] | None],
    capture: tuple[nn.Module, LayerValueHook] | None,
    bounds: list[tuple[torch.Tensor, list[torch.Tensor]]],
    functions: _LRPFunctions | None,
    attention: str,
) -> list[tuple[nn.Module, Any, Any]]:
    """Forward hooks that make autograd carry relevance per unit of activation through every
    layer, and ``capture``'s on its layer (after the layer's own hook: an output's gradient is
    the one arriving from above); not while a rule reruns the layer with its weights, nor
    without gradients (before the attributed layer). A layer with an input rule adds its input
    and its leaves (z^B's bounds, the w^2 and flat rules' ones) to ``bounds``: the relevance it
    hands those is their value times their gradient.
    A normalization layer with a forward of its own runs inside ``functions``' count of the
    scales it holds, which must not stay 0; a layer without a rule, inside its record of the
    first function it computes from the input that is not linear, which must stay empty."""
    inputs = CallInputs()
    recomputing: set[nn.Module] = set()  # a layer rerun with its rule's weights: no hooks

    def pass_through(module: nn.Module, args: tuple[Any, ...], out: Any) -> torch.Tensor:
        x = inputs.pop(module)  # R_in = R_out: the gradient times out / x
        if type(module) is nn.ReLU:
            factor = (x.detach() > 0).to(x.dtype)  # out / x, in one comparison
        else:
            factor = _ratio(out.detach(), x.detach())
        result: torch.Tensor = _Scaled.apply(x, out.detach(), factor)
        if functions is None:
            return result
        return functions.gate(result, sigmoid=isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)))

    def rerun(module: nn.Module, params: dict[str, torch.Tensor], args: tuple[Any, ...]) -> Any:
        recomputing.add(module)  # the rule's weights on the same (original) activations
        try:
            return functional_call(module, params, args, strict=False)
        finally:
            recomputing.discard(module)

    def apply_rule(module: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        if module in recomputing or not torch.is_grad_enabled():
            return None
        rule = plan.rules[module]
        epsilon = rule.epsilon if isinstance(rule, EpsilonRule) else 1e-9
        if isinstance(rule, ZBoxRule):
            return _z_box(module, rule, args, out, rerun, bounds)
        if isinstance(rule, (WSquareRule, FlatRule)):
            return _spread(module, isinstance(rule, FlatRule), args, out, rerun, bounds)
        if isinstance(rule, AlphaBetaRule):
            return _alpha_beta(module, rule, args, out, rerun)
        if isinstance(module, _RECURRENT):
            return _recurrent(module, args, out, epsilon)
        if isinstance(module, nn.MultiheadAttention):  # (output, weights): the weights stay
            z = out[0].detach()
            return (_Scaled.apply(out[0], z, _rule_factor(z, None, epsilon)), *out[1:])
        params = modified[module]
        if params is None:  # with functions, a torch norm's output already holds its scale
            torch_norm = functions is None and isinstance(module, _NORMS)
            held = _held_scale(module, args[0]) if torch_norm else out
            factor = _rule_factor(out.detach(), None, epsilon)
            result: torch.Tensor = _Scaled.apply(held, out.detach(), factor)
            return result
        rule_out = rerun(module, params, args)
        factor = _rule_factor(out.detach(), rule_out.detach(), epsilon)
        result = _Scaled.apply(rule_out, out.detach(), factor)
        return result

    def enter_norm(module: nn.Module, args: tuple[Any, ...]) -> None:
        assert functions is not None
        functions.scales_held.append(0)

    def apply_norm_rule(module: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        assert functions is not None
        if functions.scales_held.pop() == 0:
            raise TypeError(
                f"lrp found no scale to hold constant in normalization "
                f"{plan.written_norms[module]!r} "
                f"({type(module).__name__}): its forward calls none of sqrt, rsqrt, std, var, "
                "a norm, F.layer_norm, F.rms_norm or F.group_norm; give it IdentityRule() in "
                "rules="
            )
        return apply_rule(module, args, out)

    hooks: list[tuple[nn.Module, Any, Any]] = [
        (m, inputs.pre_hook, pass_through) for m in plan.passing
    ]
    hooks += [(m, enter_norm, apply_norm_rule) for m in plan.written_norms]
    for module in plan.rules.keys() - plan.passing - plan.written_norms.keys():
        mha = isinstance(module, nn.MultiheadAttention)
        hooks.append((module, _attention_pre_hook(attention) if mha else None, apply_rule))

    def enter_unruled(module: nn.Module, args: tuple[Any, ...]) -> None:
        assert functions is not None
        functions.nonlinear.append(None)

    def check_unruled(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        assert functions is not None
        found = functions.nonlinear.pop()
        if found is not None:
            raise _no_rule(plan.unruled[module], module, f", which computes {found} from the input")
        if not functions.computed(out, args):
            raise _no_rule(
                plan.unruled[module], module, ", which computes with an operation lrp cannot see"
            )

    hooks += [(m, enter_unruled, check_unruled) for m in plan.unruled]
    if capture is not None:
        layer, keep = capture
        _, pre_hook, hook = keep.hooks(layer)
        if pre_hook is not None:
            hooks.insert(0, (layer, _unless(recomputing, pre_hook), None))
        else:
            hooks.append((layer, None, _unless(recomputing, hook)))
    return hooks


# --------------------------------------------------------------------------------------------
# recurrent layers: Arras, Montavon, Müller & Samek (2017), "Explaining Recurrent Neural
# Network Predictions in Sentiment Analysis" (WASSA)


def _epsilon_node(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z`` (a sum of contributions) with the epsilon rule at it: its gradient times
    ``z / (z + epsilon sign(z))``."""
    result: torch.Tensor = _Scaled.apply(z, z.detach(), _rule_factor(z.detach(), None, epsilon))
    return result


def _passed(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` (an elementwise activation of ``x``) handing its relevance on to ``x``."""
    result: torch.Tensor = _Scaled.apply(x, value, _ratio(value, x.detach()))
    return result


def _lstm_step(
    x_part: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    w_hr: torch.Tensor | None,
    epsilon: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (torch's gate order i, f, g, o) from ``x_part = W_ih x + b_ih``: the
    gates held, the epsilon rule at the cell input's pre-activation, at the cell state (a sum)
    and at the projection; ``tanh`` passes relevance on (signal-take-all)."""
    h, c = state
    pre = x_part + F.linear(h, w_hh, b_hh)
    i, f, g, o = pre.chunk(4, -1)
    i, f, o = (torch.sigmoid(a.detach()) for a in (i, f, o))
    g = _epsilon_node(g, epsilon)
    c = _epsilon_node(f * c + i * _passed(g, torch.tanh(g.detach())), epsilon)
    h = o * _passed(c, torch.tanh(c.detach()))
    if w_hr is not None:
        h = _epsilon_node(F.linear(h, w_hr), epsilon)
    return h, c


def _gru_step(
    x_part: torch.Tensor,
    h: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    epsilon: float,
) -> torch.Tensor:
    """One GRU step (gate order r, z, n): the reset and update gates held, the epsilon rule at
    the candidate's pre-activation and at the new state (a sum of the candidate's and the old
    state's shares); ``tanh`` passes relevance on."""
    x_r, x_z, x_n = x_part.chunk(3, -1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = torch.sigmoid((x_r + h_r).detach()), torch.sigmoid((x_z + h_z).detach())
    n = _epsilon_node(x_n + r * h_n, epsilon)
    return _epsilon_node((1 - z) * _passed(n, torch.tanh(n.detach())) + z * h, epsilon)


def _rnn_step(
    x_part: torch.Tensor,
    h: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    relu: bool,
    epsilon: float,
) -> torch.Tensor:
    """One Elman step: the epsilon rule at the pre-activation, which ``tanh`` or ReLU passes
    relevance on from."""
    pre = _epsilon_node(x_part + F.linear(h, w_hh, b_hh), epsilon)
    return _passed(pre, torch.relu(pre.detach()) if relu else torch.tanh(pre.detach()))


def _step(module: nn.Module, suffix: str, epsilon: float) -> Callable[..., Any]:
    """``(x_part, state) -> state`` of ``module``'s cell with the weights named ``suffix``."""
    w_hh = getattr(module, "weight_hh" + suffix)
    b_hh = getattr(module, "bias_hh" + suffix, None) if module.bias else None
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        w_hr = getattr(module, "weight_hr" + suffix, None)
        return lambda x, state: _lstm_step(x, state, w_hh, b_hh, w_hr, epsilon)
    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return lambda x, h: _gru_step(x, h, w_hh, b_hh, epsilon)
    relu = module.nonlinearity == "relu"
    return lambda x, h: _rnn_step(x, h, w_hh, b_hh, relu, epsilon)


def _input_part(module: nn.Module, suffix: str, x: torch.Tensor) -> torch.Tensor:
    """``W_ih x + b_ih`` for all steps of ``x`` at once."""
    bias = getattr(module, "bias_ih" + suffix, None) if module.bias else None
    return F.linear(x, getattr(module, "weight_ih" + suffix), bias)


def _recurrent_states(module: nn.Module, out: Any) -> list[torch.Tensor]:
    """The output tensors of a recurrent layer, flattened: ``[output, h_n(, c_n)]`` or a cell's
    ``[h(, c)]``."""
    if isinstance(module, nn.RNNCellBase):
        return list(out) if isinstance(module, nn.LSTMCell) else [out]
    output, last = out
    return [output, *last] if isinstance(module, nn.LSTM) else [output, last]


def _recurrent(module: nn.Module, args: tuple[Any, ...], out: Any, epsilon: float) -> Any:
    """``out`` of a recurrent layer (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` or their cells), its
    values kept and its gradient taken through the layer unrolled with LRP's rules: the
    gates held constant, ``tanh`` passing relevance on, and the epsilon rule at every sum
    (:func:`_lstm_step`, :func:`_gru_step`, :func:`_rnn_step`)."""
    x = args[0]
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"lrp needs {type(module).__name__}'s input as a tensor (pad packed sequences), got "
            f"{type(x).__name__}"
        )
    lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    given = args[1] if len(args) > 1 else None
    # the rules are applied here by hand: the function mode's, per op, would only cost time
    with torch._C.DisableTorchFunction():
        if isinstance(module, nn.RNNCellBase):
            ours = _cell(module, x, given, lstm, epsilon)
        else:
            assert isinstance(module, nn.RNNBase)
            ours = _unrolled(module, x, given, lstm, epsilon)
    theirs = _recurrent_states(module, out)
    for mine, value in zip(ours, theirs, strict=True):
        scale = float(value.detach().abs().max()) if value.numel() else 0.0
        # the fused kernel and the loop round differently: to 1e-4 relative, or ~100 ulp
        rtol = max(1e-4, 100 * torch.finfo(value.dtype).eps)
        if not torch.allclose(mine.detach(), value.detach(), rtol=rtol, atol=0.1 * rtol * scale):
            raise ValueError(
                f"lrp could not recompute {type(module).__name__}'s output: call it with its "
                "input and initial state as positional arguments, nothing else"
            )
    kept = [_Scaled.apply(mine, value.detach(), None) for mine, value in zip(ours, theirs)]
    if isinstance(module, nn.RNNCellBase):
        return tuple(kept) if lstm else kept[0]
    return (kept[0], tuple(kept[1:])) if lstm else (kept[0], kept[1])


def _cell(
    module: nn.RNNCellBase, x: torch.Tensor, given: Any, lstm: bool, epsilon: float
) -> list[torch.Tensor]:
    """``[h(, c)]`` of an ``nn.LSTMCell`` / ``nn.GRUCell`` / ``nn.RNNCell`` on ``x`` from the
    state ``given`` (or zeros) (:func:`_recurrent`)."""
    if given is None:
        zeros = x.new_zeros(*x.shape[:-1], module.hidden_size)
        given = (zeros, zeros) if lstm else zeros
    states = tuple(given) if lstm else (given,)
    batched = x.dim() == 2
    if not batched:
        x, states = x.unsqueeze(0), tuple(state.unsqueeze(0) for state in states)
    new = _step(module, "", epsilon)(_input_part(module, "", x), states if lstm else states[0])
    ours = list(new) if lstm else [new]
    return ours if batched else [state.squeeze(0) for state in ours]


def _unrolled(
    module: nn.RNNBase, x: torch.Tensor, given: Any, lstm: bool, epsilon: float
) -> list[torch.Tensor]:
    """``[output, h_n(, c_n)]`` of an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` on ``x`` from the
    initial state ``given`` (or zeros), layer by layer and step by step (:func:`_recurrent`)."""
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif module.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[:2]
    directions = 2 if module.bidirectional else 1
    h_size = module.proj_size if lstm and module.proj_size > 0 else module.hidden_size
    if given is None:
        h0 = x.new_zeros(module.num_layers * directions, batch, h_size)
        c0 = x.new_zeros(module.num_layers * directions, batch, module.hidden_size)
    else:
        h0, c0 = given if lstm else (given, given)  # a GRU's or RNN's c0 is not read
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    last: list[torch.Tensor] = []
    cells: list[torch.Tensor] = []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            step = _step(module, suffix, epsilon)
            parts = _input_part(module, suffix, x)
            k = layer * directions + direction
            state: Any = (h0[k], c0[k]) if lstm else h0[k]
            hs: list[torch.Tensor] = [x] * steps
            for t in reversed(range(steps)) if direction else range(steps):
                state = step(parts[t], state)
                hs[t] = state[0] if lstm else state
            outputs.append(torch.stack(hs))
            last.append(state[0] if lstm else state)
            if lstm:
                cells.append(state[1])
        x = torch.cat(outputs, -1) if directions == 2 else outputs[0]
    output = x if batched else x.squeeze(1)
    if batched and module.batch_first:
        output = output.transpose(0, 1)
    states = [torch.stack(last)] + ([torch.stack(cells)] if lstm else [])
    return [output, *(s if batched else s.squeeze(1) for s in states)]


def _z_box(
    module: nn.Module,
    rule: ZBoxRule,
    args: tuple[Any, ...],
    out: torch.Tensor,
    rerun: Any,
    bounds: list[tuple[torch.Tensor, list[torch.Tensor]]],
) -> torch.Tensor:
    """The z^B layer's output whose backward hands ``x``, ``l`` and ``h`` the gradients of
    ``z^B = z(x) - z+(l) - z-(h)`` scaled by ``z / z^B`` (the bias cancels in ``z^B``)."""
    x = args[0]
    leaves = []
    for name in ("low", "high"):
        value = torch.as_tensor(getattr(rule, name), dtype=x.dtype, device=x.device)
        try:
            leaves.append(torch.broadcast_to(value, x.shape).clone().requires_grad_(True))
        except RuntimeError:
            raise ValueError(
                f"ZBoxRule's {name} must broadcast to the layer's input {tuple(x.shape)}, got "
                f"shape {tuple(value.shape)}"
            ) from None
    low, high = leaves
    parts = []
    for bound, clamp in ((low, {"min": 0}), (high, {"max": 0})):
        params = {n: p.detach().clamp(**clamp) for n, p in module.named_parameters()}
        parts.append(rerun(module, params, (bound, *args[1:])))
    z_box = out - parts[0] - parts[1]
    bounds.append((x.detach(), [low, high]))
    result: torch.Tensor = _Scaled.apply(
        z_box, out.detach(), _rule_factor(out.detach(), z_box.detach(), 1e-9)
    )
    return result


def _alpha_beta(
    module: nn.Module, rule: AlphaBetaRule, args: tuple[Any, ...], out: torch.Tensor, rerun: Any
) -> torch.Tensor:
    """The output of a layer with the alpha-beta rule: its value, its backward handing the
    positive contributions ``z+ = W+ x+ + W- x- + b+`` the gradient times ``alpha z / z+`` and
    the negative ones ``z- = W- x+ + W+ x- + b-`` times ``-beta z / z-``."""
    x = args[0]
    signed = {"min": 0.0}, {"max": 0.0}
    params = {n: p.detach() for n, p in module.named_parameters()}

    def contributions(same: int) -> torch.Tensor:
        """``z+`` (``same=0``: weights of the inputs' sign) or ``z-`` (``same=1``)."""
        total = None
        for side, clamp in enumerate(signed):  # x+, then x-
            weights = signed[(side + same) % 2]
            p = {n: v.clamp(**weights) for n, v in params.items()}
            if "bias" in p and side == 1:
                p["bias"] = torch.zeros_like(p["bias"])  # the bias enters once, with x+
            part = rerun(module, p, (x.clamp(**clamp), *args[1:]))
            total = part if total is None else total + part
        assert total is not None
        return total

    z = out.detach()

    def factor(side: torch.Tensor) -> torch.Tensor:
        """``z / (side ± 1e-9)``, 0 where ``side`` is: its contributions, of one sign, all are
        (``z / 1e-9`` there would overflow a half-precision gradient, or a huge ``z``)."""
        return torch.where(side == 0, 0.0, _rule_factor(z, side, 1e-9))

    positive = contributions(0)
    result: torch.Tensor = _Scaled.apply(positive, z, rule.alpha * factor(positive.detach()))
    if rule.beta:
        negative = contributions(1)
        scale = -rule.beta * factor(negative.detach())
        result = result + _Scaled.apply(negative, torch.zeros_like(z), scale)
    return result


def _spread(
    module: nn.Module,
    flat: bool,
    args: tuple[Any, ...],
    out: torch.Tensor,
    rerun: Any,
    bounds: list[tuple[torch.Tensor, list[torch.Tensor]]],
) -> torch.Tensor:
    """The output of a layer with the w^2 rule (``flat``: the flat rule), whose backward hands
    a leaf of ones in place of the input the gradient of ``z' = W' 1`` (``W'`` the squared
    weights, or ones; no bias) scaled by ``z / z'``: ``R_i = sum_j w'_ij R_j / z'_j``."""
    ones = torch.ones_like(args[0]).requires_grad_(True)
    params = {
        name: torch.zeros_like(p) if name == "bias" else torch.ones_like(p) if flat else p.square()
        for name, p in ((n, p.detach()) for n, p in module.named_parameters())
    }
    spread = rerun(module, params, (ones, *args[1:]))
    bounds.append((args[0].detach(), [ones]))
    result: torch.Tensor = _Scaled.apply(
        spread, out.detach(), _rule_factor(out.detach(), spread.detach(), 1e-9)
    )
    return result


def _unless(recomputing: set[nn.Module], hook: Any) -> Any:
    """``hook``, skipped while its module is rerun with a rule's weights."""

    def run(module: nn.Module, *args: Any) -> Any:
        return None if module in recomputing else hook(module, *args)

    return run
