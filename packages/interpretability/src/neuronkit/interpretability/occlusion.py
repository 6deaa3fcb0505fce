"""Occlusion: attribution by sliding a baseline patch over the input.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014).

A window of ``window`` entries slides over every non-batch dimension of the input with the
given strides; at each position the entries under it are replaced by the baseline and the
drop of the selected output, ``f(x) - f(x occluded)``, is credited to them. Each entry's
attribution is the mean drop over the windows that cover it. Numbers equal Captum's
``Occlusion`` (same window positions: ``ceil((size - window) / stride) + 1`` per dimension,
the last ones cut at the border; same occluded inputs ``x (1 - m) + baseline m``), up to the
summation order.

Speed: the occluded copies of many window positions go through the model in one batch
(``batch_size`` rows per forward; Captum's default is one position per forward), and the
credits are spread over the entries by one separable contraction (the windows are products
of per-dimension intervals) instead of one masked add per position.
"""

from __future__ import annotations

import math
import numbers
import string
from collections.abc import Callable, Sequence
from typing import Any

import torch

from neuronkit.common import check_number, eval_mode, progress

from .attribution import (
    Model,
    Target,
    _check_inputs,
    _check_model,
    _check_output,
    _finite_with_inputs,
    _repeat,
    _select,
    _target_index,
)
from .hooks import call_model, tensor_output

__all__ = ["occlusion"]


