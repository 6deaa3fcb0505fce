"""Wiring diagrams: composing and nesting open dynamical systems.

Spivak & Hosgood, "Deep neural networks as nested dynamical systems" (2021): a wiring diagram
has an outer box and inner boxes, each with typed input and output ports; every inner input
and every outer output is fed by exactly one wire, coming from an inner output or an outer
input (a wire may fan out to several targets; an output may go unused). Filling the inner boxes
with systems gives a system on the outer box (:func:`compose`): its state is the tuple of the
inner states, its outputs are read along the wires, and at each tick every inner system updates
on what the wires bring it. Because the result is again a system, it can fill a box of another
diagram: systems *nest*. Substituting a diagram into a box of another
(:meth:`WiringDiagram.substitute`) is the operad composition; composing the flattened diagram
gives the same dynamics as nesting the composed systems.

Endpoints are written ``"box.port"``; the outer box is ``"outer"`` (``"outer.x"`` as a source
is the outer input ``x``, as a target the outer output ``x``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from neuronkit.common import check_type

from .systems import DynamicalSystem, Port, State, Tick, _ports

__all__ = [
    "OUTER",
    "AlgebraicLoopError",
    "Box",
    "ComposedSystem",
    "WiringDiagram",
    "compose",
]

OUTER = "outer"
_BOX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
Endpoint = tuple[str, str]  # (box name or OUTER, port name)


class AlgebraicLoopError(ValueError):
    """A cycle of instantaneous (feedthrough) dependencies: no evaluation order exists.

    Break it with a Moore system, e.g. :func:`neuronkit.theory.dynamical.systems.delay`.
    """


@dataclass(frozen=True)
class Box:
    """An inner box of a wiring diagram: a name and typed input and output ports."""

    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    def __post_init__(self) -> None:
        check_type("name", self.name, str)
        if self.name == OUTER or not _BOX.match(self.name):
            raise ValueError(
                f"box name must be an identifier (or 'a/b' path) other than {OUTER!r}, got "
                f"{self.name!r}"
            )
        object.__setattr__(self, "inputs", _ports(f"inputs of box {self.name!r}", self.inputs))
        object.__setattr__(self, "outputs", _ports(f"outputs of box {self.name!r}", self.outputs))

    @classmethod
    def of(cls, name: str, system: DynamicalSystem) -> Box:
        """The box with ``system``'s interface."""
        check_type("system", system, DynamicalSystem)
        return cls(name, system.inputs, system.outputs)


def _parse(arg: str, endpoint: Any) -> Endpoint:
    if isinstance(endpoint, tuple) and len(endpoint) == 2:
        box, port = endpoint
    elif isinstance(endpoint, str) and "." in endpoint:
        box, port = endpoint.rsplit(".", 1)
    else:
        raise ValueError(
            f"{arg} must be 'box.port' (or 'outer.port') or a (box, port) pair, got "
            f"{endpoint!r:.80}"
        )
    if not isinstance(box, str) or not isinstance(port, str):
        raise TypeError(f"{arg} must name box and port by strings, got {endpoint!r:.80}")
    return box, port


def _fmt(e: Endpoint) -> str:
    return f"{e[0]}.{e[1]}"


