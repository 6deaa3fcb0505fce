"""Lesioning a layer's units: feature ablation and permutation at a hidden layer.

The perturbation methods of :mod:`.feature_ablation` and :mod:`.feature_permutation` applied
to a layer's output (or input) instead of the model's input: each unit (or each group of units
sharing an index of ``layer_mask``, e.g. a channel) is set to a baseline value (a lesion; 0 by
default, silencing it) or takes another example's values, the rest of the model runs on the
changed activations, and the drop of the selected output, ``f(x) - f(x lesioned)``, is
credited to the unit. Captum's ``LayerFeatureAblation`` and ``LayerFeaturePermutation``; the
numbers are equal (tested).

The layer's activations are recorded once; each forward pass then runs the model on
``batch_size`` rows (``batch_size // B`` lesions of every example) with the layer returning the
lesioned activations instead of computing its output (Captum computes and then replaces it;
the layers before it run again, as in Captum: a model may read their outputs elsewhere, e.g.
through a residual connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_finite, eval_mode

from .attribution import Target, _check_inputs
from .feature_ablation import _feature_mask, feature_ablation
from .feature_permutation import feature_permutation
from .hooks import (
    LayerValueHook,
    call_model,
    checked_layer,
    module_hooks,
)
from .occlusion import _baseline

__all__ = ["layer_feature_ablation", "layer_feature_permutation"]


class _Swap(LayerValueHook):
    """Records the layer's output (or first input), or replaces it with ``replacement``."""

    value: torch.Tensor | None = None
    replacement: torch.Tensor | None = None

    def on_value(self, value: torch.Tensor) -> torch.Tensor:
        if self.replacement is None:
            if self.value is not None:
                raise ValueError(
                    "layer runs more than once in the model's forward pass: lesion a layer "
                    "called once"
                )
            self.value = value.detach().clone()  # in-place ops after the layer
            return value
        if self.replacement.shape != value.shape:
            raise ValueError(
                f"the layer's value has shape {tuple(value.shape)} for the repeated inputs, "
                f"{tuple(self.replacement.shape)} expected"
            )
        return self.replacement


class _Rest(nn.Module):
    """``[k * B, *U]`` activations of the layer -> the model's outputs: the model runs on its
    ``B`` inputs repeated ``k`` times (copy-major), the layer's value replaced. A replaced
    output skips the layer's own work (its ``forward`` returns the activations)."""

    def __init__(
        self, model: nn.Module, swap: _Swap, module: nn.Module, x: torch.Tensor, batch_dim: int
    ):
        super().__init__()
        self.model = model
        self._swap, self._module, self._x, self._batch_dim = swap, module, x, batch_dim

    def forward(self, acts: torch.Tensor) -> Any:
        x = self._x
        k = acts.shape[0] // x.shape[0]
        rows = x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])
        acts = acts.movedim(0, self._batch_dim)  # the layer's own layout
        if self._swap.layer_input:
            self._swap.replacement = acts
            try:
                with module_hooks([self._swap.hooks(self._module)]):
                    return call_model(self.model, rows)
            finally:
                self._swap.replacement = None
        own = vars(self._module).get("forward")  # an instance forward of the module's, if any
        self._module.forward = lambda *args, **kwargs: acts
        try:
            return call_model(self.model, rows)
        finally:
            if own is None:
                del self._module.forward
            else:
                self._module.forward = own


def _rest_of_model(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    layer_input: bool,
    batch_dim: int,
) -> tuple[_Rest, torch.Tensor]:
    """The model from the layer on (:class:`_Rest`) and the layer's value, its batch axis
    ``batch_dim`` moved to the front: ``[B, *U]``."""
    module = checked_layer(model, layer, layer_input, batch_dim)
    _check_inputs(inputs, finite=False)
    x = inputs.detach()
    swap = _Swap(layer_input)
    with (
        eval_mode(model),
        torch.no_grad(),
        module_hooks([swap.hooks(module)]),
    ):
        call_model(model, x)
    acts = swap.value
    if acts is None:
        raise ValueError("layer did not run in the model's forward pass")
    if acts.ndim < 2 or acts.ndim <= batch_dim or acts.shape[batch_dim] != x.shape[0]:
        raise ValueError(
            f"the layer's {'input' if layer_input else 'output'} must hold the {x.shape[0]} "
            f"examples on axis {batch_dim} (batch_dim; 1 for time-major [T, B, ...] layers such "
            f"as spiking neurons), got shape {tuple(acts.shape)}"
        )
    return _Rest(model, swap, module, x, batch_dim), acts.movedim(batch_dim, 0)


