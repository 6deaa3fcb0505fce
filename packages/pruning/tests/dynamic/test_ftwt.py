"""Tests of FTWT dynamic pruning (neuronkit.pruning.dynamic.ftwt)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neuronkit.pruning import DigitsCNN, count_macs
from neuronkit.pruning.dynamic import (
    DynamicCNN,
    FTWTConfig,
    GatedConv,
    MaskPredictor,
    binarize_ste,
    estimate_flops,
    heatmap_mass,
    l1_filter_masks,
    mask_loss,
    mass_targets,
    select_ratio,
    static_keep_counts,
    train_ftwt,
)


def _net(ratio: float = 0.8, seed: int = 0, **kw) -> tuple[DigitsCNN, DynamicCNN]:
    torch.manual_seed(seed)
    model = DigitsCNN(widths=(4, 6, 5)).eval()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    return model, DynamicCNN.from_sequential(model.features, head, ratio=ratio, **kw).eval()


def test_heatmap_mass_criteria() -> None:
    a = torch.tensor([[[[1.0, -3.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]]])
    assert torch.allclose(heatmap_mass(a, "max"), torch.tensor([[3.0, 0.5]]))
    assert torch.allclose(heatmap_mass(a, "mean"), torch.tensor([[1.0, 0.5]]))


def test_mass_targets_keep_filters_whose_cumulative_mass_is_within_ratio() -> None:
    mass = torch.tensor([[0.1, 0.4, 0.0, 0.3, 0.2], [1.0, 0.0, 0.0, 0.0, 0.0]])
    a = mass[:, :, None, None].expand(-1, -1, 2, 2).contiguous()
    t = mass_targets(a, 0.7)
    # sorted 0.4, 0.3 -> cumulative 0.7 does not exceed r: keep exactly those two
    assert t[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    # the top filter alone holds more than r: the authors' rule keeps nothing
    assert t[1].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    t = mass_targets(a, 0.85)  # the third filter (0.2) would cross r: pruned
    assert t[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    t1 = mass_targets(a, 1.0)  # ratio 1 keeps exactly the non-silent filters
    assert torch.equal(t1, (mass > 0).float())


def test_mass_targets_authors_example() -> None:
    """The authors' worked example (FTWT poster, "Top-k filters"): GMP values 5.5, 7.9, 0.3,
    8.6, 2.2, 3.1, 0.9 at r = 0.95 give k = index(cumsum > r) = 4 (cumulative 0.30, 0.58,
    0.77, 0.88, 0.96, ...): the filter that crosses r (2.2) is not kept."""
    gmp = torch.tensor([[5.5, 7.9, 0.3, 8.6, 2.2, 3.1, 0.9]])
    a = torch.zeros(1, 7, 3, 3)
    a[0, :, 1, 1] = gmp[0]  # max |a| over space is the GMP value
    t = mass_targets(a, 0.95)
    assert t.tolist() == [[1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]


def test_mass_targets_invariants_random() -> None:
    gen = torch.Generator().manual_seed(1)
    a = torch.relu(torch.randn(16, 12, 3, 3, generator=gen))
    prev = None
    for r in (0.3, 0.6, 0.9, 1.0):
        t = mass_targets(a, r)
        m = heatmap_mass(a)
        norm = m / m.sum(1, keepdim=True)
        kept = (norm * t).sum(1)
        assert bool((kept <= r + 1e-5).all())  # the kept mass never exceeds r
        # maximal: adding the largest pruned non-silent filter would exceed r
        largest = torch.where((t == 0) & (norm > 0), norm, torch.zeros_like(norm)).amax(1)
        has_pruned = ((t == 0) & (norm > 0)).any(1)
        assert bool((kept + largest > r)[has_pruned].all())
        # the kept filters are the top ones
        lowest_kept = torch.where(t > 0, norm, torch.full_like(norm, 2.0)).amin(1)
        assert bool((lowest_kept >= largest).all())
        if prev is not None:
            assert bool((t >= prev).all())  # monotone in r
        prev = t


def test_binarize_ste_forward_and_gradient() -> None:
    p = torch.tensor([0.2, 0.5, 0.51, 0.9], requires_grad=True)
    b = binarize_ste(p)
    assert b.tolist() == [0.0, 0.0, 1.0, 1.0]
    (b * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert p.grad is not None
    assert p.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_mask_predictor_shapes_and_macs() -> None:
    pred = MaskPredictor(6, 5)
    assert pred(torch.randn(3, 6, 4, 4)).shape == (3, 5)
    assert pred.macs == 30
    assert not MaskPredictor(1, 5).softmax  # a single input channel skips the softmax


def test_dense_gating_matches_original_and_macs() -> None:
    model, net = _net()
    x = torch.randn(7, 1, 8, 8)
    out = net.run(x, "dense")
    with torch.no_grad():
        assert torch.allclose(out.logits, model(x), atol=1e-6)
    assert torch.allclose(out.macs, torch.full((7,), float(count_macs(model, x[:1]))))


def test_from_sequential_does_not_mutate_and_is_seeded() -> None:
    model, net = _net(seed=3)
    before = copy.deepcopy(model.state_dict())
    _, net2 = _net(seed=3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for p, q in zip(net.predictor_parameters(), net2.predictor_parameters()):
        assert torch.equal(p, q)


def test_measured_macs_equal_physically_sliced_network() -> None:
    """Per-sample MACs equal count_macs of convs sliced to the sample's kept channels, and the
    gated logits equal the sliced computation (masked filters are really not needed)."""
    model, net = _net(ratio=0.7)
    x = torch.randn(5, 1, 8, 8)
    out = net.run(x, "oracle")
    gated = net.gated
    for s in range(5):
        h = x[s : s + 1]
        keep_in = torch.arange(1)
        total = 0
        with torch.no_grad():
            for layer in net.layers:
                if not isinstance(layer, GatedConv):
                    h = layer(h)
                    continue
                j = gated.index(layer)
                keep = torch.nonzero(out.masks[j][s]).flatten()
                conv = nn.Conv2d(len(keep_in), len(keep), 3, padding=1, bias=False)
                conv.weight.data = layer.conv.weight.data[keep][:, keep_in].clone()
                total += count_macs(conv, h)
                bn = layer.bn
                h = torch.relu(
                    nn.functional.batch_norm(
                        conv(h),
                        bn.running_mean[keep],
                        bn.running_var[keep],
                        bn.weight[keep],
                        bn.bias[keep],
                        False,
                        0.0,
                        bn.eps,
                    )
                )
                keep_in = keep
            logits = h.mean((2, 3)) @ model.fc.weight[:, keep_in].T + model.fc.bias
        assert torch.allclose(logits[0], out.logits[s], atol=1e-5)
        expected = total + out.head_macs  # oracle gating: no predictor cost
        assert float(out.macs[s]) == pytest.approx(expected)
    assert not torch.equal(out.macs, out.macs[:1].expand(5))  # k varies with the input


def test_estimate_flops_ratio_one_and_monotone() -> None:
    _, net = _net()
    x = torch.randn(20, 1, 8, 8)
    e1 = estimate_flops(net, x, 1.0)
    dense = float(net.run(x[:1], "dense").macs[0])
    assert e1.dense_macs == pytest.approx(dense)
    e5 = estimate_flops(net, x, 0.5)
    assert e5.macs < e1.macs
    assert all(0 < f <= 1 for f in e5.keep_fractions)
    assert net.ratio == 0.8  # restored
    net.train()
    frozen = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    frozen.eval()  # each submodule's flag comes back, not the top one's
    estimate_flops(net, x, 0.5)
    net.evaluate(x, torch.zeros(20, dtype=torch.long))
    assert net.training
    assert not frozen.training
    r, ests = select_ratio(net, x, e5.reduction - 1e-6, [0.5, 1.0])
    assert r == 0.5
    assert len(ests) == 2


def test_train_ftwt_decoupled_learns_predictors_only_from_mask_loss() -> None:
    _, net = _net(ratio=0.8)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    cfg = FTWTConfig(epochs=6, batch_size=32, warmup_epochs=6, cooldown=1.0)
    backbone = [p.detach().clone() for p in net.backbone_parameters()]
    hist = train_ftwt(net, x, y, cfg, seed=0)
    # warmup for all epochs: the backbone (except BN statistics) is unchanged
    for p, q in zip(net.backbone_parameters(), backbone):
        assert torch.equal(p, q)
    assert hist["mask_loss"][-1] < hist["mask_loss"][0]


def test_train_ftwt_cooldown_stops_predictors_at_int_of_fraction() -> None:
    """The reference zeroes the mask loss from epoch int(cooldown * epochs) on: with 5 epochs
    and cooldown 0.5 the predictors learn in epochs 0 and 1 only."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    _, five = _net(ratio=0.8)
    _, two = _net(ratio=0.8)
    train_ftwt(five, x, y, FTWTConfig(epochs=5, batch_size=32, cooldown=0.5), seed=0)
    train_ftwt(two, x, y, FTWTConfig(epochs=2, batch_size=32, cooldown=1.0), seed=0)
    for p, q in zip(five.predictor_parameters(), two.predictor_parameters()):
        assert torch.equal(p, q)


