"""Dependency graph on functional and transformer-style code in plain models: scaled
dot-product attention (grouped-query too), per-head tables read by an index, padding,
``where``, ``unsqueeze``, modules built inside ``forward``, tensor factories sized from the
input, keyword inputs, layer subclasses, sizes a ``forward`` writes as constants and sizes it
reads from module attributes (which follow the pruning when read nowhere else).

Each prunable case is checked against the soft-pruning oracle (the pruned model computes what
the original computes with the removed channels zeroed), and the check is not vacuous (the
oracle differs from the original); each frozen case names its reason.
"""

import functools
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    MagnitudeImportance,
    SNIPImportance,
    SynFlowImportance,
    TaylorImportance,
    UntraceableModelError,
    count_macs,
    obspa_prune,
    plan_from_masks,
    plan_pruning,
    prune,
    soft_prune,
)


def _run(model: nn.Module, inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _check_oracle(model: nn.Module, inputs: Any, ratio: float = 0.5) -> DependencyGraph:
    graph = DependencyGraph(model, inputs)
    plan = plan_pruning(graph, "l2", ratio)
    assert plan.num_removed() > 0
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    y_hard, y_soft = _run(hard, inputs), _run(soft, inputs)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(y_soft, _run(model, inputs), atol=1e-4)  # not vacuous
    assert sum(p.numel() for p in hard.parameters()) < sum(p.numel() for p in model.parameters())
    return graph


def _group_of(graph: DependencyGraph, producer: str) -> Any:
    return next(g for g in graph.groups if producer in g.producers)


class _Attention(nn.Module):
    """Self-attention through ``F.scaled_dot_product_attention`` with ``kv_heads`` key/value
    heads (grouped-query attention when fewer than ``heads``), an optional per-head bias
    table read by a relative-position index (Swin, T5) and a causal ``where`` mask."""

    def __init__(self, heads: int = 4, kv_heads: int = 4, table: bool = False) -> None:
        super().__init__()
        self.d, self.heads, self.kv_heads = 8, heads, kv_heads
        self.inp = nn.Linear(6, 16)
        self.q = nn.Linear(16, heads * self.d)
        self.k = nn.Linear(16, kv_heads * self.d)
        self.v = nn.Linear(16, kv_heads * self.d)
        self.o = nn.Linear(heads * self.d, 16)
        self.out = nn.Linear(16, 3)
        self.table = nn.Parameter(torch.randn(9, heads)) if table else None
        idx = torch.arange(5)[:, None] - torch.arange(5)[None, :] + 4  # [T, T] in 0..8
        self.register_buffer("index", idx.flatten(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.inp(x)
        q = self.q(h).view(b, t, -1, self.d).transpose(1, 2)
        k = self.k(h).view(b, t, -1, self.d).transpose(1, 2)
        v = self.v(h).view(b, t, -1, self.d).transpose(1, 2)
        mask = None
        if self.table is not None:
            bias = self.table[self.index].view(t, t, -1).permute(2, 0, 1).unsqueeze(0)
            causal = torch.ones(t, t, dtype=torch.bool).tril()
            mask = torch.where(causal, bias, torch.full_like(bias, -1e4))
        gqa = self.kv_heads != self.heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        y = y.transpose(1, 2).reshape(b, t, -1)
        return self.out(h + self.o(y))


@pytest.mark.parametrize(
    "kwargs", [{}, {"kv_heads": 2}, {"table": True}], ids=["mha", "gqa", "bias_table"]
)
def test_scaled_dot_product_attention_prunes_whole_heads(kwargs: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = _Attention(**kwargs).eval()
    graph = _check_oracle(model, torch.randn(3, 5, 6))
    heads = _group_of(graph, "q")
    assert heads.prunable
    assert {"k", "v"} <= set(heads.producers)
    assert heads.size == model.kv_heads  # a key/value head with its query heads is one unit
    if model.table is not None:  # the table's per-head column follows its head
        assert any(m.module == "" and m.param == "table" for m in heads.members)
    assert _group_of(graph, "inp").prunable  # the residual stream through the attention


def test_grouped_query_attention_removes_query_heads_with_their_key_value_head() -> None:
    torch.manual_seed(0)
    model = _Attention(heads=4, kv_heads=2).eval()
    x = torch.randn(3, 5, 6)
    graph = DependencyGraph(model, x)
    small = prune(graph, plan_pruning(graph, "l2", 0.5, ignored_layers=["inp"]))
    assert small.k.out_features == 8  # 1 key/value head
    assert small.q.out_features == 16  # with its 2 query heads
    assert _run(small, x).shape == (3, 5, 3)


def test_gqa_queries_keeps_key_value_heads_and_prunes_query_heads_evenly() -> None:
    """``gqa="queries"``: SDPA's ``enable_gqa`` reads key/value head ``h // 2`` for query head
    ``h``; the key/value heads stay and each loses the same number of query heads, its own
    lowest-scored ones (the planner picks within each group, not the same index in both)."""
    torch.manual_seed(0)
    model = _Attention(heads=8, kv_heads=2).eval()
    with torch.no_grad():  # query heads 1 and 6 (one per group) score lowest
        model.q.weight[8:16] *= 0.01
        model.q.weight[48:56] *= 0.01
    x = torch.randn(3, 5, 6)
    graph = DependencyGraph(model, x, gqa="queries")
    heads = _group_of(graph, "q")
    assert heads.prunable
    assert heads.size == 8
    assert heads.segments.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {"k", "v"}.isdisjoint(heads.producers)
    assert not _group_of(graph, "k").prunable
    assert not _group_of(graph, "v").prunable
    plan = plan_pruning(graph, "l2", 0.25, ignored_layers=["inp"])
    assert plan.removed[heads.index].tolist() == [1, 6]
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert not torch.allclose(_run(soft, x), _run(model, x), atol=1e-4)  # not vacuous
    assert (hard.q.out_features, hard.k.out_features, hard.v.out_features) == (48, 16, 16)
    compensated, obs_plan = obspa_prune(graph, 0.5, ignored_layers=["inp"])  # greedy OBS too
    assert (obs_plan.removed[heads.index] < 4).sum() == 2
    assert compensated.q.out_features == 32
    assert _run(compensated, x).shape == (3, 5, 3)
    uneven = torch.ones(8, dtype=torch.bool)
    uneven[[0, 1]] = False  # two query heads of the first key/value head, none of the second
    with pytest.raises(ValueError, match=r"same number of query heads .* got \[2, 0\]"):
        plan_from_masks(graph, {heads.index: uneven})
    for bad in ({"gqa": "kv"}, {"gqa": "queries", "head_dims": True}):
        with pytest.raises(ValueError, match="gqa"):
            DependencyGraph(model, x, **bad)
    with pytest.warns(UserWarning, match="no grouped-query or multi-query attention"):
        DependencyGraph(_Attention(heads=4, kv_heads=4).eval(), x, gqa="queries")


class _TimeMajorAttention(nn.Module):
    """fairseq-style self-attention on ``[T, B, C]``: the heads merged with the batch as they
    split off (``view(T, B * self.num_heads, self.head_dim)``), merged back with
    ``view(T, B, self.embed_dim)``, between a residual stream's layers."""

    def __init__(self, embed_dim: int = 32, num_heads: int = 4) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.inp = nn.Linear(6, embed_dim)
        self.q, self.k, self.v = (nn.Linear(embed_dim, embed_dim) for _ in range(3))
        self.o = nn.Linear(embed_dim, embed_dim)
        self.out = nn.Linear(embed_dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, _ = x.shape
        h = self.inp(x)
        q, k, v = (
            proj(h).contiguous().view(t, b * self.num_heads, self.head_dim).transpose(0, 1)
            for proj in (self.q, self.k, self.v)
        )
        weights = torch.bmm(q, k.transpose(1, 2)).softmax(-1)
        y = torch.bmm(weights, v).transpose(0, 1).contiguous().view(t, b, self.embed_dim)
        return self.out(h + self.o(y))


def test_heads_merged_with_the_batch_as_they_split_off_prune_whole() -> None:
    """Before 0.5.52 the split froze the heads ("splits the channel axis")."""
    torch.manual_seed(0)
    model = _TimeMajorAttention().eval()
    x = torch.randn(5, 3, 6)
    graph = DependencyGraph(model, x)
    heads = _group_of(graph, "q")
    assert heads.prunable
    assert heads.size == 4
    assert {"k", "v"} <= set(heads.producers)
    assert all(len(p) == 8 for m in heads.members if m.module == "q" for p in m.positions)
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["inp"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    other = torch.randn(7, 2, 6)  # another length and batch: the sizes follow
    torch.testing.assert_close(_run(hard, other), _run(soft, other), atol=1e-5, rtol=0)
    assert not torch.allclose(_run(soft, other), _run(model, other), atol=1e-4)  # not vacuous
    assert (hard.num_heads, hard.embed_dim, hard.q.out_features) == (2, 16, 16)


def test_multi_query_attention_keeps_its_key_value_head_and_prunes_query_heads() -> None:
    """One key/value head (its channels on the last axis, broadcast to every query head):
    the key and value channels stay, each query head is a unit of its own."""
    torch.manual_seed(0)
    model = _Attention(heads=4, kv_heads=1).eval()
    x = torch.randn(3, 5, 6)
    graph = _check_oracle(model, x)
    heads = _group_of(graph, "q")
    assert heads.prunable
    assert heads.size == 4
    for name in ("k", "v"):  # their channels stay
        assert name not in heads.producers
        assert not _group_of(graph, name).prunable
    small = prune(graph, plan_pruning(graph, "l2", 0.5, ignored_layers=["inp"]))
    assert (small.q.out_features, small.k.out_features) == (16, 8)
    assert _run(small, x).shape == (3, 5, 3)


class _SelectiveScan(nn.Module):
    """A Mamba-style selective state space layer written out: a projection split into the
    input and its gate, a depthwise causal ``F.conv1d`` whose weight is a parameter read
    through ``squeeze`` / ``unsqueeze`` and whose ``groups`` is read off the input's shape,
    ``A = -exp(A_log)`` ``[C, N]`` read as ``A[None, :, None, :]``, outer products with the
    input-dependent ``B`` ``[B, T, N]``, a ``torch.zeros`` state sized from the input, and
    ``state @ C`` per step: channel ``c`` of the inner width is one channel throughout."""

    def __init__(self, width: int = 8, inner: int = 16, state: int = 4) -> None:
        super().__init__()
        self.state = state
        self.inp = nn.Linear(width, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, 3, groups=inner, padding=2)
        self.bc = nn.Linear(inner, 2 * state)
        self.dt = nn.Linear(inner, inner)
        self.A_log = nn.Parameter(torch.randn(inner, state) * 0.3)
        self.D = nn.Parameter(torch.randn(inner))
        self.out = nn.Linear(inner, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, width]
        t = x.shape[1]
        h, gate = self.inp(x).transpose(1, 2).chunk(2, dim=1)  # [B, inner, T] each
        w = self.conv.weight.squeeze(1)
        h = F.conv1d(h, w.unsqueeze(1), self.conv.bias, padding=2, groups=h.shape[1])[..., :t]
        h = F.silu(h)
        b_in, c_in = self.bc(h.transpose(1, 2)).split(self.state, dim=-1)  # [B, T, N]
        dt = F.softplus(self.dt(h.transpose(1, 2))).transpose(1, 2)  # [B, inner, T]
        a = -torch.exp(self.A_log.float())
        decay = torch.exp(a[None, :, None, :] * dt[:, :, :, None])  # [B, inner, T, N]
        push = dt[:, :, :, None] * b_in[:, None, :, :] * h[:, :, :, None]
        batch, inner, _ = h.shape
        state = torch.zeros(batch, inner, a.shape[-1])
        ys = []
        for i in range(t):
            state = decay[:, :, i] * state + push[:, :, i]
            ys.append(torch.matmul(state, c_in[:, i, :].unsqueeze(-1))[:, :, 0])
        y = (torch.stack(ys, dim=-1) + h * self.D[None, :, None]) * F.silu(gate)
        return self.out(y.transpose(1, 2))


def test_selective_scan_prunes_its_inner_width() -> None:
    torch.manual_seed(0)
    model = _SelectiveScan().eval()
    graph = _check_oracle(model, torch.randn(2, 5, 8))
    inner = _group_of(graph, "dt")
    assert inner.prunable
    assert inner.size == 16
    held = {(m.module, m.param, m.dim) for m in inner.members}
    assert {("", "A_log", 0), ("", "D", 0), ("conv", "weight", 0), ("conv", "bias", 0)} <= held
    assert ("inp", "weight", 0) in held  # the input and its gate, position by position
    # B and C: an outer product's later axis, contracted with the state; they stay
    assert not _group_of(graph, "bc").prunable


class _TensorSplit(nn.Module):
    """``torch.tensor_split`` of the sequence (Mamba's chunked and sequential parts) keeps the
    channels of every piece; of the channel axis, it cuts them at positions written here."""

    def __init__(self, channels: bool) -> None:
        super().__init__()
        self.channels = channels
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, 4]
        h = self.a(x)
        if self.channels:
            first, rest = torch.tensor_split(h, [3], dim=-1)
            return self.b(torch.cat([first, rest.relu()], dim=-1))
        first, rest = h.tensor_split([2], dim=1)
        return self.b(torch.cat([first, rest.relu()], dim=1))


def test_tensor_split_of_other_axes_keeps_channels_and_of_channels_freezes_them() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 4)
    assert _group_of(_check_oracle(_TensorSplit(channels=False).eval(), x), "a").prunable
    frozen = _group_of(DependencyGraph(_TensorSplit(channels=True).eval(), x), "a")
    assert not frozen.prunable
    assert "cuts the channel axis" in frozen.reason


class _Padded(nn.Module):
    """Channels-last padding (Swin's ``maybe_pad``): zero padding on the channel axis is a
    no-op for channels; padding it freezes them."""

    def __init__(self, pad_channels: bool) -> None:
        super().__init__()
        self.pad_channels = pad_channels
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, H, W, 4]
        h = self.a(x)
        h = F.pad(h, (0, 1 if self.pad_channels else 0, 0, 1, 0, 1))
        return self.b(h[..., :8]).mean((1, 2)) if self.pad_channels else self.b(h).mean((1, 2))


def test_padding_spatial_axes_passes_channels_and_padding_channels_freezes_them() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 4)
    graph = _check_oracle(_Padded(pad_channels=False).eval(), x)
    assert _group_of(graph, "a").prunable
    frozen = _group_of(DependencyGraph(_Padded(pad_channels=True).eval(), x), "a")
    assert not frozen.prunable
    assert "pads the channel axis" in frozen.reason


class _InlineModules(nn.Module):
    """Modules the model does not hold: built in ``forward`` or shared at module level."""

    shared_act = nn.GELU()

    def __init__(self, stateful: bool = False) -> None:
        super().__init__()
        self.stateful = stateful
        self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.ReLU()(self.a(x)) + self.shared_act(self.a(x))
        if self.stateful:
            h = nn.LayerNorm(8)(h)  # parameters the pruner could not follow
        return self.b(h)


def test_modules_called_but_not_held_are_traced_through_when_stateless() -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_InlineModules().eval(), torch.randn(4, 5))
    assert _group_of(graph, "a").prunable
    with pytest.raises(UntraceableModelError, match=r"not a submodule.*register it"):
        DependencyGraph(_InlineModules(stateful=True).eval(), torch.randn(4, 5))


class _ScaledLinear(nn.Linear):
    """A Linear with its own ``__getattr__`` (``scale`` an alias of ``weight``) and its own
    ``__call__``: torch.fx's patches of ``nn.Module`` then stay where it puts them."""

    def __getattr__(self, name: str) -> Any:
        return super().__getattr__("weight" if name == "scale" else name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return super().__call__(x) * 2


class _OwnSpecialMethods(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 8), _ScaledLinear(8, 8), nn.Linear(8, 2)
        self.gain = nn.Parameter(torch.rand(8) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x)) * self.gain  # a parameter read through __getattr__
        h = self.b(h) + F.linear(h, self.b.scale)  # and one by its class's own __getattr__
        return self.c(torch.relu(h))


def test_tracing_patches_only_the_model_classes_and_restores_them() -> None:
    torch.manual_seed(0)
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    patcher = torch.fx._symbolic_trace._Patcher
    graph = _check_oracle(_OwnSpecialMethods().eval(), torch.randn(4, 5))
    assert all(_group_of(graph, name).prunable for name in ("a", "b"))
    graph = _check_oracle(_InlineModules().eval(), torch.randn(4, 5))
    assert (nn.Module.__call__, nn.Module.__getattr__) == (call, getattr_)
    assert torch.fx._symbolic_trace._Patcher is patcher
    for cls in (nn.Linear, _InlineModules, _OwnSpecialMethods):
        assert not {"__call__", "__getattr__"} & set(vars(cls))
    assert {"__call__", "__getattr__"} <= set(vars(_ScaledLinear))
    # a stateless module of a class the model does not hold is traced as its operations
    assert [n.target for n in graph.gm.graph.nodes if n.op == "call_module"] == ["a", "a", "b"]

    seen = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((nn.Module.__call__ is call, "__call__" in vars(Spy)))
            return x

    DependencyGraph(nn.Sequential(nn.Linear(5, 8), Spy(), nn.Linear(8, 2)), torch.randn(4, 5))
    assert seen[0] == (True, True)  # while tracing: patched on the model's classes only


class _FactorySized(nn.Module):
    """A tensor factory sized from the input's shape (OPT's position mask): ``torch.fx``
    rejects the traced size; the concrete trace records it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.ones(x.shape[0], 1, device=x.device, dtype=x.dtype)
        return self.b(self.a(x) * gate)


def test_tensor_factories_sized_from_the_input_are_traced() -> None:
    torch.manual_seed(0)
    model, ones = _FactorySized().eval(), torch.ones
    graph = _check_oracle(model, torch.randn(4, 5))
    assert _group_of(graph, "a").prunable
    assert torch.ones is ones  # the factory is restored after tracing


class _Keywords(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 8), nn.Linear(3, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.a(x)
        if context is not None:
            h = h + self.b(context)
        return self.c(torch.relu(h))


def test_keyword_example_inputs() -> None:
    torch.manual_seed(0)
    model = _Keywords().eval()
    inputs = {"context": torch.randn(4, 3), "x": torch.randn(4, 5)}
    graph = _check_oracle(model, inputs)
    assert graph.input_names == ("context", "x")
    assert {"a", "b"} <= set(_group_of(graph, "a").producers)
    assert count_macs(model, inputs) == 4 * (5 * 8 + 3 * 8 + 8 * 2)
    with pytest.raises(TypeError, match="example_inputs: the keys"):
        DependencyGraph(model, {0: torch.randn(4, 5)})
    with pytest.raises(TypeError, match="non-empty dict"):
        DependencyGraph(model, {})


class _ShiftedEmbedding(nn.Embedding):
    """OPT's learned positions: ids shifted before the lookup, then scaled (Gemma)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids + 2) * 3.0


class _LinearT(nn.Linear):
    """Falcon's Linear: ``x @ W.T + b`` (the same function as ``nn.Linear``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


class _Subclasses(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = _ShiftedEmbedding(12, 8)
        self.fc = nn.Linear(8, 16)
        self.fc_t = _LinearT(16, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        return self.out(h + self.fc_t(torch.relu(self.fc(h))))


def test_layer_subclasses_with_their_own_forward() -> None:
    torch.manual_seed(0)
    model = _Subclasses().eval()
    ids = torch.randint(0, 10, (3, 5))
    graph = DependencyGraph(model, ids)
    stream = _group_of(graph, "emb")
    member = next(m for m in stream.members if m.module == "emb")
    assert (member.param, member.dim, member.role) == ("weight", 1, "out")  # F.embedding
    # x @ W.T + b is traced as the product it is: fc_t's weight reads fc's channels on its
    # columns and writes the embedding stream on its rows, and its bias follows the rows
    fc = _group_of(graph, "fc")
    assert fc.prunable
    assert stream.prunable
    assert ("fc_t", "weight", 1, "in") in {(m.module, m.param, m.dim, m.role) for m in fc.members}
    members = {(m.module, m.param, m.dim, m.role) for m in stream.members}
    assert {("fc_t", "weight", 0, "out"), ("fc_t", "bias", 0, "embed")} <= members
    _check_oracle(model, ids)


_IN_OUT = ("mm", "linear_mT", "einsum_io", "addmm_io")


class _Dense(nn.Module):
    """A hand-written linear layer, ``x: [B, in] -> [B, out]``, in one of the forms research
    code writes it with a parameter matrix (``[out, in]``, or ``[in, out]`` for _IN_OUT)."""

    def __init__(self, n_in: int, n_out: int, form: str) -> None:
        super().__init__()
        shape = (n_in, n_out) if form in _IN_OUT else (n_out, n_in)
        self.w = nn.Parameter(torch.randn(shape) / math.sqrt(n_in))
        self.b = nn.Parameter(torch.randn(n_out))
        self.form = form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.w, self.b
        if self.form == "T":
            return x @ w.T + b
        if self.form == "t":
            return torch.matmul(x, torch.t(w)) + b
        if self.form == "method_t":
            return x @ w.t() + b
        if self.form == "transpose":
            return x @ torch.transpose(w, -1, 0) + b
        if self.form == "mm":
            return x.mm(w) + b
        if self.form == "linear_mT":
            return F.linear(x, w.mT, b)
        if self.form == "einsum":
            return torch.einsum("bi,oi->bo", x, w) + b
        if self.form == "einsum_io":
            return torch.einsum("ih,bi->bh", w, x) + b
        if self.form == "addmm":
            return torch.addmm(b, x, w.T)
        if self.form == "addmm_io":
            return torch.addmm(b, x, w, beta=0.5, alpha=2.0)
        if self.form == "columns":  # W @ x^T: the batch on the columns
            return (w @ x.T + b[:, None]).mT
        # one sample at a time, as W @ h in an RNN cell written by hand
        return torch.stack([w @ row + b for row in x.unbind(0)])


_FORMS = ["T", "t", "method_t", "transpose", "mm", "linear_mT", "einsum", "einsum_io"]
_FORMS += ["addmm", "addmm_io"]


@pytest.mark.parametrize("form", [*_FORMS, "columns", "vector"])
def test_products_with_a_parameter_matrix_are_linear_layers(form: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        _Dense(5, 12, form), nn.ReLU(), _Dense(12, 8, form), nn.Tanh(), _Dense(8, 3, form)
    ).eval()
    graph = _check_oracle(model, torch.randn(4, 5))
    assert [g.size for g in graph.prunable_groups()] == [12, 8]
    in_dim, out_dim = (0, 1) if form in _IN_OUT else (1, 0)
    members = {(m.module, m.param, m.dim, m.role) for m in graph.prunable_groups()[0].members}
    bias = "out" if form == "linear_mT" else "embed"  # F.linear's own bias, or one added to x
    assert members == {("0", "w", out_dim, "out"), ("0", "b", 0, bias), ("2", "w", in_dim, "in")}


def test_addmm_onto_an_untracked_term_freezes_only_its_product() -> None:
    class Biased(nn.Module):  # a constant of forward added to the product (a literal width)
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.w, self.out = (
                nn.Linear(4, 6),
                nn.Parameter(torch.randn(8, 6)),
                nn.Linear(8, 3),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.fc(x))
            return self.out(torch.addmm(torch.ones(x.shape[0], 8), h, self.w.T))

    torch.manual_seed(0)
    graph = _check_oracle(Biased().eval(), torch.randn(2, 4))
    assert [g.size for g in graph.prunable_groups()] == [6]  # fc's outputs, w's columns
    assert "untracked tensor" in _group_of(graph, "").reason  # w's rows: the sum's channels


class _TiedHead(nn.Module):
    """A language model whose output layer is its embedding table, ``h @ emb.weight.T``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        h = h + self.fc2(torch.relu(self.fc1(h)))
        return h @ self.emb.weight.T


def test_a_tied_output_layer_reads_the_stream_and_keeps_the_vocabulary() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 11, (2, 6))
    graph = _check_oracle(_TiedHead().eval(), ids)
    stream = _group_of(graph, "emb")
    assert stream.prunable
    assert stream.size == 8
    assert ("emb", "weight", 1) in {(m.module, m.param, m.dim) for m in stream.members}
    vocab = [g for g in graph.groups if g.size == 11]
    assert len(vocab) == 1
    assert not vocab[0].prunable
    assert vocab[0].reason == "model output"


