"""Protocol of the theory.nested_dynamical reproduction: the SGD comparison cannot skip
anything."""

import numpy as np
import pytest
import torch

from neuronkit.theory.dynamical import minibatch_schedule
from neuronkit.theory.reproductions.nested_dynamical import (
    _compare,
    _direct_sgd,
    _init,
    _nested_sgd,
)

F64 = torch.float64


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen, dtype=F64)
    labels = torch.arange(40) % 3
    return x, labels, torch.nn.functional.one_hot(labels, 3).to(F64)


def test_both_runs_record_the_weights_after_the_last_step() -> None:
    x, labels, onehot = _data()
    widths, steps, lr = [6, 5, 3], 7, 0.3
    w, b = _init(widths, 1)
    sched = minibatch_schedule(40, 8, steps, seed=2)
    direct = _direct_sgd(x, labels, w, b, sched, lr)
    nested = _nested_sgd(x, onehot, widths, w, b, sched, lr, "layer")
    assert len(direct[1]) == len(nested[1]) == steps + 1
    assert max(_compare(nested[:2], direct)) < 1e-12
    # a wrong last update (invisible to every loss) is caught by the final weights
    last = _nested_sgd(x, onehot, widths, w, b, sched, lr * 1.01, "layer")
    mixed = [*nested[1][:-1], last[1][-1]]
    assert _compare((nested[0], mixed), direct)[1] > 1e-6


def test_compare_rejects_missing_parameters_or_steps() -> None:
    p = [torch.zeros(2, 2), torch.zeros(2)]
    losses = np.zeros(2)
    with pytest.raises(ValueError, match=r"shorter|longer"):  # a layer missing
        _compare((losses, [p[:1], p[:1]]), (losses, [p, p]))
    with pytest.raises(ValueError, match=r"shorter|longer"):  # a step missing
        _compare((losses, [p]), (losses, [p, p]))
    with pytest.raises(ValueError, match="differ in length"):
        _compare((losses[:1], [p, p]), (losses, [p, p]))
