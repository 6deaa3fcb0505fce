"""IPR, Otsu split, simplex ETF and neural-collapse metrics: values, invariances, bad inputs."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory import (
    class_means,
    fourier_ipr,
    inverse_participation_ratio,
    kernel_alignment,
    kernel_target_alignment,
    nc1,
    nc2,
    nc3,
    nc4,
    neural_collapse_metrics,
    relative_change,
    simplex_etf,
    split_threshold,
    within_class_variability,
)

K, D, PER = 5, 12, 8


def clustered(seed: int, noise: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(K, D, generator=g, dtype=torch.float64) * 2
    labels = torch.arange(K).repeat_interleave(PER)
    feats = centres[labels] + noise * torch.randn(K * PER, D, generator=g, dtype=torch.float64)
    weights = centres + 0.5 * torch.randn(K, D, generator=g, dtype=torch.float64)
    return feats, labels, weights


def rotation(seed: int, d: int = D) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


# --- IPR -------------------------------------------------------------------------------------


def test_ipr_of_one_hot_and_flat_vectors() -> None:
    assert float(inverse_participation_ratio(torch.tensor([0.0, 3.0, 0.0]))) == pytest.approx(1.0)
    flat = torch.ones(10)
    assert float(inverse_participation_ratio(flat)) == pytest.approx(10 ** (1 - 2))
    assert float(inverse_participation_ratio(flat, r=3)) == pytest.approx(10 ** (1 - 3))
    assert float(inverse_participation_ratio(torch.zeros(4))) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=30), st.floats(0.01, 100))
def test_ipr_is_scale_invariant_and_bounded(values: list[float], scale: float) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    ipr = float(inverse_participation_ratio(x))
    if float(x.abs().max()) > 1e-6:
        assert 1.0 / len(values) - 1e-9 <= ipr <= 1.0 + 1e-9
        assert float(inverse_participation_ratio(scale * x)) == pytest.approx(ipr, rel=1e-9)


def test_fourier_ipr_separates_sinusoids_from_noise() -> None:
    p = 41
    n = torch.arange(p, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * 5 * n / p + 0.3)
    assert float(fourier_ipr(wave)) == pytest.approx(1.0, abs=1e-9)
    noise = torch.randn(200, p, generator=torch.Generator().manual_seed(0))
    assert float(fourier_ipr(noise).mean()) < 0.25
    assert fourier_ipr(noise).shape == (200,)


def test_split_threshold_separates_two_modes() -> None:
    rng = np.random.default_rng(0)
    low, high = rng.normal(0.1, 0.03, 80), rng.normal(0.8, 0.05, 40)
    cut = split_threshold(np.concatenate([low, high]))
    assert low.max() < cut < high.min()


def test_split_threshold_is_scale_equivariant() -> None:
    # (mu0 - mu1)^2 overflowed (or underflowed) at every cut, so the first cut won: 0.5 s, not
    # 51 s, at s = 1e200 and 1e-200
    v = np.array([0.0, 1.0, 2.0, 100.0])
    for scale in (2.0**-1000, 2.0**-600, 1.0, 2.0**600, 2.0**1000):
        assert split_threshold(v * scale) == 51.0 * scale
    for scale in (1e-200, 1e100, 1e200):
        assert split_threshold(v * scale) == pytest.approx(51.0 * scale, rel=1e-15)
    assert split_threshold([1.7e308, 1.79e308]) == pytest.approx(1.745e308)  # the sum was inf


# --- ETF and metrics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "d", "seed"), [(2, None, None), (4, 3, None), (10, 32, 3), (6, 6, 1)]
)
def test_simplex_etf_geometry(k: int, d: int | None, seed: int | None) -> None:
    frame = simplex_etf(k, d, scale=2.0, seed=seed)
    assert frame.shape == (k, k - 1 if d is None else d)
    assert torch.allclose(frame.norm(dim=1), torch.full((k,), 2.0, dtype=torch.float64))
    assert torch.allclose(
        frame.sum(dim=0), torch.zeros(frame.shape[1], dtype=torch.float64), atol=1e-12
    )
    cos = (frame @ frame.T) / 4.0
    off = cos[~torch.eye(k, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1.0 / (k - 1)), atol=1e-12)


def test_metrics_vanish_at_exact_collapse() -> None:
    frame = simplex_etf(K, D, scale=3.0, seed=0)
    labels = torch.arange(K).repeat_interleave(PER)
    metrics = neural_collapse_metrics(frame[labels], labels, weights=0.7 * frame)
    assert max(metrics.values()) < 1e-10


def test_metrics_are_large_on_random_features() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(K).repeat_interleave(PER)
    feats = torch.randn(K * PER, D, generator=g)
    metrics = neural_collapse_metrics(feats, labels, weights=torch.randn(K, D, generator=g))
    assert min(metrics[k] for k in ("nc1", "nc2", "nc3", "nc4")) > 0.1


def test_nc1_matches_a_direct_numpy_computation() -> None:
    feats, labels, _ = clustered(1)
    h, y = feats.numpy(), labels.numpy()
    means = np.stack([h[y == c].mean(0) for c in range(K)])
    glob = means.mean(0)
    sw = sum(np.outer(x - means[c], x - means[c]) for x, c in zip(h, y)) / len(h)
    sb = (means - glob).T @ (means - glob) / K
    assert nc1(feats, labels) == pytest.approx(np.trace(sw @ np.linalg.pinv(sb)) / K, rel=1e-8)
    m, g = class_means(feats, labels)
    assert np.allclose(m.numpy(), means)
    assert np.allclose(g.numpy(), glob)


def _nc1_reference(h: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """The direct formula: per-sample Sigma_W (population, over all N samples), Sigma_B of the
    centred class means (over K), the [D, D] pseudo-inverse with torch's default cutoff."""
    h = h.to(torch.float64)
    means = torch.stack([h[y == c].mean(0) for c in range(k)])
    centred = h - means[y]
    sigma_w = centred.T @ centred / h.shape[0]
    mbar = means - means.mean(0)
    sigma_b = mbar.T @ mbar / k
    return float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / k)


