"""Hugging Face architectures beyond GPT-2 / LLaMA / BERT, built tiny from their configs:
decoder LMs (Mistral, Qwen2, Phi, Gemma, OPT, GPT-NeoX, GPT-J, BLOOM, Falcon), encoders
(DistilBERT, RoBERTa, ALBERT), an encoder-decoder (T5, keyword inputs) and vision models (ViT,
Swin, ConvNeXt, ResNet, MobileViT), with eager and with scaled-dot-product (the default)
attention.

Each model prunes at ratio 0.5 to the SPA soft-pruning oracle; the groups named here (the
residual stream, attention heads, MLPs) must be prunable, so the check cannot pass by freezing
everything. What stays frozen is frozen for a reason the graph names (for example a head count
that ``forward`` computes from module attributes, as Falcon does, or BLOOM's fused heads). OPT
views its heads with the module attribute ``self.num_heads``, read nowhere else: it is rewritten
to the kept count.
"""

import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face models need the optional transformers dependency"
)

from neuronkit.pruning import (  # noqa: E402
    DependencyGraph,
    hf_zoo,
    plan_pruning,
    prune,
    soft_prune,
)

# name -> producers whose groups must be prunable (the residual stream, heads, MLPs)
_MUST_PRUNE: dict[str, list[str]] = {
    "mistral": [
        "model.embed_tokens",
        "model.layers.0.self_attn.q_proj",  # grouped-query heads
        "model.layers.1.mlp.up_proj",
    ],
    "qwen2": ["model.embed_tokens", "model.layers.1.self_attn.k_proj"],
    "phi": ["model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.fc1"],
    "gemma": ["model.embed_tokens", "model.layers.0.self_attn.q_proj"],  # a scaled Embedding
    "opt": [  # shifted positions; heads viewed with the module attribute self.num_heads
        "model.decoder.embed_tokens",
        "model.decoder.embed_positions",
        "model.decoder.layers.0.self_attn.q_proj",
    ],
    "gpt_neox": ["gpt_neox.embed_in", "gpt_neox.layers.0.attention.query_key_value"],
    "gptj": ["transformer.wte", "transformer.h.0.mlp.fc_in"],
    "bloom": ["transformer.word_embeddings", "transformer.h.0.mlp.dense_h_to_4h"],
    # Falcon's Linear computes x @ W.T: traced whole once checked to equal nn.Linear
    "falcon": [  # (0.5.51) query heads beside one kept key and value head: view(num_heads + 2)
        "transformer.word_embeddings",
        "transformer.h.0.self_attention.query_key_value",
        "transformer.h.1.mlp.dense_h_to_4h",
    ],
    # DistilBERT calls nn.ReLU() built in forward, RoBERTa a module-level GELU
    "distilbert": [
        "distilbert.embeddings.word_embeddings",
        "distilbert.transformer.layer.0.attention.q_lin",
    ],
    "roberta": [
        "roberta.embeddings.word_embeddings",
        "roberta.encoder.layer.1.attention.self.query",
    ],
    "albert": ["albert.embeddings.word_embeddings", "albert.encoder.embedding_hidden_mapping_in"],
    "t5": [  # keyword inputs; heads with their position-bias column; the residual width
        "encoder.embed_tokens",  # (0.5.48: the encoder's last hidden state is not an output)
        "encoder.block.0.layer.0.SelfAttention.q",
        "decoder.block.0.layer.0.SelfAttention.q",
        "decoder.block.1.layer.2.DenseReluDense.wi",
    ],
    "vit": ["vit.embeddings.patch_embeddings.projection", "vit.layers.0.attention.q_proj"],
    "swin": [  # pads channels-last maps, reads a per-head bias table, stores its window size
        "swin.embeddings.patch_embeddings.projection",
        "swin.encoder.layers.0.blocks.0.attention.q_proj",
        "swin.encoder.layers.1.blocks.0.mlp.fc1",
    ],
    "convnext": [
        "convnext.embeddings.patch_embeddings",
        "convnext.encoder.stages.1.layers.0.pwconv1",
    ],
    # no token embedding: its config is left as it is, with a warning
    "resnet": ["resnet.embedder.embedder.convolution"],
    # unfolds its maps into patches ([B, C, H, W] -> [B C n_h, p_h, n_w, p_w]) and back, with
    # feature maps smaller than a patch (interpolated) in its last stage
    "mobilevit": [
        "mobilevit.conv_stem.convolution",
        "mobilevit.encoder.layer.2.transformer.layer.0.intermediate.dense",
        "mobilevit.encoder.layer.3.conv_1x1.convolution",
        "mobilevit.encoder.layer.4.conv_1x1.convolution",
        "mobilevit.encoder.layer.4.transformer.layer.0.attention.attention.query",
    ],
}
_ATTENTION = {"mistral", "qwen2", "phi", "gemma", "gpt_neox", "roberta", "t5", "vit"}
_CASES = [(n, "eager") for n in _MUST_PRUNE] + [(n, "sdpa") for n in sorted(_ATTENTION)]
_ZOO = hf_zoo()


