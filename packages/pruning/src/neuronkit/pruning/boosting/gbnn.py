"""Gradient Boosted Neural Networks (GBNN): sequential training of a one-hidden-layer network.

Emami & Martínez-Muñoz (IEEE Access 2023), "Sequential Training of Neural Networks with
Gradient Boosting". A one-hidden-layer network is an additive expansion
``F(x) = b + sum_u w_u h_u(x)``; GBNN grows it by gradient boosting:

1. the output bias is initialised with the constant that minimises the training loss (the mean
   for the squared loss, the log-odds for the binary log loss, the log class priors for the
   multiclass cross-entropy with K outputs);
2. at each of ``T`` steps the pseudo-residuals ``r = -dL/dF`` of the current output are
   computed and a *new* one-hidden-layer network of ``J`` units (hidden and output weights) is
   fitted to them by least squares (L-BFGS, on a random subsample of the training set, as in
   the authors' code); the units trained at earlier steps stay frozen;
3. the new units' output weights are scaled by ``rho = learning_rate * newton_step``, one
   Newton-Raphson step of the loss along the new units' output (``newton_step = 1`` for the
   squared loss) and added to the expansion;
4. the ``T`` partial networks and the bias form one network with ``T * J`` hidden units
   (:meth:`GBNNRegressor.to_torch` exports it as an ``nn.Sequential``).

Because the units are trained in order, the last-trained ones fit what is left of the
residuals and can be switched off at test time (``units=`` of the prediction methods, or the
``n_active_units`` parameter) to trade accuracy for speed on the fly.

Switching off a unit removes its contribution ``w_u h_u(x)``; when every unit of a step is off,
that step's output bias goes too, so keeping the first ``k * J`` units is exactly the boosting
ensemble after ``k`` steps.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from neuronkit.common import as_float_array, host_array

__all__ = ["GBNNClassifier", "GBNNRegressor", "fit_hidden_block"]

Activation = Literal["logistic", "tanh", "relu", "identity"]
_ACTIVATIONS = ("logistic", "tanh", "relu", "identity")
UnitsArg = int | Sequence[int] | Sequence[bool] | np.ndarray | None


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "logistic":
        return np.asarray(expit(z))
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.maximum(z, 0.0)
    return z


def _activate_grad(a: np.ndarray, z: np.ndarray, activation: str) -> np.ndarray:
    """d activation / dz, given ``a = activation(z)``."""
    if activation == "logistic":
        return a * (1.0 - a)
    if activation == "tanh":
        return 1.0 - a * a
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    return np.ones_like(z)


def fit_hidden_block(
    X: np.ndarray,
    R: np.ndarray,
    n_hidden: int,
    *,
    activation: str = "logistic",
    alpha: float = 1e-4,
    max_iter: int = 200,
    tol: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares fit of a one-hidden-layer network to targets (one GBNN step).

    Minimises ``0.5/n * ||act(X W1 + b1) W2 + b2 - R||^2 + 0.5 * alpha/n * (||W1||^2 +
    ||W2||^2)`` with L-BFGS from a Glorot-uniform initialisation: the objective, initialisation
    and solver of scikit-learn's ``MLPRegressor(solver="lbfgs")`` that the authors fit at each
    step, without its per-call overhead. For ``K > 1`` targets scikit-learn's *reported* loss
    also averages the squared error over the ``K`` outputs while its gradient does not (the
    gradient is that of the objective above); L-BFGS here gets the consistent pair, so its
    line search can differ from scikit-learn's (no systematic effect on GBNN accuracy measured).

    Args:
        X: ``[n, d]`` inputs. R: ``[n, K]`` targets (the pseudo-residuals).
        n_hidden: ``J``, hidden units. activation: ``logistic``/``tanh``/``relu``/``identity``.
        alpha: L2 penalty. max_iter: L-BFGS iterations. tol: gradient tolerance (0: run all).
        seed: seed of the initialisation.

    Returns:
        ``(W1 [d, J], b1 [J], W2 [J, K], b2 [K])``.
    """
    X = as_float_array("X", X)
    R = as_float_array("R", R)
    if X.ndim != 2 or R.ndim != 2 or R.shape[0] != X.shape[0]:
        raise ValueError(
            f"X must be [n, d] and R [n, K] with the same n, got {X.shape} and {R.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(R).all()):
        raise ValueError("X and R must be finite, got NaN or infinity")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    n, d = X.shape
    K = R.shape[1]
    J = int(n_hidden)
    if J < 1:
        raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
    gen = np.random.default_rng(seed)
    # scikit-learn's MLP initialisation: U(-b, b) with b = sqrt(factor / (fan_in + fan_out)),
    # factor 2 for the logistic activation and 6 (Glorot) otherwise, for weights and biases.
    factor = 2.0 if activation == "logistic" else 6.0
    sizes = [(d, J), (J,), (J, K), (K,)]
    bounds = [np.sqrt(factor / (d + J))] * 2 + [np.sqrt(factor / (J + K))] * 2
    theta0 = np.concatenate(
        [gen.uniform(-b, b, size=sz).ravel() for sz, b in zip(sizes, bounds, strict=True)]
    )
    cuts = np.cumsum([int(np.prod(sz)) for sz in sizes])
    spans = [slice(int(a), int(b)) for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    XT = X.T  # a view: the same BLAS call as ``X.T @ D`` inside the loop
    logistic = activation == "logistic"

    def unpack(theta: np.ndarray) -> list[np.ndarray]:
        return [theta[sp].reshape(sz) for sp, sz in zip(spans, sizes, strict=True)]

    # The objective runs tens of thousands of times on small matrices, so it avoids
    # per-call overhead (np.split, np.sum wrappers, np.concatenate); the arithmetic (every
    # operation and its order) is unchanged, so the result is bit-for-bit the same.
    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W1, b1, W2, b2 = unpack(theta)
        Z = X @ W1
        Z += b1
        A = expit(Z) if logistic else _activate(Z, activation)
        E = A @ W2
        E += b2
        E -= R
        loss = 0.5 * ((E * E).sum() + alpha * ((W1 * W1).sum() + (W2 * W2).sum())) / n
        grad = np.empty(theta.shape[0])
        gW1, gb1, gW2, gb2 = unpack(grad)
        np.matmul(A.T, E, out=gW2)
        gW2 += alpha * W2
        gW2 /= n
        np.add.reduce(E, axis=0, out=gb2)
        gb2 /= n
        D = E @ W2.T
        D *= A * (1.0 - A) if logistic else _activate_grad(A, Z, activation)
        np.matmul(XT, D, out=gW1)
        gW1 += alpha * W1
        gW1 /= n
        np.add.reduce(D, axis=0, out=gb1)
        gb1 /= n
        return float(loss), grad

    res = minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": int(max_iter), "gtol": float(tol), "maxfun": 15000},
    )
    W1, b1, W2, b2 = unpack(res.x)
    return W1.copy(), b1.copy(), W2.copy(), b2.copy()


class _GBNNBase(BaseEstimator):
    """Shared machinery of :class:`GBNNRegressor` and :class:`GBNNClassifier`."""

    def __init__(
        self,
        n_units: int = 200,
        units_per_step: int = 1,
        learning_rate: float = 1.0,
        subsample: float = 0.5,
        max_iter: int = 200,
        activation: Activation = "logistic",
        alpha: float = 1e-4,
        tol: float = 0.0,
        n_active_units: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_units = n_units
        self.units_per_step = units_per_step
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.max_iter = max_iter
        self.activation = activation
        self.alpha = alpha
        self.tol = tol
        self.n_active_units = n_active_units
        self.random_state = random_state

    # -- loss interface (specialised by the subclasses) ---------------------------------
    def _init_output(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _residuals(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _newton_step(self, y: np.ndarray, raw: np.ndarray, f: np.ndarray) -> float:
        raise NotImplementedError  # pragma: no cover

    def _loss(self, y: np.ndarray, raw: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- validation ---------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("n_units", "units_per_step", "max_iter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.units_per_step > self.n_units:
            raise ValueError(
                f"units_per_step must be <= n_units ({self.n_units}), got {self.units_per_step}"
            )
        for name, lo, hi, lo_open in (
            ("learning_rate", 0.0, np.inf, True),
            ("subsample", 0.0, 1.0, True),
            ("alpha", 0.0, np.inf, False),
            ("tol", 0.0, np.inf, False),
        ):
            raw_value = getattr(self, name)
            if isinstance(raw_value, bool) or not isinstance(raw_value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(raw_value).__name__}")
            value = float(raw_value)
            bad = (value <= lo if lo_open else value < lo) or value > hi or not np.isfinite(value)
            if bad:
                span = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
                raise ValueError(f"{name} must lie in {span}, got {value!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        if self.n_active_units is not None:
            v = self.n_active_units
            if (
                isinstance(v, bool)
                or not isinstance(v, numbers.Integral)
                or not 0 <= v <= self.n_units
            ):
                raise ValueError(
                    f"n_active_units must be None or an integer in [0, n_units = {self.n_units}], "
                    f"got {v!r}"
                )

    # -- fitting ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _unchanged_on_failure(self) -> Iterator[None]:
        """A failed or interrupted ``fit`` leaves the estimator as it was: ``validate_data``
        sets ``n_features_in_`` / ``feature_names_in_`` before the other checks, so every
        attribute comes back (the fitted ones are only assigned once fitting succeeded)."""
        saved = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_targets(
        self, X: np.ndarray, y: np.ndarray, scale: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Boost on validated ``X: [n, d]`` and encoded targets ``y: [n, K]`` (float64),
        divided by ``scale [K]`` if given (the fitted weights are in ``y``'s units); the fitted
        attributes, for the caller to assign once everything succeeded (the parameters were
        checked by ``fit``)."""
        rng = check_random_state(self.random_state)
        n, K = X.shape[0], y.shape[1]
        target = y if scale is None else y / scale
        J = int(self.units_per_step)
        T = max(1, int(self.n_units) // J)
        m = max(1, round(float(self.subsample) * n))
        init = self._init_output(target)  # [K]
        raw = np.tile(init, (n, 1))
        W1 = np.empty((X.shape[1], T * J))
        b1 = np.empty(T * J)
        W2 = np.empty((T * J, K))
        step_bias = np.empty((T, K))
        steps = np.empty(T)
        losses = []
        for t in range(T):
            r = self._residuals(target, raw)  # [n, K]
            idx = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
            w1, c1, w2, c2 = fit_hidden_block(
                X[idx],
                r[idx],
                J,
                activation=self.activation,
                alpha=float(self.alpha),
                max_iter=int(self.max_iter),
                tol=float(self.tol),
                seed=int(rng.randint(0, 2**31 - 1)),
            )
            f = _activate(X @ w1 + c1, self.activation) @ w2 + c2  # [n, K]
            rho = float(self.learning_rate) * self._newton_step(target, raw, f)
            sl = slice(t * J, (t + 1) * J)
            W1[:, sl], b1[sl], W2[sl] = w1, c1, rho * w2
            step_bias[t] = rho * c2
            steps[t] = rho
            raw = raw + rho * f
            losses.append(self._loss(y, raw if scale is None else raw * scale))
        if scale is not None:
            init, W2, step_bias = init * scale, W2 * scale, step_bias * scale
        return {
            "n_steps_": T,
            "n_units_": T * J,
            "n_outputs_": K,
            "init_": init,  # [K]
            "hidden_weights_": W1,  # [d, T*J]
            "hidden_biases_": b1,  # [T*J]
            "output_weights_": W2,  # [T*J, K], already scaled by rho
            "step_biases_": step_bias,  # [T, K], already scaled by rho
            "step_sizes_": steps,  # [T]
            "train_loss_": np.asarray(losses),  # [T]
            "n_iter_": T,  # boosting steps (scikit-learn's convention for iterative fits)
        }

    # -- unit selection -----------------------------------------------------------------
    def unit_mask(self, units: UnitsArg = None) -> np.ndarray:
        """Boolean mask ``[n_units_]`` of the hidden units that stay switched on.

        Args:
            units: ``None`` uses ``n_active_units`` (``None`` there: all units); an int ``k``
                keeps the first ``k`` trained units (switches off the last-trained ones);
                a boolean array ``[n_units_]`` is the mask itself; any other sequence of ints
                lists the indices of the units kept (an arbitrary subset, e.g. random).

        Returns:
            mask: ``[n_units_]`` bool; units are numbered in training order.
        """
        check_is_fitted(self, "output_weights_")
        U = self.n_units_
        if units is None:
            if self.n_active_units is None:
                return np.ones(U, dtype=bool)
            self._check_params()  # set_params after fit: name n_active_units, not units
            units = self.n_active_units
            if units > U:  # n_units was not a multiple of units_per_step: fewer units
                raise ValueError(
                    f"n_active_units must be <= n_units_ = {U} (n_units rounded down to a "
                    f"multiple of units_per_step), got {units}"
                )
        if isinstance(units, numbers.Integral) and not isinstance(units, bool):
            if not 0 <= int(units) <= U:
                raise ValueError(f"units must be an int in [0, {U}], got {units}")
            mask = np.zeros(U, dtype=bool)
            mask[: int(units)] = True
            return mask
        if isinstance(units, (bool, str, bytes, float)):
            raise TypeError(
                "units must be None, an int, a boolean mask or a sequence of unit indices, "
                f"got {type(units).__name__}"
            )
        arr = np.asarray(units)
        if arr.ndim != 1:
            raise ValueError(f"units must be one-dimensional, got shape {arr.shape}")
        if arr.dtype == bool:
            if arr.shape[0] != U:
                raise ValueError(f"units as a boolean mask must have length {U}, got {arr.size}")
            return arr.copy()
        if arr.size == 0:
            return np.zeros(U, dtype=bool)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"units must hold integer indices or booleans, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= U:
            raise ValueError(
                f"units indices must lie in [0, {U - 1}], got [{arr.min()}, {arr.max()}]"
            )
        mask = np.zeros(U, dtype=bool)
        mask[arr] = True
        return mask

    def _active_parameters(
        self, units: UnitsArg
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(W1 [d, u], b1 [u], W2 [u, K], output bias [K]) of the active units."""
        mask = self.unit_mask(units)
        J = self.n_units_ // self.n_steps_
        step_on = mask.reshape(self.n_steps_, J).any(axis=1)
        bias = self.init_ + self.step_biases_[step_on].sum(axis=0)
        return (
            self.hidden_weights_[:, mask],
            self.hidden_biases_[mask],
            self.output_weights_[mask],
            bias,
        )

    def _raw(self, X: Any, units: UnitsArg) -> np.ndarray:
        check_is_fitted(self, "output_weights_")
        Xv = validate_data(self, host_array(X), reset=False, dtype=np.float64)
        W1, b1, W2, bias = self._active_parameters(units)
        return np.asarray(_activate(Xv @ W1 + b1, self.activation) @ W2 + bias)

    # -- export -------------------------------------------------------------------------
    def to_torch(self, units: UnitsArg = None, dtype: Any = None) -> Any:
        """The ensemble (or its active units) as one ``nn.Sequential`` MLP.

        ``Linear(d, u) -> activation -> Linear(u, K)`` with ``u`` active hidden units (all
        ``T * J`` by default); its output ``[B, K]`` is the raw ``decision_function`` (``K``
        = 1 for regression on one target and binary classification).

        Args:
            units: which units to keep, as in :meth:`unit_mask`.
            dtype: torch dtype of the parameters (default ``torch.float64``).
        """
        import torch
        from torch import nn

        dtype = torch.float64 if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        W1, b1, W2, bias = self._active_parameters(units)
        d, u = W1.shape
        act: nn.Module = {
            "logistic": nn.Sigmoid,
            "tanh": nn.Tanh,
            "relu": nn.ReLU,
            "identity": nn.Identity,
        }[self.activation]()
        hidden = nn.Linear(d, u, dtype=dtype)
        output = nn.Linear(u, self.n_outputs_, dtype=dtype)
        with torch.no_grad():
            hidden.weight.copy_(torch.as_tensor(W1.T, dtype=dtype))
            hidden.bias.copy_(torch.as_tensor(b1, dtype=dtype))
            output.weight.copy_(torch.as_tensor(W2.T, dtype=dtype))
            output.bias.copy_(torch.as_tensor(bias, dtype=dtype))
        return nn.Sequential(hidden, act, output)


class GBNNRegressor(RegressorMixin, _GBNNBase):
    """Gradient Boosted Neural Network regressor (squared loss), Emami & Martínez-Muñoz 2023.

    Builds a one-hidden-layer network of ``n_units`` hidden units in ``T = n_units //
    units_per_step`` boosting steps (see the module docstring). The targets are standardised
    internally (each output divided by its standard deviation, folded back into the output
    weights), so the model does not depend on their units; standardise ``X`` as for any MLP
    (large inputs saturate the logistic units).

    Args:
        n_units: total hidden units ``T * J`` (rounded down to a multiple of ``units_per_step``).
        units_per_step: ``J``, hidden units fitted at each step.
        learning_rate: shrinkage ``eta`` applied to each step's output weights.
        subsample: fraction of the training set (drawn without replacement) each step is
            fitted on.
        max_iter: L-BFGS iterations of each step's least-squares fit.
        activation: hidden activation, ``"logistic"`` (the authors' default), ``"tanh"``,
            ``"relu"`` or ``"identity"``.
        alpha: L2 penalty of each step's fit.
        tol: tolerance of each step's L-BFGS (0 runs all ``max_iter`` iterations).
        n_active_units: default number of first-trained units used at prediction (``None``:
            all); can be changed after fitting to switch off the last-trained units.
        random_state: seed of the subsamples and of each step's initialisation.

    Fitted attributes: ``init_ [K]``, ``hidden_weights_ [d, T*J]``, ``hidden_biases_ [T*J]``,
    ``output_weights_ [T*J, K]`` and ``step_biases_ [T, K]`` (scaled by the step sizes),
    ``step_sizes_ [T]``, ``train_loss_ [T]`` (mean squared error after each step),
    ``n_steps_`` (= ``n_iter_``), ``n_units_``, ``n_outputs_``, ``n_features_in_``.
    """

    def fit(self, X: Any, y: Any) -> GBNNRegressor:
        """Fit on ``X: [n, d]`` and ``y: [n]`` or ``[n, K]`` (finite reals).

        If it fails (or is interrupted) the estimator is left as it was."""
        self._check_params()
        with self._unchanged_on_failure():
            Xv, yv = validate_data(  # a tensor, also one in an autograd graph, as numpy
                self,
                host_array(X),
                host_array(y),
                dtype=np.float64,
                multi_output=True,
                y_numeric=True,
                reset=True,
            )
            yv = np.asarray(yv, dtype=np.float64)
            y2 = yv.reshape(len(yv), -1)
            # boosted on standardised targets: each step's L-BFGS fit (its stopping rule and
            # initial weights assume residuals of order one), and so the model, is equivariant
            # to the target's units
            peak = np.abs(y2).max(axis=0)
            peak[peak == 0] = 1.0
            scale = (y2 / peak).std(axis=0) * peak  # no under/overflow of the squares
            scale[scale == 0] = 1.0
            fitted = self._fit_targets(Xv, y2, scale)
            fitted["_y_ndim"] = yv.ndim
            self.__dict__.update(fitted)
        return self

    def _init_output(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y.mean(axis=0))

    def _residuals(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return y - raw

    def _newton_step(self, y: np.ndarray, raw: np.ndarray, f: np.ndarray) -> float:
        return 1.0

    def _loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        return float(np.mean((y - raw) ** 2))

    def predict(self, X: Any, units: UnitsArg = None) -> np.ndarray:
        """Predictions ``[n]`` (``[n, K]`` for a 2-D target) of ``X: [n, d]``.

        ``units`` selects the switched-on hidden units (see :meth:`unit_mask`).
        """
        raw = self._raw(X, units)
        return raw[:, 0] if self._y_ndim == 1 else raw

    def score(self, X: Any, y: Any, sample_weight: Any = None, units: UnitsArg = None) -> float:
        """R^2 of ``predict(X, units)`` against ``y``."""
        from sklearn.metrics import r2_score

        return float(r2_score(y, self.predict(X, units), sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class GBNNClassifier(ClassifierMixin, _GBNNBase):
    """Gradient Boosted Neural Network classifier (log loss), Emami & Martínez-Muñoz 2023.

    Binary problems use one output (the log-odds of ``classes_[1]``, initialised with the
    training log-odds); ``K > 2`` classes use ``K`` outputs with the softmax cross-entropy,
    initialised with the log class priors, and each step fits ``J`` units with ``K`` outputs to
    the ``K`` residual columns ``onehot(y) - softmax(F)``. The step size is one Newton step of
    the loss (diagonal Hessian) times ``learning_rate``, as in the authors' code.

    Parameters and fitted attributes as for :class:`GBNNRegressor`, plus ``classes_``;
    ``train_loss_`` holds the mean log loss after each step.
    """

    def fit(self, X: Any, y: Any) -> GBNNClassifier:
        """Fit on ``X: [n, d]`` and class labels ``y: [n]`` (at least two classes).

        If it fails (or is interrupted) the estimator is left as it was."""
        self._check_params()
        with self._unchanged_on_failure():
            Xv, yv = validate_data(self, host_array(X), host_array(y), dtype=np.float64, reset=True)
            check_classification_targets(yv)
            classes, codes = np.unique(yv, return_inverse=True)
            if len(classes) < 2:
                raise ValueError(
                    f"y must contain at least 2 classes, got {len(classes)} class: "
                    f"{classes.tolist()}"
                )
            if len(classes) == 2:
                target = codes.astype(np.float64)[:, None]
            else:
                target = np.eye(len(classes))[codes]
            fitted = self._fit_targets(Xv, target)
            fitted["classes_"] = classes
            self.__dict__.update(fitted)
        return self

    @property
    def _binary(self) -> bool:
        check_is_fitted(self, "output_weights_")
        return len(self.classes_) == 2

    def _init_output(self, y: np.ndarray) -> np.ndarray:
        eps = 1e-12
        if y.shape[1] == 1:
            p = float(np.clip(y.mean(), eps, 1 - eps))
            return np.array([np.log(p / (1 - p))])
        prior = np.clip(y.mean(axis=0), eps, None)
        return np.asarray(np.log(prior))

    def _proba_raw(self, raw: np.ndarray) -> np.ndarray:
        if raw.shape[1] == 1:
            return np.asarray(expit(raw))
        return np.asarray(softmax(raw, axis=1))

    def _residuals(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return y - self._proba_raw(raw)

    def _newton_step(self, y: np.ndarray, raw: np.ndarray, f: np.ndarray) -> float:
        p = self._proba_raw(raw)
        num = float(np.sum((y - p) * f))
        den = float(np.sum(f * f * p * (1 - p)))
        return num / den if den > 1e-12 else 0.0

    def _loss(self, y: np.ndarray, raw: np.ndarray) -> float:
        if raw.shape[1] == 1:
            return float(np.mean(np.logaddexp(0.0, raw) - y * raw))
        return float(-np.mean(np.sum(y * log_softmax(raw, axis=1), axis=1)))

    def decision_function(self, X: Any, units: UnitsArg = None) -> np.ndarray:
        """Raw outputs: ``[n]`` log-odds for two classes, ``[n, K]`` logits otherwise."""
        raw = self._raw(X, units)
        return raw[:, 0] if self._binary else raw

    def predict_proba(self, X: Any, units: UnitsArg = None) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` of ``X: [n, d]``."""
        p = self._proba_raw(self._raw(X, units))
        return np.hstack([1 - p, p]) if self._binary else p

    def predict(self, X: Any, units: UnitsArg = None) -> np.ndarray:
        """Predicted labels ``[n]`` (from ``classes_``) of ``X: [n, d]``."""
        proba = self.predict_proba(X, units)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, X: Any, y: Any, sample_weight: Any = None, units: UnitsArg = None) -> float:
        """Accuracy of ``predict(X, units)`` against ``y``."""
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X, units), sample_weight=sample_weight))