def _nc1_case(kind: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    g = torch.Generator().manual_seed(len(kind))
    n, d, k = {"k2": (30, 7, 2), "d_below_k": (120, 3, 10), "d1": (24, 1, 4)}.get(kind, (90, 9, 6))
    y = torch.arange(n) % k
    if kind == "imbalanced":
        y = torch.cat([torch.arange(k), torch.randint(0, 2, (n - k,), generator=g)])
    if kind == "single_sample_class":  # class k - 1 holds one sample
        y = torch.cat([torch.tensor([k - 1]), torch.arange(n - 1) % (k - 1)])
    centres = 2 * torch.randn(k, d, generator=g, dtype=torch.float64)
    if kind.startswith("rank_deficient"):  # centred means span 2 of the D dimensions
        centres[:, 2:] = 0
        if kind.endswith("rotated"):
            centres = centres @ torch.linalg.qr(torch.randn(d, d, generator=g).double())[0]
    noise = {"collapsed": 0.0, "near_collapse": 1e-9}.get(kind, 1.0)
    return centres[y] + noise * torch.randn(n, d, generator=g, dtype=torch.float64), y, k


@pytest.mark.parametrize(
    "kind",
    [
        "plain",
        "k2",
        "d_below_k",
        "d1",
        "imbalanced",
        "single_sample_class",
        "collapsed",
        "near_collapse",
        "rank_deficient",
        "rank_deficient_rotated",
    ],
)
def test_nc1_matches_the_direct_pseudo_inverse_formula(kind: str) -> None:
    # nc1 works in the span of the class means (no [D, D] matrix); it must stay the same
    # Tr(Sigma_W Sigma_B^+) / K, weighting, pinv cutoff and degenerate cases included
    h, y, k = _nc1_case(kind)
    ref = _nc1_reference(h, y, k)
    got = nc1(h, y)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-30)
    assert neural_collapse_metrics(h, y)["nc1"] == got
    if kind == "collapsed":
        assert got < 1e-25


