"""Agreement with rsatoolbox (benchmark environment only: rsatoolbox is not a dependency)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from neuronkit.interpretability import (
    compare_rdms,
    geo_topological,
    noise_precision,
    noise_precision_from_measurements,
    rdm,
)

rsatoolbox = pytest.importorskip(
    "rsatoolbox", reason="rsatoolbox is needed for the agreement tests (benchmark environment only)"
)
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.data.noise import prec_from_measurements, prec_from_residuals  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm, compare, geotopological_transform  # noqa: E402

ATOL = 1e-10


def _repeated(seed: int = 0, n_cond: int = 6, n_rep: int = 4, n_chan: int = 9):
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(n_cond, n_chan))
    data = np.tile(patterns, (n_rep, 1)) + 0.7 * rng.normal(size=(n_cond * n_rep, n_chan))
    conds = np.tile(np.arange(n_cond), n_rep)
    runs = np.repeat(np.arange(n_rep), n_cond)
    # shuffle the observation order: results must not depend on it
    perm = rng.permutation(len(conds))
    return data[perm], conds[perm], runs[perm]


@pytest.mark.parametrize("method", ["euclidean", "correlation"])
def test_rdm_matches_rsatoolbox(method) -> None:
    data = np.random.default_rng(1).normal(size=(8, 13))
    theirs = calc_rdm(Dataset(data), method=method).get_vectors()[0]
    np.testing.assert_allclose(rdm(data, method), theirs, atol=ATOL)


@pytest.mark.parametrize("method", ["euclidean", "correlation", "mahalanobis"])
def test_rdm_with_condition_averaging_matches_rsatoolbox(method) -> None:
    data, conds, _ = _repeated(2)
    ds = Dataset(data, obs_descriptors={"cond": conds})
    prec = noise_precision_from_measurements(data, conds) if method == "mahalanobis" else None
    theirs = calc_rdm(ds, method=method, descriptor="cond", noise=prec).get_vectors()[0]
    ours = rdm(data, method, conditions=conds, noise=prec)
    np.testing.assert_allclose(ours, theirs, atol=ATOL)


def _counts(seed: int = 0, n_cond: int = 6, n_rep: int = 4, n_chan: int = 15):
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, 2.0, (n_cond, n_chan))
    counts = rng.poisson(np.tile(rates, (n_rep, 1))).astype(float)
    perm = rng.permutation(n_cond * n_rep)  # the observation order must not matter
    conds, runs = np.tile(np.arange(n_cond), n_rep), np.repeat(np.arange(n_rep), n_cond)
    return counts[perm], conds[perm], runs[perm]


@pytest.mark.parametrize("prior", [{}, {"prior_lambda": 2.0, "prior_weight": 0.5}])
def test_poisson_rdm_matches_rsatoolbox(prior) -> None:
    counts, conds, _ = _counts(1)
    ds = Dataset(counts, obs_descriptors={"cond": conds})
    theirs = calc_rdm(ds, method="poisson", descriptor="cond", **prior).get_vectors()[0]
    np.testing.assert_allclose(rdm(counts, "poisson", conditions=conds, **prior), theirs, atol=ATOL)


def test_poisson_cv_is_the_mean_of_rsatoolbox_fold_rdms() -> None:
    """rsatoolbox 0.3.2's calc_rdm_poisson_cv overwrites its RDM in the loop over folds and
    returns the last fold's: each fold is made the last one in turn, and the folds' mean is
    neuronkit's (which averages them, as both libraries' crossnobis does)."""
    counts, conds, runs = _counts(2)
    folds = []
    for f in range(4):
        last = (runs - f - 1) % 4  # fold f relabelled 3, the last of rsatoolbox's sorted folds
        ds = Dataset(counts, obs_descriptors={"cond": conds, "run": last})
        theirs = calc_rdm(ds, method="poisson_cv", descriptor="cond", cv_descriptor="run")
        folds.append(theirs.get_vectors()[0])
    ours = rdm(counts, "poisson_cv", conditions=conds, runs=runs)
    np.testing.assert_allclose(ours, np.mean(folds, axis=0), atol=ATOL)
    assert np.abs(ours - folds[-1]).max() > 0.01  # rsatoolbox's own answer: one fold


def test_remove_mean_matches_rsatoolbox() -> None:
    data = np.random.default_rng(3).normal(size=(7, 5)) + 2.0
    theirs = calc_rdm(Dataset(data), method="euclidean", remove_mean=True).get_vectors()[0]
    np.testing.assert_allclose(rdm(data, remove_mean=True), theirs, atol=ATOL)


@pytest.mark.parametrize("with_runs", [True, False])
@pytest.mark.parametrize("with_noise", [True, False])
def test_crossnobis_matches_rsatoolbox(with_runs, with_noise) -> None:
    data, conds, runs = _repeated(4)
    if not with_runs:  # rsatoolbox's default folds: k-th occurrence of each condition
        order = np.argsort(conds, kind="stable")
        data, conds = data[order], conds[order]
        runs = None
    desc = {"cond": conds} if runs is None else {"cond": conds, "run": runs}
    prec = (
        noise_precision_from_measurements(data, conds, method="shrinkage_eye")
        if with_noise
        else None
    )
    theirs = calc_rdm(
        Dataset(data, obs_descriptors=desc),
        method="crossnobis",
        descriptor="cond",
        cv_descriptor=None if runs is None else "run",
        noise=prec,
    ).get_vectors()[0]
    ours = rdm(data, "crossnobis", conditions=conds, runs=runs, noise=prec)
    np.testing.assert_allclose(ours, theirs, atol=ATOL)


@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
def test_noise_precision_matches_rsatoolbox(method) -> None:
    res = np.random.default_rng(5).normal(size=(40, 6)) @ np.diag([1, 2, 0.5, 1, 3, 1])
    np.testing.assert_allclose(
        noise_precision(res, method=method),
        prec_from_residuals(res.copy(), method=method),
        rtol=1e-9,
    )


@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
def test_noise_from_measurements_matches_rsatoolbox_given_its_dof(method) -> None:
    data, conds, _ = _repeated(6, n_cond=5, n_rep=8, n_chan=4)
    ds = Dataset(data, obs_descriptors={"cond": conds})
    theirs = prec_from_measurements(ds, "cond", method=method)
    rsatoolbox_dof = (5 - 1) * 8  # rsatoolbox's default for balanced data
    ours = noise_precision_from_measurements(data, conds, method=method, dof=rsatoolbox_dof)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


@pytest.mark.parametrize(
    ("ours_name", "theirs_name"),
    [
        ("cosine", "cosine"),
        ("correlation", "corr"),
        ("spearman", "spearman"),
        ("kendall_tau_a", "tau-a"),
        ("rho_a", "rho-a"),
        ("whitened_cosine", "cosine_cov"),
        ("whitened_correlation", "corr_cov"),
    ],
)
def test_compare_matches_rsatoolbox(ours_name, theirs_name) -> None:
    rng = np.random.default_rng(7)
    a = rng.random((3, 21))
    b = rng.random((4, 21))
    b[1, :5] = b[1, 0]  # ties
    b[2] = np.round(b[2], 1)
    theirs = compare(RDMs(a), RDMs(b), method=theirs_name)
    np.testing.assert_allclose(compare_rdms(a, b, ours_name), theirs, atol=1e-12)


@pytest.mark.parametrize("method", ["bures", "bures_metric"])
def test_bures_comparisons_match_rsatoolbox(method) -> None:
    """Euclidean RDMs (positive semidefinite kernels) and random, non-Euclidean ones (negative
    kernel eigenvalues set to 0 on both sides). rsatoolbox takes square roots of the kernels'
    zero eigenvalues, which turns their rounding of 1e-16 into about 1e-8 (a distance of
    -1.5e-7 between equal RDMs here); neuronkit sets those to 0 (tested exactly in
    test_rsa.py): agreement to that noise, 1e-6."""
    rng = np.random.default_rng(31)
    euclidean = np.stack([rdm(rng.normal(size=(12, 5))) for _ in range(3)])
    other = rng.random((2, 66))
    for a, b in ((euclidean, euclidean[::-1]), (other, euclidean), (euclidean, other)):
        theirs = compare(RDMs(a), RDMs(b), method=method)
        np.testing.assert_allclose(compare_rdms(a, b, method), theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("lower", "upper"), [(0.0, 1.0), (0.1, 0.6), (0.3, 0.3), (0.25, 0.9)])
def test_geo_topological_matches_rsatoolbox(lower, upper) -> None:
    # dissimilarities >= 1: there rsatoolbox's sequential in-place update is exact (see below)
    v = 1.0 + 10.0 * np.random.default_rng(8).random(28)
    rdms = RDMs(v[None, :].copy())
    theirs = geotopological_transform(rdms, lower, upper).get_vectors()[0]
    np.testing.assert_allclose(geo_topological(v, lower, upper), theirs, atol=1e-12)


def test_geo_topological_follows_the_paper_where_rsatoolbox_resaturates() -> None:
    """rsatoolbox 0.3 rescales the band in place, then sets everything above the upper
    quantile *value* to 1, which also catches rescaled values when that quantile is < 1.
    We follow the paper and the authors' reference code: the band maps linearly onto [0, 1]."""
    v = np.random.default_rng(8).random(28)
    ours = geo_topological(v, 0.1, 0.6)
    q_lo, q_hi = np.quantile(v, [0.1, 0.6])
    band = (v >= q_lo) & (v <= q_hi)
    np.testing.assert_allclose(ours[band], (v[band] - q_lo) / (q_hi - q_lo))
    assert np.all(ours[v > q_hi] == 1.0)
    assert np.all(ours[v < q_lo] == 0.0)
    theirs = geotopological_transform(RDMs(v[None, :].copy()), 0.1, 0.6).get_vectors()[0]
    if np.allclose(theirs, ours):  # pragma: no cover - depends on the rsatoolbox version
        pytest.skip("this rsatoolbox version maps the band linearly too")
    assert np.all(theirs[band & (ours > q_hi)] == 1.0)


