"""Layers and neurons as learning systems; SGD training as a nested system."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.theory.dynamical.learners import (
    DenseState,
    copier,
    cross_entropy_loss_system,
    dense_backward,
    dense_forward,
    dense_learner,
    gatherer,
    layer_parameters,
    minibatch_schedule,
    mlp_learner,
    mlp_parameters,
    mse_loss_system,
    neuron_layer,
    neuron_learner,
    training_system,
)
from neuronkit.theory.dynamical.systems import simulate

F64 = torch.float64


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(["identity", "relu", "tanh", "sigmoid"]),
    batch=st.integers(1, 5),
)
def test_dense_backward_matches_autograd(seed: int, activation: str, batch: int) -> None:
    x, w, b, g = (
        rand(batch, 4, seed=seed),
        rand(3, 4, seed=seed + 1),
        rand(3, seed=seed + 2),
        rand(batch, 3, seed=seed + 3),
    )
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    y = dense_forward(xr, wr, br, activation)
    y.backward(g)
    gx, gw, gb = dense_backward(x, g, w, b, activation)
    for mine, ref in ((gx, xr.grad), (gw, wr.grad), (gb, br.grad)):
        assert torch.allclose(mine, ref, atol=1e-12)


def test_dense_learner_tick_is_one_sgd_step_without_mutation() -> None:
    w, b = rand(3, 4, seed=1), rand(3, seed=2)
    layer = dense_learner(4, 3, lr=0.1, activation="tanh", weight=w, bias=b, expose_params=True)
    state = layer.initial_state()
    x, g = rand(5, 4, seed=3), rand(5, 3, seed=4)
    outs, new = layer.step(state, {"x": x, "grad_y": g})
    gx, gw, gb = dense_backward(x, g, w, b, "tanh")
    assert torch.allclose(outs["y"], torch.tanh(x @ w.T + b))
    assert torch.allclose(outs["grad_x"], gx)
    assert torch.equal(outs["weight"], w)
    assert torch.allclose(new.weight, w - 0.1 * gw)
    assert torch.allclose(new.bias, b - 0.1 * gb)
    assert torch.equal(state.weight, w)  # the old state is untouched
    assert layer.feedthrough == {
        "y": frozenset({"x"}),
        "grad_x": frozenset({"x", "grad_y"}),
        "weight": frozenset(),
        "bias": frozenset(),
    }


def test_neuron_layer_has_the_dense_layer_dynamics() -> None:
    w, b = rand(4, 6, seed=5), rand(4, seed=6)
    dense = dense_learner(6, 4, lr=0.2, activation="relu", weight=w, bias=b)
    neurons = neuron_layer(6, 4, lr=0.2, activation="relu", weight=w, bias=b)
    assert [p.describe() for p in dense.inputs] == [p.describe() for p in neurons.inputs]
    xs, gs = rand(5, 3, 6, seed=7), rand(5, 3, 4, seed=8)
    a = simulate(dense, 5, {"x": xs, "grad_y": gs})
    c = simulate(neurons, 5, {"x": xs, "grad_y": gs})
    for port in ("y", "grad_x"):
        assert torch.allclose(a.stack(port), c.stack(port), atol=1e-13)
    for p, q in zip(layer_parameters(a.final_state), layer_parameters(c.final_state)):
        assert torch.allclose(p, q, atol=1e-13)


def test_copier_adds_gradients_and_gatherer_splits_them() -> None:
    cp = copier(3, (None, 2))
    x = rand(4, 2, seed=1)
    grads = {f"grad{j}": rand(4, 2, seed=10 + j) for j in range(3)}
    outs, _ = cp.step(None, {"x": x, **grads})
    assert all(torch.equal(outs[f"x{j}"], x) for j in range(3))
    assert torch.allclose(outs["grad"], sum(grads.values()))
    ga = gatherer(2)
    outs, _ = ga.step(None, {"y0": x[:, 0], "y1": x[:, 1], "grad": x})
    assert torch.equal(outs["y"], x)
    assert torch.equal(outs["grad1"], x[:, 1])


def test_loss_systems_match_torch() -> None:
    y, t = rand(5, 3, seed=1).requires_grad_(), F.one_hot(torch.arange(5) % 3, 3).to(F64)
    ce = cross_entropy_loss_system(3)
    outs, _ = ce.step(None, {"y": y.detach(), "target": t})
    ref = F.cross_entropy(y, torch.arange(5) % 3)
    ref.backward()
    assert torch.allclose(outs["loss"], ref.detach())
    assert torch.allclose(outs["grad"], y.grad)
    y2 = rand(5, 3, seed=2).requires_grad_()
    outs, _ = mse_loss_system(3).step(None, {"y": y2.detach(), "target": t})
    ref = F.mse_loss(y2, t)
    ref.backward()
    assert torch.allclose(outs["loss"], ref.detach())
    assert torch.allclose(outs["grad"], y2.grad)


@pytest.mark.parametrize("granularity", ["layer", "neuron"])
def test_training_system_reproduces_direct_sgd(granularity: str) -> None:
    x, labels = rand(40, 5, seed=1), torch.arange(40) % 3
    onehot = F.one_hot(labels, 3).to(F64)
    widths, steps, lr = [5, 6, 3], 12, 0.3
    net = mlp_learner(widths, lr=lr, activations="tanh", granularity=granularity, seed=4)
    (w0, b0), (w1, b1) = mlp_parameters(net.initial_state())
    schedule = minibatch_schedule(40, 8, steps, seed=2)
    traj = simulate(training_system(x, onehot, net, schedule=schedule, loss="cross_entropy"), steps)
    params = [p.clone().requires_grad_() for p in (w0, b0, w1, b1)]
    for t in range(steps):
        idx = schedule[t]
        out = torch.tanh(x[idx] @ params[0].T + params[1]) @ params[2].T + params[3]
        loss = F.cross_entropy(out, labels[idx])
        assert abs(loss.item() - traj.outputs["loss"][t].item()) < 1e-12
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    final = [p for wb in mlp_parameters(traj.final_state) for p in wb]
    for mine, ref in zip(final, params):
        assert torch.allclose(mine, ref.detach(), atol=1e-12)


def test_minibatch_schedule() -> None:
    s = minibatch_schedule(10, 3, 7, seed=1)
    assert s.shape == (7, 3)
    epoch = s[:3].flatten()
    assert len(set(epoch.tolist())) == 9  # no repeats within an epoch
    assert torch.equal(s, minibatch_schedule(10, 3, 7, seed=1))
    assert not torch.equal(s, minibatch_schedule(10, 3, 7, seed=2))
    with pytest.raises(ValueError, match="batch_size must be <= 10"):
        minibatch_schedule(10, 11, 2)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        dense_learner(2, 2, lr=0.1, activation="gelu")
    with pytest.raises(ValueError, match="lr must be >= 0"):
        dense_learner(2, 2, lr=-1.0)
    with pytest.raises(ValueError, match="weight must have shape \\[2, 3\\]"):
        dense_learner(3, 2, lr=0.1, weight=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="finite"):
        dense_learner(2, 1, lr=0.1, weight=torch.full((1, 2), float("nan")))
    with pytest.raises(ValueError, match="granularity must be one of"):
        mlp_learner([2, 2], lr=0.1, granularity="synapse")
    with pytest.raises(ValueError, match="widths must be"):
        mlp_learner([2], lr=0.1)
    with pytest.raises(ValueError, match="one entry per layer"):
        mlp_learner([2, 3, 1], lr=0.1, activations=["tanh"])
    # None raised "'NoneType' object is not iterable"; a bad name was checked as "activation",
    # and with one layer not at all
    with pytest.raises(TypeError, match=r"^activations must be a str or a sequence"):
        mlp_learner([2, 3, 1], lr=0.1, activations=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^activations\[1\] must be one of"):
        mlp_learner([2, 3, 1], lr=0.1, activations=["tanh", "gelu"])
    with pytest.raises(ValueError, match=r"^activations must be one of"):
        mlp_learner([2, 1], lr=0.1, activations="gelu")
    with pytest.raises(TypeError, match="DenseState"):
        layer_parameters(3)
    with pytest.raises(ValueError, match="grad_y must have shape"):
        dense_backward(rand(2, 3), rand(2, 5), rand(4, 3), rand(4))
    assert isinstance(dense_learner(2, 2, lr=0.0).initial_state(), DenseState)


def test_zero_learning_rate_freezes_even_when_the_gradient_overflows() -> None:
    """lr = 0 leaves the weights as they were; 0 * inf would have made them NaN."""
    f64 = torch.float64
    w, b = torch.ones(1, 2, dtype=f64), torch.zeros(1, dtype=f64)
    x = torch.full((1, 2), 1e200, dtype=f64)
    dense = dense_learner(2, 1, lr=0.0, weight=w, bias=b)
    g = torch.full((1, 1), 1e200, dtype=f64)
    _, state = dense.step(dense.initial_state(), {"x": x, "grad_y": g})
    assert torch.equal(state.weight, w)
    assert torch.equal(state.bias, b)
    neuron = neuron_learner(2, lr=0.0, weight=w[0], bias=b[0])
    _, state = neuron.step(neuron.initial_state(), {"x": x, "grad_y": g[:, 0]})
    assert torch.equal(state.weight, w[0])
    assert torch.equal(state.bias, b[0])
