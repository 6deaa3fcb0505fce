"""Step-by-step networks, state detaching, mini-batches and the BPTT trainer."""

import functools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuronkit.snn import LIF, LIFState
from neuronkit.snn.training import (
    StepSequential,
    bptt_train_epoch,
    detach_state,
    evaluate_steps,
    minibatches,
    sltt_train_epoch,
    step_inputs,
)


def _net(seed: int = 0) -> StepSequential:
    torch.manual_seed(seed)
    return StepSequential(nn.Linear(5, 7), LIF(tau=2.0), nn.Linear(7, 3))


def test_step_sequential_matches_multistep_lif() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 6)
    lif = LIF(tau=3.0, decay_input=False)
    net = StepSequential(lin, lif)
    x = torch.rand(5, 2, 4)
    state = None
    outs = []
    for t in range(5):
        s, state = net(x[t], state)
        outs.append(s)
    ref = lif.run(lin(x.flatten(0, 1)).unflatten(0, (5, 2)))
    torch.testing.assert_close(torch.stack(outs), ref.spikes)
    torch.testing.assert_close(state[0].v, ref.state.v)
    assert net.num_states == 1


class _Residual(nn.Module):
    """A SEW-style block with its own forward and no step method."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.lif = nn.Conv2d(2, 2, 3, padding=1), LIF(tau=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.lif(self.conv(x))


def test_step_sequential_steps_neurons_inside_nested_sequentials() -> None:
    torch.manual_seed(0)
    conv, lif, head = nn.Conv2d(1, 2, 3, padding=1), LIF(tau=2.0), nn.Linear(2 * 5 * 5, 3)
    nested = StepSequential(nn.Sequential(conv, lif), nn.Flatten(), head)
    flat = StepSequential(conv, lif, nn.Flatten(), head)
    assert nested.num_states == 1
    x = torch.rand(4, 3, 1, 5, 5) * 3  # [T, B, C, H, W]
    s_nested = s_flat = None
    for t in range(4):
        out_nested, s_nested = nested(x[t], s_nested)
        out_flat, s_flat = flat(x[t], s_flat)
        torch.testing.assert_close(out_nested, out_flat)
    # the given structure is kept (state dicts load as before)
    keys = ["layers.0.0.weight", "layers.0.0.bias", "layers.2.weight", "layers.2.bias"]
    assert list(nested.state_dict()) == keys
    with pytest.raises(ValueError, match=r"layers\[0\] \(_Residual\).*step"):
        StepSequential(_Residual(), nn.Flatten())


def test_step_sequential_runs_the_registered_layers() -> None:
    """Layers replaced after construction (``convert_sync_batchnorm``, assignment, the
    replicas of ``DataParallel``) are the ones that run and get gradients."""
    torch.manual_seed(0)
    net = StepSequential(nn.Linear(4, 6), nn.BatchNorm1d(6), LIF(), nn.Linear(6, 3))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in converted.modules())
    net.layers[3] = head = nn.Linear(6, 3)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(2.0)
    out, _ = net.eval()(torch.rand(5, 4))
    assert torch.equal(out, torch.full((5, 3), 2.0))
    out.sum().backward()
    assert head.bias.grad is not None
    net.layers[2] = nn.Sequential(nn.ReLU(), LIF())
    assert net.num_states == 1


def test_step_sequential_bad_inputs() -> None:
    with pytest.raises(ValueError, match="layers"):
        StepSequential()
    with pytest.raises(TypeError, match="layers"):
        StepSequential(nn.Linear(2, 2), "relu")  # type: ignore[arg-type]
    net = _net()
    with pytest.raises(ValueError, match="state"):
        net(torch.rand(2, 5), (None, None))
    with pytest.raises(TypeError, match="x"):
        net([1.0])  # type: ignore[arg-type]


class _NoState(nn.Module):
    """Breaks the step protocol: returns the spikes only, no (output, state) pair."""

    def step(self, x: torch.Tensor, state: object = None) -> torch.Tensor:
        return torch.sigmoid(x)


@pytest.mark.parametrize("batch", [2, 4])
def test_a_step_returning_no_state_is_named(batch: int) -> None:
    # With B = 2 the tensor used to unpack along the batch into (output, state), silently.
    nested = StepSequential(nn.Linear(5, 4), nn.Sequential(nn.Identity(), _NoState()))
    with pytest.raises(
        TypeError,
        match=r"^layers\[1\]\[1\] \(_NoState\)\.step must return \(output, state\), got Tensor",
    ):
        nested(torch.rand(batch, 5))
    net = StepSequential(nn.Linear(5, 4), _NoState(), nn.Linear(4, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"^layers\[1\] \(_NoState\)\.step must return"):
        bptt_train_epoch(net, [(torch.rand(batch, 5), torch.zeros(batch).long())], opt, T=2)


@pytest.mark.parametrize("train", [bptt_train_epoch, sltt_train_epoch])
def test_trainers_name_dict_batches_and_non_scalar_losses(train: Any) -> None:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(4, 5), torch.tensor([0, 1, 2, 0])
    # a DataLoader over a dict dataset yields dicts: they unpacked as their keys
    loader = DataLoader([{"x": x[i], "y": y[i]} for i in range(4)], batch_size=2)
    with pytest.raises(
        TypeError, match=r"^loader must yield \(x, y\) pairs, got a dict with keys \['x', 'y'\]"
    ):
        train(net, loader, opt, T=2)
    with pytest.raises(
        TypeError, match=r"^loader must yield \(x, y\) pairs, got a tuple of length 3"
    ):
        train(net, [(x, y, y)], opt, T=2)
    per_sample = functools.partial(F.cross_entropy, reduction="none")
    with pytest.raises(
        ValueError,
        match=r"^loss_fn\(out_t, y\) must return a scalar \(0-d\) tensor, got shape \(4,\)",
    ):
        train(net, [(x, y)], opt, T=2, loss_fn=per_sample)
    with pytest.raises(
        TypeError, match=r"^loss_fn\(out_t, y\) must return a scalar \(0-d\) tensor, got float"
    ):
        train(net, [(x, y)], opt, T=2, loss_fn=lambda out, target: 1.0)
    stats = train(net, DataLoader(TensorDataset(x, y), batch_size=2), opt, T=2)  # lists of 2
    assert stats.samples == 4


def test_detach_state_nested_and_not_in_place() -> None:
    a = torch.ones(2, requires_grad=True) * 2
    state = (LIFState(a), [a, None], {"k": a})
    out = detach_state(state)
    assert isinstance(out[0], LIFState)
    assert not out[0].v.requires_grad
    assert not out[1][0].requires_grad
    assert out[1][1] is None
    assert not out[2]["k"].requires_grad
    assert state[0].v.requires_grad  # the input is unchanged
    with pytest.raises(TypeError, match="state"):
        detach_state(3.0)


def test_minibatches() -> None:
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    batches = minibatches(x, y, 4, seed=1)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    again = minibatches(x, y, 4, seed=1)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    for xb, yb in batches:
        assert torch.equal(xb.squeeze(1).long(), yb)
    with pytest.raises(ValueError, match="seed"):
        minibatches(x, y, 4)
    with pytest.raises(ValueError, match="first dimension"):
        minibatches(x, y[:3], 4, shuffle=False)
    with pytest.raises(ValueError, match="batch_size"):
        minibatches(x, y, 0, shuffle=False)


def test_step_inputs_encoder() -> None:
    x = torch.rand(3, 2)
    assert all(xt is x for xt in step_inputs(x, 4))
    seq = list(step_inputs(x, 4, lambda v, T: v.expand(T, *v.shape)))
    assert len(seq) == 4
    with pytest.raises(ValueError, match="encoder"):
        list(step_inputs(x, 4, lambda v, T: v))
    with pytest.raises(ValueError, match="T must be >= 1"):
        step_inputs(x, 0)  # raised at the call, not on iteration
    with pytest.raises(TypeError, match="x must be Tensor"):
        step_inputs("x", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="encoder must be None or callable"):
        step_inputs(x, 4, "poisson")  # type: ignore[arg-type]


def test_bptt_epoch_is_one_sgd_step_on_the_unrolled_loss() -> None:
    T, lr = 4, 0.5
    x, y = torch.rand(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    net, ref = _net(1), _net(1)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    stats = bptt_train_epoch(net, [(x, y)], opt, T)
    state, loss = None, 0.0
    for _ in range(T):
        out, state = ref(x, state)
        loss = loss + F.cross_entropy(out, y) / T
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    for p, q, g in zip(net.parameters(), ref.parameters(), grads):
        torch.testing.assert_close(p, q - lr * g)
    assert stats.samples == 6
    assert stats.loss == pytest.approx(float(loss.detach()))
    assert 0.0 <= stats.accuracy <= 1.0


def test_bptt_bad_inputs() -> None:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="T"):
        bptt_train_epoch(net, [], opt, 0)
    with pytest.raises(TypeError, match="optimizer"):
        bptt_train_epoch(net, [], "sgd", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one batch"):
        bptt_train_epoch(net, [], opt, 2)
    with pytest.raises(ValueError, match="batch"):
        bptt_train_epoch(net, [(torch.rand(3, 5), torch.zeros(2).long())], opt, 2)
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        bptt_train_epoch(net, [(torch.rand(3, 5), torch.zeros(3))], opt, 2)
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        evaluate_steps(net, torch.rand(3, 5), torch.zeros(3), 2)
    # a label outside the model's classes failed in cross-entropy with IndexError
    for y in (torch.tensor([0, 1, 7]), torch.tensor([0, -1, 1])):
        with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
            bptt_train_epoch(net, [(torch.rand(3, 5), y)], opt, 2)


def test_evaluate_steps_restores_mode() -> None:
    net = _net()
    net.train()
    acc = evaluate_steps(net, torch.rand(9, 5), torch.zeros(9).long(), 3, batch_size=4)
    assert 0.0 <= acc <= 1.0
    assert net.training


def test_minibatches_seed_range() -> None:
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        minibatches(x, y, 4, seed=2**64)
    with pytest.raises(TypeError, match="seed must be an integer"):
        minibatches(x, y, 4, seed=1.5)  # type: ignore[arg-type]
    assert len(minibatches(x, y, 4, seed=2**64 - 1)) == 3


@pytest.mark.parametrize("make", ["delay", "dropout", "iir"])
def test_modules_of_whole_sequences_are_refused(make: str) -> None:
    from neuronkit.snn import SeqDropout
    from neuronkit.snn.integrator import Delay
    from neuronkit.snn.training import IIRLIF

    module = {"delay": lambda: Delay(1), "dropout": lambda: SeqDropout(0.1), "iir": IIRLIF}[make]()
    with pytest.raises(ValueError, match="takes whole sequences"):
        StepSequential(nn.Conv2d(3, 4, 3), module, LIF())


def test_int32_labels_train() -> None:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(8, 5), torch.randint(0, 3, (8,), dtype=torch.int32)
    stats = bptt_train_epoch(net, [(x, y)], opt, T=3)
    assert stats.samples == 8


def test_empty_batches_are_named() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        evaluate_steps(_net(), torch.rand(0, 5), torch.zeros(0, dtype=torch.long), T=2)


def test_minibatches_are_cut_from_the_inputs_graph() -> None:
    """Every batch indexed one shared graph of ``x``: a trainer's second backward failed with
    "Trying to backward through the graph a second time"."""
    base = torch.rand(6, 5, requires_grad=True)
    x, y = base * 2, torch.arange(6) % 3  # x has a graph, as the output of a preprocessing step
    for shuffle in (False, True):
        batches = minibatches(x, y, 4, shuffle=shuffle, seed=0)
        assert not any(xb.requires_grad for xb, _ in batches)
    with torch.inference_mode():
        xi = torch.rand(6, 5)
    (xb, _), _ = minibatches(xi, y, 4, shuffle=False)
    assert not xb.is_inference()  # can enter a training graph


def test_bptt_runs_under_no_grad_and_leaves_the_inputs_grad_alone() -> None:
    """Under ``torch.no_grad()`` the epoch failed with torch's "element 0 of tensors does not
    require grad"; an input requiring grad had its ``.grad`` filled by the training."""
    T = 3
    x, y = torch.rand(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    net, ref = _net(1), _net(1)
    bptt_train_epoch(ref, [(x, y)], torch.optim.SGD(ref.parameters(), lr=0.5), T)
    leaf = x.clone().requires_grad_(True)
    with torch.no_grad():
        bptt_train_epoch(net, [(leaf, y)], torch.optim.SGD(net.parameters(), lr=0.5), T)
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)
    assert leaf.grad is None
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^bptt_train_epoch needs"):
        bptt_train_epoch(net, [(x, y)], opt, T)


