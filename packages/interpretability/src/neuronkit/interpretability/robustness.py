"""Adversarial examples and (adversarial) training of small classifiers.

* :func:`fgsm_attack` and :func:`pgd_attack`: L-inf / L2 projected gradient descent on the
  cross-entropy loss (Madry et al. 2018), with optional random start and input bounds.
* :func:`train_classifier`: a compact, seeded mini-batch training loop; pass
  ``adversary=functools.partial(pgd_attack, eps=..., n_steps=...)`` for PGD adversarial
  training (each batch is replaced by its adversarial version before the update).
* :func:`accuracy`: batched accuracy.

Attacks take gradients with respect to the inputs only (``torch.autograd.grad``) and never
touch parameter ``.grad``. Attacks and :func:`accuracy` run the model with every submodule in
eval mode (BatchNorm on its running statistics, which stay unchanged; no dropout) and restore
each submodule's own train/eval flag afterwards. Attacks and training turn autograd on for
themselves: they work inside ``torch.no_grad()`` and raise ``RuntimeError`` under
``torch.inference_mode()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_finite,
    check_floating,
    check_interval,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    eval_mode,
    grad_enabled,
    progress,
    torch_generator,
    torch_rng_seeded,
)

from .hooks import call_model, tensor_output

__all__ = ["accuracy", "fgsm_attack", "pgd_attack", "train_classifier"]

Adversary = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_batch(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Validate a batch; returns ``labels`` as ``int64`` (what the cross-entropy takes; a copy
    of an inference tensor, which the cross-entropy could not save for backward)."""
    check_type("model", model, nn.Module)
    check_type("inputs", inputs, torch.Tensor)
    check_type("labels", labels, torch.Tensor)
    check_floating("inputs", inputs)
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(
            f"labels must be an integer tensor of class indices, got dtype {labels.dtype}"
        )
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(
            f"inputs must be a non-empty batch [N, ...], got shape {tuple(inputs.shape)}"
        )
    if labels.shape != (inputs.shape[0],):
        raise ValueError(
            f"labels must have shape [{inputs.shape[0]}] (one per input), got {tuple(labels.shape)}"
        )
    check_finite("inputs", inputs)
    return detached_input(labels) if labels.dtype == torch.int64 else labels.long()


def _logits(model: nn.Module, x: torch.Tensor, name: str = "inputs") -> torch.Tensor:
    """``model(x)`` checked to be logits ``[N, C]`` (a dtype it refuses named as ``name``)."""
    logits = tensor_output(call_model(model, x, name))
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(
            f"model must return logits [N, C] for inputs [N, ...], got {tuple(logits.shape)}"
        )
    return logits


def _label_range(labels: torch.Tensor) -> tuple[int, int]:
    """``(min, max)`` of ``labels`` (one host sync)."""
    lo, hi = torch.aminmax(labels)
    lo_v, hi_v = torch.stack((lo, hi)).tolist()
    return int(lo_v), int(hi_v)


def _check_label_range(label_range: tuple[int, int], n_classes: int) -> None:
    lo, hi = label_range
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] (the model's classes), got range [{lo}, {hi}]"
        )


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.reshape(delta.shape[0], -1)
    norms = flat.norm(dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0)
    return (flat * factor[:, None]).reshape(delta.shape)


