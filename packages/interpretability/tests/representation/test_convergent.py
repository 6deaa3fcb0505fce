"""Convergent-learning tools: correlations equal numpy's, matchings are optimal, sparse
prediction equals scikit-learn's Lasso and finds planted one-to-one maps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Lasso

from neuronkit.interpretability.representation.convergent import (
    CorrelationBlocks,
    SparsePrediction,
    aligned_correlation,
    compare_networks,
    correlation_blocks,
    match_units,
    permutation_baseline,
    spectral_groups,
    unit_correlation,
    unit_samples,
)


def _nets(seed: int = 0, n: int = 400, units: int = 6, noise: float = 0.3):
    """Net B = a permutation of net A's units (scaled, shifted) plus noise."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, units))
    perm = rng.permutation(units)
    b = 2.0 * a[:, perm] + 1.0 + noise * rng.normal(size=(n, units))
    return a, b, perm


def test_unit_samples_pools_images_and_positions() -> None:
    x = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    s = unit_samples(x)
    assert s.shape == (8, 3)
    np.testing.assert_array_equal(s[:, 1], x[:, 1].reshape(-1))
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(unit_samples(t), s)


def test_unit_correlation_equals_numpy_and_handles_dead_units() -> None:
    a, b, _ = _nets(1)
    ref = np.corrcoef(a.T, b.T)[:6, 6:]
    np.testing.assert_allclose(unit_correlation(a, b), ref, atol=1e-12)
    dead = a.copy()
    dead[:, 2] = 0.0
    within = unit_correlation(dead)
    assert within[2, 2] == 1.0
    assert (np.delete(within[2], 2) == 0).all()
    blocks = correlation_blocks(dead, b)
    assert blocks.dead_a.tolist() == [False, False, True, False, False, False]
    assert (blocks.between[2] == 0).all()


def test_correlation_blocks_joint_is_the_full_correlation_matrix() -> None:
    a, b, _ = _nets(2)
    blocks = correlation_blocks(a, b[:, :4])
    ref = np.corrcoef(np.concatenate([a, b[:, :4]], axis=1).T)
    np.testing.assert_allclose(blocks.joint, ref, atol=1e-12)
    np.testing.assert_allclose(blocks.joint, blocks.joint.T)


def test_bipartite_matching_is_optimal_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    sim = rng.normal(size=(5, 5))
    m = match_units(sim, "bipartite")
    best = max(sum(sim[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
    assert m.correlation.sum() == pytest.approx(best)
    assert sorted(m.partner.tolist()) == list(range(5))
    semi = match_units(sim, "semi")
    np.testing.assert_array_equal(semi.partner, sim.argmax(1))
    assert semi.mean >= m.mean


def test_matching_recovers_a_planted_permutation() -> None:
    a, b, perm = _nets(4)
    m = match_units(unit_correlation(a, b))
    # b[:, j] is a[:, perm[j]]: unit i of A matches j with perm[j] == i
    np.testing.assert_array_equal(perm[m.partner], np.arange(6))
    assert m.mean > 0.9
    aligned = aligned_correlation(unit_correlation(a, b), m)
    np.testing.assert_allclose(np.diag(aligned), m.sorted_correlation())


def test_rectangular_matching_leaves_extra_rows_unmatched() -> None:
    sim = np.array([[0.9, 0.1], [0.2, 0.8], [0.85, 0.7]])
    m = match_units(sim)
    assert (m.partner == -1).sum() == 1
    assert np.isnan(m.correlation).sum() == 1
    assert m.n_unique_partners == 2
    assert aligned_correlation(sim, m).shape == (2, 2)


def test_permutation_baseline_is_chance_level() -> None:
    a, b, _ = _nets(5, n=2000)
    base = permutation_baseline(a, b, n_permutations=3, seed=1)
    assert base.shape == (3, 6)
    assert (np.diff(base, axis=1) <= 0).all()
    assert base.mean() < 0.1 < match_units(unit_correlation(a, b)).mean
    np.testing.assert_array_equal(base, permutation_baseline(a, b, n_permutations=3, seed=1))
    # shared spatial structure survives an input shuffle but not a sample shuffle
    rng = np.random.default_rng(0)
    profile = np.linspace(0.0, 3.0, 16).reshape(1, 1, 4, 4)
    conv_a = profile * rng.random((300, 3, 1, 1)) + 0.1 * rng.random((300, 3, 4, 4))
    conv_b = profile * rng.random((300, 3, 1, 1)) + 0.1 * rng.random((300, 3, 4, 4))
    by_inputs = permutation_baseline(conv_a, conv_b, seed=2).mean()
    by_samples = permutation_baseline(conv_a, conv_b, shuffle="samples", seed=2).mean()
    assert by_inputs > 0.3 > 0.1 > by_samples


def test_sparse_prediction_finds_one_input_per_unit() -> None:
    a, b, perm = _nets(6, n=3000, units=8, noise=0.1)
    sp = SparsePrediction(seed=0).fit(a, b)
    assert sp.coef_.shape == (8, 8)
    assert (sp.n_nonzero_ == 1).all()
    np.testing.assert_array_equal(np.abs(sp.coef_).argmax(1), perm)
    assert (sp.r2_ >= 0.9 * sp.dense_r2_).all()
    assert sp.score(a, b) > 0.9
    assert sp.predict(a).shape == (3000, 8)
    # a unit that mixes all inputs needs all of them
    mixed = a.sum(1, keepdims=True) + 0.05 * np.random.default_rng(0).normal(size=(3000, 1))
    assert SparsePrediction(seed=0).fit(a, mixed).n_nonzero_[0] == 8


def test_sparse_prediction_fixed_alpha_equals_sklearn_lasso() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 5)) * [1, 2, 3, 4, 5] + 1.0
    y = x @ rng.normal(size=(5, 3)) + rng.normal(size=(500, 3))
    sp = SparsePrediction(alpha=0.05, test_fraction=0.0, max_samples=None, tol=1e-10).fit(x, y)
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean(0)) / y.std(0)
    ref = Lasso(alpha=0.05, tol=1e-10, max_iter=100_000).fit(xs, ys)
    np.testing.assert_allclose(sp.coef_, ref.coef_, atol=1e-6)
    stronger = SparsePrediction(alpha=0.5, test_fraction=0.0).fit(x, y)
    assert (stronger.n_nonzero_ <= sp.n_nonzero_).all()


