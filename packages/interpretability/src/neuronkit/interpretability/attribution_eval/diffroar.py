"""DiffROAR: do attributions rank discriminative coordinates first?

Shah, Jain & Netrapalli, "Do Input Gradients Highlight Discriminative Features?" (NeurIPS 2021).

For an attribution method and a level ``k``, every example (train and test) keeps only its
top-k attributed coordinates (largest ``|attribution|``) and the rest are replaced by the
training-set mean (one scalar over all coordinates, as the authors' ``mask_val = X.mean()``);
a *fresh* model is trained on the masked training set and evaluated on the masked test set
(RemOve And Retrain). The same is done keeping the bottom-k coordinates::

    DiffROAR(k) = accuracy(top-k kept) - accuracy(bottom-k kept)

Positive values mean the attribution ranks informative coordinates above uninformative ones
(assumption (A) of the paper holds); negative values mean it inverts them (the paper's
"feature inversion in gradients" of standard models). Retraining (instead of evaluating the
original model on masked data) keeps the masked inputs in-distribution for the evaluated model.

* :func:`keep_mask`: top-/bottom-k coordinates per example.
* :func:`mask_inputs`: keep a mask's coordinates, fill the rest.
* :func:`roar_accuracy`: mask, retrain with a user-supplied trainer, evaluate.
* :func:`diffroar`: both sides and their difference (:class:`DiffROARResult`).
* :func:`signal_mass`: fraction of attribution magnitude on known discriminative coordinates
  (the BlockMNIST analysis).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from neuronkit.common import check_finite, check_number, check_type, integer_dtype

from ..robustness import _accuracy

__all__ = [
    "DiffROARResult",
    "diffroar",
    "keep_mask",
    "mask_inputs",
    "roar_accuracy",
    "signal_mass",
]

Trainer = Callable[[torch.Tensor, torch.Tensor], nn.Module]


def _n_keep(k: float, n_features: int) -> int:
    if isinstance(k, bool):
        raise TypeError(f"k must be a count (int) or a fraction (float), got {k!r:.80}")
    if isinstance(k, numbers.Integral):  # Python or numpy integer: a count
        check_number("k", k, ge=1, le=n_features, integer=True)
        return int(k)
    check_number("k", k, gt=0.0, le=1.0)
    return max(1, round(float(k) * n_features))


def keep_mask(attributions: torch.Tensor, k: float, *, largest: bool = True) -> torch.Tensor:
    """Boolean mask of each example's ``k`` coordinates with the largest (or smallest) ``|a|``.

    Args:
        attributions: ``[N, ...]`` attributions (only magnitudes matter).
        k: number of coordinates per example (an integer, Python or numpy) or fraction of
            them (a float in (0, 1]).
        largest: top-k (default) or bottom-k.

    Ties are broken by coordinate index (stable sort), as ``numpy.argsort`` in the authors' code.

    Returns:
        ``[N, ...]`` bool tensor with exactly ``k`` true entries per example.
    """
    check_type("attributions", attributions, torch.Tensor)
    if attributions.ndim < 2 or attributions.shape[0] == 0:
        raise ValueError(
            "attributions must be a non-empty batch [N, features...], "
            f"got shape {tuple(attributions.shape)}"
        )
    if attributions.dtype == torch.bool or attributions.is_complex():
        raise TypeError(f"attributions must be real numbers, got dtype {attributions.dtype}")
    check_finite("attributions", attributions)
    if not isinstance(largest, bool):
        raise TypeError(f"largest must be a bool, got {type(largest).__name__}")
    flat = attributions.detach().reshape(attributions.shape[0], -1).abs()
    n_keep = _n_keep(k, flat.shape[1])
    order = torch.argsort(flat, dim=1, stable=True)
    chosen = order[:, -n_keep:] if largest else order[:, :n_keep]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, chosen, True)
    return mask.reshape(attributions.shape)


def mask_inputs(
    inputs: torch.Tensor, keep: torch.Tensor, fill: torch.Tensor | float
) -> torch.Tensor:
    """``inputs`` where ``keep`` is true and ``fill`` elsewhere (a new tensor).

    Args:
        inputs: ``[N, ...]``, finite.
        keep: bool mask shaped like ``inputs``.
        fill: a finite real scalar or tensor broadcastable to one example (e.g. the dataset
            mean). Integer (or bool) ``inputs`` need an integer fill: a floating-point one
            raises ``TypeError`` instead of being truncated to the inputs' dtype.
    """
    check_type("inputs", inputs, torch.Tensor)
    check_type("keep", keep, torch.Tensor)
    if keep.dtype != torch.bool:
        raise TypeError(f"keep must be a bool tensor, got dtype {keep.dtype}")
    if keep.shape != inputs.shape:
        raise ValueError(
            f"keep must have the shape of inputs {tuple(inputs.shape)}, got {tuple(keep.shape)}"
        )
    check_finite("inputs", inputs)
    try:  # numbers, arrays, tensors and (nested) lists, read in their own dtype first
        given = torch.as_tensor(fill)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"fill must be a real number or a tensor, got {type(fill).__name__} ({fill!r:.80})"
        ) from None
    if given.is_complex():
        raise TypeError(f"fill must be real numbers, got dtype {given.dtype}")
    if given.is_floating_point():
        check_finite("fill", given)
        if not inputs.is_floating_point():
            raise TypeError(
                f"fill must be an integer (or integer tensor) for inputs of dtype {inputs.dtype}, "
                f"got a floating-point fill (it would be truncated); cast inputs to a "
                f"floating dtype to fill with fractions"
            )
    fill_t = given.to(dtype=inputs.dtype, device=inputs.device)
    example = tuple(inputs.shape[1:])
    trailing = tuple(fill_t.shape)[-len(example) :] if example else ()
    fits = fill_t.ndim <= len(example) and all(
        f in (1, e) for f, e in zip(reversed(trailing), reversed(example))
    )
    if not fits:  # (torch.broadcast_shapes would import torch.fx: seconds)
        raise ValueError(
            f"fill must be a scalar or broadcast to one example {example}, "
            f"got shape {tuple(fill_t.shape)}"
        )
    return torch.where(keep, inputs, fill_t)


def _check_split(name: str, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> None:
    check_type(f"{name}_inputs", x, torch.Tensor)
    check_type(f"{name}_labels", y, torch.Tensor)
    check_type(f"{name}_attributions", a, torch.Tensor)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name}_inputs must be a non-empty batch [N, ...], got shape {tuple(x.shape)}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"{name}_labels must have shape [{x.shape[0]}], got {tuple(y.shape)}")
    if not integer_dtype(y):
        raise TypeError(f"{name}_labels must be an integer tensor of classes, got dtype {y.dtype}")
    if a.shape != x.shape:
        raise ValueError(
            f"{name}_attributions must have the shape of {name}_inputs {tuple(x.shape)}, "
            f"got {tuple(a.shape)}"
        )
    if a.dtype == torch.bool or a.is_complex():
        raise TypeError(f"{name}_attributions must be real numbers, got dtype {a.dtype}")
    check_finite(f"{name}_inputs", x)
    check_finite(f"{name}_attributions", a)


def roar_accuracy(
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    test_inputs: torch.Tensor,
    test_labels: torch.Tensor,
    train_attributions: torch.Tensor,
    test_attributions: torch.Tensor,
    *,
    k: float,
    largest: bool,
    trainer: Trainer,
    fill: torch.Tensor | float | None = None,
) -> float:
    """Test accuracy of a model retrained on inputs that keep only their top-/bottom-k coordinates.

    Args:
        train_inputs, train_labels, test_inputs, test_labels: the data.
        train_attributions, test_attributions: attributions of the *evaluated* model, shaped
            like the inputs (computed before masking).
        k: coordinates kept per example (int) or fraction (float).
        largest: keep the top-k (``True``) or bottom-k coordinates.
        trainer: ``trainer(x, y) -> model`` trains and returns a fresh classifier.
        fill: value of removed coordinates; default the mean of ``train_inputs`` over all
            examples and coordinates (one scalar, the authors' choice). Any fill that differs
            from the value uninformative kept coordinates take can leak labels through the mask
            pattern (the retrained model reads which coordinates were kept): a per-coordinate
            mean, and also the scalar mean of sparse zero-mean data such as ``x = y * e_j``,
            whose finite-sample mean is off 0 by the label imbalance. Pass ``fill=0`` there.
    """
    _check_split("train", train_inputs, train_labels, train_attributions)
    _check_split("test", test_inputs, test_labels, test_attributions)
    if train_inputs.shape[1:] != test_inputs.shape[1:]:
        raise ValueError(
            "test_inputs must have the example shape of train_inputs "
            f"{tuple(train_inputs.shape[1:])}, "
            f"got {tuple(test_inputs.shape[1:])}"
        )
    if not callable(trainer):
        raise TypeError(f"trainer must be callable (x, y) -> model, got {type(trainer).__name__}")
    if fill is None and not train_inputs.is_floating_point():
        raise TypeError(
            f"fill is required for integer train_inputs (dtype {train_inputs.dtype}): the "
            "default fill is their floating-point mean; pass an integer fill such as 0"
        )
    fill_value = train_inputs.mean() if fill is None else fill
    x_train = mask_inputs(
        train_inputs, keep_mask(train_attributions, k, largest=largest), fill_value
    )
    x_test = mask_inputs(test_inputs, keep_mask(test_attributions, k, largest=largest), fill_value)
    model = trainer(x_train, train_labels)
    if not isinstance(model, nn.Module):
        raise TypeError(f"trainer must return an nn.Module, got {type(model).__name__}")
    # in eval mode, each module's mode restored; a dtype the model refuses named test_inputs
    return _accuracy(model, x_test, test_labels.long(), 1024, "test_inputs")


@dataclass(frozen=True)
class DiffROARResult:
    """``top_accuracy - bottom_accuracy`` at level ``k``."""

    k: float
    top_accuracy: float
    bottom_accuracy: float

    @property
    def diffroar(self) -> float:
        return self.top_accuracy - self.bottom_accuracy


def diffroar(
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    test_inputs: torch.Tensor,
    test_labels: torch.Tensor,
    train_attributions: torch.Tensor,
    test_attributions: torch.Tensor,
    *,
    k: float,
    trainer: Trainer,
    fill: torch.Tensor | float | None = None,
) -> DiffROARResult:
    """DiffROAR at level ``k``: retrain on top-k kept and on bottom-k kept, compare accuracies.

    Arguments as :func:`roar_accuracy`; ``trainer`` is called twice (seed it inside for
    reproducible numbers).
    """
    kwargs = {"k": k, "trainer": trainer, "fill": fill}
    data = (
        train_inputs,
        train_labels,
        test_inputs,
        test_labels,
        train_attributions,
        test_attributions,
    )
    top = roar_accuracy(*data, largest=True, **kwargs)  # type: ignore[arg-type]
    bottom = roar_accuracy(*data, largest=False, **kwargs)  # type: ignore[arg-type]
    return DiffROARResult(k=k, top_accuracy=top, bottom_accuracy=bottom)


def signal_mass(attributions: torch.Tensor, signal_mask: torch.Tensor) -> torch.Tensor:
    """Per-example fraction of ``|attribution|`` that falls on the signal coordinates.

    Args:
        attributions: ``[N, ...]``.
        signal_mask: bool ``[N, ...]``, true on each example's discriminative coordinates.

    Returns:
        ``[N]`` values in [0, 1] (0.5 for an example whose attribution is all zero and whose
        mask covers half the input; in general the mask's share).
    """
    check_type("attributions", attributions, torch.Tensor)
    check_type("signal_mask", signal_mask, torch.Tensor)
    if signal_mask.dtype != torch.bool:
        raise TypeError(f"signal_mask must be a bool tensor, got dtype {signal_mask.dtype}")
    if signal_mask.shape != attributions.shape or attributions.ndim < 2:
        raise ValueError(
            f"signal_mask must have the shape of attributions {tuple(attributions.shape)} "
            f"(batch first), got {tuple(signal_mask.shape)}"
        )
    if attributions.dtype == torch.bool or attributions.is_complex():
        raise TypeError(f"attributions must be real numbers, got dtype {attributions.dtype}")
    check_finite("attributions", attributions)
    mag = attributions.detach().abs().reshape(attributions.shape[0], -1)
    if mag.dtype in (torch.float16, torch.bfloat16):  # sums of many entries overflow there
        mag = mag.float()
    # each example over its largest |attribution| (the share does not change): the sums
    # neither underflow (tiny attributions) nor overflow
    top = mag.amax(1, keepdim=True)
    mag = mag / torch.where(top > 0, top, torch.ones_like(top))
    mask = signal_mask.reshape(signal_mask.shape[0], -1)
    total = mag.sum(1)
    on_signal = (mag * mask).sum(1)
    share = mask.float().mean(1)
    return torch.where(total > 0, on_signal / total.masked_fill(total == 0, 1), share)
