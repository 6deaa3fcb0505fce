"""Grad-CAM: class activation maps from a layer's activations and gradients.

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual Explanations from Deep
Networks via Gradient-based Localization" (ICCV 2017).

For a layer with output ``A [B, K, ...]`` (channels, then spatial dimensions) and the selected
output ``y`` of each example, the map is ``sum_k alpha_k A_k`` with ``alpha_k`` the gradient
``dy / dA_k`` averaged over the spatial positions. Numbers equal Captum's ``LayerGradCam``
(whose defaults are this function's): no ReLU unless ``relu=True`` (the paper applies one),
channels summed, the layer's output attributed. Targets as in
:mod:`neuronkit.interpretability.attribution`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import check_choice, check_type, eval_mode, grad_enabled

from .attribution import (
    Target,
    _check_inputs,
    _finite_with_inputs,
    _grad_outputs,
    _target_index,
)
from .hooks import LayerValueHook, call_model, check_not_compiled, module_hooks, submodule

__all__ = ["grad_cam"]

_UPSAMPLE = ("nearest", "bilinear", "bicubic")


class _Capture(LayerValueHook):
    """Keeps the tensor Grad-CAM attributes, the layer's output or first input. The model runs
    without gradients up to the layer: the hook turns them on for the rest of the forward and
    keeps the tensor as a leaf (only the gradient with respect to it is needed, so nothing
    before it is recorded). The model gets a copy, so in-place ops after the layer
    (``ReLU(inplace=True)``) leave the kept activation unchanged (Captum keeps it likewise)."""

    value: torch.Tensor | None = None

    def on_value(self, value: torch.Tensor) -> torch.Tensor:
        torch.set_grad_enabled(True)  # the enclosing no_grad() restores the mode on exit
        self.value = value.detach().requires_grad_(True)
        return self.value.clone()


def _layer_gradients(
    model: nn.Module,
    module: nn.Module,
    rows: torch.Tensor,
    target: int | torch.Tensor | None,
    layer_input: bool,
    *,
    min_ndim: int = 1,
    copy: bool = True,
    batch_dim: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``module``'s output (or first input) on ``rows`` ``[N, ...]`` and the gradient of the
    selected outputs with respect to it, both ``[N, *U]`` (detached; the value's axis
    ``batch_dim`` holds the rows and is moved to the front). The model runs in eval mode,
    without a graph up to the layer (:class:`_Capture`), on a copy of ``rows`` unless
    ``copy=False``."""
    n = rows.shape[0]
    capture = _Capture(layer_input)
    with eval_mode(model), module_hooks([capture.hooks(module)]):
        with torch.no_grad():  # until the layer runs (the hook turns gradients on)
            outputs = call_model(model, rows, copy=copy)
        grad_out = _grad_outputs(outputs, target, n)
        acts = capture.value
        if acts is None:
            raise ValueError("layer did not run in the model's forward pass")
        if acts.ndim < min_ndim or acts.ndim <= batch_dim or acts.shape[batch_dim] != n:
            unit = "K, ..." if min_ndim > 1 else "..."
            raise ValueError(
                f"the layer's {'input' if layer_input else 'output'} must be [B, {unit}] with "
                f"the {n} rows on axis {batch_dim} (batch_dim; 1 for time-major [T, B, ...] "
                f"layers), got shape {tuple(acts.shape)}"
            )
        grads = None
        if outputs.requires_grad:
            (grads,) = torch.autograd.grad(outputs, acts, grad_out, allow_unused=True)
    if grads is None:
        raise ValueError("the model's output does not depend on the layer through autograd")
    return acts.detach().movedim(batch_dim, 0), grads.movedim(batch_dim, 0)


@grad_enabled("grad_cam")
def grad_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    relu: bool = False,
    sum_channels: bool = True,
    layer_input: bool = False,
    upsample: str | None = None,
) -> torch.Tensor:
    """Grad-CAM maps of ``layer`` for each example (Captum's ``LayerGradCam``).

    Args:
        model: network mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored), without recording a graph up to ``layer`` (only the
            gradient with respect to the layer is needed: less memory than Captum's).
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer: the layer, by name (as in ``model.named_modules()``) or as a submodule; its
            output (or first input, ``layer_input=True``) is ``[B, K, ...]``, usually the
            last convolutional block. Called several times per forward, its last call counts.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        relu: keep only the positive part (the paper's Grad-CAM; Captum's default is
            ``False``).
        sum_channels: sum the weighted activations over the channels (default, Captum's
            ``attr_dim_summation``); ``False`` returns them per channel.
        layer_input: attribute the layer's input instead of its output.
        upsample: ``None`` (default) returns maps at the layer's resolution; ``"nearest"``,
            ``"bilinear"`` or ``"bicubic"`` interpolates them to the inputs' spatial size
            ``inputs.shape[2:]`` (as Captum's ``LayerAttribution.interpolate``; with 1
            spatial dimension ``"bilinear"`` and ``"bicubic"`` interpolate linearly, with 3
            ``"bilinear"`` trilinearly). With ``relu`` the interpolated maps stay
            non-negative (bicubic's overshoot below 0 is cut; Captum's interpolation keeps it).

    Returns:
        ``[B, 1, ...]`` maps (``[B, K, ...]`` without ``sum_channels``), at the layer's
        spatial size or the inputs' (``upsample``); for a layer with no spatial dimensions
        (``[B, K]``) the gradient itself weighs each unit.
    """
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    _check_inputs(inputs, finite=False)
    for name, flag in (
        ("relu", relu),
        ("sum_channels", sum_channels),
        ("layer_input", layer_input),
    ):
        check_type(name, flag, bool)
    if upsample is not None:
        check_choice("upsample", upsample, _UPSAMPLE)
    module = submodule(model, layer)
    t = _target_index(target, inputs.shape[0], inputs.device)

    acts, grads = _layer_gradients(model, module, inputs, t, layer_input, min_ndim=2)
    weights = grads.mean(dim=tuple(range(2, grads.ndim)), keepdim=True) if grads.ndim > 2 else grads
    maps = weights * acts
    if sum_channels:
        maps = maps.sum(dim=1, keepdim=True)
    if relu:
        maps = F.relu(maps)
    if upsample is not None:
        if maps.ndim == 2 or maps.ndim != inputs.ndim:
            raise ValueError(
                f"upsample needs maps with the inputs' spatial dimensions, got maps "
                f"{tuple(maps.shape)} for inputs {tuple(inputs.shape)}"
            )
        maps = F.interpolate(maps, size=tuple(inputs.shape[2:]), mode=_mode(upsample, maps.ndim))
        if relu:  # bicubic overshoots below 0 next to edges of the positive part
            maps = maps.clamp(min=0)
    return _finite_with_inputs(inputs, maps, "outputs, activations or gradients")


def _mode(upsample: str, ndim: int) -> str:
    """``F.interpolate``'s mode for ``upsample`` on ``[B, C, *spatial]`` maps of ``ndim`` dims."""
    spatial = ndim - 2
    if upsample == "nearest" or spatial == 2:
        return upsample
    if spatial == 1:
        return "linear"
    if spatial == 3 and upsample == "bilinear":
        return "trilinear"
    raise ValueError(
        f"upsample={upsample!r} needs maps with 1 or 2 spatial dimensions (3 for 'bilinear', "
        f"'nearest' any), got {spatial}"
    )