def test_sparse_prediction_skips_dead_targets_and_keeps_inputs() -> None:
    a, b, _ = _nets(8, n=500)
    b[:, 3] = 0.0
    b[:, 4] = 0.0
    b[7, 4] = 1.0  # active on one sample: no variance in the fitting or the held-out part
    before_a, before_b = a.copy(), b.copy()
    sp = SparsePrediction(n_alphas=5).fit(a, b)
    assert sp.live_.tolist() == [True, True, True, False, False, True]
    assert np.isfinite(sp.r2_[sp.live_]).all()
    assert not sp.live_[3]
    assert np.isnan(sp.r2_[3])
    assert sp.n_nonzero_[3] == 0
    np.testing.assert_array_equal(a, before_a)
    np.testing.assert_array_equal(b, before_b)


def test_spectral_groups_pair_units_across_nets() -> None:
    rng = np.random.default_rng(9)
    sources = rng.normal(size=(1000, 3))
    a = np.repeat(sources, 2, axis=1) + 0.2 * rng.normal(size=(1000, 6))
    b = np.repeat(sources, 2, axis=1) + 0.2 * rng.normal(size=(1000, 6))
    groups = spectral_groups(correlation_blocks(a, b), 3, seed=0)
    assert groups.composition.tolist() == [[2, 2]] * 3
    assert groups.mixed_fraction == 1.0
    labels_a, labels_b = groups.labels[:6], groups.labels[6:]
    assert (labels_a.reshape(3, 2)[:, 0] == labels_b.reshape(3, 2)[:, 0]).all()


def test_compare_networks_layers_dead_units_and_sparse() -> None:
    rng = np.random.default_rng(10)
    conv_a = np.maximum(rng.normal(size=(60, 4, 3, 3)), 0)
    conv_b = conv_a[:, ::-1] + 0.1 * rng.random((60, 4, 3, 3))
    fc_a, fc_b, _ = _nets(11, n=60)
    fc_b[:, 0] = 0.0  # dead unit in net B
    acts_a = {"conv": conv_a, "fc": fc_a}
    acts_b = {"conv": torch.from_numpy(conv_b.copy()), "fc": fc_b}
    before = conv_a.copy()
    out = compare_networks(acts_a, acts_b, n_permutations=2, sparse=SparsePrediction(n_alphas=5))
    assert list(out) == ["conv", "fc"]
    assert out["conv"].matching.partner.tolist() == [3, 2, 1, 0]
    assert out["conv"].mean_matched > 0.9 > out["conv"].mean_baseline
    assert out["conv"].baseline.shape == (2, 4)
    assert out["fc"].units_b.tolist() == [1, 2, 3, 4, 5]
    assert out["fc"].blocks.between.shape == (6, 5)
    assert out["fc"].sparse is not None
    assert out["fc"].sparse.coef_.shape == (5, 6)
    assert isinstance(out["fc"].blocks, CorrelationBlocks)
    kept = compare_networks(acts_a, acts_b, layers=["fc"], exclude_dead=False)
    assert kept["fc"].blocks.between.shape == (6, 6)
    assert kept["fc"].sparse is None
    np.testing.assert_array_equal(conv_a, before)


