"""Multitasking Hebbian networks: parallel learning of diluted ternary patterns.

Agliari, Alessandrelli, Barra & Ricci-Tersenghi (2023), "Parallel Learning by Multitasking
Neural Networks" (J. Stat. Mech.); the model goes back to Agliari et al., "Multitasking
associative networks" (PRL 2012).

Archetypes ``xi^mu`` (``mu = 1..K``) have ternary entries: 0 with probability ``d`` (the
dilution), +1 or -1 with probability ``(1 - d)/2`` each. The network never sees them: it sees
``M`` examples per archetype, ``eta^{mu,a}_i = chi^{mu,a}_i xi^mu_i`` with ``chi = +1`` with
probability ``(1 + r)/2`` and ``-1`` otherwise (``r`` is the example quality). With
``R = r^2 + (1 - r^2)/M`` the two Hebbian protocols are

* supervised (a teacher groups the examples by archetype): ``J = 1/(N R) sum_mu
  etabar^mu etabar^mu^T`` with ``etabar^mu = (1/M) sum_a eta^{mu,a}``;
* unsupervised (no labels): ``J = 1/(N R M) sum_{mu,a} eta^{mu,a} eta^{mu,a}^T``,

both with zero diagonal. Both are sums of outer products, so they are kept as *factors*
``F [P, N]`` with ``J = F^T F / N`` minus its diagonal: the dynamics then costs ``O(N P)`` per
sweep instead of ``O(N^2)``. The information content of the dataset is ``rho = (1 - r^2)/(M r^2)``.

Neurons ``sigma_i = +-1`` follow Glauber dynamics at inverse temperature ``beta`` (``inf``: the
zero-temperature rule ``sigma_i = sign(h_i)``). Mattis overlaps ``m_mu = (1/N) sum_i xi^mu_i
sigma_i`` measure retrieval. In the hierarchical regime (mild dilution, zero temperature) the
network cued with ``xi^1`` fills the neurons left blank by ``xi^1`` with ``xi^2`` and so on, so
``m_k = (1 - d) d^(k - 1)``. That state is stable by signal-to-noise while ``m_1 > m_2 + ... +
m_K``, i.e. ``d + d^2 + ... + d^(K-1) < 1`` (:func:`hierarchical_stability_limit`). For strong
dilution and noise (fast noise ``1/beta`` or the dataset noise ``rho``) the overlaps become equal:
the parallel regime.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from neuronkit.common import (
    as_float_array,
    check_choice,
    check_finite,
    check_ndim,
    check_number,
    check_probability,
    host_array,
)

from .._utils import Seed, check_positive_int, numpy_rng, scalar_value

__all__ = [
    "GlauberResult",
    "dataset_entropy",
    "diluted_patterns",
    "glauber_dynamics",
    "hebbian_couplings",
    "hebbian_factors",
    "hierarchical_overlaps",
    "hierarchical_stability_limit",
    "mattis_overlaps",
    "mean_field_overlaps",
    "noisy_examples",
]


def diluted_patterns(
    num_patterns: int, num_neurons: int, dilution: float, *, seed: Seed = None
) -> np.ndarray:
    """Random ternary archetypes ``[K, N]`` (int8): 0 w.p. ``dilution``, else +-1 equally."""
    k = check_positive_int("num_patterns", num_patterns)
    n = check_positive_int("num_neurons", num_neurons)
    check_probability("dilution", dilution)
    rng = numpy_rng(seed)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(k, n))
    blank = rng.random((k, n)) < dilution
    return np.where(blank, np.int8(0), signs).astype(np.int8)


def _check_patterns(name: str, patterns: np.ndarray | object) -> np.ndarray:
    arr = np.asarray(host_array(patterns))  # also a tensor in a graph or on a GPU
    check_ndim(name, arr, 2, "[K, N]")
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (-1, 0, 1)).all():
        raise ValueError(f"{name} must hold ternary entries in {{-1, 0, 1}}")
    return arr.astype(np.int8)


def noisy_examples(
    patterns: np.ndarray, num_examples: int, quality: float, *, seed: Seed = None
) -> np.ndarray:
    """``M`` noisy examples per archetype, ``[K, M, N]`` (int8).

    Each entry of ``patterns [K, N]`` keeps its sign with probability ``(1 + quality)/2`` and is
    flipped otherwise (blank entries stay blank).
    """
    xi = _check_patterns("patterns", patterns)
    m = check_positive_int("num_examples", num_examples)
    check_probability("quality", quality)
    rng = numpy_rng(seed)
    keep = rng.random((xi.shape[0], m, xi.shape[1])) < (1.0 + quality) / 2.0
    chi = np.where(keep, np.int8(1), np.int8(-1))
    return (chi * xi[:, None, :]).astype(np.int8)


def dataset_entropy(quality: float, num_examples: int) -> float:
    """``rho = (1 - r^2) / (M r^2)``: how much the dataset blurs the archetypes (0: perfect)."""
    check_probability("quality", quality)
    m = check_positive_int("num_examples", num_examples)
    if quality == 0.0:
        return math.inf
    return (1.0 - quality**2) / (m * quality**2)


def hebbian_factors(
    examples: np.ndarray, quality: float, protocol: str = "supervised"
) -> np.ndarray:
    """Factors ``F [P, N]`` of the Hebbian couplings ``J = F^T F / N`` (diagonal removed).

    Args:
        examples: ``[K, M, N]`` examples (:func:`noisy_examples`); ``[K, N]`` is taken as
            ``M = 1`` (the archetypes themselves when ``quality = 1``).
        quality: the examples' quality ``r`` in ``(0, 1]`` (sets ``R = r^2 + (1 - r^2)/M``).
        protocol: ``"supervised"`` (``P = K`` averaged examples) or ``"unsupervised"``
            (``P = K M`` single examples).
    """
    ex = np.asarray(examples)
    if ex.ndim == 2:
        ex = ex[:, None, :]
    check_ndim("examples", ex, 3, "[K, M, N]")
    if ex.dtype.kind not in "biuf" or not np.isin(ex, (-1, 0, 1)).all():
        raise ValueError("examples must hold ternary entries in {-1, 0, 1}")
    check_probability("quality", quality)
    if quality <= 0.0:
        raise ValueError(f"quality must be > 0, got {quality}")
    check_choice("protocol", protocol, ("supervised", "unsupervised"))
    k, m, n = ex.shape
    norm = quality**2 + (1.0 - quality**2) / m
    ex = ex.astype(np.float64)
    if protocol == "supervised":
        return np.asarray(ex.mean(axis=1) / math.sqrt(norm))
    return np.asarray(ex.reshape(k * m, n) / math.sqrt(norm * m))


def hebbian_couplings(
    examples: np.ndarray, quality: float, protocol: str = "supervised"
) -> np.ndarray:
    """Dense Hebbian couplings ``J [N, N]`` with zero diagonal (see :func:`hebbian_factors`)."""
    f = hebbian_factors(examples, quality, protocol)
    j = f.T @ f / f.shape[1]
    np.fill_diagonal(j, 0.0)
    return np.asarray(j)


def mattis_overlaps(patterns: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Mattis overlaps ``m = patterns @ sigma / N``: ``[K]`` for ``sigma [N]``, or ``[..., K]``."""
    xi = _check_patterns("patterns", patterns)
    s = as_float_array("sigma", sigma, "[..., N]")
    if s.shape[-1:] != (xi.shape[1],):
        raise ValueError(f"sigma must end with N={xi.shape[1]} neurons, got shape {s.shape}")
    check_finite("sigma", s)
    return np.asarray(s @ xi.T.astype(np.float64) / xi.shape[1])