class WiringDiagram:
    """A wiring diagram: outer ports, inner boxes and wires, type-checked on construction.

    Args:
        inputs, outputs: the outer box's ports.
        boxes: the inner boxes: :class:`Box` objects, or a mapping ``name -> Box | system``
            (a system stands for its interface).
        wires: ``(source, target)`` pairs of endpoints ``"box.port"`` / ``"outer.port"``.
            Sources are outer inputs or inner outputs; targets inner inputs or outer outputs.

    Raises:
        ValueError: unknown boxes or ports, incompatible port types on a wire, a target fed
            twice or not at all.

    Example (two systems in series)::

        d = WiringDiagram(
            inputs=[Port("u", (1,))], outputs=[Port("y", (1,))],
            boxes={"f": f, "g": g},
            wires=[("outer.u", "f.x"), ("f.y", "g.x"), ("g.y", "outer.y")],
        )
        fg = compose(d, {"f": f, "g": g})
    """

    def __init__(
        self,
        inputs: Sequence[Port],
        outputs: Sequence[Port],
        boxes: Mapping[str, Box | DynamicalSystem] | Iterable[Box],
        wires: Iterable[tuple[Any, Any]],
    ) -> None:
        self.inputs = _ports("inputs", inputs)
        self.outputs = _ports("outputs", outputs)
        box_list: list[Box] = []
        if isinstance(boxes, Mapping):
            for name, b in boxes.items():
                if isinstance(b, Box):
                    if b.name != name:
                        raise ValueError(f"boxes[{name!r}] is a Box named {b.name!r}")
                    box_list.append(b)
                elif isinstance(b, DynamicalSystem):
                    box_list.append(Box.of(name, b))
                else:
                    raise TypeError(
                        f"boxes[{name!r}] must be a Box or a DynamicalSystem, got "
                        f"{type(b).__name__}"
                    )
        else:
            for b in boxes:
                if not isinstance(b, Box):
                    raise TypeError(f"boxes must hold Box objects, got {type(b).__name__}")
                box_list.append(b)
        names = [b.name for b in box_list]
        if len(set(names)) != len(names):
            raise ValueError(f"boxes must have distinct names, got {names}")
        self.boxes: dict[str, Box] = {b.name: b for b in box_list}

        feeds: dict[Endpoint, Endpoint] = {}
        wire_list: list[tuple[Endpoint, Endpoint]] = []
        for i, wire in enumerate(wires):
            if not isinstance(wire, tuple | list) or len(wire) != 2:
                raise ValueError(f"wires[{i}] must be a (source, target) pair, got {wire!r:.80}")
            src = _parse(f"source of wires[{i}]", wire[0])
            dst = _parse(f"target of wires[{i}]", wire[1])
            sp = self._source_port(src)
            tp = self._target_port(dst)
            if not sp.compatible(tp):
                raise ValueError(
                    f"wire {_fmt(src)} -> {_fmt(dst)} joins mismatched ports: source "
                    f"{sp.describe()} cannot feed target {tp.describe()}"
                )
            if dst in feeds:
                raise ValueError(
                    f"target {_fmt(dst)} is fed twice (from {_fmt(feeds[dst])} and "
                    f"{_fmt(src)}); each input takes exactly one wire"
                )
            feeds[dst] = src
            wire_list.append((src, dst))
        unfed = [
            f"{b.name}.{p.name}"
            for b in box_list
            for p in b.inputs
            if (b.name, p.name) not in feeds
        ] + [f"{OUTER}.{p.name}" for p in self.outputs if (OUTER, p.name) not in feeds]
        if unfed:
            raise ValueError(
                f"every inner input and outer output needs a wire; unfed targets: {unfed}"
            )
        self.wires: tuple[tuple[Endpoint, Endpoint], ...] = tuple(wire_list)
        self.feeds: dict[Endpoint, Endpoint] = feeds

    # -- port lookup -----------------------------------------------------------------------
    def _source_port(self, e: Endpoint) -> Port:
        box, port = e
        if box == OUTER:
            ports, what = self.inputs, "outer inputs"
        elif box in self.boxes:
            ports, what = self.boxes[box].outputs, f"outputs of box {box!r}"
        else:
            raise ValueError(
                f"wire source {_fmt(e)} names unknown box {box!r}; boxes are "
                f"{sorted(self.boxes)} and {OUTER!r}"
            )
        for p in ports:
            if p.name == port:
                return p
        raise ValueError(
            f"wire source {_fmt(e)} names unknown port {port!r}; {what} are "
            f"{[p.name for p in ports]}"
        )

    def _target_port(self, e: Endpoint) -> Port:
        box, port = e
        if box == OUTER:
            ports, what = self.outputs, "outer outputs"
        elif box in self.boxes:
            ports, what = self.boxes[box].inputs, f"inputs of box {box!r}"
        else:
            raise ValueError(
                f"wire target {_fmt(e)} names unknown box {box!r}; boxes are "
                f"{sorted(self.boxes)} and {OUTER!r}"
            )
        for p in ports:
            if p.name == port:
                return p
        raise ValueError(
            f"wire target {_fmt(e)} names unknown port {port!r}; {what} are "
            f"{[p.name for p in ports]}"
        )

    # -- operad composition ----------------------------------------------------------------
    def substitute(self, box: str, inner: WiringDiagram) -> WiringDiagram:
        """Plug the diagram ``inner`` into the box ``box`` (operad composition).

        ``inner``'s outer ports must match ``box``'s ports (same names, compatible types).
        Inner boxes are renamed ``"<box>/<inner box>"``. Composing the result with the inner
        and outer systems equals composing ``inner`` first and nesting it in ``box``.
        """
        check_type("inner", inner, WiringDiagram)
        if box not in self.boxes:
            raise ValueError(f"box must be one of {sorted(self.boxes)}, got {box!r}")
        target = self.boxes[box]
        _check_interface(
            f"diagram substituted into box {box!r}", target, inner.inputs, inner.outputs
        )

        def rename(e: Endpoint) -> Endpoint:
            return e if e[0] == OUTER else (f"{box}/{e[0]}", e[1])

        def resolve_source(e: Endpoint, seen: frozenset[str] = frozenset()) -> Endpoint:
            # an inner-diagram source, expressed in the flattened diagram
            if e[0] != OUTER:
                return rename(e)
            if e[1] in seen:
                raise AlgebraicLoopError(
                    f"substituting into box {box!r} closes a loop of bare wires through its "
                    f"input {e[1]!r}"
                )
            outside = self.feeds[(box, e[1])]  # inner outer input p = what feeds box.p
            if outside[0] == box:  # fed back from the box's own output q
                return resolve_source(inner.feeds[(OUTER, outside[1])], seen | {e[1]})
            return outside

        boxes = {name: b for name, b in self.boxes.items() if name != box}
        for b in inner.boxes.values():
            new = Box(f"{box}/{b.name}", b.inputs, b.outputs)
            if new.name in boxes:
                raise ValueError(f"substitution would create box name {new.name!r} twice")
            boxes[new.name] = new
        wires: list[tuple[Endpoint, Endpoint]] = []
        for src, dst in self.wires:
            if dst[0] == box:
                continue  # replaced by the inner wiring
            if src[0] == box:  # the value of box.q is what feeds inner outer output q
                src = resolve_source(inner.feeds[(OUTER, src[1])])
            wires.append((src, dst))
        for src, dst in inner.wires:
            if dst[0] == OUTER:
                continue  # consumed above through inner.feeds
            wires.append((resolve_source(src), rename(dst)))
        return WiringDiagram(self.inputs, self.outputs, boxes, wires)

    def __repr__(self) -> str:
        return (
            f"WiringDiagram({len(self.boxes)} boxes, {len(self.wires)} wires, "
            f"inputs={[p.name for p in self.inputs]}, outputs={[p.name for p in self.outputs]})"
        )


