"""Open discrete-time dynamical systems with typed ports.

Spivak & Hosgood, "Deep neural networks as nested dynamical systems" (2021): a dynamical system
is a state space ``S`` with a *readout* ``S -> O`` (what the system shows on its output ports)
and an *update* ``S x I -> S`` (how it changes given what arrives on its input ports). In the
paper's language (polynomial functors) this is a map ``S y^S -> O y^I``: a Moore machine on the
interface ``O y^I``. Time is discrete: at tick ``t`` every system shows its outputs, the wires
carry them to inputs, and every system updates at once (synchronously).

Ports are *typed* interfaces: a name, a tensor shape (``None`` for a free dimension such as the
batch) and optionally a dtype. Wires may only join compatible ports (see
:mod:`neuronkit.theory.dynamical.wiring`).

Instantaneous feedthrough. A pure Moore machine's output depends on its state only. Some systems
(an artificial neuron that answers an input activation with an output activation *and* a
gradient for its inputs within the same tick) read some inputs to produce an output. Following
Spivak's "Learners' languages" (2021), such a system is a Moore machine on the internal-hom
interface ``[I y^I, O y^O]``: its readout at a state is a *function* from inputs to outputs. Here
a system declares, per output port, which input ports it reads (``feedthrough``); composition
evaluates these functions in dependency order and rejects instantaneous cycles (algebraic
loops). A system with no feedthrough is an ordinary Moore machine.

States are arbitrary (immutable) Python values: tensors, tuples, dicts of them. ``update`` must
return a new state and never modify the old one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from neuronkit.common import check_finite, check_number, check_type

__all__ = [
    "DynamicalSystem",
    "OpenSystem",
    "Port",
    "PrimitiveSystem",
    "Tick",
    "Trajectory",
    "constant",
    "delay",
    "function_system",
    "simulate",
]

State = Any
Values = Mapping[str, torch.Tensor]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(arg: str, name: Any) -> None:
    check_type(arg, name, str)
    if not _NAME.match(name):
        raise ValueError(f"{arg} must be an identifier such as 'x' or 'grad_y', got {name!r}")


@dataclass(frozen=True)
class Port:
    """A typed port: a name and the shape (and optionally dtype) of the tensors it carries.

    Args:
        name: identifier, unique among a system's inputs (or outputs).
        shape: tensor shape; ``None`` entries are free (e.g. the batch dimension ``(None, 4)``).
        dtype: required ``torch.dtype`` or ``None`` (any floating or integer dtype).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        if not isinstance(self.shape, tuple | list):
            raise TypeError(
                f"shape of port {self.name!r} must be a tuple of ints or None, got "
                f"{type(self.shape).__name__}"
            )
        shape = tuple(self.shape)
        for d in shape:
            if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
                raise ValueError(
                    f"shape of port {self.name!r} must hold non-negative ints or None, got {shape}"
                )
        object.__setattr__(self, "shape", shape)
        if self.dtype is not None and not isinstance(self.dtype, torch.dtype):
            raise TypeError(
                f"dtype of port {self.name!r} must be a torch.dtype or None, got "
                f"{type(self.dtype).__name__}"
            )

    def compatible(self, other: Port) -> bool:
        """Whether a wire may join this port and ``other``: same rank, equal fixed sizes, dtypes
        equal where both are given."""
        if len(self.shape) != len(other.shape):
            return False
        if any(a is not None and b is not None and a != b for a, b in zip(self.shape, other.shape)):
            return False
        return self.dtype is None or other.dtype is None or self.dtype == other.dtype

    def describe(self) -> str:
        """``'name: [4, *] float64'`` style description."""
        dims = ", ".join("*" if d is None else str(d) for d in self.shape)
        dtype = "" if self.dtype is None else f" {str(self.dtype).replace('torch.', '')}"
        return f"{self.name}: [{dims}]{dtype}"

    def check_value(self, value: Any, where: str) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``value`` is a tensor fitting this port."""
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{where} must be a torch.Tensor for port {self.describe()}, got "
                f"{type(value).__name__}"
            )
        if value.ndim != len(self.shape) or any(
            d is not None and d != g for d, g in zip(self.shape, value.shape)
        ):
            raise ValueError(
                f"{where} must fit port {self.describe()}, got shape {tuple(value.shape)}"
            )
        if self.dtype is not None and value.dtype != self.dtype:
            raise ValueError(
                f"{where} must have dtype {self.dtype} for port {self.name!r}, got {value.dtype}"
            )


def _ports(arg: str, ports: Any) -> tuple[Port, ...]:
    if isinstance(ports, Port) or not isinstance(ports, Iterable):
        raise TypeError(f"{arg} must be a sequence of Port, got {type(ports).__name__}")
    out = tuple(ports)
    for p in out:
        if not isinstance(p, Port):
            raise TypeError(f"{arg} must hold Port objects, got {type(p).__name__}")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{arg} must have distinct port names, got {names}")
    return out


class Tick(ABC):
    """One tick of a system at a fixed state: lazily evaluated outputs, then the next state.

    ``pull(port)`` returns the value arriving on an input port at this tick (it is only called
    for ports the system actually needs). Composition uses ticks to evaluate outputs in
    dependency order; users normally call :meth:`DynamicalSystem.step` or :func:`simulate`.
    """

    @abstractmethod
    def output(self, port: str) -> torch.Tensor:
        """The value shown on output ``port`` at this tick."""

    @abstractmethod
    def next_state(self) -> State:
        """The state after this tick (pulls every input)."""


class DynamicalSystem(ABC):
    """An open discrete-time dynamical system with typed input and output ports.

    Subclass :class:`PrimitiveSystem` (or use :class:`OpenSystem`) for a system given by its
    readout and update; compose systems with
    :func:`neuronkit.theory.dynamical.wiring.compose`.

    Attributes:
        name: a label used in error messages.
        inputs, outputs: the typed ports.
        feedthrough: for each output port, the input ports its readout reads within the same
            tick (empty for a Moore output).
    """

    def __init__(
        self,
        inputs: Sequence[Port],
        outputs: Sequence[Port],
        feedthrough: Mapping[str, Iterable[str]] | None = None,
        name: str = "system",
    ) -> None:
        check_type("name", name, str)
        self.name = name
        self.inputs = _ports("inputs", inputs)
        self.outputs = _ports("outputs", outputs)
        in_names = {p.name for p in self.inputs}
        out_names = {p.name for p in self.outputs}
        ft: dict[str, frozenset[str]] = {p.name: frozenset() for p in self.outputs}
        if feedthrough is not None:
            if not isinstance(feedthrough, Mapping):
                raise TypeError(
                    f"feedthrough must map output port names to input port names, got "
                    f"{type(feedthrough).__name__}"
                )
            for out, deps in feedthrough.items():
                if out not in out_names:
                    raise ValueError(
                        f"feedthrough of {name!r} names unknown output port {out!r}; outputs "
                        f"are {sorted(out_names)}"
                    )
                if isinstance(deps, str):
                    raise TypeError(
                        f"feedthrough[{out!r}] must be a collection of input names, got the "
                        f"string {deps!r}"
                    )
                deps = frozenset(deps)
                unknown = deps - in_names
                if unknown:
                    raise ValueError(
                        f"feedthrough[{out!r}] of {name!r} names unknown input ports "
                        f"{sorted(unknown)}; inputs are {sorted(in_names)}"
                    )
                ft[out] = deps
        self.feedthrough: dict[str, frozenset[str]] = ft

    # -- ports -----------------------------------------------------------------------------
    def input_port(self, name: str) -> Port:
        """The input port ``name`` (``ValueError`` naming the known ports if absent)."""
        for p in self.inputs:
            if p.name == name:
                return p
        raise ValueError(
            f"{self.name!r} has no input port {name!r}; inputs are {[p.name for p in self.inputs]}"
        )

    def output_port(self, name: str) -> Port:
        """The output port ``name`` (``ValueError`` naming the known ports if absent)."""
        for p in self.outputs:
            if p.name == name:
                return p
        raise ValueError(
            f"{self.name!r} has no output port {name!r}; outputs are "
            f"{[p.name for p in self.outputs]}"
        )

    def interface(self) -> str:
        """A one-line description of the ports, e.g. ``(x: [*, 4]) -> (y: [*, 2])``."""
        ins = ", ".join(p.describe() for p in self.inputs)
        outs = ", ".join(p.describe() for p in self.outputs)
        return f"({ins}) -> ({outs})"

    # -- dynamics --------------------------------------------------------------------------
    @abstractmethod
    def initial_state(self) -> State:
        """The state at tick 0."""

    @abstractmethod
    def tick(self, state: State, pull: Callable[[str], torch.Tensor]) -> Tick:
        """Open one tick at ``state``; ``pull(port)`` supplies input values on demand."""

    def step(self, state: State, inputs: Values) -> tuple[dict[str, torch.Tensor], State]:
        """Run one tick: ``(outputs, next_state)`` given every input port's value.

        Args:
            state: the current state (not modified).
            inputs: a value for each input port.
        """
        if not isinstance(inputs, Mapping):
            raise TypeError(f"inputs must be a mapping port -> tensor, got {type(inputs).__name__}")
        names = {p.name for p in self.inputs}
        missing = names - set(inputs)
        extra = set(inputs) - names
        if missing or extra:
            raise ValueError(
                f"inputs of {self.name!r} must name exactly its input ports {sorted(names)}, "
                f"missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        for p in self.inputs:
            p.check_value(inputs[p.name], f"inputs[{p.name!r}] of {self.name!r}")
        t = self.tick(state, lambda port: inputs[port])
        outs = {p.name: t.output(p.name) for p in self.outputs}
        return outs, t.next_state()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.interface()})"


class _PrimitiveTick(Tick):
    def __init__(
        self, system: PrimitiveSystem, state: State, pull: Callable[[str], torch.Tensor]
    ) -> None:
        self.system = system
        self.state = state
        self.pull = pull
        self.cache: dict[str, torch.Tensor] = {}

    def output(self, port: str) -> torch.Tensor:
        value = self.cache.get(port)
        if value is None:
            system = self.system
            deps = system.feedthrough[port]
            value = system.readout(self.state, port, {d: self.pull(d) for d in deps})
            system._out_ports[port].check_value(value, f"output {port!r} of {system.name!r}")
            self.cache[port] = value
        return value

    def next_state(self) -> State:
        return self.system.update(
            self.state, {p.name: self.pull(p.name) for p in self.system.inputs}
        )


class PrimitiveSystem(DynamicalSystem):
    """A system given directly by ``readout`` and ``update`` (subclass and implement them).

    ``readout(state, port, inputs)`` returns output ``port``'s value, where ``inputs`` holds
    exactly the input ports in ``feedthrough[port]`` (none for a Moore output).
    ``update(state, inputs)`` returns the next state from every input's value.
    """

    def __init__(
        self,
        inputs: Sequence[Port],
        outputs: Sequence[Port],
        feedthrough: Mapping[str, Iterable[str]] | None = None,
        name: str = "system",
    ) -> None:
        super().__init__(inputs, outputs, feedthrough, name)
        self._out_ports = {p.name: p for p in self.outputs}

    @abstractmethod
    def readout(self, state: State, port: str, inputs: Values) -> torch.Tensor:
        """Output ``port`` at ``state`` (``inputs``: the feedthrough inputs of ``port``)."""

    @abstractmethod
    def update(self, state: State, inputs: Values) -> State:
        """The next state given every input port's value (must not modify ``state``)."""

    def tick(self, state: State, pull: Callable[[str], torch.Tensor]) -> Tick:
        return _PrimitiveTick(self, state, pull)


