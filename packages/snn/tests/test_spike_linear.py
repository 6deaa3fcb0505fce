"""SpikeLinear: an nn.Linear whose forward (and weight gradient) sum the weights of the inputs
that spiked; the same values as nn.Linear up to the order of the sums."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.snn import LIF, SpikeLinear, _native, to_nir


def _spikes(*shape: int, rate: float = 0.2, seed: int = 0, dtype: Any = torch.float32) -> Any:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < rate).to(dtype)


def _layer(n_in: int, n_out: int, bias: bool = True, dtype: Any = torch.float32) -> SpikeLinear:
    torch.manual_seed(1)
    return SpikeLinear(n_in, n_out, bias=bias).to(dtype)


def _count_event_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the event-driven kernels' runs (a result, not a fallback)."""
    calls = {"forward": 0, "weight_grad": 0}
    forward, weight_grad = _native.spike_linear, _native.spike_weight_grad

    def counted_forward(*args: Any) -> Any:
        result = forward(*args)
        calls["forward"] += result is not None
        return result

    def counted_weight_grad(*args: Any) -> Any:
        calls["weight_grad"] += 1
        return weight_grad(*args)

    monkeypatch.setattr(_native, "spike_linear", counted_forward)
    monkeypatch.setattr(_native, "spike_weight_grad", counted_weight_grad)
    return calls


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("n_in", "n_out", "bias"),
    [(256, 256, True), (100, 37, True), (70, 300, False), (1, 1, True), (33, 64, True)],
)
def test_forward_and_gradients_match_nn_linear(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, n_in: int, n_out: int, bias: bool
) -> None:
    calls = _count_event_calls(monkeypatch)
    layer = _layer(n_in, n_out, bias, dtype)
    x = _spikes(6, 5, n_in, dtype=dtype).requires_grad_()
    y = layer(x)
    assert calls["forward"] == 1
    g = torch.randn(y.shape, dtype=dtype, generator=torch.Generator().manual_seed(2))
    y.backward(g)
    assert calls["weight_grad"] == 1
    got = (y.detach(), x.grad, layer.weight.grad, None if layer.bias is None else layer.bias.grad)
    x.grad = None
    layer.zero_grad()
    ref = F.linear(x, layer.weight, layer.bias)
    ref.backward(g)
    want = (
        ref.detach(),
        x.grad,
        layer.weight.grad,
        None if layer.bias is None else layer.bias.grad,
    )
    # float32: the same sums in another order; float64 sums of float32 weights are exact
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 0, "atol": 1e-12}
    for a, b in zip(got, want, strict=True):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, **tol)


@pytest.mark.usefixtures("compiled")
def test_inference_gives_the_training_forward() -> None:
    layer, x = _layer(64, 48), _spikes(4, 3, 64)
    with torch.no_grad():
        inference = layer(x)
    assert torch.equal(layer(x), inference)


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("value", [0.5, -1.0, 2.0, float("nan"), float("inf")])
def test_non_binary_input_takes_the_dense_product(
    monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    calls = _count_event_calls(monkeypatch)
    layer, x = _layer(64, 32), _spikes(300, 64)
    x[257, 5] = value  # in a later row block than the first
    x.requires_grad_()
    y = layer(x)
    assert calls["forward"] == 0
    torch.testing.assert_close(
        y, F.linear(x, layer.weight, layer.bias), rtol=0, atol=0, equal_nan=True
    )
    y.sum().backward()
    assert calls["weight_grad"] == 0  # the dense gradient after a dense forward


@pytest.mark.usefixtures("compiled")
def test_negative_zero_is_no_spike() -> None:
    layer, x = _layer(16, 8), _spikes(5, 16)
    signed = torch.where(x == 0, torch.tensor(-0.0), x)
    with torch.no_grad():
        assert torch.equal(layer(signed), layer(x))


@pytest.mark.usefixtures("compiled")
def test_the_same_bits_for_any_thread_count() -> None:
    # 512 x 256 x 256 multiply-adds: above the size that splits rows across threads
    layer, x = _layer(256, 256), _spikes(512, 256)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = layer(x.requires_grad_())
        one.sum().backward()
        grad_one = layer.weight.grad.clone()
        layer.zero_grad()
        torch.set_num_threads(2)
        assert _native._rows(512, 256 * 256) != [(0, 512)]  # split in two
        two = layer(x)
        two.sum().backward()
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert torch.equal(grad_one, layer.weight.grad)


def test_without_the_compiled_loops_it_is_nn_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "_library", lambda: None)
    layer, x = _layer(64, 32), _spikes(7, 64).requires_grad_()
    y = layer(x)
    assert torch.equal(y, F.linear(x, layer.weight, layer.bias))
    y.sum().backward()
    assert x.grad is not None
    assert layer.weight.grad is not None


