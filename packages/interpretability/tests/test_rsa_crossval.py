"""Weighted model RDMs: fitted weights and cross-validated evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from neuronkit.interpretability import (
    COMPARISONS,
    FITTED_COMPARISONS,
    crossvalidate,
    evaluate_models,
    fit_interpolation,
    fit_weights,
    noise_ceiling,
    pool_rdms,
)


def _components(seed: int = 0, n: int = 12, k: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((k, n * (n - 1) // 2))


def _subjects(truth: np.ndarray, seed: int = 1, n_subjects: int = 6, noise: float = 0.5):
    rng = np.random.default_rng(seed)
    return truth + noise * rng.random((n_subjects, truth.size))


@pytest.mark.parametrize("method", FITTED_COMPARISONS)
@pytest.mark.parametrize("nonnegative", [True, False])
def test_noiseless_data_give_back_the_true_weights(method, nonnegative) -> None:
    comps = _components()
    theta = np.array([0.2, 0.0, 0.7])
    data = theta @ comps + (3.0 if "correlation" in method else 0.0)  # an offset: no matter
    found = fit_weights(comps, data, method, nonnegative=nonnegative)
    np.testing.assert_allclose(found, theta / np.linalg.norm(theta), atol=1e-10)


def test_nonnegative_cosine_weights_are_nnls_on_the_pooled_rdm() -> None:
    comps = _components(2, k=4)
    data = _subjects(comps[0] + comps[2] - 0.5 * comps[3], seed=3)  # a negative true weight
    expected = nnls(comps.T, pool_rdms(data))[0]
    found = fit_weights(comps, data, normalize=False)
    np.testing.assert_allclose(found, expected, atol=1e-10)
    assert found[3] == 0.0
    assert found.min() >= 0.0
    unconstrained = fit_weights(comps, data, nonnegative=False, normalize=False)
    np.testing.assert_allclose(
        unconstrained, np.linalg.lstsq(comps.T, pool_rdms(data), rcond=None)[0], atol=1e-10
    )
    assert unconstrained[3] < 0.0


def test_ridge_adds_its_weight_to_the_gram_matrix() -> None:
    comps = _components(4)
    data = _subjects(comps[0], seed=5)
    y = pool_rdms(data, "correlation")
    centred = comps - comps.mean(axis=1, keepdims=True)
    expected = np.linalg.solve(centred @ centred.T + 2.5 * np.eye(3), centred @ y)
    found = fit_weights(comps, data, "correlation", nonnegative=False, ridge=2.5, normalize=False)
    np.testing.assert_allclose(found, expected, atol=1e-10)


def test_collinear_components_are_solved_not_refused() -> None:
    comps = _components(6, k=2)
    doubled = np.stack([comps[0], comps[0], comps[1]])
    data = comps[0] + 0.5 * comps[1]
    free = fit_weights(doubled, data, nonnegative=False, normalize=False)
    np.testing.assert_allclose(free[0], free[1], atol=1e-10)  # the minimum-norm split
    np.testing.assert_allclose(free @ doubled, pool_rdms(data), atol=1e-9)  # an exact fit
    bounded = fit_weights(doubled, data, normalize=False)
    np.testing.assert_allclose(bounded @ doubled, pool_rdms(data), atol=1e-9)


def test_no_useful_nonnegative_weight_gives_zeros() -> None:
    comps = _components(7, k=1)
    weights = fit_weights(comps, comps.max() - comps[0], "correlation")
    np.testing.assert_array_equal(weights, [0.0])


def test_fit_weights_refuses_bad_input() -> None:
    comps = _components()
    with pytest.raises(ValueError, match=r"method must be one of .* rank comparisons"):
        fit_weights(comps, comps[0], "spearman")
    with pytest.raises(ValueError, match="method must be one of"):
        fit_weights(comps, comps[0], "euclid")
    with pytest.raises(ValueError, match="ridge"):
        fit_weights(comps, comps[0], ridge=-1.0)
    with pytest.raises(TypeError, match="nonnegative"):
        fit_weights(comps, comps[0], nonnegative=1)
    with pytest.raises(ValueError, match="same number of dissimilarities"):
        fit_weights(comps, _components(n=5)[0])
    with pytest.raises(ValueError, match=r"data.* constant"):
        fit_weights(comps, np.ones(comps.shape[1]), "correlation")


# --------------------------------------------------------------------------------------------
# cross-validation


def test_one_fold_each_way_is_the_evaluation_on_all_data() -> None:
    comps = _components(8)
    data = _subjects(comps[0] + comps[1], seed=9)
    result = crossvalidate(comps, data, "correlation", condition_folds=1, subject_folds=1)
    np.testing.assert_allclose(result.means, evaluate_models(comps, data, "correlation").means)
    upper = noise_ceiling(data, "correlation")[1]  # one fold: the others are all subjects
    np.testing.assert_allclose(result.noise_ceiling, [upper, upper])
    assert result.weights == {}


def test_cross_validation_removes_the_advantage_of_free_weights() -> None:
    """A model of many random components fits the data it is fitted to better than it
    predicts held-out subjects and conditions; the true fixed model does not drop."""
    comps = _components(10, n=15, k=3)
    truth = comps[0] + comps[1]
    data = _subjects(truth, seed=11, n_subjects=8, noise=1.5)
    models = {"truth": truth, "flexible": _components(12, n=15, k=30)}
    in_sample = crossvalidate(models, data, "correlation", condition_folds=1, subject_folds=1)
    held_out = crossvalidate(models, data, "correlation", condition_folds=3, subject_folds=4)
    drop = in_sample.means - held_out.means
    assert drop[1] > 5 * abs(drop[0])
    assert held_out.means[0] > held_out.means[1]
    assert held_out.weights["flexible"].shape == (12, 30)
    assert (held_out.weights["flexible"] >= 0).all()


def test_folds_are_balanced_random_and_seeded() -> None:
    comps = _components(13, n=14)
    data = _subjects(comps[0], seed=14, n_subjects=7)
    a = crossvalidate(comps, data, condition_folds=4, subject_folds=3, seed=3)
    b = crossvalidate(comps, data, condition_folds=4, subject_folds=3, seed=3)
    c = crossvalidate(comps, data, condition_folds=4, subject_folds=3, seed=4)
    np.testing.assert_array_equal(a.evaluations, b.evaluations)
    assert not np.array_equal(a.condition_fold, c.condition_fold)
    assert sorted(np.bincount(a.condition_fold)) == [3, 3, 4, 4]
    assert sorted(np.bincount(a.subject_fold)) == [2, 2, 3]
    assert a.folds.tolist() == [[s, k] for s in range(3) for k in range(4)]
    assert a.evaluations.shape == (12, 3)
    assert a.ceilings.shape == (12, 2)


def test_defaults_follow_rsatoolbox_within_three_conditions_per_fold() -> None:
    for n, k_conditions in ((6, 2), (8, 2), (20, 3), (30, 4), (60, 5)):
        comps = _components(15, n=n)
        result = crossvalidate(comps, _subjects(comps[0], n_subjects=4))
        assert result.condition_fold.max() + 1 == k_conditions
        assert result.subject_fold.max() + 1 == 2


def test_rank_comparisons_cross_validate_fixed_models() -> None:
    comps = _components(16)
    result = crossvalidate(comps, _subjects(comps[2]), "spearman")
    assert np.argmax(result.means) == 2
    with pytest.raises(ValueError, match="rank comparisons"):
        crossvalidate({"weighted": comps}, _subjects(comps[2]), "spearman")


def test_summary_names_models_and_marks_fitted_ones() -> None:
    comps = _components(17)
    result = crossvalidate({"fixed": comps[0], "weighted": comps}, _subjects(comps[0]))
    text = result.summary()
    assert "noise ceiling" in text
    assert "3 subject x 3 condition folds" in text
    assert any(line.startswith("weighted") and line.endswith("yes") for line in text.splitlines())


def test_crossvalidate_leaves_its_inputs_alone() -> None:
    comps = _components(18)
    data = _subjects(comps[0])
    models = {"w": comps, "f": comps[1]}
    copies = comps.copy(), data.copy()
    crossvalidate(models, data, "whitened_correlation")
    np.testing.assert_array_equal(comps, copies[0])
    np.testing.assert_array_equal(data, copies[1])


def test_crossvalidate_refuses_bad_input() -> None:
    comps = _components(19)
    data = _subjects(comps[0])
    with pytest.raises(ValueError, match="condition_folds must leave at least 3 conditions"):
        crossvalidate(comps, data, condition_folds=5)
    with pytest.raises(ValueError, match="subject_folds must leave at least 1 subjects"):
        crossvalidate(comps, data, subject_folds=7)
    with pytest.raises(ValueError, match="condition_folds"):
        crossvalidate(comps, data, condition_folds=0)
    with pytest.raises(ValueError, match="names must not be given"):
        crossvalidate({"a": comps[0]}, data, names=["a"])
    with pytest.raises(ValueError, match="empty mapping"):
        crossvalidate({}, data)
    with pytest.raises(ValueError, match="same number of dissimilarities"):
        crossvalidate(_components(n=6), data)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        crossvalidate(comps, data[:1])
    with pytest.raises(ValueError, match="ridge"):  # checked with fixed models only, too
        crossvalidate(comps, data, ridge=-0.5)


# --------------------------------------------------------------------------------------------
# bootstrapped cross-validation


def _engine(data, models, method, units, unit_folds, folds):
    """One sample's fold evaluations (the engine shared by both cross-validations)."""
    from neuronkit.interpretability.rsa_crossval import _fold_evaluations, _inputs

    stacks, _, fits, data = _inputs(models, data, method, None, True, 0.0, False)
    return _fold_evaluations(stacks, fits, data, method, units, unit_folds, folds)


