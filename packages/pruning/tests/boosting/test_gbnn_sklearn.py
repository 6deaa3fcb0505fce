"""scikit-learn's estimator contract (``check_estimator``) for the GBNN estimators."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from neuronkit.pruning.boosting import GBNNClassifier, GBNNRegressor


@pytest.mark.slow
@pytest.mark.parametrize("cls", [GBNNRegressor, GBNNClassifier])
def test_check_estimator(cls):
    est = cls(n_units=4, units_per_step=2, max_iter=20, random_state=0)
    with threadpool_limits(limits=1, user_api="blas"):
        results = check_estimator(est, on_fail=None)
    failed = {
        r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"
    }
    assert not failed, failed
    assert len(results) > 40