def test_an_nn_linear_with_its_state_dict_and_errors() -> None:
    layer = _layer(8, 4)
    assert isinstance(layer, nn.Linear)
    assert list(layer.state_dict()) == list(nn.Linear(8, 4).state_dict())
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        layer(torch.zeros(3, 7))
    with pytest.raises(RuntimeError):
        layer(torch.zeros(3, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"^x must be Tensor, got list"):  # was AttributeError
        layer([[0.0] * 8])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_features must be >= 0"):
        SpikeLinear(-1, 4)
    with pytest.raises(TypeError, match="out_features must be an integer"):
        SpikeLinear(4, 2.5)  # type: ignore[arg-type]


@pytest.mark.usefixtures("compiled")
def test_empty_inputs_and_silent_rows() -> None:
    layer = _layer(16, 8)
    empty = layer(torch.zeros(0, 16))
    assert empty.shape == (0, 8)
    empty.sum().backward()
    assert torch.equal(layer.weight.grad, torch.zeros(8, 16))
    layer.zero_grad()
    x = torch.zeros(4, 16, requires_grad=True)  # no spike at all: the bias, no weight gradient
    y = layer(x)
    assert torch.equal(y.detach(), layer.bias.detach().expand(4, 8))
    y.sum().backward()
    assert torch.equal(layer.weight.grad, torch.zeros(8, 16))


@pytest.mark.parametrize("shape", [(0,), (4, 0), (3, 4, 0)])
def test_no_input_features_gives_the_bias_as_nn_linear(shape: tuple[int, ...]) -> None:
    # the constructor admits in_features=0 (as nn.Linear); the forward's reshape(-1, 0) raised
    # torch's "cannot reshape tensor of 0 elements" instead of returning [..., out_features]
    layer = SpikeLinear(0, 3)
    x = torch.zeros(shape, requires_grad=True)
    y = layer(x)
    assert torch.equal(y, F.linear(x, layer.weight, layer.bias))
    assert y.shape == (*shape[:-1], 3)
    y.sum().backward()
    assert x.grad is not None
    assert x.grad.shape == shape


@pytest.mark.usefixtures("compiled")
def test_a_spiking_network_keeps_its_spike_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    def net(linear: type[nn.Linear]) -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(linear(64, 64), LIF(tau=2.0), linear(64, 32), LIF(tau=2.0))

    calls = _count_event_calls(monkeypatch)
    x = _spikes(16, 8, 64)
    dense, events = net(nn.Linear), net(SpikeLinear)
    events.load_state_dict(dense.state_dict())
    with torch.no_grad():
        assert torch.equal(events(x), dense(x))
    assert calls["forward"] == 2


def test_exports_to_nir_as_a_linear_layer() -> None:
    graph = to_nir(nn.Sequential(_layer(8, 4), LIF(tau=2.0, reset="zero")), (8,))
    assert "Affine" in {type(node).__name__ for node in graph.nodes.values()}


def _saved(layer: nn.Module, x: torch.Tensor) -> list[tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of each tensor autograd keeps for ``layer(x)``'s backward."""
    saved: list[tuple[tuple[int, ...], torch.dtype]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append((tuple(t.shape), t.dtype))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    return saved


@pytest.mark.usefixtures("compiled")
def test_keeps_the_spikes_not_the_input_for_backward() -> None:
    layer, x = _layer(64, 32), _spikes(40, 64)  # an input needing no gradient: no weight kept
    n = int(x.sum())
    assert _saved(layer, x) == [((41,), torch.int64), ((n,), torch.int32)]
    kept = _saved(layer, x.clone().requires_grad_())
    assert sorted(kept, key=str) == sorted(
        [((32, 64), torch.float32), ((41,), torch.int64), ((n,), torch.int32)], key=str
    )
    dense = x.clone()
    dense[3, 3] = 0.5  # not binary: the dense product keeps the input, as nn.Linear
    assert _saved(layer, dense) == [((40, 64), torch.float32)]


def test_autocast_gets_its_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_event_calls(monkeypatch)
    layer, x = _layer(32, 16), _spikes(5, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = layer(x), F.linear(x, layer.weight, layer.bias)
    assert got.dtype == want.dtype == torch.bfloat16
    assert torch.equal(got, want)
    assert calls["forward"] == 0
