"""The Adam trainers refuse a float16 model: Adam's eps is 0 there and a step turned weights
NaN (train_ann silently; train_at_latency failed later on "x must be finite")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.snn.training import train_ann, train_at_latency
from neuronkit.snn.training.iir import cnn_ann, iir_cnn

TRAINERS: dict[str, tuple[str, Callable[[], nn.Module], Callable[..., object]]] = {
    "train_at_latency": (
        "model",
        lambda: iir_cnn(channels=(2, 2, 2), hidden=4, num_classes=3, seed=0),
        lambda m, x, y: train_at_latency(m, x, y, 2, 1, batch_size=4, show_progress=False),
    ),
    "train_ann": (
        "ann",
        lambda: cnn_ann(channels=(2, 2, 2), hidden=4, num_classes=3, seed=0),
        lambda m, x, y: train_ann(m, x, y, 1, batch_size=4, show_progress=False),
    ),
}


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_adam_trainers_refuse_a_float16_model_before_a_step(trainer: str) -> None:
    arg, build, train = TRAINERS[trainer]
    model = build().half()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.rand(8, 1, 8, 8, dtype=torch.float16), torch.randint(0, 3, (8,))
    with pytest.raises(TypeError, match=rf"^{arg}: Adam cannot train float16 parameters"):
        train(model, x, y)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