def test_the_zoo_is_the_list_checked_here() -> None:
    assert set(_ZOO) == set(_MUST_PRUNE)


def _sharpen(model: Any) -> None:
    """Matrices drawn from N(0, 0.2), larger than the init's 0.02: pruning visibly moves the
    output, and attention is peaked enough for its head split to show."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)


def _logits(model: Any, inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return out.logits


@pytest.mark.parametrize(("name", "attention"), _CASES, ids=[f"{n}-{a}" for n, a in _CASES])
def test_architecture_prunes_to_the_soft_oracle(name: str, attention: str) -> None:
    build, make_inputs = _ZOO[name]
    must_prune = _MUST_PRUNE[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # configs warn about token ids outside a tiny vocab
        model = build()
    for module in model.modules():  # T5's blocks keep their own config
        if hasattr(module, "config"):
            module.config._attn_implementation = attention
    model.eval()
    _sharpen(model)
    inputs = make_inputs()
    graph = DependencyGraph(model, inputs)
    if name in _ATTENTION:
        sdpa = [n for n in graph.gm.graph.nodes if n.target is F.scaled_dot_product_attention]
        assert bool(sdpa) == (attention == "sdpa")
    prunable = {p for g in graph.groups if g.prunable for p in g.producers}
    assert set(must_prune) <= prunable, sorted(set(must_prune) - prunable)
    plan = plan_pruning(graph, "l2", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vision configs cannot describe pruned widths
        hard, soft = prune(graph, plan), soft_prune(graph, plan)
    y_hard, y_soft, y0 = _logits(hard, inputs), _logits(soft, inputs), _logits(model, inputs)
    scale = float(y0.abs().max())
    assert scale > 1e-2  # an output that vanishes would pass any comparison
    assert y_hard.shape == y0.shape
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5 * max(scale, 1.0), rtol=0)
    assert not torch.allclose(y_soft, y0, rtol=1e-3, atol=0)  # the check is not vacuous
    n0 = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in hard.parameters()) < 0.8 * n0


_DECODERS = ["mistral", "qwen2", "phi", "gemma", "opt", "gpt_neox", "gptj", "falcon"]
# transformers >= 5.25 splits Falcon's fused heads with split([num_heads, 1, 1]) and, for one
# query token, folds the query heads of its one key/value head into the query rows of SDPA
# (pack_gqa): the one-token trace then keeps them, and the ONNX export's Split takes its
# sizes as an input (not rewritten)
_FALCON_SPLITS = tuple(int(v) for v in transformers.__version__.split(".")[:2]) >= (5, 25)


@pytest.mark.parametrize("name", _DECODERS)
def test_one_token_trace_groups_as_a_sequence_does(name: str) -> None:
    """A decoder traced on one token (``[B, 1, C] -> [B, 1, heads, d]``) finds the groups a
    sequence finds, and the model pruned from it equals the oracle on whole sequences."""
    build, make_inputs = _ZOO[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build().eval()
    ids = make_inputs()
    one, whole = DependencyGraph(model, ids[:, :1]), DependencyGraph(model, ids)
    for a, b in zip(one.groups, whole.groups, strict=True):
        assert a.size == b.size
        if name == "falcon" and _FALCON_SPLITS and a.prunable != b.prunable:  # query heads
            assert "attention over channels" in a.reason  # kept: the heads fold into rows
        else:
            assert a.prunable == b.prunable
    plan = plan_pruning(one, "l2", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hard, soft = prune(one, plan), soft_prune(one, plan)
    torch.testing.assert_close(_logits(hard, ids), _logits(soft, ids), atol=1e-5, rtol=0)


class _Logits(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", ["opt", "falcon", "swin"])
def test_dynamo_onnx_export_prunes_to_the_soft_oracle(name: str) -> None:
    """The ONNX route on the same architectures: OPT's head count is a reshape constant it
    rewrites (the torch route rewrites the module attribute); Falcon's query heads prune
    beside its one key/value head (``Slice`` to ``-2``, ``GatherND`` of ``[-2]`` and ``[-1]``:
    kept channels; since 0.5.51); Swin pads its channels-last maps."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    from neuronkit.pruning.onnx import OnnxDependencyGraph, prune_onnx

    build, make_inputs = _ZOO[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build()
    model.config._attn_implementation = "eager" if name == "swin" else "sdpa"
    x = make_inputs()
    proto = torch.onnx.export(_Logits(model).eval(), (x,), dynamo=True, verbose=False).model_proto
    groups = OnnxDependencyGraph(proto).groups
    assert sum(g.prunable for g in groups) >= 3
    if name == "opt" or (name == "falcon" and not _FALCON_SPLITS):
        assert [g.reason for g in groups if not g.prunable] == ["model output"]

    def run(p: Any) -> Any:
        sess = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]

    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    assert isinstance(hard, onnx.ModelProto)
    assert abs(run(hard) - run(soft)).max() < 1e-5 * max(1.0, abs(run(proto)).max())
    assert abs(run(proto) - run(soft)).max() > 1e-4
    assert hard.ByteSize() < 0.9 * proto.ByteSize()  # Swin's index tables stay whole


