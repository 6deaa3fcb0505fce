"""Tests of neuronkit.pruning.lottery.masks."""

import math
import pickle

import pytest
import torch
from torch import nn

from neuronkit.pruning.lottery import (
    apply_masks,
    attach_masks,
    global_magnitude_prune,
    layer_sparsity,
    ones_masks,
    prunable_weights,
    random_masks_like,
    sparsity,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 8),
        nn.LayerNorm(8),
        nn.Linear(8, 3),
    )


def test_prunable_weights_are_conv_and_linear_weights_only() -> None:
    net = _net()
    assert prunable_weights(net) == ["0.weight", "4.weight", "6.weight"]
    assert prunable_weights(net, ignore=["6.weight"]) == ["0.weight", "4.weight"]
    assert prunable_weights(net, layer_types=(nn.Linear,)) == ["4.weight", "6.weight"]
    masks = ones_masks(net, ignore=("6.weight",))
    assert set(masks) == {"0.weight", "4.weight"}
    assert all(m.dtype == torch.bool and bool(m.all()) for m in masks.values())
    assert masks["4.weight"].shape == (8, 64)
    empty = nn.Sequential(nn.Linear(0, 2), nn.Linear(2, 3))  # nothing to prune in layer 0
    assert prunable_weights(empty) == ["1.weight"]
    assert set(ones_masks(empty)) == {"1.weight"}


def test_global_prune_removes_smallest_fraction_of_remaining() -> None:
    net = _net()
    masks = ones_masks(net)
    before = {k: v.clone() for k, v in masks.items()}
    total = sum(m.numel() for m in masks.values())
    new = global_magnitude_prune(net, masks, 0.2)
    for k in masks:  # input not modified
        assert torch.equal(masks[k], before[k])
    kept = sum(int(m.sum()) for m in new.values())
    assert kept == total - math.ceil(0.2 * total)
    # reference: every kept |w| >= every pruned |w|, pooled over layers
    params = dict(net.named_parameters())
    kept_vals = torch.cat([params[k].detach().abs()[new[k]] for k in new])
    pruned_vals = torch.cat([params[k].detach().abs()[~new[k]] for k in new])
    assert float(kept_vals.min()) >= float(pruned_vals.max())
    # layers lose different fractions (global, not layer-wise)
    fr = layer_sparsity(new)
    assert max(fr.values()) - min(fr.values()) > 0.01


def test_iterated_pruning_is_nested_and_reaches_expected_sparsity() -> None:
    net = _net()
    masks = ones_masks(net)
    total = sum(m.numel() for m in masks.values())
    remaining = total
    gen = torch.Generator().manual_seed(1)
    for _ in range(9):
        with torch.no_grad():  # new weights every round, as after retraining
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        new = global_magnitude_prune(net, masks, 0.2)
        assert all(bool((new[k] <= masks[k]).all()) for k in masks)  # pruned stay pruned
        remaining -= math.ceil(0.2 * remaining)
        assert sum(int(m.sum()) for m in new.values()) == remaining
        masks = new
    assert abs(sparsity(masks) - (1 - 0.8**9)) < 0.01


def test_state_dict_input_matches_module_input() -> None:
    net = _net()
    masks = ones_masks(net)
    a = global_magnitude_prune(net, masks, 0.5)
    b = global_magnitude_prune(net.state_dict(), masks, 0.5)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_random_masks_keep_per_layer_counts() -> None:
    net = _net()
    masks = global_magnitude_prune(net, ones_masks(net), 0.7)
    r1 = random_masks_like(masks, seed=3)
    r2 = random_masks_like(masks, seed=3)
    r3 = random_masks_like(masks, seed=4)
    for k in masks:
        assert int(r1[k].sum()) == int(masks[k].sum())
        assert torch.equal(r1[k], r2[k])
    assert any(not torch.equal(r1[k], masks[k]) for k in masks)
    assert any(not torch.equal(r1[k], r3[k]) for k in masks)
    assert layer_sparsity(r1) == pytest.approx(layer_sparsity(masks))


def test_sparsity_accounting() -> None:
    masks = {"a": torch.tensor([True, False, False, False]), "b": torch.ones(4, dtype=torch.bool)}
    assert sparsity(masks) == pytest.approx(3 / 8)
    assert layer_sparsity(masks) == {"a": pytest.approx(0.75), "b": pytest.approx(0.0)}


def test_attach_masks_keeps_pruned_weights_at_zero_during_training() -> None:
    net = _net()
    masks = global_magnitude_prune(net, ones_masks(net), 0.6)
    handle = attach_masks(net, masks)
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        loss = net(x).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = net(x)  # the hook re-applies the masks before this forward
    params = dict(net.named_parameters())
    for k, m in masks.items():
        assert bool((params[k].detach()[~m] == 0).all())
        assert bool((params[k].detach()[m] != 0).any())
    reference = _net()
    reference.load_state_dict(net.state_dict())
    reference.train()
    torch.testing.assert_close(reference(x), out)
    twin = pickle.loads(pickle.dumps(net))  # the hook is no closure: the model pickles
    with torch.no_grad():
        twin[0].weight[~masks["0.weight"]] = 1.0
    torch.testing.assert_close(twin(x), out)  # its hook zeroed them again
    assert not bool(twin[0].weight[~masks["0.weight"]].any())
    handle.remove()
    with torch.no_grad():
        params["0.weight"].fill_(1.0)
    net(x)
    assert bool((params["0.weight"] == 1.0).all())  # no longer enforced


