"""Hugging Face transformer blocks in the dependency graph: tiny GPT-2, LLaMA and BERT models.

Correctness is the SPA soft-pruning oracle: the physically pruned model must compute the same
logits as the original with the removed channels zeroed. After pruning, the model's config
describes its new sizes (``save_pretrained`` / ``from_pretrained`` round-trip) or a warning says
why no config can.
"""

import copy
import importlib
import warnings
from typing import Any

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face models need the optional transformers dependency"
)

from neuronkit.pruning import (  # noqa: E402
    DependencyGraph,
    PruningPlan,
    UntraceableModelError,
    plan_pruning,
    prune,
    prune_model,
    soft_prune,
    sync_hf_config,
)


def _gpt2(seed: int = 0) -> Any:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=128)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _ids(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 128, (2, 16), generator=g)


def _logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


def test_gpt2_groups_residual_heads_mlp_and_frozen_logits() -> None:
    model = _gpt2()
    graph = DependencyGraph(model, _ids())
    by_producer = {p: g for g in graph.groups for p in g.producers}
    stream = by_producer["transformer.wte"]
    assert stream.prunable
    assert stream.size == 64
    assert {"transformer.wpe", "transformer.h.1.mlp.c_proj"} <= set(stream.producers)
    members = {(m.module, m.param, m.dim) for m in stream.members}
    assert ("lm_head", "weight", 1) in members  # tied with wte, pruned along the same columns
    assert ("transformer.ln_f", "weight", 0) in members
    heads = by_producer["transformer.h.0.attn.c_attn"]
    assert heads.prunable
    assert heads.size == 4  # one channel per attention head
    c_attn = next(m for m in heads.members if m.param == "weight")
    # head 1: its 16 query, 16 key and 16 value columns of the fused qkv projection
    assert c_attn.positions[1] == [*range(16, 32), *range(80, 96), *range(144, 160)]
    c_proj_in = next(m for m in heads.members if m.module.endswith("attn.c_proj"))
    assert c_proj_in.dim == 0
    assert c_proj_in.positions[1] == list(range(16, 32))
    mlp = by_producer["transformer.h.0.mlp.c_fc"]
    assert mlp.prunable
    assert mlp.size == 256
    logits = by_producer["lm_head"]
    assert not logits.prunable
    assert "model output" in logits.reason


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
@pytest.mark.parametrize("scope", ["local", "global"])
def test_gpt2_hard_prune_matches_soft_oracle(ratio: float, scope: str) -> None:
    model, ids = _gpt2(), _ids()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", ratio, scope=scope)
    assert plan.num_removed() > 0
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    y_hard, y_soft = _logits(hard, ids), _logits(soft, ids)
    assert y_hard.shape == (2, 16, 128)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(y_hard, _logits(model, ids), atol=1e-4)  # not vacuous
    assert hard.lm_head.weight is hard.transformer.wte.weight  # the tie survives
    n_before = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in hard.parameters()) < n_before
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k])
    # other inputs of the same shape family: the pruned model is a real model, not the trace
    other = torch.randint(0, 128, (3, 9), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(_logits(hard, other), _logits(soft, other), atol=1e-5, rtol=0)


def test_gpt2_local_half_prunes_heads_width_and_mlp() -> None:
    model, ids = _gpt2(), _ids()
    small = prune_model(model, ids, 0.5, "l2", ignored_layers=["lm_head"])
    attn = small.transformer.h[0].attn
    assert attn.num_heads == 2
    assert attn.split_size == attn.embed_dim == 32
    assert tuple(attn.c_attn.weight.shape) == (32, 96)
    assert tuple(small.transformer.h[0].mlp.c_fc.weight.shape) == (32, 128)
    assert tuple(small.transformer.wte.weight.shape) == (128, 32)
    assert _logits(small, ids).shape == (2, 16, 128)


def test_gpt2_heads_prune_alone_and_conv1d_biases_stay() -> None:
    """HF ``Conv1D`` keeps ``[in, out]`` weights: pruning the attention output projection's
    inputs (the heads) with the residual stream kept must leave its bias whole, although it
    has as many entries as the inputs (0.5.19 sliced it, and the model failed on its first
    call)."""
    model, ids = _gpt2(), _ids()
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["lm_head", "transformer.wte"])
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    c_proj = hard.transformer.h[0].attn.c_proj
    assert tuple(c_proj.weight.shape) == (32, 64)
    assert tuple(c_proj.bias.shape) == (64,)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)


class _UntraceableGPT2(transformers.GPT2LMHeadModel):  # type: ignore[misc]
    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        out = super().forward(input_ids, **kwargs)
        scale = float(out.logits.std())  # leaves the graph: a Python float of a traced value
        out.logits = out.logits / scale
        return out


def test_untraceable_hf_model_names_the_operation() -> None:
    cfg = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=16, vocab_size=32)
    cfg._attn_implementation = "eager"
    model = _UntraceableGPT2(cfg).eval()
    with pytest.raises(UntraceableModelError, match=r"float\(out\.logits\.std\(\)\)"):
        DependencyGraph(model, torch.randint(0, 32, (2, 8)))


def _llama(seed: int = 0) -> Any:
    cfg = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return _larger_weights(transformers.LlamaForCausalLM(cfg).eval())


