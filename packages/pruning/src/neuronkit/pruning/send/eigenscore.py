"""EigenScore and Efficient EigenScore (EES), the hallucination metrics of SeND.

EigenScore (Chen et al., ICLR 2024, "INSIDE: LLMs' internal states retain the power of
hallucination detection"): sample ``K`` responses to one prompt, take one embedding
``z_k in R^d`` per response (a middle-layer hidden state of the last token), and measure their
semantic spread as the mean log eigenvalue of the regularized ``K x K`` covariance

    Sigma = Z^T J_d Z / (d - 1) + alpha I_K,
    EigenScore = (1/K) log det Sigma = mean_i log lambda_i

with ``J_d = I_d - 1 1^T / d`` (each embedding is centred over its features, as ``np.cov`` of
the ``[K, d]`` matrix does in the INSIDE code). Consistent (confident) answers give low
scores, diverse (hallucinated) ones high scores.

Efficient EigenScore (Mohammadzadeh et al., 2024, "Hallucination Detox: Sensitive Neuron
Dropout (SeND) for Large Language Model Training", section on EES): ``log det Sigma = tr log
Sigma`` is approximated without any eigendecomposition and without forming ``Sigma`` when that
is cheaper. The spectrum is mapped into ``[-1, 1]`` (upper end from power iteration, lower
end ``alpha``, the regularizer's floor), ``log`` is expanded in Chebyshev polynomials
``log(lambda(t)) ~ sum_m c_m T_m(t)`` and the traces ``tr T_m(A)`` (the Chebyshev moments of the
spectral density, the kernel polynomial method) are estimated stochastically (Hutchinson)
with Rademacher probes through the three-term recurrence ``T_{m+1} = 2 A T_m - T_{m-1}``:
only matrix-vector products with ``Sigma``, ``O(M N_z K d)`` instead of ``O(K^2 d + K^3)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from neuronkit.common import check_choice, check_finite, check_number, check_seed, check_type

__all__ = [
    "KERNELS",
    "chebyshev_log_coefficients",
    "efficient_eigenscore",
    "eigenscore",
    "embedding_covariance",
    "jackson_damping",
]

#: Damping kernels of the Chebyshev series (``None``: plain truncation).
KERNELS = (None, "jackson")


def _check_embeddings(embeddings: torch.Tensor) -> None:
    check_type("embeddings", embeddings, torch.Tensor)
    if embeddings.ndim not in (2, 3):
        raise ValueError(
            "embeddings must be [K, d] (K responses, d features) or [P, K, d] (P prompts), "
            f"got shape {tuple(embeddings.shape)}"
        )
    if not embeddings.is_floating_point():
        raise TypeError(f"embeddings must be a floating-point tensor, got {embeddings.dtype}")
    k, d = embeddings.shape[-2:]
    if k < 2 or d < 2:
        raise ValueError(f"embeddings need K >= 2 responses and d >= 2 features, got K={k}, d={d}")
    check_finite("embeddings", embeddings)


def _centred(embeddings: torch.Tensor) -> torch.Tensor:
    """``J_d``-centred embeddings scaled by ``1 / sqrt(d - 1)``: ``Sigma = X X^T + alpha I``,
    in float32 at least (half-precision squares overflow above 256, and CPUs have no
    half-precision eigensolver).

    Raises:
        ValueError: ``Sigma``'s trace overflows the embeddings' dtype."""
    embeddings = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    d = embeddings.shape[-1]
    x = (embeddings - embeddings.mean(-1, keepdim=True)) / math.sqrt(d - 1)
    if not bool(torch.isfinite(x.square().sum())):
        raise ValueError(
            f"embeddings are too large for {embeddings.dtype}: their covariance overflows; "
            "rescale them or pass float64"
        )
    return x


def embedding_covariance(embeddings: torch.Tensor, alpha: float = 1e-3) -> torch.Tensor:
    """The regularized covariance ``Z^T J_d Z / (d - 1) + alpha I`` of INSIDE's EigenScore.

    Args:
        embeddings: ``[K, d]`` or ``[P, K, d]``, one embedding per sampled response.
        alpha: regularizer added to the diagonal (> 0).

    Returns:
        ``[K, K]`` (or ``[P, K, K]``) symmetric positive definite matrix, in the embeddings'
        dtype (float32 for float16 / bfloat16 ones).
    """
    _check_embeddings(embeddings)
    check_number("alpha", alpha, gt=0)
    x = _centred(embeddings)
    cov = x @ x.transpose(-1, -2)
    return cov + alpha * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)


def eigenscore(embeddings: torch.Tensor, alpha: float = 1e-3) -> torch.Tensor:
    """Exact EigenScore: the mean natural-log eigenvalue of :func:`embedding_covariance`.

    Args:
        embeddings: ``[K, d]`` (one set) or ``[P, K, d]`` (one set per prompt).
        alpha: covariance regularizer (INSIDE uses ``1e-3``).

    Returns:
        A scalar tensor (or ``[P]``): ``(1/K) log det(Sigma)``, by eigendecomposition (in
        float32 at least), in the embeddings' dtype.
    """
    cov = embedding_covariance(embeddings, alpha)
    return torch.log(torch.linalg.eigvalsh(cov)).mean(-1).to(embeddings.dtype)


def jackson_damping(moments: int) -> np.ndarray:
    """Jackson kernel factors ``g_0..g_M`` of the kernel polynomial method (Weisse et al. 2006).

    Returns:
        ``[moments + 1]`` float64 array with ``g_0 = 1`` decreasing towards 0.
    """
    check_number("moments", moments, ge=1, integer=True)
    n = moments + 1
    m = np.arange(n)
    q = np.pi / (n + 1)
    return ((n - m + 1) * np.cos(m * q) + np.sin(m * q) / np.tan(q)) / (n + 1)


def chebyshev_log_coefficients(
    moments: int, lower: float, upper: float, kernel: str | None = None
) -> np.ndarray:
    """Chebyshev coefficients of ``log`` on ``[lower, upper]``, mapped to ``t in [-1, 1]``.

    ``log(lambda) ~ sum_{m=0}^{M} c_m T_m(t)`` with ``lambda = (upper - lower) / 2 t +
    (upper + lower) / 2``; the ``c_m`` are the interpolation coefficients at ``2 (M + 1)``
    Chebyshev-Gauss nodes (discrete cosine transform), optionally multiplied by a damping
    kernel (``"jackson"``).

    Returns:
        ``[moments + 1]`` float64 array.
    """
    check_number("moments", moments, ge=1, integer=True)
    check_number("lower", lower, gt=0)
    check_number("upper", upper, gt=0)
    if upper <= lower:
        raise ValueError(f"upper must exceed lower, got lower={lower}, upper={upper}")
    check_choice("kernel", kernel, KERNELS)
    n = 2 * (moments + 1)
    theta = np.pi * (np.arange(n) + 0.5) / n
    f = np.log(0.5 * (upper - lower) * np.cos(theta) + 0.5 * (upper + lower))
    m = np.arange(moments + 1)
    c = (2.0 / n) * (np.cos(np.outer(m, theta)) @ f)
    c[0] *= 0.5
    if kernel == "jackson":
        c = c * jackson_damping(moments)
    return c


def efficient_eigenscore(
    embeddings: torch.Tensor,
    alpha: float = 1e-3,
    *,
    moments: int = 96,
    probes: int = 16,
    power_iterations: int = 15,
    kernel: str | None = None,
    seed: int | torch.Generator = 0,
) -> torch.Tensor:
    """Efficient EigenScore (EES): Chebyshev moments of ``log`` with Hutchinson traces.

    Approximates :func:`eigenscore` without eigendecomposition (see the module docstring).
    ``Sigma`` is applied implicitly as ``X (X^T V) + alpha V`` or, when that is cheaper for the
    given ``K``, ``d``, ``moments`` and ``probes``, through the formed ``K x K`` Gram matrix.
    The spectrum's upper end is the power-iteration Rayleigh quotient plus its residual norm
    (a margin of 1%); if a moment then exceeds 1 in magnitude, which a spectrum inside the
    interval cannot give, the power method stopped below the top eigenvalue and the interval is
    widened by 25% at a time (never beyond the guaranteed bound ``||X||_F^2``, or Gershgorin's
    on the Gram matrix, plus ``alpha``) until no moment does. The lower end is ``alpha``. With
    ``probes >= K`` the trace is taken over the ``K`` unit vectors (exact, no sampling error).

    Args:
        embeddings: ``[K, d]`` or ``[P, K, d]`` (a batch of independent sets).
        alpha: covariance regularizer (> 0), as in :func:`eigenscore`.
        moments: Chebyshev degree ``M`` (>= 1).
        probes: Rademacher probe vectors ``N_z`` per set (>= 1).
        power_iterations: iterations of the power method for the upper spectral bound.
        kernel: ``None`` or ``"jackson"`` damping of the Chebyshev series.
        seed: an int or a ``torch.Generator`` for the probes and the power-method start
            (drawn on the generator's device, an int's on the CPU, then moved to the data).

    Returns:
        A scalar tensor (or ``[P]``) estimating ``(1/K) log det(Sigma)``.
    """
    _check_embeddings(embeddings)
    check_number("alpha", alpha, gt=0)
    check_number("moments", moments, ge=1, integer=True)
    check_number("probes", probes, ge=1, integer=True)
    check_number("power_iterations", power_iterations, ge=1, integer=True)
    check_choice("kernel", kernel, KERNELS)
    gen = _generator(seed)
    squeeze = embeddings.ndim == 2
    z = embeddings.unsqueeze(0) if squeeze else embeddings
    p, k, d = z.shape
    x = _centred(z)
    exact_trace = probes >= k
    n_vec = k if exact_trace else probes
    matvecs = moments + power_iterations + 1
    # Gram route: 2 K^2 d once + 2 K^2 per column; factor route: 4 K d per column.
    gram: torch.Tensor | None = None
    if k * (d + matvecs * n_vec) < 2 * d * matvecs * n_vec:
        g = gram = x @ x.transpose(-1, -2)

        def apply(v: torch.Tensor) -> torch.Tensor:
            return g @ v + alpha * v

    else:
        xt = x.transpose(-1, -2).contiguous()

        def apply(v: torch.Tensor) -> torch.Tensor:
            return x @ (xt @ v) + alpha * v

    # Upper spectral bound by power iteration (Rayleigh quotient + residual norm).
    v = torch.randn(p, k, 1, generator=gen, dtype=torch.float64, device=gen.device).to(x)
    v = v / v.norm(dim=1, keepdim=True)
    for _ in range(power_iterations):
        w = apply(v)
        v = w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    w = apply(v)
    theta = (v * w).sum(dim=(1, 2))
    resid = (w - theta[:, None, None] * v).norm(dim=(1, 2))
    upper = ((theta + resid) * 1.01).double().cpu().numpy()

    if exact_trace:
        probe = torch.eye(k, dtype=x.dtype, device=x.device).expand(p, k, k)
    else:
        shape = (p, k, n_vec)
        bits = torch.randint(0, 2, shape, generator=gen, dtype=torch.int64, device=gen.device)
        probe = (2 * bits - 1).to(x)
    lower = alpha
    out = torch.empty(p, dtype=torch.float64)
    # tr(T) = sum of e_j^T T e_j (unit vectors) or K * mean of v^T T v (Rademacher probes)
    norm = 1.0 / k if exact_trace else 1.0 / (n_vec * k)

    def chebyshev_moments(upper: np.ndarray) -> torch.Tensor:
        """``[p, M + 1]``: ``mu_m = tr(T_m(A)) / K`` (Hutchinson average over probes) for the
        spectrum mapped from ``[alpha, upper]`` to ``[-1, 1]``."""
        scale = torch.as_tensor(2.0 / (upper - lower), dtype=x.dtype, device=x.device)
        shift = torch.as_tensor((upper + lower) / (upper - lower), dtype=x.dtype, device=x.device)
        scale, shift = scale.view(p, 1, 1), shift.view(p, 1, 1)

        def mapped(t: torch.Tensor) -> torch.Tensor:  # (2 Sigma - (b + a) I) / (b - a)
            return scale * apply(t) - shift * t

        mus = torch.empty(p, moments + 1, dtype=torch.float64)
        t_prev, t_cur = probe, mapped(probe)
        mus[:, 0] = (probe * t_prev).sum(dim=(1, 2)).double() * norm
        mus[:, 1] = (probe * t_cur).sum(dim=(1, 2)).double() * norm
        for m in range(2, moments + 1):
            t_prev, t_cur = t_cur, 2.0 * mapped(t_cur) - t_prev
            mus[:, m] = (probe * t_cur).sum(dim=(1, 2)).double() * norm
        return mus

    mus = chebyshev_moments(upper)
    # a spectrum inside the interval keeps every |mu_m| <= 1 (|z^T T_m z| <= |z|^2): a larger
    # one means the power method stopped below the top eigenvalue; widen the interval (by 25%
    # a time, up to the guaranteed bound) until none does
    missed = (mus.abs().amax(dim=1) > 1.0 + 1e-6).numpy()
    if missed.any():  # the guaranteed bound: ||X||_F^2, or Gershgorin's on the Gram matrix
        safe = (x * x).sum(dim=(1, 2))
        if gram is not None:
            safe = torch.minimum(safe, gram.abs().sum(-1).amax(-1))
        ceiling = (safe + alpha).double().cpu().numpy()
        missed &= upper < ceiling
    while missed.any():
        upper = np.where(missed, np.minimum(upper * 1.25, ceiling), upper)
        mus = chebyshev_moments(upper)
        missed = (mus.abs().amax(dim=1) > 1.0 + 1e-6).numpy() & (upper < ceiling)
    for i in range(p):
        c = torch.from_numpy(chebyshev_log_coefficients(moments, lower, float(upper[i]), kernel))
        out[i] = (c * mus[i]).sum()
    out = out.to(device=embeddings.device, dtype=embeddings.dtype)
    return out[0] if squeeze else out


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    check_seed(seed)
    return torch.Generator().manual_seed(int(seed))
