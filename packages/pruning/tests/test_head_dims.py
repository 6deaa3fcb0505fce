"""``head_dims=True``: attention loses dimensions within its heads (the same ones in every head)
instead of whole heads, and the pruned model still equals the soft-pruning oracle."""

import math
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    SmallViT,
    plan_pruning,
    prune,
    prune_model,
    soft_prune,
)
from neuronkit.pruning.graph import _strided_channels


def _group_of(graph: DependencyGraph, producer: str) -> Any:
    return next(g for g in graph.groups if producer in g.producers)


def _check_oracle(model: nn.Module, x: Any, graph: DependencyGraph, **plan: Any) -> nn.Module:
    p = plan_pruning(graph, "l2", 0.5, **plan)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # configs that cannot describe the pruned model
        hard, soft = prune(graph, p), soft_prune(graph, p)
        run = (lambda m: m(**x)) if isinstance(x, dict) else (lambda m: m(x))
        y0, y_hard, y_soft = (getattr(o, "logits", o) for o in (run(model), run(hard), run(soft)))
    assert y_hard.shape == y0.shape
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5 * max(1.0, float(y0.abs().max())), rtol=0)
    assert not torch.allclose(y_soft, y0, rtol=1e-3, atol=0)  # something was removed
    return hard


@pytest.mark.parametrize(
    ("src", "out", "axis", "expected"),
    [
        ((2, 5, 4, 8), (2, 5, 32), 3, (2, 4, 1)),  # [B, T, H, d] -> [B, T, H*d]
        ((2, 4, 8, 3), (2, 96), 2, (1, 4, 3)),  # heads, d and a trailing axis merged
        ((2, 5, 4, 8), (10, 32), 3, (1, 4, 1)),  # batch and time merged before
        ((2, 5, 4, 8), (2, 5, 4, 8), 3, (3, 1, 1)),  # nothing merged
        ((2, 5, 4, 8), (2, 20, 8), 3, (2, 1, 1)),  # the channel axis kept, others merged
        ((2, 5, 4, 8), (2, 5, 2, 16), 3, (3, 2, 1)),  # heads regrouped: d twice per entry
        ((2, 1, 4, 8), (2, 1, 32), 3, (2, 4, 1)),  # one query token
        ((1, 1, 4, 8), (1, 1, 32), 3, (2, 4, 1)),  # one token, batch 1
        ((2, 8, 6, 4), (48, 2, 2, 2), 1, (0, 2, 3)),  # unfold [B, C, H, W] -> [B C n_h, ...]
        ((2, 8, 6, 4), (2, 96, 2), 1, (1, 1, 12)),  # H W regrouped: 12 entries a channel
        ((2, 8, 6, 4), (2, 4, 96), 1, None),  # two channels on each entry of axis 1
        ((2, 4, 8, 3), (2, 4, 4, 6), 2, None),  # two channels on each entry of axis 2
    ],
)
def test_strided_channels_locates_the_channels(
    src: Any, out: Any, axis: int, expected: Any
) -> None:
    """Axis ``k`` of the output holds channel ``c`` at entries ``(o C + c) inner + i``."""
    channels = list(range(src[axis]))
    got = _strided_channels(src, out, axis, channels)
    if expected is None:
        assert got is None
    else:
        k, outer, inner = expected
        assert got == (k, [c for _ in range(outer) for c in channels for _ in range(inner)])


def test_strided_channels_folds_back() -> None:
    """MobileViT's fold: ``[B C n_h, n_w, p_h, p_w] -> [B, C, H, W]`` takes the unfolded
    channels (``C`` channels, each ``n_h`` entries, twice for ``B = 2``) back to axis 1."""
    unfolded = [c for _ in range(2) for c in "abcd" for _ in range(3)]
    assert _strided_channels((24, 2, 2, 2), (2, 4, 6, 4), 0, unfolded) == (1, list("abcd"))
    assert _strided_channels((24, 2, 2, 2), (2, 4, 24), 0, unfolded) == (1, list("abcd"))
    assert _strided_channels((24, 2, 2, 2), (2, 2, 48), 0, unfolded) is None


