"""DeepLIFT with the Rescale rule and DeepLIFT SHAP: attributions as differences from a reference.

Shrikumar, Greenside & Kundaje, "Learning Important Features Through Propagating Activation
Differences" (ICML 2017). Every nonlinearity ``y = f(x)`` passes back, instead of its
derivative, the multiplier ``(f(x) - f(x')) / (x - x')`` of its input's and output's
differences from the values ``x'``, ``f(x')`` it had on the reference input (the Rescale rule;
where ``|x - x'| < eps`` its ordinary derivative); linear layers pass gradients as usual. The
attribution of input ``i`` is ``(x_i - x'_i)`` times its multiplier, and the attributions of an
example sum to ``f(x) - f(x')`` (summation-to-delta) whenever every nonlinearity follows a rule.

Numbers equal Captum's ``DeepLift`` and ``DeepLiftShap`` on the module types Captum handles:
``nn.ReLU``, ``nn.ELU``, ``nn.LeakyReLU``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Softplus``
(Rescale) and ``nn.MaxPool1d/2d/3d`` (Captum's rule: the output difference, split at the
larger of the two maxima, is routed to each one's argmax and divided by the input
difference). The Rescale rule also applies here to the other elementwise activation modules
of torch (``nn.GELU``, ``nn.SiLU``, ``nn.Mish``, ``nn.SELU``, ``nn.CELU``, ``nn.Hardtanh``,
``nn.ReLU6``, ``nn.Hardswish``, ``nn.Hardsigmoid``, ``nn.LogSigmoid``, ``nn.Softsign``,
``nn.Tanhshrink``, ``nn.Softshrink``, ``nn.Hardshrink``, ``nn.PReLU``), which Captum passes
through with their gradient, so that summation-to-delta holds for modern networks too.
Functional activations in a ``forward`` (``F.relu``) keep their gradient, and so does
``nn.Softmax``: attribute to the logits, as the paper recommends. A module may be called
several times (Captum requires one call); each call uses the reference values of the same
call. Overlapping max pools add the routed differences where Captum's unpooling keeps one of
them.

Speed: the reference runs once without autograd, on one example when the baseline is shared
(Captum runs inputs and baselines as one ``2B`` batch through forward and backward).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import check_number, check_type, eval_mode, grad_enabled

from .attribution import (
    ELEMENTWISE_ACTIVATIONS,
    Target,
    _baseline_sample,
    _baselines,
    _check_finite_result,
    _check_graph,
    _check_inputs,
    _check_output,
    _finite_with_inputs,
    _grad_outputs,
    _leaf,
    _select,
    _target_index,
)
from .grad_cam import _Capture
from .hooks import (
    CallInputs,
    call_model,
    check_not_compiled,
    checked_layer,
    module_hooks,
)

__all__ = ["deeplift", "deeplift_shap", "layer_deeplift", "layer_deeplift_shap"]

_RESCALED = ELEMENTWISE_ACTIVATIONS  # exact types (Captum's six first)
_MAX_POOLS = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_POOL_FUNCTIONS: dict[int, Any] = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _rule_modules(model: nn.Module) -> list[nn.Module]:
    """The modules a rule replaces the gradient of (a max pool returning its indices keeps it)."""
    return [
        m
        for m in model.modules()
        if type(m) in _RESCALED or (type(m) in _MAX_POOLS and not m.return_indices)
    ]


class _References:
    """The input and output of every call of every rule module on the reference batch, in call
    order (recorded by a no-grad forward pass), handed out call by call in the second pass."""

    def __init__(self) -> None:
        self.calls: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.used: dict[nn.Module, int] = {}
        self.inputs = CallInputs()

    def record(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        x = self.inputs.pop(module)
        self.calls.setdefault(module, []).append((x.detach().clone(), out.detach().clone()))

    def next(self, module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.used.get(module, 0)
        calls = self.calls.get(module, [])
        if k >= len(calls):
            raise RuntimeError(
                f"{type(module).__name__} module ran more often on the inputs than on the "
                f"baselines ({len(calls)} calls): DeepLIFT needs the same computation path for both"
            )
        self.used[module] = k + 1
        ref_in, ref_out = calls[k]
        if ref_in.shape[1:] != x.shape[1:] or ref_in.shape[0] not in (1, x.shape[0]):
            raise RuntimeError(
                f"{type(module).__name__} module saw shape {tuple(ref_in.shape)} on the "
                f"baselines and {tuple(x.shape)} on the inputs: DeepLIFT needs the same "
                "computation path for both"
            )
        return ref_in, ref_out


def _small(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """``|delta| < eps``, and ``delta == 0`` where ``eps`` rounds to 0 in ``delta``'s dtype
    (the default 1e-10 in float16): an input equal to its reference must not divide 0 by 0."""
    return (delta.abs() < eps) | (delta == 0)


def _rescaled(
    x: torch.Tensor, out: torch.Tensor, ref_in: torch.Tensor, ref_out: torch.Tensor, eps: float
) -> torch.Tensor:
    """``out`` with gradient ``(out - ref_out) / (x - ref_in)`` with respect to ``x`` (its own
    derivative where ``|x - ref_in| < eps``)."""
    with torch.no_grad():
        delta = x - ref_in
        small = _small(delta, eps)
        ratio = (out - ref_out) / delta.masked_fill(small, 1.0)
        ratio.masked_fill_(small, 0.0)
    kept = torch.where(small, out, out.detach()) if bool(small.any()) else out.detach()
    return kept + (x - x.detach()) * ratio


def _route(
    values: torch.Tensor, indices: torch.Tensor, shape: torch.Size, dims: int
) -> torch.Tensor:
    """Sum ``values`` (a pool's output shape) into a zero tensor of the pool's input ``shape``
    at the pool's flat argmax ``indices`` (over its last ``dims`` dimensions)."""
    lead = shape[: len(shape) - dims]
    flat = values.new_zeros(*lead, int(torch.Size(shape[len(lead) :]).numel()))
    flat.scatter_add_(-1, indices.flatten(-dims), values.flatten(-dims))
    return flat.view(shape)


class _MaxPoolRule(torch.autograd.Function):
    """The max pool ``module`` of ``x``, whose backward is Captum's DeepLIFT rule for it against
    the reference input and output ``ref_in``, ``ref_out`` (module docstring)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        ref_in: torch.Tensor,
        ref_out: torch.Tensor,
        module: Any,
        eps: float,
    ) -> torch.Tensor:
        dims = _MAX_POOLS[type(module)]
        settings = (module.kernel_size, module.stride, module.padding, module.dilation)
        pool = _POOL_FUNCTIONS[dims]
        out, indices = pool(x, *settings, module.ceil_mode, return_indices=True)
        _, ref_indices = pool(ref_in, *settings, module.ceil_mode, return_indices=True)
        cross = torch.maximum(out, ref_out)
        ctx.save_for_backward(
            indices, ref_indices.expand_as(indices), cross - ref_out, out - cross, x - ref_in
        )
        ctx.dims, ctx.eps, ctx.shape = dims, eps, x.shape
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        indices, ref_indices, above_ref, below_max, delta = ctx.saved_tensors
        routed = _route(grad * above_ref, indices, ctx.shape, ctx.dims)
        routed += _route(grad * below_max, ref_indices, ctx.shape, ctx.dims)
        small = _small(delta, ctx.eps)
        multiplier = routed / delta.masked_fill(small, 1.0)
        if bool(small.any()):
            multiplier = torch.where(small, _route(grad, indices, ctx.shape, ctx.dims), multiplier)
        return multiplier, None, None, None, None


def _layer_hooks(
    captures: list[_Capture], layer: tuple[nn.Module, bool] | None, *, before: bool
) -> list[tuple[nn.Module, Any, Any]]:
    """The layer's capturing hook, registered before the rule modules' hooks when it keeps a
    layer's input (a rule module's pre-hook then sees the kept leaf) and after them when it
    keeps its output (the output with the rule's gradient)."""
    if layer is None or layer[1] != before:
        return []
    return [c.hooks(layer[0]) for c in captures]


def _attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    base: torch.Tensor,
    target: int | torch.Tensor | None,
    eps: float,
    layer: tuple[nn.Module, bool] | None = None,
    batch_dim: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multipliers ``[B, ...]`` of ``inputs`` against the reference ``base`` (``[B, ...]`` or
    ``[1, ...]``) and the selected outputs' differences ``f(x) - f(x')`` ``[B]``. With
    ``layer`` (a module, and whether its input counts), the multipliers of the layer's output
    (input) and, in place of the differences, that value's difference from the reference's,
    both in the layer's layout (the examples on its axis ``batch_dim``)."""
    modules = _rule_modules(model)
    refs = _References()
    batch = inputs.shape[0]
    at_layer = [] if layer is None else [_Capture(layer[1]), _Capture(layer[1])]  # ref, input
    with eval_mode(model):
        with (
            torch.no_grad(),
            module_hooks(_layer_hooks(at_layer[:1], layer, before=True)),
            module_hooks((m, refs.inputs.pre_hook, refs.record) for m in modules),
            module_hooks(_layer_hooks(at_layer[:1], layer, before=False)),
        ):
            # the baselines are in the inputs' dtype: a dtype the model refuses is the inputs'
            ref_outputs = call_model(model, base, "inputs")
        _check_output(ref_outputs, target, base.shape[0], scan=False)
        pending = CallInputs()

        def apply_rule(module: nn.Module, args: tuple[Any, ...], out: Any) -> torch.Tensor:
            x = pending.pop(module)
            ref_in, ref_out = refs.next(module, x)
            if type(module) in _MAX_POOLS:
                result: torch.Tensor = _MaxPoolRule.apply(x, ref_in, ref_out, module, eps)
                return result
            return _rescaled(x, out, ref_in, ref_out, eps)

        x = _leaf(inputs) if layer is None else inputs.detach()
        with (
            # at a layer: no graph before it (its hook turns gradients on)
            torch.no_grad() if layer is not None else contextlib.nullcontext(),
            module_hooks(_layer_hooks(at_layer[1:], layer, before=True)),
            module_hooks((m, pending.pre_hook, apply_rule) for m in modules),
            module_hooks(_layer_hooks(at_layer[1:], layer, before=False)),
        ):
            outputs = call_model(model, x)
            grad_out = _grad_outputs(outputs, target, batch)
            if layer is not None:
                acts, ref_acts = at_layer[1].value, at_layer[0].value
                if acts is None or ref_acts is None:
                    raise ValueError("layer did not run in the model's forward pass")
                if acts.ndim <= batch_dim or acts.shape[batch_dim] != batch:
                    raise ValueError(
                        f"the layer's {at_layer[1].what} must hold the {batch} examples on "
                        f"axis {batch_dim} (batch_dim; 1 for time-major [T, B, ...] layers "
                        f"such as spiking neurons), got shape {tuple(acts.shape)}"
                    )
                (grad,) = torch.autograd.grad(outputs, acts, grad_out)
                return grad, acts.detach() - ref_acts.detach()
            _check_graph(outputs)
            (grad,) = torch.autograd.grad(outputs, x, grad_out)
    with torch.no_grad():
        ref_selected = _select(ref_outputs.expand(batch, *ref_outputs.shape[1:]), target, batch)
        difference = _select(outputs.detach(), target, batch) - ref_selected
    return grad, difference


