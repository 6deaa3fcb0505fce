"""A spiking network through the other packages: train it (snn), prune its channels (pruning),
count its synaptic operations and export the pruned network to NIR (snn), read its
representations and attributions (interpretability), take its tangent kernel (theory).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    layer_activations,
    layer_feature_ablation,
    neuron_output,
    rdm,
    saliency,
)
from neuronkit.pruning import DependencyGraph, count_macs, plan_pruning, prune, soft_prune
from neuronkit.snn import (
    ALIF,
    IF,
    LI,
    LIF,
    PLIF,
    CuBaLIF,
    SeqAvgPool2d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    TimeDistributed,
    from_nir,
    load_event_digits,
    spike_count_ce,
    synaptic_operations,
    to_nir,
)
from neuronkit.snn.synapses import DelayedLinear
from neuronkit.theory import empirical_ntk

T = 6


def _spiking_cnn() -> nn.Sequential:
    # reset to zero: the reset NIR neurons have, so the pruned network exports
    return nn.Sequential(
        SeqConv2d(2, 16, 3, padding=1),
        LIF(tau=2.0, reset="zero"),
        SeqAvgPool2d(2),
        SeqConv2d(16, 16, 3, padding=1),
        IF(reset="zero"),
        SeqFlatten(),
        SeqLinear(16 * 4 * 4, 32),
        LIF(tau=2.0, reset="zero"),
        SeqLinear(32, 10),
    )


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[1], (64,), generator=g)
        opt.zero_grad()
        spike_count_ce(model(x[:, idx]), y[idx]).backward()
        opt.step()
    model.eval()


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).sum(0).argmax(-1) == y).float().mean())


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    data = load_event_digits(T, seed=0)
    x_tr, x_te = data.x_train, data.x_test  # [T, N, 2 polarities, 8, 8] binary events
    model = _spiking_cnn()
    _train(model, x_tr, data.y_train, 150)
    return model, x_tr, data.y_train, x_te, data.y_test


def test_prune_a_trained_snn_count_its_synops_and_export_it_to_nir(trained) -> None:
    model, x_tr, y_tr, x_te, y_te = trained
    base_acc = _accuracy(model, x_te, y_te)
    assert base_acc > 0.6  # it learned: the rest is about a working network

    graph = DependencyGraph(model, x_te[:, :4])
    assert [g.size for g in graph.groups if g.prunable] == [16, 16, 32]
    plan = plan_pruning(graph, "l2", ratio=0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():  # the same spikes, on data, at another batch size
        torch.testing.assert_close(small(x_te[:, :100]), oracle(x_te[:, :100]))
    assert (small[0].out_channels, small[3].out_channels, small[6].out_features) == (8, 8, 16)

    # fewer operations: dense MACs (pruning's counter) and event-driven SynOps (snn's) agree
    # on the dense count; SynOps fall with the channels and the spikes that reach them
    before, after = synaptic_operations(model, x_te), synaptic_operations(small, x_te)
    assert before["total"].macs == count_macs(model, x_te)
    assert after["total"].macs == count_macs(small, x_te) < before["total"].macs / 2
    assert after["total"].synops < before["total"].synops
    assert 0 < after["3"].input_density < 1  # conv2 reads spikes, sparse ones

    # fine-tuning recovers accuracy; the pruned network exports and runs from NIR unchanged
    _train(small, x_tr, y_tr, 100)
    assert _accuracy(small, x_te, y_te) > base_acc - 0.15
    graph_nir = to_nir(small, input_shape=(2, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(from_nir(graph_nir)(x_te[:, :50]), small(x_te[:, :50]))


@pytest.mark.parametrize(
    "neuron", [LIF(), PLIF(), IF(), ALIF(), CuBaLIF(), LI()], ids=lambda m: type(m).__name__
)
def test_every_neuron_type_prunes_to_the_oracle(neuron: nn.Module) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        TimeDistributed(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8))),
        neuron,
        SeqFlatten(),
        SeqLinear(8 * 8 * 8, 12),
        LIF(),
        SeqLinear(12, 4),
    ).eval()
    x = (torch.rand(T, 3, 1, 8, 8) > 0.6).float() * 2
    graph = DependencyGraph(model, x)
    assert all(g.prunable for g in graph.groups if g.size in (8, 12))
    plan = plan_pruning(graph, "l2", ratio=0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    x = (torch.rand(T + 2, 5, 1, 8, 8) > 0.6).float() * 2
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle(x))


def _per_channel(n: int, shape: tuple[int, ...] = ()) -> torch.Tensor:
    return torch.linspace(0.5, 1.5, n).reshape(n, *shape)


@pytest.mark.parametrize(
    "neuron",
    [
        LIF(threshold=_per_channel(8, (1, 1)), tau=1.0 + 2 * _per_channel(8, (1, 1))),
        ALIF(threshold=nn.Parameter(_per_channel(8, (1, 1)))),  # learnable per channel
        LI(tau=1.0 + 2 * _per_channel(8, (1, 1))),
    ],
    ids=lambda m: type(m).__name__,
)
def test_per_channel_settings_are_sliced_with_their_channels(neuron: nn.Module) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 8, 3, padding=1)),
        neuron,
        SeqFlatten(),
        SeqLinear(8 * 8 * 8, 4),
    ).eval()
    x = (torch.rand(T, 3, 1, 8, 8) > 0.6).float() * 2
    graph = DependencyGraph(model, x)
    hidden = next(g for g in graph.groups if g.size == 8)
    assert hidden.prunable
    assert {m.role for m in hidden.members if m.module == "1"} == {"setting"}
    plan = plan_pruning(graph, "l2", ratio=0.5)
    small, oracle = prune(graph, plan), soft_prune(graph, plan)
    assert all(t.shape[0] == 4 for _, t in small[1].named_buffers())
    assert all(t.shape[0] == 4 for _, t in small[1].named_parameters())
    x = (torch.rand(T + 2, 5, 1, 8, 8) > 0.6).float() * 2
    with torch.no_grad():
        torch.testing.assert_close(small(x), oracle(x))


def test_settings_that_vary_along_another_axis_keep_the_channels() -> None:
    # a [C] threshold on [T, B, C, H, W] broadcasts along W, not the channels
    model = nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 8, 3, padding=1)),
        LIF(threshold=_per_channel(8)),
        SeqFlatten(),
        SeqLinear(8 * 8 * 8, 4),
    )
    graph = DependencyGraph(model, torch.rand(T, 2, 1, 8, 8))
    hidden = next(g for g in graph.groups if g.size == 8)
    assert not hidden.prunable
    assert "per-element threshold [8] is not one per channel" in hidden.reason


def test_representations_and_attributions_of_a_spiking_network(trained) -> None:
    model, _, _, x_te, y_te = trained
    x = x_te[:, :40]

    class BatchFirst(nn.Module):  # [N, T, ...] inputs, as interpretability's functions take
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.transpose(0, 1)).sum(0)  # spike counts [N, 10]

    wrapped = BatchFirst(model).eval()
    # layer_activations reads the hidden layer's time-major spikes per input: [N, T * 32]
    spikes = layer_activations(wrapped, x.transpose(0, 1), "net.7", batch_dim=1)["net.7"]
    assert spikes.shape == (40, T * 32)
    with torch.no_grad():
        direct = model[:8](x).transpose(0, 1).reshape(40, -1)
    assert torch.equal(spikes, direct)
    # an RDM of the spike patterns: same-class pairs are closer than different-class pairs
    labels = y_te[:40]
    d = torch.as_tensor(rdm(spikes.double().numpy(), "euclidean"))
    i, j = torch.triu_indices(40, 40, 1)
    same = labels[i] == labels[j]
    assert d[same].mean() < d[~same].mean()
    # and of the units' spike counts as Poisson rates (symmetrized KL divergence)
    counts = spikes.reshape(40, T, 32).sum(1).double().numpy()
    kl = torch.as_tensor(rdm(counts, "poisson"))
    assert kl[same].mean() < kl[~same].mean()
    # saliency through the surrogate gradients: the gradient of the target's spike count
    inputs = x.transpose(0, 1).clone()
    sal = saliency(wrapped, inputs, target=labels, abs=False)
    probe = inputs.clone().requires_grad_(True)
    wrapped(probe).gather(1, labels[:, None]).sum().backward()
    assert probe.grad is not None
    assert sal.shape == inputs.shape
    torch.testing.assert_close(sal, probe.grad)
    assert sal.abs().sum() > 0


def test_the_front_readme_examples_run(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    from neuronkit.common.testing import run_readme_examples

    monkeypatch.chdir(tmp_path)
    assert run_readme_examples(Path(__file__).resolve().parents[1] / "README.md") >= 1


def test_delayed_synapses_keep_their_channels_and_the_rest_prunes() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        SeqLinear(10, 16),
        LIF(),
        DelayedLinear(16, 12, 5, seed=0),
        LIF(),
        SeqLinear(12, 8),
        LIF(),
        SeqLinear(8, 4),
    ).eval()
    x = torch.rand(6, 3, 10) * 3
    graph = DependencyGraph(model, x)
    into_delays = next(g for g in graph.groups if g.size == 16)
    assert not into_delays.prunable
    assert "DelayedLinear is not channel-local" in into_delays.reason
    assert next(g for g in graph.groups if g.size == 8).prunable
    plan = plan_pruning(graph, "l2", ratio=0.5)
    with torch.no_grad():
        torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))
    ops = synaptic_operations(model, x)
    assert ops["total"].macs == count_macs(model, x)  # the delayed synapses counted as well


def test_delayed_synapses_save_and_load_with_common_weight_io(tmp_path) -> None:
    """save_weights keeps DelayedLinear's tap mode (its extra state, not a tensor)."""
    from neuronkit.common import load_weights, save_weights

    torch.manual_seed(0)
    model = nn.Sequential(DelayedLinear(6, 4, 5, seed=0), LIF()).eval()
    model[0].round_delays()  # integer taps: the mode the reloaded layer must run
    path = save_weights(model, tmp_path / "delays.safetensors")
    loaded = load_weights(path, nn.Sequential(DelayedLinear(6, 4, 5, seed=1), LIF()).eval())
    assert loaded[0].hard
    x = torch.rand(8, 2, 6) * 3
    torch.testing.assert_close(loaded(x), model(x))


