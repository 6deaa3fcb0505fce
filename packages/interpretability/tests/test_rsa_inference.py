"""RSA inference: pooled RDMs, noise ceilings, bootstrap evaluations and their tests
(agreement with rsatoolbox: test_rsa_rsatoolbox.py)."""

from __future__ import annotations

import numpy as np
import pytest

from neuronkit.interpretability import (
    COMPARISONS,
    ModelEvaluation,
    compare_rdms,
    evaluate_models,
    noise_ceiling,
    plot,
    pool_rdms,
    rdm,
    rdm_to_square,
)
from neuronkit.interpretability.rsa import _compare_stacks
from neuronkit.interpretability.rsa_inference import _bootstrap, _ceilings, _sampled_pairs


def _group(seed: int = 0, n: int = 10, n_subjects: int = 8, noise: float = 0.8):
    """Subjects' RDMs = a true model RDM + independent noise; a wrong model and the truth."""
    rng = np.random.default_rng(seed)
    p = n * (n - 1) // 2
    truth = rng.random(p)
    data = truth + noise * rng.random((n_subjects, p))
    return data, np.stack([truth, rng.random(p)])


def _direct_ceilings(v: np.ndarray, counts: np.ndarray, method: str) -> tuple[float, float]:
    """The noise ceiling of a sample written out: the sample as a stack with repeated subjects,
    pooled with and without all copies of each distinct subject."""
    stack = np.repeat(v, counts, axis=0)
    owners = np.repeat(np.arange(len(v)), counts)
    lower, upper = [], []
    for i in np.flatnonzero(counts):
        upper.append(compare_rdms(pool_rdms(stack, method), v[i], method)[0, 0])
        lower.append(compare_rdms(pool_rdms(stack[owners != i], method), v[i], method)[0, 0])
    return float(np.mean(lower)), float(np.mean(upper))


@pytest.mark.parametrize("method", COMPARISONS)
def test_noise_ceilings_of_resampled_subjects_equal_the_pools_written_out(method) -> None:
    """The cosine and correlation ceilings come from Gram matrices: the same numbers."""
    data, _ = _group(1, n=7, n_subjects=5)
    counts = np.array([[2, 0, 1, 0, 2], [1, 1, 1, 1, 1], [0, 0, 3, 1, 1]])
    got = _ceilings(data, counts.astype(float), method)
    for k, c in enumerate(counts):
        np.testing.assert_allclose(got[k], _direct_ceilings(data, c, method), atol=1e-12)
    one = _ceilings(data, np.array([[0.0, 0.0, 5.0, 0.0, 0.0]]), method)[0]
    assert one[0] == one[1] == pytest.approx(1.0)  # one distinct subject: its own pool


