"""Model inputs of a dtype the model cannot take, named as the caller passed them.

A float32 model run on float64 inputs (``torch.from_numpy`` of a numpy array), on integer
images (``uint8``) or a float64 model on float32 inputs fails deep inside torch with a
``RuntimeError`` such as "mat1 and mat2 must have the same dtype". :func:`named_input_dtypes`
turns that error into a ``TypeError`` naming the argument, as
``neuronkit.interpretability``'s model calls do. Nothing is cast and nothing is checked
beforehand: a model that takes the dtype (integer token ids, a model casting its input
itself) runs as before, and the translation costs nothing unless the call fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# torch's messages for operands of different dtypes (Linear / matmul, conv, norms, ...)
_DTYPE_MISMATCH = (
    "must have the same dtype",
    "should be the same",
    "expected scalar type",
    "to have the same dtype",
    "have same dtype",
    "must share same datatype",
)


def parameter_dtype(model: Any) -> torch.dtype | None:
    """The dtype of an ``nn.Module``'s first floating-point parameter or buffer, else ``None``."""
    if isinstance(model, nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def input_dtype_error(
    model: Any, err: BaseException, inputs: Iterable[tuple[str, Any]]
) -> TypeError | None:
    """The ``TypeError`` naming the first of ``inputs`` (``(name, value)`` pairs) whose dtype
    differs from ``model``'s parameter dtype, if ``err`` is torch's dtype-mismatch error (a
    floating-point input of another precision first, else an integer or bool one); ``None``
    if ``err`` is another error or no input differs."""
    if not isinstance(err, RuntimeError):
        return None
    text = str(err)
    dtype = parameter_dtype(model)
    if dtype is None or not any(m in text for m in _DTYPE_MISMATCH):
        return None
    tensors = [(n, x) for n, x in inputs if isinstance(x, torch.Tensor) and x.dtype != dtype]
    culprit = next(((n, x) for n, x in tensors if x.is_floating_point()), None)
    culprit = culprit or next(iter(tensors), None)
    if culprit is None:
        return None
    name, x = culprit
    return TypeError(
        f"{name} must have the model's parameter dtype {dtype}, got dtype {x.dtype} "
        f"(the model failed with: {text.splitlines()[0] if text else type(err).__name__})"
    )


def named_values(
    name: str, values: Any, names: tuple[str, ...] | None = None
) -> list[tuple[str, Any]]:
    """``(name, value)`` pairs of a model's inputs as :func:`split_inputs` returns them:
    ``name`` for a single input, ``name[i]`` for positional and ``name['key']`` for keyword
    ones."""
    values = tuple(values)
    if names is not None:
        return [(f"{name}[{k!r}]", v) for k, v in zip(names, values, strict=True)]
    if len(values) == 1:
        return [(name, values[0])]
    return [(f"{name}[{i}]", v) for i, v in enumerate(values)]


@contextmanager
def named_input_dtypes(model: Any, *inputs: tuple[str, Any]) -> Iterator[None]:
    """Re-raise torch's dtype-mismatch ``RuntimeError`` of the block as the ``TypeError`` of
    :func:`input_dtype_error` naming one of ``inputs`` (``(name, value)`` pairs); any other
    error passes unchanged."""
    try:
        yield
    except RuntimeError as err:
        error = input_dtype_error(model, err, inputs)
        if error is None:
            raise
        raise error from err
