"""tRSA model selection: fast leave-one-out equals brute force; nested selection is honest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestCentroid

from neuronkit.interpretability import (
    GeoTopological,
    geo_topological,
    gt_grid,
    identification_accuracy,
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
    from scipy.stats import rankdata

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
