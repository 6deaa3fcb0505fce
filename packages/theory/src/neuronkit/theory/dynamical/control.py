"""Deeply interacting learning systems: a control loop whose controller learns.

Spivak & Hosgood, "Deep neural networks as nested dynamical systems" (2021): control theory
wires systems in rich feedback patterns (plant <-> controller) but its systems do not adapt to
changing circumstances; deep networks adapt but interact in a very restricted pattern. Both are
nested dynamical systems, and the encompassing generalization, *deeply interacting learning
systems*, has both. This module builds the smallest such example from the same parts as the
MLP of :mod:`neuronkit.theory.dynamical.learners`:

* a plant ``y_{t+1} = a y_t + b_t u_t + noise_t`` whose gain ``b_t`` may change mid-run
  (:func:`first_order_plant`);
* a certainty-equivalence policy ``u_t = clip((r_t - a_hat y_t - c_hat) / b_hat, +-u_max)``
  that reads its model's parameters off a wire (:func:`certainty_equivalence_policy`);
* an adaptive controller (:func:`adaptive_controller`): a nested system holding the policy and a
  *learner* (a :func:`~neuronkit.theory.dynamical.learners.dense_learner`, the same box as an
  MLP layer) that predicts ``y_t`` from ``(y_{t-1}, u_{t-1})`` and is trained by gradient
  descent on its prediction error at every tick; with learning rate 0 it is the fixed
  controller designed for the nominal plant;
* the closed loop (:func:`closed_loop`): reference -> controller -> plant -> controller.
"""

from __future__ import annotations

import torch

from neuronkit.common import check_number, check_type

from .learners import dense_learner, mse_loss_system
from .systems import DynamicalSystem, OpenSystem, Port, Values, delay, function_system
from .wiring import ComposedSystem, WiringDiagram, compose

__all__ = [
    "adaptive_controller",
    "certainty_equivalence_policy",
    "closed_loop",
    "first_order_plant",
    "signal_source",
    "tracking_error",
]


def _series(arg: str, values: torch.Tensor, ndim_min: int = 1) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{arg} must be a torch.Tensor [T, ...], got {type(values).__name__}")
    if values.ndim < ndim_min or values.shape[0] == 0:
        raise ValueError(f"{arg} must be a non-empty tensor [T, ...], got {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{arg} must be finite, got NaN or infinity")
    return values.detach().clone()


def signal_source(values: torch.Tensor, *, port: str = "r", name: str = "signal") -> OpenSystem:
    """A Moore system showing ``values[t]`` on output ``port`` at tick ``t``.

    Args:
        values: ``[T, *shape]``; running past ``T`` ticks raises ``ValueError``.
    """
    check_type("port", port, str)
    vals = _series("values", values)

    def read(t: int, _i: Values) -> torch.Tensor:
        if t >= vals.shape[0]:
            raise ValueError(f"signal {name!r} has {vals.shape[0]} ticks, asked for tick {t}")
        return vals[t]

    return OpenSystem(
        [],
        [Port(port, tuple(vals.shape[1:]), vals.dtype)],
        initial_state=0,
        update=lambda t, _i: t + 1,
        readout={port: read},
        name=name,
    )


def first_order_plant(
    a: float,
    gains: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    y0: float = 0.0,
    name: str = "plant",
) -> OpenSystem:
    """The plant ``y_{t+1} = a y_t + gains[t] u_t + noise[t]`` (a Moore machine).

    Args:
        a: pole (``|a| < 1`` for a stable open loop).
        gains: input gain per tick ``[T]`` (a change mid-run models a changed plant).
        noise: process noise per tick ``[T]`` (default zeros); draw it with a seeded generator.
        y0: initial output.

    Ports: input ``u [1]``, output ``y [1]``; float64. State ``(y [1], t)``.
    """
    check_number("a", a)
    check_number("y0", y0)
    g = _series("gains", gains).to(torch.float64)
    if g.ndim != 1:
        raise ValueError(f"gains must be 1-D [T], got {tuple(g.shape)}")
    nz = torch.zeros_like(g) if noise is None else _series("noise", noise).to(torch.float64)
    if nz.shape != g.shape:
        raise ValueError(
            f"noise must have the shape of gains {tuple(g.shape)}, got {tuple(nz.shape)}"
        )

    def update(state: tuple[torch.Tensor, int], i: Values) -> tuple[torch.Tensor, int]:
        y, t = state
        if t >= g.shape[0]:
            raise ValueError(f"plant {name!r} has {g.shape[0]} ticks of gains, asked for tick {t}")
        return a * y + g[t] * i["u"] + nz[t], t + 1

    return OpenSystem(
        [Port("u", (1,), torch.float64)],
        [Port("y", (1,), torch.float64)],
        initial_state=(torch.full((1,), float(y0), dtype=torch.float64), 0),
        update=update,
        readout={"y": lambda s, _i: s[0]},
        name=name,
    )


