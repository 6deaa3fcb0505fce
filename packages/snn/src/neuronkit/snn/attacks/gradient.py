"""Gradient attacks on SNNs: FGSM and PGD (L-infinity) through surrogate gradients.

FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018) as used on SNNs by Lun et al.,
"Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via Breaking
Invisible Surrogate Gradients" (CVPR 2025): the gradient flows through the neurons'
surrogate, so swap in :class:`~neuronkit.snn.attacks.PDSG` with
:func:`neuronkit.snn.swap_surrogate` when the training surrogate is unknown.

Inputs are either time-major ``x: [T, B, ...]`` fed to the model as they are (``T=None``), or
static ``x: [B, ...]`` with ``T`` steps of direct encoding (the same frame every step; the
perturbation is on the static input). The model maps ``[T, B, ...]`` to outputs ``[T, B, K]``
(averaged over time into logits, as in the authors' code) or directly to logits ``[B, K]``.
The model's mode and parameters are left untouched (only the input gets a gradient); call
``model.eval()`` first: a BatchNorm in training mode would use batch statistics and update
its running statistics during the attack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuronkit.common import (
    check_class_labels,
    check_finite,
    check_floating,
    check_number,
    check_type,
    detached_input,
    grad_enabled,
)

from ..encoding import _generator, direct_encode

__all__ = ["attack_success", "fgsm", "pgd", "snn_logits"]

LossFn = Callable[[Tensor, Tensor], Tensor]


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable, got {type(model).__name__}")


def _check_inputs(x: Any, y: Any, T: int | None, name: str = "x") -> int:
    """Validate ``x`` (the argument ``name``), ``y`` and ``T``; return the batch size."""
    check_type(name, x, Tensor)
    check_floating(name, x)
    if T is None and x.ndim < 3:
        raise ValueError(
            f"{name} must be time-major [T, B, ...] with at least 3 dimensions when T is None "
            f"(pass T for a static input [B, ...] with direct encoding), got shape "
            f"{tuple(x.shape)}"
        )
    if T is not None:
        check_number("T", T, ge=1, integer=True)
        if x.ndim < 2:
            raise ValueError(
                f"{name} must be static [B, ...] with T given, got shape {tuple(x.shape)}"
            )
    check_finite(name, x)
    batch = x.shape[0] if T is not None else x.shape[1]
    if batch == 0:
        raise ValueError(
            f"{name} must hold at least one sample (B >= 1), got shape {tuple(x.shape)}"
        )
    check_type("y", y, Tensor)
    if y.dtype != torch.long or y.shape != (batch,):
        raise ValueError(
            f"y must be an int64 tensor of shape [B] = [{batch}] (labels, or targets when "
            f"targeted), got dtype {y.dtype} and shape {tuple(y.shape)}"
        )
    return batch


def snn_logits(model: Callable[[Tensor], Tensor], x: Tensor, *, T: int | None = None) -> Tensor:
    """Logits ``[B, K]`` of an SNN: its output ``[T, B, K]`` averaged over time.

    Args:
        model: maps ``[T, B, ...]`` to ``[T, B, K]`` (or to ``[B, K]``, used as is).
        x: time-major input ``[T, B, ...]`` (``T=None``) or static ``[B, ...]``.
        T: steps of direct encoding for a static ``x``.

    The model gets a copy of ``x``, so one that works on its input in place (``x.sub_(...)``,
    ``F.relu(x, inplace=True)``) neither modifies ``x`` nor breaks a gradient w.r.t. ``x``.
    """
    _check_model(model)
    check_type("x", x, Tensor)
    if T is not None:
        check_number("T", T, ge=1, integer=True)
    out = model(x.clone() if T is None else direct_encode(x, T))  # both new tensors
    if not isinstance(out, Tensor) or out.ndim not in (2, 3):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"model must return [T, B, K] or [B, K] outputs, got {got}")
    return out.mean(0) if out.ndim == 3 else out


@torch.no_grad()
def attack_success(
    model: Callable[[Tensor], Tensor],
    x_adv: Tensor,
    y: Tensor,
    *,
    T: int | None = None,
    targeted: bool = False,
) -> Tensor:
    """Per-sample success ``[B]`` (bool): prediction != ``y`` (untargeted) or == ``y``
    (targeted), for inputs laid out as in :func:`pgd`."""
    _check_model(model)
    _check_inputs(x_adv, y, T, "x_adv")
    check_type("targeted", targeted, bool)
    logits = snn_logits(model, x_adv, T=T)
    check_class_labels("y", y, logits.shape[1])  # a label >= K would count as a success
    pred = logits.argmax(1)
    return pred.eq(y) if targeted else pred.ne(y)


def _clamp(clamp: Any) -> tuple[float, float] | None:
    if clamp is None:
        return None
    if not isinstance(clamp, tuple | list) or len(clamp) != 2:
        raise TypeError(f"clamp must be None or a pair (low, high), got {clamp!r:.80}")
    lo, hi = clamp
    check_number("clamp[0]", lo)
    check_number("clamp[1]", hi)
    if not lo < hi:
        raise ValueError(f"clamp must satisfy low < high, got {clamp!r:.80}")
    return float(lo), float(hi)


def _ascent_grad(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    T: int | None,
    targeted: bool,
    loss_fn: LossFn,
    check_labels: bool = False,
) -> Tensor:
    """Gradient of the attack objective w.r.t. ``x``: ``loss`` (untargeted) or ``-loss``;
    ``check_labels``: first check ``y`` against the model's classes."""
    x = x.detach().requires_grad_(True)
    logits = snn_logits(model, x, T=T)
    if check_labels:
        check_class_labels("y", y, logits.shape[1])
    loss = loss_fn(logits, y)
    objective = -loss if targeted else loss
    (grad,) = torch.autograd.grad(objective, x)
    return grad


