"""Sign and {0,1} supermasks (neuronkit.pruning.federated.supermask)."""

import pytest
import torch
from torch import nn

from neuronkit.pruning.federated.supermask import (
    BinarySupermask,
    SignSupermask,
    sign_ste,
    topk_mask_ste,
)
from neuronkit.pruning.lottery import apply_masks, random_masks_like


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 6, bias=False), nn.ReLU(), nn.Linear(6, 3))


def _masks(net: nn.Module) -> dict[str, torch.Tensor]:
    full = {
        "1.weight": torch.rand(6, 8, generator=torch.Generator().manual_seed(0)) < 0.5,
        "3.weight": torch.ones(3, 6, dtype=torch.bool),
    }
    return random_masks_like(full, seed=1)


def test_sign_ste_values_and_identity_gradient() -> None:
    s = torch.tensor([-2.0, 0.0, 0.5], requires_grad=True)
    out = sign_ste(s)
    assert out.tolist() == [-1.0, 1.0, 1.0]
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert s.grad is not None
    assert s.grad.tolist() == [1.0, 2.0, 3.0]
    # every dtype and edge value as torch.where(s >= 0, 1, -1): -0.0 gives +1, NaN gives -1
    edge = torch.tensor([-0.0, float("nan"), float("inf"), -float("inf"), 1e-45, -1e-45])
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        v = torch.cat([edge, torch.randn(50, generator=torch.Generator().manual_seed(0))])
        v = v.to(dtype)
        got = sign_ste(v)
        assert got.dtype == dtype
        assert torch.equal(got, torch.where(v >= 0, 1.0, -1.0).to(dtype))


def test_topk_mask_keeps_k_largest_magnitudes_with_abs_gradient() -> None:
    s = torch.tensor([[0.1, -3.0], [2.0, -0.2]], requires_grad=True)
    m = topk_mask_ste(s, 2)
    assert m.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    m.sum().backward()
    assert s.grad is not None
    assert s.grad.tolist() == [[1.0, -1.0], [1.0, -1.0]]


def test_sign_supermask_starts_as_pruned_init_and_only_scores_train() -> None:
    net = _net()
    masks = _masks(net)
    sm = SignSupermask(net, masks)
    x = torch.randn(4, 1, 8)
    ref = apply_masks(_net(), masks)
    torch.testing.assert_close(sm(x), ref(x))
    assert [n for n, p in sm.named_parameters() if p.requires_grad] == [
        "scores.1__weight",
        "scores.3__weight",
    ]
    assert sm.num_unpruned() == sum(int(m.sum()) for m in masks.values())


def test_sign_flip_keeps_magnitudes_and_zeros() -> None:
    net = _net()
    masks = _masks(net)
    sm = SignSupermask(net, masks, rescale=True)
    scores = {k: -v for k, v in sm.get_scores().items()}
    sm.set_scores(scores)
    eff = sm.effective_weights()
    for n, m in masks.items():
        w0 = dict(net.named_parameters())[n].detach()
        scale = (1.0 / m.float().mean()) ** 0.5
        torch.testing.assert_close(eff[n], -w0 * m * scale)
        signs = sm.signs()[n]
        assert signs.dtype == torch.int8
        assert signs.shape == (int(m.sum()),)
    mat = sm.materialize()
    x = torch.randn(3, 1, 8)
    torch.testing.assert_close(mat(x), sm(x))


def test_sign_supermask_gradient_reaches_scores() -> None:
    sm = SignSupermask(_net(), _masks(_net()))
    sm(torch.randn(5, 1, 8)).sum().backward()
    g = sm.scores["1__weight"].grad
    assert g is not None
    assert float(g[~sm.mask("1.weight")].abs().sum()) == 0.0  # pruned weights get nothing
    assert float(g.abs().sum()) > 0


def test_binary_supermask_keeps_k_per_layer() -> None:
    net = _net()
    bm = BinarySupermask(net, {"1.weight": 0.25, "3.weight": 0.5}, seed=3)
    masks = bm.binary_masks()
    assert int(masks["1.weight"].sum()) == 12
    assert int(masks["3.weight"].sum()) == 9
    eff = bm.effective_weights()
    w0 = net[1].weight.detach()
    torch.testing.assert_close(eff["1.weight"], w0 * masks["1.weight"])
    assert bm.num_weights() == 48 + 18


def test_binary_supermask_scores_start_as_edge_popup() -> None:
    # edge-popup (allenai/hidden-networks SubnetConv): kaiming_uniform_(scores, a=sqrt(5)),
    # i.e. uniform in +-1/sqrt(fan_in); a 512-input layer makes the bound easy to tell apart
    net = nn.Sequential(nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10))
    bm = BinarySupermask(net, {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    for name, fan_in in (("1.weight", 512), ("3.weight", 64)):
        s = bm.get_scores()[name]
        bound = fan_in**-0.5
        assert float(s.abs().max()) <= bound
        assert float(s.abs().max()) > 0.95 * bound


def test_set_scores_and_constructor_validation() -> None:
    net = _net()
    sm = SignSupermask(net, _masks(net))
    with pytest.raises(ValueError, match="keys"):
        sm.set_scores({"1.weight": torch.zeros(6, 8)})
    with pytest.raises(ValueError, match="shape"):
        sm.set_scores({"1.weight": torch.zeros(6, 7), "3.weight": torch.zeros(3, 6)})
    with pytest.raises(ValueError, match="finite"):
        sm.set_scores({"1.weight": torch.full((6, 8), float("nan")), "3.weight": torch.zeros(3, 6)})
    with pytest.raises(ValueError, match="not a parameter"):
        SignSupermask(net, {"9.weight": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        SignSupermask(net, {"1.weight": torch.ones(6, 7, dtype=torch.bool)})
    with pytest.raises(TypeError, match="bool"):
        SignSupermask(net, {"1.weight": torch.ones(6, 8)})
    with pytest.raises(ValueError, match="densities"):
        BinarySupermask(net, {"1.weight": 0.0})
    with pytest.raises(TypeError, match="floating"):
        sign_ste(torch.tensor([1, -1]))
    with pytest.raises(ValueError, match="k"):
        topk_mask_ste(torch.zeros(3), 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_topk_mask_selects_the_same_set_as_torch_topk(dtype: torch.dtype) -> None:
    """The partition fast path picks exactly torch.topk's set (ties fall back to topk)."""
    gen = torch.Generator().manual_seed(0)
    for n, k in [(1, 1), (7, 3), (500, 250), (4096, 2047), (300, 300), (300, 0)]:
        with_nan = torch.randn(n, generator=gen, dtype=dtype)
        with_nan[::5] = float("nan")  # torch.topk ranks NaN above everything
        with_inf = torch.randn(n, generator=gen, dtype=dtype)
        with_inf[::7] = float("inf")
        for values in (
            torch.randn(n, generator=gen, dtype=dtype),
            torch.randint(0, 4, (n,), generator=gen).to(dtype),  # many ties at the boundary
            with_nan,
            with_inf,
        ):
            expected = torch.zeros(n, dtype=dtype)
            if k:
                expected[torch.topk(values.abs(), k, sorted=False).indices] = 1.0
            assert torch.equal(topk_mask_ste(values, k), expected)
