"""LIME: a sparse linear surrogate fitted to the model around each input.

Ribeiro, Singh & Guestrin, "'Why Should I Trust You?': Explaining the Predictions of Any
Classifier" (KDD 2016): random coalitions ``z`` in ``{0, 1}^M`` of the features (feature ``i``
from the input where ``z_i = 1``, from the baseline elsewhere) are weighted by the perturbed
input's proximity to the input, ``exp(-d^2 / (2 w^2))`` with ``d`` the cosine distance (or the
Euclidean one) of the flattened inputs, and a Lasso fitted to the model's outputs on them; its
coefficients are the attributions. Settings follow Captum's ``Lime``: coalitions of
independent fair coins, cosine distance, kernel width 1, ``Lasso(alpha=0.01)`` with an
intercept (scikit-learn), 50 samples; with torch's global generator the coins are Captum's.

Features are groups of input entries sharing an index of ``feature_mask``, as in
:func:`~neuronkit.interpretability.feature_ablation.feature_ablation`. The coalitions are
shared by the batch; ``batch_size`` perturbed rows go through each forward pass (Captum's
default is one), and the distances come from per-feature sums of the input and the baseline
(no perturbed copy is formed for them).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import Lasso

from neuronkit.common import check_choice, check_number

from .attribution import Model, Target, _finite_with_inputs, _generator
from .feature_ablation import _prepared, _spread
from .occlusion import _output_drops

__all__ = ["lime"]


def _similarities(
    x: torch.Tensor,
    base: float | torch.Tensor,
    mask: torch.Tensor,
    coalitions: torch.Tensor,
    distance: str,
    kernel_width: float,
) -> torch.Tensor:
    """``exp(-d^2 / (2 w^2))`` between each example and each of its perturbed copies,
    ``[n_samples, B]``, from per-feature sums (``x`` where ``z = 1``, the baseline elsewhere;
    ``coalitions [B, n_samples, M]``)."""
    b = x.shape[0]
    flat = x.reshape(b, -1).double()
    ref = torch.as_tensor(base, dtype=torch.float64, device=x.device).expand_as(x)
    ref = ref.reshape(b, -1)
    index = mask.expand(x.shape).reshape(b, -1)
    z = coalitions.double()

    def joined(values: torch.Tensor) -> torch.Tensor:
        """``sum_i z_i v_i`` over the features in each coalition, ``[n_samples, B]``, of the
        per-entry ``values [B, D]``."""
        per_feature = values.new_zeros(b, z.shape[2]).scatter_add_(1, index, values)
        return torch.einsum("bnm,bm->nb", z, per_feature)

    if distance == "euclidean":  # |x - p|^2: the features at the baseline
        squares = (flat - ref) ** 2
        d = (squares.sum(1) - joined(squares)).clamp(min=0).sqrt()
    else:  # 1 - <x, p> / (|x| |p|), p = x where z = 1, the baseline elsewhere
        dot = joined(flat * flat - flat * ref) + (flat * ref).sum(1)
        norm_p = (joined(flat * flat - ref * ref) + (ref * ref).sum(1)).clamp(min=0)
        norm_x = flat.norm(dim=1)
        # torch's CosineSimilarity (Captum's): each norm at least eps = 1e-8
        d = 1 - dot / (norm_x.clamp(min=1e-8) * norm_p.sqrt().clamp(min=1e-8))
    return torch.exp(-(d**2) / (2 * kernel_width**2))


def lime(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    feature_mask: torch.Tensor | None = None,
    baselines: float | torch.Tensor = 0.0,
    n_samples: int = 50,
    alpha: float = 0.01,
    distance: str = "cosine",
    kernel_width: float = 1.0,
    batch_size: int = 256,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """LIME attributions (Captum's ``Lime`` with its defaults).

    Args:
        model, inputs, target, feature_mask, baselines, batch_size, show_progress: as
            :func:`~neuronkit.interpretability.shapley.shapley_values` (features outside a
            coalition take the baseline).
        n_samples: coalitions (Captum's default 50).
        alpha: the Lasso's L1 weight (scikit-learn's ``Lasso(alpha=...)``; Captum's 0.01).
        distance: ``"cosine"`` (Captum's default) or ``"euclidean"`` between the flattened
            input and each perturbed input.
        kernel_width: ``w`` of the proximity ``exp(-d^2 / (2 w^2))`` (Captum's 1.0).
        seed, generator: the coalitions' random source (a CPU ``torch.Generator`` or a seed
            in ``[0, 2**64)``); both ``None`` uses torch's global generator, like Captum.

    Returns:
        ``[B, *S]``: each entry holds its feature's Lasso coefficient.
    """
    mask, base, t, n = _prepared(model, inputs, target, feature_mask, baselines, batch_size)
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("alpha", alpha, gt=0.0)
    check_choice("distance", distance, ("cosine", "euclidean"))
    check_number("kernel_width", kernel_width, gt=0.0)
    gen = _generator(seed, generator, torch.device("cpu"))
    x = inputs.detach()
    b = x.shape[0]
    # each example its own coalitions, drawn in turn (Captum's order)
    coalitions = torch.bernoulli(torch.full((b, int(n_samples), n), 0.5), generator=gen)
    coalitions = coalitions.to(x.device)
    outside = (coalitions == 0).to(x.dtype)  # [B, n_samples, M]
    examples = torch.arange(b, device=x.device).view(1, b, *([1] * (x.ndim - 1)))
    entries = mask.expand(x.shape)

    def perturbed(start: int, stop: int) -> torch.Tensor:
        rows = torch.arange(start, stop, device=x.device).view(-1, *([1] * x.ndim))
        return outside[examples, rows, entries]  # [c, B, *S]

    drops = _output_drops(
        model, x, base, t, int(n_samples), batch_size, perturbed, show_progress, "LIME"
    )  # f(x) - f(perturbed): fitting -drops leaves the coefficients unchanged
    weights = _similarities(x, base, mask, coalitions, distance, float(kernel_width))
    for value, what in ((drops, "outputs"), (weights, "similarities")):  # Lasso fails on NaN
        _finite_with_inputs(inputs, value, what)
    design = coalitions.cpu().numpy()
    targets, proximity = (-drops).double().cpu().numpy(), weights.cpu().numpy()
    fits = [
        Lasso(alpha=float(alpha)).fit(design[i], targets[:, i], sample_weight=proximity[:, i])
        for i in range(b)
    ]
    credits = np.stack([fit.coef_ for fit in fits], axis=1)  # [M, B]
    return _spread(torch.as_tensor(credits, dtype=x.dtype, device=x.device), mask, inputs)
