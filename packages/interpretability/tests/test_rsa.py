"""RDMs, comparisons and transforms: definitions, invariances (hypothesis), bad inputs."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import pdist
from scipy.stats import kendalltau, pearsonr, spearmanr

from neuronkit.interpretability import (
    compare_rdms,
    geo_topological,
    geodesic,
    kendall_tau_a,
    n_conditions,
    noise_precision,
    noise_precision_from_measurements,
    rank_transform,
    rdm,
    rdm_to_square,
    rdm_to_vector,
)

METHODS = ["euclidean", "correlation", "cosine", "mahalanobis"]

data_strategy = arrays(
    np.float64,
    st.tuples(st.integers(3, 8), st.integers(2, 6)),
    elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32),
)


def _data(seed: int = 0, n: int = 7, c: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c))


@pytest.mark.parametrize(("n", "c"), [(7, 5), (200, 30), (200, 250)])
def test_euclidean_is_squared_distance_over_channels(n, c) -> None:
    # 200 x 30: norms plus one in-place syrk; 7 x 5 and 200 x 250 (more channels than
    # conditions): the Gram matrix, then the distances from it
    x = _data(n=n, c=c) + 2.0
    np.testing.assert_allclose(rdm(x), pdist(x, "sqeuclidean") / c, rtol=1e-12)


@pytest.mark.parametrize("n", [6, 150])
def test_moderate_data_is_used_unscaled_with_the_same_result(n) -> None:
    # data within 2**+-64 skips the power-of-two scaling copy; extreme data takes it, and
    # since such scaling is exact the results are the same bits, scaled
    x = _data(3, n=n, c=9)
    prec = np.linalg.inv(np.cov(_data(4, n=40, c=9), rowvar=False))
    for s in (2.0**100, 2.0**-100):
        for method, kw in [("euclidean", {}), ("mahalanobis", {"noise": prec})]:
            np.testing.assert_array_equal(rdm(x * s, method, **kw), rdm(x, method, **kw) * s * s)
        for method in ("correlation", "cosine"):
            np.testing.assert_array_equal(rdm(x * s, method), rdm(x, method))


@pytest.mark.parametrize("method", ["correlation", "cosine"])
def test_correlation_and_cosine_match_scipy(method) -> None:
    x = _data(1)
    np.testing.assert_allclose(rdm(x, method), pdist(x, method), atol=1e-12)


def test_mahalanobis_with_identity_is_euclidean_and_with_precision_is_scaled() -> None:
    x = _data(2)
    np.testing.assert_allclose(rdm(x, "mahalanobis"), rdm(x))
    prec = np.diag([1.0, 2.0, 3.0, 4.0, 5.0])
    expected = pdist(x * np.sqrt(np.diag(prec)), "sqeuclidean") / 5
    np.testing.assert_allclose(rdm(x, "mahalanobis", noise=prec), expected)
    np.testing.assert_allclose(rdm(x, "mahalanobis", noise=np.diag(prec)), expected)


def test_condition_averaging_and_sorting() -> None:
    x = _data(3, n=6)
    labels = np.array(["b", "a", "b", "c", "a", "c"])
    means = np.stack([x[labels == c].mean(0) for c in ("a", "b", "c")])
    np.testing.assert_allclose(rdm(x, conditions=labels), rdm(means))


def test_crossnobis_is_unbiased_where_euclidean_is_not() -> None:
    rng = np.random.default_rng(4)
    n_cond, n_rep, n_chan = 4, 6, 200
    patterns = np.zeros((n_cond, n_chan))  # no true differences
    data = np.tile(patterns, (n_rep, 1)) + rng.normal(size=(n_cond * n_rep, n_chan))
    conds = np.tile(np.arange(n_cond), n_rep)
    cv = rdm(data, "crossnobis", conditions=conds)
    biased = rdm(data, conditions=conds)
    assert abs(cv.mean()) < 0.02
    assert biased.mean() > 0.3  # 2 sigma^2 / n_rep


def _poisson_counts(seed: int, n_cond: int = 5, n_rep: int = 4, n_chan: int = 300, rate=3.0):
    """Spike counts ``[n_cond * n_rep, n_chan]`` (conditions repeated run by run)."""
    rng = np.random.default_rng(seed)
    rates = np.broadcast_to(rate, (n_cond, n_chan))
    counts = rng.poisson(np.tile(rates, (n_rep, 1))).astype(float)
    return counts, np.tile(np.arange(n_cond), n_rep), np.repeat(np.arange(n_rep), n_cond)


def test_poisson_rdm_is_the_symmetrized_kl_divergence_of_shrunk_rates() -> None:
    counts, conds, _ = _poisson_counts(40, n_chan=7)
    means = np.stack([counts[conds == c].mean(axis=0) for c in range(5)])
    rates = (means + 2.0 * 0.3) / 1.3
    kl = lambda p, q: np.sum(p * np.log(p / q) - p + q)  # noqa: E731  Poisson KL, per channel
    pairs = itertools.combinations(range(5), 2)  # the vector's order
    expected = [(kl(rates[i], rates[j]) + kl(rates[j], rates[i])) / 7 for i, j in pairs]
    found = rdm(counts, "poisson", conditions=conds, prior_lambda=2.0, prior_weight=0.3)
    np.testing.assert_allclose(found, expected, rtol=1e-12)
    assert np.all(found > 0)


def test_poisson_cv_is_unbiased_where_poisson_is_not() -> None:
    """Equal true rates in every condition: the plain divergence of noisy rates is positive,
    the cross-validated one is zero on average (the runs' noise is independent)."""
    counts, conds, runs = _poisson_counts(41)
    cv = rdm(counts, "poisson_cv", conditions=conds, runs=runs)
    biased = rdm(counts, "poisson", conditions=conds)
    assert abs(cv.mean()) < 0.01
    assert biased.mean() > 0.3  # about 2 / n_rep for a rate of 3
    assert np.array_equal(cv, rdm(counts, "poisson_cv", conditions=conds))  # default runs
    different = counts.copy()
    different[conds == 0] += 3.0  # condition 0 fires 3 more spikes per channel
    moved = rdm(different, "poisson_cv", conditions=conds, runs=runs)
    assert moved[:4].min() > 0.5 > np.abs(moved[4:]).max()


def test_crossnobis_estimated_noise_and_explicit_runs() -> None:
    rng = np.random.default_rng(5)
    data = rng.normal(size=(12, 3))
    conds = np.repeat([0, 1, 2], 4)
    runs = np.tile([0, 1, 2, 3], 3)
    a = rdm(data, "crossnobis", conditions=conds, runs=runs, noise="shrinkage_diag")
    prec = noise_precision_from_measurements(data, conds)
    b = rdm(data, "crossnobis", conditions=conds, runs=runs, noise=prec)
    np.testing.assert_allclose(a, b)


def _direct_pairs(a: np.ndarray, b: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """Reference: ``(a_i - a_j)^T P (b_i - b_j)`` pair by pair, upper triangle row by row."""
    n = a.shape[0]
    return np.array(
        [(a[i] - a[j]) @ prec @ (b[i] - b[j]) for i in range(n) for j in range(i + 1, n)]
    )


@pytest.mark.parametrize(("n", "c"), [(3, 20), (20, 3), (12, 12), (300, 60)])
def test_mahalanobis_matches_pairwise_definition(n, c) -> None:
    # many conditions on a large enough problem (300 x 60) take the Cholesky (trmm + syrk)
    # route; many channels and small problems the direct product
    rng = np.random.default_rng(n * c)
    x = rng.normal(size=(n, c)) + 3.0
    mixing = rng.normal(size=(c, c))
    prec = np.linalg.inv(mixing @ mixing.T + 0.3 * np.eye(c))  # symmetric up to rounding
    expected = _direct_pairs(x, x, prec) / c
    np.testing.assert_allclose(rdm(x, "mahalanobis", noise=prec), expected, rtol=1e-10)
    # a negative definite "precision" gives negative squared distances: rejected
    indefinite = (prec + prec.T) / 2 - 2.0 * np.abs(np.linalg.eigvalsh(prec)).max() * np.eye(c)
    with pytest.raises(ValueError, match="noise must be a positive definite"):
        rdm(x, "mahalanobis", noise=indefinite)
    diag = rng.random(c) + 0.5  # the diagonal as a vector equals the diagonal matrix
    np.testing.assert_allclose(
        rdm(x, "mahalanobis", noise=diag), _direct_pairs(x, x, np.diag(diag)) / c, rtol=1e-10
    )


def test_precision_symmetry_tolerance() -> None:
    x = _data(2, n=8)
    prec = np.eye(5) * 2.0
    near = prec.copy()
    near[0, 1] += 5e-9  # within allclose's tolerance: accepted, as before
    np.testing.assert_allclose(rdm(x, "mahalanobis", noise=near), rdm(x, "mahalanobis", noise=prec))
    big = prec * 1e6
    big[3, 1] += 1.0  # |P_31 - P_13| = 1 > atol 1e-8 * 2e6 + rtol 1e-5 * |P_13| (0)
    with pytest.raises(ValueError, match="noise must be a symmetric"):
        rdm(x, "mahalanobis", noise=big)
    scaled = prec * 1e6 + 1e5
    scaled[3, 1] += 0.5  # relative asymmetry 5e-6 < rtol 1e-5: accepted by allclose's rule
    rdm(x, "mahalanobis", noise=scaled)
    wide = np.eye(300)
    wide[250, 10] = 1e-3  # asymmetry outside the first row strip is found too
    with pytest.raises(ValueError, match="noise must be a symmetric"):
        rdm(_data(3, n=6) @ np.ones((5, 300)), "mahalanobis", noise=wide)
    wider = np.eye(600)
    wider[10, 590] = 1e-3  # in the last off-diagonal tile (tiles of 256)
    with pytest.raises(ValueError, match="noise must be a symmetric"):
        rdm(_data(3, n=6) @ np.ones((5, 600)), "mahalanobis", noise=wider)
    wide_data = _data(3, n=6) @ np.ones((5, 300))
    for where, value in [((299, 299), np.inf), ((3, 280), np.nan), ((280, 3), -np.inf)]:
        bad = np.eye(300)
        bad[where] = value  # finiteness is read from the asymmetry scan: same message
        with pytest.raises(ValueError, match="noise must be finite"):
            rdm(wide_data, "mahalanobis", noise=bad)
    bad = np.eye(300)
    bad[5, 270] = bad[270, 5] = np.inf  # inf - inf: NaN asymmetry
    with pytest.raises(ValueError, match="noise must be finite"):
        rdm(wide_data, "mahalanobis", noise=bad)
    overflow = np.eye(300)
    overflow[5, 270], overflow[270, 5] = 1.5e308, -1.5e308  # finite, |P_ij - P_ji| overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning before the error
        with pytest.raises(ValueError, match="noise must be a symmetric"):
            rdm(wide_data, "mahalanobis", noise=overflow)
    with pytest.raises(ValueError, match="noise must be finite"):  # before the shape check
        rdm(wide_data, "mahalanobis", noise=np.full((3, 3), np.nan))


@pytest.mark.parametrize("c", [1, 5, 255, 256, 257, 600])
def test_max_asymmetry_equals_the_full_difference(c) -> None:
    from neuronkit.interpretability import rsa

    rng = np.random.default_rng(c)
    m = rng.normal(size=(c, c))
    assert rsa._max_asymmetry(m) == np.abs(m - m.T).max()
    sym = m + m.T
    assert rsa._max_asymmetry(sym) == 0.0
    sym[c - 1, 0] = np.nan
    assert np.isnan(rsa._max_asymmetry(sym))


@pytest.mark.parametrize("use_runs", [True, False])
@pytest.mark.parametrize("remove_mean", [True, False])
def test_crossnobis_matches_fold_by_fold_definition(use_runs, remove_mean) -> None:
    # unbalanced runs (a condition measured twice in one run) and shuffled observations
    rng = np.random.default_rng(11)
    n_cond, n_chan = 5, 7
    if use_runs:
        conds = np.array([0, 1, 2, 3, 4] * 3 + [2, 4, 0])
        runs = np.array([0] * 5 + [1] * 5 + [2] * 5 + [0, 1, 1])
    else:
        conds = np.repeat(np.arange(n_cond), 3)
        runs = np.tile(np.arange(3), n_cond)  # the k-th occurrence is fold k
    perm = rng.permutation(len(conds))
    conds, runs = conds[perm], runs[perm]
    if not use_runs:  # after shuffling, the k-th occurrence of each condition is fold k
        runs = np.array([np.sum(conds[:i] == conds[i]) for i in range(len(conds))])
    data = rng.normal(size=(len(conds), n_chan)) + rng.normal(size=n_chan)
    mixing = rng.normal(size=(n_chan, n_chan))
    prec = np.linalg.inv(mixing @ mixing.T + np.eye(n_chan))
    folds = []
    for f in np.unique(runs):
        test, train = runs == f, runs != f
        m_test = np.stack([data[test & (conds == c)].mean(0) for c in range(n_cond)])
        m_train = np.stack([data[train & (conds == c)].mean(0) for c in range(n_cond)])
        if remove_mean:
            m_test = m_test - m_test.mean(1, keepdims=True)
            m_train = m_train - m_train.mean(1, keepdims=True)
        folds.append(_direct_pairs(m_train, m_test, prec) / n_chan)
    expected = np.mean(folds, axis=0)
    ours = rdm(
        data,
        "crossnobis",
        conditions=conds,
        runs=runs if use_runs else None,
        noise=prec,
        remove_mean=remove_mean,
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("n_cond", [20, 150])  # the product and, from 128 rows, the syr2k
def test_cross_kernels_match_their_definition_on_both_routes(n_cond) -> None:
    rng = np.random.default_rng(12)
    n_chan, n_runs = 12, 3
    conds, runs = np.tile(np.arange(n_cond), n_runs), np.repeat(np.arange(n_runs), n_cond)
    counts = rng.poisson(rng.gamma(2.0, 2.0, (n_cond * n_runs, n_chan))).astype(float)
    prec = np.linalg.inv(np.cov(rng.normal(size=(40, n_chan)), rowvar=False))
    expected = {"crossnobis": [], "poisson_cv": []}
    for f in range(n_runs):
        m_test, m_train = counts[runs == f], counts[runs != f].reshape(-1, n_cond, n_chan)
        m_train = m_train.mean(axis=0)
        expected["crossnobis"].append(_direct_pairs(m_train, m_test, prec))
        rates_train, rates_test = (m_train + 0.1) / 1.1, (m_test + 0.1) / 1.1
        expected["poisson_cv"].append(
            _direct_pairs(rates_train, np.log(rates_test), np.eye(n_chan))
        )
    kwargs = {"conditions": conds, "runs": runs}
    ours = rdm(counts, "crossnobis", noise=prec, **kwargs)
    np.testing.assert_allclose(ours, np.mean(expected["crossnobis"], 0) / n_chan, rtol=1e-10)
    ours = rdm(counts, "poisson_cv", **kwargs)
    np.testing.assert_allclose(ours, np.mean(expected["poisson_cv"], 0) / n_chan, rtol=1e-10)
    rates = (counts[:n_cond] + 0.1) / 1.1
    expected_kl = _direct_pairs(rates, np.log(rates), np.eye(n_chan)) / n_chan
    np.testing.assert_allclose(rdm(counts[:n_cond], "poisson"), expected_kl, rtol=1e-10)


def test_crossnobis_reports_the_fold_missing_a_condition() -> None:
    data = _data(4, n=8)
    conds = np.array([0, 1, 0, 1, 0, 1, 0, 0])
    runs = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # run 3 lacks condition 1
    with pytest.raises(ValueError, match=r"measured in each run \(fold 3\)"):
        rdm(data, "crossnobis", conditions=conds, runs=runs)


@pytest.mark.parametrize(("n", "c"), [(12, 4), (4, 12)])
def test_correlation_rdm_both_scaling_orders_match_numpy(n, c) -> None:
    # c <= n scales the rows before the Gram matrix, c > n the upper entries after it
    x = np.random.default_rng(n + c).normal(size=(n, c)) + 5.0
    expected = 1.0 - np.corrcoef(x)[np.triu_indices(n, 1)]
    np.testing.assert_allclose(rdm(x, "correlation"), expected, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="constant patterns"):
        rdm(np.vstack([x, np.full(c, 2.0)]), "correlation")


@pytest.mark.parametrize(
    ("offset", "tol"), [(0.0, 1e-14), (10.0, 1e-12), (1e3, 1e-8), (1e6, 1e-13)]
)
def test_correlation_rdm_of_many_channels_keeps_its_digits_under_an_offset(offset, tol) -> None:
    # c > n centres the rows by a rank-one correction of the Gram matrix (no copy of the
    # data): its rounding grows with mean^2 / variance (1e2, 1e6 here) within the module's
    # 1e-8 policy; near-constant rows (1e12) are centred first, as the other routes do
    x = offset + np.random.default_rng(3).normal(size=(6, 400))
    wide = x.astype(np.longdouble)
    centred = wide - wide.mean(axis=1, keepdims=True)
    gram = centred @ centred.T
    norms = np.sqrt(np.diagonal(gram))
    expected = (1 - gram / norms[:, None] / norms[None, :])[np.triu_indices(6, 1)]
    np.testing.assert_allclose(rdm(x, "correlation"), expected.astype(float), rtol=0, atol=tol)


def test_spearman_uses_exactly_centered_ranks() -> None:
    rng = np.random.default_rng(12)
    a = rng.integers(0, 4, size=(3, 45)).astype(float)  # heavy ties
    b = rng.random((2, 45))
    expected = np.array([[spearmanr(x, y)[0] for y in b] for x in a])
    np.testing.assert_allclose(compare_rdms(a, b, "spearman"), expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["euclidean", "correlation", "cosine", "mahalanobis"])
@pytest.mark.parametrize(("n", "c"), [(6, 4), (6, 40), (200, 30)])  # every Gram route
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_entry_is_reported_whatever_the_route(method, n, c, bad) -> None:
    # the finiteness of the data is read off the Gram diagonal (or the norms): one non-finite
    # entry anywhere, with or without condition averaging, must still be named
    x = _data(5, n=n, c=c)
    x[n // 2, c - 1] = bad
    variants: list[dict] = [{}, {"conditions": np.arange(n) % 3}, {"remove_mean": True}]
    if method == "mahalanobis":  # a full precision (its Cholesky route from 200 x 30)
        variants.append({"noise": np.eye(c) + 0.1})
    for kw in variants:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no stray numpy warnings before the error
            with pytest.raises(ValueError, match="data must be finite"):
                rdm(x, method, **kw)


def test_overflowing_but_finite_input_is_not_called_non_finite() -> None:
    x = np.full((4, 3), 1e308)  # the sum overflows; every entry is finite
    x[:, 0] = [1e308, -1e308, 5e307, 0.0]
    out = rdm(x / 1e300 * 1e300, "cosine")  # no "finite" ValueError
    assert out.shape == (6,)


@settings(max_examples=40, deadline=None)
@given(x=data_strategy, method=st.sampled_from(METHODS))
def test_rdm_square_is_symmetric_with_zero_diagonal(x, method) -> None:
    if method in ("correlation", "cosine"):
        centred = x - x.mean(1, keepdims=True) if method == "correlation" else x
        norms = np.linalg.norm(centred, axis=1)
        if np.any(norms == 0):
            with pytest.raises(ValueError, match="patterns"):
                rdm(x, method)
            return
        if np.any(norms < 1e-6):
            return  # numerically degenerate patterns: nothing meaningful to check
    square = rdm_to_square(rdm(x, method))
    assert np.allclose(square, square.T)
    assert np.all(np.diag(square) == 0)
    if method != "correlation" and method != "cosine":
        assert np.all(square >= -1e-9)


@settings(max_examples=30, deadline=None)
@given(
    x=data_strategy,
    shift=st.floats(-5, 5),
    scale=st.floats(0.1, 10),
    seed=st.integers(0, 1000),
)
def test_invariances(x, shift, scale, seed) -> None:
    perm = np.random.default_rng(seed).permutation(x.shape[1])
    # every distance is invariant to permuting channels
    for method in ("euclidean", "cosine"):
        if method == "cosine" and np.any(np.linalg.norm(x, axis=1) < 1e-6):
            continue
        np.testing.assert_allclose(rdm(x[:, perm], method), rdm(x, method), atol=1e-9)
    # euclidean: invariant to a common shift; scales with scale**2
    np.testing.assert_allclose(rdm(x + shift), rdm(x), atol=1e-6 * (1 + np.abs(x).max() ** 2))
    np.testing.assert_allclose(rdm(scale * x), scale**2 * rdm(x), rtol=1e-9, atol=1e-9)
    # correlation: invariant to per-pattern affine maps
    centred = x - x.mean(1, keepdims=True)
    if np.all(np.linalg.norm(centred, axis=1) > 1e-3 * (1 + np.abs(x).max())):
        np.testing.assert_allclose(
            rdm(scale * x + shift, "correlation"), rdm(x, "correlation"), atol=1e-7
        )


@settings(max_examples=30, deadline=None)
@given(
    v=st.lists(st.floats(-100, 100, allow_nan=False), min_size=6, max_size=6, unique=True),
    w=st.lists(st.floats(-100, 100, allow_nan=False), min_size=6, max_size=6, unique=True),
)
def test_kendall_tau_a_equals_scipy_tau_on_tie_free_data(v, w) -> None:
    a, b = np.array(v), np.array(w)
    assert np.isclose(kendall_tau_a(a, b)[0, 0], kendalltau(a, b).statistic)


def test_kendall_tau_a_counts_ties_as_neither() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = np.array([1.0, 1.0, 2.0, 3.0, 4.0, 5.0])  # one tied pair
    # 15 pairs: 14 concordant, 1 tie -> tau-a = 14/15 (tau-b would be larger)
    assert np.isclose(kendall_tau_a(a, b)[0, 0], 14 / 15)
    assert kendalltau(a, b).statistic > 14 / 15


def test_kendall_tau_a_fallback_equals_sorted_path(monkeypatch) -> None:
    """The O(P log P) path uses a private scipy kernel; the sign-product fallback (used if that
    kernel disappears) must give the same numbers, ties included."""
    from neuronkit.interpretability import rsa

    rng = np.random.default_rng(11)
    a = rng.integers(0, 5, size=(3, 45)).astype(float)  # many ties
    b = np.vstack([rng.random((1, 45)), a[:1]])
    fast = kendall_tau_a(a, b)
    monkeypatch.setattr(rsa, "_kendall_dis", None)
    assert np.allclose(kendall_tau_a(a, b), fast, atol=1e-12)


def test_bures_metric_is_the_procrustes_distance_of_the_patterns() -> None:
    """For squared Euclidean RDMs the kernels are ``X X^T / c`` of the centred patterns, and
    the squared Bures distance is ``min_Q |X - Y Q|^2 / c`` over rotations (Harvey et al.
    2023): ``(|X|^2 + |Y|^2 - 2 |X^T Y|_*) / c``."""
    rng = np.random.default_rng(30)
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    nuclear = np.linalg.svd(xc.T @ yc, compute_uv=False).sum()
    expected = (np.sum(xc**2) + np.sum(yc**2) - 2 * nuclear) / 4
    d_x, d_y = rdm(x), rdm(y)
    assert compare_rdms(d_x, d_y, "bures_metric")[0, 0] == pytest.approx(expected, rel=1e-9)
    similarity = nuclear / np.sqrt(np.sum(xc**2) * np.sum(yc**2))
    assert compare_rdms(d_x, d_y, "bures")[0, 0] == pytest.approx(similarity, rel=1e-9)
    rotation = np.linalg.qr(rng.normal(size=(4, 4)))[0]  # the same shape, moved and scaled
    moved = rdm(3.0 * x @ rotation + 5.0)
    assert compare_rdms(d_x, moved, "bures")[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert compare_rdms(d_x, d_x, "bures_metric")[0, 0] == pytest.approx(0.0, abs=1e-12)
    stack = np.stack([d_x, d_y, moved])
    both = compare_rdms(stack, stack[:2], "bures_metric")
    np.testing.assert_allclose(both, compare_rdms(stack[:2], stack, "bures_metric").T, atol=1e-9)
    from neuronkit.interpretability import evaluate_models  # no pooling for kernel comparisons

    with pytest.raises(ValueError, match="method"):
        evaluate_models(stack[:1], stack, "bures")


def test_compare_rdms_methods_and_stacks() -> None:
    rng = np.random.default_rng(6)
    a = rng.random((3, 10))
    b = rng.random((2, 10))
    out = compare_rdms(a, b, "spearman")
    assert out.shape == (3, 2)
    assert np.isclose(out[1, 0], spearmanr(a[1], b[0]).statistic)
    assert np.isclose(compare_rdms(a, b, "correlation")[2, 1], pearsonr(a[2], b[1]).statistic)
    cos = a[0] @ b[1] / np.linalg.norm(a[0]) / np.linalg.norm(b[1])
    assert np.isclose(compare_rdms(a, b, "cosine")[0, 1], cos)
    big = rng.random((2, 300))  # exercises the blocked tau-a path
    tau = kendall_tau_a(big, big)
    assert np.isclose(tau[0, 1], kendalltau(big[0], big[1]).statistic)
    assert np.isclose(tau[1, 0], tau[0, 1])
    assert np.allclose(np.diag(tau), 1.0)


@pytest.mark.parametrize(("offset", "tol"), [(0.0, 1e-14), (10.0, 1e-12), (1e6, 1e-13)])
def test_cosine_and_correlation_comparisons_over_several_blocks(offset, tol) -> None:
    # 44,850 pairs (300 conditions): two column blocks of the one-read moments; the
    # correlation's rank-one centring keeps its digits under an offset (1e12 mean^2 /
    # variance: centred first)
    rng = np.random.default_rng(8)
    a, b = offset + rng.random((2, 44_850)), offset + rng.random((3, 44_850))
    for method in ("cosine", "correlation"):
        wide_a, wide_b = a.astype(np.longdouble), b.astype(np.longdouble)
        if method == "correlation":
            wide_a = wide_a - wide_a.mean(axis=1, keepdims=True)
            wide_b = wide_b - wide_b.mean(axis=1, keepdims=True)
        norm_a = np.sqrt((wide_a * wide_a).sum(axis=1))
        norm_b = np.sqrt((wide_b * wide_b).sum(axis=1))
        expected = (wide_a @ wide_b.T / norm_a[:, None] / norm_b[None, :]).astype(float)
        np.testing.assert_allclose(compare_rdms(a, b, method), expected, rtol=0, atol=tol)


@pytest.mark.parametrize("method", ["cosine", "correlation"])
def test_comparisons_name_a_non_finite_rdm_and_keep_zero_and_constant_ones(method) -> None:
    # finiteness is read off the moments: a NaN or infinity anywhere is still named
    rng = np.random.default_rng(9)
    a, b = rng.random((2, 45)), rng.random((3, 45))
    for bad in (np.nan, np.inf):
        for name, x, y in (("a", a.copy(), b), ("b", a, b.copy())):
            (x if name == "a" else y)[1, 7] = bad
            with pytest.raises(ValueError, match=f"{name} must be finite"):
                compare_rdms(x, y, method)
    # a zero (or, for correlation, constant) RDM has similarity 0, as before
    flat = np.vstack([a[:1], np.zeros((1, 45)) if method == "cosine" else np.full((1, 45), 3.0)])
    out = compare_rdms(flat, b, method)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(out[0], compare_rdms(a[:1], b, method)[0], rtol=1e-12)


def test_square_and_vector_inputs_are_equivalent() -> None:
    v = rdm(_data(7))
    sq = rdm_to_square(v)
    np.testing.assert_allclose(rdm_to_vector(sq), v)
    np.testing.assert_allclose(compare_rdms(sq, v), compare_rdms(v, v))
    np.testing.assert_allclose(rdm_to_vector(np.stack([sq, sq])), np.stack([v, v]))
    np.testing.assert_allclose(
        geo_topological(sq, 0.2, 0.8), rdm_to_square(geo_topological(v, 0.2, 0.8))
    )
    assert n_conditions(v.size) == 7
    torch_in = torch.as_tensor(_data(7))
    np.testing.assert_allclose(rdm(torch_in), v)


@settings(max_examples=30, deadline=None)
@given(
    # no subnormal dissimilarities: their quotients round to fewer bits, so scaling them by 4
    # is not exact (1.1125369292536e-309 against 1.112536929253597e-309)
    v=arrays(np.float64, 15, elements=st.floats(0, 10, allow_nan=False, allow_subnormal=False)),
    lower=st.floats(0, 1),
    width=st.floats(0, 1),
)
def test_geo_topological_properties(v, lower, width) -> None:
    upper = min(1.0, lower + width)
    gt = geo_topological(v, lower, upper)
    assert gt.shape == v.shape
    assert np.all((gt >= 0) & (gt <= 1))
    # monotone: order of dissimilarities is preserved (weakly)
    order = np.argsort(v, kind="stable")
    assert np.all(np.diff(gt[order]) >= -1e-12)
    # invariant to rescaling the dissimilarities (by 4: exact in floating point)
    np.testing.assert_array_equal(geo_topological(4 * v, lower, upper), gt)


def test_geo_topological_extremes() -> None:
    v = np.arange(1.0, 11.0)  # 10 = 5 choose 2
    np.testing.assert_allclose(geo_topological(v, 0, 1), (v - 1) / 9)
    binary = geo_topological(v, 0.5, 0.5)
    assert set(np.unique(binary)) == {0.0, 1.0}
    ranked = geo_topological(v**3, 0, 1, rank=True)
    np.testing.assert_allclose(ranked, (v - 1) / 9)
    np.testing.assert_allclose(rank_transform(v**2), (v - 1) / 9)


def _floyd_warshall(w: np.ndarray) -> np.ndarray:
    d = w.copy()
    for k in range(len(d)):
        d = np.minimum(d, d[:, [k]] + d[[k], :])
    return d


def test_geodesic_equals_shortest_paths_over_unsaturated_edges() -> None:
    rng = np.random.default_rng(8)
    points = rng.normal(size=(9, 2))
    v = rdm(points)
    ours = rdm_to_square(geodesic(v, 0.1, 0.6))
    gt = rdm_to_square(geo_topological(v, 0.1, 0.6))
    w = np.where(gt >= 1, np.inf, gt)
    np.fill_diagonal(w, 0)
    ref = _floyd_warshall(w)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], atol=1e-12)
    assert np.all(ours[~finite] == ours[finite].max())
    kept = gt < 1
    assert np.all(ours[kept] <= gt[kept] + 1e-12)  # paths never exceed a kept direct edge
    inf = geodesic(v, 0.0, 0.05, disconnected=float("inf"))
    assert np.isinf(inf).any()


def test_noise_precision_diag_and_full() -> None:
    rng = np.random.default_rng(9)
    res = rng.normal(size=(500, 3)) * np.array([1.0, 2.0, 4.0])
    prec = noise_precision(res, method="diag")
    np.testing.assert_allclose(np.diag(prec), 1 / np.var(res, axis=0, ddof=1), rtol=1e-9)
    full = noise_precision(res, method="full")
    np.testing.assert_allclose(full, np.linalg.inv(np.cov(res.T)), rtol=1e-9)
    for method in ("shrinkage_diag", "shrinkage_eye"):
        p = noise_precision(res, method=method)
        assert np.allclose(p, p.T)
        assert np.all(np.linalg.eigvalsh(p) > 0)


@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
@pytest.mark.parametrize("scale", [1e-100, 1e100])
def test_noise_precision_scales_inversely_with_the_residuals(method, scale) -> None:
    res = np.random.default_rng(9).normal(size=(100, 5))
    expected = noise_precision(res, method=method) / scale**2
    np.testing.assert_allclose(noise_precision(res * scale, method=method), expected, rtol=1e-12)
    data, conds = res[:40], np.repeat(np.arange(8), 5)
    d = rdm(data, "mahalanobis", conditions=conds, noise=method)
    got = rdm(data * scale, "mahalanobis", conditions=conds, noise=method)
    np.testing.assert_allclose(got, d, rtol=1e-12)  # the data's own noise: scale-free


def test_a_noise_precision_beyond_float64_is_named() -> None:
    res = np.random.default_rng(9).normal(size=(100, 3))
    for scale, size in ((1e-170, "small"), (1e170, "large")):
        with pytest.raises(ValueError, match=f"residuals are too {size}"):
            noise_precision(res * scale)
        with pytest.raises(ValueError, match=f"data are too {size}"):
            noise_precision_from_measurements(res * scale, np.repeat(np.arange(20), 5))


def test_inputs_are_never_mutated() -> None:
    rng = np.random.default_rng(10)
    data = rng.normal(size=(8, 4)) + 1.0
    conds = np.repeat(np.arange(4), 2)
    runs = np.tile([0, 1], 4)
    prec = np.eye(4) * 2.0
    rdms = rng.random((3, 15))
    frozen = [a.copy() for a in (data, conds, runs, prec, rdms)]
    for method in ("euclidean", "correlation", "cosine", "mahalanobis"):
        rdm(data, method, remove_mean=True)
    rdm(data, "mahalanobis", conditions=conds, noise=prec)
    rdm(data, "crossnobis", conditions=conds, runs=runs, noise="shrinkage_eye", remove_mean=True)
    noise_precision(data)
    noise_precision_from_measurements(data, conds)
    compare_rdms(rdms, rdms, "spearman")
    kendall_tau_a(rdms, rdms)
    geo_topological(rdms, 0.2, 0.7, rank=True)
    geodesic(rdms, 0.1, 0.9)
    rank_transform(rdms)
    rdm_to_square(rdms)
    for before, after in zip(frozen, (data, conds, runs, prec, rdms)):
        np.testing.assert_array_equal(before, after)
    v = rdms[0]
    assert rdm_to_vector(v) is not v


BAD_RDM_CALLS = [
    (lambda: rdm(np.zeros(5)), ValueError, "data must be"),
    (lambda: rdm(np.array([["a", "b"], ["c", "d"]])), TypeError, "real array"),
    (lambda: rdm(np.full((3, 2), np.nan)), ValueError, "finite"),
    (lambda: rdm(np.array([[1e308, 1e308], [np.inf, 0.0]])), ValueError, "data must be finite"),
    (
        lambda: rdm(_data(), "mahalanobis", noise=np.diag([1, 1, np.nan, 1, 1])),
        ValueError,
        "noise must be finite",
    ),
    (lambda: compare_rdms(np.ones(3), [0.0, np.inf, 1.0]), ValueError, "b must be finite"),
    (lambda: rdm(_data(), "manhattan"), ValueError, "method"),
    (lambda: rdm(_data(), "euclidean", noise=np.eye(5)), ValueError, "noise"),
    (lambda: rdm(_data(), "mahalanobis", noise=np.eye(4)), ValueError, "noise"),
    (lambda: rdm(_data(), "mahalanobis", noise=np.triu(np.ones((5, 5)))), ValueError, "symmetric"),
    (lambda: rdm(_data(), "crossnobis"), ValueError, "conditions"),
    (lambda: rdm(_data(), conditions=[0, 1]), ValueError, "conditions"),
    (lambda: rdm(_data(), "euclidean", runs=np.zeros(7)), ValueError, "runs"),
    (lambda: rdm(_data(), remove_mean=1), TypeError, "remove_mean"),
    (lambda: rdm(np.zeros((3, 2)), "cosine"), ValueError, "patterns"),
    (lambda: rdm(_data(n=1)), ValueError, "at least 2"),
    (lambda: rdm(_data(n=6), "crossnobis", conditions=[0, 0, 1, 1, 1, 2]), ValueError, "runs"),
    (lambda: rdm(_data(), "mahalanobis", noise="ledoit"), ValueError, "noise"),
    (lambda: rdm(_data(), "mahalanobis", noise="diag"), ValueError, "conditions"),
    (lambda: rdm(-(_data() ** 2), "poisson"), ValueError, "data must be spike counts or rates"),
    (lambda: rdm(np.zeros((4, 3)), "poisson", prior_weight=0), ValueError, "prior_weight > 0"),
    (lambda: rdm(_data() ** 2, "poisson", prior_lambda=0), ValueError, "prior_lambda"),
    (lambda: rdm(_data() ** 2, "poisson", prior_weight=-1), ValueError, "prior_weight"),
    (lambda: rdm(_data() ** 2, "poisson", remove_mean=True), ValueError, "remove_mean"),
    (lambda: rdm(_data() ** 2, "poisson", runs=np.arange(7)), ValueError, "runs is only"),
    (lambda: rdm(_data() ** 2, "poisson_cv"), ValueError, "conditions must be given"),
    (lambda: rdm(_data(), "euclidean", prior_weight=0.5), ValueError, "prior_weight is only"),
    (lambda: rdm(_data() ** 2, "poisson", noise=np.eye(5)), ValueError, "noise is only"),
    (lambda: rdm_to_square(np.ones(4)), ValueError, "n\\(n-1\\)/2"),
    (lambda: rdm_to_square(np.ones((2, 2, 3))), ValueError, "rdm"),
    (lambda: rdm_to_vector(np.ones((3, 4))), ValueError, "square"),
    (lambda: rdm_to_vector(np.array([[0, 1.0], [2.0, 0]])), ValueError, "symmetric"),
    (lambda: rdm_to_vector(np.ones((3, 3))), ValueError, "diagonal"),
    (lambda: compare_rdms(np.ones(3), np.ones(6)), ValueError, "same number of conditions"),
    (lambda: compare_rdms(np.ones(3), np.ones(3), "kendall"), ValueError, "method"),
    (lambda: compare_rdms(np.ones((2, 4)), np.ones(3)), ValueError, "a must be"),
    (lambda: compare_rdms(np.ones((2, 3, 4)), np.ones(3)), ValueError, "square"),
    (lambda: compare_rdms(np.ones(1), np.ones(1), "kendall_tau_a"), ValueError, "at least 2"),
    (lambda: compare_rdms(np.ones(1), np.ones(1), "rho_a"), ValueError, "at least 2"),
    (lambda: geo_topological(np.ones(3), 0.8, 0.2), ValueError, "lower must be <= upper"),
    (lambda: geo_topological(np.ones(3), -0.1, 0.2), ValueError, "lower"),
    (lambda: geo_topological(np.ones(3), 0.1, 1.2), ValueError, "upper"),
    (lambda: geo_topological(np.ones(3), 0.1, 0.2, rank="yes"), TypeError, "rank"),
    (lambda: geodesic(np.ones(3), disconnected="min"), ValueError, "disconnected"),
    (lambda: geodesic(np.ones(3), disconnected=-1.0), ValueError, "disconnected"),
    (lambda: geodesic(np.ones(3), disconnected=np.float32(-1)), ValueError, "disconnected"),
    (lambda: geodesic(np.ones(3), disconnected=True), TypeError, "disconnected"),
    (lambda: geodesic(np.ones(3), disconnected=np.ones(3)), TypeError, "disconnected"),
    (lambda: noise_precision(np.ones((1, 3))), ValueError, "residuals"),
    (lambda: noise_precision(np.ones((4, 3))), ValueError, "zero variance"),
    (lambda: noise_precision(_data(), method="oas"), ValueError, "method"),
    (lambda: noise_precision(_data(), dof=0), ValueError, "dof"),
    (lambda: noise_precision_from_measurements(_data(), np.arange(7)), ValueError, "repeat"),
    (lambda: n_conditions(4), ValueError, "n\\(n-1\\)/2"),
    (lambda: rank_transform(np.ones(4)), ValueError, "rdms"),
    (lambda: rank_transform(np.ones((2, 2, 2, 2))), ValueError, "rdms"),
    (lambda: kendall_tau_a(np.ones(3), "abc"), TypeError, "b must be a real array"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_RDM_CALLS)
def test_bad_inputs(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------------------------
# fast ranking and tau-a against the previous algorithms (argsort-based ranks, one np.unique
# per pair for the joint ties) on random inputs with and without ties


def _previous_average_ranks(v: np.ndarray, center: bool = False) -> np.ndarray:
    k, p = v.shape
    order = np.argsort(v, axis=1)
    ordered = np.take_along_axis(v, order, axis=1)
    new = np.ones(v.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    flat = new.ravel()
    starts = np.flatnonzero(flat)
    stops = np.empty_like(starts)
    stops[:-1] = starts[1:]
    stops[-1] = flat.size
    offset = (starts // p) * p
    mean_rank = (starts + stops + 1 - 2 * offset) / 2.0
    if center:
        mean_rank -= (p + 1) / 2.0
    ranks = np.empty(v.shape)
    np.put_along_axis(ranks, order, mean_rank[np.cumsum(flat) - 1].reshape(k, p), axis=1)
    return ranks


def _previous_tau_a(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    from scipy.stats._stats import _kendall_dis

    def dense_ranks(v):
        order = np.argsort(v, axis=1)
        ordered = np.take_along_axis(v, order, axis=1)
        new = np.ones(v.shape, dtype=bool)
        new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        dense = np.cumsum(new, axis=1, dtype=np.intp)
        ties = np.zeros(v.shape[0], dtype=np.int64)
        for i in range(v.shape[0]):
            counts = np.bincount(dense[i]).astype(np.int64)
            ties[i] = (counts * (counts - 1) // 2).sum()
        return order, dense, ties

    p = va.shape[1]
    total = p * (p - 1) // 2
    order_a, dense_a, ties_a = dense_ranks(va)
    order_b, dense_b, ties_b = dense_ranks(vb)
    ranks_b = np.empty_like(dense_b)
    np.put_along_axis(ranks_b, order_b, dense_b, axis=1)
    out = np.empty((va.shape[0], vb.shape[0]))
    for i in range(va.shape[0]):
        x = dense_a[i]
        for j in range(vb.shape[0]):
            y = ranks_b[j][order_a[i]]
            dis = int(_kendall_dis(x, y))
            joint = 0
            if ties_a[i] and ties_b[j]:
                _, counts = np.unique(x * (int(dense_b[j, -1]) + 1) + y, return_counts=True)
                counts = counts.astype(np.int64)
                joint = int((counts * (counts - 1) // 2).sum())
            out[i, j] = (total - int(ties_a[i]) - int(ties_b[j]) + joint - 2 * dis) / total
    return out


def _rdm_rows(kind: str, k: int, p: int, seed: int) -> np.ndarray:
    """Rows that exercise the packed-key sort: ties, negatives, -0.0, ulp-level differences
    (shifted keys collide and must be re-sorted), huge spans, sorted and reversed rows."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random((k, p))
    if kind == "few values":
        return rng.integers(0, 3, size=(k, p)).astype(float)
    if kind == "signed zeros":
        return np.where(rng.random((k, p)) < 0.3, -0.0, rng.integers(-2, 3, (k, p)).astype(float))
    if kind == "normal":
        return rng.normal(size=(k, p))
    if kind == "ulps":  # distinct values 1 ulp apart next to a huge one: keys collide
        v = 1.0 + np.spacing(1.0) * rng.integers(0, 4 * p, size=(k, p))
        v[:, 0] = 1e300
        return v
    if kind == "ulps and ties":
        v = 1.0 + np.spacing(1.0) * rng.integers(0, 5, size=(k, p))
        v[:, -1] = -1e300
        return v
    if kind == "tiny and huge":
        scale = np.where(rng.random((k, p)) < 0.5, 1e-300, 1e300)
        return rng.random((k, p)) * scale
    v = np.sort(rng.random((k, p)), axis=1)
    return v if kind == "sorted" else v[:, ::-1].copy()


RANK_KINDS = [
    "random",
    "few values",
    "signed zeros",
    "normal",
    "ulps",
    "ulps and ties",
    "tiny and huge",
    "sorted",
    "reversed",
]


@pytest.mark.parametrize("kind", RANK_KINDS)
@pytest.mark.parametrize("p", [1, 2, 3, 45, 4950, 70_000])
def test_average_ranks_equal_rankdata_and_the_previous_algorithm(kind, p) -> None:
    from scipy.stats import rankdata

    from neuronkit.interpretability import rsa

    v = _rdm_rows(kind, 3, p, seed=p)
    ranks = rsa._average_ranks(v)
    assert ranks.dtype == np.float64
    np.testing.assert_array_equal(ranks, rankdata(v, axis=1))  # float32 path too (p >= 2**16)
    np.testing.assert_array_equal(
        rsa._average_ranks(v, center=True), _previous_average_ranks(v, center=True)
    )
    order, new, tied = rsa._sort_rows(v)
    ordered = np.take_along_axis(v, order, axis=1)
    assert np.all(ordered[:, 1:] >= ordered[:, :-1])
    assert np.all(np.sort(order, axis=1) == np.arange(p))  # a permutation per row
    np.testing.assert_array_equal(new[:, 1:], ordered[:, 1:] != ordered[:, :-1])
    np.testing.assert_array_equal(tied, ~new.all(axis=1))


def test_sort_rows_repairs_colliding_keys() -> None:
    """Distinct values sharing their shifted key come out of the packed sort in position
    order; the repair sorts them by value (without it this input would be misordered)."""
    from neuronkit.interpretability import rsa

    v = 1.0 + np.spacing(1.0) * np.arange(2000.0)[::-1]  # decreasing, 1 ulp apart
    v = np.concatenate(([1e300], v))[None, :]  # the span needs all key bits: keys collide
    order, new, tied = rsa._sort_rows(v)
    np.testing.assert_array_equal(order[0], np.argsort(v[0]))
    assert new.all()
    assert not tied.any()


@settings(max_examples=60, deadline=None)
@given(
    v=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 60)),
        elements=st.one_of(
            st.integers(-3, 3).map(float),
            st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
            st.sampled_from([0.0, -0.0, 1.0, 1.0 + 2**-52, 1.0 + 2**-51, 5e-324]),
        ),
    )
)
def test_average_ranks_property(v) -> None:
    from scipy.stats import rankdata

    from neuronkit.interpretability import rsa

    np.testing.assert_array_equal(rsa._average_ranks(v), rankdata(v, axis=1))
    np.testing.assert_array_equal(
        rsa._average_ranks(v, center=True), _previous_average_ranks(v, center=True)
    )


@pytest.mark.parametrize(
    "kinds",
    [
        ("random", "random"),
        ("few values", "random"),
        ("random", "few values"),
        ("few values", "few values"),
        ("signed zeros", "normal"),
        ("ulps and ties", "few values"),
        ("ulps", "reversed"),
    ],
)
@pytest.mark.parametrize("p", [3, 6, 45, 4950, 65_703])  # n(n - 1) / 2; 65_703: n = 363
def test_tau_a_equals_the_previous_algorithm_exactly(kinds, p) -> None:
    from neuronkit.interpretability import rsa

    a = _rdm_rows(kinds[0], 3, p, seed=1)
    b = _rdm_rows(kinds[1], 2, p, seed=2)
    if kinds == ("few values", "few values"):
        b[1] = a[0] // 2  # ties shared with a: many pairs tied in both
    # a [3, 3] stack of vectors is ambiguous with one square RDM: passed as squares
    stack_a = rdm_to_square(a) if a.shape == (p, p) else a
    np.testing.assert_array_equal(kendall_tau_a(stack_a, b), _previous_tau_a(a, b))
    if p <= 45:  # and the definition, with integer sign sums
        sa = np.sign(a[:, :, None] - a[:, None, :]).reshape(3, -1).astype(np.int64)
        sb = np.sign(b[:, :, None] - b[:, None, :]).reshape(2, -1).astype(np.int64)
        np.testing.assert_array_equal(
            rsa._tau_a_sorted(a, b), (sa @ sb.T // 2) / (p * (p - 1) // 2)
        )


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.just(28)),
        elements=st.integers(-3, 3).map(float),
    ),
    b=arrays(
        np.float64, st.tuples(st.integers(1, 3), st.just(28)), elements=st.floats(-5, 5, width=16)
    ),
)
def test_tau_a_property_against_the_previous_algorithm(a, b) -> None:
    np.testing.assert_array_equal(kendall_tau_a(a, b), _previous_tau_a(a, b))
    np.testing.assert_array_equal(kendall_tau_a(b, a), _previous_tau_a(b, a))
    np.testing.assert_array_equal(kendall_tau_a(a, a), _previous_tau_a(a, a))


@pytest.mark.parametrize("n_values", [3, 2000])  # bincount path, sort path
def test_joint_ties_count(n_values) -> None:
    from neuronkit.interpretability import rsa

    rng = np.random.default_rng(n_values)
    x = np.sort(rng.integers(1, n_values + 1, size=3000)).astype(np.intp)
    y = rng.integers(1, n_values + 1, size=3000).astype(np.intp)
    _, counts = np.unique(np.stack([x, y]), axis=1, return_counts=True)
    expected = int((counts.astype(np.int64) * (counts - 1) // 2).sum())
    assert rsa._joint_ties(x, y, int(y.max())) == expected


@pytest.mark.parametrize("method", ["euclidean", "mahalanobis", "crossnobis"])
def test_distances_survive_a_large_common_offset(method: str) -> None:
    rng = np.random.default_rng(0)
    x = np.repeat(rng.standard_normal((12, 7)), 3, axis=0) + 0.1 * rng.standard_normal((36, 7))
    conditions = np.repeat(np.arange(12), 3)
    kw = {"conditions": conditions} | ({"noise": 2 * np.eye(7)} if method != "euclidean" else {})
    ref = rdm(x, method, **kw)
    shifted = rdm(x + 1e8, method, **kw)  # the Gram expansion alone loses every digit here
    np.testing.assert_allclose(shifted, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_stacks_that_look_square_are_read_as_stacks() -> None:
    # three RDMs of three conditions whose [3, 3] vector stack is symmetric with a zero
    # diagonal: parsed once as a stack, never re-read as one square RDM
    stack = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    squares, one = rdm_to_square(stack), np.array([1.0, 2.0, 3.0])
    tau = compare_rdms(squares, one, "kendall_tau_a")
    assert tau.shape == (3, 1)
    np.testing.assert_allclose(tau, kendall_tau_a(squares, one))
    ranked = geo_topological(
        rdm_to_square(np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0.0]])), 0, 1, rank=True
    )
    np.testing.assert_allclose(rdm_to_vector(ranked)[0], [0.0, 0.5, 1.0])


def test_one_channel_shrinkage_and_tiny_scale_cosines() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((10, 1))
    np.testing.assert_allclose(
        noise_precision(noise), noise_precision(noise, method="diag"), rtol=1e-12
    )
    a, b = rng.random((1, 45)), rng.random((1, 45))
    ref = compare_rdms(a, b, "cosine")
    for scale in (1e-170, 1e170):
        np.testing.assert_allclose(compare_rdms(a * scale, b * scale, "cosine"), ref, rtol=1e-12)


def test_a_square_rdm_of_large_distances_with_rounding_on_the_diagonal_is_square() -> None:
    rng = np.random.default_rng(0)
    square = rdm_to_square(rng.uniform(1e8, 3e8, 45))
    square[np.diag_indices(10)] = 1e-7  # the rounding a Gram-formed RDM leaves there
    assert compare_rdms(square, square, "spearman").shape == (1, 1)


@pytest.mark.parametrize("method", ["mahalanobis", "crossnobis"])
def test_precisions_that_are_not_positive_definite_are_rejected(method) -> None:
    x = np.r_[_data(4, n=5, c=4), _data(5, n=5, c=4)]
    kwargs = {"conditions": np.tile(np.arange(5), 2)} if method == "crossnobis" else {}
    with_zero = np.eye(4)
    with_zero[3, 3] = 0.0
    for bad in (-np.eye(4), np.zeros((4, 4)), with_zero, -np.ones(4), np.array([1, 1, 0, 1.0])):
        with pytest.raises(ValueError, match="noise must be a positive definite"):
            rdm(x, method, noise=bad, **kwargs)
    good = np.diag([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(
        rdm(x, method, noise=good, **kwargs), rdm(x, method, noise=np.diag(good), **kwargs)
    )


def test_an_indefinite_precision_shows_as_negative_distances() -> None:
    x = _data(4, n=6, c=2)
    x[:, 1] = x[:, 0] * -1.0  # every difference lies along (1, -1)
    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])  # positive diagonal, (1, -1) P (1, -1) < 0
    with pytest.raises(ValueError, match=r"noise must be a positive definite.*squared distance"):
        rdm(x, "mahalanobis", noise=indefinite)
    # identical conditions: every distance is rounding noise, which is not a reason to refuse
    rng = np.random.default_rng(0)
    same = np.tile(rng.normal(size=31), (19, 1))
    for _ in range(20):
        a = rng.normal(size=(31, 31))
        assert np.abs(rdm(same, "mahalanobis", noise=a @ a.T / 31 + np.eye(31))).max() < 1e-12


def test_a_singular_noise_covariance_is_refused_with_the_alternatives() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"method='full'.*'shrinkage_diag'"):
        noise_precision(rng.normal(size=(3, 5)), method="full")  # rank 2 < 5 channels
    with pytest.raises(ValueError, match=r"method='full'.*'shrinkage_diag'"):
        noise_precision_from_measurements(
            rng.normal(size=(6, 8)), [0, 0, 1, 1, 2, 2], method="full"
        )  # 6 observations - 3 condition means = 3 < 8 channels
    collinear = rng.normal(size=(50, 4))
    collinear = np.c_[collinear, collinear[:, 0] + collinear[:, 1]]  # enough rows, rank 4
    with pytest.raises(ValueError, match=r"method='full' gives a singular noise covariance"):
        noise_precision(collinear, method="full")
    # the estimators that stay invertible still answer
    assert np.isfinite(noise_precision(rng.normal(size=(3, 5)), method="diag")).all()
    assert np.isfinite(noise_precision(rng.normal(size=(3, 5)), method="shrinkage_diag")).all()
    assert np.isfinite(noise_precision(collinear, method="shrinkage_eye")).all()
    well = rng.normal(size=(30, 5))
    np.testing.assert_allclose(
        noise_precision(well, method="full"), np.linalg.inv(np.cov(well, rowvar=False))
    )


def test_unsortable_condition_labels_are_named() -> None:
    with pytest.raises(TypeError, match="conditions must hold labels of one sortable kind"):
        rdm(_data(n=5), conditions=[0, 1, None, None, 2])
    with pytest.raises(TypeError, match="runs must hold labels"):
        rdm(
            np.r_[_data(n=5), _data(1, n=5)],
            "crossnobis",
            conditions=[0, 1, 2, 3, 4] * 2,
            runs=[0] * 5 + [1, None, 1, 1, 1],
        )


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda r: compare_rdms(r, r), "a"),
        (lambda r: kendall_tau_a(r, r), "a"),
        (rank_transform, "rdms"),
        (lambda r: geo_topological(r, 0.2, 0.8), "rdms"),
        (geodesic, "rdms"),
    ],
)
def test_a_near_square_rdm_whose_side_is_a_vector_length_is_ambiguous(call, name) -> None:
    # 10 conditions: 10 = 5 * 4 / 2, so a rejected [10, 10] square could be 10 RDM vectors
    square = rdm_to_square(np.random.default_rng(0).uniform(1, 2, 45))
    square[np.diag_indices(10)] = 1e-2  # e.g. a float32 torch.cdist RDM
    with pytest.raises(ValueError, match=rf"^{name} of shape \(10, 10\) is ambiguous.*diagonal"):
        call(square)
    skewed = rdm_to_square(np.random.default_rng(0).uniform(1, 2, 45))
    skewed[0, 1] += 1e-3
    with pytest.raises(ValueError, match=r"ambiguous.*M - M\^T.*symmetrize"):
        call(skewed)
    square[np.diag_indices(10)] = 0.0  # an exact square RDM is read as before
    assert np.asarray(call(square)).shape in {(1, 1), (10, 10)}
    stack = np.random.default_rng(1).uniform(1, 2, (3, 10))  # [k, 10] with k != 10: a stack
    assert np.asarray(call(stack)).shape in {(3, 3), (3, 10)}


def test_rdm_of_huge_and_tiny_patterns_scales_exactly() -> None:
    # a power-of-two scale s multiplies squared distances by s^2 (exact), leaves cosines as
    # they are; the Gram matrix of the scaled patterns would over- or underflow
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 3))
    prec = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    big = 2.0**511
    for method, kw in [("euclidean", {}), ("mahalanobis", {"noise": prec})]:
        got = rdm(x * big, method, **kw)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, rdm(x, method, **kw) * big**2, rtol=1e-12)
    for method in ("cosine", "correlation"):
        for scale in (1e-170, 1e160):
            np.testing.assert_allclose(rdm(x * scale, method), rdm(x, method), rtol=1e-12)
    runs = np.repeat(x, 2, axis=0) + 0.1 * rng.normal(size=(10, 3))
    conditions = np.repeat(np.arange(5), 2)
    got = rdm(runs * big, "crossnobis", conditions=conditions)
    ref = rdm(runs, "crossnobis", conditions=conditions)
    np.testing.assert_allclose(got, ref * big**2, rtol=1e-12)


def test_rdm_distances_of_parallel_patterns_are_not_negative() -> None:
    for method in ("cosine", "euclidean"):
        out = rdm(np.ones((3, 3)), method)
        assert (out >= 0).all()
        np.testing.assert_allclose(out, 0.0, atol=1e-15)
    parallel = np.outer([1.0, 3.0, 7.0, 0.1], [0.1, 0.7, 0.3])
    assert (rdm(parallel, "cosine") >= 0).all()
    # 100 pairs of equal rows, from norms and one syrk: several round below 0 before the clip
    twins = np.repeat(np.random.default_rng(0).normal(size=(100, 30)) * 3 + 0.1, 2, axis=0)
    for method in ("euclidean", "mahalanobis"):
        out = rdm(twins, method)
        assert (out >= 0).all()
        assert out.min() == 0.0


@pytest.mark.parametrize("fill", [np.float32(5.0), np.int64(5), np.array(5.0), torch.tensor(5.0)])
def test_geodesic_takes_numpy_and_0d_disconnected_values(fill) -> None:
    v = rdm(np.random.default_rng(0).normal(size=(6, 3)))
    expected = geodesic(v, 0.0, 0.05, disconnected=5.0)
    assert (expected == 5.0).any()
    np.testing.assert_array_equal(geodesic(v, 0.0, 0.05, disconnected=fill), expected)


def test_rdm_to_square_says_a_square_input_is_already_square() -> None:
    """The error listed "a square RDM [n, n]" as accepted, yet rdm_to_square refuses squares."""
    square = rdm_to_square(np.arange(1.0, 7.0))  # [4, 4]
    with pytest.raises(ValueError, match=r"^rdm must be in vector form .*; it is already square$"):
        rdm_to_square(square)
    with pytest.raises(ValueError, match=r"^rdm must be in vector form") as info:
        rdm_to_square(np.ones((2, 4)))
    assert "square" not in str(info.value)


@pytest.mark.parametrize(
    ("lower", "upper", "rank", "disconnected"),
    [
        (0.0, 1.0, False, "max"),
        (0.1, 0.6, False, "max"),
        (0.0, 0.3, False, "max"),  # disconnected pairs
        (0.0, 0.25, True, 7.0),  # disconnected pairs at a given value
    ],
)
def test_geodesic_of_a_square_rdm_is_the_square_of_the_vector_result(
    lower: float, upper: float, rank: bool, disconnected: str | float
) -> None:
    v = rdm(_data(8, n=9, c=2))
    kw = {"rank": rank, "disconnected": disconnected}
    from_vector = geodesic(v, lower, upper, **kw)
    from_square = geodesic(rdm_to_square(v), lower, upper, **kw)
    assert from_square.shape == (9, 9)
    np.testing.assert_allclose(from_square, rdm_to_square(from_vector), rtol=1e-12, atol=1e-12)
    assert not np.allclose(from_vector, geo_topological(v, lower, upper, rank=rank))  # paths


def _double_centred_second_moments(v: np.ndarray) -> np.ndarray:
    """``G = -H D H / 2`` of an RDM vector, written out with the centring matrix."""
    d = rdm_to_square(v)
    n = d.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return -0.5 * h @ d @ h


@pytest.mark.parametrize("method", ["whitened_cosine", "whitened_correlation"])
def test_whitened_comparisons_are_cosines_of_double_centred_second_moments(method) -> None:
    """Diedrichsen et al. (2021): under the covariance of dissimilarity estimates of
    independent, equally noisy patterns, the RDMs' cosine is that of their double-centred
    second-moment matrices (Frobenius); correlation centres the RDMs first."""
    rng = np.random.default_rng(5)
    a, b = rng.random(36), rng.random(36)  # 9 conditions
    ca, cb = (a - a.mean(), b - b.mean()) if method == "whitened_correlation" else (a, b)
    ga, gb = _double_centred_second_moments(ca), _double_centred_second_moments(cb)
    expected = (ga * gb).sum() / np.sqrt((ga * ga).sum() * (gb * gb).sum())
    assert compare_rdms(a, b, method)[0, 0] == pytest.approx(expected, abs=1e-12)


def test_whitened_cosine_of_euclidean_rdms_is_linear_cka() -> None:
    """The whitened cosine of two squared-Euclidean RDMs is the linear CKA of the patterns
    (Kornblith et al. 2019; Diedrichsen et al. 2021)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 4))
    y = x @ rng.normal(size=(4, 7)) + 0.5 * rng.normal(size=(10, 7))
    xc, yc = x - x.mean(0), y - y.mean(0)
    cka = np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    white = compare_rdms(rdm(x, "euclidean"), rdm(y, "euclidean"), "whitened_cosine")
    assert white[0, 0] == pytest.approx(cka, abs=1e-12)
    assert compare_rdms(rdm(x, "euclidean"), rdm(y, "euclidean"))[0, 0] != pytest.approx(cka)


def test_rho_a_is_spearman_without_the_tie_correction() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(28)
    b = np.round(rng.random(28), 1)  # ties shrink the ranks' spread
    assert compare_rdms(a, a, "rho_a")[0, 0] == pytest.approx(1.0)
    rho_a = compare_rdms(a, b, "rho_a")[0, 0]
    spearman = compare_rdms(a, b, "spearman")[0, 0]
    assert abs(rho_a) < abs(spearman)


def test_whitened_cosine_of_rdms_far_from_zero_keeps_its_digits() -> None:
    """Nearly equal dissimilarities far from 0: the products from row sums subtract large
    terms, yet agree with the written-out double centring."""
    rng = np.random.default_rng(8)
    a = 1e9 + rng.random(28)
    b = rng.random(28)
    ga, gb = _double_centred_second_moments(a), _double_centred_second_moments(b)
    expected = (ga * gb).sum() / np.sqrt((ga * ga).sum() * (gb * gb).sum())
    assert compare_rdms(a, b, "whitened_cosine")[0, 0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["whitened_cosine", "whitened_correlation"])
@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e160, 1e200])
def test_whitened_comparisons_do_not_depend_on_the_rdms_scale(method, scale) -> None:
    """Like every comparison, a scale-free number: their squares once over- (0 for 1e160) or
    underflowed (0 for 1e-200, subnormal digits for 1e-160)."""
    rng = np.random.default_rng(0)
    a = rng.random(15)
    b = a + 0.2 * rng.random(15)
    expected = compare_rdms(a, b, method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        np.testing.assert_allclose(compare_rdms(a * scale, b, method), expected, rtol=1e-13)
        np.testing.assert_allclose(compare_rdms(a, b * scale, method), expected, rtol=1e-13)


@pytest.mark.parametrize("n", [3, 7, 20])
def test_pair_sums_equal_the_sparse_incidence_product_bit_for_bit(n) -> None:
    """The whitening's per-condition sums (a scatter-add, 2x faster than scipy.sparse at these
    sizes) add in the order the sparse incidence product did, so results did not move."""
    from scipy.sparse import csr_matrix

    from neuronkit.interpretability.rsa import _pair_sums, _pairs

    rng = np.random.default_rng(n)
    rows, cols = _pairs(n)
    kept = rng.random(rows.size) < 0.8
    v = rng.standard_normal((5, int(kept.sum()))) * 10.0 ** rng.integers(-8, 8, (5, 1))
    pairs = np.repeat(np.arange(kept.sum()), 2)
    ends = np.stack([rows[kept], cols[kept]], 1).ravel()
    incidence = csr_matrix((np.ones(pairs.size), (pairs, ends)), (int(kept.sum()), n))
    np.testing.assert_array_equal(_pair_sums(v, rows[kept], cols[kept], n), incidence.T @ v.T)
