"""Argument validation that raises errors in neuronkit's style.

Every message names the argument, what it got and what was expected, e.g.
``ValueError: tau must be > 0, got -1.0``. Works on Python scalars, numpy arrays and torch
tensors without importing torch.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_COMPARISONS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, numbers.Number):
        dtype = getattr(value, "dtype", "?")
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return repr(value)


def check_type(name: str, value: Any, expected: type | tuple[type, ...]) -> None:
    """Raise ``TypeError`` unless ``isinstance(value, expected)``."""
    if not isinstance(value, expected):
        names = (  # a union such as ``int | None`` has no __name__
            " or ".join(getattr(t, "__name__", str(t)) for t in expected)
            if isinstance(expected, tuple)
            else getattr(expected, "__name__", str(expected))
        )
        raise TypeError(f"{name} must be {names}, got {type(value).__name__} ({value!r:.80})")


def check_number(
    name: str,
    value: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    integer: bool = False,
) -> None:
    """Check a finite real (or integer) scalar against optional bounds.

    >>> check_number("tau", 2.0, gt=0)
    >>> check_number("T", 0, ge=1, integer=True)
    Traceback (most recent call last):
    ValueError: T must be >= 1, got 0
    """
    kind = "an integer" if integer else "a real number"
    if isinstance(value, bool) or not isinstance(
        value, numbers.Integral if integer else numbers.Real
    ):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} ({value!r:.80})")
    # an int beyond float range is finite (and compares exactly below)
    if not isinstance(value, numbers.Integral) and not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    for op, bound in ((">", gt), (">=", ge), ("<", lt), ("<=", le)):
        if bound is not None and not _COMPARISONS[op](value, bound):
            raise ValueError(f"{name} must be {op} {bound!r}, got {value!r:.80}")


def check_interval(name: str, value: Any) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite reals with ``low < high``, as Python floats. Any
    two-element sequence, array or tensor is accepted (elements may be numpy scalars or 0-d
    tensors, e.g. ``(x.min(), x.max())``).

    >>> check_interval("clamp", (0, 1))
    (0.0, 1.0)
    """
    if (
        isinstance(value, (str, bytes, dict))
        or getattr(value, "ndim", 1) == 0  # a 0-d array or tensor has __len__ but no length
        or not hasattr(value, "__len__")
        or len(value) != 2
    ):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {_describe(value)}")
    pair = []
    for i, v in enumerate(value):
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # 0-d tensor or array
            v = v.item()
        check_number(f"{name}[{i}]", v)
        try:
            pair.append(float(v))
        except OverflowError:  # an int beyond float range, which check_number takes
            raise ValueError(f"{name}[{i}] must be within float range, got {v!r:.40}") from None
    if not pair[0] < pair[1]:
        raise ValueError(f"{name} must be (low, high) with low < high, got {tuple(pair)}")
    return pair[0], pair[1]


def check_class_labels(name: str, labels: Any, n_classes: int) -> None:
    """Raise ``ValueError`` unless every entry of ``labels`` (``[N]`` integers: an array, a
    tensor or a list) is a class index in ``[0, n_classes)``: out-of-range labels fail deep inside
    a loss in training and silently count as errors in an accuracy. Empty ``labels`` pass; NaN
    and fractions fail (integer-valued floats pass), and labels that are not numbers (or a
    scalar) raise ``TypeError``.

    >>> import numpy as np
    >>> check_class_labels("y", np.array([0, 3]), 3)
    Traceback (most recent call last):
    ValueError: y must hold class labels in [0, 2] (the model has 3 outputs), got range [0, 3]
    """
    if (
        isinstance(labels, (str, bytes))
        or getattr(labels, "ndim", 1) == 0  # a 0-d array or tensor has __len__ but no length
        or not hasattr(labels, "__len__")
    ):
        raise TypeError(f"{name} must be [N] class labels, got {_describe(labels)}")
    if len(labels) == 0:
        return
    labels = plain_tensor(labels)
    if not hasattr(labels, "min"):  # a list or tuple
        import numpy as np

        try:
            labels = np.asarray(labels)
        except ValueError as err:  # ragged
            raise TypeError(f"{name} must be [N] class labels ({err})") from None
    try:
        lo, hi = int(labels.min()), int(labels.max())
    except (ValueError, OverflowError):  # int() of NaN or infinity
        raise ValueError(
            f"{name} must hold class labels in [0, {n_classes - 1}], got NaN or infinity"
        ) from None
    except TypeError:  # strings, None
        raise TypeError(f"{name} must hold integer class labels, got {_describe(labels)}") from None
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"{name} must hold class labels in [0, {n_classes - 1}] (the model has {n_classes} "
            f"outputs), got range [{lo}, {hi}]"
        )
    dtype = labels.dtype
    floating = dtype.is_floating_point if hasattr(dtype, "is_complex") else dtype.kind == "f"
    if floating and bool((labels != labels.round()).any()):  # int() above truncated them
        raise ValueError(f"{name} must hold integer class labels, got a fractional value")