def test_rsatoolbox_pitfall_in_place_transform_is_avoided_here() -> None:
    """rsatoolbox's geotopological_transform writes into the RDMs object it was given."""
    v = np.random.default_rng(9).random(15)
    rdms = RDMs(v[None, :].copy())
    before = copy.deepcopy(rdms.get_vectors())
    geotopological_transform(rdms, 0.2, 0.7)
    mutated = not np.array_equal(before, rdms.get_vectors())
    ours_in = v.copy()
    geo_topological(ours_in, 0.2, 0.7)
    assert np.array_equal(ours_in, v)
    if not mutated:  # pragma: no cover - depends on the rsatoolbox version
        pytest.skip("this rsatoolbox version no longer mutates its input")


# --------------------------------------------------------------------------------------------
# inference: pooling, noise ceilings, fixed and bootstrap evaluations


INFERENCE_METHODS = {
    "cosine": "cosine",
    "correlation": "corr",
    "spearman": "spearman",
    "kendall_tau_a": "tau-a",
    "rho_a": "rho-a",
    "whitened_cosine": "cosine_cov",
    "whitened_correlation": "corr_cov",
}


def _subjects_and_models(seed: int = 0, n: int = 9, n_subjects: int = 5):
    rng = np.random.default_rng(seed)
    p = n * (n - 1) // 2
    truth = rng.random(p)
    data = truth + 0.6 * rng.random((n_subjects, p))
    models = np.stack([truth, rng.random(p), truth + rng.random(p)])
    return data, models


