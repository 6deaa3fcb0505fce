"""Compute accounting and power-law fits (Bachmann et al., "Scaling MLPs")."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from neuronkit.common import new_figure
from neuronkit.theory.scaling import (
    BottleneckMLP,
    PlainMLP,
    PowerLawFit,
    approx_training_flops,
    count_parameters,
    fit_power_law,
    fit_power_law_offset,
    forward_flops,
    pareto_frontier,
    plot_scaling,
    training_flops,
)


def test_forward_flops_of_a_linear_layer() -> None:
    assert forward_flops(nn.Linear(5, 3), (5,)) == 2 * 5 * 3 + 3
    assert forward_flops(nn.Linear(5, 3, bias=False), (5,)) == 2 * 5 * 3
    model = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3)).train()
    model[1].eval()  # frozen inside a training model: each flag comes back as it was
    forward_flops(model, (5,))
    assert model.training
    assert not model[1].training


def test_forward_flops_of_the_bottleneck_mlp_per_layer() -> None:
    d, k, depth, n_in, n_out = 8, 4, 3, 64, 10
    model = BottleneckMLP(n_in, n_out, d, depth, seed=0)
    linear = (2 * n_in * d + d) + depth * ((2 * d * k * d + k * d) + (2 * k * d * d + d))
    linear += 2 * d * n_out + n_out
    assert forward_flops(model, (8, 8)) == linear + depth * 5 * d  # LayerNorm: 5 per element
    plain = PlainMLP(n_in, n_out, d, depth, norm="none", seed=0)
    expected = (2 * n_in * d + d) + depth * (2 * d * d + d) + 2 * d * n_out + n_out
    assert forward_flops(plain, (n_in,)) == expected


def test_exact_compute_approaches_six_n_d_for_wide_models() -> None:
    model = BottleneckMLP(64, 10, 128, 2, seed=0)
    exact = training_flops(forward_flops(model, (64,)), 1000)
    approx = approx_training_flops(count_parameters(model), 1000)
    assert exact == pytest.approx(approx, rel=0.02)
    assert training_flops(10, 7) == 210


def test_pure_power_law_recovers_parameters() -> None:
    c = np.geomspace(1e6, 1e12, 7)
    fit = fit_power_law(c, 3.0 * c**-0.4)
    assert fit.kind == "power"
    assert fit.c == 0
    assert fit.a == pytest.approx(3.0, rel=1e-8)
    assert fit.b == pytest.approx(0.4, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    noisy = 3.0 * c**-0.4 * np.exp(np.random.default_rng(0).normal(0, 0.3, c.size))
    assert fit_power_law(c, noisy).r2 < 0.999
    assert np.allclose(fit.predict(c), 3.0 * c**-0.4)


def test_offset_law_recovers_saturation() -> None:
    c = np.geomspace(1e6, 1e12, 9)
    err = 50.0 * c**-0.3 + 0.02
    off = fit_power_law_offset(c, err)
    assert off.kind == "offset"
    assert off.b == pytest.approx(0.3, rel=1e-3)
    assert off.c == pytest.approx(0.02, rel=1e-3)
    assert off.a == pytest.approx(50.0, rel=1e-2)
    assert off.r2 > fit_power_law(c, err).r2  # the pure law cannot bend
    assert 0 <= off.c < err.min()


def test_pareto_frontier() -> None:
    compute = [1, 2, 3, 4, 5, 5]
    error = [0.5, 0.6, 0.4, 0.45, 0.3, 0.2]
    assert pareto_frontier(compute, error).tolist() == [0, 2, 5]


def test_plot_scaling_draws_points_and_law() -> None:
    fig, ax = new_figure()
    c = np.geomspace(1e3, 1e6, 4)
    plot_scaling(ax, c, c**-0.5, fit_power_law(c, c**-0.5), label="b")
    assert len(ax.lines) == 2
    assert ax.get_xscale() == "log"
    for compute in ([0.0, 1e4, 1e5, 1e6], [np.nan, 1e4, 1e5, 1e6], []):  # not dropped silently
        with pytest.raises(ValueError, match=r"compute (and error )?must"):
            plot_scaling(ax, compute, [0.1] * len(compute), fit_power_law(c, c**-0.5))
    with pytest.raises(ValueError, match="error must hold finite numbers > 0"):
        plot_scaling(ax, c, [0.1, -0.1, 0.1, 0.1])
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="error must be > 0"):
        fit_power_law([1, 2, 3], [0.1, 0.0, 0.1])
    with pytest.raises(ValueError, match="equal length"):
        fit_power_law([1, 2, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law_offset([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        fit_power_law([1, 2, math.nan], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="distinct"):
        fit_power_law([2, 2, 2], [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="compute"):
        fit_power_law("abc", [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="compute"):
        PowerLawFit(1.0, 0.5, 0.0, 1.0, "power", 3).predict([0.0])
    with pytest.raises(TypeError, match="input_shape"):
        forward_flops(nn.Linear(2, 2), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="examples"):
        training_flops(10, -1)
    with pytest.raises(ValueError, match="1-D"):
        pareto_frontier([1, 2], [1.0])


def test_fit_power_law_coefficient_beyond_the_float_range_names_compute() -> None:
    # a = e^1382 raised OverflowError ("math range error"); a = e^-1391 came back as 0
    for error in ([1.0, 1e-2, 1e-4], [1e-4, 1e-2, 1.0]):
        with pytest.raises(ValueError, match=r"^compute and error .* rescale compute"):
            fit_power_law([1e300, 1e301, 1e302], error)
    fit = fit_power_law([1.0, 1e1, 1e2], [1.0, 1e-2, 1e-4])  # rescaled: fine
    assert fit.a == pytest.approx(1.0)
    assert fit.b == pytest.approx(2.0)


def test_fits_take_tensors_that_require_grad() -> None:
    """Was torch's "Can't call numpy() on Tensor that requires grad"."""
    c, err = [1.0, 10.0, 100.0, 1000.0], [1.0, 0.5, 0.25, 0.12]
    expected = fit_power_law(c, err)
    tc, te = torch.tensor(c, requires_grad=True), torch.tensor(err, requires_grad=True)
    got = fit_power_law(tc, te)
    assert got.b == pytest.approx(expected.b, rel=1e-6)
    assert got.a == pytest.approx(expected.a, rel=1e-6)
    assert fit_power_law_offset(tc, te).kind == "offset"


@pytest.mark.parametrize("value", [0.1, 0.3, 0.7, 1.0 / 3.0, 0.123, 1.0])
@pytest.mark.parametrize("n", [3, 5, 7, 20])
def test_r2_of_a_flat_fit_to_constant_errors_is_one(value: float, n: int) -> None:
    # log errors constant: both sums of squares are rounding; R^2 read 1, 0 or -1.71
    fit = fit_power_law(np.geomspace(1.0, 1e3, n), np.full(n, value))
    assert fit.b == pytest.approx(0.0, abs=1e-12)
    assert fit.r2 == 1.0


def test_offset_fit_refuses_a_coefficient_beyond_the_float_range() -> None:
    # a = exp(log a) * scale^b: it underflowed to 0.0 (predicting the constant c) or raised a
    # bare OverflowError
    tiny = np.array([1e-300, 1e-299, 1e-298, 1e-297])
    with pytest.raises(ValueError, match="beyond the float range"):
        fit_power_law_offset(tiny, (tiny / 1e-300) ** -2.0 + 0.1)
    huge = np.array([1e290, 1e295, 1e300, 1e305])
    with pytest.raises(ValueError, match="beyond the float range"):
        fit_power_law_offset(huge, (huge / 1e290) ** -1.5 + 1e-9)
