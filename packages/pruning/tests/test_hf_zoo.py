"""Hugging Face architectures beyond GPT-2 / LLaMA / BERT, built tiny from their configs:
decoder LMs (Mistral, Qwen2, Phi, Gemma, OPT, GPT-NeoX, GPT-J, BLOOM, Falcon), encoders
(DistilBERT, RoBERTa, ALBERT), an encoder-decoder (T5, keyword inputs) and vision models (ViT,
Swin, ConvNeXt, ResNet, MobileViT), with eager and with scaled-dot-product (the default)
attention.

Each model prunes at ratio 0.5 to the SPA soft-pruning oracle; the groups named here (the
residual stream, attention heads, MLPs) must be prunable, so the check cannot pass by freezing
everything. What stays frozen is frozen for a reason the graph names (for example a head count
that ``forward`` reads from a module attribute, as OPT, BLOOM and Falcon do).
"""

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face models need the optional transformers dependency"
)

from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune  # noqa: E402

T = transformers
_LM = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=32,
)
_IDS = "ids"
_IMAGE = "image"
_SEQ2SEQ = "seq2seq"

# name -> (model factory, input kind, producers whose groups must be prunable)
_ZOO: dict[str, tuple[Callable[[], Any], str, list[str]]] = {
    "mistral": (
        lambda: T.MistralForCausalLM(T.MistralConfig(**_LM, num_key_value_heads=2)),
        _IDS,
        ["model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.1.mlp.up_proj"],
    ),
    "qwen2": (
        lambda: T.Qwen2ForCausalLM(T.Qwen2Config(**_LM, num_key_value_heads=2)),
        _IDS,
        ["model.embed_tokens", "model.layers.1.self_attn.k_proj", "model.layers.0.mlp.gate_proj"],
    ),
    "phi": (
        lambda: T.PhiForCausalLM(T.PhiConfig(**_LM)),
        _IDS,
        ["model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.fc1"],
    ),
    "gemma": (
        lambda: T.GemmaForCausalLM(T.GemmaConfig(**_LM, num_key_value_heads=2, head_dim=16)),
        _IDS,
        ["model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj"],
    ),
    "opt": (
        lambda: T.OPTForCausalLM(
            T.OPTConfig(
                vocab_size=128,
                hidden_size=64,
                ffn_dim=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=32,
                word_embed_proj_dim=64,
            )
        ),
        _IDS,
        [
            "model.decoder.embed_tokens",
            "model.decoder.embed_positions",
            "model.decoder.layers.0.fc1",
        ],
    ),
    "gpt_neox": (
        lambda: T.GPTNeoXForCausalLM(T.GPTNeoXConfig(**_LM)),
        _IDS,
        ["gpt_neox.embed_in", "gpt_neox.layers.0.attention.query_key_value"],
    ),
    "gptj": (
        lambda: T.GPTJForCausalLM(
            T.GPTJConfig(
                vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=32, rotary_dim=8
            )
        ),
        _IDS,
        ["transformer.wte", "transformer.h.0.mlp.fc_in"],
    ),
    "bloom": (
        lambda: T.BloomForCausalLM(
            T.BloomConfig(vocab_size=128, hidden_size=64, n_layer=2, n_head=4)
        ),
        _IDS,
        ["transformer.word_embeddings", "transformer.h.0.mlp.dense_h_to_4h"],
    ),
    "falcon": (  # its Linear computes x @ W.T: traced whole once checked to equal nn.Linear
        lambda: T.FalconForCausalLM(
            T.FalconConfig(
                vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4
            )
        ),
        _IDS,
        ["transformer.word_embeddings", "transformer.h.1.mlp.dense_h_to_4h"],
    ),
    "distilbert": (  # calls nn.ReLU() built in forward
        lambda: T.DistilBertForSequenceClassification(
            T.DistilBertConfig(
                vocab_size=128,
                dim=64,
                hidden_dim=128,
                n_layers=2,
                n_heads=4,
                max_position_embeddings=32,
            )
        ),
        _IDS,
        ["distilbert.embeddings.word_embeddings", "distilbert.transformer.layer.0.attention.q_lin"],
    ),
    "roberta": (  # calls a module-level GELU
        lambda: T.RobertaForMaskedLM(T.RobertaConfig(**_LM)),
        _IDS,
        ["roberta.embeddings.word_embeddings", "roberta.encoder.layer.1.attention.self.query"],
    ),
    "albert": (
        lambda: T.AlbertForMaskedLM(
            T.AlbertConfig(
                vocab_size=128,
                embedding_size=32,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=32,
            )
        ),
        _IDS,
        ["albert.embeddings.word_embeddings", "albert.encoder.embedding_hidden_mapping_in"],
    ),
    "t5": (
        lambda: T.T5ForConditionalGeneration(
            T.T5Config(vocab_size=128, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
        ),
        _SEQ2SEQ,
        [
            "encoder.block.0.layer.0.SelfAttention.q",  # heads with their position-bias column
            "decoder.block.0.layer.0.SelfAttention.q",
            "decoder.block.1.layer.2.DenseReluDense.wi",
        ],
    ),
    "vit": (  # reads projection.weight.dtype
        lambda: T.ViTForImageClassification(
            T.ViTConfig(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                image_size=32,
                patch_size=8,
                num_labels=10,
            )
        ),
        _IMAGE,
        ["vit.embeddings.patch_embeddings.projection", "vit.layers.0.attention.q_proj"],
    ),
    "swin": (  # pads channels-last maps, indexes a per-head bias table, stores its window size
        lambda: T.SwinForImageClassification(
            T.SwinConfig(
                image_size=32,
                patch_size=4,
                embed_dim=16,
                depths=[1, 1],
                num_heads=[2, 4],
                window_size=4,
                num_labels=10,
            )
        ),
        _IMAGE,
        [
            "swin.embeddings.patch_embeddings.projection",
            "swin.encoder.layers.0.blocks.0.attention.q_proj",
            "swin.encoder.layers.1.blocks.0.mlp.fc1",
        ],
    ),
    "convnext": (
        lambda: T.ConvNextForImageClassification(
            T.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=10)
        ),
        _IMAGE,
        ["convnext.embeddings.patch_embeddings", "convnext.encoder.stages.1.layers.0.pwconv1"],
    ),
    "resnet": (  # no token embedding: its config is left as it is, with a warning
        lambda: T.ResNetForImageClassification(
            T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=10)
        ),
        _IMAGE,
        [
            "resnet.embedder.embedder.convolution",
            "resnet.encoder.stages.0.layers.0.layer.0.convolution",
        ],
    ),
    "mobilevit": (  # merges heads with a constant all_head_size: those heads stay frozen
        lambda: T.MobileViTForImageClassification(
            T.MobileViTConfig(
                image_size=32,
                hidden_sizes=[16, 24, 32],
                neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                num_labels=10,
            )
        ),
        _IMAGE,
        [
            "mobilevit.conv_stem.convolution",
            "mobilevit.encoder.layer.2.transformer.layer.0.intermediate.dense",
        ],
    ),
}
_ATTENTION = {"mistral", "qwen2", "phi", "gemma", "gpt_neox", "roberta", "t5", "vit"}
_CASES = [(n, "eager") for n in _ZOO] + [(n, "sdpa") for n in sorted(_ATTENTION)]


