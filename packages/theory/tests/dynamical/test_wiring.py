"""Wiring diagrams: composition, nesting, substitution, type and loop checks."""

import pytest
import torch

from neuronkit.theory.dynamical.systems import OpenSystem, Port, delay, function_system, simulate
from neuronkit.theory.dynamical.wiring import AlgebraicLoopError, Box, WiringDiagram, compose


def gain(k: float, name: str = "gain") -> OpenSystem:
    return function_system(
        [Port("x", (1,))], [Port("y", (1,))], lambda i: {"y": k * i["x"]}, name=name
    )


def integrator(decay: float, name: str = "int") -> OpenSystem:
    return OpenSystem(
        [Port("x", (1,))],
        [Port("y", (1,))],
        initial_state=torch.zeros(1),
        update=lambda s, i: decay * s + i["x"],
        readout={"y": lambda s, _i: s},
        name=name,
    )


def series_diagram() -> WiringDiagram:
    box = Box("f", (Port("x", (1,)),), (Port("y", (1,)),))
    return WiringDiagram(
        [Port("x", (1,))],
        [Port("y", (1,))],
        [box, Box("g", box.inputs, box.outputs)],
        [("outer.x", "f.x"), ("f.y", "g.x"), ("g.y", "outer.y")],
    )


def test_series_composition_and_feedthrough() -> None:
    fg = compose(series_diagram(), {"f": gain(2.0), "g": gain(3.0)})
    assert fg.feedthrough == {"y": {"x"}}
    out = simulate(fg, 3, {"x": torch.ones(3, 1)}).stack("y")
    assert torch.equal(out, torch.full((3, 1), 6.0))
    moore = compose(series_diagram(), {"f": integrator(0.5), "g": gain(3.0)})
    assert moore.feedthrough == {"y": set()}


def test_type_errors_on_wires() -> None:
    f, g = (
        gain(1.0),
        function_system([Port("x", (2,))], [Port("y", (2,))], lambda i: dict(y=i["x"])),
    )
    with pytest.raises(ValueError, match="mismatched ports"):
        WiringDiagram(
            [],
            [],
            {"f": f, "g": g, "c": delay(Port("v", (1,)), torch.zeros(1))},
            [("c.y", "f.x"), ("f.y", "g.x"), ("g.y", "c.x")],
        )
    with pytest.raises(ValueError, match=r"unknown port 'z'.*outputs of box 'f' are \['y'\]"):
        WiringDiagram([Port("x", (1,))], [], {"f": f}, [("outer.x", "f.x"), ("f.z", "f.x")])
    with pytest.raises(ValueError, match="unknown box 'h'"):
        WiringDiagram([Port("x", (1,))], [], {"f": f}, [("h.y", "f.x")])
    with pytest.raises(ValueError, match="fed twice"):
        WiringDiagram([Port("x", (1,))], [], {"f": f}, [("outer.x", "f.x"), ("f.y", "f.x")])
    with pytest.raises(ValueError, match=r"unfed targets: \['f\.x'\]"):
        WiringDiagram([Port("x", (1,))], [], {"f": f}, [])
    with pytest.raises(ValueError, match=r"'box\.port'"):
        WiringDiagram([Port("x", (1,))], [], {"f": f}, [("outer", "f.x")])
    with pytest.raises(ValueError, match="other than 'outer'"):
        Box("outer", (), ())


def test_filling_a_box_with_the_wrong_system() -> None:
    with pytest.raises(ValueError, match="fill exactly the boxes"):
        compose(series_diagram(), {"f": gain(1.0)})
    wide = function_system([Port("x", (2,))], [Port("y", (1,))], lambda i: {"y": i["x"][:1]})
    with pytest.raises(ValueError, match="does not fit box 'f'"):
        compose(series_diagram(), {"f": wide, "g": gain(1.0)})
    other = function_system([Port("u", (1,))], [Port("y", (1,))], lambda i: {"y": i["u"]})
    with pytest.raises(ValueError, match="must have inputs \\['x'\\]"):
        compose(series_diagram(), {"f": other, "g": gain(1.0)})


