"""Shapley values of input features: exact (all subsets) and by permutation sampling.

A feature's Shapley value (Shapley 1953; for model attributions Štrumbelj & Kononenko 2014,
Lundberg & Lee 2017) is its marginal contribution ``f(S + i) - f(S)`` averaged over the orders
in which the features can be added, starting from the baseline (every feature replaced by it)
and ending at the input; the values of an example sum to ``f(x) - f(baseline)``. Features are
groups of input entries sharing an index of ``feature_mask``, as in
:func:`~neuronkit.interpretability.feature_ablation.feature_ablation`.

:func:`shapley_values` computes them exactly from the ``2^n`` subsets of ``n`` features
(Captum's ``ShapleyValues`` runs all ``n!`` orders, ``n`` evaluations each);
:func:`shapley_value_sampling` averages over ``n_samples`` random orders (Štrumbelj &
Kononenko's estimator; Captum's ``ShapleyValueSampling``, whose draws it repeats: orders from
``torch.randperm`` in turn). Both evaluate ``batch_size`` perturbed rows per forward pass,
where Captum's default is one.
"""

from __future__ import annotations

import math

import torch

from neuronkit.common import check_number

from .attribution import Model, Target, _generator
from .feature_ablation import _prepared, _spread
from .occlusion import _output_drops

__all__ = ["shapley_value_sampling", "shapley_values"]

# 2^16 perturbed copies of the batch: beyond that, sample orders instead
MAX_EXACT_FEATURES = 16


def shapley_values(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    feature_mask: torch.Tensor | None = None,
    baselines: float | torch.Tensor = 0.0,
    batch_size: int = 256,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Exact Shapley values of at most 16 features (Captum's ``ShapleyValues``), from the
    model's output on all ``2^n`` subsets of them:
    ``phi_i = sum_S |S|! (n - |S| - 1)! / n! (f(S + i) - f(S))`` over the subsets ``S`` without
    ``i``.

    Args:
        model: callable mapping ``[N, ...]`` to ``[N, C]`` (or ``[N]``); runs in eval mode,
            without gradients.
        inputs: ``[B, *S]`` floating tensor (not modified).
        target: class index / indices (see :mod:`neuronkit.interpretability.attribution`).
        feature_mask: integer feature indices broadcastable to ``inputs`` (as
            :func:`~neuronkit.interpretability.feature_ablation.feature_ablation`); default
            every entry alone.
        baselines: the value of features outside a subset: a number or a tensor broadcastable
            to ``inputs``. Default 0.
        batch_size: perturbed inputs per forward pass.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).

    Returns:
        ``[B, *S]``: each entry holds its feature's Shapley value; an example's features sum to
        ``f(x) - f(baseline)``.
    """
    mask, base, t, n = _prepared(model, inputs, target, feature_mask, baselines, batch_size)
    if n > MAX_EXACT_FEATURES:
        raise ValueError(
            f"feature_mask defines {n} features: exact Shapley values need 2^{n} forward rows; "
            f"group the entries into at most {MAX_EXACT_FEATURES} features, or use "
            "shapley_value_sampling"
        )
    x = inputs.detach()
    ids_shape = (-1, *([1] * mask.ndim))

    def outside(start: int, stop: int) -> torch.Tensor:  # subsets start..stop as bit sets
        subsets = torch.arange(start, stop, device=x.device).view(ids_shape)
        return ((subsets >> mask) & 1 == 0).to(x.dtype)

    # drops[S] = f(x) - f(S): the subset's features from x, the others at the baseline
    drops = _output_drops(
        model, x, base, t, 2**n, batch_size, outside, show_progress, "Shapley values"
    )
    subsets = torch.arange(2**n, device=x.device)
    sizes = torch.zeros_like(subsets)
    for i in range(n):
        sizes += (subsets >> i) & 1
    weights = torch.tensor(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)],
        dtype=drops.dtype,
        device=x.device,
    )
    credits = torch.empty(n, x.shape[0], dtype=drops.dtype, device=x.device)
    for i in range(n):
        without = subsets[(subsets >> i) & 1 == 0]  # the subsets S without feature i
        gains = drops[without] - drops[without | (1 << i)]  # f(S + i) - f(S), [2^(n-1), B]
        credits[i] = weights[sizes[without]] @ gains
    return _spread(credits, mask, inputs)


def shapley_value_sampling(
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
    """Shapley values estimated from ``n_samples`` random feature orders (Captum's
    ``ShapleyValueSampling``): along each order the features are added to the baseline one by
    one and each is credited with the change of the output it makes.

    Args:
        model, inputs, target, feature_mask, baselines, batch_size, show_progress: as
            :func:`shapley_values`.
        n_samples: random orders (Captum's default 25); ``1 + n_samples (n - 1)`` perturbed
            inputs per example for ``n`` features.
        seed, generator: the orders' random source (a ``torch.Generator`` or a seed in
            ``[0, 2**64)``); both ``None`` uses torch's global generator, like Captum, whose
            orders it then repeats.

    Returns:
        ``[B, *S]``: each entry holds its feature's estimate; an example's features sum to
        ``f(x) - f(baseline)`` for every ``n_samples``.
    """
    mask, base, t, n = _prepared(model, inputs, target, feature_mask, baselines, batch_size)
    check_number("n_samples", n_samples, ge=1, integer=True)
    gen = _generator(seed, generator, torch.device("cpu"))
    x = inputs.detach()
    orders = torch.stack([torch.randperm(n, generator=gen) for _ in range(int(n_samples))])
    orders = orders.to(x.device)  # [n_samples, n]: feature added at each step
    ranks = orders.argsort(dim=1)  # the step at which each feature joins
    entry_ranks = ranks[:, mask]  # [n_samples, 1 or B, *S]: when each entry's feature joins
    steps = max(n - 1, 1)
    ids_shape = (-1, *([1] * mask.ndim))

    def not_added(start: int, stop: int) -> torch.Tensor:
        # perturbation 0: every feature at the baseline; 1 + s (n - 1) + (j - 1): the first j
        # features of order s added (j = 1 .. n - 1; all n added is x itself)
        ids = torch.arange(start, stop, device=x.device)
        order = (ids - 1).clamp(min=0) // steps
        added = torch.where(ids == 0, 0, (ids - 1) % steps + 1)
        return (entry_ranks[order] >= added.view(ids_shape)).to(x.dtype)

    total = 1 + int(n_samples) * (n - 1)
    drops = _output_drops(
        model, x, base, t, total, batch_size, not_added, show_progress, "Shapley value sampling"
    )  # f(x) - f(perturbed), [total, B]
    b = x.shape[0]
    along = torch.cat(  # f(x) - f(first j features), j = 0 .. n, per order: [n_samples, n + 1, B]
        (
            drops[:1].expand(int(n_samples), 1, b),
            drops[1:].view(int(n_samples), n - 1, b),
            drops.new_zeros(int(n_samples), 1, b),
        ),
        dim=1,
    )
    gains = along[:, :-1] - along[:, 1:]  # the change at each step, [n_samples, n, B]
    credits = drops.new_zeros(n, b).index_add_(0, orders.flatten(), gains.reshape(-1, b))
    return _spread(credits / int(n_samples), mask, inputs)
