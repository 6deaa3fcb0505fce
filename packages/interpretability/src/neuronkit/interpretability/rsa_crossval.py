"""Weighted model RDMs: fitting their weights, and cross-validated evaluation of models.

A weighted model predicts the data RDM as a weighted sum of component RDMs,
``sum_k theta_k R_k`` (rsatoolbox's ``ModelWeighted``). Fitted on the same data it is evaluated
on, it is favoured over a fixed model by its free weights; cross-validation fits on some subjects
and conditions and evaluates on others (Schütt et al., "Statistical inference on
representational geometries", eLife 2023):

* :func:`fit_weights` finds the weights under a comparison of the cosine family: it pools the
  data RDMs scaled to unit norm in the comparison's inner product, centres for the
  correlations, and solves the least-squares problem of the pooled RDM on the components in
  the comparison's inner product (the whitened ones: the inverse covariance of the
  dissimilarities), with optional ridge and, by default, nonnegative weights (rsatoolbox's
  ``fit_regress`` / ``fit_regress_nn``; same weights, tested).
* :func:`fit_interpolation` finds the best point between neighbouring RDMs of a sequence
  (any comparison; rsatoolbox's ``fit_interpolate``).
* :func:`crossvalidate` splits subjects and conditions into folds; for each pair of a subject
  fold and a condition fold it fits the weighted models (and picks the best candidate of a
  :class:`Selection`, rsatoolbox's ``ModelSelect``, and the best point between two
  neighbouring RDMs of an :class:`Interpolation`, ``ModelInterpolate``) on the other
  subjects' RDMs over the other conditions, and compares every model's prediction with the
  held-out subjects' RDMs over the held-out conditions. Each fold's noise ceiling compares
  the held-out RDMs with the pool of the other subjects (lower) and of all subjects (upper) on
  the held-out conditions (rsatoolbox's ``sets_k_fold``, ``crossval`` and
  ``cv_noise_ceiling``; same numbers for the same folds, tested).
* :func:`bootstrap_crossvalidate` cross-validates bootstrap samples of subjects and / or
  conditions and takes the variance of the random fold assignment out of the bootstrap
  variance, for standard errors and tests that generalize (rsatoolbox's ``bootstrap_crossval``).

Shapes: data RDMs ``[n_subjects, n_pairs]`` or ``[n_subjects, n, n]``; components
``[K, n_pairs]`` or ``[K, n, n]``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar, nnls

from neuronkit.common import check_choice, check_number, check_seed, check_type, progress

from .rsa import (
    COMPARISONS,
    _as_vectors,
    _average_ranks,
    _centred,
    _compare_ranks,
    _compare_stacks,
    _max_exponent,
    _unit_rows,
    _whitened_products,
    n_conditions,
)
from .rsa_inference import (
    EvaluationTests,
    _check_defined,
    _data_rdms,
    _draws,
    _model_rdms,
    _pooled,
    _sampled_pairs,
)

__all__ = [
    "CV_BOOTSTRAPS",
    "FITTED_COMPARISONS",
    "BootstrapCrossValidation",
    "CrossValidation",
    "Interpolation",
    "Selection",
    "bootstrap_crossvalidate",
    "crossvalidate",
    "fit_interpolation",
    "fit_weights",
]

#: the comparisons whose weights :func:`fit_weights` solves for
FITTED_COMPARISONS = ("cosine", "correlation", "whitened_cosine", "whitened_correlation")


def _normal_equations(
    components: np.ndarray, target: np.ndarray, method: str, kept: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix ``[K, K]`` of the components ``[K, P]`` and their products ``[K]`` with the
    pooled target ``[P]`` in the inner product of ``method`` (centred rows for the
    correlations; the target's mean does not matter then, but whitening needs it centred).
    ``kept``: the pairs the vectors hold (a bootstrap sample of conditions), for whitening."""
    if method in ("correlation", "whitened_correlation"):
        components = _centred(components)
        target = target - target.mean()
    if method.startswith("whitened"):
        gram = _whitened_products(components, components, kept)[0]
        return gram, _whitened_products(components, target[None], kept)[0][:, 0]
    return components @ components.T, components @ target