def _setup(
    model: Any,
    x: Any,
    y: Any,
    eps: Any,
    T: int | None,
    targeted: Any,
    clamp: Any,
    loss_fn: LossFn | None,
) -> tuple[tuple[float, float] | None, LossFn]:
    _check_model(model)
    _check_inputs(x, y, T)
    check_number("eps", eps, gt=0)
    check_type("targeted", targeted, bool)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable or None, got {type(loss_fn).__name__}")
    bounds = _clamp(clamp)
    if bounds is not None and x.numel():
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if lo < bounds[0] or hi > bounds[1]:  # clipping would move x itself, past eps
            raise ValueError(
                f"x must lie within clamp {bounds} (the valid input range), got values in "
                f"[{lo:g}, {hi:g}]; pass the range of your inputs as clamp, or clamp=None"
            )
    return bounds, (loss_fn if loss_fn is not None else F.cross_entropy)


def _project(x_adv: Tensor, x: Tensor, eps: float, clamp: tuple[float, float] | None) -> Tensor:
    """Into the eps-ball around ``x`` and the valid range."""
    x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
    return x_adv if clamp is None else x_adv.clamp(*clamp)


def fgsm(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    T: int | None = None,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
) -> Tensor:
    """Fast gradient sign method: ``x + eps * sign(grad)`` clipped to ``clamp``.

    Args:
        model: the SNN (see module docstring for the input/output layouts).
        x: ``[T, B, ...]`` (``T=None``) or static ``[B, ...]`` with ``T`` steps of direct encoding.
        y: labels ``[B]``; with ``targeted``, the target classes.
        eps: L-infinity budget (> 0).
        targeted: move towards ``y`` (minimise the loss) instead of away from it.
        clamp: valid input range ``(low, high)``, or None.
        loss_fn: ``(logits [B, K], y [B]) -> scalar``; cross-entropy by default.

    Returns:
        The adversarial input, shaped like ``x`` (detached; ``x`` is not modified).
    """
    rng, loss = _setup(model, x, y, eps, T, targeted, clamp, loss_fn)
    x = detached_input(x)  # also a copy of an inference tensor, which cannot enter a graph
    with grad_enabled("fgsm"):
        grad = _ascent_grad(model, x, y, T, targeted, loss, check_labels=True)
    return _project(x + eps * grad.sign(), x, eps, rng)


def pgd(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    step_size: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    T: int | None = None,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent (L-infinity): ``steps`` signed-gradient steps of ``step_size``
    projected onto the eps-ball around ``x`` and the valid range.

    Args:
        eps: L-infinity budget (> 0).
        step_size: size of each step (> 0); ``eps / 4`` by default (the authors' setting).
        steps: number of steps (>= 1).
        random_start: start from a uniform point of the eps-ball (clipped to ``clamp``).
        seed / generator: randomness of the random start (at most one; the global RNG if
            neither is given).
        others: as :func:`fgsm`.

    Returns:
        The adversarial input, shaped like ``x`` (detached; ``x`` is not modified).
    """
    rng, loss = _setup(model, x, y, eps, T, targeted, clamp, loss_fn)
    step = eps / 4 if step_size is None else step_size
    check_number("step_size", step, gt=0)
    check_number("steps", steps, ge=1, integer=True)
    check_type("random_start", random_start, bool)
    generator = _generator(seed, generator, x.device)
    x0 = detached_input(x)
    x_adv = x0.clone()
    if random_start:
        noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        x_adv = _project(x0 + (2 * noise - 1) * eps, x0, eps, rng)
    with grad_enabled("pgd"):
        for i in range(steps):
            grad = _ascent_grad(model, x_adv, y, T, targeted, loss, check_labels=i == 0)
            x_adv = _project(x_adv + step * grad.sign(), x0, eps, rng)
    return x_adv
