"""Attributions of a hidden neuron: which input features drive one unit of a layer?

:func:`neuron_output` turns a model into the map from its inputs to one unit (or a selection
of units, summed) of a layer, ``[B]``, stopping the forward pass at that layer. Every input
attribution method of the package then attributes the neuron instead of a class, with
``target=None``: :func:`~neuronkit.interpretability.saliency` gives Captum's
``NeuronGradient``, :func:`~neuronkit.interpretability.integrated_gradients`
``NeuronIntegratedGradients``, :func:`~neuronkit.interpretability.deeplift`
``NeuronDeepLift``, :func:`~neuronkit.interpretability.gradient_shap`
``NeuronGradientShap`` (in distribution: other draws),
:func:`~neuronkit.interpretability.guided_backprop` ``NeuronGuidedBackprop``,
:func:`~neuronkit.interpretability.deconvolution` ``NeuronDeconvolution`` and
:func:`~neuronkit.interpretability.feature_ablation` ``NeuronFeatureAblation`` (the others
equal to Captum's, tested); occlusion, Shapley values, LIME and the rest work alike.

:func:`neuron_conductance` (Dhamdhere, Sundararajan & Yan, "How Important Is a Neuron?",
ICLR 2019; Captum's ``NeuronConductance``) is the part of the integrated gradients of the
model's output that flows through the neuron ``y``::

    (x_i - x'_i) sum_k w_k (dF/dy)(x_k) (dy/dx_i)(x_k),   x_k = x' + alpha_k (x - x')

Over all neurons of a layer that every path from the input crosses, it sums to the integrated
gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from neuronkit.common import eval_mode, grad_enabled

from .attribution import (
    Target,
    _check_graph,
    _finite_with_inputs,
    _grad_outputs,
    _repeat,
    _target_index,
)
from .hooks import (
    KeepValue,
    call_model,
    checked_layer,
    layer_value,
    module_hooks,
)
from .layer_integrated_gradients import _layer_method, _straight_path

__all__ = ["neuron_conductance", "neuron_output"]

#: a unit of a layer's ``[B, *U]`` output: an index into ``U`` (ints, or slices whose units are
#: summed, as Captum's ``neuron_selector``), or a function of the output returning ``[B]``
Neuron = int | Sequence[int | slice] | Callable[[torch.Tensor], torch.Tensor]


def _check_neuron(neuron: Any) -> None:
    if callable(neuron):
        return
    parts = neuron if isinstance(neuron, Sequence) and not isinstance(neuron, str) else (neuron,)
    if not parts or not all(
        isinstance(p, slice) or (isinstance(p, int) and not isinstance(p, bool)) for p in parts
    ):
        raise TypeError(
            f"neuron must be an int, a tuple of ints / slices or a callable, got {neuron!r:.80}"
        )


def _select(values: torch.Tensor, neuron: Neuron, what: str, batch_dim: int = 0) -> torch.Tensor:
    """The neuron's value in each row of ``values`` ``[N, *U]`` (its axis ``batch_dim``
    indexing the rows; moved to the front first), ``[N]`` (units a slice selects are
    summed)."""
    if values.ndim <= batch_dim:
        raise ValueError(
            f"the layer's {what} {tuple(values.shape)} has no axis {batch_dim} (batch_dim)"
        )
    values = values.movedim(batch_dim, 0)
    if callable(neuron):
        out = neuron(values)
        if not isinstance(out, torch.Tensor) or out.numel() != values.shape[0]:
            got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out)
            raise ValueError(
                f"neuron must return one value per row of the layer's {what} "
                f"{tuple(values.shape)}, got {got}"
            )
        return out.reshape(-1)
    index = tuple(neuron) if isinstance(neuron, Sequence) else (neuron,)
    if len(index) != values.ndim - 1:
        raise ValueError(
            f"neuron must index the {values.ndim - 1} non-batch dimensions of the layer's "
            f"{what} {tuple(values.shape)}, got {neuron!r}"
        )
    try:
        chosen = values[(slice(None), *index)]
    except IndexError as err:
        raise ValueError(
            f"neuron {neuron!r} is outside the layer's {what} {tuple(values.shape)}: {err}"
        ) from None
    return chosen.reshape(values.shape[0], -1).sum(1)


class _NeuronOutput(nn.Module):
    """``inputs [B, ...] -> [B]``: one neuron of ``layer`` in ``model`` (see
    :func:`neuron_output`). ``model`` is a submodule, so methods that hook the model's modules
    (DeepLIFT, guided backpropagation) see them; the modules after the layer do not run."""

    def __init__(
        self, model: nn.Module, layer: nn.Module, neuron: Neuron, layer_input: bool, batch_dim: int
    ):
        super().__init__()
        self.model = model
        self._layer = (layer,)  # not a submodule of its own: it is one of model's
        self.neuron, self.layer_input, self.batch_dim = neuron, layer_input, batch_dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        value = layer_value(self.model, self._layer[0], inputs, self.layer_input)
        what = "input" if self.layer_input else "output"
        return _select(value, self.neuron, what, self.batch_dim)


def neuron_output(
    model: nn.Module,
    layer: str | nn.Module,
    neuron: Neuron,
    *,
    layer_input: bool = False,
    batch_dim: int = 0,
) -> nn.Module:
    """The model that maps ``model``'s inputs to one neuron of ``layer``, for the input
    attribution methods (``target=None``; see the module docstring).

    Args:
        model: an ``nn.Module``.
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, *U]`` holds the neuron; the forward pass
            stops when it has run.
        neuron: an index into ``U`` (an int for ``[B, U]``; a tuple such as ``(channel, row,
            column)``), whose slices select several units, summed; or a function of the
            layer's ``[B, *U]`` output returning ``[B]``.
        layer_input: the neuron is one of the layer's input units.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, *U]`` layers (spiking neurons), whose ``neuron`` then indexes
            ``[T, *U]`` (e.g. ``(slice(None), 5)``: unit 5's spikes summed over time).

    Returns:
        an ``nn.Module`` mapping ``[B, ...]`` to ``[B]``.
    """
    module = checked_layer(model, layer, layer_input, batch_dim)
    _check_neuron(neuron)
    return _NeuronOutput(model, module, neuron, layer_input, batch_dim)


@grad_enabled("neuron_conductance")
def neuron_conductance(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    neuron: Neuron,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "riemann_trapezoid",
    layer_input: bool = False,
    batch_dim: int = 0,
) -> torch.Tensor:
    """Conductance of each input feature through one neuron (Captum's ``NeuronConductance``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer, neuron, layer_input, batch_dim: the neuron, as :func:`neuron_output` (a slice's
            units, or a
            function of the layer's output, take ``dF/dy`` from the same selection of the
            gradient, as Captum).
        target: class index / indices of the model's output ``F``.
        baselines: the reference input ``x'``: ``None`` (zeros), a number, or a tensor shaped
            like ``inputs`` or like one example.
        n_steps: points on the path (Captum's default 50).
        method: their rule, as :func:`~neuronkit.interpretability.integration_nodes`
            (Captum's default here: ``"riemann_trapezoid"``).

    Returns:
        ``[B, ...]`` conductances shaped like ``inputs``.
    """
    module = _layer_method(model, layer, n_steps, method, layer_input, False, batch_dim)
    _check_neuron(neuron)
    points = int(n_steps)
    x, base, weights, path = _straight_path(inputs, baselines, method, points)
    batch = x.shape[0]
    diff = x - base
    t = _target_index(target, batch, inputs.device)
    path.requires_grad_(True)
    keep = KeepValue(layer_input)
    what = "input" if layer_input else "output"
    with eval_mode(model), module_hooks([keep.hooks(module)]):
        outputs = call_model(model, path, copy=False)
        grad_out = _grad_outputs(outputs, _repeat(t, points), points * batch)
        _check_graph(outputs)
        acts = keep.value
        if acts is None:
            raise ValueError("layer did not run in the model's forward pass")
        if acts.ndim <= batch_dim or acts.shape[batch_dim] != points * batch:
            raise ValueError(
                f"the layer's {what} must hold the {points * batch} rows of the path on axis "
                f"{batch_dim} (batch_dim), got shape {tuple(acts.shape)}"
            )
        (through,) = torch.autograd.grad(outputs, acts, grad_out, retain_graph=True)
        (along,) = torch.autograd.grad(_select(acts, neuron, what, batch_dim).sum(), path)
    scale = _select(through, neuron, what, batch_dim) * weights.repeat_interleave(batch)
    flow = (along * scale.view(-1, *([1] * (x.ndim - 1)))).view(points, *x.shape).sum(0)
    return _finite_with_inputs(inputs, flow * diff, "outputs or gradients")
