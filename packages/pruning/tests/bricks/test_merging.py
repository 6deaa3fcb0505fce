"""Tests of brick merging (neuronkit.pruning.bricks.merging)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.pruning.bricks.merging import (
    average_weights,
    customize_brick,
    task_arithmetic,
    task_vector,
)
from neuronkit.pruning.bricks.model import BrickTransformer, task_accuracy
from neuronkit.pruning.bricks.tasks import make_task_data

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _states() -> tuple[dict, dict, dict]:
    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(3, 2, generator=gen), "n": torch.tensor([4])}
    a = {"w": torch.randn(3, 2, generator=gen), "n": torch.tensor([4])}
    b = {"w": torch.randn(3, 2, generator=gen), "n": torch.tensor([4])}
    return base, a, b


def test_task_arithmetic_identities() -> None:
    base, a, b = _states()
    ta, tb = task_vector(base, a), task_vector(base, b)
    assert set(ta) == {"w"}  # integer entries carry no delta
    assert torch.allclose(task_arithmetic(base, [ta])["w"], a["w"])
    assert torch.allclose(task_arithmetic(base, [ta], 0.0)["w"], base["w"])
    both = task_arithmetic(base, [ta, tb], [0.5, 0.5])["w"]
    assert torch.allclose(both, average_weights([a, b])["w"], atol=1e-6)
    lam = task_arithmetic(base, [ta], 2.5)["w"] - base["w"]
    assert torch.allclose(lam, 2.5 * ta["w"], atol=1e-6)
    neg = task_arithmetic(base, [ta], -1.0)["w"]
    assert torch.allclose(neg, 2 * base["w"] - a["w"], atol=1e-6)
    assert torch.equal(task_arithmetic(base, [ta])["n"], base["n"])
    half = task_arithmetic(base, [ta], np.float32(0.5))["w"]  # numpy scalars are numbers
    assert torch.allclose(half, task_arithmetic(base, [ta], 0.5)["w"])


def test_average_weights() -> None:
    _base, a, b = _states()
    assert torch.allclose(average_weights([a, a])["w"], a["w"])
    w = average_weights([a, b], [3.0, 1.0])["w"]
    assert torch.allclose(w, 0.75 * a["w"] + 0.25 * b["w"], atol=1e-6)
    assert torch.equal(average_weights([a, b])["n"], a["n"])
    one = average_weights([a])  # documented: one or more states
    assert all(torch.equal(one[k], a[k]) and one[k] is not a[k] for k in a)


def test_inputs_are_not_mutated() -> None:
    base, a, _b = _states()
    keep = {k: v.clone() for k, v in base.items()}
    ta = task_vector(base, a)
    task_arithmetic(base, [ta], 3.0)
    average_weights([base, a])
    assert all(torch.equal(base[k], keep[k]) for k in base)


def test_customize_brick_trains_only_selected_parameters() -> None:
    data = make_task_data(["affine"], 100, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=16, n_heads=2, d_ff=32).eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    acc0 = task_accuracy(m, data)
    tau = customize_brick(m, data, steps=60, lr=1e-2, seed=0)
    assert all(".ffn." in k for k in tau)
    assert len(tau) == 8
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # no mutation
    tuned = BrickTransformer(data.vocab_size, data.seq_len, d_model=16, n_heads=2, d_ff=32)
    tuned.load_state_dict(task_arithmetic(m.state_dict(), [tau]))
    assert float(task_accuracy(tuned, data)[0]) > float(acc0[0])


def test_bad_inputs() -> None:
    base, a, _ = _states()
    with pytest.raises(ValueError, match="finetuned"):
        task_vector(base, {"w": a["w"]})
    with pytest.raises(ValueError, match="scales"):
        task_arithmetic(base, [task_vector(base, a)], [1.0, 2.0])
    with pytest.raises(ValueError, match="base lacks"):
        task_arithmetic(base, [{"z": torch.zeros(1)}])
    with pytest.raises(ValueError, match="weights"):
        average_weights([a, a], [0.0, 0.0])
    with pytest.raises(ValueError, match="states"):
        average_weights([a, {"w": torch.zeros(2, 2), "n": a["n"]}])
    with pytest.raises(TypeError, match="base"):
        task_vector([1, 2], a)  # type: ignore[arg-type]


def test_customize_brick_ignores_the_callers_grad_mode() -> None:
    """Under torch.no_grad() it failed with torch's own message."""
    data = make_task_data(["affine"], 30, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16).eval()
    ref = customize_brick(m, data, steps=3, seed=0)
    with torch.no_grad():
        tau = customize_brick(m, data, steps=3, seed=0)
    assert tau.keys() == ref.keys()
    assert all(torch.equal(tau[k], ref[k]) for k in ref)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^customize_brick needs"):
        customize_brick(m, data, steps=3, seed=0)