class _Cell(nn.Module):
    """A hand-written Elman RNN over ``x: [B, T, 4]`` from a learned initial state or one made
    in ``forward`` (``start``: "learned", "zeros", "new_zeros", "literal", "scaled")."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.hidden, self.start = 8, start
        self.w_ih = nn.Parameter(torch.randn(8, 4) / 2)
        self.w_hh = nn.Parameter(torch.randn(8, 8) / math.sqrt(8))
        self.b, self.h0 = nn.Parameter(torch.randn(8)), nn.Parameter(torch.randn(8))
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if self.start == "learned":
            h = self.h0.expand(batch, -1)
        elif self.start == "zeros":
            h = torch.zeros(batch, self.hidden, dtype=x.dtype)
        elif self.start == "new_zeros":
            h = x.new_full((batch, self.hidden), 0.5)
        elif self.start == "literal":
            h = torch.zeros(batch, 8)
        else:  # the width also enters arithmetic: a constant of forward
            h = torch.ones(batch, self.hidden) / self.hidden
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ self.w_ih.T + h @ self.w_hh.T + self.b)
        return self.out(h)


@pytest.mark.parametrize("start", ["learned", "zeros", "new_zeros"])
def test_a_hand_written_rnn_prunes_its_hidden_units(start: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 4)
    model = _Cell(start).eval()
    graph = _check_oracle(model, x)
    hidden = graph.prunable_groups()
    assert [g.size for g in hidden] == [8]
    members = {(m.param, m.dim, m.role) for m in hidden[0].members if m.module == ""}
    assert {("w_ih", 0, "out"), ("w_hh", 0, "out"), ("w_hh", 1, "in")} <= members
    assert (("h0", 0, "embed") in members) == (start == "learned")
    # a state made in forward is sized by the attribute, which follows the pruning
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned.hidden, model.hidden) == ((8 if start == "learned" else 4), 8)


class _LSTMCellNet(nn.Module):
    """A hand-written LSTM over ``x: [B, T, 4]`` from zero states: the gates ``[B, 4 * 8]``
    cut by ``chunk(4, 1)`` or by ``split(self.hidden, 1)``."""

    def __init__(self, cut: str) -> None:
        super().__init__()
        self.hidden, self.cut = 8, cut
        self.w_ih = nn.Parameter(torch.randn(32, 4) / 2)
        self.w_hh = nn.Parameter(torch.randn(32, 8) / math.sqrt(8))
        self.b = nn.Parameter(torch.randn(32) / 10)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = torch.zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1]):
            gates = x[:, t] @ self.w_ih.T + h @ self.w_hh.T + self.b
            parts = gates.chunk(4, 1) if self.cut == "chunk" else gates.split(self.hidden, 1)
            i, f, g, o = parts
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.out(h)


@pytest.mark.parametrize("cut", ["chunk", "split"])
def test_a_hand_written_lstm_from_zero_states_prunes_its_units(cut: str) -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_LSTMCellNet(cut).eval(), torch.randn(2, 5, 4))
    assert [g.size for g in graph.prunable_groups()] == [8]  # unit j: rows j, 8 + j, ...
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned.hidden, tuple(pruned.w_hh.shape)) == (4, (16, 4))


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        ("literal", "input features not on the contracted axis"),
        ("scaled", "module attribute hidden, and other ops also read it"),
    ],
)
def test_a_hand_written_rnn_state_of_constant_width_freezes_its_units(
    start: str, reason: str
) -> None:
    graph = DependencyGraph(_Cell(start).eval(), torch.randn(2, 5, 4))
    assert not graph.prunable_groups()
    assert reason in _group_of(graph, "").reason


def test_a_parameter_product_over_other_axes_freezes_its_channels() -> None:
    class Mix(nn.Module):  # mixes 6 time steps of [B, T, C] with a [T, T] matrix: C passes
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.time = nn.Linear(3, 4), nn.Parameter(torch.randn(6, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.time @ self.fc(x)

    graph = DependencyGraph(Mix().eval(), torch.randn(2, 6, 3))
    fc = _group_of(graph, "fc")
    assert not fc.prunable
    assert "input features not on the contracted axis 1" in fc.reason


class _StoresOnSelf(nn.Module):
    """A ``forward`` that writes its module's attributes (Swin's window size) and fills a
    cache in place (TinyViT's attention biases per device)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 2)
        self.last_batch = 0
        self.cache: dict[str, torch.Tensor] = {}
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last_batch = x.shape[0]
        self.seen.append(x.shape[0])
        if "scale" not in self.cache:
            self.cache["scale"] = self.b.bias * 0 + 1
        return self.b(self.a(x)) * self.cache["scale"]


def test_tracing_leaves_module_attributes_as_they_were() -> None:
    """Tracing restores what ``forward`` stored on its modules, also inside their dicts and
    lists (before 0.5.20 a traced value left in TinyViT's cache broke copies of the model)."""
    torch.manual_seed(0)
    model = _StoresOnSelf().eval()
    graph = DependencyGraph(model, torch.randn(4, 5))
    assert model.last_batch == 0  # not a traced value
    assert model.cache == {}
    assert model.seen == []
    _check_oracle(model, torch.randn(4, 5))
    assert isinstance(prune(graph, plan_pruning(graph, "l2", 0.5)).last_batch, int)


class _HeadsFromAttribute(nn.Module):
    """MobileViT / BERT-style merge of heads: ``size()[:-2] + (width,)`` with the width
    traced (-1), a module attribute read only there, a literal, an attribute ``forward`` also
    computes with, or an attribute another op also reads."""

    def __init__(self, width: str) -> None:
        super().__init__()
        self.width, self.all_head_size, self.d = width, 16, 4
        self.q, self.o = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q(x)
        h = h.view(*h.shape[:-1], -1, self.d).transpose(1, 2)  # [B, H, T, d]
        h = torch.softmax(h @ h.transpose(-1, -2) / math.sqrt(self.d), -1) @ h
        h = h.transpose(1, 2)
        width: tuple[int, ...] = (self.all_head_size,)
        if self.width == "traced":
            width = (-1,)
        elif self.width == "literal":
            width = (16,)
        elif self.width == "computed":
            h = h / math.sqrt(self.all_head_size)
        y = h.reshape(*(h.size()[:-2] + width))
        if self.width == "read":
            y = y * self.all_head_size  # a recorded op reads the attribute too
        return self.o(y)


@pytest.mark.parametrize("width", ["traced", "attribute", "literal", "computed", "read"])
def test_a_width_in_a_traced_size_tuple_follows_the_pruning_unless_constant(width: str) -> None:
    """A module attribute read only as a reshape size on the channel axis is rewritten to
    the kept width; a literal, or an attribute ``forward`` also uses otherwise, freezes."""
    torch.manual_seed(0)
    model = _HeadsFromAttribute(width).eval()
    x = torch.randn(2, 5, 6)
    if width in ("traced", "attribute"):
        graph = _check_oracle(model, x)
        assert _group_of(graph, "q").prunable
        small = prune(graph, plan_pruning(graph, "l2", 0.5))
        assert type(small.all_head_size) is int
        assert small.all_head_size == (8 if width == "attribute" else 16)
        assert type(model.all_head_size) is int  # tracing restored the original
        assert model.all_head_size == 16
        return
    heads = _group_of(DependencyGraph(model, x), "q")
    assert not heads.prunable
    reason = {
        "literal": "size 16 on the channel axis is a constant of forward",
        "computed": "is the module attribute all_head_size, and forward also computes with it",
        "read": "is the module attribute all_head_size, and other ops also read it",
    }[width]
    assert reason in heads.reason


class _HeadCountAttribute(nn.Module):
    """OPT-style attention: ``view(b, t, self.num_heads, self.head_dim)`` with the head count
    a module attribute, merged back with ``reshape(b, t, -1)`` or, with ``product``, with
    ``reshape(b, t, self.num_heads * self.head_dim)`` (GPT-Neo's ``_merge_heads``)."""

    def __init__(self, product: bool = False) -> None:
        super().__init__()
        self.num_heads, self.head_dim = 4, 4
        self.product = product
        self.qkv = nn.ModuleList(nn.Linear(6, 16) for _ in range(3))
        self.o = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2) for p in self.qkv)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        return self.o(y.reshape(b, t, self.num_heads * self.head_dim if self.product else -1))


