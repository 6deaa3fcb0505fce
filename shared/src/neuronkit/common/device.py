"""Device selection for torch code, without importing torch at import time."""

from __future__ import annotations

import os
from typing import Any


def select_device(device: Any = None) -> Any:
    """Return a ``torch.device``.

    ``None`` picks ``$NEURONKIT_DEVICE`` if set, else CUDA when available, else Apple MPS,
    else CPU. A string or ``torch.device`` is validated and returned.
    """
    import torch

    if device is None:
        device = os.environ.get("NEURONKIT_DEVICE")
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError) as err:  # e.g. an index > 2**63
        raise ValueError(
            f"device must be a torch device or a string such as 'cpu' or 'cuda:0', got {device!r}"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return dev


def module_placement(module: Any) -> tuple[Any, Any]:
    """``(device, dtype)`` to build inputs for ``module`` in: the device of its first parameter
    or buffer and the dtype of its first floating-point parameter (the CPU and torch's default
    dtype for a module without them)."""
    import itertools

    import torch

    if not (hasattr(module, "parameters") and hasattr(module, "buffers")):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    device = torch.device("cpu") if first is None else first.device
    floats = (p.dtype for p in module.parameters() if p.is_floating_point())
    return device, next(floats, torch.get_default_dtype())
