"""A control loop whose controller holds a learner (deeply interacting learning system)."""

import pytest
import torch

from neuronkit.theory.dynamical.control import (
    adaptive_controller,
    certainty_equivalence_policy,
    closed_loop,
    first_order_plant,
    signal_source,
    tracking_error,
)
from neuronkit.theory.dynamical.systems import simulate
from neuronkit.theory.dynamical.wiring import AlgebraicLoopError

F64 = torch.float64


def square(T: int) -> torch.Tensor:
    t = torch.arange(T)
    return torch.where((t // 10) % 2 == 0, 1.0, -1.0).to(F64)[:, None]


def test_plant_recurrence_and_horizon() -> None:
    gains = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    plant = first_order_plant(0.5, gains, noise=torch.tensor([0.0, 0.1, 0.0], dtype=F64), y0=1.0)
    y = simulate(plant, 3, {"u": torch.ones(3, 1, dtype=F64)}).stack("y")[:, 0]
    assert torch.allclose(y, torch.tensor([1.0, 1.5, 2.85], dtype=F64))
    with pytest.raises(ValueError, match="3 ticks of gains"):
        simulate(plant, 4, {"u": torch.ones(4, 1, dtype=F64)})
    with pytest.raises(ValueError, match="noise must have the shape"):
        first_order_plant(0.5, gains, noise=torch.zeros(2, dtype=F64))


def test_policy_inverts_the_model_with_floor_and_clip() -> None:
    pol = certainty_equivalence_policy(u_max=2.0, gain_floor=0.1)
    inp = {
        "r": torch.tensor([1.0], dtype=F64),
        "y": torch.tensor([0.5], dtype=F64),
        "weight": torch.tensor([[0.8, 2.0]], dtype=F64),
        "bias": torch.tensor([0.2], dtype=F64),
    }
    u = pol.step(None, inp)[0]["u"]
    assert u.item() == pytest.approx((1.0 - 0.4 - 0.2) / 2.0)
    inp["weight"] = torch.tensor([[0.8, -0.001]], dtype=F64)
    assert pol.step(None, inp)[0]["u"].item() == pytest.approx(-2.0)  # -4 clipped at -u_max


def test_fixed_controller_tracks_the_nominal_plant_and_keeps_its_model() -> None:
    T = 60
    loop = closed_loop(
        first_order_plant(0.7, torch.ones(T, dtype=F64)),
        adaptive_controller(lr=0.0, a0=0.7, b0=1.0),
        signal_source(square(T)),
    )
    traj = simulate(loop, T)
    err = tracking_error(traj.stack("y"), traj.stack("r"))
    assert float(err.max()) < 1e-12  # deadbeat on the exact nominal plant
    assert torch.equal(traj.stack("weight")[-1], torch.tensor([[0.7, 1.0]], dtype=F64))


def test_adaptive_controller_identifies_a_changed_plant() -> None:
    T = 200
    gains = torch.full((T,), -0.6, dtype=F64)
    loop = closed_loop(
        first_order_plant(0.5, gains),
        adaptive_controller(lr=0.5, a0=0.5, b0=1.0),
        signal_source(square(T)),
    )
    traj = simulate(loop, T)
    w = traj.stack("weight")[-1, 0]
    assert w[1].item() == pytest.approx(-0.6, abs=0.05)
    err = tracking_error(traj.stack("y"), traj.stack("r"))
    assert float(err[-50:].mean()) < 0.05


def test_loop_with_a_feedthrough_plant_is_algebraic() -> None:
    T = 5
    controller = adaptive_controller(lr=0.0, a0=0.5, b0=1.0)
    plant = certainty_equivalence_policy()  # any system with feedthrough u -> y will do
    from neuronkit.theory.dynamical.systems import Port, function_system

    direct = function_system(
        [Port("u", (1,), F64)], [Port("y", (1,), F64)], lambda i: {"y": i["u"]}
    )
    assert plant.feedthrough
    with pytest.raises(AlgebraicLoopError):
        closed_loop(direct, controller, signal_source(square(T)))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="finite"):
        signal_source(torch.tensor([[float("inf")]]))
    with pytest.raises(TypeError, match=r"values must be a torch\.Tensor"):
        signal_source([1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        tracking_error(torch.zeros(3), torch.zeros(4))
    # a 0-d tensor raised IndexError, an empty one torch's reshape RuntimeError
    for bad in (torch.tensor(1.0), torch.zeros(0)):
        with pytest.raises(ValueError, match=r"^y and r must be \[T\] or \[T, 1\]"):
            tracking_error(bad, torch.zeros(3))
    # a non-string port was named as the Port's "name"
    with pytest.raises(TypeError, match=r"^port must be str"):
        signal_source(torch.zeros(3), port=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr must be >= 0"):
        adaptive_controller(lr=-0.1, a0=0.5, b0=1.0)
    with pytest.raises(ValueError, match="u_max must be > 0"):
        certainty_equivalence_policy(u_max=0.0)
    src = signal_source(square(2))
    with pytest.raises(ValueError, match="has 2 ticks"):
        simulate(src, 3)


def test_an_exact_model_tracks_from_a_nonzero_start() -> None:
    # no step on the made-up pair (0, 0) -> y_0 at tick 0: an exact model stays exact
    T = 8
    loop = closed_loop(
        first_order_plant(0.8, torch.ones(T, dtype=F64), y0=2.0),
        adaptive_controller(lr=0.5, a0=0.8, b0=1.0),
        signal_source(torch.ones(T, 1, dtype=F64)),
    )
    trace = simulate(loop, T)
    error = tracking_error(trace.stack("y"), trace.stack("r"))
    assert torch.allclose(error, torch.zeros_like(error))


def test_tracking_error_rejects_several_columns() -> None:
    # [T, n] with n > 1 used to be read silently as its first column only
    y = torch.arange(10, dtype=F64).reshape(5, 2)
    with pytest.raises(ValueError, match=r"y and r must be \[T\] or \[T, 1\]"):
        tracking_error(y, y)
    with pytest.raises(ValueError, match=r"got \(5,\) and \(5, 2\)"):
        tracking_error(y[:, 0], y)
    # [T] and [T, 1] mix freely and give the same [T - 1] errors
    col = torch.tensor([[0.0], [1.0], [3.0]], dtype=F64)
    expected = torch.tensor([1.0, 3.0], dtype=F64)  # |y[t + 1] - r[t]|
    assert torch.equal(tracking_error(col, torch.zeros(3, dtype=F64)), expected)
    assert torch.equal(tracking_error(col[:, 0], torch.zeros(3, 1, dtype=F64)), expected)