def test_sampled_pairs_are_the_subsampled_square_without_copies_of_one_condition() -> None:
    n = 6
    vector = np.arange(1.0, n * (n - 1) // 2 + 1)
    square = rdm_to_square(vector)
    draw = np.array([4, 1, 4, 0, 2, 2])
    sel = np.sort(draw)
    sub = square[np.ix_(sel, sel)]
    rows, cols = np.triu_indices(n, k=1)
    expected = sub[rows, cols][sel[rows] != sel[cols]]
    positions, kept = _sampled_pairs(draw, n)
    np.testing.assert_array_equal(vector[positions], expected)
    np.testing.assert_array_equal(kept, sel[rows] != sel[cols])


@pytest.mark.parametrize("method", ["whitened_cosine", "whitened_correlation"])
def test_whitening_with_every_pair_kept_equals_the_full_rdm_route(method) -> None:
    """A bootstrap sample's whitening (least squares over the pairs present) with no pair
    missing is the double centring of compare_rdms."""
    data, models = _group(12, n=9)
    kept = np.ones(36, dtype=bool)
    np.testing.assert_allclose(
        _compare_stacks(models, data, method, kept), compare_rdms(models, data, method), atol=1e-12
    )


@pytest.mark.parametrize("bootstrap", [None, "subjects", "conditions", "both", "dual"])
def test_the_true_model_wins_and_reaches_the_noise_ceiling(bootstrap) -> None:
    data, models = _group(2, n=16, n_subjects=10)
    result = evaluate_models(
        {"truth": models[0], "wrong": models[1]},
        data,
        "correlation",
        bootstrap=bootstrap,
        n_bootstrap=200,
    )
    lower, upper = result.noise_ceiling
    assert 0 < lower < result.means[0] < upper <= 1
    assert result.means[1] < lower
    assert result.p_pairwise()[0, 1] < 0.01
    assert result.p_zero()[0] < 0.01
    assert result.p_noise_ceiling()[1] < 0.01  # the wrong model is below the ceiling
    assert np.all(result.sem() > 0)
    low, high = result.ci()
    assert np.all(low < result.means)
    assert np.all(result.means < high)
    text = result.summary()
    assert "truth" in text
    assert f"noise ceiling: {lower:.4f} to {upper:.4f}" in text
    if bootstrap is not None:
        assert result.samples.shape == (200, 2)
        assert result.ceiling_samples.shape == (200, 2)
        assert result.p_pairwise("bootstrap")[0, 1] < 0.05
        assert result.p_noise_ceiling("bootstrap")[1] < 0.05


@pytest.mark.parametrize("seed", [3, 4])
def test_bootstrap_standard_errors_shrink_with_the_root_of_the_group(seed) -> None:
    """Four times the subjects: about half the standard error."""
    small = evaluate_models(*_group(seed, n_subjects=20)[::-1], bootstrap="subjects")
    large = evaluate_models(*_group(seed, n_subjects=80)[::-1], bootstrap="subjects")
    ratio = large.sem() / small.sem()
    assert np.all((ratio > 0.3) & (ratio < 0.8))


def _simulated(rng: np.random.Generator, n: int = 20, n_subjects: int = 8, dims: int = 6):
    """A fresh experiment: conditions drawn from a population (patterns ``[n, dims]``), the
    true model's RDM and a partly wrong one's, and subjects measuring the patterns with noise."""
    patterns = rng.normal(size=(n, dims))
    wrong = patterns + rng.normal(size=(n, dims))
    models = np.stack([rdm(patterns, "euclidean"), rdm(wrong, "euclidean")])
    noisy = [rdm(patterns + rng.normal(size=(n, dims)), "euclidean") for _ in range(n_subjects)]
    return models, np.stack(noisy)


@pytest.mark.parametrize("seed", [0, 1])
def test_dual_bootstrap_variance_is_near_the_true_sampling_variance(seed) -> None:
    """Schütt et al. (2023): resampling subjects and conditions together overestimates the
    variance of a model's evaluation across experiments with new subjects and new conditions;
    the dual bootstrap's combination comes closer. Measured against the variance over 200
    simulated experiments."""
    rng = np.random.default_rng(seed)
    means = [evaluate_models(*_simulated(rng), "correlation").means for _ in range(200)]
    true_variance = np.var(means, axis=0, ddof=1)
    ratios = {}
    for kind in ("both", "dual"):
        rng = np.random.default_rng(seed + 100)  # the same 30 experiments for both
        estimates = [
            evaluate_models(
                *_simulated(rng), "correlation", bootstrap=kind, n_bootstrap=100, seed=k
            ).sem()
            ** 2
            for k in range(30)
        ]
        ratios[kind] = np.mean(estimates, axis=0) / true_variance
    assert np.all(ratios["both"] > 1.3)  # the double bootstrap overestimates
    assert np.all(np.abs(np.log(ratios["dual"])) < np.abs(np.log(ratios["both"])))
    assert np.all((ratios["dual"] > 0.7) & (ratios["dual"] < 1.45))


def test_dual_bootstrap_keeps_each_factor_and_bounds_its_variance() -> None:
    data, models = _group(11, n=12)
    dual = evaluate_models(models, data, bootstrap="dual", n_bootstrap=50, seed=3)
    both = evaluate_models(models, data, bootstrap="both", n_bootstrap=50, seed=3)
    np.testing.assert_array_equal(dual.samples, both.samples)  # the same draws
    assert dual.factor_samples.shape == (2, 50, 2)
    assert dual.factor_ceilings.shape == (2, 50, 2)
    assert dual.dof == min(len(data), 12) - 1
    single = [np.var(dual.factor_samples[k], axis=0, ddof=1) for k in (0, 1)]
    low = np.maximum(single[0] * 8 / 7, single[1] * 12 / 11)
    high = np.var(dual.samples, axis=0, ddof=1)
    variance = dual.sem() ** 2  # at least each factor's, at most the double bootstrap's
    assert np.all(variance <= high + 1e-15)
    assert np.all(variance >= np.minimum(low, high) - 1e-15)


def test_seeds_repeat_and_the_global_state_is_left_alone() -> None:
    data, models = _group(4)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - the global state itself
    a = evaluate_models(models, data, bootstrap="both", n_bootstrap=20, seed=1)
    b = evaluate_models(models, data, bootstrap="both", n_bootstrap=20, seed=1)
    c = evaluate_models(models, data, bootstrap="both", n_bootstrap=20, seed=2)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_inputs_are_left_unchanged() -> None:
    data, models = _group(5)
    data_copy, models_copy = data.copy(), models.copy()
    evaluate_models(models, data, "spearman", bootstrap="conditions", n_bootstrap=5)
    pool_rdms(data, "correlation")
    noise_ceiling(data, "cosine")
    np.testing.assert_array_equal(data, data_copy)
    np.testing.assert_array_equal(models, models_copy)


def test_samples_with_fewer_than_three_conditions_are_left_out() -> None:
    data, models = _group(6, n=3)
    draws = np.array([[0, 1, 2], [1, 1, 1], [0, 0, 2]])
    samples, ceilings = _bootstrap(models, data, "cosine", None, draws)
    assert np.isfinite(samples[0]).all()
    assert np.isfinite(ceilings[0]).all()
    assert np.isnan(samples[1:]).all()
    assert np.isnan(ceilings[1:]).all()
    result = ModelEvaluation(
        ("a", "b"), "cosine", "conditions", np.ones((3, 2)), np.ones(2), samples, ceilings, 3
    )
    assert result._valid()[0].shape == (1, 2)


def test_square_rdms_and_model_names() -> None:
    data, models = _group(7, n=6)
    squares = np.stack([rdm_to_square(v) for v in data])
    a = evaluate_models(models, data, names=["x", "y"])
    b = evaluate_models(np.stack([rdm_to_square(m) for m in models]), squares)
    np.testing.assert_allclose(a.per_subject, b.per_subject)
    assert a.names == ("x", "y")
    assert b.names == ("model 0", "model 1")
    assert evaluate_models(models[0], data).per_subject.shape == (len(data), 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "euclid"}, ValueError, "method must be one of"),
        ({"bootstrap": "patterns"}, ValueError, "bootstrap must be one of"),
        ({"n_bootstrap": 1}, ValueError, "n_bootstrap must be >= 2"),
        ({"n_bootstrap": 2.5}, TypeError, "n_bootstrap must be an integer"),
        ({"names": ["only one"]}, ValueError, "names must name the 2 models"),
        ({"names": "ab"}, ValueError, "names must name the 2 models"),
        ({"seed": -1}, ValueError, "seed"),
        ({"show_progress": "yes"}, TypeError, "show_progress must be"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    data, models = _group(8)
    with pytest.raises(error, match=match):
        evaluate_models(models, data, **kwargs)


def test_bad_rdms() -> None:
    data, models = _group(9, n=5)
    with pytest.raises(ValueError, match="data must hold the RDMs of at least 2 subjects"):
        evaluate_models(models, data[0])
    with pytest.raises(ValueError, match="same conditions: models have 6, data 5"):
        evaluate_models(np.ones((2, 15)), data)
    flat = data.copy()
    flat[2] = 1.0
    with pytest.raises(ValueError, match=r"data\[2\] is constant"):
        noise_ceiling(flat, "correlation")
    with pytest.raises(ValueError, match=r"rdms\[0\] is zero"):
        pool_rdms(np.zeros((2, 10)), "cosine")
    with pytest.raises(ValueError, match=r"models\['b'\] must be one RDM"):
        evaluate_models({"a": models[0], "b": models}, data)
    with pytest.raises(ValueError, match="names must not be given with a mapping"):
        evaluate_models({"a": models[0]}, data, names=["a"])
    with pytest.raises(ValueError, match="at least one model RDM"):
        evaluate_models({}, data)
    with pytest.raises(ValueError, match="data must be an RDM vector"):
        evaluate_models(models, np.ones((3, 7)))
    fixed = evaluate_models(models, data)
    with pytest.raises(ValueError, match="test='bootstrap' needs bootstrap samples"):
        fixed.p_pairwise("bootstrap")
    with pytest.raises(ValueError, match="test must be one of"):
        fixed.p_zero("wilcoxon")
    with pytest.raises(ValueError, match="level must be < 1"):
        fixed.ci(1.0)


def test_bootstrap_ci_of_too_few_samples_is_infinite_not_nan() -> None:
    data, models = _group(10)
    result = evaluate_models(models, data, bootstrap="conditions", n_bootstrap=5)
    low, high = result.ci(test="bootstrap")  # 2.5% of 5 samples: beyond the smallest one
    assert np.all(low == -np.inf)
    assert np.all(high == np.inf)


def test_model_comparison_plot_draws_bars_under_the_noise_ceiling() -> None:
    data, models = _group(10)
    result = evaluate_models(models, data, bootstrap="subjects", n_bootstrap=50, names=["t", "w"])
    ax = plot.model_comparison(result)
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches[1:]], result.means)
    band = ax.patches[0].get_extents()  # the noise ceiling's band spans its bounds
    assert band.height > 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t", "w"]
    assert plot.model_comparison(result, error="ci", test="bootstrap").patches
    with pytest.raises(TypeError, match="evaluation must be"):
        plot.model_comparison(result.means)
    with pytest.raises(ValueError, match="error must be one of"):
        plot.model_comparison(result, error="std")


