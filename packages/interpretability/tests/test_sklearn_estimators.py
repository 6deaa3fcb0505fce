"""scikit-learn's estimator contract for the interpretability estimators: ``check_estimator``
(every check but the listed ones passes), and what the failing checks stood for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from neuronkit.interpretability.representation.convergent import SparsePrediction
from neuronkit.interpretability.representation.trsa import GeoTopological
from neuronkit.interpretability.visualization.facets import FacetClustering

_WORDING = "refused with a ValueError / TypeError naming the argument, in neuronkit's words"
# check name -> why it fails
EXEMPT = {
    "check_complex_data": _WORDING + " ('must be a real array')",
    "check_dtype_object": _WORDING + " (strings held as objects are not numbers)",
    "check_estimators_empty_data_messages": _WORDING + " (a zero-size shape)",
    "check_fit2d_1sample": _WORDING + " (too few rows for the statistics or clusters)",
    "check_fit2d_predict1d": _WORDING + " ('must be [N, units]')",
    "check_n_features_in_after_fitting": _WORDING + " ('X must have 4 units (as in fit)')",
}
FACETS = {
    **EXEMPT,
    "check_clustering": "the number of clusters is n_facets (the paper's k), which the check "
    "cannot set (it sets n_clusters), so 10 facets meet 3 blobs",
}
# GeoTopological reads a stack of RDM vectors: n_pairs = n (n - 1) / 2 columns for n >= 2
# conditions, which most of the checks' random matrices (2, 4 or 5 columns) are not
NOT_RDMS = "the check's X has a column count that is no RDM vector length n(n-1)/2"
RDMS = {
    **EXEMPT,
    **dict.fromkeys(
        [
            "check_estimators_overwrite_params",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_positive_only_tag_during_fit",
            "check_estimators_dtypes",
            "check_transformers_unfitted_stateless",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_n_features_in_after_fitting",
        ],
        NOT_RDMS,
    ),
    "check_estimator_sparse_tag": NOT_RDMS + " (its sparse matrix is refused by name first)",
    "check_estimator_sparse_array": NOT_RDMS,
    "check_estimator_sparse_matrix": NOT_RDMS,
}

ESTIMATORS = [
    (FacetClustering(), FACETS, 30),
    (SparsePrediction(), EXEMPT, 35),
    (GeoTopological(0.2, 0.8), RDMS, 20),
]


@pytest.mark.parametrize(
    ("estimator", "exempt", "passing"), ESTIMATORS, ids=[type(e).__name__ for e, *_ in ESTIMATORS]
)
def test_check_estimator(estimator, exempt: dict[str, str], passing: int) -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        results = check_estimator(estimator, on_fail=None)
    failed = {
        r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"
    }
    assert {k: v for k, v in failed.items() if k not in exempt} == {}
    assert len(results) - len(failed) > passing


def test_facet_clustering_embeds_one_feature_and_names_bad_arrays() -> None:
    x = np.concatenate([np.zeros(10), np.ones(10)])[:, None] + 0.01 * np.arange(20)[:, None]
    fitted = FacetClustering(2, n_nearest=3).fit(x)  # t-SNE's PCA start needs 2 dimensions
    assert fitted.n_features_in_ == 1
    assert sorted(np.bincount(fitted.labels_).tolist()) == [10, 10]
    assert fitted.labels_[:10].tolist() == [fitted.labels_[0]] * 10
    with pytest.raises(TypeError, match=r"^features must be a real array \[N, D\], got ndarray"):
        FacetClustering(2).fit(x + 1j)  # the imaginary part was dropped with a warning
    with pytest.raises(TypeError, match=r"^features must be a dense .*\(sparse input is not"):
        FacetClustering(2).fit(sparse.csr_matrix(x))


def test_sparse_prediction_fits_one_unit_and_predicts_one_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8))
    y = x[:, 0] - 2 * x[:, 1] + 0.1 * rng.standard_normal(200)
    one = SparsePrediction().fit(x, y)  # a [N] target was refused ('must be [N, units]')
    stacked = SparsePrediction().fit(x, y[:, None])
    assert one.predict(x).shape == (200,)
    np.testing.assert_array_equal(one.predict(x), stacked.predict(x)[:, 0])
    assert one.score(x, y) == stacked.score(x, y[:, None]) > 0.9
    assert one.n_nonzero_.tolist() == [2]
    np.testing.assert_array_equal(one.predict(x[:1]), one.predict(x)[:1])  # needed 2 samples
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):  # was a RuntimeError
        clone(one).predict(x)


def test_geo_topological_fit_reads_its_rdms() -> None:
    x = np.random.default_rng(0).random((4, 6))  # 4 RDMs of 4 conditions
    gt = GeoTopological(0.2, 0.8).fit(x)
    assert gt.n_features_in_ == 6
    for bad, err in (
        (np.full((4, 6), np.nan), ValueError),
        (x + 1j, TypeError),
        (x[:, :5], ValueError),
    ):
        with pytest.raises(err, match=r"^X must"):  # fit ignored X
            clone(gt).fit(bad)
    with pytest.raises(ValueError, match=r"^X must have 6 pairs per RDM \(as in fit\), got 10"):
        gt.transform(np.random.default_rng(1).random((2, 10)))
    fresh = GeoTopological(0.2, 0.8)  # stateless: transforms any RDMs before fit
    assert fresh.transform(x[:, :3]).shape == (4, 3)
    pipe = make_pipeline(GeoTopological(0.2, 0.8)).fit(x)
    np.testing.assert_array_equal(pipe.transform(x), gt.transform(x))
