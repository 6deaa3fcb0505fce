"""The theory.simplicity_bias reproduction builds the authors' data (harshays/
simplicitybiaspitfalls: margins 0.1 = half of each gap, 10% margin-band noise on the linear
coordinate of L^MS-7) and trains with their stopping rule."""

import torch

from neuronkit.theory.reproductions.simplicity_bias import _datasets, _mlp, _Protocol, _train


def test_margins_are_the_authors_half_gaps() -> None:
    train, test = _datasets(8, 5, 0.0, 3000, 500, 0)
    for d in (train, test):
        # linear coordinate U[0.1, 1] in absolute value: a gap (-0.1, 0.1), not (-0.05, 0.05)
        assert float(d.z[:, 0].abs().min()) >= 0.1 - 1e-6
        # 5 slabs separated by 4 gaps of width 2 * 0.1 (the widest empty intervals)
        values = d.z[:, 1:].reshape(-1).sort().values
        gaps = (values[1:] - values[:-1]).topk(4).values
        assert float(gaps.min()) >= 0.2 - 1e-3


def test_noisy_lms7_uses_the_margin_band_noise() -> None:
    train, test = _datasets(8, 7, 0.1, 4000, 2000, 0)
    for d, n in ((train, 4000), (test, 2000)):
        in_band = d.z[:, 0].abs() < 0.1
        assert int(in_band.sum()) == n // 10  # exactly 10% moved into (-0.1, 0.1)
        linear_acc = float(((d.z[:, 0] > 0).long() == d.y).float().mean())
        assert abs(linear_acc - 0.95) < 0.02
    assert torch.equal(train.rotation, test.rotation)


def test_training_stops_by_the_authors_rule() -> None:
    train, _ = _datasets(4, 5, 0.0, 512, 10, 0)
    p = _Protocol(
        width=16,
        lr=0.1,
        momentum=0.9,
        weight_decay=0.0,
        batch=64,
        check_every=50,
        epsilon=0.01,
        extra_updates=3,
        max_updates=10_000,
    )
    acc, updates, stopped = _train(_mlp(4, 16, 2, seed=0), train, p, seed=0)
    assert stopped
    assert acc >= 0.99
    assert updates % 50 == 3  # a multiple of check_every, then the extra updates
    capped = _Protocol(width=16, lr=0.1, momentum=0.0, weight_decay=0.0, batch=64, max_updates=7)
    _, updates, stopped = _train(_mlp(4, 16, 2, seed=0), train, capped, seed=0)
    assert (updates, stopped) == (7, False)