def _check_interface(what: str, box: Box, inputs: Sequence[Port], outputs: Sequence[Port]) -> None:
    for kind, want, got in (("inputs", box.inputs, inputs), ("outputs", box.outputs, outputs)):
        want_names = [p.name for p in want]
        got_map = {p.name: p for p in got}
        if sorted(want_names) != sorted(got_map):
            raise ValueError(
                f"{what} must have {kind} {sorted(want_names)} like box {box.name!r}, got "
                f"{sorted(got_map)}"
            )
        for p in want:
            if not p.compatible(got_map[p.name]):
                raise ValueError(
                    f"{what}: port {got_map[p.name].describe()} does not fit box "
                    f"{box.name!r}'s port {p.describe()}"
                )


class _ComposedTick(Tick):
    def __init__(
        self, system: ComposedSystem, state: State, pull: Callable[[str], torch.Tensor]
    ) -> None:
        self.system = system
        self.pull = pull
        self.values: dict[Endpoint, torch.Tensor] = {}
        self.ticks: dict[str, Tick] = {
            name: sub.tick(state[name], self._puller(name)) for name, sub in system.systems.items()
        }

    def _puller(self, box: str) -> Callable[[str], torch.Tensor]:
        feeds = self.system.diagram.feeds

        def pull(port: str) -> torch.Tensor:
            return self.value(feeds[(box, port)])

        return pull

    def value(self, source: Endpoint) -> torch.Tensor:
        v = self.values.get(source)
        if v is None:
            box, port = source
            v = self.pull(port) if box == OUTER else self.ticks[box].output(port)
            self.values[source] = v
        return v

    def output(self, port: str) -> torch.Tensor:
        return self.value(self.system.diagram.feeds[(OUTER, port)])

    def next_state(self) -> State:
        return {name: t.next_state() for name, t in self.ticks.items()}