def test_nc4_counts_disagreements_with_nearest_centre() -> None:
    feats = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.1, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    agree = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    assert nc4(feats, labels, agree, bias=torch.tensor([2.5, -2.5])) == 0.0
    assert nc4(feats, labels, -agree) == 0.5


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 20.0), st.floats(-5, 5))
def test_metrics_are_invariant_to_rotation_scaling_translation(
    seed: int, scale: float, shift: float
) -> None:
    feats, labels, weights = clustered(seed % 50)
    q = rotation(seed)
    moved = scale * feats @ q.T + shift
    assert nc1(moved, labels) == pytest.approx(nc1(feats, labels), rel=1e-6)
    assert nc2(moved, labels) == pytest.approx(nc2(feats, labels), rel=1e-6, abs=1e-12)
    assert within_class_variability(moved, labels) == pytest.approx(
        within_class_variability(feats, labels), rel=1e-8
    )
    rotated = scale * feats @ q.T
    assert nc3(rotated, labels, 3.0 * weights @ q.T) == pytest.approx(
        nc3(feats, labels, weights), rel=1e-6, abs=1e-12
    )
    assert nc4(rotated, labels, weights @ q.T) == nc4(feats, labels, weights)


def test_metrics_accept_numpy_and_float32() -> None:
    feats, labels, weights = clustered(3)
    a = neural_collapse_metrics(feats.numpy().astype(np.float32), labels.numpy(), weights.numpy())
    b = neural_collapse_metrics(feats, labels, weights)
    assert a.keys() == b.keys() == {"nc1", "nc2", "nc2_equinorm", "nc2_equiangular", "nc3", "nc4"}
    assert a["nc1"] == pytest.approx(b["nc1"], rel=1e-4)


def test_collapse_tightens_as_noise_shrinks() -> None:
    values = [nc1(*clustered(0, noise)[:2]) for noise in (1.0, 0.3, 0.1, 0.01)]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: nc1(torch.zeros(5), torch.zeros(5, dtype=torch.long)), ValueError, "features"),
        (lambda: nc1(torch.zeros(4, 2), torch.tensor([0, 1, 0])), ValueError, "labels"),
        (lambda: nc1(torch.zeros(4, 2), torch.tensor([0, 2, 0, 2])), ValueError, "labels"),
        (lambda: nc1(torch.zeros(4, 2), torch.tensor([0, 0, 0, 0])), ValueError, "labels"),
        (lambda: nc1(torch.zeros(4, 2), torch.tensor([0.5, 1, 0, 1])), ValueError, "labels"),
        (
            lambda: nc1(torch.tensor([[0.0, math.nan]] * 4), torch.tensor([0, 1, 0, 1])),
            ValueError,
            "features",
        ),
        (
            lambda: nc1(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), num_classes=1),
            ValueError,
            "num_classes",
        ),
        (
            lambda: nc1(torch.zeros(4, 2), torch.tensor([0, 1, 0, 3]), num_classes=3),
            ValueError,
            "labels",
        ),
        (
            lambda: nc3(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), torch.zeros(3, 2)),
            ValueError,
            "weights",
        ),
        (
            lambda: nc4(
                torch.zeros(4, 2),
                torch.tensor([0, 1, 0, 1]),
                torch.zeros(2, 2),
                bias=torch.zeros(3),
            ),
            ValueError,
            "bias",
        ),
        (
            lambda: neural_collapse_metrics(
                torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), bias=torch.zeros(2)
            ),
            ValueError,
            "bias",
        ),
        (lambda: nc2("features", torch.tensor([0, 1])), TypeError, "features"),
        (lambda: simplex_etf(1), ValueError, "num_classes"),
        (lambda: simplex_etf(5, 3), ValueError, "dim"),
        (lambda: simplex_etf(5, scale=0.0), ValueError, "scale"),
        (lambda: inverse_participation_ratio(torch.ones(3), r=1.0), ValueError, "r"),
        (lambda: inverse_participation_ratio([1.0, 2.0]), TypeError, "x"),
        # a bool tensor failed inside torch.abs (NotImplementedError)
        (lambda: inverse_participation_ratio(torch.ones(3, dtype=torch.bool)), TypeError, "x"),
        # a string flag was read as True (any non-empty string centred the kernels)
        (
            lambda: kernel_alignment(torch.eye(2), torch.eye(2), centered="no"),
            TypeError,
            "centered",
        ),
        (
            lambda: kernel_target_alignment(torch.eye(2), torch.ones(2), centered="no"),
            TypeError,
            "centered",
        ),
        (lambda: fourier_ipr(torch.ones(1)), ValueError, "w"),
        (lambda: split_threshold([1.0]), ValueError, "values"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    with pytest.raises(exc, match=rf"^{name} "):
        call()


def test_ipr_of_tiny_and_huge_vectors() -> None:
    v = torch.tensor([3.0, 4.0, 0.0, 1.0], dtype=torch.float64)
    ref = float(inverse_participation_ratio(v))
    for scale in (1e-170, 1e155):  # squares would underflow / overflow
        assert float(inverse_participation_ratio(v * scale)) == pytest.approx(ref, rel=1e-12)


# --- audit fixes: non-finite input, bad dim, coincident class means, zero classifier ----------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_ipr_rejects_non_finite_input(bad: float) -> None:
    # NaN / inf used to read as an all-zero vector (IPR 0.0)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        inverse_participation_ratio(torch.tensor([1.0, bad]))
    with pytest.raises(ValueError, match=r"^w must be finite"):
        fourier_ipr(torch.tensor([1.0, bad, 2.0]))


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: inverse_participation_ratio(torch.rand(3), dim=2), ValueError, "dim"),
        (lambda: inverse_participation_ratio(torch.rand(3, 4), dim=True), TypeError, "dim"),
        (lambda: inverse_participation_ratio(torch.rand(3, 0)), ValueError, "x"),
        (lambda: fourier_ipr(torch.rand(3), dim=3), ValueError, "dim"),
        (lambda: fourier_ipr(torch.rand(3), dim=1.0), TypeError, "dim"),
    ],
)
def test_ipr_bad_dim_names_the_argument(call, exc: type, name: str) -> None:
    with pytest.raises(exc, match=rf"^{name} "):
        call()