def _ascent_direction(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[N, C]`` gradient of each example's cross-entropy with respect to its logits, divided
    by a positive factor per example (its largest wrong-class probability): ``softmax -
    onehot`` formed from float64 log-probabilities. A sign or normalized step does not see the
    factor, and a confidently classified example keeps a direction: in float32 its gradient
    rounds to exactly 0 once the logit margin passes ~100 (PGD then silently returns the
    clean input)."""
    if logits.shape[1] < 2:
        return torch.zeros_like(logits)
    rows = labels[:, None]
    wrong = torch.log_softmax(logits.detach().double(), dim=1).scatter(1, rows, -math.inf)
    ratio = torch.exp(wrong - wrong.amax(dim=1, keepdim=True))  # p_j / max_k p_k, 0 at y
    return ratio.scatter(1, rows, -ratio.sum(dim=1, keepdim=True)).to(logits.dtype)


def _step(grad: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return step_size * grad.sign()
    flat = grad.reshape(grad.shape[0], -1)
    peak = flat.abs().amax(dim=1, keepdim=True)  # the norm of flat / peak neither under- nor
    flat = flat / torch.where(peak > 0, peak, 1.0)  # overflows: tiny gradients keep full steps
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(1.0)
    return step_size * unit.reshape(grad.shape)


@grad_enabled("pgd_attack")
def pgd_attack(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    n_steps: int = 10,
    step_size: float | None = None,
    norm: Literal["linf", "l2"] = "linf",
    random_start: bool = False,
    clamp: tuple[float, float] | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Untargeted projected gradient ascent on the cross-entropy loss.

    Each step follows the loss gradient's sign (``"linf"``) or direction (``"l2"``), computed
    from float64 log-probabilities so that confidently classified examples, whose float32
    gradient is exactly 0, still move.

    Args:
        model: classifier returning logits ``[N, C]``.
        inputs: ``[N, ...]`` clean inputs (not modified).
        labels: ``[N]`` true classes (any integer dtype; in ``[0, C)``).
        eps: radius of the perturbation ball (``>= 0``; 0 returns a copy of ``inputs``
            without running the model, so the labels' range is not checked then).
        n_steps: gradient steps.
        step_size: per-step size; default ``2.5 * eps / n_steps`` (Madry et al.).
        norm: ``"linf"`` (sign steps, box projection) or ``"l2"`` (normalized steps, ball
            projection).
        random_start: start from a uniform point of the L-inf box (or Gaussian direction for
            L2) instead of the clean input.
        clamp: ``(low, high)`` valid input range, enforced after every step.
        seed: seed in ``[0, 2**64)`` for the random start (drawn on the CPU: the same on every
            device).

    Returns:
        Adversarial inputs ``[N, ...]`` (detached).
    """
    labels = _check_batch(model, inputs, labels)
    check_number("eps", eps, ge=0.0)
    check_number("n_steps", n_steps, ge=1, integer=True)
    check_choice("norm", norm, ["linf", "l2"])
    check_type("random_start", random_start, bool)
    if step_size is None:
        step_size = 2.5 * eps / n_steps
    check_number("step_size", step_size, ge=0.0)
    clamp = None if clamp is None else check_interval("clamp", clamp)
    if seed is not None:
        check_seed(seed)
    x = detached_input(inputs)  # a copy of an inference tensor, which cannot enter a graph
    if eps == 0:
        return x.clone()
    label_range = _label_range(labels)
    delta = torch.zeros_like(x)
    if random_start:
        # drawn on the CPU and moved: the same seed gives the same start on every device
        gen = torch_generator(seed)  # None: a draw from the global RNG (seed_everything)
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device) * 2 - 1) * eps
        else:
            noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
            delta = _project(noise, eps, norm)
    with eval_mode(model):
        for step in range(n_steps):
            adv = x + delta
            if clamp is not None:
                adv = adv.clamp(*clamp)
            adv = adv.detach().requires_grad_(True)
            logits = _logits(model, adv)
            if step == 0:
                _check_label_range(label_range, logits.shape[1])
                if not logits.requires_grad:
                    raise ValueError(
                        "model returned logits detached from its input (no autograd "
                        "graph); the attack needs gradients with respect to inputs"
                    )
            (grad,) = torch.autograd.grad(logits, adv, _ascent_direction(logits, labels))
            delta = _project(adv.detach() + _step(grad, step_size, norm) - x, eps, norm)
    adv = x + delta
    if clamp is not None:
        adv = adv.clamp(*clamp)
    return adv.detach()


