"""Binned mutual information: equals scikit-learn's contingency MI, entropy identities, binning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from neuronkit.interpretability import information
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


# --- vectorised binning and blocked KDE against the straightforward implementations ---------


def _bin_reference(
    x: np.ndarray,
    n_bins: int,
    strategy: str = "uniform",
    value_range: tuple[float, float] | None = None,
    zero_bin: bool = False,
) -> np.ndarray:
    """bin_activations one unit at a time (its earlier implementation), the oracle of the
    vectorised one."""
    arr = np.asarray(x).astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    n_free = n_bins - 1 if zero_bin else n_bins
    codes = np.zeros(arr.shape, dtype=np.int64)
    for u in range(arr.shape[1]):
        col = arr[:, u]
        mask = col != 0 if zero_bin else np.ones(col.shape, dtype=bool)
        vals = col[mask]
        if vals.size == 0:
            continue
        if strategy == "uniform":
            lo, hi = (
                (float(value_range[0]), float(value_range[1]))
                if value_range is not None
                else (float(vals.min()), float(vals.max()))
            )
            if hi <= lo:
                inner = np.zeros(vals.shape, dtype=np.int64)
            else:
                shift = -int(np.frexp(max(abs(lo), abs(hi)))[1])
                lo_s, hi_s = np.ldexp(lo, shift), np.ldexp(hi, shift)
                ratio = (np.ldexp(np.clip(vals, lo, hi), shift) - lo_s) / (hi_s - lo_s)
                inner = np.floor(ratio * n_free).astype(np.int64)
        else:
            edges = np.unique(np.quantile(vals, np.linspace(0.0, 1.0, n_free + 1)[1:-1]))
            inner = np.searchsorted(edges, vals, side="right").astype(np.int64)
        inner = np.clip(inner, 0, n_free - 1)
        codes[mask, u] = inner + (1 if zero_bin else 0)
    return codes


def _awkward_columns(rng: np.random.Generator, n: int) -> np.ndarray:
    """``[n, U]`` columns of every kind the binning must get right, side by side."""
    normal = rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3) + rng.normal(0, 5)
    relu = np.maximum(rng.normal(0.3, 1.0, size=n), 0.0)  # many tied zeros
    cols = [
        normal,
        relu,
        np.maximum(rng.normal(-0.5, 1.0, size=n), 0.0),  # mostly zeros
        rng.permutation(relu),  # as many non-zeros as relu (one np.quantile call for both)
        np.round(rng.normal(0, 1.5, size=n)),  # few values: repeated quantile edges
        rng.choice([-1.0, 2.0], size=n, p=[0.9, 0.1]),  # two values, one dominant
        np.full(n, 3.5),  # constant
        np.zeros(n),  # all zeros (zero_bin: no non-zero value at all)
        np.where(np.arange(n) == n // 2, 7.0, 0.0),  # a single non-zero value
        np.where(rng.random(n) < 0.5, -0.0, 0.0) + (rng.random(n) < 0.3),  # signed zeros
        rng.normal(size=n) * 1e300,  # huge
        rng.choice([-1e308, -1.0, 0.0, 1e-300, 1e308], size=n),  # width overflows float64
        rng.normal(size=n) * 1e-300 + rng.choice([0.0, 5e-324], size=n),  # tiny, subnormal
        rng.uniform(1e6, 1e6 + 1e-6, size=n),  # narrow range at a large offset
        -np.abs(rng.standard_cauchy(size=n)),  # heavy tail, all negative
    ]
    return np.stack(cols, axis=1)


def _bin_options(rng: np.random.Generator) -> list[dict]:
    lo = float(rng.normal())
    options: list[dict] = []
    for n_bins in (2, 3, 10, int(rng.integers(4, 40))):
        for zero_bin in (False, True):
            options.append(dict(n_bins=n_bins, strategy="quantile", zero_bin=zero_bin))
            for value_range in (None, (lo, lo + float(rng.uniform(0.01, 5))), (-1e308, 1e308)):
                options.append(
                    dict(
                        n_bins=n_bins,
                        strategy="uniform",
                        value_range=value_range,
                        zero_bin=zero_bin,
                    )
                )
    return options


@pytest.mark.parametrize("seed", range(8))
def test_bin_activations_equals_the_per_unit_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [1, 2, 5, 17, 200, 333, 64, 1000][seed]
    x = _awkward_columns(rng, n)
    x = x[:, rng.permutation(x.shape[1])]
    if seed % 3 == 2:
        x = np.clip(x, -3e38, 3e38).astype(np.float32)  # binned in float64 either way
    for opts in _bin_options(rng):
        with warnings.catch_warnings(record=True) as seen_ref:
            warnings.simplefilter("always")
            ref = _bin_reference(x, **opts)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = bin_activations(x, **opts)
        assert got.dtype == np.int64
        assert got.shape == x.shape
        np.testing.assert_array_equal(got, ref, err_msg=str(opts))
        # nothing beyond the reference's own warnings (np.quantile's overflow at 1e308)
        assert {str(w.message) for w in seen} <= {str(w.message) for w in seen_ref}, opts
        # each unit alone gives the same codes as in the whole layer
        for u in (0, x.shape[1] - 1):
            np.testing.assert_array_equal(bin_activations(x[:, u], **opts)[:, 0], got[:, u])


@pytest.mark.parametrize("seed", range(4))
def test_bin_activations_equals_the_reference_on_random_layers(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, units = int(rng.integers(50, 400)), int(rng.integers(1, 60))
    x = rng.normal(size=(n, units)) * rng.uniform(1e-2, 1e2, units) + rng.normal(0, 3, units)
    relu = np.maximum(x, 0.0)
    ties = np.round(x)
    for layer in (x, relu, ties, torch.as_tensor(relu, dtype=torch.float32)):
        ref_in = layer.numpy() if isinstance(layer, torch.Tensor) else layer
        for opts in (
            dict(n_bins=10),
            dict(n_bins=7, strategy="quantile"),
            dict(n_bins=10, strategy="quantile", zero_bin=True),
            dict(n_bins=5, zero_bin=True),
            dict(n_bins=30, value_range=(-1.0, 1.0)),
        ):
            np.testing.assert_array_equal(
                bin_activations(layer, **opts), _bin_reference(ref_in, **opts), err_msg=str(opts)
            )


def _log_mean_kernel_reference(h: np.ndarray, rows: np.ndarray, var: float) -> np.ndarray:
    """The whole ``[N, M]`` matrix at once (the unblocked implementation), the oracle of the
    blocked one."""
    ht = torch.from_numpy(np.ascontiguousarray(h))
    dist = torch.cdist(ht, ht[torch.from_numpy(rows)], compute_mode="donot_use_mm_for_euclid_dist")
    with np.errstate(over="ignore"):
        a = -(dist.numpy() ** 2) / (2.0 * var)
    amax = a.max(1, keepdims=True)
    return amax[:, 0] + np.log(np.exp(a - amax).mean(1))


@pytest.mark.parametrize("block_elements", [1, 7, 100, 999, 1 << 20])
def test_blocked_kde_kernel_equals_the_whole_matrix(monkeypatch, block_elements: int) -> None:
    rng = np.random.default_rng(block_elements)
    n = 157  # no block size above divides it: a short last block
    h = rng.normal(size=(n, 6))
    y = rng.integers(0, 4, n)
    unblocked = kde_information(h, y, noise_variance=0.2)
    monkeypatch.setattr(information, "_KDE_BLOCK_ELEMENTS", block_elements)
    subset = np.sort(rng.choice(n, size=40, replace=False))
    for scale in (1.0, 1e-3, 1e7, 1e160):
        # (at 1e160 a row outside the subset would have no finite kernel at all)
        for rows in (np.arange(n), subset) if scale < 1e100 else (np.arange(n),):
            got = information._log_mean_kernel(h * scale, rows, 0.2)
            ref = _log_mean_kernel_reference(h * scale, rows, 0.2)
            np.testing.assert_array_equal(got, ref)
    # far apart points: every kernel but the own one is exactly 0, d(h_i, h_i) = 0 exactly
    far = information._log_mean_kernel(h * 1e160, np.arange(n), 0.1)
    np.testing.assert_array_equal(far, np.full(n, np.log(1.0 / n)))
    assert kde_information(h, y, noise_variance=0.2) == unblocked


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("codes", ["dense", "with_gaps", "sparse_large"])
def test_mi_matrix_entries_equal_pairwise_mutual_information(
    codes: str, bias_correction: bool
) -> None:
    # the matrix counts occupied bins per unit from one-hot products, the scalar relabels the
    # codes and counts distinct values: the same plug-in MI and Miller-Madow correction
    rng = np.random.default_rng(11)
    a = rng.integers(0, 4, (40, 3))
    b = (a[:, :1] + rng.integers(0, 3, (40, 2))) % 4
    a = {"dense": a, "with_gaps": 3 * a, "sparse_large": a * 10**9 + 7}[codes]
    kw = {"bias_correction": bias_correction}
    between = mutual_information_matrix(a, b, **kw)
    within = mutual_information_matrix(a, **kw)
    for i in range(3):
        for j in range(2):
            want = mutual_information(a[:, i], b[:, j], **kw)
            assert between[i, j] == pytest.approx(want, rel=1e-12, abs=1e-12)
        for j in range(3):
            want = mutual_information(a[:, i], a[:, j], **kw)
            assert within[i, j] == pytest.approx(want, rel=1e-12, abs=1e-12)
    if bias_correction:  # the correction is applied and not everything is clipped to 0
        raw = mutual_information_matrix(a, b)
        assert (between < raw - 1e-3).all()
        assert (between > 0).any()
        assert np.all(np.diag(within) < entropy(a) - 1e-3)