def _solve(gram: np.ndarray, rhs: np.ndarray, nonnegative: bool) -> np.ndarray:
    """``argmin theta^T G theta - 2 theta^T b`` (over ``theta >= 0`` with ``nonnegative``): the
    least-squares weights from the normal equations. ``G`` may be singular (collinear
    components): the minimum-norm solution, or for the nonnegative problem the one
    scipy's ``nnls`` finds on ``G``'s square root ``Lambda^(1/2) Q^T`` (``G = Q Lambda Q^T``)."""
    if not nonnegative:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]
    eigenvalues, vectors = np.linalg.eigh(gram)
    top = float(eigenvalues[-1])
    keep = eigenvalues > top * len(eigenvalues) * np.finfo(np.float64).eps
    if not top > 0 or not keep.any():
        return np.zeros(len(rhs))
    roots = np.sqrt(eigenvalues[keep])
    basis = vectors[:, keep].T  # [r, K]
    return nnls(roots[:, None] * basis, (basis @ rhs) / roots)[0]


def _target(data: np.ndarray, method: str, kept: np.ndarray | None = None) -> np.ndarray:
    """The RDM ``[P]`` the weights are fitted to: the mean of the data RDMs ``[S, P]`` each
    scaled to unit norm in the comparison's inner product (:func:`pool_rdms` for the cosine and
    correlation; for the whitened forms the whitened norm, as rsatoolbox's fitters pool)."""
    if not method.startswith("whitened"):
        return _pooled(data, method)
    if method == "whitened_correlation":
        data = _centred(data)
    norms = _whitened_products(data, data[:1], kept)[1]
    return (data / norms[:, None]).mean(axis=0)


def _fit(
    components: np.ndarray,
    data: np.ndarray,
    method: str,
    nonnegative: bool,
    ridge: float,
    normalize: bool,
    kept: np.ndarray | None = None,
) -> np.ndarray:
    gram, rhs = _normal_equations(components, _target(data, method, kept), method, kept)
    theta = _solve(gram + ridge * np.eye(len(gram)), rhs, nonnegative)
    norm = float(np.linalg.norm(theta))
    return theta / norm if normalize and norm > 0 else theta


def _check_fit_options(method: str | None, nonnegative: bool, ridge: float) -> None:
    """The fit's options, and ``method`` unless ``None`` (no model is fitted)."""
    check_type("nonnegative", nonnegative, bool)
    check_number("ridge", ridge, ge=0)
    if method is None:
        return
    if method not in FITTED_COMPARISONS and method in COMPARISONS:
        raise ValueError(
            f"method must be one of {FITTED_COMPARISONS} to fit weights, got {method!r}: rank "
            "comparisons have no least-squares solution"
        )
    check_choice("method", method, FITTED_COMPARISONS)


def fit_weights(
    components: Any,
    data: Any,
    method: str = "cosine",
    *,
    nonnegative: bool = True,
    ridge: float = 0.0,
    normalize: bool = True,
) -> np.ndarray:
    """Weights ``theta [K]`` of component RDMs whose weighted sum best matches ``data``.

    Least squares of the data's pool on the components in the inner product ``method``
    compares with: plain (cosine), centred (correlation) or whitened by the inverse covariance
    of the dissimilarities (whitened forms). The pool is the mean of the data RDMs scaled to
    unit norm in that inner product (:func:`~neuronkit.interpretability.pool_rdms` for the
    cosine and correlation). rsatoolbox's ``fit_regress`` (``nonnegative=False``) and
    ``fit_regress_nn``.

    Args:
        components: component RDMs ``[K, n_pairs]`` or ``[K, n, n]`` (one RDM: ``K = 1``).
        data: one RDM or the subjects' RDMs ``[S, n_pairs]`` / ``[S, n, n]``.
        method: :data:`FITTED_COMPARISONS` (rsatoolbox ``"cosine"``, ``"corr"``,
            ``"cosine_cov"``, ``"corr_cov"``).
        nonnegative: constrain the weights to ``>= 0`` (the prediction stays a dissimilarity).
        ridge: weight of the penalty ``ridge * |theta|^2``, relative to the normalized
            problem's Gram matrix (rsatoolbox's ``ridge_weight``).
        normalize: scale ``theta`` to unit norm (the comparisons ignore the scale).

    Returns:
        ``[K]`` float64; all zero when no nonnegative weights improve on the zero prediction.
    """
    _check_fit_options(method, nonnegative, ridge)
    check_type("normalize", normalize, bool)
    comps, _ = _as_vectors("components", components)
    v = _fitted_data("components", comps, data, method)
    return _fit(comps, v, method, nonnegative, float(ridge), normalize)


def _fitted_data(name: str, stack: np.ndarray, data: Any, method: str) -> np.ndarray:
    """The data RDMs ``[S, P]`` that a fit of ``stack [K, P]`` (the argument ``name``) takes:
    as many dissimilarities, each RDM defined for ``method``."""
    v, _ = _as_vectors("data", data)
    if stack.shape[1] != v.shape[1]:
        raise ValueError(
            f"{name} and data must have the same number of dissimilarities, got "
            f"{stack.shape[1]} and {v.shape[1]}"
        )
    _check_defined("data", v, method)
    return _unit_rows(v)  # scale-free for every fit (as _data_rdms): no over- or underflow


