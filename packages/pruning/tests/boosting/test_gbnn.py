"""Tests of neuronkit.pruning.boosting.gbnn (GBNN, Emami & Martínez-Muñoz 2023)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from neuronkit.pruning.boosting import GBNNClassifier, GBNNRegressor
from neuronkit.pruning.boosting.gbnn import fit_hidden_block


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny matrices: one BLAS thread avoids oversubscription on a shared CPU."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _regression(n: int = 120, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n) + 3.0
    return X, y


def _classification(n: int = 150, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = 6.0 * np.stack(
        [np.cos(2 * np.pi * np.arange(k) / k), np.sin(2 * np.pi * np.arange(k) / k)], axis=1
    )
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, 2))
    return X, y


def _small(cls, **kw):
    params = dict(n_units=8, units_per_step=2, max_iter=30, random_state=0)
    params.update(kw)
    return cls(**params)


def test_initial_constant_minimizes_loss():
    X, y = _regression()
    assert np.allclose(_small(GBNNRegressor).fit(X, y).init_, y.mean())
    Xc, yc = _classification(k=3)
    prior = np.bincount(yc) / len(yc)
    clf = _small(GBNNClassifier).fit(Xc, yc)
    assert np.allclose(clf.init_, np.log(prior))
    yb = (yc > 0).astype(int)
    p = yb.mean()
    assert np.allclose(_small(GBNNClassifier).fit(Xc, yb).init_, np.log(p / (1 - p)))
    # zero units kept: only the constant is left
    assert np.allclose(clf.predict_proba(Xc, units=0), prior)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_to_torch_matches_predict(activation):
    X, y = _regression()
    reg = _small(GBNNRegressor, activation=activation).fit(X, y)
    net = reg.to_torch()
    assert isinstance(net, torch.nn.Sequential)
    assert net[0].out_features == reg.n_units_ == 8
    with torch.no_grad():
        out = net(torch.as_tensor(X)).numpy()[:, 0]
    np.testing.assert_allclose(out, reg.predict(X), atol=1e-6, rtol=0)
    Xc, yc = _classification()
    clf = _small(GBNNClassifier, activation=activation).fit(Xc, yc)
    with torch.no_grad():
        logits = clf.to_torch()(torch.as_tensor(Xc)).numpy()
    np.testing.assert_allclose(logits, clf.decision_function(Xc), atol=1e-6, rtol=0)
    # a subset exports a physically smaller network with the same outputs
    keep = [0, 3, 5]
    sub = clf.to_torch(units=keep)
    assert sub[0].out_features == 3
    with torch.no_grad():
        sub_out = sub(torch.as_tensor(Xc)).numpy()
    np.testing.assert_allclose(sub_out, clf.decision_function(Xc, units=keep), atol=1e-6)


def test_staged_equivalence_of_switching_off_last_units():
    """Keeping the first k*J units equals the boosting ensemble after k steps."""
    X, y = _regression()
    full = _small(GBNNRegressor, n_units=8, units_per_step=2).fit(X, y)
    for k in range(5):
        pred = full.predict(X, units=2 * k)
        manual = full.init_[0] + np.zeros(len(X))
        for t in range(k):
            sl = slice(2 * t, 2 * t + 2)
            h = 1 / (1 + np.exp(-(X @ full.hidden_weights_[:, sl] + full.hidden_biases_[sl])))
            manual += h @ full.output_weights_[sl, 0] + full.step_biases_[t, 0]
        np.testing.assert_allclose(pred, manual, atol=1e-10)
    # training loss after the last step equals the full model's training MSE
    assert np.isclose(full.train_loss_[-1], np.mean((full.predict(X) - y) ** 2))
    # n_active_units is the default of `units`
    np.testing.assert_allclose(
        clone(full).set_params(n_active_units=4).fit(X, y).predict(X), full.predict(X, units=4)
    )


def test_boosting_reduces_training_loss_and_fits():
    X, y = _regression(n=200)
    reg = GBNNRegressor(
        n_units=20, units_per_step=2, learning_rate=0.5, subsample=1.0, max_iter=50, random_state=0
    ).fit(X, y)
    assert reg.train_loss_[-1] < 0.5 * np.var(y)
    assert reg.score(X, y) > 0.7
    Xc, yc = _classification(n=200)
    clf = GBNNClassifier(n_units=12, units_per_step=3, max_iter=50, random_state=0).fit(Xc, yc)
    assert clf.train_loss_[-1] < clf.train_loss_[0]
    assert clf.score(Xc, yc) > 0.95
    assert clf.score(Xc, yc) > clf.score(Xc, yc, units=0) + 0.5
    proba = clf.predict_proba(Xc)
    assert proba.shape == (200, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_regressor_is_equivariant_to_the_targets_units(scale):
    X, y = _regression(n=100)
    Y = np.c_[y, 1e-3 * X[:, 2]]  # outputs of different scales
    ref = _small(GBNNRegressor).fit(X, Y)
    reg = _small(GBNNRegressor).fit(X, Y * scale)
    np.testing.assert_allclose(reg.predict(X), ref.predict(X) * scale, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(reg.train_loss_, ref.train_loss_ * scale**2, rtol=1e-6)
    assert ref.score(X, Y) > 0.7
    # the loss is the mean squared error in the targets' units
    np.testing.assert_allclose(reg.train_loss_[-1], np.mean((reg.predict(X) - Y * scale) ** 2))


def test_binary_labels_and_newton_step():
    Xc, yc = _classification(k=2)
    labels = np.where(yc == 1, "yes", "no")
    clf = _small(GBNNClassifier).fit(Xc, labels)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.decision_function(Xc).shape == (len(Xc),)
    assert set(clf.predict(Xc)) <= {"no", "yes"}
    assert clf.score(Xc, labels) > 0.8


def test_determinism_and_no_input_mutation():
    X, y = _regression()
    X0, y0 = X.copy(), y.copy()
    a = _small(GBNNRegressor, random_state=3).fit(X, y).predict(X)
    b = _small(GBNNRegressor, random_state=3).fit(X, y).predict(X)
    c = _small(GBNNRegressor, random_state=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_tensors_in_an_autograd_graph_fit_like_their_arrays():
    """A tensor that requires grad failed inside scikit-learn with "Can't call numpy() on
    Tensor that requires grad"."""
    X, y = _regression()
    Xt = torch.tensor(X, requires_grad=True)
    yt = torch.tensor(y, requires_grad=True)
    ref = _small(GBNNRegressor, random_state=3).fit(X, y)
    reg = _small(GBNNRegressor, random_state=3).fit(Xt, yt)
    np.testing.assert_array_equal(reg.predict(Xt), ref.predict(X))
    labels = (X[:, 0] > 0).astype(np.int64)
    clf = _small(GBNNClassifier, random_state=3).fit(Xt, torch.tensor(labels))
    ref_clf = _small(GBNNClassifier, random_state=3).fit(X, labels)
    np.testing.assert_array_equal(clf.decision_function(Xt), ref_clf.decision_function(X))
    assert Xt.grad is None


