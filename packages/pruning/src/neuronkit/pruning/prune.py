"""Pruning plans, physical channel removal and the soft-pruning oracle (SPA).

Wang et al. (2024), "Structurally Prune Anything" (SPA): once coupled channels are grouped and
scored, the lowest-importance channels of each group are removed from *every* member at once,
which yields a smaller model computing exactly what the original computes with those channels
zeroed. :func:`soft_prune` builds that zeroed original (the correctness oracle: producer rows,
consumer columns, normalization scale *and shift* zeroed; LayerNorm statistics over the kept
channels); :func:`prune` returns the physically smaller copy.

Typical use::

    graph = DependencyGraph(model, x)            # x: an example input batch
    plan = plan_pruning(graph, "l2", ratio=0.5)  # remove half the channels of every group
    small = prune(graph, plan)                   # a new, smaller nn.Module
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from neuronkit.common import integer_dtype

from .graph import DependencyGraph, Group, GroupMember, query_groups
from .hf_config import sync_hf_config
from .importance import GroupImportance, _described, get_param, resolve_importance
from .tracing import ConfigView, drop_caches, is_hf_conv1d, is_hf_model, is_last_axis_norm

__all__ = [
    "MaskedLayerNorm",
    "MaskedNorm",
    "PruningPlan",
    "plan_from_masks",
    "plan_pruning",
    "prune",
    "prune_model",
    "soft_prune",
]


@dataclass
class PruningPlan:
    """Which channels to remove.

    Attributes:
        removed: group index -> sorted ``LongTensor`` of removed channel positions (0..n-1).
        attention: ``nn.MultiheadAttention`` name -> sorted ``LongTensor`` of kept internal
            (query/key/value) dimensions, whole heads' worth per head.
    """

    removed: dict[int, torch.Tensor] = field(default_factory=dict)
    attention: dict[str, torch.Tensor] = field(default_factory=dict)

    def num_removed(self) -> int:
        """Total number of removed channels."""
        return int(sum(int(v.numel()) for v in self.removed.values()))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The plan as int64 tensors named ``"removed.<group index>"`` and
        ``"attention.<module name>"``: save it with ``neuronkit.common.save_weights`` or
        ``torch.save`` and rebuild the pruned architecture of a fresh model later with
        :meth:`from_state_dict` and :func:`prune` (then load the pruned weights into it)."""
        state = {f"removed.{g}": idx.to("cpu", torch.int64) for g, idx in self.removed.items()}
        state.update(
            {f"attention.{n}": idx.to("cpu", torch.int64) for n, idx in self.attention.items()}
        )
        return state

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> PruningPlan:
        """The plan :meth:`state_dict` wrote (group indices refer to a
        :class:`DependencyGraph` built on a model of the same architecture)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping of tensors, got {type(state).__name__}")
        plan = cls()
        for key, value in state.items():
            kind, _, name = str(key).partition(".")
            integer = isinstance(value, torch.Tensor) and integer_dtype(value)
            if not integer or value.ndim != 1:
                raise ValueError(f"state[{key!r}] must be a 1-D integer tensor, got {value!r:.60}")
            if kind == "removed" and name.isdigit():
                plan.removed[int(name)] = value.long()
            elif kind == "attention" and name:
                plan.attention[name] = value.long()
            else:
                raise ValueError(
                    f"state keys must be 'removed.<group index>' or 'attention.<module>', "
                    f"got {key!r}"
                )
        return plan


def _check_layer_ratios(
    graph: DependencyGraph, layer_ratios: Mapping[str, float] | None
) -> dict[str, float]:
    """``layer_ratios`` as a dict of known layer names to ratios in [0, 1)."""
    try:
        ratios = dict(layer_ratios or {})
    except (TypeError, ValueError):
        raise TypeError(
            "layer_ratios: expected a mapping of layer name -> ratio, got "
            f"{type(layer_ratios).__name__} ({layer_ratios!r:.80})"
        ) from None
    _validate_names(graph, ratios, "layer_ratios")
    return {name: _check_ratio(f"layer_ratios[{name!r}]", r) for name, r in ratios.items()}


def _check_ratio(name: str, value: Any) -> float:
    """A ratio in [0, 1) as a Python float (numpy scalars are accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float in [0, 1), got {type(value).__name__}")
    value = float(value)
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise ValueError(f"{name}: expected a ratio in [0, 1), got {value}")
    return value


def _check_positive_int(name: str, value: Any) -> int:
    """A positive integer as a Python int (numpy integers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _validate_names(graph: DependencyGraph, names: Iterable[str], arg: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{arg}: expected a list of layer names, got a single string {names!r}")
    if not isinstance(names, Iterable):
        raise TypeError(f"{arg}: expected a list of layer names, got {type(names).__name__}")
    names = list(names)
    producers = {p for g in graph.groups for p in g.producers}
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{arg}: expected layer names (str), got {type(n).__name__}")
        if n not in graph.module_names and n not in producers:
            raise ValueError(
                f"{arg}: layer {n!r} does not exist in {type(graph.model).__name__}; "
                f"known layers are e.g. {sorted(m for m in graph.module_names if m)[:8]}"
            )
    return names


def _keep_count(size: int, ratio: float, unit: int) -> int:
    keep = size - math.floor(ratio * size + 1e-9)
    keep = int(math.ceil(keep / unit) * unit)
    return min(size, max(unit, keep))


def _unit(group: Group, round_to: int) -> int:
    return math.lcm(group.multiple, round_to)


def plan_pruning(
    graph: DependencyGraph,
    importance: GroupImportance | str = "l2",
    ratio: float = 0.5,
    *,
    scope: str = "local",
    layer_ratios: Mapping[str, float] | None = None,
    ignored_layers: Iterable[str] = (),
    round_to: int = 1,
    max_ratio: float = 0.95,
) -> PruningPlan:
    """Choose the channels to remove from every prunable group.

    Args:
        graph: the model's :class:`DependencyGraph`.
        importance: a :class:`GroupImportance` or a name ("l1", "l2", "synflow").
        ratio: fraction of channels removed, in [0, 1). "local": from every group, which
            keeps ``size - floor(ratio * size)`` channels rounded up to a multiple of its
            unit ``lcm(round_to, group.multiple)`` (whole heads), at least one unit and at
            most ``size``, so it loses at most ``floor(ratio * size)``; "global":
            ``floor(ratio * total)`` of all prunable channels, lowest normalized scores first
            (ties: earlier group, then lower channel index), then each group's count is capped
            by ``max_ratio`` and rounded down to its ``round_to``/head unit.
        scope: "local" or "global".
        layer_ratios: per-layer ratios by producer module name, overriding ``ratio`` for the
            groups that layer produces (local scope).
        ignored_layers: module names whose output channels are never removed (validated).
        round_to: kept channel counts become multiples of this (e.g. 8); attention groups also
            keep whole heads.
        max_ratio: the most any group may lose under global scope.

    Returns:
        a :class:`PruningPlan`.

    Raises:
        ValueError: invalid arguments, a group's importance scores are not finite (NaN or
            inf in its layers' weights or in the calibration data), or ``graph.model``
            changed since the graph was built (pruned in place: build a new graph).
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"graph: expected a DependencyGraph, got {type(graph).__name__}")
    graph._check_unchanged()
    ratio = _check_ratio("ratio", ratio)
    max_ratio = _check_ratio("max_ratio", max_ratio)
    if scope not in ("local", "global"):
        raise ValueError(f"scope: expected 'local' or 'global', got {scope!r}")
    round_to = _check_positive_int("round_to", round_to)
    ignored = set(_validate_names(graph, ignored_layers, "ignored_layers"))
    layer_ratios = _check_layer_ratios(graph, layer_ratios)
    if layer_ratios and scope == "global":
        raise ValueError("layer_ratios: only used with scope='local' (global scope ranks all)")
    imp = resolve_importance(importance)

    groups = [g for g in graph.prunable_groups() if not _names_touch(g, ignored)]
    scores = imp(graph)
    _check_group_scores(imp, scores, groups)
    for g in groups:
        _check_scores(f"importance scores of group {g.name!r}", scores[g.index])
    keep: dict[int, int] = {}
    if scope == "local":
        for g in groups:
            r = _group_ratio(g, ratio, layer_ratios)
            keep[g.index] = _keep_count(g.size, r, _unit(g, round_to))
    else:
        counts = _global_counts([scores[g.index] for g in groups], ratio)
        for g, n in zip(groups, counts):
            unit = _unit(g, round_to)
            n = min(n, g.size - _keep_count(g.size, max_ratio, unit))
            n = (n // unit) * unit if g.multiple > 1 else n
            keep[g.index] = _keep_count(g.size, n / g.size, unit) if n else g.size
    keep = _tied_keep(graph, keep, round_to)
    plan = PruningPlan()
    for g in groups:
        _take(plan, g, scores[g.index], g.size - keep[g.index])
    _plan_attention(graph, plan)
    return plan


def _tied_keep(graph: DependencyGraph, keep: dict[int, int], round_to: int) -> dict[int, int]:
    """``keep`` (group index -> channels kept) with the groups of each width tie
    (:attr:`~.graph.DependencyGraph.width_ties`) keeping one common width: the widest any of
    them wants, rounded up to a width all can keep in whole units; a group of a tie that is
    not in ``keep`` (ignored) keeps everything, so the whole tie does."""
    out = dict(keep)
    for tie in graph.width_ties:
        groups = [graph.groups[gi] for gi in tie]
        full = groups[0].size * tie[groups[0].index]
        if any(g.index not in keep for g in groups):
            width = full
        else:
            step = math.lcm(*(tie[g.index] * _unit(g, round_to) for g in groups))
            width = max(keep[g.index] * tie[g.index] for g in groups)
            width = min(full, -(-width // step) * step)
        for g in groups:
            if g.index in out:
                out[g.index] = width // tie[g.index]
    return out


def _check_group_scores(imp: GroupImportance, scores: Any, groups: list[Group]) -> None:
    """Raise unless ``scores`` (what ``imp`` returned) maps the index of each of ``groups`` to
    a 1-D tensor of one score per channel: a shape check, nothing computed."""
    name = type(imp).__name__
    if not isinstance(scores, Mapping):
        raise TypeError(
            f"importance: {name} returned {type(scores).__name__}, expected a dict "
            "{group index: scores}"
        )
    for g in groups:
        s = scores.get(g.index)
        if s is None:
            raise ValueError(
                f"importance: {name} returned no scores for group {g.name!r} (index "
                f"{g.index}), expected a 1-D tensor of {g.size} scores for every prunable group"
            )
        if not isinstance(s, torch.Tensor) or s.shape != (g.size,):
            raise ValueError(
                f"importance: {name} scores of group {g.name!r} (index {g.index}): expected a "
                f"1-D tensor of {g.size} scores (one per channel), got {_described(s)}"
            )


def _check_scores(what: str, scores: torch.Tensor) -> None:
    """Raise ``ValueError`` unless the scores that rank a group's channels are finite: a NaN
    sorts last and an all-NaN group is all ties, so the plan would drop the wrong channels."""
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(
            f"{what} must be finite to rank its channels, got NaN or inf (NaN or inf in "
            "its layers' weights or in the calibration data?)"
        )


def _global_counts(scores: list[torch.Tensor], ratio: float) -> list[int]:
    """How many of each group's channels are among the ``floor(ratio * total)`` lowest scores
    of all groups (``scores``: one ``[n_g]`` tensor per group); ties go to the earlier group,
    then the lower channel index, so exactly that many are chosen."""
    if not scores:
        return []
    flat = torch.cat([s.detach().cpu() for s in scores])
    owner = torch.cat([torch.full((s.numel(),), i) for i, s in enumerate(scores)])
    lowest = torch.argsort(flat, stable=True)[: math.floor(ratio * flat.numel())]
    return torch.bincount(owner[lowest], minlength=len(scores)).tolist()


def _names_touch(group: Group, names: Iterable[str]) -> bool:
    """Whether a module whose *output* channels are the group's (a producer, a norm or an
    embedding; not a consumer, whose input channels follow its producer) is one of ``names``
    or lies inside one of them (a container such as a ``Sequential``; ``""``, the model
    itself, holds every module)."""
    return any(
        n == "" or m.module == n or m.module.startswith(n + ".")
        for n in names
        for m in group.members
        if m.role != "in"
    )


def _group_ratio(group: Group, ratio: float, layer_ratios: Mapping[str, float]) -> float:
    """The ratio for ``group``: the last entry of ``layer_ratios`` naming one of its output
    modules or a container of one (see :func:`_names_touch`), else ``ratio``."""
    for name, layer_ratio in layer_ratios.items():
        if _names_touch(group, (name,)):
            ratio = layer_ratio
    return ratio


def _take(plan: PruningPlan, group: Group, scores: torch.Tensor, n: int) -> None:
    if n <= 0:
        return
    if group.segments is not None:  # gqa="queries": the lowest n / kv of each key/value head's
        segments = torch.from_numpy(group.segments).to(scores.device)
        kv = int(group.segments.max()) + 1
        picks = [
            heads[torch.argsort(scores[heads], stable=True)[: n // kv]]
            for heads in (torch.nonzero(segments == k).flatten() for k in range(kv))
        ]
        plan.removed[group.index] = torch.cat(picks).sort().values
        return
    order = torch.argsort(scores, stable=True)[:n]
    if group.multiple == 1 and any(_holds_some(m) for m in group.members):
        values = scores.detach().double().cpu().numpy()
        kept = _spare_every_output(group, order.cpu().numpy(), values)
        order = torch.from_numpy(kept).to(order.device)
    plan.removed[group.index] = order.sort().values


def _holds_some(member: GroupMember) -> bool:
    """Whether ``member`` produces or reads its group's channels other than one index each: a
    layer whose outputs are concatenated with other layers' holds none of theirs, one that
    reads a slice of them (a piece of Phi-3's fused ``qkv``) none of the others."""
    return member.role in ("out", "in") and not member.positions.one_each


def _spare_every_output(group: Group, removed: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``removed`` (``[n]`` channel indices of ``group``, whose channels score ``scores [size]``)
    changed so that every layer whose outputs (or inputs) are some of the group's channels
    keeps one: where a group concatenates several layers' outputs (DenseNet-style blocks;
    timm's RDNet, whose blocks' tiny layer scales rank all of one block's channels lowest), or
    is sliced into several layers' inputs, the lowest scores may be all of one layer's, and a
    convolution left with no output (or input) cannot run. Its best channel is
    kept instead of the lowest-scored other kept channel whose layers keep others (the count
    stays, unless no such channel exists). Sorted ``[n]`` indices."""
    holders = [m.positions.counts > 0 for m in group.members if _holds_some(m)]
    gone = np.zeros(group.size, dtype=bool)
    gone[removed] = True
    for held in holders:
        if not gone[held].all():
            continue
        mine = np.flatnonzero(held)
        gone[mine[np.argmax(scores[mine])]] = False
        for c in np.argsort(scores, kind="stable"):  # instead: the lowest that can go
            if not gone[c] and all(not h[c] or (h & ~gone).sum() > 1 for h in holders):
                gone[c] = True
                break
    return np.flatnonzero(gone)


def _plan_attention(graph: DependencyGraph, plan: PruningPlan) -> None:
    for g in graph.groups:
        removed = plan.removed.get(g.index)
        if removed is None or not g.attention:
            continue
        for name in g.attention:
            mha = graph.model.get_submodule(name)
            assert isinstance(mha, nn.MultiheadAttention)
            e, h = mha.embed_dim, mha.num_heads
            d = e // h
            new_d = (e - removed.numel()) // h
            w = mha.in_proj_weight.detach().double()
            score = (w[:e] ** 2).sum(1) + (w[e : 2 * e] ** 2).sum(1) + (w[2 * e :] ** 2).sum(1)
            score = score + (mha.out_proj.weight.detach().double() ** 2).sum(0)
            keep = []
            for head in range(h):
                s = score[head * d : (head + 1) * d]
                top = torch.argsort(s, descending=True, stable=True)[:new_d].sort().values
                keep.append(top + head * d)
            plan.attention[name] = torch.cat(keep)


def plan_from_masks(graph: DependencyGraph, masks: Mapping[int, torch.Tensor]) -> PruningPlan:
    """A plan from boolean keep-masks: ``{group index: mask [n]}`` (True = keep).

    Raises:
        ValueError: unknown or frozen group, mask of the wrong shape or dtype, a mask that
            keeps nothing, attention groups losing a count that is not whole heads, or
            ``graph.model`` changed since the graph was built.
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"graph: expected a DependencyGraph, got {type(graph).__name__}")
    graph._check_unchanged()
    if not isinstance(masks, Mapping):
        raise TypeError(
            f"masks: expected a mapping group index -> mask, got {type(masks).__name__}"
        )
    plan = PruningPlan()
    for gi, mask in masks.items():
        if isinstance(gi, bool) or not isinstance(gi, numbers.Integral):
            raise TypeError(f"masks: expected int group indices, got {type(gi).__name__} {gi!r}")
        gi = int(gi)
        if not (0 <= gi < len(graph.groups)):
            raise ValueError(f"masks: unknown group index {gi!r} (have {len(graph.groups)} groups)")
        g = graph.groups[gi]
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise TypeError(f"masks[{gi}]: expected a bool tensor, got {type(mask).__name__}")
        if tuple(mask.shape) != (g.size,):
            raise ValueError(
                f"masks[{gi}]: expected shape ({g.size},) for group {g.name!r}, "
                f"got {tuple(mask.shape)}"
            )
        n = int((~mask).sum())
        if n == 0:
            continue
        if not g.prunable:
            raise ValueError(f"masks[{gi}]: group {g.name!r} cannot be pruned ({g.reason})")
        if n == g.size:
            raise ValueError(f"masks[{gi}]: the mask removes every channel of {g.name!r}")
        _check_segments(g, torch.nonzero(~mask).flatten(), f"masks[{gi}]")
        if n % g.multiple:
            raise ValueError(
                f"masks[{gi}]: group {g.name!r} must lose a multiple of {g.multiple} channels "
                f"(whole attention heads), got {n}"
            )
        plan.removed[gi] = torch.nonzero(~mask).flatten()
    _check_tied_widths(graph, plan, "masks")
    _plan_attention(graph, plan)
    return plan


def _validate_plan(graph: DependencyGraph, plan: PruningPlan) -> None:
    if not isinstance(graph, DependencyGraph):
        raise TypeError(
            f"graph: expected a DependencyGraph (built on the model), got {type(graph).__name__}"
        )
    if not isinstance(plan, PruningPlan):
        raise TypeError(f"plan: expected a PruningPlan, got {type(plan).__name__}")
    graph._check_unchanged()  # e.g. pruned in place: the groups' positions no longer fit
    for gi, idx in plan.removed.items():
        if not (0 <= gi < len(graph.groups)):
            raise ValueError(f"plan: unknown group index {gi}")
        g = graph.groups[gi]
        if not g.prunable:
            raise ValueError(f"plan: group {g.name!r} cannot be pruned ({g.reason})")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= g.size):
            raise ValueError(f"plan: channel index out of range for group {g.name!r} (n={g.size})")
        if idx.numel() >= g.size:
            raise ValueError(f"plan: removes every channel of group {g.name!r}")
        if idx.numel() and torch.unique(idx).numel() != idx.numel():
            raise ValueError(f"plan: repeats a channel index for group {g.name!r}")
        _check_segments(g, idx, "plan")
    _check_tied_widths(graph, plan, "plan")
    modules = dict(graph.model.named_modules()) if plan.attention else {}
    for name in plan.attention:
        if not isinstance(modules.get(name), nn.MultiheadAttention):
            raise ValueError(
                f"plan: attention entry {name!r} is not an nn.MultiheadAttention of the model "
                "(a plan made for another architecture?)"
            )


def _check_segments(group: Group, removed: torch.Tensor, arg: str) -> None:
    """Raise ``ValueError`` unless ``removed`` (``[n]`` channel indices of ``group``) takes as
    many query heads from each key/value head (:attr:`~.graph.Group.segments`, ``gqa=
    "queries"``): ``repeat_kv`` gives every key/value head the same number."""
    if group.segments is None:
        return
    kv = int(group.segments.max()) + 1
    counts = np.bincount(group.segments[removed.cpu().numpy()], minlength=kv)
    if len(set(counts.tolist())) > 1:
        raise ValueError(
            f"{arg}: group {group.name!r} (query heads, gqa='queries') must lose the same "
            f"number of query heads from each of its {kv} key/value heads, got "
            f"{counts.tolist()}"
        )


def _check_tied_widths(graph: DependencyGraph, plan: PruningPlan, arg: str) -> None:
    """Raise ``ValueError`` unless the groups of every width tie keep the same width."""
    for tie in graph.width_ties:
        kept = {gi: graph.groups[gi].size - len(plan.removed.get(gi, ())) for gi in tie}
        if len({kept[gi] * w for gi, w in tie.items()}) > 1:
            detail = ", ".join(
                f"{graph.groups[gi].name!r} keeps {kept[gi]} x {w}" for gi, w in tie.items()
            )
            raise ValueError(
                f"{arg}: the groups of a width tie (graph.width_ties: a reshape sizes one's "
                f"channels with another's count) must keep equal widths, got {detail}"
            )


def _check_target(graph: DependencyGraph, target: nn.Module) -> None:
    """``target`` must have every submodule, parameter and buffer of ``graph.model``, each
    tensor of the same shape (it may have more, e.g. a bias added by OBS compensation)."""
    if not isinstance(target, nn.Module) or type(target) is not type(graph.model):
        raise TypeError(
            f"target: expected a {type(graph.model).__name__}, got {type(target).__name__}"
        )
    modules = dict(target.named_modules(remove_duplicate=False))
    for name, _ in graph.model.named_modules(remove_duplicate=False):
        if name not in modules:
            raise ValueError(
                f"target: has no submodule {name!r} of graph.model (expected a model of the "
                "same structure, e.g. a copy of it)"
            )
    tensors: dict[str, torch.Tensor] = dict(target.named_parameters(remove_duplicate=False))
    tensors.update(target.named_buffers(remove_duplicate=False))
    ref: list[tuple[str, torch.Tensor]] = list(graph.model.named_parameters(remove_duplicate=False))
    ref += graph.model.named_buffers(remove_duplicate=False)
    for name, t in ref:
        other = tensors.get(name)
        if other is None:
            raise ValueError(
                f"target: has no tensor {name!r} of graph.model (expected a model of the "
                "same structure, e.g. a copy of it)"
            )
        if other.shape != t.shape:
            raise ValueError(
                f"target: {name!r} has shape {tuple(other.shape)}, graph.model's has "
                f"{tuple(t.shape)} (expected a model of the same structure, e.g. a copy of it)"
            )


def _removed_positions(
    graph: DependencyGraph, plan: PruningPlan
) -> dict[tuple[str, str, int], np.ndarray]:
    """``(module, param, dim) -> removed indices along dim`` (possibly repeated), in plan order."""
    parts: dict[tuple[str, str, int], list[np.ndarray]] = {}
    for gi, idx in plan.removed.items():
        g = graph.groups[gi]
        channels = idx.cpu().numpy()
        for m in g.members:
            parts.setdefault((m.module, m.param, m.dim), []).append(m.positions.take(channels))
    return {key: np.concatenate(arrays) for key, arrays in parts.items()}


def _set_tensor(model: nn.Module, module: str, name: str, value: torch.Tensor) -> None:
    owner = model.get_submodule(module) if module else model
    prefix, _, leaf = name.rpartition(".")
    if prefix:
        owner = owner.get_submodule(prefix)
    old = getattr(owner, leaf)
    value = _contiguous_like(value, old)
    if parametrize.is_parametrized(owner, leaf):  # weight_norm: g and v of the new weight
        with torch.no_grad():
            setattr(owner, leaf, value)
        return
    if isinstance(old, nn.Parameter):
        setattr(owner, leaf, nn.Parameter(value, requires_grad=old.requires_grad))
    else:
        owner._buffers[leaf] = value


def _contiguous_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` contiguous in the memory format of ``like``: a channels_last (4-D) or
    channels_last_3d (5-D) tensor stays so, anything else is made plainly contiguous."""
    if not like.is_contiguous() and value.ndim == like.ndim:
        for ndim, fmt in ((4, torch.channels_last), (5, torch.channels_last_3d)):
            if like.ndim == ndim and like.is_contiguous(memory_format=fmt):
                return value.contiguous(memory_format=fmt)
    return value.contiguous()


def _fill_weight_norm(owner: nn.Module, leaf: str, idx: tuple[Any, ...], value: float) -> None:
    """Set ``weight[idx]`` of a ``weight_norm``-parametrized tensor to ``value`` (0 in the
    oracle): ``g`` and ``v`` become those of the new weight (a norm group that is all zero
    keeps its ``v``, with ``g = 0``), so the other entries keep their values."""
    chains: Any = owner.parametrizations
    chain = chains[leaf]
    w = getattr(owner, leaf).clone()
    w[idx] = value
    g = torch.norm_except_dim(w, 2, chain[0].dim)
    chain.original0.copy_(g)
    chain.original1.copy_(torch.where(g == 0, chain.original1, w))


def _as_param(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    value = _contiguous_like(value, like)
    if isinstance(like, nn.Parameter):
        return nn.Parameter(value, requires_grad=like.requires_grad)
    return value


def _assign(owner: nn.Module, name: str, value: torch.Tensor) -> None:
    prefix, _, leaf = name.rpartition(".")
    if prefix:
        owner = owner.get_submodule(prefix)
    if leaf in owner._parameters:
        owner._parameters[leaf] = value  # type: ignore[assignment]
    else:
        owner._buffers[leaf] = value


def _bias_of(mod: nn.Module, name: str) -> torch.Tensor | None:
    """The parameter ``name`` (e.g. ``"out_proj.bias"``) of ``mod``, or None."""
    owner_name, _, leaf = name.rpartition(".")
    owner = mod.get_submodule(owner_name) if owner_name else mod
    bias = owner._parameters.get(leaf)
    return bias if isinstance(bias, torch.Tensor) else None


def _retie(model: nn.Module, old: torch.Tensor, new: torch.Tensor) -> list[str]:
    """Point every parameter/buffer slot holding ``old`` at ``new``; the owners' names."""
    names = []
    for name, mod in model.named_modules():
        for store in (mod._parameters, mod._buffers):
            for leaf, value in store.items():
                if value is old:
                    store[leaf] = new
                    names.append(name)
    return names


def _fix_attributes(mod: nn.Module) -> None:
    conv = nn.modules.conv._ConvNd
    if isinstance(mod, conv) and 1 < mod.groups == mod.in_channels == mod.out_channels:
        mod.groups = mod.in_channels = mod.out_channels = mod.weight.shape[0]  # depthwise
    elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        mod.in_channels = mod.weight.shape[1] * mod.groups
        mod.out_channels = mod.weight.shape[0]
    elif isinstance(mod, nn.Linear):
        mod.out_features, mod.in_features = mod.weight.shape
    elif is_hf_conv1d(mod):  # HF Conv1D: weight [in, out], widths in ``nx`` and ``nf``
        weight: Any = mod.weight
        setattr(mod, "nx", int(weight.shape[0]))  # noqa: B010
        setattr(mod, "nf", int(weight.shape[1]))  # noqa: B010
    elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
        ref = mod.weight if mod.weight is not None else mod.running_mean
        assert ref is not None
        mod.num_features = ref.shape[0]
    elif isinstance(mod, nn.LayerNorm | nn.RMSNorm):
        assert mod.weight is not None
        mod.normalized_shape = (mod.weight.shape[0],)
    elif isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
        mod.embedding_dim = mod.weight.shape[1]
    elif isinstance(mod, nn.modules.conv._ConvTransposeNd):  # weight [in, out / groups, ...]
        mod.in_channels, mod.out_channels = mod.weight.shape[0], mod.weight.shape[1] * mod.groups
    elif isinstance(mod, nn.PReLU):
        mod.num_parameters = mod.weight.shape[0]
    elif isinstance(mod, nn.GroupNorm):
        _resize_group_norm(mod, mod.weight.shape[0])
    elif isinstance(mod, nn.Bilinear):
        mod.out_features, mod.in1_features, mod.in2_features = mod.weight.shape
    elif isinstance(mod, nn.RNNCellBase):
        mod.input_size, mod.hidden_size = int(mod.weight_ih.shape[1]), int(mod.weight_hh.shape[1])
    elif isinstance(mod, nn.RNNBase):
        w_ih: Any = mod.weight_ih_l0
        w_hh: Any = mod.weight_hh_l0
        mod.input_size, mod.hidden_size = int(w_ih.shape[1]), int(w_hh.shape[1])
        mod._init_flat_weights()


def _resize_group_norm(mod: nn.GroupNorm, channels: int) -> None:
    """``mod`` keeps ``channels``: whole groups were removed, so each keeps its width (a
    single group stays one, whatever channels were removed)."""
    width = mod.num_channels // mod.num_groups
    mod.num_channels = channels
    if mod.num_groups > 1:
        mod.num_groups = channels // width


def _fix_hf_attention(mod: nn.Module) -> None:
    """GPT-2-style attention keeps its width in attributes: ``split_size`` splits the fused
    qkv output, ``embed_dim`` / ``num_heads`` follow the kept heads (``head_dim`` is fixed)."""
    c_attn: Any = getattr(mod, "c_attn", None)
    c_proj: Any = getattr(mod, "c_proj", None)
    if not isinstance(c_attn, nn.Module) or not isinstance(c_proj, nn.Module):
        return
    if not (is_hf_conv1d(c_attn) and is_hf_conv1d(c_proj)) or not hasattr(mod, "split_size"):
        return
    proj_weight: Any = c_proj.weight
    width = int(proj_weight.shape[0])
    for attr in ("split_size", "embed_dim"):
        setattr(mod, attr, width)
    head_dim: Any = getattr(mod, "head_dim", None)
    if isinstance(head_dim, int) and head_dim:
        setattr(mod, "num_heads", width // head_dim)  # noqa: B010


def _fix_query_groups(mod: nn.Module, one_kv_head: bool) -> None:
    """Hugging Face attention repeats each key/value head for ``num_key_value_groups`` query
    heads (``repeat_kv``): with multi-query attention, whose query heads are pruned alone, it
    follows the kept query width over the key/value width (:func:`~.graph.query_groups`)."""
    groups = query_groups(mod, one_kv_head)
    if groups is not None:
        setattr(mod, "num_key_value_groups", groups)  # noqa: B010


def _prune_attention(mha: nn.MultiheadAttention, keep: torch.Tensor, hard: bool) -> None:
    e, h = mha.in_proj_weight.shape[0] // 3, mha.num_heads
    d = e // h
    new_e = keep.numel()
    rows = torch.cat([keep, keep + e, keep + 2 * e])
    with torch.no_grad():
        if not hard:
            dropped = torch.ones(e, dtype=torch.bool, device=keep.device)
            dropped[keep] = False
            drop_rows = torch.cat([dropped, dropped, dropped])
            mha.in_proj_weight[drop_rows] = 0
            if mha.in_proj_bias is not None:
                mha.in_proj_bias[drop_rows] = 0
            mha.out_proj.weight[:, dropped] = 0
            return
        scale = math.sqrt((new_e // h) / d)  # keep q.k / sqrt(head_dim) unchanged
        w = mha.in_proj_weight.detach()[rows].clone()
        w[:new_e] *= scale
        mha.in_proj_weight = nn.Parameter(w, requires_grad=mha.in_proj_weight.requires_grad)
        if mha.in_proj_bias is not None:
            b = mha.in_proj_bias.detach()[rows].clone()
            b[:new_e] *= scale
            mha.in_proj_bias = nn.Parameter(b, requires_grad=mha.in_proj_bias.requires_grad)
        ow = mha.out_proj.weight.detach()[:, keep].clone()
        mha.out_proj.weight = nn.Parameter(ow, requires_grad=mha.out_proj.weight.requires_grad)
    mha.embed_dim = mha.kdim = mha.vdim = new_e
    mha.head_dim = new_e // h
    mha.out_proj.in_features = new_e
    mha.out_proj.out_features = mha.out_proj.weight.shape[0]


def _resize_attributes(graph: DependencyGraph, plan: PruningPlan, mods: dict[str, Any]) -> None:
    """Set each size attribute the graph found (a reshape's head count, an entry
    ``"name[i]"`` of a tuple attribute, a field ``"config.name"`` of the module's model config)
    to the entries kept, and each quotient's denominator to keep the quotient."""
    for (module, attr), (gids, pos) in graph.size_attributes.items():
        gone = 0
        for gi, idx in plan.removed.items():
            hit = gids == gi
            if hit.any():
                gone += int(np.isin(pos[hit], idx.cpu().numpy()).sum())
        if not gone:
            continue
        name, _, index = attr.partition("[")
        holder, _, field = name.rpartition(".")
        if index:  # an entry of a tuple
            entries = list(getattr(mods[module], name))
            entries[int(index[:-1])] = len(gids) - gone
            setattr(mods[module], name, tuple(entries))
        elif holder:  # a field of its (shared) model config: the module gets its own view
            config = getattr(mods[module], holder)
            if not isinstance(config, ConfigView):
                config = ConfigView(config, {})
                setattr(mods[module], holder, config)
            config.overrides[field] = len(gids) - gone
        else:
            setattr(mods[module], attr, len(gids) - gone)
    for (module, den), (num, ratio) in graph.quotient_attributes.items():
        setattr(mods[module], den, getattr(mods[module], num) // ratio)


def _apply(graph: DependencyGraph, plan: PruningPlan, target: nn.Module, hard: bool) -> nn.Module:
    removed = _removed_positions(graph, plan)
    mods = dict(target.named_modules())
    # weights whose dim 0 is their output rows (not HF Conv1D's [in, out] input side)
    rows = {(m.module, m.param, m.dim) for g in graph.groups for m in g.members if m.role == "out"}
    # per-channel settings (a spiking neuron's threshold) keep their values in the oracle: a
    # removed channel's input is zero already, and a zero threshold or tau is not a setting;
    # the keep mask of a MaskedLayerNorm (an oracle pruned again) is zeroed: masks compose
    settings = {
        (m.module, m.param, m.dim)
        for g in graph.groups
        for m in g.members
        if m.role == "setting" and not isinstance(mods[m.module], MaskedLayerNorm)
    }
    if hard:
        _resize_attributes(graph, plan, mods)
    touched: set[str] = set()
    layer_masks: dict[str, torch.Tensor] = {}
    tied: dict[int, tuple[torch.Tensor, torch.Tensor, set[Any]]] = {}
    owners: dict[int, list[tuple[dict[str, Any], str, str]]] = {}
    if hard:  # every slot holding each tensor, so that tied parameters stay tied
        for mname, m in mods.items():
            for store in (m._parameters, m._buffers):
                for leaf, value in store.items():
                    if value is not None:
                        owners.setdefault(id(value), []).append((store, leaf, mname))
    # ids of tensors other slots may still hold once one slot's is replaced: tied ones and
    # the slices made of them; only these are kept in ``tied`` (any other is freed once its
    # slot holds the slice, so pruning in place needs about one layer's memory beyond the model)
    shared = {key for key, slots in owners.items() if len(slots) > 1}
    # keep masks by (size, removed positions, device): most members of a group share one
    masks: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor, bytes]] = {}
    for (module, param, dim), positions in removed.items():
        mod = mods[module]
        t = get_param(mod, "", param)
        size = t.shape[dim]
        mask_key = (size, positions.tobytes(), t.device)
        cached = masks.get(mask_key)
        if cached is None:
            keep_np = np.ones(size, dtype=bool)
            keep_np[positions] = False
            # kept indices: one index_select per tensor gives the values of boolean slicing
            kept_np = np.flatnonzero(keep_np)
            cached = masks[mask_key] = (
                torch.from_numpy(keep_np).to(t.device),
                torch.from_numpy(kept_np).to(t.device),
                keep_np.tobytes(),
            )
        keep, kept, keep_bytes = cached
        if hard:
            sig = (dim, keep_bytes)
            entry = tied.get(id(t))
            if entry is None:
                new = torch.index_select(t.detach(), dim, kept)
                _set_tensor(mod, "", param, new)
                if id(t) in shared:
                    new = get_param(mod, "", param)
                    tied[id(t)] = (t, new, {sig})
                    shared.add(id(new))
            else:  # a tied tensor (e.g. lm_head.weight is wte.weight): slice once, stay tied
                orig, cur, applied = entry
                if sig not in applied:
                    if cur.shape[dim] != size:
                        raise ValueError(
                            f"plan: tied parameter {module}.{param} is pruned twice along dim {dim}"
                        )
                    new_cur = _as_param(torch.index_select(cur.detach(), dim, kept), cur)
                    _retie(target, cur, new_cur)
                    shared.add(id(new_cur))
                    applied.add(sig)
                    cur = new_cur
                    tied[id(orig)] = (orig, cur, applied)
                _assign(mod, param, cur)
            # a bias created after tracing (e.g. by OBS compensation) follows its rows
            bias_name = param[: -len("weight")] + "bias" if param.endswith("weight") else ""
            follows = bias_name and dim == 0 and (module, param, 0) in rows
            bias = _bias_of(mod, bias_name) if follows else None
            if bias is not None and (module, bias_name, 0) not in removed and len(bias) == size:
                _set_tensor(mod, "", bias_name, torch.index_select(bias.detach(), 0, kept))
        elif "running_var" not in param and (module, param, dim) not in settings:
            idx: list[Any] = [slice(None)] * t.ndim
            idx[dim] = ~keep
            owner_name, _, leaf = param.rpartition(".")
            owner = mod.get_submodule(owner_name) if owner_name else mod
            # a divisor (x / gamma) gets 1: a removed channel stays 0, not 0 / 0 = NaN
            value = 1.0 if (module, param) in graph.divisors else 0.0
            with torch.no_grad():
                if parametrize.is_parametrized(owner, leaf):
                    _fill_weight_norm(owner, leaf, tuple(idx), value)
                else:
                    t[tuple(idx)] = value
        touched.add(module)
        if isinstance(mod, nn.LayerNorm) or is_last_axis_norm(mod) or _single_group(mod):
            layer_masks[module] = keep
    for g in graph.groups:  # norms without parameters: their sizes, or the oracle's mask
        gone = plan.removed.get(g.index)
        if gone is None or not g.bare_norms:
            continue
        for name, chans in g.bare_norms.items():
            keep = torch.from_numpy(~np.isin(chans, gone.cpu().numpy()))
            norm = mods[name]
            if hard and isinstance(norm, nn.GroupNorm):
                _resize_group_norm(norm, int(keep.sum()))
            elif hard:
                norm.normalized_shape = (int(keep.sum()),)
            elif not isinstance(norm, nn.GroupNorm) or _single_group(norm):
                m = g.members[0]  # (a removed group of a GroupNorm outputs zeros already)
                layer_masks[name] = keep.to(get_param(mods[m.module], "", m.param).device)
    for orig, cur, _ in tied.values():  # other owners of a pruned tied tensor follow it
        for store, leaf, name in owners.get(id(orig), []):
            if store[leaf] is orig:
                store[leaf] = cur
                touched.add(name)
    for name, keep_int in plan.attention.items():
        mha = mods[name]
        assert isinstance(mha, nn.MultiheadAttention)
        _prune_attention(mha, keep_int, hard)
    for module in touched:  # a cache of the unpruned (or unmasked) tensors would be read again
        drop_caches(mods[module])
    if hard:
        for module in touched:
            _fix_attributes(mods[module])
        for module in {m.rpartition(".")[0] for m in touched if m}:
            _fix_hf_attention(mods[module])
            _fix_query_groups(mods[module], module in graph.one_kv_head)
        for mod in target.modules():  # checked against its inputs' width in forward
            layers = getattr(getattr(mod, "encoder", None), "layers", None)
            if isinstance(mod, nn.Transformer) and layers is not None and len(layers):
                mod.d_model = int(layers[0].self_attn.embed_dim)
    else:
        for name, keep in layer_masks.items():
            ln = mods[name]
            parent, _, leaf = name.rpartition(".")
            if (parent, "keep", 0) in removed and isinstance(mods[parent], MaskedLayerNorm):
                continue  # masked already (an oracle): its keep mask was zeroed with the rest
            masked = (
                MaskedLayerNorm(ln, keep)
                if isinstance(ln, nn.LayerNorm) or _single_group(ln)
                else MaskedNorm(ln, keep)
            )
            setattr(mods[parent], leaf, masked)
        for mod in target.modules():  # torch's fused inference path reads the norms' weights
            if isinstance(mod, nn.TransformerEncoderLayer) and isinstance(
                mod.norm1, MaskedLayerNorm
            ):
                mod.activation_relu_or_gelu = 0  # makes the layer ineligible: its modules run
    return target


def _single_group(module: nn.Module) -> bool:
    """A GroupNorm with one group: a layer norm over ``[C, ...]``, pruned channel by channel."""
    return isinstance(module, nn.GroupNorm) and module.num_groups == 1


def _float_keep(keep: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """A copy of the ``[C]`` mask ``keep`` (bool, or 0/1) as 0/1 in ``module``'s floating dtype
    (its first floating parameter's, else the default dtype): the masked norms' ``keep``
    buffer, which weight averaging over buffers (``AveragedModel(use_buffers=True)``, EMA)
    interpolates, so it cannot be bool (an average of equal 0/1 masks is the same mask)."""
    params = (p for p in module.parameters() if p.is_floating_point())
    dtype = next(params, torch.empty(0)).dtype
    return (keep.detach() != 0).to(dtype)


def _check_keep(keep: torch.Tensor, *widths: int) -> None:
    """Raise unless ``keep`` is a ``[C]`` mask with ``C`` one of the norm's ``widths`` (any
    ``C`` when none is known)."""
    if keep.ndim != 1 or (widths and keep.shape[0] not in widths):
        want = " or ".join(str(w) for w in sorted(widths)) or "C"
        raise ValueError(
            f"keep: expected a [{want}] mask (one entry per channel of the norm), got shape "
            f"{list(keep.shape)}"
        )


class _NormWrapper(nn.Module):
    """A module wrapping a normalization layer ``inner`` that reads as it: the wrapped layer's
    attributes (``weight``, ``bias``, ``eps``...) for code that reads them (Mamba's
    ``self.norm(x.to(self.norm.weight.dtype))``)."""

    inner: nn.Module

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":
                raise
            return getattr(self.inner, name)


class MaskedLayerNorm(_NormWrapper):
    """An ``nn.LayerNorm`` (or a subclass with its own ``forward``, such as torchvision's
    channels-first ``LayerNorm2d``), or a single-group ``nn.GroupNorm`` (a layer norm over
    ``[C, ...]``, such as timm's ``GroupNorm1``), whose statistics use only the kept channels
    (oracle use).

    The layer's own ``forward`` runs unchanged; its ``F.layer_norm`` (``F.group_norm``) call is
    replaced by one that normalizes over the kept channels of the last axis (of axis 1, with
    every position) and outputs 0 on the others. In a
    :class:`DependencyGraph` of a model holding one (an oracle, traced again), ``keep`` is a
    member of its channels' group: :func:`prune` slices it with them and :func:`soft_prune`
    zeroes their entries (one mask, the product of both plans).

    Args:
        layernorm: the original ``nn.LayerNorm`` (1-D normalized shape, affine or not) or
            ``nn.GroupNorm`` with one group.
        keep: ``[C]`` bool (or 0/1) mask of kept channels; stored as the buffer ``keep``, a
            0/1 mask in the layer's floating dtype (weight averaging needs one).
    """

    def __init__(self, layernorm: nn.LayerNorm | nn.GroupNorm, keep: torch.Tensor) -> None:
        if not isinstance(layernorm, nn.LayerNorm) and not _single_group(layernorm):
            got = type(layernorm).__name__
            if isinstance(layernorm, nn.GroupNorm):
                got += f" with {layernorm.num_groups} groups"
            raise TypeError(
                f"layernorm: expected an nn.LayerNorm or an nn.GroupNorm with one group, got {got}"
            )
        if not isinstance(keep, torch.Tensor):
            raise TypeError(f"keep: expected a [C] bool tensor, got {type(keep).__name__}")
        if isinstance(layernorm, nn.LayerNorm):
            _check_keep(keep, layernorm.normalized_shape[-1])
        else:
            _check_keep(keep, int(layernorm.num_channels))
        super().__init__()
        self.inner = layernorm
        self.register_buffer("keep", _float_keep(keep, layernorm))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The layer's own forward (``[..., C]`` -> ``[..., C]`` for ``nn.LayerNorm``,
        ``[B, C, ...]`` -> ``[B, C, ...]`` for ``nn.GroupNorm``)."""
        with _KeptChannelLayerNorm(self.keep):
            return self.inner(*args, **kwargs)


class _KeptChannelLayerNorm(TorchFunctionMode):
    """Replaces ``F.layer_norm(x, (C,), weight, bias, eps)`` and single-group
    ``F.group_norm(x, 1, weight, bias, eps)`` by their statistics over the kept channels."""

    def __init__(self, keep: Any) -> None:
        super().__init__()
        self.keep = keep

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.layer_norm:
            names = ("input", "normalized_shape", "weight", "bias", "eps")
        elif func is F.group_norm:
            names = ("input", "num_groups", "weight", "bias", "eps")
        else:
            return func(*args, **kwargs)
        a = {"weight": None, "bias": None, "eps": 1e-5, **dict(zip(names, args)), **kwargs}
        if a.get("num_groups", 1) != 1:
            return func(*args, **kwargs)
        x = a["input"]
        dims: tuple[int, ...]
        if func is F.layer_norm:  # channels on the last axis
            k, dims, positions = self.keep.to(x.dtype), (-1,), 1
        else:  # [B, C, ...]: channels on axis 1, statistics over every position too
            k = self.keep.to(x.dtype).view(-1, *[1] * (x.ndim - 2))
            dims, positions = tuple(range(1, x.ndim)), math.prod(x.shape[2:])
        n = k.sum() * positions
        mean = (x * k).sum(dims, keepdim=True) / n
        var = (((x - mean) * k) ** 2).sum(dims, keepdim=True) / n
        y = (x - mean) / torch.sqrt(var + a["eps"]) * k
        if a["weight"] is not None:
            y = y * a["weight"].view(k.shape)
        if a["bias"] is not None:
            y = y + a["bias"].view(k.shape)
        return y


class MaskedNorm(_NormWrapper):
    """Any last-axis normalization (:func:`~.tracing.is_last_axis_norm`: ``torch.nn.RMSNorm``,
    Hugging Face's RMSNorms and LayerNorms written out in ``forward``; OLMo's parameter-free
    ``F.layer_norm`` over its ``normalized_shape``) with statistics over the kept channels
    only (oracle use): the layer runs on ``x[..., keep]`` with its per-channel parameters
    (and a one-axis ``normalized_shape``) restricted to the kept channels; removed channels
    output 0.

    Args:
        norm: the original layer; its 1-D parameters are ``[C]`` per-channel.
        keep: ``[C]`` bool (or 0/1) mask of kept channels; stored as the buffer ``keep``, a
            0/1 mask in the layer's floating dtype (weight averaging needs one).
    """

    def __init__(self, norm: nn.Module, keep: torch.Tensor) -> None:
        if not isinstance(norm, nn.Module):
            raise TypeError(f"norm: expected an nn.Module, got {type(norm).__name__}")
        if not isinstance(keep, torch.Tensor):
            raise TypeError(f"keep: expected a [C] bool tensor, got {type(keep).__name__}")
        shape = getattr(norm, "normalized_shape", None)
        widths = {p.shape[0] for p in norm.parameters(recurse=False) if p.ndim == 1}
        if isinstance(shape, tuple) and len(shape) == 1:
            widths.add(shape[0])
        _check_keep(keep, *widths)
        super().__init__()
        self.inner = copy.deepcopy(norm)
        mask = keep.detach() != 0
        with torch.no_grad():
            for pname, p in list(self.inner.named_parameters(recurse=False)):
                if p.ndim == 1 and p.shape[0] == keep.numel():
                    self.inner._parameters[pname] = nn.Parameter(p.detach()[mask].clone())
        shape = getattr(self.inner, "normalized_shape", None)
        if isinstance(shape, tuple) and len(shape) == 1:  # RMSNorm, OLMo's layer norm read it
            setattr(self.inner, "normalized_shape", (int(mask.sum()),))  # noqa: B010
        self.register_buffer("keep", _float_keep(mask, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[..., C]`` -> ``[..., C]``."""
        keep: Any = self.keep != 0  # the 0/1 buffer as an index mask
        y = torch.zeros_like(x)
        y[..., keep] = self.inner(x[..., keep]).to(x.dtype)
        return y


def prune(
    graph: DependencyGraph,
    plan: PruningPlan,
    *,
    inplace: bool = False,
    target: nn.Module | None = None,
) -> nn.Module:
    """Physically remove the planned channels: a smaller model of the same class.

    Args:
        graph: the :class:`DependencyGraph` built on the model.
        plan: a :class:`PruningPlan` for that graph.
        inplace: modify ``graph.model`` itself instead of a deep copy.
        target: prune this module in place instead: a model of the same structure as
            ``graph.model`` whose weights may differ (e.g. an OBS-compensated copy); it
            needs every submodule, parameter and buffer of ``graph.model``, with the same
            shapes (else a ValueError, before anything is modified).

    Returns:
        the pruned module (a copy unless ``inplace``). On any validation error the original
        model is left unchanged; so it is when ``graph.model`` changed since the graph was
        built (a ValueError: after ``inplace=True``, build a new graph to prune again). A
        Hugging Face model's ``config`` is rewritten to the new sizes when one config can
        describe them (:func:`~.hf_config.sync_hf_config`, checked on the graph's example
        inputs; otherwise a warning says why ``from_pretrained`` cannot rebuild it).
    """
    _validate_plan(graph, plan)
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace: expected a bool, got {type(inplace).__name__} ({inplace!r:.80})")
    if target is not None:
        _check_target(graph, target)
        model = target
    else:
        model = graph.model if inplace else copy.deepcopy(graph.model)
    pruned = _apply(graph, plan, model, hard=True)
    if is_hf_model(pruned):
        names = graph.input_names
        inputs = graph.example_inputs if names is None else dict(zip(names, graph.example_inputs))
        sync_hf_config(pruned, inputs)
    return pruned


def soft_prune(graph: DependencyGraph, plan: PruningPlan) -> nn.Module:
    """The correctness oracle: a copy of the original with the planned channels zeroed.

    Producer rows and biases, consumer columns, BatchNorm scale and shift, embedding columns
    and the attention dimensions of removed heads are zeroed, except parameters that
    ``forward`` divides channels by (``x / gamma``, :attr:`DependencyGraph.divisors`), which
    are set to 1 there (0 / 0 would be NaN); LayerNorms (and Hugging Face RMSNorms,
    :class:`MaskedNorm`) whose channels lose members normalize over the kept channels only (a
    :class:`MaskedLayerNorm` of an oracle soft-pruned again loses them from its mask). The
    hard-pruned model of the same plan must compute the same outputs.
    """
    _validate_plan(graph, plan)
    return _apply(graph, plan, copy.deepcopy(graph.model), hard=False)


def prune_model(
    model: nn.Module,
    example_inputs: Any,
    ratio: float = 0.5,
    importance: GroupImportance | str = "l2",
    *,
    head_dims: bool = False,
    gqa: str = "groups",
    **kwargs: Any,
) -> nn.Module:
    """One call: trace ``model``, plan with ``importance`` at ``ratio`` and return a pruned copy.

    ``head_dims`` prunes dimensions within attention heads instead of whole heads, ``gqa=
    "queries"`` query heads within each key/value head's group (see
    :class:`DependencyGraph`). Extra keyword arguments go to :func:`plan_pruning` (scope,
    layer_ratios, ignored_layers, round_to, max_ratio).
    """
    graph = DependencyGraph(model, example_inputs, head_dims=head_dims, gqa=gqa)
    return prune(graph, plan_pruning(graph, importance, ratio, **kwargs))
