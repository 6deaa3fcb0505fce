"""Time-folded layers equal a per-step loop and stay the torch layers they alias."""

import pytest
import torch
from torch import nn

from neuronkit.snn import (
    SeqAdaptiveAvgPool2d,
    SeqAvgPool2d,
    SeqBatchNorm1d,
    SeqBatchNorm2d,
    SeqConv1d,
    SeqConv2d,
    SeqDropout,
    SeqFlatten,
    SeqLinear,
    SeqMaxPool2d,
    TimeDistributed,
    over_time,
)

CASES = [
    (SeqLinear(6, 4), nn.Linear, (3, 2, 6), (3, 2, 4)),
    (SeqConv1d(2, 3, 3, padding=1), nn.Conv1d, (3, 2, 2, 7), (3, 2, 3, 7)),
    (SeqConv2d(1, 4, 3, padding=1), nn.Conv2d, (3, 2, 1, 8, 8), (3, 2, 4, 8, 8)),
    (SeqAvgPool2d(2), nn.AvgPool2d, (3, 2, 4, 8, 8), (3, 2, 4, 4, 4)),
    (SeqMaxPool2d(2), nn.MaxPool2d, (3, 2, 4, 8, 8), (3, 2, 4, 4, 4)),
    (SeqAdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d, (3, 2, 4, 8, 8), (3, 2, 4, 1, 1)),
    (SeqFlatten(), nn.Flatten, (3, 2, 4, 2, 2), (3, 2, 16)),
]


@pytest.mark.parametrize(("layer", "base", "shape_in", "shape_out"), CASES)
def test_alias_is_torch_layer_applied_per_step(
    layer: nn.Module, base: type, shape_in: tuple, shape_out: tuple
) -> None:
    assert isinstance(layer, base)
    x = torch.randn(shape_in)
    y = layer(x)
    assert y.shape == shape_out
    per_step = torch.stack([base.forward(layer, x[t]) for t in range(x.shape[0])])
    torch.testing.assert_close(y, per_step)


def test_state_dict_keys_match_torch() -> None:
    assert SeqLinear(3, 2).state_dict().keys() == nn.Linear(3, 2).state_dict().keys()
    assert SeqBatchNorm2d(4).state_dict().keys() == nn.BatchNorm2d(4).state_dict().keys()


