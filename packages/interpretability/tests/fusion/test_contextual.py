"""Contextual fusion: shapes, late-fusion decomposition, regularizer, attacks, blur."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import fgsm_attack
from neuronkit.interpretability.fusion import (
    LateFusionClassifier,
    StreamClassifier,
    StreamCNN,
    crop_box,
    gaussian_blur,
    robustness_curves,
    stream_penalty,
    train_head,
)

BOX = (4, 4, 8, 8)


def _fused(seed: int = 0) -> LateFusionClassifier:
    return LateFusionClassifier(
        StreamCNN(width=4, n_features=8, seed=seed),
        StreamCNN(width=4, n_features=6, stride=2, seed=seed + 1),
        3,
        box=BOX,
    )


def _scenes(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 16, 16, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_stream_cnn_shapes_and_seeding() -> None:
    x = torch.rand(5, 1, 8, 8)
    a, b = StreamCNN(seed=1), StreamCNN(seed=1)
    assert a(x).shape == (5, 64)
    torch.testing.assert_close(a(x), b(x))
    assert not torch.allclose(a(x), StreamCNN(seed=2)(x))
    assert StreamCNN(stride=2)(torch.rand(2, 1, 24, 24)).shape == (2, 64)


def test_crop_box_is_a_differentiable_view() -> None:
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    torch.testing.assert_close(crop_box(x, BOX), x[:, :, 4:12, 4:12])
    with pytest.raises(ValueError, match="does not fit"):
        crop_box(x, (10, 10, 8, 8))
    with pytest.raises(TypeError, match="box"):
        crop_box(x, (1, 2, 3))  # type: ignore[arg-type]


def test_late_fusion_is_sum_of_stream_logits() -> None:
    model = _fused()
    x, _ = _scenes()
    lo, lc = model.stream_logits(x)
    torch.testing.assert_close(model(x), lo + lc + model.head.bias)
    # the object stream reads only its box: changing the outside changes only the context share
    x2 = x.clone()
    x2[:, :, :2] = 0.0
    lo2, lc2 = model.stream_logits(x2)
    torch.testing.assert_close(lo2, lo)
    assert not torch.allclose(lc2, lc)


def test_object_only_model_is_blind_outside_box_and_fgsm_matches_crop_attack() -> None:
    backbone = StreamCNN(width=4, n_features=8, seed=0)
    model = StreamClassifier(backbone, 3, box=BOX)
    x, y = _scenes()
    adv = fgsm_attack(model, x, y, eps=0.1)
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[4:12, 4:12] = False
    torch.testing.assert_close(adv[:, :, outside], x[:, :, outside])
    # the same attack on the crop alone (a model without box on 8x8 inputs)
    crop_model = StreamClassifier(backbone, 3)
    crop_model.head.load_state_dict(model.head.state_dict())
    adv_crop = fgsm_attack(crop_model, crop_box(x, BOX), y, eps=0.1)
    torch.testing.assert_close(crop_box(adv, BOX), adv_crop)


def test_fused_attack_reaches_both_streams() -> None:
    model = _fused()
    x, y = _scenes()
    adv = fgsm_attack(model, x, y, eps=0.05)
    diff = (adv - x).abs()
    assert float(diff[:, :, 4:12, 4:12].max()) == pytest.approx(0.05, abs=1e-6)
    assert float(diff[:, :, :4].max()) == pytest.approx(0.05, abs=1e-6)


def test_stream_penalty_and_train_head() -> None:
    x, y = _scenes(60, seed=1)
    model = _fused()
    w = model.head.weight.detach()
    assert float(stream_penalty(model).detach()) == pytest.approx(float(w[:, :8].pow(2).sum()))
    assert float(stream_penalty(model, "context").detach()) == pytest.approx(
        float(w[:, 8:].pow(2).sum())
    )
    backbone_before = [p.detach().clone() for p in model.object_backbone.parameters()]
    hist = train_head(model, x, y, epochs=30, lr=0.05, seed=0)
    assert hist[-1] < hist[0]
    for p, q in zip(model.object_backbone.parameters(), backbone_before, strict=True):
        torch.testing.assert_close(p, q)  # frozen
    strong = _fused()
    train_head(strong, x, y, epochs=30, lr=0.05, alpha=1.0, seed=0)
    assert float(stream_penalty(strong).detach()) < 0.5 * float(stream_penalty(model).detach())
    with pytest.raises(ValueError, match="alpha"):
        train_head(StreamClassifier(StreamCNN(), 3), x, y, epochs=1, alpha=0.1)
    with pytest.raises(ValueError, match="labels"):
        train_head(model, x, y[:-1], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_head(model, x, y, epochs=0)


def test_train_head_reads_frozen_backbones_in_eval_mode() -> None:
    # a backbone in training mode: its BatchNorm normalized each chunk of 1024 features by the
    # chunk's statistics and updated its running statistics, though the backbone is frozen
    backbone = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    backbone.n_features = 4
    model = StreamClassifier(backbone, 3).train()
    x, y = _scenes(1100, seed=2)
    running = backbone[1].running_mean.clone()
    reference = StreamClassifier(copy.deepcopy(backbone), 3)
    reference.head.load_state_dict(model.head.state_dict())
    history = train_head(model, x, y, epochs=1, seed=0)
    assert torch.equal(backbone[1].running_mean, running)
    assert model.training
    assert backbone[1].training
    assert history == train_head(reference.eval(), x, y, epochs=1, seed=0)


def test_gaussian_blur_matches_explicit_kernel_and_preserves_constants() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 12, 12, generator=gen)
    before = x.clone()
    sigma = 1.3
    out = gaussian_blur(x, sigma)
    torch.testing.assert_close(x, before)  # not mutated
    r = 4
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    k2 = torch.outer(g, g) / g.sum() ** 2
    padded = F.pad(x.reshape(6, 1, 12, 12), (r, r, r, r), mode="replicate")
    ref = F.conv2d(padded, k2[None, None]).reshape(2, 3, 12, 12)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    const = torch.full((1, 1, 9, 9), 0.37)
    torch.testing.assert_close(gaussian_blur(const, 2.0), const)
    torch.testing.assert_close(gaussian_blur(x, 0.0), x)
    assert float(out.var()) < float(x.var())
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(x, -1.0)
    with pytest.raises(ValueError, match="x"):
        gaussian_blur(x[0], 1.0)


def test_robustness_curves_monotone_in_fgsm_and_levels() -> None:
    torch.manual_seed(0)
    x, y = _scenes(40, seed=2)
    model = _fused()
    train_head(model, x, y, epochs=60, lr=0.05, seed=0)
    model.eval()
    c = robustness_curves(
        model, x, y, fgsm_eps=(0.0, 0.3), pgd_eps=(0.3,), blur_sigmas=(0.0, 1.0), pgd_steps=5
    )
    assert c.fgsm[0] == pytest.approx(c.clean)
    assert c.blur[0] == pytest.approx(c.clean)
    assert c.fgsm[1] <= c.clean
    assert c.pgd[0] <= c.fgsm[1] + 1e-9 or c.pgd[0] <= c.clean
    assert c.at("fgsm", 0.3) == c.fgsm[1]
    with pytest.raises(ValueError, match="level"):
        c.at("blur", 2.0)
    with pytest.raises(ValueError, match="fgsm_eps"):
        robustness_curves(model, x, y, fgsm_eps=(-0.1,))
    with pytest.raises(TypeError, match="model"):
        robustness_curves(nn.Linear(2, 2).weight, x, y)  # type: ignore[arg-type]
    noisy = nn.Sequential(model, nn.Dropout(0.9)).train()  # every accuracy in eval mode
    c = robustness_curves(noisy, x, y, fgsm_eps=(0.0,), pgd_eps=(0.0,))
    assert c.fgsm[0] == c.pgd[0] == c.clean
    assert noisy.training


def test_robustness_curves_reject_inputs_outside_the_clamp_range() -> None:
    # clamping normalized inputs to (0, 1) would score the tiniest attack or blur on clamped
    # inputs: the curves dropped from the clean accuracy at eps = 0 to chance at eps = 1e-7
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 3)).eval()
    x = torch.randn(16, 1, 8, 8) * 2
    with torch.no_grad():
        y = model(x).argmax(1)
    with pytest.raises(ValueError, match=r"inputs must lie in clamp \(0\.0, 1\.0\)"):
        robustness_curves(model, x, y, fgsm_eps=(1e-7,), blur_sigmas=(1e-3,))
    c = robustness_curves(
        model, x, y, fgsm_eps=(0.0, 1e-7), pgd_eps=(1e-7,), blur_sigmas=(1e-3,), clamp=None
    )
    assert c.clean == 1.0
    assert c.fgsm == [1.0, 1.0]
    assert c.pgd == c.blur == [1.0]
    low, high = float(x.min()), float(x.max())
    assert robustness_curves(model, x, y, fgsm_eps=(1e-7,), clamp=(low, high)).fgsm == [1.0]


def test_constructor_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        LateFusionClassifier(StreamCNN(), StreamCNN(), 1, box=BOX)
    with pytest.raises(ValueError, match="n_features"):
        StreamClassifier(nn.Identity(), 3)
    with pytest.raises(ValueError, match="box"):
        StreamClassifier(StreamCNN(), 3, box=(-1, 0, 8, 8))
    with pytest.raises(ValueError, match="stride"):
        StreamCNN(stride=0)
    with pytest.raises(ValueError, match="stream"):
        _fused().stream_weight("both")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "box", [(np.int64(4), 4, np.int32(8), 8), (torch.tensor(4), np.array(4), 8, 8), [4, 4, 8, 8]]
)
def test_numpy_and_0d_box_values_are_ints(box) -> None:
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(crop_box(x, box), crop_box(x, BOX))
    assert StreamClassifier(StreamCNN(), 3, box=box).box == BOX
    with pytest.raises(TypeError, match="box must be a") as info:
        crop_box(x, torch.rand(4, 64, 64).unbind(0))  # type: ignore[arg-type]
    assert len(str(info.value)) < 200


def test_training_and_attacks_under_no_grad_and_inference_mode() -> None:
    x, y = _scenes()
    torch.manual_seed(0)  # the head's initial weights
    expected = train_head(_fused(), x, y, epochs=2, seed=0)
    torch.manual_seed(0)
    with torch.no_grad():
        assert train_head(_fused(), x, y, epochs=2, seed=0) == expected
    model = _fused()
    curves = robustness_curves(model, x, y, fgsm_eps=(0.1,), blur_sigmas=(1.0,))
    with torch.no_grad():
        assert robustness_curves(model, x, y, fgsm_eps=(0.1,), blur_sigmas=(1.0,)) == curves
    with torch.inference_mode():
        assert robustness_curves(model, x, y, blur_sigmas=(1.0,)).blur == curves.blur
        with pytest.raises(RuntimeError, match="robustness_curves needs autograd"):
            robustness_curves(model, x, y, fgsm_eps=(0.1,))
        with pytest.raises(RuntimeError, match="train_head needs autograd"):
            train_head(model, x, y, epochs=1)


def test_train_head_labels_and_robustness_levels_bad_inputs() -> None:
    torch.manual_seed(0)
    model = StreamClassifier(StreamCNN(1, 4, 8), 3)
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"labels must hold class labels in \[0, 2\]"):
        train_head(model, x, torch.tensor([0, 1, 2, 3]), epochs=1)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        train_head(model, x, torch.tensor([True, False, True, False]), epochs=1)
    y = torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match="fgsm_eps must be a sequence of numbers"):
        robustness_curves(model, x, y, fgsm_eps="0.1")
    with pytest.raises(TypeError, match="fgsm_eps must be a sequence of numbers"):
        robustness_curves(model, x, y, fgsm_eps=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"blur_sigmas\[1\] must be >= 0"):
        robustness_curves(model, x, y, blur_sigmas=(1.0, -1.0))
