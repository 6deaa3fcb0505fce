"""Influence functions: training-data influence through the inverse Hessian.

Koh & Liang, "Understanding Black-box Predictions via Influence Functions" (ICML 2017). At the
trained parameters, removing a training example ``z`` moves them by about
``H^{-1} grad l(z)``, with ``H`` the Hessian of the summed training loss, so the test loss of
``z'`` rises by about::

    influence(z, z') = grad l(z')^T H^{-1} grad l(z)

Positive scores mark proponents (removing them would hurt the test example), negative ones
opponents, as in :mod:`.tracin`; the paper's ``I_up,loss`` is the same quantity with the
opposite sign and the mean loss's Hessian. ``H`` is formed explicitly over the chosen
parameters (``layers=``; the paper's experiments use the last layer or a small convex model),
damped by ``damping * I``, and inverted on its eigenvectors with eigenvalues above ``tol``
(``rank`` keeps the largest ones only): where the loss is not convex, the directions of
negative curvature are left out.

Numbers equal Captum's ``NaiveInfluenceFunction`` (its ``hessian_reg``, ``hessian_inverse_tol``
and ``projection_dim`` are ``damping``, ``tol`` and ``rank``; Captum keeps 50 directions by
default, ``rank=None`` keeps all of them). The Hessian is the Jacobian of the gradient, one
vectorized reverse pass per chunk of its rows, and each example's gradient one vectorized pass
per batch. For more parameters than a Hessian can hold, ``method="arnoldi"`` (Schioppa,
Zablotskaia, Vilar & Sokolov, "Scaling Up Influence Functions", AAAI 2022; Captum's
``ArnoldiInfluenceFunction``, equal numbers) finds the largest eigenvalues from Hessian-vector
products alone, and ``method="lissa"`` (Agarwal, Bullins & Hazan's stochastic estimator, the one
Koh & Liang use) solves ``(H + damping I) s = grad l(z')`` by a series of minibatch
Hessian-vector products, with no eigendecomposition and no truncation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import jacrev

from neuronkit.common import check_choice, check_number, check_seed, eval_mode
from neuronkit.common.progress import progress

from .tracin import LossFn, _ExampleGradients

__all__ = ["hessian_influence", "hessian_self_influence"]

#: the largest number of parameters whose Hessian is formed (``P x P`` entries)
MAX_PARAMETERS = 20_000
#: how ``H^{-1}`` is applied: the formed Hessian, Arnoldi's Krylov subspace, LiSSA's series
METHODS = ("exact", "arnoldi", "lissa")
_SETTINGS = {"method", "damping", "tol", "rank", "seed", "arnoldi_dim", "arnoldi_tol"}
_SETTINGS |= {"lissa_depth", "lissa_repeats", "lissa_scale", "lissa_batch_size"}


def hessian_influence(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: LossFn | None = None,
    layers: Sequence[str] | None = None,
    hessian_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    damping: float = 1e-6,
    tol: float = 1e-5,
    rank: int | None = None,
    method: str = "exact",
    arnoldi_dim: int = 200,
    arnoldi_tol: float = 1e-1,
    lissa_depth: int = 1000,
    lissa_repeats: int = 1,
    lissa_scale: float | None = None,
    lissa_batch_size: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    vectorize: bool = True,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Influence-function scores of every training example on every test example.

    Args:
        model: the trained network, at the parameters to explain; runs in eval mode (flags
            restored); never modified.
        train: ``(inputs [N, ...], targets [N, ...])``.
        test: ``(inputs [M, ...], targets [M, ...])``.
        loss_fn: ``loss_fn(outputs, targets)`` returning per-example losses ``[n]``; default
            cross-entropy on logits and class indices.
        layers: names of modules whose parameters the influence covers (default: every
            parameter that requires gradients).
        hessian_data: the examples whose summed loss's Hessian is inverted (default:
            ``train``).
        damping: added to the Hessian's diagonal.
        tol: eigenvalues of the damped Hessian at or below it are left out.
        rank: keep only the ``rank`` largest eigenvalues (``None``: all above ``tol``).
        method: ``"exact"`` forms the Hessian (at most :data:`MAX_PARAMETERS` parameters);
            ``"arnoldi"`` (Schioppa et al., "Scaling Up Influence Functions", AAAI 2022;
            Captum's ``ArnoldiInfluenceFunction``) needs only Hessian-vector products: the
            eigenvectors are those of the Hessian restricted to ``arnoldi_dim`` Krylov
            directions from a random start (``seed``), enough for its largest eigenvalues.
            ``"lissa"`` (Agarwal et al., "Second-Order Stochastic Optimization for Machine
            Learning in Linear Time", JMLR 2017; Koh & Liang's estimator) solves
            ``(H + damping I) s = grad l(z')`` for each test example by the series
            ``h <- v + h - (H_B h + damping h) / scale`` over ``lissa_depth`` minibatch
            Hessians ``H_B`` (scaled to the whole data), ``s = h / scale``, averaged over
            ``lissa_repeats`` runs; ``tol`` and ``rank`` do not apply. ``H + damping I`` must
            be positive definite (a convex loss, or damping above its most negative
            eigenvalue).
        arnoldi_dim, arnoldi_tol, seed: the Arnoldi iteration's steps, the norm below which a
            new direction ends it early, and the start vector's seed (and LiSSA's draws).
        lissa_depth, lissa_repeats: the series' terms and independent runs.
        lissa_scale: must exceed half the damped Hessian's largest eigenvalue for the series
            to converge (default: 1.1 times that eigenvalue, from 20 power iterations).
        lissa_batch_size: examples per minibatch Hessian (default ``batch_size``; all of
            ``hessian_data`` makes the series deterministic).
        batch_size: examples per vectorized pass, and Hessian rows per reverse pass.
        vectorize: ``False`` takes the examples' gradients one at a time.
        show_progress: a bar over the Hessian's batches, Arnoldi's steps or LiSSA's terms
            (``None``: only on a terminal).

    Returns:
        ``[M, N]`` scores: entry ``(j, i)`` is the predicted rise of test example ``j``'s loss
        when training example ``i`` is removed.
    """
    grads = _ExampleGradients(model, loss_fn, layers, batch_size, vectorize)
    x, y = grads.data("train", train)
    xt, yt = grads.data("test", test)
    settings = {k: v for k, v in locals().items() if k in _SETTINGS}
    if method == "lissa":
        state, data = _lissa_setup(grads, hessian_data, (x, y), settings)
        test_side = _lissa(
            grads, state, data, grads.all_gradients(state, xt, yt), settings, show_progress
        )
        return torch.cat([test_side @ grads.gradients(state, *b).T for b in grads.batches(x, y)], 1)
    state, root = _inverse_root(grads, hessian_data, (x, y), settings, show_progress)
    test_side = torch.cat(list(_embedded(grads, state, root, xt, yt)))
    return torch.cat([test_side @ part.T for part in _embedded(grads, state, root, x, y)], 1)


