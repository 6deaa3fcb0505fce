"""Loader for the Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) files.

Cramer, Stradmann, Schemmel & Zenke (2020). Each HDF5 file holds ``spikes/times`` (one
variable-length float array of spike times in seconds per sample), ``spikes/units`` (the
matching variable-length arrays of input channels, 0..699) and ``labels`` (one integer per
sample). Nothing is downloaded: point the loader at files you have. The frames are binned as
the learnable-delays reference does (fixed time bins of ``dt`` seconds, optionally pooling
neighbouring channels, spike counts per bin).

Needs ``h5py`` (the ``hdf5`` extra: ``pip install 'neuronkit-snn[hdf5]'``).
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from neuronkit.common import check_number, check_type

__all__ = ["SHD_UNITS", "SpikeFrames", "load_shd"]

SHD_UNITS = 700


class SpikeFrames(NamedTuple):
    """Binned spikes ``x: [T, N, C]`` (time-major; counts, or 0/1 if ``binary``) and labels
    ``y: [N]`` (int64); ``dt`` is the bin width in seconds."""

    x: Tensor
    y: Tensor
    dt: float


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("load_shd needs h5py: pip install 'neuronkit-snn[hdf5]'") from err
    return h5py


def load_shd(
    path: str | os.PathLike[str],
    *,
    dt: float = 0.01,
    duration: float | None = None,
    channel_bins: int = 1,
    n_units: int = SHD_UNITS,
    indices: Any = None,
    binary: bool = False,
    dtype: torch.dtype = torch.float32,
) -> SpikeFrames:
    """Read an SHD/SSC HDF5 file and bin it into frames ``[T, N, n_units // channel_bins]``.

    Spike ``(time, unit)`` lands in frame ``floor(time / dt)`` and channel ``unit //
    channel_bins``; spikes at or after ``duration`` are dropped.

    Args:
        path: the ``.h5`` file.
        dt: bin width in seconds (the reference uses 10 ms).
        duration: seconds kept per sample, ``T = ceil(duration / dt)``; default: every
            loaded spike is kept, ``T = floor(latest / dt) + 1`` for the latest spike time in
            the loaded samples.
        channel_bins: neighbouring units pooled per channel (the reference uses 5: 140
            channels); must divide ``n_units``.
        n_units: input units in the file (700 for SHD and SSC).
        indices: optional sample indices to load (integers, negative from the end, or a
            slice); default all.
        binary: clip counts to 1.
        dtype: floating dtype of the frames.
    """
    check_type("path", path, (str, os.PathLike))
    check_number("dt", dt, gt=0)
    if duration is not None:
        check_number("duration", duration, gt=0)
    check_number("n_units", n_units, ge=1, integer=True)
    check_number("channel_bins", channel_bins, ge=1, le=n_units, integer=True)
    if n_units % channel_bins:
        raise ValueError(f"channel_bins must divide n_units = {n_units}, got {channel_bins}")
    check_type("binary", binary, bool)
    check_type("dtype", dtype, torch.dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path must be an existing HDF5 file, got {os.fspath(path)!r}")
    h5py = _h5py()
    name = repr(os.fspath(path))
    try:
        f = h5py.File(path, "r")
    except OSError as err:  # empty, truncated or not HDF5: h5py's message names no file
        raise ValueError(f"path {name} is not a readable HDF5 file ({err})") from None
    with f:
        for key in ("spikes", "labels", "spikes/times", "spikes/units"):
            if key not in f:
                raise ValueError(f"{name} has no {key!r} (not an SHD/SSC file)")
        times_ds, units_ds = f["spikes"]["times"], f["spikes"]["units"]
        labels_all = np.asarray(f["labels"][()])
        if labels_all.ndim != 1 or labels_all.dtype.kind not in "iu":
            raise ValueError(
                f"{name}: labels must be [N] integers, got {labels_all.dtype} of shape "
                f"{labels_all.shape}"
            )
        n = labels_all.shape[0]
        if times_ds.shape[0] != n or units_ds.shape[0] != n:
            raise ValueError(
                f"spikes/times ({times_ds.shape[0]}), spikes/units ({units_ds.shape[0]}) and "
                f"labels ({n}) must have the same number of samples"
            )
        if indices is None:
            idx = np.arange(n)
        elif isinstance(indices, slice):
            idx = np.arange(n)[indices]
        else:
            idx = np.asarray(indices).reshape(-1)
            if idx.size and idx.dtype.kind not in "iu":  # a mask or floats: not positions
                raise TypeError(
                    f"indices must be integer sample indices or a slice, got dtype {idx.dtype}"
                )
            idx = idx.astype(np.int64)
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise ValueError(
                    f"indices must lie in [-{n}, {n - 1}], got {idx.min()}..{idx.max()}"
                )
            idx = idx % n if idx.size else idx
        times = [np.asarray(times_ds[i], dtype=np.float64) for i in idx]
        units = [np.asarray(units_ds[i], dtype=np.int64) for i in idx]
        labels = labels_all[idx]
    for i, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise ValueError(f"sample {idx[i]}: spikes/times and spikes/units differ in length")
        if t.size and (not np.isfinite(t).all() or t.min() < 0):
            raise ValueError(f"sample {idx[i]}: spike times must be finite and >= 0")
        if u.size and (u.min() < 0 or u.max() >= n_units):
            raise ValueError(
                f"sample {idx[i]}: units must lie in [0, {n_units - 1}], got "
                f"{u.min()}..{u.max()} (set n_units)"
            )
    if duration is None:
        latest = max((float(t.max()) for t in times if t.size), default=dt)
        T = max(1, math.floor(latest / dt) + 1)
    else:
        T = max(1, math.ceil(duration / dt - 1e-9))
    C = n_units // channel_bins
    frames = np.zeros((T, len(idx), C), dtype=np.float32)
    for i, (t, u) in enumerate(zip(times, units)):
        tb = np.floor(t / dt).astype(np.int64)
        keep = tb < T if duration is None else (tb < T) & (t < duration)  # last frame may be cut
        rows = np.full(int(keep.sum()), i, dtype=np.int64)
        np.add.at(frames, (tb[keep], rows, u[keep] // channel_bins), 1.0)
    if binary:
        np.minimum(frames, 1.0, out=frames)
    return SpikeFrames(
        torch.as_tensor(frames, dtype=dtype),
        torch.as_tensor(labels.astype(np.int64), dtype=torch.long),
        float(dt),
    )