def test_compare_networks_reads_time_major_activations_with_dim() -> None:
    # layer_activations(..., batch_dim=1, flatten=False) gives spiking layers as [N, T, U]:
    # with dim=-1 the units are the last axis and the time steps are pooled as samples
    rng = np.random.default_rng(12)
    spikes_a = (rng.random((60, 4, 4)) < 0.4).astype(np.float32)  # [N, T=4, U=4]
    spikes_b = spikes_a[:, :, ::-1] + 0.1 * rng.random((60, 4, 4))  # units reversed
    a, b = {"lif": torch.from_numpy(spikes_a)}, {"lif": spikes_b.copy()}
    out = compare_networks(a, b, dim=-1)["lif"]
    assert out.matching.partner.tolist() == [3, 2, 1, 0]
    channels_first = compare_networks(
        {"lif": np.moveaxis(spikes_a, 2, 1)}, {"lif": np.moveaxis(spikes_b, 2, 1)}
    )["lif"]
    np.testing.assert_allclose(out.blocks.joint, channels_first.blocks.joint, rtol=1e-12)
    np.testing.assert_array_equal(out.baseline, channels_first.baseline)
    # the default reads axis 1, the time steps, as units: a different (wrong) matching here
    assert compare_networks(a, b)["lif"].matching.partner.tolist() != [3, 2, 1, 0]
    with pytest.raises(ValueError, match=r"dim must be an axis of activations_a\['lif'\]"):
        compare_networks(a, b, dim=3)
    with pytest.raises(ValueError, match="other than the batch axis 0"):
        compare_networks(a, b, dim=0)


def test_plain_lists_are_read_like_arrays() -> None:
    a, b, _ = _nets(n=40, units=3)
    np.testing.assert_array_equal(unit_correlation(a.tolist(), b.tolist()), unit_correlation(a, b))
    sim = unit_correlation(a, b)
    assert match_units(sim.tolist()).partner.tolist() == match_units(sim).partner.tolist()
    fitted = SparsePrediction(alpha=0.01).fit(a.tolist(), b.tolist())
    reference = SparsePrediction(alpha=0.01).fit(a, b)
    np.testing.assert_array_equal(fitted.coef_, reference.coef_)
    np.testing.assert_array_equal(fitted.predict(a.tolist()), reference.predict(a))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: unit_samples("ab"), TypeError, "numpy array, torch tensor or list"),
        (lambda: unit_samples([[1.0, 2.0], [3.0]]), ValueError, "ragged"),
        (lambda: unit_samples([[1.0, 2.0]]), ValueError, "at least 2 samples"),
        (lambda: unit_samples(np.ones(5)), ValueError, "activations must be"),
        (lambda: unit_samples(np.ones((1, 3))), ValueError, "at least 2 samples"),
        (lambda: unit_samples(np.full((3, 2), np.inf)), ValueError, "finite"),
        (lambda: unit_correlation(np.ones((4, 2)), np.ones((5, 2))), ValueError, "samples"),
        (lambda: correlation_blocks(np.ones((4, 2)), np.ones((5, 2))), ValueError, "samples"),
        (lambda: match_units(np.ones((2, 2)), "greedy"), ValueError, "method"),
        (lambda: match_units(np.ones(3)), ValueError, "similarity"),
        (lambda: match_units(np.array([[np.nan]])), ValueError, "finite"),
        (lambda: aligned_correlation(np.ones((2, 2)), "x"), TypeError, "UnitMatching"),
        (
            lambda: permutation_baseline(np.ones((4, 2)), np.ones((5, 2))),
            ValueError,
            "same inputs",
        ),
        (
            lambda: permutation_baseline(np.ones((4, 2)), np.ones((4, 2)), shuffle="units"),
            ValueError,
            "shuffle",
        ),
        (
            lambda: permutation_baseline(np.ones((4, 2)), np.ones((4, 2)), n_permutations=0),
            ValueError,
            "n_permutations",
        ),
        (
            lambda: SparsePrediction(alpha=-1.0).fit(np.ones((9, 2)), np.ones((9, 2))),
            ValueError,
            "alpha",
        ),
        (
            lambda: SparsePrediction(r2_fraction=1.5).fit(np.ones((9, 2)), np.ones((9, 2))),
            ValueError,
            "r2_fraction",
        ),
        (lambda: SparsePrediction().fit(np.ones((9, 2)), np.ones((8, 2))), ValueError, "samples"),
        (lambda: SparsePrediction().predict(np.ones((3, 2))), NotFittedError, "not fitted"),
        (lambda: spectral_groups(np.ones((2, 2)), 2), TypeError, "CorrelationBlocks"),
        (
            lambda: spectral_groups(correlation_blocks(np.eye(3), np.eye(3)), 6),
            ValueError,
            "n_clusters",
        ),
        (lambda: compare_networks([1], {}), TypeError, "mapping"),
        (lambda: compare_networks({"x": np.ones((3, 2))}, {}), ValueError, "no layer"),
        (
            lambda: compare_networks({"x": np.eye(3)}, {"x": np.eye(3)}, sparse="lasso"),
            TypeError,
            "SparsePrediction",
        ),
    ],
)
def test_bad_inputs_raise(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_sparse_prediction_treats_a_large_constant_unit_as_dead() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6))
    y = np.column_stack([np.full(200, 2e4 + 0.3), x[:, :2] @ [1.0, -0.5]])
    sp = SparsePrediction(alpha=0.05, seed=0).fit(x, y)
    assert not sp.live_[0]
    assert sp.live_[1]
    assert np.isfinite(sp.r2_[1])


