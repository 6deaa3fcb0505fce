"""scikit-learn conventions shared by the theory estimators: the not-fitted error and class
labels of any kind scikit-learn allows (integers, bools, strings)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from neuronkit.common import check_ndim

from ._utils import integer_labels


class NotFittedError(_SklearnNotFittedError, RuntimeError):
    """scikit-learn's ``NotFittedError`` (a ``ValueError`` and ``AttributeError``) that is also
    the ``RuntimeError`` the estimators raised before they were fitted in earlier versions."""


def check_fitted(estimator: Any, attribute: str, method: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet: call fit before {method}"
        )


def check_samples(name: str, x: torch.Tensor) -> None:
    """Raise unless ``x [N, D]`` holds at least one sample and one feature."""
    if 0 in x.shape:
        raise ValueError(
            f"{name} must hold at least one sample and one feature [N >= 1, D >= 1], got shape "
            f"{tuple(x.shape)}"
        )


Classes = torch.Tensor | np.ndarray


def encode_classes(
    name: str, labels: Any, n: int, min_classes: int = 1
) -> tuple[Classes, torch.Tensor]:
    """The sorted distinct labels of ``labels [N]`` (``classes_``; at least ``min_classes``) and
    each sample's index into them ``[N]`` (long, CPU). Integer labels (or integer-valued floats)
    give a tensor of classes; bools, strings or other objects that numpy sorts (as scikit-learn
    allows) a numpy array."""
    arr = None if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr is not None and arr.dtype.kind in "bOSU":  # bool: classes False / True (scikit-learn)
        check_ndim(name, arr, 1, "[N]")
        if arr.shape[0] != n:
            raise ValueError(f"{name} must have one label per sample ({n}), got {arr.shape[0]}")
        try:
            classes, inverse = np.unique(arr, return_inverse=True)
        except TypeError as err:  # e.g. None among strings
            raise TypeError(f"{name} must hold labels of one sortable kind ({err})") from None
        codes = torch.as_tensor(inverse.reshape(-1), dtype=torch.long)
    else:
        classes, codes = torch.unique(integer_labels(name, labels, n), return_inverse=True)
    if len(classes) < min_classes:
        raise ValueError(
            f"{name} must contain at least {min_classes} classes, got {classes.tolist()}"
        )
    return classes, codes


def decode_classes(classes: Classes, codes: torch.Tensor) -> Any:
    """``classes[codes]``: a tensor (on ``codes``' device) for integer classes, else an array."""
    if isinstance(classes, torch.Tensor):
        return classes.to(codes.device)[codes]
    return classes[codes.cpu().numpy()]


def like_input(x: Any, out: Any) -> Any:
    """``out`` in the kind of the estimator's input ``x``: a tensor for a tensor, else a numpy
    array (the array-in, array-out rule of scikit-learn's array API support)."""
    if isinstance(x, torch.Tensor) or not isinstance(out, torch.Tensor):
        return out
    return out.detach().cpu().numpy()


def accuracy(name: str, pred: Any, labels: Any) -> float:
    """The fraction of ``pred [M]`` (from :func:`decode_classes`) equal to ``labels [M]``:
    integer labels are checked as such, bools and strings compared as they are."""
    if isinstance(pred, np.ndarray) and pred.dtype.kind not in "iu":
        arr = np.asarray(labels)
        check_ndim(name, arr, 1, "[M]")
        if arr.shape[0] != pred.shape[0]:
            raise ValueError(
                f"{name} must have one label per sample ({pred.shape[0]}), got {arr.shape[0]}"
            )
        return float(np.mean(pred == arr))
    pred = torch.as_tensor(pred).cpu()
    return float((pred == integer_labels(name, labels, pred.shape[0])).double().mean())