def test_decoupled_task_loss_does_not_reach_predictors() -> None:
    _, net = _net()
    out = net.run(torch.randn(4, 1, 8, 8), "dynamic")
    out.logits.sum().backward()
    assert all(p.grad is None for p in net.predictor_parameters())
    _, joint = _net(mode="joint")
    out = joint.run(torch.randn(4, 1, 8, 8), "dynamic")
    out.logits.sum().backward()
    assert any(p.grad is not None for p in joint.predictor_parameters())


def test_static_masks_and_budget() -> None:
    _, net = _net()
    x = torch.randn(3, 1, 8, 8)
    dense = float(net.run(x, "dense").macs[0])
    counts, macs = static_keep_counts(net, x, 0.5 * dense)
    assert macs >= 0.5 * dense
    masks = l1_filter_masks(net, counts)
    assert [int(m.sum()) for m in masks] == counts
    norms = net.gated[0].conv.weight.abs().flatten(1).sum(1)
    assert set(torch.nonzero(masks[0]).flatten().tolist()) == set(
        torch.topk(norms, counts[0]).indices.tolist()
    )
    net.set_static_masks(masks)
    out = net.run(x, "static")
    assert torch.allclose(out.macs, torch.full((3,), macs))


def test_bad_inputs() -> None:
    _, net = _net()
    with pytest.raises(ValueError, match="ratio"):
        mass_targets(torch.ones(1, 2, 2, 2), 0.0)
    with pytest.raises(ValueError, match="activation"):
        heatmap_mass(torch.ones(2, 2))
    with pytest.raises(ValueError, match="criterion"):
        heatmap_mass(torch.ones(1, 2, 2, 2), "sum")
    with pytest.raises(TypeError, match="probs"):
        binarize_ste(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="gating"):
        net.gating = "half"
    with pytest.raises(ValueError, match="x"):
        net.run(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="masks"):
        net.set_static_masks([torch.ones(4)])
    with pytest.raises(ValueError, match="keep_counts"):
        l1_filter_masks(net, [0, 1, 1])
    with pytest.raises(ValueError, match="epochs"):
        FTWTConfig(epochs=0)
    with pytest.raises(TypeError, match="y"):
        train_ftwt(net, torch.randn(4, 1, 8, 8), torch.zeros(4), FTWTConfig(epochs=1))
    with pytest.raises(ValueError, match="mask_logits"):
        mask_loss([], [])
    with pytest.raises(ValueError, match="conv"):
        GatedConv(nn.Conv2d(4, 4, 3, groups=2), nn.BatchNorm2d(4), nn.ReLU())
    with pytest.raises(ValueError, match="target_reduction"):
        select_ratio(net, torch.randn(2, 1, 8, 8), 120.0, [0.5])


