"""Synaptic operations: dense MACs and event-driven SynOps, counted exactly per layer."""

import itertools
import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

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
from neuronkit.snn.synops import LayerOps, _add


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


@pytest.mark.parametrize(
    ("model", "x", "match"),
    [
        (nn.Sequential(SeqLinear(3, 4), LIF()), torch.rand(4, 2, 5), r"x must have size 3 \(in_f"),
        (nn.Sequential(SeqLinear(3, 4), LIF()), torch.tensor(1.0), "x must have at least 3 dim"),
        (nn.Sequential(SeqConv2d(1, 2, 3), LIF()), torch.rand(2, 1, 8, 8), "x must have 5 dim"),
        (nn.Sequential(SeqConv2d(1, 2, 3)), torch.rand(4, 2, 2, 8, 8), r"x must have size 1 \("),
    ],
)
def test_a_bad_input_gets_the_layers_own_error(model: nn.Module, x: torch.Tensor, match: str):
    """The counting ran before the layer checked its input: a wrong feature size failed in a
    reshape ("shape '[-1, 3]' is invalid"), a 0-d input with IndexError, a wrong channel count
    in torch's conv."""
    with pytest.raises(ValueError, match=match):
        synaptic_operations(model, x)


def test_a_layer_called_with_a_keyword_input_is_counted() -> None:
    # The pre-hook read args[0]: IndexError for fc(input=x).
    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(input=x)

    x = (torch.rand(4, 6) > 0.5).float()
    ops = synaptic_operations(Keyword(), x)
    assert ops["fc"] == LayerOps(macs=72, synops=int(x.sum()) * 3, events=int(x.sum()), inputs=24)


def test_uncounted_weight_modules_are_named_in_one_warning() -> None:
    class RawSynapse(nn.Module):  # a weight layer the counter does not know
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(5, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self.w)

    net = nn.Sequential(SeqLinear(6, 8), LIF(), RawSynapse(), LIF(), SeqLinear(5, 3))
    x = torch.rand(4, 2, 6)
    with pytest.warns(UserWarning, match=r"not counted.*'2' \(RawSynapse\)") as record:
        ops = synaptic_operations(net, x)
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller
    assert ops["total"] == _add(ops["0"], ops["4"])
    with pytest.warns(UserWarning, match=r"'<model>' \(ConvTranspose1d\)"):
        synaptic_operations(nn.ConvTranspose1d(2, 3, 3), torch.rand(1, 2, 5))
    # neurons with per-neuron parameters, norms, parametrized and unused weights: no warning
    lin = nn.Linear(6, 4)
    parametrize.register_parametrization(lin, "weight", nn.Identity())

    class Quiet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            tau = nn.Parameter(torch.full((2, 4), 2.0))
            self.body = nn.Sequential(SeqLinear(6, 4), nn.LayerNorm([2, 4]), LIF(tau=tau))
            self.unused = RawSynapse()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    quiet = Quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synaptic_operations(quiet, x)
        synaptic_operations(TimeDistributed(lin), x)


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


# ---- the closed-form counts against the convolutions they replace ------------------------------


def _dense_conv_ops(conv: nn.Module, x: torch.Tensor) -> tuple[int, int, int, int]:
    """Reference: the layer's own convolution of the event map through all-ones filters."""
    events = (x != 0).to(torch.float64)
    ones = torch.ones_like(conv.weight, dtype=torch.float64)
    reached = conv._conv_forward(events, ones, None)
    return reached.numel() * ones[0].numel(), int(reached.sum()), int(events.sum()), x.numel()


def _dense_delayed_ops(layer: nn.Module, x: torch.Tensor) -> tuple[int, int, int, int]:
    """Reference: the causal conv1d of the event map through the kernel's non-zero taps."""
    events = (x != 0).to(torch.float64)
    taps = (layer.kernel().detach() != 0).to(torch.float64)
    u = torch.nn.functional.pad(events.permute(1, 2, 0), (taps.shape[2] - 1, 0))
    reached = torch.nn.functional.conv1d(u, taps)
    return reached.numel() * taps[0].numel(), int(reached.sum()), int(events.sum()), x.numel()


