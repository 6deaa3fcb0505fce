"""Autocorrelation timescales (tau_net) of the timescale RNN."""

import copy
import math

import numpy as np
import pytest
import torch

from neuronkit.theory.timescales import (
    TimescaleRNN,
    autocorrelation,
    fit_ac_timescale,
    network_timescales,
)


def test_autocorrelation_matches_a_direct_sum() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 40))
    ac = autocorrelation(data, max_lag=10)
    xc = data - data.mean(axis=1, keepdims=True)
    direct = [np.mean([np.dot(x[: 40 - k], x[k:]) / (40 - k) for x in xc]) for k in range(11)]
    np.testing.assert_allclose(ac, direct, rtol=1e-10, atol=1e-12)
    assert autocorrelation(torch.as_tensor(data)).shape == (39,)


@pytest.mark.parametrize("tau", [1.5, 5.0, 12.0])
def test_single_exponential_is_recovered(tau: float) -> None:
    k = np.arange(61)
    fitted, model = fit_ac_timescale(3.0 * np.exp(-k / tau), fit_lag=30)
    assert model in (1, 2)
    assert fitted == pytest.approx(tau, rel=1e-3)


def test_double_exponential_reports_the_slow_timescale() -> None:
    k = np.arange(61)
    ac = 0.6 * np.exp(-k / 1.5) + 0.4 * np.exp(-k / 15.0)
    fitted, model = fit_ac_timescale(ac, fit_lag=40)
    assert model == 2
    assert fitted == pytest.approx(15.0, rel=1e-2)
    assert math.isnan(fit_ac_timescale(np.zeros(10), fit_lag=5)[0])


@pytest.mark.parametrize("value", [0.1, 0.7, 123.456])
def test_autocorrelation_of_a_constant_series_is_exactly_zero(value: float) -> None:
    """The mean of 50 copies of 0.1 is an ulp off: no ~1e-34 "variance" (fitted as tau = 100)."""
    ac = autocorrelation(np.full((2, 50), value))
    assert np.array_equal(ac, np.zeros(49))
    assert math.isnan(fit_ac_timescale(ac, fit_lag=5)[0])


@pytest.mark.parametrize("scale", [1e-14, 1e-300])
def test_fit_is_independent_of_the_ac_scale(scale: float) -> None:
    """The AC is normalized by ac[0]: a small but varying activity is fitted, not NaN."""
    ac = np.exp(-np.arange(40) / 3.0)
    assert fit_ac_timescale(scale * ac) == fit_ac_timescale(ac)


def test_network_timescale_of_uncoupled_leaky_units_is_the_ar1_timescale() -> None:
    # no recurrence and a positive drive: h_t = a h_{t-1} + (1 - a) u_t with a = 1 - 1/tau,
    # whose autocorrelation under i.i.d. input decays as a^k = exp(-k / (-1/log a)).
    model = TimescaleRNN(1, 4, tau_init=5.0, train_tau=False, seed=0)
    with torch.no_grad():
        model.w_rec.zero_()
        model.w_in.fill_(1.0)
        model.b_in.fill_(1.0)
        model.b_rec.zero_()
        model.w_in[3] = 0.0  # neuron 3 gets a constant drive: silent after the burn-in
    res = network_timescales(model, length=4000, burn_in=200, trials=6, max_lag=40, seed=1)
    expected = -1.0 / math.log(0.8)
    np.testing.assert_allclose(res.tau_net[:3], expected, rtol=0.15)
    assert math.isnan(res.tau_net[3])
    assert res.model[3] == 0
    assert np.isnan(res.ac_neurons[3]).all()
    assert res.ac_neurons[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(res.tau, 5.0)
    assert res.mean_tau == pytest.approx(5.0)
    assert res.mean_tau_net == pytest.approx(np.nanmean(res.tau_net))
    assert res.tau_population == pytest.approx(expected, rel=0.15)


def test_network_timescales_is_seeded_and_leaves_the_model_alone() -> None:
    model = TimescaleRNN(1, 6, seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = network_timescales(model, length=300, burn_in=20, trials=2, max_lag=20, fit_lag=10, seed=3)
    b = network_timescales(model, length=300, burn_in=20, trials=2, max_lag=20, fit_lag=10, seed=3)
    np.testing.assert_array_equal(a.tau_net, b.tau_net)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="data"):
        autocorrelation(np.zeros(5))
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(np.zeros((2, 5)), max_lag=4)
    with pytest.raises(ValueError, match="finite"):
        autocorrelation(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="fit_lag"):
        fit_ac_timescale(np.ones(5), fit_lag=5)
    model = TimescaleRNN(1, 4, seed=0)
    with pytest.raises(TypeError, match="model"):
        network_timescales(torch.nn.Linear(1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fit_lag"):
        network_timescales(model, length=100, max_lag=10, fit_lag=20)
    with pytest.raises(ValueError, match="max_lag"):
        network_timescales(model, length=10, max_lag=10, fit_lag=5)
    with pytest.raises(ValueError, match="input_size"):
        network_timescales(TimescaleRNN(2, 4, seed=0))


def test_network_timescales_of_a_float64_model_match_the_float32_one() -> None:
    model = TimescaleRNN(1, 6, seed=2)
    kw = {"length": 300, "burn_in": 20, "trials": 2, "max_lag": 20, "fit_lag": 10, "seed": 3}
    a = network_timescales(model, **kw)  # type: ignore[arg-type]
    b = network_timescales(copy.deepcopy(model).double(), **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(b.tau, a.tau, rtol=1e-6)
    np.testing.assert_allclose(b.ac_population, a.ac_population, rtol=1e-3, atol=1e-4)