def certainty_equivalence_policy(
    *, u_max: float = 3.0, gain_floor: float = 0.05, name: str = "policy"
) -> OpenSystem:
    """``u = clip((r - a_hat y - c_hat) / b_hat, -u_max, u_max)``: the input that makes the
    model ``y_next = a_hat y + b_hat u + c_hat`` hit the reference ``r`` next tick.

    The model arrives on wires: ``weight [1, 2] = [[a_hat, b_hat]]``, ``bias [1] = [c_hat]``;
    ``|b_hat|`` is floored at ``gain_floor`` (keeping its sign). Ports: inputs ``r [1]``,
    ``y [1]``, ``weight [1, 2]``, ``bias [1]``; output ``u [1]``. Stateless, float64.
    """
    check_number("u_max", u_max, gt=0)
    check_number("gain_floor", gain_floor, gt=0)

    def fn(i: Values) -> dict[str, torch.Tensor]:
        a_hat, b_hat = i["weight"][0, 0], i["weight"][0, 1]
        sign = 1.0 if float(b_hat) >= 0 else -1.0
        b_safe = sign * torch.clamp(b_hat.abs(), min=gain_floor)
        u = (i["r"] - a_hat * i["y"] - i["bias"]) / b_safe
        return {"u": torch.clamp(u, -u_max, u_max)}

    f64 = torch.float64
    return function_system(
        [
            Port("r", (1,), f64),
            Port("y", (1,), f64),
            Port("weight", (1, 2), f64),
            Port("bias", (1,), f64),
        ],
        [Port("u", (1,), f64)],
        fn,
        name=name,
    )


def adaptive_controller(
    *,
    lr: float,
    a0: float,
    b0: float,
    u_max: float = 3.0,
    gain_floor: float = 0.05,
    normalize: bool = True,
    name: str = "controller",
) -> ComposedSystem:
    """A controller that learns its plant model online: a nested learning system.

    Boxes: ``model`` (a :func:`dense_learner` ``[y, u] -> y_next`` with parameters exposed on
    wires, initialized at the nominal plant ``[[a0, b0]]``, bias 0), ``policy``
    (:func:`certainty_equivalence_policy` reading the model's parameters), ``memory`` (a unit
    delay holding ``[y_{t-1}, u_{t-1}, 1]``), ``features`` / ``unpack`` / ``target``
    (reshaping), ``loss`` (squared prediction error) and ``gate`` (which passes its gradient to
    the model only when the memory holds a real past tick). Each tick from the second on the
    model takes one gradient step on ``(model([y_{t-1}, u_{t-1}]) - y_t)^2``.

    Args:
        lr: model learning rate (``0``: the fixed certainty-equivalence controller for the
            nominal plant).
        a0, b0: nominal plant pole and gain (the model's initial weights).
        u_max, gain_floor: as in :func:`certainty_equivalence_policy`.
        normalize: normalized-LMS steps for the model (see :func:`dense_learner`).

    Ports: inputs ``r [1]`` (reference for the next output), ``y [1]`` (measured output);
    outputs ``u [1]`` and ``weight [1, 2]`` (the current model ``[[a_hat, b_hat]]``).
    """
    check_number("lr", lr, ge=0)
    check_number("a0", a0)
    check_number("b0", b0)
    f64 = torch.float64
    model = dense_learner(
        2,
        1,
        lr=lr,
        weight=torch.tensor([[float(a0), float(b0)]], dtype=f64),
        bias=torch.zeros(1, dtype=f64),
        normalize=normalize,
        expose_params=True,
        name=f"{name}/model",
    )
    policy = certainty_equivalence_policy(u_max=u_max, gain_floor=gain_floor, name=f"{name}/policy")
    # the memory holds [y, u, 1]: the 1 marks a real past tick (the initial zeros are not one)
    one = torch.ones(1, dtype=f64)
    features = function_system(
        [Port("y", (1,), f64), Port("u", (1,), f64)],
        [Port("phi", (1, 3), f64)],
        lambda i: {"phi": torch.cat([i["y"], i["u"], one])[None, :]},
        name=f"{name}/features",
    )
    unpack = function_system(
        [Port("m", (1, 3), f64)],
        [Port("x", (1, 2), f64), Port("valid", (1, 1), f64)],
        lambda i: {"x": i["m"][:, :2], "valid": i["m"][:, 2:]},
        name=f"{name}/unpack",
    )
    gate = function_system(  # no step at tick 0, where no past pair exists yet
        [Port("grad", (None, 1), f64), Port("valid", (1, 1), f64)],
        [Port("grad", (None, 1), f64)],
        lambda i: {"grad": i["grad"] * i["valid"]},
        name=f"{name}/gate",
    )
    target = function_system(
        [Port("y", (1,), f64)],
        [Port("y2", (1, 1), f64)],
        lambda i: {"y2": i["y"][None, :]},
        name=f"{name}/target",
    )
    memory = delay(Port("phi", (1, 3), f64), torch.zeros(1, 3, dtype=f64), name=f"{name}/memory")
    systems: dict[str, DynamicalSystem] = {
        "model": model,
        "policy": policy,
        "features": features,
        "target": target,
        "memory": memory,
        "unpack": unpack,
        "loss": mse_loss_system(1),
        "gate": gate,
    }
    wires = [
        ("outer.r", "policy.r"),
        ("outer.y", "policy.y"),
        ("model.weight", "policy.weight"),
        ("model.bias", "policy.bias"),
        ("policy.u", "outer.u"),
        ("model.weight", "outer.weight"),
        ("outer.y", "features.y"),
        ("policy.u", "features.u"),
        ("features.phi", "memory.x"),
        ("memory.y", "unpack.m"),
        ("unpack.x", "model.x"),
        ("model.y", "loss.y"),
        ("outer.y", "target.y"),
        ("target.y2", "loss.target"),
        ("loss.grad", "gate.grad"),
        ("unpack.valid", "gate.valid"),
        ("gate.grad", "model.grad_y"),
    ]
    diagram = WiringDiagram(
        [Port("r", (1,), f64), Port("y", (1,), f64)],
        [Port("u", (1,), f64), Port("weight", (1, 2), f64)],
        systems,
        wires,
    )
    return compose(diagram, systems, name=name)


