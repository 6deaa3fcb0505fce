"""Iterative SynFlow: one-shot, data-free pruning at initialization by synaptic saliency.

Tanaka, Kunin, Yamins & Ganguli (2020), "Pruning neural networks without any data by
iteratively conserving synaptic flow", as used by the server of HideNseek (Vallapuram et al.,
2022, "HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign Supermask") to pick
the subnetwork before any client sees it.

The synaptic saliency of a weight is ``|theta * dR/dtheta|`` where ``R = 1^T (prod_l |W_l|) 1``
is the output of the network with every parameter replaced by its absolute value, fed an input
of ones (computed in float64 so deep products do not underflow). Scores are recomputed after
each of ``iterations`` pruning steps, with the kept density following the exponential schedule
``density ** (k / iterations)``; the ranking is global over all prunable weights. Masks use the
lottery convention of :mod:`neuronkit.pruning.lottery.masks`: ``{parameter name: bool tensor}``
with ``True`` = kept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuronkit.common import check_choice, check_number, check_type, grad_enabled
from neuronkit.pruning.lottery import DEFAULT_PRUNABLE, prunable_weights
from neuronkit.pruning.tracing import first_tensor

__all__ = ["synflow_prune", "synflow_scores"]

Masks = dict[str, torch.Tensor]


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"input_shape must be a sequence of ints (one sample, no batch axis, e.g. "
            f"(1, 8, 8)), got {input_shape!r}"
        )
    for d in input_shape:
        check_number("input_shape[i]", d, ge=1, integer=True)
    if not input_shape:
        raise ValueError("input_shape must name at least one dimension, got ()")
    return tuple(int(d) for d in input_shape)


def _linearized(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():  # every float entry of the state, buffers (BN statistics) too, as
        for t in net.state_dict().values():  # the authors' linearize does
            if t.is_floating_point():
                t.abs_()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


@grad_enabled("synflow_scores")
def synflow_scores(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    masks: Masks | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Synaptic saliency ``|theta * dR/dtheta|`` of the prunable weights (float64).

    Args:
        model: the network at initialization; not modified (a float64 copy is used).
        input_shape: shape of one input sample without the batch axis, e.g. ``(1, 8, 8)``.
        masks: current masks ``{name: bool tensor}``; masked weights count as zero (their own
            score is 0).
        names: weights to score; default: every Conv/Linear ``weight`` of ``model``.

    Returns:
        ``{name: float64 tensor shaped like the weight}``, all ``>= 0``.

    Raises:
        ValueError: invalid arguments, or scores that are not finite (NaN or inf in the
            model's parameters or buffers).
    """
    check_type("model", model, nn.Module)
    shape = _check_input_shape(input_shape)
    names = list(names) if names is not None else prunable_weights(model)
    net = _linearized(model)
    params = dict(net.named_parameters())
    for n in names:
        if n not in params:
            raise ValueError(f"names must be parameters of the model, got {n!r}")
    if masks is not None:
        check_type("masks", masks, dict)
        with torch.no_grad():
            for n, m in masks.items():
                if n not in params or m.shape != params[n].shape or m.dtype != torch.bool:
                    raise ValueError(
                        f"masks[{n!r}] must be a bool tensor shaped like the parameter "
                        f"{tuple(params[n].shape) if n in params else '(not a parameter)'}, "
                        f"got {getattr(m, 'dtype', type(m))} {tuple(getattr(m, 'shape', ()))}"
                    )
                params[n].masked_fill_(~m, 0.0)  # zero, even where the weight is NaN or inf
    device = next(iter(params.values())).device
    out = net(torch.ones((1, *shape), dtype=torch.float64, device=device))
    first = first_tensor(out)  # logits of a tuple, dict or Hugging Face ModelOutput
    if first is None:
        raise TypeError(
            "model: SynFlow needs a tensor output (or a tuple, dict or ModelOutput whose first "
            f"entry is one), got {type(out).__name__}"
        )
    first.sum().backward()
    scores = {}
    for n in names:
        p = params[n]
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        scores[n] = (p.detach() * g).abs()
    bad = [n for n in names if not bool(scores[n].isfinite().all())]
    if bad:
        raise ValueError(
            f"synflow scores of {bad} must be finite to rank them, got NaN or inf (NaN or inf "
            "in the model's parameters or buffers?)"
        )
    return scores


def _first_k_descending(flat: torch.Tensor, keep: int) -> torch.Tensor:
    """Bool mask ``[N]`` of the first ``keep`` entries of a stable descending sort of ``flat``.

    The same set as ``torch.sort(flat, descending=True, stable=True).indices[:keep]`` (every
    entry above the ``keep``-th largest value, then the entries equal to it in index order)
    found by a linear-time partition instead of a full sort; non-finite scores use the sort.
    """
    total = flat.numel()
    a = flat.numpy()
    if not np.isfinite(a).all():
        kept = torch.zeros(total, dtype=torch.bool)
        kept[torch.sort(flat, descending=True, stable=True).indices[:keep]] = True
        return kept
    threshold = np.partition(a, total - keep)[total - keep]  # the keep-th largest value
    above = a > threshold
    ties = np.flatnonzero(a == threshold)[: keep - int(above.sum())]
    above[ties] = True
    return torch.from_numpy(above)


@grad_enabled("synflow_prune")
def synflow_prune(
    model: nn.Module,
    density: float,
    input_shape: Sequence[int],
    *,
    iterations: int = 100,
    schedule: str = "exponential",
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_PRUNABLE,
    ignore: Sequence[str] = (),
) -> Masks:
    """Iterative SynFlow masks keeping a fraction ``density`` of the prunable weights.

    Args:
        model: the randomly initialized network; not modified.
        density: fraction of prunable weights to keep, in ``(0, 1]``.
        input_shape: one sample's shape without the batch axis, e.g. ``(1, 8, 8)`` or ``(64,)``.
        iterations: number of score-and-prune steps (the SynFlow paper uses 100).
        schedule: ``"exponential"`` (``density ** (k / iterations)`` kept after step ``k``, the
            paper's choice) or ``"linear"``.
        layer_types: layer classes whose ``weight`` is prunable (biases never are).
        ignore: prunable weight names to leave dense.

    Returns:
        ``{name: bool tensor}`` with exactly ``max(1, round(density * total))`` kept weights
        overall (ties broken by position).
    """
    check_type("model", model, nn.Module)
    check_number("density", density, gt=0.0, le=1.0)
    _check_input_shape(input_shape)
    check_number("iterations", iterations, ge=1, integer=True)
    check_choice("schedule", schedule, ("exponential", "linear"))
    names = prunable_weights(model, layer_types=layer_types, ignore=ignore)
    if not names:
        raise ValueError(
            f"model must have prunable weights (layer_types {layer_types}), found none"
        )
    params = dict(model.named_parameters())
    masks: Masks = {n: torch.ones_like(params[n], dtype=torch.bool) for n in names}
    total = sum(m.numel() for m in masks.values())
    for k in range(1, int(iterations) + 1):
        frac = k / iterations
        d = density**frac if schedule == "exponential" else 1.0 - (1.0 - density) * frac
        keep = max(1, round(d * total))
        scores = synflow_scores(model, input_shape, masks=masks, names=names)
        flat = torch.cat([torch.where(masks[n], scores[n], -1.0).flatten().cpu() for n in names])
        kept = _first_k_descending(flat, keep)
        offset = 0
        for n in names:
            size = masks[n].numel()
            masks[n] = kept[offset : offset + size].reshape(masks[n].shape).to(masks[n].device)
            offset += size
    return masks
