"""Safe weight IO with safetensors: no pickle, atomic writes (extra ``weights``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .io import atomic_path
from .validation import check_type

#: metadata key holding the non-tensor entries of a state dict (modules' extra state), as JSON
EXTRA_STATE_KEY = "neuronkit.extra_state"


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
    per name. ``metadata`` must map strings to strings. Entries that are not tensors (a
    module's ``get_extra_state()``, e.g. neuronkit-snn's ``DelayedLinear`` tap mode) are kept
    as JSON in the file's metadata (key ``"neuronkit.extra_state"``), so they must be
    JSON-serializable; :func:`load_weights` puts them back.
    """
    st = _safetensors_torch()
    state = (
        module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    )
    if not isinstance(state, dict):
        raise TypeError(
            f"module_or_state must be an nn.Module or a dict of tensors, got {type(state).__name__}"
        )
    not_str = [k for k in state if not isinstance(k, str)]
    if not_str:
        raise TypeError(f"module_or_state's keys must be str, got {not_str[:3]!r:.80}")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise TypeError(f"metadata must map str to str, got {metadata!r:.80}")
    if metadata is not None and EXTRA_STATE_KEY in metadata:
        raise ValueError(f"metadata must not use the reserved key {EXTRA_STATE_KEY!r}")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items() if _is_tensor(v)}
    extra = {k: v for k, v in state.items() if not _is_tensor(v)}
    if extra:
        try:
            encoded = json.dumps(extra)
            lossless = json.loads(encoded) == extra  # int keys and tuples would come back changed
        except (TypeError, ValueError) as err:
            encoded, lossless = "", False
            reason = str(err)
        else:
            reason = "JSON would turn int keys into strings or tuples into lists"
        if not lossless:
            raise TypeError(
                f"module_or_state's non-tensor entries {sorted(extra)} must be JSON-serializable "
                f"(str keys, lists) to be saved with safetensors ({reason})"
            )
        metadata = {**(metadata or {}), EXTRA_STATE_KEY: encoded}
    with atomic_path(path) as tmp:
        st.save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "detach") and hasattr(value, "contiguous")


def load_weights(path: str | os.PathLike[str], module: Any = None, *, strict: bool = True) -> Any:
    """Load tensors from a safetensors file; load them into ``module`` when given.

    Returns the state dict (tensors, and any extra state :func:`save_weights` kept as JSON),
    or the module when ``module`` is given. A file that does not fit ``module`` (a tensor of
    another shape; with ``strict``, a missing or unexpected key) raises ``ValueError`` before
    anything is copied: ``load_state_dict`` would have overwritten the matching tensors first.
    """
    _safetensors_torch()  # the extra's ImportError, if missing
    check_type("strict", strict, bool)
    if module is not None and not hasattr(module, "load_state_dict"):
        raise TypeError(f"module must be an nn.Module or None, got {type(module).__name__}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"path must be an existing safetensors file, got {str(path)!r}")
    from safetensors import SafetensorError, safe_open

    try:  # one open: the tensors and the metadata
        with safe_open(str(path), framework="pt") as f:
            keys = f.keys()  # a safetensors handle: no iteration of its own
            state: dict[str, Any] = {key: f.get_tensor(key) for key in keys}
            extra = (f.metadata() or {}).get(EXTRA_STATE_KEY)
    except SafetensorError as err:  # empty, truncated or another format
        raise ValueError(f"path {str(path)!r} is not a readable safetensors file ({err})") from None
    if extra is not None:
        state.update(json.loads(extra))
    if module is None:
        return state
    _check_fits(path, state, module.state_dict(), strict)
    module.load_state_dict(state, strict=strict)
    return module


def _check_fits(path: Any, state: dict[str, Any], current: dict[str, Any], strict: bool) -> None:
    problems = [
        f"{key}: {tuple(state[key].shape)} in the file, {tuple(current[key].shape)} in module"
        for key in sorted(state.keys() & current.keys())
        if _is_tensor(state[key]) and _is_tensor(current[key])
        if state[key].shape != current[key].shape
    ]
    if strict:
        missing, unexpected = sorted(current.keys() - state.keys()), sorted(state.keys() - current)
        problems += [f"missing from the file: {missing}"] * bool(missing)
        problems += [f"not in module: {unexpected}"] * bool(unexpected)
    if problems:
        raise ValueError(
            f"path {str(path)!r} does not fit module ({'; '.join(problems)}); "
            "module was left unchanged"
        )
