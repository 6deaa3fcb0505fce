"""Feature-reliance tests by S-randomization (Shah et al., "The Pitfalls of Simplicity Bias in
Neural Networks", NeurIPS 2020).

Given a set ``S`` of coordinates (in the data's feature basis ``z = x W^T``), the
*S-randomized* test set permutes the values of the coordinates in ``S`` across samples with one
random permutation (so their joint marginal is kept but their relation to the label and to the
other coordinates is destroyed) and maps back with ``W``. If a model's accuracy stays high after
randomizing ``S``, the model does not rely on ``S``; if it falls to chance (50% for balanced binary
labels), the model relies on ``S`` only.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn as nn

from neuronkit.common import check_class_labels, check_type, correct_predictions, eval_mode

from .._utils import run_model, scalar_value, torch_generator

__all__ = ["feature_reliance", "randomize_coordinates", "randomized_accuracy"]


def _check_inputs(x: torch.Tensor, coordinates: Sequence[int], rotation: torch.Tensor | None):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [n, dim], got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"x must have 2 dimensions [n, dim], got shape {tuple(x.shape)}")
    dim = x.shape[1]
    if isinstance(coordinates, (str, bytes)) or not isinstance(coordinates, Sequence):
        raise TypeError(
            "coordinates must be a sequence of coordinate indices, got "
            f"{type(coordinates).__name__}"
        )
    coords: list[int] = []
    for i, c in enumerate(coordinates):
        c = scalar_value(c)  # a 0-d tensor or array
        if isinstance(c, bool) or not isinstance(c, numbers.Integral):  # 1.7 read as 1
            raise TypeError(f"coordinates[{i}] must be an integer coordinate index, got {c!r:.80}")
        coords.append(int(c))
    bad = [c for c in coords if not 0 <= c < dim]
    if bad:
        raise ValueError(f"coordinates must lie in 0..{dim - 1}, got {bad}")
    if rotation is not None:
        if not isinstance(rotation, torch.Tensor):
            raise TypeError(f"rotation must be a torch.Tensor [dim, dim], got {type(rotation)}")
        if rotation.shape != (dim, dim):
            raise ValueError(
                f"rotation must have shape [{dim}, {dim}] to match x, got {tuple(rotation.shape)}"
            )
        if not x.is_floating_point():  # the rotation would be cast to x's integer dtype
            raise TypeError(f"x must be a floating-point tensor with a rotation, got {x.dtype}")
    return coords


def randomize_coordinates(
    x: torch.Tensor,
    coordinates: Sequence[int],
    *,
    rotation: torch.Tensor | None = None,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """The S-randomized copy of ``x`` (``x`` itself is not modified).

    Args:
        x: inputs ``[n, dim]``, ``x = z @ rotation``.
        coordinates: the set S, indices into the feature coordinates ``z``.
        rotation: orthogonal ``[dim, dim]`` (None: identity, features are the input axes).
        seed: int or ``torch.Generator`` for the permutation.

    Returns:
        ``[n, dim]``: ``z`` with the columns in S permuted jointly across rows, times rotation.
    """
    coords = _check_inputs(x, coordinates, rotation)
    gen = torch_generator(seed)
    if rotation is not None:
        rotation = rotation.to(device=x.device, dtype=x.dtype)
    z = x @ rotation.T if rotation is not None else x.clone()
    # drawn on the generator's device (the CPU for a seed: the same permutation on every device)
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
    if coords:
        z[:, coords] = z[perm][:, coords]
    return z @ rotation if rotation is not None else z


@torch.no_grad()
def randomized_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    coordinates: Sequence[int],
    *,
    rotation: torch.Tensor | None = None,
    seed: int | torch.Generator | None = None,
) -> float:
    """Accuracy of ``model`` (logits ``[n, classes]``) on the S-randomized ``x`` against the true
    labels ``y [n]``; ``coordinates = []`` gives the plain accuracy. The model runs in eval
    mode (dropout off, BatchNorm statistics untouched); its mode is restored."""
    check_type("model", model, nn.Module)
    _check_inputs(x, coordinates, rotation)  # x first: the check of y reads its rows
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be a label tensor [n] with n = {x.shape[0]} (rows of x)")
    if y.is_floating_point() or y.is_complex():
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    xr = randomize_coordinates(x, coordinates, rotation=rotation, seed=seed)
    with eval_mode(model):
        out = run_model(model, xr)  # x of another dtype than the model's: a TypeError naming x
    if (
        not isinstance(out, torch.Tensor)
        or out.ndim != 2
        or out.shape[0] != len(x)
        or out.shape[1] < 2
    ):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model must return logits [n, C] (n = {len(x)}, C >= 2), got {got}")
    check_class_labels("y", y, out.shape[1])
    return float(correct_predictions(out, y).float().mean())


def feature_reliance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    groups: dict[str, Sequence[int]],
    *,
    rotation: torch.Tensor | None = None,
    seed: int | torch.Generator | None = None,
) -> dict[str, float]:
    """``{"original": acc, name: acc after randomizing S for each name, S in groups}``."""
    if not isinstance(groups, dict):
        raise TypeError(f"groups must be a dict name -> coordinates, got {type(groups).__name__}")
    gen = torch_generator(seed)
    out = {"original": randomized_accuracy(model, x, y, [], rotation=rotation, seed=gen)}
    for name, coords in groups.items():
        out[name] = randomized_accuracy(model, x, y, coords, rotation=rotation, seed=gen)
    return out