@pytest.mark.parametrize("product", [False, True], ids=["minus_one", "product"])
@pytest.mark.parametrize("keywords", [False, True], ids=["fx", "concrete"])
def test_a_head_count_attribute_follows_the_pruned_heads(keywords: bool, product: bool) -> None:
    torch.manual_seed(0)
    model = _HeadCountAttribute(product).eval()
    x = torch.randn(2, 5, 6)
    inputs: Any = {"x": x} if keywords else x  # keyword inputs take the concrete tracer
    graph = _check_oracle(model, inputs)
    heads = _group_of(graph, "qkv.0")
    assert heads.prunable
    assert heads.multiple == 4 or heads.size == 4  # whole heads
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert small.num_heads == 2
    assert small.head_dim == 4
    y = small(torch.randn(3, 7, 6))  # any batch and length
    assert y.shape == (3, 7, 3)


class _ScaleByShape(nn.Module):
    """timm's ``Scale``: a per-channel parameter viewed to the tuple attribute ``shape``."""

    def __init__(self, dim: int, also_read: bool = False) -> None:
        super().__init__()
        self.shape = (dim, 1, 1)
        self.also_read = also_read
        self.scale = nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale.view(self.shape)
        return y * self.shape[0] if self.also_read else y


@pytest.mark.parametrize("also_read", [False, True])
def test_a_width_in_a_tuple_attribute_follows_the_pruning(also_read: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), _ScaleByShape(8, also_read), nn.Conv2d(8, 2, 1))
    x = torch.randn(2, 3, 4, 4)
    if also_read:  # the width is also a number another op reads: a constant
        group = _group_of(DependencyGraph(model.eval(), x), "0")
        assert not group.prunable
        assert "module attribute 1.shape[0], and other ops also read it" in group.reason
        return
    graph = _check_oracle(model.eval(), x)
    assert _group_of(graph, "0").prunable
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert small[1].shape == (4, 1, 1)
    assert all(type(v) is int for v in small[1].shape)
    assert model[1].shape == (8, 1, 1)  # tracing restored the original
    assert all(type(v) is int for v in model[1].shape)
    assert small(x).shape == (2, 2, 4, 4)


