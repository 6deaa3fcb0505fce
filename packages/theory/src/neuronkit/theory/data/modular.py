"""Modular arithmetic datasets with corrupted training labels.

All ``p^2`` pairs ``(a, b)`` of residues with label ``a op b mod p`` (``op`` = +, - or *), split at
random into train and test; a fraction ``xi`` of the *training* labels is then replaced by a
random wrong residue (Doshi, Das, He & Gromov, "To grok or not to grok: Disentangling
generalization and memorization on corrupted algorithmic datasets", ICLR 2024). Test labels are
always clean. Operands are fed to networks as two concatenated one-hot vectors ``[2p]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuronkit.common import check_choice, check_probability

from .._utils import check_positive_int, torch_generator

__all__ = ["ModularDataset", "modular_arithmetic", "one_hot_pairs"]

_OPERATIONS = ("add", "sub", "mul")


def one_hot_pairs(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """Concatenated one-hot encodings ``[n, 2p]`` (float32) of operand tensors ``a, b [n]``."""
    p = check_positive_int("p", p, minimum=2)
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.ndim != 1:
            raise TypeError(f"{name} must be a 1-D integer tensor, got {type(x).__name__}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= p):
            raise ValueError(f"{name} must hold residues in 0..{p - 1}")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return torch.cat([F.one_hot(a.long(), p), F.one_hot(b.long(), p)], dim=1).float()


@dataclass(frozen=True)
class ModularDataset:
    """A split modular-arithmetic task.

    Attributes:
        p: the modulus.
        operation: ``"add"``, ``"sub"`` or ``"mul"``.
        a, b: operands of all ``p^2`` pairs ``[p^2]``; ``labels`` their true results ``[p^2]``.
        train_idx, test_idx: indices into the pairs.
        train_labels: training labels as given to the network ``[n_train]`` (some corrupted).
        corrupted: ``[n_train]`` bool, which training labels were corrupted.
    """

    p: int
    operation: str
    a: torch.Tensor
    b: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    train_labels: torch.Tensor
    corrupted: torch.Tensor

    def inputs(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot operand pairs ``[n, 2p]`` for pair indices ``idx`` (default: all pairs)."""
        if idx is None:
            return one_hot_pairs(self.a, self.b, self.p)
        return one_hot_pairs(self.a[idx], self.b[idx], self.p)

    @property
    def x_train(self) -> torch.Tensor:
        return self.inputs(self.train_idx)

    @property
    def x_test(self) -> torch.Tensor:
        return self.inputs(self.test_idx)

    @property
    def y_test(self) -> torch.Tensor:
        return self.labels[self.test_idx]

    @property
    def corruption(self) -> float:
        """Realized fraction of corrupted training labels."""
        return float(self.corrupted.float().mean()) if self.corrupted.numel() else 0.0


def modular_arithmetic(
    p: int,
    *,
    operation: str = "add",
    train_fraction: float = 0.5,
    corruption: float = 0.0,
    seed: int | torch.Generator | None = None,
) -> ModularDataset:
    """All pairs of residues mod ``p``, split into train/test, with corrupted training labels.

    Args:
        p: modulus (>= 2; a prime for the Fourier picture of Gromov and Doshi et al.).
        operation: ``"add"`` (``a + b``), ``"sub"`` (``a - b``) or ``"mul"`` (``a b``), mod ``p``.
        train_fraction: share of the ``p^2`` pairs used for training, in ``(0, 1)``.
        corruption: share ``xi`` of training labels replaced by a uniformly random *different*
            residue, in ``[0, 1]``.
        seed: seed or torch Generator for the split and the corruption.
    """
    p = check_positive_int("p", p, minimum=2)
    check_choice("operation", operation, _OPERATIONS)
    check_probability("train_fraction", train_fraction, open_right=True)
    if train_fraction <= 0:
        raise ValueError(f"train_fraction must be > 0, got {train_fraction}")
    check_probability("corruption", corruption)
    gen = torch_generator(seed)
    grid = torch.arange(p)
    a = grid.repeat_interleave(p)
    b = grid.repeat(p)
    if operation == "add":
        labels = (a + b) % p
    elif operation == "sub":
        labels = (a - b) % p
    else:
        labels = (a * b) % p
    order = torch.randperm(p * p, generator=gen)
    n_train = max(1, min(p * p - 1, round(train_fraction * p * p)))
    train_idx, test_idx = order[:n_train], order[n_train:]
    train_labels = labels[train_idx].clone()
    n_bad = round(corruption * n_train)
    corrupted = torch.zeros(n_train, dtype=torch.bool)
    if n_bad:
        which = torch.randperm(n_train, generator=gen)[:n_bad]
        shift = torch.randint(1, p, (n_bad,), generator=gen)
        train_labels[which] = (train_labels[which] + shift) % p
        corrupted[which] = True
    return ModularDataset(
        p=p,
        operation=operation,
        a=a,
        b=b,
        labels=labels,
        train_idx=train_idx,
        test_idx=test_idx,
        train_labels=train_labels,
        corrupted=corrupted,
    )