@pytest.mark.parametrize("method", ["cosine", "correlation", "spearman"])
def test_copies_of_every_subject_and_condition_change_nothing(method) -> None:
    """Two copies of every unit: each pair of conditions counts four times (the pairs of a
    condition's two copies are left out), each subject twice; uniform weights leave these
    comparisons, pools and least-squares weights as they are."""
    comps = _components(20, n=9)
    data = _subjects(comps[0] + comps[1], seed=21, n_subjects=4)
    models = {"fixed": comps[0], "other": comps[2]}
    if method != "spearman":
        models["weighted"] = comps
    unit_folds = (np.array([0, 1, 0, 1]), np.array([0, 1, 2, 0, 1, 2, 0, 1, 2]))
    folds = np.array([(s, c) for s in range(2) for c in range(3)])
    once = _engine(data, models, method, (np.arange(4), np.arange(9)), unit_folds, folds)
    twice = _engine(
        data,
        models,
        method,
        (np.repeat(np.arange(4), 2), np.tile(np.arange(9), 2)),
        unit_folds,
        folds,
    )
    np.testing.assert_allclose(twice[0], once[0], atol=1e-12)
    np.testing.assert_allclose(twice[1], once[1], atol=1e-12)
    for a, b in zip(twice[2], once[2], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-10)


