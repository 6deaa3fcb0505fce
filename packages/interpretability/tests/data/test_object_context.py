"""Object-in-context scenes: layout, agreement, seeding, bad inputs."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.data import load_digits
from neuronkit.interpretability.data.object_context import context_texture, object_context


def test_layout_object_crop_and_range() -> None:
    data = object_context(scene_size=16, seed=0)
    digits, labels = load_digits()
    assert data.scenes.shape == (1797, 1, 16, 16)
    assert data.objects.shape == (1797, 1, 8, 8)
    assert data.box == (4, 4, 8, 8)
    torch.testing.assert_close(data.objects, digits)
    torch.testing.assert_close(data.scenes[:, :, 4:12, 4:12], digits)
    assert torch.equal(data.y, labels)
    assert float(data.scenes.min()) >= 0.0
    assert float(data.scenes.max()) <= 1.0


@pytest.mark.parametrize("agreement", [0.0, 0.5, 1.0])
def test_agreement_and_disagreements_uniform(agreement: float) -> None:
    data = object_context(agreement=agreement, copies=3, seed=1)
    assert len(data) == 3 * 1797
    assert abs(data.agreement - agreement) < 0.03
    wrong = data.context != data.y
    if agreement < 1.0:
        # disagreeing categories cover every other class
        shift = (data.context[wrong] - data.y[wrong]) % 10
        counts = torch.bincount(shift, minlength=10)
        assert counts[0] == 0
        assert int(counts[1:].min()) > 0.5 * float(counts[1:].float().mean())


def test_background_follows_context_category() -> None:
    """A phase-invariant matched filter (cos and sin gratings of every category) on the
    background recovers each scene's category."""
    data = object_context(noise=0.05, seed=2).subset(torch.arange(200))
    mask = torch.ones(24, 24)
    mask[8:16, 8:16] = 0.0  # ignore the occluding digit
    background = (data.scenes[:, 0] - 0.5) * mask
    cats = torch.arange(10)
    cos = context_texture(cats, 10, 24)[:, 0] - 0.5
    sin = context_texture(cats, 10, 24, phase=torch.full((10,), torch.pi / 2))[:, 0] - 0.5
    energy = (
        torch.einsum("nhw,khw->nk", background, cos) ** 2
        + torch.einsum("nhw,khw->nk", background, sin) ** 2
    )
    assert torch.equal(energy.argmax(1), data.context)
    tex = context_texture(cats, 10, 24)
    assert tex.shape == (10, 1, 24, 24)
    flat = tex.flatten(1)
    assert float(torch.cdist(flat, flat).add(torch.eye(10) * 1e3).min()) > 1.0


def test_seeded_split_keeps_digits_together() -> None:
    a, b = object_context(copies=2, seed=3), object_context(copies=2, seed=3)
    torch.testing.assert_close(a.scenes, b.scenes)
    assert not torch.equal(a.scenes, object_context(copies=2, seed=4).scenes)
    train, test = a.split(0.7, seed=0)
    assert len(train) + len(test) == len(a)
    assert not set(train.digit_index.tolist()) & set(test.digit_index.tolist())
    sub = a.subset([0, 3])
    assert torch.equal(sub.y, a.y[[0, 3]])
    assert sub.box == a.box
    assert torch.equal(a.subset(a.y == 1).y, a.y[a.y == 1])  # a mask, not indices 0 and 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"agreement": 1.5}, ValueError, "agreement"),
        ({"scene_size": 8}, ValueError, "scene_size"),
        ({"copies": 0}, ValueError, "copies"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"seed": -1}, ValueError, "seed"),
        ({"classes": [3, 3]}, ValueError, "classes"),
    ],
)
def test_bad_inputs(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        object_context(**kwargs)


def test_context_texture_bad_inputs() -> None:
    with pytest.raises(ValueError, match="categories"):
        context_texture(torch.tensor([0, 10]), 10, 24)
    with pytest.raises(TypeError, match="categories"):
        context_texture(torch.tensor([0.0]), 10, 24)
    with pytest.raises(ValueError, match="phase"):
        context_texture(torch.tensor([0, 1]), 10, 24, phase=torch.zeros(3))
    with pytest.raises(ValueError, match="train_fraction"):
        object_context(seed=0).split(1.0)
