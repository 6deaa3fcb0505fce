"""Encoders: shapes, statistics, determinism, bad inputs."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronkit.snn import delta_encode, direct_encode, latency_encode, poisson_encode


def test_direct_repeats_with_gradient() -> None:
    x = torch.rand(3, 1, 8, 8, requires_grad=True)
    out = direct_encode(x, 5)
    assert out.shape == (5, 3, 1, 8, 8)
    assert all(torch.equal(out[t], x) for t in range(5))
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 5.0))


def test_poisson_statistics_and_extremes() -> None:
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    out = poisson_encode(x, 4000, seed=0)
    assert out.shape == (4000, 1, 4)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    rate = out.mean(0)[0]
    assert rate[0] == 0.0
    assert rate[3] == 1.0
    assert rate[1:3].tolist() == pytest.approx([0.25, 0.5], abs=0.03)


def test_poisson_determinism() -> None:
    x = torch.rand(2, 10)
    assert torch.equal(poisson_encode(x, 8, seed=3), poisson_encode(x, 8, seed=3))
    assert not torch.equal(poisson_encode(x, 8, seed=3), poisson_encode(x, 8, seed=4))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(poisson_encode(x, 8, generator=g1), poisson_encode(x, 8, generator=g2))


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    T=st.integers(1, 20),
    method=st.sampled_from(["linear", "log"]),
)
def test_latency_one_spike_earlier_for_larger(values: list, T: int, method: str) -> None:
    x = torch.tensor([values], dtype=torch.float64)
    out = latency_encode(x, T, method=method, threshold=0.05)
    assert out.shape == (T, 1, len(values))
    counts = out.sum(0)[0]
    assert torch.equal(counts, (x[0] >= 0.05).to(counts.dtype))
    times = out.argmax(0)[0]
    fired = counts.bool()
    order = torch.argsort(x[0][fired])
    t_sorted = times[fired][order]
    assert torch.all(t_sorted[1:] <= t_sorted[:-1])  # larger value, earlier (or equal) spike


def test_latency_endpoints() -> None:
    x = torch.tensor([[1.0, 0.01, 0.005]])
    for method in ("linear", "log"):
        out = latency_encode(x, 10, method=method, threshold=0.01)
        assert out[0, 0, 0] == 1
        assert out[9, 0, 1] == 1
        assert out[:, 0, 2].sum() == 0


def test_delta_static_input_fires_once() -> None:
    x = torch.rand(1, 2, 5).repeat(6, 1, 1) + 0.2
    out = delta_encode(x, 0.1)
    assert torch.equal(out[0], torch.ones(2, 5))
    assert out[1:].sum() == 0


def test_delta_polarities() -> None:
    x = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.05]).view(5, 1, 1)
    assert delta_encode(x, 0.5).flatten().tolist() == [0, 1, 0, 0, 0]
    assert delta_encode(x, 0.5, polarity="signed").flatten().tolist() == [0, 1, 0, -1, 0]
    split = delta_encode(x, 0.5, polarity="split")
    assert split.shape == (5, 1, 2, 1)
    assert split[:, 0, 0, 0].tolist() == [0, 1, 0, 0, 0]
    assert split[:, 0, 1, 0].tolist() == [0, 0, 0, 1, 0]


def test_delta_cumulative_accumulates_drift() -> None:
    x = (torch.arange(10, dtype=torch.float64) * 0.04).view(10, 1, 1)
    assert delta_encode(x, 0.1).sum() == 0  # every step-to-step change is below threshold
    events = delta_encode(x, 0.1, cumulative=True).flatten().nonzero().flatten().tolist()
    assert events == [3, 6, 9]  # 0.12 - 0, 0.24 - 0.12, 0.36 - 0.24


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_encoders_equal_their_bool_definitions(dtype: torch.dtype) -> None:
    # the encoders compare straight into float outputs (and latency scatters its spikes);
    # under torch.func they take the bool expressions, which define them
    from torch.func import vmap

    gen = torch.Generator().manual_seed(11)
    x = torch.rand(4, 6, generator=gen).to(dtype)
    wide = torch.promote_types(dtype, torch.float32)
    u = torch.rand((9, 4, 6), generator=torch.Generator().manual_seed(5), dtype=wide)
    assert torch.equal(poisson_encode(x, 9, seed=5), (u < x.to(wide)).to(dtype))
    for method in ("linear", "log"):
        by_row = vmap(lambda row, m=method: latency_encode(row, 9, method=m), out_dims=1)(x)
        assert torch.equal(latency_encode(x, 9, method=method), by_row)
    seqs = torch.rand(2, 7, 4, 6, generator=gen).to(dtype)  # two [T, B, C] sequences
    for polarity in ("on", "signed", "split"):
        mapped = vmap(lambda s, p=polarity: delta_encode(s, 0.3, polarity=p))(seqs)
        eager = torch.stack([delta_encode(s, 0.3, polarity=polarity) for s in seqs])
        assert torch.equal(eager, mapped)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: direct_encode(torch.rand(3), 0), ValueError, "T must be >= 1, got 0"),
        (lambda: direct_encode(torch.rand(3), 2.0), TypeError, "T must be an integer"),
        (lambda: direct_encode([1.0], 2), TypeError, "x must be Tensor"),
        (lambda: direct_encode(torch.tensor(1.0), 2), ValueError, "x must have at least 1"),
        (lambda: direct_encode(torch.ones(3, dtype=torch.long), 2), TypeError, "floating"),
        (lambda: poisson_encode(torch.tensor([1.5]), 2), ValueError, r"x must lie in \[0, 1\]"),
        (lambda: poisson_encode(torch.tensor([float("nan")]), 2), ValueError, "x must be finite"),
        (
            lambda: poisson_encode(torch.rand(2), 2, seed=1, generator=torch.Generator()),
            ValueError,
            "seed or generator",
        ),
        (lambda: poisson_encode(torch.rand(2), 2, seed=-1), ValueError, "seed must be >= 0"),
        (
            lambda: poisson_encode(torch.rand(2), 2, seed=2**70),
            ValueError,
            r"seed must be < 2\*\*64",
        ),
        (
            lambda: poisson_encode(torch.rand(2), 2, seed=2**64),
            ValueError,
            r"seed must be < 2\*\*64",
        ),
        (lambda: delta_encode(torch.rand(0, 2)), ValueError, r"x must have T >= 1 time steps"),
        (
            lambda: delta_encode(torch.rand(0, 2), cumulative=True),
            ValueError,
            r"x must have T >= 1 time steps",
        ),
        (lambda: poisson_encode(torch.rand(2), 2, generator=1), TypeError, "generator must be"),
        (lambda: latency_encode(torch.rand(2), 3, method="exp"), ValueError, "method must be"),
        (lambda: latency_encode(torch.rand(2), 3, threshold=1.0), ValueError, "threshold must"),
        (lambda: latency_encode(-torch.rand(2) - 0.1, 3), ValueError, r"x must lie in \[0, 1\]"),
        (lambda: delta_encode(torch.rand(4)), ValueError, r"at least 2 dimensions \[T, B"),
        (lambda: delta_encode(torch.rand(4, 2), 0.0), ValueError, "threshold must be > 0"),
        (lambda: delta_encode(torch.rand(4, 2), polarity="off"), ValueError, "polarity must"),
        (lambda: delta_encode(torch.rand(4, 2), cumulative=1), TypeError, "cumulative must"),
    ],
)
def test_bad_inputs(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]


def test_largest_seed_is_accepted() -> None:
    assert poisson_encode(torch.rand(2), 3, seed=2**64 - 1).shape == (3, 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_poisson_rates_are_unbiased_in_half_precision(dtype: torch.dtype) -> None:
    rate = 1e-3  # below the half-precision uniform grid (2^-8 for bfloat16)
    spikes = poisson_encode(torch.full((20_000,), rate, dtype=dtype), 50, seed=0)
    assert spikes.dtype == dtype
    observed = float(spikes.float().mean())
    assert abs(observed - float(torch.tensor(rate, dtype=dtype))) < 2e-4  # ~0.7e-4 std error


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["linear", "log"])
def test_latency_spike_times_in_half_precision_match_float64(
    dtype: torch.dtype, method: str
) -> None:
    # the spike times are computed in float32 or wider: in bfloat16 T - 1 = 999 rounds to 1000
    # (an out-of-range step) and (T - 1) * (1 - x) sits on a grid of 4 steps
    x = torch.rand(1, 2000, generator=torch.Generator().manual_seed(0)).to(dtype)
    for T in (100, 1000):
        spikes = latency_encode(x, T, method=method)
        assert spikes.dtype == dtype
        expected = latency_encode(x.double(), T, method=method)
        assert torch.equal(spikes.double(), expected)
