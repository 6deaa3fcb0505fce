"""Tests of the shipped fact corpus and the word tokenizer (neuronkit.pruning.send.corpus)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.send.corpus import (
    SPECIAL_TOKENS,
    WordTokenizer,
    generate_fact_corpus,
    load_fact_corpus,
    split_fact,
    unique_facts,
)


def test_shipped_corpus_is_the_seed0_generator_output() -> None:
    assert load_fact_corpus() == generate_fact_corpus(seed=0)


def test_generator_is_deterministic_and_consistent() -> None:
    lines = generate_fact_corpus(seed=3, countries=6, people=4)
    assert lines == generate_fact_corpus(seed=3, countries=6, people=4)
    facts = unique_facts(lines)
    assert len(facts) == 6 * 3 + 4 * 2
    # one answer per prompt: the corpus never contradicts itself
    answers: dict[str, str] = {}
    for f in facts:
        assert answers.setdefault(f.prompt, f.answer) == f.answer


def test_split_fact() -> None:
    f = split_fact("the capital of zorbia is velm .")
    assert (f.prompt, f.answer) == ("the capital of zorbia is", "velm")
    with pytest.raises(ValueError, match="line must look like"):
        split_fact("no full stop here")


def test_tokenizer_roundtrip_and_batch() -> None:
    tok = WordTokenizer.from_texts(["a b c .", "c d ."])
    assert tok.vocabulary[:4] == SPECIAL_TOKENS
    ids = tok.encode("a d .", eos=True)
    assert ids[0] == tok.bos_id
    assert ids[-1] == tok.eos_id
    assert tok.decode(ids) == "a d ."
    assert tok.encode("zzz", bos=False) == [tok.unk_id]
    x, m = tok.batch(["a .", "a b c ."])
    assert x.shape == m.shape == (2, 6)
    assert m.sum(1).tolist() == [4, 6]
    assert torch.all(x[m == 0] == tok.pad_id)


def test_tokenizer_bad_inputs() -> None:
    with pytest.raises(ValueError, match="vocabulary must start"):
        WordTokenizer(["a", "b"])
    tok = WordTokenizer.from_texts(["a"])
    with pytest.raises(ValueError, match="ids must lie"):
        tok.decode([99])
    with pytest.raises(ValueError, match="texts must hold"):
        tok.batch([])
    with pytest.raises(TypeError, match="text"):
        tok.encode(3)  # type: ignore[arg-type]


def test_a_numpy_integer_seed_is_the_same_seed() -> None:
    import numpy as np

    assert generate_fact_corpus(seed=np.int64(3)) == generate_fact_corpus(seed=3)