def test_ipr_accepts_every_valid_dim() -> None:
    x = torch.rand(3, 5, dtype=torch.float64)
    assert torch.equal(inverse_participation_ratio(x, dim=0), inverse_participation_ratio(x.T))
    assert torch.equal(fourier_ipr(x, dim=-2), fourier_ipr(x.T, dim=1))


def test_coincident_class_means_raise_instead_of_perfect_collapse() -> None:
    # Sigma_B = 0: pinv(0) = 0 made NC1 read 0 (perfect collapse) and NC2's parts 0
    h = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    y = torch.tensor([0, 0, 1, 1])
    for call in (
        lambda: nc1(h, y),
        lambda: nc2(h, y),
        lambda: nc3(h, y, torch.ones(2, 1)),
        lambda: neural_collapse_metrics(h, y),
        lambda: neural_collapse_metrics(h, y, weights=torch.ones(2, 1)),
    ):
        with pytest.raises(ValueError, match=r"^features must separate the classes"):
            call()
    # equal means that are not zero, up to rounding of the means
    shifted = torch.tensor([[0.1, 0.3], [0.7, 0.2], [0.7, 0.2], [0.1, 0.3]], dtype=torch.float64)
    with pytest.raises(ValueError, match="features"):
        nc1(shifted + 1e3, y)
    # separated means are still measured
    assert nc1(h + torch.tensor([[0.0], [0.0], [5.0], [5.0]]), y) > 0.0


def test_nc3_rejects_an_all_zero_classifier() -> None:
    feats, labels, _ = clustered(0)
    with pytest.raises(ValueError, match=r"^weights must not be all zeros"):
        nc3(feats, labels, torch.zeros(K, D))
    with pytest.raises(ValueError, match=r"^weights "):
        neural_collapse_metrics(feats, labels, weights=torch.zeros(K, D))


def test_nc2_is_scale_free_down_to_tiny_features() -> None:
    feats, labels, _ = clustered(2)
    ref = neural_collapse_metrics(feats, labels)
    tiny = neural_collapse_metrics(feats * 1e-170, labels)  # the Gram matrix would underflow
    for key in ("nc2", "nc2_equinorm", "nc2_equiangular"):
        assert tiny[key] == pytest.approx(ref[key], rel=1e-9)


