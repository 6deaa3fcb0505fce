"""Steering generation by activating codes (Tamkin, Taufeeque & Goodman, "Codebook Features",
2023, Sections 4-5): find the code that fires with a feature, force it on during generation, and
the network behaves as if the feature were present (on TokFSM: as if it were in another state;
in language models: it writes about the code's topic).

:func:`codes_at` reads the codes every codebook chooses at one position of some inputs; forcing
them at a position of other inputs (``codes=codes_at(model, ids_b)``, ``positions=[-1]``) is the
reference implementation's interchange intervention on TokFSM (its ``tokfsm`` tutorial takes
each codebook's codes at the last token of state ``b`` run on its own and patches them in at the
last token of state ``a``).

:func:`generate_with_codes` is a plain autoregressive loop (no key/value cache, so an
intervention at a past position keeps acting on every later step) that works for any
:class:`~neuronkit.interpretability.codebook.wrap.CodebookModel` whose wrapped model maps
``[B, T]`` token ids to ``[B, T, V]`` logits, either directly or as the ``logits`` of a
Hugging Face output.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from neuronkit.common import check_number, check_type, integer_dtype

from .wrap import CodebookModel

__all__ = ["codes_at", "generate_with_codes", "next_token_logits"]


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
def codes_at(
    model: CodebookModel,
    input_ids: torch.Tensor,
    position: int = -1,
    *,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """The codes each codebook chooses at ``position`` of every input (no codes forced).

    Args:
        model: a :class:`CodebookModel` (put it in ``eval()`` mode first).
        input_ids: ``[B, T]`` long inputs.
        position: the sequence position read (negative counts from the end).
        names: codebooks to read (``None``: all).

    Returns:
        ``{module name: ids}`` with ``[B, k]`` ids (``[B, G, k]`` for grouped codebooks), on the
        CPU, in the form :meth:`CodebookModel.force_codes` takes per sequence: forcing them at
        a position of other inputs makes every such codebook output there what it output here.
    """
    _check(model, input_ids)
    check_number("position", position, ge=-input_ids.shape[1], lt=input_ids.shape[1], integer=True)
    with model.record_codes(names) as recorded:
        _logits(model, input_ids)
    out: dict[str, torch.Tensor] = {}
    for name, calls in recorded.items():
        if len(calls) != 1:
            raise RuntimeError(
                f"codebook {name!r} ran {len(calls)} times in one forward pass; codes_at needs "
                "exactly one call per codebook"
            )
        ids = calls[0]
        if ids.ndim < 3 or ids.shape[0] != input_ids.shape[0]:
            raise RuntimeError(
                f"codebook {name!r} chose ids of shape {tuple(ids.shape)}; codes_at needs "
                "[B, T, ...] ids from a [B, T] input"
            )
        out[name] = ids[:, int(position)].clone()
    return out


@torch.no_grad()
def next_token_logits(
    model: CodebookModel,
    input_ids: torch.Tensor,
    codes: Mapping[str, torch.Tensor | Sequence[int] | int] | None = None,
    positions: int | Sequence[int] | torch.Tensor | None = None,
    *,
    per_sequence: bool = False,
    at: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of the next token ``[B, V]`` with ``codes`` forced at ``positions``.

    Args:
        at: ``[B]`` long, the position of each sequence whose next-token logits are returned
            (for right-padded prompts of different lengths); ``None``: the last position.

    See :func:`generate_with_codes` for the other arguments.
    """
    _check(model, input_ids)
    abs_pos = _absolute(positions, input_ids.shape[1], per_sequence, input_ids.shape[0])
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    if at is None:
        cols = torch.full_like(rows, input_ids.shape[1] - 1)
    else:
        cols = _absolute_tensor("at", at, input_ids.shape[1], input_ids.shape[0])
        cols = cols.to(input_ids.device)
    ctx = (
        model.force_codes(codes, abs_pos, per_sequence=per_sequence)
        if codes
        else contextlib.nullcontext()
    )
    with ctx:
        return _logits(model, input_ids)[rows, cols]


@torch.no_grad()
def generate_with_codes(
    model: CodebookModel,
    input_ids: torch.Tensor,
    codes: Mapping[str, torch.Tensor | Sequence[int] | int] | None = None,
    *,
    positions: int | Sequence[int] | torch.Tensor | None = None,
    per_sequence: bool = False,
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
        per_sequence: ``positions`` holds one prompt position per sequence (``[B]``), e.g.
            the last token of each prompt's current state.
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
    check_type("sample", sample, bool)
    if vocab is not None:
        check_number("vocab", vocab, ge=1, integer=True)
    if sample and generator is None:
        raise ValueError("generator must be a torch.Generator when sample=True, got None")
    if generator is not None:
        check_type("generator", generator, torch.Generator)
    abs_pos = _absolute(positions, input_ids.shape[1], per_sequence, input_ids.shape[0])
    ids = input_ids.clone()
    ctx = (
        model.force_codes(codes, abs_pos, per_sequence=per_sequence)
        if codes
        else contextlib.nullcontext()
    )
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
    if input_ids.ndim != 2 or input_ids.shape[1] == 0 or not integer_dtype(input_ids):
        raise ValueError(
            f"input_ids must be a non-empty [B, T] integer tensor, got shape "
            f"{tuple(input_ids.shape)} and dtype {input_ids.dtype}"
        )


def _absolute_tensor(name: str, values: torch.Tensor, length: int, batch: int) -> torch.Tensor:
    check_type(name, values, torch.Tensor)
    if values.ndim != 1 or values.numel() != batch or not integer_dtype(values):
        raise ValueError(
            f"{name} must be a [B] = [{batch}] integer tensor, one position per sequence, got "
            f"shape {tuple(values.shape)} and dtype {values.dtype}"
        )
    if bool(((values < -length) | (values >= length)).any()):
        raise ValueError(
            f"{name} must lie in [-{length}, {length}) (the prompt), got {values.tolist()}"
        )
    return values.long().cpu() % length


def _absolute(
    positions: int | Sequence[int] | torch.Tensor | None,
    length: int,
    per_sequence: bool = False,
    batch: int = 1,
) -> list[int] | torch.Tensor | None:
    check_type("per_sequence", per_sequence, bool)
    if per_sequence:
        if positions is None:
            raise ValueError("positions must give one position per sequence when per_sequence")
        try:
            per_row = torch.as_tensor(positions)
        except (TypeError, ValueError, RuntimeError):  # not numbers
            raise TypeError(
                f"positions must be [B] integer positions, one per sequence, got {positions!r:.80}"
            ) from None
        return _absolute_tensor("positions", per_row, length, batch)
    if positions is None:
        return None
    values: Any = positions
    if isinstance(values, (torch.Tensor, np.ndarray)):
        values = values.tolist()  # a 0-d one gives a number
    if isinstance(values, numbers.Number):  # an int, np.int64, ...: one position
        values = [values]
    out: list[int] = []
    for i, p in enumerate(values):
        check_number(f"positions[{i}]", p, ge=-length, lt=length, integer=True)
        out.append(int(p) % length)
    if not out:
        raise ValueError("positions must name at least one prompt position, got none")
    return out