@pytest.mark.parametrize("method", COMPARISONS)
@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_noise_ceilings_and_evaluations_do_not_depend_on_the_data_scale(method, scale) -> None:
    """Subjects' RDMs of extreme scale: the ceilings were NaN (their squares over- or
    underflowed), the comparisons and pools do not depend on each RDM's scale."""
    data, models = _group(2, n=7, n_subjects=5)
    data[1] *= 4.0  # subjects of different scales
    expected = evaluate_models(models, data, method, bootstrap="both", n_bootstrap=5)
    got = evaluate_models(models, data * scale, method, bootstrap="both", n_bootstrap=5)
    np.testing.assert_allclose(got.noise_ceiling, expected.noise_ceiling, rtol=1e-12)
    np.testing.assert_allclose(got.per_subject, expected.per_subject, rtol=1e-12)
    np.testing.assert_allclose(got.ceiling_samples, expected.ceiling_samples, rtol=1e-12)
    np.testing.assert_allclose(noise_ceiling(data * scale, method), noise_ceiling(data, method))
    # pool_rdms is scale-free for every method: the pools of the scaled data agree
    np.testing.assert_allclose(pool_rdms(data * scale, method), pool_rdms(data, method))


def test_a_constant_data_rdm_is_refused_for_spearman_as_for_correlation() -> None:
    """Its ranks are all tied, so its Spearman correlation is undefined: the noise ceiling was
    NaN while its evaluations read 0. (tau-a and rho-a are 0 for it: defined.)"""
    data, models = _group(3, n=6, n_subjects=4)
    data[2] = 1.0
    for call in (noise_ceiling, pool_rdms):
        with pytest.raises(ValueError, match=r"data\[2\] is constant|rdms\[2\] is constant"):
            call(data, "spearman")
    with pytest.raises(ValueError, match=r"data\[2\] is constant: its spearman"):
        evaluate_models(models, data, "spearman")
    for method in ("kendall_tau_a", "rho_a"):
        assert np.isfinite(noise_ceiling(data, method)).all()


