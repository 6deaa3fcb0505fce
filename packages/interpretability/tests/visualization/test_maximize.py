"""Tests of the activation-maximization engine and its objectives."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.interpretability.visualization.maximize import (
    Objective,
    channel,
    class_logit,
    maximize_activation,
    objective_values,
    unit,
)
from neuronkit.interpretability.visualization.params import PixelImage
from neuronkit.interpretability.visualization.regularizers import (
    L2,
    CenterBias,
    Regularizer,
    TotalVariation,
)
from neuronkit.interpretability.visualization.transforms import standard_transforms


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(1, 4, 3, padding=1)),
                ("relu", nn.ReLU()),
                ("flat", nn.Flatten()),
                ("fc", nn.Linear(4 * 6 * 6, 3)),
            ]
        )
    )


def _no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


def test_objectives_read_the_right_values() -> None:
    model = _net()
    x = torch.rand(5, 1, 6, 6)
    conv = model.conv(x)
    out = model(x)
    torch.testing.assert_close(objective_values(model, x, class_logit(2)), out[:, 2])
    torch.testing.assert_close(
        objective_values(model, x, channel("conv", 1)), conv[:, 1].mean((1, 2))
    )
    torch.testing.assert_close(
        objective_values(model, x, unit("conv", (3, 2, 4))), conv[:, 3, 2, 4]
    )
    torch.testing.assert_close(objective_values(model, x, unit("conv", 7)), conv.flatten(1)[:, 7])
    combo = channel("conv", 0) - 0.5 * class_logit(1)
    torch.testing.assert_close(
        objective_values(model, x, combo), conv[:, 0].mean((1, 2)) - 0.5 * out[:, 1]
    )
    torch.testing.assert_close(objective_values(model, x, -class_logit(0)), -out[:, 0])
    assert _no_hooks(model)


def test_linear_model_optimum_is_the_sign_pattern_of_the_weights() -> None:
    """For logit = w . x with x in [0, 1], the maximum sets x = 1 where w > 0, else 0."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    res = maximize_activation(model, class_logit(0), shape=(1, 1, 4, 4), steps=300, lr=0.3, seed=0)
    w = model[1].weight[0].detach().view(4, 4)
    strong = w.abs() > 0.05
    expected = (w > 0).float()
    assert torch.equal((res.image[0, 0] > 0.5).float()[strong], expected[strong])
    assert res.activation[0] > res.initial_activation[0]
    assert res.history[-1] > res.history[0]


def test_engine_with_regularizers_and_transforms_is_deterministic_and_clean() -> None:
    model = _net()
    model.train()
    kwargs = {
        "param": "fourier",
        "shape": (2, 1, 6, 6),
        "transforms": standard_transforms(jitter=1),
        "regularizers": [CenterBias(), L2(0.1), TotalVariation(0.1)],
        "steps": 30,
        "lr": 0.05,
        "seed": 3,
        "record_every": 10,
    }
    a = maximize_activation(model, channel("conv", 2), **kwargs)
    b = maximize_activation(model, channel("conv", 2), **kwargs)
    torch.testing.assert_close(a.image, b.image)
    assert a.image.shape == (2, 1, 6, 6)
    assert [s for s, _ in a.snapshots] == [10, 20, 30]
    assert (a.activation > a.initial_activation).all()
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # model untouched
    assert _no_hooks(model)


def test_param_instance_is_not_modified() -> None:
    model = _net()
    param = PixelImage((1, 1, 6, 6), seed=0)
    before = param().detach().clone()
    res = maximize_activation(model, class_logit(0), param=param, steps=5)
    torch.testing.assert_close(param().detach(), before)
    assert not torch.allclose(res.image, before)


def test_hooks_are_removed_when_the_objective_raises() -> None:
    model = _net()

    def boom(acts):
        raise RuntimeError("objective failed")

    with pytest.raises(RuntimeError, match="objective failed"):
        maximize_activation(model, Objective(boom, ["conv"]), shape=(1, 1, 6, 6), steps=3)
    assert _no_hooks(model)
    with pytest.raises(ValueError, match="index must address"):
        maximize_activation(model, unit("conv", (9, 0, 0)), shape=(1, 1, 6, 6), steps=3)
    assert _no_hooks(model)


