"""SLTT / SLTT-K trainers, the SLTT loss and the saved-tensor memory meter."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.snn import LIF, Triangle
from neuronkit.snn.training import (
    SavedTensorMeter,
    StepSequential,
    bptt_train_epoch,
    detach_state,
    sltt_loss,
    sltt_neuron,
    sltt_train_epoch,
)

X = torch.rand(8, 5) * 2
Y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


def _net(tau: float = 1.1, seed: int = 0) -> StepSequential:
    torch.manual_seed(seed)
    neuron = LIF(tau=tau, decay_input=False, surrogate=Triangle())
    return StepSequential(nn.Linear(5, 16), neuron, nn.Linear(16, 3))


def _delta(net: nn.Module, train) -> list[torch.Tensor]:
    """Parameter change of one SGD(lr=1) step: minus the accumulated gradient."""
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    train(net, opt)
    return [p.detach() - b for p, b in zip(net.parameters(), before)]


def _manual_grads(net: StepSequential, T: int, steps: set[int], detach: bool) -> list[torch.Tensor]:
    state, loss = None, 0.0
    for t in range(T):
        out, state = net(X, detach_state(state) if detach else state)
        if t in steps:
            loss = loss + sltt_loss(out, Y) / T
    return [-g for g in torch.autograd.grad(loss, list(net.parameters()))]


def test_sltt_equals_detached_state_gradient() -> None:
    T = 5
    got = _delta(_net(2.0), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T))
    want = _manual_grads(_net(2.0), T, set(range(T)), detach=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    bptt = _manual_grads(_net(2.0), T, set(range(T)), detach=False)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(got, bptt))


def test_sltt_equals_bptt_without_temporal_dependence() -> None:
    # tau = 1 without input decay: lam = 0, v_t never reaches step t+1, so nothing is dropped
    T = 4
    a = _delta(_net(1.0), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T))
    b = _delta(_net(1.0), lambda n, o: bptt_train_epoch(n, [(X, Y)], o, T, loss_fn=sltt_loss))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, atol=1e-6, rtol=1e-5)


def test_sltt_k_trains_only_the_drawn_steps() -> None:
    T, k, seed = 6, 2, 3
    steps = {int(t) for t in torch.randperm(T, generator=torch.Generator().manual_seed(seed))[:k]}
    got = _delta(_net(), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T, k=k, seed=seed))
    want = _manual_grads(_net(), T, steps, detach=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    full = _delta(_net(), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T, k=T))
    ref = _delta(_net(), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T))
    for a, b in zip(full, ref):
        torch.testing.assert_close(a, b)


def test_sltt_bad_inputs() -> None:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="seed or generator"):
        sltt_train_epoch(net, [(X, Y)], opt, 4, k=2)
    with pytest.raises(ValueError, match="k"):
        sltt_train_epoch(net, [(X, Y)], opt, 4, k=5, seed=0)
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        sltt_train_epoch(net, [(X, Y)], opt, 4, k=2, seed=2**64)
    with pytest.raises(ValueError, match="T"):
        sltt_train_epoch(net, [(X, Y)], opt, 0)
    with pytest.raises(ValueError, match="tau"):
        sltt_neuron(tau=0.5)
    # a label outside the model's 3 classes failed in cross-entropy with IndexError
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        sltt_train_epoch(net, [(X, Y + 1)], opt, 2)


def test_sltt_loss() -> None:
    out = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 1])
    want = 0.95 * F.cross_entropy(out, y) + 0.05 * ((out - 1.0) ** 2).mean()
    torch.testing.assert_close(sltt_loss(out, y), want)
    torch.testing.assert_close(sltt_loss(out, y, lamb=0.0), F.cross_entropy(out, y))
    with pytest.raises(ValueError, match="target"):
        sltt_loss(out, y.float())
    with pytest.raises(ValueError, match="out"):
        sltt_loss(out[0], y)
    with pytest.raises(ValueError, match="lamb"):
        sltt_loss(out, y, lamb=1.5)
    for bad in (torch.tensor([0, 2, 3, 1]), torch.tensor([0, -1, 1, 1])):  # were IndexError
        with pytest.raises(ValueError, match=r"^target must hold class labels in \[0, 2\]"):
            sltt_loss(out, bad)


def test_sltt_neuron_is_reference_setting() -> None:
    n = sltt_neuron()
    assert n.tau == 1.1
    assert not n.decay_input
    assert n.reset == "subtract"
    assert isinstance(n.surrogate, Triangle)
    assert n.surrogate.alpha == 1.0


def test_meter_counts_live_saved_bytes() -> None:
    x = torch.randn(8, 4, requires_grad=True)
    w = torch.randn(4, 4, requires_grad=True)
    with SavedTensorMeter() as meter:
        y = (x * x).sum()  # x saved twice: counted once
        assert meter.live_bytes == 8 * 4 * 4
        y.backward()  # frees y's graph
        assert meter.live_bytes == 0
        y = (x * x).sum()
        z = (x @ w).sum()  # saves x (already held by y's graph) and w
        assert meter.live_bytes == 8 * 4 * 4 + 4 * 4 * 4
        y.backward()
        assert meter.live_bytes == 8 * 4 * 4 + 4 * 4 * 4  # z's graph still holds x and w
        del z
        assert meter.live_bytes == 0
    assert meter.peak_bytes == 8 * 4 * 4 + 4 * 4 * 4
    with torch.no_grad(), SavedTensorMeter() as m2:
        (x * x).sum()
    assert m2.peak_bytes == 0
    with meter, pytest.raises(RuntimeError, match="already active"):
        meter.__enter__()


def _peak(method: str, T: int) -> int:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with SavedTensorMeter() as meter:
        if method == "sltt":
            sltt_train_epoch(net, [(X, Y)], opt, T)
        else:
            bptt_train_epoch(net, [(X, Y)], opt, T)
    assert meter.live_bytes == 0
    return meter.peak_bytes


def test_sltt_memory_is_flat_bptt_grows() -> None:
    assert _peak("sltt", 2) == _peak("sltt", 16)
    b2, b4, b8 = _peak("bptt", 2), _peak("bptt", 4), _peak("bptt", 8)
    assert b8 - b4 == 2 * (b4 - b2) > 0  # linear in T


def test_sltt_runs_under_no_grad_with_an_input_that_has_a_graph() -> None:
    """Under ``torch.no_grad()`` SLTT failed with torch's "element 0 of tensors does not require
    grad"; an encoded input with a graph of its own was backpropagated through at every step
    ("Trying to backward through the graph a second time")."""
    T = 3
    want = _delta(_net(2.0), lambda n, o: sltt_train_epoch(n, [(X, Y)], o, T))
    base = X.clone().requires_grad_(True)
    x = base * 1.0  # a graph to the caller's leaf

    def encode(v: torch.Tensor, steps: int) -> torch.Tensor:
        return v.expand(steps, *v.shape)

    def train(n: nn.Module, o: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            sltt_train_epoch(n, [(x, Y)], o, T, encoder=encode)

    got = _delta(_net(2.0), train)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert base.grad is None


def test_sltt_loss_rejects_an_empty_batch() -> None:
    """The mean over no sample is NaN, not a loss (as the readout losses refuse it)."""
    with pytest.raises(ValueError, match="out"):
        sltt_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    silent = torch.zeros(4, 3)  # a network that emits no spike: uniform, log 3
    got = sltt_loss(silent, torch.tensor([0, 1, 2, 0]), lamb=0.0)
    assert abs(float(got) - math.log(3)) < 1e-6
