"""Sensitive-neuron detection of SeND (Mohammadzadeh et al., 2024, "Hallucination Detox").

A neuron is *sensitive* when its activation on a fixed tracking set changes a lot between
consecutive training checkpoints. Given the activations ``a[t, n, h]`` of ``H`` neurons on
``N`` tracking inputs at ``T`` checkpoints, the sensitivity of neuron ``h`` is

- ``"variance"`` (the paper's definition): ``mean_n Var_t a[t, n, h]``, the variability of the
  neuron's activation across checkpoints, averaged over the tracking inputs;
- ``"net_change"``: ``mean_n sum_t |a[t, n, h] - a[t-1, n, h]|`` (the total variation the
  authors' code calls "net change");
- ``"combined"``: the product of the two (the authors' ``combined_sensitivity``).

The top ``K%`` of neurons by sensitivity are the ones SeND drops deterministically.
"""

from __future__ import annotations

import torch

from neuronkit.common import check_choice, check_finite, check_probability, check_type

__all__ = ["SENSITIVITY_METHODS", "neuron_sensitivity", "top_sensitive"]

#: Accepted ``method`` values of :func:`neuron_sensitivity`.
SENSITIVITY_METHODS = ("variance", "net_change", "combined")


def neuron_sensitivity(activations: torch.Tensor, method: str = "variance") -> torch.Tensor:
    """Per-neuron sensitivity from activations recorded at successive checkpoints.

    Args:
        activations: ``[T, N, H]`` (checkpoints, tracking inputs, neurons) or ``[T, H]``
            (one tracking input), ``T >= 2``.
        method: ``"variance"``, ``"net_change"`` or ``"combined"`` (module docstring).

    Returns:
        ``[H]`` non-negative float tensor (float64 for float64 input, else float32).
    """
    check_type("activations", activations, torch.Tensor)
    check_choice("method", method, SENSITIVITY_METHODS)
    if activations.ndim not in (2, 3):
        raise ValueError(
            "activations must be [T, N, H] or [T, H] (checkpoints first), "
            f"got shape {tuple(activations.shape)}"
        )
    if activations.shape[0] < 2:
        raise ValueError(
            f"activations need at least 2 checkpoints (dim 0), got {activations.shape[0]}"
        )
    if activations.ndim == 3 and activations.shape[1] == 0:  # a mean over no input is NaN
        raise ValueError(
            f"activations need at least 1 tracking input (dim 1), got shape "
            f"{tuple(activations.shape)}"
        )
    if not activations.is_floating_point():
        raise TypeError(f"activations must be floating point, got {activations.dtype}")
    check_finite("activations", activations)
    a = activations if activations.ndim == 3 else activations.unsqueeze(1)
    a = a.double() if a.dtype == torch.float64 else a.float()
    variance = a.var(dim=0, unbiased=False).mean(dim=0)
    if method == "variance":
        return variance
    change = a.diff(dim=0).abs().sum(dim=0).mean(dim=0)
    if method == "net_change":
        return change
    return change * variance


def top_sensitive(sensitivity: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the ``floor(fraction * H)`` most sensitive neurons, most sensitive first.

    Ties are broken by the lower index (a stable sort), so the choice is deterministic.

    Args:
        sensitivity: ``[H]`` scores from :func:`neuron_sensitivity`.
        fraction: share of neurons to return, in ``[0, 1]``.

    Returns:
        ``[floor(fraction * H)]`` int64 indices.
    """
    check_type("sensitivity", sensitivity, torch.Tensor)
    if sensitivity.ndim != 1:
        raise ValueError(f"sensitivity must be [H], got shape {tuple(sensitivity.shape)}")
    check_probability("fraction", fraction)
    check_finite("sensitivity", sensitivity)
    k = int(fraction * sensitivity.numel() + 1e-9)
    order = torch.sort(-sensitivity.double(), stable=True).indices
    return order[:k].to(torch.long)