def _larger_weights(model: Any) -> Any:
    """Matrices redrawn with std 0.2 (the init's 0.02 is so small that pruning barely moves the
    logits and the oracle comparison would be nearly vacuous)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)
    return model


def test_llama_groups_gqa_heads_rmsnorm_stream_and_swiglu() -> None:
    graph = DependencyGraph(_llama(), _ids())
    by_producer = {p: g for g in graph.groups for p in g.producers}
    stream = by_producer["model.embed_tokens"]
    assert stream.prunable
    assert stream.size == 64
    norms = {m.module for m in stream.members if m.role == "norm"}
    assert {"model.norm", "model.layers.0.input_layernorm"} <= norms
    heads = by_producer["model.layers.0.self_attn.k_proj"]
    # grouped-query attention: one channel per key/value head together with its 2 query heads
    assert heads.prunable
    assert heads.size == 2
    assert {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"} <= set(
        heads.producers
    )
    q = next(m for m in heads.members if m.module.endswith("q_proj"))
    assert q.positions[1] == list(range(32, 64))  # query heads 2 and 3 share kv head 1
    mlp = by_producer["model.layers.0.mlp.gate_proj"]
    assert mlp.prunable
    assert mlp.size == 128
    assert "model.layers.0.mlp.up_proj" in mlp.producers


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_llama_hard_prune_matches_soft_oracle(ratio: float) -> None:
    model, ids = _llama(), _ids()
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", ratio)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    y_hard, y_soft, y0 = _logits(hard, ids), _logits(soft, ids), _logits(model, ids)
    assert y_hard.shape == (2, 16, 128)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(y_hard, y0, atol=1e-3)  # the check is not vacuous
    assert hard.model.norm.weight.shape[0] < 64
    if ratio == 0.5:
        assert hard.model.layers[0].self_attn.k_proj.weight.shape[0] == 16  # 1 kv head
        assert hard.model.layers[0].self_attn.q_proj.weight.shape[0] == 32  # 2 q heads


def _bert(seed: int = 0) -> Any:
    cfg = transformers.BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=128,
        max_position_embeddings=32,
        num_labels=3,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return _larger_weights(transformers.BertForSequenceClassification(cfg).eval())


def test_bert_groups_stream_heads_intermediate_and_frozen_buffers() -> None:
    graph = DependencyGraph(_bert(), _ids())
    by_producer = {p: g for g in graph.groups for p in g.producers}
    stream = by_producer["bert.embeddings.word_embeddings"]
    assert stream.prunable
    assert stream.size == 64
    assert {"bert.embeddings.token_type_embeddings", "bert.pooler.dense"} & set(stream.producers)
    heads = by_producer["bert.encoder.layer.0.attention.self.query"]
    assert heads.prunable
    assert heads.size == 4
    assert by_producer["bert.encoder.layer.1.intermediate.dense"].size == 128
    assert not by_producer["classifier"].prunable
    # the position / token-type id buffers hold integers (indices), not channels
    assert "bert.embeddings.position_ids" not in by_producer


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_bert_hard_prune_matches_soft_oracle(ratio: float, scope: str) -> None:
    model, ids = _bert(), _ids()
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", ratio, scope=scope)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # global: layers of different widths
        hard = prune(graph, plan)
    soft = soft_prune(graph, plan)
    other = torch.randint(0, 128, (3, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y_hard, y_soft, y0 = hard(other).logits, soft(other).logits, model(other).logits
    assert y_hard.shape == (3, 3)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(y_hard, y0, atol=1e-3)  # the check is not vacuous
    if scope == "local":
        assert hard.config.hidden_size == round(64 * (1 - ratio))
        assert hard.config.num_attention_heads == round(4 * (1 - ratio))


# ---------------------------------------------------------------- config after pruning
def _pruned(model: Any, scope: str = "local", **kwargs: Any) -> Any:
    graph = DependencyGraph(model, _ids())
    return prune(graph, plan_pruning(graph, "l2", 0.5, scope=scope, **kwargs))


def _roundtrip(model: Any, tmp_path: Any) -> float:
    """Save, reload with ``from_pretrained``: same tensors; largest logit difference (the
    reloaded model may pick another attention kernel)."""
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    with torch.no_grad():
        return float((model(_ids()).logits - loaded(_ids()).logits).abs().max())


@pytest.mark.parametrize("make", [_gpt2, _llama])
def test_uniform_pruning_rewrites_hf_config_and_round_trips(make: Any, tmp_path: Any) -> None:
    model = _pruned(make())
    cfg = model.config
    assert cfg.hidden_size == 32
    assert cfg.num_attention_heads == 2
    if make is _llama:
        assert (cfg.intermediate_size, cfg.num_key_value_heads, cfg.head_dim) == (64, 1, 16)
    else:
        assert cfg.n_inner == 128
    assert _roundtrip(model, tmp_path) < 1e-5


def test_sync_hf_config_reports_only_changed_fields() -> None:
    model = _pruned(_llama())
    assert sync_hf_config(model) == {}  # prune() already synced it
    fresh = _llama()
    assert sync_hf_config(fresh) == {}


def test_config_check_computes_each_weight_matrix_once(monkeypatch: Any) -> None:
    hf_config = importlib.import_module("neuronkit.pruning.hf_config")
    monkeypatch.setattr(hf_config, "_REUSE_MIN_WEIGHTS", 1)  # this model's are tiny
    model = _pruned(_llama())
    model.config.intermediate_size = 128  # stale: the check builds the config's model and runs it
    computed: list[torch.nn.Linear] = []
    forward = torch.nn.Linear.forward

    def counted(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        computed.append(self)
        return forward(self, x)

    monkeypatch.setattr(torch.nn.Linear, "forward", counted)
    assert sync_hf_config(model, _ids()) == {"intermediate_size": 64}
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(computed) == len(linears)  # the twin reused the pruned model's products


def test_config_check_tells_head_counts_of_one_width_apart(monkeypatch: Any) -> None:
    hf_config = importlib.import_module("neuronkit.pruning.hf_config")
    monkeypatch.setattr(hf_config, "_REUSE_MIN_WEIGHTS", 1)  # with the projections reused
    model = _pruned(_llama())  # 2 query heads and 1 key/value head of 16 channels
    other = copy.deepcopy(model.config)
    other.num_attention_heads, other.num_key_value_heads, other.head_dim = 4, 2, 8
    twin, shapes = hf_config._built(model, other, "cpu")
    assert shapes == hf_config._shapes(model)  # the same shapes, another function
    inputs = ((_ids(),), None)
    assert not hf_config._same_function(model, twin, inputs)
    twin, _ = hf_config._built(model, copy.deepcopy(model.config), "cpu")
    assert hf_config._same_function(model, twin, inputs)


class _ScaledInPlace(torch.nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.fc, self.out, self.scale = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2), scale

    def forward(self, x: torch.Tensor, **_: Any) -> torch.Tensor:
        h = self.fc(x)
        h.mul_(self.scale)  # written in place after the call: a reused output must be a copy
        return self.out(h)


@pytest.mark.parametrize("budget", [0, 1 << 20])
def test_config_check_reuse_survives_in_place_writes(budget: int, monkeypatch: Any) -> None:
    hf_config = importlib.import_module("neuronkit.pruning.hf_config")
    monkeypatch.setattr(hf_config, "_REUSE_BYTES", budget)
    monkeypatch.setattr(hf_config, "_REUSE_MIN_WEIGHTS", 1)
    torch.manual_seed(0)
    model, inputs = _ScaledInPlace(2.0), ((torch.randn(3, 4),), None)
    assert hf_config._same_function(model, _ScaledInPlace(2.0), inputs)
    assert not hf_config._same_function(model, _ScaledInPlace(3.0), inputs)
    assert not model.fc._forward_hooks  # the recording hooks are removed


def test_layers_of_different_sizes_keep_hf_config_and_warn() -> None:
    model = _llama()
    graph = DependencyGraph(model, _ids())
    plan = plan_pruning(graph, "l2", 0.5, scope="global")
    with pytest.warns(UserWarning, match="layers differ in") as caught:
        pruned = prune(graph, plan)
    assert [w.filename for w in caught] == [__file__]  # the user's line, not prune's
    assert pruned.config.intermediate_size == 128  # unchanged: no single value describes it


def test_gpt2_width_that_is_not_heads_times_head_dim_warns() -> None:
    model = _gpt2()
    graph = DependencyGraph(model, _ids())
    heads = {g.index for g in graph.groups if any(p.endswith("attn.c_attn") for p in g.producers)}
    with pytest.warns(UserWarning, match="no config describes the pruned model"):
        pruned = prune(
            graph,
            plan_pruning(
                graph,
                "l2",
                0.5,
                ignored_layers=sorted(
                    {p for g in graph.groups if g.index in heads for p in g.producers}
                ),
            ),
        )
    assert pruned.config.n_embd == 64


def test_sync_hf_config_rejects_non_hf_model() -> None:
    with pytest.raises(TypeError, match="model: expected a Hugging Face"):
        sync_hf_config(torch.nn.Linear(2, 2))


def _segformer(cls: Any) -> Any:
    """A tiny two-stage SegFormer of class ``cls`` in eval mode (seed 0)."""
    cfg = transformers.SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[16, 32],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    return cls(cfg).eval()


def test_a_config_field_holding_a_list_is_not_overwritten_by_one_size() -> None:
    """SegFormer keeps its per-stage head counts in a list: the head count read off its
    BERT-style attention modules is not written over it (0.5.19 raised the config's
    validation error from ``prune``); the search may change list elements."""
    model = _segformer(transformers.SegformerForImageClassification)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["classifier"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no config may describe the pruned model
        hard = prune(graph, plan)
    assert isinstance(hard.config.num_attention_heads, list)
    with torch.no_grad():
        y_hard, y_soft = hard(x).logits, soft_prune(graph, plan)(x).logits
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)


@pytest.mark.parametrize("called_before", [False, True])
def test_segformer_decode_head_reads_hidden_states_recorded_by_hooks(called_before: bool) -> None:
    """SegFormer's decode head reads every stage's output, which transformers collects with
    forward hooks it registers on the first call that asks for hidden states: the trace sees
    the recorded stages (0.5.23 raised UntraceableModelError), the model keeps one hook per
    stage, and the pruned model equals its oracle."""
    model = _segformer(transformers.SegformerForSemanticSegmentation)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    if called_before:
        model(x)
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    graph = DependencyGraph(model, x)
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks
    prunable = {p for g in graph.groups if g.prunable for p in g.producers}
    assert {"decode_head.linear_fuse", "segformer.stages.1.patch_embeddings.proj"} <= prunable
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=["decode_head.classifier"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no config may describe the pruned model
        hard = prune(graph, plan)
    with torch.no_grad():
        assert len(model(x, output_hidden_states=True).hidden_states) == 2
        y_hard, y_soft = hard(x).logits, soft_prune(graph, plan)(x).logits
    assert y_hard.shape == (2, 3, 8, 8)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert sum(p.numel() for p in hard.parameters()) < sum(p.numel() for p in model.parameters())


def test_dpt_int_of_a_float_computed_from_shapes_is_followed() -> None:
    """DPT sizes its position-embedding grid with ``torch_int(x.size(0) ** 0.5)``: a float
    computed from shapes only becomes the example's integer (0.5.23 refused every traced
    float), and the depth model prunes to its oracle."""
    cfg = transformers.DPTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 16, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    model = transformers.DPTForDepthEstimation(cfg).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, x)
    assert sum(g.prunable for g in graph.groups) >= len(graph.groups) - 1
    plan = plan_pruning(graph, "l2", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no config may describe the pruned model
        hard = prune(graph, plan)
    with torch.no_grad():
        y_hard = hard(x).predicted_depth
        y_soft = soft_prune(graph, plan)(x).predicted_depth
    assert y_hard.shape == (2, 64, 64)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)


def test_int_of_a_float_computed_from_values_is_refused() -> None:
    class _Rounded(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = transformers.PretrainedConfig()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)[:, : int(x.abs().sum() * 0.0 + 2.5)]

    class _HF(transformers.PreTrainedModel):
        config_class = transformers.PretrainedConfig

        def __init__(self) -> None:
            super().__init__(transformers.PretrainedConfig())
            self.inner = _Rounded()

        def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            return self.inner(x)

    with pytest.raises(UntraceableModelError, match="cannot become a Python number"):
        DependencyGraph(_HF(), torch.randn(2, 4))


def _deberta_v2() -> Any:
    cfg = transformers.DebertaV2Config(
        vocab_size=128,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
        num_labels=3,
    )
    return transformers.DebertaV2ForSequenceClassification(cfg), "classifier"


def _bart() -> Any:
    cfg = transformers.BartConfig(
        vocab_size=128,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=64,
    )
    return transformers.BartForConditionalGeneration(cfg), "lm_head"


@pytest.mark.parametrize("make", [_deberta_v2, _bart], ids=["deberta_v2", "bart"])
def test_models_with_in_place_writes_or_tensors_of_sizes_prune(make: Any) -> None:
    """DeBERTa-v2 (``torch.tensor`` of a traced size) and BART given only ``input_ids``
    (``shift_tokens_right`` writes in place) raised UntraceableModelError before 0.5.20;
    both now prune to their oracle, also on inputs of another shape."""
    torch.manual_seed(0)
    model, keep = make()
    model.eval()
    ids = torch.randint(3, 128, (2, 16), generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", 0.5, ignored_layers=[keep])
    assert plan.num_removed() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no config may describe the pruned model
        hard = prune(graph, plan)
    soft = soft_prune(graph, plan)
    other = torch.randint(3, 128, (3, 11), generator=torch.Generator().manual_seed(2))
    for x in (ids, other):
        torch.testing.assert_close(_logits(hard, x), _logits(soft, x), atol=1e-5, rtol=0)


def test_audio_encoder_with_group_norm_and_weight_norm_prunes() -> None:
    # Wav2Vec2: GroupNorm in the convolutional feature extractor and a weight_norm-
    # parametrized grouped positional convolution; the concrete run of that convolution
    # called its parametrization's module, which the trace recorded (49 of 52 groups froze)
    cfg = transformers.Wav2Vec2Config(
        vocab_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 2, 2),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
    )
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(cfg).eval()
    for m in model.modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.normal_(m.bias, std=0.2)
    x = torch.randn(2, 800)
    graph = DependencyGraph(model, x)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the config check's notes
        soft = soft_prune(graph, plan)(x).logits
        hard = prune(graph, plan)(x).logits
    torch.testing.assert_close(hard, soft, atol=1e-5, rtol=0)


def _sharpened(model: Any) -> Any:
    """Matrices from N(0, 0.2) and norms' weights and biases off 1 and 0: pruning moves the
    output, and a norm whose statistics were over all channels would show."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)
            elif "norm" in name.lower():
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0, 0.2)
    return model.eval()


def _prunes_to_its_oracle(model: Any, ids: torch.Tensor) -> Any:
    """``model`` pruned at 50% by group L2, checked: only its logits freeze, and it computes
    its soft oracle's logits, which differ from the unpruned model's."""
    graph = DependencyGraph(model, ids)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    return hard


# the sizes of a tiny encoder or decoder (DeBERTa, Qwen3)
_TINY = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_deberta_prunes_every_group_but_its_logits(version: str, tmp_path: Any) -> None:
    """Before 0.5.48 DeBERTa's ``DebertaLayerNorm`` (mean, variance, weight and bias written
    out, with a ``variance_epsilon``) froze its residual width (``mean reduces over
    channels``), and DeBERTa-v2's heads, merged into the batch (``[B * heads, T, d]``) and
    multiplied with ``torch.bmm``, froze at the unsupported ``bmm``. The norm is a last-axis
    norm now (statistics over the kept channels), ``bmm`` the 3-D ``matmul``."""
    make_config, make_model = {
        "v1": (transformers.DebertaConfig, transformers.DebertaForSequenceClassification),
        "v2": (transformers.DebertaV2Config, transformers.DebertaV2ForSequenceClassification),
    }[version]
    cfg = make_config(**_TINY, pooler_hidden_size=32, num_labels=3)
    torch.manual_seed(0)
    model = _sharpened(make_model(cfg))
    hard = _prunes_to_its_oracle(model, _ids())
    assert (hard.config.hidden_size, hard.config.num_attention_heads) == (16, 2)
    assert _roundtrip(hard, tmp_path) < 1e-5


