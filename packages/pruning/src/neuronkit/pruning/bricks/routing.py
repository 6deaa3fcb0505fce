"""Brick routing: MoEfication of FFN layers with a learned per-token router.

Zhang, Lin, Liu, Li, Sun & Zhou (Findings of ACL 2022), "MoEfication: Transformer Feed-forward
Layers are Mixtures of Experts", the routing operation of Xiao et al. (2024), "Configurable
Foundation Models: Building LLMs from a Modular Perspective".

1. *Expert construction*: the ``d_ff`` neurons of an FFN are split into ``K`` equal-size
   experts. ``"param"`` (the reference default) clusters the L2-normalised neuron key vectors
   (rows of ``W_in``) with *balanced* k-means; ``"coactivation"`` partitions the co-activation
   graph (the reference uses METIS; here a spectral embedding of the graph clustered with the
   same balanced k-means); ``"random"`` is the control.
2. *Expert selection*: a router ``x / ||x|| -> Linear(d, K) -> tanh -> Linear(K, K)`` (the
   reference MLP selector: first layer initialised with the mean normalised key of each expert,
   second with the identity) is trained with binary cross-entropy to predict each expert's sum
   of positive activations, divided by its maximum over the batch.
3. *Routed inference*: per token, the top ``k`` experts by router score are computed and the
   others skipped, so a fraction ``k / K`` of the FFN neurons is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import (
    EstimatorParams,
    check_adam_dtype,
    check_choice,
    check_finite,
    check_floating,
    check_ndim,
    check_number,
    check_seed,
    check_type,
    detached_input,
    grad_enabled,
    progress,
)

from .discovery import coactivation_affinity, ffn_activations
from .model import FFN, BrickTransformer, Gate
from .tasks import TaskData

__all__ = [
    "SPLIT_METHODS",
    "ExpertRouter",
    "MoEfication",
    "RoutedGate",
    "balanced_kmeans",
    "expert_scores",
    "oracle_gate",
    "router_recall",
    "split_ffn",
    "train_router",
]

#: expert construction methods of :func:`split_ffn`.
SPLIT_METHODS = ("param", "coactivation", "random")


def _check_points(name: str, x: Any) -> None:
    check_type(name, x, torch.Tensor)
    check_ndim(name, x, 2, "[N, D]")
    check_floating(name, x)
    check_finite(name, x)


def balanced_kmeans(
    x: torch.Tensor, n_clusters: int, *, seed: int = 0, max_iter: int = 30
) -> np.ndarray:
    """k-means whose clusters all have exactly ``N / n_clusters`` points.

    Centres start from scikit-learn's k-means; each iteration then solves the balanced
    assignment exactly (every centre replicated ``N / K`` times, squared-distance costs,
    ``scipy.optimize.linear_sum_assignment``) and moves the centres to their cluster means,
    until the assignment stops changing.

    Args:
        x: ``[N, D]`` points; ``N`` must be divisible by ``n_clusters``.
        n_clusters: ``K >= 1``.
        seed: seed of the initial k-means.
        max_iter: maximal assignment/update rounds.

    Returns:
        ``[N]`` int64 labels, each of the ``K`` values used ``N / K`` times.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    _check_points("x", x)
    check_number("n_clusters", n_clusters, ge=1, integer=True)
    check_seed(seed)
    check_number("max_iter", max_iter, ge=1, integer=True)
    n = x.shape[0]
    if n % n_clusters:
        raise ValueError(f"n_clusters must divide the number of points {n}, got {n_clusters}")
    size = n // n_clusters
    pts = x.detach().double().cpu().numpy()
    centres = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(pts).cluster_centers_
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        cost = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # [N, K]
        rows, cols = linear_sum_assignment(np.repeat(cost, size, axis=1))
        new = np.empty(n, dtype=np.int64)
        new[rows] = cols // size
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.stack([pts[labels == c].mean(0) for c in range(n_clusters)])
    return labels


