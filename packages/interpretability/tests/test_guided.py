import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    deconvolution,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    saliency,
)


class _TwoLayer(nn.Module):
    """``f(x) = W2 relu(W1 x)``: the ReLU rules in closed form."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(6, 4, generator=gen, dtype=torch.float64))
        self.w2 = nn.Parameter(torch.randn(3, 6, generator=gen, dtype=torch.float64))
        self.relu = nn.ReLU(inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x @ self.w1.T) @ self.w2.T


@pytest.fixture
def batch():
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("inplace", [False, True])
def test_rules_in_closed_form(batch, inplace):
    model = _TwoLayer(inplace)
    target = torch.tensor([0, 1, 2, 0, 1])
    w1, w2 = model.w1.detach(), model.w2.detach()
    g = w2[target]  # the gradient reaching the ReLU's output, [B, 6]
    active = (batch @ w1.T > 0).double()
    torch.testing.assert_close(
        guided_backprop(model, batch, target), (active * g.clamp(min=0)) @ w1, rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        deconvolution(model, batch, target), g.clamp(min=0) @ w1, rtol=0, atol=1e-12
    )
    # neither is the plain gradient: some gradients reaching the ReLU are negative
    assert (g < 0).any()
    plain = saliency(model, batch, target, abs=False)
    torch.testing.assert_close(plain, (active * g) @ w1, rtol=0, atol=1e-12)
    assert not torch.allclose(plain, guided_backprop(model, batch, target))


class _PreActivation(nn.Module):
    """``f(x) = v . (z + W relu(z))``, ``z = A x``: the ReLU's input also takes the skip path."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(2)
        self.a = nn.Parameter(torch.randn(5, 3, generator=gen, dtype=torch.float64))
        self.w = nn.Parameter(torch.randn(5, 5, generator=gen, dtype=torch.float64))
        self.v = nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.a.T
        return (z + self.relu(z) @ self.w.T) @ self.v


def test_only_the_relus_own_path_is_changed():
    model = _PreActivation()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, w, v = (p.detach() for p in (model.a, model.w, model.v))
    active = (x @ a.T > 0).double()
    through_relu = (w.T @ v).clamp(min=0)  # [5]: what the ReLU passes back, before its mask
    want = (v + active * through_relu) @ a  # the skip path's gradient v is left alone
    torch.testing.assert_close(guided_backprop(model, x), want, rtol=0, atol=1e-12)


def test_a_relu_module_called_twice_applies_the_rule_at_each_call(batch):
    relu = nn.ReLU()
    gen = torch.Generator().manual_seed(4)
    first, second = (torch.randn(4, 4, generator=gen, dtype=torch.float64) for _ in range(2))

    def model(x: torch.Tensor) -> torch.Tensor:  # relu(relu(x W1) W2) summed
        return relu(relu(x @ first) @ second).sum(1)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.relu = relu

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return model(x)

    h = batch @ first
    g2 = torch.ones(5, 4, dtype=torch.float64) * ((h.clamp(min=0) @ second) > 0)
    want = (((g2 @ second.T).clamp(min=0)) * (h > 0)) @ first.T
    torch.testing.assert_close(guided_backprop(Wrapped(), batch), want, rtol=0, atol=1e-12)


def test_relus_are_restored_also_after_an_error(batch):
    model = _TwoLayer()
    mine = model.relu.forward
    model.relu.forward = mine  # a caller's instance forward is put back
    guided_backprop(model, batch, 0)
    assert vars(model.relu)["forward"] is mine
    del model.relu.forward
    with pytest.raises(ValueError, match="target must be in"):
        deconvolution(model, batch, 7)
    assert "forward" not in vars(model.relu)
    assert torch.equal(model(batch), torch.relu(batch @ model.w1.T) @ model.w2.T)


def test_inputs_and_modes_are_left_alone(batch):
    model = _TwoLayer().train()
    before = batch.clone()
    guided_backprop(model, batch, 1)
    assert torch.equal(batch, before)
    assert model.training


def test_a_model_without_relu_modules_warns_and_gives_the_gradient(batch):
    model = nn.Sequential(nn.Linear(4, 3).double(), nn.Tanh())
    with pytest.warns(UserWarning, match="no nn.ReLU modules") as record:
        got = guided_backprop(model, batch, 2)
    assert record[0].filename == __file__  # points at the caller
    torch.testing.assert_close(got, saliency(model, batch, 2, abs=False))


def _cnn() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(54, 4),
    )


def test_guided_grad_cam_is_guided_backprop_times_the_upsampled_cam():
    model = _cnn()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    target = torch.tensor([1, 3])
    for upsample in ("nearest", "bilinear"):
        cam = grad_cam(model, x, "2", target, relu=True, upsample=upsample)
        got = guided_grad_cam(model, x, model[2], target, upsample=upsample)
        assert got.shape == x.shape
        torch.testing.assert_close(got, guided_backprop(model, x, target) * cam)
        assert got.abs().sum() > 0


def test_bad_arguments(batch):
    model = _TwoLayer()
    with pytest.raises(TypeError, match="model must be Module"):
        guided_backprop(lambda x: x, batch)
    with pytest.raises(TypeError, match="inputs must be a floating-point tensor"):
        deconvolution(model, batch.long(), 0)
    with pytest.raises(ValueError, match="inputs must be finite"):
        guided_backprop(model, torch.full_like(batch, float("nan")), 0)
    with pytest.raises(ValueError, match="1 to 3 spatial dimensions"):
        guided_grad_cam(_cnn(), torch.randn(2, 3), "2", 0)
    with pytest.raises(ValueError, match="upsample must be one of"):
        guided_grad_cam(_cnn(), torch.randn(1, 3, 8, 8), "2", 0, upsample="area")


def test_bicubic_upsampling_keeps_the_relu_map_non_negative():
    # bicubic interpolation of a ReLU'd map overshoots below 0 next to its zeros; cut there, the
    # Grad-CAM factor must not flip the sign of guided backpropagation
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1),  # "2": 6x6 -> 3x3
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    ).eval()
    x = torch.randn(4, 2, 6, 6)
    cam = grad_cam(net, x, "2", 0, relu=True, upsample="bicubic")
    assert cam.min() >= 0
    assert cam.max() > 0
    signed = grad_cam(net, x, "2", 0, relu=True)
    assert (signed == 0).any()  # the map has zeros for bicubic to overshoot around
    attr = guided_grad_cam(net, x, "2", 0, upsample="bicubic")
    assert (attr * guided_backprop(net, x, 0) >= 0).all()