def test_a_layer_in_the_activation_slot_is_rejected() -> None:
    # conv -> BN -> conv: the second conv was taken as the first one's "activation", gated and
    # left out of the MAC counts (a silently wrong network when its channels matched)
    features = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"act must be an elementwise activation.*Conv2d"):
        DynamicCNN.from_sequential(features, head)
    with pytest.raises(ValueError, match="act must be an elementwise activation"):
        GatedConv(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4))
    GatedConv(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.PReLU(4))  # parameters are fine


def test_head_macs_follow_a_replaced_head() -> None:
    model, net = _net()
    x = torch.randn(2, 1, 8, 8)
    before = net.run(x, "dense").head_macs
    wide = nn.Sequential(model.pool, nn.Flatten(), nn.Linear(model.fc.in_features, 100))
    net.head = wide  # e.g. a new classifier: the cached count was kept
    fresh = DynamicCNN.from_sequential(model.features, wide).eval()
    assert net.run(x, "dense").head_macs == fresh.run(x, "dense").head_macs > before


def test_head_macs_follow_the_heads_settings_not_its_identity() -> None:
    model, _ = _net()
    x = torch.randn(2, 1, 8, 8)
    head = nn.Sequential(nn.Conv2d(5, 5, 3, padding=1), nn.Flatten())
    net = DynamicCNN.from_sequential(model.features, head).eval()
    stride_one = net.run(x, "dense").head_macs
    net.head[0].stride = (2, 2)  # the same objects and parameter shapes, a quarter of the outputs
    stride_two = net.run(x, "dense").head_macs
    assert stride_two < stride_one
    assert stride_two == DynamicCNN.from_sequential(model.features, net.head).run(x).head_macs


