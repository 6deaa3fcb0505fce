"""scikit-learn's estimator contract for the theory estimators: ``check_estimator`` (every check
but the listed ones passes), labels of any kind, array in / array out, not-fitted errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.linalg import LinAlgWarning
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from neuronkit.theory.bandlimited import BandlimitedRandomNet
from neuronkit.theory.collapse import VicinityCollapse
from neuronkit.theory.ntk import (
    DeepNTKClassifier,
    InfiniteDepthNTKClassifier,
    erf_dual,
    relu_dual,
    sphere_kernel,
)

_WORDING = "refused with a ValueError / TypeError naming the argument, in neuronkit's words"
# check name -> why it fails (every estimator may fail these, and only these)
EXEMPT = {
    "check_n_features_in_after_fitting": _WORDING + " ('x must have 4 columns, got 3')",
    "check_complex_data": _WORDING + " ('must be a real tensor or array')",
    "check_dtype_object": _WORDING + " (strings held as objects are not numbers)",
    "check_estimators_empty_data_messages": _WORDING + " (a zero-size shape)",
    "check_fit2d_1sample": _WORDING + " ('y must contain at least 2 classes')",
    "check_fit2d_predict1d": _WORDING + " ('must have 2 dimensions')",
    "check_requires_y_none": _WORDING + " ('y must hold integer class labels')",
    "check_supervised_y_2d": "a [N, 1] y is refused by name, not raveled with a warning",
    "check_do_not_raise_errors_in_init_or_set_params": (
        "arguments are validated at construction (set_params rebuilds through __init__), so a "
        "bad one fails at once rather than at fit"
    ),
}
# the NTK classifiers project every row to the unit sphere: a zero row has no direction
SPHERE = {"check_estimators_dtypes": "a zero row has no direction on the sphere"}

ESTIMATORS = [
    (VicinityCollapse(), EXEMPT),
    (BandlimitedRandomNet(200, 1.0, seed=0), EXEMPT),
    (DeepNTKClassifier(relu_dual(), depth=3, ridge=1e-3), {**EXEMPT, **SPHERE}),
    (InfiniteDepthNTKClassifier(erf_dual()), {**EXEMPT, **SPHERE}),
]


@pytest.mark.parametrize(
    ("estimator", "exempt"), ESTIMATORS, ids=[type(e).__name__ for e, _ in ESTIMATORS]
)
def test_check_estimator(estimator, exempt: dict[str, str]) -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        results = check_estimator(estimator, on_fail=None)
    failed = {
        r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"
    }
    assert {k: v for k, v in failed.items() if k not in exempt} == {}
    assert len(results) - len(failed) > 40


def _blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.5, 0.0], [-0.5, 2.0, 0.5], [0.0, -1.0, 2.0]])
    y = np.arange(n) % 3
    return centers[y] + 0.3 * rng.standard_normal((n, 3)), y


CLASSIFIERS = [
    VicinityCollapse(max_steps=200),
    DeepNTKClassifier(relu_dual(), depth=3),
    InfiniteDepthNTKClassifier(erf_dual()),
]


@pytest.mark.parametrize("clf", CLASSIFIERS, ids=lambda c: type(c).__name__)
def test_labels_of_any_kind_come_back_in_kind(clf) -> None:
    x, y = _blobs()
    ints = clone(clf).fit(x, y)
    for labels in (np.array(["cat", "dog", "eel"])[y], y == 1, 10 * y - 5):
        fitted = clone(clf).fit(x, labels)
        assert fitted.classes_.tolist() == sorted(set(labels.tolist()))
        pred = fitted.predict(x)
        assert isinstance(pred, np.ndarray)
        assert pred.dtype.kind == labels.dtype.kind
        if labels.dtype.kind != "b":  # the same partition: a relabeling of the integer fit
            assert np.array_equal(pred, np.asarray(labels)[np.searchsorted(y, ints.predict(x))])
        assert fitted.score(x, labels) == np.mean(pred == labels)
    # a tensor in, a tensor out (integer labels; classes_ a tensor either way)
    tensor = clone(clf).fit(torch.as_tensor(x), torch.as_tensor(y)).predict(torch.as_tensor(x))
    assert isinstance(tensor, torch.Tensor)
    assert tensor.tolist() == ints.predict(x).tolist()
    assert isinstance(ints.predict(x), np.ndarray)


@pytest.mark.parametrize("clf", CLASSIFIERS, ids=lambda c: type(c).__name__)
def test_classifiers_name_bad_labels_and_inputs(clf) -> None:
    x, y = _blobs()
    for value in (np.inf, np.nan, 1e30):  # inf was read as the label -2^63, a class of its own
        bad = y.astype(float)
        bad[0] = value
        with pytest.raises(ValueError, match=r"^y must hold integer class labels, got continu"):
            clone(clf).fit(x, bad)
    with pytest.raises(TypeError, match=r"^y must hold labels of one sortable kind"):
        clone(clf).fit(x, np.array(["a", None] * 30, dtype=object))
    with pytest.raises(NotFittedError, match="not fitted yet: call fit before"):
        clone(clf).predict(x)  # was a bare RuntimeError (still one too)
    with pytest.raises(RuntimeError):
        clone(clf).predict(x)
    name = "X" if isinstance(clf, VicinityCollapse) else "x"
    with pytest.raises(TypeError, match=rf"^{name} must be a dense .* \(sparse input is not"):
        clone(clf).fit(sparse.csr_matrix(x), y)
    for shape in [(0, 3), (12, 0)]:  # the infinite-depth fit took no samples, Vicinity no features
        with pytest.raises(ValueError, match=f"^{name} must (hold|have) at least one"):
            clone(clf).fit(np.zeros(shape), y[: shape[0]])
    fitted = clone(clf).fit(x.astype(object), y)  # numbers held as objects are numbers
    assert fitted.n_features_in_ == 3
    assert fitted.score(x, y) == clone(clf).fit(x, y).score(x, y)


def test_interpolation_warns_of_a_kernel_it_cannot_solve() -> None:
    # erf at depth 3 on 300 points of a circle: condition number > 1e15, so the solve returned
    # finite coefficients that missed the targets by 18x-25x their norm, depending on the BLAS
    # (training accuracy 0.64)
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 300)
    x, y = np.stack([np.cos(angles), np.sin(angles)], 1), (angles // (2 * np.pi / 3)).astype(int)
    assert float(torch.linalg.cond(sphere_kernel(x, None, 3, erf_dual()))) > 1e15
    with pytest.warns(LinAlgWarning, match=r"too ill-conditioned .* relative residual of \d\d"):
        clf = DeepNTKClassifier(erf_dual(), depth=3).fit(x, y)
    assert clf.fit_residual_ > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ridge makes the system well-conditioned
        ridge = DeepNTKClassifier(erf_dual(), depth=3, ridge=1e-6).fit(x, y)
    assert ridge.fit_residual_ < 1e-6
    assert ridge.score(x, y) > 0.9


def test_binary_decision_function_is_one_score_per_sample() -> None:
    x, y = _blobs()
    two = y < 2
    clf = DeepNTKClassifier(relu_dual(), depth=3).fit(x[two], y[two])
    dec = clf.decision_function(x[two])
    assert dec.shape == (int(two.sum()),)  # scikit-learn's binary convention: > 0 is classes_[1]
    assert np.array_equal(clf.predict(x[two]), np.where(dec > 0, 1, 0))
    assert clf.decision_function(x).shape == (60,)
    assert DeepNTKClassifier(relu_dual(), depth=3).fit(x, y).decision_function(x).shape == (60, 3)


def test_regressor_returns_the_kind_of_its_input() -> None:
    x, y = _blobs()
    target = x @ np.array([1.0, -2.0, 0.5])
    net = BandlimitedRandomNet(100, 1.0, seed=0).fit(x, target)
    assert isinstance(net.predict(x), np.ndarray)
    assert isinstance(net.features(x), np.ndarray)
    tensor = net.predict(torch.as_tensor(x))
    assert isinstance(tensor, torch.Tensor)
    assert np.array_equal(tensor.numpy(), net.predict(x))
    assert net.score(x, target) > 0.9
    with pytest.raises(ValueError, match=r"^x must hold at least one sample and one feature"):
        BandlimitedRandomNet(10, 1.0).fit(np.zeros((5, 0)), np.zeros(5))  # named 'dim' before
    assert cross_val_score(BandlimitedRandomNet(100, 1.0, seed=0), x, target, cv=3).min() > 0.8
    assert cross_val_score(CLASSIFIERS[1], x, y, cv=3).min() > 0.9
