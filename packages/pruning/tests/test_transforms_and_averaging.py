"""torch.func transforms through the straight-through estimators, and weight averaging
(``AveragedModel(use_buffers=True)``) over soft-pruned models."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call, grad, jacfwd, jacrev, jvp, vmap
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from neuronkit.pruning import DependencyGraph, DigitsCNN, SmallViT, plan_pruning, soft_prune
from neuronkit.pruning.dynamic.ftwt import DynamicCNN, binarize_ste
from neuronkit.pruning.federated.supermask import SignSupermask, sign_ste, topk_mask_ste
from neuronkit.pruning.prune import MaskedLayerNorm, MaskedNorm

pytestmark = pytest.mark.usefixtures("one_thread")

_STES = {
    "sign_ste": sign_ste,
    "binarize_ste": lambda s: binarize_ste(torch.sigmoid(s), 0.4),
    "topk_mask_ste": lambda s: topk_mask_ste(s, 3),
}


def _weighted(out: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    weights = torch.arange(1.0, s.shape[-1] + 1, dtype=s.dtype)
    return (out * weights * s.sin()).sum()


def _loss(f, s: torch.Tensor) -> torch.Tensor:
    return _weighted(f(s), s)


def _per_example_autograd(f, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outs, grads = [], []
    for row in x:
        r = row.clone().requires_grad_()
        out = f(r)
        _weighted(out, r).backward()
        outs.append(out.detach())
        assert r.grad is not None
        grads.append(r.grad)
    return torch.stack(outs), torch.stack(grads)


@pytest.mark.parametrize("name", sorted(_STES))
def test_grad_and_vmap_through_ste_agree_with_autograd(name: str) -> None:
    f = _STES[name]
    x = torch.randn(5, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    outs, grads = _per_example_autograd(f, x)
    assert torch.equal(vmap(f)(x), outs)
    assert torch.equal(vmap(grad(lambda s: _loss(f, s)))(x), grads)
    for i in range(len(x)):
        assert torch.equal(grad(lambda s: _loss(f, s))(x[i]), grads[i])


@pytest.mark.parametrize("name", sorted(_STES))
def test_forward_mode_is_the_straight_through_rule(name: str) -> None:
    f = _STES[name]
    x = torch.randn(9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # reverse and forward mode give the same straight-through Jacobian
    assert torch.equal(jacrev(f)(x), jacfwd(f)(x))
    tangent = torch.randn(9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out, t = jvp(f, (x,), (tangent,))
    assert torch.equal(out, f(x))
    with fwAD.dual_level():
        primal, t2 = fwAD.unpack_dual(f(fwAD.make_dual(x, tangent)))
    assert torch.equal(primal, f(x))
    assert t2 is not None
    assert torch.allclose(t, t2)


def test_topk_mask_ste_under_vmap_matches_each_row() -> None:
    x = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(3))
    batched = vmap(lambda s: topk_mask_ste(s, 7))(x)
    for row, got in zip(x, batched):
        assert torch.equal(got, topk_mask_ste(row, 7))
        assert int(got.sum()) == 7
    assert torch.equal(vmap(lambda s: topk_mask_ste(s, 0))(x), torch.zeros_like(x))


def _sign_supermask() -> tuple[SignSupermask, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 6, bias=False), nn.ReLU(), nn.Linear(6, 3))
    masks = {
        "1.weight": torch.rand(6, 8, generator=torch.Generator().manual_seed(0)) < 0.5,
        "3.weight": torch.ones(3, 6, dtype=torch.bool),
    }
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    return SignSupermask(net, masks), x


def test_sign_supermask_functional_call_grad_and_per_example_vmap() -> None:
    model, x = _sign_supermask()
    trained = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    assert [k for k, _ in trained] == ["scores.1__weight", "scores.3__weight"]
    params = {k: p.detach() for k, p in trained}

    def loss(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xb,)).square().sum()

    model.zero_grad()
    model(x).square().sum().backward()
    g = grad(loss)(params, x)
    for k, p in trained:
        assert p.grad is not None
        assert torch.allclose(g[k], p.grad, atol=1e-6, rtol=1e-5)
    per = vmap(grad(loss), in_dims=(None, 0))(params, x[:, None])
    for i in range(len(x)):
        model.zero_grad()
        model(x[i : i + 1]).square().sum().backward()
        for k, p in trained:
            assert p.grad is not None
            assert torch.allclose(per[k][i], p.grad, atol=1e-6, rtol=1e-5)


def test_dynamic_cnn_joint_mode_functional_call_grad() -> None:
    torch.manual_seed(0)
    model = DigitsCNN(widths=(4, 6, 5)).eval()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    net = DynamicCNN.from_sequential(model.features, head, ratio=0.8, mode="joint").eval()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(net, p, (x,)).square().sum()

    net.zero_grad()
    net(x).square().sum().backward()
    g = grad(loss)(params)
    for k, p in net.named_parameters():
        expected = torch.zeros_like(p) if p.grad is None else p.grad
        assert torch.allclose(g[k], expected, atol=1e-6, rtol=1e-5), k


def _soft_pruned_vit() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = SmallViT(image_size=16).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    graph = DependencyGraph(model, x)
    return soft_prune(graph, plan_pruning(graph, "l2", ratio=0.5)).eval(), x


def _masked_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (MaskedLayerNorm, MaskedNorm))]


def test_averaged_model_with_buffers_over_soft_pruned_vit() -> None:
    pruned, x = _soft_pruned_vit()
    assert _masked_norms(pruned), "the plan should leave masked LayerNorms"
    with torch.no_grad():  # the same (fast) path as the averaged model's calls below
        expected = pruned(x)
    for kwargs in ({}, {"multi_avg_fn": get_ema_multi_avg_fn(0.9)}):
        averaged = AveragedModel(pruned, use_buffers=True, **kwargs)
        averaged.update_parameters(pruned)
        averaged.update_parameters(pruned)
        averaged.update_parameters(pruned)
        averaged.eval()
        with torch.no_grad():
            assert torch.equal(averaged(x), expected)
        for m in _masked_norms(averaged.module):
            assert m.keep.is_floating_point()
            assert bool(((m.keep == 0) | (m.keep == 1)).all())


class _RMSNorm(nn.Module):
    """A Hugging Face style RMSNorm (no stored shape, so it runs on the kept channels)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6)


