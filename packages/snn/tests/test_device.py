"""The engine on every available device: the fused path equals the step-by-step reference
there too, gradients and state stay on the input's device, torch.compile agrees with eager,
and training / encoding / attacks run without a host round trip of the tensors."""

import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.snn import (
    ALIF,
    IF,
    LIF,
    PLIF,
    CuBaLIF,
    SeqFlatten,
    SeqLinear,
    poisson_encode,
    spike_count_ce,
)
from neuronkit.snn.attacks import PDSG, attack_success, pgd, sda, snn_logits
from neuronkit.snn.surrogate import swap_surrogate
from neuronkit.snn.synapses import DelayedLinear
from neuronkit.snn.training import StepSequential, sltt_train_epoch

NEURONS = {
    "if": lambda fused: IF(reset="zero", fused=fused),
    "lif": lambda fused: LIF(tau=3.0, reset="subtract", fused=fused),
    "plif": lambda fused: PLIF(init_tau=2.5, fused=fused),
}


def _inputs(device: str, shape: tuple[int, ...] = (12, 4, 32)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(shape, generator=gen) * 1.5).to(device).requires_grad_()


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_fused_equals_reference_on_device(device: str, name: str) -> None:
    x = _inputs(device)
    weights = torch.arange(x.shape[0], dtype=x.dtype, device=device)[:, None, None]
    results = []
    for fused in (True, False):
        neuron = NEURONS[name](fused).to(device)
        spikes = neuron(x)
        params = list(neuron.parameters())
        grads = torch.autograd.grad((spikes * weights).sum(), [x, *params])
        results.append((spikes, grads))
    (s_f, g_f), (s_r, g_r) = results
    assert s_f.device.type == device
    assert s_f.dtype == x.dtype
    assert torch.equal(s_f, s_r)
    assert 0 < s_f.mean() < 1
    for a, b in zip(g_f, g_r):
        assert a.device.type == device
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", devices())
def test_two_state_neurons_run_on_device(device: str) -> None:
    x = _inputs(device)
    for neuron in (ALIF(tau=2.0, tau_adapt=10.0), CuBaLIF(tau_mem=4.0, tau_syn=2.0)):
        out = neuron.to(device).run(x)
        (grad,) = torch.autograd.grad(out.spikes.sum() + out.v.square().sum(), x)
        assert out.spikes.device.type == device
        assert all(t.device.type == device for t in out.state)
        assert grad.device.type == device
        assert bool(torch.isfinite(grad).all())


# torch.compile on the CPU: test_multistep.test_torch_compile_matches_eager
@pytest.mark.parametrize("device", devices()[1:])
def test_compiled_lif_equals_eager_on_device(device: str) -> None:
    x = _inputs(device, (8, 4, 64))
    eager = nn.Sequential(LIF(tau=2.0), LIF(tau=3.0, reset="zero")).to(device)
    compiled = torch.compile(nn.Sequential(LIF(tau=2.0), LIF(tau=3.0, reset="zero")).to(device))
    s_e, s_c = eager(x), compiled(x)
    (g_e,) = torch.autograd.grad(s_e.sum(), x)
    (g_c,) = torch.autograd.grad(s_c.sum(), x)
    assert torch.equal(s_e, s_c)
    torch.testing.assert_close(g_c, g_e, rtol=1e-5, atol=1e-6)


def _mlp(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        SeqFlatten(), SeqLinear(16, 32), LIF(tau=2.0), SeqLinear(32, 3), LIF(tau=2.0)
    ).to(device)


@pytest.mark.parametrize("device", devices())
def test_training_step_and_encoding_on_device(device: str) -> None:
    model = _mlp(device)
    images = torch.rand(8, 1, 4, 4, device=device)
    labels = torch.arange(8, device=device) % 3
    spikes_in = poisson_encode(images, 6, seed=0)
    assert spikes_in.device.type == device
    assert spikes_in.shape == (6, 8, 1, 4, 4)
    assert torch.equal(spikes_in, poisson_encode(images, 6, seed=0))  # seeded on the device
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    loss = spike_count_ce(model(spikes_in), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert loss.device.type == device
    assert bool(torch.isfinite(loss))
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before))


@pytest.mark.parametrize("device", devices())
def test_pgd_through_pdsg_on_device(device: str) -> None:
    model = _mlp(device).eval()
    x = torch.rand(6, 1, 4, 4, device=device)
    y = torch.arange(6, device=device) % 3
    with swap_surrogate(model, PDSG()):
        x_adv = pgd(model, x, y, eps=0.1, steps=3, T=4, seed=0)
    assert x_adv.device.type == device
    assert x_adv.shape == x.shape
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(x_adv.min()) >= 0
    assert float(x_adv.max()) <= 1


@pytest.mark.parametrize("device", devices())
def test_sltt_epoch_and_learnable_delays_on_device(device: str) -> None:
    torch.manual_seed(0)
    net = StepSequential(nn.Linear(5, 16), LIF(tau=2.0), nn.Linear(16, 3)).to(device)
    x, y = torch.rand(8, 5, device=device) * 2, torch.arange(8, device=device) % 3
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    before = [p.detach().clone() for p in net.parameters()]
    sltt_train_epoch(net, [(x, y)], opt, 4)
    assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), before))
    layer = DelayedLinear(3, 4, max_delay=5, seed=1).to(device)
    out = layer(torch.rand(12, 2, 3, device=device))
    out.square().sum().backward()
    assert out.device.type == device
    assert out.shape == (12, 2, 4)
    assert all(p.grad is not None and p.grad.device.type == device for p in layer.parameters())
    layer.round_delays()
    assert layer(torch.rand(12, 2, 3, device=device)).device.type == device


@pytest.mark.parametrize("device", devices())
def test_sparse_dynamic_attack_on_device(device: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(SeqFlatten(), SeqLinear(12, 24), LIF(), SeqLinear(24, 3)).to(device)
    with torch.no_grad():
        net[1].weight.mul_(6.0)
    x = (torch.rand(6, 10, 12, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    x = x.to(device)
    with torch.no_grad():
        y = snn_logits(net, x).argmax(1)
    res = sda(net, x, y, k_init=4, max_iters=40, seed=0)
    assert res.x_adv.device.type == device
    assert bool(((res.x_adv == 0) | (res.x_adv == 1)).all())
    assert bool(res.success.any())
    assert bool(attack_success(net, res.x_adv[:, res.success], y[res.success]).all())