class OpenSystem(PrimitiveSystem):
    """A primitive system built from plain functions.

    Args:
        inputs, outputs: typed ports.
        initial_state: the state at tick 0 (treated as immutable).
        update: ``update(state, inputs) -> next_state``; ``None`` for a stateless system
            (the state never changes).
        readout: ``{port: fn(state, inputs) -> Tensor}`` for every output port, ``inputs``
            holding the port's feedthrough inputs.
        feedthrough: ``{port: [input names]}`` read by each output within the tick.
        name: a label for messages.

    Example (a leaky integrator, a Moore machine)::

        leak = OpenSystem(
            [Port("u", (1,))], [Port("y", (1,))],
            initial_state=torch.zeros(1),
            update=lambda s, i: 0.9 * s + i["u"],
            readout={"y": lambda s, i: s},
        )
    """

    def __init__(
        self,
        inputs: Sequence[Port],
        outputs: Sequence[Port],
        *,
        initial_state: State = None,
        update: Callable[[State, Values], State] | None = None,
        readout: Mapping[str, Callable[[State, Values], torch.Tensor]],
        feedthrough: Mapping[str, Iterable[str]] | None = None,
        name: str = "system",
    ) -> None:
        super().__init__(inputs, outputs, feedthrough, name)
        if update is not None and not callable(update):
            raise TypeError(f"update must be callable or None, got {type(update).__name__}")
        if not isinstance(readout, Mapping):
            raise TypeError(
                f"readout must map each output port to a function, got {type(readout).__name__}"
            )
        outs = {p.name for p in self.outputs}
        if set(readout) != outs:
            raise ValueError(
                f"readout of {name!r} must give a function for exactly the outputs "
                f"{sorted(outs)}, got {sorted(readout)}"
            )
        for k, fn in readout.items():
            if not callable(fn):
                raise TypeError(f"readout[{k!r}] must be callable, got {type(fn).__name__}")
        self._initial = initial_state
        self._update = update
        self._readout = dict(readout)

    def initial_state(self) -> State:
        return self._initial

    def readout(self, state: State, port: str, inputs: Values) -> torch.Tensor:
        return self._readout[port](state, inputs)

    def update(self, state: State, inputs: Values) -> State:
        return state if self._update is None else self._update(state, inputs)