def test_fit_hidden_block_gradient_and_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    W = rng.normal(size=(3, 2))
    R = np.tanh(X @ W) @ rng.normal(size=(2, 2)) + 0.3
    w1, b1, w2, b2 = fit_hidden_block(X, R, 4, activation="tanh", max_iter=500, alpha=0.0)
    err = np.mean((np.tanh(X @ w1 + b1) @ w2 + b2 - R) ** 2)
    assert err < 1e-3 * np.var(R)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_fit_hidden_block_initialisation_is_sklearns(activation, monkeypatch):
    """The start point is scikit-learn's MLP initialisation (the authors fit MLPRegressor):
    U(-b, b) with b = sqrt(2 / (fan_in + fan_out)) for logistic, sqrt(6 / ...) otherwise."""
    import neuronkit.pruning.boosting.gbnn as gbnn_mod

    seen = {}
    real_minimize = gbnn_mod.minimize

    def spy(fun, x0, **kw):
        seen["x0"] = np.array(x0, copy=True)
        return real_minimize(fun, x0, **kw)

    monkeypatch.setattr(gbnn_mod, "minimize", spy)
    d, J, K = 40, 60, 3
    X = np.random.default_rng(0).normal(size=(20, d))
    fit_hidden_block(X, np.zeros((20, K)), J, activation=activation, max_iter=1)
    factor = 2.0 if activation == "logistic" else 6.0
    theta = seen["x0"]
    w1, b1 = theta[: d * J], theta[d * J : d * J + J]
    w2, b2 = theta[d * J + J : d * J + J + J * K], theta[d * J + J + J * K :]
    for block, bound in ((w1, np.sqrt(factor / (d + J))), (w2, np.sqrt(factor / (J + K)))):
        assert np.abs(block).max() <= bound
        assert np.abs(block).max() > 0.9 * bound  # uniform over the whole range
    assert np.abs(b1).max() <= np.sqrt(factor / (d + J))
    assert np.abs(b2).max() <= np.sqrt(factor / (J + K))


