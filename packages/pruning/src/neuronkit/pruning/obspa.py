"""OBSPA: Optimal Brain SPA, structured pruning after training without fine-tuning or data.

Wang et al. (2024), "Structurally Prune Anything" (SPA), section "OBSPA". OBSPA lifts the
Optimal Brain Surgeon (Hassibi & Stork; layer-wise OBC of Frantar & Alistarh) to coupled
channel groups: removing channel ``j`` of a group deletes the producer rows outright, and for
every consumer layer (a Conv/Linear reading the channel) it zeroes the columns ``Q_j`` of its
weight ``W [out, D]`` while the remaining columns absorb the error of the layer-wise
reconstruction ``||W x - W' x||^2`` under the input second moment ``H = E[x x^T]``:

    saliency_j = sum_consumers tr( W[:, Q] (H^-1[Q, Q])^-1 W[:, Q]^T )
    W <- W - W[:, Q] (H^-1[Q, Q])^-1 H^-1[Q, :]
    H^-1 <- H^-1 - H^-1[:, Q] (H^-1[Q, Q])^-1 H^-1[Q, :]

Channels are removed greedily, lowest saliency first, with the inverse updated after each
removal. Inputs are augmented with a constant 1, so compensation reaches the bias (a bias is
created where the consumer had none). An ``nn.MultiheadAttention`` reading the channels is a
consumer through its fused q/k/v projection: its query, key and value rows each compensate
under their own input's second moment (one moment in self-attention), and the channel count
removed from its embedding stays a multiple of the head count. A LayerNorm between the group
and a consumer is treated as fixed (its statistics over the kept channels are not modelled).

Data-free Hessian proxy (our reading of "no calibration data"; documented as such): the
second moments are estimated from *synthetic* activations: Gaussian noise enters the model and
every BatchNorm emits samples ``beta + gamma * eps`` of the distribution its learned statistics
describe (eps ~ N(0, 1) per element), which then flow through the real nonlinearities,
pooling, residuals and concatenations to every consumer. With ``inputs`` given, the same
machinery uses calibration data instead.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from neuronkit.common import check_finite, check_number, named_input_dtypes

from ._inputs import named_values
from .graph import DependencyGraph, Group, GroupMember
from .importance import GroupImportance, _check_materialized
from .prune import (
    PruningPlan,
    _check_layer_ratios,
    _check_positive_int,
    _check_ratio,
    _check_scores,
    _group_ratio,
    _keep_count,
    _names_touch,
    _set_tensor,
    _take,
    _tied_keep,
    _unit,
    _validate_names,
    prune,
)
from .tracing import call_model, leading_dims, split_inputs

__all__ = ["OBSImportance", "layer_hessians", "obspa_prune"]

_CONSUMERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.MultiheadAttention)
_MHA_INPUTS = ("query", "key", "value")


def _consumer_members(graph: DependencyGraph, group: Group) -> list[GroupMember]:
    """Members reading the group's channels through a weight OBS can compensate: Conv/Linear
    input columns and the input columns of an attention's fused q/k/v projection."""
    out = []
    for m in group.members:
        if m.role != "in" or m.param not in ("weight", "in_proj_weight"):
            continue
        mod = graph.model.get_submodule(m.module)
        if isinstance(mod, _CONSUMERS) and getattr(mod, "groups", 1) == 1:
            out.append(m)
    return out


def _unfold(mod: Any, x: torch.Tensor) -> torch.Tensor:
    """Layer input -> the columns of the layer's im2col matrix, ``[B, D, L]`` (``D =
    weight[0].numel()``, ``B L`` columns): ``nn.functional.unfold``'s own layout for a conv, a
    ``[1, D, N]`` (transposed) view of the ``N`` input rows for a Linear / attention."""
    if isinstance(mod, (nn.Linear, nn.MultiheadAttention)):
        return x.reshape(-1, x.shape[-1]).T.unsqueeze(0)
    if isinstance(mod.padding, str):
        raise ValueError(f"{type(mod).__name__}: string padding is not supported by OBSPA")
    k: Any = mod.kernel_size
    s: Any = mod.stride
    p: Any = mod.padding
    d: Any = mod.dilation
    spatial = 1 if isinstance(mod, nn.Conv1d) else 2
    x = x.reshape(-1, *x.shape[-1 - spatial :])  # leading axes (time: [T, B, C, ...]) as batch
    if isinstance(mod, nn.Conv1d):
        x = x.unsqueeze(-1)
        k, s, p, d = (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1)
    return nn.functional.unfold(x, k, dilation=d, padding=p, stride=s)  # [B, D, L]