def test_one_assignment_per_sample_gives_the_plain_bootstrap_variance() -> None:
    from neuronkit.interpretability import bootstrap_crossvalidate

    comps = _components(22, n=12)
    data = _subjects(comps[0], seed=23, n_subjects=8)
    result = bootstrap_crossvalidate(
        {"w": comps, "f": comps[1]}, data, "correlation", n_bootstrap=30, n_cv=1, seed=1
    )
    valid = result.samples[0][np.isfinite(result.samples[0]).all(axis=1)]
    n = min(8, 12)
    np.testing.assert_allclose(result.sem() ** 2, valid.var(axis=0, ddof=1) * n / (n - 1))
    np.testing.assert_allclose(result.means, valid.mean(axis=0))
    assert result.dof == 7


def test_bootstrap_crossvalidation_ranks_the_true_model_first_and_is_seeded() -> None:
    from neuronkit.interpretability import bootstrap_crossvalidate

    comps = _components(24, n=15, k=3)
    truth = comps[0] + comps[1]
    data = _subjects(truth, seed=25, n_subjects=10, noise=1.0)
    models = {"truth": truth, "weighted": comps, "unrelated": _components(26, n=15, k=1)[0]}
    kwargs = {"n_bootstrap": 40, "seed": 3, "show_progress": False}
    result = bootstrap_crossvalidate(models, data, "correlation", **kwargs)
    again = bootstrap_crossvalidate(models, data, "correlation", **kwargs)
    np.testing.assert_array_equal(result.samples, again.samples)
    assert result.samples.shape == (2, 40, 3)
    assert np.argmin(result.means) == 2
    assert result.p_pairwise()[0, 2] < 0.01
    assert result.p_zero()[2] > 0.05
    assert (result.sem() > 0).all()
    assert "cross-validated over 3 subject x 2 condition folds" in result.summary()


def test_samples_too_small_for_the_folds_are_left_out() -> None:
    from neuronkit.interpretability import bootstrap_crossvalidate

    comps = _components(27, n=9)
    data = _subjects(comps[0], seed=28, n_subjects=2)  # half the draws repeat one subject
    result = bootstrap_crossvalidate(comps, data, bootstrap="subjects", n_bootstrap=20, seed=0)
    invalid = ~np.isfinite(result.samples[0]).all(axis=1)
    assert 0 < invalid.sum() < 20
    assert np.isfinite(result.means).all()
    with pytest.raises(ValueError, match="large enough for the folds"):
        bootstrap_crossvalidate(comps, data[:2], bootstrap="subjects", n_bootstrap=2, seed=5).sem()


