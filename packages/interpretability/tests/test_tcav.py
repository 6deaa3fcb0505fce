"""TCAV (Kim et al. 2018): a planted concept direction is found, scores written out, the
significance test separates a concept the class uses from random directions, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import CAV, tcav, tcav_score, train_cav

D = 10
U = torch.eye(D)[0]  # the concept's direction, which class 0 uses
W = torch.eye(D)[1]


class _Net(nn.Module):
    """Class 0's logit grows with ``a . u`` (softplus, so the gradients vary), and bends with
    ``tanh(a . w)``; class 1 is the negative sum."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.layer(x)
        return torch.stack([F.softplus(2 * (a @ U)) + torch.tanh(a @ W), -a.sum(1)], 1)


def _sets(seed: int, shift: torch.Tensor, n_random: int = 11):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(100, D, generator=g)
    concept = torch.randn(60, D, generator=g) + 3 * shift
    randoms = [torch.randn(60, D, generator=g) for _ in range(n_random)]
    return inputs, concept, randoms


def test_the_cav_points_to_the_planted_concept() -> None:
    _, concept, randoms = _sets(0, U)
    cav = train_cav(_Net(), "layer", concept, randoms[0])
    assert float(cav.vector @ U.double()) > 0.8  # unit length, towards the concept
    torch.testing.assert_close(cav.vector.norm(), torch.tensor(1.0, dtype=torch.float64))
    assert cav.accuracy >= 0.8  # the best line: Phi(1.5) = 0.93
    again = train_cav(_Net(), "layer", concept, randoms[0])
    assert torch.equal(again.vector, cav.vector)
    train_cav(_Net(), "layer", concept, randoms[0], seed=2**64 - 1)  # any seed check_seed takes


def test_the_score_written_out() -> None:
    inputs, _, _ = _sets(1, U)
    v = torch.randn(D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cav = CAV("layer", v / v.norm(), 1.0)
    x = inputs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_Net()(x)[:, 0].sum(), x)
    want = (grad.double() @ cav.vector > 0).double().mean()
    torch.testing.assert_close(tcav_score(_Net(), inputs, 0, cav), want)
    both = tcav_score(_Net(), inputs, 0, [cav, CAV("layer", -cav.vector, 1.0)])
    torch.testing.assert_close(both, torch.stack([want, 1 - want]))


@pytest.mark.parametrize("seed", [2, 3, 5, 6])
def test_a_concept_the_class_uses_is_significant(seed) -> None:
    inputs, concept, randoms = _sets(seed, U)
    result = tcav(_Net(), inputs, "layer", 0, concept, randoms)
    assert result.scores.shape == result.random_scores.shape == (10,)
    assert result.mean > 0.9
    assert result.significant  # p from 2e-5 to 0.011 over these seeds
    assert len(result.cavs) == 10
    # a concept that lowers the logit scores near 0 (whether that is significant depends on
    # the random CAVs, which all share random set 0 and so lean together: p = 0.08 for seed 2)
    opposite = tcav(_Net(), inputs, "layer", 0, concept - 6 * U, randoms)
    assert opposite.mean < 0.1


def test_bad_input_is_named() -> None:
    inputs, concept, randoms = _sets(4, U)
    with pytest.raises(ValueError, match="at least 3 sets"):
        tcav(_Net(), inputs, "layer", 0, concept, randoms[:2])
    with pytest.raises(TypeError, match="random_inputs must be a sequence"):
        tcav(_Net(), inputs, "layer", 0, concept, randoms[0])
    with pytest.raises(ValueError, match="at least 2 examples"):
        train_cav(_Net(), "layer", concept[:1], randoms[0])
    with pytest.raises(ValueError, match="of one layer"):
        tcav_score(_Net(), inputs, 0, [CAV("layer", U.double(), 1.0), CAV("x", U.double(), 1.0)])
    with pytest.raises(ValueError, match="the CAVs have 3 entries"):
        tcav_score(_Net(), inputs, 0, CAV("layer", torch.ones(3), 1.0))
    with pytest.raises(TypeError, match="cav must be a CAV"):
        tcav_score(_Net(), inputs, 0, [U])
    with pytest.raises(ValueError, match="test_fraction"):
        train_cav(_Net(), "layer", concept, randoms[0], test_fraction=1.0)