def _rsatoolbox_models(models):
    from rsatoolbox.model import ModelFixed

    return [ModelFixed(f"model {k}", RDMs(m[None])) for k, m in enumerate(models)]


@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
def test_pool_and_noise_ceiling_match_rsatoolbox(method) -> None:
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.util.inference_util import pool_rdm

    from neuronkit.interpretability import noise_ceiling, pool_rdms

    data, _ = _subjects_and_models()
    theirs = INFERENCE_METHODS[method]
    np.testing.assert_allclose(
        pool_rdms(data, method), pool_rdm(RDMs(data), theirs).get_vectors()[0], atol=ATOL
    )
    np.testing.assert_allclose(
        noise_ceiling(data, method), boot_noise_ceiling(RDMs(data), theirs), atol=ATOL
    )


@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
def test_fixed_evaluation_and_t_tests_match_rsatoolbox(method) -> None:
    from rsatoolbox.inference import eval_fixed

    from neuronkit.interpretability import evaluate_models

    data, models = _subjects_and_models(1)
    theirs = eval_fixed(_rsatoolbox_models(models), RDMs(data), method=INFERENCE_METHODS[method])
    ours = evaluate_models(models, data, method)
    np.testing.assert_allclose(ours.per_subject, theirs.evaluations[0].T, atol=ATOL)
    np.testing.assert_allclose(ours.noise_ceiling, theirs.noise_ceiling, atol=ATOL)
    np.testing.assert_allclose(ours.means, theirs.get_means(), atol=ATOL)
    np.testing.assert_allclose(ours.sem(), theirs.get_sem(), atol=ATOL)
    np.testing.assert_allclose(ours.ci(0.9), theirs.get_ci(0.9), atol=ATOL)
    np.testing.assert_allclose(ours.p_pairwise(), theirs.test_pairwise(), atol=1e-9)
    np.testing.assert_allclose(ours.p_zero(), theirs.test_zero(), atol=1e-9)
    np.testing.assert_allclose(ours.p_noise_ceiling(), theirs.test_noise(), atol=1e-9)