def _interpolate(
    rdms: np.ndarray, data: np.ndarray, method: str, kept: np.ndarray | None = None
) -> np.ndarray:
    """Weights ``[K]`` of the best point ``w R_k + (1 - w) R_(k+1)`` between neighbouring RDMs
    of ``rdms [K, P]`` for the data rows ``[S, P]``: on each segment scipy's bounded Brent
    search (``xatol`` 1e-5) maximizes the mean comparison, and the first best segment wins (as
    rsatoolbox's ``fit_interpolate``). Under the cosine family the mean comparison is the
    cosine with the pooled target (:func:`_target`), from a ``[K, K]`` Gram matrix; Spearman
    and rho-a rank the data once."""
    if method in FITTED_COMPARISONS:
        gram, rhs = _normal_equations(rdms, _target(data, method, kept), method, kept)

        def score(theta: np.ndarray, k: int) -> float:
            square = float(theta @ gram[k : k + 2, k : k + 2] @ theta)
            return float(theta @ rhs[k : k + 2]) / math.sqrt(square) if square > 0 else math.nan

    elif method in ("spearman", "rho_a"):
        ranks = _average_ranks(data, center=True)

        def score(theta: np.ndarray, k: int) -> float:
            prediction = _average_ranks((theta @ rdms[k : k + 2])[None], center=True)
            return float(_compare_ranks(prediction, ranks, method).mean())

    else:

        def score(theta: np.ndarray, k: int) -> float:
            prediction = theta @ rdms[k : k + 2]
            return float(_compare_stacks(prediction[None], data, method, kept).mean())

    best, theta = math.inf, np.zeros(len(rdms))
    for k in range(len(rdms) - 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            found = minimize_scalar(
                lambda w, k=k: -np.nan_to_num(score(np.array([w, 1.0 - w]), k), nan=-np.inf),
                bounds=(0.0, 1.0),
                method="bounded",
            )
        if k == 0 or found.fun < best:
            best, theta[:] = found.fun, 0.0
            theta[k : k + 2] = found.x, 1.0 - found.x
    return theta


def fit_interpolation(rdms: Any, data: Any, method: str = "cosine") -> np.ndarray:
    """Weights ``theta [K]`` of the point between two neighbouring RDMs of a sequence that
    compares best with ``data``: ``w R_k + (1 - w) R_(k+1)``, ``0 <= w <= 1``.

    For a model family ordered along one parameter (a network's layers, a model's training
    checkpoints, a noise level): each segment between neighbours is searched by scipy's
    bounded Brent method for the best mean comparison with the data RDMs (rsatoolbox's
    ``fit_interpolate`` for a ``ModelInterpolate``).

    Args:
        rdms: the sequence ``[K >= 2, n_pairs]`` or ``[K, n, n]``.
        data: one RDM or the subjects' RDMs ``[S, n_pairs]`` / ``[S, n, n]``.
        method: any comparison (:data:`~neuronkit.interpretability.COMPARISONS`).

    Returns:
        ``[K]`` float64: ``w`` and ``1 - w`` at the best segment's two RDMs, zero elsewhere.
    """
    check_choice("method", method, COMPARISONS)
    stack = _sequence("rdms", rdms)
    return _interpolate(stack, _fitted_data("rdms", stack, data, method), method)


def _sequence(name: str, rdms: Any) -> np.ndarray:
    """An interpolation's RDMs ``[K >= 2, P]``."""
    stack = _as_vectors(name, rdms)[0]
    if stack.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 RDMs to interpolate between, got 1")
    # one power of two for all (exact): the points between them and their comparisons do not
    # change, and their Gram matrices neither over- nor underflow
    return np.ldexp(stack, -_max_exponent(stack))


# --------------------------------------------------------------------------------------------
# cross-validation


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validated evaluations of model RDMs (:func:`crossvalidate`).

    Attributes:
        names: the models' names ``[M]``.
        method: the comparison.
        evaluations: ``[F, M]`` mean comparison of each model's prediction with the held-out
            subjects' RDMs over the held-out conditions of fold ``f`` (NaN where a prediction is
            all zero).
        ceilings: ``[F, 2]`` lower and upper noise ceiling of each fold.
        folds: ``[F, 2]`` the subject fold and the condition fold of each row.
        subject_fold: ``[S]`` the fold of each subject.
        condition_fold: ``[n]`` the fold of each condition.
        weights: the fitted weights ``[F, K]`` of each weighted model (one-hot: the chosen
            candidate of a :class:`Selection`; ``w``, ``1 - w`` at two neighbours of an
            :class:`Interpolation`), by name.
    """

    names: tuple[str, ...]
    method: str
    evaluations: np.ndarray
    ceilings: np.ndarray
    folds: np.ndarray
    subject_fold: np.ndarray
    condition_fold: np.ndarray
    weights: Mapping[str, np.ndarray]

    @property
    def means(self) -> np.ndarray:
        """``[M]`` mean evaluation of each model over the folds."""
        return np.nanmean(self.evaluations, axis=0)

    @property
    def noise_ceiling(self) -> np.ndarray:
        """``[2]`` lower and upper bound, averaged over the folds."""
        return self.ceilings.mean(axis=0)

    def summary(self) -> str:
        """A table of the models' mean evaluations, their spread over folds and the noise
        ceiling. (k-fold cross-validation gives no variance estimate for tests: Schütt et al.
        bootstrap around it.)"""
        lower, upper = self.noise_ceiling
        spread = np.nanstd(self.evaluations, axis=0)
        width = max(len("model"), *(len(name) for name in self.names))
        lines = [
            f"{self.method} evaluations of {len(self.names)} models, cross-validated over "
            f"{int(self.subject_fold.max()) + 1} subject x {int(self.condition_fold.max()) + 1} "
            f"condition folds",
            f"noise ceiling: {lower:.4f} to {upper:.4f}",
            f"{'model':<{width}}  {'mean':>8}  {'sd over folds':>13}  fitted",
        ]
        for k, name in enumerate(self.names):
            fitted = "yes" if name in self.weights else "no"
            lines.append(f"{name:<{width}}  {self.means[k]:8.4f}  {spread[k]:13.4f}  {fitted}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Selection:
    """A model that predicts with whichever of its candidate RDMs ``[K, n_pairs]`` /
    ``[K, n, n]`` compares best with the training data (rsatoolbox's ``ModelSelect`` and
    ``fit_select``), e.g. the layers of a network. Any comparison."""

    candidates: Any


@dataclass(frozen=True)
class Interpolation:
    """A model that predicts with the best point ``w R_k + (1 - w) R_(k+1)`` between two
    neighbouring RDMs of a sequence ``[K >= 2, n_pairs]`` / ``[K, n, n]`` on the training data
    (rsatoolbox's ``ModelInterpolate`` and ``fit_interpolate``; :func:`fit_interpolation`),
    e.g. a network's layers in order. Any comparison."""

    rdms: Any


def _models(
    models: Any, names: Sequence[str] | None
) -> tuple[list[np.ndarray], tuple[str, ...], list[str]]:
    """Each model's RDMs ``[K, P]``, the names, and each model's kind: ``"fixed"`` (one RDM),
    ``"weighted"`` (``K >= 2`` components in a mapping), ``"selection"`` (a
    :class:`Selection`) or ``"interpolation"`` (an :class:`Interpolation`)."""
    if not isinstance(models, Mapping):
        fixed, found = _model_rdms(models, names)
        return [row[None] for row in fixed], found, ["fixed"] * len(found)
    if names is not None:
        raise ValueError("names must not be given with a mapping of models (its keys name them)")
    if not models:
        raise ValueError("models must hold at least one model, got an empty mapping")
    stacks, kinds = [], []
    for key, value in models.items():
        name = f"models[{key!r}]"
        if isinstance(value, Selection):
            stack, kind = _as_vectors(name, value.candidates)[0], "selection"
        elif isinstance(value, Interpolation):
            stack, kind = _sequence(name, value.rdms), "interpolation"
        else:
            stack = _as_vectors(name, value)[0]
            kind = "weighted" if stack.shape[0] > 1 else "fixed"
        stacks.append(stack)
        kinds.append(kind)
    if len({s.shape[1] for s in stacks}) > 1:
        raise ValueError("models must all have the same number of conditions")
    return stacks, tuple(str(key) for key in models), kinds


def _select(
    candidates: np.ndarray, data: np.ndarray, method: str, kept: np.ndarray | None = None
) -> np.ndarray:
    """One-hot ``[K]`` weights of the candidate ``[K, P]`` with the best mean comparison with
    the data rows ``[S, P]`` (the first of equals; an undefined comparison never wins)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = _compare_stacks(candidates, data, method, kept).mean(axis=1)
    theta = np.zeros(len(candidates))
    theta[int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))] = 1.0
    return theta


def _default_condition_folds(count: float) -> int:
    """rsatoolbox's ``default_k_pattern`` for ``count`` conditions (2 below 12, up to 5 from
    40), held to folds of at least 3 conditions."""
    k = 2 if count < 12 else 3 if count < 24 else 4 if count < 40 else 5
    return max(1, min(k, int(count // 3)))


def _default_subject_folds(count: float) -> int:
    """rsatoolbox's ``default_k_rdm`` for ``count`` subjects: 2 below 6, up to 5 from 20."""
    return 2 if count < 6 else 3 if count < 12 else 4 if count < 20 else 5


