"""Unstructured weight masks for lottery-ticket experiments.

Frankle & Carbin (2019), "The Lottery Ticket Hypothesis"; Frankle, Dziugaite, Roy & Carbin
(2019/2020), "Stabilizing the Lottery Ticket Hypothesis" / "Linear Mode Connectivity and the
Lottery Ticket Hypothesis".

A mask set is a ``dict`` mapping a parameter name (``model.named_parameters()`` spelling, e.g.
``"features.0.weight"``) to a boolean tensor of that parameter's shape (``True`` = kept).
Prunable by default are the weights of convolutional and linear layers; biases, BatchNorm and
LayerNorm parameters are never pruned (as in the authors' ``open_lth``). Masks are enforced by a
forward pre-hook that zeroes the pruned entries before every forward pass (:func:`attach_masks`),
so optimizer updates to pruned weights never reach the function the network computes, and the
state dict keeps its ordinary keys (rewinding is a plain ``load_state_dict``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from neuronkit.common import check_number, check_seed, check_type

__all__ = [
    "DEFAULT_PRUNABLE",
    "MaskHandle",
    "apply_masks",
    "attach_masks",
    "detach_masks",
    "global_magnitude_prune",
    "layer_sparsity",
    "ones_masks",
    "prunable_weights",
    "random_masks_like",
    "sparsity",
]

Masks = dict[str, torch.Tensor]

#: Layer types whose ``weight`` is prunable by default.
DEFAULT_PRUNABLE: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
)


def prunable_weights(
    model: nn.Module,
    *,
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_PRUNABLE,
    ignore: Iterable[str] = (),
) -> list[str]:
    """Names of the prunable weights of ``model``: the ``weight`` of every ``layer_types`` layer
    (but an empty one, e.g. of ``nn.Linear(0, n)``).

    Args:
        model: any ``nn.Module``.
        layer_types: layer classes whose ``weight`` may be pruned (biases never are).
        ignore: parameter names to leave dense (e.g. ``("fc.weight",)`` for the output layer,
            open_lth's ``pruning_layers_to_ignore``); each must be a prunable weight or a
            parametrized one.

    Raises:
        ValueError: a ``layer_types`` layer's ``weight`` is parametrized (``weight_norm``,
            ``spectral_norm``, ...) and not in ``ignore``: masks act on plain parameters.

    Returns:
        Parameter names in ``model.named_parameters()`` order.
    """
    check_type("model", model, nn.Module)
    check_type("layer_types", layer_types, tuple)
    if not layer_types or not all(isinstance(t, type) for t in layer_types):
        raise TypeError(f"layer_types must be a non-empty tuple of classes, got {layer_types!r}")
    if isinstance(ignore, str):
        raise TypeError(f"ignore must be an iterable of parameter names, got the str {ignore!r}")
    if not isinstance(ignore, Iterable):
        raise TypeError(f"ignore must be an iterable of parameter names, got {ignore!r:.80}")
    ignored = set(ignore)
    names = []
    computed: dict[str, str] = {}  # parametrized weights: name -> their parametrizations
    for mod_name, module in model.named_modules():
        if not isinstance(module, layer_types):
            continue
        name = f"{mod_name}.weight" if mod_name else "weight"
        if parametrize.is_parametrized(module, "weight"):
            chains: Any = module.parametrizations
            computed[name] = ", ".join(type(p).__name__ for p in chains["weight"])
            continue
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.numel():
            names.append(name)
    unknown = ignored - set(names) - set(computed)
    if unknown:
        raise ValueError(
            f"ignore must name prunable weights of the model ({names}), got {sorted(unknown)}"
        )
    refused = {n: kinds for n, kinds in computed.items() if n not in ignored}
    if refused:
        which = ", ".join(f"{n} ({kinds})" for n, kinds in refused.items())
        raise ValueError(
            f"model: {which} {'is' if len(refused) == 1 else 'are'} parametrized, a weight "
            "computed from the parametrization's originals (a mask on it would not hold, a mask "
            "on an original would not zero its entries): lottery masks apply to plain weight "
            "Parameters; remove the parametrization with "
            "torch.nn.utils.parametrize.remove_parametrizations, or leave the layer out with "
            f"ignore={sorted(refused)} or layer_types"
        )
    order = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    return sorted((n for n in names if n not in ignored), key=lambda n: order.get(n, -1))


def _params(model: nn.Module) -> dict[str, nn.Parameter]:
    return dict(model.named_parameters())


def _check_masks(name: str, masks: Any, params: Mapping[str, torch.Tensor] | None = None) -> None:
    check_type(name, masks, dict)
    if not masks:
        raise ValueError(f"{name} must map at least one parameter name to a mask, got {{}}")
    for key, m in masks.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(
                f"{name}[{key!r}] must be a bool tensor, got "
                f"{type(m).__name__}{'' if not isinstance(m, torch.Tensor) else ' ' + str(m.dtype)}"
            )
        if m.numel() == 0:
            raise ValueError(
                f"{name}[{key!r}] must have at least one element, got shape {tuple(m.shape)}"
            )
        if params is not None:
            if key not in params:
                raise ValueError(
                    f"{name} names {key!r}, which is not a parameter of the model "
                    f"(prunable: {_prunable_hint(params)})"
                )
            if m.shape != params[key].shape:
                raise ValueError(
                    f"{name}[{key!r}] must have the parameter's shape "
                    f"{tuple(params[key].shape)}, got {tuple(m.shape)}"
                )


def _prunable_hint(params: Mapping[str, torch.Tensor]) -> list[str]:
    """Parameter names ending in ``weight`` (for error messages)."""
    return [k for k in params if k.endswith("weight")][:8]


def ones_masks(
    model: nn.Module,
    *,
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_PRUNABLE,
    ignore: Iterable[str] = (),
) -> Masks:
    """All-kept masks for the prunable weights of ``model`` (see :func:`prunable_weights`).

    Returns:
        ``{name: bool tensor shaped like the weight, all True}``.
    """
    check_type("model", model, nn.Module)
    params = _params(model)
    return {
        n: torch.ones_like(params[n], dtype=torch.bool, device=params[n].device)
        for n in prunable_weights(model, layer_types=layer_types, ignore=ignore)
    }


def global_magnitude_prune(
    model: nn.Module | Mapping[str, torch.Tensor], masks: Masks, fraction: float = 0.2
) -> Masks:
    """Prune ``fraction`` of the *remaining* weights with the smallest ``|w|``, pooled globally.

    One IMP round of Frankle & Carbin (2019) in its global form (open_lth's ``sparse_global``):
    all surviving weights of all masked layers compete in one ranking, so layers lose different
    fractions. Exactly ``ceil(fraction * remaining)`` weights are removed (ties broken by
    position), except that at least one weight overall is always kept (``fraction < 1``
    never empties the network); already-pruned weights stay pruned.

    Args:
        model: the trained network (or its ``state_dict``/``named_parameters`` mapping).
        masks: the current masks, ``{name: bool tensor shaped like the weight}``.
        fraction: fraction of the remaining weights to remove, in ``[0, 1)``.

    Returns:
        New masks (the inputs are not modified).
    """
    _check_fraction("fraction", fraction)
    if isinstance(model, nn.Module):
        weights: Mapping[str, torch.Tensor] = {k: v.detach() for k, v in _params(model).items()}
    elif isinstance(model, Mapping):
        weights = model
        for key, w in weights.items():
            check_type(f"model[{key!r}]", w, torch.Tensor)
    else:
        raise TypeError(
            f"model must be an nn.Module or a mapping of parameter tensors, "
            f"got {type(model).__name__}"
        )
    _check_masks("masks", masks, weights)
    names = list(masks)
    scores = torch.cat(
        [
            torch.where(
                masks[n].flatten().cpu(),
                weights[n].detach().abs().flatten().double().cpu(),  # float64 weights too
                torch.tensor(-1.0, dtype=torch.float64),
            )
            for n in names
        ]
    )
    remaining = int(sum(int(masks[n].sum()) for n in names))
    n_prune = math.ceil(float(fraction) * remaining)
    keep = max(remaining - n_prune, min(remaining, 1))  # at least one weight survives
    flat = torch.zeros(scores.numel(), dtype=torch.bool)
    if keep > 0:
        if not torch.isfinite(scores).all():
            raise ValueError("model must have finite weights to rank them, got NaN or inf")
        # stable descending sort: among equal magnitudes the earlier position is kept
        order = torch.sort(scores, descending=True, stable=True).indices
        flat[order[:keep]] = True
    out: Masks = {}
    offset = 0
    for n in names:
        size = masks[n].numel()
        out[n] = flat[offset : offset + size].reshape(masks[n].shape).to(masks[n].device)
        offset += size
    return out


def _check_fraction(name: str, value: Any) -> None:
    """Check ``0 <= value < 1``."""
    check_number(name, value, ge=0.0, lt=1.0)


def random_masks_like(masks: Masks, *, seed: int) -> Masks:
    """Random masks with exactly the per-layer number of kept weights of ``masks``.

    The "random pruning" control of the lottery-ticket papers (open_lth's
    ``randomize_layerwise``): each layer's kept positions are shuffled uniformly at random.

    Args:
        masks: ``{name: bool tensor}``.
        seed: seed of the shuffle.

    Returns:
        New masks with the same shapes and per-layer counts.
    """
    _check_masks("masks", masks)
    check_seed(seed)
    gen = torch.Generator().manual_seed(int(seed))
    out: Masks = {}
    for n, m in masks.items():
        flat = m.flatten().cpu()
        perm = torch.randperm(flat.numel(), generator=gen)
        out[n] = flat[perm].reshape(m.shape).to(m.device)
    return out


def sparsity(masks: Masks) -> float:
    """Fraction of masked weights that are pruned (0 = dense), pooled over all masks."""
    _check_masks("masks", masks)
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total


def layer_sparsity(masks: Masks) -> dict[str, float]:
    """Per-layer fraction of pruned weights: ``{name: pruned / numel}``."""
    _check_masks("masks", masks)
    return {n: 1.0 - float(m.sum()) / m.numel() for n, m in masks.items()}


def apply_masks(model: nn.Module, masks: Masks) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (under ``no_grad``) and return it."""
    check_type("model", model, nn.Module)
    params = _params(model)
    _check_masks("masks", masks, params)
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))
    return model


