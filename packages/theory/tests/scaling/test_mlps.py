"""Inverted-bottleneck and plain MLPs (Bachmann et al., "Scaling MLPs")."""

import pytest
import torch
import torch.nn as nn

from neuronkit.theory.scaling import (
    BottleneckBlock,
    BottleneckMLP,
    PlainMLP,
    bottleneck_mlp_params,
    count_parameters,
    plain_mlp_params,
    plain_width_for_params,
)


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
@pytest.mark.parametrize(("width", "depth"), [(4, 0), (8, 1), (16, 3)])
def test_closed_form_parameter_counts(norm: str, width: int, depth: int) -> None:
    b = BottleneckMLP(64, 10, width, depth, norm=norm, seed=0)
    p = PlainMLP(64, 10, width, depth, norm=norm, seed=0)
    assert count_parameters(b) == bottleneck_mlp_params(64, 10, width, depth, norm=norm)
    assert count_parameters(p) == plain_mlp_params(64, 10, width, depth, norm=norm)


@pytest.mark.parametrize(("width", "depth"), [(8, 1), (16, 4), (48, 4), (32, 6)])
def test_plain_width_matches_parameters(width: int, depth: int) -> None:
    target = bottleneck_mlp_params(64, 10, width, depth)
    w = plain_width_for_params(target, 64, 10, depth)
    gap = abs(plain_mlp_params(64, 10, w, depth) - target)
    for other in (w - 1, w + 1):
        assert gap <= abs(plain_mlp_params(64, 10, other, depth) - target)
    assert gap / target < 0.05


def test_block_structure_and_residual() -> None:
    model = BottleneckMLP(12, 3, 5, 2, seed=1)
    assert isinstance(model.blocks[0], BottleneckBlock)
    assert model.blocks[0].up.out_features == 4 * 5  # expansion 4
    x = torch.randn(7, 12)
    with torch.no_grad():
        expected = model.linear_out(model.linear_in(x))
        z = model.linear_in(x)
        for norm, block in zip(model.norms, model.blocks, strict=True):
            h = block.down(
                nn.functional.gelu(
                    block.up(nn.functional.layer_norm(z, (5,), norm.weight, norm.bias))
                )
            )
            z = z + h
        assert torch.allclose(model(x), model.linear_out(z), atol=1e-6)
        for block in model.blocks:  # zero residual branches: the network is linear
            block.down.weight.zero_()
            block.down.bias.zero_()
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_plain_mlp_matches_manual_forward() -> None:
    model = PlainMLP(6, 2, 4, 2, seed=3)
    x = torch.randn(5, 6)
    with torch.no_grad():
        z = model.linear_in(x)
        for norm, layer in zip(model.norms, model.layers, strict=True):
            z = layer(nn.functional.gelu(norm(z)))
        assert torch.allclose(model(x), model.linear_out(z))


def test_flattens_images_and_seeds_without_touching_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = BottleneckMLP(64, 10, 8, 2, seed=5)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = BottleneckMLP(64, 10, 8, 2, seed=5)
    c = BottleneckMLP(64, 10, 8, 2, seed=6)
    x = torch.randn(3, 8, 8)
    assert a(x).shape == (3, 10)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))
    assert torch.equal(a(x), a(x.flatten(1)))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="width"):
        BottleneckMLP(64, 10, 0, 2)
    with pytest.raises(ValueError, match="norm"):
        PlainMLP(64, 10, 8, 2, norm="group")
    with pytest.raises(TypeError, match="depth"):
        PlainMLP(64, 10, 8, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expansion"):
        BottleneckMLP(64, 10, 8, 2, expansion=0)
    model = BottleneckMLP(64, 10, 8, 1)
    with pytest.raises(ValueError, match="64 features"):
        model(torch.randn(2, 63))
    with pytest.raises(ValueError, match="batch dimension"):
        model(torch.randn(64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        model([[0.0] * 64])
    # integer inputs failed in the first matmul (RuntimeError naming no argument)
    for net in (model, PlainMLP(64, 10, 8, 1)):
        with pytest.raises(TypeError, match=r"^x must be a floating tensor"):
            net(torch.ones(2, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="params"):
        plain_width_for_params(0, 64, 10, 2)
    with pytest.raises(TypeError, match="model"):
        count_parameters("model")  # type: ignore[arg-type]
