"""Compute accounting and power-law fits of error against compute (Bachmann, Anagnostidis &
Hofmann, "Scaling MLPs: A Tale of Inductive Bias", NeurIPS 2023, Section 5 and Figure 1).

Compute. The authors count the forward cost of one example with fvcore and multiply by 3
(forward + backward ~ 3 forward passes) and by the examples seen. :func:`forward_flops` counts
the same operations exactly, per layer, by running one example through the model with forward
hooks: a ``Linear`` costs ``2 * in * out`` FLOPs (one multiply and one add per weight; fvcore
counts a multiply-add as *one* FLOP, so the authors' numbers are half of these) plus ``out`` for
the bias; a ``LayerNorm`` costs 5 FLOPs per element with affine parameters and 4 without
(fvcore's convention); activations and residual additions are not counted (as in fvcore).
:func:`training_flops` is ``3 * forward_flops * examples``; :func:`approx_training_flops` is the
usual ``6 * params * examples``, which the exact count approaches for wide MLPs.

Fits. :func:`fit_power_law` fits ``E = a C^(-b)`` by least squares on ``log E`` vs ``log C``
and reports ``R^2`` in log-log space; :func:`fit_power_law_offset` fits ``E = a C^(-b) + c`` (a
saturating law with an irreducible error ``c >= 0``) by non-linear least squares on ``log E``.
:func:`pareto_frontier` extracts the compute-optimal points (no other point reaches a lower
error with less compute), on which the paper fits its laws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from neuronkit.common import as_float_array, check_number, check_type, eval_mode, host_array

__all__ = [
    "PowerLawFit",
    "approx_training_flops",
    "fit_power_law",
    "fit_power_law_offset",
    "forward_flops",
    "pareto_frontier",
    "plot_scaling",
    "training_flops",
]

LAYERNORM_FLOPS_AFFINE = 5
LAYERNORM_FLOPS_PLAIN = 4


def forward_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Exact forward FLOPs of ``model`` for *one* example of shape ``input_shape``.

    Counts every executed ``nn.Linear`` (``2 in out + out``), ``nn.LayerNorm`` (5 FLOPs per
    element with affine parameters, 4 without) and ``nn.BatchNorm1d`` (same as LayerNorm) via
    forward hooks on a single zero input, so shared or repeated layers are counted each time they
    run. Activations and additions are not counted, as in fvcore (which, unlike this count, takes
    a multiply-add as one FLOP).

    Args:
        model: any module taking a batch ``[1, *input_shape]``.
        input_shape: the shape of one example, e.g. ``(64,)`` or ``(1, 8, 8)``.

    Returns:
        FLOPs of one forward pass of one example (int).
    """
    check_type("model", model, nn.Module)
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"input_shape must be a sequence of ints, got {type(input_shape).__name__}")
    for i, s in enumerate(input_shape):
        check_number(f"input_shape[{i}]", s, ge=1, integer=True)
    total = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            rows = output.numel() // module.out_features
            per_row = 2 * module.in_features * module.out_features
            per_row += module.out_features if module.bias is not None else 0
            total += rows * per_row
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            affine = (
                module.elementwise_affine if isinstance(module, nn.LayerNorm) else module.affine
            )
            per = LAYERNORM_FLOPS_AFFINE if affine else LAYERNORM_FLOPS_PLAIN
            total += per * output.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.LayerNorm, nn.BatchNorm1d))
    ]
    try:
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else torch.device("cpu")
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, *[int(s) for s in input_shape], dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def training_flops(flops_per_example: float, examples: float) -> float:
    """Training compute ``3 * flops_per_example * examples`` (backward ~ 2 forward passes).

    Args:
        flops_per_example: forward FLOPs of one example (:func:`forward_flops`).
        examples: examples seen in training (epochs x training-set size, augmented copies
            included).
    """
    check_number("flops_per_example", flops_per_example, ge=0)
    check_number("examples", examples, ge=0)
    return 3.0 * float(flops_per_example) * float(examples)


