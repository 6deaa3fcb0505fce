"""Tests of sensitive-neuron detection (neuronkit.pruning.send.sensitivity)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.send.sensitivity import neuron_sensitivity, top_sensitive

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_variance_across_checkpoints_not_inputs() -> None:
    t, n, h = 4, 3, 5
    a = torch.zeros(t, n, h)
    a[:, :, 1] = torch.arange(n, dtype=torch.float32)  # varies across inputs only
    a[:, :, 3] = torch.tensor([0.0, 2.0, 0.0, 2.0])[:, None]  # varies across checkpoints
    s = neuron_sensitivity(a, "variance")
    assert s[1] == 0
    assert s[3] == pytest.approx(1.0)
    assert int(s.argmax()) == 3


def test_net_change_and_combined() -> None:
    a = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 3.0]])  # [T=3, H=2]
    change = neuron_sensitivity(a, "net_change")
    assert torch.allclose(change, torch.tensor([2.0, 2.0]))
    var = neuron_sensitivity(a, "variance")
    assert torch.allclose(neuron_sensitivity(a, "combined"), change * var)


def test_reference_numpy_variance() -> None:
    a = torch.randn(5, 7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = a.numpy().var(axis=0).mean(axis=0)
    assert torch.allclose(neuron_sensitivity(a), torch.from_numpy(ref))


def test_top_sensitive_order_count_and_ties() -> None:
    s = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.0])
    assert top_sensitive(s, 0.4).tolist() == [1, 3]
    assert top_sensitive(s, 0.0).numel() == 0
    assert top_sensitive(s, 1.0).tolist() == [1, 3, 2, 0, 4]


@pytest.mark.parametrize(
    ("args", "err", "match"),
    [
        ((torch.randn(1, 3, 4),), ValueError, "at least 2 checkpoints"),
        ((torch.randn(2, 3, 4, 5),), ValueError, "activations must be"),
        ((torch.ones(2, 3, dtype=torch.long),), TypeError, "floating point"),
        ((torch.randn(2, 3), "std"), ValueError, "method"),
        (([[1.0]],), TypeError, "activations"),
    ],
)
def test_bad_sensitivity_inputs(args: tuple, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        neuron_sensitivity(*args)


def test_bad_top_inputs() -> None:
    with pytest.raises(ValueError, match="fraction"):
        top_sensitive(torch.ones(3), 1.5)
    with pytest.raises(ValueError, match="sensitivity must be"):
        top_sensitive(torch.ones(2, 3), 0.5)


@pytest.mark.parametrize("method", ["variance", "net_change", "combined"])
def test_no_tracking_input_is_an_error_not_nan(method: str) -> None:
    """[T, 0, H]: a mean over no tracking input is undefined, so an error naming activations
    (it used to return NaN scores, which top_sensitive would then rank)."""
    with pytest.raises(ValueError, match="activations"):
        neuron_sensitivity(torch.zeros(3, 0, 4), method)