def feedback_diagram(with_delay: bool) -> tuple[WiringDiagram, dict]:
    add = function_system(
        [Port("a", (1,)), Port("b", (1,))], [Port("s", (1,))], lambda i: {"s": i["a"] + i["b"]}
    )
    systems = {"add": add, "k": gain(0.5)}
    wires = [("outer.x", "add.a"), ("add.s", "k.x"), ("add.s", "outer.y")]
    if with_delay:
        systems["d"] = delay(Port("v", (1,)), torch.zeros(1))
        wires += [("k.y", "d.x"), ("d.y", "add.b")]
    else:
        wires += [("k.y", "add.b")]
    return WiringDiagram([Port("x", (1,))], [Port("y", (1,))], systems, wires), systems


def test_algebraic_loop_is_rejected_and_a_delay_breaks_it() -> None:
    diagram, systems = feedback_diagram(with_delay=False)
    with pytest.raises(AlgebraicLoopError, match="algebraic loop"):
        compose(diagram, systems)
    diagram, systems = feedback_diagram(with_delay=True)
    loop = compose(diagram, systems)
    y = simulate(loop, 6, {"x": torch.ones(6, 1)}).stack("y")[:, 0]
    expected, prev = [], 0.0
    for _ in range(6):  # s_t = 1 + 0.5 s_(t-1)
        prev = 1.0 + 0.5 * prev
        expected.append(prev)
    assert torch.allclose(y, torch.tensor(expected))


def test_nesting_equals_substitution() -> None:
    """Operad law: nesting a composed system == composing the flattened diagram."""
    inner = series_diagram()
    inner_systems = {"f": integrator(0.5, "f"), "g": gain(3.0, "g")}
    outer_box = Box("h", (Port("x", (1,)),), (Port("y", (1,)),))
    outer = WiringDiagram(
        [Port("x", (1,))],
        [Port("y", (1,))],
        [outer_box, Box("k", outer_box.inputs, outer_box.outputs)],
        [("outer.x", "h.x"), ("h.y", "k.x"), ("k.y", "outer.y")],
    )
    k = integrator(0.8, "k")
    nested = compose(outer, {"h": compose(inner, inner_systems), "k": k})
    flat_diagram = outer.substitute("h", inner)
    assert sorted(flat_diagram.boxes) == ["h/f", "h/g", "k"]
    flat = compose(flat_diagram, {"h/f": inner_systems["f"], "h/g": inner_systems["g"], "k": k})
    xs = torch.randn(12, 1, generator=torch.Generator().manual_seed(3))
    a = simulate(nested, 12, {"x": xs})
    b = simulate(flat, 12, {"x": xs})
    assert torch.equal(a.stack("y"), b.stack("y"))
    assert set(a.final_state) == {"h", "k"}
    assert set(a.final_state["h"]) == {"f", "g"}
    with pytest.raises(ValueError, match="box must be one of"):
        outer.substitute("zz", inner)


def test_substitution_checks_the_interface() -> None:
    wrong = WiringDiagram([Port("u", (1,))], [Port("y", (1,))], {}, [("outer.u", "outer.y")])
    with pytest.raises(ValueError, match="must have inputs"):
        series_diagram().substitute("f", wrong)


def test_substitution_into_a_box_fed_by_its_own_output() -> None:
    """Feedback around a nested box: flattening resolves the loop through the inner wiring."""
    inner = series_diagram()
    inner_systems = {"f": integrator(0.5, "f"), "g": gain(-0.4, "g")}
    add = function_system(
        [Port("a", (1,)), Port("b", (1,))], [Port("s", (1,))], lambda i: {"s": i["a"] + i["b"]}
    )
    hbox = Box("h", (Port("x", (1,)),), (Port("y", (1,)),))
    outer = WiringDiagram(
        [Port("x", (1,))],
        [Port("y", (1,))],
        {"h": hbox, "add": add},
        [("outer.x", "add.a"), ("h.y", "add.b"), ("add.s", "h.x"), ("h.y", "outer.y")],
    )
    nested = compose(outer, {"h": compose(inner, inner_systems), "add": add})
    flat_d = outer.substitute("h", inner)
    flat = compose(flat_d, {"h/f": inner_systems["f"], "h/g": inner_systems["g"], "add": add})
    xs = torch.randn(10, 1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        simulate(nested, 10, {"x": xs}).stack("y"), simulate(flat, 10, {"x": xs}).stack("y")
    )