@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
@pytest.mark.parametrize("bootstrap", ["subjects", "conditions", "both"])
def test_bootstrap_samples_and_tests_match_rsatoolbox(method, bootstrap) -> None:
    """Given rsatoolbox's draws, the samples' evaluations and noise ceilings are rsatoolbox's,
    and so are the bootstrap tests and intervals over them."""
    from rsatoolbox.inference import eval_bootstrap, eval_bootstrap_pattern, eval_bootstrap_rdm
    from rsatoolbox.util.inference_util import bootstrap_pair_tests

    from neuronkit.interpretability import ModelEvaluation
    from neuronkit.interpretability.rsa_inference import _bootstrap

    data, models = _subjects_and_models(2)
    n_subjects, n, n_samples = data.shape[0], 9, 25
    run = {"subjects": eval_bootstrap_rdm, "conditions": eval_bootstrap_pattern}
    saved = np.random.get_state()  # noqa: NPY002 - rsatoolbox draws from numpy's global state
    np.random.seed(4)  # noqa: NPY002
    theirs = run.get(bootstrap, eval_bootstrap)(
        _rsatoolbox_models(models), RDMs(data), method=INFERENCE_METHODS[method], N=n_samples
    )
    np.random.seed(4)  # noqa: NPY002 - the same draws, in rsatoolbox's order: subjects first
    subjects, conditions = [], []
    for _ in range(n_samples):
        if bootstrap != "conditions":
            subjects.append(np.random.randint(0, n_subjects, size=n_subjects))  # noqa: NPY002
        if bootstrap != "subjects":
            conditions.append(np.random.randint(0, n, size=n))  # noqa: NPY002
    np.random.set_state(saved)  # noqa: NPY002
    samples, ceilings = _bootstrap(
        models,
        data,
        method,
        np.array(subjects) if subjects else None,
        np.array(conditions) if conditions else None,
    )
    np.testing.assert_allclose(samples, theirs.evaluations, atol=ATOL)
    np.testing.assert_allclose(ceilings, theirs.noise_ceiling.T, atol=ATOL)
    ours = ModelEvaluation(
        ("a", "b", "c"),
        method,
        bootstrap,
        np.zeros((n_subjects, 3)),
        np.zeros(2),
        samples,
        ceilings,
        n,
    )
    # rsatoolbox's test on the same samples: its own can split a tie that rounding broke
    np.testing.assert_allclose(ours.p_pairwise("bootstrap"), bootstrap_pair_tests(samples))
    # rsatoolbox's (count + 1) / N reaches (N + 1) / N where no sample is above 0: clipped here
    their_p = np.minimum(theirs.test_zero("bootstrap"), 1.0)
    np.testing.assert_allclose(ours.p_zero("bootstrap"), their_p)
    np.testing.assert_allclose(ours.ci(0.8, "bootstrap"), theirs.get_ci(0.8, "bootstrap"))
    if bootstrap == "subjects":  # rsatoolbox leaves the noise ceiling out of its variances here
        np.testing.assert_allclose(ours.sem(), theirs.get_sem(), atol=ATOL)


def test_dual_bootstrap_variance_combines_the_three_bootstraps_as_rsatoolbox() -> None:
    from rsatoolbox.util.inference_util import _dual_bootstrap

    from neuronkit.interpretability import evaluate_models

    data, models = _subjects_and_models(3)
    result = evaluate_models(models, data, bootstrap="dual", n_bootstrap=40, seed=1)
    variances = np.stack(
        [np.var(s, axis=0, ddof=1) for s in (result.samples, *result.factor_samples)]
    )
    expected = _dual_bootstrap(variances, n_rdm=data.shape[0], n_pattern=result.n_conditions)
    np.testing.assert_allclose(result.sem() ** 2, expected, rtol=1e-12)