class MaskHandle:
    """What :func:`attach_masks` returns: ``remove()`` detaches the hook (masks stay applied)."""

    def __init__(self, handle: Any, masks: Masks) -> None:
        if not callable(getattr(handle, "remove", None)):
            raise TypeError(
                f"handle must be a hook handle with a remove() method, got {type(handle).__name__}"
            )
        check_type("masks", masks, dict)
        self._handle = handle
        self.masks = masks

    def remove(self) -> None:
        """Stop enforcing the masks."""
        self._handle.remove()


def attach_masks(model: nn.Module, masks: Masks) -> MaskHandle:
    """Enforce ``masks`` on ``model``: zero pruned weights now and before every forward pass.

    A forward pre-hook on ``model`` (the open_lth ``PrunedModel`` mechanism), so gradient steps
    on pruned weights are discarded before they affect any output and ``state_dict`` keys are
    unchanged. The masks are copied; later changes to the given dict have no effect.

    One set of masks at a time: two hooks would enforce the intersection of their masks, so a
    model that already carries masks (attached here and not removed, or copied with them) is
    refused; call ``remove()`` on the first :class:`MaskHandle` (a copy made while masks are
    attached, e.g. by ``copy.deepcopy``, carries the hook without a handle: free it with
    :func:`detach_masks`).

    Args:
        model: the network; modified in place (that is the point).
        masks: ``{name: bool tensor shaped like the parameter}``.

    Raises:
        ValueError: ``model`` already carries masks attached by this function.

    Returns:
        A :class:`MaskHandle`; call ``remove()`` to stop enforcing.
    """
    check_type("model", model, nn.Module)
    params = _params(model)
    _check_masks("masks", masks, params)
    if _mask_hooks(model):
        raise ValueError(
            "model already carries lottery masks (an earlier attach_masks whose hook is still "
            "on it; both would hold, enforcing the intersection of their masks): call remove() "
            "on the MaskHandle that attach_masks returned, or detach_masks(model) (for a copy "
            "made while masks were attached, which carries the hook but no handle), before "
            "attaching other masks"
        )
    own = {n: m.detach().clone() for n, m in masks.items()}
    apply_masks(model, own)
    # a partial of a module-level function, not a closure: the model still pickles
    hook = functools.partial(_masks_pre_hook, own, {})
    return MaskHandle(model.register_forward_pre_hook(hook), own)


