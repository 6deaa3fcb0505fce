"""Gradient-based attribution methods, batched, with Captum's conventions.

Every method takes a model (any callable mapping a batch to outputs), a batch of ``inputs``
``[B, ...]`` and a ``target`` and returns a tensor shaped like ``inputs``. Numbers equal
Captum's for the same settings (``Saliency``, ``InputXGradient``, ``IntegratedGradients``,
``NoiseTunnel``); the defaults below are Captum's defaults and are stated on each function.

Targets (as in Captum): ``None`` when the model returns one number per example (``[B]`` or
``[B, 1]``); an ``int`` class index for every example; or a sequence / 1-D integer tensor of
``B`` class indices. The attributed quantity is the selected output, summed over the batch, so
each example's attribution is the gradient of its own output.

The model runs in eval mode (its flags are restored afterwards, also on an error): dropout is
off and BatchNorm uses, and keeps, its running statistics, so a model left in training mode
is not changed and gives deterministic attributions. Nothing here changes the parameters'
``.grad``: gradients are taken with ``torch.autograd.grad`` with respect to the inputs only,
which also skips the weight-gradient work of a full ``backward``. Inputs are never modified:
the model gets a copy, so a model that modifies its input in place (``x.sub_(0.5)``,
``F.relu(x, inplace=True)``) works too. The methods turn autograd on for themselves, so they
work inside ``torch.no_grad()``; under ``torch.inference_mode()`` they raise ``RuntimeError``
(inputs made there, inference tensors, are fine outside it).

Speed: integrated gradients evaluates all ``n_steps`` interpolation points of all examples in
one batched forward and backward pass (or in chunks of ``internal_batch_size`` rows), so its
cost is that of one forward+backward on a ``[n_steps * B, ...]`` batch.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    detached_input,
    eval_mode,
    grad_enabled,
    integer_dtype,
)

from .hooks import call_model, tensor_output

__all__ = [
    "IG_METHODS",
    "Target",
    "input_x_gradient",
    "integrated_gradients",
    "integration_nodes",
    "loss_gradient",
    "random_attribution",
    "saliency",
    "smoothgrad",
]

Target = int | Sequence[int] | torch.Tensor | None
Model = Callable[[torch.Tensor], torch.Tensor]

#: torch's elementwise activation modules: DeepLIFT's Rescale rule applies to each (Captum's
#: to the first six), LRP passes relevance through them (Captum's LRP through ReLU and Tanh)
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.SELU,
    nn.CELU,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.PReLU,
)

IG_METHODS = (
    "gausslegendre",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
)


# --------------------------------------------------------------------------------------------
# validation helpers
#
# The per-call overhead matters at small batch (a batch-1 MLP pass costs well under a
# millisecond), so the hot path does O(1) Python checks plus one reduction over the inputs, and
# the target is applied as the ``grad_outputs`` of ``torch.autograd.grad`` (a one-hot
# ``[B, C]``) rather than through a gather / sum graph: the same numbers (the gradient of
# ``sum_i out[i, t_i]`` with respect to ``out`` is that one-hot), fewer operations.


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be a callable (e.g. nn.Module), got {type(model).__name__}")


def _check_inputs(inputs: Any, name: str = "inputs", *, finite: bool = True) -> None:
    """Type and shape of ``inputs``; their finiteness too unless ``finite=False`` (the method
    then reads it with its result's, :func:`_finite_with_inputs`)."""
    check_type(name, inputs, torch.Tensor)
    if not inputs.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (gradients are taken with respect to it), "
            f"got dtype {inputs.dtype}"
        )
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch [B, ...], got shape {tuple(inputs.shape)}"
        )
    if finite:
        check_finite(name, inputs)


