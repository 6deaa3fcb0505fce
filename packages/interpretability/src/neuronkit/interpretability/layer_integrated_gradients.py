"""Layer integrated gradients: integrated gradients along a path in a layer's activations.

Integrated gradients (Sundararajan, Taly & Yan, ICML 2017) taken with respect to a layer's
output (or input) instead of the model's input: the layer's activation ``a`` on the inputs and
``a'`` on the baselines are interpolated, ``a' + alpha (a - a')``, each point replaces the
layer's output in a forward pass, and ``(a - a') * sum_k w_k df/da(a' + alpha_k (a - a'))`` is
the attribution of each activation. It is how token attributions of a language model are
computed: the layer is the embedding, the inputs are token ids and the baseline e.g. padding
ids, for which no input gradient exists. Numbers equal Captum's ``LayerIntegratedGradients``
(same nodes and weights, :func:`~neuronkit.interpretability.attribution.integration_nodes`).

Speed: the interpolation pass runs the layers before ``layer`` without recording a graph
(their output is replaced), and all ``n_steps`` points of all examples go through one forward
and backward pass (or chunks of ``internal_batch_size`` rows).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neuronkit.common import check_choice, check_number, check_type, eval_mode, grad_enabled

from .attribution import (
    IG_METHODS,
    Target,
    _baselines,
    _check_finite_result,
    _check_graph,
    _check_inputs,
    _grad_outputs,
    _node_tensors,
    _repeat,
    _select,
    _target_index,
)
from .hooks import (
    LayerValueHook,
    call_model,
    checked_layer,
    module_hooks,
)

__all__ = ["layer_integrated_gradients"]


class _Layer(LayerValueHook):
    """Records the attributed layer's output (or first input) in the activation passes and
    replaces it with ``replacement`` in the interpolation pass, turning gradients on from there
    (the part of the model before the layer runs without a graph)."""

    recorded: torch.Tensor | None = None
    replacement: torch.Tensor | None = None
    calls = 0

    def on_value(self, value: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1:
            raise ValueError(
                "layer runs more than once in the model's forward pass: attribute to a layer "
                "called once"
            )
        if self.replacement is None:
            self.recorded = value.detach().clone()  # in-place ops after the layer
            return value
        if self.replacement.shape != value.shape:
            raise ValueError(
                f"the layer's {self.what} has shape {tuple(value.shape)} in the interpolation "
                f"pass and {tuple(self.replacement.shape)} expected: the layer's "
                f"{self.what} must hold the examples on axis batch_dim"
            )
        torch.set_grad_enabled(True)  # the enclosing no_grad() restores the mode on exit
        return self.replacement.clone()  # a copy: in-place ops after the layer leave the leaf

    def run(self, model: nn.Module, x: torch.Tensor, replacement: torch.Tensor | None) -> Any:
        """``model(x)`` without gradients up to the layer, whose value is recorded (or, given a
        ``replacement``, replaced); returns the model's output."""
        self.calls, self.replacement = 0, replacement
        with torch.no_grad():
            outputs = call_model(model, x)
        if self.calls == 0:
            raise ValueError("layer did not run in the model's forward pass")
        return outputs


def _layer_method(
    model: Any,
    layer: Any,
    n_steps: Any,
    method: Any,
    layer_input: Any,
    delta: Any,
    batch_dim: Any,
) -> nn.Module:
    """The checked arguments the layer path methods share; returns the layer's module."""
    check_number("n_steps", n_steps, ge=1, integer=True)
    check_choice("method", method, IG_METHODS)
    check_type("return_convergence_delta", delta, bool)
    return checked_layer(model, layer, layer_input, batch_dim)


def _straight_path(
    inputs: torch.Tensor, baselines: Any, method: str, points: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, x', weights, path)`` for the input path methods (conductance, influence): the
    detached inputs, the baselines, the rule's ``[points]`` weights and the ``points`` points
    ``x' + alpha_k (x - x')`` of every example, ``[points * B, ...]`` (point-major)."""
    _check_inputs(inputs, finite=False)
    x = inputs.detach()
    base = _baselines(baselines, x)
    alphas, weights = _node_tensors(method, points, x.dtype, x.device)
    path = base + alphas.view(-1, *([1] * x.ndim)) * (x - base)
    return x, base, weights, path.reshape(points * x.shape[0], *x.shape[1:])


def _expand(x: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` stacked copies of the batch ``x`` (copy-major, ``[k * B, ...]``)."""
    return x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])