def test_collapse_metrics_do_not_depend_on_the_feature_scale() -> None:
    # NC1 read 0.0 ("perfect collapse") and NC3 inf for features of size 1e-170 (underflow)
    torch.manual_seed(0)
    h = torch.randn(30, 4, dtype=torch.float64)
    y = torch.arange(30) % 3
    w = torch.randn(3, 4, dtype=torch.float64)
    ref = neural_collapse_metrics(h, y, w)
    for scale in (1e-170, 1e150):
        tiny = neural_collapse_metrics(h * scale, y, w, torch.zeros(3))
        for key, value in ref.items():
            assert tiny[key] == pytest.approx(value, rel=1e-9), key
    assert nc1(h * 1e-170, y) == pytest.approx(ref["nc1"], rel=1e-9)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300])
def test_scale_free_measures_survive_extreme_scales(scale: float) -> None:
    # squares of huge entries overflowed: NaN (inf / inf) or 0.0 (finite / inf)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    h = torch.randn(4, 6, generator=g, dtype=torch.float64)[y]
    h = h + 0.3 * torch.randn(40, 6, generator=g, dtype=torch.float64)
    k1, k2 = h @ h.T / 10, torch.exp(-torch.cdist(h, h))
    t = torch.randn(40, generator=g, dtype=torch.float64)
    pairs = [
        (within_class_variability(h * scale, y), within_class_variability(h, y)),
        (kernel_alignment(k1 * scale, k2 * scale), kernel_alignment(k1, k2)),
        (kernel_alignment(k1 * scale, k2, centered=True), kernel_alignment(k1, k2, centered=True)),
        (kernel_target_alignment(k1 * scale, t), kernel_target_alignment(k1, t)),
        (kernel_target_alignment(k1, t * scale), kernel_target_alignment(k1, t)),
        (relative_change(h * 2 * scale, h * scale), relative_change(h * 2, h)),
    ]
    for got, want in pairs:
        assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
def test_nc3_does_not_depend_on_the_weight_scale(scale: float) -> None:
    # only the features were rescaled: weights of size 1e200 gave ||W||_F = inf and NC3 = 1.0,
    # weights of size 1e-200 ||W||_F = 0 and a false "all zeros"
    feats, labels, weights = clustered(4)
    ref = nc3(feats, labels, weights)
    assert ref > 0.01
    assert nc3(feats, labels, weights * scale) == pytest.approx(ref, rel=1e-12)
    assert nc3(feats * scale, labels, weights * scale) == pytest.approx(ref, rel=1e-12)
    both = neural_collapse_metrics(feats, labels, weights * scale)
    assert both["nc3"] == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_neural_collapse_metrics_equal_the_separate_nc1_to_nc4(seed: int) -> None:
    feats, labels, weights = clustered(seed, noise=1.5)
    bias = 3 * torch.randn(K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    both = neural_collapse_metrics(feats, labels, weights, bias)
    assert both["nc1"] == pytest.approx(nc1(feats, labels), rel=1e-12)
    assert both["nc2"] == pytest.approx(nc2(feats, labels), rel=1e-12)
    assert both["nc3"] == pytest.approx(nc3(feats, labels, weights), rel=1e-12)
    assert both["nc4"] == nc4(feats, labels, weights, bias)
    assert 0 < both["nc4"] != nc4(feats, labels, weights)  # the bias reaches NC4


@pytest.mark.parametrize("c", [0.1, 0.3, 0.7, 1.0 / 3.0, 0.0])
@pytest.mark.parametrize("n", [3, 5, 7, 10])
def test_within_class_variability_of_identical_samples_raises(n: int, c: float) -> None:
    # Tr(Sigma_T) = 0: the share is 0/0 (it read 0.0, or 0.43 from rounding noise for n = 7)
    labels = torch.arange(n) % 2
    with pytest.raises(ValueError, match="features must vary"):
        within_class_variability(torch.full((n, 2), c, dtype=torch.float64), labels)