def _reference_fit_hidden_block(X, R, J, activation, alpha, max_iter, seed):
    """The plain formulation of one GBNN step's fit (np.split / np.sum / np.concatenate)."""
    from scipy.optimize import minimize

    from neuronkit.pruning.boosting.gbnn import _activate, _activate_grad

    n, d = X.shape
    K = R.shape[1]
    gen = np.random.default_rng(seed)
    factor = 2.0 if activation == "logistic" else 6.0
    sizes = [(d, J), (J,), (J, K), (K,)]
    bounds = [np.sqrt(factor / (d + J))] * 2 + [np.sqrt(factor / (J + K))] * 2
    theta0 = np.concatenate(
        [gen.uniform(-b, b, size=sz).ravel() for sz, b in zip(sizes, bounds, strict=True)]
    )
    cuts = np.cumsum([int(np.prod(sz)) for sz in sizes])[:-1]

    def unpack(theta):
        return [p.reshape(sz) for p, sz in zip(np.split(theta, cuts), sizes, strict=True)]

    def objective(theta):
        W1, b1, W2, b2 = unpack(theta)
        Z = X @ W1 + b1
        A = _activate(Z, activation)
        E = A @ W2 + b2 - R
        loss = 0.5 * (np.sum(E * E) + alpha * (np.sum(W1 * W1) + np.sum(W2 * W2))) / n
        gW2 = (A.T @ E + alpha * W2) / n
        gb2 = E.sum(axis=0) / n
        D = (E @ W2.T) * _activate_grad(A, Z, activation)
        gW1 = (X.T @ D + alpha * W1) / n
        gb1 = D.sum(axis=0) / n
        return float(loss), np.concatenate([gW1.ravel(), gb1, gW2.ravel(), gb2])

    opts = {"maxiter": max_iter, "gtol": 0.0, "maxfun": 15000}
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options=opts)
    return unpack(res.x)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu", "identity"])
@pytest.mark.parametrize("K", [1, 3])
def test_fit_hidden_block_matches_plain_formulation_bitwise(activation, K):
    """The overhead-free objective does the same arithmetic as the plain formulation."""
    rng = np.random.default_rng(K)
    X = rng.normal(size=(37, 5))
    R = rng.normal(size=(37, K))
    got = fit_hidden_block(X, R, 3, activation=activation, alpha=0.3, max_iter=40, seed=7)
    want = _reference_fit_hidden_block(X, R, 3, activation, 0.3, 40, 7)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_unit_mask_forms():
    X, y = _regression()
    reg = _small(GBNNRegressor).fit(X, y)
    assert reg.unit_mask().all()
    assert reg.unit_mask(3).tolist() == [True] * 3 + [False] * 5
    assert reg.unit_mask([7, 0]).tolist() == [True] + [False] * 6 + [True]
    mask = np.zeros(8, dtype=bool)
    mask[2] = True
    assert reg.unit_mask(mask).tolist() == mask.tolist()
    with pytest.raises(ValueError, match="units"):
        reg.unit_mask(9)
    with pytest.raises(ValueError, match="units"):
        reg.unit_mask([8])
    with pytest.raises(ValueError, match="units"):
        reg.unit_mask(np.ones(3, dtype=bool))
    with pytest.raises(TypeError, match="units"):
        reg.unit_mask(2.5)


@pytest.mark.parametrize(
    ("params", "exc", "word"),
    [
        ({"n_units": 0}, ValueError, "n_units"),
        ({"units_per_step": 20}, ValueError, "units_per_step"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
        ({"subsample": 1.5}, ValueError, "subsample"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"n_active_units": -1}, ValueError, "n_active_units"),
        ({"n_active_units": 10**6}, ValueError, "n_active_units"),
        ({"max_iter": 2.5}, ValueError, "max_iter"),
    ],
)
def test_bad_parameters(params, exc, word):
    X, y = _regression()
    with pytest.raises(exc, match=word):
        _small(GBNNRegressor, **params).fit(X, y)


