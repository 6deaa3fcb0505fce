"""Emergent bricks: functional neuron partitions of transformer FFN layers.

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective"
(Sections on emergent bricks and their empirical analysis): FFN neurons of a pre-trained model
are sparsely activated and *functionally specialised*: groups of neurons fire together for
particular inputs or abilities, and removing such a group hurts its ability much more than the
others.

The pipeline here:

1. :func:`ffn_activations` records every FFN's hidden activations ``h = relu(W_in x + b_in)``
   on labelled tokens of every task.
2. :func:`activation_frequency` gives, per task and neuron, the fraction of the task's tokens on
   which the neuron fires (``h > threshold``).
3. :func:`coactivation_affinity` measures how often two neurons fire on the same token (the
   co-activation graph of MoEfication, Zhang et al. 2022, normalised as the cosine of the
   binary firing patterns), and :func:`cluster_neurons` partitions the live neurons of a layer
   by spectral clustering of that graph (sklearn).
4. :func:`assign_partitions` labels each partition with the task that dominates its activation
   frequency (its share of the partition's summed task frequencies exceeds ``min_share``) or as
   shared (``-1``).
5. :class:`BrickDiscovery` runs 1-4 for every layer; :func:`ablation_damage` zeroes the
   neurons of each task's partitions and measures every task's accuracy drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from neuronkit.common import (
    EstimatorParams,
    check_finite,
    check_floating,
    check_ndim,
    check_number,
    check_seed,
    check_type,
    eval_mode,
)

from .model import BrickTransformer, Gate, task_accuracy
from .tasks import IGNORE_INDEX, TaskData

__all__ = [
    "BrickDiscovery",
    "ablation_damage",
    "activation_frequency",
    "assign_partitions",
    "cluster_neurons",
    "coactivation_affinity",
    "ffn_activations",
    "own_over_other_damage",
    "random_ablation_masks",
]


def _check_hidden(name: str, hidden: Any) -> None:
    check_type(name, hidden, torch.Tensor)
    check_ndim(name, hidden, 2, "[N, H]")
    check_floating(name, hidden)
    check_finite(name, hidden)


def ffn_activations(
    model: BrickTransformer,
    data: TaskData,
    *,
    labelled_only: bool = True,
    batch_size: int = 1024,
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """FFN inputs and hidden activations of every layer on the tokens of ``data``.

    Args:
        model: a trained :class:`BrickTransformer` (run in eval mode without gradient).
        data: the :class:`TaskData` to record on.
        labelled_only: keep only positions with a target (drop the task-token position).
        batch_size: sequences per forward pass.

    Returns:
        ``(inputs, hidden, task_ids)``: per layer ``[M, d_model]`` FFN inputs and ``[M, d_ff]``
        hidden activations (before any gate), and ``[M]`` the task id of each token (``M``
        recorded tokens, in data order).
    """
    check_type("model", model, BrickTransformer)
    check_type("data", data, TaskData)
    if len(data) == 0:
        raise ValueError("data must hold at least one sequence, got 0")
    check_type("labelled_only", labelled_only, bool)
    check_number("batch_size", batch_size, ge=1, integer=True)
    n_layers = len(model.ffns)
    ins: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
    hids: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
    tids: list[torch.Tensor] = []
    with eval_mode(model), torch.no_grad():
        for s in range(0, len(data), batch_size):
            tok = data.tokens[s : s + batch_size]
            keep = (
                data.targets[s : s + batch_size] != IGNORE_INDEX
                if labelled_only
                else torch.ones_like(tok, dtype=torch.bool)
            )
            _, f_in, f_h = model.run_with_cache(tok)
            for layer in range(n_layers):
                ins[layer].append(f_in[layer][keep])
                hids[layer].append(f_h[layer][keep])
            tid = data.task_ids[s : s + batch_size][:, None].expand_as(tok)
            tids.append(tid[keep])
    return [torch.cat(x) for x in ins], [torch.cat(h) for h in hids], torch.cat(tids)


def activation_frequency(
    hidden: torch.Tensor, task_ids: torch.Tensor, n_tasks: int, *, threshold: float = 0.0
) -> torch.Tensor:
    """Fraction of each task's tokens on which each neuron fires (``h > threshold``).

    Args:
        hidden: ``[M, H]`` hidden activations of one layer.
        task_ids: ``[M]`` int64 task of each token, in ``[0, n_tasks)``.
        n_tasks: number of tasks.
        threshold: firing threshold (0 for ReLU neurons).

    Returns:
        ``[n_tasks, H]`` frequencies in ``[0, 1]`` (NaN rows for tasks without tokens).
    """
    _check_hidden("hidden", hidden)
    check_number("n_tasks", n_tasks, ge=1, integer=True)
    check_number("threshold", threshold)
    check_type("task_ids", task_ids, torch.Tensor)
    if task_ids.shape != hidden.shape[:1] or task_ids.dtype != torch.int64:
        raise ValueError(
            f"task_ids must be an int64 tensor of shape [{hidden.shape[0]}], got "
            f"{tuple(task_ids.shape)} {task_ids.dtype}"
        )
    if task_ids.numel() and (int(task_ids.min()) < 0 or int(task_ids.max()) >= n_tasks):
        raise ValueError(f"task_ids must lie in [0, {n_tasks}), got values outside")
    fired = (hidden > threshold).double()
    counts = torch.zeros(n_tasks, hidden.shape[1], dtype=torch.float64, device=hidden.device)
    counts.index_add_(0, task_ids.to(hidden.device), fired)
    totals = torch.bincount(task_ids.to(hidden.device), minlength=n_tasks).double()[:, None]
    return (counts / totals).float()


def coactivation_affinity(hidden: torch.Tensor, *, threshold: float = 0.0) -> torch.Tensor:
    """Co-activation graph of one layer's neurons.

    ``A_ij = c_ij / sqrt(c_ii c_jj)`` with ``c_ij`` the number of tokens on which neurons ``i``
    and ``j`` both fire: the cosine similarity of their binary firing patterns (1 on the
    diagonal of live neurons, 0 for a neuron that never fires).

    Args:
        hidden: ``[M, H]`` hidden activations.
        threshold: firing threshold.

    Returns:
        ``[H, H]`` symmetric affinity in ``[0, 1]``.
    """
    _check_hidden("hidden", hidden)
    check_number("threshold", threshold)
    fired = (hidden > threshold).double()
    c = fired.T @ fired
    d = torch.sqrt(torch.diagonal(c)).clamp_min(1e-12)
    return (c / d[:, None] / d[None, :]).float()


def cluster_neurons(
    affinity: torch.Tensor,
    n_partitions: int,
    *,
    live: torch.Tensor | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Partition neurons by spectral clustering of a co-activation affinity (sklearn).

    Args:
        affinity: ``[H, H]`` symmetric non-negative affinity (:func:`coactivation_affinity`).
        n_partitions: number of partitions ``K`` (``>= 2``, at most the number of live neurons).
        live: optional ``[H]`` bool mask of the neurons to cluster (default: those with a
            positive diagonal, i.e. that fire at least once); the others get label ``-1``.
        seed: seed of the spectral embedding and the k-means label assignment.

    Returns:
        ``[H]`` int64 labels in ``[0, K)`` (``-1`` for excluded neurons).
    """
    from sklearn.cluster import SpectralClustering

    check_type("affinity", affinity, torch.Tensor)
    check_ndim("affinity", affinity, 2, "[H, H]")
    if affinity.shape[0] != affinity.shape[1]:
        raise ValueError(f"affinity must be square [H, H], got {tuple(affinity.shape)}")
    check_finite("affinity", affinity)
    if bool((affinity < 0).any()) or not torch.allclose(affinity, affinity.T, atol=1e-6):
        raise ValueError("affinity must be symmetric and non-negative")
    check_number("n_partitions", n_partitions, ge=2, integer=True)
    check_seed(seed)
    h = affinity.shape[0]
    if live is None:
        live = torch.diagonal(affinity) > 0
    else:
        check_type("live", live, torch.Tensor)
        if live.shape != (h,) or live.dtype != torch.bool:
            raise ValueError(
                f"live must be a bool tensor of shape [{h}], got {tuple(live.shape)} {live.dtype}"
            )
    idx = torch.nonzero(live).flatten().cpu().numpy()
    if len(idx) < n_partitions:
        raise ValueError(
            f"n_partitions must be at most the number of live neurons ({len(idx)}), "
            f"got {n_partitions}"
        )
    sub = affinity.detach().cpu()[idx][:, idx].double().numpy()
    sub = sub + 1e-6  # a tiny uniform floor keeps the graph connected (isolated neurons)
    sc = SpectralClustering(
        n_clusters=n_partitions,
        affinity="precomputed",
        random_state=seed,
        assign_labels="kmeans",
        n_init=10,
    )
    labels = np.full(h, -1, dtype=np.int64)
    labels[idx] = sc.fit_predict(sub)
    return labels


