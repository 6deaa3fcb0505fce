"""Pictures of spiking activity: spike rasters, membrane traces and population rates.

Every function takes time-major activity, as the rest of the package returns it: ``[T, N]``
for one sample, or ``[T, B, ...]`` for a batch, of which ``sample`` picks one (the trailing
dimensions are flattened into neurons, row-major, so neuron ``i`` of a ``[T, B, C, H, W]``
tensor is channel ``i // (H * W)``). Tensors (any device, also in an autograd graph), numpy
arrays and nested lists are accepted; a spike is any non-zero entry (binary spikes, counts or
booleans). Each function draws on ``ax`` when given, else on a new headless figure
(:func:`neuronkit.common.new_figure`; ``ax.figure.savefig(...)`` saves it), and returns the
axes. Needs matplotlib (``neuronkit-common[plot]``, a dependency of this package).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuronkit.common import axes_or_new, check_number, check_type, host_array

__all__ = ["population_rate", "raster", "traces"]


def _real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a numpy array of real numbers or booleans, without a copy where it can be (a
    CPU tensor's memory; a large batch is never converted as a whole to float64)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(
            f"{name} must be a real array [T, N] or [T, B, ...], got {type(x).__name__}"
        )
    try:
        arr = np.asarray(host_array(x))
    except ValueError as err:  # ragged nested lists
        raise TypeError(f"{name} must be a real array [T, N] or [T, B, ...] ({err})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array [T, N] or [T, B, ...], got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.shape[0] == 0 or arr[0].size == 0:
        raise ValueError(
            f"{name} must be time-major [T, N] (one sample) or [T, B, ...] (a batch) with "
            f"T >= 1 and at least one neuron, got shape {arr.shape}"
        )
    return arr


def _one_sample(name: str, x: Any, sample: int) -> np.ndarray:
    """``x`` as a float64 ``[T, N]`` array: ``[T, N]`` as is, ``[T, B, ...]`` at ``sample``."""
    arr = _real_array(name, x)
    check_number("sample", sample, integer=True)
    if arr.ndim == 2:
        if sample != 0:
            raise ValueError(
                f"sample must be 0 for a single-sample {name} [T, N], got {sample} (pass a "
                "batch [T, B, ...] to pick another)"
            )
    elif not -arr.shape[1] <= sample < arr.shape[1]:
        raise ValueError(
            f"sample must index the batch of {name} (size {arr.shape[1]}), got {sample}"
        )
    else:
        arr = arr[:, sample]
    return arr.reshape(arr.shape[0], -1).astype(np.float64)


def _neurons(neurons: Sequence[int] | None, n: int, default: int | None) -> np.ndarray:
    """Indices of the neurons to draw, each checked to lie in ``[0, n)``."""
    if neurons is None:
        return np.arange(n if default is None else min(default, n))
    if isinstance(neurons, (str, bytes)) or not isinstance(neurons, (Sequence, np.ndarray)):
        raise TypeError(f"neurons must be a sequence of neuron indices, got {neurons!r:.80}")
    index = np.asarray(neurons)
    if index.ndim != 1 or index.size == 0 or index.dtype.kind not in "iu":
        raise ValueError(f"neurons must be a non-empty sequence of integers, got {neurons!r:.80}")
    if int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(
            f"neurons must lie in [0, {n - 1}] ({n} neurons per sample), got range "
            f"[{int(index.min())}, {int(index.max())}]"
        )
    return index


def raster(
    spikes: Any,
    *,
    sample: int = 0,
    neurons: Sequence[int] | None = None,
    dt: float = 1.0,
    ax: Any = None,
    color: str = "k",
    size: float | None = None,
) -> Any:
    """Spike raster: a tick at ``(t * dt, row)`` for every spike of the drawn neurons.

    Args:
        spikes: ``[T, N]`` or ``[T, B, ...]`` (see the module docstring).
        sample: the batch entry drawn from a ``[T, B, ...]`` input.
        neurons: indices of the neurons drawn, one row each in this order (default: all).
        dt: time per step; the x axis is ``t * dt`` (in steps by default).
        ax: matplotlib axes to draw on; default a new figure.
        color: the ticks' colour.
        size: the ticks' marker size (points squared); default: ticks about as tall as a row.

    Returns:
        The axes; rows are labelled with neuron indices when 30 or fewer are drawn.
    """
    x = _one_sample("spikes", spikes, sample)
    check_number("dt", dt, gt=0.0)
    if size is not None:
        check_number("size", size, gt=0.0)
    check_type("color", color, str)
    index = _neurons(neurons, x.shape[1], None)
    ax = axes_or_new(ax, (6.0, 1.5 + min(4.0, 0.05 * len(index))))
    if size is None:  # a row's height in points, squared (a "|" marker's size is its height^2)
        row = ax.bbox.height * 72.0 / ax.figure.dpi / len(index)
        size = min(max(0.9 * row, 2.0), 20.0) ** 2
    t, row = np.nonzero(x[:, index])
    ax.scatter(t * dt, row, marker="|", s=size, c=color, linewidths=1.0)
    ax.set_xlim(-0.5 * dt, (x.shape[0] - 0.5) * dt)
    ax.set_ylim(-0.5, len(index) - 0.5)
    ax.invert_yaxis()  # row 0 on top, as a raster is read
    if len(index) <= 30:
        ax.set_yticks(range(len(index)), [str(i) for i in index])
    ax.set_xlabel("step" if dt == 1.0 else "time")
    ax.set_ylabel("neuron")
    rate = float(np.count_nonzero(x[:, index])) / (x.shape[0] * len(index))
    ax.set_title(f"{len(t)} spikes, {rate:.3f} per neuron and step", fontsize=9)
    return ax


def traces(
    membrane: Any,
    *,
    spikes: Any = None,
    threshold: float | None = None,
    sample: int = 0,
    neurons: Sequence[int] | None = None,
    dt: float = 1.0,
    ax: Any = None,
) -> Any:
    """Membrane potential over time, one line per neuron, stacked with a vertical offset.

    Args:
        membrane: ``[T, N]`` or ``[T, B, ...]`` membrane potentials, e.g. ``neuron.run(x).v``
            (the membrane after each step's reset).
        spikes: optional spikes of the same shape, a dot on each trace where it fired (at
            the threshold's height when ``threshold`` is given: after a reset the membrane
            itself no longer shows the crossing).
        threshold: optional firing threshold, drawn as a dashed line on each trace.
        sample: the batch entry drawn from a ``[T, B, ...]`` input.
        neurons: indices of the neurons drawn, top to bottom (default: the first 5).
        dt: time per step; the x axis is ``t * dt``.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes. Trace ``k`` is shifted down by ``k`` times the spacing (1.2 times the
        largest range of the drawn membranes, threshold included); the y ticks name the
        neurons at their zero level.
    """
    v = _one_sample("membrane", membrane, sample)
    s = None
    if spikes is not None:
        s = _one_sample("spikes", spikes, sample)
        if s.shape != v.shape:
            raise ValueError(
                f"spikes must have the membrane's shape, got {tuple(np.shape(spikes))} for a "
                f"membrane of shape {tuple(np.shape(membrane))}"
            )
    if threshold is not None:
        check_number("threshold", threshold)
    check_number("dt", dt, gt=0.0)
    index = _neurons(neurons, v.shape[1], 5)
    ax = axes_or_new(ax, (6.0, 1.0 + 0.8 * len(index)))
    shown = v[:, index]
    if not np.isfinite(shown).all():
        raise ValueError("membrane must be finite in the drawn neurons")
    levels = [float(shown.min()), float(shown.max())] + ([] if threshold is None else [threshold])
    spacing = 1.2 * max(max(levels) - min(levels), 1e-12)
    time = np.arange(v.shape[0]) * dt
    for k, i in enumerate(index):
        offset = -k * spacing
        line = ax.plot(time, v[:, i] + offset, lw=1.0)[0]
        if threshold is not None:
            ax.axhline(threshold + offset, color=line.get_color(), ls="--", lw=0.6, alpha=0.6)
        if s is not None:
            fired = np.nonzero(s[:, i])[0]
            height = v[fired, i] if threshold is None else np.full(len(fired), threshold)
            ax.plot(time[fired], height + offset, "o", ms=3, color=line.get_color())
    ax.set_yticks([-k * spacing for k in range(len(index))], [str(i) for i in index])
    ax.set_xlabel("step" if dt == 1.0 else "time")
    ax.set_ylabel("neuron (membrane, offset)")
    return ax


def population_rate(
    spikes: Any, *, dt: float = 1.0, ax: Any = None, label: str | None = None
) -> Any:
    """Population firing rate over time: spikes per neuron and unit time at every step.

    Args:
        spikes: ``[T, N]`` (one sample) or ``[T, B, ...]``: for a batch the line is the mean
            over samples and a band shows +- one standard deviation across samples.
        dt: time per step; rates are per unit time (per step by default).
        ax: matplotlib axes to draw on (e.g. to compare layers); default a new figure.
        label: legend label of the line (a legend is drawn when given).

    Returns:
        The axes.
    """
    arr = _real_array("spikes", spikes)
    check_number("dt", dt, gt=0.0)
    if label is not None:
        check_type("label", label, str)
    ax = axes_or_new(ax, (6.0, 2.6))
    per_sample = arr.reshape(arr.shape[0], 1 if arr.ndim == 2 else arr.shape[1], -1)
    rates = np.count_nonzero(per_sample, axis=2) / (per_sample.shape[2] * dt)  # [T, samples]
    time = np.arange(arr.shape[0]) * dt
    mean = rates.mean(axis=1)
    line = ax.plot(time, mean, lw=1.5, label=label)[0]
    if rates.shape[1] > 1:
        sd = rates.std(axis=1)
        ax.fill_between(time, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("step" if dt == 1.0 else "time")
    ax.set_ylabel("spikes / neuron / step" if dt == 1.0 else "rate")
    ax.set_ylim(bottom=0.0)
    if label is not None:
        ax.legend(fontsize=8)
    return ax