def _per_dim(name: str, value: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``value`` as one positive integer per non-batch dimension (an int counts for all)."""
    k = len(shape)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values: tuple[Any, ...] = (value,) * k
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
    else:
        raise TypeError(f"{name} must be an int or a tuple of {k} ints, got {value!r:.80}")
    if len(values) != k:
        raise ValueError(
            f"{name} must give one size per non-batch dimension of inputs ({k}: "
            f"{list(shape)}), got {list(values)}"
        )
    for i, v in enumerate(values):
        check_number(f"{name}[{i}]", v, ge=1, integer=True)
    return tuple(int(v) for v in values)


def _intervals(size: int, window: int, stride: int, like: torch.Tensor) -> torch.Tensor:
    """``[n, size]`` indicators of the window positions along one dimension (Captum's)."""
    n = math.ceil((size - window) / stride) + 1
    starts = torch.arange(n, device=like.device)[:, None] * stride
    index = torch.arange(size, device=like.device)[None, :]
    return ((index >= starts) & (index < starts + window)).to(like.dtype)


def _baseline(
    baselines: float | torch.Tensor,
    inputs: torch.Tensor,
    name: str = "baselines",
    of: str = "inputs",
) -> float | torch.Tensor:
    """``baselines`` checked: a number, or a floating tensor broadcastable to ``inputs`` (moved
    to their device and dtype). ``name`` and ``of``: their names in messages."""
    if not isinstance(baselines, torch.Tensor):
        check_number(name, baselines)
        return float(baselines)
    if not baselines.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {baselines.dtype}")
    try:
        torch.broadcast_shapes(baselines.shape, inputs.shape)
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast to {of} {tuple(inputs.shape)}, got shape "
            f"{tuple(baselines.shape)}"
        ) from None
    return baselines.detach().to(inputs.device, inputs.dtype)


def _output_drops(
    model: Model,
    x: torch.Tensor,
    baseline: float | torch.Tensor | Callable[[int, int], torch.Tensor],
    target: int | torch.Tensor | None,
    n: int,
    batch_size: int,
    masks: Callable[[int, int], torch.Tensor],
    show_progress: bool | None,
    desc: str,
) -> torch.Tensor:
    """``f(x) - f(x perturbed)`` of each example's selected output for ``n`` perturbations,
    ``[n, B]`` in ``x``'s dtype. ``masks(start, stop)`` returns the masks ``m`` of
    perturbations ``start..stop``, ``[stop - start, 1 or B, *S]`` in ``x``'s dtype; the
    perturbed inputs are Captum's ``x (1 - m) + baseline m``, where ``baseline`` is a number,
    a tensor broadcastable to ``x`` or, for a replacement of its own per perturbation,
    ``baseline(start, stop)`` broadcastable to the masks. ``max(1, batch_size // B)``
    perturbations of the whole batch go through the model per forward, without gradients and
    in eval mode."""
    b = x.shape[0]
    chunk = max(1, batch_size // b)
    drops = []
    with eval_mode(model), torch.no_grad():
        outputs = tensor_output(call_model(model, x))
        _check_output(outputs, target, b)
        initial = _select(outputs, target, b)
        for start in progress(range(0, n, chunk), show_progress=show_progress, desc=desc):
            stop = min(start + chunk, n)
            m = masks(start, stop)
            fill = baseline(start, stop) if callable(baseline) else baseline
            rows = (x * (1 - m) + fill * m).reshape(-1, *x.shape[1:])
            out = tensor_output(call_model(model, rows, copy=False))
            repeated = _repeat(target, stop - start)
            _check_output(out, repeated, rows.shape[0], scan=False)  # range checked above
            drops.append(initial - _select(out, repeated, out.shape[0]).view(-1, b))
    return torch.cat(drops).to(x.dtype)


def occlusion(
    model: Model,
    inputs: torch.Tensor,
    window: int | Sequence[int],
    target: Target = None,
    *,
    strides: int | Sequence[int] = 1,
    baselines: float | torch.Tensor = 0.0,
    batch_size: int = 256,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Occlusion attributions (Captum's ``Occlusion``).

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode
            (its flags are restored), without gradients.
        inputs: ``[B, *S]`` floating tensor (not modified).
        window: the occluding patch, one size per dimension of ``S`` (Captum's
            ``sliding_window_shapes``; an int: the same in every dimension), e.g. ``(3, 8,
            8)`` for ``[3, H, W]`` images.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        strides: step of the window per dimension (an int: the same in every one); at most
            the window's size where the window is smaller than the input. Default 1.
        baselines: the value occluded entries take: a number, or a tensor broadcastable to
            ``inputs`` (e.g. ``[*S]``, a mean image). Default 0.
        batch_size: occluded inputs per forward pass (at least one window position of every
            example: ``max(1, batch_size // B)`` positions at a time). Memory grows with it.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).

    Returns:
        ``[B, *S]`` attributions in ``inputs``' dtype (Captum returns float32).
    """
    _check_model(model)
    _check_inputs(inputs, finite=False)
    shape = tuple(inputs.shape[1:])
    if not shape:
        raise ValueError("inputs must be [B, *S] with at least one non-batch dimension, got [B]")
    windows = _per_dim("window", window, shape)
    steps = _per_dim("strides", strides, shape)
    for d, (size, w, s) in enumerate(zip(shape, windows, steps, strict=True)):
        if w > size:
            raise ValueError(f"window[{d}] = {w} exceeds the input's size {size} there")
        if w < size and s > w:
            raise ValueError(
                f"strides[{d}] = {s} must be at most window[{d}] = {w} (else entries are never "
                "occluded)"
            )
    base = _baseline(baselines, inputs)
    check_number("batch_size", batch_size, ge=1, integer=True)
    t = _target_index(target, inputs.shape[0], inputs.device)

    x = inputs.detach()
    axes = [_intervals(n, w, s, x) for n, w, s in zip(shape, windows, steps, strict=True)]
    counts = [a.shape[0] for a in axes]

    def occluded(start: int, stop: int) -> torch.Tensor:  # [c, 1, *S]
        return _masks(axes, counts, start, stop)[:, None]

    drops = _output_drops(
        model, x, base, t, math.prod(counts), batch_size, occluded, show_progress, "occlusion"
    )
    credit = drops.reshape(*counts, x.shape[0])  # [n_1, ..., n_k, B]
    letters = string.ascii_letters
    spec = (
        letters[: len(counts)]
        + "z,"
        + ",".join(letters[d] + letters[26 + d] for d in range(len(counts)))
        + "->z"
        + letters[26 : 26 + len(counts)]
    )
    total = torch.einsum(spec, credit, *axes)  # [B, *S]: the sum of the covering windows' drops
    coverage = axes[0].sum(0)
    for a in axes[1:]:
        coverage = coverage[..., None] * a.sum(0)
    return _finite_with_inputs(inputs, total / coverage, "outputs")


def _masks(axes: list[torch.Tensor], counts: list[int], start: int, stop: int) -> torch.Tensor:
    """``[stop - start, *S]`` occlusion masks of the window positions ``start..stop`` (in
    row-major order over the per-dimension positions, Captum's order reversed: the same set)."""
    flat = torch.arange(start, stop, device=axes[0].device)
    mask: torch.Tensor | None = None
    k = len(axes)
    for d in range(k - 1, -1, -1):
        index = flat % counts[d]
        flat = flat // counts[d]
        rows = axes[d][index]  # [c, S_d]
        rows = rows.reshape(rows.shape[0], *([1] * d), rows.shape[1], *([1] * (k - 1 - d)))
        mask = rows if mask is None else mask * rows
    assert mask is not None
    return mask