def _scaled_by_mean_over_h_channels_last(h: torch.Tensor) -> torch.Tensor:
    """``h * mean over H`` in ``[B, H, W, C]`` (a reduction before the channel axis, with a
    positional ``keepdim``), back to ``[B, C, H, W]``."""
    h = h.permute(0, 2, 3, 1)
    return (h * torch.mean(h, 1, True)).permute(0, 3, 1, 2)


_ALONG = {  # an op of h [B, C, H, W]: (op, whether it acts along the channel axis)
    "torch.roll over H, W (Swin's shift)": (lambda h: torch.roll(h, (1, -1), (2, 3)), False),
    "roll method, negative dim": (lambda h: h.roll(1, -1), False),
    "flip method, dims as arguments": (lambda h: h.flip(2, 3), False),
    "torch.cumsum over W": (lambda h: torch.cumsum(h, dim=3), False),
    "cumprod method": (lambda h: h.cumprod(2), False),
    "torch.amax, positional keepdim": (lambda h: h - torch.amax(h, (2, 3), True), False),
    "torch.mean over H, channels last": (_scaled_by_mean_over_h_channels_last, False),
    "roll over channels": (lambda h: torch.roll(h, 1, 1), True),
    "roll of the flattened tensor": (lambda h: torch.roll(h, 1), True),
    "flip over channels": (lambda h: torch.flip(h, (1,)), True),
    "cumsum over channels": (lambda h: h.cumsum(1), True),
    # reductions over other axes, and to (values, indices)
    "std over H, keepdim": (lambda h: h - h.std(2, keepdim=True), False),
    "torch.var, positional unbiased and keepdim": (
        lambda h: h * torch.var(h, (2, 3), True, True),
        False,
    ),
    "logsumexp over W": (lambda h: h - torch.logsumexp(h, 3, keepdim=True), False),
    "norm over H, W": (lambda h: h / (h.norm(2, (2, 3), True) + 1), False),
    "torch.linalg.vector_norm": (lambda h: h * torch.linalg.vector_norm(h, 2, (2, 3), True), False),
    "max over W, .values": (lambda h: h.max(dim=3, keepdim=True).values * h, False),
    "torch.min over H, [0]": (lambda h: h - torch.min(h, 2, True)[0], False),
    "median over W": (lambda h: h.median(3, keepdim=True)[0] + h, False),
    "torch.max of two tensors": (lambda h: torch.max(h, h.flip(2)), False),
    "sort over W, .values": (lambda h: h.sort(dim=3, descending=True).values, False),
    "topk over W": (lambda h: torch.topk(h, 2, dim=3)[0], False),
    "cummax over H": (lambda h: h.cummax(2).values, False),
    "logcumsumexp over W": (lambda h: torch.logcumsumexp(h, 3), False),
    "F.normalize over W": (lambda h: F.normalize(h, dim=3), False),
    "torch.stack on a new first axis": (lambda h: torch.stack([h, h.flip(3)]).mean(0), False),
    "torch.stack after H": (lambda h: torch.stack((h, 2 * h), 3).flatten(2, 3), False),
    "masked_fill by the values": (lambda h: h.masked_fill(h > 1, 0.5), False),
    "masked_fill by a new_zeros mask": (
        lambda h: h.masked_fill(h.new_zeros(h.shape[-2:]).bool(), 1.0),
        False,
    ),
    "torch.swapaxes, swapdims": (
        lambda h: torch.swapaxes(h, 2, 3).swapdims(1, 3).swapdims(1, 3),
        False,
    ),
    "einsum of two, channels kept": (
        lambda h: torch.einsum("bchw,bchw->bchw", h, h.flip(2)),
        False,
    ),
    "einsum with spaces, an untracked operand": (
        lambda h: torch.einsum("b c h w, h w -> b c w h", h, h.new_ones(5, 5)),
        False,
    ),
    "einsum moving channels last": (
        lambda h: torch.einsum("bchw->bhwc", h).permute(0, 3, 1, 2),
        False,
    ),
    "einsum summing over channels": (lambda h: h * torch.einsum("bchw->bhw", h).unsqueeze(1), True),
    "einsum of two channel axes": (lambda h: torch.einsum("bchw,bdhw->bdhw", h, h), True),
    "reshape_as the input (LeViT's flattened norm)": (
        lambda h: (h.flatten(2) * 2).reshape_as(h),
        False,
    ),
    "expand_as the input": (lambda h: h.mean((2, 3), keepdim=True).expand_as(h) + h, False),
    "reshape_as an untracked tensor": (
        lambda h: h.flatten(2).reshape_as(h.new_zeros(2, 8, 5, 5)),
        True,
    ),
    "F.lp_pool2d": (lambda h: F.interpolate(F.lp_pool2d(h, 2, 2), size=(5, 5)), False),
    "pixel_shuffle after pixel_unshuffle (functions)": (
        lambda h: F.pixel_shuffle(F.pixel_unshuffle(h[..., :4, :4], 2), 2),
        False,
    ),
    "a constant made in forward, broadcast over channels (Swin's mask)": (
        lambda h: h + torch.ones(1, 1, 5, 5),
        False,
    ),
    "a constant made in forward, spanning the channels": (
        lambda h: h * torch.arange(8.0).view(1, 8, 1, 1),
        True,
    ),
    "std over channels": (lambda h: h / (h.std(1, keepdim=True) + 1), True),
    "max over channels": (lambda h: h - h.max(1, keepdim=True).values, True),
    "max of everything": (lambda h: h / h.max(), True),
    "sort over channels": (lambda h: h.sort(1)[0], True),
    "F.normalize over channels (its default)": (lambda h: F.normalize(h), True),
}


class _AlongAxes(nn.Module):
    def __init__(self, op: Any) -> None:
        super().__init__()
        self.op = op
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.op(torch.relu(self.c1(x)))
        return self.c2(h).mean((2, 3))


@pytest.mark.parametrize("name", _ALONG)
def test_ops_along_other_axes_keep_channels_and_along_channels_freeze(name: str) -> None:
    torch.manual_seed(0)
    op, over_channels = _ALONG[name]
    model, x = _AlongAxes(op).eval(), torch.randn(2, 3, 5, 5)
    if over_channels:
        group = _group_of(DependencyGraph(model, x), "c1")
        assert not group.prunable
        assert "channel" in group.reason
    else:
        assert _group_of(_check_oracle(model, x), "c1").prunable


class _DtypeRead(nn.Module):
    """HF ViT reads ``projection.weight.dtype``: a read of metadata, not of channels."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.fc = nn.Conv2d(3, 8, 2, 2), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.proj.weight.dtype)
        return self.fc(self.proj(x).flatten(2).transpose(1, 2)).mean(1)


def test_reading_a_weights_dtype_does_not_freeze_its_channels() -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_DtypeRead().eval(), torch.randn(2, 3, 4, 4))
    assert _group_of(graph, "proj").prunable


class _RowsByIndex(nn.Module):
    """Rows picked by a list, a tensor, or both axes indexed (the last freezes)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 2)
        self.register_buffer("rows", torch.tensor([[0, 2], [1, 1]]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)  # [B, 8]
        if self.kind == "list":
            h = h[[0, 2, 2]]
        elif self.kind == "tensor":
            h = h[self.rows]  # [2, 2, 8]
        else:
            h = h[self.rows, :4]
        return self.b(torch.relu(h)) if self.kind != "both" else h.sum(-1)


@pytest.mark.parametrize("kind", ["list", "tensor"])
def test_rows_gathered_by_an_index_keep_their_channels(kind: str) -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_RowsByIndex(kind).eval(), torch.randn(4, 5))
    assert _group_of(graph, "a").prunable
    frozen = _group_of(DependencyGraph(_RowsByIndex("both").eval(), torch.randn(4, 5)), "a")
    assert not frozen.prunable


