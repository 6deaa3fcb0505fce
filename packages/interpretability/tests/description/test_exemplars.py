"""Exemplar computation (top-k images, 0.99-quantile masks) for MILAN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.interpretability.description import (
    Exemplars,
    activation_quantiles,
    compute_exemplars,
    upsampled_masks,
)


class _Toy(nn.Module):
    """Layer ``feat`` = 2x2 average pooling of the input channels (units = channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.AvgPool2d(2)
        self.head = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feat(x))


def test_topk_quantiles_and_masks_match_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 8, 8, generator=gen)
    model = _Toy()
    ex = compute_exemplars(model, x, "feat", k=5, quantile=0.9, batch_size=7)
    assert isinstance(ex, Exemplars)
    assert len(ex) == 3
    assert ex.k == 5
    acts = F.avg_pool2d(x, 2)  # [40, 3, 4, 4]
    pooled = acts.flatten(2).amax(2)
    for u in range(3):
        order = torch.argsort(pooled[:, u], descending=True)[:5]
        assert torch.equal(ex.indices[u], order)
        torch.testing.assert_close(ex.activations[u], pooled[order, u])
        level = np.quantile(acts[:, u].numpy().ravel(), 0.9)
        assert float(ex.thresholds[u]) == pytest.approx(level, rel=1e-6)
        up = F.interpolate(
            acts[order, u][:, None], size=(8, 8), mode="bilinear", align_corners=False
        )
        torch.testing.assert_close(ex.masks[u], (up > level).float())
        torch.testing.assert_close(ex.images[u], x[order])
    # the top exemplar's peak exceeds the 0.9 quantile, so its mask is never empty
    assert bool((ex.masks[:, 0].flatten(1).sum(1) > 0).all())
    # hooks removed, input untouched
    assert not model.feat._forward_hooks