class ComposedSystem(DynamicalSystem):
    """The system on a wiring diagram's outer box, its inner boxes filled with systems.

    Its state is a dict ``{box name: inner state}`` (nested for nested systems). Build it with
    :func:`compose`.
    """

    def __init__(
        self,
        diagram: WiringDiagram,
        systems: Mapping[str, DynamicalSystem],
        name: str = "composite",
    ) -> None:
        check_type("diagram", diagram, WiringDiagram)
        if not isinstance(systems, Mapping):
            raise TypeError(f"systems must map box names to systems, got {type(systems).__name__}")
        missing = set(diagram.boxes) - set(systems)
        extra = set(systems) - set(diagram.boxes)
        if missing or extra:
            raise ValueError(
                f"systems must fill exactly the boxes {sorted(diagram.boxes)}; missing "
                f"{sorted(missing)}, unknown {sorted(extra)}"
            )
        for box_name, sub in systems.items():
            if not isinstance(sub, DynamicalSystem):
                raise TypeError(
                    f"systems[{box_name!r}] must be a DynamicalSystem, got {type(sub).__name__}"
                )
            _check_interface(
                f"system {sub.name!r} filling box {box_name!r}",
                diagram.boxes[box_name],
                sub.inputs,
                sub.outputs,
            )
        self.diagram = diagram
        self.systems: dict[str, DynamicalSystem] = {k: systems[k] for k in diagram.boxes}
        feedthrough = _outer_feedthrough(diagram, self.systems)
        super().__init__(diagram.inputs, diagram.outputs, feedthrough, name)

    def initial_state(self) -> dict[str, State]:
        return {name: sub.initial_state() for name, sub in self.systems.items()}

    def tick(self, state: State, pull: Callable[[str], torch.Tensor]) -> Tick:
        if not isinstance(state, Mapping) or set(state) != set(self.systems):
            raise ValueError(
                f"state of {self.name!r} must be a dict with keys {sorted(self.systems)}, got "
                f"{sorted(state) if isinstance(state, Mapping) else type(state).__name__}"
            )
        return _ComposedTick(self, state, pull)


def _outer_feedthrough(
    diagram: WiringDiagram, systems: Mapping[str, DynamicalSystem]
) -> dict[str, set[str]]:
    """Instantaneous dependencies of outer outputs on outer inputs; raise on cycles."""
    # node: ("src", endpoint) for wire sources. A box output depends on the sources feeding
    # the box inputs in its feedthrough.
    deps: dict[Endpoint, list[Endpoint]] = {}
    for box, sub in systems.items():
        for out, ins in sub.feedthrough.items():
            deps[(box, out)] = [diagram.feeds[(box, i)] for i in sorted(ins)]
    memo: dict[Endpoint, frozenset[str]] = {}
    visiting: list[Endpoint] = []

    def reach(e: Endpoint) -> frozenset[str]:
        if e[0] == OUTER:
            return frozenset([e[1]])
        if e in memo:
            return memo[e]
        if e in visiting:
            loop = [*visiting[visiting.index(e) :], e]
            raise AlgebraicLoopError(
                "instantaneous cycle (algebraic loop) through "
                + " -> ".join(_fmt(x) for x in reversed(loop))
                + "; insert a Moore system (e.g. delay) on one of these wires"
            )
        visiting.append(e)
        found: frozenset[str] = frozenset()
        for d in deps.get(e, []):
            found |= reach(d)
        visiting.pop()
        memo[e] = found
        return found

    for box, sub in systems.items():  # check every box output, not only those reaching out
        for out in sub.feedthrough:
            reach((box, out))
    return {p.name: set(reach(diagram.feeds[(OUTER, p.name)])) for p in diagram.outputs}


def compose(
    diagram: WiringDiagram,
    systems: Mapping[str, DynamicalSystem],
    *,
    name: str = "composite",
) -> ComposedSystem:
    """Fill ``diagram``'s boxes with ``systems``: a system on the outer box.

    Args:
        diagram: the wiring diagram.
        systems: one system per inner box, with the box's interface.
        name: a label for messages.

    Raises:
        ValueError: a box left empty, an unknown box, a system whose ports do not match its box.
        AlgebraicLoopError: a cycle of instantaneous dependencies.
    """
    return ComposedSystem(diagram, systems, name=name)
