"""Torch-based measures, models and training loops on every available device: results stay on
the input's device (or come back to the CPU where the method computes there) and equal the
CPU's (float64 where the CPU reference is exact)."""

import copy
from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.theory import (
    BandlimitedRandomNet,
    BottleneckMLP,
    DeepNTKClassifier,
    InfiniteDepthNTKClassifier,
    MgNO,
    PlainMLP,
    QuadraticLinear,
    QuadraticMLP,
    QuadraticNet,
    UNet2d,
    VicinityCollapse,
    corrupted_accuracies,
    effective_rank,
    fit_operator,
    kernel_alignment,
    kernel_target_alignment,
    local_complexity,
    low_rank_weight,
    lowest_ipr_neurons,
    modular_arithmetic,
    nc1,
    neural_collapse_metrics,
    neuron_ipr,
    ntk_recursion,
    prune_neurons,
    simplex_etf,
    simulate,
    split_threshold,
    train_modular,
    train_rich_lazy,
    training_system,
    vicinity_classifier,
)
from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.dynamical.learners import minibatch_schedule, mlp_learner, mlp_parameters
from neuronkit.theory.grokking import (
    ScaledQuadraticNet,
    initial_ntk_regression,
    quadratic_feature_data,
    train_lazy_rich,
)
from neuronkit.theory.kan import KANLayer, SKANLayer
from neuronkit.theory.kan.basis import SPACES
from neuronkit.theory.lazy_rich import TwoLayerTanhNet
from neuronkit.theory.measures import empirical_ntk
from neuronkit.theory.ntk import (
    NTKNetwork,
    dirichlet_sphere_data,
    dual_from_activation,
    erf_dual,
    koenigs_kernel,
    majority_vote,
    relu_dual,
    singular_activation,
)
from neuronkit.theory.processes import MartingalePosteriorNP, NeuralProcess
from neuronkit.theory.scaling.train import mixup, random_translate
from neuronkit.theory.scaling.train import train_classifier as scaling_train
from neuronkit.theory.simplicity import feature_reliance, randomize_coordinates
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


# ----------------------------------------------------------------- grokking


@pytest.mark.parametrize("device", devices())
def test_grokking_quadratic_mlp_on_device_equals_the_cpu(device: str) -> None:
    data = modular_arithmetic(7, corruption=0.2, seed=0)
    cpu = QuadraticMLP(7, 12, seed=0)
    dev = copy.deepcopy(cpu).to(device)
    ipr = neuron_ipr(dev)
    torch.testing.assert_close(ipr.cpu(), neuron_ipr(cpu))
    assert split_threshold(ipr) == pytest.approx(split_threshold(neuron_ipr(cpu).numpy()), rel=1e-9)
    drop = lowest_ipr_neurons(ipr, fraction=0.25)
    pruned = prune_neurons(dev, drop)
    assert pruned.fc1.weight.device.type == device
    assert corrupted_accuracies(pruned, data) == corrupted_accuracies(
        prune_neurons(cpu, drop.cpu()), data
    )
    ref = train_modular(cpu, data, steps=3, eval_every=1)
    got = train_modular(dev, data, steps=3, eval_every=1)
    np.testing.assert_allclose(got.loss, ref.loss, rtol=1e-4)
    assert got.accuracies == ref.accuracies


@pytest.mark.parametrize("device", devices())
def test_lazy_rich_grokking_model_on_device_equals_the_cpu(device: str) -> None:
    data = quadratic_feature_data(20, 30, 4, seed=0)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    cpu = ScaledQuadraticNet(4, 8, alpha=2.0, eps=0.5, seed=1)
    dev = copy.deepcopy(cpu).to(device)
    want = initial_ntk_regression(cpu, *args, ridge=1e-3)
    assert initial_ntk_regression(dev, *args, ridge=1e-3) == pytest.approx(want, rel=1e-6)
    ref = train_lazy_rich(cpu, *args, steps=5, eval_every=2, align_every=2)
    got = train_lazy_rich(dev, *(a.to(device) for a in args), steps=5, eval_every=2, align_every=2)
    assert dev.weight.device.type == device
    np.testing.assert_allclose(got.test_loss, ref.test_loss, rtol=1e-9)
    np.testing.assert_allclose(got.alignment, ref.alignment, rtol=1e-9)


# ----------------------------------------------------------------- lazy / rich, measures, collapse


@pytest.mark.parametrize("device", devices())
def test_rich_lazy_training_and_measures_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=gen, dtype=F64)
    y = torch.randn(12, generator=gen, dtype=F64)
    w = low_rank_weight(8, 3, 2, 2.0, seed=0)
    cpu = TwoLayerTanhNet(w, torch.ones(8, dtype=F64))
    dev = copy.deepcopy(cpu).to(device)
    ref = train_rich_lazy(cpu, x, y, steps=3, lr=0.1, kernel_points=6)
    got = train_rich_lazy(dev, x.to(device), y.to(device), steps=3, lr=0.1, kernel_points=6)
    for field in ("weight_change", "kernel_distance", "alignment_final", "final_loss"):
        assert getattr(got, field) == pytest.approx(getattr(ref, field), rel=1e-9, abs=1e-12)
    wd = w.to(device)
    assert effective_rank(wd) == pytest.approx(effective_rank(w), rel=1e-12)
    k = x @ x.T
    assert kernel_alignment(k.to(device), k.to(device) + 1) == pytest.approx(
        kernel_alignment(k, k + 1), rel=1e-12
    )
    assert kernel_target_alignment(k.to(device), y.to(device)) == pytest.approx(
        kernel_target_alignment(k, y), rel=1e-12
    )