def test_unit_correlation_is_scale_and_offset_invariant() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 4))
    b = a[:, ::-1] + 0.1 * rng.normal(size=(50, 4))
    ref = unit_correlation(a, b)
    for scale in (1e-13, 1e-200, 1e30):
        np.testing.assert_allclose(unit_correlation(a * scale, b * scale), ref, atol=1e-12)
    np.testing.assert_allclose(unit_correlation(a + 1e13, b), ref, atol=1e-2)


def test_constant_units_are_dead_at_any_magnitude() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 5))
    eps = np.finfo(np.float64).eps
    a[:, 0] = 0.0
    a[:, 1] = 2e4 + 0.3
    a[:, 2] = 1e-20
    a[:, 3] = 0.1 * (1.0 + eps * rng.integers(0, 3, 40))  # constant up to rounding
    blocks = correlation_blocks(a, a)
    assert blocks.dead_a.tolist() == [True, True, True, True, False]
    corr = unit_correlation(a, a)
    np.testing.assert_array_equal(corr[:4], 0.0)
    # tiny but varying units are alive
    assert not correlation_blocks(a * 1e-13, a).dead_a[4]


def test_sparse_prediction_is_scale_invariant() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6))
    y = np.column_stack([x[:, 0] - x[:, 1], x[:, 2:4] @ [1.0, -0.5]])
    ref = SparsePrediction(alpha=0.05, seed=0).fit(x, y)
    tiny = SparsePrediction(alpha=0.05, seed=0).fit(x * 1e-13, y * 1e-13)
    assert tiny.live_.tolist() == ref.live_.tolist() == [True, True]
    np.testing.assert_allclose(tiny.r2_, ref.r2_, rtol=1e-6)


def test_layers_string_sort_flag_and_bad_partners_are_refused_by_name() -> None:
    a, b = _nets(n=40, units=3)[:2]
    with pytest.raises(TypeError, match="layers must be a sequence of layer names"):
        compare_networks({"l": a}, {"l": b}, layers="l")  # type: ignore[arg-type]
    assert list(compare_networks({"l": a}, {"l": b}, layers={"l": 0}.keys())) == ["l"]
    sim = np.random.default_rng(0).random((3, 4))
    with pytest.raises(TypeError, match="sort must be a bool"):
        aligned_correlation(sim, match_units(sim), sort="no")  # type: ignore[arg-type]
    from neuronkit.interpretability.representation.convergent import UnitMatching

    bad = UnitMatching("semi", np.array([-5, 0, 1]), np.zeros(3))
    with pytest.raises(ValueError, match="matching must pair"):
        aligned_correlation(sim, bad)
