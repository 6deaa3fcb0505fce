"""A deep network's SGD training as a nested dynamical system.

Spivak & Hosgood, "Deep neural networks as nested dynamical systems" (2021): an artificial
"neuron" is a dynamical system whose *state is its weights*. At every tick it reads the
activations arriving on its input wires and shows its own activation; the wires also carry a
feedback signal backwards (the gradient of the loss), and the neuron's *update* is the gradient
descent step on its weights. The network is a wiring diagram of such systems (with a fixed
interaction pattern), the training loop is that diagram nested in a bigger one holding a data
stream and a loss, and one tick of the whole system is one SGD step. A wire that fans out
copies the activation forward and *adds* the gradients coming back (:func:`copier`), so wires
do more than carry: this is the paper's point that the wires, not the "neurons", play the role
of nerve cells.

Every forward / backward formula here is written out by hand (no autograd), so the nested
system is an independent implementation that can be checked against a directly coded
``torch`` SGD run.

Two granularities, with the same interface ``(x: [B, in], grad_y: [B, out]) -> (y: [B, out],
grad_x: [B, in])`` and therefore interchangeable in a diagram:

* :func:`dense_learner`: a whole layer as one system (state: weight matrix and bias);
* :func:`neuron_layer`: a layer as a wiring diagram of single-neuron systems
  (:func:`neuron_learner`, state: one weight vector and bias) with a copier and a gatherer, so an
  MLP built from them is nested three deep (network > layers > neurons).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch

from neuronkit.common import check_choice, check_number, check_seed, check_type

from .._utils import check_input_dtype
from .systems import OpenSystem, Port, State, Values
from .wiring import OUTER, ComposedSystem, WiringDiagram, compose

__all__ = [
    "ACTIVATIONS",
    "DenseState",
    "NeuronState",
    "copier",
    "cross_entropy_loss_system",
    "data_stream",
    "dense_backward",
    "dense_forward",
    "dense_learner",
    "gatherer",
    "layer_parameters",
    "minibatch_schedule",
    "mlp_diagram",
    "mlp_learner",
    "mlp_parameters",
    "mse_loss_system",
    "neuron_layer",
    "neuron_layer_diagram",
    "neuron_learner",
    "supervised_training_diagram",
    "training_system",
]


def _relu_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


#: name -> (activation f(z), derivative f'(z) given z and y = f(z)).
ACTIVATIONS: dict[
    str,
    tuple[
        Callable[[torch.Tensor], torch.Tensor],
        Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ],
] = {
    "identity": (lambda z: z, lambda z, y: torch.ones_like(z)),
    "relu": (torch.relu, _relu_grad),
    "tanh": (torch.tanh, lambda z, y: 1 - y * y),
    "sigmoid": (torch.sigmoid, lambda z, y: y * (1 - y)),
}


class DenseState(NamedTuple):
    """State of :func:`dense_learner`: ``weight [out, in]``, ``bias [out]``."""

    weight: torch.Tensor
    bias: torch.Tensor


class NeuronState(NamedTuple):
    """State of :func:`neuron_learner`: ``weight [in]``, ``bias []``."""

    weight: torch.Tensor
    bias: torch.Tensor


def _check_features(name: str, n: Any) -> None:
    check_number(name, n, ge=1, integer=True)


def _check_dtype(dtype: Any) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")


def _check_activation(activation: Any, name: str = "activation") -> None:
    check_type(name, activation, str)
    check_choice(name, activation, ACTIVATIONS)


def dense_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str = "identity"
) -> torch.Tensor:
    """``f(x W^T + b)``.

    Args:
        x: ``[B, in]``; weight: ``[out, in]``; bias: ``[out]`` (floating, all three of one
            dtype); activation: a key of :data:`ACTIVATIONS`.

    Returns:
        ``[B, out]``.
    """
    _check_activation(activation)
    _check_dense_args(x, weight, bias)
    return ACTIVATIONS[activation][0](x @ weight.T + bias)


def dense_backward(
    x: torch.Tensor,
    grad_y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    activation: str = "identity",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backpropagation through ``y = f(x W^T + b)``.

    Args:
        x: ``[B, in]``; grad_y: ``dL/dy``, ``[B, out]``; weight: ``[out, in]``; bias: ``[out]``
            (``x``, ``weight`` and ``bias`` floating, of one dtype).

    Returns:
        ``(grad_x [B, in], grad_weight [out, in], grad_bias [out])``.
    """
    _check_activation(activation)
    _check_dense_args(x, weight, bias)
    if not isinstance(grad_y, torch.Tensor) or grad_y.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(
            f"grad_y must have shape [B={x.shape[0]}, out={weight.shape[0]}], got "
            f"{getattr(grad_y, 'shape', type(grad_y).__name__)}"
        )
    f, df = ACTIVATIONS[activation]
    z = x @ weight.T + bias
    delta = grad_y * df(z, f(z))
    return delta @ weight, delta.T @ x, delta.sum(0)