@pytest.mark.parametrize("device", devices())
def test_neural_collapse_and_vicinity_take_device_tensors(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(24) % 3
    feats = simplex_etf(3, 5, seed=0)[labels] + 0.1 * torch.randn(24, 5, generator=gen, dtype=F64)
    fd, ld = feats.to(device), labels.to(device)
    ref = neural_collapse_metrics(feats, labels)
    got = neural_collapse_metrics(fd, ld)
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12)
    assert nc1(fd, ld) == pytest.approx(nc1(feats, labels), rel=1e-9)
    torch.testing.assert_close(
        vicinity_classifier(fd, ld, 1e-2), vicinity_classifier(feats, labels, 1e-2)
    )
    vc = VicinityCollapse(lambda_w=1e-2, max_steps=20).fit(fd, ld)
    ref_vc = VicinityCollapse(lambda_w=1e-2, max_steps=20).fit(feats, labels)
    torch.testing.assert_close(vc.predict(fd), ref_vc.predict(feats))


# ----------------------------------------------------------------- NTK recursions


@pytest.mark.parametrize("device", devices())
def test_ntk_recursions_and_classifiers_on_device(device: str) -> None:
    rho = torch.linspace(-1.0, 1.0, 9, dtype=F64)
    acts = (relu_dual(), erf_dual(), dual_from_activation(torch.tanh, points=16))
    for act in acts:
        sigma, k = ntk_recursion(rho.to(device), 3, act, normalize=True)
        ref_sigma, ref_k = ntk_recursion(rho, 3, act, normalize=True)
        assert k.device.type == device
        torch.testing.assert_close(sigma.cpu(), ref_sigma)
        torch.testing.assert_close(k.cpu(), ref_k)
    singular = singular_activation(2)
    inner = rho[1:-1] * 0.9
    got = koenigs_kernel(inner.to(device), singular, table_size=64)
    torch.testing.assert_close(got.cpu(), koenigs_kernel(inner, singular, table_size=64))
    data = dirichlet_sphere_data(30, [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], seed=0)
    xd, yd = data.x.to(device), data.y.to(device)
    deep = DeepNTKClassifier(relu_dual(), depth=2, ridge=1e-6).fit(xd, yd)
    ref = DeepNTKClassifier(relu_dual(), depth=2, ridge=1e-6).fit(data.x, data.y)
    assert torch.equal(deep.predict(xd).cpu(), ref.predict(data.x))
    assert deep.score(xd, yd) == ref.score(data.x, data.y)
    for act in (relu_dual(), singular):
        inf = InfiniteDepthNTKClassifier(act).fit(xd, yd)
        want = InfiniteDepthNTKClassifier(act).fit(data.x, data.y)
        assert torch.equal(inf.predict(xd).cpu(), want.predict(data.x))
        assert inf.score(xd, yd) == want.score(data.x, data.y)
    assert torch.equal(majority_vote(yd, 4), majority_vote(data.y, 4))
    net = NTKNetwork(3, 16, 2, relu_dual(), seed=0)
    out = copy.deepcopy(net).to(device)(xd)
    torch.testing.assert_close(out.detach().cpu(), net(data.x).detach())


# ----------------------------------------------------------------- quadratic neurons, bandlimited


@pytest.mark.parametrize("device", devices())
def test_quadratic_neurons_on_device_equal_the_cpu(device: str) -> None:
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    for init in ("relinear", "random"):
        cpu = QuadraticLinear(3, 4, init=init, seed=0)
        dev = QuadraticLinear(3, 4, init=init, seed=1).to(device)
        dev.reset_parameters(seed=0)  # a seed gives the same weights on every device
        for p, q in zip(dev.parameters(), cpu.parameters(), strict=True):
            assert p.device.type == device
            assert torch.equal(p.detach().cpu(), q.detach())
        torch.testing.assert_close(dev(x.to(device)).detach().cpu(), cpu(x).detach())
    net = QuadraticNet([3, 6, 2], seed=0)
    out = copy.deepcopy(net).to(device)(x.to(device))
    torch.testing.assert_close(out.detach().cpu(), net(x).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", devices())
def test_bandlimited_net_takes_device_tensors(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40, 2, generator=gen, dtype=F64)
    y = torch.sin(3 * x).sum(1)
    ref = BandlimitedRandomNet(16, 4.0, seed=0).fit(x, y)
    got = BandlimitedRandomNet(16, 4.0, seed=0).fit(x.to(device), y.to(device))
    torch.testing.assert_close(got.predict(x.to(device)), ref.predict(x))
    assert got.score(x.to(device), y.to(device)) == pytest.approx(ref.score(x, y), rel=1e-12)


# ----------------------------------------------------------------- simplicity bias, scaling MLPs


@pytest.mark.parametrize("device", devices())
def test_simplicity_randomization_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 4, generator=gen)
    y = torch.randint(0, 2, (10,), generator=gen)
    rot, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen))
    ref = randomize_coordinates(x, [1, 2], rotation=rot, seed=3)
    got = randomize_coordinates(x.to(device), [1, 2], rotation=rot, seed=3)  # CPU rotation
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-5, atol=1e-6)
    own = torch.Generator(device).manual_seed(0)  # drawn on the generator's device
    assert randomize_coordinates(x.to(device), [0], seed=own).device.type == device
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    groups: dict[str, Sequence[int]] = {"a": [0], "b": [1, 2]}
    want = feature_reliance(model, x, y, groups, rotation=rot, seed=1)
    got_r = feature_reliance(copy.deepcopy(model).to(device), x.to(device), y.to(device), groups,
                             rotation=rot.to(device), seed=1)  # fmt: skip
    assert got_r == want