def test_bootstrap_crossvalidate_refuses_bad_input() -> None:
    from neuronkit.interpretability import bootstrap_crossvalidate

    comps = _components(29)
    data = _subjects(comps[0])
    with pytest.raises(ValueError, match="bootstrap must be one of"):
        bootstrap_crossvalidate(comps, data, bootstrap="dual")
    with pytest.raises(ValueError, match="n_cv"):
        bootstrap_crossvalidate(comps, data, n_cv=0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        bootstrap_crossvalidate(comps, data, n_bootstrap=1)
    with pytest.raises(ValueError, match="condition_folds must leave"):
        bootstrap_crossvalidate(comps, data, condition_folds=6)


def test_bootstrap_crossvalidation_plots_as_a_model_comparison() -> None:
    from neuronkit.interpretability import bootstrap_crossvalidate, plot

    comps = _components(30, n=12)
    data = _subjects(comps[0] + comps[2], seed=31, n_subjects=6)
    result = bootstrap_crossvalidate(
        {"fixed": comps[0], "weighted": comps}, data, "correlation", n_bootstrap=20
    )
    ax = plot.model_comparison(result, error="ci")
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches[1:]], result.means)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fixed", "weighted"]


def test_a_cross_validation_plots_its_folds_as_dots() -> None:
    from neuronkit.interpretability import plot

    comps = _components(34, n=12)
    result = crossvalidate({"fixed": comps[0], "weighted": comps}, _subjects(comps[0]))
    ax = plot.model_comparison(result)
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches[1:]], result.means)
    dots = np.stack([line.get_ydata() for line in ax.lines if line.get_marker() == "."])
    np.testing.assert_array_equal(dots, result.evaluations)  # [F, M]: a series per fold
    assert "3 subject x 3 condition folds" in ax.get_title()


def test_a_correction_without_positive_variance_gives_nan_not_certainty() -> None:
    """Too few samples: the fold assignments' variance exceeds the bootstrap's for the
    difference of two closely related models. rsatoolbox clips it to 0 (p ~ 1e-69 here); it is
    NaN with a warning, and a positive value again with more samples."""
    from neuronkit.interpretability import bootstrap_crossvalidate

    rng = np.random.default_rng(0)
    parts = rng.random((3, 190))
    data = parts[0] + 0.5 * parts[1] + rng.random((12, 190))
    models = {"weighted": parts, "first part": parts[0], "other": rng.random(190)}
    few = bootstrap_crossvalidate(models, data, "whitened_correlation", n_bootstrap=100)
    with pytest.warns(UserWarning, match="fold assignments' variance exceeds"):
        p = few.p_pairwise()
    assert np.isnan(p[0, 1])
    assert np.isfinite(p[0, 2])
    more = bootstrap_crossvalidate(models, data, "whitened_correlation", n_bootstrap=300)
    assert 0 < more.p_pairwise()[0, 1] < 0.05


@pytest.mark.parametrize("method", ["spearman", "whitened_correlation"])
def test_a_selection_model_picks_the_best_candidate_in_every_fold(method) -> None:
    from neuronkit.interpretability import Selection

    comps = _components(32, n=12, k=4)
    data = _subjects(comps[2], seed=33, noise=0.3)
    result = crossvalidate(
        {"layers": Selection(comps), "truth": comps[2]}, data, method, condition_folds=3
    )
    np.testing.assert_array_equal(result.weights["layers"], np.tile(np.eye(4)[2], (9, 1)))
    np.testing.assert_allclose(result.evaluations[:, 0], result.evaluations[:, 1])
    with pytest.raises(TypeError, match=r"models\['layers'\] must be a real array"):
        crossvalidate({"layers": Selection("not an RDM")}, data)


# --------------------------------------------------------------------------------------------
# interpolation models

ALL_COMPARISONS = (*FITTED_COMPARISONS, "spearman", "rho_a", "kendall_tau_a")


def _sequence_and_truth(seed: int, n: int = 12, w: float = 0.3):
    """Four RDMs and the point ``w`` of the way from the third to the second."""
    seq = _components(seed, n=n, k=4)
    return seq, w * seq[1] + (1 - w) * seq[2]


