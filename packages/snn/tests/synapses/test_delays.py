"""Learnable delays (DCLS): kernel construction, causal delayed synapses, variants, schedule."""

import math

import pytest
import torch
from torch import nn

from neuronkit.snn.synapses import (
    DelayedLinear,
    SigmaSchedule,
    clamp_delays,
    count_parameters,
    delay_kernel,
    delay_param_groups,
    delay_parameters,
    delayed_linear,
    gaussian_delay_taps,
    hard_delay_kernel,
    round_delays,
    weight_parameters,
)


def _reference(x: torch.Tensor, w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """y[t, b, o] = sum_i w[o, i] x[t - d[o, i], b, i], by loops."""
    T, B, C = x.shape
    y = torch.zeros(T, B, w.shape[0], dtype=x.dtype)
    for o in range(w.shape[0]):
        for i in range(C):
            k = int(d[o, i])
            if k < T:
                y[k:, :, o] += w[o, i] * x[: T - k, :, i]
    return y


def test_hard_delays_equal_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(9, 3, 4, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64)
    d = torch.randint(0, 6, (5, 4), generator=g).double()
    y = delayed_linear(x, hard_delay_kernel(w, d, max_delay=6))
    torch.testing.assert_close(y, _reference(x, w, d))


def test_output_is_causal() -> None:
    layer = DelayedLinear(3, 4, max_delay=5, seed=1)
    x = torch.rand(12, 2, 3)
    x2 = x.clone()
    x2[7:] = torch.rand(5, 2, 3)  # change only the future
    torch.testing.assert_close(layer(x)[:7], layer(x2)[:7])
    layer.round_delays()
    torch.testing.assert_close(layer(x)[:7], layer(x2)[:7])


def test_gaussian_taps_normalized_and_peak_at_delay() -> None:
    d = torch.tensor([[0.0, 2.0, 4.6]])
    g = gaussian_delay_taps(d, 7, 0.23)
    torch.testing.assert_close(g.sum(-1), torch.ones(1, 3), atol=1e-6, rtol=0)
    assert g.argmax(-1).tolist() == [[0, 2, 5]]
    # a broad sigma spreads the tap, a narrow one concentrates it
    assert gaussian_delay_taps(d, 7, 5.0).max() < g.max()
    # the formula: std = |sigma| + 0.27
    s = 0.23 + 0.27
    k = torch.arange(7.0)
    ref = torch.exp(-0.5 * ((k - 2.0) / s) ** 2)
    torch.testing.assert_close(g[0, 1], ref / (ref.sum() + 1e-7))


def test_soft_kernel_at_integer_delays_and_tiny_sigma_is_hard() -> None:
    w = torch.randn(3, 2)
    d = torch.tensor([[0.0, 3.0], [1.0, 2.0], [4.0, 0.0]])
    soft = delay_kernel(w, d, max_delay=5, sigma=0.0, sigma_floor=0.05)
    torch.testing.assert_close(soft, hard_delay_kernel(w, d, max_delay=5), atol=1e-6, rtol=0)


def test_gradient_reaches_positions_and_moves_towards_target() -> None:
    # a target delayed by 3 steps; start at 1.5 with a broad sigma: descent increases the delay
    torch.manual_seed(0)
    x = torch.zeros(20, 1, 1)
    x[2, 0, 0] = 1.0
    target = torch.zeros(20, 1, 1)
    target[5, 0, 0] = 1.0
    layer = DelayedLinear(1, 1, max_delay=8, sigma=2.0, seed=0)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.positions.fill_(1.5)
    loss = ((layer(x) - target) ** 2).sum()
    loss.backward()
    assert layer.positions.grad is not None
    assert layer.positions.grad.item() < 0


def test_learned_delay_recovers_a_shift() -> None:
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(30, 16, 1, generator=g) < 0.2).float()
    target = torch.zeros_like(x)
    target[4:] = x[:-4]
    layer = DelayedLinear(1, 1, max_delay=9, seed=0, init_delays="zero")
    with torch.no_grad():
        layer.weight.fill_(1.0)
    opt = torch.optim.Adam(delay_param_groups(layer, lr=1e-2, lr_delays=0.2))
    sched = SigmaSchedule(layer, 20, fraction=0.5)
    for _ in range(20):
        for _ in range(5):
            loss = ((layer(x) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            clamp_delays(layer)
        sched.step()
    layer.round_delays()
    assert layer.delays().item() == 4.0


def test_variants_and_parameter_groups() -> None:
    learned = DelayedLinear(6, 4, max_delay=5, seed=0)
    fixed = DelayedLinear(6, 4, max_delay=5, delays="fixed", seed=0)
    none = DelayedLinear(6, 4, max_delay=5, delays="none", seed=0, bias=True)
    assert count_parameters(learned) == 2 * 24  # weights + positions
    assert count_parameters(fixed) == 24  # positions are a buffer
    assert count_parameters(none) == 24 + 4
    assert fixed.hard
    assert none.hard
    assert not learned.hard
    assert torch.equal(fixed.delays(), fixed.delays().round())
    assert fixed.delays().max() <= 4
    assert fixed.delays().min() >= 0
    assert torch.all(none.delays() == 0)
    x = torch.rand(7, 2, 6)
    torch.testing.assert_close(none(x), x @ none.weight.t() + none.bias)
    model = nn.Sequential(learned, nn.Linear(4, 3), fixed)
    assert [p is learned.positions for p in delay_parameters(model)] == [True]
    ids = {id(p) for p in weight_parameters(model)}
    assert id(learned.positions) not in ids
    assert id(learned.weight) in ids
    groups = delay_param_groups(model, lr=1e-3, weight_decay=1e-5)
    assert groups[1]["lr"] == pytest.approx(0.1)
    assert groups[1]["weight_decay"] == 0.0
    assert groups[0]["weight_decay"] == 1e-5
    assert len(delay_param_groups(fixed, lr=1e-3)) == 1  # no empty delay group


def test_seeded_init_is_reproducible() -> None:
    a = DelayedLinear(5, 3, max_delay=6, seed=4)
    b = DelayedLinear(5, 3, max_delay=6, seed=4)
    torch.testing.assert_close(a.positions, b.positions)
    torch.testing.assert_close(a.weight, b.weight)
    assert a.positions.min() >= 0
    assert a.positions.max() <= 5
    torch.manual_seed(7)  # unseeded: drawn from the global RNG, on the CPU under any device
    c = DelayedLinear(5, 3, max_delay=6)
    torch.manual_seed(7)
    with torch.device("meta"):
        d = DelayedLinear(5, 3, max_delay=6)
    assert d.weight.is_meta
    assert not torch.equal(c.weight, a.weight)


def test_round_clamp_and_soft() -> None:
    layer = DelayedLinear(2, 2, max_delay=4, seed=0)
    with torch.no_grad():
        layer.positions.copy_(torch.tensor([[-1.0, 1.4], [2.6, 9.0]]))
    clamp_delays(layer)
    torch.testing.assert_close(layer.positions, torch.tensor([[0.0, 1.4], [2.6, 3.0]]))
    round_delays(nn.Sequential(layer))
    assert layer.hard
    assert layer.positions.tolist() == [[0.0, 1.0], [3.0, 3.0]]
    assert not layer.positions.requires_grad  # integer taps pass it no gradient (DDP-safe)
    layer.soft_delays()
    assert not layer.hard
    assert layer.positions.requires_grad
    with pytest.raises(ValueError, match="soft delays"):
        DelayedLinear(2, 2, max_delay=4, delays="fixed", seed=0).soft_delays()


def test_tap_mode_survives_a_state_dict_round_trip() -> None:
    x = torch.rand(20, 4, 16, generator=torch.Generator().manual_seed(0))
    a = DelayedLinear(16, 8, max_delay=10, seed=0)
    a.set_sigma(0.23)
    a.round_delays()
    b = DelayedLinear(16, 8, max_delay=10, seed=1)
    b.load_state_dict(a.state_dict())
    assert b.hard
    assert not b.positions.requires_grad
    assert torch.equal(b(x), a(x))
    a.soft_delays()  # and back: soft taps reload as soft
    b.load_state_dict(a.state_dict())
    assert not b.hard
    assert torch.equal(b(x), a(x))
    # a fixed-delay layer stays hard
    fixed = DelayedLinear(16, 8, max_delay=10, delays="fixed", seed=0)
    fixed.load_state_dict(a.state_dict())
    assert fixed.hard
    with pytest.raises(ValueError, match="state must be a dict"):
        fixed.set_extra_state(True)


def test_bias_follows_the_input_dtype() -> None:
    layer = DelayedLinear(4, 3, 6, bias=True, seed=0)
    x = torch.rand(10, 2, 4, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), layer(x.float()))


def test_sigma_schedule_matches_reference_decay() -> None:
    layer = DelayedLinear(2, 2, max_delay=25, seed=0)
    assert layer.sigma.item() == 12.5
    sched = SigmaSchedule(nn.Sequential(layer), epochs=40)  # decays over 10 epochs
    alpha = (0.23 / 12.5) ** (1 / 10)
    for e in range(1, 15):
        sched.step()
        want = 12.5 * alpha ** min(e, 10)
        assert layer.sigma.item() == pytest.approx(want, rel=1e-5)
    assert layer.sigma.item() == pytest.approx(0.23, rel=1e-5)
    sched.load_state_dict({"epoch": 0})
    assert layer.sigma.item() == pytest.approx(12.5)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="delays"):
        DelayedLinear(2, 2, max_delay=3, delays="random")
    with pytest.raises(ValueError, match="max_delay"):
        DelayedLinear(2, 2, max_delay=0)
    with pytest.raises(TypeError, match="in_features"):
        DelayedLinear(2.0, 2, max_delay=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed or generator"):
        DelayedLinear(2, 2, max_delay=3, seed=0, generator=torch.Generator())
    layer = DelayedLinear(2, 3, max_delay=3, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \[T >= 1, B, 2\]"):
        layer(torch.rand(4, 2, 5))
    with pytest.raises(ValueError, match="delays must have"):
        delay_kernel(torch.rand(3, 2), torch.rand(2, 3), max_delay=3, sigma=1.0)
    with pytest.raises(ValueError, match="kernel must have"):
        delayed_linear(torch.rand(4, 2, 5), torch.rand(3, 2, 3))
    with pytest.raises(ValueError, match="epochs"):
        SigmaSchedule(layer, 0)
    with pytest.raises(ValueError, match="lr"):
        delay_param_groups(layer, lr=0.0)
    assert math.isfinite(layer(torch.rand(4, 1, 2)).sum().item())


def test_bad_dtypes_and_sigmas_are_named() -> None:
    """Bool delays failed in torch ("arange_cpu" / "round_vml_cpu" not implemented for 'Bool');
    a string, bool or non-finite sigma was taken (NaN taps); delayed_linear passed an integer
    input, an empty sequence or a kernel of another dtype to conv1d, whose errors name none of
    them; DelayedLinear cast its kernel to an integer input's dtype (weights truncated)."""
    weight, delays = torch.rand(3, 2), torch.rand(3, 2) * 2
    for fn in (
        lambda d: gaussian_delay_taps(d, 4, 1.0),
        lambda d: delay_kernel(weight, d, max_delay=4, sigma=1.0),
        lambda d: hard_delay_kernel(weight, d, max_delay=4),
    ):
        with pytest.raises(TypeError, match=r"^delays must be a real"):
            fn(delays > 1)
    for sigma in ("1.0", True, float("nan"), float("inf")):
        with pytest.raises((TypeError, ValueError), match=r"^sigma must be"):
            delay_kernel(weight, delays, max_delay=4, sigma=sigma)  # type: ignore[arg-type]
    kernel, x = hard_delay_kernel(weight, delays, max_delay=4), torch.rand(5, 2, 2)
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
        delayed_linear(x.long(), kernel)
    with pytest.raises(ValueError, match=r"^x must have 3 dimensions \[T >= 1, B, C_in\]"):
        delayed_linear(x[:0], kernel)
    with pytest.raises(TypeError, match=r"^kernel must have x's dtype torch.float32"):
        delayed_linear(x, kernel.double())
    with pytest.raises(TypeError, match=r"^bias must have x's dtype torch.float32"):
        delayed_linear(x, kernel, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
        DelayedLinear(2, 3, max_delay=4, seed=0)(torch.ones(5, 2, 2, dtype=torch.long))


def test_parameter_helpers_check_model_eagerly() -> None:
    layer = DelayedLinear(2, 3, max_delay=3, seed=0)
    assert count_parameters(list(layer.parameters())) == count_parameters(layer)
    assert count_parameters(p for p in layer.parameters()) == count_parameters(layer)
    with pytest.raises(TypeError, match=r"model_or_params must be an nn\.Module"):
        count_parameters("weights")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model_or_params .* element of type int"):
        count_parameters([layer.weight, 3])  # type: ignore[list-item]
    for helper in (delay_parameters, weight_parameters):
        with pytest.raises(TypeError, match="model must be Module, got str"):
            helper("layer")  # type: ignore[arg-type]  # raised at the call, not on iteration


def test_an_empty_sequence_is_named() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \[T >= 1, B, 4\]"):
        DelayedLinear(4, 3, 5, seed=0)(torch.rand(0, 2, 4))


def test_a_nan_delay_is_named_in_hard_mode() -> None:
    weight, delays = torch.ones(2, 3), torch.ones(2, 3)
    delays[1, 2] = float("nan")
    with pytest.raises(ValueError, match="delays"):
        hard_delay_kernel(weight, delays, max_delay=4)


def test_gaussian_taps_reject_a_zero_tensor_sigma_without_floor() -> None:
    """A tensor sigma of 0 with sigma_floor=0 is a zero spread (0 / 0 at the delay's own tap):
    an error naming sigma, as for a float sigma, not NaN taps."""
    d = torch.tensor([0.0, 2.0, 1.5])
    with pytest.raises(ValueError, match="sigma"):
        gaussian_delay_taps(d, 4, torch.tensor(0.0), sigma_floor=0.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_delay_taps(d, 4, 0.0, sigma_floor=0.0)
    g = gaussian_delay_taps(d, 4, torch.tensor(0.0))  # the floor keeps the spread positive
    assert bool(torch.isfinite(g).all())
    torch.testing.assert_close(g.sum(-1), torch.ones(3), atol=1e-6, rtol=0)