def test_olmo_layer_norms_without_parameters_prune_the_residual_width(tmp_path: Any) -> None:
    """OLMo's ``OlmoLayerNorm`` has no parameters: ``F.layer_norm(x, self.normalized_shape,
    None, None, eps)``. No tensor carried its channels, so the residual width froze before
    0.5.49 (17.4 k of 26.6 k parameters kept at 50%)."""
    cfg = transformers.OlmoConfig(**_TINY, num_key_value_heads=2)
    torch.manual_seed(0)
    model = _sharpened(transformers.OlmoForCausalLM(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    width = next(g for g in graph.groups if "model.embed_tokens" in g.producers)
    assert width.prunable
    assert "model.norm" in width.bare_norms
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    assert hard.model.norm.normalized_shape == (16,)
    assert hard.config.hidden_size == 16
    assert _roundtrip(hard, tmp_path) < 1e-5


# the sizes of a tiny BART-family encoder-decoder (BART, Whisper)
_SEQ2SEQ = {
    "vocab_size": 128,
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}


def _bart_classifier() -> Any:
    cfg = transformers.BartConfig(**_SEQ2SEQ, max_position_embeddings=64, num_labels=3)
    torch.manual_seed(0)
    return _sharpened(transformers.BartForSequenceClassification(cfg))


def test_classifier_over_eos_tokens_prunes_its_residual_width(tmp_path: Any) -> None:
    """BART's classifier checks its input with ``torch_compilable_check`` (untraceable before
    0.5.48), gathers the <eos> rows with a boolean mask (``[B, T, C] -> [N, C]``), reads
    ``inputs_embeds[:, :, -1]`` for its shape only, and returns the encoder's last hidden
    state beside the logits: none of these freezes the residual width any more."""
    model = _bart_classifier()
    ids = _ids()
    ids[:, -1] = model.config.eos_token_id
    hard = _prunes_to_its_oracle(model, ids)
    assert hard.config.d_model == 16
    # the check still runs on the example: rows with different numbers of <eos> tokens
    ids[0, 3] = model.config.eos_token_id
    with pytest.raises(UntraceableModelError, match="same number of <eos> tokens"):
        DependencyGraph(model, ids)


def test_per_head_norms_leave_whole_heads_prunable(tmp_path: Any) -> None:
    """Qwen3 normalizes each query and key head over its dimensions (``q_norm``, ``k_norm``:
    an RMSNorm of ``head_dim`` on ``[B, T, heads, head_dim]``); the heads froze there before
    0.5.48 (``channels not on the last axis``), though the norm acts on each head alone."""
    cfg = transformers.Qwen3Config(**_TINY, num_key_value_heads=2, head_dim=8)
    torch.manual_seed(0)
    model = _sharpened(transformers.Qwen3ForCausalLM(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    heads = next(g for g in graph.groups if "model.layers.0.self_attn.q_proj" in g.producers)
    assert heads.prunable
    assert heads.size == 2  # key/value heads, each with its 2 query heads
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    scale = float(_logits(model, ids).abs().max())
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-6 * scale, rtol=0)
    assert (hard.config.num_attention_heads, hard.config.num_key_value_heads) == (2, 1)
    assert hard.model.layers[0].self_attn.q_norm.weight.shape == (8,)  # head_dim is kept
    assert _roundtrip(hard, tmp_path) < 1e-5


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "layer0_only"])
def test_heads_sliced_at_config_sizes_prune(uniform: bool, tmp_path: Any) -> None:
    """Phi-3 slices its fused ``qkv`` at ``config.num_attention_heads * head_dim`` and at that
    plus ``num_key_value_heads * head_dim``, read in ``forward``; before 0.5.49 its heads froze.
    The sizes read from the shared config are now the attention module's own (a
    ``ConfigView``), so each layer keeps its own head count; uniform counts reload."""
    cfg = transformers.Phi3Config(**_TINY, num_key_value_heads=2, pad_token_id=0)
    torch.manual_seed(0)
    model = _sharpened(transformers.Phi3ForCausalLM(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    heads = [
        i
        for i, g in enumerate(graph.groups)
        if any(p.endswith("self_attn.qkv_proj") for p in g.producers)
    ]
    assert [graph.groups[i].size for i in heads] == [2, 2]  # per layer: kv heads + 2 q heads
    plan = plan_pruning(graph, "l2", 0.5)
    if not uniform:
        plan = PruningPlan({heads[0]: torch.tensor([1])})
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)
    views = [layer.self_attn.config for layer in hard.model.layers]
    assert [v.num_attention_heads for v in views] == [2, 2 if uniform else 4]
    assert views[0].config is hard.config  # a view: other fields still read the config
    assert uniform or views[1] is hard.config  # a layer left whole keeps the config
    assert model.model.layers[0].self_attn.config is model.config  # the input is untouched
    copied = copy.deepcopy(hard)
    assert copied.model.layers[0].self_attn.config.config is copied.config
    torch.testing.assert_close(_logits(copied, ids), _logits(hard, ids), atol=0, rtol=0)
    again = DependencyGraph(hard, ids)  # a pruned model traces and prunes again
    plan = plan_pruning(again, "l2", 0.3)
    torch.testing.assert_close(
        _logits(prune(again, plan), ids), _logits(soft_prune(again, plan), ids), atol=1e-5, rtol=0
    )
    if uniform:
        assert (hard.config.num_attention_heads, hard.config.num_key_value_heads) == (2, 1)
        assert _roundtrip(hard, tmp_path) < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_phi3_onnx_export_prunes_its_heads() -> None:
    """The ONNX route on Phi-3 (dynamo, dynamic batch and sequence): the slices of the fused
    ``qkv`` are constants there, rewritten to the kept counts (they froze the heads before
    0.5.49)."""
    onnx_rt = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    from neuronkit.pruning.onnx import OnnxDependencyGraph, prune_onnx

    cfg = transformers.Phi3Config(**_TINY, num_key_value_heads=2, pad_token_id=0)
    torch.manual_seed(0)
    model = _sharpened(transformers.Phi3ForCausalLM(cfg))

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=ids, use_cache=False).logits

    dims = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=64)},)
    proto = torch.onnx.export(
        Logits().eval(), (_ids(),), dynamo=True, dynamic_shapes=dims, verbose=False
    ).model_proto
    groups = OnnxDependencyGraph(proto).groups
    assert [g.size for g in groups if g.prunable] == [32, 2, 64, 2, 64]  # width, heads, MLPs
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)

    def run(p: Any, ids: torch.Tensor) -> Any:
        sess = onnx_rt.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: ids.numpy()})[0]

    ids = torch.randint(4, 128, (3, 9), generator=torch.Generator().manual_seed(2))
    assert abs(run(hard, ids) - run(soft, ids)).max() < 1e-5 * abs(run(proto, ids)).max()
    assert abs(run(proto, ids) - run(soft, ids)).max() > 1e-3