@pytest.mark.parametrize("method", ALL_COMPARISONS)
def test_interpolation_finds_the_point_between_neighbours_that_made_the_data(method) -> None:
    from neuronkit.interpretability import compare_rdms, fit_interpolation

    seq, truth = _sequence_and_truth(40)
    theta = fit_interpolation(seq, truth, method)
    assert np.count_nonzero(theta[[0, 3]]) == 0
    assert theta[1] + theta[2] == pytest.approx(1.0, abs=1e-12)
    if method in FITTED_COMPARISONS:  # the comparison is 1 at the truth only
        np.testing.assert_allclose(theta, [0.0, 0.3, 0.7, 0.0], atol=1e-4)
    else:  # a step function of w: Brent's search stops on a step at or next to the top
        assert compare_rdms(theta @ seq, truth, method)[0, 0] > 0.99
        assert theta[1] == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("method", ["correlation", "whitened_cosine", "spearman", "rho_a"])
def test_interpolation_reaches_the_best_point_of_a_fine_grid(method) -> None:
    """Noisy subjects: no point of any segment (a grid of 2001 per segment) compares better on
    average than the fitted one. The cosine family's mean comparison is the cosine with the
    pool, unimodal along a segment: Brent's search finds its top. A rank comparison is a step
    function of ``w``: the search (rsatoolbox's) can stop on a step just below the top."""
    from neuronkit.interpretability import compare_rdms, fit_interpolation

    seq, truth = _sequence_and_truth(41)
    data = _subjects(truth, seed=42, noise=1.0)
    theta = fit_interpolation(seq, data, method)
    found = compare_rdms(theta @ seq, data, method).mean()
    grid = np.linspace(0.0, 1.0, 2001)[:, None]
    best = max(
        compare_rdms(grid * seq[k] + (1 - grid) * seq[k + 1], data, method).mean(axis=1).max()
        for k in range(3)
    )
    assert found >= best - (1e-8 if method in FITTED_COMPARISONS else 1e-3)
    assert found > compare_rdms(seq, data, method).mean(axis=1).max() - 1e-12


@pytest.mark.parametrize("method", ["whitened_correlation", "kendall_tau_a"])
def test_an_interpolation_model_cross_validates_near_the_true_model(method) -> None:
    from neuronkit.interpretability import Interpolation, Selection

    seq, truth = _sequence_and_truth(43)
    data = _subjects(truth, seed=44, noise=0.3)
    result = crossvalidate(
        {"path": Interpolation(seq), "truth": truth, "layers": Selection(seq)}, data, method
    )
    weights = result.weights["path"]
    assert weights.shape == (9, 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert np.all(np.count_nonzero(weights, axis=1) <= 2)
    assert weights[:, 1].mean() == pytest.approx(0.3, abs=0.03)  # the folds around the truth
    assert np.all(weights[:, 1] > 0.2)
    assert np.all(weights[:, 1] < 0.45)
    means = dict(zip(result.names, result.means, strict=True))
    assert means["truth"] - 0.02 < means["path"] <= means["truth"] + 0.02
    assert means["path"] > means["layers"] + 0.05


def test_interpolation_refuses_bad_input() -> None:
    from neuronkit.interpretability import Interpolation, fit_interpolation

    seq, truth = _sequence_and_truth(45)
    with pytest.raises(ValueError, match="rdms must hold at least 2 RDMs"):
        fit_interpolation(seq[:1], truth)
    with pytest.raises(ValueError, match=r"models\['path'\] must hold at least 2 RDMs"):
        crossvalidate({"path": Interpolation(seq[2])}, _subjects(truth))
    with pytest.raises(ValueError, match="same number of dissimilarities"):
        fit_interpolation(seq, _components(n=6)[0])
    with pytest.raises(ValueError, match="method"):
        fit_interpolation(seq, truth, "euclidean")
    with pytest.raises(ValueError, match=r"data\[0\] is zero"):
        fit_interpolation(seq, np.zeros_like(truth))


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_fits_do_not_depend_on_the_scale_of_the_data_or_the_sequence(scale) -> None:
    """The pooled target and an interpolation's points are free of the data's and the
    sequence's scale: extreme scales over- or underflowed (zero weights, a LinAlgError, or the
    first segment's end for every data)."""
    rng = np.random.default_rng(5)
    parts = rng.random((3, 45))
    data = parts[0] + 0.5 * parts[1] + 0.2 * rng.random((6, 45))
    for method in FITTED_COMPARISONS:
        expected = fit_weights(parts, data, method)
        np.testing.assert_allclose(fit_weights(parts, data * scale, method), expected, rtol=1e-9)
    for method in COMPARISONS:
        expected = fit_interpolation(parts, data, method)
        for rdms, d in ((parts * scale, data), (parts, data * scale)):
            np.testing.assert_allclose(fit_interpolation(rdms, d, method), expected, atol=1e-6)
