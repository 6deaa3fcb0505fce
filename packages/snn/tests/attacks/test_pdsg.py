"""PDSG surrogate, running per-channel statistics and swapping surrogates into models."""

import math
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.snn import (
    ALIF,
    IF,
    LIF,
    ATan,
    CuBaLIF,
    SeqFlatten,
    SeqLinear,
    Triangle,
    lif_multistep,
)
from neuronkit.snn.attacks import PDSG, RunningChannelStd
from neuronkit.snn.surrogate import SurrogateSwap, swap_surrogate
from neuronkit.snn.training import StepSequential

F64 = torch.float64


def _gauss(x: torch.Tensor, sigma: torch.Tensor, shift: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - shift * sigma) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)


def test_running_std_matches_pooled_std_over_updates() -> None:
    gen = torch.Generator().manual_seed(0)
    parts = [torch.randn(3, 4, 5, 5, generator=gen, dtype=F64) * (i + 1) + i for i in range(3)]
    stats = RunningChannelStd(channel_dim=1)
    for p in parts:
        stats.update(p)
    pooled = torch.stack(parts).transpose(0, 2).reshape(4, -1)  # channel first
    torch.testing.assert_close(stats.std(), pooled.std(1))
    assert stats.count == 3 * 3 * 25


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_running_std_accumulates_half_values_wide(dtype: torch.dtype) -> None:
    # float16: one update's sum of squares (~9 * 65536) overflows to inf; bfloat16: after ~1000
    # updates each one is below m2's rounding, m2 stalls and the std read 2 for a true 3
    gen = torch.Generator().manual_seed(0)
    parts = [torch.randn(8, 2, 16, generator=gen, dtype=F64) * 3 for _ in range(1000)]
    parts.append(torch.randn(64, 2, 32, 32, generator=gen, dtype=F64).flatten(2) * 3)
    stats, ref = RunningChannelStd(), RunningChannelStd()
    for p in parts:
        stats.update(p.to(dtype))
        ref.update(p.to(dtype).to(F64))
    got = stats.std()
    assert got is not None
    assert got.dtype == dtype
    torch.testing.assert_close(got.to(F64), ref.std(), rtol=1e-2, atol=0.0)


def test_running_std_single_value_is_nan_and_clear_forgets() -> None:
    stats = RunningChannelStd()
    assert stats.std() is None
    stats.update(torch.ones(1, 3))
    assert torch.isnan(stats.std()).all()
    stats.clear()
    assert stats.std() is None
    assert stats.count == 0