def assign_partitions(
    frequency: torch.Tensor, labels: np.ndarray, *, min_share: float = 0.5
) -> np.ndarray:
    """Label each neuron partition with the task it serves, or ``-1`` when shared.

    A partition's task profile is the mean activation frequency of its neurons on each task;
    it belongs to the task with the largest profile entry if that entry's share of the summed
    profile exceeds ``min_share``, or if no other task activates it (share 1, so that
    ``min_share=1`` keeps exactly the single-task partitions).

    Args:
        frequency: ``[n_tasks, H]`` activation frequencies (:func:`activation_frequency`).
        labels: ``[H]`` partition labels (``-1`` for neurons outside every partition).
        min_share: share in ``(0, 1]`` that a task must hold to own a partition.

    Returns:
        ``[K]`` int64 task of each partition (``-1``: shared / unspecific).
    """
    check_type("frequency", frequency, torch.Tensor)
    check_ndim("frequency", frequency, 2, "[n_tasks, H]")
    check_finite("frequency", frequency)
    lab = np.asarray(labels)
    if lab.shape != (frequency.shape[1],) or lab.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be an integer array of shape [{frequency.shape[1]}], "
            f"got {lab.shape} {lab.dtype}"
        )
    check_number("min_share", min_share, gt=0.0, le=1.0)
    k = int(lab.max()) + 1 if lab.size else 0
    freq = frequency.detach().double().cpu().numpy()
    owner = np.full(k, -1, dtype=np.int64)
    for c in range(k):
        members = lab == c
        if not members.any():
            continue
        profile = freq[:, members].mean(axis=1)
        total = profile.sum()
        if total <= 0:
            continue
        best = int(np.argmax(profile))
        share = profile[best] / total
        if share > min_share or share == 1.0:  # a partition only one task activates: its own
            owner[c] = best
    return owner


