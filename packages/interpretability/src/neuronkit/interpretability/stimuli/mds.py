"""Most Discriminative Stimuli (MDS): functional cell-type clustering by stimulus optimization.

Burg, Zenkel, Vystrčilová, Oesterle, Höfling, Willeke, Lause, Müller, Fahey, Franke, Berens,
Ecker, "Most discriminative stimuli for functional cell type clustering", ICLR 2024.

The algorithm alternates, like expectation-maximization / k-means, over any differentiable
model ``f(stimulus) -> responses [neurons]``:

1. **Stimulus step.** For every cluster ``k`` optimize one norm-constrained stimulus ``x_k``
   (optionally with a Laplace smoothness penalty) to maximize the contrastive objective (the
   paper's Eq. 1)

   ``J_k(x) = m_k(x) / t - log sum_j exp(m_j(x) / t) + log K``

   where ``m_j(x)`` is cluster ``j``'s mean response to ``x`` after per-neuron normalization
   (subtract the mean, divide by the standard deviation of the neuron's responses to random
   stimuli of the same norm) and ``t`` is a temperature: the log-softmax probability of the
   on-cluster among all clusters, shifted so that ``0`` means "no better than uniform".
2. **Assignment step.** Each neuron moves to the cluster whose MDS drives it most (argmax of
   its responses over the ``K`` stimuli).
3. Empty clusters are removed; iterate until no neuron changes cluster (or ``max_iter``).
4. Optionally (``split=True``) try to split each cluster in two with a local MDS clustering of
   its members, keeping a split only if the mean objective over all clusters improves.

Stimuli of all clusters are optimized together as one batch: the objectives of different
clusters depend on different stimuli, so the summed loss gives every stimulus exactly its own
gradient (Adam is element-wise), provided the model treats batch items independently.

Every function here runs the model in eval mode (each submodule's training flag is restored
afterwards, also on an error), so BatchNorm uses, and keeps, its running statistics and
dropout is off, and gives it a copy of its input (a model may modify its input in place).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuronkit.common import (
    EstimatorParams,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    eval_mode,
    grad_enabled,
    integer_dtype,
    parameter_dtype,
    progress,
)

from ..hooks import call_model, model_device, tensor_output

__all__ = [
    "MDSClustering",
    "MDSResult",
    "assign_to_stimuli",
    "cluster_mean_responses",
    "contrastive_objective",
    "laplace_penalty",
    "mds_clustering",
    "optimize_stimuli",
    "project_to_norm",
    "response_statistics",
]

Model = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class MDSResult:
    """Output of :func:`mds_clustering`.

    Attributes:
        labels: ``[N]`` cluster of each neuron, consecutive integers ``0..K-1``.
        stimuli: ``[K, *stimulus_shape]`` the most discriminative stimulus of each cluster.
        objectives: ``[K]`` contrastive objective ``J_k`` of each final stimulus.
        history: one dict per iteration: ``iteration``, ``n_clusters`` (after the step),
            ``n_changed`` (neurons that moved), ``n_removed`` (empty clusters removed),
            ``objective`` (mean ``J`` before reassignment), ``phase`` (``"em"`` / ``"split"``).
        converged: whether an EM run ended because no neuron changed cluster.
        mean: ``[N]`` per-neuron response mean used for normalization (``None`` with
            ``normalize=False``).
        std: ``[N]`` per-neuron response standard deviation used for normalization (``None``
            with ``normalize=False``).
    """

    labels: torch.Tensor
    stimuli: torch.Tensor
    objectives: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    converged: bool = False
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    @property
    def n_clusters(self) -> int:
        """Final number of clusters ``K``."""
        return int(self.stimuli.shape[0])


def contrastive_objective(
    cluster_means: torch.Tensor, on_cluster: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """The paper's contrastive objective (Eq. 1) of each stimulus for its on-cluster.

    ``J = m_on / t - logsumexp(m / t) + log K``: the log-softmax over clusters of the mean
    responses, plus ``log K`` (``J = 0`` when all clusters respond equally, ``J <= log K``).

    Args:
        cluster_means: ``[B, K]`` mean (normalized) response of each of ``K`` clusters to each
            of ``B`` stimuli.
        on_cluster: ``[B]`` integer index of the cluster each stimulus should drive.
        temperature: softmax temperature ``t > 0``.

    Returns:
        ``[B]`` objective values (differentiable).
    """
    check_type("cluster_means", cluster_means, torch.Tensor)
    check_type("on_cluster", on_cluster, torch.Tensor)
    if cluster_means.ndim != 2 or cluster_means.shape[1] < 1:
        raise ValueError(f"cluster_means must be [B, K], got shape {tuple(cluster_means.shape)}")
    if cluster_means.dtype == torch.bool or cluster_means.is_complex():
        raise TypeError(
            f"cluster_means must be a real-valued tensor, got dtype {cluster_means.dtype}"
        )
    if on_cluster.shape != (cluster_means.shape[0],) or not integer_dtype(on_cluster):
        raise ValueError(
            f"on_cluster must be an integer tensor of shape ({cluster_means.shape[0]},), "
            f"got shape {tuple(on_cluster.shape)} and dtype {on_cluster.dtype}"
        )
    k = cluster_means.shape[1]
    if ((on_cluster < 0) | (on_cluster >= k)).any():
        raise ValueError(f"on_cluster must lie in [0, {k - 1}], got {on_cluster.tolist()}")
    check_number("temperature", temperature, gt=0)
    scaled = cluster_means / temperature
    on = scaled.gather(1, on_cluster.to(scaled.device).long()[:, None])[:, 0]
    return on - torch.logsumexp(scaled, dim=1) + math.log(k)


def cluster_mean_responses(
    responses: torch.Tensor, labels: torch.Tensor, n_clusters: int | None = None
) -> torch.Tensor:
    """Mean response of each cluster: ``[B, N]`` responses, ``[N]`` labels -> ``[B, K]``.

    Every cluster ``0..K-1`` must have at least one neuron (``K`` defaults to
    ``labels.max() + 1``).
    """
    check_type("responses", responses, torch.Tensor)
    labels = _check_labels("labels", labels, responses.shape[-1] if responses.ndim == 2 else -1)
    if responses.ndim != 2:
        raise ValueError(f"responses must be [B, N], got shape {tuple(responses.shape)}")
    check_floating("responses", responses)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    check_number("n_clusters", k, ge=1, integer=True)
    onehot = torch.zeros(responses.shape[1], k, dtype=responses.dtype, device=responses.device)
    try:  # checked on the failure path only: this runs at every step of optimize_stimuli
        onehot[
            torch.arange(responses.shape[1], device=responses.device), labels.to(responses.device)
        ] = 1.0
    except IndexError:
        raise ValueError(
            f"labels must be < n_clusters ({k}), got max {int(labels.max())}"
        ) from None
    counts = onehot.sum(0)
    if (counts == 0).any():
        raise ValueError(
            f"labels must give every cluster 0..{k - 1} at least one neuron, empty: "
            f"{torch.nonzero(counts == 0)[:, 0].tolist()}"
        )
    return responses @ (onehot / counts)


def project_to_norm(x: torch.Tensor, norm: float) -> torch.Tensor:
    """Rescale every stimulus of ``x [B, *shape]`` to L2 norm ``norm`` (returns a new tensor)."""
    check_type("x", x, torch.Tensor)
    if x.ndim < 2:
        raise ValueError(f"x must be [B, *stimulus_shape], got shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x must be a real-valued tensor, got dtype {x.dtype}")
    check_number("norm", norm, gt=0)
    flat = x.reshape(x.shape[0], -1)
    peak = flat.abs().amax(dim=1, keepdim=True)  # the norm of flat / peak neither under- nor
    flat = flat / torch.where(peak > 0, peak, 1.0)  # overflows (an all-zero stimulus stays 0)
    return (flat * (norm / flat.norm(dim=1, keepdim=True).clamp_min(1.0))).reshape(x.shape)


def laplace_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean squared discrete Laplacian of stimuli ``x [B, L]`` or ``[B, H, W]`` (smoothness).

    Returns a scalar; for other ranks the last two axes are treated as an image.
    """
    check_type("x", x, torch.Tensor)
    if x.ndim < 2:
        raise ValueError(f"x must be [B, L] or [B, ..., H, W], got shape {tuple(x.shape)}")
    check_floating("x", x)
    if x.ndim == 2:
        if x.shape[1] < 3:
            return x.new_zeros(())
        lap = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
        return (lap**2).mean()
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x.new_zeros(())
    c = x[..., 1:-1, 1:-1]
    lap = x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * c
    return (lap**2).mean()


