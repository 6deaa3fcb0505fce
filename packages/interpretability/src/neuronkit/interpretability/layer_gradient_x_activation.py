"""Layer gradient x activation: each unit of a layer times the output's gradient there.

The first-order (Taylor) estimate of what each unit contributes to the selected output,
``a_j dF/da_j``, as in gradient x input applied to a hidden layer (Shrikumar et al. 2016 for
inputs; Captum's ``LayerGradientXActivation``). The layers before the attributed one run
without a graph (only the gradient with respect to the layer is needed).
"""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.common import check_type, grad_enabled

from .attribution import Target, _check_inputs, _finite_with_inputs, _target_index
from .grad_cam import _layer_gradients
from .hooks import checked_layer

__all__ = ["layer_gradient_x_activation"]


@grad_enabled("layer_gradient_x_activation")
def layer_gradient_x_activation(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    layer_input: bool = False,
    multiply_by_activations: bool = True,
    batch_dim: int = 0,
) -> torch.Tensor:
    """Gradient x activation of each unit of ``layer`` (Captum's
    ``LayerGradientXActivation``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, ...]`` is attributed; called several
            times per forward, its last call counts.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        layer_input: attribute the layer's input instead of its output.
        multiply_by_activations: ``False`` returns the gradient alone (Captum's
            ``multiply_by_inputs=False``).
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        ``[B, ...]`` shaped like the layer's output (input).
    """
    check_type("multiply_by_activations", multiply_by_activations, bool)
    module = checked_layer(model, layer, layer_input, batch_dim)
    _check_inputs(inputs, finite=False)
    t = _target_index(target, inputs.shape[0], inputs.device)
    acts, grads = _layer_gradients(model, module, inputs, t, layer_input, batch_dim=batch_dim)
    result = (grads * acts if multiply_by_activations else grads).movedim(0, batch_dim)
    return _finite_with_inputs(inputs, result, "outputs, activations or gradients")