FITTED = {
    m: INFERENCE_METHODS[m]
    for m in ("cosine", "correlation", "whitened_cosine", "whitened_correlation")
}


@pytest.fixture
def exact_cg(monkeypatch):
    """rsatoolbox applies the inverse covariance of whitened comparisons by conjugate
    gradients to a relative residual of 1e-5 (fitted weights off by up to ~2e-3): solved
    directly instead, to compare the rest exactly."""
    import scipy.linalg
    import scipy.sparse.linalg

    def direct(v, b, **_):
        v = v.toarray() if hasattr(v, "toarray") else np.asarray(v)
        return scipy.linalg.solve(v, b, assume_a="pos"), 0

    monkeypatch.setattr(scipy.sparse.linalg, "cg", direct)


@pytest.mark.usefixtures("exact_cg")
@pytest.mark.parametrize("method", FITTED)
@pytest.mark.parametrize("nonnegative", [True, False])
@pytest.mark.parametrize("ridge", [0.0, 0.4])
def test_fit_weights_match_rsatoolbox(method, nonnegative, ridge) -> None:
    from rsatoolbox.model import ModelWeighted
    from rsatoolbox.model.fitter import fit_regress, fit_regress_nn

    from neuronkit.interpretability import fit_weights

    data, comps = _subjects_and_models(5, n=10)
    run = fit_regress_nn if nonnegative else fit_regress
    theirs = run(
        ModelWeighted("w", RDMs(comps)), RDMs(data), method=FITTED[method], ridge_weight=ridge
    )
    ours = fit_weights(comps, data, method, nonnegative=nonnegative, ridge=ridge)
    np.testing.assert_allclose(ours, theirs, atol=ATOL)


@pytest.mark.usefixtures("exact_cg")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
def test_fit_interpolation_matches_rsatoolbox(method) -> None:
    from rsatoolbox.model import ModelInterpolate
    from rsatoolbox.model.fitter import fit_interpolate

    from neuronkit.interpretability import fit_interpolation

    data, models = _subjects_and_models(9, n=10)
    sequence = np.stack([models[1], 0.5 * (models[0] + models[1]), models[2], models[0]])
    theirs = fit_interpolate(
        ModelInterpolate("i", RDMs(sequence)), RDMs(data), method=INFERENCE_METHODS[method]
    )
    ours = fit_interpolation(sequence, data, method)
    assert np.count_nonzero(ours) == 2
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def _rsatoolbox_folds(data, subject_fold, condition_fold):
    """rsatoolbox's (train, test, ceiling) sets of ``sets_k_fold`` for the given folds."""
    rdms = RDMs(data, pattern_descriptors={"index": np.arange(condition_fold.size)})
    sets = ([], [], [])
    k_subjects, k_conditions = subject_fold.max() + 1, condition_fold.max() + 1
    for s in range(k_subjects):
        test_s = np.flatnonzero(subject_fold == s)
        train_s = np.flatnonzero(subject_fold != s) if k_subjects > 1 else test_s
        for c in range(k_conditions):
            test_c = np.flatnonzero(condition_fold == c)
            train_c = np.flatnonzero(condition_fold != c) if k_conditions > 1 else test_c
            for out, subjects, conditions in zip(
                sets, (train_s, test_s, train_s), (train_c, test_c, test_c), strict=True
            ):
                picked = rdms.subset("index", subjects).subset_pattern("index", conditions)
                out.append([picked, conditions])
    return rdms, sets


