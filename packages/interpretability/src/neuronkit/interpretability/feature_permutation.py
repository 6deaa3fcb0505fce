"""Feature permutation: attribution by shuffling a feature across the batch.

Permutation feature importance (Breiman, "Random Forests", Machine Learning 2001; Fisher,
Rudin & Dominici, "All Models are Wrong, but Many are Useful", JMLR 2019), per example as in
Captum's ``FeaturePermutation``: each feature (every input entry, or every group of entries
sharing an index of ``feature_mask``) takes, in every example, the values of another example
of the batch (one random permutation per feature, never the identity), and the drop of the
selected output, ``f(x) - f(x permuted)``, is credited to every entry of the feature. Averaged
over a batch, it is the feature's importance for the model on that data.

Numbers equal Captum's when torch's global generator is seeded alike (permutations from
``torch.randperm`` in feature order). Speed: ``batch_size`` permuted rows per forward pass
(Captum's default: one feature per forward), shared with
:func:`~neuronkit.interpretability.feature_ablation.feature_ablation`.
"""

from __future__ import annotations

import torch

from .attribution import Model, Target, _generator
from .feature_ablation import _prepared, _spread
from .occlusion import _output_drops

__all__ = ["feature_permutation"]


def _permutations(n: int, batch: int, gen: torch.Generator | None) -> torch.Tensor:
    """``[n, batch]``: a random permutation of the examples per feature, none the identity."""
    identity = torch.arange(batch)
    rows = []
    for _ in range(n):
        perm = torch.randperm(batch, generator=gen)
        while torch.equal(perm, identity):
            perm = torch.randperm(batch, generator=gen)
        rows.append(perm)
    return torch.stack(rows)


def feature_permutation(
    model: Model,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    feature_mask: torch.Tensor | None = None,
    batch_size: int = 256,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Feature permutation attributions (Captum's ``FeaturePermutation``).

    Args:
        model, target, feature_mask, batch_size, show_progress: as
            :func:`~neuronkit.interpretability.feature_ablation.feature_ablation`.
        inputs: ``[B, *S]`` floating tensor with ``B >= 2`` examples, the data a feature is
            shuffled over (not modified).
        seed, generator: the permutations' random source (a CPU ``torch.Generator`` or a seed
            in ``[0, 2**64)``); both ``None`` uses torch's global generator, as Captum.

    Returns:
        ``[B, *S]``: each entry holds its feature's output drop in its example.
    """
    mask, _, t, n = _prepared(model, inputs, target, feature_mask, 0.0, batch_size)
    b = inputs.shape[0]
    if b < 2:
        raise ValueError(f"inputs must hold at least 2 examples to permute over, got {b}")
    perms = _permutations(n, b, _generator(seed, generator, torch.device("cpu")))
    x = inputs.detach()
    perms = perms.to(x.device)
    ids_shape = (-1, *([1] * mask.ndim))

    def permuted(start: int, stop: int) -> torch.Tensor:  # [c, B, *S]
        return x[perms[start:stop]]

    def moved(start: int, stop: int) -> torch.Tensor:  # the features start..stop
        ids = torch.arange(start, stop, device=x.device).view(ids_shape)
        return (mask == ids).to(x.dtype)

    drops = _output_drops(
        model, x, permuted, t, n, batch_size, moved, show_progress, "feature permutation"
    )  # [n_features, B]
    return _spread(drops, mask, inputs)