class _CountReads(nn.Module):
    """A residual block whose ``forward`` reads its width from the input (``B, N, C =
    x.shape``) and uses it as ``use`` says: as a reshape size of the same channels (alone,
    scaled by other sizes, or inside a concatenated size tuple), or to compute sizes of other
    channels (timm's ``C // self.num_heads``, FocalNet's split sizes)."""

    def __init__(self, use: str) -> None:
        super().__init__()
        self.use, self.num_heads = use, 2
        self.inp = nn.Linear(6, 8)
        self.qkv = nn.Linear(8, 24)
        self.mix = nn.Linear(8, 8 + 8 + 3)
        self.proj = nn.Linear(8, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        b, n, c = h.shape
        if self.use == "reshape":
            y = self.proj(h).transpose(1, 2).reshape(b, c, n).transpose(1, 2)
        elif self.use == "scaled":
            y = self.proj(h).transpose(1, 2).reshape(b, c * n).view(b, c, n).transpose(1, 2)
        elif self.use == "tuple":
            y = self.proj(h).view((-1,) + h.shape[1:2] + (h.size(-1),))  # noqa: RUF005 (GPT-2)
        elif self.use == "heads":  # timm's attention
            qkv = self.qkv(h).reshape(b, n, 3, self.num_heads, c // self.num_heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            y = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))
        else:  # FocalNet's modulation
            q, ctx, gates = torch.split(self.mix(h), (c, c, 3), -1)
            y = self.proj(q * ctx + gates.sum(-1, keepdim=True))
        h = h + y
        return self.out((h + self.mlp(h)).mean(1))


@pytest.mark.parametrize("use", ["reshape", "scaled", "tuple", "heads", "split"])
def test_a_channel_count_read_in_forward_follows_the_pruning_only_as_its_own_size(
    use: str,
) -> None:
    """A width read from a tensor's shape may size those channels again; computing other
    sizes from it (before 0.5.20 the pruned timm / FocalNet blocks failed on their first call)
    freezes the channels it counts, except for timm's head size ``C // self.num_heads`` where
    the attention output is reshaped to ``C`` too: the residual width and the heads' are tied
    (0.5.41), so the head size stays."""
    torch.manual_seed(0)
    model = _CountReads(use).eval()
    x = torch.randn(2, 5, 6)
    graph = _check_oracle(model, x)
    residual = _group_of(graph, "inp")
    if use == "split":
        assert not residual.prunable
        assert "computes with the channel count" in residual.reason
    else:
        assert residual.prunable
    if use == "heads":
        heads = _group_of(graph, "qkv")
        assert heads.prunable
        assert graph.width_ties == [{residual.index: 1, heads.index: 4}]
        hard = prune(graph, plan_pruning(graph, "l2", 0.5))
        assert (hard.inp.out_features, hard.num_heads) == (4, 1)


class _InPlaceAndScale(nn.Module):
    """BART's ``shift_tokens_right`` (an in-place write into token ids), DeBERTa's
    ``torch.sqrt(torch.tensor(q.size(-1)))`` scale, and, with ``write_channels``, an in-place
    write into hidden channels."""

    def __init__(self, write_channels: bool) -> None:
        super().__init__()
        self.write_channels = write_channels
        self.emb = nn.Embedding(12, 8)
        self.fc = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        shifted = ids.new_zeros(ids.shape)
        shifted[:, 1:] = ids[:, :-1].clone()
        h = torch.relu(self.fc(self.emb(shifted)))
        h = h / torch.sqrt(torch.tensor(h.size(1), dtype=torch.float))
        if self.write_channels:
            h[:, :, 0] = 0.0
        return self.out(h.mean(1))


@pytest.mark.parametrize("write_channels", [False, True], ids=["ids", "channels"])
def test_in_place_writes_and_tensors_of_sizes_are_traced(write_channels: bool) -> None:
    """The concrete tracer records ``x[key] = value`` and ``torch.tensor(<traced size>)``
    (before 0.5.20 both raised UntraceableModelError: BART given only ``input_ids``,
    DeBERTa); a write into channels freezes them."""
    torch.manual_seed(0)
    model = _InPlaceAndScale(write_channels).eval()
    inputs = {"ids": torch.randint(0, 12, (2, 5))}
    if not write_channels:
        _check_oracle(model, inputs)
        return
    graph = DependencyGraph(model, inputs)
    assert not _group_of(graph, "fc").prunable
    assert "setitem" in _group_of(graph, "fc").reason


class _BatchNormAct(nn.BatchNorm2d):
    """timm's ``BatchNormAct2d``: ``F.batch_norm`` in its own ``forward``, then an activation."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.1, self.eps
        )
        return self.act(y)


class _LinearF(nn.Linear):
    """timm's ``Linear``: ``F.linear`` in its own ``forward``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class _FusedBias(nn.Module):
    """EVA's attention projection: ``F.linear`` with a bias concatenated from parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(24, 8) / 3)
        self.q_bias, self.v_bias = nn.Parameter(torch.randn(8)), nn.Parameter(torch.randn(8))
        self.register_buffer("k_bias", torch.zeros(8), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))


class _FunctionalLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = _BatchNormAct(8)
        self.fc = _LinearF(8, 16)
        self.fused = _FusedBias()
        self.out = nn.Linear(16 + 24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x)).mean((2, 3))
        return self.out(torch.cat([torch.relu(self.fc(h)), self.fused(h)], -1))


def test_functional_batch_norm_and_linear_in_layer_subclasses_prune() -> None:
    """``F.batch_norm`` and ``F.linear`` called in a layer's own ``forward`` (timm's
    ``BatchNormAct2d`` and ``Linear``, EVA's concatenated bias) follow their channels (before
    0.5.20 they were unsupported functions, which froze every timm CNN)."""
    torch.manual_seed(0)
    model = _FunctionalLayers().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    graph = _check_oracle(model, torch.randn(2, 3, 6, 6))
    for producer in ("conv", "fc", "fused"):
        assert _group_of(graph, producer).prunable, producer
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert small.bn.num_features == small.bn.running_mean.numel() == 4


class _TimmAttention(nn.Module):
    """timm's ViT attention: one fused qkv projection viewed as ``(3, heads, head_dim)``,
    unbound into q, k, v, merged back with ``reshape(B, N, self.attn_dim)``."""

    def __init__(self) -> None:
        super().__init__()
        self.num_heads, self.head_dim = 4, 4
        self.attn_dim = self.num_heads * self.head_dim
        self.inp = nn.Linear(6, 8)
        self.qkv = nn.Linear(8, 3 * self.attn_dim)
        self.proj = nn.Linear(self.attn_dim, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        b, n, _ = h.shape
        qkv = self.qkv(h).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, self.attn_dim)
        return self.out((h + self.proj(y)).mean(1))


def test_fused_qkv_heads_prune_whole() -> None:
    """A fused projection split into ``(3, heads, head_dim)``: head h of q, k and v is one
    unit, and the head count and width attributes follow the pruning (before 0.5.20 the
    reshape froze them)."""
    torch.manual_seed(0)
    model = _TimmAttention().eval()
    graph = _check_oracle(model, torch.randn(2, 5, 6))
    heads = _group_of(graph, "qkv")
    assert heads.prunable
    assert heads.size == 4
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (small.num_heads, small.attn_dim, small.head_dim) == (2, 8, 4)
    assert tuple(small.qkv.weight.shape) == (24, 4)


class _ConstantSplit(nn.Module):
    """CSPNet's stage: ``x.split(self.expand_chs // 2, dim=1)`` (``"half"``: a part of an
    attribute), ``x.split(4, dim=1)`` (``"literal"``: a size written in forward) or the same
    halves by ``chunk(2)`` (``"chunk"``: a count); ``"reread"`` also scales the output by
    ``self.expand_chs // 2`` (the part read as a number)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode, self.expand_chs = mode, 8
        self.expand = nn.Conv2d(3, self.expand_chs, 1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.out = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        if self.mode == "chunk":
            a, b = y.chunk(2, dim=1)
        else:
            half = 4 if self.mode == "literal" else self.expand_chs // 2
            a, b = y.split(half, dim=1)
        out = self.out(torch.cat([a, torch.relu(self.block(b))], 1)).mean((2, 3))
        return out * (self.expand_chs // 2) if self.mode == "reread" else out


@pytest.mark.parametrize("mode", ["chunk", "half", "literal", "reread"])
def test_split_sizes_follow_the_pruning_or_freeze(mode: str) -> None:
    """Pieces of a count (``chunk``) and halves of an attribute (``self.expand_chs // 2``:
    ``prune`` rewrites ``expand_chs`` to all the kept channels, since 0.5.42) follow the
    pruning; sizes written in ``forward``, or a part of an attribute that another op reads too,
    freeze the channels they split (before 0.5.20 the pruned CSPNet failed on its first
    call)."""
    torch.manual_seed(0)
    model = _ConstantSplit(mode).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 6, 6))
    expand = _group_of(graph, "expand")
    assert expand.prunable == (mode in ("chunk", "half"))
    if mode == "half":
        hard = prune(graph, plan_pruning(graph, "l2", 0.5))
        assert hard.expand_chs == hard.expand.out_channels == 2 * hard.block.in_channels
    if mode == "literal":
        assert "sizes written in forward" in expand.reason
    if mode == "reread":
        assert "other ops also read it" in expand.reason


