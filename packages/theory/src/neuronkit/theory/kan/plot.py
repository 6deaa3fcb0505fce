"""The learned edge functions of a KAN layer, as numbers and as a grid of small plots.

A KAN layer computes ``y_o = b_o + sum_i phi_oi(x_i)``: every edge ``i -> o`` carries a
function of one variable, which is what one reads off a trained KAN (Liu et al., "KAN:
Kolmogorov-Arnold Networks", 2024, draw them over the network; pykan's ``plot``).
:func:`edge_functions` evaluates them exactly from a layer's parameters (for a
:class:`~neuronkit.theory.kan.SKANLayer`, the selection-weighted sum over its active spaces);
:func:`plot_edges` draws them, one panel per edge, on a headless figure
(:func:`neuronkit.common.new_figure`; ``axes.flat[0].figure.savefig(...)`` saves it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuronkit.common import check_interval, check_number, check_type, new_figure

from .layers import KAN, SKAN, KANLayer, SKANLayer

__all__ = ["edge_functions", "plot_edges"]


def _layer(model: Any, layer: int) -> KANLayer | SKANLayer:
    """``model`` itself when it is a layer, else its ``layer``-th layer."""
    if isinstance(model, (KANLayer, SKANLayer)):
        return model
    if not isinstance(model, (KAN, SKAN)):
        raise TypeError(
            f"model must be a KAN, SKAN, KANLayer or SKANLayer, got {type(model).__name__}"
        )
    check_number("layer", layer, integer=True)
    n = len(model.layers)
    if not -n <= layer < n:
        raise ValueError(f"layer must index the model's {n} layers, got {layer}")
    found = model.layers[layer]
    assert isinstance(found, (KANLayer, SKANLayer))
    return found


@torch.no_grad()
def edge_functions(
    model: Any,
    *,
    layer: int = 0,
    points: int = 201,
    x_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``phi_oi(t)`` of every edge of one layer on a grid of ``t``.

    Args:
        model: a :class:`~neuronkit.theory.kan.KANLayer` or
            :class:`~neuronkit.theory.kan.SKANLayer`, or a ``KAN`` / ``SKAN`` network.
        layer: which layer of a network (negative counts from the end).
        points: number of grid points (``>= 2``).
        x_range: ``(low, high)`` of the grid; default the layer's ``grid_range``, where its
            basis is defined.

    Returns:
        ``t [points]`` and ``phi [points, out, in]`` (float64): the layer's output is
        ``bias + phi(x).sum(inputs)``; the bias is not in ``phi``.
    """
    edges = _layer(model, layer)
    check_number("points", points, integer=True, ge=2)
    low, high = edges.grid_range if x_range is None else check_interval("x_range", x_range)
    dtype = edges.coef.dtype
    t = torch.linspace(low, high, int(points), dtype=dtype, device=edges.coef.device)
    x = t[:, None].expand(-1, edges.in_features).contiguous()  # every input at t
    if isinstance(edges, KANLayer):
        phi = torch.einsum("pib,oib->poi", edges.basis(x), edges.coef)
    else:
        alpha = edges.selection_weights()  # [in, S]; 0 on inactive spaces
        phi = t.new_zeros(len(t), edges.out_features, edges.in_features)
        for s, space in enumerate(edges.spaces):
            if bool(edges.active[:, s].any()):
                basis = edges._basis(space, x) * alpha[None, :, s, None]  # [P, in, G+k]
                phi += torch.einsum("pib,oib->poi", basis, edges.coef[:, :, s])
    if edges.base_weight is not None:
        phi += F.silu(t)[:, None, None] * edges.base_weight[None]
    return t.double().cpu().numpy(), phi.double().cpu().numpy()


def _indices(name: str, chosen: Sequence[int] | None, n: int, limit: int) -> list[int]:
    if chosen is None:
        return list(range(min(n, limit)))
    if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Sequence) or not chosen:
        raise TypeError(f"{name} must be a non-empty sequence of indices, got {chosen!r:.80}")
    for i in chosen:
        check_number(name, i, integer=True)
        if not 0 <= i < n:
            raise ValueError(f"{name} must lie in [0, {n - 1}], got {i}")
    return [int(i) for i in chosen]


def plot_edges(
    model: Any,
    *,
    layer: int = 0,
    outputs: Sequence[int] | None = None,
    inputs: Sequence[int] | None = None,
    points: int = 201,
    x_range: Sequence[float] | None = None,
    share_y: bool = True,
) -> Any:
    """Draw the edge functions ``phi_oi`` of one layer: row ``o``, column ``i``.

    Args:
        model, layer, points, x_range: as :func:`edge_functions`.
        outputs, inputs: indices of the output and input nodes drawn (default the first 8 of
            each).
        share_y: one y scale for every panel, so weak edges look weak (as pykan fades
            them); ``False`` scales each panel to its own function.

    Returns:
        The axes ``[len(outputs), len(inputs)]`` (a numpy array); each panel's title names
        its edge, ``i -> o``, and, in an S-KAN layer, the input node's largest-weight space.
    """
    edges = _layer(model, layer)
    check_type("share_y", share_y, bool)
    rows = _indices("outputs", outputs, edges.out_features, 8)
    cols = _indices("inputs", inputs, edges.in_features, 8)
    t, phi = edge_functions(edges, points=points, x_range=x_range)
    chosen = edges.chosen_spaces() if isinstance(edges, SKANLayer) else None
    _, axes = new_figure(
        len(rows),
        len(cols),
        figsize=(1.6 * len(cols) + 0.6, 1.3 * len(rows) + 0.5),
        sharex=True,
        sharey=share_y,
        squeeze=False,
    )
    for r, o in enumerate(rows):
        for c, i in enumerate(cols):
            ax = axes[r, c]
            ax.plot(t, phi[:, o, i], lw=1.2)
            ax.axhline(0.0, color="0.8", lw=0.5, zorder=0)
            space = edges.space if chosen is None else chosen[i]
            ax.set_title(f"{i} -> {o} ({space})", fontsize=7)
            ax.tick_params(labelsize=6)
    return axes