@pytest.mark.usefixtures("exact_cg")
@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
def test_crossvalidation_matches_rsatoolbox_on_the_same_folds(method) -> None:
    from rsatoolbox.inference import crossval
    from rsatoolbox.model import ModelFixed, ModelInterpolate, ModelSelect, ModelWeighted
    from rsatoolbox.model.fitter import fit_interpolate, fit_mock, fit_regress_nn, fit_select

    from neuronkit.interpretability import Interpolation, Selection, crossvalidate

    data, models = _subjects_and_models(6, n=12, n_subjects=6)
    weighted = method in FITTED  # rank comparisons: fixed and selection models only
    ours_models = {
        "a": models[0],
        "c": models[2],
        "s": Selection(models[::-1]),
        "i": Interpolation(models),
    }
    theirs_models = [
        ModelFixed("a", RDMs(models[:1])),
        ModelFixed("c", RDMs(models[2:])),
        ModelSelect("s", RDMs(models[::-1])),
        ModelInterpolate("i", RDMs(models)),
    ]
    fitters = [fit_mock, fit_mock, fit_select, fit_interpolate]
    if weighted:
        ours_models["w"] = models
        theirs_models.append(ModelWeighted("w", RDMs(models)))
        fitters.append(fit_regress_nn)
    ours = crossvalidate(ours_models, data, method, seed=2)
    rdms, (train, test, ceil) = _rsatoolbox_folds(data, ours.subject_fold, ours.condition_fold)
    theirs = crossval(
        theirs_models, rdms, train, test, ceil, INFERENCE_METHODS[method], fitter=fitters
    )
    np.testing.assert_allclose(ours.evaluations, theirs.evaluations[0].T, atol=ATOL)
    np.testing.assert_allclose(ours.noise_ceiling, theirs.noise_ceiling, atol=ATOL)
    np.testing.assert_allclose(ours.means, theirs.get_means(), atol=ATOL)


