"""Tests of facet discovery and facet-initialized visualization."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from torch import nn

from neuronkit.interpretability.visualization.facets import (
    FacetClustering,
    discover_facets,
    top_activating,
    visualize_facets,
)
from neuronkit.interpretability.visualization.maximize import class_logit, objective_values


def _blobs(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    centers = np.zeros((2, 20))
    centers[1, :5] = 6.0
    return centers[labels] + rng.normal(size=(n, 20)), labels


@pytest.mark.parametrize("embedding", ["pca", "tsne"])
def test_facet_clustering_recovers_separated_blobs(embedding) -> None:
    x, labels = _blobs()
    fc = FacetClustering(2, embedding=embedding, n_nearest=5, seed=0).fit(x)
    assert adjusted_rand_score(labels, fc.labels_) == 1.0
    assert fc.embedding_.shape == (40, 2 if embedding == "tsne" else 20)
    for j, near in enumerate(fc.nearest_):
        assert len(near) == 5
        assert (fc.labels_[near] == j).all()
        d = np.linalg.norm(fc.embedding_[near] - fc.cluster_centers_[j], axis=1)
        assert (np.diff(d) >= 0).all()
    assert fc.get_params()["n_facets"] == 2
    np.testing.assert_array_equal(
        FacetClustering(2, embedding=embedding).fit_predict(x), fc.labels_
    )


def _prototype_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    protos = torch.zeros(2, 1, 6, 6)
    protos[0, 0, 1:5, 1] = 1.0  # a bar
    protos[1, 0, 1, 1:5] = 1.0  # a perpendicular bar
    labels = torch.arange(30) % 2
    x = (protos[labels] + 0.05 * torch.randn(30, 1, 6, 6, generator=gen)).clamp(0, 1)
    return x, labels, protos


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([("flat", nn.Flatten()), ("fc", nn.Linear(36, 2))]))
    with torch.no_grad():  # class 0 responds to both bars: a two-faceted neuron
        _, _, protos = _prototype_data()
        model.fc.weight[0] = protos.flatten(1).sum(0)
    return model


def test_top_activating_sorts_by_the_objective() -> None:
    x, _, _ = _prototype_data()
    model = _model()
    idx, vals = top_activating(model, x, class_logit(0), 7)
    all_vals = objective_values(model, x, class_logit(0))
    torch.testing.assert_close(vals, all_vals[idx])
    assert (vals[:-1] >= vals[1:]).all()
    assert vals[-1] >= torch.sort(all_vals, descending=True).values[6]


def test_discover_facets_finds_the_prototypes_and_visualizes_them() -> None:
    x, labels, protos = _prototype_data()
    model = _model()
    before = x.clone()
    facets = discover_facets(
        model, x, class_logit(0), layer="flat", n_facets=2, embedding="pca", n_nearest=5
    )
    torch.testing.assert_close(x, before)
    assert adjusted_rand_score(labels[facets.indices].numpy(), facets.labels.numpy()) == 1.0
    assert facets.init_images.shape == (2, 1, 6, 6)
    assert int(facets.sizes.sum()) == 30
    # each start image is close to one prototype
    d = torch.cdist(facets.init_images.flatten(1), protos.flatten(1))
    assert sorted(d.argmin(1).tolist()) == [0, 1]
    vis = visualize_facets(model, class_logit(0), facets, steps=20, lr=0.05)
    assert vis.image.shape == (2, 1, 6, 6)
    assert (vis.activation > vis.initial_activation).all()
    # each visualization stays on its facet
    dv = torch.cdist(vis.image.flatten(1), protos.flatten(1))
    torch.testing.assert_close(dv.argmin(1), d.argmin(1))
    top = discover_facets(
        model, x, class_logit(0), layer="flat", n_facets=2, top_k=10, embedding="pca"
    )
    assert top.indices.shape == (10,)


def test_bad_inputs() -> None:
    x, _, _ = _prototype_data()
    model = _model()
    with pytest.raises(ValueError, match="features must be a \\[N, D\\]"):
        FacetClustering(2).fit(np.zeros(5))
    with pytest.raises(ValueError, match="at least"):
        FacetClustering(5).fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="embedding"):
        FacetClustering(2, embedding="umap").fit(np.zeros((6, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features must be finite"):
        FacetClustering(2).fit(np.full((6, 2), np.nan))
    with pytest.raises(ValueError, match="k must be <="):
        top_activating(model, x, class_logit(0), 31)
    with pytest.raises(ValueError, match="layer must name"):
        discover_facets(model, x, class_logit(0), layer="fc7")
    with pytest.raises(TypeError, match="inputs must be a floating-point"):
        discover_facets(model, x.long(), class_logit(0), layer="flat")
    with pytest.raises(TypeError, match="facets"):
        visualize_facets(model, class_logit(0), [x])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start images"):
        visualize_facets(model, class_logit(0), torch.zeros(2, 6, 6))


@pytest.mark.filterwarnings("error")  # the error alone, without KMeans' warning before it
def test_fewer_distinct_features_than_facets_is_an_error() -> None:
    x = np.tile(np.arange(4.0), (12, 1))  # one distinct feature vector
    with pytest.raises(ValueError, match=r"n_facets: the features separate into only 1"):
        FacetClustering(3, embedding="pca", seed=0).fit(x)


def test_visualize_facets_names_inference_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="visualize_facets needs autograd"),
    ):
        visualize_facets(model, class_logit(1), torch.rand(2, 1, 4, 4), steps=1)


def test_top_k_standardize_and_non_finite_inputs_are_named() -> None:
    x, _, _ = _prototype_data()
    model = _model()
    for top_k in (0, 31):
        with pytest.raises(ValueError, match="top_k must be"):
            discover_facets(model, x, class_logit(0), layer="flat", n_facets=2, top_k=top_k)
    with pytest.raises(TypeError, match="standardize must be bool"):
        FacetClustering(2, standardize="no", embedding="pca").fit(x.flatten(1))  # type: ignore[arg-type]
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        top_activating(model, nan, class_logit(0), 2)