class _ScalarAffine(nn.Module):
    """HGNetV2's ``LearnableAffineBlock``: ``scale * x + bias`` with one-element parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.scale, self.bias = nn.Parameter(torch.tensor([1.5])), nn.Parameter(torch.tensor([0.2]))
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.scale * self.conv(x) + self.bias)).mean((2, 3))


def test_one_element_parameters_scale_every_channel() -> None:
    """A one-element parameter is a scalar, not a channel (before 0.5.20 it froze every group
    of HGNetV2)."""
    torch.manual_seed(0)
    graph = _check_oracle(_ScalarAffine().eval(), torch.randn(2, 3, 5, 5))
    assert _group_of(graph, "conv").prunable


class _Conv3dSimple(nn.Conv3d):
    """torchvision's video ``Conv3DSimple``: a Conv3d subclass that changes no method."""

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class _StandardizedConv3d(nn.Conv3d):
    """Changes what the inherited ``forward`` computes (weight standardization)."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: Any) -> torch.Tensor:
        w = (weight - weight.mean((1, 2, 3, 4), keepdim=True)) / (weight.std() + 1e-5)
        return super()._conv_forward(x, w, bias)


@torch.fx.wrap
def _clip_window(window: list[int], size: list[int]) -> list[int]:
    for i in range(len(window)):  # writes into its argument, as torchvision's Swin3D does
        window[i] = min(window[i], size[i])
    return window


class _Video(nn.Module):
    def __init__(self, conv: type[nn.Conv3d]) -> None:
        super().__init__()
        self.stem = conv(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm3d(8)
        self.mid = conv(8, 12, 3, padding=1)
        self.drop = nn.Dropout3d(0.0)
        self.pool3 = nn.MaxPool3d(2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = _clip_window([4, 7, 7], [x.shape[2], x.shape[3], x.shape[4]])
        x = self.pool3(self.drop(self.mid(torch.relu(self.bn(self.stem(x))))))
        x = F.avg_pool3d(x, 1) * (window[0] / 2)
        return self.fc(self.pool(x).flatten(1))


def test_conv3d_subclasses_and_3d_pools_prune() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 6, 6)
    graph = _check_oracle(_Video(_Conv3dSimple).eval(), x)
    assert _group_of(graph, "stem").prunable
    assert _group_of(graph, "mid").prunable
    # a subclass that changes an inherited method is traced through: its channels freeze
    changed = DependencyGraph(_Video(_StandardizedConv3d).eval(), x)
    stem = [g for g in changed.groups if any(m.module == "stem" for m in g.members)]
    assert stem
    assert not any(g.prunable for g in stem)


@pytest.mark.parametrize("norm_dim", [0, 1, None])
def test_weight_norm_parametrizations_prune_and_spectral_norm_freezes(norm_dim: Any) -> None:
    from torch.nn.utils import parametrizations

    torch.manual_seed(0)
    wn = parametrizations.weight_norm
    model = nn.Sequential(
        wn(nn.Conv1d(3, 16, 3, padding=1), dim=norm_dim),
        nn.ReLU(),
        wn(nn.Conv1d(16, 8, 3, padding=1), dim=norm_dim),
        nn.Flatten(),
        nn.Linear(8 * 10, 4),
    ).eval()
    x = torch.randn(2, 3, 10)
    before = _run(model, x)
    graph = _check_oracle(model, x)  # g and v follow the sliced weight, the oracle's zeros
    torch.testing.assert_close(_run(model, x), before)  # the original model still runs
    assert len(graph.prunable_groups()) == 2
    spectral = nn.Sequential(
        parametrizations.spectral_norm(nn.Linear(6, 16)),
        nn.ReLU(),
        parametrizations.spectral_norm(nn.Linear(16, 4)),
    ).eval()
    frozen = DependencyGraph(spectral, torch.randn(2, 6))
    assert not frozen.prunable_groups()  # dividing by sigma: slicing would change it


class _Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase], layers: int, bidirectional: bool, use: str) -> None:
        super().__init__()
        self.inp, self.use = nn.Linear(5, 12), use
        self.rnn = cell(12, 10, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.out = nn.Linear(10 * (1 + bidirectional) if use == "sequence" else 10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, state = self.rnn(torch.relu(self.inp(x)))
        if self.use == "sequence":
            return self.out(y.select(1, -1))  # the last step of every unit (both directions)
        h = state[1] if isinstance(state, tuple) else state  # LSTM: the cell state c_n
        return self.out(h[-1])


@pytest.mark.parametrize("use", ["sequence", "state"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_layers_prune_hidden_units_and_inputs(
    cell: type[nn.RNNBase], layers: int, bidirectional: bool, use: str
) -> None:
    torch.manual_seed(0)
    model = _Recurrent(cell, layers, bidirectional, use).eval()
    x = torch.randn(2, 7, 5)
    graph = _check_oracle(model, x)
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned.rnn.input_size, pruned.rnn.hidden_size) == (6, 5)
    assert pruned(x).shape == (2, 3)


class _StartedRecurrent(nn.Module):
    """A GRU / LSTM run from a zero initial state made in ``forward`` (``[L * D, B, H]``,
    sized by module attributes, the LSTM's cell state by ``new_zeros``)."""

    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = cell(4, 10, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers, hidden = 2 * self.rnn.num_layers, self.rnn.hidden_size
        h0: Any = torch.zeros(layers, x.shape[0], hidden)
        if isinstance(self.rnn, nn.LSTM):
            h0 = (h0, x.new_zeros(layers, x.shape[0], hidden))
        return self.out(self.rnn(x, h0)[0][:, -1])


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_a_recurrent_layer_prunes_from_an_initial_state_made_in_forward(
    cell: type[nn.RNNBase],
) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 4)
    graph = _check_oracle(_StartedRecurrent(cell).eval(), x)
    assert [g.size for g in graph.prunable_groups()] == [10]
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert pruned.rnn.hidden_size == 5
    assert pruned(x).shape == (2, 3)


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
def test_recurrent_layers_with_projections_or_given_states_freeze() -> None:
    class GivenState(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.out = nn.GRU(4, 6), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
            return self.out(self.rnn(x, h0)[0])

    x = torch.randn(5, 2, 4)
    graph = DependencyGraph(GivenState(), (x, torch.zeros(1, 2, 6)))
    assert not graph.prunable_groups()
    assert "initial state whose hidden units are untracked" in _group_of(graph, "rnn").reason
    projected = nn.LSTM(4, 6, proj_size=3)
    assert not DependencyGraph(projected, x).prunable_groups()


class _UNet(nn.Module):
    """Encoder-decoder layers: transposed convolution, instance norm, per-channel PReLU,
    upsampling, skip concatenations."""

    def __init__(self, norm: Any) -> None:
        super().__init__()
        self.e1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), norm(16), nn.PReLU(16))
        self.e2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), norm(32), nn.PReLU())
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.d1 = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), norm(16), nn.ReLU())
        self.side = nn.Sequential(nn.Conv2d(32, 8, 1), nn.Upsample(scale_factor=2))
        self.head = nn.Conv2d(16 + 8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e1(x)
        b = self.e2(a)
        d = self.d1(torch.cat([self.up(b), a], 1))
        side = F.interpolate(self.side(b), scale_factor=0.5, mode="bilinear")
        return self.head(torch.cat([d, F.interpolate(side, scale_factor=2.0)], 1))


@pytest.mark.parametrize("affine", [False, True])
def test_encoder_decoder_layers_prune(affine: bool) -> None:
    torch.manual_seed(0)
    model = _UNet(lambda c: nn.InstanceNorm2d(c, affine=affine)).eval()
    x = torch.randn(2, 3, 16, 16)
    graph = _check_oracle(model, x)
    assert len(graph.prunable_groups()) == 5  # every layer but the output
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned.up.in_channels, pruned.up.out_channels) == (16, 8)
    assert (pruned.e1[1].num_features, pruned.e1[2].num_parameters) == (8, 8)
    assert count_macs(pruned, x) < count_macs(model, x) / 3


def test_group_norm_removes_whole_groups() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.GroupNorm(8, 32),
        nn.SiLU(),
        nn.Conv2d(32, 16, 3, padding=1),
        nn.GroupNorm(4, 16),
        nn.SiLU(),
        nn.Conv2d(16, 4, 1),
    ).eval()
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):  # not the identity of a fresh affine
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias)
    x = torch.randn(2, 3, 8, 8)
    graph = _check_oracle(model, x)  # the kept groups keep their statistics
    assert [g.size for g in graph.prunable_groups()] == [8, 4]  # units: whole groups
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned[1].num_groups, pruned[1].num_channels) == (4, 16)
    assert (pruned[4].num_groups, pruned[4].num_channels) == (2, 8)


def test_pixel_shuffle_moves_channel_blocks_to_space() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    up = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(4, 3, 3, padding=1)
    ).eval()
    graph = _check_oracle(up, x)  # the 4 input channels of an output channel go together
    assert [g.size for g in graph.prunable_groups()] == [4]
    assert prune(graph, plan_pruning(graph, "l2", 0.5))[0].out_channels == 8
    down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PixelUnshuffle(2), nn.Conv2d(32, 6, 1))
    graph = _check_oracle(down.eval(), x)
    assert prune(graph, plan_pruning(graph, "l2", 0.5))[2].in_channels == 16