def hessian_self_influence(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: LossFn | None = None,
    layers: Sequence[str] | None = None,
    hessian_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    damping: float = 1e-6,
    tol: float = 1e-5,
    rank: int | None = None,
    method: str = "exact",
    arnoldi_dim: int = 200,
    arnoldi_tol: float = 1e-1,
    lissa_depth: int = 1000,
    lissa_repeats: int = 1,
    lissa_scale: float | None = None,
    lissa_batch_size: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    vectorize: bool = True,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Self-influence ``grad l(z)^T H^{-1} grad l(z)`` of each example (the Hessian of
    ``hessian_data``'s loss, default ``data``'s). Arguments as :func:`hessian_influence`.

    Returns:
        ``[N]`` scores; the largest flag examples to inspect first.
    """
    grads = _ExampleGradients(model, loss_fn, layers, batch_size, vectorize)
    x, y = grads.data("data", data)
    settings = {k: v for k, v in locals().items() if k in _SETTINGS}
    if method == "lissa":  # one solve per example
        state, hessian_xy = _lissa_setup(grads, hessian_data, (x, y), settings)
        g = grads.all_gradients(state, x, y)
        return (_lissa(grads, state, hessian_xy, g, settings, show_progress) * g).sum(1)
    state, root = _inverse_root(grads, hessian_data, (x, y), settings, show_progress)
    return torch.cat([part.square().sum(1) for part in _embedded(grads, state, root, x, y)])


def _state(grads: _ExampleGradients) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in grads.model.state_dict(keep_vars=True).items()}


def _flat_loss(
    grads: _ExampleGradients, state: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, Any]:
    """The covered parameters as one vector ``[P]`` and the summed loss of a batch as a
    function of such a vector, ``summed_loss(v [P], x, y)``."""
    params, rest = grads.split(state)
    shapes = [params[name].shape for name in grads.names]
    sizes = [p.numel() for p in params.values()]

    def summed_loss(v: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        pieces = v.split(sizes)
        unflat = {n: t.view(s) for n, t, s in zip(grads.names, pieces, shapes, strict=True)}
        return grads.loss(unflat, rest, xb, yb)

    return torch.cat([p.reshape(-1) for p in params.values()]), summed_loss


def _hessian_products(grads: _ExampleGradients, flat: torch.Tensor, summed_loss: Any) -> Any:
    """``hvp(rows [m, P], x, y) -> [m, P]``: the Hessian of ``summed_loss`` at ``flat`` over a
    batch times each row, by one gradient with its graph and one batched backward through it
    (4x faster than ``torch.func``'s forward-over-reverse for LiSSA's batches, 10-20% for one
    vector over 256 digits: measured)."""

    def hvp(rows: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        f = flat.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(summed_loss(f, xb, yb), f, create_graph=True)
            if not g.requires_grad:  # the gradient is constant: a zero Hessian
                return torch.zeros_like(rows)
            if grads.vectorize and len(rows) > 1:
                return torch.autograd.grad(g, f, rows, is_grads_batched=True)[0]
            return torch.stack([torch.autograd.grad(g, f, r, retain_graph=True)[0] for r in rows])

    return hvp


def _full_product(hvp: Any, batches: Any, v: torch.Tensor) -> torch.Tensor:
    """The Hessian of the summed loss of every batch times ``v [P]``."""
    return sum(hvp(v[None], xb, yb)[0] for xb, yb in batches)


def _lissa_setup(
    grads: _ExampleGradients,
    hessian_data: Any,
    default: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Checked LiSSA settings; the model's state and the Hessian's examples."""
    check_number("damping", settings["damping"], ge=0)
    check_number("lissa_depth", settings["lissa_depth"], ge=1, integer=True)
    check_number("lissa_repeats", settings["lissa_repeats"], ge=1, integer=True)
    if settings["lissa_scale"] is not None:
        check_number("lissa_scale", settings["lissa_scale"], gt=0)
    if settings["lissa_batch_size"] is not None:
        check_number("lissa_batch_size", settings["lissa_batch_size"], ge=1, integer=True)
    check_seed(settings["seed"])
    data = default if hessian_data is None else grads.data("hessian_data", hessian_data)
    return _state(grads), data


def _lissa(
    grads: _ExampleGradients,
    state: dict[str, torch.Tensor],
    data: tuple[torch.Tensor, torch.Tensor],
    v: torch.Tensor,
    settings: dict[str, Any],
    show_progress: bool | None,
) -> torch.Tensor:
    """LiSSA's ``(H + damping I)^{-1} v`` for the rows of ``v [M, P]``, ``H`` the Hessian of
    the summed loss of ``data``: ``h <- v + h - (H_B h + damping h) / scale`` with minibatch
    Hessians ``H_B`` scaled by ``N / |B|``, then ``h / scale``, averaged over repeats."""
    x, y = data
    n, damping = len(x), float(settings["damping"])
    batch = min(n, int(settings["lissa_batch_size"] or grads.batch_size))
    flat, summed_loss = _flat_loss(grads, state)
    hvp = _hessian_products(grads, flat, summed_loss)
    gen = torch.Generator().manual_seed(int(settings["seed"]))
    with eval_mode(grads.model):
        scale = settings["lissa_scale"]
        if scale is None:  # 1.1 x the damped Hessian's largest eigenvalue, by power iteration
            u = torch.randn(len(flat), generator=gen, dtype=flat.dtype).to(flat.device)
            top = 0.0
            for _ in range(20):
                u = u / u.norm()
                w = _full_product(hvp, grads.batches(x, y), u) + damping * u
                top = float(u @ w)
                u = w
            scale = 1.1 * top
        if not scale > 0:
            raise ValueError("the damped Hessian has no positive curvature: raise damping")
        total = torch.zeros_like(v)
        for _ in range(int(settings["lissa_repeats"])):
            h = v.clone()
            steps = range(int(settings["lissa_depth"]))
            for _ in progress(steps, show_progress=show_progress, desc="lissa"):
                pick = torch.randperm(n, generator=gen)[:batch].to(x.device)
                h = v + h - (hvp(h, x[pick], y[pick]) * (n / batch) + damping * h) / scale
                if not torch.isfinite(h).all():
                    raise ValueError(
                        f"LiSSA diverged (lissa_scale={scale:.4g}): the damped Hessian must be "
                        "positive definite (raise damping) and lissa_scale above half its "
                        "largest eigenvalue"
                    )
            total += h / scale
    return total / int(settings["lissa_repeats"])


def _embedded(
    grads: _ExampleGradients,
    state: dict[str, torch.Tensor],
    root: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> Iterator[torch.Tensor]:
    """Each batch's gradients times ``R``, ``[n, r]``: their dot products are the scores."""
    for batch in grads.batches(x, y):
        yield grads.gradients(state, *batch) @ root


def _inverse_root(
    grads: _ExampleGradients,
    hessian_data: Any,
    default: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
    show_progress: bool | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's state and ``R [P, r]`` with ``R R^T`` the inverse of the damped Hessian
    on its eigenvectors of eigenvalue above ``tol`` (the ``rank`` largest): of the Hessian
    itself (``"exact"``) or of its restriction to a Krylov subspace (``"arnoldi"``)."""
    method, damping, tol, rank = (settings[k] for k in ("method", "damping", "tol", "rank"))
    check_choice("method", method, METHODS)
    check_number("damping", damping, ge=0)
    check_number("tol", tol, ge=0)
    if rank is not None:
        check_number("rank", rank, ge=1, integer=True)
    check_number("arnoldi_dim", settings["arnoldi_dim"], ge=2, integer=True)
    check_number("arnoldi_tol", settings["arnoldi_tol"], ge=0)
    check_seed(settings["seed"])
    x, y = default if hessian_data is None else grads.data("hessian_data", hessian_data)
    state = _state(grads)
    flat, summed_loss = _flat_loss(grads, state)
    total = len(flat)
    if method == "exact" and total > MAX_PARAMETERS:
        raise ValueError(
            f"the influence covers {total} parameters, more than the {MAX_PARAMETERS} whose "
            "Hessian is formed: choose fewer with layers= (e.g. the last layer), or "
            'method="arnoldi" or "lissa"'
        )
    params = grads.split(state)[0]
    batches = grads.batches(x, y)
    with eval_mode(grads.model):
        if method == "exact":
            hessian = torch.zeros(total, total, dtype=flat.dtype, device=flat.device)
            jacobian_of_gradient = jacrev(jacrev(summed_loss), chunk_size=grads.batch_size)
            for xb, yb in progress(batches, show_progress=show_progress, desc="hessian"):
                hessian += jacobian_of_gradient(flat, xb, yb)
            basis = None
        else:
            hvp = _hessian_products(grads, flat, summed_loss)
            gen = torch.Generator(device=flat.device).manual_seed(settings["seed"])
            start = torch.cat(
                [
                    torch.randn(p.shape, generator=gen, dtype=p.dtype, device=p.device).reshape(-1)
                    for p in params.values()
                ]
            )
            basis, hessian = _arnoldi(
                lambda v: _full_product(hvp, batches, v),
                start,
                settings["arnoldi_dim"],
                settings["arnoldi_tol"],
                show_progress,
            )
    eye = torch.eye(len(hessian), dtype=flat.dtype, device=flat.device)
    values, vectors = torch.linalg.eigh((hessian + hessian.T) / 2 + damping * eye)
    keep = values > tol
    values, vectors = values[keep], vectors[:, keep]
    if rank is not None:
        values, vectors = values[-int(rank) :], vectors[:, -int(rank) :]
    if len(values) == 0:
        raise ValueError(
            f"the damped Hessian has no eigenvalue above tol={tol}: raise damping or lower tol"
        )
    if basis is not None:
        vectors = basis.T @ vectors  # Ritz vectors in the parameters' coordinates
    return state, vectors * values.rsqrt()


def _arnoldi(
    hvp: Any, start: torch.Tensor, steps: int, tol: float, show_progress: bool | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Arnoldi iteration (Schioppa et al., "Scaling Up Influence Functions", AAAI 2022):
    an orthonormal basis ``Q [k, P]`` of the Krylov subspace of ``start`` under the Hessian
    (``hvp``: Hessian-vector products) and the Hessian's restriction ``Q H Q^T [k, k]``; it stops
    early when the next direction's norm falls below ``tol``. Captum's indexing: the last
    basis vector and row are dropped."""
    basis = [start / start.norm()]
    restricted = torch.zeros(steps + 1, steps, dtype=start.dtype, device=start.device)
    k = 0
    for k in progress(range(1, steps + 1), show_progress=show_progress, desc="arnoldi"):
        v = hvp(basis[k - 1])
        for i in range(k):
            restricted[i, k - 1] = basis[i] @ v
            v = v - restricted[i, k - 1] * basis[i]
        restricted[k, k - 1] = v.norm()
        if restricted[k, k - 1] < tol or restricted[k, k - 1] == 0:  # 0: an invariant subspace
            break
        basis.append(v / restricted[k, k - 1])
    kept = k - 1
    if kept < 1:
        raise ValueError(
            f"the Arnoldi iteration stopped after one step (next direction's norm "
            f"{float(restricted[1, 0]):.3g}, arnoldi_tol={tol}): lower arnoldi_tol, or use "
            'method="exact" (a Hessian that is zero or a multiple of the identity spans one '
            "direction)"
        )
    return torch.stack(basis[:kept]), restricted[:kept, :kept]
