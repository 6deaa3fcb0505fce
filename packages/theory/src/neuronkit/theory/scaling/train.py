"""The training recipe of "Scaling MLPs: A Tale of Inductive Bias" (Bachmann, Anagnostidis &
Hofmann, NeurIPS 2023): the Lion optimizer, label smoothing, MixUp and random crops.

The authors train with Lion (Chen et al., 2023; lr 5e-5, batch 16384 for ImageNet21k),
cross-entropy with label smoothing 0.3, MixUp with ``alpha = 0.8`` (one mixing weight per batch,
as FFCV's ``ImageMixup(same_lambda=True)``), random resized crops and horizontal flips, and a
constant learning rate. :func:`train_classifier` runs that recipe on flattened images and
records the test error and the training compute at checkpoints, the raw material of a scaling
plot. :func:`random_translate` is the crop augmentation for small images (pad, then a random
crop of the original size, i.e. a random shift); flips are left to the caller because they
change the class of some images (digits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import Optimizer

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_number,
    check_probability,
    check_type,
    correct_predictions,
    detached_input,
    eval_mode,
    grad_enabled,
    progress,
)

from .._utils import run_model, torch_generator
from .laws import forward_flops, training_flops

__all__ = [
    "Lion",
    "TrainingRecord",
    "mixup",
    "random_translate",
    "train_classifier",
]


class Lion(Optimizer):
    """The Lion optimizer (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023),
    the optimizer of the Scaling-MLPs paper.

    Per parameter with gradient ``g`` and momentum ``m``::

        p <- p * (1 - lr * weight_decay)                   (decoupled weight decay)
        p <- p - lr * sign(beta1 * m + (1 - beta1) * g)
        m <- beta2 * m + (1 - beta2) * g

    Args:
        params: parameters or parameter groups.
        lr: learning rate (> 0); Lion needs ~3-10x smaller rates than AdamW.
        betas: ``(beta1, beta2)`` in ``[0, 1)``.
        weight_decay: decoupled weight decay (>= 0).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr, gt=0)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r:.80}")
        for i, beta in enumerate(betas):
            check_probability(f"betas[{i}]", beta, open_right=True)
        check_number("weight_decay", weight_decay, ge=0)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update; ``closure`` (optional) re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(torch.sign(m * beta1 + p.grad * (1 - beta1)), alpha=-lr)
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss


def random_translate(
    images: torch.Tensor,
    max_shift: int,
    *,
    fill: float = 0.0,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Random crops of padded images: each image shifted by ``(dy, dx)``, ``|d| <= max_shift``.

    Args:
        images: ``[B, H, W]`` or ``[B, C, H, W]`` (not modified).
        max_shift: largest shift in pixels (0 returns a copy).
        fill: value of the pixels shifted in.
        seed: int or ``torch.Generator`` for the shifts.

    Returns:
        Tensor shaped like ``images``.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor [B, H, W] or [B, C, H, W], got {images!r:.40}"
        )
    if images.ndim not in (3, 4):
        raise ValueError(
            f"images must have 3 or 4 dimensions [B, H, W] / [B, C, H, W], got shape "
            f"{tuple(images.shape)}"
        )
    check_number("max_shift", max_shift, ge=0, integer=True)
    check_number("fill", fill)
    gen = torch_generator(seed)
    if max_shift == 0:
        return images.clone()
    x = images if images.ndim == 4 else images.unsqueeze(1)
    b, _, h, w = x.shape
    s = int(max_shift)
    padded = F.pad(x, (s, s, s, s), value=float(fill))
    # drawn on the generator's device (the CPU for a seed: the same shifts on every device)
    offsets = torch.randint(0, 2 * s + 1, (b, 2), generator=gen, device=gen.device).to(x.device)
    out = torch.empty_like(x)
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            if bool(sel.any()):
                out[sel] = padded[sel, :, dy : dy + h, dx : dx + w]
    return out if images.ndim == 4 else out.squeeze(1)


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    *,
    seed: int | torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """MixUp (Zhang et al., 2018) with one weight per batch, as the paper's FFCV pipeline.

    ``lam ~ Beta(alpha, alpha)``, a random permutation ``pi``; returns
    ``(lam x + (1 - lam) x[pi], y, y[pi], lam)``. The loss is
    ``lam CE(f(x_mix), y) + (1 - lam) CE(f(x_mix), y[pi])``.

    Args:
        x: inputs ``[B, *]`` (not modified).
        y: integer labels ``[B]``.
        alpha: Beta parameter (> 0; the paper uses 0.8).
        seed: int or ``torch.Generator``.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"x and y must be torch.Tensors, got {type(x).__name__}, {type(y).__name__}"
        )
    if x.ndim < 1 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x must be [B, *] and y [B] with the same B, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    check_number("alpha", alpha, gt=0)
    gen = torch_generator(seed)
    # torch's Beta sampler takes no generator: draw lam with numpy, seeded from ``gen``
    sub_seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
    lam = float(np.random.default_rng(sub_seed).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam


@dataclass
class TrainingRecord:
    """What :func:`train_classifier` measured at each checkpoint.

    Attributes:
        epochs: epoch count at each checkpoint.
        examples_seen: training examples processed so far.
        compute: training FLOPs so far (``3 * forward FLOPs * examples_seen``).
        test_error: test error (fraction misclassified) at each checkpoint.
        train_loss: mean training loss over the epoch before each checkpoint.
        flops_per_example: forward FLOPs of one example.
        params: trainable parameters.
    """

    epochs: list[int] = field(default_factory=list)
    examples_seen: list[int] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    flops_per_example: int = 0
    params: int = 0

    @property
    def final_test_error(self) -> float:
        """Test error at the last checkpoint."""
        if not self.test_error:
            raise ValueError("the record holds no checkpoint yet")
        return self.test_error[-1]


def _check_xy(name_x: str, x: torch.Tensor, name_y: str, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name_x} must be a torch.Tensor [N, *], got {type(x).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name_y} must be a torch.Tensor [N] of labels, got {type(y).__name__}")
    if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name_x} must be [N, *] and {name_y} [N] with the same N, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not x.dtype.is_floating_point or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name_x} must be a finite floating-point tensor, got dtype {x.dtype}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"{name_y} must hold integer class labels, got dtype {y.dtype}")


@torch.no_grad()
def _error(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048
) -> tuple[float, int]:
    """Error rate of ``model`` on ``(x, y)`` and its number of logits ``K``.

    Evaluated in eval mode; every submodule's own training flag comes back afterwards (also
    on an exception).
    """
    wrong, k = 0, 0
    with eval_mode(model):
        for i in range(0, x.shape[0], batch):
            logits = run_model(model, x[i : i + batch], "x_test")  # a dtype error names x_test
            k = int(logits.shape[-1])
            wrong += int((~correct_predictions(logits, y[i : i + batch])).sum())
    return wrong / x.shape[0], k


@grad_enabled("train_classifier")
def train_classifier(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-4,
    optimizer: str = "lion",
    weight_decay: float = 0.0,
    label_smoothing: float = 0.3,
    mixup_alpha: float = 0.8,
    max_shift: int = 0,
    fill: float = 0.0,
    eval_every: int = 1,
    seed: int | torch.Generator | None = None,
    show_progress: bool | None = None,
) -> TrainingRecord:
    """Train ``model`` (in place) with the paper's recipe and record test error vs compute.

    Every step draws a shuffled mini-batch (the last, incomplete batch is dropped, as in the
    authors' loader), shifts the images by up to ``max_shift`` pixels, applies MixUp and
    minimizes the label-smoothed cross-entropy with a constant learning rate.

    Args:
        model: maps ``x[:B]`` to logits ``[B, K]``.
        x_train: ``[N, *]`` training inputs; ``[N, H, W]`` or ``[N, C, H, W]`` when
            ``max_shift > 0``; a dtype the model takes (``x_train`` / ``x_test`` of another
            dtype than its parameters that it cannot take: a ``TypeError`` naming them).
        y_train: ``[N]`` integer labels.
        x_test, y_test: held-out ``[M, *]`` / ``[M]``.
        epochs: passes over the training set (>= 1).
        batch_size: mini-batch size (<= N).
        lr: learning rate.
        optimizer: ``"lion"`` (paper), ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        weight_decay: decoupled weight decay.
        label_smoothing: in ``[0, 1)`` (paper: 0.3).
        mixup_alpha: MixUp Beta parameter (paper: 0.8); 0 disables MixUp.
        max_shift: random-crop shift in pixels (0: no crops).
        fill: value of pixels shifted in (the normalized background).
        eval_every: evaluate the test error every this many epochs (and after the last).
        seed: int or ``torch.Generator`` for batches and augmentation (drawn on the
            generator's device: the CPU for an int, so that results do not depend on the
            device of the model and data).
        show_progress: a bar over the epochs (``None``: only on a terminal).

    Returns:
        :class:`TrainingRecord` with a checkpoint at epoch 0 (initialization) and every
        ``eval_every`` epochs. The model is left in eval mode (also when training is
        interrupted); an argument refused up front leaves its modes as they were.
    """
    check_type("model", model, nn.Module)
    _check_xy("x_train", x_train, "y_train", y_train)
    _check_xy("x_test", x_test, "y_test", y_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"x_test must have the per-example shape of x_train {tuple(x_train.shape[1:])}, got "
            f"{tuple(x_test.shape[1:])}"
        )
    x_train = detached_input(x_train)  # neither fill the caller's x.grad nor use its graph
    n = x_train.shape[0]
    check_number("epochs", epochs, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, le=n, integer=True)
    check_number("lr", lr, gt=0)
    check_choice("optimizer", optimizer, ("lion", "adamw", "sgd"))
    check_number("weight_decay", weight_decay, ge=0)
    check_probability("label_smoothing", label_smoothing, open_right=True)
    check_number("mixup_alpha", mixup_alpha, ge=0)
    check_number("max_shift", max_shift, ge=0, integer=True)
    check_number("eval_every", eval_every, ge=1, integer=True)
    if max_shift > 0 and x_train.ndim not in (3, 4):
        raise ValueError(
            f"x_train must be images [N, H, W] or [N, C, H, W] when max_shift > 0, got shape "
            f"{tuple(x_train.shape)}"
        )
    gen = torch_generator(seed)
    opt: Optimizer
    if optimizer == "lion":
        opt = Lion(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "adamw":
        check_adam_dtype("model", model.named_parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    flops = forward_flops(model, tuple(x_train.shape[1:]))
    record = TrainingRecord(
        flops_per_example=flops,
        params=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    seen = 0

    def checkpoint(epoch: int, loss: float) -> int:
        record.epochs.append(epoch)
        record.examples_seen.append(seen)
        record.compute.append(training_flops(flops, seen))
        error, k = _error(model, x_test, y_test)
        record.test_error.append(error)
        record.train_loss.append(loss)
        return k

    k = checkpoint(0, float("nan"))  # leaves every submodule's training flag as it was
    for name, y in (("y_train", y_train), ("y_test", y_test)):  # K known after one forward
        lo, hi = (int(y.min()), int(y.max())) if y.numel() else (0, 0)
        if lo < 0 or hi >= k:
            raise ValueError(
                f"{name} must hold class labels in 0..{k - 1} (the model gives {k} logits), got "
                f"labels in {lo}..{hi}"
            )
    steps = n // batch_size
    model.train()
    try:
        epoch_numbers = range(1, epochs + 1)
        for epoch in progress(epoch_numbers, show_progress=show_progress, desc="train_classifier"):
            perm = torch.randperm(n, generator=gen, device=gen.device).to(x_train.device)
            total = 0.0
            for s in range(steps):
                idx = perm[s * batch_size : (s + 1) * batch_size]
                xb, yb = x_train[idx], y_train[idx]
                if max_shift > 0:
                    xb = random_translate(xb, max_shift, fill=fill, seed=gen)
                opt.zero_grad(set_to_none=True)
                if mixup_alpha > 0:
                    xm, ya, yb2, lam = mixup(xb, yb, mixup_alpha, seed=gen)
                    logits = run_model(model, xm, "x_train")
                    loss = lam * F.cross_entropy(logits, ya, label_smoothing=label_smoothing) + (
                        1 - lam
                    ) * F.cross_entropy(logits, yb2, label_smoothing=label_smoothing)
                else:
                    logits = run_model(model, xb, "x_train")
                    loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
                loss.backward()
                opt.step()
                # drop an outer autocast's cached low-precision copies of the updated weights
                torch.clear_autocast_cache()
                total += float(loss.detach())
                seen += idx.numel()
            if epoch % eval_every == 0 or epoch == epochs:
                checkpoint(epoch, total / max(steps, 1))
    finally:  # eval mode, as after a complete run, also when training is interrupted
        model.eval()
    return record