def detach_masks(model: nn.Module) -> Masks | None:
    """Stop enforcing the masks that :func:`attach_masks` put on ``model``; return them.

    ``MaskHandle.remove()`` does the same for the model it was attached to; this also frees a
    copy made while masks were attached (``copy.deepcopy`` copies the hook, not the handle).
    The weights stay as they are (pruned ones stay zero until trained).

    Returns:
        The masks that were enforced (``{name: bool tensor}``), or ``None`` when ``model``
        carried none.
    """
    check_type("model", model, nn.Module)
    hooks = _mask_hooks(model)
    for key in hooks:
        del model._forward_pre_hooks[key]
    return next(iter(hooks.values())).args[0] if hooks else None


def _mask_hooks(model: nn.Module) -> dict[int, functools.partial]:
    """The :func:`attach_masks` hooks on ``model``: ``{hook id: hook}`` (at most one)."""
    return {
        key: h
        for key, h in model._forward_pre_hooks.items()
        if isinstance(h, functools.partial) and h.func is _masks_pre_hook
    }


def _masks_pre_hook(
    masks: dict[str, torch.Tensor], cast: dict[str, torch.Tensor], module: nn.Module, args: Any
) -> None:
    """:func:`apply_masks` before every forward pass, without its checks (``attach_masks`` made
    them): ``cast`` keeps each mask in its weight's dtype and device, converted again only when
    the weight's change (a bool mask costs a conversion on every multiplication)."""
    with torch.no_grad():
        for n, m in masks.items():
            p = module.get_parameter(n)  # by name: a parameter replaced since is still found
            c = cast.get(n)
            if c is None or c.dtype != p.dtype or c.device != p.device:
                c = cast[n] = m.to(device=p.device, dtype=p.dtype)
            p.mul_(c)
