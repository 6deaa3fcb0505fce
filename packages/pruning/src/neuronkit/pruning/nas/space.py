"""A tiny ENAS-style cell search space, its sequence encoding and graph similarity measures.

Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438), analysing ENAS (Pham et al. 2018, "Efficient Neural Architecture Search via
Parameter Sharing").

A cell is a DAG of ``B`` nodes, as in ENAS's recurrent-cell space. Node 0 reads the cell input;
every later node ``i`` picks one earlier node ``j < i`` as its input and an operation (an
activation such as tanh, ReLU, sigmoid or identity) applied to ``W_{j,i} h_j``. Nodes that no
other node reads (the leaves) are averaged into the cell output.

The controller emits the architecture as a token sequence of length ``2B - 1`` in ENAS's order
``[op_0, input_1, op_1, input_2, op_2, ...]``: position ``0`` has ``len(ops)`` choices, input
positions of node ``i`` have ``i`` choices, op positions ``len(ops)`` choices.

Graph similarity between two cells (both have the same nodes, numbered by creation order):

- ``"jaccard"``: Jaccard index of the labelled edge sets ``{(j, i, op_i)}`` (node 0's edge comes
  from the cell input, ``j = -1``).
- ``"connections"``: fraction of nodes ``i >= 1`` that read the same input node (connections in
  common, unlabelled).
- ``"activations"``: fraction of nodes with the same operation (activation functions in common).
- ``"edit"``: ``1 - GED / (2B - 1)`` where GED is the graph edit distance between the two
  node-aligned labelled DAGs (one relabel per differing operation plus one edge substitution per
  differing input), i.e. one minus the normalized Hamming distance of the token sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import check_choice, check_number, check_seed, check_type

__all__ = [
    "DEFAULT_OPS",
    "SIMILARITY_METRICS",
    "Architecture",
    "CellSpace",
    "graph_similarity",
    "pairwise_graph_similarity",
    "random_architectures",
]

#: ENAS's recurrent-cell activations.
DEFAULT_OPS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
SIMILARITY_METRICS: tuple[str, ...] = ("jaccard", "connections", "activations", "edit")


@dataclass(frozen=True)
class CellSpace:
    """The search space: cells of ``num_nodes`` nodes, each with an op from ``ops``.

    Attributes:
        num_nodes: ``B >= 2``, the number of nodes of a cell.
        ops: names of the operations a node can apply (each must be one of
            :data:`DEFAULT_OPS`'s kinds: ``tanh``, ``relu``, ``sigmoid``, ``identity``).
    """

    num_nodes: int = 8
    ops: tuple[str, ...] = DEFAULT_OPS

    def __post_init__(self) -> None:
        check_number("num_nodes", self.num_nodes, ge=2, integer=True)
        check_type("ops", self.ops, tuple)
        if len(self.ops) < 1 or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be a non-empty tuple of distinct names, got {self.ops!r}")
        for op in self.ops:
            check_choice("ops[i]", op, DEFAULT_OPS)

    @property
    def num_decisions(self) -> int:
        """Length ``2B - 1`` of an architecture's token sequence."""
        return 2 * self.num_nodes - 1

    @property
    def choices(self) -> tuple[int, ...]:
        """Number of choices at each sequence position (``[2B - 1]``)."""
        out = [len(self.ops)]
        for i in range(1, self.num_nodes):
            out += [i, len(self.ops)]
        return tuple(out)

    @property
    def is_op_position(self) -> tuple[bool, ...]:
        """Whether each sequence position is an op choice (else an input-node choice)."""
        return tuple(t == 0 or t % 2 == 0 for t in range(self.num_decisions))

    @property
    def size(self) -> int:
        """Number of distinct architectures, ``|ops|^B (B - 1)!``."""
        return int(np.prod(self.choices, dtype=object))


@dataclass(frozen=True)
class Architecture:
    """A cell: ``ops[i]`` is node ``i``'s op index, ``inputs[i - 1]`` node ``i``'s input node.

    Attributes:
        ops: ``B`` op indices into :attr:`CellSpace.ops`.
        inputs: ``B - 1`` input nodes; ``inputs[i - 1] < i``.
    """

    ops: tuple[int, ...]
    inputs: tuple[int, ...]

    def __post_init__(self) -> None:
        check_type("ops", self.ops, tuple)
        check_type("inputs", self.inputs, tuple)
        if len(self.ops) < 2 or len(self.inputs) != len(self.ops) - 1:
            raise ValueError(
                f"inputs must have len(ops) - 1 entries and ops at least 2, got "
                f"{len(self.ops)} ops and {len(self.inputs)} inputs"
            )
        for op in self.ops:
            check_number("ops[i]", op, ge=0, integer=True)
        for i, j in enumerate(self.inputs, start=1):
            check_number(f"inputs[{i - 1}]", j, ge=0, lt=i, integer=True)

    @property
    def num_nodes(self) -> int:
        """``B``."""
        return len(self.ops)

    def validate(self, space: CellSpace) -> None:
        """Raise ``ValueError`` unless this architecture belongs to ``space``."""
        check_type("space", space, CellSpace)
        if self.num_nodes != space.num_nodes:
            raise ValueError(
                f"architecture must have {space.num_nodes} nodes for this space, "
                f"got {self.num_nodes}"
            )
        if max(self.ops) >= len(space.ops):
            raise ValueError(f"ops must index the space's {len(space.ops)} ops, got {self.ops}")

    def to_sequence(self) -> tuple[int, ...]:
        """The controller's token sequence ``[op_0, input_1, op_1, ...]`` (length ``2B - 1``)."""
        seq = [self.ops[0]]
        for i in range(1, self.num_nodes):
            seq += [self.inputs[i - 1], self.ops[i]]
        return tuple(int(s) for s in seq)

    @classmethod
    def from_sequence(cls, space: CellSpace, sequence: Sequence[int]) -> Architecture:
        """Decode a token sequence of ``space`` (inverse of :meth:`to_sequence`)."""
        check_type("space", space, CellSpace)
        seq = [int(s) for s in sequence]
        if len(seq) != space.num_decisions:
            raise ValueError(
                f"sequence must have {space.num_decisions} tokens for {space.num_nodes} nodes, "
                f"got {len(seq)}"
            )
        for t, (s, n) in enumerate(zip(seq, space.choices)):
            if not 0 <= s < n:
                raise ValueError(f"sequence[{t}] must be in [0, {n}), got {s}")
        arch = cls(ops=tuple(seq[0::2]), inputs=tuple(seq[1::2]))
        return arch

    def leaves(self) -> tuple[int, ...]:
        """Nodes that no other node reads; their mean is the cell output."""
        used = set(self.inputs)
        return tuple(i for i in range(self.num_nodes) if i not in used)

    def edges(self, space: CellSpace | None = None) -> frozenset[tuple[int, int, str | int]]:
        """Labelled edges ``(source, node, op)``; node 0's source is the cell input (``-1``).

        The label is the op name when ``space`` is given, else its index.
        """
        label = (lambda k: space.ops[k]) if space is not None else (lambda k: k)
        out = {(-1, 0, label(self.ops[0]))}
        for i in range(1, self.num_nodes):
            out.add((self.inputs[i - 1], i, label(self.ops[i])))
        return frozenset(out)

    def describe(self, space: CellSpace) -> str:
        """A compact human-readable form, e.g. ``0:tanh(x) 1:relu(0) ...``."""
        self.validate(space)
        parts = [f"0:{space.ops[self.ops[0]]}(x)"]
        for i in range(1, self.num_nodes):
            parts.append(f"{i}:{space.ops[self.ops[i]]}({self.inputs[i - 1]})")
        return " ".join(parts)


def random_architectures(
    space: CellSpace, n: int, *, generator: torch.Generator | None = None, seed: int | None = None
) -> list[Architecture]:
    """``n`` architectures drawn uniformly from ``space`` (every token independent, uniform).

    This is the sampler of random search with weight sharing (Li & Talwalkar 2019; the
    baseline of Adam & Lorraine). Give a ``generator`` or a ``seed`` (not both).
    """
    check_type("space", space, CellSpace)
    check_number("n", n, ge=1, integer=True)
    gen = _generator(generator, seed)
    cols = [torch.randint(0, c, (n,), generator=gen) for c in space.choices]
    seqs = torch.stack(cols, dim=1).tolist()
    return [Architecture.from_sequence(space, s) for s in seqs]


def graph_similarity(a: Architecture, b: Architecture, metric: str = "jaccard") -> float:
    """Similarity in ``[0, 1]`` of two cells with the same number of nodes (see module doc)."""
    check_type("a", a, Architecture)
    check_type("b", b, Architecture)
    check_choice("metric", metric, SIMILARITY_METRICS)
    if a.num_nodes != b.num_nodes:
        raise ValueError(f"b must have as many nodes as a ({a.num_nodes}), got {b.num_nodes} nodes")
    if metric == "jaccard":
        ea, eb = a.edges(), b.edges()
        return len(ea & eb) / len(ea | eb)
    if metric == "connections":
        return float(np.mean(np.asarray(a.inputs) == np.asarray(b.inputs)))
    if metric == "activations":
        return float(np.mean(np.asarray(a.ops) == np.asarray(b.ops)))
    sa, sb = np.asarray(a.to_sequence()), np.asarray(b.to_sequence())
    return 1.0 - float(np.mean(sa != sb))


def pairwise_graph_similarity(
    architectures: Sequence[Architecture], metric: str = "jaccard"
) -> np.ndarray:
    """``[N, N]`` matrix of :func:`graph_similarity` (ones on the diagonal)."""
    archs = _check_architectures("architectures", architectures)
    check_choice("metric", metric, SIMILARITY_METRICS)
    n = len(archs)
    if metric in ("connections", "activations", "edit"):
        seqs = np.asarray([a.to_sequence() for a in archs])
        if metric == "connections":
            seqs = seqs[:, 1::2]
        elif metric == "activations":
            seqs = seqs[:, 0::2]
        return (seqs[:, None, :] == seqs[None, :, :]).mean(axis=2)
    out = np.ones((n, n))
    edges = [a.edges() for a in archs]
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = len(edges[i] & edges[j]) / len(edges[i] | edges[j])
    return out


def _check_architectures(name: str, architectures: Sequence[Architecture]) -> list[Architecture]:
    if isinstance(architectures, (str, bytes)) or not isinstance(architectures, Sequence):
        raise TypeError(
            f"{name} must be a sequence of Architecture, got {type(architectures).__name__}"
        )
    archs = list(architectures)
    if not archs:
        raise ValueError(f"{name} must hold at least one Architecture, got an empty sequence")
    for a in archs:
        check_type(f"{name}[i]", a, Architecture)
    if len({a.num_nodes for a in archs}) != 1:
        sizes = sorted({a.num_nodes for a in archs})
        raise ValueError(f"{name} must all have the same number of nodes, got sizes {sizes}")
    return archs


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ValueError("generator and seed are exclusive, got both")
    if generator is not None:
        check_type("generator", generator, torch.Generator)
        return generator
    if seed is None:
        raise ValueError("seed must be given (an int >= 0) when generator is None, got None")
    check_seed(seed)
    return torch.Generator().manual_seed(int(seed))
