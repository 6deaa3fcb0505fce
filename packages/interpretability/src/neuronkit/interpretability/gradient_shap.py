"""GradientSHAP: expected gradients against a distribution of baselines.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions" (NeurIPS 2017; SHAP's
``GradientExplainer``) approximate SHAP values by integrated gradients averaged over baselines
drawn from the data: for each of ``n_samples`` draws per example, a baseline ``b`` from the
given sample, a point ``a ~ U(0, 1)`` on the line to the input and (optionally) Gaussian noise
``e`` on the input, the attribution is ``(x + e - b) * grad f(b + a (x + e - b))``; their mean
is the result. In expectation it equals the mean over baselines of integrated gradients, so
the attributions of an example sum to ``f(x) - E[f(b)]`` up to sampling error.

Settings and the formula follow Captum's ``GradientShap`` (``n_samples=5``, ``stdevs=0.0``);
the draws come from a torch generator (``seed`` / ``generator``) where Captum draws the points
and baselines from numpy's global generator, so the numbers agree in distribution, not draw by
draw. All ``B * n_samples`` rows run as one batched forward and backward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neuronkit.common import check_number, eval_mode, grad_enabled

from .attribution import (
    Model,
    Target,
    _baseline_sample,
    _check_inputs,
    _check_model,
    _finite_with_inputs,
    _generator,
    _gradient,
    _target_index,
)
from .grad_cam import _layer_gradients
from .hooks import checked_layer, layer_value

__all__ = ["gradient_shap", "layer_gradient_shap"]


@grad_enabled("gradient_shap")
def gradient_shap(
    model: Model,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 5,
    stdev: float = 0.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """GradientSHAP (Captum's ``GradientShap``): gradients at random points between each input
    and baselines drawn from ``baselines``, times the difference, averaged.

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode.
        inputs: ``[B, ...]`` floating tensor.
        baselines: ``[K, ...]`` reference examples (a sample of the data), drawn with
            replacement.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        n_samples: draws per example (Captum's default 5).
        stdev: standard deviation of Gaussian noise added to the input before each draw
            (Captum's default 0.0).
        seed, generator: the draws' random source (a ``torch.Generator`` or a seed in
            ``[0, 2**64)``); both ``None`` uses torch's global generator.

    Returns:
        ``[B, ...]`` attributions.
    """
    _check_model(model)
    x, refs, picks, points, rows_t = _draws(
        inputs, baselines, target, n_samples, stdev, seed, generator
    )
    base = refs[picks]
    grads = _gradient(model, points.requires_grad_(True), rows_t, own=True)
    attributions = ((x - base) * grads).view(*inputs.shape[:1], -1, *inputs.shape[1:]).mean(1)
    return _finite_with_inputs(inputs, attributions, "outputs or gradients")


def _draws(
    inputs: Any,
    baselines: Any,
    target: Target,
    n_samples: Any,
    stdev: Any,
    seed: Any,
    generator: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int | torch.Tensor | None]:
    """The checked arguments' ``n_samples`` draws per example, example-major as Captum's
    rows: the (noisy) inputs ``[B * n_samples, ...]``, the baselines ``[K, ...]`` and the
    drawn one's index for each row ``[B * n_samples]``, the points between them and the
    rows' targets."""
    _check_inputs(inputs, finite=False)
    refs = _baseline_sample(baselines, inputs)
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("stdev", stdev, ge=0.0)
    gen = _generator(seed, generator, inputs.device)
    n = int(n_samples)
    t = _target_index(target, inputs.shape[0], inputs.device)
    x = inputs.detach().repeat_interleave(n, dim=0)
    if stdev > 0:
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        x = x + noise * stdev
    picks = torch.randint(len(refs), (len(x),), generator=gen, device=x.device)
    base = refs[picks]
    alphas = torch.rand(len(x), generator=gen, dtype=x.dtype, device=x.device)
    alphas = alphas.view(-1, *([1] * (x.ndim - 1)))
    points = alphas * x + (1 - alphas) * base
    return x, refs, picks, points, t.repeat_interleave(n) if isinstance(t, torch.Tensor) else t


@grad_enabled("layer_gradient_shap")
def layer_gradient_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    baselines: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 5,
    stdev: float = 0.0,
    layer_input: bool = False,
    batch_dim: int = 0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """GradientSHAP of a layer's units (Captum's ``LayerGradientShap``): the draws of
    :func:`gradient_shap`; each draw credits the layer's value on the (noisy) input minus its
    value on the drawn baseline, times the gradient with respect to the layer at the random
    point between them; the mean over the draws.

    Args:
        model: an ``nn.Module`` mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval
            mode, without a graph up to the layer.
        inputs, baselines, target, n_samples, stdev, seed, generator: as :func:`gradient_shap`.
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, ...]`` is attributed.
        layer_input: attribute the layer's input instead of its output.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons); the result keeps the layer's layout.

    Returns:
        ``[B, ...]`` shaped like the layer's output (input).
    """
    module = checked_layer(model, layer, layer_input, batch_dim)
    x, refs, picks, points, rows_t = _draws(
        inputs, baselines, target, n_samples, stdev, seed, generator
    )
    _, grads = _layer_gradients(model, module, points, rows_t, layer_input, batch_dim=batch_dim)
    # the layer's values at the ends of the paths, each distinct input and baseline run once
    n = len(x) // inputs.shape[0]
    ends = x if stdev > 0 else inputs.detach()
    drawn, which = picks.unique(return_inverse=True)
    with eval_mode(model), torch.no_grad():
        values = layer_value(model, module, torch.cat((ends, refs[drawn])), layer_input)
    on_ends, on_refs = values.movedim(batch_dim, 0).split([len(ends), len(drawn)])
    if len(ends) < len(x):
        on_ends = on_ends.repeat_interleave(n, dim=0)
    per_draw = (on_ends - on_refs[which]) * grads
    mean = per_draw.view(inputs.shape[0], -1, *per_draw.shape[1:]).mean(1)
    return _finite_with_inputs(inputs, mean.movedim(0, batch_dim), "outputs or gradients")