def closed_loop(
    plant: DynamicalSystem,
    controller: DynamicalSystem,
    reference: DynamicalSystem,
    *,
    name: str = "loop",
) -> ComposedSystem:
    """Wire reference, controller and plant into a closed loop (no outer inputs).

    ``reference.r -> controller.r``, ``plant.y -> controller.y``, ``controller.u -> plant.u``.
    Outer outputs: ``r``, ``y``, ``u`` and every other output of the controller (e.g. its
    ``weight``). The plant must be a Moore machine (no feedthrough), or the loop is algebraic.
    """
    for arg, sys_ in (("plant", plant), ("controller", controller), ("reference", reference)):
        check_type(arg, sys_, DynamicalSystem)
    extra = [p for p in controller.outputs if p.name != "u"]
    outputs = [reference.output_port("r"), plant.output_port("y"), controller.output_port("u")]
    wires = [
        ("reference.r", "controller.r"),
        ("plant.y", "controller.y"),
        ("controller.u", "plant.u"),
        ("reference.r", "outer.r"),
        ("plant.y", "outer.y"),
        ("controller.u", "outer.u"),
    ] + [(f"controller.{p.name}", f"outer.{p.name}") for p in extra]
    systems = {"reference": reference, "controller": controller, "plant": plant}
    diagram = WiringDiagram([], outputs + extra, systems, wires)
    return compose(diagram, systems, name=name)


def tracking_error(y: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``|y_{t+1} - r_t|`` for ``t = 0..T-2`` (``r_t`` is the target of the next output).

    Args:
        y, r: ``[T]`` or ``[T, 1]`` outputs and references over time.

    Returns:
        ``[T - 1]``.
    """
    for arg, t in (("y", y), ("r", r)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{arg} must be a torch.Tensor, got {type(t).__name__}")
    # a [T, n] series with n > 1 (several outputs or runs) has no single tracking error
    if (
        any(t.ndim not in (1, 2) or t.shape[1:] not in ((), (1,)) for t in (y, r))
        or y.shape[0] != r.shape[0]
        or len(y) < 2
    ):
        raise ValueError(
            f"y and r must be [T] or [T, 1] with the same length T >= 2, got {tuple(y.shape)} "
            f"and {tuple(r.shape)}"
        )
    yy, rr = y.reshape(-1), r.reshape(-1)
    return (yy[1:] - rr[:-1]).abs()
