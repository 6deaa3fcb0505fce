"""Guided backpropagation, deconvolution and Guided Grad-CAM: input gradients with the ReLUs'
backward pass replaced.

Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity: The All Convolutional
Net" (ICLR 2015 workshop) define both rules for a ReLU ``y = max(x, 0)`` receiving the gradient
``g`` from above: guided backpropagation passes ``g`` where ``x > 0`` and ``g > 0`` (the ReLU's
own mask and that of the deconvnet), the deconvnet of Zeiler & Fergus (2014) passes ``g`` where
``g > 0``, whatever ``x`` was. Guided Grad-CAM (Selvaraju et al. 2017) multiplies the guided
backpropagation map by the upsampled Grad-CAM map.

Numbers equal Captum's ``GuidedBackprop``, ``Deconvolution`` and ``GuidedGradCam`` where a
ReLU's input feeds only that ReLU (plain CNNs, torchvision's ResNets, whose ReLUs follow
BatchNorms and sums). Only ``nn.ReLU`` modules are changed, as in Captum: a functional
``F.relu`` / ``torch.relu`` in a ``forward`` keeps its ordinary gradient (a warning says when
the model has no ``nn.ReLU``). Where a ReLU's input is also used elsewhere (a pre-activation
residual block reads ``x`` both through ``relu(x)`` and the skip connection), only the ReLU's
own path is changed, as the rule describes; Captum clamps the input's total gradient there.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_choice, check_type, grad_enabled

from .attribution import Target, _check_inputs, _finite_with_inputs, _gradient, _leaf, _target_index
from .grad_cam import _UPSAMPLE, grad_cam
from .hooks import check_not_compiled, module_hooks

__all__ = ["deconvolution", "guided_backprop", "guided_grad_cam"]


def _positive_gradient(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0)


def _guide(module: nn.Module, args: Any, out: Any) -> None:
    """Forward hook: the ReLU's own backward then masks the positive part of the gradient
    reaching its output by ``x > 0`` (the guided rule, in two native ops)."""
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.register_hook(_positive_gradient)


class _DeconvReLU(torch.autograd.Function):
    """``max(x, 0)`` whose backward passes ``max(g, 0)`` whatever ``x`` was (in place on ``x``
    when ``inplace``, as the module it stands for)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(min=0)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.clamp(min=0), None


def _deconv_forward(relu: nn.ReLU) -> Any:
    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = _DeconvReLU.apply(x, relu.inplace)
        return out

    return forward


@contextmanager
def _modified_relus(model: nn.Module, guided: bool, method: str) -> Iterator[None]:
    """While the block runs, every ``nn.ReLU`` of ``model`` follows the guided rule (a forward
    hook on its output's gradient) or the deconvnet's (an instance ``forward`` computing
    :class:`_DeconvReLU`); both are removed on exit, a caller's own instance ``forward``
    restored."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        warnings.warn(
            f"{method}: model has no nn.ReLU modules, so the result is the plain input "
            "gradient (a functional relu in forward is not changed)",
            stacklevel=6,  # the caller of guided_backprop / deconvolution
        )
    if guided:
        with module_hooks((relu, None, _guide) for relu in relus):
            yield
        return
    own = [vars(relu).get("forward") for relu in relus]
    try:
        for relu in relus:
            relu.forward = _deconv_forward(relu)  # type: ignore[method-assign]
        yield
    finally:
        for relu, forward in zip(relus, own, strict=True):
            if forward is None:
                vars(relu).pop("forward", None)
            else:
                relu.forward = forward  # type: ignore[method-assign]


def _modified_gradient(
    model: nn.Module, inputs: torch.Tensor, target: Target, guided: bool, method: str
) -> torch.Tensor:
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    _check_inputs(inputs, finite=False)
    t = _target_index(target, inputs.shape[0], inputs.device)
    with _modified_relus(model, guided, method):
        grad = _gradient(model, _leaf(inputs), t)
    return _finite_with_inputs(inputs, grad, "outputs or gradients")


@grad_enabled("guided_backprop")
def guided_backprop(model: nn.Module, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Guided backpropagation (Captum's ``GuidedBackprop``): the input gradient with each
    ``nn.ReLU`` passing only positive gradients, and only where its input was positive.

    Args:
        model: network mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored).
        inputs: ``[B, ...]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).

    Returns:
        ``[B, ...]`` attributions.
    """
    return _modified_gradient(model, inputs, target, True, "guided_backprop")


@grad_enabled("deconvolution")
def deconvolution(model: nn.Module, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Deconvnet attribution (Zeiler & Fergus 2014; Captum's ``Deconvolution``): the input
    gradient with each ``nn.ReLU`` passing only positive gradients, wherever its input was.

    Args and returns as :func:`guided_backprop`.
    """
    return _modified_gradient(model, inputs, target, False, "deconvolution")


def guided_grad_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    upsample: str = "nearest",
    layer_input: bool = False,
) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al. 2017; Captum's ``GuidedGradCam``): the guided
    backpropagation map times the Grad-CAM map of ``layer`` (with its ReLU, channels summed)
    interpolated to the inputs' spatial size.

    Args:
        model, inputs, target: as :func:`guided_backprop`; ``inputs`` ``[B, C, ...]`` with
            one to three spatial dimensions.
        layer: the layer, by name or as a submodule (see
            :func:`~neuronkit.interpretability.grad_cam`); usually the last convolutional
            block.
        upsample: ``"nearest"`` (Captum's default), ``"bilinear"`` or ``"bicubic"`` (its
            overshoot below 0 is cut, so the Grad-CAM factor never flips a sign; Captum's
            keeps it).
        layer_input: use the layer's input instead of its output.

    Returns:
        ``[B, C, ...]`` attributions, the inputs' shape.
    """
    check_choice("upsample", upsample, _UPSAMPLE)
    check_type("inputs", inputs, torch.Tensor)
    if not 3 <= inputs.ndim <= 5:
        raise ValueError(
            "inputs must be [B, C, ...] with 1 to 3 spatial dimensions for Guided Grad-CAM, "
            f"got shape {tuple(inputs.shape)}"
        )
    cam = grad_cam(
        model, inputs, layer, target, relu=True, layer_input=layer_input, upsample=upsample
    )
    return guided_backprop(model, inputs, target) * cam
