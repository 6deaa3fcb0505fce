"""One-dimensional Gaussian-process function tasks for neural processes.

The standard meta-learning benchmark of the neural-process literature (Garnelo et al. 2018;
Lee et al. 2020 "Bootstrapping Neural Processes"; Lee et al., ICLR 2023, "Martingale Posterior
Neural Processes"): every task is one function ``f ~ GP(0, k)`` with random hyperparameters,
observed with Gaussian noise at random inputs; the first ``num_context`` points of a task are its
context set, the rest its targets. All tasks of a batch share the number of context and target
points (so no masks are needed), their hyperparameters differ.

Kernels (``r = |x - x'| / length_scale``, ``s = scale``):

* ``"rbf"``: ``s^2 exp(-r^2 / 2)``;
* ``"matern12"``: ``s^2 exp(-r)``;
* ``"matern32"``: ``s^2 (1 + sqrt(3) r) exp(-sqrt(3) r)``;
* ``"matern52"``: ``s^2 (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)``.

The defaults follow the benchmark of the papers above: ``x ~ U(-2, 2)``, length scale
``~ U(0.1, 0.6)``, output scale ``~ U(0.1, 1)``, noise standard deviation ``0.02``, at most 50
points per task with at least 3 context and 3 target points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from neuronkit.common import check_choice, check_number, check_type

from .._utils import check_positive_int, torch_generator

__all__ = [
    "GP_KERNELS",
    "GPTasks",
    "gp_kernel",
    "gp_log_likelihood",
    "gp_predictive",
    "sample_gp_tasks",
    "split_context_target",
]

GP_KERNELS = ("rbf", "matern12", "matern32", "matern52")


@dataclass(frozen=True)
class GPTasks:
    """A batch of GP function tasks.

    Attributes:
        x: inputs ``[B, N, 1]`` (float32), the ``num_context`` context points first.
        y: noisy outputs ``[B, N, 1]`` (float32).
        num_context: number of context points per task (``1 <= num_context < N``).
        length_scale, scale: the tasks' kernel hyperparameters ``[B]`` (float64).
        kernel: the kernel's name (one of :data:`GP_KERNELS`).
        noise: observation noise standard deviation.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_context: int
    length_scale: torch.Tensor
    scale: torch.Tensor
    kernel: str
    noise: float

    @property
    def xc(self) -> torch.Tensor:
        """Context inputs ``[B, Nc, 1]``."""
        return self.x[:, : self.num_context]

    @property
    def yc(self) -> torch.Tensor:
        """Context outputs ``[B, Nc, 1]``."""
        return self.y[:, : self.num_context]

    @property
    def xt(self) -> torch.Tensor:
        """Target inputs ``[B, Nt, 1]`` (the points that are not context)."""
        return self.x[:, self.num_context :]

    @property
    def yt(self) -> torch.Tensor:
        """Target outputs ``[B, Nt, 1]``."""
        return self.y[:, self.num_context :]

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_points(self) -> int:
        return int(self.x.shape[1])


def _per_task(name: str, value: Any, batch: int) -> torch.Tensor:
    """A positive hyperparameter as a float64 tensor ``[B, 1, 1]`` (scalar or ``[B]``)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to(dtype=torch.float64, device="cpu")
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(
                f"{name} must be a scalar or have shape [{batch}], got {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"{name} must be finite and > 0, got {t.tolist()}")
    else:
        check_number(name, value, gt=0)
        t = torch.full((batch,), float(value), dtype=torch.float64)
    return t.view(batch, 1, 1)


def _check_inputs(name: str, x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, N, D], got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} must have 3 dimensions [B, N, D], got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return x.detach().to(dtype=torch.float64, device="cpu")


def gp_kernel(
    x1: torch.Tensor,
    x2: torch.Tensor,
    *,
    kernel: str = "rbf",
    length_scale: float | torch.Tensor = 0.5,
    scale: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Stationary covariance matrices ``k(x1, x2)`` for a batch of tasks.

    Args:
        x1: inputs ``[B, N, D]``; x2: inputs ``[B, M, D]``.
        kernel: one of :data:`GP_KERNELS` (see the module docstring).
        length_scale, scale: positive scalars or per-task tensors ``[B]``.

    Returns:
        ``[B, N, M]`` (float64).
    """
    a = _check_inputs("x1", x1)
    b = _check_inputs("x2", x2)
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(
            f"x2 must match x1 in batch and input dimension {a.shape[0], a.shape[2]}, got "
            f"{b.shape[0], b.shape[2]}"
        )
    check_type("kernel", kernel, str)
    check_choice("kernel", kernel, GP_KERNELS)
    ls = _per_task("length_scale", length_scale, a.shape[0])
    s2 = _per_task("scale", scale, a.shape[0]) ** 2
    r = torch.cdist(a, b) / ls
    if kernel == "rbf":
        return s2 * torch.exp(-0.5 * r * r)
    if kernel == "matern12":
        return s2 * torch.exp(-r)
    if kernel == "matern32":
        sr = math.sqrt(3.0) * r
        return s2 * (1.0 + sr) * torch.exp(-sr)
    sr = math.sqrt(5.0) * r
    return s2 * (1.0 + sr + sr * sr / 3.0) * torch.exp(-sr)


