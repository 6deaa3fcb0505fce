"""Binned mutual information: equals scikit-learn's contingency MI, entropy identities, binning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from neuronkit.interpretability.information import (
    bin_activations,
    entropy,
    joint_codes,
    kde_information,
    mutual_information,
    mutual_information_matrix,
)


def _codes(seed: int = 0, n: int = 600, units: int = 4, k: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, k, size=(n, 1))
    noise = rng.integers(0, k, size=(n, units))
    keep = rng.random((n, units)) < 0.6
    return np.where(keep, base, noise)


def test_mi_matrix_equals_sklearn_pairwise() -> None:
    a, b = _codes(0), _codes(1, units=3)
    b[:, 0] = a[:, 1]  # one identical pair
    mi = mutual_information_matrix(a, b)
    ref = np.array(
        [[mutual_info_score(a[:, i], b[:, j]) for j in range(3)] for i in range(4)]
    ) / np.log(2)
    np.testing.assert_allclose(mi, ref, atol=1e-12)
    assert mi[1, 0] == pytest.approx(entropy(a)[1])


def test_mi_matrix_within_layer_is_symmetric_with_entropy_diagonal() -> None:
    a = _codes(2)
    mi = mutual_information_matrix(a)
    np.testing.assert_allclose(mi, mi.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(mi), entropy(a), atol=1e-12)
    nats = mutual_information_matrix(a, base=np.e)
    np.testing.assert_allclose(nats, mi * np.log(2), atol=1e-12)


def test_bias_correction_shrinks_independent_mi_towards_zero() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 10, (300, 5)), rng.integers(0, 10, (300, 5))
    raw = mutual_information_matrix(a, b)
    corrected = mutual_information_matrix(a, b, bias_correction=True)
    assert (corrected <= raw + 1e-12).all()
    assert corrected.mean() < 0.5 * raw.mean()
    assert (corrected >= 0).all()


def test_mutual_information_1d_matches_sklearn_and_handles_large_codes() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 6, 1000)
    y = (x + rng.integers(0, 2, 1000)) % 6
    assert mutual_information(x, y) == pytest.approx(mutual_info_score(x, y) / np.log(2))
    big = x * 10_000_000  # sparse large ids
    assert mutual_information(big, y) == pytest.approx(mutual_information(x, y))
    assert mutual_information(x, x) == pytest.approx(float(entropy(x)[0]))


def test_entropy_of_uniform_and_constant_codes() -> None:
    codes = np.stack([np.arange(800) % 8, np.zeros(800, dtype=int)], axis=1)
    np.testing.assert_allclose(entropy(codes), [3.0, 0.0], atol=1e-12)


def test_joint_codes_identify_row_patterns() -> None:
    codes = np.array([[0, 1], [1, 0], [0, 1], [2, 2]])
    ids = joint_codes(codes)
    assert ids[0] == ids[2]
    assert len(set(ids.tolist())) == 3
    labels = np.array([0, 1, 0, 1])
    # I(T; Y) <= H(Y) (data-processing / entropy bound)
    assert mutual_information(ids, labels) <= float(entropy(labels)[0]) + 1e-12


def test_bin_uniform_quantile_and_zero_bin() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1000, 3))
    uni = bin_activations(x, 4)
    assert uni.min() == 0
    assert uni.max() == 3
    assert uni.dtype == np.int64
    # equal-width: the extremes land in the outer bins
    assert uni[x[:, 0].argmin(), 0] == 0
    assert uni[x[:, 0].argmax(), 0] == 3
    quant = bin_activations(x, 4, strategy="quantile")
    counts = np.stack([np.bincount(quant[:, u], minlength=4) for u in range(3)])
    assert (np.abs(counts - 250) <= 1).all()
    relu = np.maximum(x, 0.0)
    zb = bin_activations(relu, 5, strategy="quantile", zero_bin=True)
    assert ((zb == 0) == (relu == 0)).all()
    assert zb[relu > 0].min() == 1
    assert zb.max() == 4
    fixed = bin_activations(np.array([-5.0, -0.5, 0.49, 5.0]), 2, value_range=(-1.0, 1.0))
    assert fixed[:, 0].tolist() == [0, 0, 1, 1]
    const = bin_activations(np.ones((10, 2)), 3)
    assert (const == 0).all()


def test_bin_accepts_torch_and_does_not_mutate() -> None:
    t = torch.randn(50, 2)
    before = t.clone()
    codes = bin_activations(t, 3)
    assert codes.shape == (50, 2)
    assert torch.equal(t, before)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: bin_activations(np.ones((4, 2)), 1), ValueError, "n_bins"),
        (lambda: bin_activations(np.ones((4, 2)), 3, strategy="kmeans"), ValueError, "strategy"),
        (lambda: bin_activations(np.array([[np.nan]]), 3), ValueError, "finite"),
        (lambda: bin_activations(np.ones((2, 2, 2)), 3), ValueError, "units"),
        (
            lambda: bin_activations(np.ones((4, 1)), 3, strategy="quantile", value_range=(0, 1)),
            ValueError,
            "value_range",
        ),
        (lambda: bin_activations(np.ones(4), 3, value_range=(1, 0)), ValueError, "value_range"),
        (lambda: entropy(np.array([0, -1])), ValueError, "non-negative"),
        (lambda: entropy(np.array([0.5, 1.0])), TypeError, "integer"),
        (lambda: entropy(np.array(["a"])), TypeError, "real-valued"),
        (lambda: entropy(np.array([0, 1]), base=1), ValueError, "base"),
        (
            lambda: mutual_information_matrix(np.zeros((5, 2), int), np.zeros((4, 2), int)),
            ValueError,
            "samples",
        ),
        (lambda: mutual_information(np.zeros((5, 2), int), np.zeros(5, int)), ValueError, "1-D"),
        (lambda: mutual_information(np.zeros(5, int), np.zeros(4, int)), ValueError, "samples"),
    ],
)
def test_bad_inputs_raise(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_kde_information_is_translation_invariant() -> None:
    rng = np.random.default_rng(0)
    h = 0.3 * rng.standard_normal((100, 5))
    y = rng.integers(0, 3, 100)
    ref = kde_information(h, y)
    shifted = kde_information(h + 1e7, y)  # |h|^2 - 2 h.h' + |h'|^2 would cancel here
    assert shifted == pytest.approx(ref, rel=1e-6)


def test_huge_and_sparse_codes_are_relabelled_not_used_as_dense_indices() -> None:
    codes = _codes(3, n=200, units=3)
    huge = codes * 10**13 + 7  # a bijection per column: every measure is unchanged
    np.testing.assert_allclose(
        mutual_information_matrix(huge), mutual_information_matrix(codes), rtol=1e-12
    )
    np.testing.assert_allclose(
        mutual_information_matrix(huge, codes[:, :2], bias_correction=True),
        mutual_information_matrix(codes, codes[:, :2], bias_correction=True),
        rtol=1e-12,
    )
    np.testing.assert_allclose(entropy(huge), entropy(codes), rtol=1e-12)
    assert mutual_information_matrix(np.array([[0], [10**13]]))[0, 0] == pytest.approx(1.0)
    assert entropy(np.array([0, 10**13]))[0] == pytest.approx(1.0)


def test_bin_value_range_must_be_a_finite_pair() -> None:
    x = np.random.default_rng(0).random((5, 2))
    for bad in [(-np.inf, np.inf), (0.0, np.inf), (np.nan, 1.0)]:
        with pytest.raises(ValueError, match=r"value_range\[\d\] must be finite"):
            bin_activations(x, 4, value_range=bad)
    with pytest.raises(TypeError, match="value_range must be a"):
        bin_activations(x, 4, value_range=1.0)
    np.testing.assert_array_equal(
        bin_activations(x, 4, value_range=np.array([0.0, 1.0])),
        bin_activations(x, 4, value_range=(0.0, 1.0)),
    )


def test_value_range_may_be_tensors() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    t = torch.as_tensor(x)
    ref = bin_activations(x, 4, value_range=(float(x.min()), float(x.max())))
    np.testing.assert_array_equal(bin_activations(x, 4, value_range=(t.min(), t.max())), ref)
    np.testing.assert_array_equal(
        bin_activations(x, 4, value_range=torch.tensor([x.min(), x.max()])), ref
    )


@pytest.mark.parametrize("scale", [1e3, 1e8, 1e10, 1e160])
def test_kde_information_of_far_apart_points_at_any_scale(scale: float) -> None:
    # the noise (var 0.1) is negligible next to the spread: T identifies X, I(T;Y) = H(Y)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(20, 4))
    y = (h[:, 0] > 0).astype(int)
    ixt, ity = kde_information(h * scale, y, noise_variance=0.1)
    assert ixt == pytest.approx(np.log2(20), abs=1e-12)
    assert ity == pytest.approx(float(entropy(y)[0]), abs=1e-12)


def test_bin_activations_puts_far_out_values_in_the_edge_bins() -> None:
    x = np.array([[-1e300], [-5.0], [0.0], [5.0], [1e20], [1e300]])
    codes = bin_activations(x, 10, value_range=(-1, 1)).ravel()
    np.testing.assert_array_equal(codes, [0, 0, 5, 9, 9, 9])
    # a range whose width overflows float64
    wide = np.array([[-1e308], [0.0], [1e308]])
    np.testing.assert_array_equal(bin_activations(wide, 4).ravel(), [0, 2, 3])
    assert bin_activations(wide, 4, value_range=(-1e308, 1e308)).ravel().tolist() == [0, 2, 3]
