"""Non-IID client splits: the per-class Dirichlet partition of federated-learning benchmarks.

Hsu, Qi & Brown (2019), "Measuring the effects of non-identical data distribution for federated
visual classification": for every class ``c`` a vector ``p_c ~ Dir(alpha * 1_K)`` over the
``K`` clients decides which share of that class each client gets. Small ``alpha`` gives
clients dominated by one or two classes; large ``alpha`` approaches an IID split. HideNseek
(Vallapuram et al., 2022) evaluates on such non-IID clients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronkit.common import check_number, check_seed

__all__ = ["dirichlet_partition"]


def dirichlet_partition(
    labels: Any,
    n_clients: int,
    alpha: float,
    *,
    seed: int,
    min_size: int = 1,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Split sample indices among clients with per-class Dirichlet(``alpha``) proportions.

    Args:
        labels: ``[N]`` integer class labels (numpy array, list or torch tensor).
        n_clients: number of clients ``K >= 1``.
        alpha: Dirichlet concentration ``> 0`` (0.1-0.5: strongly non-IID; 100: near IID).
        seed: seed of the draw (the same seed always gives the same split).
        min_size: every client gets at least this many samples; the proportions are redrawn
            (up to ``max_tries`` times, as in the common benchmark code) until that holds.
        max_tries: redraws before giving up with a ``ValueError``.

    Returns:
        ``K`` sorted int64 index arrays that partition ``range(N)`` (disjoint, covering).
    """
    y = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {y.shape}")
    if y.size == 0:
        raise ValueError("labels must hold at least one sample, got an empty array")
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class labels, got dtype {y.dtype}")
    check_number("n_clients", n_clients, ge=1, integer=True)
    check_number("alpha", alpha, gt=0.0)
    check_seed(seed)
    check_number("min_size", min_size, ge=0, integer=True)
    check_number("max_tries", max_tries, ge=1, integer=True)
    if min_size * n_clients > y.size:
        raise ValueError(
            f"min_size * n_clients must be <= the number of samples {y.size}, got "
            f"{min_size} * {n_clients}"
        )
    rng = np.random.default_rng(int(seed))
    classes = np.unique(y)
    for _ in range(int(max_tries)):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = np.flatnonzero(y == c)
            idx = idx[rng.permutation(idx.size)]
            p = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * idx.size).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(o) for o in out) >= min_size:
            return out
    raise ValueError(
        f"could not give every one of {n_clients} clients >= {min_size} samples in {max_tries} "
        f"draws with alpha={alpha}; lower min_size or raise alpha"
    )
