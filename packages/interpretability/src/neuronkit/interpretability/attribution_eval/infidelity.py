"""Explanation infidelity: does ``I . attribution`` predict what a perturbation ``I`` does?

Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (In)fidelity and Sensitivity of
Explanations" (NeurIPS 2019)::

    INFD(phi, f, x) = E_I[(I . phi(x) - (f(x) - f(x - I)))^2]

over random perturbations ``I`` of the input, ``f`` the selected output. Which perturbations
suit which explanations:

* ``"gaussian"``: ``I ~ N(0, stdev^2)`` per entry. For local explanations (saliency,
  SmoothGrad, guided backprop): as ``stdev -> 0`` the gradient is the explanation of least
  infidelity, and for larger noise the smoothed gradient is (the paper's Proposition 3).
* ``"noisy_baseline"``: the perturbed input is ``baseline + eps``, ``eps ~ N(0, stdev^2)``,
  so ``I = x - baseline - eps`` (the paper's "difference to noisy baseline"), optionally
  clamped to the data range as the authors' code clamps MNIST pixels to ``[0, 1]``.
* ``"square"``: a square of the last two dimensions (all channels), drawn uniformly from
  those of side ``1 .. max_side`` at every position (the authors' code enumerates them all),
  takes the baseline; ``I`` is the 0/1 square itself. For global explanations, those that
  include the input (gradient x input, integrated gradients, DeepLIFT, SHAP): their sum over
  the square should be the output drop.
* a callable, ``perturb(inputs) -> (I, perturbed)`` on the repeated inputs ``[B * k, *S]``
  (each example's ``k`` copies consecutive), as Captum's ``perturb_func``.

``normalize=True`` (the paper's and its code's setting) first scales each explanation by
the ``beta`` that minimizes its infidelity, ``beta = E[a d] / E[a^2]`` with ``a = I . phi`` and
``d`` the output drop, so that explanations are compared by their direction; ``False`` gives
Captum's default.

Speed: ``f(x)`` runs once (Captum runs it again for every chunk), the perturbed inputs go
through the model ``batch_size`` rows at a time without gradients, and only ``[B, n]``
numbers are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from neuronkit.common import check_choice, check_number, check_type, eval_mode, progress

from ..attribution import (
    Model,
    Target,
    _check_inputs,
    _check_model,
    _check_output,
    _generator,
    _index_tensor,
    _select,
    _target_index,
)
from ..hooks import call_model, tensor_output
from ..occlusion import _baseline

__all__ = ["PERTURBATIONS", "infidelity"]

PERTURBATIONS = ("gaussian", "noisy_baseline", "square")

Perturb = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _squares(
    shape: tuple[int, ...], n: int, max_side: int, gen: torch.Generator | None
) -> torch.Tensor:
    """``[n, 1, .., 1, H, W]`` 0/1 masks for examples of ``shape`` ``[..., H, W]``: squares
    over the last two dimensions, drawn uniformly from all those of side ``1 .. max_side``."""
    h, w = shape[-2:]
    sides = torch.arange(1, max_side + 1)
    counts = (h - sides + 1) * (w - sides + 1)  # positions of each side
    side = sides[torch.multinomial(counts.double(), n, replacement=True, generator=gen)]
    top = (torch.rand(n, generator=gen, dtype=torch.float64) * (h - side + 1)).long()
    left = (torch.rand(n, generator=gen, dtype=torch.float64) * (w - side + 1)).long()
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])  # [n, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + side)[:, None])  # [n, W]
    square = in_rows[:, :, None] & in_cols[:, None, :]  # [n, H, W]
    return square.view(n, *([1] * (len(shape) - 2)), h, w)


def infidelity(
    model: Model,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    perturbation: Literal["gaussian", "noisy_baseline", "square"] | Perturb = "gaussian",
    n_samples: int = 10,
    stdev: float = 0.2,
    baselines: float | torch.Tensor = 0.0,
    bounds: tuple[float, float] | None = None,
    max_side: int | None = None,
    normalize: bool = True,
    batch_size: int = 256,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Infidelity of each example's attributions (Captum's ``infidelity``), ``[B]``.

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode
            (its flags are restored), without gradients.
        inputs: ``[B, *S]`` floating tensor (not modified).
        attributions: ``[B, *S]``, the explanation of each example (e.g. from
            :func:`~neuronkit.interpretability.saliency`).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        perturbation: ``"gaussian"``, ``"noisy_baseline"``, ``"square"`` or a callable
            ``perturb(inputs) -> (I, perturbed)`` (see the module docstring).
        n_samples: perturbations per example (the paper's code: 10 000 on MNIST; Captum's
            default 10).
        stdev: the noise's standard deviation (``"gaussian"``, ``"noisy_baseline"``; the
            authors' MNIST setting 0.2).
        baselines: the value ``"noisy_baseline"`` and ``"square"`` perturb towards: a number or
            a tensor broadcastable to ``inputs``. Default 0.
        bounds: ``(low, high)`` range the ``"noisy_baseline"`` inputs are clamped to (e.g.
            ``(0, 1)`` for images in ``[0, 1]``); ``I`` follows the clamped inputs.
        max_side: largest square side (``"square"``); at most the smaller of the last two
            dimensions, which with 10 (the authors' MNIST setting) is the default.
        normalize: scale each explanation by its optimal ``beta`` first (see the module
            docstring; Captum's default is ``False``).
        batch_size: perturbed inputs per forward pass (``max(1, batch_size // B)`` samples of
            every example at a time). The draws depend on it.
        seed, generator: the perturbations' random source (a CPU ``torch.Generator`` or a seed
            in ``[0, 2**64)``); both ``None`` uses torch's global generator.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).

    Returns:
        ``[B]`` infidelities in ``inputs``' dtype (0 for a perfect explanation).
    """
    _check_model(model)
    _check_inputs(inputs)
    _check_inputs(attributions, "attributions")
    if attributions.shape != inputs.shape:
        raise ValueError(
            f"attributions must have the inputs' shape {tuple(inputs.shape)}, got "
            f"{tuple(attributions.shape)}"
        )
    if not callable(perturbation):
        check_choice("perturbation", perturbation, list(PERTURBATIONS))
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("stdev", stdev, ge=0.0)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_type("normalize", normalize, bool)
    if max_side is not None:
        check_number("max_side", max_side, ge=1, integer=True)
    largest_side = 0
    if perturbation == "square":
        if inputs.ndim < 3:
            raise ValueError(
                f"perturbation 'square' needs inputs [B, ..., H, W], got shape "
                f"{tuple(inputs.shape)}"
            )
        largest_side = min(10, *inputs.shape[-2:]) if max_side is None else max_side
        if largest_side > min(inputs.shape[-2:]):
            raise ValueError(
                f"max_side must be at most the smaller of the last two dimensions "
                f"{tuple(inputs.shape[-2:])}, got {max_side}"
            )
    if bounds is not None:
        if not isinstance(bounds, tuple | list) or len(bounds) != 2:
            raise TypeError(f"bounds must be a (low, high) pair or None, got {bounds!r:.80}")
        low, high = bounds
        check_number("bounds[0]", low)
        check_number("bounds[1]", high, ge=low)
    x = inputs.detach()
    base = _baseline(baselines, inputs)
    if isinstance(base, torch.Tensor):  # [B, 1, *S]: each example's k copies share it
        base = base.expand_as(x).unsqueeze(1)
    phi = attributions.detach().to(x.dtype)
    gen = _generator(seed, generator, torch.device("cpu"))
    b = x.shape[0]
    t = _target_index(target, b, x.device)
    per_pass = max(1, batch_size // b)

    def perturbed(k: int) -> tuple[torch.Tensor, torch.Tensor]:  # ([B, k, *S], [B, k, *S])
        if callable(perturbation):
            rows = x.repeat_interleave(k, dim=0)
            pair = perturbation(rows)
            if not (
                isinstance(pair, tuple)
                and len(pair) == 2
                and all(isinstance(p, torch.Tensor) and p.shape == rows.shape for p in pair)
            ):
                raise ValueError(
                    f"perturbation must return (I, perturbed inputs), two tensors shaped like "
                    f"its input {tuple(rows.shape)}"
                )
            shift, moved = pair
            return shift.view(b, k, *x.shape[1:]), moved.view(b, k, *x.shape[1:])
        xs = x.unsqueeze(1)
        if perturbation == "square":
            masks = _squares(x.shape[1:], b * k, largest_side, gen).to(x.device, x.dtype)
            masks = masks.view(b, k, *masks.shape[1:])
            return masks.expand(b, k, *x.shape[1:]), xs * (1 - masks) + base * masks
        noise = torch.randn((b, k, *x.shape[1:]), generator=gen, dtype=x.dtype).to(x.device)
        if perturbation == "gaussian":
            return noise.mul_(stdev), xs - noise
        moved = noise.mul_(stdev).add_(base)
        if bounds is not None:
            moved = moved.clamp_(*bounds)
        return xs - moved, moved

    dots, drops = [], []
    with eval_mode(model), torch.no_grad():
        outputs = tensor_output(call_model(model, x))
        _check_output(outputs, t, b)
        initial = _select(outputs, t, b)  # [B]
        tb = _index_tensor(t, b, x.device)
        for done in progress(
            range(0, n_samples, per_pass), show_progress=show_progress, desc="infidelity"
        ):
            k = min(per_pass, n_samples - done)
            shift, moved = perturbed(k)
            dots.append((shift * phi.unsqueeze(1)).flatten(2).sum(2))  # I . phi, [B, k]
            rows = moved.reshape(b * k, *x.shape[1:])  # a caller's tensor: the model gets a copy
            out = tensor_output(call_model(model, rows, copy=callable(perturbation)))
            tk = None if tb is None else tb.repeat_interleave(k)
            _check_output(out, tk, b * k, scan=False)  # range checked above
            drops.append(initial[:, None] - _select(out, tk, b * k).view(b, k))
    a, d = torch.cat(dots, 1), torch.cat(drops, 1).to(x.dtype)
    if normalize:
        # beta a does not depend on a's scale: a over its largest |entry| per example, so that
        # a . a neither underflows (tiny attributions: beta 0) nor overflows
        top = a.abs().amax(1, keepdim=True)
        a = a / torch.where(top > 0, top, torch.ones_like(top))
        aa, ad = (a * a).sum(1), (a * d).sum(1)
        beta = torch.where(aa == 0, 0.0, ad / aa.masked_fill(aa == 0, 1))
        a = a * beta[:, None]
    return (a - d).square().mean(1)
