"""The engine on every available device: the fused path equals the step-by-step reference
there too, gradients and state stay on the input's device, torch.compile agrees with eager,
and training / encoding / attacks / early exit / conversion / NIR export run without a host
round trip of the tensors (and give the CPU's results where the method is deterministic)."""

import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.snn import (
    ALIF,
    IF,
    LI,
    LIF,
    PLIF,
    CuBaLIF,
    Delay,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    delta_encode,
    latency_encode,
    mean_membrane_ce,
    poisson_encode,
    spike_count_ce,
    tet_ce,
)
from neuronkit.snn.attacks import PDSG, attack_success, fgsm, pgd, sda, snn_logits
from neuronkit.snn.inference import (
    calibrate_threshold,
    confidence_sweep,
    dynamic_confidence,
    pareto_front,
    run_dynamic_confidence,
)
from neuronkit.snn.surrogate import swap_surrogate
from neuronkit.snn.synapses import DelayedLinear
from neuronkit.snn.training import (
    IIRLIF,
    StepSequential,
    ann_to_snn,
    bptt_train_epoch,
    cnn_ann,
    evaluate_steps,
    fold_batchnorm,
    minibatches,
    sltt_train_epoch,
)

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


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread (on a shared CPU extra threads only spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _step_net(device: str) -> StepSequential:
    torch.manual_seed(0)
    return StepSequential(nn.Linear(5, 16), LIF(tau=2.0), nn.Linear(16, 3)).to(device)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_dynamic_confidence_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    outputs = torch.randn(8, 32, 4, generator=gen) * 3
    targets = torch.randint(0, 4, (32,), generator=gen)
    ref = dynamic_confidence(outputs, threshold=0.5, scale=0.5)
    res = dynamic_confidence(outputs.to(device), threshold=0.5, scale=0.5)
    assert res.exit_step.device.type == device
    assert torch.equal(res.exit_step.cpu(), ref.exit_step)
    assert torch.equal(res.prediction.cpu(), ref.prediction)
    torch.testing.assert_close(res.confidence.cpu(), ref.confidence)
    sweep_ref = confidence_sweep(outputs, targets, [0.3, 0.6, 0.9])
    sweep = confidence_sweep(outputs.to(device), targets.to(device), [0.3, 0.6, 0.9])
    assert torch.equal(sweep.accuracy, sweep_ref.accuracy)
    assert torch.equal(sweep.mean_latency, sweep_ref.mean_latency)
    assert torch.equal(
        pareto_front(sweep.accuracy.to(device), sweep.mean_latency.to(device)).cpu(),
        pareto_front(sweep_ref.accuracy, sweep_ref.mean_latency),
    )
    assert calibrate_threshold(outputs.to(device), targets.to(device)) == calibrate_threshold(
        outputs, targets
    )
    # the runner computes only the active samples and equals the recorded outputs' exits
    net = _step_net(device)
    x = torch.rand(6, 12, 5, generator=gen).to(device) * 2
    run = run_dynamic_confidence(net, x, threshold=0.4, scale=1.0)
    with torch.no_grad():
        state, recorded = None, []
        for x_t in x:
            out, state = net(x_t, state)
            recorded.append(out)
    full = dynamic_confidence(torch.stack(recorded), threshold=0.4, scale=1.0)
    assert run.exit_step.device.type == device
    assert torch.equal(run.exit_step, full.exit_step)
    assert torch.equal(run.prediction, full.prediction)
    assert run.sample_steps == int(full.exit_step.sum())


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_iir_conversion_and_neurons_on_device(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full-precision convs
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    ann = cnn_ann(channels=(4, 4), hidden=8, seed=0)
    with torch.no_grad():  # non-trivial BatchNorm statistics to fold
        for name, b in ann.named_buffers():
            if name.endswith("running_mean"):
                b.uniform_(-0.2, 0.2, generator=gen)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5, generator=gen)
    ann.eval()
    ref = ann_to_snn(ann, x)
    snn = ann_to_snn(ann.to(device), x.to(device))
    assert all(p.device.type == device for p in snn.parameters())
    assert all(b.device.type == device for b in snn.buffers())
    for a, b in zip(ref.parameters(), snn.parameters()):
        torch.testing.assert_close(b.detach().cpu(), a.detach(), rtol=1e-5, atol=1e-6)
    seq = torch.rand(3, 4, 1, 8, 8, generator=gen)
    with torch.no_grad():
        out = snn(seq.to(device))
        torch.testing.assert_close(out.cpu(), ref(seq), rtol=1e-4, atol=1e-4)
    # fold_batchnorm keeps the device and equals bn(layer(x)) there
    conv, bn = ann[0], ann[1]
    folded = fold_batchnorm(conv, bn)
    with torch.no_grad():
        torch.testing.assert_close(
            folded(x.to(device)), bn(conv(x.to(device))), rtol=1e-4, atol=1e-5
        )
    # IIRLIF: spikes and surrogate gradients on the input's device
    neuron = IIRLIF(0.9, 0.5).to(device)
    inp = torch.rand(4, 3, 6, generator=gen).to(device).requires_grad_()
    spikes = neuron(inp)
    spikes.sum().backward()
    assert spikes.device.type == device
    assert inp.grad is not None
    assert inp.grad.device.type == device
    assert neuron.leak.grad is not None
    assert neuron.leak.grad.device.type == device


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_bptt_epoch_minibatches_and_evaluation_on_device(device: str) -> None:
    net = _step_net(device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(12, 5, generator=gen) * 2).to(device)
    y = (torch.arange(12) % 3).to(device)
    # a seed shuffles with a CPU generator: the same order on every device
    batches = minibatches(x, y, 4, seed=3)
    ref = minibatches(x.cpu(), y.cpu(), 4, seed=3)
    assert all(torch.equal(b.cpu(), r) for (b, _), (r, _) in zip(batches, ref))
    # a generator on the data's device draws there
    on_device = minibatches(x, y, 4, generator=torch.Generator(device=device).manual_seed(3))
    assert sorted(torch.cat([b for _, b in on_device]).tolist()) == sorted(y.tolist())
    assert on_device[0][0].device.type == device
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    before = [p.detach().clone() for p in net.parameters()]
    stats = bptt_train_epoch(net, batches, opt, 4, encoder=lambda v, T: poisson_encode(
        v.clamp(0, 1), T, seed=0
    ))  # fmt: skip
    assert stats.samples == 12
    assert 0.0 <= stats.accuracy <= 1.0
    assert torch.isfinite(torch.tensor(stats.loss))
    assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), before))
    cpu_net = _step_net("cpu")
    cpu_net.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
    acc = evaluate_steps(net, x, y, 4, batch_size=5)
    assert acc == evaluate_steps(cpu_net, x.cpu(), y.cpu(), 4, batch_size=5)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_encoders_readouts_integrator_and_delay_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(3, 2, 5, generator=gen)
    for method in ("linear", "log"):
        out = latency_encode(img.to(device), 6, method=method)
        assert out.device.type == device
        assert torch.equal(out.cpu(), latency_encode(img, 6, method=method))
    signal = torch.randn(7, 3, 4, generator=gen).cumsum(0)
    for polarity in ("on", "signed", "split"):
        for cumulative in (False, True):
            out = delta_encode(signal.to(device), 0.3, polarity=polarity, cumulative=cumulative)
            assert out.device.type == device
            ref = delta_encode(signal, 0.3, polarity=polarity, cumulative=cumulative)
            assert torch.equal(out.cpu(), ref)
    out = torch.randn(5, 4, 3, generator=gen)
    target = torch.tensor([0, 2, 1, 2])
    for loss in (lambda o, t: tet_ce(o, t, lamb=0.3), mean_membrane_ce):
        o = out.to(device).requires_grad_()
        value = loss(o, target.to(device))
        value.backward()
        assert o.grad is not None
        assert o.grad.device.type == device
        torch.testing.assert_close(value.detach().cpu(), loss(out, target))
    # LI: float and per-neuron tensor time constants (held on the CPU) on the input's device
    x = torch.randn(6, 2, 4, generator=gen)
    tau = torch.tensor([1.5, 2.0, 4.0, 8.0])
    for li in (LI(tau=4.0, v_leak=0.1), LI(tau=tau, decay_input=False, v_leak=0.2)):
        v = li.to(device)(x.to(device))
        assert v.device.type == device
        torch.testing.assert_close(v.cpu(), li.to("cpu")(x), rtol=1e-5, atol=1e-6)
    steps = torch.tensor([0, 1, 3, 9])
    for layer in (Delay(2), Delay(steps)):
        y = layer.to(device)(x.to(device))
        assert y.device.type == device
        assert torch.equal(y.cpu(), layer.to("cpu")(x))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_per_neuron_tensor_parameters_follow_the_input(device: str) -> None:
    """Per-neuron tensors kept as plain attributes (as from_nir builds them) stay on the CPU
    under ``module.to(device)``; the neurons move them to the input's device."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 4, generator=gen) * 2
    thr, tau, tau_syn = (
        torch.tensor(v) for v in ([0.5, 1, 1.5, 0.8], [1.5, 2, 3, 6], [1.5, 2, 2.5, 3])
    )
    neurons = [
        LIF(tau=tau, threshold=thr),  # type: ignore[arg-type]
        CuBaLIF(tau_mem=tau + 0.5, tau_syn=tau_syn),  # type: ignore[arg-type]
        IF(threshold=thr),  # type: ignore[arg-type]
    ]
    for neuron in neurons:
        for fused in (True, False):
            if hasattr(neuron, "fused"):
                neuron.fused = fused  # type: ignore[assignment]
            ref = neuron.to("cpu").run(x)
            out = neuron.to(device).run(x.to(device))
            assert out.spikes.device.type == device
            assert torch.equal(out.spikes.cpu(), ref.spikes)
            torch.testing.assert_close(out.v.cpu(), ref.v, rtol=1e-5, atol=1e-5)
    # the NIR importer's gains: an integrator and a neuron input gain per neuron
    from neuronkit.snn.nir import InputGain, Integrator

    gain = torch.tensor([0.5, 1.0, 2.0, 3.0])
    for module in (Integrator(gain), InputGain(gain, LIF(tau=2.0, reset="zero"))):
        y = module.to(device)(x.to(device))
        assert y.device.type == device
        torch.testing.assert_close(y.cpu(), module.to("cpu")(x), rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_nir_export_of_a_model_on_device(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nir", reason="NIR export needs the optional nir extra")
    from neuronkit.snn import from_nir, to_nir

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full-precision convs
    torch.manual_seed(0)
    model = nn.Sequential(
        SeqConv2d(1, 3, 3, padding=1),
        LIF(tau=2.0, threshold=0.3, reset="zero"),
        SeqFlatten(),
        SeqLinear(48, 6),
        CuBaLIF(tau_mem=4.0, tau_syn=2.0, reset="zero"),
        SeqLinear(6, 4),
        LIF(  # per-neuron tensors: buffers, they move with .to(device)
            tau=torch.tensor([1.5, 2.0, 3.0, 6.0]),  # type: ignore[arg-type]
            threshold=torch.tensor([0.2, 0.3, 0.4, 0.25]),  # type: ignore[arg-type]
            reset="zero",
        ),
        Delay(torch.tensor([0, 1, 2, 3])),
    )
    with torch.no_grad():  # positive-leaning weights, so that every layer fires
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.3, 1.0).mul_(1.0 / p[0].numel() ** 0.5)
    ref = to_nir(model, (1, 4, 4))
    graph = to_nir(model.to(device), (1, 4, 4))
    assert list(graph.nodes) == list(ref.nodes)
    for name, node in ref.nodes.items():
        for field, value in vars(node).items():
            if hasattr(value, "shape"):
                assert (getattr(graph.nodes[name], field) == value).all(), (name, field)
    # the exported graph (imported on the CPU) runs like the model on the device
    net = from_nir(graph)
    x = torch.rand(5, 2, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        out = model(x.to(device))
        assert out.abs().sum() > 0
        torch.testing.assert_close(out.cpu(), net(x), rtol=1e-5, atol=1e-5)
        # and the imported graph moved to the device (its per-neuron tensors too) runs there
        moved = net.to(device)(x.to(device))
    assert moved.device.type == device
    torch.testing.assert_close(moved.cpu(), net.to("cpu")(x), rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_fgsm_on_device(device: str) -> None:
    model = _mlp(device).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 4, 4, generator=gen)
    y = torch.arange(6) % 3
    with swap_surrogate(model, PDSG()):
        x_adv = fgsm(model, x.to(device), y.to(device), eps=0.1, T=4)
    assert x_adv.device.type == device
    assert x_adv.shape == x.shape
    # one signed step of eps per entry (0 where the gradient vanishes), clipped to [0, 1]; no
    # comparison with the CPU: an untrained net's tied spike counts make the sign a knife edge
    adv = x_adv.cpu()
    step = (adv - x).abs()
    at_bound = (adv == 0) | (adv == 1)
    assert bool((((step - 0.1).abs() < 1e-6) | (step < 1e-7) | at_bound).all())
    assert float(step.max()) > 0.09
