"""Linear mode connectivity and instability analysis.

Frankle, Dziugaite, Roy & Carbin (2020), "Linear Mode Connectivity and the Lottery Ticket
Hypothesis" (ICML; first as "Stabilizing the Lottery Ticket Hypothesis", 2019).

A network (dense, or a sparse subnetwork with its mask) at state ``W_k`` is *stable to SGD
noise* when two copies trained from ``W_k`` with different data orders end in minima joined by
a linear path of no higher error. Instability is the error barrier height

    ``instability = max_alpha E((1 - alpha) W_a + alpha W_b) - (E(W_a) + E(W_b)) / 2``,

with ``E`` the classification error evaluated at evenly spaced ``alpha`` in ``[0, 1]`` (the
paper uses 30 points; 11-31 is typical). With masks, both endpoints share the mask, so every
point of the path is masked too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from neuronkit.common import check_number, check_type, detached_input, grad_enabled

from .masks import Masks, apply_masks
from .rewind import (
    State,
    TrainConfig,
    _accuracy,
    _check_data,
    _load_state,
    clone_state,
    train_from,
)

__all__ = [
    "LMCResult",
    "instability",
    "interpolate_states",
    "interpolation_errors",
    "linear_mode_connectivity",
]


def interpolate_states(
    state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor], alpha: float
) -> State:
    """``(1 - alpha) * state_a + alpha * state_b`` for every floating tensor.

    Parameters and floating buffers (BatchNorm running statistics) are interpolated; integer
    buffers (``num_batches_tracked``) are taken from ``state_a``. The inputs are not modified;
    the result is on ``state_a``'s devices.

    Args:
        state_a, state_b: state dicts with the same keys and shapes.
        alpha: position on the path, in ``[0, 1]`` (0 gives ``state_a``).
    """
    for name, st in (("state_a", state_a), ("state_b", state_b)):
        if not isinstance(st, Mapping):
            raise TypeError(f"{name} must be a state_dict mapping, got {type(st).__name__}")
    check_number("alpha", alpha, ge=0.0, le=1.0)
    if set(state_a) != set(state_b):
        diff = sorted(set(state_a) ^ set(state_b))[:5]
        raise ValueError(f"state_b must have the keys of state_a, got differences {diff}")
    out: State = {}
    for key, a in state_a.items():
        b = state_b[key]
        check_type(f"state_a[{key!r}]", a, torch.Tensor)
        check_type(f"state_b[{key!r}]", b, torch.Tensor)
        if a.shape != b.shape:
            raise ValueError(
                f"state_b[{key!r}] must have shape {tuple(a.shape)} like state_a, "
                f"got {tuple(b.shape)}"
            )
        if a.is_floating_point():
            b_like_a = b.detach().to(device=a.device, dtype=a.dtype)  # e.g. a CPU checkpoint
            out[key] = torch.lerp(a.detach(), b_like_a, float(alpha))
        else:
            out[key] = a.detach().clone()
    return out


def interpolation_errors(
    model: nn.Module,
    state_a: Mapping[str, torch.Tensor],
    state_b: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    points: int = 31,
    masks: Masks | None = None,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classification error along the linear path from ``state_a`` to ``state_b``.

    Args:
        model: an architecture accepting both states; not modified (a copy is evaluated).
        state_a, state_b: the endpoints' state dicts.
        x: evaluation inputs ``[N, ...]``; y: labels ``[N]``.
        points: number of evenly spaced ``alpha`` in ``[0, 1]`` (>= 2; endpoints included).
        masks: optional masks applied at every point (a no-op when both ends share them).
        batch_size: evaluation batch size.

    Returns:
        ``(alphas [points], errors [points])``, errors in ``[0, 1]``.
    """
    return _interpolation_errors(model, state_a, state_b, x, y, points, masks, batch_size)