@grad_enabled("fgsm_attack")
def fgsm_attack(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    clamp: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one L-inf step of size ``eps``."""
    return pgd_attack(model, inputs, labels, eps=eps, n_steps=1, step_size=eps, clamp=clamp)


def accuracy(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1024
) -> float:
    """Fraction of ``inputs`` whose arg-max logit equals ``labels`` (no gradients, eval mode).

    ``labels`` must lie in ``[0, C)`` for the model's ``C`` classes (an out-of-range label
    raises ``ValueError`` instead of counting as a miss)."""
    labels = _check_batch(model, inputs, labels)
    check_number("batch_size", batch_size, ge=1, integer=True)
    return _accuracy(model, inputs, labels, batch_size)


def _accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    name: str = "inputs",
) -> float:
    """:func:`accuracy` of checked arguments (``labels`` int64); a dtype the model refuses is
    named as ``name``, the caller's argument the inputs come from."""
    label_range = _label_range(labels)
    correct = 0
    with eval_mode(model), torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            logits = _logits(model, inputs[start : start + batch_size], name)
            if start == 0:
                _check_label_range(label_range, logits.shape[1])
            correct += int(correct_predictions(logits, labels[start : start + batch_size]).sum())
    return correct / inputs.shape[0]


@grad_enabled("train_classifier")
def train_classifier(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: Literal["adam", "sgd"] = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    adversary: Adversary | None = None,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train ``model`` in place with cross-entropy on mini-batches; returns per-epoch losses.

    Args:
        model: classifier returning logits (trained in place, left in train mode).
        inputs, labels: ``[N, ...]`` training data and ``[N]`` classes.
        epochs: passes over the data.
        batch_size: examples per update. A model with BatchNorm skips a last batch of one
            example in each epoch (as ``DataLoader(drop_last=True)`` would): batch statistics
            of one example are undefined.
        lr, optimizer, weight_decay, momentum: the optimizer: ``"adam"`` or ``"sgd"``, with
            ``torch.optim.Adam`` / ``torch.optim.SGD`` with their default betas, eps and
            dampening.
        adversary: ``adversary(model, x, y) -> x_adv`` applied to every batch before the
            update (PGD adversarial training; :func:`pgd_attack` crafts it in eval mode);
            ``None`` for standard training. The model is put back in train mode after each
            call, so an adversary that calls ``model.eval()`` does not stop the training.
        seed: seeds the batch order and dropout (``[0, 2**64)``; the global RNG is forked and
            restored).
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    labels = _check_batch(model, inputs, labels)
    inputs = detached_input(inputs)  # the updates never reach the caller's graph or x.grad
    check_number("epochs", epochs, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_number("weight_decay", weight_decay, ge=0.0)
    check_number("momentum", momentum, ge=0.0, lt=1.0)
    check_choice("optimizer", optimizer, ["adam", "sgd"])
    check_seed(seed)
    if adversary is not None and not callable(adversary):
        raise TypeError(f"adversary must be callable or None, got {type(adversary).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters")
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        check_adam_dtype("model", model.named_parameters())
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    gen = torch.Generator().manual_seed(int(seed))
    n = inputs.shape[0]
    history: list[float] = []
    # every check before the model changes: the class count from one example in eval mode
    with eval_mode(model), torch.no_grad():
        _check_label_range(_label_range(labels), _logits(model, inputs[:1]).shape[1])
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if batch_norm and min(n, batch_size) < 2:
        raise ValueError(
            "inputs and batch_size must give batches of >= 2 examples for a model with "
            f"BatchNorm, got {n} input(s) and batch_size={batch_size}"
        )
    stop = n - 1 if batch_norm and n % batch_size == 1 else n  # no last batch of one
    model.train()
    with torch_rng_seeded(int(seed)):  # dropout follows seed; the caller's RNG is kept
        for _ in progress(range(epochs), show_progress=show_progress, desc="train_classifier"):
            order = torch.randperm(n, generator=gen).to(inputs.device)
            total = 0.0
            for start in range(0, stop, batch_size):
                idx = order[start : start + batch_size]
                xb, yb = inputs[idx], labels[idx]
                if adversary is not None:
                    xb = adversary(model, xb, yb)
                    model.train()  # an adversary calling model.eval() must not freeze the rest
                logits = _logits(model, xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                # drop an outer autocast's cached low-precision copies of the updated weights
                torch.clear_autocast_cache()
                total += float(loss.detach()) * len(idx)
            history.append(total / stop)
    return history