@pytest.mark.parametrize("bootstrap", ["subjects", "conditions", "both", "dual"])
def test_bootstrap_p_values_of_equal_models_and_extreme_shares_stay_in_0_1(bootstrap) -> None:
    """Two models tied in every sample (the same RDM twice, or a multiple of it under the
    correlation) differ with p = 1 (was NaN, 0 / 0), and a model that is above 0 or beyond the
    noise ceiling in every sample gets p = 1 against it (was (N + 1) / N)."""
    data, models = _group(4, n=8, n_subjects=6, noise=0.1)
    models = np.stack([models[0], models[0], 2.0 * models[0], models[1]])
    result = evaluate_models(models, data, "correlation", bootstrap=bootstrap, n_bootstrap=20)
    p = result.p_pairwise("bootstrap")
    np.testing.assert_array_equal(p[:3, :3], np.ones((3, 3)))
    assert np.isfinite(p).all()
    assert ((p > 0) & (p <= 1)).all()
    for values in (result.p_zero("bootstrap"), result.p_noise_ceiling("bootstrap")):
        assert ((values > 0) & (values <= 1)).all()
    if bootstrap == "subjects":  # the true model is beyond the lower ceiling in every sample
        assert result.p_noise_ceiling("bootstrap")[0] == 1.0
    np.testing.assert_array_equal(result.p_pairwise()[:3, :3], np.ones((3, 3)))  # the t-test
