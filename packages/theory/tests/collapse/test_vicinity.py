"""Vicinity model: closed-form classifier, descent, perturbation expansion, estimator, inputs."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from neuronkit.theory import (
    VicinityCollapse,
    fit_vicinity,
    nc1,
    vicinity_classifier,
    vicinity_first_order,
    vicinity_objective,
)

K, D, PER = 4, 10, 12


def features(seed: int, noise: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(PER)
    centres = torch.randn(K, D, generator=g, dtype=torch.float64)
    return centres[labels] + noise * torch.randn(
        K * PER, D, generator=g, dtype=torch.float64
    ), labels


def test_classifier_is_ridge_regression() -> None:
    h, y = features(0)
    lam = 0.05
    w = vicinity_classifier(h, y, lam)
    onehot = np.eye(K)[y.numpy()]
    ridge = Ridge(alpha=len(y) * lam, fit_intercept=False).fit(h.numpy(), onehot)
    assert np.allclose(w.numpy(), ridge.coef_, atol=1e-8)


def test_features_too_large_for_the_ridge_solve_are_named() -> None:
    # H^T H overflowed for features of 1e160: W* came back all NaN, silently
    h, y = features(0)
    with pytest.raises(ValueError, match=r"^features must be rescaled"):
        vicinity_classifier(h * 1e160, y, 1e-3)
    with pytest.raises(ValueError, match=r"^reference must be rescaled"):
        fit_vicinity(h * 1e160, y, lambda_w=1e-3, beta=1.0)
    w = vicinity_classifier(h * 1e-160, y, 1e-3)  # tiny features stay fine
    assert bool(torch.isfinite(w).all())
    assert float(w.abs().max()) > 0


def test_descent_decreases_the_objective_and_reaches_a_stationary_point() -> None:
    h0, y = features(1)
    res = fit_vicinity(h0, y, lambda_w=1e-2, beta=0.5, max_steps=5000, tol=1e-10)
    assert res.converged
    assert all(b <= a + 1e-12 for a, b in zip(res.objective, res.objective[1:]))
    # stationarity in H at W = W*(H) and optimality of W for that H
    w = vicinity_classifier(res.features, y, 1e-2)
    assert torch.allclose(w, res.weights)
    value = vicinity_objective(res.features, res.weights, y, h0, lambda_w=1e-2, beta=0.5)
    assert value == pytest.approx(res.objective[-1])
    for eps in (1e-3, -1e-3):
        nudged = res.features + eps * torch.ones_like(res.features)
        assert vicinity_objective(nudged, res.weights, y, h0, lambda_w=1e-2, beta=0.5) >= value


@pytest.mark.parametrize("seed", [0, 1])
def test_optimized_features_are_less_variable_and_more_so_for_weaker_pull(seed: int) -> None:
    h0, y = features(seed)
    base = nc1(h0, y)
    ratios = [
        nc1(fit_vicinity(h0, y, lambda_w=1e-2, beta=b, max_steps=2000, tol=1e-7).features, y) / base
        for b in (0.3, 1.0, 10.0)
    ]
    assert max(ratios) < 1.0
    assert ratios == sorted(ratios)


@pytest.mark.parametrize("seed", [0, 1])
def test_feature_regularization_brings_the_optimized_features_closer_to_collapse(seed: int) -> None:
    # Tirer et al., Theorem 4.2: increasing lambda_H shrinks the intra-class blocks
    # (sigma_min = 1 - sqrt(lambda_H / lambda_W) / beta), so NC1 of the minimizer falls.
    h0, y = features(seed)
    ratios = [
        nc1(
            fit_vicinity(
                h0, y, lambda_w=1e-2, beta=3.0, lambda_h=lam, max_steps=3000, tol=1e-9
            ).features,
            y,
        )
        for lam in (0.0, 0.1, 1.0)
    ]
    assert ratios[0] > ratios[1] > ratios[2]


def test_first_order_prediction_error_shrinks_as_one_over_beta_squared() -> None:
    h0, y = features(2)
    errs = []
    for beta in (50.0, 500.0):
        exact = fit_vicinity(h0, y, lambda_w=1e-2, beta=beta, max_steps=5000, tol=1e-13).features
        errs.append(
            float(torch.linalg.norm(exact - vicinity_first_order(h0, y, lambda_w=1e-2, beta=beta)))
        )
    assert errs[1] < errs[0] / 50


def test_unconstrained_features_model_collapses() -> None:
    h0, y = features(3)
    res = fit_vicinity(h0, y, lambda_w=2e-2, beta=0.0, lambda_h=2e-2, max_steps=3000, tol=1e-10)
    assert nc1(res.features, y) < 1e-3 * nc1(h0, y)


def test_estimator_shell() -> None:
    h0, y = features(4)
    est = VicinityCollapse(lambda_w=1e-2, beta=1.0)
    out = est.fit_transform(h0, y)
    assert out.shape == h0.shape
    assert est.coef_.shape == (K, D)
    assert est.n_iter_ > 0
    accuracy = (est.predict(out) == y).double().mean()
    assert accuracy > 0.9
    assert est.score(out, y) == pytest.approx(float(accuracy))
    with pytest.raises(ValueError, match=r"^y must have one label per sample"):
        est.score(out, y[:-1])
    assert repr(est) == "VicinityCollapse(lambda_w=0.01)"
    assert est.set_params(beta=2.0).get_params()["beta"] == 2.0
    with pytest.raises(RuntimeError, match=r"fitted"):
        VicinityCollapse().predict(h0)
    with pytest.raises(ValueError, match=r"^params "):
        est.set_params(gamma=1.0)


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda h, y: fit_vicinity(h, y, lambda_w=0.0, beta=1.0), ValueError, "lambda_w"),
        (lambda h, y: fit_vicinity(h, y, lambda_w=1.0, beta=-1.0), ValueError, "beta"),
        (lambda h, y: fit_vicinity(h, y, lambda_w=1.0, beta=0.0), ValueError, "beta"),
        (
            lambda h, y: fit_vicinity(h, y, lambda_w=1.0, beta=1.0, lambda_h=-1.0),
            ValueError,
            "lambda_h",
        ),
        (lambda h, y: fit_vicinity(h[0], y, lambda_w=1.0, beta=1.0), ValueError, "reference"),
        (lambda h, y: fit_vicinity(h, y[:-1], lambda_w=1.0, beta=1.0), ValueError, "labels"),
        (
            lambda h, y: fit_vicinity(h, y, lambda_w=1.0, beta=1.0, max_steps=0),
            ValueError,
            "max_steps",
        ),
        (lambda h, y: vicinity_first_order(h, y, lambda_w=1.0, beta=0.0), ValueError, "beta"),
        (lambda h, y: vicinity_classifier(h, y, -1.0), ValueError, "lambda_w"),
        (
            lambda h, y: vicinity_objective(h[:3], torch.zeros(K, D), y, h, lambda_w=1.0, beta=1.0),
            ValueError,
            "features",
        ),
        (
            lambda h, y: vicinity_objective(h, torch.zeros(K, 3), y, h, lambda_w=1.0, beta=1.0),
            ValueError,
            "weights",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    h, y = features(0)
    with pytest.raises(exc, match=rf"^{name} "):
        call(h, y)


def test_estimator_is_a_scikit_learn_classifier() -> None:
    # not recognized as a classifier: cross_val_score split the class-sorted data by KFold,
    # every test fold held a class never trained on
    from sklearn.base import is_classifier
    from sklearn.model_selection import cross_val_score

    h, y = features(0, noise=0.5)  # sorted by class
    scores = cross_val_score(VicinityCollapse(lambda_w=1e-2, max_steps=50), h.numpy(), y.numpy())
    assert scores.min() > 0.8
    assert is_classifier(VicinityCollapse())


def test_estimator_predicts_only_the_labels_of_y() -> None:
    # K was max(y) + 1: labels [3, 7] made classes 0..6, and the empty class 0 was predicted
    h, y = features(0, noise=0.5)
    two = y < 2
    h, labels = h[two], torch.where(y[two] == 0, 3, 7)
    est = VicinityCollapse(lambda_w=1e-2, max_steps=50).fit(h, labels)
    pred = est.predict(torch.randn(50, D, generator=torch.Generator().manual_seed(1)).double())
    assert set(pred.tolist()) <= {3, 7}
    assert torch.equal(est.classes_, torch.tensor([3, 7]))
    assert est.coef_.shape == (2, D)
    assert est.score(h, labels) == pytest.approx(float((est.predict(h) == labels).double().mean()))
    assert est.score(h, labels) > 0.9
    assert est.score(h, torch.full_like(labels, 5)) == 0.0  # an unseen label is an error
    negative = VicinityCollapse(lambda_w=1e-2, max_steps=50).fit(h, labels - 10)
    assert torch.equal(negative.predict(h), est.predict(h) - 10)
    with pytest.raises(ValueError, match=r"^y must contain at least 2 classes"):
        VicinityCollapse().fit(h, torch.full_like(labels, 4))
    with pytest.raises(ValueError, match=r"^y must hold integer class labels, got continuous"):
        VicinityCollapse().fit(h, labels + 0.5)


@pytest.mark.parametrize(("n", "d"), [(6, 20), (20, 6)])
def test_singular_ridge_system_raises(n: int, d: int) -> None:
    # D > N (or a duplicate feature) with a tiny lambda_w: H^T H + N lambda_w I is singular in
    # float64 and the solve returned a finite W* off by 2000% without a word
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, d, generator=g, dtype=torch.float64)
    h[:, 1] = h[:, 0]
    labels = torch.arange(n) % 3
    for lam in (1e-20, 1e-300):
        with pytest.raises(ValueError, match="lambda_w must be larger"):
            vicinity_classifier(h, labels, lam)
        with pytest.raises(ValueError, match="lambda_w must be larger"):
            vicinity_first_order(h, labels, lambda_w=lam, beta=1.0)
        with pytest.raises(ValueError, match="lambda_w must be larger"):
            fit_vicinity(h, labels, lambda_w=lam, beta=1.0, max_steps=2)
    # a well-posed lambda_w matches the SVD form Y^T U diag(s / (s^2 + N lambda)) V^T
    lam = 1e-3
    u, s, vh = torch.linalg.svd(h, full_matrices=False)
    onehot = torch.nn.functional.one_hot(labels, 3).to(torch.float64)
    ref = (onehot.T @ u * (s / (s**2 + n * lam))) @ vh
    torch.testing.assert_close(vicinity_classifier(h, labels, lam), ref)
