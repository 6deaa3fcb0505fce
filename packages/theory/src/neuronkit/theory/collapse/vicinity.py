"""The vicinity model of neural collapse: features optimized near given features.

Tirer, Huang & Niles-Weed, "Perturbation Analysis of Neural Collapse" (ICML 2023). Unconstrained
features models let the last-layer features ``H`` move freely, so every minimizer is exactly
collapsed. Real networks cannot move features arbitrarily far from what earlier layers produce,
so the paper keeps them in the vicinity of given features ``H0`` (e.g. intermediate features):

    L(W, H) = 1/(2N) ||H W^T - Y||_F^2 + lambda_W/2 ||W||_F^2
              + beta/(2N) ||H - H0||_F^2 + lambda_H/(2N) ||H||_F^2

with one-hot targets ``Y [N, K]``, features ``H [N, D]`` (rows are samples) and classifier
``W [K, D]`` (no bias). For fixed ``H`` the optimal classifier is ridge regression,
``W*(H) = Y^T H (H^T H + N lambda_W I)^-1``; minimizing over ``H`` with ``W = W*(H)`` is the
gradient flow on the "central path" that the paper analyses. Its result: the optimized features
have lower within-class variability than ``H0``; for a strong pull (large ``beta``) the
minimizer is ``H0 - (N/beta) grad f(H0) + O(1/beta^2)`` (:func:`vicinity_first_order`), so the
reduction shrinks as ``beta`` grows and the features get closer to collapse as ``beta`` is
relaxed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from neuronkit.common import EstimatorParams, check_number, check_shape

from .._estimators import (
    accuracy,
    check_fitted,
    check_samples,
    decode_classes,
    encode_classes,
    like_input,
)
from .._utils import as_float_tensor, as_labels, check_positive_int

__all__ = [
    "VicinityCollapse",
    "VicinityResult",
    "fit_vicinity",
    "vicinity_classifier",
    "vicinity_first_order",
    "vicinity_objective",
]


def _inputs(
    name: str, reference: Any, labels: Any, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    h0 = as_float_tensor(name, reference, 2, "[N, D]")
    y, k = as_labels("labels", labels, h0.shape[0], num_classes)
    onehot = torch.nn.functional.one_hot(y, k).to(torch.float64)
    return h0, onehot, k


def _check_reg(lambda_w: float, beta: float, lambda_h: float) -> None:
    check_number("lambda_w", lambda_w, gt=0)
    check_number("beta", beta, ge=0)
    check_number("lambda_h", lambda_h, ge=0)


def _ridge(h: torch.Tensor, onehot: torch.Tensor, lambda_w: float, name: str) -> torch.Tensor:
    """``W*(H)`` ``[K, D]``; ``name`` is the argument ``h`` comes from (for the error)."""
    n, d = h.shape
    gram = h.T @ h + n * lambda_w * torch.eye(d, dtype=h.dtype)
    w, info = torch.linalg.solve_ex(gram, h.T @ onehot)
    if bool(info) or not bool(torch.isfinite(w).all()):
        # finite but huge features: H^T H overflowed (NaN W*) or swamped N lambda_W I
        raise ValueError(
            f"{name} must be rescaled (e.g. to max |{name}| about 1): at max |{name}| "
            f"{float(h.abs().max()):.3g}, H^T H overflows {h.dtype} or is singular"
        )
    return w.T


def _check_conditioning(h: torch.Tensor, lambda_w: float, name: str) -> None:
    """Raise when ``H^T H + N lambda_W I`` is singular in float64 (reciprocal condition number
    below ``D eps``): then the solve in :func:`_ridge` returns a finite ``W*`` that is off by
    up to 100% without a word (features with more dimensions than samples, duplicate samples
    or collinear features, with a tiny ``lambda_w``). Once per call, outside any loop."""
    n, d = h.shape
    small = h @ h.T if d > n else h.T @ h  # the same non-zero eigenvalues, the smaller matrix
    if not bool(torch.isfinite(small).all()):
        return  # H^T H overflowed: _ridge asks to rescale the features
    ev = torch.linalg.eigvalsh(small)
    ridge = n * lambda_w
    lowest = ridge if d > n else float(ev[0].clamp_min(0.0)) + ridge  # d > n: rank <= n < d
    rcond = lowest / (float(ev[-1]) + ridge)
    if rcond < d * torch.finfo(h.dtype).eps:
        raise ValueError(
            f"lambda_w must be larger for these {name}: H^T H + N lambda_w I is singular in "
            f"{h.dtype} (reciprocal condition number {rcond:.2g} at lambda_w={lambda_w:g}; "
            f"{name} [N={n}, D={d}] of rank below D, e.g. D > N, duplicate samples or "
            f"collinear features), so the ridge classifier W* cannot be computed"
        )


def vicinity_classifier(
    features: Any, labels: Any, lambda_w: float, num_classes: int | None = None
) -> torch.Tensor:
    """Optimal classifier ``W*(H) = Y^T H (H^T H + N lambda_W I)^-1`` ``[K, D]``; ``H [N, D]``."""
    h, onehot, _ = _inputs("features", features, labels, num_classes)
    check_number("lambda_w", lambda_w, gt=0)
    _check_conditioning(h, lambda_w, "features")
    return _ridge(h, onehot, lambda_w, "features")


def _objective(
    h: torch.Tensor,
    w: torch.Tensor,
    onehot: torch.Tensor,
    h0: torch.Tensor,
    lambda_w: float,
    beta: float,
    lambda_h: float,
) -> float:
    n = h.shape[0]
    fit = ((h @ w.T - onehot) ** 2).sum() / (2 * n)
    reg = lambda_w / 2 * (w**2).sum() + (beta * ((h - h0) ** 2).sum() + lambda_h * (h**2).sum()) / (
        2 * n
    )
    return float(fit + reg)


def vicinity_objective(
    features: Any,
    weights: Any,
    labels: Any,
    reference: Any,
    *,
    lambda_w: float,
    beta: float,
    lambda_h: float = 0.0,
    num_classes: int | None = None,
) -> float:
    """The vicinity loss ``L(W, H)`` (module docstring); features ``[N, D]``, weights ``[K, D]``."""
    h0, onehot, k = _inputs("reference", reference, labels, num_classes)
    h = as_float_tensor("features", features, 2, "[N, D]")
    check_shape("features", h, tuple(h0.shape))
    w = as_float_tensor("weights", weights, 2, "[K, D]")
    check_shape("weights", w, (k, h0.shape[1]))
    _check_reg(lambda_w, beta, lambda_h)
    return _objective(h, w, onehot, h0, lambda_w, beta, lambda_h)


def _gradient(
    h: torch.Tensor,
    w: torch.Tensor,
    onehot: torch.Tensor,
    h0: torch.Tensor,
    beta: float,
    lambda_h: float,
) -> torch.Tensor:
    n = h.shape[0]
    return ((h @ w.T - onehot) @ w + beta * (h - h0) + lambda_h * h) / n


@dataclass
class VicinityResult:
    """Optimized features ``[N, D]`` and classifier ``[K, D]`` of the vicinity model."""

    features: torch.Tensor
    weights: torch.Tensor
    objective: list[float] = field(default_factory=list)
    steps: int = 0
    converged: bool = False


def fit_vicinity(
    reference: Any,
    labels: Any,
    *,
    lambda_w: float,
    beta: float,
    lambda_h: float = 0.0,
    num_classes: int | None = None,
    max_steps: int = 5000,
    tol: float = 1e-9,
) -> VicinityResult:
    """Minimize the vicinity loss by gradient descent on the central path ``W = W*(H)``.

    Starts at ``H = H0`` (the ``reference`` features ``[N, D]``). The step is ``N / (||W||_2^2 +
    beta + lambda_H)`` (the inverse curvature of the ``H`` block), halved whenever the objective
    would increase. Stops when the relative gradient norm falls below ``tol``.

    Args:
        reference: given features ``H0 [N, D]``.
        labels: class labels ``[N]``.
        lambda_w: classifier weight decay (> 0).
        beta: strength of the pull toward ``H0`` (>= 0; 0 with ``lambda_h > 0`` is the
            unconstrained features model).
        lambda_h: feature weight decay (>= 0).
        max_steps: iteration cap.
        tol: tolerance on ``||grad|| / ||H||``.
    """
    h0, onehot, _ = _inputs("reference", reference, labels, num_classes)
    _check_reg(lambda_w, beta, lambda_h)
    if beta == 0 and lambda_h == 0:
        raise ValueError("beta must be > 0 when lambda_h is 0 (the loss has no minimizer)")
    max_steps = check_positive_int("max_steps", max_steps)
    check_number("tol", tol, gt=0)
    n = h0.shape[0]
    h = h0.clone()
    _check_conditioning(h, lambda_w, "reference")
    w = _ridge(h, onehot, lambda_w, "reference")
    value = _objective(h, w, onehot, h0, lambda_w, beta, lambda_h)
    result = VicinityResult(features=h, weights=w, objective=[value])
    scale = 1.0
    for step in range(1, max_steps + 1):
        grad = _gradient(h, w, onehot, h0, beta, lambda_h)
        if float(torch.linalg.norm(grad)) <= tol * max(float(torch.linalg.norm(h)), 1.0):
            result.converged = True
            break
        lr = scale * n / (float(torch.linalg.matrix_norm(w, ord=2)) ** 2 + beta + lambda_h)
        while True:
            h_new = h - lr * grad
            w_new = _ridge(h_new, onehot, lambda_w, "reference")
            new_value = _objective(h_new, w_new, onehot, h0, lambda_w, beta, lambda_h)
            if new_value <= value or lr < 1e-12:
                break
            lr /= 2.0
            scale /= 2.0
        h, w, value = h_new, w_new, new_value
        result.objective.append(value)
        result.steps = step
    result.features, result.weights = h, w
    return result


def vicinity_first_order(
    reference: Any,
    labels: Any,
    *,
    lambda_w: float,
    beta: float,
    lambda_h: float = 0.0,
    num_classes: int | None = None,
) -> torch.Tensor:
    """First-order perturbation prediction of the minimizer for large ``beta``:
    ``H0 - (N/beta) grad f(H0)``, with ``f`` the loss without the vicinity term at ``W*(H0)``."""
    h0, onehot, _ = _inputs("reference", reference, labels, num_classes)
    _check_reg(lambda_w, beta, lambda_h)
    if beta == 0:
        raise ValueError("beta must be > 0 for the perturbation expansion")
    _check_conditioning(h0, lambda_w, "reference")
    w = _ridge(h0, onehot, lambda_w, "reference")
    grad = _gradient(h0, w, onehot, h0, 0.0, lambda_h)
    return h0 - (h0.shape[0] / beta) * grad


class VicinityCollapse(ClassifierMixin, EstimatorParams, BaseEstimator):  # sklearn classifier
    """Estimator shell around :func:`fit_vicinity` (a scikit-learn classifier).

    ``VicinityCollapse(lambda_w=1e-3, beta=1.0).fit(H0, y)`` sets ``classes_ [K]`` (the sorted
    distinct labels of ``y``: a tensor of integers, or an array of bools or strings),
    ``features_ [N, D]``, ``coef_ [K, D]`` (the classifier; row ``k`` scores ``classes_[k]``),
    ``n_iter_`` and ``n_features_in_``; :meth:`predict` classifies new features with ``coef_``
    (only labels seen in ``y``, of ``classes_``'s kind) and :meth:`score` gives its accuracy.
    """

    def __init__(
        self,
        lambda_w: float = 1e-3,
        beta: float = 1.0,
        lambda_h: float = 0.0,
        max_steps: int = 5000,
        tol: float = 1e-9,
    ) -> None:
        self.lambda_w = lambda_w
        self.beta = beta
        self.lambda_h = lambda_h
        self.max_steps = max_steps
        self.tol = tol

    def fit(self, X: Any, y: Any) -> VicinityCollapse:
        """Optimize the features from ``X [N, D]`` and the classifier (:func:`fit_vicinity`) for
        the labels ``y [N]`` encoded as indices into ``classes_``: sets ``classes_ [K]``,
        ``features_ [N, D]``, ``coef_ [K, D]``, ``n_iter_`` and ``converged_``."""
        h0 = as_float_tensor("X", X, 2, "[N, D]")
        check_samples("X", h0)
        classes, codes = encode_classes("y", y, h0.shape[0], min_classes=2)
        result = fit_vicinity(h0, codes, num_classes=len(classes), **self.get_params())
        self.classes_ = classes
        self.n_features_in_ = int(h0.shape[1])
        self.features_ = result.features
        self.coef_ = result.weights
        self.n_iter_ = result.steps
        self.converged_ = result.converged
        return self

    def fit_transform(self, X: Any, y: Any) -> Any:
        """:meth:`fit`, then the optimized features ``[N, D]`` (a tensor for a tensor ``X``,
        else an array)."""
        return like_input(X, self.fit(X, y).features_)

    def predict(self, X: Any) -> Any:
        """Class labels ``[M]`` for ``X [M, D]`` by the fitted linear classifier (a tensor for a
        tensor ``X`` and integer labels, else an array)."""
        check_fitted(self, "coef_", "predict")
        h = as_float_tensor("X", X, 2, "[N, D]")
        check_shape("X", h, (None, self.coef_.shape[1]))
        return like_input(X, decode_classes(self.classes_, (h @ self.coef_.T).argmax(dim=1)))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``X [M, D]`` against labels ``y [M]`` (a label not
        among ``classes_`` counts as an error)."""
        return accuracy("y", self.predict(X), y)
