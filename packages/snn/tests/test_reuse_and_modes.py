"""Side effects and reuse: training modes, the caller's tensors, the global RNG, handles
used twice, stateful surrogates across sequences."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from neuronkit.snn import (
    LIF,
    ATan,
    SeqDropout,
    SeqFlatten,
    SeqLinear,
    TimeDistributed,
    Triangle,
    swap_surrogate,
)
from neuronkit.snn.attacks import PDSG, attack_success, fgsm, pgd, sda, snn_logits
from neuronkit.snn.training import IIRLIF, StepSequential, ann_to_snn


def _thresholds(snn: nn.Module) -> list[float]:
    return [float(m.threshold.detach()) for m in snn if isinstance(m, IIRLIF)]


def test_ann_to_snn_calibrates_in_eval_mode_and_keeps_the_anns_mode() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 16), nn.ReLU(),
        nn.Linear(16, 3),
    )  # fmt: skip
    plain = nn.Sequential(*[m for m in ann if not isinstance(m, nn.Dropout)])
    x = torch.rand(32, 8)
    want = _thresholds(ann_to_snn(plain, x, calib_steps=5))  # no dropout at all
    for training in (False, True):
        ann.train(training)
        for seed in (1, 2):
            torch.manual_seed(seed)
            rng = torch.get_rng_state()
            snn = ann_to_snn(ann, x, calib_steps=5)
            assert torch.equal(torch.get_rng_state(), rng)  # no dropout mask drawn
            assert _thresholds(snn) == pytest.approx(want, rel=1e-6)
            assert all(m.training == training for m in snn.modules())
            assert all(m.training == training for m in ann.modules())
    drop = ann_to_snn(ann.eval(), x, calib_steps=5)[2]
    assert isinstance(drop, SeqDropout)
    assert not drop.training


def test_ann_to_snn_leaves_x_calib_alone_with_an_inplace_first_layer() -> None:
    ann = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(4, 8), nn.ReLU(inplace=True))
    ann.append(nn.Linear(8, 2)).eval()
    x = torch.randn(16, 4)
    before = x.clone()
    for calibration in ("ann", "spikes"):
        ann_to_snn(ann, x, calibration=calibration, calib_steps=3)
        assert torch.equal(x, before), calibration


def test_from_nir_leaves_the_global_rng_alone() -> None:
    pytest.importorskip("nir", reason="the optional 'nir' extra (neuronkit-snn[nir]) is absent")
    from neuronkit.snn import SeqAvgPool2d, SeqConv2d
    from neuronkit.snn.nir import from_nir, to_nir

    torch.manual_seed(0)
    net = nn.Sequential(
        SeqConv2d(1, 2, 3, padding=1), LIF(reset="zero"), SeqAvgPool2d(2), SeqFlatten(),
        SeqLinear(8, 3), LIF(reset="zero"),
    ).eval()  # fmt: skip
    graph = to_nir(net, input_shape=(1, 4, 4), dt=1e-3)
    rng = torch.get_rng_state()
    imported = from_nir(graph)
    assert torch.equal(torch.get_rng_state(), rng)
    x = torch.rand(3, 2, 1, 4, 4)
    torch.testing.assert_close(imported(x), net(x))


class _Shift(nn.Module):
    """``x - 0.5``, in place or not."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return x.sub_(0.5) if self.inplace else x - 0.5


def _twins() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    out_of_place = nn.Sequential(
        _Shift(False), SeqFlatten(), SeqLinear(12, 24), LIF(), SeqLinear(24, 3)
    )
    with torch.no_grad():
        out_of_place[2].weight.mul_(6.0)
    in_place = nn.Sequential(_Shift(True), *list(out_of_place)[1:])
    return out_of_place, in_place


def test_gradient_attacks_accept_a_model_that_changes_its_input_in_place() -> None:
    ref, model = _twins()
    x = torch.rand(6, 4, 12)
    y = torch.tensor([0, 1, 2, 0])
    before = x.clone()
    for kw in ({}, {"T": 3}):
        xin = x[0] if kw else x
        torch.testing.assert_close(
            fgsm(model, xin, y, eps=0.1, **kw), fgsm(ref, xin, y, eps=0.1, **kw)
        )
        torch.testing.assert_close(
            pgd(model, xin, y, eps=0.1, steps=2, seed=0, **kw),
            pgd(ref, xin, y, eps=0.1, steps=2, seed=0, **kw),
        )
        assert torch.equal(attack_success(model, xin, y, **kw), attack_success(ref, xin, y, **kw))
    torch.testing.assert_close(snn_logits(model, x), snn_logits(ref, x))
    assert torch.equal(x, before)


