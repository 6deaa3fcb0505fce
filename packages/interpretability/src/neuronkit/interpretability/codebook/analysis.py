"""Which codes stand for which features: precision and recall of codes for labelled features.

Tamkin, Taufeeque & Goodman, "Codebook Features" (2023), Section 4: on TokFSM the features are
the FSM states, and a code that represents a state should fire (almost) only when the network
is in that state (precision) and (almost) whenever it is (recall). For a feature value ``f``
its top code is the code chosen most often on tokens labelled ``f``; its precision is
``P(label = f | code fires)`` and its recall ``P(code fires | label = f)``.

The reference implementation's code search (``codebook_features/code_search_utils.py``,
``get_code_precision_and_recall`` and ``get_codes_from_pattern``) counts a code's firings over
*every* token of the dataset (``act_count_ft_tkns``, built by ``code_search_cache.py`` from all
token positions) and, among the codes whose recall on the pattern exceeds 1%, takes the most
precise one: ``precision_over="all"``, ``top_code="most_precise"``, ``min_recall=0.01``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_choice, check_number, check_type, integer_dtype

__all__ = ["CodeAlignment", "code_feature_alignment", "code_feature_counts"]


def code_feature_counts(
    codes: torch.Tensor, labels: torch.Tensor, *, num_codes: int, num_features: int
) -> torch.Tensor:
    """Contingency table of codes and feature labels.

    Args:
        codes: ``[..., k]`` long ids chosen per token (-1 ids are ignored).
        labels: ``[...]`` long feature label per token; negative labels are ignored.
        num_codes: codebook size ``C``.
        num_features: number of feature values ``F`` (labels lie in ``[0, F)``).

    Returns:
        ``[C, F]`` long: ``counts[c, f]`` = number of labelled tokens with label ``f`` on
        which code ``c`` fired.
    """
    check_type("codes", codes, torch.Tensor)
    check_type("labels", labels, torch.Tensor)
    check_number("num_codes", num_codes, ge=1, integer=True)
    check_number("num_features", num_features, ge=1, integer=True)
    if codes.ndim != labels.ndim + 1 or tuple(codes.shape[:-1]) != tuple(labels.shape):
        raise ValueError(
            f"codes must have shape [*labels.shape, k] = [{', '.join(map(str, labels.shape))}, k], "
            f"got {tuple(codes.shape)}"
        )
    if codes.shape[-1] == 0:
        raise ValueError(f"codes must hold k >= 1 ids per token [..., k], got {tuple(codes.shape)}")
    for name, t in (("codes", codes), ("labels", labels)):
        if not integer_dtype(t):
            raise TypeError(f"{name} must be an integer tensor, got dtype {t.dtype}")
    if bool((codes < -1).any()):
        raise ValueError(f"codes must be >= -1 (-1: no code), got min {int(codes.min())}")
    if bool((codes >= num_codes).any()):
        raise ValueError(f"codes must be < num_codes={num_codes}, got max {int(codes.max())}")
    if bool((labels >= num_features).any()):
        raise ValueError(
            f"labels must be < num_features={num_features}, got max {int(labels.max())}"
        )
    k = codes.shape[-1]
    c = codes.reshape(-1, k).long().cpu()
    y = labels.reshape(-1, 1).long().cpu().expand(-1, k)
    keep = (c >= 0) & (y >= 0)
    flat = c[keep] * num_features + y[keep]
    return torch.bincount(flat, minlength=num_codes * num_features).reshape(num_codes, num_features)


@dataclass(frozen=True)
class CodeAlignment:
    """How well each feature's top code represents it.

    Attributes:
        counts: ``[C, F]`` contingency table (:func:`code_feature_counts`).
        features: ``[F']`` the feature values that occurred.
        top_code: ``[F']`` each feature's most frequent code.
        precision: ``[F']`` ``P(label = f | top code fires)`` over labelled tokens.
        recall: ``[F']`` ``P(top code fires | label = f)``.
    """

    counts: np.ndarray
    features: np.ndarray
    top_code: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    @property
    def mean_precision(self) -> float:
        """Mean precision over the features that occurred."""
        return float(self.precision.mean())

    @property
    def mean_recall(self) -> float:
        """Mean recall over the features that occurred."""
        return float(self.recall.mean())

    @property
    def distinct_top_codes(self) -> int:
        """How many different codes are top codes (== number of features when all differ)."""
        return int(np.unique(self.top_code).size)

    def code_for(self, feature: int) -> int:
        """The top code of ``feature`` (raises ValueError if it never occurred)."""
        hits = np.flatnonzero(self.features == feature)
        if hits.size == 0:
            raise ValueError(f"feature must be one of the observed features, got {feature!r:.80}")
        return int(self.top_code[hits[0]])


def code_feature_alignment(
    codes: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_codes: int,
    num_features: int,
    precision_over: str = "labelled",
    top_code: str = "most_frequent",
    min_recall: float = 0.01,
) -> CodeAlignment:
    """Top code per feature with its precision and recall (see the module docstring).

    Args:
        codes: ``[..., k]`` long code ids per token (e.g. recorded by
            :meth:`CodebookModel.record_codes`).
        labels: ``[...]`` long feature label per token (e.g. the FSM state at tokens that
            complete a state); negative labels are ignored.
        num_codes, num_features: sizes of the code and label ranges.
        precision_over: ``"labelled"``: a code's firings are counted on labelled tokens only
            (precision among the labelled tokens); ``"all"``: on every token of ``codes``,
            labelled or not (the reference implementation's precision).
        top_code: ``"most_frequent"``: each feature's code chosen most often on its tokens;
            ``"most_precise"``: the most precise code among those whose recall on the feature
            exceeds ``min_recall`` (ties: the higher recall), as the reference's code search.
            A feature with no code above ``min_recall`` falls back to its most frequent code.
        min_recall: recall floor for ``top_code="most_precise"``, in ``[0, 1)``.

    Returns:
        a :class:`CodeAlignment` over the features that occur at least once.
    """
    check_choice("precision_over", precision_over, ("labelled", "all"))
    check_choice("top_code", top_code, ("most_frequent", "most_precise"))
    check_number("min_recall", min_recall, ge=0, lt=1)
    counts = code_feature_counts(
        codes, labels, num_codes=num_codes, num_features=num_features
    ).numpy()
    lab = labels.reshape(-1).cpu().numpy()
    lab = lab[lab >= 0]
    occurrences = np.bincount(lab, minlength=num_features)
    features = np.flatnonzero(occurrences > 0)
    if features.size == 0:
        raise ValueError("labels must contain at least one non-negative label")
    if precision_over == "all":
        ids = codes.reshape(-1).long().cpu()
        firings = torch.bincount(ids[ids >= 0], minlength=num_codes).numpy().astype(np.float64)
    else:
        firings = counts.sum(1).astype(np.float64)
    sub = counts[:, features].astype(np.float64)  # [C, F']
    top = sub.argmax(0)
    if top_code == "most_precise":
        prec_all = np.divide(
            sub, firings[:, None], out=np.zeros_like(sub), where=firings[:, None] > 0
        )
        eligible = sub / occurrences[features] > min_recall
        masked = np.where(eligible, prec_all, -1.0)
        # the most precise eligible code; ties go to the higher recall
        tied = eligible & (masked >= masked.max(0, keepdims=True))
        best = np.where(tied, sub, -1.0).argmax(0)
        top = np.where(eligible.any(0), best, top)
    hits = counts[top, features].astype(np.float64)
    fired = firings[top]
    precision = np.divide(hits, fired, out=np.zeros_like(hits), where=fired > 0)
    recall = hits / occurrences[features]
    return CodeAlignment(
        counts=counts, features=features, top_code=top, precision=precision, recall=recall
    )
