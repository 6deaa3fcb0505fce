"""Torch-based measures and models on every available device: results stay on the input's
device and equal the CPU's (float64 where the CPU reference is exact)."""

import copy

import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.theory import local_complexity
from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.kan import KANLayer, SKANLayer
from neuronkit.theory.kan.basis import SPACES
from neuronkit.theory.measures import empirical_ntk
from neuronkit.theory.processes import MartingalePosteriorNP, NeuralProcess
from neuronkit.theory.timescales import TimescaleRNN

F64 = torch.float64


def _relu_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU()).to(F64)


@pytest.mark.parametrize("device", devices())
def test_local_complexity_and_ntk_on_device_equal_the_cpu(device: str) -> None:
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    cpu, dev = _relu_net(), _relu_net().to(device)
    lc = local_complexity(dev, x.to(device), radius=0.5, n_directions=3)
    assert lc.device.type == device
    torch.testing.assert_close(lc.cpu(), local_complexity(cpu, x, radius=0.5, n_directions=3))
    kernel = empirical_ntk(dev, x.to(device))
    assert kernel.device.type == device
    assert kernel.shape == (6, 6)
    torch.testing.assert_close(kernel.cpu(), empirical_ntk(cpu, x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", devices())
def test_timescale_rnn_trains_on_device(device: str) -> None:
    model = TimescaleRNN(1, 16, num_heads=2, seed=0).to(device)
    x = torch.randn(10, 4, 1, generator=torch.Generator().manual_seed(0)).to(device)
    logits = model(x)
    assert logits.device.type == device
    assert logits.shape == (2, 4, 2)
    logits.square().sum().backward()
    assert all(p.grad is not None and p.grad.device.type == device for p in model.parameters())


@pytest.mark.parametrize("device", devices())
def test_kan_layers_on_device_equal_the_cpu(device: str) -> None:
    x = torch.rand(16, 3, generator=torch.Generator().manual_seed(0), dtype=F64) * 2 - 1
    for space in SPACES:
        torch.manual_seed(0)
        cpu = KANLayer(3, 2, space=space).to(F64)
        dev = copy.deepcopy(cpu).to(device)
        out = dev(x.to(device))
        out.sum().backward()
        assert out.device.type == device
        assert all(p.grad is not None for p in dev.parameters() if p.requires_grad)
        torch.testing.assert_close(out.detach().cpu(), cpu(x).detach(), rtol=1e-9, atol=1e-10)
    torch.manual_seed(0)
    skan = SKANLayer(3, 2).to(device)
    assert skan(x.float().to(device)).device.type == device


@pytest.mark.parametrize("device", devices())
def test_neural_processes_on_device(device: str) -> None:
    tasks = sample_gp_tasks(2, num_context=6, num_target=3, seed=0)
    xc, yc, x, y, xt = (t.to(device) for t in (tasks.xc, tasks.yc, tasks.x, tasks.y, tasks.xt))
    mpnp = MartingalePosteriorNP(hidden=16, num_heads=2, num_train_samples=2, seed=0)
    latent = NeuralProcess(hidden=16, num_train_samples=2, seed=0)
    for model in (mpnp, latent):
        model.to(device)
        for gen in (torch.Generator().manual_seed(0), torch.Generator(device).manual_seed(0)):
            loss = model.loss(xc, yc, x, y, generator=gen)
            loss.backward()
            assert loss.device.type == device
            assert bool(torch.isfinite(loss))
        pred = model(xc, yc, xt, num_samples=3)
        assert pred.mean.device.type == device
        assert pred.mean.shape == (3, 2, 3, 1)
    # a CPU generator draws the same noise whatever the model's device
    cpu_model = MartingalePosteriorNP(hidden=16, num_heads=2, num_train_samples=2, seed=0)
    want = cpu_model.loss(
        tasks.xc, tasks.yc, tasks.x, tasks.y, generator=torch.Generator().manual_seed(1)
    )
    got = mpnp.loss(xc, yc, x, y, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got.detach().cpu(), want.detach(), rtol=1e-4, atol=1e-5)
