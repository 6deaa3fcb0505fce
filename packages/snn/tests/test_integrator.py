"""Leaky integrator and delay: equivalence with the LIF engine, reference formulas, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuronkit.snn import LIF, lif_multistep
from neuronkit.snn.integrator import LI, Delay, LIState, delay, li_multistep, li_step

F64 = torch.float64


def _x(
    T: int = 12, B: int = 3, N: int = 5, seed: int = 0, dtype: torch.dtype = F64
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, N, generator=g, dtype=dtype)


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_leak", [0.0, -0.3])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_li_is_lif_without_reset(decay_input: bool, v_leak: float, dtype: torch.dtype) -> None:
    x = _x(dtype=dtype)
    v, _ = li_multistep(x, tau=3.0, v_leak=v_leak, decay_input=decay_input)
    for fused in (True, False):
        ref = lif_multistep(
            x,
            tau=3.0,
            v_reset=v_leak,
            reset="none",
            threshold=0.5,
            decay_input=decay_input,
            fused=fused,
        )
        assert torch.equal(v, ref.v)  # same bits as the LIF charge
        assert torch.equal((v >= 0.5).to(dtype), ref.spikes)


def test_li_tensor_tau_matches_lif() -> None:
    x = _x()
    tau = torch.tensor([1.5, 2.0, 3.0, 4.0, 8.0], dtype=F64)
    v, _ = li_multistep(x, tau=tau)
    ref = lif_multistep(x, tau=tau, reset="none", fused=False)
    assert torch.equal(v, ref.v)


def test_li_forward_euler_reference() -> None:
    x = _x()
    tau, v_leak, dt = 4.0, 0.2, 0.5
    out, state = li_multistep(x, tau=tau, v_leak=v_leak, dt=dt)
    v, ref = torch.full_like(x[0], v_leak), []
    for t in range(x.shape[0]):
        v = v + dt / tau * (v_leak - v + x[t])
        ref.append(v)
    torch.testing.assert_close(out, torch.stack(ref))
    assert torch.equal(state.v, out[-1])


def test_li_step_matches_multistep_and_state_continues() -> None:
    x = _x()
    full, _ = li_multistep(x, tau=2.5)
    state = None
    steps = []
    for t in range(x.shape[0]):
        v, state = li_step(x[t], state, tau=2.5)
        steps.append(v)
    assert torch.equal(torch.stack(steps), full)
    first, s = li_multistep(x[:5], tau=2.5)
    rest, _ = li_multistep(x[5:], s, tau=2.5)
    assert torch.equal(torch.cat([first, rest]), full)


def test_li_module() -> None:
    li = LI(tau=3.0, decay_input=False)
    x = _x()
    assert torch.equal(li(x), li_multistep(x, tau=3.0, decay_input=False)[0])
    v, st_ = li.step(x[0])
    assert isinstance(st_, LIState)
    assert v.shape == x[0].shape
    assert "tau=3" in repr(li)
    assert LIF  # the integrator is documented as LIF(reset="none")'s membrane


def test_li_does_not_mutate_input() -> None:
    x = _x()
    before = x.clone()
    li_multistep(x, tau=2.0, v_leak=0.5)
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"tau": 0.5}, ValueError, "tau must be >= dt"),
        ({"tau": -1.0}, ValueError, "tau"),
        ({"dt": 0.0}, ValueError, "dt"),
        ({"decay_input": 1}, TypeError, "decay_input"),
        ({"v_leak": float("nan")}, ValueError, "v_leak"),
    ],
)
def test_li_bad_parameters(kwargs: dict, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        li_multistep(_x(), **kwargs)
    with pytest.raises(err, match=match):
        LI(**kwargs)


def test_li_bad_inputs() -> None:
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        li_multistep([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        li_multistep(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        li_multistep(torch.zeros(3, 2, 4, dtype=torch.int64))
    bad = _x()
    bad[2, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        li_multistep(bad)
    with pytest.raises(ValueError, match=r"state\.v must have shape"):
        li_multistep(_x(), LIState(torch.zeros(2, 2, dtype=F64)))
    with pytest.raises(TypeError, match="LIState"):
        li_multistep(_x(), (torch.zeros(3, 5, dtype=F64),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau must broadcast"):
        li_multistep(_x(), tau=torch.full((7,), 2.0, dtype=F64))


@pytest.mark.parametrize(
    ("tau", "match"),
    [
        (-1.0, "tau must be > 0, got a tensor with minimum -1"),
        (0.0, "tau must be > 0"),
        (0.5, r"tau must be >= dt \(1\)"),
        (float("nan"), "tau must be finite"),
    ],
)
def test_li_tensor_tau_is_range_checked(tau: float, match: str) -> None:
    bad = torch.tensor([2.0, 3.0, tau, 2.0, 4.0], dtype=F64)
    for call in (
        lambda: li_multistep(_x(), tau=bad),
        lambda: li_step(_x()[0], tau=bad),
        lambda: LI(tau=bad),
        lambda: li_multistep(_x(), tau=torch.tensor(tau)),
    ):
        with pytest.raises(ValueError, match=match):
            call()
    li_multistep(_x(), tau=bad, validate=False)  # the value checks honour validate


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_li_non_finite_state_is_rejected_by_name(bad: float) -> None:
    state = LIState(torch.full((3, 5), bad, dtype=F64))
    for call in (
        lambda: li_multistep(_x(), state),
        lambda: li_step(_x()[0], state),
        lambda: LI().run(_x(), state),
    ):
        with pytest.raises(ValueError, match=r"state\.v must be finite"):
            call()
    li_multistep(_x(), state, validate=False)


# ---- delay --------------------------------------------------------------------------------------


def test_delay_shifts_with_zeros() -> None:
    x = torch.arange(1.0, 7.0).view(6, 1, 1)
    assert delay(x, 2).flatten().tolist() == [0, 0, 1, 2, 3, 4]
    assert torch.equal(delay(x, 0), x)
    assert delay(x, 0) is not x
    assert torch.all(delay(x, 9) == 0)


def test_per_element_delays() -> None:
    x = _x(T=8, B=2, N=3)
    steps = torch.tensor([0, 1, 3])
    y = Delay(steps)(x)
    for n, d in enumerate(steps.tolist()):
        assert torch.equal(y[:, :, n], delay(x[:, :, n : n + 1], d)[:, :, 0])


@settings(max_examples=20, deadline=None)
@given(d=st.integers(0, 10), T=st.integers(1, 8))
def test_delay_preserves_total_within_window(d: int, T: int) -> None:
    x = torch.rand(T, 2, 3, dtype=F64)
    y = delay(x, d)
    assert y.shape == x.shape
    kept = x[: max(T - d, 0)].sum()
    assert torch.isclose(y.sum(), kept)


def test_delay_bad_inputs() -> None:
    with pytest.raises(ValueError, match="steps must be >= 0"):
        Delay(-1)
    with pytest.raises(TypeError, match="steps must be an integer"):
        Delay(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer tensor"):
        Delay(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        Delay(torch.tensor([1, -2]))
    with pytest.raises(ValueError, match="broadcast to one sample"):
        delay(_x(N=3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        delay(torch.zeros(4, 3), 1)


def test_integrator_and_delay_declare_channel_locality() -> None:
    assert LI(tau=3.0).channel_local
    assert Delay(2).channel_local
    # per-element settings are parameters or buffers, visible in the module's state
    assert LI(tau=torch.linspace(2.0, 3.0, 4)).channel_local
    assert LI(tau=nn.Parameter(torch.linspace(2.0, 3.0, 4))).channel_local
    assert Delay(torch.tensor([0, 1, 2])).channel_local
    hidden = LI(tau=3.0)
    hidden.extra = torch.ones(3)  # a plain tensor attribute a tool cannot see
    assert not hidden.channel_local


def test_li_tensor_tau_is_a_buffer() -> None:
    a = LI(tau=torch.linspace(2.0, 3.0, 5))
    b = LI(tau=torch.full((5,), 7.0))
    assert list(a.state_dict()) == ["tau"]
    x = _x(dtype=torch.float32)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert a.double().tau.dtype == F64
    assert LI(tau=3.0).state_dict() == {}
    assert [n for n, _ in LI(tau=nn.Parameter(torch.tensor(3.0))).named_parameters()] == ["tau"]
    assert "tau=tensor(shape=[5], min=2, max=3)" in repr(a)


def test_li_validate_flag_is_type_checked() -> None:
    with pytest.raises(TypeError, match="validate must be bool"):
        li_multistep(_x(), validate="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="validate must be bool"):
        li_step(_x()[0], validate="yes")  # type: ignore[arg-type]


def test_per_element_delays_compile_in_one_graph() -> None:
    module = Delay(torch.tensor([1, 2]))
    x = torch.rand(4, 2, 2)
    compiled = torch.compile(nn.Sequential(module), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), module(x))


@pytest.mark.parametrize("d", [0, 2, 6, 7])  # T = 6: d = T and d > T give all zeros
def test_int_and_tensor_steps_give_the_same_delay(d: int) -> None:
    x = _x(T=6, B=2, N=3)
    want = delay(x, d)  # the slicing path; tensors take the gather path
    assert torch.equal(want[d:], x[: max(6 - d, 0)])
    for steps in (
        torch.tensor(d),
        torch.tensor(d, dtype=torch.int32),
        torch.tensor([d]),
        torch.full((3,), d),
    ):
        assert torch.equal(delay(x, steps), want)
        assert torch.equal(Delay(steps)(x), want)