def _target_index(target: Target, batch: int, device: torch.device) -> int | torch.Tensor | None:
    """``target`` as an ``int`` (one class for every example), a ``[batch]`` long tensor or
    ``None``; the range is checked against the model output by :func:`_grad_outputs`."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise TypeError(f"target must be an int, a sequence of ints or a tensor, got {target!r}")
    if isinstance(target, (int, np.integer)):
        return int(target)
    if isinstance(target, torch.Tensor):
        if not integer_dtype(target):
            raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
        if target.ndim == 0:
            return int(target.item())
        if target.ndim > 2 or (target.ndim == 2 and target.shape[1] != 1):
            raise ValueError(
                f"target must be [B] (or [B, 1]) class indices, got shape {tuple(target.shape)}"
            )
        if target.ndim == 1 and target.dtype == torch.long and target.device == device:
            # ready as it is (integer tensors never require grad), unless an inference tensor
            t = target.clone() if target.is_inference() else target
        else:  # an inference tensor cannot enter a loss graph
            t = detached_input(target.reshape(-1)).to(device=device, dtype=torch.long)
    elif isinstance(target, Sequence) and not isinstance(target, str):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in target):
            raise TypeError(f"target must hold integer class indices, got {list(target)!r:.80}")
        t = torch.as_tensor(list(target), dtype=torch.long, device=device)
    else:
        raise TypeError(
            f"target must be None, an int, a sequence of ints or a tensor, "
            f"got {type(target).__name__}"
        )
    if t.numel() != batch:
        raise ValueError(f"target must have one index per example ({batch}), got {t.numel()}")
    return t


def _index_tensor(
    target: int | torch.Tensor | None, batch: int, device: torch.device
) -> torch.Tensor | None:
    """The ``[batch]`` long tensor form of a prepared target."""
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long, device=device)
    return target


def _repeat(target: int | torch.Tensor | None, k: int) -> int | torch.Tensor | None:
    """The target of ``k`` stacked copies of the batch (``[k * B]``, copy-major)."""
    return target.expand(k, -1).reshape(-1) if isinstance(target, torch.Tensor) else target


def _check_output(
    outputs: Any, target: int | torch.Tensor | None, batch: int, *, scan: bool = True
) -> None:
    """Validate the model output ``[batch, ...]`` and the target's range. ``scan=False`` skips
    the range scan of an index tensor on the CPU, for :func:`_one_hot` to check while
    scattering."""
    tensor_output(outputs)
    if outputs.ndim == 0 or outputs.shape[0] != batch:
        raise ValueError(
            f"model output must have the batch size {batch} as first dimension, "
            f"got shape {tuple(outputs.shape)}"
        )
    if target is None:
        if outputs.ndim == 1 or outputs[0].numel() == 1:
            return
        raise ValueError(
            f"target must be given when the model returns several outputs per example "
            f"(output shape {tuple(outputs.shape)})"
        )
    if outputs.ndim != 2:
        raise ValueError(
            "model output must be [B, C] to select a target class, "
            f"got shape {tuple(outputs.shape)}"
        )
    n_classes = outputs.shape[1]
    if isinstance(target, int):
        if not 0 <= target < n_classes:
            raise ValueError(f"target must be in [0, {n_classes}), got {target}")
    elif scan or target.device.type != "cpu":  # off the CPU, a bad index is a device assert
        bad = _out_of_range(target, n_classes)
        if bad is not None:
            raise ValueError(f"target must be in [0, {n_classes}), got {bad}")


def _out_of_range(target: torch.Tensor, n_classes: int) -> int | None:
    """An index of ``target`` outside ``[0, n_classes)``, or ``None``."""
    lo, hi = torch.aminmax(target)
    lo_v, hi_v = torch.stack((lo, hi)).tolist()  # one host sync
    if lo_v < 0:
        return int(lo_v)
    return int(hi_v) if hi_v >= n_classes else None


def _one_hot(outputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """``[B, C]`` with a 1 at each row's target class: d sum_i out[i, t_i] / d out."""
    grad_out = torch.zeros_like(outputs, memory_format=torch.contiguous_format)
    if isinstance(target, int):
        grad_out.select(1, target).fill_(1)
        return grad_out
    try:  # the CPU kernel bounds-checks every index (negative ones included)
        return grad_out.scatter_(1, target.unsqueeze(1), 1)
    except (RuntimeError, IndexError):
        n_classes = outputs.shape[1]
        bad = _out_of_range(target, n_classes)
        if bad is None:
            raise
        raise ValueError(f"target must be in [0, {n_classes}), got {bad}") from None


