"""Prompt-token attribution of a causal LM's continuation: ablation written out, the total
as the sum of the per-token rows, Shapley efficiency, skipped tokens, one forward row per
distinct prompt, a tiny Hugging Face GPT-2, bad input (Captum: test_attribution_captum.py);
LRP per target token."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    EpsilonRule,
    llm_attribution,
    llm_gradient_attribution,
    llm_lrp_attribution,
    lrp,
)

V = 20


class _TinyLM(nn.Module):
    """Token ids ``[N, L]`` -> logits ``[N, L, V]`` (a GRU: causal)."""

    def __init__(self) -> None:
        super().__init__()
        state = torch.random.get_rng_state()
        torch.manual_seed(0)
        self.emb, self.rnn = nn.Embedding(V, 16), nn.GRU(16, 16, batch_first=True)
        self.out = nn.Linear(16, V)
        torch.random.set_rng_state(state)
        self.seen: list[torch.Tensor] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.seen.append(ids.clone())
        h, _ = self.rnn(self.emb(ids))
        return self.out(h)


PROMPT = torch.tensor([1, 5, 7, 3, 9, 2])
TARGET = torch.tensor([4, 8, 6])


def _log_probs(model: nn.Module, prompt: torch.Tensor) -> torch.Tensor:
    """[1 + T]: the target's total log-probability and each token's, written out."""
    with torch.no_grad():
        full = torch.cat((prompt, TARGET))[None]
        logp = model(full)[0].double().log_softmax(-1)
    steps = [float(logp[len(prompt) - 1 + t, TARGET[t]]) for t in range(len(TARGET))]
    return torch.tensor([sum(steps), *steps], dtype=torch.float64)


def test_ablation_written_out() -> None:
    model = _TinyLM().eval()
    result = llm_attribution(model, PROMPT, TARGET, baseline_token=0)
    full = _log_probs(model, PROMPT)
    for i in range(len(PROMPT)):
        ablated = PROMPT.clone()
        ablated[i] = 0
        drop = full - _log_probs(model, ablated)
        torch.testing.assert_close(result.seq_attr[i], drop[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(result.token_attr[:, i], drop[1:], rtol=1e-5, atol=1e-6)
    assert torch.equal(result.input_ids, PROMPT)
    assert torch.equal(result.target_ids, TARGET)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("feature_ablation", {}),
        ("shapley_values", {}),
        ("shapley_value_sampling", {"n_samples": 3, "seed": 0}),
        ("kernel_shap", {"n_samples": 30, "seed": 0}),
    ],
)
def test_the_total_is_the_sum_of_the_token_rows_and_each_prompt_runs_once(method, kwargs) -> None:
    model = _TinyLM().eval()
    result = llm_attribution(model, PROMPT, TARGET, method=method, **kwargs)
    torch.testing.assert_close(result.seq_attr, result.token_attr.sum(0), rtol=1e-6, atol=1e-8)
    rows = torch.cat(model.seen)
    assert len(torch.unique(rows, dim=0)) == len(rows)  # no prompt evaluated twice
    if method == "shapley_values":  # efficiency: the values add up to all-present minus none
        none = _log_probs(model, torch.zeros_like(PROMPT))
        full = _log_probs(model, PROMPT)
        torch.testing.assert_close(result.seq_attr.sum(), full[0] - none[0], rtol=1e-5, atol=1e-6)


def test_skipped_tokens_stay_and_groups_share_a_value() -> None:
    model = _TinyLM().eval()
    mask = torch.tensor([0, 0, 1, 1, 2])  # the five tokens left after skipping token 1
    result = llm_attribution(model, PROMPT, TARGET, skip_tokens=[1], feature_mask=mask)
    assert result.seq_attr.shape == (5,)
    assert torch.equal(result.input_ids, PROMPT[1:])
    assert bool((torch.cat(model.seen)[:, 0] == 1).all())  # the skipped token never changes
    assert float(result.seq_attr[0]) == float(result.seq_attr[1])


def test_a_tiny_hugging_face_gpt2() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=V, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    result = llm_attribution(model, PROMPT[None], TARGET[None])
    with torch.no_grad():
        full = torch.cat((PROMPT, TARGET))[None]
        ablated = full.clone()
        ablated[0, 2] = 0
        logp = [model(ids).logits[0].double().log_softmax(-1) for ids in (full, ablated)]
    picked = [sum(float(lp[5 + t, TARGET[t]]) for t in range(3)) for lp in logp]
    torch.testing.assert_close(
        result.seq_attr[2].item(), picked[0] - picked[1], rtol=1e-5, atol=1e-6
    )


def test_bad_input_is_named() -> None:
    model = _TinyLM()
    with pytest.raises(TypeError, match="input_ids must hold integer token ids"):
        llm_attribution(model, PROMPT.float(), TARGET)
    with pytest.raises(ValueError, match="method must be one of"):
        llm_attribution(model, PROMPT, TARGET, method="saliency")
    with pytest.raises(ValueError, match="none is left to attribute"):
        llm_attribution(model, PROMPT[:1], TARGET, skip_tokens=[1])
    with pytest.raises(ValueError, match=r"feature_mask must be \[6\]"):
        llm_attribution(model, PROMPT, TARGET, feature_mask=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="model must return logits"):
        llm_attribution(lambda ids: ids.float(), PROMPT, TARGET)
    with pytest.raises(ValueError, match="target_ids must be one sequence"):
        llm_attribution(model, PROMPT, torch.zeros(2, 2, dtype=torch.long))


def test_gradient_attribution_is_complete_per_target_token() -> None:
    """Integrated gradients: each target token's row sums to its log-probability's change
    from the all-baseline prompt to the prompt (skipped tokens stay in both)."""
    model = _TinyLM().eval()
    result = llm_gradient_attribution(model, PROMPT, TARGET, layer="emb", skip_tokens=[1])
    reference = torch.where(PROMPT == 1, PROMPT, torch.zeros_like(PROMPT))
    change = _log_probs(model, PROMPT) - _log_probs(model, reference)
    torch.testing.assert_close(result.token_attr.sum(1).double(), change[1:], rtol=0, atol=2e-4)
    torch.testing.assert_close(result.seq_attr, result.token_attr.sum(0))
    assert result.token_attr.shape == (3, 5)
    with pytest.raises(TypeError, match="layer must be given"):
        llm_gradient_attribution(model, PROMPT, TARGET)


class _LastLogits(nn.Module):
    """Token embeddings ``[1, L, H]`` -> the logits at the last position ``[1, V]`` of a model
    reading ``inputs_embeds=`` (Hugging Face) or of :class:`_TinyLM`'s layers after its
    embedding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, _TinyLM):
            return self.model.out(self.model.rnn(embeds)[0])[:, -1]
        return self.model(inputs_embeds=embeds).logits[:, -1]


