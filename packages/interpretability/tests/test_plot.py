import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from neuronkit.common import new_figure
from neuronkit.interpretability import plot, rank_transform, rdm, rdm_to_square

# ---- attribution maps -------------------------------------------------------------------------


def test_normalize_divides_by_the_cumulative_sum_threshold_and_clips():
    attr = np.array([[1.0, 2.0], [3.0, 4.0]])  # ascending cumulative sums 1, 3, 6, 10
    # 98% of 10 = 9.8 is first reached at the largest value: nothing is clipped
    np.testing.assert_array_equal(plot.normalize_attribution(attr), attr / 4)
    # 50% of 10 = 5 is first reached at 3: the 4 is clipped to 1
    np.testing.assert_allclose(
        plot.normalize_attribution(attr, outlier_perc=50), [[1 / 3, 2 / 3], [1, 1]]
    )


def test_normalize_sign_filters():
    attr = np.array([[-4.0, -1.0], [1.0, 2.0]])
    # absolute values: total 8, 98% reached at 4
    np.testing.assert_allclose(plot.normalize_attribution(attr), [[1, 0.25], [0.25, 0.5]])
    np.testing.assert_allclose(
        plot.normalize_attribution(attr, sign="all"), [[-1, -0.25], [0.25, 0.5]]
    )
    np.testing.assert_allclose(
        plot.normalize_attribution(attr, sign="positive"), [[0, 0], [0.5, 1]]
    )
    # the negative part's magnitudes, scaled by its own threshold
    np.testing.assert_allclose(
        plot.normalize_attribution(attr, sign="negative"), [[1, 0.25], [0, 0]]
    )


def test_normalize_sums_channels_and_picks_the_sample():
    batch = torch.randn(3, 2, 5, 4, generator=torch.Generator().manual_seed(0))
    want = plot.normalize_attribution(batch[2])
    np.testing.assert_array_equal(plot.normalize_attribution(batch, sample=2), want)
    np.testing.assert_array_equal(plot.normalize_attribution(batch, sample=-1), want)
    summed = batch[2].double().sum(0)
    np.testing.assert_allclose(plot.normalize_attribution(summed), want, rtol=1e-12)


def test_normalize_of_an_all_zero_part_is_zero():
    attr = np.array([[1.0, 2.0], [0.0, 3.0]])  # no negative part
    np.testing.assert_array_equal(plot.normalize_attribution(attr, sign="negative"), 0.0)
    np.testing.assert_array_equal(plot.normalize_attribution(np.zeros((3, 3))), 0.0)


def test_normalize_reads_graph_tensors_and_leaves_them_unchanged():
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    before = x.detach().clone()
    plot.normalize_attribution(x * 2)
    plot.attribution_map(x, x, method="masked_image")
    assert torch.equal(x.detach(), before)


@pytest.fixture
def saliency_pair():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 6, 5, generator=gen), torch.rand(2, 3, 6, 5, generator=gen) * 4 - 2


def test_heat_map_draws_the_normalized_map_with_a_colour_bar(saliency_pair):
    attr, _ = saliency_pair
    ax = plot.attribution_map(attr, sample=1, sign="positive")
    (image,) = ax.images
    np.testing.assert_array_equal(
        image.get_array(), plot.normalize_attribution(attr, sign="positive", sample=1)
    )
    assert image.get_clim() == (0.0, 1.0)
    assert image.get_cmap().name == "Greens"
    assert len(ax.figure.axes) == 2  # the colour bar
    assert plot.attribution_map(attr, sign="all", colorbar=False).images[0].get_clim() == (-1, 1)


def test_blended_heat_map_is_the_default_with_an_image(saliency_pair):
    attr, image = saliency_pair
    ax = plot.attribution_map(attr, image, alpha=0.3)
    grey, heat = ax.images
    pixels = image[0].numpy().astype(np.float64)
    scaled = (pixels - pixels.min()) / (pixels.max() - pixels.min())  # min-max for display
    np.testing.assert_allclose(grey.get_array(), scaled.mean(axis=0))
    np.testing.assert_array_equal(heat.get_array(), plot.normalize_attribution(attr))
    assert heat.get_alpha() == 0.3