@pytest.mark.parametrize("bootstrap", ["both", "subjects", "conditions"])
def test_bootstrap_crossvalidation_tests_are_rsatoolbox_results_of_the_same_samples(
    bootstrap,
) -> None:
    """rsatoolbox's bootstrap_crossval correction for the fold assignments' variance, and its
    Result's means, standard errors, intervals and tests, given neuronkit's samples."""
    from rsatoolbox.inference.result import Result
    from rsatoolbox.model import ModelFixed

    from neuronkit.interpretability import bootstrap_crossvalidate

    data, models = _subjects_and_models(7, n=12, n_subjects=8)
    named = {"truth": models[0], "weighted": models, "other": models[1]}
    ours = bootstrap_crossvalidate(
        named, data, "correlation", bootstrap=bootstrap, n_bootstrap=60, n_cv=3, seed=2
    )
    ok = ours._valid()[2]
    evaluations = ours.samples[:, ok].transpose(1, 2, 0)[:, :, None, :]  # [N, M, folds, n_cv]
    ceilings = ours.ceiling_samples[:, ok].transpose(2, 1, 0)  # [2, N, n_cv]
    # bootstrap_crossval's variance: n_cv assignments against one
    n_cv = 3
    per_assignment = evaluations.mean(axis=-2)
    covariance_of_mean = np.cov(np.concatenate([evaluations.mean((-1, -2)).T, ceilings.mean(-1)]))
    covariance_of_one = np.mean(
        [np.cov(np.concatenate([per_assignment[:, :, i].T, ceilings[:, :, i]])) for i in range(3)],
        axis=0,
    )
    variances = (n_cv * covariance_of_mean - covariance_of_one) / (n_cv - 1)
    counts = {
        "both": {"dof": 7, "n_rdm": 8, "n_pattern": 12},
        "subjects": {"dof": 7, "n_rdm": 8},
        "conditions": {"dof": 11, "n_pattern": 12},
    }[bootstrap]
    theirs = Result(
        [ModelFixed(name, RDMs(models[:1])) for name in named],
        evaluations,
        "corr",
        "bootstrap_crossval",
        ceilings,
        variances=variances,
        **counts,
    )
    np.testing.assert_allclose(ours.means, theirs.get_means(), atol=ATOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a variance the correction leaves <= 0
        pairs = [
            (ours.sem(), theirs.get_sem(), ATOL),
            (ours.ci(0.9), theirs.get_ci(0.9), ATOL),
            (ours.p_pairwise(), theirs.test_pairwise(), 1e-9),
            (ours.p_zero(), theirs.test_zero(), 1e-9),
            (ours.p_noise_ceiling(), theirs.test_noise(), 1e-9),
        ]
    undefined = np.isnan(pairs[0][0])
    np.testing.assert_array_equal(pairs[0][1][undefined], 0.0)  # rsatoolbox clips them to 0
    for mine, reference, atol in pairs:
        defined = np.isfinite(mine)
        assert defined.mean() > 0.5
        np.testing.assert_allclose(mine[defined], np.asarray(reference)[defined], atol=atol)


@pytest.mark.usefixtures("exact_cg")
@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", INFERENCE_METHODS)
def test_folds_of_a_bootstrap_sample_match_rsatoolbox(method) -> None:
    """One bootstrap sample with repeated subjects and conditions, cross-validated on given
    folds: rsatoolbox's crossval and cv_noise_ceiling (as its bootstrap_crossval runs them)."""
    from rsatoolbox.inference import crossval
    from rsatoolbox.inference.evaluate import _concat_sampling
    from rsatoolbox.inference.noise_ceiling import cv_noise_ceiling
    from rsatoolbox.model import ModelFixed, ModelInterpolate, ModelSelect, ModelWeighted
    from rsatoolbox.model.fitter import fit_interpolate, fit_mock, fit_regress_nn, fit_select

    from neuronkit.interpretability import Interpolation, Selection
    from neuronkit.interpretability.rsa_crossval import _fold_evaluations, _inputs

    n, n_subjects = 12, 6
    data, models = _subjects_and_models(8, n=n, n_subjects=n_subjects)
    rng = np.random.default_rng(3)
    subjects, conditions = np.sort(rng.integers(0, n_subjects, n_subjects)), rng.integers(0, n, n)
    assert len(set(subjects)) < n_subjects  # copies of subjects
    assert len(set(conditions)) < n  # and of conditions
    folds_of = []
    for ids, size in ((np.unique(subjects), n_subjects), (np.unique(conditions), n)):
        fold = np.zeros(size, np.int64)
        fold[ids] = np.arange(ids.size) % 2
        folds_of.append(fold)
    # rsatoolbox's sets for these folds (sets_k_fold on the sample, units grouped by index)
    rdms = RDMs(
        data,
        rdm_descriptors={"index": np.arange(n_subjects)},
        pattern_descriptors={"index": np.arange(n)},
    )
    sample = rdms.subsample("index", subjects).subsample_pattern("index", conditions)
    train, test, ceil = [], [], []
    for s in range(2):
        ids = np.unique(subjects)
        test_rdms = sample.subsample("index", ids[folds_of[0][ids] == s])
        train_rdms = sample.subsample("index", ids[folds_of[0][ids] != s])
        for c in range(2):
            ids_c = np.unique(conditions)
            test_c, train_c = ids_c[folds_of[1][ids_c] == c], ids_c[folds_of[1][ids_c] != c]
            train.append([train_rdms.subset_pattern("index", train_c), train_c])
            test.append([test_rdms.subset_pattern("index", test_c), test_c])
            ceil.append([train_rdms.subset_pattern("index", test_c), test_c])
    theirs_name = INFERENCE_METHODS[method]
    ceiling = cv_noise_ceiling(sample, ceil, test, method=theirs_name, pattern_descriptor="index")
    ours_models = {
        "a": models[0],
        "c": models[2],
        "s": Selection(models),
        "i": Interpolation(models[::-1]),
    }
    theirs_models = [
        ModelFixed("a", RDMs(models[:1])),
        ModelFixed("c", RDMs(models[2:])),
        ModelSelect("s", RDMs(models)),
        ModelInterpolate("i", RDMs(models[::-1])),
    ]
    fitters = [fit_mock, fit_mock, fit_select, fit_interpolate]
    if method in FITTED:
        ours_models["w"] = models
        theirs_models.append(ModelWeighted("w", RDMs(models)))
        fitters.append(fit_regress_nn)
    theirs = crossval(
        theirs_models,
        sample,
        [[t[0], _concat_sampling(conditions, t[1])] for t in train],
        [[t[0], _concat_sampling(conditions, t[1])] for t in test],
        method=theirs_name,
        fitter=fitters,
        pattern_descriptor="index",
        calc_noise_ceil=False,
    )
    stacks, _, fits, _ = _inputs(ours_models, data, method, None, True, 0.0, False)
    evaluations, ceilings, _ = _fold_evaluations(
        stacks,
        fits,
        data,
        method,
        (subjects, conditions),
        tuple(folds_of),
        np.array([(s, c) for s in range(2) for c in range(2)]),
    )
    np.testing.assert_allclose(evaluations, theirs.evaluations[0].T, atol=ATOL)
    np.testing.assert_allclose(ceilings.mean(axis=0), ceiling, atol=ATOL)