def split_ffn(
    ffn: FFN,
    n_experts: int,
    *,
    method: str = "param",
    hidden: torch.Tensor | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Split an FFN's neurons into ``n_experts`` equal-size experts (MoEfication).

    Args:
        ffn: the :class:`FFN` (``d_ff`` must be divisible by ``n_experts``).
        n_experts: number of experts ``K``.
        method: ``"param"`` (balanced k-means of the normalised key vectors ``W_in[i]``),
            ``"coactivation"`` (balanced k-means of a spectral embedding of the co-activation
            graph; needs ``hidden``) or ``"random"``.
        hidden: ``[M, d_ff]`` hidden activations, for ``"coactivation"``.
        seed: clustering / permutation seed.

    Returns:
        ``[d_ff]`` int64 expert of every neuron.
    """
    check_type("ffn", ffn, FFN)
    check_number("n_experts", n_experts, ge=1, integer=True)
    check_choice("method", method, SPLIT_METHODS)
    check_seed(seed)
    h = ffn.d_ff
    if h % n_experts:
        raise ValueError(f"n_experts must divide d_ff={h}, got {n_experts}")
    if method == "random":
        perm = torch.randperm(h, generator=torch.Generator().manual_seed(int(seed))).numpy()
        labels = np.empty(h, dtype=np.int64)
        labels[perm] = np.arange(h) // (h // n_experts)
        return labels
    if method == "param":
        keys = F.normalize(ffn.w_in.weight.detach().float(), dim=1)
        return balanced_kmeans(keys, n_experts, seed=seed)
    if hidden is None:
        raise ValueError("hidden must be given for method='coactivation', got None")
    _check_points("hidden", hidden)
    if hidden.shape[1] != h:
        raise ValueError(f"hidden must have {h} columns, got {hidden.shape[1]}")
    from sklearn.manifold import spectral_embedding

    aff = coactivation_affinity(hidden).double().cpu().numpy() + 1e-6  # floor: connected graph
    emb = spectral_embedding(aff, n_components=n_experts, random_state=seed, drop_first=False)
    return balanced_kmeans(torch.from_numpy(emb), n_experts, seed=seed)


def _onehot(labels: np.ndarray, n_experts: int, like: torch.Tensor) -> torch.Tensor:
    """``[len(labels), n_experts]`` one-hot in the dtype and on the device of ``like``."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got {lab.shape} {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_experts):
        raise ValueError(f"labels must lie in [0, {n_experts}), got [{lab.min()}, {lab.max()}]")
    out = torch.zeros(len(lab), n_experts, dtype=like.dtype)
    out[torch.arange(len(lab)), torch.from_numpy(lab.astype(np.int64))] = 1.0
    return out.to(like.device)


def expert_scores(hidden: torch.Tensor, labels: np.ndarray, n_experts: int) -> torch.Tensor:
    """Sum of (positive) hidden activations of each expert: ``[M, d_ff] -> [M, K]``."""
    _check_points("hidden", hidden)
    check_number("n_experts", n_experts, ge=1, integer=True)
    if len(labels) != hidden.shape[1]:
        raise ValueError(f"labels must have {hidden.shape[1]} entries, got {len(labels)}")
    return hidden.clamp_min(0.0) @ _onehot(labels, n_experts, hidden)


class ExpertRouter(nn.Module):
    """MoEfication's MLP expert selector: ``x [..., d] -> scores [..., K]``.

    ``x / ||x|| -> Linear(d, K, no bias) -> tanh -> Linear(K, K, no bias)``. With ``keys`` and
    ``labels`` the first layer starts at each expert's mean normalised key vector and the
    second at the identity (the reference initialisation), both on the keys' device and in
    their precision (at least float32); otherwise PyTorch's default.

    Args:
        d_model: FFN input width.
        n_experts: number of experts ``K``.
        keys: optional ``[d_ff, d_model]`` key vectors (``W_in``).
        labels: optional ``[d_ff]`` expert of every neuron (with ``keys``).
    """

    def __init__(
        self,
        d_model: int,
        n_experts: int,
        *,
        keys: torch.Tensor | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        check_number("d_model", d_model, ge=1, integer=True)
        check_number("n_experts", n_experts, ge=1, integer=True)
        self.n_experts = int(n_experts)
        if (keys is None) != (labels is None):
            raise ValueError("keys and labels must be given together")
        factory: dict[str, Any] = {}
        if keys is not None and labels is not None:
            _check_points("keys", keys)
            if keys.shape[1] != d_model or len(labels) != keys.shape[0]:
                raise ValueError(
                    f"keys must be [d_ff, {d_model}] with one label per row, got "
                    f"{tuple(keys.shape)} and {len(labels)} labels"
                )
            # in the keys' precision, at least float32 (bf16 / fp16 keys averaged in float32)
            factory = {
                "device": keys.device,
                "dtype": torch.promote_types(keys.dtype, torch.float32),
            }
        self.proj = nn.Linear(d_model, n_experts, bias=False, **factory)
        self.mix = nn.Linear(n_experts, n_experts, bias=False, **factory)
        if keys is not None and labels is not None:
            k = keys.detach().to(factory["dtype"])
            onehot = _onehot(labels, n_experts, k)
            centres = (onehot.T @ F.normalize(k, dim=1)) / onehot.sum(0).clamp_min(1.0)[:, None]
            with torch.no_grad():
                self.proj.weight.copy_(centres)
                self.mix.weight.copy_(torch.eye(n_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Router scores (logits) ``[..., K]`` of FFN inputs ``[..., d_model]``."""
        return self.mix(torch.tanh(self.proj(F.normalize(x, dim=-1))))


@grad_enabled("train_router")
def train_router(
    router: ExpertRouter,
    inputs: torch.Tensor,
    hidden: torch.Tensor,
    labels: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 512,
    lr: float = 1e-2,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train a router (in place) to predict each expert's activation mass (BCE, Adam); it is
    left in eval mode.

    Targets: :func:`expert_scores` of the batch divided by their maximum over the batch (the
    reference recipe), so they lie in ``[0, 1]``.

    Args:
        router: the :class:`ExpertRouter`.
        inputs: ``[M, d_model]`` FFN inputs.
        hidden: ``[M, d_ff]`` the FFN's hidden activations on those inputs.
        labels: ``[d_ff]`` expert of every neuron.
        epochs: passes over the tokens.
        batch_size: tokens per step.
        lr: Adam learning rate.
        seed: shuffling seed.
        show_progress: a bar over the epochs (``None``: only on a terminal).

    Returns:
        the mean loss of every epoch.
    """
    check_type("router", router, ExpertRouter)
    _check_points("inputs", inputs)
    _check_points("hidden", hidden)
    if inputs.shape[0] != hidden.shape[0]:
        raise ValueError(
            "inputs and hidden must have the same number of tokens, got "
            f"{inputs.shape[0]} and {hidden.shape[0]}"
        )
    check_number("epochs", epochs, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_seed(seed)
    # the caller's inputs.grad stays as it is; inference tensors can enter the graph
    inputs, hidden = detached_input(inputs), detached_input(hidden)
    scores = expert_scores(hidden, labels, router.n_experts)
    check_adam_dtype("router", router.named_parameters())
    opt = torch.optim.Adam(router.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    losses = []
    router.train()
    for _ in progress(range(epochs), show_progress=show_progress, desc="train_router"):
        perm = torch.randperm(inputs.shape[0], generator=gen)
        total, count = 0.0, 0
        for s in range(0, len(perm), batch_size):
            idx = perm[s : s + batch_size]
            target = scores[idx]
            target = target / target.max().clamp_min(1e-12)
            loss = F.binary_cross_entropy_with_logits(router(inputs[idx]), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        losses.append(total / count)
    router.eval()
    return losses


def _top_experts_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    top = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores).scatter(-1, top, 1.0)


class RoutedGate:
    """Per-token neuron gate of one FFN: keep the neurons of the router's top-``k`` experts.

    Callable ``ffn_input [..., d_model] -> mask [..., d_ff]`` (a :data:`Gate`).

    Args:
        router: the trained :class:`ExpertRouter`.
        labels: ``[d_ff]`` expert of every neuron.
        k: experts kept per token (``1 <= k <= K``).
    """

    def __init__(self, router: ExpertRouter, labels: np.ndarray, k: int) -> None:
        check_type("router", router, ExpertRouter)
        check_number("k", k, ge=1, le=router.n_experts, integer=True)
        self.router = router
        self.k = int(k)
        self.expand = _onehot(labels, router.n_experts, router.proj.weight).T  # [K, d_ff]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return _top_experts_mask(self.router(x), self.k) @ self.expand


def oracle_gate(ffn: FFN, labels: np.ndarray, n_experts: int, k: int) -> Gate:
    """Upper-bound gate: keep the ``k`` experts with the largest *true* activation mass.

    Computes the full FFN to choose (no saving); the reference's "ground truth" selection.
    """
    check_type("ffn", ffn, FFN)
    check_number("n_experts", n_experts, ge=1, integer=True)
    check_number("k", k, ge=1, le=n_experts, integer=True)
    expand = _onehot(labels, n_experts, ffn.w_in.weight)

    def gate(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            scores = ffn.hidden(x) @ expand
            return _top_experts_mask(scores, int(k)) @ expand.T

    return gate


def router_recall(
    router: ExpertRouter, inputs: torch.Tensor, hidden: torch.Tensor, labels: np.ndarray, k: int
) -> float:
    """Fraction of the positive activation mass kept by the router's top-``k`` experts.

    The reference's selection accuracy: ``sum of chosen experts' scores / sum of all``,
    averaged over tokens with any activation; NaN when no token has any (a layer whose neurons
    never fire on ``hidden``: the recall of no mass is undefined).
    """
    check_type("router", router, ExpertRouter)
    _check_points("inputs", inputs)
    check_number("k", k, ge=1, le=router.n_experts, integer=True)
    scores = expert_scores(hidden, labels, router.n_experts)
    with torch.no_grad():
        chosen = _top_experts_mask(router(inputs), int(k))
    total = scores.sum(-1)
    ok = total > 0
    if not bool(ok.any()):
        return float("nan")
    return float(((chosen * scores).sum(-1)[ok] / total[ok]).mean())


class MoEfication(EstimatorParams):
    """Turn every FFN of a :class:`BrickTransformer` into routed experts.

    Args:
        n_experts: experts per FFN ``K`` (must divide ``d_ff``).
        method: expert construction (see :func:`split_ffn`).
        router_epochs: epochs of :func:`train_router`.
        router_lr: its learning rate.
        seed: seed of the clustering and router training.

    Attributes (after :meth:`fit`):
        labels_: per layer ``[d_ff]`` expert of every neuron.
        routers_: per layer trained :class:`ExpertRouter`.
        router_losses_: per layer the loss of every router epoch.
    """

    def __init__(
        self,
        n_experts: int = 16,
        *,
        method: str = "param",
        router_epochs: int = 10,
        router_lr: float = 1e-2,
        seed: int = 0,
    ) -> None:
        check_number("n_experts", n_experts, ge=1, integer=True)
        check_choice("method", method, SPLIT_METHODS)
        check_number("router_epochs", router_epochs, ge=1, integer=True)
        check_number("router_lr", router_lr, gt=0.0)
        check_seed(seed)
        self.n_experts = int(n_experts)
        self.method = method
        self.router_epochs = int(router_epochs)
        self.router_lr = float(router_lr)
        self.seed = int(seed)

    @grad_enabled("MoEfication.fit")
    def fit(self, model: BrickTransformer, data: TaskData) -> MoEfication:
        """Split every FFN of ``model`` and train its router on the tokens of ``data``."""
        check_type("model", model, BrickTransformer)
        inputs, hidden, _ = ffn_activations(model, data, labelled_only=False)
        self.labels_: list[np.ndarray] = []
        self.routers_: list[ExpertRouter] = []
        self.router_losses_: list[list[float]] = []
        for layer, ffn in enumerate(model.ffns):
            labels = split_ffn(
                ffn, self.n_experts, method=self.method, hidden=hidden[layer], seed=self.seed
            )
            keys = ffn.w_in.weight.detach()
            router = ExpertRouter(ffn.d_model, self.n_experts, keys=keys, labels=labels)
            router = router.to(keys.device, keys.dtype)  # trained and routing beside its FFN
            losses = train_router(
                router,
                inputs[layer],
                hidden[layer],
                labels,
                epochs=self.router_epochs,
                lr=self.router_lr,
                seed=self.seed + layer,
            )
            self.labels_.append(labels)
            self.routers_.append(router)
            self.router_losses_.append(losses)
        return self

    def _k(self, keep_fraction: float) -> int:
        if not hasattr(self, "routers_"):
            raise RuntimeError("MoEfication must be fitted first: call fit(model, data)")
        check_number("keep_fraction", keep_fraction, gt=0.0, le=1.0)
        return max(1, math.floor(keep_fraction * self.n_experts + 1e-9))

    def gates(self, keep_fraction: float) -> list[Gate]:
        """Per-layer routed gates keeping ``max(1, floor(keep_fraction * K))`` experts per
        token."""
        k = self._k(keep_fraction)
        return [RoutedGate(r, lab, k) for r, lab in zip(self.routers_, self.labels_)]

    def oracle_gates(self, model: BrickTransformer, keep_fraction: float) -> list[Gate]:
        """Per-layer :func:`oracle_gate` of ``model``'s FFNs at the same expert budget."""
        check_type("model", model, BrickTransformer)
        k = self._k(keep_fraction)
        return [oracle_gate(f, lab, self.n_experts, k) for f, lab in zip(model.ffns, self.labels_)]

    def neuron_fraction(self, keep_fraction: float) -> float:
        """Fraction of FFN neurons computed per token at ``keep_fraction``."""
        return self._k(keep_fraction) / self.n_experts

    def recall(self, model: BrickTransformer, data: TaskData, keep_fraction: float) -> list[float]:
        """Per layer :func:`router_recall` on ``data`` at ``keep_fraction``."""
        k = self._k(keep_fraction)
        inputs, hidden, _ = ffn_activations(model, data, labelled_only=False)
        return [
            router_recall(r, x, h, lab, k)
            for r, x, h, lab in zip(self.routers_, inputs, hidden, self.labels_)
        ]
