"""Safe weight IO with safetensors: no pickle, atomic writes (extra ``weights``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .io import atomic_path


def _safetensors_torch() -> Any:
    try:
        import safetensors.torch as st
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "weight IO needs safetensors and torch: pip install 'neuronkit-common[weights]'"
        ) from err
    return st


def save_weights(
    module_or_state: Any, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> Path:
    """Save an ``nn.Module``'s state dict (or a dict of tensors) to ``path`` atomically.

    Tensors are made contiguous and copied to the CPU; tied (shared) tensors are saved once
    per name. ``metadata`` must map strings to strings.
    """
    st = _safetensors_torch()
    state = (
        module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    )
    if not isinstance(state, dict):
        raise TypeError(
            f"module_or_state must be an nn.Module or a dict of tensors, got {type(state).__name__}"
        )
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("metadata must map str to str")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    with atomic_path(path) as tmp:
        st.save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def load_weights(path: str | os.PathLike[str], module: Any = None, *, strict: bool = True) -> Any:
    """Load tensors from a safetensors file; load them into ``module`` when given.

    Returns the dict of tensors, or the module when ``module`` is given.
    """
    st = _safetensors_torch()
    if not Path(path).is_file():
        raise FileNotFoundError(f"path must be an existing safetensors file, got {str(path)!r}")
    state = st.load_file(str(path))
    if module is None:
        return state
    module.load_state_dict(state, strict=strict)
    return module
