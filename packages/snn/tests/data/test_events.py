"""Binary event frames from images."""

import pytest
import torch

from neuronkit.snn.data import EventDigits, event_frames, load_digits, load_event_digits


def _images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(5, 8, 8, generator=gen)


@pytest.mark.parametrize(("mode", "channels"), [("delta", 2), ("threshold", 1)])
def test_shapes_binary_and_seeded(mode: str, channels: int) -> None:
    img = _images()
    a = event_frames(img, 6, mode=mode, seed=1)
    assert a.shape == (6, 5, channels, 8, 8)
    assert a.dtype == img.dtype
    assert ((a == 0) | (a == 1)).all()
    assert torch.equal(a, event_frames(img, 6, mode=mode, seed=1))
    assert not torch.equal(a, event_frames(img, 6, mode=mode, seed=2))
    four = event_frames(img.unsqueeze(1).repeat(1, 2, 1, 1), 6, mode=mode, seed=1)
    assert four.shape == (6, 5, 2 * channels, 8, 8)


@pytest.mark.parametrize("mode", ["delta", "threshold"])
def test_float64_images_give_the_frames_of_their_float32_copy(mode: str) -> None:
    # the phases, start levels and noise were drawn in the images' dtype: float64 images got
    # another random stream, so about 40% of the frames' entries differed under the same seed
    img = _images()
    a = event_frames(img, 6, mode=mode, noise=0.1, seed=1)
    b = event_frames(img.double(), 6, mode=mode, noise=0.1, seed=1)
    assert b.dtype == torch.float64
    assert torch.equal(b.float(), a)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["delta", "threshold"])
def test_half_images_give_the_frames_of_their_float32_copy(mode: str, dtype: torch.dtype) -> None:
    # "same seed, same frames, for any dtype of images": the frames were computed in half
    # precision (rounded phases, shifts and accumulators), so a few hundred of 51200 entries
    # differed from those of the same images in float32
    img = load_digits().x_test[:50, 0].to(dtype)  # k / 16: exact in every dtype
    a = event_frames(img, 8, mode=mode, noise=0.1, seed=1)
    assert a.dtype == dtype
    assert torch.equal(a.float(), event_frames(img.float(), 8, mode=mode, noise=0.1, seed=1))


def test_threshold_mode_rate_codes_intensity() -> None:
    img = torch.tensor([0.0, 0.25, 0.5, 1.0]).reshape(1, 1, 4).repeat(200, 1, 1)
    ev = event_frames(img, 40, mode="threshold", seed=0)
    rate = ev.mean((0, 1, 2, 3))
    torch.testing.assert_close(rate, torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=0.03, rtol=0)
    half = event_frames(img, 40, mode="threshold", threshold=2.0, seed=0).mean((0, 1, 2, 3))
    torch.testing.assert_close(half, torch.tensor([0.0, 0.125, 0.25, 0.5]), atol=0.03, rtol=0)


def test_delta_mode_static_image_is_silent_and_motion_gives_both_polarities() -> None:
    img = _images()
    assert event_frames(img, 5, mode="delta", max_shift=0.0).sum() == 0
    ev = event_frames(img, 5, mode="delta", max_shift=1.0, threshold=0.05)
    assert ev[:, :, 0].sum() > 0
    assert ev[:, :, 1].sum() > 0
    assert not (ev[:, :, 0].bool() & ev[:, :, 1].bool()).any()  # ON and OFF never together


def test_noise_adds_background_events() -> None:
    img = torch.zeros(50, 8, 8)
    ev = event_frames(img, 10, mode="delta", noise=0.1, seed=0)
    assert abs(float(ev.mean()) - 0.1) < 0.01


def test_load_event_digits() -> None:
    d = load_event_digits(4, mode="threshold", seed=0)
    assert isinstance(d, EventDigits)
    assert d.x_train.shape[:3] == (4, d.y_train.shape[0], 1)
    assert d.x_test.shape[2:] == (1, 8, 8)
    assert d.y_train.dtype == torch.long


def test_bad_inputs() -> None:
    img = _images()
    with pytest.raises(ValueError, match="mode"):
        event_frames(img, 4, mode="dvs")
    with pytest.raises(ValueError, match="images"):
        event_frames(img * 2, 4)
    with pytest.raises(ValueError, match="images"):
        event_frames(img[0], 4)
    with pytest.raises(TypeError, match="images"):
        event_frames(img.long(), 4)
    with pytest.raises(ValueError, match="T"):
        event_frames(img, 0)
    with pytest.raises(ValueError, match="threshold"):
        event_frames(img, 4, threshold=0.0)
    with pytest.raises(ValueError, match="noise"):
        event_frames(img, 4, noise=1.0)
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        event_frames(img, 4, seed=2**64)


@pytest.mark.parametrize("mode", ["delta", "threshold"])
def test_no_images_give_no_frames(mode: str) -> None:
    """An empty batch failed in delta mode in torch's affine_grid ("Expected non-zero, positive
    output size")."""
    frames = event_frames(torch.rand(0, 1, 8, 8), 3, mode=mode)
    assert frames.shape == (3, 0, 2 if mode == "delta" else 1, 8, 8)


def test_delta_frames_with_one_step_still_move() -> None:
    images = load_digits().x_train[:50]
    assert float(event_frames(images, 1).sum()) > 0  # the frame before step 0 differs from it


def test_numpy_and_64_bit_seeds() -> None:
    """A numpy integer seed works as the same int (torch's Generator refuses numpy integers),
    and any seed below 2**64 (a DataLoader worker's) is accepted by the spike-timing data."""
    import numpy as np

    from neuronkit.snn import poisson_encode, spike_timing_dataset

    images = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(event_frames(images, 4, seed=np.int64(3)), event_frames(images, 4, seed=3))
    x = torch.rand(2, 5)
    assert torch.equal(poisson_encode(x, 4, seed=np.int64(3)), poisson_encode(x, 4, seed=3))
    spike_timing_dataset(n_train=4, n_test=2, seed=2**40)