def approx_training_flops(params: float, examples: float) -> float:
    """The rule of thumb ``6 * params * examples`` (Kaplan et al.) for dense networks."""
    check_number("params", params, ge=0)
    check_number("examples", examples, ge=0)
    return 6.0 * float(params) * float(examples)


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted law ``error = a * compute^(-b) + c`` (``c = 0`` for the pure power law).

    Attributes:
        a, b, c: the parameters (``b > 0`` means error falls with compute).
        r2: coefficient of determination of ``log(error)`` (log-log space).
        kind: ``"power"`` (pure) or ``"offset"`` (with irreducible error ``c``).
        n_points: number of points fitted.
    """

    a: float
    b: float
    c: float
    r2: float
    kind: str
    n_points: int

    def predict(self, compute: Any) -> np.ndarray:
        """The fitted error at ``compute`` (a number or array-like of positive numbers): a
        float64 array of ``compute``'s shape (0-d for a number)."""
        x = np.asarray(host_array(compute), dtype=float)  # also a tensor on any device
        if np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise ValueError("compute must hold finite positive numbers")
        return np.asarray(self.a * x ** (-self.b) + self.c)


def _as_positive_pairs(compute: Any, error: Any) -> tuple[np.ndarray, np.ndarray]:
    for name, v in (("compute", compute), ("error", error)):
        if isinstance(v, (str, bytes)):
            raise TypeError(f"{name} must be a 1-D array of numbers, got {type(v).__name__}")
    try:
        x = np.asarray(host_array(compute), dtype=float)  # also a tensor in a graph
        y = np.asarray(host_array(error), dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"compute and error must be 1-D arrays of numbers ({err})") from None
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"compute and error must be 1-D, got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise ValueError(f"compute and error must have equal length, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"compute must hold at least 3 points to fit a law, got {x.size}")
    for name, v in (("compute", x), ("error", y)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, got NaN or infinity")
        if np.any(v <= 0):
            raise ValueError(f"{name} must be > 0 for a log-log fit, got min {v.min():g}")
    if np.ptp(np.log(x)) == 0:
        raise ValueError("compute must take at least two distinct values")
    return x, y


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    # sums of squares at the rounding level of y and pred (constant errors: y.mean() and a
    # flat fit are exact only to a few n eps |y|) are 0: their ratio read anything (-1.7, 0, 1)
    scale = max(float(np.abs(y).max()), float(np.abs(pred).max()))
    tol = y.size * (16 * y.size * np.finfo(float).eps * scale) ** 2
    if ss_tot > tol:
        return 1.0 - ss_res / ss_tot
    return 1.0 if ss_res <= tol else 0.0


def fit_power_law(compute: Any, error: Any) -> PowerLawFit:
    """Least-squares fit of ``log error = log a - b log compute`` (the pure power law).

    Args:
        compute: ``[n]`` positive training compute (FLOPs), ``n >= 3``.
        error: ``[n]`` positive test errors.

    Returns:
        :class:`PowerLawFit` with ``c = 0`` and ``r2`` of the log-log regression.
    """
    x, y = _as_positive_pairs(compute, error)
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    pred = intercept + slope * lx
    try:
        a = math.exp(intercept)
    except OverflowError:
        a = math.inf
    if not 0.0 < a < math.inf:
        raise ValueError(
            f"compute and error give a coefficient a = exp({intercept:.6g}) beyond the float "
            "range; rescale compute (e.g. divide it by its geometric mean)"
        )
    return PowerLawFit(
        a=a,
        b=float(-slope),
        c=0.0,
        r2=_r2(ly, pred),
        kind="power",
        n_points=int(x.size),
    )


def fit_power_law_offset(compute: Any, error: Any) -> PowerLawFit:
    """Fit ``error = a C^(-b) + c`` with ``a > 0``, ``b >= 0``, ``0 <= c < min(error)``.

    Minimizes the squared error of ``log error`` (so every scale weighs alike), starting from
    the pure power law and a grid of offsets; compute is rescaled by its geometric mean inside
    the fit for conditioning.

    Args:
        compute: ``[n]`` positive compute, ``n >= 3``.
        error: ``[n]`` positive errors.

    Returns:
        :class:`PowerLawFit` (kind ``"offset"``) with ``r2`` of ``log error``.
    """
    from scipy.optimize import least_squares

    x, y = _as_positive_pairs(compute, error)
    scale = float(np.exp(np.log(x).mean()))
    xs, ly = x / scale, np.log(y)
    c_max = float(y.min()) * (1 - 1e-6)

    def residual(theta: np.ndarray) -> np.ndarray:
        log_a, b, c = theta
        return np.log(np.exp(log_a) * xs ** (-b) + c) - ly

    best = None
    for frac in (0.0, 0.25, 0.5, 0.75, 0.9):
        c0 = frac * c_max
        # on the rescaled compute (the frame of the fit): a of C itself may be beyond the
        # float range (raised below), and scale^-b0 under- or overflowed
        pure = fit_power_law(xs, np.maximum(y - c0, 1e-12 * y.max()))
        b0 = max(pure.b, 1e-6)
        a0 = pure.a
        sol = least_squares(
            residual,
            x0=np.array([math.log(a0), b0, c0]),
            bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, c_max]),
            method="trf",
        )
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    log_a, b, c = (float(v) for v in best.x)
    log_a_c = log_a + b * math.log(scale)  # a (C/scale)^-b = (a scale^b) C^-b
    try:
        a = math.exp(log_a_c)
    except OverflowError:
        a = math.inf
    if not 0.0 < a < math.inf:  # scale^b under- or overflowed: a read 0 (or OverflowError)
        raise ValueError(
            f"compute and error give a coefficient a = exp({log_a_c:.6g}) beyond the float "
            "range; rescale compute (e.g. divide it by its geometric mean)"
        )
    pred = np.log(np.exp(log_a) * xs ** (-b) + c)
    return PowerLawFit(a=a, b=b, c=c, r2=_r2(ly, pred), kind="offset", n_points=int(x.size))


