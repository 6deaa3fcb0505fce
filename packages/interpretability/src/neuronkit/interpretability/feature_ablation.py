"""Feature ablation: attribution by replacing groups of input features with a baseline.

Each feature (by default every input entry; with ``feature_mask``, every group of entries
sharing an index) is replaced by the baseline in turn, and the drop of the selected output,
``f(x) - f(x ablated)``, is credited to every entry of the feature (the perturbation method
that occlusion generalizes, Zeiler & Fergus 2014, over arbitrary groups, e.g. superpixels or
the columns of a tabular record). Numbers equal Captum's ``FeatureAblation`` (same ablated
inputs ``x (1 - m) + baseline m``, feature ``i`` being the entries where the mask is ``i``).

Speed: the ablated copies of many features go through the model in one batch (``batch_size``
rows per forward; Captum's default is one feature per forward), and each entry reads its
feature's drop by one gather instead of one masked add per feature.
"""

from __future__ import annotations

import math

import torch

from neuronkit.common import check_number, integer_dtype

from .attribution import (
    Model,
    Target,
    _check_inputs,
    _check_model,
    _finite_with_inputs,
    _target_index,
)
from .occlusion import _baseline, _output_drops

__all__ = ["feature_ablation"]


def _feature_mask(
    feature_mask: torch.Tensor | None,
    inputs: torch.Tensor,
    name: str = "feature_mask",
    of: str = "inputs",
) -> torch.Tensor:
    """The mask as an int64 tensor broadcastable to ``inputs`` (``[1 or B, *S]``); by default
    one feature per entry of an example, numbered row-major. ``name`` and ``of``: the mask's
    and ``inputs``' names in messages."""
    shape = tuple(inputs.shape[1:])
    if feature_mask is None:
        return torch.arange(math.prod(shape), device=inputs.device).view(1, *shape)
    if not isinstance(feature_mask, torch.Tensor):
        raise TypeError(
            f"{name} must be an integer tensor or None, got {type(feature_mask).__name__}"
        )
    if not integer_dtype(feature_mask):
        raise TypeError(f"{name} must hold integer feature indices, got dtype {feature_mask.dtype}")
    mask = feature_mask.detach().to(inputs.device, torch.long)
    while mask.ndim < inputs.ndim:  # [*S] or trailing dimensions: the same mask for every example
        mask = mask.unsqueeze(0)
    try:
        fits = torch.broadcast_shapes(mask.shape, inputs.shape) == inputs.shape
    except RuntimeError:
        fits = False
    if not fits or mask.numel() == 0:
        raise ValueError(
            f"{name} must broadcast to {of} {tuple(inputs.shape)} (e.g. [*S], [1, *S] "
            f"or [B, *S]), got shape {tuple(feature_mask.shape)}"
        )
    low = int(mask.min())
    if low < 0:
        raise ValueError(f"{name} must hold feature indices >= 0, got {low}")
    return mask


def _prepared(
    model: Model,
    inputs: torch.Tensor,
    target: Target,
    feature_mask: torch.Tensor | None,
    baselines: float | torch.Tensor,
    batch_size: int,
) -> tuple[torch.Tensor, float | torch.Tensor, int | torch.Tensor | None, int]:
    """The checked mask, baseline and target, and the number of features."""
    _check_model(model)
    _check_inputs(inputs, finite=False)
    if inputs.ndim < 2:
        raise ValueError("inputs must be [B, *S] with at least one non-batch dimension, got [B]")
    mask = _feature_mask(feature_mask, inputs)
    base = _baseline(baselines, inputs)
    check_number("batch_size", batch_size, ge=1, integer=True)
    t = _target_index(target, inputs.shape[0], inputs.device)
    return mask, base, t, int(mask.max()) + 1


def _spread(credits: torch.Tensor, mask: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Each entry of ``inputs`` takes its feature's credit (``credits [n_features, B]``)."""
    x = inputs.detach()
    index = mask.expand(x.shape).reshape(x.shape[0], -1)
    attributions = credits.T.gather(1, index).view_as(x)
    return _finite_with_inputs(inputs, attributions, "outputs")


def feature_ablation(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    feature_mask: torch.Tensor | None = None,
    baselines: float | torch.Tensor = 0.0,
    batch_size: int = 256,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Feature ablation attributions (Captum's ``FeatureAblation``).

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode
            (its flags are restored), without gradients.
        inputs: ``[B, *S]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        feature_mask: integer feature indices (``0 .. n - 1``) broadcastable to ``inputs``,
            e.g. ``[*S]`` or ``[1, *S]`` for one grouping of every example, ``[B, *S]`` for one
            per example, ``[1, 1, H, W]`` for superpixels shared by the channels of images.
            Default: every entry of an example is its own feature.
        baselines: the value ablated entries take: a number, or a tensor broadcastable to
            ``inputs``. Default 0.
        batch_size: ablated inputs per forward pass (``max(1, batch_size // B)`` features at a
            time). Memory grows with it.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).

    Returns:
        ``[B, *S]`` attributions in ``inputs``' dtype: each entry holds the output drop of its
        feature (Captum returns float32).
    """
    mask, base, t, n = _prepared(model, inputs, target, feature_mask, baselines, batch_size)
    x = inputs.detach()
    ids_shape = (-1, *([1] * mask.ndim))

    def ablated(start: int, stop: int) -> torch.Tensor:  # [c, 1 or B, *S]
        ids = torch.arange(start, stop, device=x.device).view(ids_shape)
        return (mask == ids).to(x.dtype)

    drops = _output_drops(
        model, x, base, t, n, batch_size, ablated, show_progress, "feature ablation"
    )  # [n_features, B]
    return _spread(drops, mask, inputs)