def test_hooks_are_removed_when_the_model_raises() -> None:
    class Flaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _net()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 4:
                raise RuntimeError("model failed")
            return self.body(x)

    model = Flaky()
    with pytest.raises(RuntimeError, match="model failed"):
        maximize_activation(model, channel("body.conv", 0), shape=(1, 1, 6, 6), steps=10)
    assert _no_hooks(model)
    assert model.training


def test_bad_inputs() -> None:
    model = _net()
    with pytest.raises(ValueError, match="layer must name a submodule"):
        maximize_activation(model, channel("conv9", 0), shape=(1, 1, 6, 6))
    with pytest.raises(ValueError, match="steps"):
        maximize_activation(model, class_logit(0), shape=(1, 1, 6, 6), steps=0)
    with pytest.raises(ValueError, match="shape must be given"):
        maximize_activation(model, class_logit(0))
    with pytest.raises(TypeError, match="param"):
        maximize_activation(model, class_logit(0), param=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="objective"):
        maximize_activation(model, "logit", shape=(1, 1, 6, 6))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="regularizers"):
        maximize_activation(model, class_logit(0), shape=(1, 1, 6, 6), regularizers=L2())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape and init must be None"):
        maximize_activation(
            model, class_logit(0), param=PixelImage((1, 1, 6, 6)), shape=(1, 1, 6, 6)
        )
    with pytest.raises(TypeError, match="index"):
        unit("conv", "3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index"):
        channel("conv", -1)
    with pytest.raises(ValueError, match="inputs"):
        objective_values(model, torch.zeros(0, 1, 6, 6), class_logit(0))


