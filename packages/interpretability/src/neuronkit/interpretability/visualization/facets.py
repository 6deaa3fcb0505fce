"""Multifaceted feature visualization (Nguyen, Yosinski & Clune, 2016).

A neuron is *multifaceted* when different kinds of inputs drive it (a "grocery store" class
unit fires for rows of produce and for storefronts). Plain activation maximization from a
random start blends the facets into one incoherent image. The paper's Algorithm 1 instead:

1. takes the inputs that activate the neuron (for an output neuron: the training images of
   its class; for a hidden unit: its top-activating inputs, :func:`top_activating`),
2. embeds each by its high-level features (``fc7`` in the paper: a chosen ``layer``),
   reduced by PCA (to 50 dimensions) and then t-SNE (to 2),
3. clusters the embedding with k-means into ``k`` facets,
4. for each facet averages the ``n_nearest`` (15) inputs closest to the cluster centre into
   a *mean image*, and
5. runs activation maximization of the neuron from that mean image, with a center-biased
   regularizer (:class:`~.regularizers.CenterBias`), one visualization per facet.

:class:`FacetClustering` (steps 2-4 on a feature matrix, scikit-learn estimator API),
:func:`discover_facets` (steps 1-4 on a model and its inputs) and :func:`visualize_facets`
(step 5) are the pieces; ``embedding="pca"`` skips t-SNE (k-means on the PCA projection).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import TSNE
from torch import nn

from neuronkit.common import (
    as_float_array,
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    eval_mode,
    grad_enabled,
    host_array,
)

from ..hooks import layer_activations
from .maximize import (
    ActivationMaximization,
    Objective,
    TransformFn,
    _check_model_objective,
    maximize_activation,
    objective_values,
)
from .params import ImageParam, image_param
from .regularizers import CenterBias, Regularizer

__all__ = [
    "FacetClustering",
    "Facets",
    "discover_facets",
    "top_activating",
    "visualize_facets",
]


def top_activating(
    model: nn.Module,
    inputs: torch.Tensor,
    objective: Objective,
    k: int,
    *,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` inputs with the largest ``objective``: ``(indices [k], values [k])``.

    Sorted by decreasing value (ties keep the lower index first).
    """
    check_number("k", k, ge=1, integer=True)
    values = objective_values(model, inputs, objective, batch_size=batch_size)
    if k > values.shape[0]:
        raise ValueError(f"k must be <= the number of inputs ({values.shape[0]}), got {k}")
    order = torch.from_numpy(np.argsort(-host_array(values), kind="stable")[: int(k)].copy())
    return order, values[order]