class _Attention(nn.Module):
    """Self-attention written with tensor ops: ``view(B, T, heads, -1)`` (no size attribute),
    then ``q @ k^T`` or ``F.scaled_dot_product_attention`` with or without a scale."""

    def __init__(self, kind: str, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.kind, self.heads = kind, heads
        self.embed = nn.Linear(6, dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.embed(x)
        q, k, v = (
            p(h).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v)
        )
        scale = 1 / math.sqrt(8)
        if self.kind == "matmul":
            a = (q @ k.transpose(-2, -1) * scale).softmax(-1) @ v
        elif self.kind == "sdpa_scale":
            a = F.scaled_dot_product_attention(q, k, v, scale=scale)
        else:
            a = F.scaled_dot_product_attention(q, k, v)
        return self.head(h + self.o(a.transpose(1, 2).reshape(b, t, -1)))


@pytest.mark.parametrize("kind", ["matmul", "sdpa_scale", "sdpa"])
def test_tensor_op_attention_prunes_dimensions_within_heads(kind: str) -> None:
    torch.manual_seed(0)
    model, x = _Attention(kind).eval(), torch.randn(2, 5, 6)
    graph = DependencyGraph(model, x, head_dims=True)
    qk, vo = _group_of(graph, "q"), _group_of(graph, "v")
    assert (vo.size, vo.prunable) == (8, True)  # the 8 dimensions of a head, not its 4 heads
    assert {m.module for m in vo.members} == {"v", "o"}
    if kind == "sdpa":  # the default scale 1 / sqrt(8) would change with q / k dimensions
        assert not qk.prunable
        assert "default scale" in qk.reason
    else:
        assert (qk.size, qk.prunable) == (8, True)
        assert {m.module for m in qk.members} == {"q", "k"}
    hard = _check_oracle(model, x, graph, ignored_layers=["head", "embed"])
    assert (hard.v.out_features, hard.o.in_features) == (16, 16)  # 4 heads of 4 dimensions
    if kind != "sdpa":
        assert hard.q.out_features == hard.k.out_features == 16
    # whole heads by default: one unit per head
    assert _group_of(DependencyGraph(model, x), "v").size == 4


@pytest.mark.parametrize("head_dims", [False, True])
@pytest.mark.parametrize("batch", [1, 2])
def test_one_token_attention_prunes_like_a_sequence(head_dims: bool, batch: int) -> None:
    """``[B, 1, C] -> [B, 1, heads, d]`` (one query token, a decoder's step): the singleton
    token axis leaves the heads where they are (they froze: "splits the channel axis")."""
    torch.manual_seed(0)
    model, x = _Attention("matmul").eval(), torch.randn(batch, 1, 6)
    graph = DependencyGraph(model, x, head_dims=head_dims)
    heads = _group_of(graph, "v")
    assert (heads.size, heads.prunable) == (8 if head_dims else 4, True)
    assert [g.size for g in graph.groups] == [
        g.size for g in DependencyGraph(model, x.repeat(1, 5, 1), head_dims=head_dims).groups
    ]
    hard = _check_oracle(model, x, graph, ignored_layers=["head", "embed"])
    assert hard.v.out_features == 16
    longer = torch.randn(batch, 7, 6)  # what the one-token trace pruned runs on sequences
    torch.testing.assert_close(
        hard(longer),
        soft_prune(graph, plan_pruning(graph, "l2", 0.5, ignored_layers=["head", "embed"]))(longer),
        atol=1e-5,
        rtol=0,
    )


def test_multihead_attention_module_keeps_whole_heads() -> None:
    torch.manual_seed(0)
    model, x = SmallViT().eval(), torch.randn(2, 3, 16, 16)
    dims, heads = DependencyGraph(model, x, head_dims=True), DependencyGraph(model, x)
    assert [(g.size, g.prunable, g.producers) for g in dims.groups] == [
        (g.size, g.prunable, g.producers) for g in heads.groups
    ]


def test_head_dims_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="head_dims"):
        DependencyGraph(nn.Linear(2, 2), torch.randn(1, 2), head_dims="yes")  # type: ignore[arg-type]


def test_prune_model_passes_head_dims() -> None:
    torch.manual_seed(0)
    model, x = _Attention("matmul").eval(), torch.randn(2, 5, 6)
    pruned = prune_model(model, x, 0.5, head_dims=True, ignored_layers=["head", "embed"])
    assert isinstance(pruned, _Attention)
    assert pruned.v.out_features == 16


transformers = pytest.importorskip(
    "transformers", reason="Hugging Face models need the optional transformers dependency"
)
from neuronkit.pruning import hf_zoo  # noqa: E402


def _heads(module: nn.Module) -> int:
    names = ("num_heads", "n_heads", "num_attention_heads")
    return int(next(getattr(module, n) for n in names if hasattr(module, n)))


@pytest.mark.parametrize("name", ["opt", "distilbert", "vit", "t5"])
def test_hugging_face_attention_prunes_dimensions_within_heads(name: str) -> None:
    """OPT views its heads with ``self.head_dim`` (rewritten; ``num_heads`` stays), DistilBERT
    and ViT with ``-1`` heads; T5's per-head position bias keeps the heads whole."""
    build, make_inputs = hf_zoo()[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build().eval()
    with torch.no_grad():  # larger than the init's 0.02, so pruning visibly moves the output
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)
    x = make_inputs()
    graph = DependencyGraph(model, x, head_dims=True)
    attn = {
        "opt": "model.decoder.layers.0.self_attn",
        "distilbert": "distilbert.transformer.layer.0.attention",
        "vit": "vit.layers.0.attention",
        "t5": "encoder.block.0.layer.0.SelfAttention",
    }[name]
    module = dict(model.named_modules())[attn]
    heads = _heads(module)
    query = next(n for n in ("q_proj", "q_lin", "q") if hasattr(module, n))
    group = _group_of(graph, f"{attn}.{query}")
    width = getattr(module, query).out_features
    assert (group.prunable, group.size) == (True, width // heads)  # dimensions, not heads
    hard = _check_oracle(model, x, graph)
    pruned = dict(hard.named_modules())[attn]
    assert getattr(pruned, query).out_features == width // 2
    assert _heads(pruned) == heads
    if name == "opt":
        assert pruned.head_dim == module.head_dim // 2
