"""Leaky RNN with trainable per-neuron timescales."""

import pytest
import torch
import torch.nn.functional as F

from neuronkit.theory.timescales import TimescaleRNN, timescale_rnn_step


def _loop_reference(model: TimescaleRNN, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Direct transcription of the paper's update, one neuron at a time."""
    tau = model.effective_tau()
    w = model.recurrent_weight()
    h = h0.clone()
    for t in range(x.shape[0]):
        new = torch.empty_like(h)
        for i in range(model.hidden_size):
            u = h @ w[i] + x[t] @ model.w_in[i] + model.b_in[i] + model.b_rec[i]
            if model.placement == "outside":
                new[:, i] = F.leaky_relu((1 - 1 / tau[i]) * h[:, i] + u / tau[i], 0.01)
            else:
                new[:, i] = (1 - 1 / tau[i]) * h[:, i] + F.leaky_relu(u, 0.01) / tau[i]
        h = new
    return h


@pytest.mark.parametrize("placement", ["outside", "inside"])
def test_simulate_matches_the_update_equation(placement: str) -> None:
    model = TimescaleRNN(1, 12, num_heads=2, placement=placement, seed=0)
    with torch.no_grad():
        model.tau.mul_(1.8)
    x = (torch.rand(9, 4, 1, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    h0 = 0.1 * torch.rand(4, 12)
    hs = model.simulate(x, h0)
    assert hs.shape == (10, 4, 12)
    assert torch.equal(hs[0], h0)
    torch.testing.assert_close(hs[-1], _loop_reference(model, x, h0), rtol=1e-5, atol=1e-6)
    # the functional step gives the same trajectory
    h = h0
    for t in range(9):
        h = timescale_rnn_step(
            h,
            x[t] @ model.w_in.T + model.b_in,
            model.recurrent_weight(),
            model.b_rec,
            model.effective_tau(),
            placement=placement,
        )
    torch.testing.assert_close(h, hs[-1], rtol=1e-5, atol=1e-6)


_F = {"leaky_relu": lambda z: F.leaky_relu(z, 0.01), "tanh": torch.tanh}


def _select_and_stack(model: TimescaleRNN, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The trajectory as a step-by-step autograd graph: ``drive[t]`` per step, every state
    stacked (outside: ``f(b' + x w' + h M)``, the form the model evaluates)."""
    f = _F[model.activation]
    inv_tau = 1.0 / model.effective_tau()
    w_t = model.recurrent_weight().T
    states = [h0]
    h = h0
    if model.placement == "outside":
        m = torch.diag(1.0 - inv_tau) + w_t * inv_tau
        w_in, bias = model.w_in.T * inv_tau, (model.b_in + model.b_rec) * inv_tau
        drive = torch.addmm(bias, x.reshape(-1, x.shape[2]), w_in).view(*x.shape[:2], -1)
        for t in range(x.shape[0]):
            h = f(torch.addmm(drive[t], h, m))
            states.append(h)
    else:
        drive = x @ model.w_in.T + (model.b_in + model.b_rec)
        keep = 1.0 - inv_tau
        for t in range(x.shape[0]):
            act = f(torch.addmm(drive[t], h, w_t))
            h = torch.addcmul(h * keep, act, inv_tau)
            states.append(h)
    return torch.stack(states)


def _grads(model: TimescaleRNN, loss: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _assert_grads(
    grads: list[torch.Tensor], ref: list[torch.Tensor], bitwise: bool, heads: int
) -> None:
    assert len(grads) == len(ref) == 5 + 2 * heads  # w_in, b_in, w_rec, b_rec, tau, heads
    for a, b in zip(grads, ref, strict=True):
        if bitwise:
            assert torch.equal(a, b)
        else:  # outside: the hand-written backward sums over steps in one matmul
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("placement", ["outside", "inside"])
@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_forward_and_simulate_are_the_step_by_step_graph(placement: str, activation: str) -> None:
    # the values are those of the per-step select + stack graph bit for bit, and so are the
    # gradients of the inside placement; the outside placement's hand-written backward (one
    # matmul over all steps for the weights) agrees to rounding
    model = TimescaleRNN(1, 24, num_heads=3, placement=placement, activation=activation, seed=4)
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand(17, 8, 1, generator=gen) < 0.5).float()
    h0 = (0.1 * torch.rand(8, 24, generator=gen)).requires_grad_()
    exact = placement == "inside"
    ref_states = _select_and_stack(model, x, h0)
    ref_logits = model.readout(ref_states[-1], [0, 2])
    (ref_h0,) = torch.autograd.grad(ref_logits.sum(), h0, retain_graph=True)
    ref_grads = _grads(model, ref_logits.square().sum())
    logits = model(x, h0, heads=[0, 2])
    assert torch.equal(logits, ref_logits)
    _assert_grads(_grads(model, logits.square().sum()), ref_grads, exact, heads=2)
    torch.testing.assert_close(torch.autograd.grad(model(x, h0, [0, 2]).sum(), h0)[0], ref_h0)
    states = model.simulate(x, h0)
    assert torch.equal(states, ref_states)
    weights = torch.rand(states.shape, generator=gen)
    ref_grads = _grads(model, (_select_and_stack(model, x, h0) * weights).sum())
    _assert_grads(_grads(model, (states * weights).sum()), ref_grads, exact, heads=0)
    # no time step: the readout of the initial state
    empty = torch.zeros(0, 8, 1)
    assert torch.equal(model(empty, h0, heads=[1]), model.readout(h0, [1]))
    assert torch.equal(model.simulate(empty, h0), h0.unsqueeze(0))
    assert torch.autograd.grad(model.simulate(empty, h0).sum(), h0)[0].eq(1).all()


@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "tanh", "sigmoid"])
def test_hand_written_backward_matches_autograd_to_second_order(activation: str) -> None:
    # the outside placement's backpropagation through time against autograd on the plain ops
    # (a torch.func transform runs them), first and second order (create_graph)
    from torch.func import functional_call, grad

    model = TimescaleRNN(2, 10, num_heads=2, activation=activation, seed=1).double()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 3, 2, generator=gen, dtype=torch.float64).requires_grad_()
    h0 = (0.1 * torch.rand(3, 10, generator=gen, dtype=torch.float64)).requires_grad_()
    params = dict(model.named_parameters())

    def loss(p: dict, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        states = functional_call(model, p, (x, h0), {"heads": [1]})
        return states.square().sum() + functional_call(model, p, (x[:4], h0)).sum()

    ref = grad(loss, argnums=(0, 1, 2))(params, x, h0)  # plain ops under torch.func
    got = torch.autograd.grad(loss(params, x, h0), [*params.values(), x, h0], create_graph=True)
    for a, b in zip(got, [*ref[0].values(), ref[1], ref[2]], strict=True):
        torch.testing.assert_close(a, b)
    # second order: d/dx of <grad_w_rec, v> through the create_graph backward
    v = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    (hvp,) = torch.autograd.grad((got[2] * v).sum(), x)

    def inner(x: torch.Tensor) -> torch.Tensor:
        return (grad(loss)(params, x, h0)["w_rec"] * v).sum()

    torch.testing.assert_close(hvp, grad(inner)(x))


@pytest.mark.parametrize("placement", ["outside", "inside"])
@pytest.mark.parametrize("inputs", [1, 3])
def test_forward_and_simulate_without_autograd_give_the_same_values(
    placement: str, inputs: int
) -> None:
    # without a graph the drives are formed step by step (no [T, B, H] temporaries): the
    # values must still be those of the graph path, bit for bit
    model = TimescaleRNN(inputs, 24, num_heads=3, placement=placement, seed=6)
    with torch.no_grad():
        model.tau.mul_(2.5)  # some tau clamped at 1, some large
        model.w_rec.mul_(3.0)
    gen = torch.Generator().manual_seed(7)
    for batch in (1, 5, 64):
        x = torch.randn(13, batch, inputs, generator=gen)
        h0 = 0.1 * torch.rand(batch, 24, generator=gen)
        logits, states = model(x, h0, heads=[2, 0]), model.simulate(x, h0)
        assert logits.requires_grad
        assert states.requires_grad
        with torch.no_grad():
            assert torch.equal(model(x, h0, heads=[2, 0]), logits)
            assert torch.equal(model.simulate(x, h0), states)
        with torch.inference_mode():
            assert torch.equal(model.simulate(x, h0), states)


def test_tau_one_is_a_vanilla_rnn_and_large_tau_holds_the_state() -> None:
    model = TimescaleRNN(1, 8, tau_init=1.0, seed=3)
    x = torch.rand(5, 2, 1)
    hs = model.simulate(x)
    expected = F.leaky_relu(
        hs[-2] @ model.recurrent_weight().T + x[-1] @ model.w_in.T + model.b_in + model.b_rec, 0.01
    )
    torch.testing.assert_close(hs[-1], expected)
    slow = TimescaleRNN(1, 8, tau_init=1e6, placement="inside", seed=3)
    h0 = torch.rand(2, 8)
    torch.testing.assert_close(slow.simulate(x, h0)[-1], h0, atol=1e-4, rtol=0)


def test_tau_stays_at_least_one_and_self_connections_are_masked() -> None:
    model = TimescaleRNN(1, 10, seed=0)
    assert bool((model.tau >= 1).all())
    assert bool((model.tau < 2).all())
    with torch.no_grad():
        model.tau[:3] = 0.2
    assert bool((model.effective_tau() >= 1).all())
    assert torch.count_nonzero(torch.diagonal(model.recurrent_weight())) == 0
    loss = model.simulate(torch.rand(6, 3, 1))[-1].sum()
    loss.backward()
    assert model.tau.grad is not None
    assert bool((model.tau.grad[:3] == 0).all())  # clamped below 1: no gradient
    assert bool((torch.diagonal(model.w_rec.grad) == 0).all())
    kept = TimescaleRNN(1, 10, self_connections=True, seed=0)
    assert torch.equal(kept.recurrent_weight(), kept.w_rec)


def test_fixed_tau_is_not_trained_and_seeding() -> None:
    fixed = TimescaleRNN(1, 6, train_tau=False, tau_init=3.0, seed=0)
    assert not fixed.train_tau
    assert torch.equal(fixed.tau, torch.full((6,), 3.0))
    a, b = TimescaleRNN(1, 6, num_heads=3, seed=7), TimescaleRNN(1, 6, num_heads=3, seed=7)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), na
    assert not torch.equal(a.w_rec, TimescaleRNN(1, 6, seed=8).w_rec)
    bound = 1 / 6**0.5
    assert float(a.w_rec.detach().abs().max()) <= bound
    assert float(a.w_in.detach().abs().max()) <= 1.0


def test_heads_select_readouts() -> None:
    model = TimescaleRNN(1, 8, num_heads=4, num_classes=3, seed=0)
    x = torch.rand(7, 5, 1)
    all_heads = model(x)
    assert all_heads.shape == (4, 5, 3)
    torch.testing.assert_close(model(x, heads=[2, 0]), all_heads[[2, 0]])
    h_last = model.simulate(x)[-1]
    torch.testing.assert_close(model.readout(h_last, [1])[0], model.heads[1](h_last))


@pytest.mark.parametrize("placement", ["outside", "inside"])
def test_lengths_read_each_sequence_at_its_own_length(placement: str) -> None:
    model = TimescaleRNN(2, 8, num_heads=3, placement=placement, seed=0)
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([5, 0, 9, 2, 9, 5])
    x = torch.randn(9, 6, 2, generator=gen)
    h0 = 0.1 * torch.rand(6, 8, generator=gen)
    # padding past a sequence's end must not matter
    x[torch.arange(9).unsqueeze(1) >= lengths] = 100.0
    each = torch.cat(
        [model(x[: int(n), b : b + 1], h0[b : b + 1], heads=[2, 0]) for b, n in enumerate(lengths)],
        dim=1,
    )
    with torch.no_grad():  # outside: only the running sequences are stepped
        torch.testing.assert_close(model(x, h0, [2, 0], lengths=lengths), each)
    logits = model(x, h0, [2, 0], lengths=lengths)  # the trajectory, read at each length
    torch.testing.assert_close(logits, each)
    model.zero_grad()
    logits.sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    each.sum().backward()
    for a, b in zip(grads, [p.grad for p in model.parameters() if p.grad is not None], strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 9\]"):
        model(x, h0, lengths=torch.tensor([1, 2, 3, 4, 5, 10]))
    with pytest.raises(ValueError, match=r"lengths must have shape \[6\]"):
        model(x, h0, lengths=torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="lengths must be an integer tensor"):
        model(x, h0, lengths=lengths.float())
    with pytest.raises(TypeError, match="lengths"):
        model(x, h0, lengths=[5, 0, 9, 2, 9, 5])  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        TimescaleRNN(1, 0)
    with pytest.raises(ValueError, match="tau_init"):
        TimescaleRNN(1, 4, tau_init=0.5)
    with pytest.raises(ValueError, match="activation"):
        TimescaleRNN(1, 4, activation="gelu")
    with pytest.raises(ValueError, match="placement"):
        TimescaleRNN(1, 4, placement="between")
    with pytest.raises(TypeError, match="train_tau"):
        TimescaleRNN(1, 4, train_tau=1)  # type: ignore[arg-type]
    model = TimescaleRNN(1, 4, num_heads=2, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 1\]"):
        model(torch.rand(3, 2))
    with pytest.raises(TypeError, match="floating"):
        model(torch.ones(3, 2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="finite"):
        model(torch.full((3, 2, 1), float("nan")))
    with pytest.raises(ValueError, match="h0"):
        model(torch.rand(3, 2, 1), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="heads"):
        model(torch.rand(3, 2, 1), heads=[2])
    with pytest.raises(ValueError, match="heads"):
        model(torch.rand(3, 2, 1), heads=[])
    h, w, b = torch.zeros(2, 4), torch.zeros(4, 4), torch.zeros(4)
    with pytest.raises(ValueError, match="tau"):
        timescale_rnn_step(h, h, w, b, torch.full((4,), 0.5))
    with pytest.raises(ValueError, match="w_rec"):
        timescale_rnn_step(h, h, torch.zeros(3, 3), b, torch.ones(4))
    with pytest.raises(TypeError, match="bias"):
        timescale_rnn_step(h, h, w, [0.0] * 4, torch.ones(4))  # type: ignore[arg-type]


def test_dtype_mismatch_and_bad_initial_states_name_the_argument() -> None:
    model = TimescaleRNN(1, 4, seed=0)
    with pytest.raises(TypeError, match=r"^x must have the model's dtype torch.float32"):
        model(torch.zeros(3, 2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^h0 must be finite"):
        model(torch.zeros(3, 2, 1), h0=torch.full((2, 4), float("nan")))
    with pytest.raises(TypeError, match=r"^h0 must have the model's dtype"):
        model(torch.zeros(3, 2, 1), h0=torch.zeros(2, 4, dtype=torch.float64))
    m64 = TimescaleRNN(1, 4, seed=0).double()
    assert m64(torch.zeros(3, 2, 1, dtype=torch.float64)).dtype == torch.float64
