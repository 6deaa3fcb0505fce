"""Training neural operators on input/output function pairs with the relative L2 loss.

The loss of operator-learning benchmarks (FNO, MgNO: He, Liu & Xu, ICLR 2024): per sample
``||pred - target||_2 / ||target||_2`` over the grid, averaged over the batch. Optionally the
authors' relative H1 loss (:func:`relative_h1_loss`, what the MgNO repository trains Darcy with
by default: ``darcy.py --loss_type h1``), which weights each Fourier mode of the error by
``sqrt(1 + |k|^2)``; the reported test error is relative L2 either way. Optimised with Adam
and a one-cycle learning-rate schedule whose default shape is the authors' (MgNO repository,
``utilities3.getOptimizerScheduler`` with ``darcy.py``'s arguments: start at ``lr / 2``, warm up
over the first 20% of training, anneal to ``lr / 200``), not torch's (``lr / 25``, 30%,
``lr / 2.5e5``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_finite,
    check_floating,
    check_ndim,
    check_number,
    check_type,
    detached_input,
    eval_mode,
    grad_enabled,
    progress,
)

from .._utils import check_positive_int, torch_generator

__all__ = [
    "LOSSES",
    "OperatorFit",
    "evaluate_operator",
    "fit_operator",
    "relative_h1_loss",
    "relative_l2",
]

#: Training losses of :func:`fit_operator`.
LOSSES = ("l2", "h1")


def relative_l2(
    pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Relative L2 error ``||pred - target|| / ||target||`` per sample.

    Args:
        pred, target: floating ``[B, ...]`` of the same shape (norms over all but the first
            dimension); every sample of ``target`` nonzero (``ValueError`` otherwise: its
            relative error is undefined).
        reduction: ``"mean"`` (scalar), ``"sum"`` or ``"none"`` (``[B]``).
    """
    check_type("pred", pred, torch.Tensor)
    check_type("target", target, torch.Tensor)
    check_floating("pred", pred)  # an integer tensor failed in torch's vector_norm
    check_floating("target", target)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred must have the shape of target {tuple(target.shape)}, got {tuple(pred.shape)}"
        )
    if pred.ndim < 2:
        raise ValueError(f"pred must be a batch [B, ...] with ndim >= 2, got ndim {pred.ndim}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    pred, target = _scaled_pair(pred, target)
    diff = (pred - target).flatten(1).norm(dim=1)
    return _reduced_ratio(diff, target.flatten(1).norm(dim=1), reduction)


def _scaled_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` times a power of two per sample that brings the sample's largest
    ``|target|`` near 1. Exact (no rounding) and cancelling in the ratio, it keeps the squares
    in the norms from overflowing (NaN ratio for a float32 target of 1e20) or underflowing (a
    target of 1e-30 taken for zero)."""
    if not target.is_floating_point() or target.numel() == 0:
        return pred, target
    amax = target.detach().flatten(1).abs().amax(dim=1)
    _, exponent = torch.frexp(amax)
    # the factor itself stays finite and normal (2**-126 .. 2**126 in float32)
    limit = math.floor(math.log2(torch.finfo(target.dtype).max)) - 1
    factor = torch.ldexp(torch.ones_like(amax), (-exponent).clamp(-limit, limit))
    factor = factor.view(-1, *[1] * (target.ndim - 1))
    return pred * factor, target * factor


def _reduced_ratio(diff: torch.Tensor, norm: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-sample ``diff / norm`` ``[B]``, reduced by ``reduction``; a zero target norm raises."""
    if bool((norm == 0).any()):
        raise ValueError("target must have a nonzero norm in every sample, got a zero sample")
    err = diff / norm
    if reduction == "mean":
        return err.mean()
    if reduction == "sum":
        return err.sum()
    return err


def _wavenumbers(n: int, cutoff: int | None, device: torch.device) -> torch.Tensor:
    """Integer wavenumbers of an ``n``-point FFT axis in torch's order (``0, 1, ..., -1``), with
    those of magnitude ``>= cutoff`` replaced by 0."""
    k = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64).round()
    if cutoff is not None:
        k = torch.where(k.abs() < cutoff, k, torch.zeros_like(k))
    return k


def relative_h1_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    a: float = 1.0,
    cutoff: int | None = 20,
    reduction: str = "mean",
) -> torch.Tensor:
    """Relative spectral H1 (Sobolev) error ``||pred - target||_H1 / ||target||_H1`` per sample.

    The training loss the MgNO authors use by default on Darcy (He, Liu & Xu, ICLR 2024;
    repository xlliu2017/MgNO, ``darcy.py --loss_type h1`` with ``utilities3.HsLoss(d=2, p=2,
    k=1)``, derived from the FNO repository's ``HsLoss``). With ``F`` the 2-D discrete Fourier
    transform over ``(H, W)`` of each channel,

        ``||u||_H1^2 = sum_{c, p, q} (1 + a^2 (kx_p^2 + ky_q^2)) |F(u_c)[p, q]|^2``

    where ``kx_p``, ``ky_q`` are the integer wavenumbers of the FFT bins along ``H`` and ``W``
    (``0, 1, ..., -1``; no ``2 pi`` factor, as the authors) and a wavenumber whose magnitude is
    ``>= cutoff`` counts as 0 along its axis (the authors' ``truncation=True`` keeps ``|k| < 20``;
    such modes keep their L2 weight, they are not dropped). On an odd axis the authors' table
    labels bin ``n // 2`` as ``-(n // 2 + 1)``; here it has its true wavenumber ``n // 2`` (the two
    differ only on odd grids smaller than ``2 * cutoff``). The FFT's normalisation and the grid
    size cancel in the ratio. Their ``size_average=False`` sums over the batch and reports the
    sum divided by the number of samples; ``reduction="mean"`` is that per-sample mean (Adam
    is insensitive to the constant factor).

    Args:
        pred, target: ``[B, C, H, W]`` real tensors of the same shape, finite.
        a: weight of the first derivatives (the authors' ``a = [1]``); ``a = 0`` gives the
            relative L2 error.
        cutoff: wavenumber magnitude from which an axis' wavenumber counts as 0 in the weight
            (the authors' 20); ``None`` weights every mode by its full wavenumber.
        reduction: ``"mean"`` (scalar), ``"sum"`` or ``"none"`` (``[B]``).

    Returns:
        The relative H1 errors reduced by ``reduction``; differentiable in ``pred``.
    """
    check_type("pred", pred, torch.Tensor)
    check_type("target", target, torch.Tensor)
    check_ndim("pred", pred, 4, "[B, C, H, W]")
    check_ndim("target", target, 4, "[B, C, H, W]")
    check_floating("pred", pred)
    check_floating("target", target)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred must have the shape of target {tuple(target.shape)}, got {tuple(pred.shape)}"
        )
    if pred.numel() == 0:
        raise ValueError(f"pred must be non-empty [B, C, H, W], got {tuple(pred.shape)}")
    check_number("a", a, ge=0)
    if cutoff is not None:
        check_number("cutoff", cutoff, ge=1, integer=True)
    reduction = check_choice("reduction", reduction, ("mean", "sum", "none"))
    check_finite("pred", pred)
    check_finite("target", target)
    h, w = pred.shape[-2:]
    kx = _wavenumbers(h, cutoff, pred.device)
    ky = _wavenumbers(w, cutoff, pred.device)
    # sqrt of the mode weights [H, W]; vector_norm's gradient is 0 (not NaN) at a zero error
    scale = (1.0 + float(a) ** 2 * (kx[:, None] ** 2 + ky[None, :] ** 2)).sqrt().to(pred.dtype)
    pred, target = _scaled_pair(pred, target)
    diff_hat = scale * torch.fft.fft2(pred - target, norm="ortho")
    target_hat = scale * torch.fft.fft2(target, norm="ortho")
    diff = torch.linalg.vector_norm(diff_hat.flatten(1), dim=1)
    return _reduced_ratio(diff, torch.linalg.vector_norm(target_hat.flatten(1), dim=1), reduction)


@dataclass
class OperatorFit:
    """What :func:`fit_operator` records.

    Attributes:
        train_loss: mean training loss (``fit_operator``'s ``loss``) per epoch.
        test_error: relative L2 on the test pairs after each epoch (empty without test data).
        seconds: wall time of the training loop.
    """

    train_loss: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _check_pairs(name: str, x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    check_type(f"{name} inputs", x, torch.Tensor)
    check_type(f"{name} targets", y, torch.Tensor)
    assert isinstance(x, torch.Tensor)
    assert isinstance(y, torch.Tensor)
    if x.ndim < 2 or y.ndim < 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"{name} inputs and targets must be non-empty batches [N, ...] with the same N, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(y).all()):
        raise ValueError(f"{name} inputs and targets must be finite, got NaN or infinity")
    return x, y


@grad_enabled("fit_operator")
def fit_operator(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    div_factor: float = 2.0,
    final_div_factor: float = 100.0,
    pct_start: float = 0.2,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int | torch.Generator | None = None,
    loss: str = "l2",
    show_progress: bool | None = None,
) -> OperatorFit:
    """Train ``model`` (in place) on ``inputs -> targets`` with the relative L2 (or H1) loss.

    Adam (AdamW when ``weight_decay > 0``) with a one-cycle schedule peaking at ``lr``, stepped
    after every mini-batch; shuffled mini-batches drawn from ``seed``.

    Args:
        model: maps ``[B, C_in, H, W]`` to ``[B, C_out, H, W]``.
        inputs: ``[N, C_in, H, W]``; targets: ``[N, C_out, H, W]``.
        epochs: passes over the data.
        batch_size: mini-batch size.
        lr: peak learning rate.
        weight_decay: decoupled weight decay.
        div_factor: the schedule starts at ``lr / div_factor`` (the authors' 2).
        final_div_factor: and ends at ``lr / (div_factor * final_div_factor)`` (the authors' 100).
        pct_start: fraction of the steps spent warming up (the authors' 0.2).
        test: optional ``(inputs, targets)`` evaluated after each epoch.
        seed: int or torch Generator for the shuffling (drawn on the generator's device).
        loss: training loss, ``"l2"`` (:func:`relative_l2`, the default) or ``"h1"``
            (:func:`relative_h1_loss` with the authors' defaults, what MgNO's ``darcy.py``
            trains with); either way ``test_error`` is the relative L2 error.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        :class:`OperatorFit` with the loss curves.
    """
    check_type("model", model, nn.Module)
    x, y = _check_pairs("training", inputs, targets)
    x, y = detached_input(x), detached_input(y)  # each batch's backward stops at them
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    check_number("lr", lr, gt=0)
    check_number("weight_decay", weight_decay, ge=0)
    check_number("div_factor", div_factor, gt=0)
    check_number("final_div_factor", final_div_factor, gt=0)
    check_number("pct_start", pct_start, gt=0, lt=1)
    loss = check_choice("loss", loss, LOSSES)
    criterion = relative_l2 if loss == "l2" else relative_h1_loss
    if test is not None:
        if not isinstance(test, tuple) or len(test) != 2:
            raise TypeError(f"test must be a pair (inputs, targets), got {type(test).__name__}")
        tx, ty = _check_pairs("test", *test)
    gen = torch_generator(seed)
    n = x.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    check_adam_dtype("model", model.named_parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=lr,
        total_steps=epochs * steps_per_epoch,
        div_factor=float(div_factor),
        final_div_factor=float(final_div_factor),
        pct_start=float(pct_start),
    )
    fit = OperatorFit()
    start = time.perf_counter()
    model.train()
    for _ in progress(range(epochs), show_progress=show_progress, desc="fit_operator"):
        perm = torch.randperm(n, generator=gen, device=gen.device).to(x.device)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            batch_loss = criterion(model(x[idx]), y[idx])
            batch_loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            sched.step()
            total += float(batch_loss.detach()) * len(idx)
        fit.train_loss.append(total / n)
        if test is not None:
            fit.test_error.append(
                float(evaluate_operator(model, tx, ty, batch_size=max(batch_size, 64)).mean())
            )
    fit.seconds = time.perf_counter() - start
    return fit


def evaluate_operator(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int = 64
) -> torch.Tensor:
    """Per-sample relative L2 errors ``[N]`` of ``model`` on ``inputs -> targets`` (eval mode)."""
    check_type("model", model, nn.Module)
    x, y = _check_pairs("evaluation", inputs, targets)
    batch_size = check_positive_int("batch_size", batch_size)
    with eval_mode(model), torch.no_grad():
        return torch.cat(
            [
                relative_l2(model(x[i : i + batch_size]), y[i : i + batch_size], reduction="none")
                for i in range(0, x.shape[0], batch_size)
            ]
        )