def _grad_outputs(outputs: Any, target: int | torch.Tensor | None, batch: int) -> torch.Tensor:
    """Validate ``outputs`` and return the ``grad_outputs`` selecting each row's output."""
    _check_output(outputs, target, batch, scan=False)
    if target is None:
        return torch.ones_like(outputs)
    return _one_hot(outputs, target)


def _select(outputs: torch.Tensor, target: int | torch.Tensor | None, batch: int) -> torch.Tensor:
    """The attributed output of each row, ``[batch]`` (for a validated ``outputs``)."""
    if target is None:
        return outputs.reshape(batch)
    if isinstance(target, int):
        return outputs[:, target]
    return outputs.gather(1, target[:, None]).reshape(batch)


def _check_graph(outputs: torch.Tensor, what: str = "model returned a tensor") -> None:
    """A (validated) output must depend on the input through autograd (the public methods run
    under :func:`~neuronkit.common.grad_enabled`, which names a caller's inference mode)."""
    if not outputs.requires_grad:
        raise ValueError(
            f"{what} detached from its input (requires_grad=False, no autograd graph): "
            "attributions need the output to be computed from inputs with gradients "
            "(e.g. no .detach(), torch.no_grad() or new tensors inside the model)"
        )


def _check_finite_result(result: torch.Tensor, what: str = "outputs") -> torch.Tensor:
    """``result`` (attributions) if finite, else ``ValueError``: the model (or loss) produced
    NaN / infinity, which would otherwise reach the attributions silently (one host sync). A
    finite sum proves every entry finite (one float pass; a bool ``isfinite`` pass is several
    times slower on the CPU); only a non-finite sum, which large finite entries can also
    give, is checked entry by entry."""
    if not (math.isfinite(float(result.sum())) or bool(result.isfinite().all())):
        raise ValueError(
            f"model produced non-finite {what} (NaN or infinity) for these inputs, so the "
            "attributions are not finite; check the model's parameters and outputs"
        )
    return result


def _finite_with_inputs(inputs: torch.Tensor, result: torch.Tensor, what: str) -> torch.Tensor:
    """``result`` (attributions) after one host read that also covers the method's ``inputs``:
    a finite ``inputs . result`` (their dot product; of the same shape and dtype, else the sum
    of both sums) proves both finite (a NaN or infinity in either gives a NaN or infinite
    total: ``0 * inf`` is NaN). Otherwise the inputs are checked first ("inputs must be
    finite"), then the result (an overflowing total of finite values passes both). One
    reduction over both: at batch 1 a small op inside a call costs several times what it does
    in a loop, and the dot replaced two sums and their addition (about 8 us of a 0.25 ms
    saliency call)."""
    x = inputs.detach()
    if x.shape == result.shape and x.dtype == result.dtype:
        total = torch.dot(x.reshape(-1), result.reshape(-1))
    else:  # e.g. smoothgrad's attributions from a method returning another dtype
        total = x.sum() + result.sum()
    if math.isfinite(float(total)):
        return result
    check_finite("inputs", inputs)
    return _check_finite_result(result, what)


def _gradient(
    model: Model, x: torch.Tensor, target: int | torch.Tensor | None, *, own: bool = False
) -> torch.Tensor:
    """d model(x)[i, target_i] / d x, for a leaf ``x`` that requires grad (the model runs in
    eval mode, on a copy of ``x`` unless the method made ``x`` itself, ``own=True``: see
    :func:`~neuronkit.interpretability.hooks.call_model`); not checked finite: callers check
    their final result once (:func:`_finite_with_inputs`)."""
    with eval_mode(model):
        outputs = call_model(model, x, copy=not own)
        grad_out = _grad_outputs(outputs, target, x.shape[0])
        _check_graph(outputs)
        (grad,) = torch.autograd.grad(outputs, x, grad_out)
    return grad


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """A new leaf with the values of ``x`` (a copy of an inference tensor, which cannot take
    ``requires_grad`` outside inference mode)."""
    return detached_input(x).requires_grad_(True)