def _moe(name: str, experts: str) -> Any:
    tiny = {**_TINY, "num_key_value_heads": 2, "num_experts_per_tok": 2, "pad_token_id": 0}
    if name == "mixtral":
        cfg = transformers.MixtralConfig(**tiny, num_local_experts=4)
        make = transformers.MixtralForCausalLM
    else:  # experts beside a shared expert scaled by sigmoid(Linear(hidden, 1))
        cfg = transformers.Qwen2MoeConfig(
            **tiny, num_experts=4, moe_intermediate_size=32, shared_expert_intermediate_size=32
        )
        make = transformers.Qwen2MoeForCausalLM
    cfg._experts_implementation = experts
    torch.manual_seed(0)
    model = make(cfg)
    with torch.no_grad():  # the experts' 3-D weights too
        for p in model.parameters():
            if p.ndim == 3:
                p.normal_(0, 0.2)
    return _sharpened(model)


@pytest.mark.parametrize(
    ("name", "experts"),
    [("mixtral", "grouped_mm"), ("mixtral", "eager"), ("qwen2_moe", "grouped_mm")],
)
def test_mixture_of_experts_prunes_its_experts_and_residual_width(
    name: str, experts: str, tmp_path: Any
) -> None:
    """Experts stored as 3-D weights ``[experts, out, in]``, multiplied with
    ``torch._grouped_mm`` (the default) or one expert at a time (``F.linear(x, w[e])``, summed
    back with ``index_add_``): channel j of every expert is one channel. Before 0.5.49 these
    froze the experts and the residual width (Mixtral kept 60.8 k of 63.9 k parameters at 50%),
    as did Qwen2-MoE's shared-expert gate (one channel broadcast over the residual)."""
    if experts == "grouped_mm" and not hasattr(torch, "_grouped_mm"):
        pytest.skip("this torch has no torch._grouped_mm")
    model = _moe(name, experts)
    ids = _ids()
    graph = DependencyGraph(model, ids)
    experts_of = [g for g in graph.groups if any(m.param == "gate_up_proj" for m in g.members)]
    assert experts_of
    assert all(g.prunable for g in experts_of)
    assert all(g.multiple % 4 == 0 for g in experts_of)  # _grouped_mm's 16-byte rows
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    other = torch.randint(4, 128, (3, 11), generator=torch.Generator().manual_seed(5))
    for x in (ids, other):  # another input routes its tokens to other experts
        torch.testing.assert_close(_logits(hard, x), _logits(soft, x), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    n0, n1 = (sum(p.numel() for p in m.parameters()) for m in (model, hard))
    assert n1 < 0.4 * n0
    assert hard.config.hidden_size == 16
    assert _roundtrip(hard, tmp_path) < 1e-5
    if experts == "eager" and hasattr(torch, "_grouped_mm"):  # reloaded with the other kernel
        grouped = type(hard).from_pretrained(tmp_path, experts_implementation="grouped_mm")
        torch.testing.assert_close(_logits(grouped.eval(), ids), _logits(hard, ids))


def test_speech_encoder_decoder_prunes_both_widths_and_reloads(tmp_path: Any) -> None:
    """Whisper returns its encoder's last hidden state beside the logits; as a model output it
    froze the encoder's width before 0.5.48, and then no config could describe a decoder
    pruned to another width than the encoder (one ``d_model``): the config was left and
    ``from_pretrained`` could not rebuild the model. Now both widths prune alike."""
    cfg = transformers.WhisperConfig(
        **_SEQ2SEQ,
        num_mel_bins=8,
        max_source_positions=16,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embed_positions" not in name:
                p.normal_(0, 0.2)
    inputs = {"input_features": torch.randn(2, 8, 32), "decoder_input_ids": _ids()[:, :5]}
    graph = DependencyGraph(model, inputs)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)

    def logits(m: Any) -> torch.Tensor:
        with torch.no_grad():
            return m(**inputs).logits

    torch.testing.assert_close(logits(hard), logits(soft), atol=1e-5, rtol=0)
    assert hard.config.d_model == 16
    hard.save_pretrained(tmp_path)
    reloaded = transformers.WhisperForConditionalGeneration.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(reloaded), logits(hard), atol=1e-5, rtol=0)