def test_units_subset_and_flat_layers() -> None:
    x = torch.rand(20, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    model = _Toy()
    full = compute_exemplars(model, x, "feat", k=3)
    sub = compute_exemplars(model, x, "feat", units=[2, 0], k=3)
    assert sub.units.tolist() == [2, 0]
    torch.testing.assert_close(sub.indices, full.indices[[2, 0]])
    part = full.subset([1])
    assert part.units.tolist() == [1]
    assert part.images.shape == (1, 3, 3, 8, 8)
    flat = compute_exemplars(model, x, "head", k=4, units=[0, 5])
    assert flat.masks.shape == (2, 4, 1, 8, 8)
    assert bool((flat.masks == 1).all())


def test_quantile_and_upsampling_helpers() -> None:
    a = torch.arange(200.0).reshape(2, 1, 10, 10).repeat(1, 2, 1, 1)
    a[:, 1] *= -1
    q = activation_quantiles(a, 0.5)
    assert q.tolist() == pytest.approx([np.quantile(np.arange(200.0), 0.5), -99.5])
    maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    m = upsampled_masks(maps, torch.tensor([0.5]), (4, 4))
    assert m.shape == (1, 1, 4, 4)
    assert m[0, 0, :, 2:].eq(1).all()
    assert m[0, 0, :, :2].eq(0).all()


def test_upsampled_masks_of_maps_with_gradient_carry_none() -> None:
    # compared into the upsampled buffer: the maps are detached first, so the 0/1 mask has no
    # graph (it had none when it was a bool comparison cast to float)
    maps = torch.rand(3, 5, 5, requires_grad=True)
    thresholds = torch.rand(3)
    m = upsampled_masks(maps, thresholds, (9, 9))
    assert not m.requires_grad
    assert m.grad_fn is None
    up = F.interpolate(maps.detach()[:, None], size=(9, 9), mode="bilinear", align_corners=False)
    assert torch.equal(m, (up > thresholds[:, None, None, None]).float())


def test_bad_inputs() -> None:
    x = torch.rand(10, 3, 8, 8)
    model = _Toy()
    with pytest.raises(ValueError, match="k must be <= 10"):
        compute_exemplars(model, x, "feat", k=11)
    with pytest.raises(ValueError, match="quantile"):
        compute_exemplars(model, x, "feat", k=2, quantile=1.0)
    with pytest.raises(ValueError, match="units must index"):
        compute_exemplars(model, x, "feat", units=[3], k=2)
    with pytest.raises(TypeError, match="units must hold integer channel indices"):
        compute_exemplars(model, x, "feat", units=torch.tensor([True, False, True]), k=2)
    with pytest.raises(TypeError, match="units must hold integer"):
        compute_exemplars(model, x, "feat", units=[1.7], k=2)
    with pytest.raises(ValueError, match="layer"):
        compute_exemplars(model, x, "nope", k=2)
    with pytest.raises(ValueError, match="inputs must be"):
        compute_exemplars(model, x[0], "feat", k=2)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs"):
        compute_exemplars(model, bad, "feat", k=2)
    with pytest.raises(TypeError, match="inputs"):
        compute_exemplars(model, x.numpy(), "feat", k=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="thresholds"):
        upsampled_masks(torch.zeros(2, 3, 3), torch.zeros(3), (6, 6))
    with pytest.raises(ValueError, match="activations"):
        activation_quantiles(torch.zeros(5), 0.5)


class _ChannelsLast(nn.Module):
    """``_Toy``'s ``feat`` with channels last: ``[N, h, w, U]``."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.feat = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feat(self.pool(x).permute(0, 2, 3, 1))


def test_exemplars_of_a_channels_last_layer() -> None:
    x = torch.rand(20, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    ref = compute_exemplars(_Toy(), x, "feat", k=3, units=[2, 0])
    for dim in (-1, 3):
        got = compute_exemplars(_ChannelsLast(), x, "feat", k=3, units=[2, 0], dim=dim)
        for field in ("units", "indices", "activations", "images", "masks", "thresholds"):
            torch.testing.assert_close(getattr(got, field), getattr(ref, field))
    with pytest.raises(ValueError, match=r"units must index the 3 channels .*along dim -1"):
        compute_exemplars(_ChannelsLast(), x, "feat", k=3, units=[3], dim=-1)
    with pytest.raises(ValueError, match=r"dim must be .*batch axis 0"):
        compute_exemplars(_ChannelsLast(), x, "feat", dim=0)
    with pytest.raises(ValueError, match=r"dim must be an axis .*4 dimensions"):
        compute_exemplars(_ChannelsLast(), x, "feat", dim=-4)


def test_exemplars_keep_float64_activations() -> None:
    n = 6
    base = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # images that differ by 1e-10: distinct in float64, equal in float32
    x = 1.0 + base + 1e-10 * torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1)
    ex = compute_exemplars(_Toy(), x, "feat", k=3, quantile=0.5)
    assert ex.activations.dtype == ex.thresholds.dtype == torch.float64
    np.testing.assert_array_equal(ex.indices.numpy(), [[5, 4, 3], [5, 4, 3]])
    acts = F.avg_pool2d(x, 2)
    torch.testing.assert_close(ex.activations, acts.flatten(2).amax(2)[[5, 4, 3]].T)
    # beyond float32's range
    huge = compute_exemplars(_Toy(), x * 1e39, "feat", k=1, quantile=0.5)
    assert huge.indices[:, 0].tolist() == [5, 5]
    assert bool(torch.isfinite(huge.activations).all())
    assert bool((huge.masks[:, 0].flatten(1).sum(1) > 0).all())


def test_exemplars_of_half_precision_activations_are_float32() -> None:
    x = torch.rand(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    ref = compute_exemplars(_Toy(), x.bfloat16().float(), "feat", k=2)
    ex = compute_exemplars(_Toy(), x.bfloat16(), "feat", k=2)
    assert ex.activations.dtype == ex.thresholds.dtype == ex.masks.dtype == torch.float32
    assert torch.equal(ex.indices, ref.indices)


def test_bool_or_float_rows_and_complex_or_nan_values_are_refused_by_name() -> None:
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ex = compute_exemplars(_Toy(), x, "feat", k=2)
    for rows in ([True, False, True], torch.tensor([True, False, True]), [1.5]):
        with pytest.raises(TypeError, match="rows must hold integer indices"):
            ex.subset(rows)
    with pytest.raises(TypeError, match="rows must hold integer indices"):
        ex.subset("ab")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="units must hold integer channel indices"):
        compute_exemplars(_Toy(), x, "feat", units="ab", k=2)  # type: ignore[arg-type]
    for dtype in (torch.bool, torch.complex64):
        with pytest.raises(TypeError, match="activations must be a real-valued tensor"):
            activation_quantiles(torch.ones(3, 2, dtype=dtype))
    with pytest.raises(TypeError, match="maps must be a real-valued tensor"):
        upsampled_masks(torch.zeros(2, 3, 3, dtype=torch.complex64), torch.zeros(2), (4, 4))
    with pytest.raises(ValueError, match="thresholds must be finite"):
        upsampled_masks(torch.zeros(2, 3, 3), torch.full((2,), float("nan")), (4, 4))
    with pytest.raises(ValueError, match="maps must be finite"):
        upsampled_masks(torch.full((2, 3, 3), float("nan")), torch.zeros(2), (4, 4))


def test_tied_images_of_a_constant_unit_come_in_index_order() -> None:
    """A constant unit ties every image: the exemplars are the first k (topk's order is its
    implementation's, e.g. [10, 19, 18, ...] of 20), with empty masks (nothing exceeds the
    threshold, the constant itself)."""
    x = torch.rand(20, 2, 8, 8, generator=torch.Generator().manual_seed(2))
    x[:, 1] = 0.5
    x[[3, 11], 0] = 2.0  # unit 0: two clear winners, then ties broken by index
    ex = compute_exemplars(_Toy(), x, "feat", k=5)
    assert ex.indices[1].tolist() == [0, 1, 2, 3, 4]
    assert bool((ex.activations[1] == 0.5).all())
    assert not bool(ex.masks[1].any())
    assert ex.indices[0, :2].tolist() == [3, 11]