def function_system(
    inputs: Sequence[Port],
    outputs: Sequence[Port],
    fn: Callable[[Values], Mapping[str, torch.Tensor]],
    *,
    feedthrough: Mapping[str, Iterable[str]] | None = None,
    name: str = "function",
) -> OpenSystem:
    """A stateless system ``outputs = fn(inputs)`` computed within the tick.

    Every output reads every input unless ``feedthrough`` says otherwise (then ``fn`` receives
    only the inputs it may read for the output being computed, and must return that output).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    ins = _ports("inputs", inputs)
    outs = _ports("outputs", outputs)
    ft = feedthrough if feedthrough is not None else {p.name: [q.name for q in ins] for p in outs}

    def make(port: str) -> Callable[[State, Values], torch.Tensor]:
        def read(_state: State, values: Values) -> torch.Tensor:
            result = fn(values)
            if not isinstance(result, Mapping) or port not in result:
                raise ValueError(
                    f"fn of {name!r} must return a mapping holding output {port!r}, got "
                    f"{type(result).__name__}"
                )
            return result[port]

        return read

    return OpenSystem(
        ins, outs, readout={p.name: make(p.name) for p in outs}, feedthrough=ft, name=name
    )


def delay(port: Port, initial: torch.Tensor, *, name: str = "delay") -> OpenSystem:
    """The unit delay (a Moore machine): input ``x``, output ``y``, ``y_t = x_{t-1}``.

    Args:
        port: the type of the carried value (its name is ignored: the ports are ``x``, ``y``).
        initial: the output at tick 0, fitting ``port``.
    """
    check_type("port", port, Port)
    ports_in = Port("x", port.shape, port.dtype)
    ports_out = Port("y", port.shape, port.dtype)
    ports_out.check_value(initial, "initial")
    return OpenSystem(
        [ports_in],
        [ports_out],
        initial_state=initial.detach().clone(),
        update=lambda _s, i: i["x"],
        readout={"y": lambda s, _i: s},
        name=name,
    )


def constant(port: Port, value: torch.Tensor, *, name: str = "constant") -> OpenSystem:
    """A system with no inputs and one output ``port`` always showing ``value``."""
    check_type("port", port, Port)
    port.check_value(value, "value")
    value = value.detach().clone()
    return OpenSystem([], [port], readout={port.name: lambda _s, _i: value}, name=name)


@dataclass
class Trajectory:
    """What :func:`simulate` returns.

    Attributes:
        outputs: for each output port, the list of values at ticks ``0..steps-1`` (copies:
            editing one changes neither the system nor the inputs).
        final_state: the state after the last tick.
        records: what ``record(t, state)`` returned at each tick (before the update).
    """

    outputs: dict[str, list[torch.Tensor]]
    final_state: State
    records: list[Any] = field(default_factory=list)

    def stack(self, port: str) -> torch.Tensor:
        """Output ``port`` over time, ``[steps, *shape]`` (the values must share a shape).

        A trajectory of 0 steps has no value to take the shape from: ``ValueError``."""
        if port not in self.outputs:
            raise ValueError(f"port must be one of {sorted(self.outputs)}, got {port!r}")
        values = self.outputs[port]
        if not values:  # torch.stack's bare "stack expects a non-empty TensorList"
            raise ValueError(
                f"the trajectory holds no values of port {port!r} to stack (it ran 0 steps)"
            )
        return torch.stack(values)


def simulate(
    system: DynamicalSystem,
    steps: int,
    inputs: Mapping[str, torch.Tensor] | Callable[[int], Values] | None = None,
    *,
    state: State = None,
    record: Callable[[int, State], Any] | None = None,
) -> Trajectory:
    """Run ``system`` for ``steps`` ticks.

    Args:
        system: any :class:`DynamicalSystem` (primitive or composed).
        steps: number of ticks.
        inputs: values for the input ports: a mapping ``port -> Tensor [steps, *port.shape]``
            (row ``t`` at tick ``t``) or a function ``t -> {port: value}``; ``None`` when the
            system has no inputs. Values must be finite.
        state: the starting state (default ``system.initial_state()``).
        record: optional ``record(t, state)`` called at each tick before the update (e.g. to
            copy out weights); its results are in ``Trajectory.records``.

    Returns:
        :class:`Trajectory` with every output at every tick and the final state.
    """
    check_type("system", system, DynamicalSystem)
    check_number("steps", steps, ge=0, integer=True)
    if record is not None and not callable(record):
        raise TypeError(f"record must be callable or None, got {type(record).__name__}")
    if inputs is None:
        if system.inputs:
            raise ValueError(
                f"inputs must supply the input ports {[p.name for p in system.inputs]} of "
                f"{system.name!r}, got None"
            )

        def source(t: int) -> Values:
            return {}

    elif isinstance(inputs, Mapping):
        for p in system.inputs:
            if p.name not in inputs:
                raise ValueError(f"inputs must hold port {p.name!r} of {system.name!r}")
            seq = inputs[p.name]
            if not isinstance(seq, torch.Tensor) or seq.ndim < 1 or seq.shape[0] < steps:
                raise ValueError(
                    f"inputs[{p.name!r}] must be a tensor [steps={steps}, *shape], got "
                    f"{getattr(seq, 'shape', type(seq).__name__)}"
                )
            check_finite(f"inputs[{p.name!r}]", seq)
        table = inputs

        def source(t: int) -> Values:
            return {p.name: table[p.name][t] for p in system.inputs}

    elif callable(inputs):
        fn = inputs

        def source(t: int) -> Values:
            values = fn(t)
            if not isinstance(values, Mapping):
                raise TypeError(
                    f"inputs({t}) must return a mapping port -> tensor, got {type(values).__name__}"
                )
            for k, v in values.items():
                check_finite(f"inputs({t})[{k!r}]", v)
            return values

    else:
        raise TypeError(
            f"inputs must be a mapping, a function of t or None, got {type(inputs).__name__}"
        )
    current = system.initial_state() if state is None else state
    outputs: dict[str, list[torch.Tensor]] = {p.name: [] for p in system.outputs}
    records: list[Any] = []
    for t in range(steps):
        if record is not None:
            records.append(record(t, current))
        outs, current = system.step(current, source(t))
        for k, v in outs.items():  # copies: a readout may return its state, a constant or a
            outputs[k].append(v.clone())  # view of the inputs, which edits would change
    return Trajectory(outputs=outputs, final_state=current, records=records)
