"""Open dynamical systems with typed ports (Spivak & Hosgood)."""

import pytest
import torch

from neuronkit.theory.dynamical.systems import (
    OpenSystem,
    Port,
    constant,
    delay,
    function_system,
    simulate,
)


def leaky(decay: float = 0.9) -> OpenSystem:
    return OpenSystem(
        [Port("u", (1,))],
        [Port("y", (1,))],
        initial_state=torch.zeros(1, dtype=torch.float64),
        update=lambda s, i: decay * s + i["u"],
        readout={"y": lambda s, _i: s},
        name="leaky",
    )


def test_port_validation_and_compatibility() -> None:
    with pytest.raises(ValueError, match="identifier"):
        Port("1x", (1,))
    with pytest.raises(ValueError, match="non-negative ints or None"):
        Port("x", (-1,))
    with pytest.raises(TypeError, match="dtype"):
        Port("x", (1,), dtype="float")  # type: ignore[arg-type]
    assert Port("x", (None, 3)).compatible(Port("y", (5, 3)))
    assert not Port("x", (None, 3)).compatible(Port("y", (5, 4)))
    assert not Port("x", (3,)).compatible(Port("y", (3, 1)))
    assert not Port("x", (3,), torch.float32).compatible(Port("y", (3,), torch.float64))
    assert Port("x", [2, None]).shape == (2, None)


def test_moore_machine_simulation_matches_the_recurrence() -> None:
    u = torch.randn(20, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = simulate(leaky(), 20, {"u": u}, record=lambda t, s: s.clone())
    y = traj.stack("y")[:, 0]
    expected = torch.zeros(20, dtype=torch.float64)
    for t in range(1, 20):
        expected[t] = 0.9 * expected[t - 1] + u[t - 1, 0]
    assert torch.allclose(y, expected)
    assert len(traj.records) == 20
    assert torch.allclose(traj.final_state, 0.9 * expected[-1] + u[-1])


def test_step_does_not_mutate_state_and_checks_inputs() -> None:
    sys_ = leaky()
    state = torch.ones(1, dtype=torch.float64)
    outs, new = sys_.step(state, {"u": torch.ones(1, dtype=torch.float64)})
    assert torch.equal(state, torch.ones(1, dtype=torch.float64))
    assert float(new) == pytest.approx(1.9)
    assert float(outs["y"]) == 1.0
    with pytest.raises(ValueError, match="missing"):
        sys_.step(state, {})
    with pytest.raises(ValueError, match="must fit port u"):
        sys_.step(state, {"u": torch.ones(2)})
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        sys_.step(state, {"u": 1.0})  # type: ignore[dict-item]


def test_readout_of_the_wrong_shape_is_reported() -> None:
    bad = OpenSystem([], [Port("y", (2,))], readout={"y": lambda _s, _i: torch.zeros(3)})
    with pytest.raises(ValueError, match="output 'y'"):
        simulate(bad, 1)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="unknown output port"):
        OpenSystem([], [Port("y", (1,))], readout={"y": lambda s, i: s}, feedthrough={"z": []})
    with pytest.raises(ValueError, match="unknown input ports"):
        OpenSystem([], [Port("y", (1,))], readout={"y": lambda s, i: s}, feedthrough={"y": ["x"]})
    with pytest.raises(ValueError, match="exactly the outputs"):
        OpenSystem([], [Port("y", (1,))], readout={})
    with pytest.raises(ValueError, match="distinct port names"):
        OpenSystem([Port("x", (1,)), Port("x", (1,))], [], readout={})
    with pytest.raises(TypeError, match="sequence of Port"):
        OpenSystem(Port("x", (1,)), [], readout={})  # type: ignore[arg-type]


def test_delay_constant_and_function_systems() -> None:
    d = delay(Port("v", (2,)), torch.tensor([5.0, 6.0]))
    xs = torch.arange(8.0).reshape(4, 2)
    y = simulate(d, 4, {"x": xs}).stack("y")
    assert torch.equal(y[0], torch.tensor([5.0, 6.0]))
    assert torch.equal(y[1:], xs[:-1])
    c = constant(Port("c", (1,)), torch.tensor([2.0]))
    assert torch.equal(simulate(c, 3).stack("c"), torch.full((3, 1), 2.0))
    f = function_system([Port("a", (1,))], [Port("b", (1,))], lambda i: {"b": 3 * i["a"]})
    assert f.feedthrough == {"b": frozenset({"a"})}
    assert torch.equal(simulate(f, 2, {"a": torch.ones(2, 1)}).stack("b"), torch.full((2, 1), 3.0))
    with pytest.raises(ValueError, match="initial"):
        delay(Port("v", (2,)), torch.zeros(3))


def test_simulate_input_errors() -> None:
    with pytest.raises(ValueError, match="steps=5"):
        simulate(leaky(), 5, {"u": torch.zeros(3, 1)})
    with pytest.raises(ValueError, match="finite"):
        simulate(leaky(), 2, {"u": torch.tensor([[0.0], [float("nan")]])})
    with pytest.raises(ValueError, match="must supply"):
        simulate(leaky(), 2)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        simulate(leaky(), -1, {"u": torch.zeros(1, 1)})
    traj = simulate(leaky(), 3, lambda t: {"u": torch.full((1,), float(t), dtype=torch.float64)})
    assert traj.stack("y")[-1].item() == pytest.approx(0.0 * 0.9 + 1.0)


def test_trajectory_outputs_are_copies() -> None:
    """Editing a recorded output changes neither the system (a constant's value, a signal's
    samples) nor the caller's inputs (a delay's state is its last input)."""
    from neuronkit.theory.dynamical.control import signal_source

    port = Port("y", (2,))
    const = constant(port, torch.tensor([1.0, 2.0]))
    first = simulate(const, 3)
    first.outputs["y"][0].add_(100.0)
    assert first.outputs["y"][1].tolist() == [1.0, 2.0]
    assert simulate(const, 1).outputs["y"][0].tolist() == [1.0, 2.0]
    signal = signal_source(torch.arange(4.0), name="r")
    simulate(signal, 2).outputs["r"][0].add_(9.0)
    assert simulate(signal, 1).outputs["r"][0].item() == 0.0
    inputs = torch.arange(6.0).reshape(3, 2)
    traced = simulate(delay(Port("x", (2,)), torch.zeros(2)), 3, inputs={"x": inputs})
    traced.outputs["y"][1].mul_(0.0)
    assert inputs[0].tolist() == [0.0, 1.0]