@pytest.mark.parametrize("train", [bptt_train_epoch, sltt_train_epoch])
def test_trainers_keep_learning_inside_an_outer_autocast(train: Any) -> None:
    """An outer ``torch.autocast`` caches the bf16 copy of every parameter until it exits:
    every forward after the first ``optimizer.step()`` reused the first batch's weights, so
    the loss stayed the same every epoch."""
    x, y = torch.rand(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses, params = [], []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            losses.append(train(net, [(x[:4], y[:4]), (x[4:], y[4:])], opt, T=2).loss)
            params.append([p.detach().clone() for p in net.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(params[0], params[1]))
    assert len(set(losses)) > 1, losses


class _ConstantLogits(nn.Module):
    """Step model emitting the same logits every step (class 1 ahead by a hair), in a half
    dtype; the zero-weighted parameter gives the trainers a graph and an optimizer."""

    def __init__(self, logits: list[float], dtype: torch.dtype) -> None:
        super().__init__()
        self.logits = torch.tensor(logits, dtype=dtype)
        self.w = nn.Parameter(torch.zeros((), dtype=dtype))

    def forward(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.logits.expand(x.shape[0], -1) + self.w * x.sum(-1, keepdim=True), state


# (dtype, per-step logits, T): bfloat16 running sums stall at 256 (256 + 1 rounds to 256),
# float16 ones overflow past 65504; either ties the classes and argmax picks class 0
_HALF_SUMS = [
    (torch.bfloat16, [0.99, 1.0], 1000),
    (torch.float16, [999.0, 1000.0], 100),
]


@pytest.mark.parametrize(("dtype", "logits", "T"), _HALF_SUMS)
def test_evaluate_steps_sums_half_outputs_wide(
    dtype: torch.dtype, logits: list[float], T: int
) -> None:
    model = _ConstantLogits(logits, dtype)
    x, y = torch.zeros(4, 3, dtype=dtype), torch.ones(4, dtype=torch.long)
    assert evaluate_steps(model, x, y, T) == 1.0


@pytest.mark.parametrize(("dtype", "logits", "T"), _HALF_SUMS)
@pytest.mark.parametrize("trainer", [bptt_train_epoch, sltt_train_epoch])
def test_train_epoch_accuracy_sums_half_outputs_wide(
    trainer: Any, dtype: torch.dtype, logits: list[float], T: int
) -> None:
    model = _ConstantLogits(logits, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = torch.zeros(4, 3, dtype=dtype), torch.ones(4, dtype=torch.long)
    assert trainer(model, [(x, y)], opt, T).accuracy == 1.0