def pareto_frontier(compute: Any, error: Any) -> np.ndarray:
    """Indices of the compute-optimal points, sorted by compute.

    A point is on the frontier when every point with less or equal compute has a higher error
    (strictly), i.e. the lower-left envelope of the (compute, error) cloud.

    Args:
        compute: ``[n]`` compute values.
        error: ``[n]`` errors.

    Returns:
        ``[m]`` int indices into the inputs.
    """
    x = as_float_array("compute", compute, "[n]")
    y = as_float_array("error", error, "[n]")
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"compute and error must be 1-D of equal length, got {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("compute and error must be finite")
    order = np.lexsort((y, x))
    keep: list[int] = []
    best = np.inf
    for i in order:
        if y[i] < best:
            keep.append(int(i))
            best = y[i]
    return np.asarray(keep, dtype=int)


def plot_scaling(
    ax: Any,
    compute: Any,
    error: Any,
    fit: PowerLawFit | None = None,
    *,
    label: str = "",
    color: str | None = None,
    marker: str = "o",
) -> None:
    """Draw ``error`` vs ``compute`` on log-log axes ``ax``, with the fitted law as a line.

    Args:
        ax: a matplotlib Axes.
        compute, error: ``[n]`` points.
        fit: a :class:`PowerLawFit` to draw over the points' compute range (optional).
        label: legend label for the points (the law's label adds ``b`` and ``R^2``).
        color, marker: matplotlib styling.
    """
    if not callable(getattr(ax, "loglog", None)):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    x = as_float_array("compute", compute, "[n]").reshape(-1)
    y = as_float_array("error", error, "[n]").reshape(-1)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(
            f"compute and error must be [n] with the same n >= 1, got {np.shape(compute)}, "
            f"{np.shape(error)}"
        )
    for name, v in (("compute", x), ("error", y)):  # log-log axes would drop the others
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"{name} must hold finite numbers > 0 for log-log axes, got {v!r:.80}")
    points = ax.loglog(x, y, marker, color=color, label=label or None, ls="none")
    if fit is not None:
        check_type("fit", fit, PowerLawFit)
        grid = np.geomspace(x.min(), x.max(), 100)
        name = "a C^-b" if fit.kind == "power" else "a C^-b + c"
        ax.loglog(
            grid,
            fit.predict(grid),
            color=points[0].get_color(),
            ls="-" if fit.kind == "power" else "--",
            lw=1.2,
            label=f"{name}: b={fit.b:.2f}, R^2={fit.r2:.3f}",
        )
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel("test error")
