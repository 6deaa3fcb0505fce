"""N-parity and N-delayed-match-to-sample (N-DMS) sequence tasks.

Khajehabdollahi, Zeraati, Giannakakis, Schaefer, Martius & Levina, "Emergent mechanisms for long
timescales depend on training curriculum and affect performance in memory tasks" (ICLR 2024).
A network reads a binary sequence ``x_1 .. x_M`` one bit per step and, at the last step, reports

* **N-parity**: the parity of the last ``N`` bits, ``(x_{M-N+1} + ... + x_M) mod 2``;
* **N-DMS**: whether the bit ``N - 1`` steps back matches the current one,
  ``x_{M-N+1} == x_M`` (so, like N-parity, the answer depends on a window of the last ``N``
  inputs; ``N = 2`` compares consecutive bits). This is the authors' reference convention.

Several ``N`` can be asked about the same sequence (one label row per ``N``), which is what the
multi-head curriculum trains on. Following the reference code, a batch's sequence length is drawn
uniformly from ``[N_max + 2, N_max + 2 + 3 N_max)`` (``make_batch_Nbit_pair_parity`` and the DMS
batch maker on the reference's main branch; a 1.5 N_max spread exists only on an unmerged branch) so
the network cannot count time, and parity bits are Bernoulli(``p``) with its own ``p ~ U(0, 1)``
drawn for every sequence (the reference code calls ``generate_binary_sequence`` once per sequence;
DMS bits are balanced, ``p = 0.5``, so neither class dominates).

Sequences are time-major ``[T, B, 1]`` float32 tensors of 0/1; labels ``[K, B]`` int64 with one
row per requested ``N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from neuronkit.common import check_choice, check_probability, check_type

from .._utils import check_positive_int, torch_generator

__all__ = [
    "SequenceTask",
    "binary_sequences",
    "dms_labels",
    "memory_task",
    "n_dms",
    "n_parity",
    "parity_labels",
    "task_length",
]

_TASKS = ("parity", "dms")
#: Spread of the random sequence length, in units of ``N_max`` (reference code).
_LENGTH_SPREAD = {"parity": 3.0, "dms": 3.0}


@dataclass(frozen=True)
class SequenceTask:
    """A batch of an N-parity or N-DMS task.

    Attributes:
        task: ``"parity"`` or ``"dms"``.
        ns: the memory spans ``N`` asked about, one label row each.
        x: binary inputs ``[T, B, 1]`` (float32, time-major).
        labels: ``[len(ns), B]`` int64 class labels (0/1), row ``k`` for ``ns[k]``.
    """

    task: str
    ns: tuple[int, ...]
    x: torch.Tensor
    labels: torch.Tensor

    @property
    def length(self) -> int:
        """Sequence length ``T``."""
        return int(self.x.shape[0])

    @property
    def batch_size(self) -> int:
        """Batch size ``B``."""
        return int(self.x.shape[1])


def _check_ns(ns: Sequence[int]) -> tuple[int, ...]:
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Sequence):
        raise TypeError(f"ns must be a sequence of integers N >= 1, got {type(ns).__name__}")
    out = tuple(check_positive_int(f"ns[{i}]", n) for i, n in enumerate(ns))
    if not out:
        raise ValueError("ns must name at least one N, got an empty sequence")
    return out


def _check_sequences(x: torch.Tensor, min_length: int) -> None:
    check_type("x", x, torch.Tensor)
    if x.ndim != 3 or x.shape[2] != 1:
        raise ValueError(f"x must have shape [T, B, 1], got {tuple(x.shape)}")
    if x.shape[0] < min_length:
        raise ValueError(
            f"x must have at least max(ns)={min_length} time steps, got T={x.shape[0]}"
        )
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("x must hold binary values 0/1")


def binary_sequences(
    length: int,
    batch_size: int,
    *,
    p: float | None = None,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Random binary sequences ``[length, batch_size, 1]`` (float32 of 0/1).

    Args:
        length: time steps ``T >= 1``.
        batch_size: sequences ``B >= 1``.
        p: probability of a 1; ``None`` draws one ``p ~ U(0, 1)`` per sequence, as the authors'
            N-parity generator does (a single ``p`` for the whole batch would make each test
            batch one draw of ``p``: near 0 or 1 the last bits are nearly constant and an
            unsolved N-parity can score >= 0.98).
        seed: int seed or ``torch.Generator`` (``None``: a random seed).
    """
    length = check_positive_int("length", length)
    batch_size = check_positive_int("batch_size", batch_size)
    gen = torch_generator(seed)
    if p is not None:
        check_probability("p", p)
    return _binary_sequences(length, batch_size, p, gen)


def _binary_sequences(
    length: int, batch_size: int, p: float | None, gen: torch.Generator
) -> torch.Tensor:
    """:func:`binary_sequences` on checked arguments."""
    if p is None:
        p_value: torch.Tensor | float = torch.rand(1, batch_size, 1, generator=gen)
    else:
        p_value = float(p)
    return (torch.rand(length, batch_size, 1, generator=gen) < p_value).float()


