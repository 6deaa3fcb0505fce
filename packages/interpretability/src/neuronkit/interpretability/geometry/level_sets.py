"""Level Set Traversal (LST) and confidence over paths and triangular hulls.

Sriram Balasubramanian, Gaurang Sriramanan, Vinu Sankar Sadasivan & Soheil Feizi,
"Exploring Geometry of Blind Spots in Vision Models" (NeurIPS 2023).

LST walks from a source image ``x_s`` (classified as ``c``) toward a target image ``x_t`` of
another class while staying on the source's *equi-confidence level set*. With
``g = d CE(f(x), c) / dx`` (per example), every iteration

1. projects the direction to the target onto the orthogonal complement of the gradient,
   ``dx_perp = (x_t - x) - <x_t - x, g> / <g, g> * g`` (first-order confidence-preserving);
2. accumulates an adversarial (confidence-restoring) correction
   ``delta = clip(delta + eps / 2 * g, -eps, eps)`` (element-wise, as the authors' code);
3. proposes ``x' = clip(x + eta * dx_perp - delta, low, high)`` and
4. keeps ``x'`` only where the source-class confidence has not dropped by more than
   ``max_drop`` below the starting confidence (and, optionally, stays above an absolute
   ``min_confidence`` floor); elsewhere the example stays put, and its correction keeps
   accumulating, so a later step may pass. The loop stops early only at a fixed point: no
   example accepts and no correction changed, so every later proposal would be the same.
   Each example therefore follows the path it would follow alone (the authors' code stops
   once no example of the batch accepts, which makes a path depend on its batch).

The authors start from the source plus uniform noise of width ``init_noise`` (4/255 there).
:func:`line_confidence` evaluates the source-class confidence along the straight segment
``source -> final`` (the paper's star-like connectivity) and :func:`triangle_confidence` over
the triangular convex hull of the source and two LST outputs (towards two different
targets) on a barycentric grid, with the paper's summary statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import (
    check_finite,
    check_floating,
    check_number,
    check_probability,
    check_seed,
    check_type,
    eval_mode,
    grad_enabled,
)

from ..hooks import call_model, tensor_output

__all__ = [
    "LevelSetTraversal",
    "TriangleConfidence",
    "barycentric_grid",
    "class_confidence",
    "level_set_traversal",
    "line_confidence",
    "orthogonal_component",
    "relative_distance",
    "triangle_confidence",
]


@dataclass(frozen=True)
class LevelSetTraversal:
    """Result of :func:`level_set_traversal` for ``N`` (source, target) pairs.

    Attributes:
        sources: ``[N, *S]`` the source images (a copy of the input, before the start noise).
        targets: ``[N, *S]`` the target images.
        labels: ``[N]`` the source classes whose level set is followed.
        final: ``[N, *S]`` the last accepted iterate of each pair.
        path: ``[N, K, *S]`` iterates recorded every ``record_every`` iterations (the start,
            then every ``record_every``-th iterate, and always the final one).
        path_steps: ``[K]`` iteration index of every recorded iterate (0 = start).
        confidences: ``[N, K]`` source-class confidence of the recorded iterates.
        initial_confidence: ``[N]`` source-class confidence of the clean source.
        accepted: ``[N]`` number of accepted steps per pair.
        n_iterations: iterations actually run (fewer than asked when all pairs stalled).
    """

    sources: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    final: torch.Tensor
    path: torch.Tensor
    path_steps: torch.Tensor
    confidences: torch.Tensor
    initial_confidence: torch.Tensor
    accepted: torch.Tensor
    n_iterations: int

    def relative_distance(self) -> torch.Tensor:
        """``[N]`` ``||final - target||_2 / ||target||_2`` per pair."""
        return relative_distance(self.final, self.targets)

    def min_confidence(self) -> torch.Tensor:
        """``[N]`` lowest source-class confidence over the recorded path."""
        return self.confidences.min(dim=1).values


def _check_model_inputs(model: nn.Module, name: str, x: torch.Tensor) -> None:
    check_type("model", model, nn.Module)
    check_type(name, x, torch.Tensor)
    check_floating(name, x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    check_finite(name, x)


def _check_labels(labels: torch.Tensor, n: int) -> None:
    check_type("labels", labels, torch.Tensor)
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"labels must be an integer tensor of class indices, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape [{n}], got {tuple(labels.shape)}")


def _check_clamp(clamp: tuple[float, float] | None) -> None:
    if clamp is not None and (
        not isinstance(clamp, tuple) or len(clamp) != 2 or not float(clamp[0]) < float(clamp[1])
    ):
        raise ValueError(
            f"clamp must be a (low, high) pair with low < high or None, got {clamp!r:.80}"
        )


def _logits(model: nn.Module, x: torch.Tensor, name: str = "inputs") -> torch.Tensor:
    logits = tensor_output(call_model(model, x, name))
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(
            f"model must return logits [N, C] for inputs [N, ...], got {tuple(logits.shape)}"
        )
    return logits


def _logits_checked(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, name: str = "inputs"
) -> torch.Tensor:
    logits = _logits(model, x, name)
    if int(labels.max()) >= logits.shape[1] or int(labels.min()) < 0:
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1] - 1}] (the model's classes), "
            f"got range [{int(labels.min())}, {int(labels.max())}]"
        )
    return logits


def class_confidence(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 4096
) -> torch.Tensor:
    """Softmax probability of class ``labels[i]`` for ``inputs[i]`` (no gradients; the model
    runs in eval mode, its training flags restored afterwards).

    Args:
        model: classifier returning logits ``[N, C]``.
        inputs: ``[N, *S]`` inputs.
        labels: ``[N]`` classes.
        batch_size: forward passes of at most this many inputs.

    Returns:
        ``[N]`` confidences in ``[0, 1]``.
    """
    _check_model_inputs(model, "inputs", inputs)
    _check_labels(labels, inputs.shape[0])
    check_number("batch_size", batch_size, ge=1, integer=True)
    return _class_confidence(model, inputs, labels, batch_size)


def _class_confidence(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 4096,
    name: str = "inputs",
) -> torch.Tensor:
    """:func:`class_confidence` of checked arguments; a dtype the model refuses is named as
    ``name`` (the caller's argument the inputs come from)."""
    out = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            xb, yb = inputs[start : start + batch_size], labels[start : start + batch_size]
            probs = _logits_checked(model, xb, yb, name).softmax(dim=1)
            out.append(probs.gather(1, yb.long()[:, None])[:, 0])
    return torch.cat(out)


def orthogonal_component(direction: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Per-example component of ``direction`` orthogonal to ``gradient``.

    ``d - <d, g> / <g, g> * g`` over the flattened example dimensions (``d`` itself where
    ``g = 0``), the first-order level-set-preserving step of LST.

    Args:
        direction: ``[N, *S]``.
        gradient: ``[N, *S]`` (same shape).

    Returns:
        ``[N, *S]``, orthogonal to ``gradient`` example by example.
    """
    check_type("direction", direction, torch.Tensor)
    check_type("gradient", gradient, torch.Tensor)
    for name, t in (("direction", direction), ("gradient", gradient)):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {t.dtype}")
    if direction.shape != gradient.shape or direction.ndim < 2:
        raise ValueError(
            f"direction and gradient must share a shape [N, ...], got "
            f"{tuple(direction.shape)} and {tuple(gradient.shape)}"
        )
    d = direction.reshape(direction.shape[0], -1)
    g = gradient.reshape(gradient.shape[0], -1)
    # g scaled to a largest entry of 1 (the projection does not depend on g's size): <g, g>
    # neither underflows for the tiny gradients of a saturated classifier nor overflows
    peak = g.abs().amax(dim=1, keepdim=True)
    u = g / torch.where(peak > 0, peak, 1.0)
    coef = (d * u).sum(dim=1, keepdim=True) / (u * u).sum(dim=1, keepdim=True).clamp_min(1.0)
    return (d - coef * u).reshape(direction.shape)


def relative_distance(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``[N]`` relative L2 distance ``||x_i - r_i|| / ||r_i||`` over the example dimensions.

    Args:
        x: ``[N, *S]``.
        reference: ``[N, *S]`` with non-zero examples.
    """
    check_type("x", x, torch.Tensor)
    check_type("reference", reference, torch.Tensor)
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x must be a real-valued tensor, got dtype {x.dtype}")
    check_floating("reference", reference)
    if x.shape != reference.shape or x.ndim < 2:
        raise ValueError(
            f"x and reference must share a shape [N, ...], got {tuple(x.shape)} and "
            f"{tuple(reference.shape)}"
        )
    num = (x - reference).reshape(x.shape[0], -1).norm(dim=1)
    den = reference.reshape(x.shape[0], -1).norm(dim=1)
    if bool((den == 0).any()):
        raise ValueError("reference must have non-zero examples (relative distance undefined)")
    return num / den


@grad_enabled("level_set_traversal")
def level_set_traversal(
    model: nn.Module,
    sources: torch.Tensor,
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    n_iterations: int = 200,
    step_size: float = 0.05,
    adv_step_size: float = 1e-3,
    max_drop: float = 0.2,
    min_confidence: float = 0.0,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    init_noise: float = 4 / 255,
    record_every: int = 10,
    seed: int = 0,
) -> LevelSetTraversal:
    """Level Set Traversal (Balasubramanian et al., NeurIPS 2023, Algorithm 1), batched.

    Args:
        model: classifier returning logits ``[N, C]``; run in eval mode (training flags
            restored afterwards).
            Gradients are taken with respect to the inputs only; parameters are untouched.
        sources: ``[N, *S]`` source images (not modified).
        targets: ``[N, *S]`` target images, or ``[*S]`` / ``[1, *S]`` for one target shared by
            all sources (not modified).
        labels: ``[N]`` source classes; default: the model's prediction on ``sources``.
        n_iterations: maximal number of LST iterations.
        step_size: ``eta``, fraction of the orthogonal direction to the target per step.
        adv_step_size: ``eps``, bound of the accumulated adversarial correction (0 disables
            it).
        max_drop: a step is rejected when the source-class confidence falls more than this
            below the source's clean confidence (the authors' ``pthresh``).
        min_confidence: also reject steps whose confidence falls below this absolute floor.
        clamp: ``(low, high)`` valid input range enforced on every iterate, or ``None``.
        init_noise: width of the uniform noise added to the source before the first step
            (one ``[N, *S]`` draw: a source's start depends on its place in the batch).
        record_every: record the iterate every this many iterations.
        seed: seeds the start noise (drawn on the CPU: the same on every device).

    Returns:
        :class:`LevelSetTraversal` with the final images and the recorded path.
    """
    _check_model_inputs(model, "sources", sources)
    check_type("targets", targets, torch.Tensor)
    n, shape = sources.shape[0], tuple(sources.shape[1:])
    if tuple(targets.shape) == shape:
        targets = targets[None]
    if targets.ndim == sources.ndim and targets.shape[0] == 1:
        targets = targets.expand(n, *shape)
    if tuple(targets.shape) != tuple(sources.shape):
        raise ValueError(
            f"targets must have shape {[n, *shape]}, {[1, *shape]} or {list(shape)} "
            f"(like sources), got {tuple(targets.shape)}"
        )
    check_floating("targets", targets)
    check_finite("targets", targets)
    check_number("n_iterations", n_iterations, ge=1, integer=True)
    check_number("step_size", step_size, gt=0.0, le=1.0)
    check_number("adv_step_size", adv_step_size, ge=0.0)
    check_number("max_drop", max_drop, gt=0.0, le=1.0)
    check_probability("min_confidence", min_confidence, open_right=True)
    _check_clamp(clamp)
    check_number("init_noise", init_noise, ge=0.0)
    check_number("record_every", record_every, ge=1, integer=True)
    check_seed(seed)

    with eval_mode(model):  # dropout off, BatchNorm statistics frozen; restored after
        src = sources.detach().clone()
        trg = targets.detach().clone().to(src.dtype)
        with torch.no_grad():
            if labels is None:
                labels = _logits(model, src, "sources").argmax(dim=1)
        _check_labels(labels, n)
        labels = labels.detach().long().clone()
        init_conf = _class_confidence(model, src, labels, name="sources")
        floor = torch.clamp(init_conf - max_drop, min=min_confidence)

        # drawn on the CPU and moved: the same seed gives the same start on every device
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.rand(src.shape, generator=gen, dtype=src.dtype).to(src.device) - 0.5
        x = src + init_noise * noise
        if clamp is not None:
            x = x.clamp(*clamp)
        conf = _class_confidence(model, x, labels, name="sources")
        delta = torch.zeros_like(x)
        accepted = torch.zeros(n, dtype=torch.long, device=src.device)
        view = (n,) + (1,) * len(shape)

        path, path_conf, steps = [x.clone()], [conf.clone()], [0]
        done = 0
        for it in range(1, n_iterations + 1):
            xg = x.detach().requires_grad_(True)
            loss = F.cross_entropy(call_model(model, xg, "sources"), labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xg)
            perp = orthogonal_component(trg - x, grad)
            moved = False
            if adv_step_size > 0:
                previous = delta
                delta = (delta + 0.5 * adv_step_size * grad).clamp(-adv_step_size, adv_step_size)
                moved = not torch.equal(delta, previous)
            proposal = x + step_size * perp - delta
            if clamp is not None:
                proposal = proposal.clamp(*clamp)
            new_conf = _class_confidence(model, proposal, labels, name="sources")
            ok = new_conf >= floor
            done = it
            if not (bool(ok.any()) or moved):
                break  # a fixed point: x and delta stay, so every later step is rejected too
            x = torch.where(ok.view(view), proposal, x)
            conf = torch.where(ok, new_conf, conf)
            accepted += ok.long()
            if it % record_every == 0:
                path.append(x.clone())
                path_conf.append(conf.clone())
                steps.append(it)
        if steps[-1] != done:
            path.append(x.clone())
            path_conf.append(conf.clone())
            steps.append(done)
        return LevelSetTraversal(
            sources=src,
            targets=trg,
            labels=labels,
            final=x.detach(),
            path=torch.stack(path, dim=1),
            path_steps=torch.tensor(steps),
            confidences=torch.stack(path_conf, dim=1),
            initial_confidence=init_conf,
            accepted=accepted,
            n_iterations=done,
        )


def line_confidence(
    model: nn.Module,
    start: torch.Tensor,
    end: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_points: int = 21,
) -> torch.Tensor:
    """Class confidence along straight segments ``(1 - t) * start + t * end``.

    Args:
        model: classifier returning logits ``[N, C]``.
        start: ``[N, *S]`` segment starts (e.g. the sources).
        end: ``[N, *S]`` segment ends (e.g. the LST outputs), taken in ``start``'s dtype.
        labels: ``[N]`` classes whose confidence is read.
        n_points: points ``t = linspace(0, 1, n_points)``.

    Returns:
        ``[N, n_points]`` confidences.
    """
    _check_model_inputs(model, "start", start)
    _check_model_inputs(model, "end", end)
    if start.shape != end.shape:
        raise ValueError(
            f"end must have the shape of start {tuple(start.shape)}, got {tuple(end.shape)}"
        )
    _check_labels(labels, start.shape[0])
    check_number("n_points", n_points, ge=2, integer=True)
    end = end.to(start.dtype)  # the path in start's dtype (as LST's targets in the sources')
    t = torch.linspace(0.0, 1.0, n_points, dtype=start.dtype, device=start.device)
    tt = t.view(1, n_points, *([1] * (start.ndim - 1)))
    pts = (1 - tt) * start[:, None] + tt * end[:, None]
    flat = pts.reshape(-1, *start.shape[1:])
    conf = _class_confidence(model, flat, labels.repeat_interleave(n_points), name="start")
    return conf.view(start.shape[0], n_points)


def barycentric_grid(n_interps: int) -> torch.Tensor:
    """Barycentric weights ``(1 - a - b, a, b)``, ``a, b`` in ``{0, 1/n, ..., 1}``, ``a + b <= 1``.

    Returns:
        ``[P, 3]`` float64 weights, ``P = (n + 1)(n + 2) / 2``; the first row is the first
        vertex.
    """
    check_number("n_interps", n_interps, ge=1, integer=True)
    rows = [
        (1.0 - (i + j) / n_interps, i / n_interps, j / n_interps)
        for i in range(n_interps + 1)
        for j in range(n_interps + 1 - i)
    ]
    return torch.tensor(rows, dtype=torch.float64).clamp_min(0.0)


@dataclass(frozen=True)
class TriangleConfidence:
    """Confidence over triangular hulls ``conv(x0, x1, x2)`` (the paper's Table 2 statistics).

    Attributes:
        weights: ``[P, 3]`` barycentric weights of the grid points.
        confidences: ``[N, P]`` class confidence at every grid point.
        vertex_confidence: ``[N]`` confidence at ``x0`` (the source).
        mean: ``[N]`` mean confidence over the hull grid.
        edge_mean: ``[N]`` mean confidence over the two edges from ``x0`` (to ``x1``, ``x2``).
        edge_min: ``[N]`` lowest confidence on those edges minus ``vertex_confidence``.
    """

    weights: torch.Tensor
    confidences: torch.Tensor
    vertex_confidence: torch.Tensor
    mean: torch.Tensor
    edge_mean: torch.Tensor
    edge_min: torch.Tensor

    def fraction_above(self, margin: float = 0.0) -> torch.Tensor:
        """``[N]`` fraction of grid points with confidence ``> vertex_confidence - margin``."""
        check_number("margin", margin, ge=0.0)
        return (self.confidences > (self.vertex_confidence - margin)[:, None]).double().mean(1)


def triangle_confidence(
    model: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    x2: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_interps: int = 10,
) -> TriangleConfidence:
    """Class confidence on a barycentric grid over the triangles ``conv(x0, x1, x2)``.

    In the paper ``x0`` is the source and ``x1``, ``x2`` are LST outputs for two different
    targets.

    Args:
        model: classifier returning logits ``[N, C]``.
        x0, x1, x2: ``[N, *S]`` vertices (``x1``, ``x2`` taken in ``x0``'s dtype).
        labels: ``[N]`` classes whose confidence is read.
        n_interps: grid resolution per edge (the authors use 10).
    """
    for name, v in (("x0", x0), ("x1", x1), ("x2", x2)):
        _check_model_inputs(model, name, v)
        if v.shape != x0.shape:
            raise ValueError(
                f"{name} must have the shape of x0 {tuple(x0.shape)}, got {tuple(v.shape)}"
            )
    _check_labels(labels, x0.shape[0])
    w = barycentric_grid(n_interps)
    wt = w.to(dtype=x0.dtype, device=x0.device)
    verts = torch.stack([x0, x1.to(x0.dtype), x2.to(x0.dtype)], dim=1)  # [N, 3, *S] as x0
    pts = torch.einsum("pk,nk...->np...", wt, verts)
    n, p = x0.shape[0], w.shape[0]
    flat = pts.reshape(n * p, *x0.shape[1:])
    conf = _class_confidence(model, flat, labels.repeat_interleave(p), name="x0")
    conf = conf.view(n, p)
    vertex = conf[:, 0]
    edges = (w[:, 1] == 0) | (w[:, 2] == 0)
    edge_conf = conf[:, edges.to(conf.device)]
    return TriangleConfidence(
        weights=w,
        confidences=conf,
        vertex_confidence=vertex,
        mean=conf.mean(dim=1),
        edge_mean=edge_conf.mean(dim=1),
        edge_min=edge_conf.min(dim=1).values - vertex,
    )
