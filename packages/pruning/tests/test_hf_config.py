"""A pruned Hugging Face model's config describes its new shapes (save / from_pretrained)."""

from typing import Any

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face models need the optional transformers dependency"
)

from neuronkit.pruning import DependencyGraph, plan_pruning, prune  # noqa: E402
from neuronkit.pruning.hf_config import sync_hf_config  # noqa: E402

IDS = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1))


def _gpt2() -> Any:
    cfg = transformers.GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=4,
        n_positions=32,
        vocab_size=128,
        bos_token_id=0,
        eos_token_id=0,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _llama() -> Any:
    cfg = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=96,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        vocab_size=128,
        max_position_embeddings=32,
        head_dim=16,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def _pruned(model: Any, scope: str = "local", **kwargs: Any) -> Any:
    graph = DependencyGraph(model, IDS)
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
        return float((model(IDS).logits - loaded(IDS).logits).abs().max())


@pytest.mark.parametrize("make", [_gpt2, _llama])
def test_uniform_pruning_rewrites_config_and_round_trips(make: Any, tmp_path: Any) -> None:
    model = _pruned(make())
    cfg = model.config
    assert cfg.hidden_size == 32
    assert cfg.num_attention_heads == 2
    if make is _llama:
        assert (cfg.intermediate_size, cfg.num_key_value_heads, cfg.head_dim) == (48, 1, 16)
    else:
        assert cfg.n_inner == 128
    assert _roundtrip(model, tmp_path) < 1e-5


def test_sync_reports_only_changed_fields() -> None:
    model = _pruned(_llama())
    assert sync_hf_config(model) == {}  # prune() already synced it
    fresh = _llama()
    assert sync_hf_config(fresh) == {}


def test_layers_of_different_sizes_keep_config_and_warn() -> None:
    model = _llama()
    graph = DependencyGraph(model, IDS)
    plan = plan_pruning(graph, "l2", 0.5, scope="global")
    with pytest.warns(UserWarning, match="layers differ in intermediate_size"):
        pruned = prune(graph, plan)
    assert pruned.config.intermediate_size == 96  # unchanged: no single value describes it


def test_gpt2_width_that_is_not_heads_times_head_dim_warns() -> None:
    model = _gpt2()
    graph = DependencyGraph(model, IDS)
    heads = {g.index for g in graph.groups if any(p.endswith("attn.c_attn") for p in g.producers)}
    with pytest.warns(UserWarning, match="no config describes the pruned shapes"):
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


def test_non_hf_model_is_rejected() -> None:
    with pytest.raises(TypeError, match="model: expected a Hugging Face"):
        sync_hf_config(torch.nn.Linear(2, 2))