class _GatedMLP(nn.Module):
    """``F.glu`` over the features of a Linear: ``a * sigmoid(b)`` of its two halves."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(6, 16), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.glu(self.up(x)))


def test_glu_halves_are_one_unit() -> None:
    # output channel j is input channels j and n/2 + j: removing it removes both rows
    torch.manual_seed(0)
    conv = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.GLU(dim=1), nn.Conv2d(8, 3, 3, padding=1)
    ).eval()
    graph = _check_oracle(conv, torch.randn(2, 3, 8, 8))
    assert [g.size for g in graph.prunable_groups()] == [8]
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert (pruned[0].out_channels, pruned[2].in_channels) == (8, 4)
    graph = _check_oracle(_GatedMLP().eval(), torch.randn(4, 6))
    assert [g.size for g in graph.prunable_groups()] == [8]
    assert prune(graph, plan_pruning(graph, "l2", 0.5)).up.out_features == 8


class _ShuffleFunction(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.channel_shuffle(h, 4)


@pytest.mark.parametrize(
    "shuffle", [nn.ChannelShuffle(4), _ShuffleFunction()], ids=["module", "function"]
)
def test_channel_shuffle_keeps_the_same_local_channels_in_every_group(shuffle: nn.Module) -> None:
    # output channel k * 4 + i is input channel i * 4 + k: the four input groups must keep
    # the same local channels for the pruned shuffle to pick the kept ones in order
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        shuffle,
        nn.Conv2d(16, 3, 1),
    ).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 8, 8))
    assert [g.size for g in graph.prunable_groups()] == [4]
    assert prune(graph, plan_pruning(graph, "l2", 0.5))[0].out_channels == 8


@pytest.mark.parametrize(
    "pad",
    [nn.ZeroPad2d(1), nn.ConstantPad2d((1, 0, 2, 1), 0.5), nn.ReflectionPad2d(1)],
    ids=["zero", "constant", "reflection"],
)
def test_padding_layers_pass_the_channels(pad: nn.Module) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), pad, nn.Conv2d(16, 3, 3)).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 8, 8))
    assert [g.size for g in graph.prunable_groups()] == [16]


@pytest.mark.parametrize("groups", [16, 4])
def test_grouped_transposed_convolution_keeps_the_same_local_channels(groups: int) -> None:
    # depthwise (16): it follows its input channels; grouped (4): local channel j of every
    # group is one unit on each side, as for a grouped convolution (weight [in, out / G])
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 16, 2, stride=2, groups=groups),
        nn.Conv2d(16, 3, 3),
    ).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 6, 6))
    assert [g.size for g in graph.prunable_groups()] == ([16] if groups == 16 else [4, 4])
    up = prune(graph, plan_pruning(graph, "l2", 0.5))[2]
    assert (up.in_channels, up.out_channels, up.groups) == (
        8,
        8,
        groups // 2 if groups == 16 else 4,
    )
    assert up.weight.shape[:2] == (8, 1 if groups == 16 else 2)


class _TorchTransformer(nn.Module):
    """``[B, 7, 6]`` -> Linear -> a torch transformer ``kind`` (d_model 16, 2 heads, FFN 32;
    "layer", "stack": two encoder layers and a final norm, "full": ``nn.Transformer`` on the
    sequence and its first 5 steps) -> Linear."""

    def __init__(self, kind: str, batch_first: bool, norm_first: bool) -> None:
        super().__init__()
        self.kind, self.batch_first = kind, batch_first
        self.inp, self.out = nn.Linear(6, 16), nn.Linear(16, 3)
        options = {"dropout": 0.0, "batch_first": batch_first, "norm_first": norm_first}
        layer = nn.TransformerEncoderLayer(16, 2, 32, **options)
        if kind == "stack":
            self.body: nn.Module = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
        elif kind == "full":
            self.body = nn.Transformer(16, 2, 1, 1, 32, **options)
        else:
            self.body = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x if self.batch_first else x.transpose(0, 1))
        if self.kind == "full":
            return self.out(self.body(h, h[:, :5] if self.batch_first else h[:5]))
        return self.out(self.body(h))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("kind", ["layer", "stack", "full"])
@pytest.mark.parametrize(("batch_first", "norm_first"), [(True, False), (False, True)])
def test_torch_transformer_layers_are_traced_through(
    kind: str, batch_first: bool, norm_first: bool
) -> None:
    # their fused inference path is off while tracing (it branches on the input); pruned, the
    # layers still take it under no_grad (as _check_oracle runs them), and the oracle (masked
    # norms) does not; with gradients both run the layers' modules
    torch.manual_seed(0)
    model, x = _TorchTransformer(kind, batch_first, norm_first).eval(), torch.randn(2, 7, 6)
    graph = _check_oracle(model, x)
    assert all(g.prunable for g in graph.groups if g.reason != "model output")
    assert 16 in [g.size for g in graph.groups]
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(hard(x), soft(x), atol=1e-5, rtol=0)
    if kind == "full":
        assert hard.body.d_model == 8


class _ClassToken(nn.Module):
    """CLIP's embedding: a 1-D class token expanded to ``[B, 1, D]`` (new leading axes);
    ``how``: ``"broadcast_to"`` with ``D`` read off the token's shape, ``"literal"`` with ``D``
    written in ``forward``."""

    def __init__(self, how: str = "expand") -> None:
        super().__init__()
        self.how = how
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(16))
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        if self.how == "expand":
            cls = self.cls.expand(x.shape[0], 1, -1)
        else:
            width = self.cls.shape[0] if self.how == "broadcast_to" else 16
            cls = torch.broadcast_to(self.cls, (x.shape[0], 1, width))
        tokens = torch.cat([cls, tokens], 1)
        tokens = tokens + self.mlp(tokens)
        return self.head(tokens[:, 0])


@pytest.mark.parametrize("how", ["expand", "broadcast_to"])
def test_expand_that_adds_leading_axes_keeps_the_channels(how: str) -> None:
    """(``torch.broadcast_to`` froze the channels as an unsupported function before 0.5.51.)"""
    torch.manual_seed(0)
    graph = _check_oracle(_ClassToken(how).eval(), torch.randn(2, 3, 8, 8))
    assert _group_of(graph, "patch").prunable  # the residual width, class token included


def test_broadcast_to_a_literal_width_freezes() -> None:
    graph = DependencyGraph(_ClassToken("literal").eval(), torch.randn(2, 3, 8, 8))
    assert not _group_of(graph, "patch").prunable  # concatenated with the fixed class token
    cls = _group_of(graph, "cls")
    assert not cls.prunable
    assert "broadcast_to" in cls.reason
    assert "size 16 on the channel axis is a constant" in cls.reason


class _TwoInputs(nn.Module):
    """Two prunable groups (``a``/``b`` summed, then ``c``) behind a keyword input."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 8), nn.Linear(3, 8)
        self.c, self.d = nn.Linear(8, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.a(x)
        if context is not None:
            h = h + self.b(context)
        return self.d(torch.relu(self.c(torch.relu(h))))


def _importance_of(kind: str, inputs: Any, targets: torch.Tensor) -> Any:
    if kind == "taylor":
        return TaylorImportance(inputs, targets)
    if kind == "snip":
        return SNIPImportance(inputs, targets)
    return SynFlowImportance() if kind == "synflow" else MagnitudeImportance()


@pytest.mark.parametrize("kind", ["l2", "taylor", "snip", "synflow"])
def test_tuple_list_and_dict_example_inputs_give_the_same_scores_and_plan(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    model = _TwoInputs().double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    x = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    c = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    forms: dict[str, Any] = {
        "tuple": (x, c),
        "list": [x, c],
        "dict": {"x": x, "context": c},
        "reordered_dict": {"context": c, "x": x},
    }
    results = {}
    for name, inputs in forms.items():
        graph = DependencyGraph(model, inputs)
        imp = _importance_of(kind, inputs, y)
        groups = sorted(
            tuple(sorted((m.module, m.param, m.dim) for m in g.members))
            for g in graph.prunable_groups()
        )
        plan = plan_pruning(graph, imp, 0.5, scope="global")
        with torch.no_grad():
            out = prune(graph, plan)(x, c)
        results[name] = (groups, imp(graph), plan.state_dict(), out)
    groups, scores, plan, out = results["tuple"]
    assert len(groups) == 2
    assert sum(v.numel() for v in plan.values()) > 0
    for name in forms:
        assert results[name][0] == groups, name
        assert results[name][1].keys() == scores.keys(), name
        assert all(torch.equal(results[name][1][k], v) for k, v in scores.items()), name
        assert results[name][2].keys() == plan.keys(), name
        assert all(torch.equal(results[name][2][k], v) for k, v in plan.items()), name
        assert torch.equal(results[name][3], out), name


class _SizedByAnotherSize(nn.Module):
    """``h [B, N, 8]`` reshaped with a size that is no count of its channels: the width of the
    untracked input (``B, N, C = x.shape``) or the token count ``N`` of ``h`` itself (8 too)."""

    def __init__(self, size_of: str) -> None:
        super().__init__()
        self.size_of = size_of
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        size = x.shape[2] if self.size_of == "input" else h.size(1)
        return self.fc2(h.reshape(x.shape[0], -1, size)).mean(1)


@pytest.mark.parametrize("size_of", ["input", "tokens"])
def test_a_channel_size_read_from_another_axis_or_tensor_freezes(size_of: str) -> None:
    torch.manual_seed(0)
    model, x = _SizedByAnotherSize(size_of).eval(), torch.randn(2, 8, 8)
    graph = DependencyGraph(model, x)
    group = _group_of(graph, "fc1")
    assert not group.prunable
    assert "no count of them" in group.reason
    small = prune(graph, plan_pruning(graph, "l2", 0.5))
    torch.testing.assert_close(small(x), model(x))  # nothing removed that the reshape needs


class _TokenMixer(nn.Module):
    """An MLP-Mixer block: ``x + mlp_tokens(norm(x).transpose(1, 2)).transpose(1, 2)`` (the
    token MLP's ``nn.Linear`` layers act along the tokens, the channels on axis 1), then a
    channel MLP: ``[B, 6, 5] -> [B, 3]``."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 8)
        self.norm = nn.LayerNorm(8)
        self.tokens = nn.Sequential(nn.Linear(6, 12), nn.GELU(), nn.Linear(12, 6))
        self.channels = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.tokens(self.norm(h).transpose(1, 2)).transpose(1, 2)
        h = h + self.channels(h)
        return self.head(h).mean(1)


def test_linear_along_another_axis_passes_channels_through() -> None:
    """Before 0.5.42 the token MLP froze the residual width ("input features not on the last
    axis"); its own weights span the tokens, not channels, and stay whole."""
    torch.manual_seed(0)
    model = _TokenMixer().eval()
    graph = _check_oracle(model, torch.randn(2, 6, 5))
    assert _group_of(graph, "embed").prunable
    assert not any(name.startswith("tokens") for g in graph.groups for name in g.producers)
    hard = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert tuple(hard.tokens[0].weight.shape) == (12, 6)
    assert hard.embed.out_features < 8


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision's ShuffleNetV2 ``channel_shuffle``: ``[B, C, H, W]``, channels interleaved
    across ``groups`` (a literal of ``forward``)."""
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, c, h, w)


class _ShuffleUnit(nn.Module):
    """A ShuffleNetV2 unit: half the channels pass, half go through a branch, then the two
    halves are concatenated and shuffled across ``groups`` parts; ``scaled`` also multiplies
    the output by ``c // 2`` (the count's part read as a number): ``[B, 3, H, W] -> [B, 4]``."""

    def __init__(self, groups: int = 2, scaled: bool = False) -> None:
        super().__init__()
        # a literal of forward, as torchvision's channel_shuffle(out, 2) (an int attribute
        # would be a head count that prune rewrites)
        self.shuffle = functools.partial(_channel_shuffle, groups=groups)
        self.scaled = scaled
        self.stem = nn.Conv2d(3, 12, 1)
        self.branch = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.Conv2d(6, 6, 1))
        self.head = nn.Conv2d(12, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        a, b = y.chunk(2, dim=1)
        y = self.shuffle(torch.cat([a, torch.relu(self.branch(b))], dim=1))
        if self.scaled:
            y = y * (y.size(1) // 2)
        return self.head(y).mean((2, 3))


@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle_keeps_its_parts_and_prunes_within_them(groups: int) -> None:
    """The literal part count stays: channel j of every part is one unit, and ``c //
    groups`` read from the pruned input still splits them (before 0.5.42 the shuffle froze:
    "size 2 on the channel axis is a constant of forward")."""
    torch.manual_seed(0)
    model = _ShuffleUnit(groups).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 5, 5))
    assert _group_of(graph, "stem").prunable
    hard = prune(graph, plan_pruning(graph, "l2", 0.5))
    assert hard.head.in_channels % groups == 0  # the shuffled parts keep equal widths
    assert hard.head.in_channels < 12


def test_channel_count_part_read_as_a_number_freezes() -> None:
    torch.manual_seed(0)
    graph = DependencyGraph(_ShuffleUnit(scaled=True).eval(), torch.randn(2, 3, 5, 5))
    stem = _group_of(graph, "stem")
    assert not stem.prunable
    assert "computes with the channel count" in stem.reason


class _RepeatedProbe(nn.Module):
    """SigLIP's attention-pooling head: a learned query ``[1, 1, C]`` repeated over the batch
    (``probe.repeat(B, 1, 1)``) and added to the tokens; with ``tiled``, the tokens' channels
    are repeated instead (``h.repeat(1, 1, 2)``), which the next layer reads twice."""

    def __init__(self, tiled: bool = False) -> None:
        super().__init__()
        self.tiled = tiled
        self.fc = nn.Linear(6, 8)
        self.probe = nn.Parameter(torch.randn(1, 1, 8))
        self.out = nn.Linear(16 if tiled else 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, 6]
        h = self.fc(x)
        if self.tiled:
            return self.out(h.repeat(1, 1, 2))
        return self.out(torch.relu(h + self.probe.repeat(h.shape[0], 1, 1)))


def test_repeat_over_other_axes_keeps_the_channels() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6)
    graph = _check_oracle(_RepeatedProbe().eval(), x)
    group = _group_of(graph, "fc")
    assert group.prunable  # "unsupported method repeat" froze it before 0.5.48
    assert {(m.module, m.param) for m in group.members} >= {("fc", "weight"), ("", "probe")}
    tiled = _group_of(DependencyGraph(_RepeatedProbe(tiled=True).eval(), x), "fc")
    assert not tiled.prunable
    assert "repeats the channels" in tiled.reason


class _AliasedArithmetic(nn.Module):
    """``torch.multiply`` / ``torch.subtract`` / ``Tensor.divide`` (ConvBERT calls
    ``torch.multiply``): the aliases of mul / sub / div were unsupported functions."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(6, 8), nn.Linear(6, 8), nn.Linear(8, 3)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.subtract(torch.multiply(self.a(x), torch.sigmoid(self.b(x))), 0.1)
        return self.out(torch.true_divide(h.divide(self.gamma), 2.0))


def test_aliases_of_arithmetic_follow_the_channels() -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_AliasedArithmetic().eval(), torch.randn(2, 5, 6))
    group = _group_of(graph, "a")
    assert group.prunable, group.reason
    assert ("", "gamma") in graph.divisors  # a divisor: 1 on removed channels in the oracle


class _IndexedTable(nn.Module):
    """XGLM's positions: rows of a ``[positions, C]`` table taken with ``index_select(0,
    ...)`` and added to the tokens; with ``channels``, some channels are taken instead."""

    def __init__(self, channels: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.fc, self.out = nn.Linear(6, 8), nn.Linear(4 if channels else 8, 3)
        self.table = nn.Parameter(torch.randn(10, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, 6]
        h = self.fc(x)
        if self.channels:
            return self.out(h.index_select(-1, torch.arange(4)))
        rows = torch.arange(x.shape[1])
        return self.out(torch.relu(h + torch.index_select(self.table, 0, rows)))


def test_index_select_of_other_axes_keeps_the_channels() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6)
    group = _group_of(_check_oracle(_IndexedTable().eval(), x), "fc")
    assert group.prunable, group.reason  # "unsupported" before 0.5.48
    assert ("", "table") in {(m.module, m.param) for m in group.members}
    taken = _group_of(DependencyGraph(_IndexedTable(channels=True).eval(), x), "fc")
    assert not taken.prunable
    assert "takes part of the channel axis" in taken.reason


class _GroupedExperts(nn.Module):
    """Three experts' matrices as 3-D parameters ``[experts, out, in]`` applied to groups of
    rows (2, 3 and 2) with ``torch._grouped_mm`` (the weights' last axes transposed) or one
    expert at a time (``F.linear(rows, w[e])``), scaled by a one-channel gate
    ``sigmoid(Linear(8, 1))`` and added to the stream: ``[7, 4] -> [7, 3]``."""

    def __init__(self, grouped: bool) -> None:
        super().__init__()
        self.grouped = grouped
        self.stem, self.gate, self.head = nn.Linear(4, 8), nn.Linear(8, 1), nn.Linear(8, 3)
        self.up = nn.Parameter(torch.randn(3, 12, 8) * 0.5)
        self.down = nn.Parameter(torch.randn(3, 8, 12) * 0.5)
        self.register_buffer("offs", torch.tensor([2, 5, 7], dtype=torch.int32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        if self.grouped:
            inner = torch.relu(torch._grouped_mm(h, self.up.transpose(-2, -1), offs=self.offs))
            y = torch._grouped_mm(inner, self.down.mT, offs=self.offs)
        else:
            rows = [h[:2], h[2:5], h[5:]]
            y = torch.cat(
                [
                    F.linear(torch.relu(F.linear(r, self.up[e])), self.down[e])
                    for e, r in enumerate(rows)
                ]
            )
        return self.head(h + y * torch.sigmoid(self.gate(h)))


@pytest.mark.parametrize("grouped", [True, False])
def test_grouped_products_of_experts_weights_prune_like_linear_layers(grouped: bool) -> None:
    if grouped and not hasattr(torch, "_grouped_mm"):
        pytest.skip("this torch has no torch._grouped_mm")
    torch.manual_seed(0)
    graph = _check_oracle(_GroupedExperts(grouped), torch.randn(7, 4))
    assert _group_of(graph, "stem").prunable  # the stream: experts' inputs and outputs
    inner = next(g for g in graph.groups if any(m.param == "up" for m in g.members if m.dim == 1))
    assert inner.prunable  # channel j of every expert
    assert (inner.size, inner.multiple) == (12, 4)  # rows of whole 16-byte units
    assert "broadcasts a single channel" in _group_of(graph, "gate").reason


class _FunctionalNorm(nn.Module):
    """OLMo's LayerNorm: no parameters, ``F.layer_norm`` over its own ``normalized_shape``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.normalized_shape = (width,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, None, None, 1e-5)


class _AdaptiveNormBlock(nn.Module):
    """A residual block normalized without parameters (DiT's adaLN: a non-affine
    ``nn.LayerNorm`` scaled and shifted by a conditioning projection; or OLMo's functional
    norm), the norm also applied before the head: ``[B, T, 4] -> [B, T, 3]``."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.stem, self.cond = nn.Linear(4, 16), nn.Linear(4, 32)
        self.norm = (
            _FunctionalNorm(16) if functional else nn.LayerNorm(16, elementwise_affine=False)
        )
        self.mlp, self.head = nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        shift, scale = self.cond(x).chunk(2, dim=-1)
        h = h + self.mlp(self.norm(h) * (1 + scale) + shift)
        return self.head(self.norm(h))


@pytest.mark.parametrize("functional", [False, True])
def test_layer_norms_without_parameters_follow_the_residual_width(functional: bool) -> None:
    """Before 0.5.49 nothing carried their channels: the residual width froze."""
    torch.manual_seed(0)
    model, x = _AdaptiveNormBlock(functional).eval(), torch.randn(2, 5, 4)
    graph = _check_oracle(model, x)
    width = _group_of(graph, "stem")
    assert width.prunable
    assert list(width.bare_norms) == ["norm"]
    plan = plan_pruning(graph, "l2", 0.5)
    assert prune(graph, plan).norm.normalized_shape == (8,)
    if not functional:  # the oracle (a MaskedLayerNorm) traced and pruned again
        _check_oracle(soft_prune(graph, plan), x, 0.75)


class _SharedNorm(nn.Module):
    """One non-affine LayerNorm module applied to two widths' channels (8 and 8, one set)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.norm = (
            nn.Linear(4, 8),
            nn.Linear(4, 8),
            nn.LayerNorm(8, elementwise_affine=False),
        )
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.norm(self.a(x)), self.norm(self.b(x))], dim=-1))