@dataclass(frozen=True)
class GlauberResult:
    """Final state ``sigma [N]`` (int8) and the overlaps ``[sweeps, K]`` after every sweep.

    The overlaps are Mattis overlaps with ``track`` (when given) or with the factors' rows.
    """

    sigma: np.ndarray
    overlaps: np.ndarray

    def mean_overlaps(self, burn_in: float = 0.5) -> np.ndarray:
        """Time average ``[K]`` of the overlaps after discarding the first ``burn_in`` fraction."""
        check_probability("burn_in", burn_in, open_right=True)
        start = min(int(burn_in * len(self.overlaps)), len(self.overlaps) - 1)
        return np.asarray(self.overlaps[start:].mean(axis=0))


def _check_beta(beta: float) -> float:
    """``beta > 0`` (``math.inf`` allowed; numpy real scalars and 0-d tensors or arrays too) as
    a Python float."""
    beta = scalar_value(beta)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta > 0:
        raise ValueError(f"beta must be > 0 (math.inf for zero temperature), got {beta!r:.80}")
    return float(beta)


def glauber_dynamics(
    factors: np.ndarray,
    sigma0: np.ndarray,
    *,
    beta: float = math.inf,
    sweeps: int = 30,
    blocks: int | None = None,
    track: np.ndarray | None = None,
    seed: Seed = None,
) -> GlauberResult:
    """Glauber (heat-bath) dynamics of the network ``J = F^T F / N`` with zero self-coupling.

    Each sweep visits the neurons in a random order, in ``blocks`` consecutive groups updated
    together (``blocks = N`` is strictly sequential; the default 50 groups behave the same at a
    fraction of the cost). At ``beta = inf`` a neuron takes the sign of its field (unchanged
    when the field is exactly 0); otherwise it is +1 with probability ``(1 + tanh(beta h))/2``.

    Args:
        factors: ``[P, N]`` (:func:`hebbian_factors`).
        sigma0: initial state ``[N]`` of +-1.
        beta: inverse temperature (> 0, ``inf`` allowed).
        sweeps: number of sweeps over all neurons.
        blocks: groups per sweep, ``1 <= blocks <= N`` (default ``min(50, N)``).
        track: optional patterns ``[K, N]`` whose Mattis overlaps are recorded every sweep.
        seed: seed or Generator for the visiting order and the thermal noise.
    """
    f = as_float_array("factors", factors, "[P, N]")
    check_ndim("factors", f, 2, "[P, N]")
    check_finite("factors", f)
    p, n = f.shape
    if n == 0:
        raise ValueError(f"factors must have at least one neuron (N >= 1), got shape {f.shape}")
    s = as_float_array("sigma0", sigma0, "[N]").copy()
    if s.shape != (n,) or not np.isin(s, (-1.0, 1.0)).all():
        raise ValueError(f"sigma0 must be a [N={n}] vector of +-1, got shape {s.shape}")
    beta = _check_beta(beta)
    sweeps = check_positive_int("sweeps", sweeps)
    blocks = min(50, n) if blocks is None else check_positive_int("blocks", blocks)
    if blocks > n:
        raise ValueError(f"blocks must be <= N={n}, got {blocks}")
    xi = None if track is None else _check_patterns("track", track).astype(np.float64)
    if xi is not None and xi.shape[1] != n:
        raise ValueError(f"track must have N={n} columns, got shape {xi.shape}")
    rng = numpy_rng(seed)
    self_coupling = (f**2).sum(axis=0) / n
    overlap = f @ s / n
    history = np.empty((sweeps, p if xi is None else xi.shape[0]))
    # the groups of np.array_split(order, blocks): the first n % blocks are one longer
    size, longer = divmod(n, blocks)
    ends = np.cumsum([size + (b < longer) for b in range(blocks)]).tolist()
    bounds = list(zip([0, *ends[:-1]], ends))
    zero_temperature = math.isinf(beta)
    # the factors neuron-major [N, P]: a group's columns are contiguous rows, gathered into
    # the values and memory layout (the matrix products' operand) of f[:, group] in a fraction
    # of the time for many factors
    f_rows = np.ascontiguousarray(f.T)
    for t in range(sweeps):
        order = rng.permutation(n)
        # self-couplings and states in visiting order, once per sweep: each group is a slice
        coupling_order, s_order = self_coupling[order], s[order]
        for lo, hi in bounds:
            columns, old = np.take(f_rows, order[lo:hi], axis=0).T, s_order[lo:hi]
            field = columns.T @ overlap - coupling_order[lo:hi] * old
            if zero_temperature:
                new = np.sign(field)
                np.copyto(new, old, where=new == 0)
            else:
                up = rng.random(hi - lo) < 0.5 * (1.0 + np.tanh(beta * field))
                new = np.where(up, 1.0, -1.0)
            change = new - old
            if np.count_nonzero(change):
                overlap += columns @ change / n
                s_order[lo:hi] = new
            else:  # no flip: the product would be +0.0; adding it still turns -0.0 into +0.0
                overlap += 0.0
        s[order] = s_order
        history[t] = overlap if xi is None else xi @ s / n
    return GlauberResult(sigma=s.astype(np.int8), overlaps=history)


