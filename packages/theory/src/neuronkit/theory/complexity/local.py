"""Local complexity: how many neuron hyperplanes cut a small cross-polytope around a point.

Humayun, Balestriero & Baraniuk, "Deep networks always grok and here is why" (ICML 2024). A
ReLU network is a continuous piecewise-affine map; the density of its linear-region boundaries
near a point ``x`` is measured by the local complexity (LC): take a cross-polytope of radius
``r`` around ``x`` (vertices ``x +- r v_k`` for ``k`` random orthonormal directions ``v_k``,
one frame shared by all points), push its vertices through the network and count, layer by
layer, the neurons whose pre-activation does not have the same sign at every vertex (their
hyperplane, in that layer's input space, crosses the polytope's image). During training the LC
around training points first rises, then falls ("region migration": the non-linearities move
away from the data towards the decision boundary), which comes with delayed generalization and
robustness. Shapes: points ``[B, *in]``, vertices ``[B, 2k, *in]``, LC ``[B]`` or ``[B, layers]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from neuronkit.common import check_finite, check_number, check_type, eval_mode

from .._utils import check_positive_int, run_model, torch_generator

# torch's wording for an input that does not fit a layer ("mat1 and mat2 shapes cannot be
# multiplied", "expected input[...] to have 3 channels", "size of tensor a ... must match",
# "running_mean should contain 8 elements"); a message about memory is never a shape problem
_SHAPE_ERROR = re.compile(r"shape|size|dimension|mat1|mat2|channels|elements", re.IGNORECASE)
_MEMORY_ERROR = re.compile(r"memory|allocat", re.IGNORECASE)


def _is_shape_error(err: RuntimeError) -> bool:
    msg = str(err)
    return bool(_SHAPE_ERROR.search(msg)) and not _MEMORY_ERROR.search(msg)


__all__ = [
    "cross_polytope",
    "decision_boundary_points",
    "local_complexity",
    "relu_preactivations",
]

Tensor = torch.Tensor


def _check_points(name: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, ...], got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch [B, ...], got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return x


def cross_polytope(
    x: Tensor, radius: float, n_directions: int, *, seed: int | torch.Generator | None = None
) -> Tensor:
    """Vertices ``x +- radius * v_k`` of a cross-polytope around every point of ``x``.

    ``v_1..v_k`` are orthonormal directions drawn once (QR of a Gaussian matrix) and shared by
    all points, as in the authors' code. ``x``: ``[B, *in]`` -> ``[B, 2k, *in]`` (the ``+``
    vertices first). ``n_directions`` ``k`` must not exceed the input dimension.
    """
    x = _check_points("x", x)
    check_number("radius", radius, gt=0)
    k = check_positive_int("n_directions", n_directions)
    dim = int(x[0].numel())
    if k > dim:
        raise ValueError(f"n_directions must be <= the input dimension {dim}, got {k}")
    gen = torch_generator(seed)
    gauss = torch.randn(dim, k, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(gauss)  # [dim, k] orthonormal columns
    frame = (radius * q.T).to(device=x.device, dtype=x.dtype).reshape(k, *x.shape[1:])
    flat = x.unsqueeze(1)
    return torch.cat([flat + frame.unsqueeze(0), flat - frame.unsqueeze(0)], dim=1)


def relu_preactivations(model: torch.nn.Module, x: Tensor) -> list[Tensor]:
    """Inputs of every ``nn.ReLU`` module of ``model`` during ``model(x)``, flattened ``[M, U_l]``.

    These are the pre-activations whose sign defines the linear regions. ``x``: ``[M, *in]``
    (a floating ``x`` of another dtype than the model's parameters that the model cannot take
    raises ``TypeError`` naming ``x``). The model runs in eval mode (its flags are restored):
    BatchNorm statistics stay as they are.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    if not relus:
        raise ValueError("model must contain at least one torch.nn.ReLU module")
    captured: list[Tensor] = []

    def hook(_module: torch.nn.Module, inputs: tuple[Tensor, ...]) -> None:
        # a copy: an in-place ReLU overwrites its input after this hook
        captured.append(inputs[0].detach().reshape(inputs[0].shape[0], -1).clone())

    handles = [m.register_forward_pre_hook(hook) for m in relus]
    try:
        with torch.no_grad(), eval_mode(model):
            run_model(model, x)  # x of another dtype than the model's: a TypeError naming x
    finally:
        for h in handles:
            h.remove()
    return captured


