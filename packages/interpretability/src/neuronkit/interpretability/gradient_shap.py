"""GradientSHAP: expected gradients against a distribution of baselines.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions" (NeurIPS 2017; SHAP's
``GradientExplainer``) approximate SHAP values by integrated gradients averaged over baselines
drawn from the data: for each of ``n_samples`` draws per example, a baseline ``b`` from the
given sample, a point ``a ~ U(0, 1)`` on the line to the input and (optionally) Gaussian noise
``e`` on the input, the attribution is ``(x + e - b) * grad f(b + a (x + e - b))``; their mean
is the result. In expectation it equals the mean over baselines of integrated gradients, so
the attributions of an example sum to ``f(x) - E[f(b)]`` up to sampling error.

Settings and the formula follow Captum's ``GradientShap`` (``n_samples=5``, ``stdevs=0.0``);
the draws come from a torch generator (``seed`` / ``generator``) where Captum draws the points
and baselines from numpy's global generator, so the numbers agree in distribution, not draw by
draw. All ``B * n_samples`` rows run as one batched forward and backward pass.
"""

from __future__ import annotations

import torch

from neuronkit.common import check_number, grad_enabled

from .attribution import (
    Model,
    Target,
    _baseline_sample,
    _check_inputs,
    _check_model,
    _finite_with_inputs,
    _generator,
    _gradient,
    _target_index,
)

__all__ = ["gradient_shap"]


@grad_enabled("gradient_shap")
def gradient_shap(
    model: Model,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 5,
    stdev: float = 0.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """GradientSHAP (Captum's ``GradientShap``): gradients at random points between each input
    and baselines drawn from ``baselines``, times the difference, averaged.

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode.
        inputs: ``[B, ...]`` floating tensor.
        baselines: ``[K, ...]`` reference examples (a sample of the data), drawn with
            replacement.
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        n_samples: draws per example (Captum's default 5).
        stdev: standard deviation of Gaussian noise added to the input before each draw
            (Captum's default 0.0).
        seed, generator: the draws' random source (a ``torch.Generator`` or a seed in
            ``[0, 2**64)``); both ``None`` uses torch's global generator.

    Returns:
        ``[B, ...]`` attributions.
    """
    _check_model(model)
    _check_inputs(inputs, finite=False)
    refs = _baseline_sample(baselines, inputs)
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("stdev", stdev, ge=0.0)
    gen = _generator(seed, generator, inputs.device)
    batch, n = inputs.shape[0], int(n_samples)
    t = _target_index(target, batch, inputs.device)
    x = inputs.detach().repeat_interleave(n, dim=0)  # example-major rows, as Captum's
    if stdev > 0:
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        x = x + noise * stdev
    picks = torch.randint(len(refs), (len(x),), generator=gen, device=x.device)
    base = refs[picks]
    alphas = torch.rand(len(x), generator=gen, dtype=x.dtype, device=x.device)
    alphas = alphas.view(-1, *([1] * (x.ndim - 1)))
    points = (alphas * x + (1 - alphas) * base).requires_grad_(True)
    rows_t = t.repeat_interleave(n) if isinstance(t, torch.Tensor) else t
    grads = _gradient(model, points, rows_t, own=True)
    attributions = ((x - base) * grads).view(batch, n, *inputs.shape[1:]).mean(1)
    return _finite_with_inputs(inputs, attributions, "outputs or gradients")