class FacetClustering(ClusterMixin, BaseEstimator):
    """Cluster feature vectors into facets: PCA, then t-SNE (or not), then k-means.

    Steps 2-4 of Algorithm 1 of Nguyen, Yosinski & Clune (2016).

    Args:
        n_facets: number of facets ``k`` (the paper uses 10).
        n_components: PCA dimensions before t-SNE (the paper: 50); capped by the data size.
        embedding: ``"tsne"`` (the paper: 2-D t-SNE of the PCA projection) or ``"pca"``
            (k-means directly on the PCA projection).
        perplexity: t-SNE perplexity (capped at ``(N - 1) / 3``).
        n_nearest: members per facet averaged into its mean image (the paper: 15).
        standardize: scale every PCA component to unit variance before t-SNE / k-means.
        seed: seeds t-SNE and k-means.

    Fitted attributes:
        labels_: ``[N]`` facet of each sample (``0..k-1``).
        embedding_: ``[N, d]`` the space k-means ran in.
        cluster_centers_: ``[k, d]`` k-means centres in that space.
        nearest_: list of ``k`` index arrays: each facet's members closest to its centre
            (up to ``n_nearest``), nearest first.
        n_features_in_: ``D``.
    """

    def __init__(
        self,
        n_facets: int = 10,
        *,
        n_components: int = 50,
        embedding: Literal["tsne", "pca"] = "tsne",
        perplexity: float = 30.0,
        n_nearest: int = 15,
        standardize: bool = False,
        seed: int = 0,
    ) -> None:
        self.n_facets = n_facets
        self.n_components = n_components
        self.embedding = embedding
        self.perplexity = perplexity
        self.n_nearest = n_nearest
        self.standardize = standardize
        self.seed = seed

    def _validate(self, features: Any) -> np.ndarray:
        check_number("n_facets", self.n_facets, ge=1, integer=True)
        check_number("n_components", self.n_components, ge=1, integer=True)
        check_choice("embedding", self.embedding, ["tsne", "pca"])
        check_number("perplexity", self.perplexity, gt=0.0)
        check_number("n_nearest", self.n_nearest, ge=1, integer=True)
        check_type("standardize", self.standardize, bool)
        check_seed(self.seed)
        x = as_float_array("features", features, "[N, D]")  # refuses complex (not cast to real)
        if x.ndim != 2:
            raise ValueError(f"features must be a [N, D] matrix, got shape {x.shape}")
        check_finite("features", x)
        if x.shape[0] < max(2, int(self.n_facets)):
            raise ValueError(
                f"features must have at least max(2, n_facets={self.n_facets}) rows, "
                f"got {x.shape[0]}"
            )
        return x

    def fit(self, features: Any, y: Any = None) -> FacetClustering:
        """Cluster ``features`` (``[N, D]`` array or tensor); ``y`` is ignored."""
        x = self._validate(features)
        n = x.shape[0]
        dims = min(int(self.n_components), n - 1, x.shape[1])
        if dims >= 1 and dims < x.shape[1]:
            z = PCA(n_components=dims, random_state=int(self.seed)).fit_transform(x)
        else:
            z = x - x.mean(0)
        if self.standardize:
            z = z / np.maximum(z.std(0), 1e-12)
        if self.embedding == "tsne" and n > 3:
            perplexity = min(float(self.perplexity), (n - 1) / 3.0)
            z = TSNE(
                n_components=2,
                perplexity=perplexity,
                init="pca" if z.shape[1] >= 2 else "random",  # PCA init needs 2 dimensions
                learning_rate="auto",
                random_state=int(self.seed),
            ).fit_transform(z)
        with warnings.catch_warnings():  # too few distinct points: the ValueError below says so
            warnings.filterwarnings("ignore", "Number of distinct clusters", ConvergenceWarning)
            km = KMeans(n_clusters=int(self.n_facets), n_init=10, random_state=int(self.seed))
            km.fit(z)
        found = np.unique(km.labels_).size
        if found < int(self.n_facets):  # fewer distinct feature vectors than facets
            raise ValueError(
                f"n_facets: the features separate into only {found} distinct clusters, fewer "
                f"than n_facets={self.n_facets} (constant or duplicated features); use fewer "
                "facets or another layer"
            )
        self.embedding_ = np.asarray(z)
        self.labels_ = km.labels_.astype(np.int64)
        self.cluster_centers_ = km.cluster_centers_
        nearest = []
        for j in range(int(self.n_facets)):
            members = np.flatnonzero(self.labels_ == j)
            dist = np.linalg.norm(z[members] - km.cluster_centers_[j], axis=1)
            nearest.append(members[np.argsort(dist, kind="stable")[: int(self.n_nearest)]])
        self.nearest_ = nearest
        self.n_features_in_ = x.shape[1]
        return self


@dataclass
class Facets:
    """The facets of a neuron found by :func:`discover_facets`.

    Attributes:
        indices: ``[M]`` which of the given inputs were clustered (the top-activating ones).
        activations: ``[M]`` the objective of those inputs.
        features: ``[M, D]`` their features at the embedding layer.
        labels: ``[M]`` facet of each (``0..k-1``).
        embedding: ``[M, d]`` the space k-means ran in.
        nearest: ``k`` tensors of positions (into ``indices``) of each facet's members
            nearest its centre.
        init_images: ``[k, ...]`` mean of each facet's nearest members: the start images.
        mean_images: ``[k, ...]`` mean of all members of each facet.
        sizes: ``[k]`` members per facet.
    """

    indices: torch.Tensor
    activations: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    embedding: np.ndarray
    nearest: list[torch.Tensor]
    init_images: torch.Tensor
    mean_images: torch.Tensor
    sizes: torch.Tensor

    @property
    def n_facets(self) -> int:
        """Number of facets ``k``."""
        return int(self.init_images.shape[0])