def test_sda_accepts_a_model_that_changes_its_input_in_place() -> None:
    ref, model = _twins()
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 3, 12, generator=gen) < 0.3).float()
    with torch.no_grad():
        y = snn_logits(ref, x).argmax(1)
    got, want = sda(model, x, y, max_iters=5, seed=0), sda(ref, x, y, max_iters=5, seed=0)
    assert torch.equal(got.x_adv, want.x_adv)
    assert torch.equal(got.queries, want.queries)


class _Pair(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x


def test_time_distributed_needs_a_module_that_returns_a_tensor() -> None:
    with pytest.raises(TypeError, match=r"module \(_Pair\) must return a tensor, got tuple"):
        TimeDistributed(_Pair())(torch.rand(2, 3, 4))


def test_time_distributed_refuses_a_multi_step_module() -> None:
    multi = [
        SeqFlatten(), SeqLinear(4, 2), LIF(), SeqDropout(0.1), IIRLIF(),
        TimeDistributed(nn.Linear(4, 2)), nn.Sequential(nn.Linear(4, 4), LIF()),
    ]  # fmt: skip
    for m in multi:
        with pytest.raises(ValueError, match=r"already takes time-major input \[T, B, \.\.\.\]"):
            TimeDistributed(m)
    with pytest.raises(ValueError, match=r"module\.1 \(LIF\)"):
        TimeDistributed(nn.Sequential(nn.Linear(4, 4), LIF()))
    x = torch.randn(3, 2, 2, 4, 4)
    td = TimeDistributed(nn.Flatten())
    assert td(x).shape == SeqFlatten()(x).shape == (3, 2, 32)
    with pytest.raises(ValueError, match=r"module \(LIF\) already takes"):
        td.module = LIF()  # a module set later is checked too
    with pytest.raises(TypeError, match="module"):
        td.module = "flatten"  # type: ignore[assignment]
    assert isinstance(td.module, nn.Flatten)
    td.module = nn.Identity()
    assert torch.equal(td(x), x)


def _surrogates(net: nn.Module) -> list[type]:
    return [type(m.surrogate) for m in net.modules() if isinstance(m, LIF)]


def _lif_net() -> nn.Module:
    return nn.Sequential(SeqLinear(4, 5), LIF(), SeqLinear(5, 2), LIF())


def test_surrogate_swap_refuses_to_be_entered_after_restore() -> None:
    net = _lif_net()
    sw = swap_surrogate(net, "triangle")
    with sw:
        assert _surrogates(net) == [Triangle, Triangle]
    with pytest.raises(RuntimeError, match="already restored"), sw:
        pass
    assert _surrogates(net) == [ATan, ATan]


def test_surrogate_swap_restores_last_in_first_out() -> None:
    net = _lif_net()
    a = swap_surrogate(net, "triangle")
    b = swap_surrogate(net, "gaussian")
    with pytest.raises(RuntimeError, match="last in, first out"):
        a.restore()
    assert not a.restored
    b.restore()
    a.restore()
    assert _surrogates(net) == [ATan, ATan]
    with swap_surrogate(net, "triangle"), swap_surrogate(net, PDSG()):  # nested: LIFO
        assert _surrogates(net) == [PDSG, PDSG]
    assert _surrogates(net) == [ATan, ATan]


def test_step_sequential_restarts_pdsg_statistics_at_a_new_sequence() -> None:
    torch.manual_seed(0)
    net = StepSequential(nn.Linear(4, 6), LIF(), nn.Linear(6, 3))
    x = torch.rand(5, 2, 4) * 2

    def grad() -> Tensor:
        xi = x.clone().requires_grad_(True)
        state, total = None, torch.zeros(())
        for t in range(x.shape[0]):
            out, state = net(xi[t], state)
            total = total + out.sum()
        (g,) = torch.autograd.grad(total, xi)
        return g

    def by_hand() -> Tensor:  # the neuron stepped directly, PDSG begun once
        lin1, lif, lin2 = net.layers
        xi = x.clone().requires_grad_(True)
        lif.surrogate.begin()
        v, total = None, torch.zeros(())
        for t in range(x.shape[0]):
            s, v = lif.step(lin1(xi[t]), v)
            total = total + lin2(s).sum()
        (g,) = torch.autograd.grad(total, xi)
        return g

    with swap_surrogate(net, PDSG()):
        first, second = grad(), grad()
        want = by_hand()
    torch.testing.assert_close(first, want, rtol=0, atol=0)
    torch.testing.assert_close(second, want, rtol=0, atol=0)
