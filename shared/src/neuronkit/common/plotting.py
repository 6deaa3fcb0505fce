"""Figures for reports: a headless matplotlib figure factory (extra ``plot``)."""

from __future__ import annotations

from typing import Any

from .validation import check_number

#: keyword arguments of ``Figure.subplots``; the others go to ``Figure``
_SUBPLOTS_KEYS = frozenset(
    ("sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw", "gridspec_kw")
)


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """Return ``(fig, axes)`` as ``plt.subplots`` would, but headless and outside pyplot.

    The figure is a plain ``matplotlib.figure.Figure`` drawn with Agg: the session's backend is
    left alone, nothing is registered with pyplot (no figure accumulates, none needs closing)
    and no window opens. Save it with ``RunContext.save_figure(name, fig)`` or
    ``fig.savefig``; a notebook shows it as a cell's result.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'neuronkit-common[plot]'") from err
    check_number("nrows", nrows, ge=1, integer=True)
    check_number("ncols", ncols, ge=1, integer=True)
    kwargs.setdefault("figsize", (4.0 * ncols, 3.2 * nrows))
    if "layout" not in kwargs:  # matplotlib warns when both are given
        kwargs.setdefault("constrained_layout", True)
    subplots = {k: kwargs.pop(k) for k in list(kwargs) if k in _SUBPLOTS_KEYS}
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplots)


def axes_or_new(ax: Any, figsize: tuple[float, float]) -> Any:
    """``ax`` when it is a matplotlib ``Axes``, else (``ax=None``) the axes of a new headless
    figure of ``figsize`` inches (:func:`new_figure`): the ``ax=`` argument of every plotting
    function. Anything else raises ``TypeError`` naming the argument."""
    if ax is None:
        return new_figure(figsize=figsize)[1]
    if not hasattr(ax, "plot") or not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax
