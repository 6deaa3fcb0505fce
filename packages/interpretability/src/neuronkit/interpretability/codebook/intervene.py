"""Steering generation by activating codes (Tamkin, Taufeeque & Goodman, "Codebook Features",
2023, Sections 4-5): find the code that fires with a feature, force it on during generation, and
the network behaves as if the feature were present (on TokFSM: as if it were in another state;
in language models: it writes about the code's topic).

:func:`generate_with_codes` is a plain autoregressive loop (no key/value cache, so an
intervention at a past position keeps acting on every later step) that works for any
:class:`~neuronkit.interpretability.codebook.wrap.CodebookModel` whose wrapped model maps
``[B, T]`` token ids to ``[B, T, V]`` logits, either directly or as the ``logits`` of a
Hugging Face output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch

from neuronkit.common import check_number, check_type

from .wrap import CodebookModel

__all__ = ["generate_with_codes", "next_token_logits"]


def _logits(model: CodebookModel, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
    if logits is None and isinstance(out, Mapping):
        logits = out.get("logits")
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        raise TypeError(
            "model must return [B, T, V] logits or an output with .logits, got "
            f"{type(out).__name__}"
        )
    return logits


@torch.no_grad()
def next_token_logits(
    model: CodebookModel,
    input_ids: torch.Tensor,
    codes: Mapping[str, torch.Tensor | Sequence[int] | int] | None = None,
    positions: Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits of the next token ``[B, V]`` with ``codes`` forced at ``positions``.

    See :func:`generate_with_codes` for the arguments.
    """
    _check(model, input_ids)
    abs_pos = _absolute(positions, input_ids.shape[1])
    ctx = model.force_codes(codes, abs_pos) if codes else contextlib.nullcontext()
    with ctx:
        return _logits(model, input_ids)[:, -1]


@torch.no_grad()
def generate_with_codes(
    model: CodebookModel,
    input_ids: torch.Tensor,
    codes: Mapping[str, torch.Tensor | Sequence[int] | int] | None = None,
    *,
    positions: Sequence[int] | None = None,
    max_new_tokens: int = 1,
    sample: bool = False,
    temperature: float = 1.0,
    vocab: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Generate ``max_new_tokens`` tokens while ``codes`` are forced on.

    Args:
        model: a :class:`CodebookModel` (put it in ``eval()`` mode first).
        input_ids: ``[B, T]`` long prompt.
        codes: ``{module name: ids}`` to activate (``[k]`` or ``[B, k]`` ids, see
            :meth:`CodebookLayer.force`); ``None`` or empty: plain generation.
        positions: prompt positions where the codes are forced (negative counts from the end of
            the prompt; they stay attached to those tokens as the sequence grows); ``None``
            forces them at every position, generated tokens included (the paper's topic
            steering).
        max_new_tokens: tokens to generate.
        sample: sample from the softmax (with ``generator``) instead of taking the argmax.
        temperature: softmax temperature when sampling.
        vocab: only the first ``vocab`` logits are eligible (e.g. to exclude special tokens).
        generator: ``torch.Generator`` for sampling (required when ``sample`` is True, for
            reproducibility).

    Returns:
        ``[B, T + max_new_tokens]`` long: the prompt followed by the generated tokens.
    """
    _check(model, input_ids)
    check_number("max_new_tokens", max_new_tokens, ge=1, integer=True)
    check_number("temperature", temperature, gt=0)
    if vocab is not None:
        check_number("vocab", vocab, ge=1, integer=True)
    if sample and generator is None:
        raise ValueError("generator must be a torch.Generator when sample=True, got None")
    if generator is not None:
        check_type("generator", generator, torch.Generator)
    abs_pos = _absolute(positions, input_ids.shape[1])
    ids = input_ids.clone()
    ctx = model.force_codes(codes, abs_pos) if codes else contextlib.nullcontext()
    with ctx:
        for _ in range(max_new_tokens):
            logits = _logits(model, ids)[:, -1]
            if vocab is not None:
                logits = logits[:, :vocab]
            if sample:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(ids.device)
            else:
                nxt = logits.argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    return ids


def _check(model: CodebookModel, input_ids: torch.Tensor) -> None:
    check_type("model", model, CodebookModel)
    check_type("input_ids", input_ids, torch.Tensor)
    if input_ids.ndim != 2 or input_ids.shape[1] == 0 or input_ids.dtype.is_floating_point:
        raise ValueError(
            f"input_ids must be a non-empty [B, T] integer tensor, got shape "
            f"{tuple(input_ids.shape)} and dtype {input_ids.dtype}"
        )


def _absolute(positions: Sequence[int] | None, length: int) -> list[int] | None:
    if positions is None:
        return None
    if isinstance(positions, int):
        positions = [positions]
    out: list[int] = []
    for i, p in enumerate(positions):
        check_number(f"positions[{i}]", p, ge=-length, lt=length, integer=True)
        out.append(int(p) % length)
    if not out:
        raise ValueError("positions must name at least one prompt position, got none")
    return out