def _lrp_per_token(model: nn.Module, embedding: nn.Module, attention: str) -> torch.Tensor:
    """``[T, L]``: LRP of each target token's logit at the embeddings of the prompt and the
    target tokens before it (Captum's one pass per target token), summed over the embedding."""
    rows = []
    for j in range(len(TARGET)):
        with torch.no_grad():
            embeds = embedding(torch.cat((PROMPT, TARGET[:j]))[None])
        relevance = lrp(_LastLogits(model), embeds, int(TARGET[j]), attention=attention)
        rows.append(relevance[0, : len(PROMPT)].sum(-1))
    return torch.stack(rows)


@pytest.mark.parametrize("attention", ["uniform", "constant"])
def test_lrp_attribution_is_lrp_of_each_target_tokens_logit(attention) -> None:
    """One teacher-forced pass gives what LRP gives each target token's logit on the prompt
    and the target tokens before it (a GRU language model: Arras et al.'s rules)."""
    model = _TinyLM().double().eval()
    result = llm_lrp_attribution(
        model, PROMPT, TARGET, layer="emb", skip_tokens=[1], attention=attention
    )
    expected = _lrp_per_token(model, model.emb, attention)[:, PROMPT != 1]
    torch.testing.assert_close(result.token_attr, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result.seq_attr, result.token_attr.sum(0))
    assert result.token_attr.abs().sum() > 0
    chunked = llm_lrp_attribution(
        model, PROMPT, TARGET, layer="emb", skip_tokens=[1], attention=attention, batch_size=2
    )
    torch.testing.assert_close(chunked.token_attr, result.token_attr, rtol=1e-12, atol=1e-14)
    by_name = llm_lrp_attribution(model, PROMPT, TARGET, layer="emb", rules={"out": EpsilonRule(0)})
    by_type = llm_lrp_attribution(
        model, PROMPT, TARGET, layer="emb", rules={nn.Linear: EpsilonRule(0)}
    )
    torch.testing.assert_close(by_name.token_attr, by_type.token_attr)  # names as in the model
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        llm_lrp_attribution(model, PROMPT, TARGET, layer="emb", batch_size=0)


def test_lrp_attribution_of_a_tiny_hugging_face_llama() -> None:
    """AttnLRP (the default) through a LLaMA's embeddings, found by get_input_embeddings()."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=V,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).double().eval()
    result = llm_lrp_attribution(model, PROMPT[None], TARGET[None])
    expected = _lrp_per_token(model, model.get_input_embeddings(), "uniform")
    torch.testing.assert_close(result.token_attr, expected, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="attention must be one of"):
        llm_lrp_attribution(model, PROMPT, TARGET, attention="softmax")
