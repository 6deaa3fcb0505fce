"""The weight-sharing supernet: one set of weights that runs every cell of a :class:`CellSpace`.

Pham et al. (2018), "Efficient Neural Architecture Search via Parameter Sharing" (ENAS), as
analysed by Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques".

The supernet holds a stem ``W_x: in_features -> hidden``, one matrix ``W_{j,i}`` per possible
edge ``j -> i`` (``0 <= j < i < B``, shared by every cell that uses the edge, whatever the
op) and a linear classifier head. For a cell ``a`` and a batch ``x [N, ...]`` (flattened to
``[N, in_features]``)::

    h_0 = op_0(W_x x)
    h_i = op_i(W_{a.inputs[i-1], i} h_{a.inputs[i-1]})      (i = 1 .. B-1)
    logits = head(mean(h_leaf for leaf in a.leaves()))       [N, num_classes]

ENAS trains these shared weights on minibatches, each with a cell drawn from the controller
(random search with weight sharing draws it uniformly), and scores a cell by its accuracy with
the shared weights on validation data. The final cell is retrained from scratch:
:class:`FixedCellNet` binds a cell to a (fresh) supernet so the ordinary training loop
(:func:`neuronkit.pruning.lottery.train`) applies.
"""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.common import (
    check_class_labels,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    eval_mode,
    forked_manual_seed,
    integer_dtype,
    named_input_dtypes,
)

from .space import Architecture, CellSpace

__all__ = [
    "FixedCellNet",
    "WeightSharingSupernet",
    "evaluate_architectures",
]

_ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda t: t,
}


class WeightSharingSupernet(nn.Module):
    """ENAS's shared weights for every cell of ``space`` (see the module docstring).

    Args:
        space: the cell search space.
        in_features: number of input features (inputs ``[N, ...]`` are flattened).
        hidden: width of every node.
        num_classes: outputs of the classifier head.
        seed: seed of the weight initialization (PyTorch's default layer init).
    """

    def __init__(
        self,
        space: CellSpace,
        in_features: int,
        *,
        hidden: int = 32,
        num_classes: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_type("space", space, CellSpace)
        check_number("in_features", in_features, ge=1, integer=True)
        check_number("hidden", hidden, ge=1, integer=True)
        check_number("num_classes", num_classes, ge=2, integer=True)
        check_seed(seed)
        self.space = space
        self.in_features = int(in_features)
        self.hidden = int(hidden)
        self.num_classes = int(num_classes)
        with forked_manual_seed(seed):
            self.stem = nn.Linear(self.in_features, self.hidden)
            self.edges = nn.ModuleDict(
                {
                    f"{j}_{i}": nn.Linear(self.hidden, self.hidden)
                    for i in range(1, space.num_nodes)
                    for j in range(i)
                }
            )
            self.head = nn.Linear(self.hidden, self.num_classes)

    def forward(self, x: torch.Tensor, architecture: Architecture) -> torch.Tensor:
        """Logits ``[N, num_classes]`` of the cell ``architecture`` on ``x [N, ...]``."""
        check_type("x", x, torch.Tensor)
        check_type("architecture", architecture, Architecture)
        architecture.validate(self.space)
        if x.ndim < 2 or x[0].numel() != self.in_features:
            raise ValueError(
                f"x must be a batch [N, ...] of {self.in_features} features per sample, "
                f"got shape {tuple(x.shape)}"
            )
        return self.head(self.cell(x.reshape(len(x), -1), architecture))

    def cell(self, x: torch.Tensor, architecture: Architecture) -> torch.Tensor:
        """The cell output ``[N, hidden]`` (mean of the leaves) for flat inputs ``[N, F]``."""
        ops = [_ACTIVATIONS[self.space.ops[k]] for k in architecture.ops]
        nodes = [ops[0](self.stem(x))]
        for i in range(1, self.space.num_nodes):
            j = architecture.inputs[i - 1]
            nodes.append(ops[i](self.edges[f"{j}_{i}"](nodes[j])))
        leaves = architecture.leaves()
        return torch.stack([nodes[i] for i in leaves]).mean(dim=0)

    def parameters_of(self, architecture: Architecture) -> list[nn.Parameter]:
        """The shared parameters a cell uses (stem, its edges, head)."""
        check_type("architecture", architecture, Architecture)
        architecture.validate(self.space)
        params = [*self.stem.parameters(), *self.head.parameters()]
        for i in range(1, self.space.num_nodes):
            params += list(self.edges[f"{architecture.inputs[i - 1]}_{i}"].parameters())
        return params


class FixedCellNet(nn.Module):
    """A supernet bound to one cell: ``forward(x) = supernet(x, architecture)``.

    Used for the final evaluation (retraining the chosen cell from scratch with a fresh
    supernet) and wherever a plain classifier ``[N, ...] -> [N, C]`` is expected.
    """

    def __init__(self, supernet: WeightSharingSupernet, architecture: Architecture) -> None:
        super().__init__()
        check_type("supernet", supernet, WeightSharingSupernet)
        check_type("architecture", architecture, Architecture)
        architecture.validate(supernet.space)
        self.supernet = supernet
        self.architecture = architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, C]`` for ``x [N, ...]``."""
        return self.supernet(x, self.architecture)


@torch.no_grad()
def evaluate_architectures(
    supernet: WeightSharingSupernet,
    architectures: list[Architecture],
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Accuracy ``[K]`` of each cell with the shared weights on ``x [N, ...]``, ``y [N]``.

    This is ENAS's (and random search with weight sharing's) proxy score of a cell.
    """
    check_type("supernet", supernet, WeightSharingSupernet)
    check_type("architectures", architectures, list)
    if not architectures:
        raise ValueError("architectures must hold at least one Architecture, got an empty list")
    check_type("x", x, torch.Tensor)
    check_type("y", y, torch.Tensor)
    if y.ndim != 1 or len(y) != len(x) or len(y) == 0:
        raise ValueError(
            f"y must be labels [N] matching x's {len(x)} samples, got shape {tuple(y.shape)}"
        )
    if not integer_dtype(y):
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    check_class_labels("y", y, supernet.num_classes)
    # float64 x of a float32 supernet: a TypeError naming x (torch's deep RuntimeError)
    with eval_mode(supernet), named_input_dtypes(supernet, ("x", x)):
        accs = [float(correct_predictions(supernet(x, a), y).float().mean()) for a in architectures]
    return torch.tensor(accs)
