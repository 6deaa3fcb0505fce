"""Inference on RSA model comparisons: noise ceilings, bootstrap evaluations and their tests.

Which model RDM explains the data RDMs of a group of subjects best, is it better than the
others, and could another model do better? As rsatoolbox's ``inference`` module (Nili et al.,
"A toolbox for representational similarity analysis", PLoS Comput Biol 2014; Schütt et al.,
"Statistical inference on representational geometries", eLife 2023), for fixed model RDMs:

* :func:`pool_rdms` averages data RDMs into the RDM a comparison method rewards most
  (rsatoolbox's ``pool_rdm``): RMS-normalized RDMs for cosine, z-scored ones for correlation,
  average ranks for Spearman and Kendall tau-a.
* :func:`noise_ceiling` bounds what any model can reach on the data: the upper bound compares
  each subject with the pool of all subjects (itself included), the lower bound with the pool
  of the others (rsatoolbox's ``boot_noise_ceiling``).
* :func:`evaluate_models` compares every model with every subject's RDM and, with
  ``bootstrap``, resamples subjects, conditions or both (rsatoolbox's ``eval_fixed``,
  ``eval_bootstrap_rdm``, ``eval_bootstrap_pattern`` and ``eval_bootstrap``, same numbers
  for the same draws; tested), or runs the dual bootstrap, whose variance does not count the
  shared part of the two factors twice (Schütt et al. 2023; ``eval_dual_bootstrap``). The
  :class:`ModelEvaluation` it returns gives standard errors, confidence intervals and tests
  between models, against 0 and against the noise ceiling;
  :func:`~neuronkit.interpretability.plot.model_comparison` draws it.

A resampled condition enters a bootstrap sample as often as it is drawn, and the pairs of two
copies of one condition are left out (their dissimilarity is 0 by construction, trivially
predicted), as in rsatoolbox. A sample with fewer than 3 distinct conditions is not valid: its
row is NaN and the statistics leave it out. Where rsatoolbox pools and compares again for
every sample and subject, the cosine and correlation noise ceilings here come from the
subjects' Gram matrices (the pools are weighted sums of the subjects' normalized RDMs):
``O(subjects^2)`` per resampling of subjects.

Shapes: data RDMs ``[n_subjects, n_pairs]`` or ``[n_subjects, n, n]``; model RDMs
``[n_models, n_pairs]``, ``[n_models, n, n]`` or a mapping of names to RDMs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from neuronkit.common import check_choice, check_number, check_seed, check_type, progress

from .rsa import (
    COMPARISONS,
    _as_vectors,
    _average_ranks,
    _centred,
    _compare_stacks,
    _pairs,
    _tau_a,
    _unit_rows,
    _whitened_products,
    n_conditions,
)

__all__ = [
    "BOOTSTRAPS",
    "EvaluationTests",
    "ModelEvaluation",
    "evaluate_models",
    "noise_ceiling",
    "pool_rdms",
]

#: what :func:`evaluate_models` can resample
BOOTSTRAPS = ("subjects", "conditions", "both", "dual")
#: the tests of :class:`ModelEvaluation`
TESTS = ("t-test", "bootstrap")

Bootstrap = Literal["subjects", "conditions", "both", "dual"] | None
#: how each comparison pools (rsatoolbox's pool_rdm): by normalized RDMs, else by ranks
_POOLING = {
    "cosine": "cosine",
    "whitened_cosine": "cosine",
    "correlation": "correlation",
    "whitened_correlation": "correlation",
}


# --------------------------------------------------------------------------------------------
# comparisons and pools of parsed stacks


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine ``[k]`` of row ``i`` of ``a`` with row ``i`` of ``b`` (a single row of either is
    broadcast); NaN where a row is zero, as rsatoolbox."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _normalized(v: np.ndarray, method: str) -> np.ndarray:
    """The rows ``[k, P]`` that pooling for ``method`` averages: RDMs divided by their root mean
    square (cosine), z-scored (correlation) or average ranks (rank comparisons)."""
    pooling = _POOLING.get(method, "ranks")
    if pooling == "ranks":
        return _average_ranks(v)
    if pooling == "correlation":
        v = _centred(v)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero row: NaN, as rsatoolbox
        return v / np.sqrt(np.mean(v * v, axis=1, keepdims=True))


def _check_defined(name: str, v: np.ndarray, method: str) -> None:
    """Refuse data RDMs whose pooling weight or comparison is undefined: zero (cosine) or
    constant (correlation; Spearman, whose ranks of a constant RDM are all tied). Kendall's
    tau-a and rho-a are defined (0) for a constant RDM."""
    pooling = _POOLING.get(method, "ranks")
    if pooling == "ranks" and method != "spearman":
        return
    spread = np.ptp(v, axis=1) if pooling != "cosine" else np.abs(v).max(axis=1)
    if not np.all(spread > 0):
        k = int(np.flatnonzero(~(spread > 0))[0])
        kind = "zero" if pooling == "cosine" else "constant"
        raise ValueError(
            f"{name}[{k}] is {kind}: its {method} with any RDM is undefined, so it cannot be "
            "pooled or evaluated"
        )


def pool_rdms(rdms: Any, method: str = "cosine") -> np.ndarray:
    """The RDM ``[n_pairs]`` that best represents a group of RDMs under ``method``.

    Args:
        rdms: ``[k, n_pairs]`` or ``[k, n, n]`` (or one RDM).
        method: the comparison it is pooled for (:data:`COMPARISONS`): the (whitened) cosine
            averages the RDMs divided by their root mean square, the (whitened) correlation the
            z-scored RDMs (shifted so the smallest value is 0), the rank comparisons their
            average ranks. rsatoolbox's ``pool_rdm``.

    Returns:
        ``[n_pairs]`` float64.
    """
    check_choice("method", method, COMPARISONS)
    v, _ = _as_vectors("rdms", rdms)
    _check_defined("rdms", v, method)
    return _pooled(_unit_rows(v), method)  # scale-free: no over- or underflow of v * v


def _pooled(v: np.ndarray, method: str) -> np.ndarray:
    """:func:`pool_rdms` of checked rows ``v [k, P]``."""
    pooled = _normalized(v, method).mean(axis=0)
    if _POOLING.get(method) == "correlation":
        pooled -= pooled.min()
    return pooled


# --------------------------------------------------------------------------------------------
# noise ceilings


def _ceilings(
    v: np.ndarray,
    counts: np.ndarray,
    method: str,
    show_progress: bool | None = False,
    kept: np.ndarray | None = None,
) -> np.ndarray:
    """Lower and upper noise ceiling ``[N, 2]`` of the data rows ``v [S, P]`` in each of ``N``
    samples, ``counts [N, S]`` saying how often each subject is in the sample.

    A subject's copies go out together for the lower bound, and the bounds average over the
    distinct subjects of a sample (rsatoolbox's leave-one-out by RDM descriptor); a sample of
    one distinct subject has no other subjects, and both bounds compare it with its own pool.
    The rank methods pool and compare per sample (a progress bar over them with
    ``show_progress``). ``kept``: the pairs ``v`` holds (whitened comparisons of a sample of
    conditions).
    """
    t = _normalized(v, method)
    present = counts > 0
    single = present.sum(axis=1) == 1
    if method in _POOLING:
        # pools are sums c @ t: their products with the data rows w and their norms are
        # quadratic forms of the Gram matrices, for every sample at once (whitening is linear)
        w = _centred(v) if _POOLING[method] == "correlation" else v  # t is centred already
        if method.startswith("whitened"):
            cross, _, w_norms = _whitened_products(t, w, kept)
            gram = _whitened_products(t, t, kept)[0]
        else:
            cross, gram = t @ w.T, t @ t.T
            w_norms = np.sqrt(np.einsum("ij,ij->i", w, w))
        dots, gc = counts @ cross, counts @ gram  # [N, S]
        sq = np.einsum("ns,ns->n", gc, counts)[:, None]
        loo_dots = dots - counts * np.diag(cross)
        loo_sq = sq - 2 * counts * gc + counts**2 * np.diag(gram)
        with np.errstate(divide="ignore", invalid="ignore"):
            upper = dots / (np.sqrt(sq) * w_norms)
            lower = loo_dots / (np.sqrt(np.maximum(loo_sq, 0.0)) * w_norms)
    else:  # rank each sample's pools; the data's ranks are t (centred for Spearman's r)
        upper = np.zeros(counts.shape)
        lower = np.zeros(counts.shape)
        ranked = t - (t.shape[1] + 1) / 2.0

        def against(pools: np.ndarray, idx: np.ndarray) -> np.ndarray:
            """Row by row (one pool: for every row) comparison with the data rows ``idx``."""
            if method == "spearman":
                return _row_cosines(_average_ranks(pools, center=True), ranked[idx])
            if method == "rho_a":
                p = ranked.shape[1]
                return (_average_ranks(pools, center=True) * ranked[idx]).sum(1) * 12 / (p**3 - p)
            if len(pools) == 1:
                return _tau_a(pools, v[idx])[0]
            return np.array(
                [_tau_a(pools[r : r + 1], v[i : i + 1])[0, 0] for r, i in enumerate(idx)]
            )

        for k in progress(range(len(counts)), show_progress=show_progress, desc="bootstrap"):
            c = counts[k]
            idx = np.flatnonzero(c)
            total = c @ t
            upper[k, idx] = against(total[None], idx)
            if not single[k]:
                lower[k, idx] = against(total - c[idx, None] * t[idx], idx)
    lower[single] = upper[single]
    n_present = present.sum(axis=1)
    return (
        np.stack(
            [np.where(present, lower, 0.0).sum(1), np.where(present, upper, 0.0).sum(1)], axis=1
        )
        / n_present[:, None]
    )


def _data_rdms(data: Any, method: str) -> np.ndarray:
    v, _ = _as_vectors("data", data)
    if v.shape[0] < 2:
        raise ValueError(
            "data must hold the RDMs of at least 2 subjects (noise ceilings and standard "
            f"errors need them), got {v.shape[0]}"
        )
    _check_defined("data", v, method)
    # every comparison and pool is free of each RDM's scale: powers of two (exact) keep the
    # sums of squares of the noise ceilings and fits in range
    return _unit_rows(v)


def noise_ceiling(data: Any, method: str = "cosine") -> tuple[float, float]:
    """Lower and upper bound of the mean evaluation any model RDM can reach on ``data``.

    The upper bound is the mean comparison of each subject's RDM with the pool of all
    (:func:`pool_rdms`; overfit to the data, no model does better), the lower bound with the
    pool of the other subjects (a model that is the true one should do as well). rsatoolbox's
    ``boot_noise_ceiling``.

    Args:
        data: the subjects' RDMs ``[S >= 2, n_pairs]`` or ``[S, n, n]``.
        method: comparison (:data:`COMPARISONS`).

    Returns:
        ``(lower, upper)``.
    """
    check_choice("method", method, COMPARISONS)
    v = _data_rdms(data, method)
    lower, upper = _ceilings(v, np.ones((1, v.shape[0])), method)[0]
    return float(lower), float(upper)


# --------------------------------------------------------------------------------------------
# bootstrap


def _sampled_pairs(conditions: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions in an RDM vector of ``n`` conditions of the pairs of a sample of conditions
    ``[m]`` (drawn with replacement), in the order rsatoolbox's ``subsample_pattern`` gives
    (sorted conditions, upper triangle row by row), pairs of two copies of one condition out;
    and which pairs of the sample's ``m (m - 1) / 2`` are kept."""
    rows, cols = _pairs(len(conditions))
    sorted_conditions = np.sort(conditions)
    a, b = sorted_conditions[rows], sorted_conditions[cols]
    kept = a != b
    a, b = a[kept], b[kept]
    return a * (2 * n - a - 1) // 2 + (b - a - 1), kept


def _draws(
    rng: np.random.Generator, bootstrap: str, n_samples: int, n_subjects: int, n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Subjects ``[N, S]`` and conditions ``[N, n]`` drawn with replacement for ``N`` bootstrap
    samples (subjects first); ``None`` for a factor ``bootstrap`` leaves alone."""
    subjects = conditions = None
    if bootstrap != "conditions":
        subjects = rng.integers(0, n_subjects, size=(n_samples, n_subjects))
    if bootstrap != "subjects":
        conditions = rng.integers(0, n, size=(n_samples, n))
    return subjects, conditions


def _bootstrap(
    models: np.ndarray,
    data: np.ndarray,
    method: str,
    subject_draws: np.ndarray | None,
    condition_draws: np.ndarray | None,
    show_progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluations ``[N, M]`` (mean over the sample's subjects) and noise ceilings ``[N, 2]``
    of ``N`` bootstrap samples: ``subject_draws [N, S]`` and / or ``condition_draws [N, n]``
    (indices drawn with replacement; ``None``: all, once)."""
    n_subjects = data.shape[0]
    draws = subject_draws if condition_draws is None else condition_draws
    assert draws is not None
    if subject_draws is None:
        counts = np.ones((len(draws), n_subjects))
    else:
        counts = np.stack([np.bincount(d, minlength=n_subjects) for d in subject_draws])
        counts = counts.astype(np.float64)
    if condition_draws is None:  # the subjects' evaluations are fixed: resample their means
        per_subject = _compare_stacks(models, data, method)
        ceilings = _ceilings(data, counts, method, show_progress)
        return counts @ per_subject.T / n_subjects, ceilings
    n = n_conditions(data.shape[1])
    evaluations = np.full((len(draws), models.shape[0]), np.nan)
    ceilings = np.full((len(draws), 2), np.nan)
    for k in progress(range(len(draws)), show_progress=show_progress, desc="bootstrap"):
        if np.unique(condition_draws[k]).size < 3:
            continue
        pairs, kept = _sampled_pairs(condition_draws[k], n)
        sample = data[:, pairs]
        with np.errstate(divide="ignore", invalid="ignore"):
            similarities = _compare_stacks(models[:, pairs], sample, method, kept)
            evaluations[k] = similarities @ counts[k] / n_subjects
            ceilings[k] = _ceilings(sample, counts[k : k + 1], method, kept=kept)[0]
    return evaluations, ceilings


# --------------------------------------------------------------------------------------------
# results


class EvaluationTests(ABC):
    """Standard errors, confidence intervals and tests of model evaluations, shared by
    :class:`ModelEvaluation` and
    :class:`~neuronkit.interpretability.rsa_crossval.BootstrapCrossValidation`: from their
    ``names``, ``means``, ``noise_ceiling``, ``dof``, bootstrap rows (``_valid``) and sampling
    variances (``_variance``)."""

    names: tuple[str, ...]
    method: str
    bootstrap: str | None
    noise_ceiling: np.ndarray

    @property
    @abstractmethod
    def means(self) -> np.ndarray:
        """``[M]`` mean evaluation of each model."""

    @property
    @abstractmethod
    def dof(self) -> int:
        """Degrees of freedom of the t-tests."""

    @abstractmethod
    def _valid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The valid bootstrap rows: evaluations ``[N', M]``, noise ceilings ``[N', 2]`` and
        the row mask ``[N]``."""

    @abstractmethod
    def _variance(self, combination: np.ndarray, against_ceiling: bool = False) -> np.ndarray:
        """Sampling variance ``[K]`` of the linear combinations ``[M, K]`` of the models'
        evaluations (minus the lower noise ceiling with ``against_ceiling``)."""

    @abstractmethod
    def _header(self) -> str:
        """The first line of :meth:`summary`."""

    def sem(self) -> np.ndarray:
        """``[M]`` standard error of each model's mean evaluation."""
        return np.sqrt(self._variance(np.eye(len(self.names))))

    def ci(self, level: float = 0.95, test: str = "t-test") -> np.ndarray:
        """``[2, M]`` lower and upper confidence bounds: ``means -/+ t * sem`` (``"t-test"``) or
        the quantiles of the bootstrap samples framed by -inf and +inf, so that too few samples
        give infinite bounds (``"bootstrap"``; rsatoolbox's ``get_ci``)."""
        check_number("level", level, gt=0, lt=1)
        check_choice("test", test, TESTS)
        cut = (1 - level) / 2
        if test == "bootstrap":
            samples = self._valid()[0]
            framed = np.concatenate(
                [np.full((2, samples.shape[1]), [[-np.inf], [np.inf]]), samples]
            )
            # a quantile between a frame and a (finite) sample interpolates inf - inf: NaN
            with np.errstate(invalid="ignore"):
                bounds = np.quantile(framed, [cut, 1 - cut], axis=0)
            return np.where(np.isnan(bounds), [[-np.inf], [np.inf]], bounds)
        half = self.sem() * stats.t.ppf(1 - cut, self.dof)
        return np.stack([self.means - half, self.means + half])

    def p_pairwise(self, test: str = "t-test") -> np.ndarray:
        """``[M, M]`` two-sided p-values of the differences between models (1 on the diagonal).

        ``"t-test"``: the difference of the means over its standard error (variance of the
        differences per subject or across bootstrap samples), ``dof`` degrees of freedom.
        ``"bootstrap"``: twice the smaller share of samples in which one model is ahead,
        ``(N - 1) / N * p + 1 / N`` (rsatoolbox's ``bootstrap_pair_tests``).
        """
        check_choice("test", test, TESTS)
        m = len(self.names)
        if test == "bootstrap":
            samples = self._valid()[0]
            ahead = (samples[:, :, None] < samples[:, None, :]).sum(0)
            ties = (samples[:, :, None] == samples[:, None, :]).sum(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = ahead / (len(samples) - ties)
            # two models tied in every sample (equal or proportional RDMs): no evidence of a
            # difference, p = 1 (rsatoolbox: NaN)
            share[ties == len(samples)] = 0.5
            p = 2 * np.minimum(share, 1 - share)
            p = (len(samples) - 1) / len(samples) * p + 1 / len(samples)
        else:
            i, j = np.triu_indices(m, k=1)
            combination = np.zeros((m, len(i)))
            combination[i, np.arange(len(i))] = 1.0
            combination[j, np.arange(len(i))] = -1.0
            t = (self.means @ combination) / np.sqrt(
                np.maximum(self._variance(combination), np.finfo(float).eps)
            )
            p = np.ones((m, m))
            p[i, j] = p[j, i] = 2 * stats.t.sf(np.abs(t), self.dof)
        np.fill_diagonal(p, 1.0)
        return p

    def p_zero(self, test: str = "t-test") -> np.ndarray:
        """``[M]`` one-sided p-values that each model's evaluation is above 0 (``"bootstrap"``:
        the share of samples at or below 0, plus one, over ``N``)."""
        check_choice("test", test, TESTS)
        if test == "bootstrap":
            samples = self._valid()[0]  # at most 1 (rsatoolbox's reaches (N + 1) / N)
            return np.minimum(((samples <= 0).sum(axis=0) + 1) / len(samples), 1.0)
        t = self.means / np.sqrt(np.maximum(self._variance(np.eye(len(self.names))), 1e-300))
        return stats.t.sf(t, self.dof)

    def p_noise_ceiling(self, test: str = "t-test") -> np.ndarray:
        """``[M]`` p-values that each model differs from the lower noise ceiling: two-sided
        t-test of the mean evaluation minus the full data's lower bound (its variance over
        bootstrap samples includes the bound's), or (``"bootstrap"``) the share of samples in
        which the model reaches the sample's lower bound, plus one, over ``N``: small when the
        model stays below it."""
        check_choice("test", test, TESTS)
        if test == "bootstrap":
            samples, ceilings, _ = self._valid()
            reached = (ceilings[:, :1] - samples <= 0).sum(axis=0)
            return np.minimum((reached + 1) / len(samples), 1.0)  # at most 1, as p_zero
        variance = self._variance(np.eye(len(self.names)), against_ceiling=True)
        t = (self.means - self.noise_ceiling[0]) / np.sqrt(
            np.maximum(variance, np.finfo(float).eps)
        )
        return 2 * stats.t.sf(np.abs(t), self.dof)

    def summary(self, test: str = "t-test") -> str:
        """A table of the models: mean, standard error, p against 0 and against the noise
        ceiling, and the noise ceiling itself."""
        p_zero, p_noise, sem = self.p_zero(test), self.p_noise_ceiling(test), self.sem()
        width = max(len("model"), *(len(name) for name in self.names))
        lines = [
            f"{self._header()} ({test}s)",
            f"noise ceiling: {self.noise_ceiling[0]:.4f} to {self.noise_ceiling[1]:.4f}",
            f"{'model':<{width}}  {'mean':>8}  {'sem':>8}  {'p > 0':>9}  {'p vs ceiling':>12}",
        ]
        for k, name in enumerate(self.names):
            lines.append(
                f"{name:<{width}}  {self.means[k]:8.4f}  {sem[k]:8.4f}  "
                f"{p_zero[k]:9.3g}  {p_noise[k]:12.3g}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ModelEvaluation(EvaluationTests):
    """Evaluations of model RDMs on a group of subjects' data RDMs (:func:`evaluate_models`).

    Attributes:
        names: the models' names ``[M]``.
        method: the comparison.
        bootstrap: what was resampled (:data:`BOOTSTRAPS`) or ``None``.
        per_subject: ``[S, M]`` comparison of each model with each subject's RDM.
        noise_ceiling: ``[2]`` lower and upper bound on the full data.
        samples: ``[N, M]`` mean evaluations of the bootstrap samples (NaN rows: samples with
            fewer than 3 distinct conditions), ``None`` without bootstrap.
        ceiling_samples: ``[N, 2]`` the samples' noise ceilings, ``None`` without bootstrap.
        n_conditions: the number of conditions of the RDMs.
        factor_samples: ``"dual"`` only: ``[2, N, M]`` evaluations of the same draws with only
            the subjects (0) or only the conditions (1) resampled.
        factor_ceilings: ``"dual"`` only: ``[2, N, 2]`` their noise ceilings.
    """

    names: tuple[str, ...]
    method: str
    bootstrap: str | None
    per_subject: np.ndarray
    noise_ceiling: np.ndarray
    samples: np.ndarray | None
    ceiling_samples: np.ndarray | None
    n_conditions: int
    factor_samples: np.ndarray | None = None
    factor_ceilings: np.ndarray | None = None

    @property
    def means(self) -> np.ndarray:
        """``[M]`` mean evaluation of each model over the subjects (the full data)."""
        return self.per_subject.mean(axis=0)

    @property
    def dof(self) -> int:
        """Degrees of freedom of the t-tests: the resampled units (subjects, conditions or the
        fewer of the two) less one; subjects less one without bootstrap."""
        n_subjects = int(self.per_subject.shape[0])
        if self.bootstrap == "conditions":
            return self.n_conditions - 1
        if self.bootstrap in ("both", "dual"):
            return min(n_subjects, self.n_conditions) - 1
        return n_subjects - 1

    def _valid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The valid (finite) bootstrap rows: evaluations ``[N', M]``, noise ceilings
        ``[N', 2]`` and the row mask ``[N]``."""
        if self.samples is None or self.ceiling_samples is None:
            raise ValueError(
                "test='bootstrap' needs bootstrap samples: evaluate with bootstrap='subjects', "
                "'conditions', 'both' or 'dual'"
            )
        ok = np.isfinite(self.samples).all(axis=1) & np.isfinite(self.ceiling_samples).all(1)
        for extra in (self.factor_samples, self.factor_ceilings):
            if extra is not None:
                ok &= np.isfinite(extra).all(axis=(0, 2))
        return self.samples[ok], self.ceiling_samples[ok], ok

    def _variance(self, combination: np.ndarray, against_ceiling: bool = False) -> np.ndarray:
        """Sampling variance ``[K]`` of the linear combinations ``[M, K]`` of the models'
        evaluations (minus the lower noise ceiling with ``against_ceiling``): the subjects'
        variance over ``S`` without bootstrap, else the bootstrap variance scaled by
        ``n / (n - 1)`` for ``n`` resampled units (rsatoolbox's correction), and for
        ``"dual"`` the variances of the three bootstraps combined (Schütt et al. 2023)."""
        if self.bootstrap is None:  # the noise ceiling is a constant then
            values = self.per_subject @ combination
            return values.var(axis=0, ddof=1) / values.shape[0]
        samples, ceilings, ok = self._valid()

        def variance(evaluations: np.ndarray, bounds: np.ndarray) -> np.ndarray:
            values = evaluations @ combination
            if against_ceiling:
                values = values - bounds[:, :1]
            return values.var(axis=0, ddof=1)

        both = variance(samples, ceilings)
        if self.factor_samples is None or self.factor_ceilings is None:
            n = self.dof + 1
            return both * n / (n - 1)
        # each factor's bootstrap variance, corrected for its sample size, plus their
        # interaction, which the double bootstrap counts too often (rsatoolbox's _dual_bootstrap)
        r = self.per_subject.shape[0] / (self.per_subject.shape[0] - 1)
        c = self.n_conditions / (self.n_conditions - 1)
        subjects, conditions = (
            variance(self.factor_samples[k][ok], self.factor_ceilings[k][ok]) for k in (0, 1)
        )
        combined = r * subjects + c * conditions - r * c * (both - subjects - conditions)
        return np.minimum(np.maximum(combined, np.maximum(r * subjects, c * conditions)), both)

    def _header(self) -> str:
        return (
            f"{self.method} evaluations of {len(self.names)} models on "
            f"{self.per_subject.shape[0]} subjects, {self.n_conditions} conditions "
            f"(bootstrap: {self.bootstrap or 'none'})"
        )


def _model_rdms(models: Any, names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Model RDMs ``[M, P]`` and their names."""
    if isinstance(models, Mapping):
        if not models:
            raise ValueError("models must hold at least one model RDM, got an empty mapping")
        rows = []
        for key, value in models.items():
            v, _ = _as_vectors(f"models[{key!r}]", value)
            if v.shape[0] != 1:
                raise ValueError(f"models[{key!r}] must be one RDM, got {v.shape[0]}")
            rows.append(v[0])
        if len({row.size for row in rows}) > 1:
            raise ValueError("models must all have the same number of conditions")
        found = tuple(str(key) for key in models)
        if names is not None:
            raise ValueError(
                "names must not be given with a mapping of models (its keys name them)"
            )
        return np.stack(rows), found
    v, _ = _as_vectors("models", models)
    if names is None:
        return v, tuple(f"model {k}" for k in range(v.shape[0]))
    found = tuple(str(name) for name in names)
    if isinstance(names, str) or len(found) != v.shape[0]:
        raise ValueError(f"names must name the {v.shape[0]} models, got {names!r:.200}")
    return v, found


def evaluate_models(
    models: Any,
    data: Any,
    method: str = "cosine",
    *,
    bootstrap: Bootstrap = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    names: Sequence[str] | None = None,
    show_progress: bool | None = None,
) -> ModelEvaluation:
    """Evaluate fixed model RDMs on the RDMs of a group of subjects, with noise ceilings and
    (optionally) bootstrap samples for the tests.

    Args:
        models: model RDMs ``[M, n_pairs]`` / ``[M, n, n]`` (one RDM: ``M = 1``), or a mapping of
            names to RDMs.
        data: the subjects' RDMs ``[S >= 2, n_pairs]`` or ``[S, n, n]``, same conditions.
        method: comparison (:data:`COMPARISONS`, rsatoolbox's cosine default).
        bootstrap: ``None`` (the subjects are the samples: rsatoolbox's ``eval_fixed``),
            ``"subjects"`` (generalize to new subjects: ``eval_bootstrap_rdm``),
            ``"conditions"`` (to new conditions: ``eval_bootstrap_pattern``), ``"both"``
            (``eval_bootstrap``) or ``"dual"`` (``eval_dual_bootstrap`` for fixed models,
            Schütt et al. 2023: the same draws also resample one factor at a time, and the
            three bootstrap variances are combined into one that does not count the subjects'
            and conditions' shared part twice, as the double bootstrap does). Each sample
            draws ``S`` subjects and / or ``n`` conditions with replacement and gets its own
            noise ceiling.
        n_bootstrap: number of bootstrap samples (>= 2).
        seed: seed of the draws (the global random state is left alone).
        names: the models' names (default ``"model 0"``, ...; from the keys of a mapping).
        show_progress: progress bar over the bootstrap samples where they are taken one by
            one (resampled conditions; resampled subjects with a rank comparison); ``None``:
            only on a terminal.

    Returns:
        :class:`ModelEvaluation`. Its means are the full data's; rsatoolbox reports the mean
        of the bootstrap samples instead, and tests against their mean lower bound.
    """
    check_choice("method", method, COMPARISONS)
    if bootstrap is not None:
        check_choice("bootstrap", bootstrap, BOOTSTRAPS)
    check_number("n_bootstrap", n_bootstrap, ge=2, integer=True)
    check_seed(seed)
    if show_progress is not None:
        check_type("show_progress", show_progress, bool)
    model_v, found = _model_rdms(models, names)
    data_v = _data_rdms(data, method)
    if model_v.shape[1] != data_v.shape[1]:
        raise ValueError(
            f"models and data must have the same conditions: models have "
            f"{n_conditions(model_v.shape[1])}, data {n_conditions(data_v.shape[1])}"
        )
    n = n_conditions(data_v.shape[1])
    samples = ceiling_samples = factor_samples = factor_ceilings = None
    if bootstrap is not None:
        subjects, condition_draws = _draws(
            np.random.default_rng(seed), bootstrap, n_bootstrap, data_v.shape[0], n
        )
        samples, ceiling_samples = _bootstrap(
            model_v, data_v, method, subjects, condition_draws, show_progress
        )
        if bootstrap == "dual":  # the same draws, one factor at a time
            factors = [
                _bootstrap(model_v, data_v, method, subjects, None, show_progress),
                _bootstrap(model_v, data_v, method, None, condition_draws, show_progress),
            ]
            factor_samples = np.stack([f[0] for f in factors])
            factor_ceilings = np.stack([f[1] for f in factors])
    return ModelEvaluation(
        names=found,
        method=method,
        bootstrap=bootstrap,
        per_subject=_compare_stacks(model_v, data_v, method).T,
        noise_ceiling=_ceilings(data_v, np.ones((1, data_v.shape[0])), method)[0],
        samples=samples,
        ceiling_samples=ceiling_samples,
        n_conditions=n,
        factor_samples=factor_samples,
        factor_ceilings=factor_ceilings,
    )