def test_attached_masks_follow_a_change_of_the_weights_dtype() -> None:
    """The hook keeps each mask cast to its weight's dtype; a model moved to another dtype
    after attach_masks is still masked, by a mask of the new dtype."""
    net = _net()
    masks = global_magnitude_prune(net, ones_masks(net), 0.5)
    handle = attach_masks(net, masks)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    net(x)
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    net(x.double())
    params = dict(net.named_parameters())
    for k, m in masks.items():
        assert params[k].dtype == torch.float64
        assert bool((params[k].detach()[~m] == 0).all())
        assert bool((params[k].detach()[m] == 1).all())
    handle.remove()


def test_apply_masks_returns_model_and_zeroes() -> None:
    net = _net()
    masks = {"6.weight": torch.zeros(3, 8, dtype=torch.bool)}
    assert apply_masks(net, masks) is net
    assert float(net[6].weight.detach().abs().sum()) == 0.0


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda n, m: prunable_weights(n, ignore=["nope"]), ValueError, "ignore"),
        (lambda n, m: prunable_weights(n, ignore="0.weight"), TypeError, "ignore"),
        (lambda n, m: prunable_weights("net"), TypeError, "model"),
        (lambda n, m: global_magnitude_prune(n, m, 1.0), ValueError, "fraction"),
        (lambda n, m: global_magnitude_prune(n, m, -0.1), ValueError, "fraction"),
        (lambda n, m: global_magnitude_prune(n, {}, 0.2), ValueError, "masks"),
        (lambda n, m: global_magnitude_prune(3, m, 0.2), TypeError, "model"),
        (
            lambda n, m: global_magnitude_prune(n, {"0.weight": torch.ones(2, dtype=torch.bool)}),
            ValueError,
            "shape",
        ),
        (
            lambda n, m: apply_masks(n, {"0.weight": torch.ones(4, 1, 3, 3)}),
            TypeError,
            "bool",
        ),
        (
            lambda n, m: attach_masks(n, {"x.weight": torch.ones(1, dtype=torch.bool)}),
            ValueError,
            "x.weight",
        ),
        (lambda n, m: random_masks_like(m, seed=-1), ValueError, "seed"),
        (lambda n, m: sparsity([]), TypeError, "masks"),
        (lambda n, m: ones_masks(n, ignore=3), TypeError, "ignore must be an iterable"),
        (  # a state of lists failed with "'list' object has no attribute 'shape'"
            lambda n, m: global_magnitude_prune(
                {k: v.tolist() for k, v in n.state_dict().items()}, m
            ),
            TypeError,
            r"model\['0.weight'\] must be Tensor, got list",
        ),
    ],
)
def test_bad_inputs(call, err: type[Exception], match: str) -> None:
    net = _net()
    with pytest.raises(err, match=match):
        call(net, ones_masks(net))


def test_nan_weights_rejected() -> None:
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        global_magnitude_prune(net, ones_masks(net), 0.2)


def test_float64_weights_are_ranked_at_their_own_precision() -> None:
    w = {"w": torch.tensor([1.0, 1.0 + 1e-9, 2.0, 3.0], dtype=torch.float64)}
    out = global_magnitude_prune(w, {"w": torch.ones(4, dtype=torch.bool)}, 0.25)
    assert out["w"].tolist() == [False, True, True, True]


def test_global_prune_always_keeps_one_weight() -> None:
    """ceil(0.99 * 56) = 56 would remove every weight: the largest |w| survives."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    out = global_magnitude_prune(net, ones_masks(net), 0.99)
    weights = {n: p.detach().abs() for n, p in net.named_parameters() if n in out}
    kept = torch.cat([w[out[n]] for n, w in weights.items()])
    assert kept.tolist() == [max(float(w.max()) for w in weights.values())]
    # nothing left stays nothing left
    empty = {n: torch.zeros_like(m) for n, m in out.items()}
    assert sparsity(global_magnitude_prune(net, empty, 0.5)) == 1.0


@pytest.mark.parametrize("fn", [sparsity, layer_sparsity, lambda m: random_masks_like(m, seed=0)])
def test_zero_element_masks_rejected(fn) -> None:
    masks = {"a": torch.ones(2, dtype=torch.bool), "w": torch.ones(0, 3, dtype=torch.bool)}
    with pytest.raises(ValueError, match=r"masks\['w'\] must have at least one element"):
        fn(masks)
