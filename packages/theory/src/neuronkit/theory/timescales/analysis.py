"""Single-neuron and network-mediated timescales of a trained RNN.

Khajehabdollahi et al., "Emergent mechanisms for long timescales depend on training curriculum
and affect performance in memory tasks" (ICLR 2024). Two timescales describe each neuron:

* the single-neuron timescale ``tau`` (a trained parameter of :class:`TimescaleRNN`);
* the network-mediated timescale ``tau_net``: the decay time of the autocorrelation (AC) of the
  neuron's activity while the network is driven by random binary input. As in the paper, the AC
  is computed per trial (mean removed, divided by the number of overlapping samples at each lag),
  averaged over trials, normalized at lag 0 and fitted on lags ``0..fit_lag`` with a single
  exponential ``a exp(-k/tau)`` and a double exponential
  ``a (c exp(-k/tau1) + (1 - c) exp(-k/tau2))``; the fit with the lower AIC
  (``2 p + n log RSS``) wins and ``tau_net`` is its slowest timescale. Neurons whose activity does
  not vary, or whose AC no model fits, get ``NaN``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit

from neuronkit.common import check_number

from .._utils import as_float_tensor, check_positive_int, torch_generator
from .rnn import TimescaleRNN

__all__ = [
    "NetworkTimescales",
    "autocorrelation",
    "fit_ac_timescale",
    "network_timescales",
]

#: Upper bound of fitted timescales (time steps), as in the reference analysis.
TAU_FIT_MAX = 100.0
_TAU_FIT_MIN = 1e-6


def autocorrelation(data: np.ndarray | torch.Tensor, max_lag: int | None = None) -> np.ndarray:
    """Trial-averaged autocorrelation of time series, unnormalized, via FFT.

    For each trial the mean is removed, the lag-``k`` sum of products is divided by the number
    of overlapping samples ``T - k``, and the result is averaged over trials.

    Args:
        data: ``[trials, T]`` time series (``T >= 2``).
        max_lag: largest lag returned (default ``T - 2``).

    Returns:
        ``[max_lag + 1]`` autocovariance at lags ``0..max_lag``.
    """
    x = as_float_tensor("data", data, 2, "[trials, T]").numpy()
    n = x.shape[1]
    if n < 2 or x.shape[0] < 1:
        raise ValueError(f"data must have >= 1 trial and >= 2 time steps, got {x.shape}")
    if max_lag is None:
        max_lag = n - 2
    check_number("max_lag", max_lag, ge=0, le=n - 2, integer=True)
    xp = x - x.mean(axis=1, keepdims=True)
    # a constant trial's mean can be off by an ulp, which would leave ~1e-34 of "variance"
    xp[x.min(axis=1) == x.max(axis=1)] = 0.0
    f = np.fft.rfft(xp, n=2 * n, axis=1)
    ac = np.fft.irfft(np.abs(f) ** 2, n=2 * n, axis=1)[:, : max_lag + 1]
    ac = ac / np.arange(n, n - max_lag - 1, -1)
    return np.asarray(ac.mean(axis=0))


def _single_exp(k: np.ndarray, a: float, tau: float) -> np.ndarray:
    return np.asarray(a * np.exp(-k / tau))


def _double_exp(k: np.ndarray, a: float, tau1: float, tau2: float, c: float) -> np.ndarray:
    return np.asarray(a * (c * np.exp(-k / tau1) + (1.0 - c) * np.exp(-k / tau2)))


def _single_jac(k: np.ndarray, a: float, tau: float) -> np.ndarray:
    e = np.exp(-k / tau)
    return np.stack([e, a * e * k / tau**2], axis=1)


def _double_jac(k: np.ndarray, a: float, tau1: float, tau2: float, c: float) -> np.ndarray:
    e1, e2 = np.exp(-k / tau1), np.exp(-k / tau2)
    return np.stack(
        [
            c * e1 + (1 - c) * e2,
            a * c * e1 * k / tau1**2,
            a * (1 - c) * e2 * k / tau2**2,
            a * (e1 - e2),
        ],
        axis=1,
    )


def _aic(y: np.ndarray, fit: np.ndarray, n_params: int) -> float:
    rss = float(((fit - y) ** 2).sum())
    return 2.0 * n_params + len(y) * float(np.log(max(rss, 1e-300)))


def fit_ac_timescale(
    ac: np.ndarray | torch.Tensor, fit_lag: int = 30, *, min_weight: float = 0.05
) -> tuple[float, int]:
    """Timescale of an autocorrelation by single- vs double-exponential model selection (AIC).

    Args:
        ac: autocorrelation ``[L]`` at lags ``0..L-1`` (normalized here by ``ac[0]``).
        fit_lag: largest lag used in the fit (``1 <= fit_lag < L``).
        min_weight: a double exponential whose weaker component weighs less than this is
            rejected (see the module docstring; 0 keeps every fit, as the reference code).

    Returns:
        ``(tau, model)``: the slowest timescale of the selected model (in time steps, at most
        :data:`TAU_FIT_MAX`) and the model (1: single, 2: double exponential); ``(nan, 0)`` when
        ``ac[0]`` is not positive or neither fit converges.
    """
    y_all = as_float_tensor("ac", ac, 1, "[L]").numpy()
    check_number("fit_lag", fit_lag, ge=1, lt=len(y_all), integer=True)
    check_number("min_weight", min_weight, ge=0.0, le=0.5)
    # relative only: the AC of a small (but varying) activity is as good as any other
    if not y_all[0] > 1e-12 * float(np.abs(y_all).max()) or not y_all[0] > 0:
        return float("nan"), 0
    y = y_all[: fit_lag + 1] / y_all[0]
    k = np.arange(fit_lag + 1, dtype=np.float64)
    aic1 = aic2 = np.inf
    p1 = p2 = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            p1, _ = curve_fit(
                _single_exp,
                k,
                y,
                p0=(1.0, 2.0),
                bounds=((0, _TAU_FIT_MIN), (1.0, TAU_FIT_MAX)),
                jac=_single_jac,
                maxfev=2000,
            )
            aic1 = _aic(y, _single_exp(k, *p1), 2)
        except (RuntimeError, ValueError):
            pass
        try:
            p2, _ = curve_fit(
                _double_exp,
                k,
                y,
                p0=(1.0, 1.0, 10.0, 0.5),
                bounds=((0, _TAU_FIT_MIN, _TAU_FIT_MIN, 0), (1.0, TAU_FIT_MAX, TAU_FIT_MAX, 1.0)),
                jac=_double_jac,
                maxfev=2000,
            )
            if min(p2[3], 1.0 - p2[3]) >= min_weight:
                aic2 = _aic(y, _double_exp(k, *p2), 4)
        except (RuntimeError, ValueError):
            pass
    if p1 is not None and aic1 <= aic2:
        return float(p1[1]), 1
    if p2 is not None and math.isfinite(aic2) and aic2 < aic1:
        return float(max(p2[1], p2[2])), 2
    return float("nan"), 0


@dataclass(frozen=True)
class NetworkTimescales:
    """Timescales of one network (see the module docstring).

    Attributes:
        tau: trained single-neuron timescales ``[H]`` (clamped at 1, as used).
        tau_net: network-mediated timescale per neuron ``[H]`` (``NaN`` where not measurable).
        model: selected AC model per neuron ``[H]`` (1 single, 2 double exponential, 0 none).
        ac_neurons: normalized single-neuron ACs ``[H, max_lag + 1]`` (``NaN`` rows for silent
            neurons).
        ac_population: normalized AC of the summed activity ``[max_lag + 1]``.
        tau_population: timescale fitted to ``ac_population``.
    """

    tau: np.ndarray
    tau_net: np.ndarray
    model: np.ndarray
    ac_neurons: np.ndarray
    ac_population: np.ndarray
    tau_population: float

    @property
    def mean_tau(self) -> float:
        """Mean single-neuron timescale."""
        return float(self.tau.mean())

    @property
    def mean_tau_net(self) -> float:
        """Mean network-mediated timescale over measurable neurons (``NaN`` if none)."""
        ok = np.isfinite(self.tau_net)
        return float(self.tau_net[ok].mean()) if ok.any() else float("nan")


def network_timescales(
    model: TimescaleRNN,
    *,
    length: int = 2000,
    burn_in: int = 200,
    trials: int = 10,
    max_lag: int = 100,
    fit_lag: int = 30,
    min_weight: float = 0.05,
    seed: int | torch.Generator | None = None,
) -> NetworkTimescales:
    """Drive ``model`` with random binary input and measure its neurons' timescales.

    Each trial is a binary sequence with its own ``p ~ U(0, 1)`` (as in the reference analysis),
    the initial state is ``0.1 U(0, 1)``, and the first ``burn_in`` steps are discarded.

    Args:
        model: a :class:`TimescaleRNN` with ``input_size == 1`` (left unchanged).
        length: simulated steps after the burn-in.
        burn_in: discarded initial steps.
        trials: independent trials averaged in the AC.
        max_lag: largest lag of the stored ACs (``fit_lag <= max_lag < length - 1``).
        fit_lag: largest lag used in the exponential fits.
        min_weight: see :func:`fit_ac_timescale`.
        seed: int seed or ``torch.Generator``.
    """
    if not isinstance(model, TimescaleRNN):
        raise TypeError(f"model must be a TimescaleRNN, got {type(model).__name__}")
    if model.input_size != 1:
        raise ValueError(f"model must take 1 binary input (input_size=1), got {model.input_size}")
    length = check_positive_int("length", length, minimum=3)
    check_number("burn_in", burn_in, ge=0, integer=True)
    trials = check_positive_int("trials", trials)
    check_number("max_lag", max_lag, ge=1, lt=length - 1, integer=True)
    check_number("fit_lag", fit_lag, ge=1, le=max_lag, integer=True)
    check_number("min_weight", min_weight, ge=0.0, le=0.5)
    gen = torch_generator(seed)
    steps = int(length) + int(burn_in)
    dtype = model.w_in.dtype  # the draws stay float32 (the same stream for any model dtype)
    p = torch.rand(1, trials, 1, generator=gen)
    x = (torch.rand(steps, trials, 1, generator=gen) < p).to(dtype)
    h0 = (0.1 * torch.rand(trials, model.hidden_size, generator=gen)).to(dtype)
    with torch.no_grad():
        hs = model.simulate(x, h0)[1 + int(burn_in) :].double().numpy()  # [T, trials, H]
        tau = model.effective_tau().detach().double().numpy().copy()
    n_neurons = hs.shape[2]
    ac_neurons = np.full((n_neurons, max_lag + 1), np.nan)
    tau_net = np.full(n_neurons, np.nan)
    chosen = np.zeros(n_neurons, dtype=np.int64)
    for j in range(n_neurons):
        ac = autocorrelation(hs[:, :, j].T, max_lag)
        if ac[0] > 1e-12:
            ac_neurons[j] = ac / ac[0]
            tau_net[j], chosen[j] = fit_ac_timescale(ac, fit_lag, min_weight=min_weight)
    pop_ac = autocorrelation(hs.sum(axis=2).T, max_lag)
    if pop_ac[0] > 1e-12:
        tau_pop, _ = fit_ac_timescale(pop_ac, fit_lag, min_weight=min_weight)
        pop_ac = pop_ac / pop_ac[0]
    else:
        tau_pop, pop_ac = float("nan"), np.full(max_lag + 1, np.nan)
    return NetworkTimescales(
        tau=tau,
        tau_net=tau_net,
        model=chosen,
        ac_neurons=ac_neurons,
        ac_population=pop_ac,
        tau_population=float(tau_pop),
    )