def _check_folds(name: str, k: int, n: int, unit: str, least: int) -> None:
    """``k`` folds of ``n`` units must leave ``least`` units in the smallest held-out fold and
    in the smallest training set (all units with one fold)."""
    check_number(name, k, ge=1, integer=True)
    trained = n - -(-n // k) if k > 1 else n
    if n // k < least or trained < least:
        raise ValueError(
            f"{name} must leave at least {least} {unit} in every held-out fold and training "
            f"set, which {k} folds of {n} {unit} do not"
        )


def _assign(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A random fold ``[n]`` for each of ``n`` units, fold sizes differing by at most one."""
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % k
    return fold


def _inputs(
    models: Any,
    data: Any,
    method: str,
    names: Sequence[str] | None,
    nonnegative: bool,
    ridge: float,
    show_progress: bool | None,
) -> tuple[list[np.ndarray], tuple[str, ...], list[Callable[..., np.ndarray] | None], np.ndarray]:
    """Checked models (:func:`_models`), each one's fit (``None`` for a fixed model; called
    as ``fit(rdms [K, P], data [S, P], kept=...)`` for weights ``[K]``) and the data RDMs
    ``[S, P]``."""
    check_choice("method", method, COMPARISONS)
    if show_progress is not None:
        check_type("show_progress", show_progress, bool)
    stacks, found, kinds = _models(models, names)
    _check_fit_options(method if "weighted" in kinds else None, nonnegative, ridge)
    data_v = _data_rdms(data, method)
    if stacks[0].shape[1] != data_v.shape[1]:
        raise ValueError(
            f"models and data must have the same number of dissimilarities, got "
            f"{stacks[0].shape[1]} and {data_v.shape[1]}"
        )
    fits = {
        "fixed": None,
        "weighted": functools.partial(
            _fit, method=method, nonnegative=nonnegative, ridge=float(ridge), normalize=True
        ),
        "selection": functools.partial(_select, method=method),
        "interpolation": functools.partial(_interpolate, method=method),
    }
    return stacks, found, [fits[kind] for kind in kinds], data_v


def _fold_grid(k_subjects: int, k_conditions: int) -> np.ndarray:
    """``[F, 2]`` (subject fold, condition fold) of every fold, subject folds outer."""
    return np.array([(s, c) for s in range(k_subjects) for c in range(k_conditions)])


def _fold_evaluations(
    stacks: list[np.ndarray],
    fits: list[Callable[..., np.ndarray] | None],
    data: np.ndarray,
    method: str,
    units: tuple[np.ndarray, np.ndarray],
    unit_folds: tuple[np.ndarray, np.ndarray],
    folds: np.ndarray,
    show_progress: bool | None = False,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
    """Evaluations ``[F, M]``, noise ceilings ``[F, 2]`` and the fitted models' weights
    ``[F, K]`` (``None`` for fixed models) of the folds ``[F, 2]`` of one sample.

    ``units``: the sample's subjects and conditions (indices; repeated in a bootstrap sample,
    where the pairs of two copies of one condition are left out, as in
    :func:`~neuronkit.interpretability.evaluate_models`); ``unit_folds``: the fold of every
    subject ``[S]`` and condition ``[n]`` index. A single fold on an axis trains on all of it.
    """
    subjects, conditions = units
    subject_of, condition_of = unit_folds[0][subjects], unit_folds[1][conditions]
    k_subjects, k_conditions = (int(k) + 1 for k in folds.max(axis=0))
    n = n_conditions(data.shape[1])
    sample_pairs = _sampled_pairs(conditions, n)[0]
    pooled = np.empty(data.shape[1])  # the sample's pool, by pair (copies have equal values)
    pooled[sample_pairs] = _pooled(data[np.ix_(subjects, sample_pairs)], method)
    evaluations = np.empty((len(folds), len(stacks)))
    ceilings = np.empty((len(folds), 2))
    weights = [
        None if fit is None else np.empty((len(folds), s.shape[0]))
        for s, fit in zip(stacks, fits, strict=True)
    ]
    for f in progress(range(len(folds)), show_progress=show_progress, desc="folds"):
        s, c = folds[f]
        test_subjects = subjects[subject_of == s]
        train_subjects = subjects[subject_of != s] if k_subjects > 1 else subjects
        test_pairs, test_kept = _sampled_pairs(conditions[condition_of == c], n)
        train_pairs, train_kept = _sampled_pairs(
            conditions[condition_of != c] if k_conditions > 1 else conditions, n
        )
        train = data[np.ix_(train_subjects, train_pairs)]
        test = data[np.ix_(test_subjects, test_pairs)]
        predictions = np.empty((len(stacks), len(test_pairs)))
        for m, (stack, fit, fitted) in enumerate(zip(stacks, fits, weights, strict=True)):
            if fit is None or fitted is None:
                predictions[m] = stack[0, test_pairs]
                continue
            fitted[f] = fit(stack[:, train_pairs], train, kept=_missing(train_kept))
            predictions[m] = fitted[f] @ stack[:, test_pairs]
        pools = np.stack(
            [_pooled(data[np.ix_(train_subjects, test_pairs)], method), pooled[test_pairs]]
        )
        kept = _missing(test_kept)
        with np.errstate(divide="ignore", invalid="ignore"):
            evaluations[f] = _compare_stacks(predictions, test, method, kept).mean(axis=1)
            ceilings[f] = _compare_stacks(pools, test, method, kept).mean(axis=1)
    return evaluations, ceilings, weights


def _missing(kept: np.ndarray) -> np.ndarray | None:
    """``kept`` where pairs are missing, ``None`` (the fast whitening) where none is."""
    return None if kept.all() else kept


def crossvalidate(
    models: Any,
    data: Any,
    method: str = "cosine",
    *,
    condition_folds: int | None = None,
    subject_folds: int | None = None,
    nonnegative: bool = True,
    ridge: float = 0.0,
    seed: int = 0,
    names: Sequence[str] | None = None,
    show_progress: bool | None = None,
) -> CrossValidation:
    """Evaluate fixed and weighted model RDMs by cross-validation over subjects and conditions.

    Subjects and conditions are split at random into ``subject_folds`` and ``condition_folds``
    groups. For each pair of a subject group and a condition group, the weighted models are
    fitted (:func:`fit_weights`) to the other subjects' RDMs over the other conditions, and
    every model's prediction is compared with the group's RDMs over the group's conditions.
    One fold on an axis trains and tests on all of it (no cross-validation along it). For
    tests between models, :func:`bootstrap_crossvalidate`.

    Args:
        models: a mapping of names to one RDM (a fixed model), to component RDMs
            ``[K >= 2, n_pairs]`` / ``[K, n, n]`` (a weighted model), to a
            :class:`Selection` of candidate RDMs or to an :class:`Interpolation` along a
            sequence of RDMs; or fixed model RDMs ``[M, n_pairs]`` / ``[M, n, n]``.
        data: the subjects' RDMs ``[S >= 2, n_pairs]`` or ``[S, n, n]``, same conditions.
        method: comparison (:data:`~neuronkit.interpretability.COMPARISONS`; weighted models
            need one of :data:`FITTED_COMPARISONS`).
        condition_folds: number of condition groups, each of at least 3 conditions (default:
            rsatoolbox's, 2 to 5 as the conditions grow, capped so that groups have 3).
        subject_folds: number of subject groups (default: rsatoolbox's, 2 to 5).
        nonnegative, ridge: as in :func:`fit_weights`.
        seed: seed of the fold assignment (the global random state is left alone).
        names: the models' names for an array of models.
        show_progress: progress bar over the folds; ``None``: only on a terminal.

    Returns:
        :class:`CrossValidation` with ``subject_folds * condition_folds`` rows.
    """
    check_seed(seed)
    stacks, found, fits, data_v = _inputs(
        models, data, method, names, nonnegative, ridge, show_progress
    )
    n_subjects, n = data_v.shape[0], n_conditions(data_v.shape[1])
    k_conditions = _default_condition_folds(n) if condition_folds is None else condition_folds
    k_subjects = _default_subject_folds(n_subjects) if subject_folds is None else subject_folds
    _check_folds("condition_folds", k_conditions, n, "conditions", 3)
    _check_folds("subject_folds", k_subjects, n_subjects, "subjects", 1)
    rng = np.random.default_rng(seed)
    subject_fold = _assign(n_subjects, k_subjects, rng)
    condition_fold = _assign(n, k_conditions, rng)
    folds = _fold_grid(k_subjects, k_conditions)
    evaluations, ceilings, weights = _fold_evaluations(
        stacks,
        fits,
        data_v,
        method,
        (np.arange(n_subjects), np.arange(n)),
        (subject_fold, condition_fold),
        folds,
        show_progress,
    )
    return CrossValidation(
        names=found,
        method=method,
        evaluations=evaluations,
        ceilings=ceilings,
        folds=folds,
        subject_fold=subject_fold,
        condition_fold=condition_fold,
        weights={name: w for name, w in zip(found, weights, strict=True) if w is not None},
    )


# --------------------------------------------------------------------------------------------
# bootstrapped cross-validation


@dataclass(frozen=True)
class BootstrapCrossValidation(EvaluationTests):
    """Cross-validated evaluations of model RDMs in bootstrap samples of subjects and / or
    conditions (:func:`bootstrap_crossvalidate`), with the tests of
    :class:`~neuronkit.interpretability.ModelEvaluation`.

    Attributes:
        names: the models' names ``[M]``.
        method: the comparison.
        bootstrap: what was resampled: ``"subjects"``, ``"conditions"`` or ``"both"``.
        samples: ``[n_cv, N, M]`` each sample's evaluations (mean over its folds) for each of
            ``n_cv`` fold assignments (NaN: samples too small for the folds).
        ceiling_samples: ``[n_cv, N, 2]`` their noise ceilings.
        n_subjects: the number of subjects of the data.
        n_conditions: the number of conditions.
        subject_folds: the subject folds of every sample.
        condition_folds: the condition folds of every sample.
    """

    names: tuple[str, ...]
    method: str
    bootstrap: str
    samples: np.ndarray
    ceiling_samples: np.ndarray
    n_subjects: int
    n_conditions: int
    subject_folds: int
    condition_folds: int

    @property
    def means(self) -> np.ndarray:
        """``[M]`` mean evaluation of each model over the valid samples (rsatoolbox's)."""
        return self._valid()[0].mean(axis=0)

    @property
    def noise_ceiling(self) -> np.ndarray:  # type: ignore[override]
        """``[2]`` lower and upper bound, averaged over the valid samples."""
        return self._valid()[1].mean(axis=0)

    @property
    def dof(self) -> int:
        """Degrees of freedom of the t-tests: the resampled units (subjects, conditions or the
        fewer of the two) less one."""
        if self.bootstrap == "subjects":
            return self.n_subjects - 1
        if self.bootstrap == "conditions":
            return self.n_conditions - 1
        return min(self.n_subjects, self.n_conditions) - 1

    def _valid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        samples, ceilings = self.samples.mean(axis=0), self.ceiling_samples.mean(axis=0)
        ok = np.isfinite(samples).all(axis=1) & np.isfinite(ceilings).all(axis=1)
        if ok.sum() < 2:
            raise ValueError(
                f"only {int(ok.sum())} of {len(ok)} bootstrap samples were large enough for "
                "the folds: draw more samples or use fewer folds"
            )
        return samples[ok], ceilings[ok], ok

    def _variance(self, combination: np.ndarray, against_ceiling: bool = False) -> np.ndarray:
        """The bootstrap variance of the samples' evaluations less the part that their random
        fold assignment adds: from ``n_cv`` assignments per sample,
        ``(n_cv var(mean over assignments) - mean var(one assignment)) / (n_cv - 1)``
        (rsatoolbox's ``bootstrap_crossval`` correction), scaled by ``n / (n - 1)`` for the
        ``n`` resampled units. NaN (with a warning) where the correction leaves nothing
        positive: the samples cannot tell the bootstrap's variance from the assignments'
        (rsatoolbox clips it to 0, which gives a standard error of 0 and p-values near 0)."""
        ok = self._valid()[2]
        values = self.samples[:, ok] @ combination  # [n_cv, N', K]
        if against_ceiling:
            values = values - self.ceiling_samples[:, ok, :1]
        variance = values.mean(axis=0).var(axis=0, ddof=1)
        n_cv = values.shape[0]
        if n_cv > 1:
            one = values.var(axis=1, ddof=1).mean(axis=0)
            variance = (n_cv * variance - one) / (n_cv - 1)
            if not (variance > 0).all():
                warnings.warn(
                    "the fold assignments' variance exceeds the bootstrap's for some models or "
                    "differences: their standard errors and t-tests are NaN; draw more bootstrap "
                    "samples (n_bootstrap) or fold assignments (n_cv)",
                    stacklevel=3,
                )
                variance = np.where(variance > 0, variance, np.nan)
        n = self.dof + 1
        return variance * n / (n - 1)

    def _header(self) -> str:
        return (
            f"{self.method} evaluations of {len(self.names)} models, cross-validated over "
            f"{self.subject_folds} subject x {self.condition_folds} condition folds "
            f"({self.samples.shape[0]} assignments) in {self.samples.shape[1]} bootstrap samples "
            f"of {self.bootstrap} ({self.n_subjects} subjects, {self.n_conditions} conditions)"
        )


#: what :func:`bootstrap_crossvalidate` can resample
CV_BOOTSTRAPS = ("subjects", "conditions", "both")

#: the share of distinct units in a bootstrap sample, ``1 - 1 / e`` in expectation
_DISTINCT = 1 - math.exp(-1)


def bootstrap_crossvalidate(
    models: Any,
    data: Any,
    method: str = "cosine",
    *,
    bootstrap: str = "both",
    n_bootstrap: int = 1000,
    n_cv: int = 2,
    condition_folds: int | None = None,
    subject_folds: int | None = None,
    nonnegative: bool = True,
    ridge: float = 0.0,
    seed: int = 0,
    names: Sequence[str] | None = None,
    show_progress: bool | None = None,
) -> BootstrapCrossValidation:
    """Cross-validate fixed and weighted model RDMs within bootstrap samples, for standard
    errors and tests that generalize to new subjects and / or conditions (Schütt et al. 2023;
    rsatoolbox's ``bootstrap_crossval``).

    Each sample draws ``S`` subjects and / or ``n`` conditions with replacement and is
    cross-validated ``n_cv`` times (:func:`crossvalidate`, copies of a subject or condition in
    the same fold), each time with a new random fold assignment; the variance the assignment
    adds is taken out of the bootstrap variance. A sample with fewer distinct subjects than
    subject folds, or fewer than 3 distinct conditions per condition fold, is left out.

    Args:
        models, data, method, nonnegative, ridge, names: as in :func:`crossvalidate`.
        bootstrap: ``"subjects"``, ``"conditions"`` or ``"both"``.
        n_bootstrap: number of bootstrap samples (>= 2).
        n_cv: fold assignments per sample (>= 1; 1 leaves the assignment's variance in).
        condition_folds, subject_folds: folds per sample (default: rsatoolbox's for the
            expected number of distinct units in a sample, ``1 - 1/e`` of them).
        seed: seed of the draws and assignments (the global random state is left alone).
        show_progress: progress bar over the samples; ``None``: only on a terminal.

    Returns:
        :class:`BootstrapCrossValidation`.
    """
    check_choice("bootstrap", bootstrap, CV_BOOTSTRAPS)
    check_number("n_bootstrap", n_bootstrap, ge=2, integer=True)
    check_number("n_cv", n_cv, ge=1, integer=True)
    check_seed(seed)
    stacks, found, fits, data_v = _inputs(
        models, data, method, names, nonnegative, ridge, show_progress
    )
    n_subjects, n = data_v.shape[0], n_conditions(data_v.shape[1])
    if condition_folds is None:
        condition_folds = _default_condition_folds(_DISTINCT * n)
    if subject_folds is None:
        subject_folds = _default_subject_folds(_DISTINCT * n_subjects)
    _check_folds("condition_folds", condition_folds, n, "conditions", 3)
    _check_folds("subject_folds", subject_folds, n_subjects, "subjects", 1)
    rng = np.random.default_rng(seed)
    subject_draws, condition_draws = _draws(rng, bootstrap, n_bootstrap, n_subjects, n)
    folds = _fold_grid(subject_folds, condition_folds)
    samples = np.full((n_cv, n_bootstrap, len(found)), np.nan)
    ceilings = np.full((n_cv, n_bootstrap, 2), np.nan)
    for i in progress(range(n_bootstrap), show_progress=show_progress, desc="bootstrap"):
        subjects = np.arange(n_subjects) if subject_draws is None else subject_draws[i]
        conditions = np.arange(n) if condition_draws is None else condition_draws[i]
        distinct = np.unique(subjects), np.unique(conditions)
        if distinct[0].size < subject_folds or distinct[1].size < 3 * condition_folds:
            continue
        for r in range(n_cv):
            unit_folds = np.zeros(n_subjects, np.int64), np.zeros(n, np.int64)
            for fold, ids, k in zip(
                unit_folds, distinct, (subject_folds, condition_folds), strict=True
            ):
                fold[ids] = _assign(ids.size, k, rng)
            evaluations, bounds, _ = _fold_evaluations(
                stacks, fits, data_v, method, (subjects, conditions), unit_folds, folds
            )
            samples[r, i], ceilings[r, i] = evaluations.mean(axis=0), bounds.mean(axis=0)
    return BootstrapCrossValidation(
        names=found,
        method=method,
        bootstrap=bootstrap,
        samples=samples,
        ceiling_samples=ceilings,
        n_subjects=n_subjects,
        n_conditions=n,
        subject_folds=subject_folds,
        condition_folds=condition_folds,
    )