_GRAM_BLOCK = 128  # rows per block of the upper block triangle of the Gram matrix
_GRAM_COLUMNS = 256  # columns per product on the CPU: whole images, at least this many


def _second_moment(cols: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """``sum_n x~_n x~_n^T`` (``x~ = [x; 1]``) over the columns ``x_n`` of ``cols [B, D, L]``:
    ``[D + 1, D + 1]`` in ``cols``' dtype, exactly symmetric.

    The ``[D, D]`` Gram accumulates over chunks of whole images of at least ``columns`` columns
    (default: ``_GRAM_COLUMNS`` on the CPU, where one image of ``L >= columns`` is a view of
    unfold's layout, not a transposed copy of the im2col matrix; all images at once on other
    devices), over its upper block triangle only (about half the flops of the full product),
    then is mirrored. The last row / column hold the column sums and the count ``B L``; no
    column of ones is appended.
    """
    b, d, n = cols.shape
    if columns is None:
        columns = _GRAM_COLUMNS if cols.device.type == "cpu" else b * n
    step = max(1, -(-columns // max(n, 1)))  # images per product
    gram = cols.new_zeros(d, d)
    for j in range(0, b, step):
        a = cols[j : j + step].transpose(0, 1).reshape(d, -1)  # [D, images * L]
        for i in range(0, d, _GRAM_BLOCK):
            gram[i : i + _GRAM_BLOCK, i:].addmm_(a[i : i + _GRAM_BLOCK], a[i:].T)
    gram = gram.triu()
    out = cols.new_empty(d + 1, d + 1)
    out[:d, :d] = gram + gram.triu(1).T
    total = cols.sum(dim=(0, 2))
    out[:d, d] = total
    out[d, :d] = total
    out[d, d] = b * n
    return out


def layer_hessians(
    graph: DependencyGraph,
    layers: Iterable[str] | None = None,
    *,
    inputs: Any = None,
    samples: int = 64,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Input second moments ``H = E[x~ x~^T]`` (``x~ = [x; 1]``) of Conv/Linear layers (and
    of the query, key and value inputs of ``nn.MultiheadAttention`` layers).

    Args:
        graph: the model's :class:`DependencyGraph`.
        layers: module names (default: every consumer of a prunable group).
        inputs: a non-empty batch of calibration inputs (tensor, tuple or dict of keyword
            inputs) in the model's dtype; None = data-free synthetic activations (Gaussian
            input, every BatchNorm emitting ``beta + gamma * eps``).
        samples: batch size of the synthetic input.
        seed: seed of the synthetic draw.

    Returns:
        name -> ``[D + 1, D + 1]`` float64 matrix (D = inputs per output unit of the layer);
        for an ``nn.MultiheadAttention``, ``[3, D + 1, D + 1]``: the query, key and value
        inputs' moments (equal in self-attention).
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"graph: expected a DependencyGraph, got {type(graph).__name__}")
    samples = _check_positive_int("samples", samples)
    if layers is None:
        names = {m.module for g in graph.prunable_groups() for m in _consumer_members(graph, g)}
    else:
        names = set(_validate_names(graph, layers, "layers"))
    # the batch axis of the inputs: 1 for time-major models ([T, B, ...])
    batch = max((leading_dims(m) for m in graph.model.modules()), default=0)
    if inputs is not None:
        for x in split_inputs(inputs)[0]:
            if torch.is_tensor(x):
                check_finite("inputs", x)
            if torch.is_tensor(x) and x.ndim > batch and x.shape[batch] == 0:
                raise ValueError(
                    f"inputs: expected a non-empty calibration batch, got a tensor of shape "
                    f"{tuple(x.shape)} (0 samples on axis {batch})"
                )
    model = copy.deepcopy(graph.model).eval()
    gen = torch.Generator().manual_seed(int(seed))
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = []

    def moment(mod: Any, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        cols = _unfold(mod, x.detach().double())  # [B, D, L]
        return _second_moment(cols), cols.shape[0] * cols.shape[2]

    def add(name: str, value: torch.Tensor, n: Any) -> None:
        prev = sums.get(name)
        sums[name] = value if prev is None else prev + value
        counts[name] = counts.get(name, 0) + n

    def record(name: str, mod: nn.Module) -> Any:
        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            add(name, *moment(mod, args[0]))

        def attention_hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict) -> None:
            given = [args[i] if len(args) > i else kwargs[k] for i, k in enumerate(_MHA_INPUTS)]
            moments: list[tuple[torch.Tensor, int]] = []
            for i, x in enumerate(given):  # self-attention: one moment for q, k and v
                same = next((j for j in range(i) if given[j] is x), None)
                moments.append(moments[same] if same is not None else moment(mod, x))
            rows = torch.tensor([n for _, n in moments], dtype=torch.float64)  # per input
            add(name, torch.stack([m for m, _ in moments]), rows[:, None, None])

        if isinstance(mod, nn.MultiheadAttention):
            return mod.register_forward_pre_hook(attention_hook, with_kwargs=True)
        return mod.register_forward_pre_hook(hook)

    for name, mod in model.named_modules():
        if name in names:
            if not isinstance(mod, _CONSUMERS):
                raise ValueError(f"layers: {name!r} is a {type(mod).__name__}, not Conv/Linear")
            if isinstance(mod, nn.MultiheadAttention) and not mod._qkv_same_embed_dim:
                raise ValueError(
                    f"layers: {name!r} projects keys / values of other widths (kdim / vdim): "
                    "not an OBS consumer"
                )
            handles.append(record(name, mod))
        if inputs is None and isinstance(mod, nn.modules.batchnorm._BatchNorm):

            def synth(m: Any, _args: Any, out: torch.Tensor) -> torch.Tensor:
                # drawn on the CPU generator, then moved: the same draws on every device
                eps = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
                axis = 1 + leading_dims(m)  # channels ([T, B, C, ...] for a time-major norm)
                ones = torch.ones(out.shape[axis], dtype=out.dtype, device=out.device)
                w = m.weight if m.weight is not None else ones
                b = m.bias if m.bias is not None else torch.zeros_like(ones)
                shape = [1] * out.ndim
                shape[axis] = -1
                return b.view(shape) + w.view(shape) * eps

            handles.append(mod.register_forward_hook(synth))
    try:
        with torch.no_grad():
            if inputs is None:
                xs = []
                for x in graph.example_inputs:
                    if not torch.is_tensor(x) or not x.is_floating_point():
                        raise ValueError(
                            "example_inputs: the data-free Hessian needs floating-point inputs; "
                            "pass calibration inputs"
                        )
                    shape = [*x.shape[:batch], samples, *x.shape[batch + 1 :]]
                    xs.append(torch.randn(shape, generator=gen, dtype=x.dtype).to(x.device))
                call_model(model, tuple(xs), graph.input_names)
            else:
                values, input_names = split_inputs(inputs)
                with named_input_dtypes(model, *named_values("inputs", values, input_names)):
                    call_model(model, values, input_names)
    finally:
        for h in handles:
            h.remove()
    for n, rows in counts.items():
        if torch.as_tensor(rows).min() == 0:
            raise ValueError(f"inputs: layer {n!r} received no input rows (an empty batch)")
    return {n: sums[n] / counts[n] for n in sums}


def _columns(mod: Any, member: GroupMember) -> list[torch.Tensor]:
    per = int(mod.weight[0, 0].numel()) if isinstance(mod, (nn.Conv1d, nn.Conv2d)) else 1
    out = []
    for pos in member.positions:
        cols = [p * per + i for p in pos for i in range(per)]
        out.append(torch.tensor(cols, dtype=torch.long))
    return out


class _Consumer:
    """A consumer weight ``[out, D+1]`` (bias last) and its damped inverse Hessian."""

    def __init__(self, w: torch.Tensor, hessian: torch.Tensor, damp: float, name: str = "") -> None:
        self.w = w
        h = hessian.clone()
        lam = damp * float(torch.diagonal(h).mean())
        h += lam * torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
        # through a Cholesky factor (the cost of one inverse): a singular or numerically
        # rank-deficient H (fewer calibration samples than inputs, a dead input, with too
        # little damping) has a zero, negative or ~eps-sized pivot and would give arbitrary,
        # even negative, saliencies and compensations (a NaN or inf H, from NaN weights
        # upstream, goes on to the finiteness checks of the scores, which name the group)
        if not bool(torch.isfinite(h).all()):
            self.hinv = torch.linalg.inv(h)
            return
        factor, info = torch.linalg.cholesky_ex(h.double())
        pivots = torch.diagonal(factor) ** 2
        tiny = h.shape[0] * torch.finfo(torch.float64).eps * float(pivots.max())
        if int(info) != 0 or not float(pivots.min()) > tiny:
            raise ValueError(
                f"hessians[{name!r}]: the damped Hessian ({h.shape[0]} x {h.shape[0]}) is "
                f"singular or not positive definite with damp={damp:g} (fewer calibration "
                "samples than the layer's inputs, or an input that is always zero?); use a "
                "larger damp (e.g. 0.01) or more calibration samples"
            )
        self.hinv = torch.cholesky_inverse(factor).to(h.dtype)

    def saliency(self, cols: list[torch.Tensor]) -> torch.Tensor:
        if len({c.numel() for c in cols}) == 1:
            idx = torch.stack(cols)  # [n, q]
            block = self.hinv[idx[:, :, None], idx[:, None, :]]  # [n, q, q]
            wq = self.w[:, idx].permute(1, 0, 2)  # [n, out, q]
            sol = torch.linalg.solve(block, wq.transpose(1, 2))  # [n, q, out]
            return (wq * sol.transpose(1, 2)).sum((1, 2))
        return torch.stack([self._one(c) for c in cols])

    def _one(self, q: torch.Tensor) -> torch.Tensor:
        block = self.hinv[q][:, q]
        wq = self.w[:, q]
        return (wq * torch.linalg.solve(block, wq.T).T).sum()

    def remove(self, q: torch.Tensor) -> None:
        block = self.hinv[q][:, q]
        rows = self.hinv[q]  # [q, D+1]
        coef = torch.linalg.solve(block, rows)  # [q, D+1]
        self.w -= self.w[:, q] @ coef
        self.hinv -= self.hinv[:, q] @ coef
        self.w[:, q] = 0.0


def _weights(mod: Any) -> tuple[str, str, torch.Tensor]:
    """The consumer's weight and bias names and its ``[out, D+1]`` float64 matrix."""
    names = ("in_proj_weight", "in_proj_bias")
    weight_name, bias_name = names if isinstance(mod, nn.MultiheadAttention) else ("weight", "bias")
    weight, bias = getattr(mod, weight_name), getattr(mod, bias_name)
    w = weight.detach().double().reshape(weight.shape[0], -1)
    b = bias.detach().double() if bias is not None else w.new_zeros(w.shape[0])
    return weight_name, bias_name, torch.cat([w, b[:, None]], 1)


class _Layer:
    """A consumer layer's OBS state: one :class:`_Consumer`, or three for an attention's
    query, key and value rows (each with its input's Hessian)."""

    def __init__(self, name: str, mod: Any, hessian: torch.Tensor, damp: float) -> None:
        self.weight_name, self.bias_name, w = _weights(mod)
        d = w.shape[1]
        parts = 3 if isinstance(mod, nn.MultiheadAttention) else 1
        expected = (parts, d, d) if parts > 1 else (d, d)
        if tuple(hessian.shape) != expected:
            raise ValueError(
                f"hessians[{name!r}]: a layer with {d - 1} inputs (+ bias) needs a "
                f"{list(expected)} Hessian, got {list(hessian.shape)} (Hessians of another model "
                "or of the model before pruning?)"
            )
        rows = w.shape[0] // parts
        hs = hessian if parts > 1 else hessian[None]
        self.parts = [
            _Consumer(w[i * rows : (i + 1) * rows].clone(), hs[i], damp, name) for i in range(parts)
        ]

    def saliency(self, cols: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([c.saliency(cols) for c in self.parts]).sum(0)

    def remove(self, q: torch.Tensor) -> None:
        for c in self.parts:
            c.remove(q)

    def write(self, mod: Any) -> None:
        w = torch.cat([c.w for c in self.parts])
        weight = getattr(mod, self.weight_name)
        b = w[:, -1].to(weight.dtype)
        _write_tensor(mod, self.weight_name, w[:, :-1].reshape(weight.shape).to(weight.dtype))
        if getattr(mod, self.bias_name) is None:
            setattr(mod, self.bias_name, nn.Parameter(b.clone()))
            if isinstance(mod, nn.MultiheadAttention) and mod.out_proj.bias is None:
                # torch's attention takes both biases or neither: a zero output bias
                proj = mod.out_proj
                proj.bias = nn.Parameter(torch.zeros_like(proj.weight[:, 0]))
        else:
            _write_tensor(mod, self.bias_name, b)


def _write_tensor(mod: nn.Module, name: str, value: torch.Tensor) -> None:
    """Set ``mod.<name>`` to ``value`` in place; a parametrized tensor (``weight_norm``) is a
    computed one that a copy into would not change: it is assigned (its parametrization's
    ``right_inverse`` sets the originals, e.g. ``g`` and ``v``)."""
    if parametrize.is_parametrized(mod, name):
        _set_tensor(mod, "", name, value)
        return
    with torch.no_grad():
        getattr(mod, name).copy_(value)


def _check_hessians(hessians: Any, graph: DependencyGraph | None = None) -> dict[str, torch.Tensor]:
    """``hessians`` as a dict of finite tensors keyed by layer names (of ``graph.model``)."""
    if not isinstance(hessians, Mapping):
        raise TypeError(
            f"hessians: expected a mapping of layer name -> Hessian tensor (layer_hessians), "
            f"got {type(hessians).__name__}"
        )
    for name, h in hessians.items():
        if not isinstance(h, torch.Tensor):
            raise TypeError(f"hessians[{name!r}]: expected a tensor, got {type(h).__name__}")
        check_finite(f"hessians[{name!r}]", h)
        if graph is not None and name not in graph.module_names:
            raise ValueError(
                f"hessians: layer {name!r} does not exist in {type(graph.model).__name__} "
                f"(Hessians of another model?)"
            )
    return dict(hessians)


class OBSImportance(GroupImportance):
    """OBS saliency of each channel (no weight update): sum over consumers of
    ``tr(W[:, Q] (H^-1[Q, Q])^-1 W[:, Q]^T)``; lower = cheaper to remove.

    Args:
        hessians: from :func:`layer_hessians` (computed data-free when None).
        damp: relative diagonal damping of H, a finite number >= 0.
    """

    def __init__(self, hessians: Mapping[str, torch.Tensor] | None = None, damp: float = 0.01):
        check_number("damp", damp, ge=0)
        super().__init__(reduction="sum", normalize="mean", roles=("in",))
        self.hessians = _check_hessians(hessians) if hessians is not None else None
        self.damp = float(damp)
        self._graph_hessians: dict[str, torch.Tensor] = {}

    def prepare(self, graph: DependencyGraph) -> None:
        _check_materialized(graph, type(self).__name__)
        if self.hessians is None:  # data-free Hessians belong to this graph: recomputed per graph
            self._graph_hessians = layer_hessians(graph)

    def group_scores(self, graph: DependencyGraph, group: Group) -> torch.Tensor:
        hessians = self.hessians if self.hessians is not None else self._graph_hessians
        total = torch.zeros(group.size, dtype=torch.float64)
        for m in _consumer_members(graph, group):
            if m.module not in hessians:
                continue
            mod: Any = graph.model.get_submodule(m.module)
            layer = _Layer(m.module, mod, hessians[m.module], self.damp)
            total += layer.saliency(_columns(mod, m)).cpu()  # scores live on the CPU
        if self.normalize is None or not bool(total.any()):
            return total
        fns: dict[str, Any] = {"mean": total.mean, "max": total.max, "sum": total.sum}
        denom = fns[self.normalize]()
        return total / denom if bool(denom > 0) else total  # no floor: tiny groups stay 1


def obspa_prune(
    graph: DependencyGraph,
    ratio: float,
    *,
    hessians: Mapping[str, torch.Tensor] | None = None,
    inputs: Any = None,
    samples: int = 64,
    seed: int = 0,
    damp: float = 0.01,
    layer_ratios: Mapping[str, float] | None = None,
    ignored_layers: Iterable[str] = (),
    round_to: int = 1,
) -> tuple[nn.Module, PruningPlan]:
    """Prune ``graph.model`` with OBSPA: greedy OBS channel removal with compensation.

    Args:
        graph: the model's :class:`DependencyGraph` (the model is not modified).
        ratio: fraction of channels removed from every prunable group, in [0, 1).
        hessians: precomputed :func:`layer_hessians`; else computed here (data-free unless
            ``inputs`` are given).
        inputs: optional calibration inputs, a non-empty batch (None = no data).
        samples, seed: size and seed of the synthetic activations.
        damp: relative diagonal damping of each Hessian, a finite number > 0.
        layer_ratios, ignored_layers, round_to: as in :func:`plan_pruning`.

    Returns:
        ``(pruned model, plan)``; the pruned model is a smaller copy whose remaining consumer
        weights (and biases) carry the OBS compensation.
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"graph: expected a DependencyGraph, got {type(graph).__name__}")
    ratio = _check_ratio("ratio", ratio)
    check_number("damp", damp, gt=0)
    ignored = set(_validate_names(graph, ignored_layers, "ignored_layers"))
    layer_ratios = _check_layer_ratios(graph, layer_ratios)
    round_to = _check_positive_int("round_to", round_to)
    _check_materialized(graph, "obspa_prune")
    if hessians is None:
        hessians = layer_hessians(graph, inputs=inputs, samples=samples, seed=seed)
    else:
        hessians = _check_hessians(hessians, graph)
    target = copy.deepcopy(graph.model)
    state: dict[str, _Layer] = {}
    plan = PruningPlan()
    fallback: Any = None
    groups = [g for g in graph.prunable_groups() if not _names_touch(g, ignored)]
    keep = {
        g.index: _keep_count(g.size, _group_ratio(g, ratio, layer_ratios), _unit(g, round_to))
        for g in groups  # as plan_pruning: containers and norms count too
    }
    keep = _tied_keep(graph, keep, round_to)
    for g in groups:
        n = g.size - keep[g.index]
        if n <= 0:
            continue
        members = [m for m in _consumer_members(graph, g) if m.module in hessians]
        if not members:  # no OBS consumer: magnitude order, no compensation
            from .importance import MagnitudeImportance

            fallback = fallback or MagnitudeImportance(p=2)
            scores = fallback.group_scores(graph, g)
            _check_scores(f"importance scores of group {g.name!r}", scores)
            _take(plan, g, scores, n)
            continue
        cols = []
        for m in members:
            if m.module not in state:
                mod = target.get_submodule(m.module)
                state[m.module] = _Layer(m.module, mod, hessians[m.module], float(damp))
            cols.append(_columns(target.get_submodule(m.module), m))
        alive = list(range(g.size))
        removed: list[int] = []
        what = f"OBS saliencies of group {g.name!r} (layers {[m.module for m in members]})"
        # gqa="queries": as many query heads from each key/value head (else one segment)
        segments = np.zeros(g.size, dtype=np.int64) if g.segments is None else g.segments
        quota = np.full(segments.max() + 1, n // (segments.max() + 1))
        for _ in range(n):
            sal = torch.zeros(len(alive), dtype=torch.float64)
            for m, c in zip(members, cols, strict=True):
                sal += state[m.module].saliency([c[j] for j in alive]).cpu()
            _check_scores(what, sal)
            spent = torch.from_numpy(quota[segments[alive]] == 0)
            j = alive.pop(int(torch.argmin(sal.masked_fill(spent, math.inf))))
            quota[segments[j]] -= 1
            removed.append(j)
            for m, c in zip(members, cols, strict=True):
                state[m.module].remove(c[j])
        plan.removed[g.index] = torch.tensor(sorted(removed), dtype=torch.long)
    for name, layer in state.items():
        layer.write(target.get_submodule(name))
    from .prune import _plan_attention

    _plan_attention(graph, plan)
    return prune(graph, plan, target=target), plan