def _prepare(model: Any, inputs: Any, eps: Any, delta: Any) -> None:
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    _check_inputs(inputs, finite=False)
    check_number("eps", eps, gt=0)
    check_type("return_convergence_delta", delta, bool)


def _prepare_layer(
    model: Any, inputs: Any, layer: Any, layer_input: Any, eps: Any, batch_dim: Any
) -> nn.Module:
    """The checked arguments of the layer methods; returns the layer's module."""
    _prepare(model, inputs, eps, False)
    return checked_layer(model, layer, layer_input, batch_dim)


def _reference(baselines: Any, inputs: torch.Tensor) -> torch.Tensor:
    """The baseline as ``[B, ...]`` or, when shared by all examples, ``[1, ...]``."""
    if not isinstance(baselines, torch.Tensor):  # None (zeros) or a number
        return _baselines(baselines, inputs[:1])
    base = _baselines(baselines, inputs)
    return base[:1] if base.shape[0] > 1 and base.stride(0) == 0 else base


@grad_enabled("deeplift")
def deeplift(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    eps: float = 1e-10,
    return_convergence_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """DeepLIFT with the Rescale rule (Shrikumar et al. 2017), Captum's ``DeepLift``.

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        baselines: the reference input ``x'``: ``None`` (zeros, Captum's default), a scalar, a
            tensor shaped like ``inputs`` or like one example.
        eps: below this ``|x - x'|`` a nonlinearity passes its ordinary derivative (Captum's
            default ``1e-10``).
        return_convergence_delta: also return ``sum_i attr_i - (f(x) - f(x'))`` per example
            (Captum's sign; 0 up to rounding when every nonlinearity follows a rule).

    Returns:
        ``[B, ...]`` attributions, and ``[B]`` deltas when asked.
    """
    _prepare(model, inputs, eps, return_convergence_delta)
    base = _reference(baselines, inputs)
    t = _target_index(target, inputs.shape[0], inputs.device)
    grad, difference = _attribute(model, inputs, base, t, float(eps))
    attributions = _finite_with_inputs(
        inputs, grad * (inputs.detach() - base), "outputs or gradients"
    )
    if not return_convergence_delta:
        return attributions
    delta = attributions.reshape(inputs.shape[0], -1).sum(1) - difference
    return attributions, _check_finite_result(delta, "outputs")


def _pairs(
    inputs: torch.Tensor, baselines: torch.Tensor, target: Target
) -> tuple[int, int, torch.Tensor, torch.Tensor, int | torch.Tensor | None]:
    """``B``, ``K`` and every example against every baseline as rows, example-major (example
    ``b`` against baseline ``j`` at ``b * K + j``, as Captum expands them): the inputs, the
    baselines and the targets of the ``B * K`` rows."""
    refs = _baseline_sample(baselines, inputs)
    batch, k = inputs.shape[0], refs.shape[0]
    t = _target_index(target, batch, inputs.device)
    x = inputs.detach().repeat_interleave(k, dim=0)
    base = refs.repeat(batch, *([1] * (inputs.ndim - 1)))
    rows_t = t.repeat_interleave(k) if isinstance(t, torch.Tensor) else t
    return batch, k, x, base, rows_t


@grad_enabled("deeplift_shap")
def deeplift_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    target: Target = None,
    *,
    eps: float = 1e-10,
    return_convergence_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """DeepLIFT SHAP (Lundberg & Lee 2017), Captum's ``DeepLiftShap``: DeepLIFT against each of
    ``K`` baselines (a sample of the data distribution), averaged.

    Args:
        model, inputs, target, eps: as :func:`deeplift`.
        baselines: ``[K, ...]`` reference examples, ``K >= 1``.
        return_convergence_delta: also return the ``[B * K]`` deltas of each example against
            each baseline (Captum's order: example-major).

    Returns:
        ``[B, ...]`` attributions, and ``[B * K]`` deltas when asked.
    """
    _prepare(model, inputs, eps, return_convergence_delta)
    batch, k, x, base, rows_t = _pairs(inputs, baselines, target)
    grad, difference = _attribute(model, x, base, rows_t, float(eps))
    per_pair = _finite_with_inputs(x, grad * (x - base), "outputs or gradients")
    attributions = per_pair.view(batch, k, *inputs.shape[1:]).mean(1)
    if not return_convergence_delta:
        return attributions
    delta = per_pair.reshape(batch * k, -1).sum(1) - difference
    return attributions, _check_finite_result(delta, "outputs")


@grad_enabled("layer_deeplift")
def layer_deeplift(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    layer_input: bool = False,
    eps: float = 1e-10,
    batch_dim: int = 0,
) -> torch.Tensor:
    """DeepLIFT attributions of a layer's units (Captum's ``LayerDeepLift``): the
    multipliers of the layer's output (or input) under the rules of the modules after it,
    times its difference from its value on the reference input. The units' attributions of an
    example sum to ``f(x) - f(x')`` when every nonlinearity after the layer follows a rule.

    Args:
        model, inputs, target, baselines, eps: as :func:`deeplift`.
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, ...]`` is attributed; called once per
            forward.
        layer_input: attribute the layer's input instead of its output.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        ``[B, ...]`` shaped like the layer's output (input).
    """
    module = _prepare_layer(model, inputs, layer, layer_input, eps, batch_dim)
    base = _reference(baselines, inputs)
    t = _target_index(target, inputs.shape[0], inputs.device)
    grad, change = _attribute(model, inputs, base, t, float(eps), (module, layer_input), batch_dim)
    return _finite_with_inputs(inputs, grad * change, "outputs or gradients")


@grad_enabled("layer_deeplift_shap")
def layer_deeplift_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    baselines: torch.Tensor,
    target: Target = None,
    *,
    layer_input: bool = False,
    eps: float = 1e-10,
    batch_dim: int = 0,
) -> torch.Tensor:
    """:func:`layer_deeplift` against each of ``K`` baselines ``[K, ...]``, averaged (Captum's
    ``LayerDeepLiftShap``; the pairs run as one batch, example-major as in
    :func:`deeplift_shap`). Arguments as :func:`layer_deeplift`, ``baselines`` ``[K, ...]`` as
    :func:`deeplift_shap`'s.

    Returns:
        ``[B, ...]`` shaped like the layer's output (input), in its layout.
    """
    module = _prepare_layer(model, inputs, layer, layer_input, eps, batch_dim)
    batch, k, x, base, rows_t = _pairs(inputs, baselines, target)
    grad, change = _attribute(model, x, base, rows_t, float(eps), (module, layer_input), batch_dim)
    per_pair = (grad * change).movedim(batch_dim, 0)
    mean = per_pair.reshape(batch, k, *per_pair.shape[1:]).mean(1)
    attributions = mean.movedim(0, batch_dim)
    return _finite_with_inputs(inputs, attributions, "outputs or gradients")