def discover_facets(
    model: nn.Module,
    inputs: torch.Tensor,
    objective: Objective,
    *,
    layer: str,
    n_facets: int = 10,
    top_k: int | None = None,
    n_components: int = 50,
    embedding: Literal["tsne", "pca"] = "tsne",
    perplexity: float = 30.0,
    n_nearest: int = 15,
    standardize: bool = False,
    seed: int = 0,
    batch_size: int = 256,
) -> Facets:
    """Find the facets of the neuron measured by ``objective`` (Algorithm 1, steps 1-4).

    Args:
        model: the network (eval mode during the call, restored afterwards).
        inputs: ``[N, C, H, W]`` candidate inputs; for a class neuron pass the training images
            of that class (the paper), for a hidden unit any data set with ``top_k``.
        objective: the neuron (:func:`~.maximize.class_logit`, :func:`~.maximize.unit`, ...).
        layer: the layer whose (flattened) activations embed the inputs (the paper: ``fc7``,
            the penultimate layer).
        n_facets: number of facets ``k``.
        top_k: cluster only the ``top_k`` most activating inputs (``None``: all of them).
        n_components, embedding, perplexity, n_nearest, standardize, seed: see
            :class:`FacetClustering`.
        batch_size: inputs per forward pass.

    Returns:
        :class:`Facets` (tensors on the CPU).
    """
    _check_model_objective(model, objective)
    check_type("inputs", inputs, torch.Tensor)
    check_type("layer", layer, str)
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty batch [N, ...], got {tuple(inputs.shape)}")
    check_floating("inputs", inputs)
    check_finite("inputs", inputs)
    if top_k is not None:  # checked here: top_activating names it k
        check_number("top_k", top_k, ge=1, le=inputs.shape[0], integer=True)
    if top_k is None:
        values = objective_values(model, inputs, objective, batch_size=batch_size)
        idx = torch.arange(inputs.shape[0])
    else:
        idx, values = top_activating(model, inputs, objective, top_k, batch_size=batch_size)
    chosen = inputs[idx]
    with eval_mode(model):
        feats = layer_activations(model, chosen, layer, batch_size=batch_size)[layer]
    clustering = FacetClustering(
        n_facets,
        n_components=n_components,
        embedding=embedding,
        perplexity=perplexity,
        n_nearest=n_nearest,
        standardize=standardize,
        seed=seed,
    ).fit(feats)
    labels = torch.from_numpy(clustering.labels_)
    nearest = [torch.from_numpy(n.copy()) for n in clustering.nearest_]
    data = chosen.detach().cpu()
    init_images = torch.stack([data[n].mean(0) for n in nearest])
    mean_images = torch.stack([data[labels == j].mean(0) for j in range(int(n_facets))])
    sizes = torch.bincount(labels, minlength=int(n_facets))
    return Facets(
        indices=idx.cpu(),
        activations=values.cpu(),
        features=feats.detach().cpu(),
        labels=labels,
        embedding=clustering.embedding_,
        nearest=nearest,
        init_images=init_images,
        mean_images=mean_images,
        sizes=sizes,
    )


@grad_enabled("visualize_facets")
def visualize_facets(
    model: nn.Module,
    objective: Objective,
    facets: Facets | torch.Tensor,
    *,
    param: Literal["pixel", "fourier"] = "pixel",
    value_range: tuple[float, float] | None = (0.0, 1.0),
    transforms: TransformFn | Sequence[TransformFn] | None = None,
    regularizers: Sequence[Regularizer] | None = None,
    steps: int = 256,
    lr: float = 1.0,
    optimizer: Literal["adam", "sgd"] = "sgd",
    seed: int = 0,
    record_every: int = 0,
    show_progress: bool | None = None,
) -> ActivationMaximization:
    """One activation-maximization image per facet, each started from its facet's mean image.

    Step 5 of Algorithm 1 (Nguyen, Yosinski & Clune 2016). The facets are optimized together
    as one batch (independently: the objective and penalties are per image).

    Args:
        model: the network.
        objective: the neuron (the same one the facets were found for).
        facets: a :class:`Facets` (uses ``init_images``) or start images ``[k, C, H, W]``.
        param: ``"pixel"`` (the paper) or ``"fourier"`` parameterization of the images.
        value_range: valid input range (sigmoid squash), or ``None``.
        transforms: robustness transforms (see :mod:`.transforms`).
        regularizers: default ``[CenterBias()]``, the paper's center-biased regularization;
            add e.g. :class:`~.regularizers.L2` / :class:`~.regularizers.TotalVariation`.
        optimizer: ``"sgd"`` (default: plain gradient ascent, steps along the gradient as in
            the paper's code, whose steps are also rescaled by the mean absolute gradient:
            pixels the neuron is insensitive to stay at the facet's mean image) or ``"adam"``
            (every pixel moves at the same rate, which drives all facets towards one optimum).
        steps, lr, seed, record_every, show_progress: see
            :func:`~.maximize.maximize_activation`.

    Returns:
        :class:`~.maximize.ActivationMaximization` with ``image [k, C, H, W]``.
    """
    if isinstance(facets, Facets):
        start = facets.init_images
    elif isinstance(facets, torch.Tensor):
        start = facets
    else:
        raise TypeError(
            f"facets must be Facets or a [k, C, H, W] tensor, got {type(facets).__name__}"
        )
    if start.ndim != 4 or start.shape[0] == 0:
        raise ValueError(f"facet start images must be [k, C, H, W], got {tuple(start.shape)}")
    if value_range is not None:
        low, high = value_range
        start = start.clamp(low, high)
    check_choice("param", param, ["pixel", "fourier"])
    module: ImageParam = image_param(
        param, tuple(start.shape), init=start.float(), value_range=value_range, seed=seed
    )
    regs = [CenterBias()] if regularizers is None else list(regularizers)
    return maximize_activation(
        model,
        objective,
        param=module,
        transforms=transforms,
        regularizers=regs,
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        seed=seed,
        record_every=record_every,
        show_progress=show_progress,
    )