def test_n_active_units_set_after_fit_is_named():
    X, y = _regression()
    model = _small(GBNNRegressor).fit(X, y)
    with pytest.raises(ValueError, match="n_active_units"):
        model.set_params(n_active_units=10**6).predict(X)


def test_n_active_units_above_the_rounded_unit_count_is_named():
    # n_units=5 with units_per_step=2 fits 4 units; n_active_units=5 passed the [0, n_units]
    # check and predict then blamed `units`, an argument the caller never gave
    X, y = _regression()
    model = _small(GBNNRegressor, n_units=5, units_per_step=2, n_active_units=5).fit(X, y)
    assert model.n_units_ == 4
    with pytest.raises(ValueError, match=r"n_active_units must be <= n_units_ = 4"):
        model.predict(X)
    model.set_params(n_active_units=4).predict(X)


def test_bad_data():
    X, y = _regression()
    Xbad = X.copy()
    Xbad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _small(GBNNRegressor).fit(Xbad, y)
    with pytest.raises(ValueError, match="2 classes"):
        _small(GBNNClassifier).fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="Unknown label type"):
        _small(GBNNClassifier).fit(X, y)  # continuous labels
    reg = _small(GBNNRegressor).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :2])
    with pytest.raises(TypeError, match="dtype"):
        reg.to_torch(dtype=torch.int64)
    with pytest.raises(ValueError, match="X must be"):
        fit_hidden_block(X, y, 2)
    with pytest.raises(ValueError, match="finite"):
        fit_hidden_block(Xbad, y[:, None], 2)


def _state(est) -> dict:
    return {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(est).items()}


def _assert_same_state(est, before: dict) -> None:
    after = vars(est)
    assert after.keys() == before.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(after[k], v), k
        else:
            assert after[k] == v, k


def test_a_failed_refit_leaves_the_fitted_classifier_as_it_was():
    """A refit that fails validation (one class, with other features; a bad parameter)
    keeps every fitted attribute: predictions are still those of the first fit."""
    X, y = _classification(k=2)
    clf = _small(GBNNClassifier).fit(X, y + 5)
    pred, before = clf.predict(X), _state(clf)
    X3 = np.hstack([X, X[:, :1]])
    with pytest.raises(ValueError, match="y must contain at least 2 classes"):
        clf.fit(X3, np.zeros(len(X), dtype=int))
    _assert_same_state(clf, before)
    np.testing.assert_array_equal(clf.predict(X), pred)
    with pytest.raises(ValueError, match="n_units"):
        clf.set_params(n_units=0).fit(X, y)
    clf.set_params(n_units=8)
    _assert_same_state(clf, before)
    np.testing.assert_array_equal(clf.predict(X), pred)


def test_an_interrupted_refit_leaves_the_fitted_regressor_as_it_was(monkeypatch):
    """Ctrl-C inside the boosting loop of a refit: the first fit's attributes all stay."""
    from neuronkit.pruning.boosting import gbnn

    X, y = _regression()
    reg = _small(GBNNRegressor).fit(X, y)
    pred, before = reg.predict(X), _state(reg)
    fit_block, calls = gbnn.fit_hidden_block, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit_block(*args, **kwargs)

    monkeypatch.setattr(gbnn, "fit_hidden_block", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X[:, :3], np.stack([y, y + 100], axis=1))
    _assert_same_state(reg, before)
    np.testing.assert_array_equal(reg.predict(X), pred)


def test_the_reproductions_score_is_the_estimators_score():
    """pruning.gbnn scores digits without accuracy_score's per-call checks: the same values."""
    from neuronkit.pruning.reproductions.gbnn import _gbnn_score

    X, y = _classification(k=4)
    clf = _small(GBNNClassifier).fit(X, y)
    Xr, yr = _regression()
    reg = _small(GBNNRegressor).fit(Xr, yr)
    for units in (None, 2, 5, np.array([0, 3, 6]), np.arange(8)):
        assert _gbnn_score(clf, X, y, units, "classification") == clf.score(X, y, units=units)
        assert _gbnn_score(reg, Xr, yr, units, "regression") == reg.score(Xr, yr, units=units)
