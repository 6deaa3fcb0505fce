"""Exemplars of neurons: top-activating inputs and the regions where each neuron fires.

MILAN (Hernandez et al., "Natural Language Descriptions of Deep Visual Features", ICLR 2022)
describes a neuron by its exemplar set ``E``: the ``k`` dataset images with the largest
(spatially max-pooled) activation of the unit, each with a mask of the pixels where the unit's
activation map, upsampled to the image size, exceeds the unit's 0.99 activation quantile over
the whole dataset (NetDissect's procedure, Bau et al. 2017, as in the authors'
``exemplars/compute.py``: quantiles of the layer-resolution activations, bilinear upsampling).

Activations are read with :func:`neuronkit.interpretability.hooks.layer_activations`, so the
model's forward hooks are always removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import check_finite, check_number, check_type, integer_dtype

from ..hooks import layer_activations, unit_axis

__all__ = ["Exemplars", "activation_quantiles", "compute_exemplars", "upsampled_masks"]


@dataclass(frozen=True)
class Exemplars:
    """Exemplar sets of ``U`` units (``k`` images each), from :func:`compute_exemplars`.

    Attributes:
        units: ``[U]`` unit (channel) index in the layer, along its ``dim``.
        indices: ``[U, k]`` dataset index of each exemplar, by decreasing activation.
        activations: ``[U, k]`` the unit's max-pooled activation on each exemplar (the
            layer's dtype; float32 for half precision).
        images: ``[U, k, C, H, W]`` the exemplar images.
        masks: ``[U, k, 1, H, W]`` float 0/1 masks, 1 where the upsampled activation exceeds
            the unit's threshold.
        thresholds: ``[U]`` the activation quantile used for the masks.
    """

    units: torch.Tensor
    indices: torch.Tensor
    activations: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    thresholds: torch.Tensor

    def __len__(self) -> int:
        return int(self.units.shape[0])

    @property
    def k(self) -> int:
        """Exemplars per unit."""
        return int(self.indices.shape[1])

    def subset(self, rows: Sequence[int] | torch.Tensor) -> Exemplars:
        """The exemplar sets of the given rows (positions in :attr:`units`, not unit ids)."""
        idx = _indices("rows", rows)
        if idx.ndim != 1:
            raise ValueError(f"rows must be 1D, got shape {tuple(idx.shape)}")
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"rows must index 0..{len(self) - 1}, got {idx.tolist()}")
        return Exemplars(
            self.units[idx],
            self.indices[idx],
            self.activations[idx],
            self.images[idx],
            self.masks[idx],
            self.thresholds[idx],
        )


def _indices(name: str, values: Any, what: str = "indices") -> torch.Tensor:
    """``values`` as a long tensor of indices; floats (truncated otherwise), bools (a mask
    taken for the indices 0 / 1) and non-numbers raise ``TypeError`` naming ``name``."""
    try:
        idx = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):  # not numbers
        raise TypeError(f"{name} must hold integer {what}, got {values!r:.80}") from None
    if idx.numel() and not integer_dtype(idx):
        raise TypeError(
            f"{name} must hold integer {what}, got dtype {idx.dtype} (for a boolean mask pass "
            "mask.nonzero().flatten())"
        )
    return idx.long()


def activation_quantiles(activations: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """Per-unit ``quantile`` of all activations of each unit over the dataset.

    Args:
        activations: ``[N, U, *spatial]`` (every spatial position of every input counts).
        quantile: in ``(0, 1)``.

    Returns:
        ``[U]`` thresholds (linear interpolation, as ``numpy.quantile``), on the device of
        ``activations``.
    """
    check_type("activations", activations, torch.Tensor)
    if activations.ndim < 2 or activations.shape[0] == 0:
        raise ValueError(
            f"activations must be [N, U, *spatial] with N >= 1, got {tuple(activations.shape)}"
        )
    check_number("quantile", quantile, gt=0.0, lt=1.0)
    if activations.dtype == torch.bool or activations.is_complex():
        raise TypeError(f"activations must be a real-valued tensor, got dtype {activations.dtype}")
    check_finite("activations", activations)
    per_unit = activations.detach().transpose(0, 1).reshape(activations.shape[1], -1)
    values = np.quantile(per_unit.double().cpu().numpy(), quantile, axis=1)
    return torch.as_tensor(values, dtype=activations.dtype, device=activations.device)


def upsampled_masks(
    maps: torch.Tensor, thresholds: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Binary masks where bilinearly upsampled activation maps exceed per-map thresholds.

    Args:
        maps: ``[M, h, w]`` activation maps.
        thresholds: ``[M]`` one threshold per map.
        size: ``(H, W)`` output size.

    Returns:
        ``[M, 1, H, W]`` float32 tensor of 0/1. The maps are upsampled and compared in their
        own dtype (half precision in float32).
    """
    check_type("maps", maps, torch.Tensor)
    check_type("thresholds", thresholds, torch.Tensor)
    if maps.ndim != 3:
        raise ValueError(f"maps must be [M, h, w], got shape {tuple(maps.shape)}")
    if thresholds.shape != (maps.shape[0],):
        raise ValueError(
            f"thresholds must have shape ({maps.shape[0]},), got {tuple(thresholds.shape)}"
        )
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"size must be a pair (H, W), got {size!r:.80}")
    for s in size:
        check_number("size", s, ge=1, integer=True)
    for name, t in (("maps", maps), ("thresholds", thresholds)):
        if t.is_complex():
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {t.dtype}")
    check_finite("maps", maps)
    check_finite("thresholds", thresholds)
    dtype = torch.promote_types(maps.dtype, torch.float32)
    up = F.interpolate(  # detached: a 0/1 mask carries no gradient
        maps.detach()[:, None].to(dtype), size=tuple(size), mode="bilinear", align_corners=False
    )
    # compared into ``up`` itself: a float out= skips the bool tensor and its cast
    return torch.gt(up, thresholds.to(dtype)[:, None, None, None], out=up).float()


