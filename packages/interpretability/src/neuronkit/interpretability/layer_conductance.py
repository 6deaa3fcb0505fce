"""Layer conductance: how much of an input's integrated gradients flows through each unit.

Dhamdhere, Sundararajan & Yan, "How Important Is a Neuron?" (ICLR 2019). Along the straight
path from the baseline ``x'`` to the input ``x``, the conductance of a unit ``y_j`` of a layer
is ``int (dF/dy_j) (dy_j/dalpha) dalpha``: the gradient of the output with respect to the unit,
times the unit's own change. With the path sampled at ``alpha_0 < ... < alpha_n`` it is
``sum_k dF/dy_j(alpha_k) (y_j(alpha_{k+1}) - y_j(alpha_k))``, Captum's ``LayerConductance``
(``n_steps + 1`` points of its integration rule). The conductances of a layer sum to about
``f(x) - f(x')`` when the path runs from ``alpha = 0`` to ``1`` (the Riemann trapezoid rule);
the default Gauss-Legendre points start and end inside it, as Captum's.

Speed: all points of all examples go through one forward and backward pass, and the layers
before the attributed one run without a graph (only the gradient with respect to the layer's
output is needed; Captum records them).
"""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.common import grad_enabled

from .attribution import (
    Target,
    _check_finite_result,
    _finite_with_inputs,
    _forward_selected,
    _repeat,
    _target_index,
)
from .grad_cam import _layer_gradients
from .layer_integrated_gradients import _layer_method, _straight_path

__all__ = ["layer_conductance"]


@grad_enabled("layer_conductance")
def layer_conductance(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    layer_input: bool = False,
    return_convergence_delta: bool = False,
    batch_dim: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Conductance of each unit of ``layer`` (Captum's ``LayerConductance``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, ...]`` is attributed; called once per
            forward (otherwise its last call counts, as for Grad-CAM).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        baselines: the reference input ``x'``: ``None`` (zeros, Captum's default), a number,
            or a tensor shaped like ``inputs`` or like one example.
        n_steps: intervals of the path (``n_steps + 1`` points, Captum's default 50).
        method: the points' rule (as :func:`~neuronkit.interpretability.attribution.\
integration_nodes`, with ``n_steps + 1`` points).
        layer_input: attribute the layer's input instead of its output.
        return_convergence_delta: also return ``sum attr - (f(x) - f(x'))`` per example.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        ``[B, ...]`` conductances shaped like the layer's output (input), and ``[B]`` deltas
        when asked.
    """
    module = _layer_method(
        model, layer, n_steps, method, layer_input, return_convergence_delta, batch_dim
    )
    points = int(n_steps) + 1
    x, base, _, path = _straight_path(inputs, baselines, method, points)
    batch = x.shape[0]
    t = _target_index(target, batch, inputs.device)
    acts, grads = _layer_gradients(
        model, module, path, _repeat(t, points), layer_input, copy=False, batch_dim=batch_dim
    )
    values = acts.reshape(points, batch, *acts.shape[1:])
    steps = values[1:] - values[:-1]  # each unit's change between consecutive points
    per_example = (grads.reshape(values.shape)[:-1] * steps).sum(0)  # [B, *U]
    conductance = per_example.movedim(0, batch_dim)  # the layer's layout
    conductance = _finite_with_inputs(inputs, conductance, "outputs or gradients")
    if not return_convergence_delta:
        return conductance
    difference = _forward_selected(model, x, t) - _forward_selected(model, base.contiguous(), t)
    delta = per_example.reshape(batch, -1).sum(1) - difference
    return conductance, _check_finite_result(delta, "outputs")