def hierarchical_overlaps(dilution: float, num_patterns: int) -> np.ndarray:
    """The hierarchical law ``m_k = (1 - d) d^(k - 1)``, ``k = 1..K`` (``[K]``)."""
    check_probability("dilution", dilution)
    k = check_positive_int("num_patterns", num_patterns)
    return np.asarray((1.0 - dilution) * dilution ** np.arange(k))


def hierarchical_stability_limit(num_patterns: int) -> float:
    """Largest dilution at which the zero-temperature hierarchical state is stable.

    Signal-to-noise: the neurons where ``xi^1`` disagrees with all the others keep their sign
    while ``m_1 > m_2 + ... + m_K``, i.e. ``d + d^2 + ... + d^(K-1) < 1``. Returns 1.0 for
    ``K <= 2``; tends to 1/2 as ``K`` grows (0.618 for ``K = 3``).
    """
    k = check_positive_int("num_patterns", num_patterns)
    if k <= 2:
        return 1.0
    return float(optimize.brentq(lambda d: sum(d**j for j in range(1, k)) - 1.0, 0.0, 1.0))


def mean_field_overlaps(
    dilution: float,
    num_patterns: int,
    *,
    beta: float = math.inf,
    rho: float = 0.0,
    init: np.ndarray | None = None,
    iterations: int = 2000,
    tol: float = 1e-12,
) -> np.ndarray:
    """Low-storage mean-field overlaps: fixed point of ``m = E_xi[xi tanh(beta xi.m)]``.

    The expectation over one neuron's ternary entries is exact (all ``3^K`` configurations).
    Iterates from ``init`` (default: the hierarchical law) until the change is below ``tol``.
    At ``beta = inf``, ``tanh`` becomes ``sign`` (0 on exact ties).

    Dataset noise ``rho > 0`` (zero temperature only): the couplings are built from example
    averages, modelled (large ``M``) as ``r xi_i (1 + sqrt(rho) Z_i)`` with ``Z_i`` standard
    Gaussian, so given ``xi`` the field ``h = sum_nu xi_nu n_nu (1 + sqrt(rho) Z_nu)`` is Gaussian
    with mean ``mu = xi.n`` and variance ``s^2 = rho sum_nu xi_nu^2 n_nu^2``, and ``E_Z sign(h) =
    erf(mu / (sqrt(2) s))``. The iterated order parameters are the overlaps with the example
    averages, ``n = E[xi (1 + sqrt(rho) Z) sign(h)] = m + rho n E[xi^2 2 phi(mu/s) / s]`` (Stein's
    lemma, ``phi`` the standard normal density); the Mattis overlaps ``m = E[xi sign(h)]`` are
    returned. Both Hebbian protocols obey these equations in low storage. ``rho = 0`` is exactly
    the noiseless iteration; for ``rho > 0``, ``init`` starts ``n`` (only its direction matters).

    Args:
        dilution: ``d`` in ``[0, 1]``.
        num_patterns: ``K <= 10``.
        beta: inverse temperature (> 0, ``inf`` allowed).
        rho: dataset entropy ``(1 - r^2) / (M r^2)`` (:func:`dataset_entropy`), ``>= 0``;
            ``rho > 0`` needs ``beta = inf``.
        init: starting overlaps ``[K]``.
        iterations: maximum number of iterations.
        tol: stop when no order parameter changes by more than this.
    """
    check_probability("dilution", dilution)
    k = check_positive_int("num_patterns", num_patterns)
    if k > 10:
        raise ValueError(f"num_patterns must be <= 10 for the exact 3^K average, got {k}")
    beta = _check_beta(beta)
    check_number("rho", rho, ge=0)
    if rho > 0 and not math.isinf(beta):
        raise ValueError(f"rho > 0 needs zero temperature (beta = inf), got beta = {beta!r}")
    iterations = check_positive_int("iterations", iterations)
    check_number("tol", tol, gt=0)
    configs = np.array(list(itertools.product((-1.0, 0.0, 1.0), repeat=k)))
    p_entry = {-1.0: (1 - dilution) / 2, 0.0: dilution, 1.0: (1 - dilution) / 2}
    weights = np.array([np.prod([p_entry[v] for v in c]) for c in configs])
    m = hierarchical_overlaps(dilution, k) if init is None else as_float_array("init", init, "[K]")
    if m.shape != (k,):
        raise ValueError(f"init must have shape [{k}], got {m.shape}")
    check_finite("init", m)
    if rho > 0:
        return _noisy_zero_temperature_overlaps(configs, weights, float(rho), m, iterations, tol)
    for _ in range(iterations):
        field = configs @ m
        act = np.sign(field) if math.isinf(beta) else np.tanh(beta * field)
        new = (weights[:, None] * configs * act[:, None]).sum(axis=0)
        if np.max(np.abs(new - m)) < tol:
            return np.asarray(new)
        m = new
    return np.asarray(m)


