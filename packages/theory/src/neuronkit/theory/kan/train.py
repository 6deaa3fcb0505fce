"""Full-batch regression training for the function-fitting experiments (KAN, S-KAN, MLP)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import check_number, check_type

from .._utils import check_positive_int

__all__ = ["train_regression"]


def train_regression(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
) -> list[float]:
    """Train ``model`` in place by full-batch Adam on the mean squared error.

    Args:
        model: maps ``[n, d]`` to ``[n, 1]`` (or ``[n]``).
        x: ``[n, d]``; y: ``[n]`` targets.
        steps: Adam steps (``>= 1``); lr: learning rate (``> 0``), cosine-decayed to 0;
        weight_decay: Adam's L2 penalty (``>= 0``).

    Returns:
        the training loss before each step (stops early if it becomes NaN/inf).
    """
    check_type("model", model, nn.Module)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a tensor [n, d], got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must be a tensor [n] with n = {x.shape[0]} (rows of x), got "
            f"{getattr(y, 'shape', type(y))}"
        )
    steps = check_positive_int("steps", steps)
    check_number("lr", lr, gt=0)
    check_number("weight_decay", weight_decay, ge=0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses: list[float] = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x).reshape(-1), y)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        loss.backward()
        opt.step()
        sched.step()
    return losses