def _generates_as_its_oracle(model: Any, hard: Any, soft: Any, ids: torch.Tensor) -> None:
    """``hard`` computes ``soft``'s logits on ``ids``, also with the first row left-padded,
    and generates the same tokens from a padded prompt (one query token at a time, against
    the cached keys and values); ``soft``'s logits differ from ``model``'s."""
    padded = torch.ones_like(ids)
    padded[0, :5] = 0
    for kwargs in ({}, {"attention_mask": padded}):
        with torch.no_grad():
            y_hard, y_soft = hard(ids, **kwargs).logits, soft(ids, **kwargs).logits
        torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    prompt = {"input_ids": ids[:, :6], "attention_mask": padded[:, :6]}
    with torch.no_grad():
        new = [m.generate(**prompt, max_new_tokens=4, do_sample=False) for m in (hard, soft)]
    assert torch.equal(new[0], new[1])


@pytest.mark.parametrize("name", ["xglm", "trocr"])
def test_heads_merged_with_the_batch_by_bsz_times_num_heads_prune(name: str) -> None:
    """Attention that merges the heads with the batch, ``reshape(bsz * self.num_heads, -1,
    head_dim)``, and checks ``attn_weights.size() != (bsz * self.num_heads, ...)`` (XGLM,
    TrOCR's decoder): the product follows ``num_heads``, so the heads prune whole. Before
    0.5.52 they froze ("a size that is no count of them")."""
    if name == "xglm":
        cfg = transformers.XGLMConfig(
            vocab_size=128, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64
        )
        make = transformers.XGLMForCausalLM
    else:
        cfg = transformers.TrOCRConfig(
            vocab_size=128,
            d_model=32,
            decoder_layers=2,
            decoder_attention_heads=4,
            decoder_ffn_dim=64,
            max_position_embeddings=64,
        )
        make = transformers.TrOCRForCausalLM
    torch.manual_seed(0)
    model = _sharpened(make(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    padded = torch.ones_like(ids)
    padded[0, :5] = 0
    # the example, and another batch size with padding: the product follows both
    for args in ((ids,), (ids[:1], padded[:1])):
        with torch.no_grad():
            y_hard, y_soft = hard(*args).logits, soft(*args).logits
        torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    layers = hard.model.layers if name == "xglm" else hard.model.decoder.layers
    assert layers[0].self_attn.num_heads == 2
    assert layers[0].self_attn.q_proj.out_features == 16


@pytest.mark.parametrize("attention", ["eager", "sdpa", "sdpa_enable_gqa"])
@pytest.mark.parametrize("name", ["llama", "qwen3", "phi3"])
def test_gqa_queries_keeps_key_value_heads_and_prunes_query_heads_per_group(
    name: str, attention: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """``gqa="queries"`` on grouped-query attention (8 query heads, 2 key/value heads; Qwen3's
    with a norm over each head, Phi-3's in one fused projection): the key/value heads stay,
    every one loses the same number of query heads, ``num_key_value_groups`` (``repeat_kv``)
    follows, and the config reloads."""
    if attention == "sdpa_enable_gqa":  # SDPA broadcasts the key/value heads itself
        monkeypatch.setenv("TRANSFORMERS_SDPA_FORCE_GQA", "1")
    tiny = {**_TINY, "hidden_size": 64, "num_attention_heads": 8, "head_dim": 8}
    if name == "llama":
        cfg = transformers.LlamaConfig(**tiny, num_key_value_heads=2)
        make = transformers.LlamaForCausalLM
    elif name == "qwen3":
        cfg = transformers.Qwen3Config(**tiny, num_key_value_heads=2)
        make = transformers.Qwen3ForCausalLM
    else:
        cfg = transformers.Phi3Config(**tiny, num_key_value_heads=2, pad_token_id=0)
        make = transformers.Phi3ForCausalLM
    cfg._attn_implementation = attention.removesuffix("_enable_gqa")
    torch.manual_seed(0)
    model = _sharpened(make(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids, gqa="queries")
    o_proj = "model.layers.0.self_attn.o_proj"
    heads = next(
        g for g in graph.groups if any(m.module == o_proj and m.dim == 1 for m in g.members)
    )
    assert heads.prunable
    assert heads.size == 8
    assert heads.segments.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    plan = plan_pruning(graph, "l2", 0.5)
    removed = plan.removed[heads.index]
    assert ((removed < 4).sum(), (removed >= 4).sum()) == (2, 2)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    _generates_as_its_oracle(model, hard, soft, ids)
    attn = hard.model.layers[0].self_attn
    assert attn.o_proj.in_features == 32
    assert attn.num_key_value_groups == 2
    assert (hard.config.num_attention_heads, hard.config.num_key_value_heads) == (4, 2)
    assert _roundtrip(hard, tmp_path) < 1e-5


def _multi_query(name: str, attention: str) -> Any:
    if name == "llama":  # Gemma-2B's attention: one key/value head, separate projections
        cfg = transformers.LlamaConfig(**_TINY, num_key_value_heads=1, head_dim=8)
        make = transformers.LlamaForCausalLM
    elif name == "gpt_bigcode":  # StarCoder's: query, key and value rows of one projection
        cfg = transformers.GPTBigCodeConfig(
            vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_inner=64, n_positions=64
        )
        make = transformers.GPTBigCodeForCausalLM
    else:  # Falcon-7B's: one projection viewed as (num_heads + 2) heads, the last two k and v
        cfg = transformers.FalconConfig(
            vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4
        )
        make = transformers.FalconForCausalLM
    cfg._attn_implementation = attention
    torch.manual_seed(0)
    return _sharpened(make(cfg))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("name", ["llama", "gpt_bigcode", "falcon"])
def test_multi_query_attention_prunes_query_heads_alone(
    name: str, attention: str, tmp_path: Any
) -> None:
    """One key/value head serves every query head: its channels stay, and the query heads
    prune one by one (``num_key_value_groups``, by which eager attention's ``repeat_kv``
    copies the key/value head, follows them). Before 0.5.50 the whole attention froze with
    the key/value head (``attention over channels``, or ``combines channels with an
    untracked tensor`` when eager; Falcon's before 0.5.51: ``view`` to ``num_heads + 2``
    heads, "a constant of forward")."""
    model = _multi_query(name, attention)
    ids = _ids()
    graph = DependencyGraph(model, ids)
    attn, out = {
        "llama": ("model.layers.0.self_attn", "o_proj"),
        "gpt_bigcode": ("transformer.h.0.attn", "c_proj"),
        "falcon": ("transformer.h.0.self_attention", "dense"),
    }[name]
    out = f"{attn}.{out}"
    heads = next(g for g in graph.groups if any(m.module == out and m.dim == 1 for m in g.members))
    assert heads.prunable
    assert heads.size == 4  # the query heads, whole, and nothing of the key/value head
    assert all(len(p) == 8 for m in heads.members for p in m.positions)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    _generates_as_its_oracle(model, hard, soft, ids)
    pruned_attn = hard.get_submodule(attn)
    if name == "falcon":  # which sizes the fused view: num_heads + 2
        assert pruned_attn.num_heads == 2
    else:  # Falcon broadcasts its one key/value head instead
        assert pruned_attn.num_key_value_groups == 2
    heads_field = "n_head" if name == "gpt_bigcode" else "num_attention_heads"
    assert getattr(hard.config, heads_field) == 2
    assert _roundtrip(hard, tmp_path) < 1e-5


@pytest.mark.parametrize("name", ["falcon", "falcon_40b", "persimmon"])
def test_heads_first_fused_projection_prunes_whole_heads(name: str, tmp_path: Any) -> None:
    """``qkv.view(B, T, self.num_heads, 3, self.head_dim)``: each head's query, key and value
    rows lie together in the fused projection (Falcon-RW's and Persimmon's layout, not timm's
    ``(3, num_heads, head_dim)``), so a head is 3 x 8 rows of it, one unit. Falcon-40B's
    ``view(B, T, -1, self.num_heads // self.num_kv_heads + 2, self.head_dim)`` likewise holds
    a key/value head with its 2 query heads: 4 x 8 rows, one unit, and ``num_kv_heads``
    follows ``num_heads`` (a quotient). Before 0.5.51 the heads froze ("size 3 on the channel
    axis is a constant of forward"). The config search also changes Falcon's
    ``num_kv_heads`` with its head count."""
    units, rows = 4, 3 * 8  # whole heads, or Falcon-40B's key/value heads with their queries
    if name.startswith("falcon"):
        layout = {"multi_query": False}
        if name == "falcon_40b":
            layout = {"new_decoder_architecture": True, "num_kv_heads": 2}
            units, rows = 2, 4 * 8
        cfg: Any = transformers.FalconConfig(
            vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, **layout
        )
        make: Any = transformers.FalconForCausalLM
        qkv = "transformer.h.0.self_attention.query_key_value"
    else:
        cfg = transformers.PersimmonConfig(
            vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64,
        )  # fmt: skip
        make = transformers.PersimmonForCausalLM
        qkv = "model.layers.0.self_attn.query_key_value"
    torch.manual_seed(0)
    model = _sharpened(make(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    heads = next(g for g in graph.groups if any(m.module == qkv and m.dim == 0 for m in g.members))
    assert heads.prunable
    assert heads.size == units
    qkv_rows = next(m for m in heads.members if m.module == qkv and m.param == "weight")
    assert list(qkv_rows.positions[1]) == list(range(rows, 2 * rows))
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    with torch.no_grad():
        new = [m.generate(ids[:, :6], max_new_tokens=4, do_sample=False) for m in (hard, soft)]
    assert torch.equal(new[0], new[1])
    assert hard.config.num_attention_heads == 2
    if name == "falcon_40b":  # (Falcon-RW's forward reads num_kv_heads before transformers 5.25)
        assert hard.config.num_kv_heads == hard.transformer.h[0].self_attention.num_kv_heads == 1
    assert _roundtrip(hard, tmp_path) < 1e-5


def test_mamba_prunes_its_inner_width_and_reloads(tmp_path: Any) -> None:
    """Mamba's selective state space layer (the torch path: a depthwise ``F.conv1d`` over its
    weight, ``A = -exp(A_log)`` read as ``A[None, :, None, :]``, outer products with the
    input-dependent B, a ``torch.zeros`` state and ``state @ C`` per step) prunes its inner
    width with its residual width and time-step rank; before 0.5.50 the inner width froze
    (7.4 k of 12.5 k parameters kept at 50%), and ``soft_prune``'s model raised an
    AttributeError (Mamba reads ``self.norm.weight.dtype``)."""
    cfg = transformers.MambaConfig(
        vocab_size=128, hidden_size=32, num_hidden_layers=2, state_size=8, intermediate_size=64
    )
    torch.manual_seed(0)
    model = _sharpened(transformers.MambaForCausalLM(cfg))
    ids = _ids()
    graph = DependencyGraph(model, ids)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert soft.backbone.norm_f.weight.dtype == torch.float32
    other = torch.randint(4, 128, (3, 9), generator=torch.Generator().manual_seed(5))
    for x in (ids, other):
        torch.testing.assert_close(_logits(hard, x), _logits(soft, x), atol=1e-5, rtol=0)
    assert not torch.allclose(_logits(soft, ids), _logits(model, ids), atol=1e-3)
    mixer = hard.backbone.layers[0].mixer
    assert tuple(mixer.A_log.shape) == (32, 8)
    assert tuple(mixer.conv1d.weight.shape) == (32, 1, 4)
    with torch.no_grad():  # one token at a time through the cached conv and ssm states
        new = [m.generate(ids[:, :4], max_new_tokens=4, do_sample=False) for m in (hard, soft)]
    assert torch.equal(new[0], new[1])
    cfg = hard.config
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.time_step_rank) == (16, 32, 1)
    assert _roundtrip(hard, tmp_path) < 1e-5