def test_running_std_rejects_channel_change_and_bad_input() -> None:
    stats = RunningChannelStd()
    stats.update(torch.randn(2, 3))
    with pytest.raises(ValueError, match="channels"):
        stats.update(torch.randn(2, 4))
    with pytest.raises(ValueError, match="channel axis"):
        stats.update(torch.randn(3))
    with pytest.raises(TypeError, match="v must"):
        stats.update([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel_dim"):
        RunningChannelStd(channel_dim=-1)


def test_pdsg_call_names_its_argument_x() -> None:
    """``pdsg(x)`` failed in the statistics' mean ("NotImplementedError: mean(): could not infer
    output dtype") for an integer x, and named a 1-d x ``v``."""
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
        PDSG()(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^x must be Tensor"):
        PDSG()([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^x must have a channel axis 1"):
        PDSG()(torch.randn(3))


def test_pdsg_call_channel_change_names_x() -> None:
    """``pdsg(x)`` with a new channel count named the internal ``v``."""
    pdsg = PDSG()
    pdsg(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"^x must keep 3 channels .*got shape \(2, 4\)"):
        pdsg(torch.randn(2, 4))


def test_pdsg_integer_inputs_are_named() -> None:
    """An integer or bool ``v`` failed in torch's mean ("could not infer output dtype"); an
    integer ``x`` in ``derivative`` ran (other surrogates refuse it), a list failed on .ndim."""
    with pytest.raises(
        TypeError, match=r"^v must be a floating-point tensor, got dtype torch.int64"
    ):
        RunningChannelStd().update(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"^v must be a floating-point tensor, got dtype torch.bool"
    ):
        PDSG().fire(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
        PDSG().derivative(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^x must be Tensor"):
        PDSG().derivative([1.0])  # type: ignore[arg-type]


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_pdsg_forward_is_heaviside_backward_is_gaussian_of_channel_std(shift: float) -> None:
    gen = torch.Generator().manual_seed(1)
    v = (torch.randn(16, 3, 4, 4, generator=gen, dtype=F64) * torch.tensor([0.5, 1.0, 3.0],
         dtype=F64)[:, None, None]).requires_grad_(True)  # fmt: skip
    p = PDSG(alpha=1.5, shift=shift)
    x = v - 1.0
    s = p.fire(x, v)
    torch.testing.assert_close(s, (x >= 0).to(F64))
    (g,) = torch.autograd.grad(s.sum(), v)
    std = v.detach().transpose(0, 1).reshape(3, -1).std(1)
    sigma = (1.5 * std)[None, :, None, None]
    torch.testing.assert_close(g, _gauss(x.detach(), sigma, shift))
    torch.testing.assert_close(p.derivative(x.detach()), _gauss(x.detach(), sigma, shift))


def test_pdsg_gaussian_integrates_to_one_and_undefined_std_falls_back_to_alpha() -> None:
    p = PDSG(alpha=0.7)
    z = torch.linspace(-20, 20, 40001, dtype=F64)[:, None]  # before any statistics: sigma = alpha
    torch.testing.assert_close(p.sigma(z), torch.full((1, 1), 0.7, dtype=F64))
    area = torch.trapezoid(p.derivative(z).squeeze(1), z.squeeze(1))
    assert abs(float(area) - 1.0) < 1e-6
    p.fire(torch.zeros(1, 2), torch.zeros(1, 2))  # one value per channel: std undefined
    torch.testing.assert_close(p.sigma(torch.zeros(1, 2)), torch.full((1, 2), 0.7))


def test_pdsg_statistics_accumulate_over_time_and_restart_per_run() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 8, 6, generator=gen, dtype=F64, requires_grad=True)
    p = PDSG()
    out = lif_multistep(x, reset="none", surrogate=p)  # v = pre-spike membrane when no reset
    assert p.stats.count == 5 * 8
    torch.testing.assert_close(p.stats.std(), out.v.detach().reshape(-1, 6).std(0))
    lif_multistep(x, reset="none", surrogate=p)
    assert p.stats.count == 5 * 8  # begin() at each multi-step run


@pytest.mark.parametrize(
    "make", [lambda p: LIF(surrogate=p), lambda p: IF(surrogate=p), lambda p: ALIF(surrogate=p)]
)
def test_a_neurons_step_from_rest_restarts_pdsg_statistics(make: Any) -> None:
    p = PDSG()
    neuron = make(p)
    x = torch.randn(3, 8, 6, dtype=F64)
    for _ in range(2):  # two sequences of three steps, each started with state=None
        state = None
        for t in range(3):
            _, state = neuron.step(x[t], state)
        assert p.stats.count == 3 * 8
    _, state = neuron.step(x[0], state)  # a given state continues the sequence
    assert p.stats.count == 4 * 8


def test_step_sequential_starts_a_sequence_from_a_tuple_of_nones() -> None:
    net = StepSequential(nn.Linear(6, 5), LIF(surrogate=PDSG()), nn.Linear(5, 4))
    p = net.layers[1].surrogate
    x = torch.randn(8, 6)
    _, state = net(x)
    net(x, state)
    assert p.stats.count == 2 * 8
    net(x, (None,))  # at rest: a new sequence
    assert p.stats.count == 8
    with pytest.raises(ValueError, match="tuple of 1"):
        net(x, (None, None))


def test_fused_path_honours_pdsg_like_the_reference_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 4, 5, generator=gen, dtype=F64) * 2
    grads, spikes = [], []
    for fused in (True, False):
        xi = x.clone().requires_grad_(True)
        out = lif_multistep(xi, tau=3.0, fused=fused, surrogate=PDSG())
        (g,) = torch.autograd.grad((out.spikes * torch.arange(1.0, 6.0, dtype=F64)).sum(), xi)
        grads.append(g)
        spikes.append(out.spikes)
    torch.testing.assert_close(grads[0], grads[1])
    torch.testing.assert_close(spikes[0], spikes[1])
    # and it differs from the fused ATan gradient (the surrogate really changed)
    xi = x.clone().requires_grad_(True)
    out = lif_multistep(xi, tau=3.0, surrogate=ATan())
    (g_atan,) = torch.autograd.grad((out.spikes * torch.arange(1.0, 6.0, dtype=F64)).sum(), xi)
    assert not torch.allclose(g_atan, grads[0])


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        SeqFlatten(), SeqLinear(8, 6), LIF(), SeqLinear(6, 5), ALIF(), SeqLinear(5, 4), CuBaLIF()
    )


def test_swap_surrogate_replaces_every_neuron_and_restores() -> None:
    net = _net()
    x = torch.rand(4, 3, 8) * 3
    before = net(x)
    with swap_surrogate(net, PDSG()) as swap:
        assert isinstance(swap, SurrogateSwap)
        assert len(swap) == 3
        sgs = [m.surrogate for m in net.modules() if hasattr(m, "surrogate")]
        assert all(isinstance(s, PDSG) for s in sgs)
        assert len({id(s) for s in sgs}) == 3  # one statistics holder per layer
        torch.testing.assert_close(net(x), before)  # forward unchanged
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xi).sum(), xi)
        assert torch.isfinite(g).all()
        assert g.abs().sum() > 0
        swap.begin()
    assert all(isinstance(m.surrogate, ATan) for m in net.modules() if hasattr(m, "surrogate"))
    handle = swap_surrogate(net, "triangle")
    assert all(isinstance(s, Triangle) for s in handle.new.values())
    handle.restore()
    handle.restore()  # idempotent
    assert all(isinstance(s, ATan) for s in handle.old.values())


def test_swap_surrogate_bad_inputs() -> None:
    with pytest.raises(ValueError, match="neuron module"):
        swap_surrogate(nn.Linear(2, 2), PDSG())
    with pytest.raises(TypeError, match="model"):
        swap_surrogate("net", PDSG())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="surrogate"):
        swap_surrogate(_net(), "nope")


def test_pdsg_validation_and_copies() -> None:
    with pytest.raises(ValueError, match="alpha"):
        PDSG(alpha=0.0)
    with pytest.raises(ValueError, match="shift"):
        PDSG(shift=float("nan"))
    with pytest.raises(ValueError, match="channel_dim"):
        PDSG(channel_dim=-1)
    p = PDSG(alpha=2.0)
    p(torch.randn(4, 3))
    q = p.for_module()
    assert q == p
    assert q is not p
    assert q.stats.count == 0
    assert p.stats.count == 4