def test_averaged_model_with_buffers_over_masked_norm() -> None:
    torch.manual_seed(0)
    keep = torch.tensor([True, False, True, True, False, True, True, False])
    norm = _RMSNorm(8)
    model = nn.Sequential(nn.Linear(5, 8), MaskedNorm(norm, keep), nn.Linear(8, 3))
    x = torch.randn(4, 5)
    averaged = AveragedModel(model, use_buffers=True)
    averaged.update_parameters(model)
    averaged.update_parameters(model)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(averaged(x), out)
        # removed channels output 0; kept ones are the RMSNorm of the kept channels
        h = model[0](x)
        normed = model[1](h)
        assert torch.equal(normed[:, ~keep], torch.zeros(4, int((~keep).sum())))
        kept = h[:, keep]
        rms = torch.rsqrt(kept.square().mean(-1, keepdim=True) + 1e-6)
        assert torch.equal(normed[:, keep], norm.weight[keep] * kept * rms)


def test_old_bool_keep_state_dict_loads_and_averages() -> None:
    pruned, x = _soft_pruned_vit()
    with torch.no_grad():  # the same (fast) path as the averaged model's calls below
        expected = pruned(x)
    # a state dict saved when ``keep`` was a bool buffer
    old = {
        k: (v != 0 if k.endswith(".keep") else v.clone()) for k, v in pruned.state_dict().items()
    }
    assert any(v.dtype == torch.bool for v in old.values())
    fresh, _ = _soft_pruned_vit()
    for m in _masked_norms(fresh):  # a different mask, overwritten by the load
        m.keep.fill_(1)
    fresh.load_state_dict(old)  # copied into the float buffers
    for m in _masked_norms(fresh):
        assert m.keep.is_floating_point()
    with torch.no_grad():
        assert torch.equal(fresh(x), expected)
    averaged = AveragedModel(fresh, use_buffers=True)
    averaged.update_parameters(fresh)
    averaged.update_parameters(fresh)
    with torch.no_grad():
        assert torch.equal(averaged(x), expected)
