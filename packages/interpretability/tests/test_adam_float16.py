"""The Adam trainers refuse a float16 model: Adam's eps is 0 there and a step turned weights
NaN (silently, or failing in a later forward on a dtype mismatch)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.interpretability.description.captioner import (
    ExemplarCaptioner,
    ExemplarEncoder,
    Vocabulary,
)
from neuronkit.interpretability.description.prior import DescriptionLM
from neuronkit.interpretability.fusion.contextual import (
    LateFusionClassifier,
    StreamCNN,
    train_head,
)
from neuronkit.interpretability.robustness import train_classifier

H = torch.float16
TEXTS = ["shapes", "red circles", "red shapes", "blue shapes"]


def _fused() -> nn.Module:
    object_cnn = StreamCNN(width=4, n_features=8, seed=0)
    context_cnn = StreamCNN(width=4, n_features=6, stride=2, seed=1)
    return LateFusionClassifier(object_cnn, context_cnn, 3, box=(4, 4, 8, 8))


def _captioner() -> nn.Module:
    vocab = Vocabulary.from_descriptions(TEXTS)
    return ExemplarCaptioner(vocab, ExemplarEncoder(width=4, seed=0), hidden_size=16, seed=0)


def _pretrain(m: nn.Module) -> object:
    labels = torch.zeros(4, 1, 8, 8, dtype=torch.long)
    return m.pretrain(torch.rand(4, 3, 8, 8, dtype=H), labels, epochs=1, batch_size=2)


def _fit(m: nn.Module) -> object:
    images, masks = torch.rand(2, 2, 3, 8, 8, dtype=H), torch.ones(2, 2, 1, 8, 8, dtype=H)
    return m.fit(images, masks, [["red shapes"], ["blue shapes"]], epochs=1)


def _head(m: nn.Module) -> object:
    return train_head(m, torch.rand(6, 1, 16, 16, dtype=H), torch.tensor([0, 1, 2] * 2), epochs=1)


def _classifier(m: nn.Module) -> object:
    x = torch.rand(8, 6, dtype=H)
    return train_classifier(m, x, torch.tensor([0, 1] * 4), epochs=1, batch_size=4)


TRAINERS: dict[str, tuple[str, Callable[[], nn.Module], Callable[[nn.Module], object]]] = {
    "DescriptionLM.fit": (
        "DescriptionLM",
        lambda: DescriptionLM(Vocabulary.from_descriptions(TEXTS), seed=0),
        lambda m: m.fit(TEXTS, epochs=1, batch_size=2),
    ),
    "ExemplarEncoder.pretrain": ("ExemplarEncoder", lambda: ExemplarEncoder(width=4), _pretrain),
    "ExemplarCaptioner.fit": ("ExemplarCaptioner", _captioner, _fit),
    "train_head": ("model", _fused, _head),
    "train_classifier": (
        "model",
        lambda: nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)),
        _classifier,
    ),
}


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_adam_trainers_refuse_a_float16_model_before_a_step(trainer: str) -> None:
    arg, build, train = TRAINERS[trainer]
    model = build().half()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=rf"^{arg}: Adam cannot train float16 parameters"):
        train(model)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