def _interpolation_errors(
    model: nn.Module,
    state_a: Mapping[str, torch.Tensor],
    state_b: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    points: int,
    masks: Masks | None,
    batch_size: int,
    xname: str = "x",
    yname: str = "y",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`interpolation_errors`, its errors naming ``x`` and ``y`` as the caller's."""
    check_type("model", model, nn.Module)
    _check_data(x, y, xname, yname)
    check_number("points", points, ge=2, integer=True)
    net = copy.deepcopy(model)
    alphas = torch.linspace(0.0, 1.0, int(points), dtype=torch.float64)
    errors = torch.empty(int(points), dtype=torch.float64)
    for i, a in enumerate(alphas.tolist()):
        _load_state(net, interpolate_states(state_a, state_b, a), "state_a")
        if masks is not None:
            apply_masks(net, masks)
        errors[i] = 1.0 - _accuracy(net, x, y, batch_size, xname, yname)
    return alphas, errors


def instability(errors: torch.Tensor | Sequence[float]) -> float:
    """Error barrier height: ``max(errors) - (errors[0] + errors[-1]) / 2``.

    Args:
        errors: errors along the path ``[P]`` (``P >= 2``; first and last are the endpoints).

    Returns:
        A float ``>= 0`` up to rounding (the maximum includes the endpoints).
    """
    if isinstance(errors, (str, bytes)):
        raise TypeError(f"errors must be a 1-D sequence of numbers, got {type(errors).__name__}")
    try:
        e = torch.as_tensor(errors, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(
            f"errors must be a 1-D sequence of numbers, got {type(errors).__name__} ({err})"
        ) from err
    if e.ndim != 1 or e.numel() < 2:
        raise ValueError(
            f"errors must be a 1-D sequence of >= 2 values, got shape {tuple(e.shape)}"
        )
    if not torch.isfinite(e).all():
        raise ValueError("errors must be finite, got NaN or inf")
    return float(e.max() - 0.5 * (e[0] + e[-1]))


@dataclass
class LMCResult:
    """One instability analysis.

    Attributes:
        start_iteration: ``k``, where both copies start.
        alphas: ``[P]`` interpolation coefficients.
        errors: ``[P]`` evaluation errors along the path.
        instability: :func:`instability` of ``errors``.
        state_a, state_b: the two trained endpoints.
    """

    start_iteration: int
    alphas: torch.Tensor
    errors: torch.Tensor
    instability: float
    state_a: State
    state_b: State

    @property
    def endpoint_errors(self) -> tuple[float, float]:
        """Errors of the two trained copies."""
        return float(self.errors[0]), float(self.errors[-1])


@grad_enabled("linear_mode_connectivity")
def linear_mode_connectivity(
    model: nn.Module,
    start_state: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    config: TrainConfig,
    *,
    start_iteration: int = 0,
    masks: Masks | None = None,
    data_seeds: tuple[int, int] = (1, 2),
    points: int = 31,
) -> LMCResult:
    """Instability analysis at ``W_k``: train two copies with different data orders, interpolate.

    Args:
        model: the architecture (not modified).
        start_state: ``W_k`` (for a sparse subnetwork, the rewound state; the mask is applied).
        x, y: training data ``[N, ...]``, ``[N]``.
        x_eval, y_eval: where the path's error is measured (the paper reports test error).
        config: training recipe; both copies train from ``start_iteration`` to ``T``.
        start_iteration: ``k``.
        masks: the subnetwork's masks (``None``: dense network).
        data_seeds: the two copies' data orders (must differ: that is the SGD noise).
        points: evenly spaced interpolation points including the endpoints.

    Returns:
        :class:`LMCResult`.
    """
    check_type("model", model, nn.Module)
    _check_data(x_eval, y_eval, "x_eval", "y_eval")
    x, y = detached_input(x), detached_input(y)  # once for both copies
    check_type("data_seeds", data_seeds, tuple)
    if len(data_seeds) != 2 or data_seeds[0] == data_seeds[1]:
        raise ValueError(f"data_seeds must be two different seeds, got {data_seeds!r}")
    for i, seed in enumerate(data_seeds):
        check_number(f"data_seeds[{i}]", seed, ge=0, integer=True)
    check_number("points", points, ge=2, integer=True)
    copies = [
        train_from(
            model,
            start_state,
            x,
            y,
            config,
            masks=masks,
            start_iteration=start_iteration,
            data_seed=s,
        )
        for s in data_seeds
    ]
    sa, sb = clone_state(copies[0]), clone_state(copies[1])
    alphas, errors = _interpolation_errors(
        model, sa, sb, x_eval, y_eval, points, masks, 1024, "x_eval", "y_eval"
    )
    return LMCResult(
        start_iteration=int(start_iteration),
        alphas=alphas,
        errors=errors,
        instability=instability(errors),
        state_a=sa,
        state_b=sb,
    )