def local_complexity(
    model: torch.nn.Module | Callable[[Tensor], Sequence[Tensor]],
    x: Tensor,
    *,
    radius: float,
    n_directions: int = 10,
    seed: int | torch.Generator | None = 0,
    per_layer: bool = False,
    batch_size: int = 256,
) -> Tensor:
    """Local complexity around each point: neurons whose sign changes over the cross-polytope.

    Args:
        model: an ``nn.Module`` with ``nn.ReLU`` modules (pre-activations captured by
            :func:`relu_preactivations`), or a callable mapping ``[M, *in]`` to the list of
            pre-activations ``[M, U_l]`` of each layer.
        x: points ``[B, *in]``.
        radius: radius ``r`` of the cross-polytope.
        n_directions: number ``k`` of orthonormal directions (``2k`` vertices), at most the
            input dimension.
        seed: seed of the shared frame (fixed by default so that LC is comparable over training).
        per_layer: return ``[B, layers]`` instead of the total ``[B]`` (a bool).
        batch_size: points per forward pass.

    Returns:
        ``[B]`` (or ``[B, layers]``) integer counts as a float tensor.

    Raises:
        ValueError: ``n_directions`` above the input dimension; ``x`` whose shape ``model``
            refuses (torch's shape error chained); NaN or infinite parameters of ``model`` or
            pre-activations (their signs, hence the count, would be meaningless). Other errors
            of ``model`` (e.g. an allocation failure) propagate unchanged.
        TypeError: ``x`` of another dtype than the model's parameters; a callable ``model``
            that does not return a list of tensors.
    """
    x = _check_points("x", x)
    batch_size = check_positive_int("batch_size", batch_size)
    check_type("per_layer", per_layer, bool)
    if isinstance(model, torch.nn.Module):
        module = model
        for name, param in module.named_parameters():
            check_finite(f"model parameter {name!r}", param)
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        if first is not None and first.dtype != x.dtype:
            raise TypeError(
                f"x must have the model's parameter dtype {first.dtype}, got {x.dtype} "
                "(convert x, or the model with .to(dtype))"
            )

        def pre_fn(v: Tensor) -> Sequence[Tensor]:
            return relu_preactivations(module, v)

        fn: Callable[[Tensor], Sequence[Tensor]] = pre_fn
    elif callable(model):
        fn = model
    else:
        raise TypeError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
    verts = cross_polytope(x, radius, n_directions, seed=seed)  # [B, V, *in]
    n_vert = verts.shape[1]
    out = []
    finite = torch.ones((), dtype=torch.bool, device=x.device)  # read once, after the loop
    for start in range(0, x.shape[0], batch_size):
        chunk = verts[start : start + batch_size]
        b = chunk.shape[0]
        with torch.no_grad():
            try:
                pres = fn(chunk.reshape(b * n_vert, *x.shape[1:]))
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as err:  # e.g. "mat1 and mat2 shapes cannot be multiplied"
                # the first chunk ran: not a mismatch of x and the model; other errors (an
                # allocation failure, the model's own) pass through unchanged
                if start or not _is_shape_error(err):
                    raise
                raise ValueError(
                    f"x must fit the model's input (points [B, *in]), got shape "
                    f"{tuple(x.shape)}: the model raised {type(err).__name__}: {err}"
                ) from err
        if isinstance(pres, Tensor) or not all(isinstance(p, Tensor) for p in pres):
            raise TypeError(
                "model must return a list of per-layer pre-activation tensors [M, U_l], got "
                f"{type(pres).__name__}"
            )
        counts = []
        for p in pres:
            finite = finite & torch.isfinite(p).all().to(finite.device)
            s = torch.sign(p.reshape(b, n_vert, -1))
            changed = (s[:, 1:] != s[:, :1]).any(dim=1)
            counts.append(changed.sum(dim=1).to(torch.float64))
        out.append(torch.stack(counts, dim=1))
    if not bool(finite):
        raise ValueError(
            "model gave NaN or infinite pre-activations on the cross-polytopes around x "
            "(non-finite weights, or an overflow?)"
        )
    lc = torch.cat(out, dim=0)
    return lc if per_layer else lc.sum(dim=1)


def decision_boundary_points(
    model: torch.nn.Module,
    x: Tensor,
    n_points: int,
    *,
    iters: int = 30,
    seed: int | torch.Generator | None = None,
) -> Tensor:
    """Points on the model's decision boundary, by bisection between differently classified inputs.

    Pairs ``(a, b)`` of rows of ``x`` with different predicted classes are drawn at random; the
    segment is bisected ``iters`` times on "predicted class equals that of ``a``", so the
    result lies within ``|a - b| / 2^iters`` of a point where the prediction changes.
    ``x``: ``[B, *in]`` -> ``[n_points, *in]`` (a dtype the model cannot take raises
    ``TypeError`` naming ``x``). The model runs in eval mode (flags restored).
    """
    x = _check_points("x", x)
    n = check_positive_int("n_points", n_points)
    iters = check_positive_int("iters", iters)
    gen = torch_generator(seed)
    with torch.no_grad(), eval_mode(model):
        pred = _predict(model, x)
    if int(torch.unique(pred).numel()) < 2:
        raise ValueError("x must contain points of at least two predicted classes")
    ia = torch.randint(0, x.shape[0], (8 * n,), generator=gen)
    ib = torch.randint(0, x.shape[0], (8 * n,), generator=gen)
    keep = pred[ia] != pred[ib]
    ia, ib = ia[keep][:n], ib[keep][:n]
    while ia.numel() < n:  # rare: draw more pairs
        ja = torch.randint(0, x.shape[0], (8 * n,), generator=gen)
        jb = torch.randint(0, x.shape[0], (8 * n,), generator=gen)
        k2 = pred[ja] != pred[jb]
        ia = torch.cat([ia, ja[k2]])[:n]
        ib = torch.cat([ib, jb[k2]])[:n]
    lo, hi = x[ia].clone(), x[ib].clone()
    cls = pred[ia]
    shape = (-1,) + (1,) * (x.ndim - 1)
    with torch.no_grad(), eval_mode(model):
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            same = (_predict(model, mid) == cls).reshape(shape)
            lo = torch.where(same, mid, lo)
            hi = torch.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _predict(model: torch.nn.Module, x: Tensor) -> Tensor:
    """Predicted classes ``[B]`` from ``model(x)``'s logits ``[B, C]``."""
    out = run_model(model, x)
    if not isinstance(out, Tensor) or out.ndim != 2:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"model must return a tensor of logits [B, C], got {got}")
    return out.argmax(dim=1)