def test_the_iir_snn_prunes_to_the_oracle() -> None:
    from neuronkit.snn.training import iir_cnn

    model = iir_cnn(seed=0).eval()
    x = torch.rand(3, 2, 1, 8, 8) * 2
    graph = DependencyGraph(model, x)
    assert all(g.prunable for g in graph.groups if g.size in (16, 32, 64))  # IIRLIF passes
    plan = plan_pruning(graph, "l2", ratio=0.5)
    with torch.no_grad():
        torch.testing.assert_close(prune(graph, plan)(x), soft_prune(graph, plan)(x))


class _BatchFirst(nn.Module):
    """A time-major spiking network as a batch-first model: ``[B, T, F] -> [B, O]``, the mean
    readout over time."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(0, 1)).mean(0)


@pytest.mark.parametrize("neuron", [LIF(), PLIF(), ALIF()], ids=["lif", "plif", "alif"])
def test_the_tangent_kernel_of_a_spiking_network(neuron: nn.Module) -> None:
    """theory's empirical NTK (vmap over jacrev) runs through spiking neurons with their
    surrogate gradient and equals J J^T from one backward per example and output."""
    torch.manual_seed(0)
    model = _BatchFirst(nn.Sequential(SeqLinear(4, 16), neuron, SeqLinear(16, 3)))
    x = 2 * torch.randn(5, 8, 4, generator=torch.Generator().manual_seed(1))  # [B, T, F]
    kernel = empirical_ntk(model, x, output="full")  # [B, B, O, O]
    jacobian = []
    for b in range(len(x)):
        rows = []
        for o in range(3):
            model.zero_grad()
            model(x[b : b + 1])[0, o].backward()
            rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        jacobian.append(torch.stack(rows))
    j = torch.stack(jacobian)  # [B, O, P]
    expected = torch.einsum("aop,bqp->aboq", j, j)
    assert float(expected.abs().max()) > 0.1  # the spikes pass a gradient
    torch.testing.assert_close(kernel, expected, atol=1e-5, rtol=1e-4)


def test_lesioning_spiking_neurons(trained) -> None:
    """Interpretability's lesions on snn's time-major hidden layer (batch_dim=1): a neuron is
    silenced at every time step, and its drop is the target spike count's, written out."""
    model, _, _, x_te, y_te = trained
    x, labels = x_te[:, :12], y_te[:12]

    class BatchFirst(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.transpose(0, 1)).sum(0)  # spike counts [N, 10]

    wrapped = BatchFirst(model).eval()
    inputs = x.transpose(0, 1).clone()  # [N, T, 2, 8, 8]
    drops = layer_feature_ablation(
        wrapped, inputs, "net.7", labels, batch_dim=1, layer_mask=torch.arange(32)
    )
    assert drops.shape == (T, 12, 32)
    assert torch.equal(drops, drops[:1].expand_as(drops))  # one drop per neuron and input

    def silence_5(module: nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[..., 5] = 0
        return out

    with torch.no_grad():
        full = wrapped(inputs).gather(1, labels[:, None])[:, 0]
        handle = model[7].register_forward_hook(silence_5)
        lesioned = wrapped(inputs).gather(1, labels[:, None])[:, 0]
        handle.remove()
    torch.testing.assert_close(drops[0, :, 5], full - lesioned)
    assert float(drops.abs().sum()) > 0
    # and what drives neuron 5: its spike count's surrogate gradient, as the one written out
    count_5 = neuron_output(wrapped, "net.7", (slice(None), 5), batch_dim=1)
    grads = saliency(count_5, inputs, abs=False)
    probe = inputs.clone().requires_grad_(True)
    model[:8](probe.transpose(0, 1))[..., 5].sum().backward()
    assert probe.grad is not None
    torch.testing.assert_close(grads, probe.grad)
    assert float(grads.abs().sum()) > 0