def _graded_events(shape: tuple[int, ...], rng: random.Random) -> torch.Tensor:
    values = torch.randn(shape) * rng.choice([1.0, 3.0])  # graded, negative ones too
    return torch.where(torch.rand(shape) < rng.random(), values, torch.zeros(()))


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch, the reference
def test_convolution_counts_equal_the_dense_reference_on_a_random_grid(monkeypatch) -> None:
    from dataclasses import astuple

    from neuronkit.snn import synops

    # the closed form must answer every configuration the layer can run (no dense fallback)
    def no_dense(*args: object) -> None:
        raise AssertionError("dense fallback used")

    monkeypatch.setattr(synops, "_conv_ops_dense", no_dense)
    rng = random.Random(0)
    torch.manual_seed(0)
    convs = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
    checked, cases = set(), 0
    while cases < 150:
        nd = rng.choice([1, 2, 2, 3])
        groups = rng.choice([1, 1, 2, 3])
        mode = rng.choice(["zeros", "reflect", "replicate", "circular"])
        padding: object = rng.choice(
            [rng.randint(0, 3), tuple(rng.randint(0, 3) for _ in range(nd)), "same", "valid"]
        )
        stride = 1 if padding == "same" else tuple(rng.randint(1, 3) for _ in range(nd))
        conv = convs[nd](
            groups * rng.randint(1, 3),
            groups * rng.randint(1, 3),
            tuple(rng.randint(1, 4) for _ in range(nd)),
            stride=stride,
            padding=padding,
            dilation=tuple(rng.randint(1, 2) for _ in range(nd)),
            groups=groups,
            padding_mode=mode,
        )
        batch = rng.choice([(), (0,), (1,), (3,)])  # unbatched and empty batches too
        x = _graded_events((*batch, conv.in_channels, *(rng.randint(1, 7) for _ in range(nd))), rng)
        try:
            expected = _dense_conv_ops(conv, x)
        except RuntimeError:  # kernel larger than the padded input, padding wider than input
            continue
        assert astuple(synaptic_operations(conv, x)[""]) == expected, (conv, tuple(x.shape))
        checked.add((nd, mode, isinstance(padding, str), len(batch) > 0 and batch[0] == 0))
        cases += 1
    assert len(checked) >= 25  # most ranks x padding modes x kinds of padding and batch
    seq = SeqConv2d(4, 6, 3, padding=1, groups=2, padding_mode="circular")
    x = _graded_events((3, 2, 4, 5, 6), rng)
    assert astuple(synaptic_operations(seq, x)[""]) == _dense_conv_ops(seq, x.flatten(0, 1))


def test_a_layer_with_its_own_convolution_is_counted_by_it() -> None:
    class EveryOtherRow(nn.Conv2d):
        def _conv_forward(self, x, weight, bias):  # type: ignore[no-untyped-def]
            return super()._conv_forward(x[..., ::2, :], weight, bias)

    conv = EveryOtherRow(2, 3, 3)
    x = (torch.rand(2, 2, 8, 8) > 0.5).float()
    from dataclasses import astuple

    assert astuple(synaptic_operations(conv, x)[""]) == _dense_conv_ops(conv, x)


def test_delayed_counts_equal_the_dense_reference_on_a_random_grid(monkeypatch) -> None:
    from dataclasses import astuple

    from neuronkit.snn import synops
    from neuronkit.snn.synapses import DelayedLinear

    def no_dense(*args: object) -> None:
        raise AssertionError("dense fallback used")

    monkeypatch.setattr(synops, "_delayed_ops_dense", no_dense)
    rng = random.Random(1)
    for seed in range(80):
        mode = ("learned", "fixed", "none")[seed % 3]
        layer = DelayedLinear(
            rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 8), delays=mode, seed=seed
        )
        if mode == "learned" and rng.random() < 0.5:
            layer.round_delays()  # integer taps
        with torch.no_grad():  # pruned synapses: no taps at all
            layer.weight[torch.rand(layer.weight.shape) < 0.3] = 0
        shape = (rng.randint(1, 12), rng.choice([0, 1, 3]), layer.in_features)  # T < D too
        x = _graded_events(shape, rng)
        expected = _dense_delayed_ops(layer, x)
        assert astuple(synaptic_operations(layer, x)[""]) == expected, (layer, shape)
