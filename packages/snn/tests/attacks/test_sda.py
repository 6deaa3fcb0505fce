"""Sparse dynamic attack on binary inputs: flips, L0 bookkeeping, reduction."""

import pytest
import torch
from torch import nn

from neuronkit.snn import LIF, SeqFlatten, SeqLinear
from neuronkit.snn.attacks import attack_success, cw_margin, sda, snn_logits


def test_cw_margin() -> None:
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [1.0, 2.0, 0.0]])
    y = torch.tensor([0, 2, 1])
    torch.testing.assert_close(cw_margin(logits, y), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="y must"):
        cw_margin(logits, y[:2])
    with pytest.raises(ValueError, match="logits"):
        cw_margin(logits[:, :1], y)
    # were torch's "index 3 is out of bounds" and, for integer logits, an int64 overflow
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        cw_margin(logits, torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        cw_margin(logits, torch.tensor([0, -1, 1]))
    with pytest.raises(TypeError, match=r"^logits must be a floating-point tensor"):
        cw_margin(logits.long(), y)


def _net_and_data() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(SeqFlatten(), SeqLinear(12, 24), LIF(), SeqLinear(24, 3))
    with torch.no_grad():
        net[1].weight.mul_(6.0)  # a responsive hidden layer (an untrained one barely spikes)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 10, 12, generator=gen) < 0.3).float()
    with torch.no_grad():
        y = snn_logits(net, x).argmax(1)  # the model's own predictions: all "correct"
    return net, x, y


def test_sda_flips_are_binary_counted_and_fool_the_model() -> None:
    net, x, y = _net_and_data()
    x_in = x.clone()
    res = sda(net, x, y, k_init=4, max_iters=40, seed=0)
    torch.testing.assert_close(x, x_in)
    assert ((res.x_adv == 0) | (res.x_adv == 1)).all()
    flips = (res.x_adv != x).flatten(2).transpose(0, 1).reshape(10, -1).sum(1)
    assert torch.equal(flips, res.l0)
    assert res.success.any()
    assert attack_success(net, res.x_adv[:, res.success], y[res.success]).all()
    assert (res.l0[~res.success] == 0).all()
    assert (res.l0 <= res.l0_generation).all()
    assert res.entries == 6 * 12
    torch.testing.assert_close(res.l0_fraction, res.l0.double() / 72)
    again = sda(net, x, y, k_init=4, max_iters=40, seed=0)
    assert torch.equal(again.x_adv, res.x_adv)  # seeded


def test_sda_without_reduction_keeps_generation_flips() -> None:
    net, x, y = _net_and_data()
    res = sda(net, x[:, :4], y[:4], k_init=4, max_iters=40, reduce=False, seed=0)
    ok = res.success
    assert torch.equal(res.l0[ok], res.l0_generation[ok])


def test_sda_already_misclassified_needs_no_flip() -> None:
    net, x, y = _net_and_data()
    wrong = (y[:2] + 1) % 3
    res = sda(net, x[:, :2], wrong, seed=0)
    assert res.success.all()
    assert (res.l0 == 0).all()
    assert torch.equal(res.x_adv, x[:, :2])


def test_sda_bad_inputs() -> None:
    net, x, y = _net_and_data()
    with pytest.raises(ValueError, match="binary"):
        sda(net, x * 0.5, y)
    with pytest.raises(ValueError, match="k_init"):
        sda(net, x, y, k_init=0)
    with pytest.raises(ValueError, match="y must"):
        sda(net, x, y[:2])
    # a label outside the classes counted as an immediate success (argmax never equals it)
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        sda(net, x, torch.full_like(y, 3), seed=0)
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 2\]"):
        sda(net, x, torch.cat([y[:-1], torch.tensor([-1])]), seed=0)
    with pytest.raises(ValueError, match="seed or generator"):
        sda(net, x, y, seed=1, generator=torch.Generator())


def test_sda_takes_inference_tensors_and_runs_under_no_grad() -> None:
    """Events made under ``torch.inference_mode()`` failed with "Setting requires_grad=True on
    inference tensor outside InferenceMode"; inside it, sda now names itself."""
    net, x, y = _net_and_data()
    x, y = x[:, :2], y[:2]
    expected = sda(net, x, y, k_init=4, max_iters=3, seed=0)
    with torch.inference_mode():
        xi = x.clone()
    assert torch.equal(sda(net, xi, y, k_init=4, max_iters=3, seed=0).x_adv, expected.x_adv)
    with torch.no_grad():
        assert torch.equal(sda(net, x, y, k_init=4, max_iters=3, seed=0).x_adv, expected.x_adv)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^sda needs autograd"):
        sda(net, x, y, k_init=4, max_iters=3, seed=0)


def test_sda_runs_under_autocast() -> None:
    """Under autocast the flip scores come back in bfloat16; they fill a float32 buffer (an
    index put refused the dtype mismatch)."""
    net, x, y = _net_and_data()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = sda(net, x, y, k_init=4, max_iters=10, seed=0)
    assert ((res.x_adv == 0) | (res.x_adv == 1)).all()