@pytest.mark.parametrize("device", devices())
def test_scaling_mlp_and_its_train_loop_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 4, 4, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    xt, yt = torch.rand(32, 1, 4, 4, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    kw = dict(epochs=2, batch_size=16, lr=1e-3, max_shift=1, mixup_alpha=0.8, seed=0)
    cpu = BottleneckMLP(16, 3, 8, 1, seed=0)
    dev = copy.deepcopy(cpu).to(device)
    ref = scaling_train(cpu, x, y, xt, yt, **kw)  # type: ignore[arg-type]
    got = scaling_train(dev, x.to(device), y.to(device), xt.to(device), yt.to(device), **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.train_loss[1:], ref.train_loss[1:], rtol=1e-3)
    np.testing.assert_allclose(got.test_error, ref.test_error, atol=1 / 16)  # <= 2 of 32 flip
    assert got.examples_seen == ref.examples_seen
    own = torch.Generator(device).manual_seed(0)  # drawn on the generator's device
    kw_own = {**kw, "epochs": 1, "seed": own}
    rec = scaling_train(dev, x.to(device), y.to(device), xt.to(device), yt.to(device), **kw_own)  # type: ignore[arg-type]
    assert np.isfinite(rec.train_loss[-1])
    shifted = random_translate(x.to(device), 1, seed=own)
    assert shifted.device.type == device
    xm, _, _, lam = mixup(x.to(device), y.to(device), 0.8, seed=own)
    assert xm.device.type == device
    assert 0.0 <= lam <= 1.0
    plain = PlainMLP(16, 3, 8, 2, seed=0)
    out = copy.deepcopy(plain).to(device)(x.to(device))
    torch.testing.assert_close(out.detach().cpu(), plain(x).detach(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- operators, dynamical systems


@pytest.mark.parametrize("device", devices())
def test_operators_on_device_equal_the_cpu(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 7, 7, generator=gen)
    y = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    for make in (
        lambda: MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0),
        lambda: UNet2d(1, 1, width=4, depth=2, seed=0),
    ):
        cpu = make()
        dev = copy.deepcopy(cpu).to(device)
        torch.testing.assert_close(
            dev(x.to(device)).detach().cpu(), cpu(x).detach(), rtol=1e-4, atol=1e-5
        )
        ref = fit_operator(cpu, x, y, epochs=2, batch_size=4, test=(x[:4], y[:4]), seed=0)
        got = fit_operator(dev, x.to(device), y.to(device), epochs=2, batch_size=4,
                           test=(x[:4].to(device), y[:4].to(device)), seed=0)  # fmt: skip
        np.testing.assert_allclose(got.train_loss, ref.train_loss, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(got.test_error, ref.test_error, rtol=1e-3, atol=1e-5)
        own = torch.Generator(device).manual_seed(0)  # drawn on the generator's device
        fit = fit_operator(dev, x.to(device), y.to(device), epochs=1, batch_size=4, seed=own)
        assert np.isfinite(fit.train_loss[-1])


@pytest.mark.parametrize("device", devices())
def test_dynamical_training_system_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 4, generator=gen, dtype=F64)
    onehot = F.one_hot(torch.arange(20) % 3, 3).to(F64)
    cpu_net = mlp_learner([4, 5, 3], lr=0.3, activations="tanh", seed=4)
    params = mlp_parameters(cpu_net.initial_state())
    dev_net = mlp_learner(
        [4, 5, 3],
        lr=0.3,
        activations="tanh",
        weights=[w.to(device) for w, _ in params],
        biases=[b.to(device) for _, b in params],
    )
    schedule = minibatch_schedule(20, 5, 6, seed=2)
    ref = simulate(training_system(x, onehot, cpu_net, schedule=schedule, loss="cross_entropy"), 6)
    got = simulate(
        training_system(
            x.to(device), onehot.to(device), dev_net, schedule=schedule, loss="cross_entropy"
        ),
        6,
    )
    losses = got.stack("loss")
    assert losses.device.type == device
    torch.testing.assert_close(losses.cpu(), ref.stack("loss"), rtol=1e-9, atol=1e-12)