def test_masked_image_and_alpha_scaling(saliency_pair):
    attr, image = saliency_pair
    norm = plot.normalize_attribution(attr, sample=1)
    pixels = image[1].permute(1, 2, 0).numpy().astype(np.float64)
    scaled = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    masked = plot.attribution_map(attr, image, method="masked_image", sample=1)
    np.testing.assert_allclose(masked.images[0].get_array(), scaled * norm[..., None])
    assert len(masked.figure.axes) == 1  # no heat map, no colour bar
    rgba = plot.attribution_map(attr, image, method="alpha_scaling", sample=1).images[0]
    np.testing.assert_allclose(rgba.get_array()[..., 3], norm)
    # one channel: shown in grey, as three equal channels under the map's opacity
    grey = plot.attribution_map(attr, image[:, :1], method="alpha_scaling").images[0]
    assert grey.get_array().shape == (6, 5, 4)


def test_attribution_map_draws_on_the_axes_given(saliency_pair):
    attr, _ = saliency_pair
    _, axes = new_figure(1, 2)
    assert plot.attribution_map(attr, ax=axes[1], colorbar=False) is axes[1]
    assert not axes[0].images
    assert axes[1].images


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sign": "abs"}, ValueError, "sign must be one of"),
        ({"outlier_perc": 100}, ValueError, "outlier_perc must be < 100"),
        ({"outlier_perc": -1}, ValueError, "outlier_perc must be >= 0"),
        ({"sample": 2}, ValueError, "sample must index the batch of attributions"),
        ({"method": "heatmap"}, ValueError, "method must be one of"),
        ({"method": "masked_image"}, ValueError, "image is needed"),
        ({"alpha": 1.5}, ValueError, "alpha must be <= 1"),
        ({"colorbar": 1}, TypeError, "colorbar must be bool"),
        ({"ax": "left"}, TypeError, "ax must be a matplotlib Axes"),
    ],
)
def test_attribution_map_bad_arguments(saliency_pair, kwargs, error, match):
    attr, _ = saliency_pair
    with pytest.raises(error, match=match):
        plot.attribution_map(attr, **kwargs)


def test_attribution_map_bad_inputs(saliency_pair):
    attr, image = saliency_pair
    with pytest.raises(ValueError, match=r"attributions must be a non-empty \[H, W\]"):
        plot.attribution_map(torch.ones(5))
    with pytest.raises(ValueError, match="sample must be 0 for a single attributions"):
        plot.attribution_map(attr[0], sample=1)
    with pytest.raises(ValueError, match="attributions must be finite"):
        plot.attribution_map(torch.full((4, 4), float("nan")))
    with pytest.raises(TypeError, match="attributions must be a real array"):
        plot.attribution_map("map")
    with pytest.raises(ValueError, match="image must have 1 or 3 channels"):
        plot.attribution_map(attr, image[:, :, :5])
    with pytest.raises(ValueError, match="image must have 1 or 3 channels"):
        plot.attribution_map(attr, image[:, :2])
    with pytest.raises(ValueError, match="sign must be 'absolute_value', 'positive' or"):
        plot.attribution_map(attr, image, method="alpha_scaling", sign="all")


# ---- RDMs --------------------------------------------------------------------------------------


@pytest.fixture
def patterns():  # 7 conditions in 2 dimensions
    return np.random.default_rng(2).standard_normal((7, 2))


def test_rdm_heatmap_draws_the_square_rdm_with_labels(patterns):
    d = rdm(patterns, "euclidean")
    ax = plot.rdm_heatmap(d, labels=list("abcdefg"))
    np.testing.assert_array_equal(ax.images[0].get_array(), rdm_to_square(d))
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdefg")
    assert [t.get_text() for t in ax.get_yticklabels()] == list("abcdefg")
    ranks = plot.rdm_heatmap(rdm_to_square(d), rank=True).images[0].get_array()
    np.testing.assert_array_equal(ranks, rdm_to_square(rank_transform(d)))
    assert plot.rdm_heatmap(d).get_title() == "RDM of 7 conditions"


def test_rdm_heatmap_bad_input(patterns):
    d = rdm(patterns, "euclidean")
    with pytest.raises(ValueError, match=r"rdm must be one RDM.*stack of 2"):
        plot.rdm_heatmap(np.stack([d, d]))
    with pytest.raises(ValueError, match="labels must name the 7 conditions, got 3"):
        plot.rdm_heatmap(d, labels=["a", "b", "c"])
    with pytest.raises(TypeError, match="labels must be a sequence"):
        plot.rdm_heatmap(d, labels="abcdefg")
    with pytest.raises(TypeError, match="rank must be bool"):
        plot.rdm_heatmap(d, rank=1)
    asymmetric = rdm_to_square(d)
    asymmetric[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetri"):
        plot.rdm_heatmap(asymmetric)


def test_mds_embedding_recovers_euclidean_geometry(patterns):
    d = rdm(patterns, "euclidean")  # squared distances over 2 channels
    coords = plot.mds_embedding(d)
    assert coords.shape == (7, 2)
    np.testing.assert_allclose(pdist(coords), np.sqrt(d), atol=1e-12)
    np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-12)
    assert (coords[np.abs(coords).argmax(axis=0), [0, 1]] > 0).all()  # sign convention
    # the values themselves as distances
    np.testing.assert_allclose(
        pdist(plot.mds_embedding(pdist(patterns), squared=False)), pdist(patterns), atol=1e-12
    )
    # one dimension keeps the direction of largest spread
    line = plot.mds_embedding(d, 1)
    assert line.shape == (7, 1)
    np.testing.assert_allclose(np.abs(line[:, 0]), np.abs(coords[:, 0]), atol=1e-12)


