"""Synaptic operations: dense MACs and event-driven SynOps, counted exactly per layer."""

import itertools

import pytest
import torch
from torch import nn

from neuronkit.snn import (
    LIF,
    SeqBatchNorm2d,
    SeqConv2d,
    SeqDropout,
    SeqFlatten,
    SeqLinear,
    TimeDistributed,
    synaptic_operations,
)


def _brute_conv2d_synops(conv: nn.Conv2d, x: torch.Tensor) -> int:
    """For every output element, count the non-zero inputs its kernel taps read."""
    n, c_in, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
    )
    out = nn.Conv2d.forward(conv, x)  # the folded [T*B, C, H, W] batch
    per_group_in, per_group_out = c_in // conv.groups, conv.out_channels // conv.groups
    total = 0
    for b, o, i, j in itertools.product(
        range(n), range(conv.out_channels), range(out.shape[2]), range(out.shape[3])
    ):
        g = o // per_group_out
        for c, u, v in itertools.product(range(per_group_in), range(kh), range(kw)):
            r, s = i * sh - ph + u * dh, j * sw - pw + v * dw
            if 0 <= r < h and 0 <= s < w and x[b, g * per_group_in + c, r, s] != 0:
                total += 1
    return total


def test_linear_counts_by_hand() -> None:
    net = nn.Sequential(SeqLinear(4, 3), LIF(), SeqLinear(3, 2))
    x = torch.zeros(5, 2, 4)
    x[0, 0, 1] = x[2, 1, 3] = x[4, 1, 0] = 1.0  # 3 events
    ops = synaptic_operations(net, x)
    assert list(ops) == ["0", "2", "total"]
    first = ops["0"]
    assert (first.macs, first.synops, first.events, first.inputs) == (120, 9, 3, 40)
    assert first.input_density == pytest.approx(3 / 40)
    assert ops["total"].macs == 120 + 5 * 2 * 3 * 2
    assert ops["total"].synops == 9 + ops["2"].events * 2


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"), [(1, 0, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1)]
)
def test_convolution_synops_equal_a_brute_force_count(
    stride: int, padding: int, dilation: int, groups: int
) -> None:
    torch.manual_seed(0)
    conv = SeqConv2d(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = (torch.rand(2, 3, 4, 7, 7) > 0.6).float()
    ops = synaptic_operations(conv, x)["total"]
    assert ops.synops == _brute_conv2d_synops(conv, x.flatten(0, 1))
    out = conv(x)
    assert ops.macs == out.numel() * conv.weight[0].numel()  # the usual MAC convention
    dense = synaptic_operations(conv, torch.ones_like(x))["total"]
    assert dense.macs == ops.macs
    assert dense.synops <= dense.macs
    assert (dense.synops == dense.macs) == (padding == 0)  # only padding taps read no input


def test_layers_inside_time_distributed_and_repeated_calls_add_up() -> None:
    inner = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    net = TimeDistributed(inner)
    x = (torch.rand(4, 2, 1, 8, 8) > 0.5).float()
    ops = synaptic_operations(net, x)
    assert set(ops) == {"module.0", "module.2", "total"}
    assert ops["module.0"].inputs == 4 * 2 * 64

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    twice = synaptic_operations(Twice(), torch.ones(2, 3))["fc"]
    assert twice.macs == 2 * 2 * 3 * 3


def test_no_weight_layer_and_bad_model() -> None:
    ops = synaptic_operations(nn.Sequential(SeqFlatten(), LIF()), torch.ones(3, 2, 2, 2))
    assert list(ops) == ["total"]
    assert ops["total"].synops_per_mac == 0.0
    with pytest.raises(TypeError, match="model must be"):
        synaptic_operations(lambda x: x, torch.ones(2))  # type: ignore[arg-type]


def test_counting_runs_in_eval_mode_and_restores_it() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(SeqConv2d(2, 4, 3), SeqBatchNorm2d(4), LIF(), SeqDropout(0.5)).train()
    net[1].eval()  # a submodule's own mode comes back too
    x = torch.rand(3, 2, 2, 6, 6)
    running = net[1].running_mean.clone()
    first = synaptic_operations(net, x)["total"]
    assert synaptic_operations(net, x)["total"] == first  # no dropout draws
    assert torch.equal(net[1].running_mean, running)
    assert [m.training for m in net] == [True, False, True, True]


@pytest.mark.parametrize("delays", ["learned", "fixed", "none"])
def test_delayed_synapses_are_counted(delays: str) -> None:
    from neuronkit.snn.synapses import DelayedLinear

    torch.manual_seed(0)
    layer = DelayedLinear(4, 3, 5, delays=delays, seed=0).eval()
    x = (torch.rand(7, 2, 4) > 0.5).float()
    kernel = layer.kernel().detach()
    width = kernel.shape[2]
    # brute force: an event at step t reaches tap j (delay width - 1 - j) if it arrives by T
    expected = sum(
        int(kernel[o, i, j] != 0)
        for t, b, i in (x != 0).nonzero().tolist()
        for o in range(3)
        for j in range(width)
        if t + width - 1 - j < x.shape[0]
    )
    ops = synaptic_operations(layer, x)[""]
    assert ops.synops == expected
    assert ops.macs == 7 * 2 * 3 * 4 * width  # the dense kernel, as count_macs counts it
    assert ops.events == int((x != 0).sum())
