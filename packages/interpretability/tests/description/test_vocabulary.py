"""Word-level description vocabulary."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.description import Vocabulary, tokenize


def test_encode_decode_round_trip() -> None:
    v = Vocabulary.from_descriptions(["red circles", "Shapes on the left!", "objects"])
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert v.itos[4:] == sorted(v.itos[4:])
    assert tokenize("Shapes, on the LEFT!") == ["shapes", "on", "the", "left"]
    ids = v.encode(["red circles", "objects", "blue circles"])
    assert ids.shape == (3, 4)
    assert ids[:, 0].eq(v.bos).all()
    assert ids[1].tolist()[2:] == [v.eos, v.pad]
    assert ids[2, 1] == v.unk
    assert v.decode(ids[0]) == "red circles"
    assert v.decode(ids[2]) == "circles"  # <unk> dropped
    assert Vocabulary.from_descriptions(["b a", "a"]) == Vocabulary.from_descriptions(["a b"])


def test_bad_inputs() -> None:
    v = Vocabulary(["a"])
    with pytest.raises(TypeError, match="descriptions"):
        v.encode("a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        v.encode([])
    with pytest.raises(ValueError, match="id"):
        v.decode(torch.tensor([1, 9]))
    with pytest.raises(TypeError, match="words"):
        Vocabulary("abc")


def test_words_and_descriptions_that_are_not_iterable_are_named() -> None:
    with pytest.raises(TypeError, match="words must be Iterable, got NoneType"):
        Vocabulary(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="descriptions must be Iterable, got int"):
        Vocabulary.from_descriptions(5)  # type: ignore[arg-type]
