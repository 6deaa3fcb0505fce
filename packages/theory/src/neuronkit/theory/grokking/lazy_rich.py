"""Grokking as the transition from lazy to rich training dynamics.

Kumar, Bordelon, Gershman & Pehlevan (ICLR 2024). A two-layer network without trained readout,
``f(x) = alpha * mean_i phi(w_i . x)`` with ``phi(z) = z + eps z^2 / 2``, learns the quadratic
target ``y = (beta . x)^2 / 2`` from ``P`` Gaussian inputs ``x ~ N(0, I/D)`` by full-batch
gradient descent on the centred loss ``mean (f(x) - f_0(x) - y)^2`` with learning rate
``N / alpha^2``. The scale ``alpha`` sets the laziness: the network first fits the training set
with its initial tangent kernel (test loss at the kernel-regression plateau), and only later,
after a delay growing with ``alpha``, learns the feature ``beta`` (test loss drops, the NTK
aligns with the target). Shapes: inputs ``[P, D]``, targets ``[P]``, weights ``[N, D]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neuronkit.common import check_number, check_type, progress

from .._utils import as_float_tensor, check_input_dtype, check_positive_int, torch_generator
from ..measures import kernel_target_alignment

__all__ = [
    "LazyRichHistory",
    "QuadraticFeatureData",
    "ScaledQuadraticNet",
    "grokking_delay",
    "initial_ntk_regression",
    "interpolation_plateau",
    "quadratic_feature_data",
    "train_lazy_rich",
]


class ScaledQuadraticNet(torch.nn.Module):
    """``f(x) = alpha * mean_i phi(w_i . x)``, ``phi(z) = z + eps z^2/2`` (readout fixed at 1).

    Args:
        in_dim: input dimension ``D``.
        width: number of hidden units ``N``.
        alpha: output scale (larger is lazier).
        eps: strength of the quadratic part of the activation.
        seed: seed or generator for ``W ~ N(0, 1)`` ``[N, D]``.
        dtype: floating dtype of ``W`` (default float64); inputs must have it.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        alpha: float = 1.0,
        eps: float = 0.25,
        *,
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        d = check_positive_int("in_dim", in_dim)
        n = check_positive_int("width", width)
        check_number("alpha", alpha, gt=0)
        check_number("eps", eps)
        self.alpha = float(alpha)
        self.eps = float(eps)
        gen = torch_generator(seed)
        self.weight = torch.nn.Parameter(torch.randn(n, d, generator=gen, dtype=dtype))

    @property
    def width(self) -> int:
        return int(self.weight.shape[0])

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return z + 0.5 * self.eps * z * z

    def _check_x(self, name: str, x: torch.Tensor) -> None:
        check_type(name, x, torch.Tensor)
        check_input_dtype(name, x, self.weight.dtype)
        if x.ndim != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"{name} must be [B, {self.weight.shape[1]}], got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` -> ``[B]``."""
        self._check_x("x", x)
        return self.alpha * self.activation(x @ self.weight.T).mean(dim=1)

    def ntk(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        """Closed-form tangent kernel ``alpha^2/N^2 sum_i phi'(w_i.x) phi'(w_i.x') x.x'``.

        ``x1 [P1, D]``, ``x2 [P2, D]`` -> ``[P1, P2]`` (equals the ``torch.func`` empirical NTK).
        """
        self._check_x("x1", x1)
        if x2 is not None:
            self._check_x("x2", x2)
        return _closed_form_ntk(self, x1, x2)


def _closed_form_ntk(
    model: ScaledQuadraticNet,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    gram: torch.Tensor | None = None,
    scaled: bool = True,
) -> torch.Tensor:
    """:meth:`ScaledQuadraticNet.ntk`; ``gram`` is ``x1 @ x2.T`` when already known.

    ``scaled=False`` leaves out the factor ``(alpha / N)^2`` (which over- or underflows for
    extreme ``alpha``), for quantities invariant to the kernel's scale.

    For ``x2 = None`` the factor ``g = 1 + eps x W^T`` is computed once and used on both sides
    (the same values as computing it twice, so the kernel is bit-identical).
    """
    w = model.weight.detach()
    g1 = 1.0 + model.eps * (x1 @ w.T)
    g2 = g1 if x2 is None else 1.0 + model.eps * (x2 @ w.T)
    if gram is None:
        gram = x1 @ (x1 if x2 is None else x2).T
    if not scaled:
        return (g1 @ g2.T) * gram
    n = w.shape[0]
    return (model.alpha / n) ** 2 * (g1 @ g2.T) * gram


@dataclass(frozen=True)
class QuadraticFeatureData:
    """``x_train [P, D]``, ``y_train [P]``, ``x_test [M, D]``, ``y_test [M]``, ``beta [D]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    beta: torch.Tensor


def quadratic_feature_data(
    n_train: int,
    n_test: int,
    dim: int,
    *,
    seed: int | torch.Generator | None = None,
) -> QuadraticFeatureData:
    """The paper's task: ``x ~ N(0, I/D)``, ``beta ~ N(0, I_D)``, ``y = (beta . x)^2 / 2``."""
    p = check_positive_int("n_train", n_train)
    m = check_positive_int("n_test", n_test)
    d = check_positive_int("dim", dim)
    gen = torch_generator(seed)
    x = torch.randn(p + m, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    beta = torch.randn(d, generator=gen, dtype=torch.float64)
    y = (x @ beta) ** 2 / 2.0
    return QuadraticFeatureData(x[:p], y[:p], x[p:], y[p:], beta)


def _xy(x: Any, y: Any, name: str, model: ScaledQuadraticNet) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked ``x [P, D]`` and ``y [P]`` on the device and in the dtype of ``model.weight`` (a
    float32 model computed with float64 data raised torch's bare matmul dtype error)."""
    device, dtype, d = model.weight.device, model.weight.dtype, model.weight.shape[1]
    xt = as_float_tensor(f"x_{name}", x, 2, "[P, D]").to(device, dtype)
    yt = as_float_tensor(f"y_{name}", y, 1, "[P]").to(device, dtype)
    if yt.shape[0] != xt.shape[0]:
        raise ValueError(
            f"y_{name} must have one target per row of x_{name} ({xt.shape[0]}), got {yt.shape[0]}"
        )
    if xt.shape[1] != d:
        raise ValueError(f"x_{name} must have {d} columns (the model's in_dim), got {xt.shape[1]}")
    return xt, yt


def initial_ntk_regression(
    model: ScaledQuadraticNet,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    ridge: float = 0.0,
) -> float:
    """Test MSE of kernel regression with the model's current (initial) NTK.

    ``K(X_test, X) (K(X, X) + ridge I)^-1 y``: the function the linearized (lazy) network
    converges to from a centred start, i.e. the lazy-phase test plateau.
    """
    if not isinstance(model, ScaledQuadraticNet):
        raise TypeError(f"model must be a ScaledQuadraticNet, got {type(model).__name__}")
    xtr, ytr = _xy(x_train, y_train, "train", model)
    xte, yte = _xy(x_test, y_test, "test", model)
    check_number("ridge", ridge, ge=0)
    # K = s K1 with s = (alpha / N)^2: the prediction K1_te (K1 + (ridge / s) I)^-1 y needs no
    # s, which over- or underflows for extreme alpha (NaN or a zero kernel otherwise)
    s = model.alpha / model.width
    ridge_1 = ridge / s / s
    if math.isinf(ridge_1):  # the ridge swamps the kernel: the prediction is 0 to rounding
        return float((yte**2).mean())
    k = _closed_form_ntk(model, xtr, scaled=False)
    k = k + ridge_1 * torch.eye(xtr.shape[0], dtype=xtr.dtype, device=xtr.device)
    coef = (
        torch.linalg.lstsq(k, ytr[:, None]).solution
        if ridge == 0
        else torch.linalg.solve(k, ytr[:, None])
    )
    pred = (_closed_form_ntk(model, xte, xtr, scaled=False) @ coef)[:, 0]
    return float(((pred - yte) ** 2).mean())


@dataclass
class LazyRichHistory:
    """Losses and NTK-target alignment along training (centred loss ``(f - f_0 - y)^2``)."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    alignment_steps: list[int] = field(default_factory=list)
    alignment: list[float] = field(default_factory=list)
    weight_change: list[float] = field(default_factory=list)


def train_lazy_rich(
    model: ScaledQuadraticNet,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    steps: int,
    lr: float | None = None,
    eval_every: int = 10,
    align_every: int = 100,
    align_points: int | None = None,
    stop_test_loss: float | None = None,
    stop_drop_fraction: float | None = None,
    show_progress: bool | None = None,
) -> LazyRichHistory:
    """Full-batch gradient descent on ``mean (f(x) - f_0(x) - y)^2`` (trains ``model`` in place).

    Args:
        lr: learning rate (default ``N / alpha^2``, the paper's scaling that makes function-space
            steps independent of ``alpha``).
        eval_every: steps between loss records.
        align_every: steps between NTK-target alignments (centred, on the test inputs).
        align_points: use only the first ``align_points`` test inputs for the alignment
            (default all of them, as in the authors' notebook; with few points the diagonal of
            the kernel dominates and the alignment barely moves).
        stop_test_loss: stop early once the test loss is below this value (after the drop).
        stop_drop_fraction: stop early once the test loss is below this fraction of the lazy
            plateau (the test loss when the train loss first fell to 10% of its initial value,
            as in :func:`grokking_delay`).
        show_progress: a bar over the steps (``None``: only on a terminal).
    """
    if not isinstance(model, ScaledQuadraticNet):
        raise TypeError(f"model must be a ScaledQuadraticNet, got {type(model).__name__}")
    xtr, ytr = _xy(x_train, y_train, "train", model)
    xte, yte = _xy(x_test, y_test, "test", model)
    steps = check_positive_int("steps", steps)
    eval_every = check_positive_int("eval_every", eval_every)
    align_every = check_positive_int("align_every", align_every)
    if align_points is not None:
        align_points = check_positive_int("align_points", align_points, minimum=2)
    n = model.width
    if lr is None:
        a2 = model.alpha * model.alpha  # inf or 0 past the float range (no OverflowError)
        lr = n / a2 if a2 > 0 else math.inf
        if not 0 < lr < math.inf:
            raise ValueError(
                f"alpha={model.alpha:g} makes the default lr = N / alpha^2 = {lr:g} leave the "
                f"float range; pass lr"
            )
    check_number("lr", lr, gt=0)
    if stop_test_loss is not None:
        check_number("stop_test_loss", stop_test_loss, gt=0)
    if stop_drop_fraction is not None:
        check_number("stop_drop_fraction", stop_drop_fraction, gt=0, lt=1)
    plateau: float | None = None
    xa, ya = xte[:align_points], yte[:align_points]
    hist = LazyRichHistory()
    with torch.no_grad():
        w = model.weight
        w0 = w.detach().clone()
        w0_norm = torch.linalg.norm(w0)
        f0_train = model(xtr)
        f0_test = model(xte)
        gram_a = xa @ xa.T  # fixed: only the feature factor of the NTK changes
        alpha, eps = model.alpha, model.eps
        half_eps = 0.5 * eps
        p = xtr.shape[0]
        coef = 2.0 * alpha / (n * p)
        # Preallocated buffers: every step runs the same element-wise ops, in the same order,
        # as ``model(x) - f_0 - y`` and ``coef * ((1 + eps z) r)^T x`` (bit-identical results).
        z = torch.empty(p, n, dtype=w.dtype, device=w.device)
        h = torch.empty_like(z)  # phi(z), then the back-propagated error
        r = torch.empty(p, dtype=w.dtype, device=w.device)
        grad = torch.empty_like(w)
        dw = torch.empty_like(w)
        zt = torch.empty(xte.shape[0], n, dtype=w.dtype, device=w.device)
        ht = torch.empty_like(zt)
        test_r = torch.empty(xte.shape[0], dtype=w.dtype, device=w.device)

        def residual(
            x: torch.Tensor,
            f_init: torch.Tensor,
            y: torch.Tensor,
            zb: torch.Tensor,
            hb: torch.Tensor,
            out: torch.Tensor,
        ) -> None:
            torch.matmul(x, w.T, out=zb)
            torch.mul(zb, half_eps, out=hb)  # phi(z) = z + ((eps / 2) z) z
            hb.mul_(zb)
            hb.add_(zb)
            torch.mean(hb, dim=1, out=out)
            out.mul_(alpha)
            out.sub_(f_init)
            out.sub_(y)

        def alignment(t: int) -> None:
            hist.alignment_steps.append(t)
            hist.alignment.append(
                kernel_target_alignment(_closed_form_ntk(model, xa, None, gram_a), ya)
            )

        for t in progress(range(steps + 1), show_progress=show_progress, desc="train_lazy_rich"):
            residual(xtr, f0_train, ytr, z, h, r)
            evaluated = t % eval_every == 0
            if evaluated or t == steps:
                residual(xte, f0_test, yte, zt, ht, test_r)
                torch.sub(w, w0, out=dw)
                hist.steps.append(t)
                hist.train_loss.append(float((r**2).mean()))
                hist.test_loss.append(float((test_r**2).mean()))
                hist.weight_change.append(float(torch.linalg.norm(dw) / w0_norm))
                if not all(map(math.isfinite, (hist.train_loss[-1], hist.test_loss[-1]))):
                    raise FloatingPointError(f"training diverged at step {t} (lr={lr:g} too large)")
            if t % align_every == 0 or t == steps:
                alignment(t)
            if plateau is None and evaluated and hist.train_loss[-1] <= 0.1 * hist.train_loss[0]:
                plateau = hist.test_loss[-1]
            stop = stop_test_loss is not None and hist.test_loss[-1] < stop_test_loss
            if stop_drop_fraction is not None and plateau is not None:
                stop = stop or hist.test_loss[-1] < stop_drop_fraction * plateau
            if stop:
                if hist.alignment_steps[-1] != t:
                    alignment(t)
                break
            if t == steps:
                break
            torch.mul(z, eps, out=h)  # grad = coef ((1 + eps z) r)^T x
            h.add_(1.0)
            h.mul_(r[:, None])
            h.mul_(coef)
            torch.matmul(h.T, xtr, out=grad)
            grad.mul_(lr)
            w.sub_(grad)
    return hist


def grokking_delay(
    history: LazyRichHistory,
    *,
    fit_fraction: float = 0.1,
    drop_fraction: float = 0.5,
) -> dict[str, float]:
    """When the training set is fitted and when the test loss drops.

    ``t_fit``: first step with train loss ``<= fit_fraction`` x its initial value. ``plateau``:
    the test loss at ``t_fit``. ``t_drop``: first later step with test loss ``<= drop_fraction``
    x ``plateau``. ``delay = t_drop - t_fit`` (``nan`` when an event never happens).
    """
    if not isinstance(history, LazyRichHistory):
        raise TypeError(f"history must be a LazyRichHistory, got {type(history).__name__}")
    check_number("fit_fraction", fit_fraction, gt=0, lt=1)
    check_number("drop_fraction", drop_fraction, gt=0, lt=1)
    if not history.steps:
        raise ValueError("history must hold at least one evaluation")
    tr = np.asarray(history.train_loss)
    te = np.asarray(history.test_loss)
    st = np.asarray(history.steps)
    out = {
        "t_fit": float("nan"),
        "plateau": float("nan"),
        "t_drop": float("nan"),
        "delay": float("nan"),
    }
    fitted = np.nonzero(tr <= fit_fraction * tr[0])[0]
    if fitted.size == 0:
        return out
    i_fit = int(fitted[0])
    out["t_fit"] = float(st[i_fit])
    out["plateau"] = float(te[i_fit])
    dropped = np.nonzero(te[i_fit:] <= drop_fraction * te[i_fit])[0]
    if dropped.size:
        out["t_drop"] = float(st[i_fit + int(dropped[0])])
        out["delay"] = out["t_drop"] - out["t_fit"]
    return out


def interpolation_plateau(history: LazyRichHistory, *, fit_fraction: float = 1e-3) -> float:
    """Test loss once the training set is interpolated: the lazy-phase plateau.

    The first recorded test loss with train loss ``<= fit_fraction`` x its initial value
    (``nan`` if never). :func:`initial_ntk_regression` is the test error of the *converged*
    linearized network (train loss -> 0), so this, not the test loss at ``t_fit`` (train loss
    at 10%, where the lazy network's test loss is still falling: 6-24% above the kernel error
    at the reproduction's scale), is what it predicts for a lazy network.
    """
    return grokking_delay(history, fit_fraction=fit_fraction)["plateau"]