def test_ratio_one_keeps_every_filter_with_mass() -> None:
    act = torch.zeros(1, 3, 2, 2)
    act[0, 0] = 1.0
    act[0, 1] = 1e-7  # non-silent, however small
    keep = mass_targets(act, 1.0)
    assert keep.tolist() == [[1.0, 1.0, 0.0]]


def test_a_float64_network_gets_float64_predictors() -> None:
    model, _ = _net()
    model = model.double()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    net = DynamicCNN.from_sequential(model.features, head)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(net.run(x, "dense").logits, model(x))
    assert all(g.static_mask.dtype == torch.float64 for g in net.gated)


def test_labels_beyond_the_classes_are_named() -> None:
    _, net = _net()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 10])
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 9\]"):
        net.evaluate(x, y)
    with pytest.raises(ValueError, match="y must hold class labels"):
        train_ftwt(net, x, y, FTWTConfig(epochs=1, batch_size=2))
    with pytest.raises(TypeError, match="milestones"):
        FTWTConfig(milestones=3)  # type: ignore[arg-type]


def test_train_ftwt_ignores_the_callers_grad_mode_and_leaves_their_inputs_alone() -> None:
    """Under torch.no_grad() training failed with torch's own message; inputs that require
    grad got their ``.grad`` filled."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (16,), generator=gen)
    cfg = FTWTConfig(epochs=2, batch_size=8, warmup_epochs=1)
    _, ref = _net()
    ref_hist = train_ftwt(ref, x, y, cfg, seed=0)
    _, net = _net()
    leaf = x.clone().requires_grad_(True)
    with torch.no_grad():
        hist = train_ftwt(net, leaf, y, cfg, seed=0)
    assert leaf.grad is None
    assert hist == ref_hist
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^train_ftwt needs autograd"):
        train_ftwt(net, x, y, cfg, seed=0)


def test_kept_counts_and_macs_of_a_wide_bfloat16_network_are_exact() -> None:
    """bfloat16 holds integers exactly only up to 256: kept-filter counts of a 600-filter
    layer were summed in bfloat16 (473 kept reported as 472), and so were its MACs."""
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(1, 600, 3, padding=1), nn.BatchNorm2d(600), nn.ReLU())
    features.extend([nn.Conv2d(600, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()])
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    net = DynamicCNN.from_sequential(features, head, ratio=0.9).to(torch.bfloat16).eval()
    x = torch.randn(4, 1, 4, 4, dtype=torch.bfloat16)
    with torch.no_grad():
        out = net.run(x, "oracle")
    kept = [m.double().sum(1) for m in out.masks]
    assert bool((kept[0] > 256).all())
    assert bool((kept[0] % 2 == 1).any())  # counts bfloat16 cannot hold
    geo = out.geometry
    macs = kept[0] * geo[0] + kept[0] * kept[1] * geo[1] + out.head_macs
    assert out.kept_in[1].tolist() == kept[0].tolist()
    assert out.macs.tolist() == macs.tolist()
    evaluated = net.evaluate(x, torch.zeros(4, dtype=torch.long), gating="oracle")
    assert evaluated["kept"][0].tolist() == kept[0].tolist()
    with torch.no_grad():
        dense = net.run(x, "dense")
    targets = [t.double().sum(1) for t in dense.targets]
    expected = targets[0] * geo[0] + targets[0] * targets[1] * geo[1] + dense.head_macs
    expected = expected + dense.predictor_macs
    assert estimate_flops(net, x).macs == pytest.approx(float(expected.mean()), rel=1e-12)


def test_l1_filter_masks_of_large_float16_filters_keep_the_largest() -> None:
    """L1 norms of float16 filters were summed in float16: above 65504 every norm was inf
    and the first tied filter was kept, not the largest."""
    features = nn.Sequential(nn.Conv2d(512, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        features[0].weight.copy_(torch.tensor([17.0, 16.0, 0.1, 0.2])[:, None, None, None])
    net = DynamicCNN.from_sequential(features, head).half()  # L1 norms 78336 and 73728
    assert l1_filter_masks(net, [1])[0].tolist() == [1.0, 0.0, 0.0, 0.0]
