"""Function-fitting tasks for KAN-style regression benchmarks.

Seven scalar targets on ``[-1, 1]^d`` in the spirit of the function-fitting suites of Liu et al.
("KAN: Kolmogorov-Arnold Networks") and the S-KAN paper ("Activation Space Selectable
Kolmogorov-Arnold Networks"): smooth and oscillatory, separable and compositional, smooth and
non-smooth, so that different activation spaces win on different tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from neuronkit.common import check_choice

from .._utils import check_positive_int, torch_generator

__all__ = ["FUNCTION_TASKS", "FunctionTask", "function_task"]


def _bessel(x: torch.Tensor) -> torch.Tensor:
    from scipy.special import j0  # imported here: keeps scipy out of `import neuronkit.theory.data`

    return torch.as_tensor(j0(20.0 * x[:, 0].double().numpy()), dtype=x.dtype)


_TASKS: dict[str, tuple[int, str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "bessel": (1, "J0(20 x)", _bessel),
    "exp_sin": (
        2,
        "exp(sin(pi x1) + x2^2)",
        lambda x: torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2),
    ),
    "product": (2, "x1 x2", lambda x: x[:, 0] * x[:, 1]),
    "exp_sin4": (
        4,
        "exp((sin(pi (x1^2 + x2^2)) + sin(pi (x3^2 + x4^2))) / 2)",
        lambda x: torch.exp(
            0.5
            * (
                torch.sin(math.pi * (x[:, 0] ** 2 + x[:, 1] ** 2))
                + torch.sin(math.pi * (x[:, 2] ** 2 + x[:, 3] ** 2))
            )
        ),
    ),
    "high_freq": (1, "sin(5 pi x) + x", lambda x: torch.sin(5 * math.pi * x[:, 0]) + x[:, 0]),
    "abs_tanh": (2, "|x1| + tanh(5 x2)", lambda x: x[:, 0].abs() + torch.tanh(5 * x[:, 1])),
    "ring": (
        2,
        "exp(-10 (||x|| - 0.5)^2)",
        lambda x: torch.exp(-10 * (torch.linalg.norm(x, dim=1) - 0.5) ** 2),
    ),
}

FUNCTION_TASKS: tuple[str, ...] = tuple(_TASKS)


@dataclass(frozen=True)
class FunctionTask:
    """A sampled task: ``x_train [n, d]``, ``y_train [n]``, ``x_test [m, d]``, ``y_test [m]``
    (float32), its name, input dimension and formula."""

    name: str
    dim: int
    formula: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def function_task(
    name: str,
    n_train: int = 1000,
    n_test: int = 1000,
    *,
    seed: int | torch.Generator | None = None,
) -> FunctionTask:
    """Sample one of :data:`FUNCTION_TASKS` with inputs uniform on ``[-1, 1]^d``.

    Args:
        name: task name; n_train, n_test: sample sizes (``>= 1``); seed: int or Generator.
    """
    check_choice("name", name, FUNCTION_TASKS)
    n_train = check_positive_int("n_train", n_train)
    n_test = check_positive_int("n_test", n_test)
    dim, formula, fn = _TASKS[name]
    gen = torch_generator(seed)
    # float32 whatever torch's default dtype (with float64 the inputs were float64 and the
    # targets float32)
    x_train = 2 * torch.rand(n_train, dim, generator=gen, dtype=torch.float32) - 1
    x_test = 2 * torch.rand(n_test, dim, generator=gen, dtype=torch.float32) - 1
    return FunctionTask(
        name=name,
        dim=dim,
        formula=formula,
        x_train=x_train,
        y_train=fn(x_train).float(),
        x_test=x_test,
        y_test=fn(x_test).float(),
    )
