"""Max-sensitivity: how far can an explanation move under a small input perturbation?

Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (In)fidelity and Sensitivity of
Explanations" (NeurIPS 2019)::

    SENS_MAX(phi, f, x, r) = max_{|y - x|_inf <= r} |phi(f, y) - phi(f, x)|

estimated, as in the paper, by Monte Carlo: the largest change over ``n_samples`` points drawn
uniformly from the L-infinity ball of radius ``r``. With ``relative=True`` (Captum's
``sensitivity_max`` and the authors' code) the change is divided by ``|phi(f, x)|``, which
makes explanations of different scales comparable. SmoothGrad lowers it (the paper's
Theorem 4.2), which the tests check.

The explanation of all ``n_samples`` perturbed copies of every example is one call of the
method (or one per ``batch_size`` rows), without the copies of the targets and baselines that
the caller would otherwise write.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from neuronkit.common import check_number, check_type

from ..attribution import Model, Target, _check_inputs, _generator, _index_tensor, _target_index

__all__ = ["sensitivity_max"]


def _explain(
    method: Callable[..., Any],
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor | None,
    kwargs: dict[str, Any],
) -> torch.Tensor:
    """``method(model, x, target, **kwargs)`` as ``[N, -1]``, checked shaped like ``x``."""
    attr = method(model, x, target, **kwargs)
    if isinstance(attr, tuple):  # (attributions, convergence delta)
        attr = attr[0]
    if not isinstance(attr, torch.Tensor) or attr.shape != x.shape:
        got = f"shape {tuple(attr.shape)}" if isinstance(attr, torch.Tensor) else type(attr)
        raise ValueError(f"method must return attributions shaped like its inputs, got {got}")
    return attr.detach().reshape(x.shape[0], -1)


def sensitivity_max(
    method: Callable[..., Any],
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    norm: float = 2.0,
    relative: bool = True,
    perturbation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    **method_kwargs: Any,
) -> torch.Tensor:
    """Max-sensitivity of an attribution method at each example (Captum's
    ``sensitivity_max``), ``[B]``.

    Args:
        method: an attribution function called as ``method(model, inputs, target,
            **method_kwargs)``, e.g. :func:`~neuronkit.interpretability.saliency` or
            :func:`~neuronkit.interpretability.smoothgrad`, returning ``[N, *S]``.
        model: the model the method explains.
        inputs: ``[B, *S]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`),
            repeated for the perturbed copies.
        radius: the L-infinity radius of the perturbations (Captum's default 0.02).
        n_samples: perturbed copies per example (Captum's default 10).
        norm: the order of the vector norm over each explanation (2: Captum's ``"fro"``;
            ``math.inf`` allowed).
        relative: divide by the norm of the unperturbed explanation (an explanation of norm 0
            by 1, as Captum).
        perturbation: ``perturb(inputs) -> perturbed`` on the repeated inputs ``[B * k, *S]``
            (each example's copies consecutive), in place of the uniform draw, as Captum's
            ``perturb_func``.
        batch_size: perturbed inputs per call of the method (``max(1, batch_size // B)``
            copies of every example at a time); default all at once. The draws depend on it.
        seed, generator: the draws' random source (a CPU ``torch.Generator`` or a seed in
            ``[0, 2**64)``); both ``None`` uses torch's global generator.
        method_kwargs: passed to the method; a ``baselines`` tensor with one row per example
            is repeated with the inputs. Options named like this function's own
            (``n_samples``, ``seed``, ...) go to the method through ``functools.partial``.

    Returns:
        ``[B]`` in the explanations' dtype.
    """
    if not callable(method):
        raise TypeError(f"method must be an attribution function, got {type(method).__name__}")
    _check_inputs(inputs)
    check_number("radius", radius, ge=0.0)
    check_number("n_samples", n_samples, ge=1, integer=True)
    if norm != math.inf:
        check_number("norm", norm, gt=0.0)
    check_type("relative", relative, bool)
    if batch_size is not None:
        check_number("batch_size", batch_size, ge=1, integer=True)
    x = inputs.detach()
    b = x.shape[0]
    tb = _index_tensor(_target_index(target, b, x.device), b, x.device)
    gen = _generator(seed, generator, torch.device("cpu"))
    per_pass = n_samples if batch_size is None else max(1, min(n_samples, batch_size // b))
    original = _explain(method, model, x, tb, method_kwargs)  # [B, D]
    scale = torch.linalg.vector_norm(original, ord=norm, dim=1)
    scale = scale.masked_fill(scale == 0, 1) if relative else torch.ones_like(scale)
    base = method_kwargs.get("baselines")
    if not (isinstance(base, torch.Tensor) and base.ndim == x.ndim and base.shape[0] == b):
        base = None  # one baseline for every example: passed on as it is
    largest = torch.full_like(scale, -math.inf)
    done = 0
    while done < n_samples:
        k = min(per_pass, n_samples - done)
        rows = x.repeat_interleave(k, dim=0)  # [B * k, *S]
        if perturbation is not None:
            moved = perturbation(rows)
            if not isinstance(moved, torch.Tensor) or moved.shape != rows.shape:
                raise ValueError(
                    f"perturbation must return perturbed inputs shaped {tuple(rows.shape)}"
                )
        else:
            draw = torch.rand(rows.shape, generator=gen, dtype=x.dtype).to(x.device)
            moved = rows + draw.mul_(2 * radius).sub_(radius)
        kwargs = method_kwargs
        if base is not None:
            kwargs = {**method_kwargs, "baselines": base.repeat_interleave(k, dim=0)}
        tk = None if tb is None else tb.repeat_interleave(k)
        change = _explain(method, model, moved, tk, kwargs) - original.repeat_interleave(k, 0)
        size = torch.linalg.vector_norm(change, ord=norm, dim=1).view(b, k)
        largest = torch.maximum(largest, (size / scale[:, None]).amax(1))
        done += k
    return largest
