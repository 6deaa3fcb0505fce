"""Tests of the seeded robustness transforms."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.visualization.transforms import (
    Compose,
    Jitter,
    RandomRotate,
    RandomScale,
    standard_transforms,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch() -> torch.Tensor:
    return torch.rand(4, 2, 9, 9, generator=_gen(5))


def test_identities() -> None:
    x = _batch()
    for t in (Jitter(0), RandomScale([1.0]), RandomRotate(0.0), RandomRotate([0.0])):
        torch.testing.assert_close(t(x, _gen()), x)


def test_jitter_is_a_per_image_roll_and_seeded() -> None:
    x = _batch()
    out = Jitter(3)(x, _gen(1))
    again = Jitter(3)(x, _gen(1))
    torch.testing.assert_close(out, again)
    shifts = []
    for i in range(x.shape[0]):
        found = [
            (dy, dx)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if torch.equal(torch.roll(x[i], (dy, dx), dims=(-2, -1)), out[i])
        ]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 1  # independent draws per image


def test_rotate_90_matches_rot90() -> None:
    x = _batch()
    out = RandomRotate([90.0])(x, _gen())
    candidates = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, -1)]
    assert any(torch.allclose(out, c, atol=1e-5) for c in candidates)


def test_scale_enlarges_about_the_centre() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[..., 4, 4] = 1.0  # centre pixel
    out = RandomScale([2.0])(x, _gen())
    assert out[..., 4, 4] > 0  # the centre stays put
    assert torch.isclose(out.sum(), torch.tensor(4.0), atol=1e-4)  # area grows by 2^2
    small = RandomScale([0.5], padding_mode="border")(torch.ones(1, 1, 8, 8), _gen())
    torch.testing.assert_close(small, torch.ones(1, 1, 8, 8))


def test_transforms_are_differentiable() -> None:
    x = _batch().requires_grad_(True)
    out = standard_transforms(jitter=2, scales=(0.9, 1.1), degrees=10.0)(x, _gen())
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


def test_compose_is_seeded() -> None:
    t = Compose([Jitter(2), RandomRotate(15.0), RandomScale([0.9, 1.1])])
    torch.testing.assert_close(t(_batch(), _gen(3)), t(_batch(), _gen(3)))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="pixels"):
        Jitter(-1)
    with pytest.raises(ValueError, match="scales"):
        RandomScale([])
    with pytest.raises(ValueError, match="scales\\[0\\]"):
        RandomScale([0.0])
    with pytest.raises(ValueError, match="padding_mode"):
        RandomRotate(5.0, padding_mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="degrees"):
        RandomRotate(-5.0)
    with pytest.raises(ValueError, match="x must be an image batch"):
        Jitter(1)(torch.zeros(3, 4, 4), _gen())
    with pytest.raises(TypeError, match="generator"):
        Jitter(1)(torch.zeros(1, 1, 4, 4), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="transforms\\[0\\]"):
        Compose([3])  # type: ignore[list-item]


def test_compose_rejects_a_one_argument_transform_by_its_index() -> None:
    with pytest.raises(TypeError, match=r"transforms\[1\] must take \(x, generator\)"):
        Compose([Jitter(1), lambda x: x])
    Compose([Jitter(1), lambda x, g: x, lambda x, generator=None, **kw: x, print])  # taken
