"""Generalizing vs memorizing neurons on corrupted modular arithmetic.

Doshi, Das, He & Gromov, "To grok or not to grok: Disentangling generalization and memorization
on corrupted algorithmic datasets" (ICLR 2024); the network and training follow the authors'
reference code: a bias-free 2-layer MLP ``f(x) = W (U x)^2`` on one-hot operand pairs, weights
drawn from ``N(0, 0.25 / (2 width)^(2/3))``, full-batch AdamW (lr 1e-2, betas (0.9, 0.98)) on the
mean squared error to one-hot targets.

A hidden neuron ``k`` reads the first operand through ``U_k = fc1.weight[k, :p]``, the second
through ``V_k = fc1.weight[k, p:]`` and writes ``W_k = fc2.weight[:, k]``. Generalizing neurons
are single sinusoids over the residues, so their Fourier spectra are concentrated: high inverse
participation ratio (IPR). Memorizing neurons have spread spectra, low IPR. Pruning the low-IPR
neurons removes the memorized (corrupted) labels and keeps the rule; weight decay turns
memorizing neurons into generalizing ones, so the corrupted labels are unlearned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_finite,
    check_number,
    check_probability,
    correct_predictions,
    eval_mode,
    grad_enabled,
    module_placement,
    progress,
)

from .._utils import check_input_dtype, check_positive_int, torch_generator, writable
from ..data.modular import ModularDataset
from ..measures import fourier_ipr

__all__ = [
    "QuadraticMLP",
    "TrainingHistory",
    "corrupted_accuracies",
    "lowest_ipr_neurons",
    "neuron_ipr",
    "prune_neurons",
    "train_modular",
]


class QuadraticMLP(nn.Module):
    """``f(x) = fc2((fc1 x)^2)``: bias-free 2-layer MLP with square activation.

    Args:
        p: modulus; inputs are ``[B, 2p]`` one-hot pairs, outputs ``[B, p]``.
        width: hidden neurons.
        seed: seed or Generator for the initialization ``N(0, 0.25 / (2 width)^(2/3))``.
    """

    def __init__(self, p: int, width: int, *, seed: int | torch.Generator | None = None) -> None:
        super().__init__()
        self.p = check_positive_int("p", p, minimum=2)
        self.width = check_positive_int("width", width)
        # with a seed, the default init (overwritten below) leaves the global RNG alone
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            self.fc1 = nn.Linear(2 * self.p, self.width, bias=False)
            self.fc2 = nn.Linear(self.width, self.p, bias=False)
        std = 0.5 / (2 * self.width) ** (1.0 / 3.0)
        gen = torch_generator(seed)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.randn(self.fc1.weight.shape, generator=gen) * std)
            self.fc2.weight.copy_(torch.randn(self.fc2.weight.shape, generator=gen) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 2p]`` -> logits ``[B, p]``."""
        check_input_dtype("x", x, self.fc1.weight.dtype)
        if x.ndim != 2 or x.shape[1] != 2 * self.p:
            raise ValueError(f"x must have shape [B, {2 * self.p}], got {tuple(x.shape)}")
        return self.fc2(self.fc1(x) ** 2)


def _check_model(model: nn.Module) -> QuadraticMLP:
    if not isinstance(model, QuadraticMLP):
        raise TypeError(f"model must be a QuadraticMLP, got {type(model).__name__}")
    return model


def neuron_ipr(model: QuadraticMLP, r: float = 2.0) -> torch.Tensor:
    """Per-neuron Fourier IPR ``[width]``: mean of the IPRs of ``U_k``, ``V_k`` and ``W_k``.

    Near 1 for a neuron that is one frequency (generalizing), near ``2/(p/2 + 1)`` for a random
    one (memorizing); the paper's measure (``r = 2``).
    """
    m = _check_model(model)
    w1 = m.fc1.weight.detach()
    u, v = w1[:, : m.p], w1[:, m.p :]
    w = m.fc2.weight.detach().T
    return (fourier_ipr(u, r) + fourier_ipr(v, r) + fourier_ipr(w, r)) / 3.0


def lowest_ipr_neurons(
    ipr: torch.Tensor, *, fraction: float | None = None, threshold: float | None = None
) -> torch.Tensor:
    """Indices of the neurons to prune: the lowest ``fraction`` by IPR, or those below
    ``threshold`` (exactly one of the two). Sorted by increasing IPR."""
    if not isinstance(ipr, torch.Tensor) or ipr.ndim != 1:
        raise TypeError("ipr must be a 1-D tensor [width] (see neuron_ipr)")
    if (fraction is None) == (threshold is None):
        raise ValueError("give exactly one of fraction or threshold")
    check_finite("ipr", ipr)
    order = torch.argsort(ipr)
    if fraction is not None:
        check_number("fraction", fraction, ge=0.0, le=1.0)
        return order[: round(fraction * ipr.numel())]
    assert threshold is not None
    check_number("threshold", threshold)
    return order[ipr[order] < float(threshold)]


def prune_neurons(model: QuadraticMLP, neurons: torch.Tensor) -> QuadraticMLP:
    """A copy of ``model`` with hidden ``neurons`` removed (their in- and out-weights zeroed).

    ``neurons``: integer indices, or a boolean mask ``[width]`` (True = remove).
    """
    m = _check_model(model)
    idx = _neuron_indices(neurons, m.width)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= m.width):
        raise ValueError(f"neurons must be indices in 0..{m.width - 1}")
    pruned = copy.deepcopy(m)
    with torch.no_grad():
        pruned.fc1.weight[idx] = 0.0
        pruned.fc2.weight[:, idx] = 0.0
    return pruned