def parity_labels(x: torch.Tensor, ns: Sequence[int]) -> torch.Tensor:
    """Parity of the last ``N`` bits of each sequence, for each ``N`` in ``ns``.

    Args:
        x: binary sequences ``[T, B, 1]`` with ``T >= max(ns)``.
        ns: memory spans.

    Returns:
        ``[len(ns), B]`` int64 labels.
    """
    ns = _check_ns(ns)
    _check_sequences(x, max(ns))
    return _parity_labels(x, ns)


def _parity_labels(x: torch.Tensor, ns: tuple[int, ...]) -> torch.Tensor:
    """:func:`parity_labels` on checked arguments: the sums of the last ``N`` bits are the
    running sums of the reversed window, read at ``N - 1``."""
    sums = x[-max(ns) :, :, 0].long().flip(0).cumsum(dim=0)
    return sums[[n - 1 for n in ns]] % 2


def dms_labels(x: torch.Tensor, ns: Sequence[int]) -> torch.Tensor:
    """N-DMS labels: 1 where the bit ``N - 1`` steps back equals the last bit.

    Args:
        x: binary sequences ``[T, B, 1]`` with ``T >= max(ns)``.
        ns: memory spans ``N >= 2`` (``N = 1`` would compare a bit with itself).

    Returns:
        ``[len(ns), B]`` int64 labels.
    """
    ns = _check_ns(ns)
    if min(ns) < 2:
        raise ValueError(f"ns must hold N >= 2 for the DMS task, got {list(ns)}")
    _check_sequences(x, max(ns))
    return _dms_labels(x, ns)


def _dms_labels(x: torch.Tensor, ns: tuple[int, ...]) -> torch.Tensor:
    """:func:`dms_labels` on checked arguments."""
    bits = x[..., 0].long()
    return (bits[[-n for n in ns]] == bits[-1]).long()


def task_length(task: str, n_max: int, *, seed: int | torch.Generator | None = None) -> int:
    """Random sequence length for a batch whose largest span is ``n_max``.

    Uniform on the integers of ``[n_max + 2, n_max + 2 + 3 n_max)`` for both tasks, as in the
    reference code's main branch.
    """
    check_choice("task", task, _TASKS)
    n_max = check_positive_int("n_max", n_max)
    return _task_length(task, n_max, torch_generator(seed))


def _task_length(task: str, n_max: int, gen: torch.Generator) -> int:
    """:func:`task_length` on checked arguments."""
    low = n_max + 2
    high = max(low + 1, int(low + _LENGTH_SPREAD[task] * n_max))
    return int(torch.randint(low, high, (1,), generator=gen))


def memory_task(
    task: str,
    ns: Sequence[int],
    batch_size: int,
    *,
    length: int | None = None,
    p: float | None = None,
    seed: int | torch.Generator | None = None,
) -> SequenceTask:
    """A batch of the N-parity (``task="parity"``) or N-DMS (``task="dms"``) task.

    Args:
        task: ``"parity"`` or ``"dms"``.
        ns: the spans ``N`` to label (one label row each; the multi-head curriculum asks for
            ``2..N`` at once).
        batch_size: sequences per batch.
        length: sequence length ``T >= max(ns)``; ``None`` draws it with :func:`task_length`.
        p: probability of a 1; ``None`` uses the task's default (parity: its own
            ``p ~ U(0, 1)`` per sequence; DMS: 0.5).
        seed: int seed or ``torch.Generator``.
    """
    check_choice("task", task, _TASKS)
    ns = _check_ns(ns)
    if task == "dms" and min(ns) < 2:
        raise ValueError(f"ns must hold N >= 2 for the DMS task, got {list(ns)}")
    batch_size = check_positive_int("batch_size", batch_size)
    if p is not None:
        check_probability("p", p)
    elif task == "dms":
        p = 0.5
    gen = torch_generator(seed)
    if length is None:
        length = _task_length(task, max(ns), gen)
    else:
        length = check_positive_int("length", length)
        if length < max(ns):
            raise ValueError(f"length must be >= max(ns)={max(ns)}, got {length}")
    # the arguments are checked and x is binary: the label helpers skip their checks
    x = _binary_sequences(length, batch_size, p, gen)
    labels = _parity_labels(x, ns) if task == "parity" else _dms_labels(x, ns)
    return SequenceTask(task=task, ns=ns, x=x, labels=labels)


def n_parity(
    ns: Sequence[int],
    batch_size: int,
    *,
    length: int | None = None,
    p: float | None = None,
    seed: int | torch.Generator | None = None,
) -> SequenceTask:
    """A batch of the N-parity task for every ``N`` in ``ns`` (see :func:`memory_task`)."""
    return memory_task("parity", ns, batch_size, length=length, p=p, seed=seed)


def n_dms(
    ns: Sequence[int],
    batch_size: int,
    *,
    length: int | None = None,
    p: float | None = None,
    seed: int | torch.Generator | None = None,
) -> SequenceTask:
    """A batch of the N-DMS task for every ``N`` in ``ns`` (see :func:`memory_task`)."""
    return memory_task("dms", ns, batch_size, length=length, p=p, seed=seed)
