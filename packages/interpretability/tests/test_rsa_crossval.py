"""Weighted model RDMs: fitted weights and cross-validated evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from neuronkit.interpretability import (
    FITTED_COMPARISONS,
    crossvalidate,
    evaluate_models,
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