def compute_exemplars(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    *,
    units: Sequence[int] | torch.Tensor | None = None,
    k: int = 15,
    quantile: float = 0.99,
    batch_size: int | None = 256,
    dim: int = 1,
) -> Exemplars:
    """Top-``k`` activating images of each unit of ``layer`` and their activation masks.

    A unit's score on an image is its activation map's maximum (NetDissect's pooling); its
    mask threshold is the ``quantile`` of all of its activations over ``inputs`` (every
    spatial position of every image), and an exemplar's mask is where the activation map,
    bilinearly upsampled to the image size, exceeds that threshold. Units of a layer without
    spatial dimensions (``[N, U]``) get all-ones masks.

    Args:
        model: the network (its train/eval mode is left as is).
        inputs: ``[N, C, H, W]`` images (the dataset to search).
        layer: name of the submodule whose output channels are the units: ``[N, U]`` or
            ``[N, U, h, w]`` with units on ``dim`` (e.g. ``[N, h, w, U]`` with ``dim=-1``).
        units: channel indices to describe (default: all).
        k: exemplars per unit (the paper: 15), ``<= N``.
        quantile: mask threshold quantile in ``(0, 1)`` (the paper: 0.99).
        batch_size: images per forward pass (``None``: all at once).
        dim: the channel axis of the layer's output (default 1; ``-1`` for channels-last).

    Returns:
        :class:`Exemplars` with ``images [U, k, C, H, W]`` and ``masks [U, k, 1, H, W]``
        (masks in the activations' dtype: the layer's, half precision upcast to float32).
    """
    check_type("inputs", inputs, torch.Tensor)
    if inputs.ndim != 4 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be [N, C, H, W] with N >= 1, got {tuple(inputs.shape)}")
    check_finite("inputs", inputs)
    check_number("k", k, ge=1, le=inputs.shape[0], integer=True)
    check_number("quantile", quantile, gt=0.0, lt=1.0)
    check_type("layer", layer, str)
    unit_axis(dim)
    acts = layer_activations(model, inputs, layer, batch_size=batch_size, flatten=False)[layer]
    shape = tuple(acts.shape)
    acts = acts.movedim(unit_axis(dim, acts.ndim, f"layer {layer!r}'s output {shape}"), 1)
    if acts.ndim not in (2, 4) or acts.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"layer {layer!r} must output [N, U] or [N, U, h, w] (units on dim {dim}), got {shape}"
        )
    n_units = acts.shape[1]
    if units is None:
        unit_idx = torch.arange(n_units)
    else:
        unit_idx = _indices("units", units, "channel indices")
        if unit_idx.ndim != 1 or len(unit_idx) == 0:
            raise ValueError(f"units must be a non-empty 1D list of indices, got {units!r:.80}")
        if unit_idx.min() < 0 or unit_idx.max() >= n_units:
            raise ValueError(
                f"units must index the {n_units} channels of {layer!r} (along dim {dim}), "
                f"got {unit_idx.tolist()}"
            )
    # the layer's own precision (float64 activations rank and overflow as float64); half
    # precision is upcast to float32
    acts = acts[:, unit_idx]
    acts = acts.to(torch.promote_types(acts.dtype, torch.float32))
    check_finite(f"activations of {layer!r}", acts)
    pooled = acts.flatten(2).amax(2) if acts.ndim == 4 else acts
    # a stable sort: tied images (a constant unit) come in index order, where topk's order
    # is the implementation's
    top_idx = pooled.argsort(dim=0, descending=True, stable=True)[:k]  # [k, U]
    top_act = pooled.gather(0, top_idx)
    top_act, top_idx = top_act.T.contiguous(), top_idx.T.contiguous()
    thresholds = activation_quantiles(acts, quantile)
    images = inputs[top_idx].detach().clone()  # [U, k, C, H, W]
    size = (int(inputs.shape[2]), int(inputs.shape[3]))
    if acts.ndim == 4:
        u_rep = torch.arange(len(unit_idx), device=top_idx.device)[:, None].expand(-1, k)
        maps = acts[top_idx, u_rep]  # [U, k, h, w]
        levels = thresholds[:, None].expand(-1, k).reshape(-1)
        masks = upsampled_masks(maps.reshape(-1, *maps.shape[2:]), levels, size)
        masks = masks.reshape(len(unit_idx), k, 1, *size).to(acts.dtype)
    else:
        masks = torch.ones(len(unit_idx), k, 1, *size, dtype=acts.dtype, device=acts.device)
    return Exemplars(unit_idx.clone(), top_idx, top_act, images, masks, thresholds)
