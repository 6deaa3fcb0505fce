"""Layer widths before and after pruning: a table and a bar chart.

:func:`layer_widths` pairs the layers of an original model and its pruned copy by name and
reads each one's output width (channels, features, embedding size); :func:`plot_widths` draws
them in model order, the per-layer profile that structured pruning papers show (uniform ratios
give a flat profile, global or learned ones do not). The chart is a headless matplotlib figure
(:func:`neuronkit.common.new_figure`; ``ax.figure.savefig(...)`` saves it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from neuronkit.common import axes_or_new, check_type

__all__ = ["LayerWidth", "layer_widths", "plot_widths"]


class LayerWidth(NamedTuple):
    """One layer's output width in the original and the pruned model."""

    name: str
    kind: str  # the module's class name
    before: int
    after: int


def _width(module: nn.Module) -> int | None:
    """The output width of a layer with weights: ``out_features`` (Linear), ``out_channels``
    (convolutions), ``embedding_dim`` (Embedding), ``nf`` (Hugging Face's Conv1D), ``embed_dim``
    (MultiheadAttention); None for anything else."""
    for attribute in ("out_features", "out_channels", "embedding_dim", "nf", "embed_dim"):
        if attribute == "embed_dim" and not isinstance(module, nn.MultiheadAttention):
            continue  # Hugging Face attention blocks and whole models carry one too
        value = vars(module).get(attribute)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def layer_widths(original: nn.Module, pruned: nn.Module) -> list[LayerWidth]:
    """The output width of every layer of ``original`` that ``pruned`` has under the same name.

    Args:
        original: the model before pruning.
        pruned: the pruned model (e.g. :func:`~neuronkit.pruning.prune`'s result).

    Returns:
        One :class:`LayerWidth` per Linear, convolution, Embedding, Hugging Face Conv1D and
        MultiheadAttention layer, in ``original.named_modules()`` order.
    """
    check_type("original", original, nn.Module)
    check_type("pruned", pruned, nn.Module)
    after = dict(pruned.named_modules())
    rows = []
    for name, module in original.named_modules():
        before = _width(module)
        twin = after.get(name)
        if before is None or twin is None:
            continue
        width = _width(twin)
        if width is not None:
            rows.append(LayerWidth(name, type(module).__name__, before, width))
    if not rows:
        raise ValueError(
            "original and pruned share no layer with a width (Linear, convolution, Embedding, "
            "Conv1D, MultiheadAttention) under the same name"
        )
    return rows


def plot_widths(
    original: nn.Module, pruned: nn.Module, *, fraction: bool = False, ax: Any = None
) -> Any:
    """Bar chart of each layer's output width before (light) and after (dark) pruning.

    Args:
        original, pruned: as :func:`layer_widths`.
        fraction: draw the share of each layer's width that is kept instead of the widths.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes; x is the layer's position in the model (named when there are 40 layers or
        fewer), the title gives the total width kept.
    """
    check_type("fraction", fraction, bool)
    rows = layer_widths(original, pruned)
    ax = axes_or_new(ax, (min(2.0 + 0.25 * len(rows), 14.0), 3.6))
    x = range(len(rows))
    if fraction:
        ax.bar(x, [r.after / r.before for r in rows], color="tab:blue")
        ax.set_ylim(0.0, 1.05)
        ax.set_ylabel("share of width kept")
    else:
        ax.bar(x, [r.before for r in rows], color="tab:blue", alpha=0.3, label="before")
        ax.bar(x, [r.after for r in rows], color="tab:blue", label="after")
        ax.set_ylabel("output width")
        ax.legend(fontsize=8)
    if len(rows) <= 40:
        ax.set_xticks(list(x), [r.name for r in rows], rotation=90, fontsize=6)
    ax.set_xlabel("layer")
    kept = sum(r.after for r in rows) / sum(r.before for r in rows)
    ax.set_title(f"{len(rows)} layers, {kept:.0%} of their total width kept", fontsize=9)
    return ax