def check_seed(seed: Any, name: str = "seed") -> None:
    """Check a seed: an integer in ``[0, 2**64)``, what ``torch.Generator.manual_seed`` takes
    (a larger one fails inside torch with "Overflow when unpacking long long") and numpy's
    ``default_rng`` accepts.

    >>> check_seed(2**64)
    Traceback (most recent call last):
    ValueError: seed must be < 2**64 (a 64-bit generator seed), got 18446744073709551616
    """
    check_number(name, seed, ge=0, integer=True)
    if seed >= 2**64:
        raise ValueError(f"{name} must be < 2**64 (a 64-bit generator seed), got {str(seed)[:40]}")


def check_probability(name: str, value: Any, *, open_right: bool = False) -> None:
    """Check ``0 <= value <= 1`` (or ``< 1`` with ``open_right``)."""
    if open_right:
        check_number(name, value, ge=0.0, lt=1.0)
    else:
        check_number(name, value, ge=0.0, le=1.0)


def check_choice(name: str, value: T, choices: Iterable[T]) -> T:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``; returns ``value``. A bool
    matches only a bool (``True == 1`` in Python, but ``True`` is not the choice ``1``)."""
    options = list(choices)
    try:
        found = any(o == value and isinstance(o, bool) == isinstance(value, bool) for o in options)
    except (TypeError, ValueError, RuntimeError):  # an array or tensor: no single truth value
        found = False
    if not found:
        raise ValueError(f"{name} must be one of {options!r}, got {value!r}")
    return value


def check_ndim(name: str, x: Any, ndim: int | Sequence[int], layout: str | None = None) -> None:
    """Check an array's rank; ``layout`` (e.g. ``"[T, B, N]"``) goes into the message."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    got = getattr(x, "ndim", None)
    if got is None:
        raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}")
    if got not in allowed:
        want = " or ".join(str(a) for a in allowed)
        hint = f" {layout}" if layout else ""
        raise ValueError(f"{name} must have {want} dimensions{hint}, got {_describe(x)}")


def check_shape(name: str, x: Any, shape: Sequence[int | None]) -> None:
    """Check an array's shape; ``None`` entries match any size."""
    if getattr(x, "shape", None) is None:
        raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}")
    got = tuple(x.shape)
    ok = len(got) == len(shape) and all(s is None or s == g for s, g in zip(shape, got))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {_describe(x)}")


def floating_dtype(name: str, dtype: Any) -> Any:
    """``dtype`` checked to be a floating ``torch.dtype``; ``None`` is torch's default dtype
    (``torch.get_default_dtype()``, float32 unless a script changed it). Needs torch."""
    import torch

    if dtype is None:
        return torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype or None, got {dtype!r:.80}")
    return dtype


def check_adam_dtype(name: str, named: Iterable[tuple[str, Any]]) -> None:
    """Raise ``TypeError`` naming the argument ``name`` when a trained parameter of ``named``
    (``(name, parameter)`` pairs, e.g. ``model.named_parameters()``) is float16; call it before
    building ``torch.optim.Adam`` / ``AdamW`` over them.

    Adam's ``eps`` (1e-8) is 0 in float16, so ``m / (sqrt(v) + eps)`` is ``0 / 0 = NaN``
    wherever a gradient is 0: the weights turn NaN after one step, silently. bfloat16 (whose
    range holds 1e-8) and float32 / float64 pass. Needs torch.
    """
    import torch

    half = [n for n, p in named if p.requires_grad and p.dtype == torch.float16]
    if half:
        raise TypeError(
            f"{name}: Adam cannot train float16 parameters ({half[0]!r} and {len(half) - 1} "
            "more): its eps is 0 in float16 and the weights turn NaN after a step; train in "
            "float32 or bfloat16 (e.g. model.to(torch.bfloat16))"
        )


# torch's messages for operands of different dtypes (Linear / matmul, conv, norms, ...)
_DTYPE_MISMATCH = (
    "must have the same dtype",
    "should be the same",
    "expected scalar type",
    "to have the same dtype",
    "have same dtype",
    "must share same datatype",
)


def parameter_dtype(model: Any) -> Any:
    """The dtype of an ``nn.Module``'s first floating-point parameter or buffer; ``None`` for
    anything else or a module without one. Needs torch."""
    import itertools

    import torch

    if isinstance(model, torch.nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def input_dtype_error(
    model: Any, err: BaseException, inputs: Iterable[tuple[str, Any]]
) -> TypeError | None:
    """The ``TypeError`` naming the first of ``inputs`` (``(name, value)`` pairs: what the
    caller passed) whose dtype is not ``model``'s parameter dtype (its first floating-point
    parameter or buffer), if ``err`` is torch's ``RuntimeError`` for operands of different
    dtypes ("mat1 and mat2 must have the same dtype"); a floating-point input of another
    precision is named before an integer or bool one. ``None`` for another error, a model
    without floating-point tensors, or no input of another dtype. Needs torch."""
    import torch

    text = str(err)
    if not isinstance(err, RuntimeError) or not any(m in text for m in _DTYPE_MISMATCH):
        return None
    dtype = parameter_dtype(model)
    if dtype is None:
        return None
    others = [(n, x) for n, x in inputs if isinstance(x, torch.Tensor) and x.dtype != dtype]
    culprit = next(((n, x) for n, x in others if x.is_floating_point()), None)
    culprit = culprit or next(iter(others), None)
    if culprit is None:
        return None
    name, x = culprit
    return TypeError(
        f"{name} must have the model's parameter dtype {dtype}, got dtype {x.dtype} "
        f"(the model failed with: {text.splitlines()[0] if text else type(err).__name__})"
    )


@contextlib.contextmanager
def named_input_dtypes(model: Any, *inputs: tuple[str, Any]) -> Iterator[None]:
    """Re-raise torch's dtype-mismatch ``RuntimeError`` of the block as the ``TypeError`` of
    :func:`input_dtype_error` naming one of ``inputs`` (``(name, value)`` pairs). Nothing is
    cast or checked beforehand: a model that takes the dtype (token ids, a model casting its
    input) runs as it is, and the check costs nothing unless the block fails."""
    try:
        yield
    except RuntimeError as err:
        error = input_dtype_error(model, err, inputs)
        if error is None:
            raise
        raise error from err


def check_floating(name: str, x: Any) -> None:
    """Raise ``TypeError`` unless the tensor ``x`` holds floating-point numbers."""
    if not hasattr(x, "is_floating_point"):
        raise TypeError(f"{name} must be a floating-point tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def integer_dtype(x: Any) -> bool:
    """Whether the tensor or array ``x`` holds integers: not floating-point, complex or bool
    numbers (as indices, labels or ids a float would be truncated and a bool mask read as the
    indices 0 / 1)."""
    dtype = x.dtype
    if hasattr(dtype, "is_complex"):  # a torch.dtype
        import torch

        return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    return getattr(dtype, "kind", "") in ("i", "u")  # numpy


def under_torch_func() -> bool:
    """Whether a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jvp``, ...) is
    running or a forward-mode AD level is open (``torch.autograd.forward_ad.dual_level``);
    False while ``torch.compile`` traces, which handles transforms itself. Code with ``out=``
    buffers or a custom ``autograd.Function`` lacking transform rules switches to plain ops
    then. Needs torch."""
    import torch
    import torch.autograd.forward_ad as forward_ad

    if torch.compiler.is_compiling():  # dynamo cannot trace the query
        return False
    return (
        torch._C._functorch.peek_interpreter_stack() is not None
        or forward_ad._current_level >= 0  # dual tensors take no out= either
    )


def values_hidden(x: Any) -> bool:
    """Whether ``x``'s values cannot be read: it is a ``torch.fx`` proxy, or ``torch.compile`` /
    ``torch.export`` / ``torch.jit.trace`` is tracing (a read would break the graph or be baked
    into it). Value checks skip then; shape and type checks still run."""
    if not hasattr(x, "detach"):
        return False
    import torch  # loaded already: x is a tensor or a proxy

    return isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling() or torch.jit.is_tracing()


def plain_tensor(x: Any) -> Any:
    """A torch tensor without ``torch.func``'s wrappers: the plain tensor holding its values
    (every batch element, under ``vmap``), which checks can read inside ``vmap`` / ``grad`` /
    ``jvp``, where the wrapped tensor refuses ``.item()``. Anything else (also a tensor outside
    a transform) is returned as is."""
    if not hasattr(x, "detach"):
        return x
    import torch  # loaded already: x is a tensor

    if torch.compiler.is_compiling():  # dynamo sees no wrappers (and cannot trace the test)
        return x
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(x):
        x = functorch.get_unwrapped(x)
    return x


def host_array(x: Any) -> Any:
    """A torch tensor (any device, also one in an autograd graph) as a CPU numpy array of the
    same shape and dtype, except bfloat16 / float16, which are upcast to float32 (numpy has no
    bfloat16; float32 holds each of their values exactly); anything else is returned as is."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.numpy()
    return x


def as_float_array(name: str, x: Any, layout: str = "") -> Any:
    """``np.asarray(x, dtype=np.float64)`` (a tensor on any device, also a bfloat16 one, which
    numpy cannot hold; a list or array reads as it always does); a string, or anything numpy
    cannot read as real numbers, or a scipy.sparse matrix, raises ``TypeError`` naming the
    argument (``layout``, e.g. ``"[n, d]"``, goes into the message)."""
    import numpy as np

    what = f"a real array {layout}" if layout else "a real array"
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be {what}, got {type(x).__name__} ({x!r:.80})")
    if hasattr(x, "toarray") and hasattr(x, "nnz"):  # scipy.sparse: numpy reads it as an object
        raise TypeError(
            f"{name} must be a dense {what.removeprefix('a ')}, got the sparse "
            f"{type(x).__name__} (sparse input is not supported: densify it with .toarray())"
        )
    try:
        arr = np.asarray(host_array(x))
        if arr.dtype.kind == "c":  # a float64 cast would drop the imaginary part (a warning only)
            raise TypeError("complex values")
        if arr.dtype.kind not in "biuf":  # None as NaN, strings parsed, dates as day counts
            raise TypeError(f"dtype {arr.dtype} is not real numbers")
        return arr.astype(np.float64, copy=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be {what}, got {type(x).__name__} ({err})") from None


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if the array or tensor holds NaN or infinity (skipped while tracing:
    :func:`values_hidden`).

    One read pass on the common path: a sum is finite only if every term is (NaN and infinities
    propagate, ``inf - inf`` is NaN), so a finite sum proves the input finite; only a non-finite
    sum (non-finite entries, or an overflow of large finite ones) is checked element by element.
    """
    if values_hidden(x):
        return
    if hasattr(x, "isfinite") and hasattr(x, "all") and not hasattr(x, "__array_interface__"):
        if not (x.is_floating_point() or x.is_complex()):  # torch integer / bool tensor
            return
        t = plain_tensor(x)
        t = t.detach() if t.requires_grad else t  # torch: no host copy, no autograd graph
        total = t.sum()
        fast = bool(total.isfinite()) if t.is_complex() else math.isfinite(total.item())
        finite = fast or bool(t.isfinite().all())
    else:
        import numpy as np

        try:
            arr = np.asarray(x)
        except ValueError as err:  # ragged nested lists
            raise TypeError(f"{name} must be an array or tensor of numbers ({err})") from None
        if arr.dtype.kind == "O":  # numbers held as Python objects: check them as floats
            if any(v is None for v in arr.flat):  # which float64 would read as NaN
                got = "None" if x is None else "a None entry"
                raise TypeError(f"{name} must be an array or tensor of numbers, got {got}")
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError, OverflowError):  # not numbers, or ints beyond floats
                return
        if arr.dtype.kind not in "fc":
            return
        with np.errstate(over="ignore", invalid="ignore"):
            total = arr.sum()
        finite = bool(np.isfinite(total)) or bool(np.isfinite(arr).all())
    if not finite:
        raise ValueError(f"{name} must be finite, got NaN or infinity in {_describe(x)}")
