"""Language priors p(d): the in-house LSTM LM and the Hugging Face adapter."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch

from neuronkit.interpretability.description import (
    DescriptionLM,
    HFLanguagePrior,
    LanguagePrior,
    Vocabulary,
)


def test_lm_is_a_normalised_distribution() -> None:
    v = Vocabulary(["a", "b"])
    lm = DescriptionLM(v, seed=0)
    assert isinstance(lm, LanguagePrior)
    # sum of p(d) over all word sequences up to length L, plus the mass of longer ones, is 1
    texts = [" ".join(w) for n in range(1, 5) for w in itertools.product("ab", repeat=n)]
    p = lm.log_prob(texts).exp().sum()
    with torch.no_grad():
        first = lm(torch.tensor([[v.bos]]))[0, 0]
    p_empty = float(first[v.eos].exp())
    # unreachable: pad/bos/unk tokens carry the rest of the mass, so total <= 1
    assert 0.0 < float(p) + p_empty <= 1.0 + 1e-5


def test_lm_learns_description_frequencies() -> None:
    texts = ["shapes"] * 60 + ["red circles"] * 20
    lm = DescriptionLM(Vocabulary.from_descriptions(texts), seed=0)
    history = lm.fit(texts, epochs=40, batch_size=16, lr=1e-2, seed=0)
    assert history[-1] < history[0]
    lp = lm.log_prob(["shapes", "red circles", "circles red"])
    assert math.exp(float(lp[0])) == pytest.approx(0.75, abs=0.06)
    assert math.exp(float(lp[1])) == pytest.approx(0.25, abs=0.06)
    assert float(lp[2]) < float(lp[1]) - 3
    assert lm.training  # mode restored


def test_lm_deterministic_and_errors() -> None:
    v = Vocabulary(["a"])
    a, b = DescriptionLM(v, seed=3), DescriptionLM(v, seed=3)
    torch.testing.assert_close(a.log_prob(["a"]), b.log_prob(["a"]))
    with pytest.raises(TypeError, match="descriptions"):
        a.log_prob("a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epochs"):
        a.fit(["a"], epochs=0)
    with pytest.raises(TypeError, match="vocabulary"):
        DescriptionLM(["a"])  # type: ignore[arg-type]


class _FakeTokenizer:
    bos_token_id = 1
    eos_token_id = 2
    words: ClassVar[dict[str, int]] = {"red": 3, "circles": 4, "shapes": 5}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [self.words[w] for w in text.split()]}


class _FakeCausalLM:
    """Fixed next-token table: logits depend only on the previous token."""

    def __init__(self) -> None:
        self.table = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


def test_hf_prior_matches_manual_chain_rule() -> None:
    model, tok = _FakeCausalLM(), _FakeTokenizer()
    prior = HFLanguagePrior(model, tok)
    assert isinstance(prior, LanguagePrior)
    got = prior.log_prob(["red circles", "shapes"])
    logp = torch.log_softmax(model.table, dim=-1)
    want0 = logp[1, 3] + logp[3, 4] + logp[4, 2]
    want1 = logp[1, 5] + logp[5, 2]
    torch.testing.assert_close(got, torch.stack([want0, want1]))
    no_eos = HFLanguagePrior(model, tok, add_eos=False).log_prob(["shapes"])
    torch.testing.assert_close(no_eos, logp[1, 5][None])
    with pytest.raises(TypeError, match="model"):
        HFLanguagePrior(None, tok)


def test_fit_leaves_the_global_rng_alone() -> None:
    """``fit`` seeded torch's global RNG and left it there (an audit of determinism)."""
    texts = ["red ball", "blue ball", "red cube"]
    lm = DescriptionLM(Vocabulary.from_descriptions(texts), seed=0)
    torch.manual_seed(1)
    untouched = torch.rand(2)
    torch.manual_seed(1)
    lm.fit(texts, epochs=1, seed=0)
    assert torch.equal(torch.rand(2), untouched)


def test_lm_modes_grad_mode_and_a_failed_fit(monkeypatch) -> None:
    texts = ["red ball", "blue ball", "red cube"]
    lm = DescriptionLM(Vocabulary.from_descriptions(texts), seed=0)
    expected = DescriptionLM(lm.vocabulary, seed=0).fit(texts, epochs=2, seed=0)
    with torch.no_grad():
        assert lm.fit(texts, epochs=2, seed=0) == expected
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"DescriptionLM\.fit needs"):
        lm.fit(texts, epochs=1)
    lm.train()
    lm.dropout.eval()  # a submodule the user keeps in eval mode
    modes = [m.training for m in lm.modules()]
    lm.log_prob(texts)
    assert [m.training for m in lm.modules()] == modes
    lm.fit(texts, epochs=1)
    assert [m.training for m in lm.modules()] == modes

    def fail(ids: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    lm.eval()
    monkeypatch.setattr(lm, "_sequence_log_prob", fail)
    with pytest.raises(RuntimeError, match="boom"):
        lm.fit(texts, epochs=1)
    assert not any(m.training for m in lm.modules())


def test_forward_refuses_bool_and_out_of_vocabulary_ids_by_name() -> None:
    lm = DescriptionLM(
        Vocabulary.from_descriptions(["red circles"]), embedding_size=4, hidden_size=4
    )
    with pytest.raises(ValueError, match="inputs must be an integer"):
        lm(torch.zeros(1, 3, dtype=torch.bool))
    for bad in (100, -1):
        with pytest.raises(ValueError, match=r"inputs must be token ids in \[0, "):
            lm(torch.full((1, 3), bad))


def test_forward_refuses_an_empty_sequence_by_name() -> None:
    lm = DescriptionLM(
        Vocabulary.from_descriptions(["red circles"]), embedding_size=4, hidden_size=4
    )
    with pytest.raises(ValueError, match=r"inputs must be an integer \[B, T\] tensor with T >= 1"):
        lm(torch.zeros(2, 0, dtype=torch.long))  # used to fail inside the LSTM