@grad_enabled("layer_integrated_gradients")
def layer_integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
    layer_input: bool = False,
    return_convergence_delta: bool = False,
    batch_dim: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients of a layer's activations (Captum's ``LayerIntegratedGradients``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` tensor of any dtype (e.g. token ids; not modified).
        layer: the layer (name in ``model.named_modules()`` or submodule), called once per
            forward, with a ``[B, ...]`` tensor output (or first input, ``layer_input=True``).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        baselines: the reference inputs: ``None`` (zeros, Captum's default), a number, or a
            tensor shaped like ``inputs`` or like one example, in the inputs' dtype (e.g. the
            padding id).
        n_steps, method, internal_batch_size: as
            :func:`~neuronkit.interpretability.attribution.integrated_gradients`.
        layer_input: attribute the layer's input instead of its output.
        return_convergence_delta: also return ``sum attr - (f(x) - f(x'))`` per example.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        attributions shaped like the layer's output (input) ``[B, ...]``, and ``[B]`` deltas
        when asked.
    """
    module = _layer_method(
        model, layer, n_steps, method, layer_input, return_convergence_delta, batch_dim
    )
    check_type("inputs", inputs, torch.Tensor)
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty batch [B, ...], got {tuple(inputs.shape)}")
    if internal_batch_size is not None:
        check_number("internal_batch_size", internal_batch_size, ge=1, integer=True)
    batch = inputs.shape[0]
    t = _target_index(target, batch, inputs.device)
    base = _reference_inputs(baselines, inputs)
    probe = _Layer(layer_input)
    with eval_mode(model), module_hooks([probe.hooks(module)]):
        outputs = probe.run(model, inputs, None)
        acts = probe.recorded
        base_outputs = probe.run(model, base, None)
        base_acts = probe.recorded
        assert acts is not None
        assert base_acts is not None
        if not acts.is_floating_point():
            raise TypeError(
                f"the layer's {probe.what} must be floating to interpolate, got {acts.dtype} "
                "(e.g. attribute to an embedding's output, not its token-id input)"
            )
        if acts.ndim <= batch_dim or acts.shape[batch_dim] != batch:
            raise ValueError(
                f"the layer's {probe.what} must hold the {batch} examples on axis {batch_dim} "
                f"(batch_dim; 1 for time-major [T, B, ...] layers such as spiking neurons), got "
                f"shape {tuple(acts.shape)}"
            )
        acts, base_acts = acts.movedim(batch_dim, 0), base_acts.movedim(batch_dim, 0)
        diff = acts - base_acts
        # the weighted sum over the steps in float32 at least (as integrated_gradients): a
        # half-precision running sum over internal_batch_size chunks drifts by several ulps
        wide = torch.promote_types(diff.dtype, torch.float32)
        alphas, weights = _node_tensors(method, int(n_steps), diff.dtype, diff.device, wide)
        per_pass = n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
        total: torch.Tensor | None = None
        view = (-1, *([1] * diff.ndim))
        for start in range(0, n_steps, per_pass):
            k = min(n_steps, start + per_pass) - start
            points = (base_acts + alphas[start : start + k].view(view) * diff).reshape(
                k * batch, *diff.shape[1:]
            )
            leaf = points.requires_grad_(True)
            out = probe.run(model, _expand(inputs, k), leaf.movedim(0, batch_dim))
            grad_out = _grad_outputs(out, _repeat(t, k), k * batch)
            _check_graph(out, "model output")
            (grads,) = torch.autograd.grad(out, leaf, grad_out)
            part = (weights[start : start + k] @ grads.reshape(k, -1).to(wide)).view_as(diff)
            total = part if total is None else total + part
    assert total is not None
    attributions = _check_finite_result(
        (total * diff).to(diff.dtype).movedim(0, batch_dim), "outputs or gradients"
    )
    if not return_convergence_delta:
        return attributions
    difference = _select(outputs, t, batch) - _select(
        base_outputs.expand(batch, *base_outputs.shape[1:]), t, batch
    )
    delta = attributions.reshape(batch, -1).sum(1) - difference
    return attributions, _check_finite_result(delta, "outputs")


def _reference_inputs(baselines: Any, inputs: torch.Tensor) -> torch.Tensor:
    """The baselines as a batch ``[B, ...]`` in the inputs' dtype (``None``: zeros)."""
    if baselines is None:
        return torch.zeros_like(inputs)
    if not isinstance(baselines, torch.Tensor):
        check_number("baselines", baselines)
        return torch.full_like(inputs, baselines)
    if baselines.dtype != inputs.dtype:
        raise TypeError(
            f"baselines must have the inputs' dtype {inputs.dtype} (e.g. padding ids for token "
            f"ids), got {baselines.dtype}"
        )
    if baselines.shape == inputs.shape:
        return baselines.detach()
    if baselines.ndim == 0 or baselines.shape in (inputs.shape[1:], (1, *inputs.shape[1:])):
        return baselines.detach().expand_as(inputs)
    raise ValueError(
        f"baselines must be a number or have shape {tuple(inputs.shape)} or "
        f"{tuple(inputs.shape[1:])}, got {tuple(baselines.shape)}"
    )