# the pruned config rebuilds the pruned model: save_pretrained -> from_pretrained gives its
# outputs. Mistral / Qwen2 / RoBERTa by their module names; the others by the config search,
# GPT-NeoX through a head count that equal shapes leave open (4 heads of 8 or 2 of 16), GPT-J
# likewise (its heads prune since torch.stack, of its rotary embedding, is followed) and
# Swin / ConvNeXt / ResNet through per-stage lists
_CONFIG_REBUILDS = {
    "mistral", "qwen2", "phi", "opt", "gpt_neox", "distilbert", "roberta", "albert", "vit",
    "swin", "convnext", "resnet", "gptj", "mobilevit", "falcon",
}  # fmt: skip
# (MobileViT's stages pruned by one ratio keep their MLP ratio: hidden_sizes, neck_hidden_sizes
# and num_attention_heads describe it). The rest keep their config, with a warning: Gemma
# scales its embeddings by sqrt(hidden_size) from the config, T5 its tied-embedding logits by
# d_model ** -0.5 (same shapes, other outputs: its residual width prunes since 0.5.48);
# BLOOM ties the attention width to the residual width, whose heads stay frozen (ALiBi)
_CONFIG_WARNS = {"gemma", "bloom", "t5"}
_OTHER_OUTPUTS = {"gemma", "t5"}


@pytest.mark.parametrize("name", sorted(_MUST_PRUNE))
def test_pruned_config_rebuilds_the_pruned_model_or_warns(name: str, tmp_path: Any) -> None:
    assert set(_ZOO) == _CONFIG_REBUILDS | _CONFIG_WARNS
    build, make_inputs = _ZOO[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build().eval()
    _sharpen(model)
    before = model.config.to_dict()
    inputs = make_inputs()
    graph = DependencyGraph(model, inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = prune(graph, plan_pruning(graph, "l2", 0.5))
    why = [str(w.message) for w in caught if "from_pretrained cannot rebuild" in str(w.message)]
    if name in _CONFIG_WARNS:
        assert why
        assert "no config describes the pruned model" in why[0]
        assert pruned.config.to_dict() == before
        if name in _OTHER_OUTPUTS:
            assert "computes other outputs" in why[0]
        return
    assert not why
    assert pruned.config.to_dict() != before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned.save_pretrained(tmp_path)
        reloaded = type(pruned).from_pretrained(tmp_path).eval()
    assert [p.shape for p in reloaded.parameters()] == [p.shape for p in pruned.parameters()]
    y, y_reloaded = _logits(pruned, inputs), _logits(reloaded, inputs)
    torch.testing.assert_close(y_reloaded, y, atol=1e-5 * max(float(y.abs().max()), 1.0), rtol=0)
