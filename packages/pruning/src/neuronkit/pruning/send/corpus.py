"""The synthetic fact corpus shipped for SeND, and a word-level tokenizer built from it.

The SeND paper (Mohammadzadeh et al., 2024) fine-tunes Pythia models on factual text (HELM
Wikipedia, medical QA) and measures hallucination with EigenScore on fact prompts. With no
download allowed, neuronkit ships a small synthetic world instead: invented countries with a
capital, a language and a currency, and invented people with a birthplace and a profession.
Every fact is one line ``"<prompt> <answer> ."`` whose answer is the last word before the full
stop, repeated 1-4 times (a skewed frequency, so some facts are learned better than others).

``send/facts.txt`` is exactly ``"\\n".join(generate_fact_corpus(seed=0)) + "\\n"``; the test
suite checks that, so the file can always be regenerated.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import torch

from neuronkit.common import check_number, check_seed, check_type

__all__ = [
    "SPECIAL_TOKENS",
    "Fact",
    "WordTokenizer",
    "generate_fact_corpus",
    "load_fact_corpus",
    "split_fact",
    "unique_facts",
]

#: Special tokens of :class:`WordTokenizer`, in id order.
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "br")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "m")
_FUNCTION_WORDS = frozenset(
    ("the", "capital", "of", "is", "language", "currency", "was", "born", "in", "works")
) | {"as", "a", "."}
_JOBS = (
    "baker", "farmer", "sailor", "painter", "weaver", "miner", "doctor", "teacher",
    "singer", "hunter", "potter", "scribe",
)  # fmt: skip


@dataclass(frozen=True)
class Fact:
    """One fact: ``prompt`` (the words before the answer) and its one-word ``answer``."""

    prompt: str
    answer: str


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return "".join(parts) + rng.choice(_CODAS)


def _names(rng: random.Random, n: int, used: set[str], syllables: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = _word(rng, syllables)
        if w not in used and w not in _FUNCTION_WORDS:
            used.add(w)
            out.append(w)
    return out


def generate_fact_corpus(seed: int = 0, countries: int = 48, people: int = 64) -> list[str]:
    """Generate the synthetic fact corpus (one fact per line, lower case, ``" ."``-terminated).

    Args:
        seed: seed of the generator (``send/facts.txt`` is ``seed=0`` with the defaults).
        countries: invented countries, each with a capital, language and currency fact.
        people: invented people, each with a birthplace (one of the capitals) and a job.

    Returns:
        The corpus lines, each fact repeated 1-4 times (probabilities .4/.3/.2/.1), shuffled.
    """
    check_seed(seed)
    check_number("countries", countries, ge=2, integer=True)
    check_number("people", people, ge=1, integer=True)
    rng = random.Random(int(seed))  # also a numpy integer
    used: set[str] = set(_JOBS)
    country = _names(rng, countries, used, 2)
    city = _names(rng, countries, used, 2)
    language = _names(rng, max(2, countries // 4), used, 2)
    currency = _names(rng, max(2, countries // 5), used, 1)
    person = _names(rng, people, used, 2)
    facts: list[str] = []
    for i, c in enumerate(country):
        facts.append(f"the capital of {c} is {city[i]} .")
        facts.append(f"the language of {c} is {rng.choice(language)} .")
        facts.append(f"the currency of {c} is {rng.choice(currency)} .")
    for p in person:
        facts.append(f"{p} was born in {rng.choice(city)} .")
        facts.append(f"{p} works as a {rng.choice(_JOBS)} .")
    lines: list[str] = []
    for fact in facts:
        lines.extend([fact] * rng.choices((1, 2, 3, 4), weights=(4, 3, 2, 1))[0])
    rng.shuffle(lines)
    return lines


def load_fact_corpus() -> list[str]:
    """The shipped corpus ``neuronkit/pruning/send/facts.txt`` as a list of lines."""
    text = resources.files("neuronkit.pruning.send").joinpath("facts.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line.strip()]


def split_fact(line: str) -> Fact:
    """Split ``"<prompt> <answer> ."`` into its prompt and one-word answer.

    Raises:
        ValueError: when ``line`` does not end with ``" ."`` after at least two words.
    """
    return _split_fact(line, "line")


def _split_fact(line: str, name: str) -> Fact:
    check_type(name, line, str)
    words = line.split()
    if len(words) < 3 or words[-1] != ".":
        raise ValueError(f"{name} must look like '<prompt> <answer> .', got {line!r}")
    return Fact(" ".join(words[:-2]), words[-2])


def unique_facts(lines: Sequence[str]) -> list[Fact]:
    """The distinct facts of ``lines`` in first-appearance order."""
    if isinstance(lines, str):
        raise TypeError(f"lines must be a sequence of fact lines, got a single str {lines!r:.80}")
    seen: dict[str, Fact] = {}
    for i, line in enumerate(lines):
        if line not in seen:
            seen[line] = _split_fact(line, f"lines[{i}]")
    return list(seen.values())


class WordTokenizer:
    """A whitespace word-level tokenizer with ``<pad>``, ``<bos>``, ``<eos>`` and ``<unk>``.

    Built from texts (:meth:`from_texts`); ids 0-3 are :data:`SPECIAL_TOKENS`, then the words
    in sorted order, so the same texts always give the same vocabulary.
    """

    def __init__(self, vocabulary: Sequence[str]) -> None:
        check_type("vocabulary", vocabulary, (list, tuple))
        vocab = list(vocabulary)
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {tuple(vocab[:4])}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary must not repeat a token")
        self.vocabulary: tuple[str, ...] = tuple(vocab)
        self.index = {w: i for i, w in enumerate(vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = 0, 1, 2, 3

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> WordTokenizer:
        """Vocabulary = special tokens + every whitespace-separated word of ``texts``."""
        check_type("texts", texts, (list, tuple))
        words = sorted({w for t in texts for w in str(t).split()} - set(SPECIAL_TOKENS))
        return cls([*SPECIAL_TOKENS, *words])

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str, *, bos: bool = True, eos: bool = False) -> list[int]:
        """Token ids of ``text`` (unknown words map to ``<unk>``)."""
        check_type("text", text, str)
        ids = [self.index.get(w, self.unk_id) for w in text.split()]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        """Words of ``ids`` joined by spaces (special tokens dropped unless asked)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocabulary):
                raise ValueError(f"ids must lie in [0, {len(self.vocabulary)}), got {i}")
            if skip_special and i < len(SPECIAL_TOKENS):
                continue
            out.append(self.vocabulary[i])
        return " ".join(out)

    def batch(
        self, texts: Sequence[str], *, bos: bool = True, eos: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``input_ids`` and ``attention_mask``, both ``[N, L]`` int64."""
        check_type("texts", texts, (list, tuple))
        if not texts:
            raise ValueError("texts must hold at least one text, got an empty sequence")
        rows = [self.encode(t, bos=bos, eos=eos) for t in texts]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return ids, mask