def _inputs(kind: str) -> Any:
    g = torch.Generator().manual_seed(1)
    if kind == _IMAGE:
        return torch.randn(2, 3, 32, 32, generator=g)
    ids = torch.randint(0, 128, (2, 16), generator=g)
    return {"input_ids": ids, "decoder_input_ids": ids[:, :8]} if kind == _SEQ2SEQ else ids


def _logits(model: Any, inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return out.logits


@pytest.mark.parametrize(("name", "attention"), _CASES, ids=[f"{n}-{a}" for n, a in _CASES])
def test_architecture_prunes_to_the_soft_oracle(name: str, attention: str) -> None:
    build, kind, must_prune = _ZOO[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # configs warn about token ids outside a tiny vocab
        model = build()
    for module in model.modules():  # T5's blocks keep their own config
        if hasattr(module, "config"):
            module.config._attn_implementation = attention
    model.eval()
    with torch.no_grad():  # larger than the init's 0.02, so pruning visibly moves the output
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)
    inputs = _inputs(kind)
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
    assert y_hard.shape == y0.shape
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5 * max(scale, 1.0), rtol=0)
    assert not torch.allclose(y_soft, y0, rtol=1e-3, atol=0)  # the check is not vacuous
    n0 = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in hard.parameters()) < 0.8 * n0


class _Logits(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", ["opt", "falcon", "swin"])
def test_dynamo_onnx_export_prunes_to_the_soft_oracle(name: str) -> None:
    """The ONNX route on the same architectures: OPT's head count, a constant of the torch
    code, is a reshape constant it rewrites (its heads prune here, not in the torch route);
    Swin pads its channels-last maps."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    from neuronkit.pruning.onnx import OnnxDependencyGraph, prune_onnx

    build, kind, _ = _ZOO[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build()
    model.config._attn_implementation = "eager" if name == "swin" else "sdpa"
    x = _inputs(kind)
    proto = torch.onnx.export(_Logits(model).eval(), (x,), dynamo=True, verbose=False).model_proto
    groups = OnnxDependencyGraph(proto).groups
    assert sum(g.prunable for g in groups) >= 3
    if name == "opt":
        assert [g.reason for g in groups if not g.prunable] == ["model output"]

    def run(p: Any) -> Any:
        sess = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]

    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    assert isinstance(hard, onnx.ModelProto)
    assert abs(run(hard) - run(soft)).max() < 1e-5 * max(1.0, abs(run(proto)).max())
    assert abs(run(proto) - run(soft)).max() > 1e-4
    assert hard.ByteSize() < 0.9 * proto.ByteSize()  # Swin's index tables stay whole
