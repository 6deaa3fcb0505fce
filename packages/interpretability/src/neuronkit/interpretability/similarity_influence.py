"""Training examples that a layer represents like a test example (similarity influence).

The simplest account of which training data a prediction rests on: the training examples
whose activations at a layer lie closest to the test example's (a representer baseline for
:mod:`.tracin` and :mod:`.influence_function`; Captum's ``SimilarityInfluence``). Closeness is
the cosine similarity of the flattened activations (largest first), their Euclidean distance
(smallest first) or their dot product (largest first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuronkit.common import check_choice, check_finite, check_number, check_type, eval_mode

from .hooks import check_not_compiled, layer_activations

__all__ = ["SIMILARITY_METRICS", "similarity_influence"]

#: closeness of activations: cosine similarity, Euclidean distance, dot product
SIMILARITY_METRICS = ("cosine", "euclidean", "dot")


def _similarity(test: torch.Tensor, train: torch.Tensor, metric: str) -> torch.Tensor:
    """``[M, N]`` closeness of the rows of ``test [M, F]`` and ``train [N, F]``; a zero row
    has cosine similarity 0 with every row (as scikit-learn's ``cosine_similarity``)."""
    if metric == "euclidean":
        return torch.cdist(test[None], train[None])[0]
    if metric == "cosine":
        test = test / test.norm(dim=1, keepdim=True).clamp_min(torch.finfo(test.dtype).tiny)
        train = train / train.norm(dim=1, keepdim=True).clamp_min(torch.finfo(train.dtype).tiny)
    return test @ train.T


def similarity_influence(
    model: nn.Module,
    train_inputs: torch.Tensor,
    test_inputs: torch.Tensor,
    layers: str | Sequence[str],
    *,
    metric: str = "cosine",
    top_k: int | None = None,
    batch_size: int | None = None,
    batch_dim: int = 0,
) -> dict[str, torch.Tensor] | dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The training examples each test example is closest to at ``layers`` (Captum's
    ``SimilarityInfluence``, without its activation files: the activations stay in memory).

    Args:
        model: the network; runs in eval mode (flags restored), without gradients.
        train_inputs: ``[N, ...]`` the examples to search.
        test_inputs: ``[M, ...]`` the examples to explain.
        layers: one or more submodule names; each layer's output is flattened per example.
        metric: :data:`SIMILARITY_METRICS`: ``"cosine"`` (default, Captum's), ``"euclidean"``
            (Captum's ``euclidean_distance``: closest = smallest) or ``"dot"``.
        top_k: return only the ``top_k`` closest training examples per test example.
        batch_size: examples per forward pass (default: all at once).
        batch_dim: the layers' example axis (1 for time-major ``[T, B, ...]`` layers).

    Returns:
        ``{layer: [M, N]}`` closeness of every test to every training example, or with
        ``top_k`` ``{layer: (values [M, k], indices [M, k])}``, closest first.
    """
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    check_choice("metric", metric, SIMILARITY_METRICS)
    for name, x in (("train_inputs", train_inputs), ("test_inputs", test_inputs)):
        check_type(name, x, torch.Tensor)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty batch [N, ...], got {tuple(x.shape)}")
        check_finite(name, x)
    names = [layers] if isinstance(layers, str) else list(layers)
    if top_k is not None:
        check_number("top_k", top_k, ge=1, integer=True)
        if top_k > len(train_inputs):  # before any forward pass
            n = len(train_inputs)
            raise ValueError(f"top_k must be <= the {n} training examples, got {top_k}")
    with eval_mode(model):
        train, test = (
            layer_activations(model, x, names, batch_size=batch_size, batch_dim=batch_dim, name=arg)
            for arg, x in (("train_inputs", train_inputs), ("test_inputs", test_inputs))
        )
    for name in names:
        if test[name].shape[1] != train[name].shape[1]:
            raise ValueError(
                f"test_inputs must give layer {name!r} activations of the size train_inputs give "
                f"({train[name].shape[1]} values per example), got {test[name].shape[1]}"
            )
    scores = {name: _similarity(test[name], train[name], metric) for name in names}
    if top_k is None:
        return scores
    closest: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, s in scores.items():
        values, indices = s.topk(int(top_k), dim=1, largest=metric != "euclidean")
        closest[name] = (values, indices)
    return closest