# --------------------------------------------------------------------------------------------
# methods


@grad_enabled("saliency")
def saliency(
    model: Model, inputs: torch.Tensor, target: Target = None, *, abs: bool = True
) -> torch.Tensor:
    """Input gradient (Simonyan et al. 2013), Captum's ``Saliency``. The model runs in eval
    mode (its flags are restored).

    Args:
        model: callable mapping ``[B, ...]`` to ``[B, C]`` (or ``[B]``).
        inputs: ``[B, ...]`` floating tensor.
        target: class index / indices (see module docstring).
        abs: return ``|gradient|`` (Captum's default, ``True``); ``False`` keeps the sign.

    Returns:
        ``[B, ...]`` attributions.
    """
    _check_model(model)
    _check_inputs(inputs, finite=False)
    check_type("abs", abs, bool)
    t = _target_index(target, inputs.shape[0], inputs.device)
    grad = _gradient(model, _leaf(inputs), t)
    grad = _finite_with_inputs(inputs, grad, "outputs or gradients")
    return grad.abs() if abs else grad


@grad_enabled("input_x_gradient")
def input_x_gradient(model: Model, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Gradient times input, Captum's ``InputXGradient``: ``x * d f_target / d x``. The model
    runs in eval mode (its flags are restored)."""
    _check_model(model)
    _check_inputs(inputs, finite=False)
    t = _target_index(target, inputs.shape[0], inputs.device)
    grad = _gradient(model, _leaf(inputs), t)
    return _finite_with_inputs(inputs, grad * inputs.detach(), "outputs or gradients")


@grad_enabled("loss_gradient")
def loss_gradient(
    model: Model,
    inputs: torch.Tensor,
    target: Target,
    *,
    loss: Literal["cross_entropy"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
        "cross_entropy"
    ),
    abs: bool = False,
) -> torch.Tensor:
    """Gradient of each example's loss with respect to its input (the DiffROAR paper's choice).
    The model runs in eval mode (its flags are restored).

    Args:
        model: classifier returning logits ``[B, C]``.
        inputs: ``[B, ...]``.
        target: the labels (required).
        loss: ``"cross_entropy"`` or a callable ``loss(logits, labels)`` returning per-example
            losses ``[B]``.
        abs: return the magnitude.
    """
    _check_model(model)
    _check_inputs(inputs)
    check_type("abs", abs, bool)
    if target is None:
        raise ValueError("target must give the labels for a loss gradient, got None")
    t = _target_index(target, inputs.shape[0], inputs.device)
    if isinstance(loss, str):
        check_choice("loss", loss, ["cross_entropy"])
    elif not callable(loss):
        raise TypeError(f"loss must be 'cross_entropy' or a callable, got {type(loss).__name__}")
    x = _leaf(inputs)
    labels = _index_tensor(t, x.shape[0], x.device)
    assert labels is not None
    with eval_mode(model):
        logits = call_model(model, x)
        _check_output(logits, labels, x.shape[0])
        _check_graph(logits)
        per_example = (
            F.cross_entropy(logits, labels, reduction="none")
            if isinstance(loss, str)
            else loss(logits, labels)
        )
        if not isinstance(per_example, torch.Tensor):
            raise TypeError(f"loss must return a tensor, got {type(per_example).__name__}")
        if per_example.shape != (x.shape[0],):
            raise ValueError(
                f"loss must return per-example losses of shape [B] = [{x.shape[0]}], got shape "
                f"{tuple(per_example.shape)} (use reduction='none')"
            )
        _check_graph(per_example, "loss returned a tensor")
        (grad,) = torch.autograd.grad(per_example.sum(), x)
    _check_finite_result(grad, "outputs, losses or gradients")
    return grad.abs() if abs else grad


def integration_nodes(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation points ``alphas`` in [0, 1] and their weights, as Captum computes them.

    ``gausslegendre``: Gauss-Legendre nodes mapped to [0, 1] (weights sum to 1).
    ``riemann_left/right/middle``: ``n_steps`` equal weights ``1/n``;
    ``riemann_trapezoid``: ``n`` points ``linspace(0, 1, n)`` with weights ``1/n`` and end
    points ``1/(2n)`` (Captum's convention; the weights sum to ``1 - 1/n``).
    """
    check_choice("method", method, IG_METHODS)
    check_number("n_steps", n_steps, ge=1, integer=True)
    alphas, weights = _nodes(method, int(n_steps))
    return alphas.copy(), weights.copy()


