"""The relative-timing spike task: layout, balance, seeding, and that frames hide the class."""

import math

import pytest
import torch

from neuronkit.snn.data.spike_timing import SpikeTiming, spike_timing_dataset, timing_patterns


def test_patterns_are_distinct_permutations() -> None:
    p = timing_patterns(6, 4, 3, seed=1)
    assert p.shape == (6, 4)
    assert len({tuple(r) for r in p.tolist()}) == 6
    for row in p.tolist():
        assert sorted(row) == [0, 3, 6, 9]
    assert torch.equal(p, timing_patterns(6, 4, 3, seed=1))


def test_shapes_balance_and_seed() -> None:
    d = spike_timing_dataset(
        n_classes=4,
        n_groups=3,
        channels_per_group=2,
        spacing=2,
        T=16,
        n_train=40,
        n_test=20,
        seed=3,
    )
    assert isinstance(d, SpikeTiming)
    assert d.x_train.shape == (16, 40, 6)
    assert d.x_test.shape == (16, 20, 6)
    assert d.y_train.dtype == torch.long
    assert torch.bincount(d.y_train, minlength=4).tolist() == [10] * 4
    assert set(d.x_train.unique().tolist()) <= {0.0, 1.0}
    again = spike_timing_dataset(
        n_classes=4,
        n_groups=3,
        channels_per_group=2,
        spacing=2,
        T=16,
        n_train=40,
        n_test=20,
        seed=3,
    )
    assert torch.equal(d.x_train, again.x_train)
    assert torch.equal(d.y_test, again.y_test)


def test_clean_samples_follow_the_class_order() -> None:
    d = spike_timing_dataset(
        n_classes=6,
        n_groups=4,
        channels_per_group=3,
        spacing=3,
        T=24,
        n_train=60,
        n_test=6,
        jitter=0.0,
        noise_rate=0.0,
        drop=0.0,
        seed=0,
    )
    x = d.x_train
    assert torch.all(x.sum(0) == 1)  # each channel spikes exactly once
    times = x.argmax(0)  # [N, C]
    for n in range(x.shape[1]):
        groups = times[n].view(4, 3)
        assert torch.all(groups == groups[:, :1])  # a volley per group
        rel = groups[:, 0] - groups[:, 0].min()
        assert torch.equal(rel, d.onsets[d.y_train[n]])


def test_frames_carry_no_class_information_without_timing() -> None:
    # the per-sample bag of frames (the sum over time of any per-frame feature) is the same
    # for every class when there is no jitter/noise: here, the per-channel spike counts
    d = spike_timing_dataset(
        n_classes=4,
        n_groups=4,
        channels_per_group=2,
        spacing=3,
        T=20,
        n_train=80,
        n_test=4,
        jitter=0.0,
        noise_rate=0.0,
        drop=0.0,
        seed=5,
    )
    counts = d.x_train.sum(0)
    assert torch.all(counts == 1)
    # and the set of frames is a permutation: sorted frame patterns agree across classes
    frames = [sorted(tuple(f.tolist()) for f in d.x_train[:, n] if f.any())
              for n in range(d.x_train.shape[1])]  # fmt: skip
    assert all(f == frames[0] for f in frames)


def test_noise_and_drop_rates() -> None:
    d = spike_timing_dataset(
        n_classes=2,
        n_groups=2,
        channels_per_group=50,
        spacing=2,
        T=30,
        n_train=200,
        n_test=2,
        jitter=0.0,
        noise_rate=0.05,
        drop=0.0,
        seed=1,
    )
    extra = d.x_train.sum() / (d.x_train.shape[1] * 100) - 1.0  # beyond the one pattern spike
    assert math.isclose(float(extra), 0.05 * 29, rel_tol=0.1)
    d = spike_timing_dataset(
        n_classes=2,
        n_groups=2,
        channels_per_group=50,
        spacing=2,
        T=30,
        n_train=200,
        n_test=2,
        jitter=0.0,
        noise_rate=0.0,
        drop=0.3,
        seed=1,
    )
    assert math.isclose(float(d.x_train.mean() * 30), 0.7, rel_tol=0.05)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        spike_timing_dataset(n_classes=30, n_groups=3)
    with pytest.raises(ValueError, match="T must be"):
        spike_timing_dataset(n_groups=4, spacing=5, T=10)
    with pytest.raises(ValueError, match="noise_rate"):
        spike_timing_dataset(noise_rate=1.0)
    with pytest.raises(TypeError, match="n_train"):
        spike_timing_dataset(n_train=10.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dtype"):
        spike_timing_dataset(dtype=torch.int64)
