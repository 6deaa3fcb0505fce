"""The Hugging Face helpers on tiny GPT-2 / GPT-NeoX models built from configs (no download)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability.codebook.intervene import codes_at, next_token_logits
from neuronkit.interpretability.codebook.wrap import (
    insert_hf_codebooks,
    transformer_component_names,
)

transformers = pytest.importorskip(
    "transformers", reason="the Hugging Face helpers need transformers"
)


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(
        vocab_size=7,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=16,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _neox() -> nn.Module:
    cfg = transformers.GPTNeoXConfig(
        vocab_size=7,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    return transformers.GPTNeoXForCausalLM(cfg).eval()


def test_hf_component_names() -> None:
    assert transformer_component_names(_gpt2()) == [
        "transformer.h.0.attn",
        "transformer.h.0.mlp",
        "transformer.h.1.attn",
        "transformer.h.1.mlp",
    ]
    assert transformer_component_names(_neox(), ["mlp"], layers=[0, -1]) == [
        "gpt_neox.layers.0.mlp",
        "gpt_neox.layers.2.mlp",
    ]
    with pytest.raises(ValueError, match="components"):
        transformer_component_names(_gpt2(), ["conv"])
    with pytest.raises(ValueError, match="layers"):
        transformer_component_names(_gpt2(), layers=[2])
    with pytest.raises(TypeError, match="PreTrainedModel"):
        transformer_component_names(nn.Linear(2, 2))


@pytest.mark.parametrize("make", [_gpt2, _neox])
def test_hf_codebooks_quantize_blocks(make) -> None:
    model = make()
    ids = torch.randint(0, 7, (2, 6))
    with torch.no_grad():
        before = model(input_ids=ids).logits
    cbm = insert_hf_codebooks(model, num_codes=8, k=1)
    with torch.no_grad(), cbm.record_codes() as rec:
        out = cbm(input_ids=ids).logits
    assert out.shape == before.shape
    assert len(rec) == 2 * model.config.num_hidden_layers
    for codes in rec.values():
        assert codes[0].shape == (2, 6, 1)
    # k=1 with 8 codes: each block output takes at most 8 values
    assert not torch.allclose(out, before)
    cbm.remove()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before)


def test_hf_attention_head_codebooks() -> None:
    assert transformer_component_names(_gpt2(), ["attention_heads", "mlp"], layers=[0]) == [
        "transformer.h.0.attn.c_proj",
        "transformer.h.0.mlp",
    ]
    model = _neox()
    ids = torch.randint(0, 7, (2, 6))
    with torch.no_grad():
        before = model(input_ids=ids).logits
    cbm = insert_hf_codebooks(model, components=("attention_heads", "mlp"), num_codes=8, k=1)
    heads = "gpt_neox.layers.0.attention.dense"
    assert cbm.names[:2] == [heads, "gpt_neox.layers.0.mlp"]
    assert cbm.inputs == [n for n in cbm.names if n.endswith("attention.dense")]
    assert (cbm.codebooks[heads].dim, cbm.codebooks[heads].groups) == (16, 2)
    with torch.no_grad(), cbm.record_codes() as rec:
        cbm(input_ids=ids)
    assert rec[heads][0].shape == (2, 6, 2, 1)  # one code per head
    assert rec["gpt_neox.layers.0.mlp"][0].shape == (2, 6, 1)
    # the dense projection sees the snapped head outputs: forcing head codes changes its input
    seen: list[torch.Tensor] = []
    dense = model.gpt_neox.layers[0].attention.dense
    handle = dense.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad(), cbm.force_codes({heads: torch.tensor([[3], [5]])}):
        cbm(input_ids=ids)
    handle.remove()
    book = cbm.codebooks[heads].codebook.detach()
    expected = torch.cat([book[0, 3], book[1, 5]])
    torch.testing.assert_close(seen[0], expected.expand(2, 6, 16))
    with torch.no_grad(), cbm.disabled():
        torch.testing.assert_close(cbm(input_ids=ids).logits, before)


def _bert() -> nn.Module:
    cfg = transformers.BertConfig(
        vocab_size=7,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    return transformers.BertModel(cfg).eval()


def test_bert_codebooks_sit_on_the_block_outputs_before_the_residual_and_norm() -> None:
    model = _bert()
    layer = "encoder.layer.0"
    assert transformer_component_names(model, layers=[0]) == [
        f"{layer}.attention.output.dense",
        f"{layer}.output.dense",
    ]
    heads = transformer_component_names(model, ["attention_heads", "mlp"], layers=[0])
    assert heads == [f"{layer}.attention.output.dense", f"{layer}.output.dense"]
    ids = torch.randint(0, 7, (2, 6))
    cbm = insert_hf_codebooks(model, num_codes=8, k=1)
    mlp = f"{layer}.output.dense"
    seen: dict[str, torch.Tensor] = {}
    block = model.encoder.layer[0]
    hooks = [
        block.attention.register_forward_hook(lambda m, a, out: seen.update(residual=out[0])),
        block.output.LayerNorm.register_forward_pre_hook(lambda m, a: seen.update(norm_in=a[0])),
    ]
    with torch.no_grad(), cbm.record_codes() as rec, cbm.force_codes({mlp: [3]}):
        cbm(input_ids=ids)
    for hook in hooks:
        hook.remove()
    assert rec[mlp][0].shape == (2, 6, 1)
    # LayerNorm(mlp output + residual) sees the code itself plus the residual
    code = cbm.codebooks[mlp].codebook.detach()[3]
    torch.testing.assert_close(seen["norm_in"], code + seen["residual"])
    cbm.remove()
    insert_hf_codebooks(model, components=("attention_heads", "mlp"), num_codes=8).remove()
    with pytest.raises(ValueError, match=r"attention\.output\.dense.*choose one"):
        insert_hf_codebooks(model, components=("attention", "attention_heads"), num_codes=8)


def test_codes_at_transplants_a_state_into_another_context() -> None:
    # the reference's TokFSM interchange intervention: take every codebook's codes at the last
    # token of input b and force them at the last token of input a. With codebooks on every
    # attention head and MLP, the last position's residual is then the token embedding plus
    # forced outputs only, so a and b ending with the same token must give b's logits there.
    model = _neox()
    cbm = insert_hf_codebooks(model, components=("attention_heads", "mlp"), num_codes=8, k=1)
    gen = torch.Generator().manual_seed(0)
    ids_b = torch.randint(0, 7, (4, 6), generator=gen)
    ids_a = (ids_b + torch.randint(1, 7, (4, 6), generator=gen)) % 7  # differs everywhere ...
    ids_a[:, -1] = ids_b[:, -1]  # ... except the last token
    codes = codes_at(cbm, ids_b)
    heads = "gpt_neox.layers.0.attention.dense"
    assert list(codes) == cbm.names
    assert codes[heads].shape == (4, 2, 1)
    assert codes["gpt_neox.layers.0.mlp"].shape == (4, 1)
    with torch.no_grad(), cbm.record_codes() as rec:
        target = cbm(input_ids=ids_b).logits[:, -1]
    for name in cbm.names:
        torch.testing.assert_close(codes[name], rec[name][0][:, -1])
    assert codes_at(cbm, ids_b, 2, names=[heads])[heads].shape == (4, 2, 1)
    plain = next_token_logits(cbm, ids_a)
    assert not torch.allclose(plain, target, atol=1e-4)
    patched = next_token_logits(cbm, ids_a, codes, positions=[-1])
    torch.testing.assert_close(patched, target)
    with pytest.raises(ValueError, match="position"):
        codes_at(cbm, ids_b, 6)
    with pytest.raises(ValueError, match="names must name"):
        codes_at(cbm, ids_b, names=["nope"])


def _tiny(config_class: str, model_class: str, **sizes: int) -> nn.Module:
    cfg = getattr(transformers, config_class)(vocab_size=16, **sizes)
    torch.manual_seed(0)
    return getattr(transformers, model_class)(cfg).eval()


_LAYOUTS = {  # architecture: (model, attention, attention heads, mlp) names in layer 0
    "opt": (
        lambda: _tiny(
            "OPTConfig",
            "OPTForCausalLM",
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            ffn_dim=32,
            word_embed_proj_dim=16,
            max_position_embeddings=16,
        ),
        "model.decoder.layers.0.self_attn",
        "model.decoder.layers.0.self_attn.out_proj",
        "model.decoder.layers.0.fc2",  # no MLP module: fc1 and fc2 are the layer's own
    ),
    "gpt_neo": (
        lambda: _tiny(
            "GPTNeoConfig",
            "GPTNeoForCausalLM",
            hidden_size=16,
            num_layers=2,
            num_heads=2,
            attention_types=[[["global"], 2]],
            max_position_embeddings=16,
        ),
        "transformer.h.0.attn",
        "transformer.h.0.attn.attention.out_proj",  # the projection sits one level down
        "transformer.h.0.mlp",
    ),
    "distilbert": (
        lambda: _tiny(
            "DistilBertConfig",
            "DistilBertModel",
            dim=16,
            n_layers=2,
            n_heads=2,
            hidden_dim=32,
            max_position_embeddings=16,
        ),
        "transformer.layer.0.attention",
        "transformer.layer.0.attention.out_lin",
        "transformer.layer.0.ffn",
    ),
    "deberta": (  # post-norm with DeBERTa's own LayerNorm class
        lambda: _tiny(
            "DebertaConfig",
            "DebertaModel",
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
        ),
        "encoder.layer.0.attention.output.dense",
        "encoder.layer.0.attention.output.dense",
        "encoder.layer.0.output.dense",
    ),
    "t5": (  # blocks nested in the layer's own list: layer.0 attention, layer.1 MLP
        lambda: _tiny(
            "T5Config",
            "T5EncoderModel",
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=2,
        ),
        "encoder.block.0.layer.0.SelfAttention",
        "encoder.block.0.layer.0.SelfAttention.o",
        "encoder.block.0.layer.1.DenseReluDense",
    ),
}


@pytest.mark.parametrize("arch", list(_LAYOUTS))
def test_component_names_of_other_layer_layouts(arch: str) -> None:
    make, attention, heads, mlp = _LAYOUTS[arch]
    model = make()
    assert transformer_component_names(model, layers=[0]) == [attention, mlp]
    assert transformer_component_names(model, ["attention_heads", "mlp"], layers=[0]) == [
        heads,
        mlp,
    ]
    ids = torch.randint(0, 16, (2, 5))
    with torch.no_grad():
        before = model(input_ids=ids)[0]
    for components in [("attention", "mlp"), ("attention_heads", "mlp")]:
        if arch == "deberta" and components[0] == "attention_heads":
            continue  # the same module as "attention" there
        cbm = insert_hf_codebooks(model, components=components, num_codes=8, k=1)
        with torch.no_grad(), cbm.record_codes() as rec:
            out = cbm(input_ids=ids)[0]
        assert out.shape == before.shape
        assert not torch.allclose(out, before)
        assert rec[mlp][0].shape == (2, 5, 1)
        cbm.remove()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids)[0], before)


def test_flattened_token_activations_are_snapped_per_token() -> None:
    # OPT's MLP runs on [B * T, D]: codes come back as [B, T, k], positions address tokens,
    # and a transplant of every code at the last token reproduces the other input's logits
    model = _LAYOUTS["opt"][0]()
    cbm = insert_hf_codebooks(model, components=("attention_heads", "mlp"), num_codes=8, k=1)
    mlp = "model.decoder.layers.1.fc2"
    gen = torch.Generator().manual_seed(0)
    ids_b = torch.randint(0, 16, (3, 6), generator=gen)
    ids_a = (ids_b + torch.randint(1, 16, (3, 6), generator=gen)) % 16
    ids_a[:, -1] = ids_b[:, -1]
    with torch.no_grad(), cbm.record_codes([mlp]) as rec:
        target = cbm(input_ids=ids_b).logits[:, -1]
    assert rec[mlp][0].shape == (3, 6, 1)
    codes = codes_at(cbm, ids_b)
    torch.testing.assert_close(codes[mlp], rec[mlp][0][:, -1])
    assert not torch.allclose(next_token_logits(cbm, ids_a), target, atol=1e-4)
    torch.testing.assert_close(next_token_logits(cbm, ids_a, codes, positions=[-1]), target)
    cbm.initialize_codebooks(input_ids=ids_b)  # the collected activations are [B, T, D] too
    assert cbm.codebooks[mlp].codebook.shape == (8, 16)


def test_a_generator_of_layers_gives_the_head_codebooks_their_groups() -> None:
    # insert_hf_codebooks reads the layer selection twice: a generator used to run dry on the
    # second reading, and the head codebook silently snapped the projection's output, ungrouped
    model = _gpt2()
    cbm = insert_hf_codebooks(
        model, components=("attention_heads",), layers=(i for i in [0]), num_codes=8
    )
    heads = "transformer.h.0.attn.c_proj"
    assert cbm.inputs == [heads]
    assert cbm.codebooks[heads].groups == 2
    cbm.remove()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layers": 0}, TypeError, r"layers must be a sequence of layer indices or None, got int"),
        ({"layers": "0"}, TypeError, r"layers must be a sequence of layer indices or None"),
        ({"layers": []}, ValueError, r"layers must select at least one layer"),
        ({"layers": [0, -2]}, ValueError, r"layers must be distinct .*got \[0, -2\]"),
        ({"components": None}, TypeError, r"components must be a sequence of .*got NoneType"),
    ],
)
def test_bad_layer_and_component_selections_are_named(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        transformer_component_names(_gpt2(), **kwargs)
    with pytest.raises(error, match=match):
        insert_hf_codebooks(_gpt2(), num_codes=8, **kwargs)