class BrickDiscovery(EstimatorParams):
    """Find task-specific neuron partitions (emergent bricks) of every FFN layer.

    scikit-learn-style estimator over a trained :class:`BrickTransformer`.

    Args:
        n_partitions: partitions per layer (spectral clustering of the co-activation graph).
        threshold: firing threshold of a neuron.
        min_share: task share of a partition's activation profile needed to own it.
        seed: clustering seed.

    Attributes (after :meth:`fit`):
        frequency_: per layer ``[n_tasks, d_ff]`` activation frequencies.
        labels_: per layer ``[d_ff]`` partition labels (``-1``: dead neuron).
        partition_tasks_: per layer ``[n_partitions]`` owning task (``-1``: shared).
        tasks_: the task names.
    """

    def __init__(
        self,
        n_partitions: int = 8,
        *,
        threshold: float = 0.0,
        min_share: float = 0.5,
        seed: int = 0,
    ) -> None:
        check_number("n_partitions", n_partitions, ge=2, integer=True)
        check_number("threshold", threshold)
        check_number("min_share", min_share, gt=0.0, le=1.0)
        check_seed(seed)
        self.n_partitions = int(n_partitions)
        self.threshold = float(threshold)
        self.min_share = float(min_share)
        self.seed = int(seed)

    def fit(self, model: BrickTransformer, data: TaskData) -> BrickDiscovery:
        """Record activations of ``model`` on ``data`` and build the partitions of every layer."""
        _, hidden, tids = ffn_activations(model, data)
        n_tasks = len(data.tasks)
        counts = torch.bincount(tids.cpu(), minlength=n_tasks)
        empty = [data.tasks[k] for k in range(n_tasks) if counts[k] == 0]
        if empty:  # its activation frequencies would be NaN (0 / 0)
            raise ValueError(
                f"data must hold labelled tokens of every task in data.tasks {data.tasks}, "
                f"got none for {empty}"
            )
        self.tasks_ = data.tasks
        self.frequency_: list[torch.Tensor] = []
        self.labels_: list[np.ndarray] = []
        self.partition_tasks_: list[np.ndarray] = []
        for h in hidden:
            freq = activation_frequency(h, tids, n_tasks, threshold=self.threshold)
            aff = coactivation_affinity(h, threshold=self.threshold)
            labels = cluster_neurons(aff, self.n_partitions, seed=self.seed)
            self.frequency_.append(freq)
            self.labels_.append(labels)
            self.partition_tasks_.append(assign_partitions(freq, labels, min_share=self.min_share))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise RuntimeError("BrickDiscovery must be fitted first: call fit(model, data)")

    def _task_index(self, task: str | int) -> int:
        self._check_fitted()
        if isinstance(task, str):
            if task not in self.tasks_:
                raise ValueError(f"task must be one of {self.tasks_}, got {task!r}")
            return self.tasks_.index(task)
        check_number("task", task, ge=0, lt=len(self.tasks_), integer=True)
        return int(task)

    def task_masks(self, task: str | int) -> list[torch.Tensor]:
        """Per layer ``[d_ff]`` bool mask of the neurons in ``task``'s partitions."""
        k = self._task_index(task)
        masks = []
        for labels, owner in zip(self.labels_, self.partition_tasks_):
            own = np.isin(labels, np.flatnonzero(owner == k))
            masks.append(torch.from_numpy(own))
        return masks

    def ablation_gates(self, task: str | int) -> list[Gate]:
        """Per-layer gates that zero ``task``'s partitions (for ``model(tokens, gates)``)."""
        return [(~m).float() for m in self.task_masks(task)]

    def transform(self, data_hidden: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per layer ``[M, n_partitions]`` mean activation of each partition's neurons.

        Args:
            data_hidden: per layer ``[M, d_ff]`` hidden activations (:func:`ffn_activations`).
        """
        self._check_fitted()
        if len(data_hidden) != len(self.labels_):
            raise ValueError(
                f"data_hidden must have one entry per layer ({len(self.labels_)}), "
                f"got {len(data_hidden)}"
            )
        out = []
        for i, (h, labels) in enumerate(zip(data_hidden, self.labels_)):
            _check_hidden(f"data_hidden[{i}]", h)
            if h.shape[1] != len(labels):
                raise ValueError(
                    f"data_hidden[{i}] must have {len(labels)} columns, got {h.shape[1]}"
                )
            onehot = torch.zeros(len(labels), self.n_partitions, dtype=h.dtype, device=h.device)
            ok = labels >= 0
            rows, cols = torch.from_numpy(np.flatnonzero(ok)), torch.from_numpy(labels[ok])
            onehot[rows.to(h.device), cols.to(h.device)] = 1.0
            out.append(h @ onehot / onehot.sum(0).clamp_min(1.0))
        return out


def random_ablation_masks(
    sizes: Sequence[int], d_ff: Sequence[int], *, seed: int = 0
) -> list[torch.Tensor]:
    """Control ablation: per layer a random ``[d_ff]`` bool mask with ``sizes[l]`` neurons set."""
    if len(sizes) != len(d_ff):
        raise ValueError(
            f"sizes and d_ff must have equal lengths, got {len(sizes)} and {len(d_ff)}"
        )
    check_seed(seed)
    gen = torch.Generator().manual_seed(int(seed))
    masks = []
    for i, (s, h) in enumerate(zip(sizes, d_ff)):
        check_number(f"d_ff[{i}]", h, ge=1, integer=True)
        check_number(f"sizes[{i}]", s, ge=0, le=h, integer=True)
        m = torch.zeros(int(h), dtype=torch.bool)
        m[torch.randperm(int(h), generator=gen)[: int(s)]] = True
        masks.append(m)
    return masks


def ablation_damage(
    model: BrickTransformer,
    data: TaskData,
    masks: Sequence[Sequence[torch.Tensor]],
    *,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Accuracy drop of every task when each set of neurons is ablated.

    Args:
        model: the :class:`BrickTransformer`.
        data: evaluation :class:`TaskData`.
        masks: ``A`` ablations, each per layer a ``[d_ff]`` bool mask of the neurons to zero.
        base: optional ``[n_tasks]`` unablated accuracy (computed when omitted).

    Returns:
        ``[A, n_tasks]``: ``base - accuracy`` under each ablation (positive = damage).
    """
    check_type("model", model, BrickTransformer)
    ref = task_accuracy(model, data) if base is None else base
    check_type("base", ref, torch.Tensor)
    if ref.shape != (len(data.tasks),):
        raise ValueError(f"base must have shape [{len(data.tasks)}], got {tuple(ref.shape)}")
    rows = []
    for a, layer_masks in enumerate(masks):
        if len(layer_masks) != len(model.ffns):
            raise ValueError(
                f"masks[{a}] must have one mask per layer ({len(model.ffns)}), "
                f"got {len(layer_masks)}"
            )
        gates: list[Gate] = []
        for i, (m, ffn) in enumerate(zip(layer_masks, model.ffns)):
            check_type(f"masks[{a}][{i}]", m, torch.Tensor)
            if m.shape != (ffn.d_ff,) or m.dtype != torch.bool:
                raise ValueError(
                    f"masks[{a}][{i}] must be a bool tensor of shape [{ffn.d_ff}], got "
                    f"{tuple(m.shape)} {m.dtype}"
                )
            gates.append((~m).float())
        rows.append(ref - task_accuracy(model, data, gates))
    return torch.stack(rows) if rows else torch.zeros(0, len(data.tasks))


def own_over_other_damage(damage: torch.Tensor, *, floor: float = 0.01) -> torch.Tensor:
    """Per task: damage of ablating its own partition over the mean damage on the other tasks.

    Args:
        damage: ``[n_tasks, n_tasks]`` from :func:`ablation_damage` with row ``t`` ablating
            task ``t``'s partitions.
        floor: lower bound of the denominator (an accuracy drop of ``floor``; a ratio over a
            zero denominator is meaningless).

    Returns:
        ``[n_tasks]`` ratios ``damage[t, t] / max(mean_{s != t} damage[t, s], floor)``.
    """
    check_type("damage", damage, torch.Tensor)
    check_ndim("damage", damage, 2, "[n_tasks, n_tasks]")
    n = damage.shape[0]
    if damage.shape[1] != n or n < 2:
        raise ValueError(f"damage must be square with >= 2 tasks, got {tuple(damage.shape)}")
    check_finite("damage", damage)
    check_number("floor", floor, gt=0.0)
    own = torch.diagonal(damage)
    other = (damage.sum(1) - own) / (n - 1)
    return own / other.clamp_min(floor)