class _Permute(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


def test_channel_objective_on_a_channels_last_layer() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(1, 4, 3, padding=1)),
                ("nhwc", _Permute()),
                ("last", nn.Linear(4, 5)),
            ]
        )
    )
    x = torch.rand(3, 1, 6, 6)
    acts = model(x)  # [B, H, W, C] = [3, 6, 6, 5]
    for dim in (-1, 3):
        got = objective_values(model, x, channel("last", 4, dim=dim))
        torch.testing.assert_close(got, acts[..., 4].mean((1, 2)))
    assert "dim=-1" in repr(channel("last", 4, dim=-1))
    with pytest.raises(ValueError, match=r"index must be a channel .*size 5 along dim -1"):
        objective_values(model, x, channel("last", 5, dim=-1))
    with pytest.raises(ValueError, match=r"dim must be an axis .*4 dimensions.*batch"):
        objective_values(model, x, channel("last", 0, dim=4))
    with pytest.raises(ValueError, match=r"dim must be .*batch axis 0, got 0"):
        channel("last", 0, dim=0)
    with pytest.raises(TypeError, match="dim must be an integer"):
        channel("last", 0, dim=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("param", ["pixel", "fourier"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_a_model_gets_an_image_of_its_dtype(param: str, dtype: torch.dtype) -> None:
    """The Fourier spectrum of a low-precision model is rendered in float32 (torch has no
    bfloat16 complex numbers: 0.5.19 raised view_as_complex's error), then cast."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).to(dtype)
    init = torch.rand(1, 1, 4, 4, dtype=dtype)
    result = maximize_activation(model, class_logit(0), init=init, steps=2, param=param)
    assert result.image.dtype == dtype
    assert bool(torch.isfinite(result.image.float()).all())


def test_maximize_activation_names_inference_mode_and_works_under_no_grad() -> None:
    model = _net()
    expected = maximize_activation(model, class_logit(1), shape=(1, 1, 6, 6), steps=3)
    with torch.no_grad():
        out = maximize_activation(model, class_logit(1), shape=(1, 1, 6, 6), steps=3)
    torch.testing.assert_close(out.image, expected.image)
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="maximize_activation needs autograd"),
    ):
        maximize_activation(model, class_logit(1), shape=(1, 1, 6, 6), steps=1)


def test_a_tensor_given_as_shape_gives_a_short_message() -> None:
    with pytest.raises(ValueError, match="shape must be a sequence") as info:
        maximize_activation(_net(), class_logit(1), shape=torch.rand(8, 3, 32, 32), steps=1)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("index", [np.int64(7), torch.tensor(7), np.array(7)])
def test_numpy_and_0d_indices_are_ints(index) -> None:
    model, x = _net(), torch.rand(2, 1, 6, 6)
    expected = objective_values(model, x, unit("conv", 7))
    torch.testing.assert_close(objective_values(model, x, unit("conv", index)), expected)
    torch.testing.assert_close(
        objective_values(model, x, unit("conv", (np.int64(0), torch.tensor(1), 3))),
        objective_values(model, x, unit("conv", (0, 1, 3))),
    )
    torch.testing.assert_close(
        objective_values(model, x, channel("conv", index % 4)),
        objective_values(model, x, channel("conv", 3)),
    )
    torch.testing.assert_close(
        objective_values(model, x, class_logit(index % 3)),
        objective_values(model, x, class_logit(1)),
    )


def test_a_one_argument_transform_is_named_with_the_expected_signature() -> None:
    model = _net()
    for transforms, name in ((lambda x: x.flip(-1), "transforms"), ([_flip], r"transforms\[0\]")):
        with pytest.raises(TypeError, match=rf"{name} must take \(x, generator\).*\(x\)"):
            maximize_activation(
                model, class_logit(0), shape=(1, 1, 6, 6), steps=1, transforms=transforms
            )
    ok = maximize_activation(  # a callable with *args, or two arguments, is taken
        model, class_logit(0), shape=(1, 1, 6, 6), steps=1, transforms=[lambda *a: a[0]]
    )
    assert ok.image.shape == (1, 1, 6, 6)


def _flip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def test_a_penalty_that_is_not_a_tensor_names_the_regularizer() -> None:
    class FloatPenalty(Regularizer):
        def penalty(self, image: torch.Tensor, progress: float) -> torch.Tensor:
            return 0.1  # type: ignore[return-value]

    with pytest.raises(
        TypeError,
        match=r"regularizers\[1\] \(FloatPenalty\) penalty must "
        r"return a tensor .* got float",
    ):
        maximize_activation(
            _net(),
            class_logit(0),
            shape=(1, 1, 6, 6),
            steps=1,
            regularizers=[L2(0.1), FloatPenalty()],
        )


def test_a_gradient_filter_under_autocast_keeps_the_gradient_dtype() -> None:
    """CenterBias blurs the image gradient with a convolution, which autocast runs in bfloat16:
    autograd refused the hook's dtype change."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = maximize_activation(
            model, class_logit(0), shape=(1, 1, 6, 6), regularizers=[CenterBias()], steps=3, seed=0
        )
    assert result.image.dtype == torch.float32


def test_a_gradient_filter_of_the_wrong_shape_is_named() -> None:
    class Crop(Regularizer):
        def filter_gradient(self, grad: torch.Tensor, progress: float) -> torch.Tensor:
            return grad[..., 1:]

    with pytest.raises(ValueError, match=r"Crop\.filter_gradient must return a tensor shaped"):
        maximize_activation(
            _net(), class_logit(0), shape=(1, 1, 6, 6), regularizers=[Crop()], steps=1
        )


def test_a_missing_activation_names_the_layer_and_the_available_ones() -> None:
    # the lookup used to fail with a bare ``KeyError: None`` (or ``KeyError: 'conv'``)
    acts = {"fc": torch.randn(2, 3)}
    with pytest.raises(KeyError, match=r"class_logit\(1\) reads: missing \[output\] .*\['fc'\]"):
        class_logit(1)(acts)
    both = class_logit(1, "fc") + channel("conv", 0)
    with pytest.raises(KeyError, match=r"missing \['conv'\] \(available: \['fc'\]\)"):
        both(acts)
    with pytest.raises(TypeError, match="activations must be a mapping of layer name"):
        channel("conv", 0)(torch.randn(2, 4, 6, 6))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"activations\['conv'\] must be a Tensor, got list"):
        channel("conv", 0)({"conv": [1.0, 2.0]})  # type: ignore[dict-item]


def test_a_channel_of_an_integer_layer_is_averaged_as_floats() -> None:
    acts = {"conv": torch.arange(8).reshape(1, 2, 2, 2)}
    torch.testing.assert_close(channel("conv", 1)(acts), torch.tensor([5.5]))
