import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import grad_cam


def _gap_net(inplace: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),  # "0": the attributed layer
        nn.ReLU(inplace=inplace),
        nn.Conv2d(6, 4, 3, padding=1),  # "2"
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),  # "5"
    )


@pytest.fixture
def x():
    return torch.randn(5, 2, 7, 6, generator=torch.Generator().manual_seed(1))


def test_grad_cam_is_the_closed_form_before_a_global_average_and_a_linear_layer(x):
    # y_c = sum_k W_ck mean_hw A_k + b_c, so alpha_k = W_ck / (H W) at every position
    net, target = _gap_net(), torch.tensor([0, 2, 1, 1, 0])
    acts = net[:3](x)
    alpha = net[5].weight[target] / (7 * 6)  # [B, K]
    per_channel = alpha[:, :, None, None] * acts
    with torch.no_grad():
        torch.testing.assert_close(grad_cam(net, x, "2", target), per_channel.sum(1, keepdim=True))
        torch.testing.assert_close(grad_cam(net, x, "2", target, sum_channels=False), per_channel)
        torch.testing.assert_close(
            grad_cam(net, x, "2", target, relu=True), per_channel.sum(1, keepdim=True).relu()
        )


def test_a_dense_layer_is_weighed_by_its_gradient_itself(x):
    net = _gap_net()
    flat = net[:5](x)  # [B, 4]: the input of the linear layer
    cam = grad_cam(net, x, net[5], 1, layer_input=True)
    torch.testing.assert_close(cam, (net[5].weight[1] * flat).sum(1, keepdim=True).detach())


def test_in_place_ops_after_the_layer_do_not_change_the_maps(x):
    target = [0, 1, 2, 0, 1]
    plain, inplace = grad_cam(_gap_net(), x, "0", target), grad_cam(_gap_net(True), x, "0", target)
    torch.testing.assert_close(inplace, plain)
    assert (plain < 0).any()  # the conv's own output, before the ReLU


def test_frozen_models_names_and_modules_give_the_same_maps_and_nothing_changes(x):
    net = _gap_net().train()
    before = x.clone()
    reference = grad_cam(net, x, "2", 1)
    assert net.training
    torch.testing.assert_close(x, before)
    assert all(p.grad is None for p in net.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    torch.testing.assert_close(grad_cam(net, x, net[2], 1), reference)
    with torch.no_grad():
        torch.testing.assert_close(grad_cam(net, x, "2", 1), reference)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_upsampled_maps_have_the_inputs_size(x, mode):
    net = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2), nn.Flatten(), nn.LazyLinear(3))
    net(x)  # materialize the lazy layer
    cam = grad_cam(net, x, "0", 2)
    assert cam.shape == (5, 1, 3, 2)
    upsampled = grad_cam(net, x, "0", 2, upsample=mode)
    torch.testing.assert_close(upsampled, F.interpolate(cam, size=(7, 6), mode=mode))


def test_three_spatial_dimensions_upsample_trilinearly_and_not_bicubically():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv3d(1, 2, 3, stride=2), nn.Flatten(), nn.Linear(2 * 8, 2))
    x = torch.randn(2, 1, 5, 6, 5)
    cam = grad_cam(net, x, "0", 1)
    upsampled = grad_cam(net, x, "0", 1, upsample="bilinear")
    torch.testing.assert_close(upsampled, F.interpolate(cam, size=(5, 6, 5), mode="trilinear"))
    with pytest.raises(ValueError, match="upsample='bicubic' needs"):
        grad_cam(net, x, "0", 1, upsample="bicubic")


def test_one_spatial_dimension_upsamples_linearly():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv1d(3, 4, 3, stride=2), nn.Flatten(), nn.Linear(4 * 4, 2))
    x = torch.randn(2, 3, 10)
    cam = grad_cam(net, x, "0", 1)
    upsampled = grad_cam(net, x, "0", 1, upsample="bilinear")
    torch.testing.assert_close(upsampled, F.interpolate(cam, size=(10,), mode="linear"))


class _Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused, self.ignored = nn.Linear(4, 2), nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.ignored(x)  # runs, but the output does not depend on it
        return self.used(x)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda n, x: grad_cam(n, x, nn.Linear(2, 2)), ValueError, r"layer must be a submodule"),
        (lambda n, x: grad_cam(n, x, "9"), (KeyError, ValueError), r"9"),
        (lambda n, x: grad_cam(n, x, 2), TypeError, r"layer must be"),
        (lambda n, x: grad_cam(n, x, "2", 3), ValueError, r"target must be in \[0, 3\)"),
        (lambda n, x: grad_cam(n, x, "2", 0, relu=1), TypeError, r"relu must be bool"),
        (lambda n, x: grad_cam(n, x, "2", 0, upsample="area"), ValueError, r"upsample"),
        (lambda n, x: grad_cam(n, x.long(), "2", 0), TypeError, r"inputs must be a floating"),
        (lambda n, x: grad_cam(n, x, "5", 0, upsample="nearest"), ValueError, r"spatial"),
        (lambda n, x: grad_cam(lambda v: v, x, "2", 0), TypeError, r"model must be Module"),
    ],
)
def test_bad_arguments_name_the_argument(x, call, error, match):
    with pytest.raises(error, match=match):
        call(_gap_net(), x)


def test_layers_that_do_not_run_or_return_no_tensor_are_named():
    with pytest.raises(ValueError, match="did not run"):
        grad_cam(_Unused(), torch.randn(3, 4), "unused", 0)
    with pytest.raises(ValueError, match="does not depend on the layer"):
        grad_cam(_Unused(), torch.randn(3, 4), "ignored", 0)
    lstm = nn.Sequential(nn.LSTM(4, 3, batch_first=True))
    with pytest.raises(TypeError, match="output must be a tensor"):
        grad_cam(lstm, torch.randn(2, 5, 4), "0")