def _neuron_indices(neurons: Any, width: int) -> torch.Tensor:
    """``neurons`` (indices or a boolean mask ``[width]``) as flat int64 indices."""
    if isinstance(neurons, torch.Tensor):
        t = neurons.detach()
    else:
        arr = np.asarray(neurons)
        if arr.size and arr.dtype.kind not in "biu":
            raise TypeError(
                "neurons must be integer indices or a boolean mask, got "
                f"{type(neurons).__name__} of dtype {arr.dtype}"
            )
        t = torch.as_tensor(writable(arr) if arr.size else arr.astype(np.int64))
    if t.dtype == torch.bool:
        if tuple(t.shape) != (width,):
            raise ValueError(
                f"neurons as a boolean mask must have shape [{width}] (one entry per hidden "
                f"neuron), got {tuple(t.shape)}"
            )
        return t.nonzero().flatten()
    if t.numel() and (t.dtype.is_floating_point or t.is_complex()):
        raise TypeError(f"neurons must be integer indices or a boolean mask, got dtype {t.dtype}")
    return t.long().flatten()


@torch.no_grad()
def corrupted_accuracies(model: nn.Module, data: ModularDataset) -> dict[str, float]:
    """Accuracies on the training labels as given (``train``), on its ``corrupted`` and ``clean``
    parts, on the true labels of the corrupted pairs (``corrupted_true``) and on the test set.

    The inputs are moved to the model's device and dtype and the predictions back to the CPU,
    where ``data`` lives."""
    if not isinstance(data, ModularDataset):
        raise TypeError(f"data must be a ModularDataset, got {type(data).__name__}")
    device, dtype = module_placement(model)
    with eval_mode(model):
        out_train = model(data.x_train.to(device, dtype)).cpu()
        out_test = model(data.x_test.to(device, dtype)).cpu()
    for out, x in ((out_train, data.x_train), (out_test, data.x_test)):
        if out.shape != (len(x), data.p):
            raise ValueError(
                f"model must return logits [n, p] = [{len(x)}, {data.p}] (one per residue), "
                f"got {tuple(out.shape)}"
            )
    given = correct_predictions(out_train, data.train_labels)
    true = correct_predictions(out_train, data.labels[data.train_idx])
    bad = data.corrupted

    def frac(mask: torch.Tensor) -> float:
        return float(mask.float().mean()) if mask.numel() else float("nan")

    return {
        "train": frac(given),
        "corrupted": frac(given[bad]),
        "clean": frac(given[~bad]),
        "corrupted_true": frac(true[bad]),
        "test": frac(correct_predictions(out_test, data.y_test)),
    }


@dataclass
class TrainingHistory:
    """What :func:`train_modular` recorded every ``eval_every`` steps."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracies: list[dict[str, float]] = field(default_factory=list)
    mean_ipr: list[float] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        """One accuracy over time: a key of :func:`corrupted_accuracies`, e.g. ``test``."""
        return [a[key] for a in self.accuracies]


@grad_enabled("train_modular")
def train_modular(
    model: QuadraticMLP,
    data: ModularDataset,
    *,
    steps: int,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.98),
    loss: str = "mse",
    eval_every: int = 50,
    callback: Callable[[int, TrainingHistory], None] | None = None,
    show_progress: bool | None = None,
) -> TrainingHistory:
    """Full-batch AdamW on the training pairs (in place); returns the recorded history.

    Args:
        model: the network (trained in place, on its device and in its dtype).
        data: the dataset (:func:`neuronkit.theory.modular_arithmetic`).
        steps: optimizer steps (one per epoch: full batch).
        lr, betas: AdamW settings (reference code: 1e-2, (0.9, 0.98)).
        weight_decay: decoupled weight decay (reference values 0, 5, 15, 20 with lr 1e-2).
        loss: ``"mse"`` on one-hot targets (the paper's) or ``"ce"``.
        eval_every: record loss, accuracies and mean neuron IPR every so many steps.
        callback: called as ``callback(step, history)`` after each record.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    m = _check_model(model)
    if not isinstance(data, ModularDataset):
        raise TypeError(f"data must be a ModularDataset, got {type(data).__name__}")
    if data.p != m.p:
        raise ValueError(f"data.p must match the model's p={m.p}, got {data.p}")
    steps = check_positive_int("steps", steps)
    eval_every = check_positive_int("eval_every", eval_every)
    check_number("lr", lr, gt=0)
    check_number("weight_decay", weight_decay, ge=0)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r:.80}")
    for i, beta in enumerate(betas):
        check_probability(f"betas[{i}]", beta, open_right=True)
    check_choice("loss", loss, ("mse", "ce"))
    device, dtype = module_placement(m)
    x = data.x_train.to(device, dtype)
    y = data.train_labels.to(device)
    target = F.one_hot(y, m.p).to(dtype)
    check_adam_dtype("model", m.named_parameters())
    opt = torch.optim.AdamW(m.parameters(), lr=lr, betas=betas, eps=1e-8, weight_decay=weight_decay)
    history = TrainingHistory()
    m.train()
    for step in progress(range(1, steps + 1), show_progress=show_progress, desc="train_modular"):
        opt.zero_grad()
        out = m(x)
        value = F.mse_loss(out, target) if loss == "mse" else F.cross_entropy(out, y)
        value.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        if step % eval_every == 0 or step == steps or step == 1:
            with torch.no_grad():  # the loss of the updated model, like the accuracies below
                out = m(x)
                value = F.mse_loss(out, target) if loss == "mse" else F.cross_entropy(out, y)
            history.steps.append(step)
            history.loss.append(float(value))
            history.accuracies.append(corrupted_accuracies(m, data))
            history.mean_ipr.append(float(neuron_ipr(m).mean()))
            if callback is not None:
                callback(step, history)
    return history