def test_a_shared_layer_norm_without_parameters_keeps_one_width() -> None:
    torch.manual_seed(0)
    graph = _check_oracle(_SharedNorm().eval(), torch.randn(3, 4))
    assert _group_of(graph, "a") is _group_of(graph, "b")  # one normalized_shape for both


@pytest.mark.parametrize("groups", [1, 4])
def test_group_norms_without_parameters_prune(groups: int) -> None:
    """A non-affine GroupNorm froze its channels before 0.5.49. Several groups lose whole
    groups (the others keep their statistics) and ``num_groups`` follows; one group is a
    layer norm over ``[C, H, W]`` whose oracle takes statistics over the kept channels."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.GroupNorm(groups, 16, affine=False),
        nn.ReLU(),
        nn.Conv2d(16, 4, 1),
    ).eval()
    graph = _check_oracle(model, torch.randn(2, 3, 8, 8))
    assert list(_group_of(graph, "0").bare_norms) == ["1"]
    norm = prune(graph, plan_pruning(graph, "l2", 0.5))[1]
    assert (norm.num_groups, norm.num_channels) == ((1, 8) if groups == 1 else (2, 8))


def test_sync_batch_norm_prunes_like_batch_norm() -> None:
    """``nn.SyncBatchNorm`` (what ``convert_sync_batchnorm`` puts in a distributed model;
    a BatchNorm outside training on several processes) froze as an unsupported module
    before 0.5.49."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.SyncBatchNorm(16), nn.Conv2d(16, 3, 1))
    with torch.no_grad():
        model[1].running_mean.normal_()  # statistics that are not the default
        model[1].running_var.uniform_(0.5, 2.0)
    graph = _check_oracle(model.eval(), torch.randn(2, 3, 8, 8))
    assert prune(graph, plan_pruning(graph, "l2", 0.5))[1].num_features == 8


class _Stepped(nn.Module):
    """A recurrent cell run step by step over ``[T, B, 4]`` (its state carried from step to
    step, the LSTM's ``(h, c)``), the last state read out: ``-> [B, 3]``; or started from a
    state given as an input (``h0 [B, 16]``)."""

    def __init__(self, cell: type[nn.RNNCellBase]) -> None:
        super().__init__()
        self.embed, self.cell, self.head = nn.Linear(4, 8), cell(8, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        state: Any = None if h0 is None else (h0, h0) if isinstance(self.cell, nn.LSTMCell) else h0
        for step in x:
            state = self.cell(self.embed(step), state)
        return self.head(state[0] if isinstance(self.cell, nn.LSTMCell) else state)


@pytest.mark.parametrize("cell", [nn.RNNCell, nn.GRUCell, nn.LSTMCell])
def test_recurrent_cells_prune_their_hidden_units(cell: type[nn.RNNCellBase]) -> None:
    """Unsupported modules before 0.5.49 (both widths froze)."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4)
    graph = _check_oracle(_Stepped(cell).eval(), x)
    assert all(g.prunable for g in graph.groups if g.producers != ["head"])
    pruned = prune(graph, plan_pruning(graph, "l2", 0.5)).cell
    assert (pruned.input_size, pruned.hidden_size) == (4, 8)
    given = DependencyGraph(_Stepped(cell).eval(), (x, torch.randn(2, 16)))
    assert "state whose hidden units are untracked" in _group_of(given, "cell").reason


class _Resumed(nn.Module):
    """An LSTM run twice, the second run resuming from the first one's ``(h, c)`` passed on
    whole: ``[T, B, 4] -> [T, B, 3]``."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.lstm, self.head = nn.Linear(4, 8), nn.LSTM(8, 16, 2), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.lstm(self.embed(x))
        y, _ = self.lstm(self.embed(x), state)
        return self.head(y)


def test_a_recurrent_state_passed_on_whole_keeps_the_units_prunable() -> None:
    """The state tuple, one node of the trace, froze the units before 0.5.49 (untracked)."""
    torch.manual_seed(0)
    graph = _check_oracle(_Resumed().eval(), torch.randn(5, 2, 4))
    assert _group_of(graph, "lstm").prunable


class _SoftSplit(nn.Module):
    """T2T-ViT's soft split: a convolution's channels unfolded into ``k * k`` patches
    (``[B, 8, 6, 6] -> [B, 8 * k, L]``, channel-major) and projected per patch."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.conv, self.split = nn.Conv2d(3, 8, 3, padding=1), nn.Unfold((2, 3), stride=2)
        self.proj = nn.Linear(8 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        patches = F.unfold(h, (2, 3), stride=2) if self.functional else self.split(h)
        return self.proj(patches.transpose(1, 2))


@pytest.mark.parametrize("functional", [False, True])
def test_unfolded_channels_prune_as_runs_of_the_window(functional: bool) -> None:
    """``nn.Unfold`` froze as an unsupported module before 0.5.49."""
    torch.manual_seed(0)
    graph = _check_oracle(_SoftSplit(functional).eval(), torch.randn(2, 3, 6, 6))
    assert _group_of(graph, "conv").prunable
    assert prune(graph, plan_pruning(graph, "l2", 0.5)).proj.in_features == 4 * 6


class _BilinearFusion(nn.Module):
    """Two branches fused by ``nn.Bilinear(6, 8, 10)``: ``[B, 4] -> [B, 3]``."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Linear(4, 6), nn.Linear(4, 8)
        self.fuse, self.head = nn.Bilinear(6, 8, 10), nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fuse(self.left(x), self.right(x))))


def test_bilinear_layers_prune_both_inputs_and_outputs() -> None:
    """``nn.Bilinear`` froze as an unsupported module before 0.5.49."""
    torch.manual_seed(0)
    graph = _check_oracle(_BilinearFusion().eval(), torch.randn(5, 4))
    fuse = prune(graph, plan_pruning(graph, "l2", 0.5)).fuse
    assert (fuse.in1_features, fuse.in2_features, fuse.out_features) == (3, 4, 5)
    assert fuse.weight.shape == (5, 3, 4)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bags_prune_their_columns(mode: str) -> None:
    """``nn.EmbeddingBag`` (a bag of rows reduced per column) was left out of every group
    before 0.5.49: its columns could not be pruned."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.EmbeddingBag(20, 8, mode=mode), nn.ReLU(), nn.Linear(8, 3)).eval()
    graph = _check_oracle(model, torch.randint(0, 20, (3, 5)))
    assert prune(graph, plan_pruning(graph, "l2", 0.5))[0].embedding_dim == 4
