"""Private helpers shared by the theory modules: seeds, tensor coercion, label checks."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from neuronkit.common import (
    check_finite,
    check_ndim,
    check_number,
    check_seed,
    integer_dtype,
    named_input_dtypes,
    torch_generator,
)

Seed = int | np.random.Generator | None


def numpy_rng(seed: Seed) -> np.random.Generator:
    """A numpy Generator from an int seed, an existing Generator (used as is) or None (seeded
    by a draw from numpy's global generator, so ``seed_everything`` makes it repeatable)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(np.random.randint(0, 2**62, dtype=np.int64))  # noqa: NPY002
    check_seed(seed)
    return np.random.default_rng(seed)


def writable(arr: np.ndarray) -> np.ndarray:
    """``arr``, or a copy of it when it is read-only, for ``torch.as_tensor``: a tensor sharing
    a read-only array's memory could be written to, which torch warns is undefined behaviour."""
    return arr if arr.flags.writeable else arr.copy()


def as_float_tensor(name: str, x: Any, ndim: int | Sequence[int], layout: str) -> torch.Tensor:
    """``x`` as a finite float64 tensor of rank ``ndim`` (one rank or a sequence of allowed ranks;
    numpy arrays and lists accepted)."""
    if not isinstance(x, torch.Tensor):
        if hasattr(x, "toarray") and hasattr(x, "nnz"):  # scipy.sparse
            raise TypeError(
                f"{name} must be a dense tensor or array {layout}, got the sparse "
                f"{type(x).__name__} (sparse input is not supported: densify it with .toarray())"
            )
        arr = np.asarray(x)
        if arr.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in arr.flat):
            arr = arr.astype(np.float64)  # numbers held as Python objects (not "1", not None)
        if isinstance(x, (str, bytes)) or arr.dtype.kind not in "biuf":
            got = type(x).__name__ + ("" if arr.ndim == 0 else f" of dtype {arr.dtype}")
            raise TypeError(f"{name} must be a real tensor or array {layout}, got {got}")
        x = torch.as_tensor(writable(arr))
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor {layout}, got dtype {x.dtype}")
    check_ndim(name, x, ndim, layout)
    x = x.detach().to(dtype=torch.float64, device="cpu")
    check_finite(name, x)
    return x


def traced(x: object) -> bool:
    """True when ``x`` is a ``torch.fx`` proxy: the model is being traced (neuronkit-pruning's
    dependency graph), so input checks, which read shapes, dtypes or values, are skipped."""
    return isinstance(x, torch.fx.Proxy)


def check_input_dtype(name: str, x: torch.Tensor, dtype: torch.dtype, owner: str = "model") -> None:
    """Raise ``TypeError`` unless the tensor ``x`` is floating and has the ``owner``'s parameter
    ``dtype`` (any floating dtype under autocast), instead of torch's bare matmul dtype error."""
    if traced(x):
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor ({dtype}, the {owner}'s dtype), got {x.dtype}"
        )
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} must have the {owner}'s dtype {dtype}, got {x.dtype} (convert {name}, or the "
            f"{owner} with .to(dtype))"
        )


def check_layout(
    name: str,
    x: Any,
    ndim: int,
    layout: str,
    last: int | None,
    dtype: torch.dtype,
    owner: str = "model",
) -> None:
    """Raise ``TypeError`` / ``ValueError`` naming ``name`` unless ``x`` is a tensor of rank
    ``ndim`` (``layout``) whose last dimension is ``last`` (any for ``None``) in ``dtype`` (the
    ``owner``'s parameter dtype; any floating dtype under autocast), instead of torch's bare
    matmul shape or dtype error. No value is read (nothing to skip under tracers or
    ``torch.func``); skipped for a ``torch.fx`` proxy."""
    if traced(x):
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != ndim or (last is not None and x.shape[-1] != last):
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    check_input_dtype(name, x, dtype, owner)


def run_model(model: Any, x: torch.Tensor, name: str = "x") -> Any:
    """``model(x)``, torch's bare dtype error (``mat1 and mat2 must have the same dtype``) of an
    ``x`` of another dtype than the model's re-raised as a ``TypeError`` naming ``name``
    (:func:`neuronkit.common.named_input_dtypes`); a model that converts its input itself runs
    as it is."""
    with named_input_dtypes(model, (name, x)):
        return model(x)


def label_tensor(name: str, labels: Any) -> torch.Tensor:
    """``labels`` as a tensor (a tensor is returned as is); anything numpy does not read as
    numbers (what ``torch.as_tensor`` cannot take) raises ``TypeError`` naming ``name``."""
    if isinstance(labels, torch.Tensor):
        return labels
    arr = np.asarray(labels)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"{name} must hold integer class labels, got {type(labels).__name__} ({labels!r:.80})"
        )
    return torch.as_tensor(writable(arr))


def long_labels(name: str, labels: torch.Tensor) -> torch.Tensor:
    """Integer class labels as ``long``; floats must be whole numbers within int64's range
    (``.long()`` would truncate a fraction and wrap an infinity to -2^63)."""
    if not integer_dtype(labels):
        if not labels.dtype.is_floating_point:
            raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
        whole = (labels == labels.round()) & (labels.abs() < 2.0**63)  # False for NaN
        if not bool(whole.all()):  # a value error, as in neuronkit.common.check_class_labels
            raise ValueError(
                f"{name} must hold integer class labels, got continuous values (a fraction, NaN "
                f"or infinity) of dtype {labels.dtype}"
            )
    return labels.long()


def integer_labels(name: str, labels: Any, n: int) -> torch.Tensor:
    """``n`` integer labels ``[N]`` (long, on the CPU); integer-valued floats are accepted."""
    labels = long_labels(name, label_tensor(name, labels))
    check_ndim(name, labels, 1, "[N]")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must have one label per sample ({n}), got {labels.shape[0]}")
    return labels.cpu()


def as_labels(name: str, labels: Any, n: int, num_classes: int | None) -> tuple[torch.Tensor, int]:
    """Integer class labels ``[N]`` in ``0..K-1``; returns them and ``K``."""
    labels = integer_labels(name, labels, n)
    if n and int(labels.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {int(labels.min())}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if n else 0
    else:
        check_number("num_classes", num_classes, ge=2, integer=True)
        if n and int(labels.max()) >= num_classes:
            raise ValueError(f"{name} must be < num_classes={num_classes}, got {int(labels.max())}")
    if num_classes < 2:
        raise ValueError(f"{name} must contain at least 2 classes, got {num_classes}")
    return labels, int(num_classes)


def scalar_value(value: Any) -> Any:
    """A 0-d tensor or numpy array (``torch.tensor(2.0)``, ``np.array(3)``) as its Python
    number, so scalar checks accept it; anything else is returned as is."""
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return value.item()
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Raise unless ``value`` is an integer ``>= minimum`` (a 0-d integer tensor or array too);
    return it as int."""
    value = scalar_value(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    check_number(name, value, ge=minimum, integer=True)
    return int(value)


# The validators (as_float_tensor, as_labels, check_input_dtype, check_layout,
# check_positive_int, label_tensor) take the checked argument's name first; they, run_model,
# scalar_value and writable are imported by name and stay out of __all__, which lists public
# callables.
__all__ = [
    "Seed",
    "numpy_rng",
    "torch_generator",
]