def _check_dense_args(x: Any, weight: Any, bias: Any) -> None:
    for name, t in (("x", x), ("weight", weight), ("bias", bias)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(
            f"weight must be [out, in] and bias [out], got {tuple(weight.shape)} and "
            f"{tuple(bias.shape)}"
        )
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape [B, in={weight.shape[1]}], got {tuple(x.shape)}")
    # torch's bare "expected m1 and m2 to have the same dtype" otherwise
    if not weight.is_floating_point():
        raise TypeError(f"weight must be a floating tensor, got dtype {weight.dtype}")
    check_input_dtype("bias", bias, weight.dtype, owner="weight")
    check_input_dtype("x", x, weight.dtype, owner="weight")


def _init_params(
    in_features: int,
    out_shape: tuple[int, ...],
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    seed: int | None,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.Linear``'s default init (uniform +-1/sqrt(in)) unless weights are given."""
    w_shape = (*out_shape, in_features)
    if weight is None or bias is None:
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        bound = 1.0 / in_features**0.5
        w0 = (torch.rand(w_shape, generator=gen, dtype=dtype) * 2 - 1) * bound
        b0 = (torch.rand(out_shape, generator=gen, dtype=dtype) * 2 - 1) * bound
    if weight is not None:
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
        if tuple(weight.shape) != w_shape:
            raise ValueError(f"weight must have shape {list(w_shape)}, got {tuple(weight.shape)}")
        w0 = weight.detach().to(dtype).clone()
    if bias is not None:
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"bias must be a torch.Tensor, got {type(bias).__name__}")
        if tuple(bias.shape) != out_shape:
            raise ValueError(f"bias must have shape {list(out_shape)}, got {tuple(bias.shape)}")
        b0 = bias.detach().to(dtype).clone()
    for name, t in (("weight", w0), ("bias", b0)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got NaN or infinity")
    return w0, b0


def dense_learner(
    in_features: int,
    out_features: int,
    *,
    lr: float,
    activation: str = "identity",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    normalize: bool = False,
    expose_params: bool = False,
    name: str = "dense",
) -> OpenSystem:
    """A dense layer ``y = f(x W^T + b)`` as a learning system; its state is ``(W, b)``.

    Ports: inputs ``x [B, in]``, ``grad_y [B, out]`` (``dL/dy`` fed back along the wires);
    outputs ``y [B, out]`` (reads ``x``) and ``grad_x [B, in]`` (reads ``x`` and ``grad_y``,
    computed with the weights held at this tick), plus the Moore outputs ``weight [out, in]``,
    ``bias [out]`` when ``expose_params``. Update: one gradient descent step
    ``W <- W - lr dL/dW``, ``b <- b - lr dL/db``.

    Args:
        in_features, out_features: layer sizes.
        lr: learning rate (``>= 0``; ``0`` freezes the layer).
        activation: a key of :data:`ACTIVATIONS`.
        weight, bias: initial ``[out, in]`` and ``[out]`` (default: ``nn.Linear``'s uniform
            init drawn with ``seed``).
        seed: seed for the default init.
        dtype: floating dtype of the state.
        normalize: normalized-LMS step ``lr / (1e-8 + mean_b ||[x_b, 1]||^2)`` instead of ``lr``
            (scale-free adaptation, for control loops).
        expose_params: add the ``weight`` and ``bias`` output ports.
        name: label for messages.
    """
    _check_features("in_features", in_features)
    _check_features("out_features", out_features)
    check_number("lr", lr, ge=0)
    _check_activation(activation)
    check_type("normalize", normalize, bool)
    check_type("expose_params", expose_params, bool)
    _check_dtype(dtype)
    w0, b0 = _init_params(in_features, (out_features,), weight, bias, seed, dtype)
    f, df = ACTIVATIONS[activation]

    def pre(state: DenseState, x: torch.Tensor) -> torch.Tensor:
        return x @ state.weight.T + state.bias

    def read_y(state: DenseState, i: Values) -> torch.Tensor:
        return f(pre(state, i["x"]))

    def delta(state: DenseState, i: Values) -> torch.Tensor:
        z = pre(state, i["x"])
        return i["grad_y"] * df(z, f(z))

    def read_grad_x(state: DenseState, i: Values) -> torch.Tensor:
        return delta(state, i) @ state.weight

    def update(state: DenseState, i: Values) -> DenseState:
        d = delta(state, i)
        x = i["x"]
        step = lr
        if normalize:
            step = lr / (1e-8 + float((x * x).sum(1).add(1.0).mean()))
        return DenseState(state.weight - step * (d.T @ x), state.bias - step * d.sum(0))

    outputs = [Port("y", (None, out_features), dtype), Port("grad_x", (None, in_features), dtype)]
    readout: dict[str, Callable[[State, Values], torch.Tensor]] = {
        "y": read_y,
        "grad_x": read_grad_x,
    }
    if expose_params:
        outputs += [
            Port("weight", (out_features, in_features), dtype),
            Port("bias", (out_features,), dtype),
        ]
        readout["weight"] = lambda s, _i: s.weight
        readout["bias"] = lambda s, _i: s.bias
    return OpenSystem(
        [Port("x", (None, in_features), dtype), Port("grad_y", (None, out_features), dtype)],
        outputs,
        initial_state=DenseState(w0, b0),
        # lr = 0 freezes exactly: 0 * an overflowed (inf) gradient would write NaN weights
        update=update if lr != 0 else None,
        readout=readout,
        feedthrough={"y": ["x"], "grad_x": ["x", "grad_y"]},
        name=name,
    )


def neuron_learner(
    in_features: int,
    *,
    lr: float,
    activation: str = "identity",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    name: str = "neuron",
) -> OpenSystem:
    """One artificial "neuron" ``y = f(x . w + b)`` as a learning system; state ``(w, b)``.

    Ports: inputs ``x [B, in]`` (the bundle of its input wires), ``grad_y [B]``; outputs
    ``y [B]`` (reads ``x``), ``grad_x [B, in]`` (reads ``x``, ``grad_y``). Update: a gradient
    step on ``(w, b)`` with learning rate ``lr``.

    Args:
        in_features: number of input wires.
        lr: learning rate ``>= 0``.
        activation: a key of :data:`ACTIVATIONS`.
        weight, bias: initial ``[in]`` and ``[]`` (default: uniform +-1/sqrt(in) from ``seed``).
        seed, dtype, name: as in :func:`dense_learner`.
    """
    _check_features("in_features", in_features)
    check_number("lr", lr, ge=0)
    _check_activation(activation)
    _check_dtype(dtype)
    w0, b0 = _init_params(in_features, (), weight, bias, seed, dtype)
    f, df = ACTIVATIONS[activation]

    def delta(state: NeuronState, i: Values) -> torch.Tensor:
        z = i["x"] @ state.weight + state.bias
        return i["grad_y"] * df(z, f(z))

    def update(state: NeuronState, i: Values) -> NeuronState:
        d = delta(state, i)
        return NeuronState(state.weight - lr * (d @ i["x"]), state.bias - lr * d.sum())

    return OpenSystem(
        [Port("x", (None, in_features), dtype), Port("grad_y", (None,), dtype)],
        [Port("y", (None,), dtype), Port("grad_x", (None, in_features), dtype)],
        initial_state=NeuronState(w0, b0),
        update=update if lr != 0 else None,  # lr = 0 freezes exactly (see dense_learner)
        readout={
            "y": lambda s, i: f(i["x"] @ s.weight + s.bias),
            "grad_x": lambda s, i: delta(s, i)[:, None] * s.weight,
        },
        feedthrough={"y": ["x"], "grad_x": ["x", "grad_y"]},
        name=name,
    )


def copier(
    copies: int,
    shape: Sequence[int | None],
    *,
    dtype: torch.dtype | None = None,
    name: str = "copy",
) -> OpenSystem:
    """A wire fanning out, as a stateless system: copies forward, adds feedback backward.

    Ports: inputs ``x`` and ``grad0..grad{copies-1}``; outputs ``x0..x{copies-1}`` (each ``= x``)
    and ``grad`` (``= sum_j grad_j``), all of ``shape``. This is the copy lens of
    backpropagation: a value used in several places receives the sum of their gradients.
    """
    _check_features("copies", copies)
    if not isinstance(shape, Sequence):
        raise TypeError(f"shape must be a sequence of ints or None, got {type(shape).__name__}")
    shp = tuple(shape)
    readout: dict[str, Callable[[State, Values], torch.Tensor]] = {
        f"x{j}": lambda _s, i: i["x"] for j in range(copies)
    }

    def total(_s: State, i: Values) -> torch.Tensor:
        acc = i["grad0"]
        for j in range(1, copies):
            acc = acc + i[f"grad{j}"]
        return acc

    readout["grad"] = total
    return OpenSystem(
        [Port("x", shp, dtype)] + [Port(f"grad{j}", shp, dtype) for j in range(copies)],
        [Port(f"x{j}", shp, dtype) for j in range(copies)] + [Port("grad", shp, dtype)],
        readout=readout,
        feedthrough={
            **{f"x{j}": ["x"] for j in range(copies)},
            "grad": [f"grad{j}" for j in range(copies)],
        },
        name=name,
    )


def gatherer(n: int, *, dtype: torch.dtype | None = None, name: str = "gather") -> OpenSystem:
    """Bundle ``n`` scalar wires into one vector wire (and split its feedback).

    Ports: inputs ``y0..y{n-1} [B]``, ``grad [B, n]``; outputs ``y [B, n]`` (stacked) and
    ``grad0..grad{n-1} [B]`` (the columns of ``grad``).
    """
    _check_features("n", n)
    readout: dict[str, Callable[[State, Values], torch.Tensor]] = {
        "y": lambda _s, i: torch.stack([i[f"y{j}"] for j in range(n)], dim=1)
    }

    def column(j: int) -> Callable[[State, Values], torch.Tensor]:
        return lambda _s, i: i["grad"][:, j]

    for j in range(n):
        readout[f"grad{j}"] = column(j)
    return OpenSystem(
        [Port(f"y{j}", (None,), dtype) for j in range(n)] + [Port("grad", (None, n), dtype)],
        [Port("y", (None, n), dtype)] + [Port(f"grad{j}", (None,), dtype) for j in range(n)],
        readout=readout,
        feedthrough={"y": [f"y{j}" for j in range(n)], **{f"grad{j}": ["grad"] for j in range(n)}},
        name=name,
    )


def _layer_ports(
    in_features: int, out_features: int, dtype: torch.dtype | None
) -> tuple[list[Port], list[Port]]:
    return (
        [Port("x", (None, in_features), dtype), Port("grad_y", (None, out_features), dtype)],
        [Port("y", (None, out_features), dtype), Port("grad_x", (None, in_features), dtype)],
    )


def neuron_layer_diagram(
    in_features: int, out_features: int, *, dtype: torch.dtype | None = torch.float64
) -> WiringDiagram:
    """The wiring of a layer of single neurons: boxes ``copy``, ``n0..n{out-1}``, ``gather``.

    Outer interface ``(x [B, in], grad_y [B, out]) -> (y [B, out], grad_x [B, in])``, the same as
    :func:`dense_learner`'s. The copier fans ``x`` out to every neuron (summing their
    ``grad_x``), the gatherer bundles the neurons' outputs into ``y`` (splitting ``grad_y``).
    """
    _check_features("in_features", in_features)
    _check_features("out_features", out_features)
    ins, outs = _layer_ports(in_features, out_features, dtype)
    boxes: dict[str, Any] = {
        "copy": copier(out_features, (None, in_features), dtype=dtype),
        "gather": gatherer(out_features, dtype=dtype),
    }
    for j in range(out_features):
        boxes[f"n{j}"] = _box(
            f"n{j}",
            [Port("x", (None, in_features), dtype), Port("grad_y", (None,), dtype)],
            [Port("y", (None,), dtype), Port("grad_x", (None, in_features), dtype)],
        )
    wires: list[tuple[str, str]] = [
        ("outer.x", "copy.x"),
        ("copy.grad", "outer.grad_x"),
        ("gather.y", "outer.y"),
        ("outer.grad_y", "gather.grad"),
    ]
    for j in range(out_features):
        wires += [
            (f"copy.x{j}", f"n{j}.x"),
            (f"n{j}.grad_x", f"copy.grad{j}"),
            (f"n{j}.y", f"gather.y{j}"),
            (f"gather.grad{j}", f"n{j}.grad_y"),
        ]
    return WiringDiagram(ins, outs, boxes, wires)


def neuron_layer(
    in_features: int,
    out_features: int,
    *,
    lr: float,
    activation: str = "identity",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    name: str = "neuron_layer",
) -> ComposedSystem:
    """A dense layer built as a wiring diagram of :func:`neuron_learner` systems.

    Same interface and dynamics as :func:`dense_learner` (without ``expose_params``); its state
    is ``{"copy": None, "gather": None, "n<j>": NeuronState}``. Arguments as in
    :func:`dense_learner` (``weight [out, in]``, ``bias [out]``).
    """
    _check_features("in_features", in_features)
    _check_features("out_features", out_features)
    check_number("lr", lr, ge=0)
    _check_activation(activation)
    _check_dtype(dtype)
    w0, b0 = _init_params(in_features, (out_features,), weight, bias, seed, dtype)
    systems: dict[str, Any] = {
        "copy": copier(out_features, (None, in_features), dtype=dtype, name=f"{name}/copy"),
        "gather": gatherer(out_features, dtype=dtype, name=f"{name}/gather"),
    }
    for j in range(out_features):
        systems[f"n{j}"] = neuron_learner(
            in_features,
            lr=lr,
            activation=activation,
            weight=w0[j],
            bias=b0[j],
            dtype=dtype,
            name=f"{name}/n{j}",
        )
    return compose(neuron_layer_diagram(in_features, out_features, dtype=dtype), systems, name=name)


def layer_parameters(state: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [out, in], bias [out])`` from a :func:`dense_learner` or :func:`neuron_layer`
    state."""
    if isinstance(state, DenseState):
        return state.weight, state.bias
    if isinstance(state, Mapping) and "gather" in state:
        n = sum(1 for k in state if k.startswith("n") and k[1:].isdigit())
        neurons = [state[f"n{j}"] for j in range(n)]
        return torch.stack([s.weight for s in neurons]), torch.stack([s.bias for s in neurons])
    raise TypeError(
        f"state must be a DenseState or a neuron_layer state dict, got {type(state).__name__}"
    )


def _check_widths(widths: Any) -> list[int]:
    if not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(
            f"widths must be a sequence [in, hidden..., out] of >= 2 ints, got {widths!r:.80}"
        )
    for i, w in enumerate(widths):
        _check_features(f"widths[{i}]", w)
    return [int(w) for w in widths]


def mlp_diagram(
    widths: Sequence[int], *, dtype: torch.dtype | None = torch.float64
) -> WiringDiagram:
    """The interaction pattern of an MLP: boxes ``layer0..layer{L-1}`` in a chain.

    Forward wires carry activations ``layer{i}.y -> layer{i+1}.x``, feedback wires carry
    gradients ``layer{i+1}.grad_x -> layer{i}.grad_y``. Outer interface ``(x [B, widths[0]],
    grad_y [B, widths[-1]]) -> (y [B, widths[-1]], grad_x [B, widths[0]])``.
    """
    ws = _check_widths(widths)
    depth = len(ws) - 1
    boxes = {}
    for i in range(depth):
        ins, outs = _layer_ports(ws[i], ws[i + 1], dtype)
        boxes[f"layer{i}"] = _box(f"layer{i}", ins, outs)
    ins, outs = _layer_ports(ws[0], ws[-1], dtype)
    last = depth - 1
    wires = [
        ("outer.x", "layer0.x"),
        ("layer0.grad_x", "outer.grad_x"),
        (f"layer{last}.y", "outer.y"),
        ("outer.grad_y", f"layer{last}.grad_y"),
    ]
    for i in range(depth - 1):
        wires += [(f"layer{i}.y", f"layer{i + 1}.x"), (f"layer{i + 1}.grad_x", f"layer{i}.grad_y")]
    return WiringDiagram(ins, outs, boxes, wires)


def _box(name: str, ins: list[Port], outs: list[Port]) -> Any:
    from .wiring import Box

    return Box(name, tuple(ins), tuple(outs))


def mlp_learner(
    widths: Sequence[int],
    *,
    lr: float,
    activations: Sequence[str] | str = "relu",
    weights: Sequence[torch.Tensor] | None = None,
    biases: Sequence[torch.Tensor] | None = None,
    granularity: str = "layer",
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    name: str = "mlp",
) -> ComposedSystem:
    """An MLP as a nested learning system (:func:`mlp_diagram` filled with layer systems).

    Args:
        widths: ``[in, hidden..., out]``.
        lr: SGD learning rate for every layer.
        activations: one per layer, or one name for the hidden layers (the last is then
            ``"identity"``).
        weights, biases: initial ``[out, in]`` / ``[out]`` per layer (default: ``nn.Linear``
            init, layer ``i`` drawn with ``seed + i``).
        granularity: ``"layer"`` (:func:`dense_learner` boxes) or ``"neuron"``
            (:func:`neuron_layer` boxes, nested three deep).
        seed, dtype, name: as in :func:`dense_learner`.
    """
    ws = _check_widths(widths)
    depth = len(ws) - 1
    check_choice("granularity", granularity, ("layer", "neuron"))
    if isinstance(activations, str):
        _check_activation(activations, "activations")
        acts = [activations] * (depth - 1) + ["identity"]
    else:
        if not isinstance(activations, Sequence):
            raise TypeError(
                "activations must be a str or a sequence of str (one per layer), got "
                f"{type(activations).__name__}"
            )
        acts = list(activations)
        if len(acts) != depth:
            raise ValueError(
                f"activations must have one entry per layer ({depth}), got {len(acts)}"
            )
        for i, a in enumerate(acts):
            _check_activation(a, f"activations[{i}]")
    for arg, seq in (("weights", weights), ("biases", biases)):
        if seq is not None and len(seq) != depth:
            raise ValueError(f"{arg} must have one tensor per layer ({depth}), got {len(seq)}")
    base = 0 if seed is None else int(seed)
    systems: dict[str, Any] = {}
    for i in range(depth):
        kwargs: dict[str, Any] = {
            "lr": lr,
            "activation": acts[i],
            "weight": None if weights is None else weights[i],
            "bias": None if biases is None else biases[i],
            "seed": base + i,
            "dtype": dtype,
            "name": f"{name}/layer{i}",
        }
        if granularity == "layer":
            systems[f"layer{i}"] = dense_learner(ws[i], ws[i + 1], **kwargs)
        else:
            systems[f"layer{i}"] = neuron_layer(ws[i], ws[i + 1], **kwargs)
    return compose(mlp_diagram(ws, dtype=dtype), systems, name=name)


def mlp_parameters(state: Mapping[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(weight, bias), ...]`` per layer from an :func:`mlp_learner` state, or from a
    :func:`training_system` state (its ``"net"`` entry)."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if "net" in state:
        state = state["net"]
    n = sum(1 for k in state if k.startswith("layer"))
    if n == 0:
        raise ValueError(f"state must hold 'layer<i>' entries, got keys {sorted(state)}")
    return [layer_parameters(state[f"layer{i}"]) for i in range(n)]


def mse_loss_system(features: int, *, dtype: torch.dtype | None = torch.float64) -> OpenSystem:
    """Mean squared error ``mean((y - target)^2)`` (as ``F.mse_loss``) and its gradient.

    Ports: inputs ``y``, ``target`` ``[B, features]``; outputs ``loss []``, ``grad [B, features]``
    (``dloss/dy``). Stateless.
    """
    _check_features("features", features)

    def grad(_s: State, i: Values) -> torch.Tensor:
        return 2.0 * (i["y"] - i["target"]) / i["y"].numel()

    return OpenSystem(
        [Port("y", (None, features), dtype), Port("target", (None, features), dtype)],
        [Port("loss", (), dtype), Port("grad", (None, features), dtype)],
        readout={"loss": lambda _s, i: ((i["y"] - i["target"]) ** 2).mean(), "grad": grad},
        feedthrough={"loss": ["y", "target"], "grad": ["y", "target"]},
        name="mse",
    )


def cross_entropy_loss_system(
    classes: int, *, dtype: torch.dtype | None = torch.float64
) -> OpenSystem:
    """Softmax cross-entropy averaged over the batch (as ``F.cross_entropy``) and its gradient.

    Ports: inputs ``y`` (logits) and ``target`` (one-hot or class probabilities), both
    ``[B, classes]``; outputs ``loss []`` and ``grad = (softmax(y) - target) / B``. Stateless.
    """
    _check_features("classes", classes)

    def loss(_s: State, i: Values) -> torch.Tensor:
        return -(i["target"] * torch.log_softmax(i["y"], dim=1)).sum(1).mean()

    def grad(_s: State, i: Values) -> torch.Tensor:
        return (torch.softmax(i["y"], dim=1) - i["target"]) / i["y"].shape[0]

    return OpenSystem(
        [Port("y", (None, classes), dtype), Port("target", (None, classes), dtype)],
        [Port("loss", (), dtype), Port("grad", (None, classes), dtype)],
        readout={"loss": loss, "grad": grad},
        feedthrough={"loss": ["y", "target"], "grad": ["y", "target"]},
        name="cross_entropy",
    )


def minibatch_schedule(n: int, batch_size: int, steps: int, *, seed: int = 0) -> torch.Tensor:
    """Indices of the minibatch at each SGD step: a fresh permutation per epoch, the last
    incomplete batch of an epoch dropped.

    Returns:
        ``LongTensor [steps, batch_size]``.
    """
    check_number("n", n, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, le=n, integer=True)
    check_number("steps", steps, ge=0, integer=True)
    check_seed(seed)
    gen = torch.Generator().manual_seed(int(seed))
    per_epoch = n // batch_size
    rows: list[torch.Tensor] = []
    while len(rows) < steps:
        perm = torch.randperm(n, generator=gen)
        rows += list(perm[: per_epoch * batch_size].view(per_epoch, batch_size))
    if not rows:
        return torch.empty(0, batch_size, dtype=torch.long)
    return torch.stack(rows[:steps])


def data_stream(
    x: torch.Tensor, targets: torch.Tensor, schedule: torch.Tensor, *, name: str = "data"
) -> OpenSystem:
    """A Moore system showing minibatch ``schedule[t]`` of ``(x, targets)`` at tick ``t``.

    Args:
        x: inputs ``[N, d]``; targets: ``[N, k]``; schedule: ``LongTensor [steps, B]`` of row
            indices (e.g. :func:`minibatch_schedule`).

    Ports: outputs ``x [B, d]``, ``target [B, k]``; no inputs. State: the tick ``t``.
    """
    for arg, t in (("x", x), ("targets", targets)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(
                f"{arg} must be a 2-D tensor [N, features], got "
                f"{getattr(t, 'shape', type(t).__name__)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{arg} must be finite, got NaN or infinity")
    if targets.shape[0] != x.shape[0]:
        raise ValueError(f"targets must have N={x.shape[0]} rows like x, got {targets.shape[0]}")
    if not isinstance(schedule, torch.Tensor) or schedule.ndim != 2 or schedule.dtype != torch.long:
        raise ValueError(
            f"schedule must be a LongTensor [steps, B], got {getattr(schedule, 'shape', schedule)}"
        )
    if schedule.numel() and (int(schedule.min()) < 0 or int(schedule.max()) >= x.shape[0]):
        raise ValueError(f"schedule must index rows 0..{x.shape[0] - 1}")
    xs, ts, sched = x.detach().clone(), targets.detach().clone(), schedule.clone()

    def rows(t: int) -> torch.Tensor:
        if t >= sched.shape[0]:
            raise ValueError(
                f"data stream {name!r} ran past its schedule of {sched.shape[0]} steps"
            )
        return sched[t]

    return OpenSystem(
        [],
        [
            Port("x", (None, x.shape[1]), x.dtype),
            Port("target", (None, targets.shape[1]), targets.dtype),
        ],
        initial_state=0,
        update=lambda t, _i: t + 1,
        readout={"x": lambda t, _i: xs[rows(t)], "target": lambda t, _i: ts[rows(t)]},
        name=name,
    )


def supervised_training_diagram(
    in_features: int, out_features: int, *, dtype: torch.dtype | None = torch.float64
) -> WiringDiagram:
    """The training loop as a wiring diagram with boxes ``data``, ``net`` and ``loss``.

    ``data.x -> net.x``, ``net.y -> loss.y``, ``data.target -> loss.target``, and the feedback
    wire ``loss.grad -> net.grad_y``; the outer box has no inputs and one output ``loss``.
    """
    _check_features("in_features", in_features)
    _check_features("out_features", out_features)
    net_in, net_out = _layer_ports(in_features, out_features, dtype)
    boxes = {
        "data": _box(
            "data",
            [],
            [Port("x", (None, in_features), dtype), Port("target", (None, out_features), dtype)],
        ),
        "net": _box("net", net_in, net_out),
        "loss": _box(
            "loss",
            [Port("y", (None, out_features), dtype), Port("target", (None, out_features), dtype)],
            [Port("loss", (), dtype), Port("grad", (None, out_features), dtype)],
        ),
    }
    wires = [
        ("data.x", "net.x"),
        ("net.y", "loss.y"),
        ("data.target", "loss.target"),
        ("loss.grad", "net.grad_y"),
        ("loss.loss", f"{OUTER}.loss"),
    ]
    return WiringDiagram([], [Port("loss", (), dtype)], boxes, wires)


def training_system(
    x: torch.Tensor,
    targets: torch.Tensor,
    net: ComposedSystem | OpenSystem,
    *,
    schedule: torch.Tensor,
    loss: str = "mse",
    name: str = "training",
) -> ComposedSystem:
    """SGD training of ``net`` as one closed system: each tick is one minibatch SGD step.

    Args:
        x: inputs ``[N, d]``; targets: ``[N, k]`` (one-hot for ``"cross_entropy"``).
        net: a learner with interface ``(x [B, d], grad_y [B, k]) -> (y [B, k], grad_x [B, d])``
            (e.g. :func:`mlp_learner`).
        schedule: ``LongTensor [steps, B]`` of minibatch rows (:func:`minibatch_schedule`).
        loss: ``"mse"`` or ``"cross_entropy"``.

    Returns:
        A system with no inputs and output ``loss []`` (the minibatch loss at the weights held
        at that tick); its state is ``{"data": t, "net": <net state>, "loss": None}``.
    """
    check_choice("loss", loss, ("mse", "cross_entropy"))
    if not isinstance(x, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("x and targets must be torch.Tensor")
    if x.ndim != 2 or targets.ndim != 2:
        raise ValueError(
            f"x and targets must be 2-D, got {tuple(x.shape)} and {tuple(targets.shape)}"
        )
    d, k = x.shape[1], targets.shape[1]
    dtype = x.dtype
    loss_sys = (
        mse_loss_system(k, dtype=dtype)
        if loss == "mse"
        else cross_entropy_loss_system(k, dtype=dtype)
    )
    return compose(
        supervised_training_diagram(d, k, dtype=dtype),
        {"data": data_stream(x, targets, schedule), "net": net, "loss": loss_sys},
        name=name,
    )
