"""Figures for reports: a headless matplotlib figure factory (extra ``plot``)."""

from __future__ import annotations

from typing import Any


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """Return ``(fig, axes)`` from a non-interactive (Agg) matplotlib backend.

    Save it with ``RunContext.save_figure(name, fig)``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'neuronkit-common[plot]'") from err
    kwargs.setdefault("figsize", (4.0 * ncols, 3.2 * nrows))
    kwargs.setdefault("constrained_layout", True)
    return plt.subplots(nrows, ncols, **kwargs)
