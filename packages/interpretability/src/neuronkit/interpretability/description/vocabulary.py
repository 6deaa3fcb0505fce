"""Word-level vocabulary for neuron descriptions (shared by the captioner and the prior).

MILAN (Hernandez et al., "Natural Language Descriptions of Deep Visual Features", ICLR 2022)
decodes descriptions word by word; the captioner and the language prior must share one
vocabulary so that ``log p(d | E)`` and ``log p(d)`` score the same token sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from neuronkit.common import check_number, check_type

__all__ = ["BOS", "EOS", "PAD", "UNK", "Vocabulary", "tokenize"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-cased whitespace tokens of ``text`` (punctuation other than words is dropped)."""
    check_type("text", text, str)
    cleaned = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower())
    return cleaned.split()


class Vocabulary:
    """Maps words to ids; ids 0..3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``.

    Args:
        words: the (non-special) words, in the order they get ids ``4, 5, ...``.
    """

    def __init__(self, words: Iterable[str]) -> None:
        if isinstance(words, str):
            raise TypeError("words must be an iterable of words, got a single str")
        check_type("words", words, Iterable)
        self.itos: list[str] = [PAD, BOS, EOS, UNK]
        for w in words:
            check_type("word", w, str)
            if w not in self.itos:
                self.itos.append(w)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def from_descriptions(cls, descriptions: Iterable[str]) -> Vocabulary:
        """Every word of ``descriptions`` (sorted, so the ids do not depend on their order)."""
        if isinstance(descriptions, str):
            raise TypeError("descriptions must be an iterable of strings, got a single str")
        check_type("descriptions", descriptions, Iterable)
        words: set[str] = set()
        for i, d in enumerate(descriptions):
            check_type(f"descriptions[{i}]", d, str)
            words.update(tokenize(d))
        return cls(sorted(words))

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    __hash__ = None  # type: ignore[assignment]

    @property
    def pad(self) -> int:
        """Id of ``<pad>`` (0)."""
        return 0

    @property
    def bos(self) -> int:
        """Id of ``<bos>`` (1)."""
        return 1

    @property
    def eos(self) -> int:
        """Id of ``<eos>`` (2)."""
        return 2

    @property
    def unk(self) -> int:
        """Id of ``<unk>`` (3)."""
        return 3

    def ids(self, text: str) -> list[int]:
        """Word ids of ``text`` (unknown words map to ``<unk>``), without specials."""
        return [self.stoi.get(w, self.unk) for w in tokenize(text)]

    def encode(self, descriptions: Sequence[str]) -> torch.Tensor:
        """``[n, T + 2]`` ids ``<bos> w_1 .. w_T <eos>``, right-padded with ``<pad>``."""
        if isinstance(descriptions, str) or not isinstance(descriptions, Sequence):
            raise TypeError(
                f"descriptions must be a sequence of strings, got {type(descriptions).__name__}"
            )
        if not descriptions:
            raise ValueError("descriptions must hold at least one string, got an empty sequence")
        rows = []
        for i, d in enumerate(descriptions):
            check_type(f"descriptions[{i}]", d, str)
            rows.append([self.bos, *self.ids(d), self.eos])
        width = max(len(r) for r in rows)
        out = torch.full((len(rows), width), self.pad, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The words of ``ids`` up to the first ``<eos>``, specials dropped."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        words = []
        for i in ids:
            check_number("id", i, ge=0, lt=len(self), integer=True)
            if i == self.eos:
                break
            if i > self.unk:
                words.append(self.itos[i])
        return " ".join(words)