@torch.no_grad()
def response_statistics(
    model: Model,
    stimulus_shape: tuple[int, ...],
    *,
    norm: float,
    n_samples: int = 256,
    seed: int | torch.Generator = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron mean and standard deviation of responses to random stimuli of norm ``norm``.

    The paper normalizes each neuron's predicted response by its statistics over the data
    (``subt_pred`` / ``div_pred`` in the authors' code); here the reference set is white
    Gaussian noise projected to the stimulus norm.

    Returns:
        ``(mean [N], std [N])`` (``std`` floored at ``1e-6``).
    """
    shape = _check_shape(stimulus_shape)
    _check_model(model)
    check_number("norm", norm, gt=0)
    check_number("n_samples", n_samples, ge=2, integer=True)
    gen = _generator(seed)
    x = project_to_norm(_randn((n_samples, *shape), gen, model), norm)
    r = _responses(model, x)
    return r.mean(0), r.std(0).clamp_min(1e-6)


def optimize_stimuli(
    model: Model,
    labels: torch.Tensor,
    stimulus_shape: tuple[int, ...],
    *,
    init: torch.Tensor | None = None,
    norm: float = 1.0,
    temperature: float = 1.0,
    n_steps: int = 100,
    lr: float = 0.05,
    smoothness: float = 0.0,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    seed: int | torch.Generator = 0,
    show_progress: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimize one most discriminative stimulus per cluster (the stimulus step).

    Maximizes ``sum_k J_k(x_k) - smoothness * laplace_penalty(x)`` with Adam on the gradient's
    component tangent to the norm sphere (the radial component is removed, see
    :func:`_tangent`), projecting every stimulus back to L2 norm ``norm`` after each step.

    Args:
        model: differentiable ``f(x [B, *stimulus_shape]) -> [B, N]``.
        labels: ``[N]`` clusters ``0..K-1`` (all non-empty).
        stimulus_shape: shape of one stimulus.
        init: optional ``[K, *stimulus_shape]`` starting stimuli (random noise otherwise).
        norm: L2 norm of every stimulus.
        temperature: temperature of the contrastive objective.
        n_steps: Adam steps.
        lr: Adam learning rate.
        smoothness: weight of the Laplace smoothness penalty (0 disables it).
        mean, std: ``[N]`` normalization of responses (none when omitted).
        seed: seed or ``torch.Generator`` for the random initial stimuli (drawn in float32
            on the generator's device, then moved to the model's: that of an ``nn.Module``'s
            first parameter or buffer, the CPU for a plain function). Stimuli are optimized in
            the model's parameter dtype (float32 for half precision or a plain function).
        show_progress: a bar over the steps (``None``: only on a terminal).

    Returns:
        ``(stimuli [K, *stimulus_shape], objectives [K])`` (detached).
    """
    shape = _check_shape(stimulus_shape)
    _check_model(model)
    labels = _check_labels("labels", labels, -1)
    k = int(labels.max()) + 1
    check_number("norm", norm, gt=0)
    check_number("temperature", temperature, gt=0)
    check_number("n_steps", n_steps, ge=0, integer=True)
    check_number("lr", lr, gt=0)
    check_number("smoothness", smoothness, ge=0)
    _check_statistic("mean", mean, labels.shape[0])
    _check_statistic("std", std, labels.shape[0], positive=True)
    if init is None:
        start = _randn((k, *shape), _generator(seed), model)
    else:
        check_type("init", init, torch.Tensor)
        if tuple(init.shape) != (k, *shape):
            raise ValueError(f"init must have shape {(k, *shape)}, got {tuple(init.shape)}")
        if init.dtype == torch.bool or init.is_complex():
            raise TypeError(f"init must be a real-valued tensor, got dtype {init.dtype}")
        if not torch.isfinite(init).all():
            raise ValueError("init must be finite, got NaN or infinity")
        start = init.detach().to(dtype=_stimulus_dtype(model), copy=True)
    x = project_to_norm(start, norm).requires_grad_(True)
    on = torch.arange(k, device=x.device)
    opt = torch.optim.Adam([x], lr=lr)

    def objectives(stim: torch.Tensor) -> torch.Tensor:
        r = _normalize(_responses(model, stim, n_neurons=labels.shape[0]), mean, std)
        return contrastive_objective(cluster_mean_responses(r, labels, k), on, temperature)

    with grad_enabled("optimize_stimuli"):  # also inside the caller's torch.no_grad()
        for _ in progress(range(n_steps), show_progress=show_progress, desc="optimize_stimuli"):
            loss = -objectives(x).sum()
            if smoothness > 0:
                loss = loss + smoothness * laplace_penalty(x)
            # the gradient of the stimuli only: backward() would also add into the model's .grad
            (grad,) = torch.autograd.grad(loss, x)
            x.grad = _tangent(grad, x.detach())  # no graph: x -> x.grad -> graph -> x would leak
            opt.step()
            with torch.no_grad():
                x.copy_(project_to_norm(x, norm))
            # drop an outer autocast's cached low-precision copies of the updated stimuli
            torch.clear_autocast_cache()
    with torch.no_grad():
        final = objectives(x)
    return x.detach(), final.detach()


@torch.no_grad()
def assign_to_stimuli(model: Model, stimuli: torch.Tensor) -> torch.Tensor:
    """Assignment step: each neuron's cluster is the stimulus that drives it most.

    Args:
        model: ``f(x [K, *shape]) -> [K, N]``.
        stimuli: ``[K, *stimulus_shape]`` one MDS per cluster.

    Returns:
        ``[N]`` argmax over the ``K`` stimuli of each neuron's response (per-neuron
        normalization does not change it).
    """
    _check_model(model)
    check_type("stimuli", stimuli, torch.Tensor)
    if stimuli.ndim < 2 or stimuli.shape[0] < 1:
        raise ValueError(f"stimuli must be [K, *stimulus_shape], got {tuple(stimuli.shape)}")
    if not stimuli.is_floating_point():  # responses come back in its dtype: ints would truncate
        raise TypeError(f"stimuli must be a floating-point tensor, got dtype {stimuli.dtype}")
    return _responses(model, stimuli).argmax(0)


@grad_enabled("mds_clustering")
def mds_clustering(
    model: Model,
    stimulus_shape: tuple[int, ...],
    n_clusters: int,
    *,
    init_labels: torch.Tensor | None = None,
    temperature: float = 1.0,
    norm: float = 1.0,
    n_steps: int = 100,
    lr: float = 0.05,
    smoothness: float = 0.0,
    max_iter: int = 30,
    reinitialize: bool = False,
    normalize: bool = True,
    n_norm_samples: int = 256,
    split: bool = False,
    max_split_rounds: int = 3,
    split_max_iter: int = 10,
    seed: int = 0,
    show_progress: bool | None = None,
) -> MDSResult:
    """Cluster the neurons of ``model`` by their most discriminative stimuli (Burg et al. 2024).

    Args:
        model: differentiable ``f(x [B, *stimulus_shape]) -> [B, N]`` (e.g. an ``nn.Module``);
            it runs in eval mode (its flags are restored) and is not modified. Stimuli are
            made on the device of a module's first parameter or buffer (the CPU for a plain
            function), in its parameter dtype (float32 for half precision or a plain function).
        stimulus_shape: shape of one stimulus.
        n_clusters: initial number of clusters ``K0`` (clusters can only disappear, or appear
            through splits).
        init_labels: optional ``[N]`` initial clusters ``0..K0-1``; otherwise neurons are
            shuffled and dealt into ``K0`` equal chunks (the authors' initialization).
        temperature: contrastive objective temperature.
        norm: L2 norm of every stimulus.
        n_steps: stimulus optimization steps per EM iteration.
        lr: Adam learning rate of the stimulus step.
        smoothness: Laplace smoothness penalty weight.
        max_iter: maximum EM iterations (per EM run).
        reinitialize: restart each stimulus from noise every iteration instead of warm-starting
            from the previous MDS.
        normalize: z-score responses per neuron (statistics over random stimuli).
        n_norm_samples: random stimuli used for the normalization statistics.
        split: after convergence try to split each cluster in two (kept when the mean objective
            improves), then rerun EM; at most ``max_split_rounds`` rounds.
        max_split_rounds: see ``split``.
        split_max_iter: EM iterations of the local two-cluster clustering of a split.
        seed: seed of the initial assignment and stimuli.
        show_progress: a bar over the steps (``None``: only on a terminal): over the EM
            iterations, and passed on to :func:`optimize_stimuli`'s stimulus steps.

    Returns:
        :class:`MDSResult` with labels, stimuli, objectives and the iteration history.
    """
    shape = _check_shape(stimulus_shape)
    _check_model(model)
    check_number("n_clusters", n_clusters, ge=1, integer=True)
    check_number("max_iter", max_iter, ge=1, integer=True)
    check_number("max_split_rounds", max_split_rounds, ge=0, integer=True)
    check_number("split_max_iter", split_max_iter, ge=1, integer=True)
    check_number("n_norm_samples", n_norm_samples, ge=2, integer=True)
    check_seed(seed)
    if show_progress is not None:
        check_type("show_progress", show_progress, bool)
    for name, flag in (("reinitialize", reinitialize), ("normalize", normalize), ("split", split)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        zeros = torch.zeros((1, *shape), device=model_device(model), dtype=_stimulus_dtype(model))
        probe = _responses(model, zeros)
    n = probe.shape[1]
    if n_clusters > n:
        raise ValueError(f"n_clusters must be <= the model's {n} neurons, got {n_clusters}")
    if init_labels is None:
        perm = torch.randperm(n, generator=gen)
        labels = torch.empty(n, dtype=torch.long)
        labels[perm] = torch.arange(n) * n_clusters // n
    else:
        labels = _check_labels("init_labels", init_labels, n).clone()
        if int(labels.max()) + 1 > n_clusters:
            raise ValueError(
                f"init_labels must lie in [0, {n_clusters - 1}], got max {int(labels.max())}"
            )
    labels = labels.to(probe.device)
    mean: torch.Tensor | None
    std: torch.Tensor | None
    if normalize:
        mean, std = response_statistics(model, shape, norm=norm, n_samples=n_norm_samples, seed=gen)
    else:
        mean = std = None
    opts: dict[str, Any] = dict(
        norm=norm,
        temperature=temperature,
        n_steps=n_steps,
        lr=lr,
        smoothness=smoothness,
        reinitialize=reinitialize,
        show_progress=show_progress,
    )
    history: list[dict[str, Any]] = []
    labels = _relabel(labels)
    labels, stimuli, converged = _em(
        model, labels, shape, None, mean, std, max_iter, gen, history, "em", **opts
    )
    if split and n > 1:
        for _ in range(max_split_rounds):
            labels, stimuli, changed = _split_round(
                model, labels, stimuli, shape, mean, std, split_max_iter, gen, history, **opts
            )
            if not changed:
                break
            labels, stimuli, converged = _em(
                model, labels, shape, stimuli, mean, std, max_iter, gen, history, "em", **opts
            )
    _, objectives = optimize_stimuli(
        model, labels, shape, init=stimuli, n_steps=0, mean=mean, std=std,
        norm=norm, temperature=temperature, lr=lr, smoothness=smoothness,
    )  # fmt: skip
    return MDSResult(labels, stimuli, objectives, history, converged, mean, std)


def _em(
    model: Model,
    labels: torch.Tensor,
    shape: tuple[int, ...],
    stimuli: torch.Tensor | None,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    max_iter: int,
    gen: torch.Generator,
    history: list[dict[str, Any]],
    phase: str,
    *,
    norm: float,
    temperature: float,
    n_steps: int,
    lr: float,
    smoothness: float,
    reinitialize: bool,
    show_progress: bool | None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """EM iterations from ``labels`` until no neuron moves; returns labels, stimuli, converged."""
    converged = False
    stimuli_out = stimuli
    for _ in progress(range(max_iter), show_progress=show_progress, desc="mds_clustering"):
        k = int(labels.max()) + 1
        init = None if (reinitialize or stimuli_out is None) else stimuli_out
        if init is not None and init.shape[0] != k:
            init = None
        stimuli_out, obj = optimize_stimuli(
            model, labels, shape, init=init, norm=norm, temperature=temperature,
            n_steps=n_steps, lr=lr, smoothness=smoothness, mean=mean, std=std, seed=gen,
            show_progress=show_progress,
        )  # fmt: skip
        if k == 1:
            converged = True
            history.append(_entry(history, 1, 0, 0, float(obj.mean()), phase))
            break
        new = assign_to_stimuli(model, stimuli_out)
        n_changed = int((new != labels).sum())
        kept = torch.unique(new)
        n_removed = k - int(kept.numel())
        labels = _relabel(new)
        stimuli_out = stimuli_out[kept]
        history.append(
            _entry(history, int(kept.numel()), n_changed, n_removed, float(obj.mean()), phase)
        )
        if n_changed == 0:
            converged = True
            break
    assert stimuli_out is not None
    return labels, stimuli_out, converged


def _split_round(
    model: Model,
    labels: torch.Tensor,
    stimuli: torch.Tensor,
    shape: tuple[int, ...],
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    split_max_iter: int,
    gen: torch.Generator,
    history: list[dict[str, Any]],
    **opts: Any,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Try to split every cluster in two; keep a split when the mean objective improves."""
    changed = False
    k0 = int(labels.max()) + 1
    for cluster in range(k0):
        members = torch.nonzero(labels == cluster)[:, 0]
        if members.numel() < 4:
            continue
        before_stim, before_obj = optimize_stimuli(
            model, labels, shape, init=stimuli, mean=mean, std=std, seed=gen,
            **_opt_kwargs(opts),
        )  # fmt: skip
        sub_model = _Subset(model, members)
        sub_mean = None if mean is None else mean[members]
        sub_std = None if std is None else std[members]
        sub_labels = torch.empty(members.numel(), dtype=torch.long)
        sub_labels[torch.randperm(members.numel(), generator=gen)] = (
            torch.arange(members.numel()) * 2 // members.numel()
        )
        sub_labels = sub_labels.to(labels.device)
        sub_labels, sub_stim, _ = _em(
            sub_model, sub_labels, shape, None, sub_mean, sub_std, split_max_iter, gen, [],
            "split", **opts,
        )  # fmt: skip
        if int(sub_labels.max()) < 1:
            continue
        k = int(labels.max()) + 1
        cand = labels.clone()
        cand[members[sub_labels == 1]] = k
        init = torch.cat([stimuli, sub_stim[1:2]])
        init[cluster] = sub_stim[0]
        cand_stim, _ = optimize_stimuli(
            model, cand, shape, init=init, mean=mean, std=std, seed=gen, **_opt_kwargs(opts)
        )
        new = assign_to_stimuli(model, cand_stim)
        kept = torch.unique(new)
        cand = _relabel(new)
        cand_stim, cand_obj = optimize_stimuli(
            model, cand, shape, init=cand_stim[kept], mean=mean, std=std, seed=gen,
            **_opt_kwargs(opts),
        )  # fmt: skip
        accepted = int(kept.numel()) > k and float(cand_obj.mean()) > float(before_obj.mean())
        if accepted:
            labels, stimuli, changed = cand, cand_stim, True
        else:
            stimuli = before_stim
        history.append(
            _entry(
                history,
                int(labels.max()) + 1,
                int(members.numel()) if accepted else 0,
                0,
                float(cand_obj.mean() if accepted else before_obj.mean()),
                "split",
            )
        )
    return labels, stimuli, changed


def _opt_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k != "reinitialize"}


def _entry(
    history: list[dict[str, Any]], k: int, changed: int, removed: int, obj: float, phase: str
) -> dict[str, Any]:
    return {
        "iteration": len(history) + 1,
        "n_clusters": k,
        "n_changed": changed,
        "n_removed": removed,
        "objective": obj,
        "phase": phase,
    }


class _Subset(nn.Module):
    """The responses of a subset of a model's neurons."""

    def __init__(self, model: Model, index: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.index]


class MDSClustering(EstimatorParams):
    """Scikit-learn-style estimator around :func:`mds_clustering` (Burg et al., ICLR 2024).

    ``fit(model, stimulus_shape)`` clusters the neurons of a differentiable response model;
    fitted attributes: ``labels_ [N]``, ``stimuli_ [K, *shape]``, ``objectives_ [K]``,
    ``history_``, ``n_clusters_``, ``converged_``. ``predict(model)`` assigns the neurons of a
    (possibly different) model with the same stimulus space to the fitted MDS, which is how
    the paper types new neurons "on the fly".

    Parameters are those of :func:`mds_clustering` (``n_clusters`` is the initial count).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        temperature: float = 1.0,
        norm: float = 1.0,
        n_steps: int = 100,
        lr: float = 0.05,
        smoothness: float = 0.0,
        max_iter: int = 30,
        reinitialize: bool = False,
        normalize: bool = True,
        n_norm_samples: int = 256,
        split: bool = False,
        max_split_rounds: int = 3,
        split_max_iter: int = 10,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.temperature = temperature
        self.norm = norm
        self.n_steps = n_steps
        self.lr = lr
        self.smoothness = smoothness
        self.max_iter = max_iter
        self.reinitialize = reinitialize
        self.normalize = normalize
        self.n_norm_samples = n_norm_samples
        self.split = split
        self.max_split_rounds = max_split_rounds
        self.split_max_iter = split_max_iter
        self.seed = seed

    def fit(
        self,
        model: Model,
        stimulus_shape: tuple[int, ...],
        init_labels: torch.Tensor | None = None,
    ) -> MDSClustering:
        """Cluster the neurons of ``model`` (``f(x [B, *stimulus_shape]) -> [B, N]``)."""
        result = mds_clustering(model, stimulus_shape, init_labels=init_labels, **self.get_params())
        self.result_ = result
        self.labels_ = result.labels
        self.stimuli_ = result.stimuli
        self.objectives_ = result.objectives
        self.history_ = result.history
        self.n_clusters_ = result.n_clusters
        self.converged_ = result.converged
        return self

    def fit_predict(
        self,
        model: Model,
        stimulus_shape: tuple[int, ...],
        init_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``fit`` and return ``labels_ [N]``."""
        return self.fit(model, stimulus_shape, init_labels).labels_

    def predict(self, model: Model) -> torch.Tensor:
        """``[N]`` cluster of each neuron of ``model``: the fitted MDS that drives it most."""
        if not hasattr(self, "stimuli_"):
            raise ValueError("MDSClustering must be fitted before predict, call fit first")
        return assign_to_stimuli(model, self.stimuli_)


def _tangent(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad`` minus its component along ``x``, per stimulus (tangent to the norm sphere).

    Adam rescales every coordinate of the gradient separately, so a radial gradient (the
    norm-constrained optimum, where the gradient is parallel to ``x``) still yields a
    non-radial step, roughly ``lr * sign(grad)``; with re-projection to the sphere the
    iteration then converges towards ``sign``-like stimuli instead of the optimum. Removing
    the radial component first makes the fixed points those of projected gradient ascent
    (the authors' SGD + norm re-projection): stimuli where the tangent gradient vanishes.
    """
    g = grad.reshape(grad.shape[0], -1)
    v = x.reshape(x.shape[0], -1)
    coef = (g * v).sum(1, keepdim=True) / (v * v).sum(1, keepdim=True).clamp_min(1e-24)
    return (g - coef * v).reshape(grad.shape)


def _relabel(labels: torch.Tensor) -> torch.Tensor:
    """Map the used label values to consecutive integers, keeping their order."""
    return torch.unique(labels, return_inverse=True)[1]


def _normalize(
    r: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None
) -> torch.Tensor:
    if mean is not None:
        r = r - mean
    if std is not None:
        r = r / std
    return r


def _responses(model: Model, x: torch.Tensor, n_neurons: int | None = None) -> torch.Tensor:
    """``model(x) [B, N]``, in eval mode (training flags restored) on a copy of ``x``; a model
    of another parameter dtype (half precision: ``x`` is float32) gets ``x`` in its dtype and
    its responses come back in ``x``'s."""
    dtype = parameter_dtype(model)
    cast = dtype is not None and dtype != x.dtype
    with eval_mode(model):
        r = tensor_output(call_model(model, x.to(dtype) if cast else x))
    if r.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(
            f"model must map [B, *stimulus_shape] to [B, N] responses, got {tuple(r.shape)}"
        )
    if n_neurons is not None and r.shape[1] != n_neurons:
        raise ValueError(f"labels must have one entry per neuron ({r.shape[1]}), got {n_neurons}")
    return r.to(x.dtype) if cast and r.is_floating_point() else r


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable (x -> responses), got {type(model).__name__}")


def _check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, tuple | list) or len(shape) == 0:
        raise TypeError(f"stimulus_shape must be a non-empty tuple of ints, got {shape!r:.80}")
    for s in shape:
        check_number("stimulus_shape", s, ge=1, integer=True)
    return tuple(int(s) for s in shape)


def _check_labels(name: str, labels: Any, n: int) -> torch.Tensor:
    check_type(name, labels, torch.Tensor)
    if labels.ndim != 1 or labels.numel() == 0 or not integer_dtype(labels):
        raise ValueError(
            f"{name} must be a non-empty 1D integer tensor, got shape {tuple(labels.shape)} "
            f"and dtype {labels.dtype}"
        )
    if n >= 0 and labels.numel() != n:
        raise ValueError(f"{name} must have one entry per neuron ({n}), got {labels.numel()}")
    if (labels < 0).any():
        raise ValueError(f"{name} must be >= 0, got min {int(labels.min())}")
    return labels.long()


def _check_statistic(name: str, value: Any, n: int, *, positive: bool = False) -> None:
    """``mean`` / ``std`` of :func:`optimize_stimuli`: a finite real ``[n]`` tensor (``std``
    positive) or None."""
    if value is None:
        return
    check_type(name, value, torch.Tensor)
    if value.shape != (n,):
        raise ValueError(
            f"{name} must have one entry per neuron, shape ({n},), got {tuple(value.shape)}"
        )
    check_floating(name, value)
    check_finite(name, value)
    if positive and bool((value <= 0).any()):
        raise ValueError(f"{name} must be > 0, got min {float(value.min())}")


def _stimulus_dtype(model: Model) -> torch.dtype:
    """The dtype stimuli are made and optimized in: the model's parameter dtype (float64 models
    too), float32 for a half-precision model (Adam's state underflows in half precision) or a
    plain function."""
    dtype = parameter_dtype(model)
    return torch.float32 if dtype is None or dtype.itemsize < 4 else dtype


def _randn(shape: tuple[int, ...], gen: torch.Generator, model: Model) -> torch.Tensor:
    """Standard normal float32 draws on the generator's device (a seed's generator is a CPU
    one, so seeded stimuli do not depend on the model's device or dtype), moved to the model's
    device and :func:`_stimulus_dtype`."""
    draws = torch.randn(shape, generator=gen, device=gen.device)
    return draws.to(device=model_device(model), dtype=_stimulus_dtype(model))


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    check_seed(seed)
    return torch.Generator().manual_seed(int(seed))