def test_mds_embedding_of_a_correlation_rdm_is_that_of_the_standardized_patterns():
    x = np.random.default_rng(3).standard_normal((6, 4))
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    coords = plot.mds_embedding(rdm(x, "correlation"), 4)
    np.testing.assert_allclose(pdist(coords), pdist(z) / np.sqrt(2 * 4), atol=1e-10)


def test_mds_embedding_bad_arguments(patterns):
    d = rdm(patterns, "euclidean")
    with pytest.raises(ValueError, match="dims must be <= 7"):
        plot.mds_embedding(d, 8)
    with pytest.raises(ValueError, match="dims must be >= 1"):
        plot.mds_embedding(d, 0)
    with pytest.raises(ValueError, match="rdm must be >= 0 to be read as distances"):
        plot.mds_embedding(d - 1.0, squared=False)
    with pytest.raises(TypeError, match="squared must be bool"):
        plot.mds_embedding(d, squared="yes")


def test_rdm_mds_places_and_labels_the_conditions(patterns):
    d = rdm(patterns, "euclidean")
    ax = plot.rdm_mds(d, labels=list("abcdefg"), colors=[0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(ax.collections[0].get_offsets(), plot.mds_embedding(d))
    assert [t.get_text() for t in ax.texts] == list("abcdefg")
    assert ax.get_title() == "classical MDS, 100% of the variance"
    # patterns in 3 dimensions: the plane keeps part of the variance
    deeper = np.random.default_rng(4).standard_normal((7, 3)) * [3.0, 2.0, 1.0]
    share = float(plot.rdm_mds(rdm(deeper, "euclidean")).get_title().split(", ")[1].split("%")[0])
    assert 50 < share < 100
    with pytest.raises(ValueError, match="at least 3 conditions"):
        plot.rdm_mds([1.0])


def test_only_the_drawn_sample_of_a_batch_is_read():
    batch = torch.rand(3, 1, 4, 4)
    batch[0, 0, 0, 0] = float("nan")  # another sample's NaN is not drawn
    want = plot.normalize_attribution(batch[2])
    np.testing.assert_array_equal(plot.normalize_attribution(batch, sample=2), want)
    nested = batch.tolist()
    np.testing.assert_array_equal(plot.normalize_attribution(nested, sample=2), want)
    with pytest.raises(ValueError, match="attributions must be finite"):
        plot.normalize_attribution(batch, sample=0)


def test_token_attributions_colour_each_token_by_its_sign_and_size() -> None:
    from neuronkit.interpretability.plot import token_attributions

    tokens = ["the", "movie", "was", "not", "good", "."]
    scores = torch.tensor([0.0, 0.2, 0.0, -0.8, 0.8, 0.05])
    ax = token_attributions(tokens, scores, per_row=4)
    assert [t.get_text() for t in ax.texts] == tokens
    faces = [t.get_bbox_patch().get_facecolor() for t in ax.texts]
    red, green = faces[3], faces[4]  # -0.8 and +0.8: the two ends of RdYlGn
    assert red[0] > red[1]
    assert green[1] > green[0]
    assert faces[0] == faces[2]  # equal scores, equal colours
    # second row: tokens 4 and 5 below the first four
    assert ax.texts[4].get_position()[1] < ax.texts[0].get_position()[1]
    with pytest.raises(ValueError, match=r"one value per token \(\[6\]\)"):
        token_attributions(tokens, scores[:5])
    with pytest.raises(TypeError, match="tokens must be a sequence of strings"):
        token_attributions("the movie", scores[:2])
    with pytest.raises(ValueError, match="scores"):
        token_attributions(tokens, torch.tensor([0.0, 1, 2, 3, 4, float("nan")]))
