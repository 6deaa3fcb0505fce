"""Do controller hidden states encode architecture structure? (hidden-state / graph correlation)

Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438): over pairs of architectures sampled from a trained ENAS controller,
correlate the similarity of the controller's hidden states (minus the L2 distance between
them) with a graph similarity of the two cells (Spearman's rank correlation, as in the
paper; Pearson is available). A vanilla ENAS controller gives a correlation near zero: its
hidden state does not carry the past choices, so it defines no notion of structural
similarity. Training it with a memory buffer raises the correlation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_choice, check_type

from .space import SIMILARITY_METRICS, Architecture, _check_architectures, pairwise_graph_similarity

__all__ = [
    "HiddenGraphCorrelation",
    "hidden_graph_correlation",
    "hidden_state_distances",
    "position_correlations",
]


@dataclass(frozen=True)
class HiddenGraphCorrelation:
    """The outcome of :func:`hidden_graph_correlation`.

    Attributes:
        r: the correlation (NaN when either side is constant over the pairs).
        p_value: its two-sided p-value (pairs are not independent: indicative only).
        n_pairs: number of distinct pairs ``N (N - 1) / 2``.
        hidden_similarity: ``[n_pairs]`` minus the L2 distance of each pair's hidden states.
        graph_similarity: ``[n_pairs]`` the pair's graph similarity.
        metric: the graph similarity used.
        method: ``"spearman"`` or ``"pearson"``.
    """

    r: float
    p_value: float
    n_pairs: int
    hidden_similarity: np.ndarray
    graph_similarity: np.ndarray
    metric: str
    method: str


def hidden_state_distances(hidden: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pairwise L2 distances ``[N, N]`` between hidden states ``[N, H]``."""
    h = _check_hidden(hidden)
    sq = (h**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * h @ h.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def hidden_graph_correlation(
    hidden: torch.Tensor | np.ndarray,
    architectures: Sequence[Architecture],
    *,
    metric: str = "jaccard",
    method: str = "spearman",
) -> HiddenGraphCorrelation:
    """Correlation between hidden-state similarity and graph similarity over all pairs.

    Args:
        hidden: ``[N, H]`` controller hidden state of each architecture (e.g.
            :meth:`ENASController.hidden_states`), ``N >= 3``.
        architectures: the ``N`` architectures.
        metric: graph similarity (see :func:`~neuronkit.pruning.nas.space.graph_similarity`).
        method: ``"spearman"`` (rank correlation, the paper's) or ``"pearson"``.

    Returns:
        :class:`HiddenGraphCorrelation`; a positive ``r`` means closer hidden states go with
        more similar cells.
    """
    h = _check_hidden(hidden)
    archs = _check_architectures("architectures", architectures)
    if len(archs) != len(h):
        raise ValueError(
            f"architectures must have one entry per hidden state ({len(h)}), got {len(archs)}"
        )
    if len(h) < 3:
        raise ValueError(f"hidden must hold at least 3 states to correlate pairs, got {len(h)}")
    check_choice("metric", metric, SIMILARITY_METRICS)
    check_choice("method", method, ("spearman", "pearson"))
    from scipy import stats

    iu = np.triu_indices(len(h), k=1)
    hs = -hidden_state_distances(h)[iu]
    gs = pairwise_graph_similarity(archs, metric)[iu]
    if np.ptp(hs) == 0 or np.ptp(gs) == 0:
        r, p = float("nan"), float("nan")
    elif method == "spearman":
        res = stats.spearmanr(hs, gs)
        r, p = float(res.statistic), float(res.pvalue)
    else:
        res = stats.pearsonr(hs, gs)
        r, p = float(res.statistic), float(res.pvalue)
    return HiddenGraphCorrelation(r, p, len(hs), hs, gs, metric, method)


def position_correlations(
    hidden: torch.Tensor | np.ndarray, architectures: Sequence[Architecture]
) -> np.ndarray:
    """Which decisions the hidden state remembers: one Spearman ``r`` per sequence position.

    For each token position ``t`` of the architectures' sequences (``[op_0, input_1, op_1,
    ...]``), the rank correlation over all pairs between minus the L2 distance of the hidden
    states and whether the two architectures agree at ``t``. A state that carries every past
    choice gives positive values at every position; an LSTM with a short memory gives values
    near zero except at the last few positions (NaN where all architectures agree at ``t``).

    Args:
        hidden: ``[N, H]`` hidden states, ``N >= 3``.
        architectures: the ``N`` architectures.

    Returns:
        ``[2B - 1]`` correlations.
    """
    h = _check_hidden(hidden)
    archs = _check_architectures("architectures", architectures)
    if len(archs) != len(h):
        raise ValueError(
            f"architectures must have one entry per hidden state ({len(h)}), got {len(archs)}"
        )
    if len(h) < 3:
        raise ValueError(f"hidden must hold at least 3 states to correlate pairs, got {len(h)}")
    from scipy import stats

    iu = np.triu_indices(len(h), k=1)
    hs = -hidden_state_distances(h)[iu]
    seqs = np.asarray([a.to_sequence() for a in archs])
    out = np.full(seqs.shape[1], np.nan)
    if np.ptp(hs) == 0:
        return out
    for t in range(seqs.shape[1]):
        agree = (seqs[:, None, t] == seqs[None, :, t])[iu].astype(float)
        if np.ptp(agree) > 0:
            out[t] = float(stats.spearmanr(hs, agree).statistic)
    return out


def _check_hidden(hidden: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(hidden, torch.Tensor):
        h = hidden.detach().cpu().double().numpy()
    elif isinstance(hidden, np.ndarray):
        h = hidden.astype(np.float64)
    else:
        check_type("hidden", hidden, (torch.Tensor, np.ndarray))
        raise AssertionError  # unreachable
    if h.ndim != 2:
        raise ValueError(f"hidden must be [N, H], got shape {tuple(h.shape)}")
    if not np.isfinite(h).all():
        raise ValueError("hidden must be finite, got NaN or inf")
    return h
