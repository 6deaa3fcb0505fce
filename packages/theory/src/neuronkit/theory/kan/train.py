"""Full-batch regression training for the function-fitting experiments (KAN, S-KAN, MLP),
and S-KAN's three-stage schedule (full training, selective training, pruning)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import (
    check_finite,
    check_number,
    check_type,
    detached_input,
    grad_enabled,
    progress,
)

from .._utils import check_positive_int, run_model
from .layers import SKAN, _check_x

__all__ = ["train_regression", "train_skan"]


def _described(value: Any) -> str:
    """``value``'s type, with its shape when it has one (an array)."""
    shape = getattr(value, "shape", None)
    name = type(value).__name__
    return name if shape is None else f"{name} of shape {tuple(shape)}"


@grad_enabled("train_regression")
def train_regression(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train ``model`` in place by full-batch Adam on the mean squared error.

    Args:
        model: maps ``[n, d]`` to ``[n, 1]`` (or ``[n]``).
        x: ``[n, d]`` with ``n >= 1``, a dtype the model takes (its parameters'; otherwise a
        ``TypeError`` naming ``x``); y: ``[n]`` targets (both finite).
        steps: Adam steps (``>= 1``); lr: learning rate (``> 0``), cosine-decayed to 0;
        weight_decay: Adam's L2 penalty (``>= 0``).
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        the training loss before each step (stops early if it becomes NaN/inf).
    """
    check_type("model", model, nn.Module)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [n, d], got {_described(x)}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a tensor [n, d] with n >= 1 rows, got {tuple(x.shape)}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor [n], got {_described(y)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must be a tensor [n] with n = {x.shape[0]} (rows of x), got {tuple(y.shape)}"
        )
    check_finite("x", x)
    check_finite("y", y)
    x, y = detached_input(x), detached_input(y)  # each step's backward stops at them
    steps = check_positive_int("steps", steps)
    check_number("lr", lr, gt=0)
    check_number("weight_decay", weight_decay, ge=0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=False, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses: list[float] = []
    for step in progress(range(steps), show_progress=show_progress, desc="train_regression"):
        opt.zero_grad()
        # a dtype the model cannot take: a TypeError naming x (torch's bare matmul error)
        out = run_model(model, x) if step == 0 else model(x)
        if step == 0 and not isinstance(out, torch.Tensor):
            raise TypeError(
                f"model must return a tensor [n] or [n, 1], got {type(out).__name__}; wrap a "
                "model returning several outputs so that it returns the prediction alone"
            )
        if step == 0 and out.numel() != y.shape[0]:
            raise ValueError(
                f"model must give one output per row of x ([n] or [n, 1], n = {y.shape[0]}), "
                f"got shape {tuple(out.shape)}"
            )
        loss = F.mse_loss(out.reshape(-1), y)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        loss.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        sched.step()
    return losses


@grad_enabled("train_skan")
def train_skan(
    model: SKAN,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    stages: tuple[float, float, float] = (0.5, 0.25, 0.25),
    top_k: int = 2,
    weight_decay: float = 0.0,
    show_progress: bool | None = None,
) -> dict[str, list[float]]:
    """S-KAN's three-stage training (Yang et al., "Activation Space Selectable
    Kolmogorov-Arnold Networks"): *full training* of all candidate spaces mixed by the learned
    selection weights, *selective training* on each node's ``top_k`` largest-weight spaces, then
    *pruning* to the single largest-weight space per node and fine-tuning it.

    Each stage is a :func:`train_regression` run (full-batch Adam on the MSE, cosine-decayed
    ``lr``); ``steps`` is the total over the stages, split by the fractions ``stages``.

    Args:
        model: an :class:`~neuronkit.theory.kan.layers.SKAN` with one output (``widths[-1] =
            1``) in its initial (all-active) state; trained and pruned in place.
        x: ``[n, d]`` (``n >= 1``, the model's dtype); y: ``[n]`` (both finite);
        steps: total Adam steps (``>= 3``); lr: learning rate;
        stages: fractions of ``steps`` for the three stages (non-negative, summing to 1);
        top_k: spaces kept per node for selective training (``1 <= top_k <=`` the number of
            spaces);
        weight_decay: Adam's L2 penalty.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        the losses of each stage: ``{"full": [...], "selective": [...], "pruned": [...]}``.
    """
    check_type("model", model, SKAN)
    steps = check_positive_int("steps", steps, minimum=3)
    top_k = check_positive_int("top_k", top_k)
    if not isinstance(stages, Sequence) or len(stages) != 3:
        raise ValueError(
            f"stages must be three fractions (full, selective, pruned), got {stages!r:.80}"
        )
    for i, f in enumerate(stages):
        check_number(f"stages[{i}]", f, ge=0, le=1)
    if abs(sum(stages) - 1.0) > 1e-6:
        raise ValueError(f"stages must sum to 1, got {tuple(stages)} (sum {sum(stages)})")
    # every space active is the fresh state (a one-space layer is also "selected" from the start)
    if any(not bool(layer.active.all()) for layer in model.skan_layers()):
        raise ValueError("model must be a fresh S-KAN with every space active (not selected)")
    n_spaces = min(len(layer.spaces) for layer in model.skan_layers())
    if top_k > n_spaces:
        raise ValueError(f"top_k must be at most the number of spaces ({n_spaces}), got {top_k}")
    if model.widths[-1] != 1:
        raise ValueError(
            f"model must have one output (widths[-1] = 1) for regression on y [n], got widths "
            f"{model.widths}"
        )
    _check_x(x, model.widths[0], model.skan_layers()[0].coef.dtype)  # before any stage runs
    # exactly `steps` in all, the pruned stage at least one (taken from the others if needed)
    n_full = min(max(1, round(stages[0] * steps)), steps - 1)
    n_sel = min(round(stages[1] * steps), steps - n_full - 1)
    n_pruned = steps - n_full - n_sel
    kwargs: dict[str, Any] = {
        "lr": lr,
        "weight_decay": weight_decay,
        "show_progress": show_progress,
    }
    losses = {"full": train_regression(model, x, y, steps=n_full, **kwargs)}
    losses["selective"] = []
    if n_sel > 0 and top_k > 1:
        model.select(top_k)
        losses["selective"] = train_regression(model, x, y, steps=n_sel, **kwargs)
    else:
        n_pruned += n_sel
    model.select(1)
    losses["pruned"] = train_regression(model, x, y, steps=n_pruned, **kwargs)
    return losses
