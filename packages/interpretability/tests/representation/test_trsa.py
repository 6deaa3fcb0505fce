"""tRSA model selection: fast leave-one-out equals brute force; nested selection is honest."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.neighbors import NearestCentroid

from neuronkit.interpretability import (
    GeoTopological,
    geo_topological,
    geodesic,
    gt_grid,
    identification_accuracy,
    rank_transform,
    rdm,
    select_geo_topological,
)

# sklearn's NearestCentroid (the brute-force reference) warns about constant features
pytestmark = pytest.mark.filterwarnings("ignore:self.within_class_std_dev_:UserWarning")


def _design(
    seed: int = 0, n_groups: int = 6, n_labels: int = 4, n_pairs: int = 28, signal: float = 1.0
):
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_labels, n_pairs))
    rdms, labels, groups = [], [], []
    for g in range(n_groups):
        warp = rng.uniform(0.5, 2.0)  # subject-specific monotone distortion
        for lab in range(n_labels):
            rdms.append((signal * prototypes[lab] + 0.3 * rng.random(n_pairs)) ** warp)
            labels.append(lab)
            groups.append(g)
    return np.array(rdms), np.array(labels), np.array(groups)


def _brute_logo(x, labels, groups) -> float:
    correct = []
    for g in np.unique(groups):
        test = groups == g
        pred = NearestCentroid().fit(x[~test], labels[~test]).predict(x[test])
        correct.extend(pred == labels[test])
    return float(np.mean(correct))


def test_identification_accuracy_equals_sklearn_nearest_centroid() -> None:
    x, lab, grp = _design()
    assert identification_accuracy(x, lab, grp) == pytest.approx(_brute_logo(x, lab, grp))
    tx = GeoTopological(0.2, 0.7).transform(x)
    assert identification_accuracy(tx, lab, grp) == pytest.approx(_brute_logo(tx, lab, grp))


def test_nested_selection_equals_brute_force() -> None:
    x, lab, grp = _design(1, signal=0.4)
    grid = [(0.0, 1.0), (0.1, 0.5), (0.4, 0.6), (0.3, 0.9)]
    sel = select_geo_topological(x, lab, grp, grid=grid)
    transformed = {key: GeoTopological(*key).transform(x) for key in grid}
    correct = []
    for outer in np.unique(grp):
        train = grp != outer
        scores = [_brute_logo(transformed[k][train], lab[train], grp[train]) for k in grid]
        best = grid[int(np.argmax(scores))]
        assert sel.chosen[int(outer)] == best
        tx = transformed[best]
        pred = NearestCentroid().fit(tx[train], lab[train]).predict(tx[~train])
        correct.extend(pred == lab[~train])
    assert sel.accuracy == pytest.approx(np.mean(correct))
    for key in grid:
        assert sel.grid_accuracy[key] == pytest.approx(_brute_logo(transformed[key], lab, grp))


def test_rank_based_gt_is_robust_to_subject_specific_monotone_warps() -> None:
    x, lab, grp = _design(2)
    raw = identification_accuracy(x, lab, grp)
    ranked = identification_accuracy(GeoTopological(0.0, 1.0, rank=True).transform(x), lab, grp)
    assert ranked >= raw
    assert ranked > 0.9


def test_transformer_and_grid() -> None:
    x, _, _ = _design()
    np.testing.assert_allclose(
        GeoTopological(0.1, 0.8, rank=False).fit(x).transform(x), geo_topological(x, 0.1, 0.8)
    )
    assert GeoTopological(0.1, 0.8, geodesic=True).transform(x).shape == x.shape
    grid = gt_grid(0.5)
    assert grid == [(0.0, 0.5), (0.0, 1.0), (0.5, 0.5), (0.5, 1.0)]
    assert len(gt_grid(0.1)) == 64
    assert GeoTopological().get_params()["upper"] == 1.0


def test_stack_as_long_as_an_rdm_vector_is_a_stack() -> None:
    # 15 RDMs of 6 conditions: a square [15, 15] stack, never read as one square RDM
    rng = np.random.default_rng(0)
    x = np.stack([rdm(rng.normal(size=(6, 4))) for _ in range(15)])
    per_rdm = np.stack([geodesic(v, 0.1, 0.5, rank=True) for v in x])
    np.testing.assert_array_equal(GeoTopological(0.1, 0.5, geodesic=True).transform(x), per_rdm)
    labels, groups = np.repeat(np.arange(5), 3), np.tile(np.arange(3), 5)
    assert 0.0 <= select_geo_topological(x, labels, groups).accuracy <= 1.0


BAD = [
    (lambda x, lab, grp: identification_accuracy(x[0], lab, grp), ValueError, "rdms"),
    (lambda x, lab, grp: identification_accuracy(x, lab[:-1], grp), ValueError, "labels"),
    (lambda x, lab, grp: identification_accuracy(x, lab, grp[:-1]), ValueError, "groups"),
    (lambda x, lab, grp: identification_accuracy(x, lab, np.zeros_like(grp)), ValueError, "groups"),
    (lambda x, lab, grp: identification_accuracy(x * np.nan, lab, grp), ValueError, "finite"),
    (lambda x, lab, grp: select_geo_topological(x, lab, grp % 2), ValueError, "3 subjects"),
    (lambda x, lab, grp: select_geo_topological(x, lab, grp, grid=[]), ValueError, "grid"),
    (
        lambda x, lab, grp: select_geo_topological(x, lab, grp, grid=[(0.6, 0.2)]),
        ValueError,
        "lower",
    ),
    (lambda x, lab, grp: GeoTopological(0.5, 0.2).fit(x), ValueError, "lower"),
    (lambda x, lab, grp: GeoTopological().transform(x[0]), ValueError, "X"),
    (lambda x, lab, grp: gt_grid(0.0), ValueError, "step"),
    # rank_after: geodesic only, a bool
    (lambda x, lab, grp: GeoTopological(rank_after=True).fit(x), ValueError, "rank_after"),
    (lambda x, lab, grp: GeoTopological(rank_after=True).transform(x), ValueError, "geodesic"),
    (
        lambda x, lab, grp: GeoTopological(geodesic=True, rank_after=1).transform(x),
        TypeError,
        "rank_after",
    ),
    (
        lambda x, lab, grp: GeoTopological(geodesic=True, rank_after="yes").fit(x),
        TypeError,
        "rank_after",
    ),
    (
        lambda x, lab, grp: select_geo_topological(x, lab, grp, rank_after=True),
        ValueError,
        "rank_after",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_inputs(call, error, match) -> None:
    x, lab, grp = _design()
    with pytest.raises(error, match=match):
        call(x, lab, grp)


def test_identification_is_translation_invariant() -> None:
    rng = np.random.default_rng(0)
    groups, classes, pairs = 6, 3, 300
    labels = np.tile(np.arange(classes), groups)
    grp = np.repeat(np.arange(groups), classes)
    direction = rng.standard_normal((classes, pairs))
    x = 1e-6 * (rng.standard_normal((groups * classes, pairs)) + 3.0 * direction[labels])
    ref = identification_accuracy(x, labels, grp)
    assert ref == 1.0
    offset = 1e3 * rng.random(pairs)  # every RDM shares a large offset
    assert identification_accuracy(x + offset, labels, grp) == ref


def _reference_gt(v: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """GT(l, u) as the authors define it (doerlbh/TopologicalRSA utils_transform.gt_transform):
    average ranks, min-max, per-RDM np.quantile bounds, 0 below / linear / 1 above."""
    r = rankdata(v)
    d = (r - r.min()) / (r.max() - r.min())
    lo, hi = np.quantile(d, lower), np.quantile(d, upper)
    out = np.clip((d - lo) / (hi - lo), 0.0, 1.0) if hi > lo else (d > hi).astype(float)
    return out


@pytest.mark.parametrize(("lower", "upper"), [(0.0, 1.0), (0.2, 0.7), (0.4, 0.5), (0.5, 0.5)])
def test_rank_gt_matches_the_authors_definition_with_ties(lower, upper) -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.random((4, 45)), 1)  # many ties, as in clipped noisy RDMs
    ours = GeoTopological(lower, upper, rank=True).transform(x)
    for row, got in zip(x, ours, strict=True):
        np.testing.assert_allclose(got, _reference_gt(row, lower, upper), atol=1e-12)


# --- rank_after: the reference's final rank transform of the geodesic distances ---


def _reference_twostep_ranks(v: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """The authors' RGDM (doerlbh/TopologicalRSA ``geodesic_transform(gt_transform(v),
    gd_type="twostep")``, ``rank_transform_after=True``): GT of the ranked RDM, edges at GT = 1
    removed, all-pairs shortest paths (inf where unreachable), then average ranks, not rescaled.
    Written independently (plain Floyd-Warshall); zero-weight edges are kept, as in ours, and
    distances are rounded before ranking so that equal path sums tie whatever their order."""
    w = squareform(_reference_gt(v, lower, upper))
    w[w >= 1.0] = np.inf
    np.fill_diagonal(w, 0.0)
    for k in range(w.shape[0]):
        w = np.minimum(w, w[:, k, None] + w[None, k, :])
    return rankdata(np.round(squareform(w, checks=False), 9))


@pytest.mark.parametrize(
    ("lower", "upper"), [(0.0, 1.0), (0.0, 0.5), (0.1, 0.3), (0.0, 0.2), (0.2, 0.8)]
)
def test_rank_after_matches_the_reference_twostep_with_ties(lower, upper) -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.random((6, 45)), 1)  # 10 conditions, many ties
    before = x.copy()
    ours = GeoTopological(lower, upper, geodesic=True, rank_after=True).transform(x)
    np.testing.assert_array_equal(x, before)  # input not mutated
    assert ours.shape == x.shape
    assert ours.dtype == np.float64
    n_pairs = x.shape[1]
    assert ours.min() >= 1.0
    assert ours.max() <= n_pairs
    # ranks of the geodesic distances with unreachable pairs at infinity
    dist = geodesic(x, lower, upper, rank=True, disconnected=float("inf"))
    for row, got, ref_row in zip(dist, ours, x, strict=True):
        np.testing.assert_array_equal(got, rankdata(np.round(row, 9)))  # average ranks, ties
        np.testing.assert_allclose(got, _reference_twostep_ranks(ref_row, lower, upper))
        assert got.sum() == pytest.approx(n_pairs * (n_pairs + 1) / 2)  # a rank vector
    # where every pair is reachable, they are the ranks of the default output
    default = GeoTopological(lower, upper, geodesic=True).transform(x)
    for row, got, d in zip(dist, ours, default, strict=True):
        if np.isfinite(row).all():
            np.testing.assert_array_equal(got, rankdata(np.round(d, 9)))
    # scaled to [0, 1] when wanted: rank_transform of the output = min-max of the ranks
    scaled = rank_transform(ours)
    lo, hi = ours.min(axis=1, keepdims=True), ours.max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)  # an RDM of one tie maps to 0
    np.testing.assert_allclose(scaled, (ours - lo) / span, atol=1e-12)
    assert scaled.min() == 0.0
    assert scaled.max() <= 1.0


def test_rank_after_ranks_unreachable_pairs_above_reachable_ones() -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.random((6, 45)), 1)
    dist = geodesic(x, 0.0, 0.2, rank=True, disconnected=float("inf"))
    assert (~np.isfinite(dist)).any(axis=1).all()  # the case is exercised in every RDM
    ours = GeoTopological(0.0, 0.2, geodesic=True, rank_after=True).transform(x)
    for row, got in zip(dist, ours, strict=True):
        far = ~np.isfinite(row)
        assert got[far].min() > got[~far].max()
        np.testing.assert_allclose(got[far], got[far][0])  # one tie
    # the default keeps distances; the largest finite one stands in for "no path"
    default = GeoTopological(0.0, 0.2, geodesic=True).transform(x)
    assert np.isfinite(default).all()
    assert not np.array_equal(ours, default)


def test_rank_after_default_is_unchanged() -> None:
    x, _, _ = _design()
    before = x.copy()
    for rank in (True, False):
        expected = geodesic(x, 0.1, 0.6, rank=rank)
        for est in (
            GeoTopological(0.1, 0.6, rank=rank, geodesic=True),
            GeoTopological(0.1, 0.6, rank=rank, geodesic=True, rank_after=False),
        ):
            np.testing.assert_array_equal(est.transform(x), expected)
    np.testing.assert_array_equal(
        GeoTopological(0.1, 0.6).transform(x), geo_topological(x, 0.1, 0.6, rank=True)
    )
    np.testing.assert_array_equal(x, before)
    params = GeoTopological().get_params()
    assert params["rank_after"] is False
    assert clone(GeoTopological(geodesic=True, rank_after=True)).rank_after is True


def test_select_geo_topological_passes_rank_after_through() -> None:
    x, lab, grp = _design(1, signal=0.4)
    grid = [(0.0, 1.0), (0.1, 0.5)]
    sel = select_geo_topological(x, lab, grp, grid=grid, geodesic=True, rank_after=True)
    for key in grid:
        tx = GeoTopological(*key, geodesic=True, rank_after=True).transform(x)
        assert sel.grid_accuracy[key] == pytest.approx(_brute_logo(tx, lab, grp))


def test_rank_after_ties_do_not_depend_on_summation_order() -> None:
    from neuronkit.interpretability.representation.trsa import _tied_ranks

    a, b, c = 0.1, 0.2, 0.7
    v = np.array([(a + b) + c, a + (b + c), 0.5, np.inf, np.inf, 0.0])
    assert v[0] != v[1]  # one ULP apart
    np.testing.assert_array_equal(_tied_ranks(v), [3.5, 3.5, 2.0, 5.5, 5.5, 1.0])
    np.testing.assert_array_equal(_tied_ranks(np.full(3, np.inf)), [2.0, 2.0, 2.0])
    w = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(_tied_ranks(w), rankdata(w))


def test_stateless_transformer_ends_a_pipeline() -> None:
    # without fitted attributes check_is_fitted failed: a Pipeline ending in GeoTopological
    # raised NotFittedError in transform after fit
    from sklearn.pipeline import make_pipeline
    from sklearn.utils.validation import check_is_fitted

    x, _, _ = _design(n_groups=2)
    pipe = make_pipeline(GeoTopological(0.2, 0.8)).fit(x)
    np.testing.assert_array_equal(pipe.transform(x), GeoTopological(0.2, 0.8).transform(x))
    check_is_fitted(GeoTopological(0.2, 0.8))


def test_selection_checks_flags_grid_pairs_and_nan_labels_by_name() -> None:
    x, labels, groups = _design(n_groups=3, n_labels=2, n_pairs=6)
    for flag in ("no", 1):
        with pytest.raises(TypeError, match="rank must be a bool"):
            select_geo_topological(x, labels, groups, rank=flag)  # type: ignore[arg-type]
    for grid, err, match in (
        ([0.5], TypeError, r"grid\[0\] must be a \(lower, upper\) pair"),
        ([(0.1, 0.2, 0.3)], TypeError, r"grid\[0\] must be a \(lower, upper\) pair"),
        ((0.0, 1.0), TypeError, r"grid\[0\] must be a \(lower, upper\) pair"),
        ("ab", TypeError, "grid must be a sequence"),
        ([("a", "b")], TypeError, r"grid\[0\] lower must be a real number"),
        ([(0.0, 1.0), (0.5, 0.2)], ValueError, r"grid\[1\] must have lower <= upper"),
        ([(0.0, 1.5)], ValueError, r"grid\[0\] upper must be <= 1.0"),
    ):
        with pytest.raises(err, match=match):
            select_geo_topological(x, labels, groups, grid=grid)  # type: ignore[arg-type]
    grid = np.array([[0.0, 1.0], [0.1, 0.9]])  # an array of pairs is a grid too
    assert set(select_geo_topological(x, labels, groups, grid=grid).grid_accuracy) == {
        (0.0, 1.0),
        (0.1, 0.9),
    }
    with pytest.raises(ValueError, match="labels must not hold NaN"):
        select_geo_topological(x, np.full(len(labels), np.nan), groups)
    with pytest.raises(ValueError, match="groups must not hold NaN"):
        identification_accuracy(x, labels, np.where(groups == 0, np.nan, groups))