@functools.lru_cache(maxsize=64)
def _nodes(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cached nodes (``leggauss`` costs milliseconds, more than a small model's pass)."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        alphas_np, steps = 0.5 * (nodes + 1.0), 0.5 * weights
    else:
        if n < 2:
            raise ValueError(f"n_steps must be >= 2 for Riemann methods, got {n}")
        steps = np.full(n, 1.0 / n)
        kind = method.split("_")[1]
        if kind == "trapezoid":
            steps[0] /= 2
            steps[-1] /= 2
            alphas = torch.linspace(0, 1, n)
        elif kind == "left":
            alphas = torch.linspace(0, 1 - 1 / n, n)
        elif kind == "middle":
            alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
        else:
            alphas = torch.linspace(1 / n, 1, n)
        alphas_np = alphas.double().numpy()
    alphas_np.setflags(write=False)
    steps.setflags(write=False)
    return alphas_np, steps


def _baselines(baselines: Any, inputs: torch.Tensor) -> torch.Tensor:
    if baselines is None:
        return torch.zeros_like(inputs)
    if isinstance(baselines, np.ndarray) and baselines.ndim == 0:
        baselines = baselines.item()
    if isinstance(baselines, numbers.Real) and not isinstance(baselines, bool):  # np.float32 too
        check_number("baselines", baselines)
        return torch.full_like(inputs, float(baselines))
    check_type("baselines", baselines, torch.Tensor)
    check_floating("baselines", baselines)
    check_finite("baselines", baselines)
    if baselines.shape == inputs.shape:
        return baselines.detach().to(inputs)
    if baselines.ndim == 0:  # a scalar tensor
        return baselines.detach().to(inputs).expand_as(inputs)
    if baselines.shape == inputs.shape[1:] or baselines.shape == (1, *inputs.shape[1:]):
        return baselines.detach().to(inputs).reshape(1, *inputs.shape[1:]).expand_as(inputs)
    raise ValueError(
        f"baselines must be a scalar or have shape {tuple(inputs.shape)} or "
        f"{tuple(inputs.shape[1:])}, got {tuple(baselines.shape)}"
    )


def _baseline_sample(baselines: Any, inputs: torch.Tensor) -> torch.Tensor:
    """``baselines`` checked as ``K >= 1`` reference examples ``[K, *S]`` for ``inputs [B, *S]``
    (DeepLIFT SHAP, GradientSHAP), detached, in the inputs' dtype and device."""
    check_type("baselines", baselines, torch.Tensor)
    check_floating("baselines", baselines)
    if (
        baselines.ndim != inputs.ndim
        or baselines.shape[1:] != inputs.shape[1:]
        or not len(baselines)
    ):
        raise ValueError(
            f"baselines must be [K, {', '.join(map(str, inputs.shape[1:]))}] with K >= 1 "
            f"(a sample of reference examples), got {tuple(baselines.shape)}"
        )
    return baselines.detach().to(inputs)


def _forward_selected(
    model: Model, x: torch.Tensor, target: int | torch.Tensor | None
) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        outputs = call_model(model, x)
        _check_output(outputs, target, x.shape[0])
        return _select(outputs, target, x.shape[0])


@grad_enabled("integrated_gradients")
def integrated_gradients(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baselines: torch.Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
    return_convergence_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (Sundararajan et al. 2017), Captum's ``IntegratedGradients``.

    ``IG_i(x) = (x_i - x'_i) * sum_k w_k * d f(x' + a_k (x - x')) / d x_i`` with nodes
    ``a_k`` and weights ``w_k`` from :func:`integration_nodes`. The model runs in eval mode
    (its flags are restored).

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``).
        inputs: ``[B, ...]``.
        target: class index / indices.
        baselines: reference input ``x'``: ``None`` (zeros, Captum's default), a scalar, a
            tensor shaped like ``inputs`` or like one example.
        n_steps: number of interpolation points (Captum's default 50).
        method: ``"gausslegendre"`` (Captum's default) or ``"riemann_left"``,
            ``"riemann_right"``, ``"riemann_middle"``, ``"riemann_trapezoid"``.
        internal_batch_size: at most this many interpolated rows per forward pass (at least
            one step of all ``B`` examples); ``None`` runs all ``n_steps * B`` rows at once.
        return_convergence_delta: also return ``sum_i IG_i - (f(x) - f(x'))`` per example
            (completeness error, Captum's sign convention; two extra forward passes).

    Returns:
        ``[B, ...]`` attributions, and ``[B]`` deltas when asked.
    """
    _check_model(model)
    _check_inputs(inputs, finite=False)
    check_number("n_steps", n_steps, ge=1, integer=True)
    check_type("return_convergence_delta", return_convergence_delta, bool)
    if internal_batch_size is not None:
        check_number("internal_batch_size", internal_batch_size, ge=1, integer=True)
    check_choice("method", method, IG_METHODS)
    batch = inputs.shape[0]
    t = _target_index(target, batch, inputs.device)
    x = inputs.detach()
    # the weighted sum over the steps in float32 at least: a half-precision running sum over
    # internal_batch_size chunks drifts by several ulps (bfloat16, 300 steps one at a time:
    # 2.86 for 3), and a half weight (1/50 in bfloat16) is rounded before it is summed
    wide = torch.promote_types(x.dtype, torch.float32)
    alphas, weights = _node_tensors(method, int(n_steps), x.dtype, x.device, wide)
    view = (-1, *([1] * x.ndim))
    if baselines is None:  # zero baseline: skip the subtractions
        base, diff = None, x
    else:
        base = _baselines(baselines, x)
        diff = x - base
    steps_per_pass = (
        n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
    )
    total: torch.Tensor | None = None
    for start in range(0, n_steps, steps_per_pass):
        stop = min(n_steps, start + steps_per_pass)
        k = stop - start
        scaled = alphas[start:stop].view(view) * diff
        if base is not None:
            scaled = scaled + base
        scaled = scaled.reshape(k * batch, *x.shape[1:]).requires_grad_(True)
        grads = _gradient(model, scaled, _repeat(t, k), own=True)
        part = (weights[start:stop] @ grads.reshape(k, -1).to(wide)).reshape(x.shape)
        total = part if total is None else total + part
    assert total is not None
    # checked once, for all chunks
    attributions = _finite_with_inputs(inputs, (total * diff).to(x.dtype), "outputs or gradients")
    if not return_convergence_delta:
        return attributions
    baseline_out = _forward_selected(
        model, torch.zeros_like(x) if base is None else base.contiguous(), t
    )
    delta = attributions.reshape(batch, -1).sum(1) - (_forward_selected(model, x, t) - baseline_out)
    return attributions, _check_finite_result(delta, "outputs")


@functools.lru_cache(maxsize=64)
def _node_tensors(
    method: str,
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    weight_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n]`` nodes in ``dtype`` and ``[n]`` weights in ``weight_dtype`` (default ``dtype``)."""
    alphas_np, weights_np = _nodes(method, n)
    alphas = torch.tensor(alphas_np, dtype=dtype, device=device)
    # Captum multiplies by float32 step sizes; keep that rounding for equal numbers
    weights = torch.tensor(weights_np, dtype=torch.float32, device=device)
    weights = weights.to(dtype if weight_dtype is None else weight_dtype)
    return alphas, weights


AttributionFn = Callable[..., Any]
_SMOOTHABLE: dict[str, AttributionFn] = {}


@grad_enabled("smoothgrad")
def smoothgrad(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    method: str | AttributionFn = "saliency",
    n_samples: int = 5,
    stdev: float = 1.0,
    kind: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad",
    samples_batch_size: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    **method_kwargs: Any,
) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): average an attribution over noisy copies of the input.

    Matches Captum's ``NoiseTunnel(method).attribute(..., nt_type=kind, nt_samples=n_samples,
    stdevs=stdev, nt_samples_batch_size=samples_batch_size)`` including the order in which
    noise is drawn, so with the same random state the numbers are identical. The model runs
    in eval mode (its flags are restored), also for a callable ``method``.

    Args:
        model, inputs, target: as for :func:`saliency`.
        method: ``"saliency"`` (default; its ``abs=True`` default applies, as in Captum),
            ``"input_x_gradient"``, ``"integrated_gradients"`` or a callable
            ``method(model, inputs, target, **method_kwargs)``.
        n_samples: noisy copies per example (Captum's default 5; the SmoothGrad paper
            suggests about 50).
        stdev: standard deviation of the Gaussian noise, in input units (Captum's default
            1.0; the paper suggests 10-20% of the input range).
        kind: ``"smoothgrad"`` mean, ``"smoothgrad_sq"`` mean of squares, ``"vargrad"``
            variance of the sampled attributions.
        samples_batch_size: noisy copies per example evaluated per pass (default: all).
        seed, generator: the noise's random source (a ``torch.Generator`` or a seed in
            ``[0, 2**64)`` for a new one); both ``None`` uses torch's global generator, like
            Captum.
        method_kwargs: passed to the method (e.g. ``abs=False``, ``n_steps=20``); for a named
            method, a keyword it does not take raises ``TypeError``. A callable method must
            return attributions shaped like its (noisy) inputs.
    """
    _check_model(model)
    _check_inputs(inputs, finite=False)
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("stdev", stdev, ge=0.0)
    check_choice("kind", kind, ["smoothgrad", "smoothgrad_sq", "vargrad"])
    if samples_batch_size is not None:
        check_number("samples_batch_size", samples_batch_size, ge=1, integer=True)
    if isinstance(method, str):
        fn = _SMOOTHABLE.get(method)
        if fn is None:
            raise ValueError(
                f"method must be one of {sorted(_SMOOTHABLE)} or a callable, got {method!r}"
            )
        unknown = sorted(set(method_kwargs) - _keyword_options(method))
        if unknown:
            raise TypeError(
                f"method_kwargs: {unknown} are not options of method {method!r} "
                f"(its options: {sorted(_keyword_options(method))})"
            )
        if method == "saliency":  # the noisy copies of finite inputs need no re-validation
            fn = _noisy_saliency
    elif callable(method):
        fn = method
    else:
        raise TypeError(f"method must be a name or a callable, got {type(method).__name__}")
    gen = _generator(seed, generator, inputs.device)
    batch = inputs.shape[0]
    t = _target_index(target, batch, inputs.device)
    x = inputs.detach()
    per_pass = n_samples if samples_batch_size is None else min(n_samples, samples_batch_size)
    squares = kind != "smoothgrad"
    total: torch.Tensor | None = None
    total_sq: torch.Tensor | None = None
    done = 0
    while done < n_samples:
        k = min(per_pass, n_samples - done)
        shape = (batch * k, *x.shape[1:])
        # float32 draws scaled in float32 whatever x's dtype, as Captum's NoiseTunnel does, so
        # float64 inputs see Captum's noise too
        noise = torch.randn(shape, generator=gen, dtype=torch.float32, device=x.device)
        noise = noise.mul_(stdev).to(x.dtype)
        # x + noise for k copies of each example, written into the noise buffer with x
        # broadcast (no repeated copy of x; the same numbers)
        noise.view(batch, k, *x.shape[1:]).add_(x.unsqueeze(1))
        noisy = noise
        if fn is _noisy_saliency:  # an int target stays an int (no index tensor)
            tk = t if not isinstance(t, torch.Tensor) else t.repeat_interleave(k)
        else:  # the public methods and callables get the index tensor, as before
            tb = _index_tensor(t, batch, x.device)
            tk = None if tb is None else tb.repeat_interleave(k)
        with eval_mode(model):
            attr = fn(model, noisy, tk, **method_kwargs)
        if isinstance(attr, tuple):
            attr = attr[0]
        if not isinstance(attr, torch.Tensor) or attr.shape != noisy.shape:
            got = (
                f"shape {tuple(attr.shape)}"
                if isinstance(attr, torch.Tensor)
                else type(attr).__name__
            )
            raise ValueError(
                f"method must return attributions shaped like its inputs "
                f"{tuple(noisy.shape)}, got {got}"
            )
        dtype = attr.dtype
        # sums in float32 at least: E[g^2] - E[g]^2 of bfloat16 / float16 sums cancels
        attr = attr.detach().to(torch.promote_types(dtype, torch.float32))
        attr = attr.reshape(batch, k, *x.shape[1:])
        part = attr.sum(1)
        total = part if total is None else total.add_(part)
        if squares:
            part_sq = (attr * attr).sum(1)
            total_sq = part_sq if total_sq is None else total_sq.add_(part_sq)
        done += k
    assert total is not None
    mean = total / n_samples
    if kind == "smoothgrad":
        return _finite_with_inputs(inputs, mean.to(dtype), "outputs or attributions")
    assert total_sq is not None
    mean_sq = total_sq / n_samples
    out = mean_sq if kind == "smoothgrad_sq" else mean_sq - mean * mean
    return _finite_with_inputs(inputs, out.to(dtype), "outputs or attributions")


@functools.lru_cache(maxsize=8)
def _keyword_options(method: str) -> frozenset[str]:
    """The keyword-only options of a named smoothgrad method (``abs`` of saliency, ...)."""
    params = inspect.signature(_SMOOTHABLE[method]).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _noisy_saliency(
    model: Model, inputs: torch.Tensor, target: int | torch.Tensor | None, *, abs: bool = True
) -> torch.Tensor:
    """:func:`saliency` of smoothgrad's noisy batch: ``target`` is already prepared (an int or
    an index tensor), so only the keyword is checked; smoothgrad checks its inputs and result
    once at the end (a finiteness scan of the ``n_samples`` times larger batch would cost
    about a tenth of the forward+backward)."""
    check_type("abs", abs, bool)
    grad = _gradient(model, _leaf(inputs), target, own=True)  # smoothgrad checks its result
    return grad.abs() if abs else grad


def _generator(
    seed: int | None, generator: torch.Generator | None, device: torch.device
) -> torch.Generator | None:
    if generator is not None:
        check_type("generator", generator, torch.Generator)
        if seed is not None:
            raise ValueError("seed and generator are exclusive; pass one of them")
        return generator
    if seed is None:
        return None
    check_seed(seed)
    return torch.Generator(device=device).manual_seed(int(seed))


def random_attribution(
    inputs: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random baseline attribution: i.i.d. standard normal values shaped like ``inputs``.

    Ranking coordinates by its magnitude is a uniformly random ranking (the control of ROAR /
    DiffROAR evaluations). ``seed``: an integer in ``[0, 2**64)``, or pass a ``generator``.
    """
    _check_inputs(inputs)
    gen = _generator(seed, generator, inputs.device)
    return torch.randn(inputs.shape, generator=gen, dtype=inputs.dtype, device=inputs.device)


_SMOOTHABLE.update(
    saliency=saliency,
    input_x_gradient=input_x_gradient,
    integrated_gradients=integrated_gradients,
)
