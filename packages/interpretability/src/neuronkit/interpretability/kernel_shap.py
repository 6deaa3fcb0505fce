"""Kernel SHAP: Shapley values estimated by a weighted linear regression on coalitions.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions" (NeurIPS 2017): a
linear model ``g(z) = phi_0 + sum_i phi_i z_i`` over coalitions ``z`` in ``{0, 1}^M`` (feature
``i`` from the input where ``z_i = 1``, from the baseline elsewhere) fitted to the model's
outputs with the Shapley kernel ``(M - 1) / (C(M, |z|) |z| (M - |z|))`` as sample weights has
the Shapley values as coefficients. As in Captum's ``KernelShap``, the coalitions are drawn from
the kernel itself (a size ``k`` with probability proportional to ``(M - 1) / (k (M - k))``, then
``k`` features uniformly), so all of them weigh 1, except the full and the empty coalition,
always included, which weigh ``1e6`` (pinning ``g`` to ``f(x)`` and ``f(baseline)``).

Features are groups of input entries sharing an index of ``feature_mask``, as in
:func:`~neuronkit.interpretability.feature_ablation.feature_ablation`. Every example is fitted
on the same coalitions (one least-squares solve with ``B`` right-hand sides; Captum fits the
examples one by one), and ``batch_size`` perturbed rows go through each forward pass.
"""

from __future__ import annotations

import torch

from neuronkit.common import check_number

from .attribution import Model, Target, _finite_with_inputs, _generator
from .feature_ablation import _prepared, _spread
from .occlusion import _output_drops

__all__ = ["kernel_shap"]

_ENDPOINT_WEIGHT = 1e6  # Captum's weight of the full and the empty coalition


def _coalitions(n_features: int, n_samples: int, gen: torch.Generator | None) -> torch.Tensor:
    """``[n_samples, n_features]`` 0/1 coalitions: all features, none, then draws from the
    Shapley kernel (sizes ``1 .. M - 1``; none when ``M = 1``)."""
    m = n_features
    rows = [torch.ones(m), torch.zeros(m)]
    n_drawn = n_samples - 2 if m > 1 else 0
    if n_drawn > 0:
        sizes = torch.arange(1, m, dtype=torch.float64)
        probs = (m - 1) / (sizes * (m - sizes))
        k = torch.multinomial(probs / probs.sum(), n_drawn, replacement=True, generator=gen) + 1
        # each feature's place in a random order: the first k places form the coalition
        ranks = torch.rand(n_drawn, m, generator=gen).argsort(dim=1).argsort(dim=1)
        rows.append((ranks < k[:, None]).to(torch.float32).flatten())
    return torch.cat(rows).view(-1, m)


def kernel_shap(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    feature_mask: torch.Tensor | None = None,
    baselines: float | torch.Tensor = 0.0,
    n_samples: int = 25,
    batch_size: int = 256,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Kernel SHAP attributions (Captum's ``KernelShap``).

    Args:
        model, inputs, target, feature_mask, baselines, batch_size, show_progress: as
            :func:`~neuronkit.interpretability.shapley.shapley_values` (features outside a
            coalition take the baseline).
        n_samples: coalitions, the full and the empty one included (Captum's default 25); at
            least ``M + 1`` for ``M`` features for a determined fit (fewer give the
            minimum-norm solution, as scikit-learn's least squares).
        seed, generator: the coalitions' random source (a CPU ``torch.Generator`` or a seed in
            ``[0, 2**64)``); both ``None`` uses torch's global generator.

    Returns:
        ``[B, *S]``: each entry holds its feature's coefficient.
    """
    mask, base, t, n = _prepared(model, inputs, target, feature_mask, baselines, batch_size)
    check_number("n_samples", n_samples, ge=2, integer=True)
    gen = _generator(seed, generator, torch.device("cpu"))
    coalitions = _coalitions(n, int(n_samples), gen).to(inputs.device)  # [n_samples, M]
    x = inputs.detach()
    outside = (coalitions == 0).to(x.dtype)  # 1 where a feature takes the baseline
    ids_shape = (-1, *([1] * mask.ndim))

    def perturbed(start: int, stop: int) -> torch.Tensor:
        rows = torch.arange(start, stop, device=x.device).view(ids_shape)
        return outside[rows, mask]  # [c, 1 or B, *S]

    drops = _output_drops(
        model, x, base, t, len(coalitions), batch_size, perturbed, show_progress, "Kernel SHAP"
    )  # f(x) - f(h(z)), [n_samples, B]: fitting -drops leaves the coefficients unchanged
    _finite_with_inputs(inputs, drops, "outputs")  # a least-squares solve fails on NaN
    design = torch.cat((coalitions, torch.ones_like(coalitions[:, :1])), dim=1).double()
    weights = torch.ones(len(coalitions), dtype=torch.float64, device=x.device)
    weights[:2] = _ENDPOINT_WEIGHT
    root = weights.sqrt()[:, None]
    solution = torch.linalg.lstsq(
        (root * design).cpu(), (root * -drops.double()).cpu(), driver="gelsd"
    ).solution  # [M + 1, B]
    credits = solution[:n].to(device=x.device, dtype=x.dtype)
    return _spread(credits, mask, inputs)