def _noisy_zero_temperature_overlaps(
    configs: np.ndarray,
    weights: np.ndarray,
    rho: float,
    n: np.ndarray,
    iterations: int,
    tol: float,
) -> np.ndarray:
    """Mattis overlaps at the fixed point of the ``rho > 0`` map of :func:`mean_field_overlaps`."""
    active = configs**2
    m = np.zeros_like(n)
    # s = sqrt(rho) q and rho * density = sqrt(rho) * (density at rho = 1) / q: n grows to
    # about sqrt(rho), so rho * n**2 (and rho * n) would overflow for rho beyond about 1e150
    root = math.sqrt(rho)
    for _ in range(iterations):
        mu = configs @ n
        q = np.sqrt(active @ n**2)
        # q = 0 only where every term of the field vanishes, i.e. mu = 0 too: sign(h) = 0
        safe = np.where(q > 0, q, 1.0)
        z = mu / (root * safe)  # mu / s
        mean_sign = np.where(q > 0, special.erf(z / math.sqrt(2.0)), 0.0)
        density = np.where(q > 0, root * np.sqrt(2.0 / math.pi) * np.exp(-0.5 * z**2) / safe, 0.0)
        m = weights @ (configs * mean_sign[:, None])
        new = m + n * ((weights * density) @ active)
        if np.max(np.abs(new - n)) < tol:
            break
        n = new
    return np.asarray(m)