def _check_range(name: str, value: Any, *, positive: bool) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (low, high), got {value!r:.80}")
    lo, hi = value
    check_number(f"{name}[0]", lo, gt=0 if positive else None)
    check_number(f"{name}[1]", hi, ge=lo)
    return float(lo), float(hi)


def sample_gp_tasks(
    batch_size: int,
    *,
    kernel: str = "rbf",
    num_context: int | None = None,
    num_target: int | None = None,
    max_points: int = 50,
    min_points: int = 3,
    x_range: tuple[float, float] = (-2.0, 2.0),
    length_range: tuple[float, float] = (0.1, 0.6),
    scale_range: tuple[float, float] = (0.1, 1.0),
    noise: float = 0.02,
    seed: int | torch.Generator | None = None,
) -> GPTasks:
    """Draw ``batch_size`` functions from a GP prior, observed with noise at random inputs.

    The context size, when not given, is uniform in ``[min_points, max_points - min_points)``
    and the target size uniform in ``[min_points, max_points - num_context)``, shared by the
    batch. Each task draws its own length scale and output scale uniformly from the ranges, its
    inputs uniformly from ``x_range``, and ``y = f(x) + noise * eps`` exactly (Cholesky of the
    ``[N, N]`` covariance in float64).

    Args:
        batch_size: number of tasks ``B``.
        kernel: one of :data:`GP_KERNELS`.
        num_context, num_target: fixed set sizes (None: random as above).
        max_points: bound on ``num_context + num_target`` when they are random.
        min_points: smallest random context and target size (``>= 1``).
        x_range, length_range, scale_range: ``(low, high)`` pairs.
        noise: observation noise standard deviation (``>= 0``; a 1e-6 jitter is always added).
        seed: int or ``torch.Generator``.

    Returns:
        :class:`GPTasks` with ``x, y [B, num_context + num_target, 1]``.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    check_type("kernel", kernel, str)
    check_choice("kernel", kernel, GP_KERNELS)
    min_points = check_positive_int("min_points", min_points)
    max_points = check_positive_int("max_points", max_points, minimum=2 * min_points + 1)
    x_lo, x_hi = _check_range("x_range", x_range, positive=False)
    if x_hi <= x_lo:
        raise ValueError(f"x_range must have low < high, got {x_range!r}")
    l_lo, l_hi = _check_range("length_range", length_range, positive=True)
    s_lo, s_hi = _check_range("scale_range", scale_range, positive=True)
    check_number("noise", noise, ge=0)
    gen = torch_generator(seed)
    if num_context is None:
        num_context = int(torch.randint(min_points, max_points - min_points, (1,), generator=gen))
    else:
        num_context = check_positive_int("num_context", num_context)
    if num_target is None:
        high = max(max_points - num_context, min_points + 1)
        num_target = int(torch.randint(min_points, high, (1,), generator=gen))
    else:
        num_target = check_positive_int("num_target", num_target)
    n = num_context + num_target
    x = x_lo + (x_hi - x_lo) * torch.rand(batch_size, n, 1, generator=gen, dtype=torch.float64)
    length = l_lo + (l_hi - l_lo) * torch.rand(batch_size, generator=gen, dtype=torch.float64)
    scale = s_lo + (s_hi - s_lo) * torch.rand(batch_size, generator=gen, dtype=torch.float64)
    cov = gp_kernel(x, x, kernel=kernel, length_scale=length, scale=scale)
    cov = cov + (float(noise) ** 2 + 1e-6) * torch.eye(n, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    eps = torch.randn(batch_size, n, 1, generator=gen, dtype=torch.float64)
    y = chol @ eps
    return GPTasks(
        x=x.float(),
        y=y.float(),
        num_context=num_context,
        length_scale=length,
        scale=scale,
        kernel=kernel,
        noise=float(noise),
    )


def split_context_target(
    x: torch.Tensor,
    y: torch.Tensor,
    num_context: int,
    *,
    seed: int | torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each task's points at random into a context and a target set.

    Args:
        x: inputs ``[B, N, Dx]``; y: outputs ``[B, N, Dy]``.
        num_context: context points per task (``1 <= num_context < N``).
        seed: int or ``torch.Generator`` for the per-task permutations.

    Returns:
        ``(xc [B, Nc, Dx], yc [B, Nc, Dy], xt [B, N - Nc, Dx], yt [B, N - Nc, Dy])``; the inputs
        are not modified.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor [B, N, D], got {type(t).__name__}")
        if t.ndim != 3:
            raise ValueError(f"{name} must have 3 dimensions [B, N, D], got {tuple(t.shape)}")
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"y must have the batch and point dimensions of x {tuple(x.shape[:2])}, got "
            f"{tuple(y.shape[:2])}"
        )
    n = int(x.shape[1])
    if n < 2:
        raise ValueError(f"x must hold at least 2 points per task, got {n}")
    num_context = check_positive_int("num_context", num_context)
    if num_context >= n:
        raise ValueError(f"num_context must be < the number of points {n}, got {num_context}")
    gen = torch_generator(seed)
    perm = torch.argsort(torch.rand(x.shape[0], n, generator=gen), dim=1).to(x.device)
    xs = torch.gather(x, 1, perm.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    ys = torch.gather(y, 1, perm.unsqueeze(-1).expand(-1, -1, y.shape[2]))
    return xs[:, :num_context], ys[:, :num_context], xs[:, num_context:], ys[:, num_context:]


def gp_predictive(
    tasks: GPTasks, x: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact GP posterior predictive of noisy outputs given each task's context (oracle).

    Uses the tasks' own kernel, hyperparameters and noise, so it is the Bayes-optimal
    predictive that a neural process trained on these tasks approximates.

    Args:
        tasks: a :class:`GPTasks` batch.
        x: query inputs ``[B, M, 1]`` (default: the tasks' targets ``tasks.xt``).

    Returns:
        ``(mean [B, M, 1], std [B, M, 1])`` (float64), ``std`` including the noise.
    """
    check_type("tasks", tasks, GPTasks)
    xq = tasks.xt if x is None else x
    xq = _check_inputs("x", xq)
    if xq.shape[0] != tasks.batch_size or xq.shape[2] != tasks.x.shape[2]:
        raise ValueError(
            f"x must have shape [{tasks.batch_size}, M, {tasks.x.shape[2]}], got {tuple(xq.shape)}"
        )
    xc = tasks.xc.double()
    yc = tasks.yc.double()
    kern, ls, sc = tasks.kernel, tasks.length_scale, tasks.scale
    noise2 = tasks.noise**2 + 1e-6
    kcc = gp_kernel(xc, xc, kernel=kern, length_scale=ls, scale=sc)
    kcc = kcc + noise2 * torch.eye(xc.shape[1], dtype=torch.float64)
    kqc = gp_kernel(xq, xc, kernel=kern, length_scale=ls, scale=sc)
    chol = torch.linalg.cholesky(kcc)
    alpha = torch.cholesky_solve(yc, chol)
    mean = kqc @ alpha
    v = torch.linalg.solve_triangular(chol, kqc.transpose(1, 2), upper=False)
    prior_var = tasks.scale.view(-1, 1) ** 2  # k(x, x) = scale^2 for every kernel here
    var = prior_var - (v * v).sum(dim=1) + noise2
    return mean, var.clamp_min(1e-12).sqrt().unsqueeze(-1)


def gp_log_likelihood(tasks: GPTasks) -> torch.Tensor:
    """Per-point log-likelihood of the targets under the oracle GP predictive.

    Args:
        tasks: a :class:`GPTasks` batch.

    Returns:
        ``[B, Nt]`` (float64): ``log N(yt_i; mean_i, std_i^2)`` with :func:`gp_predictive`.
    """
    mean, std = gp_predictive(tasks)
    dist = torch.distributions.Normal(mean, std)
    return dist.log_prob(tasks.yt.double()).squeeze(-1)
