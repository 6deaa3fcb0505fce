"""Names of a model's inputs as the caller passed them, for the ``TypeError`` of
:func:`neuronkit.common.named_input_dtypes` (data of another dtype than the model's)."""

from __future__ import annotations

from typing import Any


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
