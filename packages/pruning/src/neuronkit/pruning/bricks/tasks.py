"""Synthetic multi-task sequence data marked by a task token (for :mod:`neuronkit.pruning.bricks`).

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective",
study functional *bricks* of models trained on many abilities. At a scale that trains in seconds,
the abilities are algorithmic token tasks: every sequence is ``[TASK, x_1, ..., x_n]`` with the
digits ``x_i`` in ``[0, p)`` and one task token (id ``p + task``); the model predicts the
output digit ``y_i`` at every position ``i >= 1``.

Tasks (``p`` the number of digit symbols, ``n`` the sequence length):

- ``"sort"``: ``y = sorted(x)``.
- ``"reverse"``: ``y_i = x_{n+1-i}``.
- ``"mirror_add"``: ``y_i = (x_i + x_{n+1-i}) mod p``.
- ``"affine"``: ``y_i = (3 x_i + 1) mod p`` (a permutation of the digits when ``gcd(3, p) = 1``).
- ``"square"``: ``y_i = x_i^2 mod p``.
- ``"neighbor_max"``: ``y_i = max(x_{i-1}, x_i, x_{i+1})`` (missing neighbours ignored).
- ``"count"``: ``y_i = #{j : x_j = x_i} mod p``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_number, check_seed, check_type

__all__ = ["IGNORE_INDEX", "TASKS", "TaskData", "make_task_data", "task_targets"]

#: target value of positions that carry no label (the task token); ``cross_entropy``'s default.
IGNORE_INDEX = -100


def _sort(x: np.ndarray, p: int) -> np.ndarray:
    return np.sort(x, axis=1)


def _reverse(x: np.ndarray, p: int) -> np.ndarray:
    return x[:, ::-1].copy()


def _mirror_add(x: np.ndarray, p: int) -> np.ndarray:
    return (x + x[:, ::-1]) % p


def _affine(x: np.ndarray, p: int) -> np.ndarray:
    return (3 * x + 1) % p


def _square(x: np.ndarray, p: int) -> np.ndarray:
    return (x * x) % p


def _neighbor_max(x: np.ndarray, p: int) -> np.ndarray:
    left = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    right = np.concatenate([x[:, 1:], x[:, -1:]], axis=1)
    return np.maximum(np.maximum(left, x), right)


def _count(x: np.ndarray, p: int) -> np.ndarray:
    return (x[:, :, None] == x[:, None, :]).sum(axis=2) % p


#: the task generators: ``name -> f(x [N, n] int, p) -> y [N, n] int``.
TASKS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "sort": _sort,
    "reverse": _reverse,
    "mirror_add": _mirror_add,
    "affine": _affine,
    "square": _square,
    "neighbor_max": _neighbor_max,
    "count": _count,
}


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of task names, got {type(tasks).__name__}")
    names = tuple(tasks)
    if not names:
        raise ValueError("tasks must name at least one task, got an empty sequence")
    for t in names:
        if t not in TASKS:
            raise ValueError(f"tasks must be names from {sorted(TASKS)}, got {t!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"tasks must be distinct, got {list(names)}")
    return names


def task_targets(task: str, x: np.ndarray, p: int) -> np.ndarray:
    """Outputs of one task for digit sequences.

    Args:
        task: a name in :data:`TASKS`.
        x: ``[N, n]`` integer digits in ``[0, p)``.
        p: number of digit symbols (>= 2).

    Returns:
        ``[N, n]`` int64 outputs ``y``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    check_number("p", p, ge=2, integer=True)
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"x must be a 2-D integer array [N, n], got shape {arr.shape} {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= p):
        raise ValueError(f"x must hold digits in [0, {p}), got range [{arr.min()}, {arr.max()}]")
    return TASKS[task](arr.astype(np.int64), int(p)).astype(np.int64)


@dataclass(frozen=True)
class TaskData:
    """A multi-task dataset.

    Attributes:
        tokens: ``[N, n + 1]`` int64 inputs ``[TASK, x_1, ..., x_n]``.
        targets: ``[N, n + 1]`` int64 outputs, :data:`IGNORE_INDEX` at position 0.
        task_ids: ``[N]`` int64 index of each sequence's task in ``tasks``.
        tasks: the task names, in task-id order.
        n_digits: ``p``, the digit symbols ``0 .. p-1``; task ``k`` has token ``p + k``.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    task_ids: torch.Tensor
    tasks: tuple[str, ...]
    n_digits: int

    @property
    def vocab_size(self) -> int:
        """Number of token ids: ``p`` digits plus one token per task."""
        return self.n_digits + len(self.tasks)

    @property
    def seq_len(self) -> int:
        """Sequence length ``n + 1`` (task token included)."""
        return int(self.tokens.shape[1])

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def subset(self, index: torch.Tensor | np.ndarray) -> TaskData:
        """The sequences at ``index`` (a boolean mask ``[N]`` or integer indices)."""
        idx = torch.as_tensor(index)
        return TaskData(
            self.tokens[idx], self.targets[idx], self.task_ids[idx], self.tasks, self.n_digits
        )

    def task(self, name_or_id: str | int) -> TaskData:
        """The sequences of one task (by name or id)."""
        k = self.tasks.index(name_or_id) if isinstance(name_or_id, str) else int(name_or_id)
        if not 0 <= k < len(self.tasks):
            raise ValueError(f"name_or_id must name one of {self.tasks}, got {name_or_id!r}")
        return self.subset(self.task_ids == k)


def make_task_data(
    tasks: Sequence[str],
    n_per_task: int,
    *,
    seq_len: int = 8,
    n_digits: int = 10,
    seed: int = 0,
) -> TaskData:
    """Sample ``n_per_task`` random digit sequences per task and their outputs.

    Args:
        tasks: task names from :data:`TASKS` (their order fixes the task ids and tokens).
        n_per_task: sequences per task (>= 1).
        seq_len: ``n``, digits per sequence (>= 2; the token sequence has ``n + 1`` entries).
        n_digits: ``p``, digit symbols (>= 2).
        seed: seed of the digit sampling.

    Returns:
        a :class:`TaskData` with ``len(tasks) * n_per_task`` sequences, tasks interleaved in
        blocks (``task_ids`` tells them apart).
    """
    names = _check_tasks(tasks)
    check_number("n_per_task", n_per_task, ge=1, integer=True)
    check_number("seq_len", seq_len, ge=2, integer=True)
    check_number("n_digits", n_digits, ge=2, integer=True)
    check_seed(seed)
    check_type("seed", seed, int)
    rng = np.random.default_rng(seed)
    toks, tgts, ids = [], [], []
    for k, name in enumerate(names):
        x = rng.integers(0, n_digits, size=(n_per_task, seq_len))
        y = task_targets(name, x, n_digits)
        head = np.full((n_per_task, 1), n_digits + k)
        toks.append(np.concatenate([head, x], axis=1))
        tgts.append(np.concatenate([np.full((n_per_task, 1), IGNORE_INDEX), y], axis=1))
        ids.append(np.full(n_per_task, k))
    return TaskData(
        torch.from_numpy(np.concatenate(toks)).long(),
        torch.from_numpy(np.concatenate(tgts)).long(),
        torch.from_numpy(np.concatenate(ids)).long(),
        names,
        int(n_digits),
    )