def _batch_first(value: Any, batch_dim: int, ndim: int) -> Any:
    """A mask or baseline given in the layer's layout, its batch axis moved to the front
    (one with fewer dimensions broadcasts over the leading ones and stays)."""
    if isinstance(value, torch.Tensor) and value.ndim == ndim:
        return value.movedim(batch_dim, 0)
    return value


_BATCH_FIRST = "the layer's value (batch axis first)"


@contextmanager
def _lesion_errors(inputs: torch.Tensor, acts: torch.Tensor, mask: Any) -> Iterator[None]:
    """Around the input method run on the rest of the model: ``layer_mask`` checked first under
    its own name, and the method's error at non-finite activations reported as the inputs' or
    the layer's."""
    _feature_mask(mask, acts, "layer_mask", _BATCH_FIRST)
    try:
        yield
    except ValueError:
        if not bool(torch.isfinite(acts).all()):
            check_finite("inputs", inputs)
            raise ValueError(
                "the layer's value holds NaN or infinity for these inputs (check the model's "
                "parameters), so the lesions' output drops are not finite"
            ) from None
        raise


def layer_feature_ablation(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    layer_mask: torch.Tensor | None = None,
    layer_baselines: float | torch.Tensor = 0.0,
    layer_input: bool = False,
    batch_dim: int = 0,
    batch_size: int = 256,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """The output drop when each unit of ``layer`` is lesioned (Captum's
    ``LayerFeatureAblation``).

    Args:
        model: ``nn.Module`` mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``); runs in eval mode
            (its flags are restored), without gradients.
        inputs: ``[B, ...]`` floating tensor (not modified).
        layer: the layer (name in ``model.named_modules()`` or submodule) whose output (or
            first input, ``layer_input=True``) ``[B, *U]`` is lesioned; called once per forward.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        layer_mask: integer unit groups broadcastable to ``[B, *U]`` (e.g. ``[1, K, 1, 1]``
            with ``arange(K)`` for whole channels), as ``feature_mask`` of
            :func:`~neuronkit.interpretability.feature_ablation`; default every unit alone.
        layer_baselines: the lesioned units' value: a number or a tensor broadcastable to
            ``[B, *U]`` (e.g. the units' mean activation). Default 0.
        layer_input: lesion the layer's input instead of its output.
        batch_dim: the axis of the layer's value that indexes the examples: 1 for time-major
            ``[T, B, ...]`` layers (spiking neurons, neuronkit-snn's ``Seq*`` layers), where a
            mask of shape ``[U]`` lesions a unit at every time step.
        batch_size: lesioned rows per forward pass.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).

    Returns:
        the layer's shape (``[B, *U]``, or ``[T, B, *U]`` with ``batch_dim=1``): each unit's
        output drop.
    """
    rest, acts = _rest_of_model(model, inputs, layer, layer_input, batch_dim)
    mask = _batch_first(layer_mask, batch_dim, acts.ndim)
    baselines = _batch_first(layer_baselines, batch_dim, acts.ndim)
    _baseline(baselines, acts, "layer_baselines", _BATCH_FIRST)
    with _lesion_errors(inputs, acts, mask):
        drops = feature_ablation(
            rest,
            acts,
            target,
            feature_mask=mask,
            baselines=baselines,
            batch_size=batch_size,
            show_progress=show_progress,
        )
    return drops.movedim(0, batch_dim)


def layer_feature_permutation(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | nn.Module,
    target: Target = None,
    *,
    layer_mask: torch.Tensor | None = None,
    layer_input: bool = False,
    batch_dim: int = 0,
    batch_size: int = 256,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """The output drop when each unit of ``layer`` takes another example's values (Captum's
    ``LayerFeaturePermutation``; one random permutation of the ``B >= 2`` examples per unit or
    group, never the identity).

    Args:
        model, inputs, layer, target, layer_mask, layer_input, batch_dim, batch_size,
            show_progress: as :func:`layer_feature_ablation`.
        seed, generator: as :func:`~neuronkit.interpretability.feature_permutation` (both
            ``None``: torch's global generator, Captum's draws).

    Returns:
        ``[B, *U]``: each unit's output drop.
    """
    rest, acts = _rest_of_model(model, inputs, layer, layer_input, batch_dim)
    mask = _batch_first(layer_mask, batch_dim, acts.ndim)
    with _lesion_errors(inputs, acts, mask):
        drops = feature_permutation(
            rest,
            acts,
            target,
            feature_mask=mask,
            batch_size=batch_size,
            seed=seed,
            generator=generator,
            show_progress=show_progress,
        )
    return drops.movedim(0, batch_dim)
