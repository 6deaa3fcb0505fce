"""Tests of the weight-sharing supernet (neuronkit.pruning.nas.supernet)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.nas import (
    Architecture,
    CellSpace,
    FixedCellNet,
    WeightSharingSupernet,
    evaluate_architectures,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _reference_forward(
    net: WeightSharingSupernet, x: torch.Tensor, a: Architecture
) -> torch.Tensor:
    acts = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
    f = [acts.get(net.space.ops[k], lambda t: t) for k in a.ops]
    flat = x.reshape(len(x), -1)
    h = [f[0](flat @ net.stem.weight.T + net.stem.bias)]
    for i in range(1, a.num_nodes):
        lin = net.edges[f"{a.inputs[i - 1]}_{i}"]
        h.append(f[i](h[a.inputs[i - 1]] @ lin.weight.T + lin.bias))
    used = set(a.inputs)
    out = sum(h[i] for i in range(a.num_nodes) if i not in used) / len(a.leaves())
    return out @ net.head.weight.T + net.head.bias


def test_forward_matches_hand_written_cell() -> None:
    space = CellSpace(num_nodes=5)
    net = WeightSharingSupernet(space, 12, hidden=7, num_classes=3, seed=1)
    x = torch.randn(4, 3, 4)
    for a in [
        Architecture((0, 1, 2, 3, 0), (0, 1, 2, 3)),  # a chain: one leaf
        Architecture((3, 3, 1, 0, 2), (0, 0, 0, 0)),  # a star: four leaves
        Architecture((1, 0, 2, 1, 3), (0, 1, 1, 2)),
    ]:
        assert torch.allclose(net(x, a), _reference_forward(net, x, a), atol=1e-6)


def test_weights_are_shared_and_gradients_reach_only_used_edges() -> None:
    space = CellSpace(num_nodes=4)
    net = WeightSharingSupernet(space, 6, hidden=5, num_classes=2, seed=0)
    a = Architecture((0, 0, 1, 2), (0, 0, 2))
    net(torch.randn(3, 6), a).sum().backward()
    used = {"0_1", "0_2", "2_3"}
    for name, lin in net.edges.items():
        assert (lin.weight.grad is not None) == (name in used), name
    assert {id(p) for p in net.parameters_of(a)} == {
        id(p) for p in [*net.stem.parameters(), *net.head.parameters()]
    } | {id(p) for n in used for p in net.edges[n].parameters()}


def test_seeded_init_and_fixed_cell_net() -> None:
    space = CellSpace(num_nodes=3)
    n1 = WeightSharingSupernet(space, 4, hidden=3, num_classes=2, seed=5)
    n2 = WeightSharingSupernet(space, 4, hidden=3, num_classes=2, seed=5)
    for p, q in zip(n1.parameters(), n2.parameters()):
        assert torch.equal(p, q)
    a = Architecture((0, 1, 2), (0, 1))
    x = torch.randn(5, 4)
    assert torch.equal(FixedCellNet(n1, a)(x), n1(x, a))


def test_evaluate_architectures() -> None:
    space = CellSpace(num_nodes=3)
    net = WeightSharingSupernet(space, 4, hidden=3, num_classes=2, seed=0)
    x = torch.randn(20, 4)
    archs = [Architecture((0, 1, 2), (0, 1)), Architecture((1, 1, 1), (0, 0))]
    pred = net(x, archs[0]).argmax(1)
    acc = evaluate_architectures(net, archs, x, pred)
    assert acc.shape == (2,)
    assert acc[0] == 1.0
    assert 0.0 <= float(acc[1]) <= 1.0


def test_evaluate_architectures_checks_the_labels() -> None:
    """1-indexed labels scored 0.375 and float labels 0.0, with no error: bad labels quietly
    corrupted the ENAS / random-search ranking."""
    space = CellSpace(num_nodes=3)
    net = WeightSharingSupernet(space, 4, hidden=3, num_classes=3, seed=0)
    archs = [Architecture((0, 1, 2), (0, 1))]
    x, y = torch.randn(20, 4), torch.arange(20) % 3
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        evaluate_architectures(net, archs, x, y + 1)
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        evaluate_architectures(net, archs, x, y - 1)
    with pytest.raises(TypeError, match=r"^y must hold integer class labels, got dtype"):
        evaluate_architectures(net, archs, x, y.float() + 0.5)
    assert evaluate_architectures(net, archs, x, y.int()).shape == (1,)


def test_bad_inputs() -> None:
    space = CellSpace(num_nodes=3)
    net = WeightSharingSupernet(space, 4, hidden=3, num_classes=2)
    a = Architecture((0, 1, 2), (0, 1))
    with pytest.raises(ValueError, match="in_features"):
        WeightSharingSupernet(space, 0)
    with pytest.raises(TypeError, match="space"):
        WeightSharingSupernet("space", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x must be"):
        net(torch.randn(2, 5), a)
    with pytest.raises(ValueError, match="nodes"):
        net(torch.randn(2, 4), Architecture((0, 0), (0,)))
    with pytest.raises(ValueError, match="ops"):
        net(torch.randn(2, 4), Architecture((0, 9, 0), (0, 0)))
    with pytest.raises(ValueError, match="architectures"):
        evaluate_architectures(net, [], torch.randn(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="y must be"):
        evaluate_architectures(net, [a], torch.randn(2, 4), torch.zeros(3, dtype=torch.long))
