"""Internal influence: the output's gradient at a layer, averaged along the input path.

Leino, Sen, Datta, Fredrikson & Li, "Influence-Directed Explanations for Deep Convolutional
Networks" (ITC 2018): the influence of a layer's unit on the selected output is its gradient
``dF/da_j`` averaged over a distribution of interest; as Captum's ``InternalInfluence``, the
distribution is the straight path from a baseline ``x'`` to the input,
``sum_k w_k dF/da_j(x' + alpha_k (x - x'))`` (integrated gradients' points and weights, not
multiplied by the activations' change: that is layer conductance). All points of all
examples go through one forward and backward pass, the layers before the attributed one
without a graph.
"""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.common import grad_enabled

from .attribution import (
    Target,
    _finite_with_inputs,
    _repeat,
    _target_index,
)
from .grad_cam import _layer_gradients
from .layer_integrated_gradients import _layer_method, _straight_path

__all__ = ["internal_influence"]


@grad_enabled("internal_influence")
def internal_influence(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    layer_input: bool = False,
    batch_dim: int = 0,
) -> torch.Tensor:
    """Internal influence of each unit of ``layer`` (Captum's ``InternalInfluence``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, ...]`` is attributed.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        baselines: the path's start ``x'``: ``None`` (zeros, Captum's default), a number, or a
            tensor shaped like ``inputs`` or like one example.
        n_steps: points on the path (Captum's default 50).
        method: their rule, as :func:`~neuronkit.interpretability.integration_nodes`.
        layer_input: attribute the layer's input instead of its output.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        ``[B, ...]`` shaped like the layer's output (input).
    """
    module = _layer_method(model, layer, n_steps, method, layer_input, False, batch_dim)
    points = int(n_steps)
    x, _, weights, path = _straight_path(inputs, baselines, method, points)
    batch = x.shape[0]
    t = _target_index(target, batch, inputs.device)
    _, grads = _layer_gradients(
        model, module, path, _repeat(t, points), layer_input, copy=False, batch_dim=batch_dim
    )
    influence = (weights @ grads.reshape(points, -1)).view(batch, *grads.shape[1:])
    influence = influence.movedim(0, batch_dim)
    return _finite_with_inputs(inputs, influence, "outputs or gradients")