def test_batchnorm_pools_time_and_batch() -> None:
    bn = SeqBatchNorm1d(5, affine=False)
    x = torch.randn(4, 3, 5) * 3 + 1
    y = bn(x)
    flat = y.flatten(0, 1)
    torch.testing.assert_close(flat.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    bn2 = SeqBatchNorm2d(2)
    assert bn2(torch.randn(3, 2, 2, 4, 4)).shape == (3, 2, 2, 4, 4)


def test_time_distributed_wraps_any_stateless_module() -> None:
    inner = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3))
    td = TimeDistributed(inner)
    x = torch.randn(4, 2, 1, 8, 8)
    per_step = torch.stack([inner(x[t]) for t in range(4)])
    torch.testing.assert_close(td(x), per_step)
    torch.testing.assert_close(over_time(inner, x), per_step)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"x must have at least 3 dimensions \[T, B, \.\.\.\]"):
        SeqLinear(4, 2)(torch.randn(2, 4))  # a [B, N] batch without time
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        TimeDistributed(nn.Identity())(torch.randn(5))
    with pytest.raises(TypeError, match="x must be Tensor"):
        over_time(nn.Identity(), [1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="module must be Module"):
        TimeDistributed(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^fn must be callable as fn"):  # was "'str' object is..."
        over_time("relu", torch.randn(2, 3, 4))  # type: ignore[arg-type]


def test_seq_dropout_names_an_integer_input_and_takes_an_empty_sequence() -> None:
    """In training mode an int64 or bool input failed in the mask product ("result type Float
    can't be cast"), an empty sequence T = 0 with IndexError."""
    drop = SeqDropout(0.5).train()
    for dtype in (torch.int64, torch.bool):
        with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
            drop(torch.ones(3, 2, 4, dtype=dtype))
    empty = torch.rand(0, 2, 4)
    assert drop(empty).shape == (0, 2, 4)


@pytest.mark.parametrize(
    ("layer", "x", "error", "match"),
    [
        (SeqLinear(3, 2), torch.rand(4, 2, 5), ValueError,
         r"x must have size 3 \(in_features\) in the last dimension of \[T, B, \.\.\., in_f"),
        (SeqLinear(3, 2), torch.ones(4, 2, 3, dtype=torch.long), TypeError,
         "x must be a floating-point tensor"),
        (SeqConv2d(1, 2, 3), torch.rand(4, 2, 8, 8), ValueError,
         r"x must have 5 dimensions \[T, B, C, H, W\]"),
        (SeqConv2d(1, 2, 3), torch.rand(4, 2, 3, 8, 8), ValueError,
         r"x must have size 1 \(in_channels\) in dim 2"),
        (SeqConv1d(2, 3, 3), torch.rand(4, 2, 7), ValueError,
         r"x must have 4 dimensions \[T, B, C, L\]"),
        (SeqBatchNorm1d(3), torch.rand(4, 2, 5), ValueError,
         r"x must have size 3 \(num_features\) in dim 2"),
        (SeqBatchNorm2d(3), torch.rand(4, 2, 3, 5), ValueError, r"x must have 5 dimensions"),
        (SeqAvgPool2d(2), torch.rand(2, 4, 8), ValueError,
         r"x must have 5 dimensions \[T, B, C, H, W\]"),
        (SeqMaxPool2d(2), torch.rand(2, 4, 8), ValueError, r"x must have 5 dimensions"),
        (SeqAdaptiveAvgPool2d(1), torch.rand(2, 4, 8), ValueError, r"x must have 5 dimensions"),
        (SeqAvgPool2d(2), torch.rand(2, 4, 3, 1, 8, 8), ValueError, r"x must have 5 dimensions"),
    ],
)  # fmt: skip
def test_wrong_shape_or_dtype_is_named_in_time_major_terms(
    layer: nn.Module, x: torch.Tensor, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        layer(x)


def test_extra_leading_dims_still_reach_linear() -> None:
    lin = SeqLinear(3, 2)
    x = torch.rand(4, 2, 7, 3)  # nn.Linear takes [*, in_features]
    torch.testing.assert_close(lin(x), nn.Linear.forward(lin, x.flatten(0, 1)).unflatten(0, (4, 2)))


def test_seq_dropout_keeps_one_mask_for_all_steps() -> None:
    torch.manual_seed(0)
    drop = SeqDropout(0.5)
    y = drop(torch.ones(6, 4, 3, 5))
    assert torch.equal(y, y[:1].expand_as(y))  # the same units are dropped at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert torch.equal(SeqDropout(1.0)(torch.ones(2, 3, 4)), torch.zeros(2, 3, 4))
    x = torch.randn(3, 2, 4)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="T, B"):
        drop(torch.ones(4, 3))


def test_layers_declare_their_time_axis_and_fold_under_symbolic_tracing() -> None:
    # what tools that map channels by layer type read (neuronkit-pruning): the torch layer
    # applied with one leading time axis; dropout is elementwise
    for layer, _, _, _ in CASES:
        assert layer.leading_dims == 1
    assert SeqDropout(0.1).channel_local
    inner = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    # torch.fx records the fold (a Proxy is not validated); the traced graph equals the module
    traced = torch.fx.symbolic_trace(TimeDistributed(inner))
    methods = [n.target for n in traced.graph.nodes if n.op == "call_method"]
    assert "flatten" in methods
    assert "unflatten" in methods
    x = torch.randn(3, 2, 1, 6, 6)
    torch.testing.assert_close(traced(x), TimeDistributed(inner)(x))
