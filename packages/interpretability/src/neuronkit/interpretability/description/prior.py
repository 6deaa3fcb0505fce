"""Language priors ``p(d)`` over neuron descriptions.

MILAN (Hernandez et al., "Natural Language Descriptions of Deep Visual Features", ICLR 2022)
decodes the description maximising pointwise mutual information with the exemplars,
``log p(d | E) - lambda log p(d)``, where ``p(d)`` is a language model trained on the
descriptions of the training annotations alone (authors' ``milan/lms.py``: an LSTM LM over
the captioner's vocabulary). The prior penalises descriptions that are likely whatever the
neuron ("shapes", "objects"), which max-likelihood decoding prefers.

* :class:`LanguagePrior`: the plugin protocol (``log_prob(descriptions) -> [n]``).
* :class:`DescriptionLM`: the LSTM LM, trained here.
* :class:`HFLanguagePrior`: adapter for a Hugging Face causal LM (``transformers`` is not
  imported; pass your own model and tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import (
    check_adam_dtype,
    check_number,
    check_seed,
    check_type,
    eval_mode,
    forked_manual_seed,
    grad_enabled,
    integer_dtype,
    progress,
    torch_generator,
)

from .captioner import _own_rng, _training
from .vocabulary import Vocabulary

__all__ = ["DescriptionLM", "HFLanguagePrior", "LanguagePrior"]


@runtime_checkable
class LanguagePrior(Protocol):
    """What PMI decoding needs from a language prior."""

    def log_prob(self, descriptions: Sequence[str]) -> torch.Tensor:
        """``[n]`` log p(d) of each description."""
        ...


def _texts(descriptions: Any) -> list[str]:
    if isinstance(descriptions, str) or not isinstance(descriptions, Sequence):
        raise TypeError(
            f"descriptions must be a sequence of strings, got {type(descriptions).__name__}"
        )
    if not descriptions:
        raise ValueError("descriptions must hold at least one string, got an empty sequence")
    for i, d in enumerate(descriptions):
        check_type(f"descriptions[{i}]", d, str)
    return list(descriptions)


class DescriptionLM(nn.Module):
    """LSTM language model over descriptions: ``log p(d) = sum_t log p(w_t | w_<t)``.

    Args:
        vocabulary: shared with the captioner, so both score the same token sequences.
        embedding_size, hidden_size, layers: LSTM sizes.
        dropout: dropout on the LSTM outputs during training.
        seed: initialise the weights from this seed (default: torch's global RNG).

    ``forward(inputs [B, T]) -> [B, T, V]`` log-probabilities of the next word.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        *,
        embedding_size: int = 32,
        hidden_size: int = 64,
        layers: int = 1,
        dropout: float = 0.1,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_type("vocabulary", vocabulary, Vocabulary)
        for name, v in (
            ("embedding_size", embedding_size),
            ("hidden_size", hidden_size),
            ("layers", layers),
        ):
            check_number(name, v, ge=1, integer=True)
        check_number("dropout", dropout, ge=0.0, lt=1.0)
        self.vocabulary = vocabulary
        with forked_manual_seed(seed):
            self.embedding = nn.Embedding(len(vocabulary), embedding_size)
            self.lstm = nn.LSTM(embedding_size, hidden_size, num_layers=layers, batch_first=True)
            self.dropout = nn.Dropout(dropout)
            self.output = nn.Linear(hidden_size, len(vocabulary))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        check_type("inputs", inputs, torch.Tensor)
        if inputs.ndim != 2 or inputs.shape[1] == 0 or not integer_dtype(inputs):
            raise ValueError(  # T = 0 fails inside the LSTM ("Expected sequence length ...")
                "inputs must be an integer [B, T] tensor with T >= 1, got "
                f"{inputs.dtype} {tuple(inputs.shape)}"
            )
        try:
            embedded = self.embedding(inputs)
        except IndexError:  # checked on the failure path only: fit calls this at every step
            raise ValueError(
                f"inputs must be token ids in [0, {len(self.vocabulary)}), got range "
                f"[{int(inputs.min())}, {int(inputs.max())}]"
            ) from None
        hidden, _ = self.lstm(embedded)
        return F.log_softmax(self.output(self.dropout(hidden)), dim=-1)

    def _sequence_log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        logp = self(ids[:, :-1])
        target = ids[:, 1:]
        picked = logp.gather(2, target[..., None])[..., 0]
        return (picked * (target != self.vocabulary.pad)).sum(dim=1)

    @_own_rng
    @grad_enabled("DescriptionLM.fit")
    def fit(
        self,
        descriptions: Sequence[str],
        *,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 3e-3,
        seed: int = 0,
        show_progress: bool | None = None,
    ) -> list[float]:
        """Maximum-likelihood training on ``descriptions``; mean NLL of each epoch
        (``show_progress``: a bar over the epochs, ``None``: only on a terminal)."""
        texts = _texts(descriptions)
        for name, v in (("epochs", epochs), ("batch_size", batch_size)):
            check_number(name, v, ge=1, integer=True)
        check_number("lr", lr, gt=0.0)
        check_seed(seed)
        ids = self.vocabulary.encode(texts).to(self.embedding.weight.device)
        gen = torch_generator(seed)
        check_adam_dtype("DescriptionLM", self.named_parameters())
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        with _training(self):
            for _ in progress(range(epochs), show_progress=show_progress, desc="fit prior"):
                order = torch.randperm(len(texts), generator=gen)
                total = 0.0
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    loss = -self._sequence_log_prob(ids[idx]).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    # drop an outer autocast's cached low-precision copies of the updated weights
                    torch.clear_autocast_cache()
                    total += float(loss.detach()) * len(idx)
                history.append(total / len(texts))
        return history

    def log_prob(self, descriptions: Sequence[str]) -> torch.Tensor:
        """``[n]`` log p(d) (including ``<eos>``), dropout off."""
        texts = _texts(descriptions)
        with eval_mode(self), torch.no_grad():  # every submodule's own mode restored after
            ids = self.vocabulary.encode(texts).to(self.embedding.weight.device)
            return self._sequence_log_prob(ids)


class HFLanguagePrior:
    """Adapter of a Hugging Face causal LM to the :class:`LanguagePrior` protocol.

    ``log p(d) = sum_t log p(token_t | tokens_<t)`` over the tokens of ``prefix + d`` after the
    prefix (by default the tokenizer's BOS token when it has one), plus the EOS token when
    ``add_eos`` and the tokenizer has one.

    Args:
        model: called as ``model(input_ids=..., attention_mask=...)`` with ``.logits [B, T, V]``.
        tokenizer: its tokenizer (``__call__``; ``bos_token_id`` / ``eos_token_id`` used if set).
        add_eos: score the end of the description too (as the in-house LM does).
    """

    def __init__(self, model: Any, tokenizer: Any, *, add_eos: bool = True) -> None:
        if not callable(model):
            raise TypeError(f"model must be a callable Hugging Face model, got {type(model)}")
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a callable tokenizer, got {type(tokenizer)}")
        check_type("add_eos", add_eos, bool)
        self.model = model
        self.tokenizer = tokenizer
        self.add_eos = add_eos

    def log_prob(self, descriptions: Sequence[str]) -> torch.Tensor:
        """``[n]`` log p(d) of each description under the causal LM."""
        texts = _texts(descriptions)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        eos = getattr(self.tokenizer, "eos_token_id", None) if self.add_eos else None
        rows = []
        for t in texts:
            ids = list(self.tokenizer(t, add_special_tokens=False)["input_ids"])
            start = [bos] if bos is not None else []
            rows.append((start, ids + ([eos] if eos is not None else [])))
        width = max(len(s) + len(i) for s, i in rows)
        if any(not s for s, _ in rows):
            raise ValueError("tokenizer must define bos_token_id to score the first token")
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        attention = torch.zeros(len(rows), width, dtype=torch.long)
        scored = torch.zeros(len(rows), width, dtype=torch.bool)
        for r, (s, i) in enumerate(rows):
            seq = s + i
            input_ids[r, : len(seq)] = torch.tensor(seq)
            attention[r, : len(seq)] = 1
            scored[r, len(s) : len(seq)] = True
        device = getattr(self.model, "device", None)  # Hugging Face models have one
        if isinstance(device, torch.device):
            input_ids, attention = input_ids.to(device), attention.to(device)
        with torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=attention).logits
        logp = torch.log_softmax(torch.as_tensor(logits).float(), dim=-1)
        input_ids, scored = input_ids.to(logp.device), scored.to(logp.device)
        picked = logp[:, :-1].gather(2, input_ids[:, 1:, None])[..., 0]
        return (picked * scored[:, 1:]).sum(dim=1)
