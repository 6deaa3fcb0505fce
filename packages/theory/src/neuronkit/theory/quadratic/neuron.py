"""Quadratic neurons and the ReLinear training strategy.

Fan, Li, Wang et al., "Expressivity and Trainability of Quadratic Networks" (IEEE TNNLS): a
quadratic neuron replaces the inner product of a conventional neuron with the quadratic function

    q(x) = (w_r . x + b_r) (w_g . x + b_g) + w_b . (x * x) + c,

followed by a nonlinearity. A network of such neurons can represent radial (spherical) decision
boundaries with a single neuron, which a conventional ReLU network must approximate piecewise.

ReLinear (the paper's training strategy) makes quadratic networks trainable at high learning
rates: (1) the quadratic terms start at the conventional neuron, ``w_g = 0, b_g = 1, w_b = 0,
c = 0`` (so the network starts as a conventional network), and (2) they are regularized in
training, by shrinking their gradients (smaller learning rates ``gamma_g * lr``, ``gamma_b *
lr``) and/or shrinking the weights themselves (weight decay ``beta_g``, ``beta_b``).
:func:`relinear_param_groups` builds the optimizer parameter groups for that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from neuronkit.common import check_choice, check_number, check_type

from .._utils import check_input_dtype, check_positive_int, torch_generator, traced

__all__ = [
    "QuadraticLinear",
    "QuadraticNet",
    "conventional_net",
    "quadratic_forward",
    "quadratic_net_size",
    "relinear_param_groups",
]

_INITS = ("relinear", "random")
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def _check_quadratic_inputs(
    x: torch.Tensor,
    weight_r: torch.Tensor,
    weight_g: torch.Tensor,
    weight_b: torch.Tensor,
    bias_r: torch.Tensor,
    bias_g: torch.Tensor,
    bias_c: torch.Tensor,
) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [..., in], got {type(x).__name__}")
    if x.ndim < 1 or x.shape[-1] != weight_r.shape[1]:
        raise ValueError(
            f"x must have last dimension in_features={weight_r.shape[1]}, got shape "
            f"{tuple(x.shape)}"
        )
    for name, w in (("weight_g", weight_g), ("weight_b", weight_b)):
        if w.shape != weight_r.shape:
            raise ValueError(
                f"{name} must have the shape of weight_r {tuple(weight_r.shape)}, got "
                f"{tuple(w.shape)}"
            )
    for name, b in (("bias_r", bias_r), ("bias_g", bias_g), ("bias_c", bias_c)):
        if b.shape != (weight_r.shape[0],):
            raise ValueError(f"{name} must have shape [{weight_r.shape[0]}], got {tuple(b.shape)}")


def quadratic_forward(
    x: torch.Tensor,
    weight_r: torch.Tensor,
    bias_r: torch.Tensor,
    weight_g: torch.Tensor,
    bias_g: torch.Tensor,
    weight_b: torch.Tensor,
    bias_c: torch.Tensor,
) -> torch.Tensor:
    """Pre-activations of quadratic neurons (functional core of :class:`QuadraticLinear`).

    ``(x W_r^T + b_r) * (x W_g^T + b_g) + (x * x) W_b^T + c``.

    Args:
        x: inputs ``[..., in]``.
        weight_r, weight_g, weight_b: ``[out, in]``; bias_r, bias_g, bias_c: ``[out]``.

    Returns:
        ``[..., out]``.
    """
    if not traced(x):
        _check_quadratic_inputs(x, weight_r, weight_g, weight_b, bias_r, bias_g, bias_c)
    check_input_dtype("x", x, weight_r.dtype, owner="layer")
    r = torch.nn.functional.linear(x, weight_r, bias_r)
    g = torch.nn.functional.linear(x, weight_g, bias_g)
    return r * g + torch.nn.functional.linear(x * x, weight_b, bias_c)


class QuadraticLinear(nn.Module):
    """A layer of quadratic neurons ``(w_r.x+b_r)(w_g.x+b_g) + w_b.(x*x) + c`` (Fan et al.).

    Args:
        in_features, out_features: sizes (``>= 1``).
        init: ``"relinear"`` (default; ``w_g = 0, b_g = 1, w_b = 0, c = 0``, so the layer starts
            as ``nn.Linear``) or ``"random"`` (every weight drawn like ``nn.Linear``'s: uniform
            in ``+-1/sqrt(in)``, the baseline the paper shows to collapse).
        seed: int or ``torch.Generator`` for the initialization (None: random).

    Parameters: ``weight_r, weight_g, weight_b`` ``[out, in]``; ``bias_r, bias_g, bias_c``
    ``[out]``. Input ``[..., in]`` -> output ``[..., out]``. ``3 * in * out + 3 * out``
    parameters.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "relinear",
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.init = check_choice("init", init, _INITS)
        shape = (self.out_features, self.in_features)
        self.weight_r = nn.Parameter(torch.empty(shape))
        self.bias_r = nn.Parameter(torch.empty(self.out_features))
        self.weight_g = nn.Parameter(torch.empty(shape))
        self.bias_g = nn.Parameter(torch.empty(self.out_features))
        self.weight_b = nn.Parameter(torch.empty(shape))
        self.bias_c = nn.Parameter(torch.empty(self.out_features))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | torch.Generator | None = None) -> None:
        """Re-draw the weights as described by ``init``."""
        gen = torch_generator(seed)
        bound = 1.0 / math.sqrt(self.in_features)

        def uniform_(p: nn.Parameter) -> None:
            # drawn on the generator's device (the CPU for a seed) and copied: the same seed
            # gives the same weights whatever device the module is on
            draw = torch.empty(p.shape, dtype=p.dtype, device=gen.device)
            p.copy_(draw.uniform_(-bound, bound, generator=gen))

        with torch.no_grad():
            # the linear branch: nn.Linear's default (kaiming-uniform with a=sqrt(5))
            uniform_(self.weight_r)
            uniform_(self.bias_r)
            if self.init == "relinear":
                self.weight_g.zero_()
                self.bias_g.fill_(1.0)
                self.weight_b.zero_()
                self.bias_c.zero_()
            else:
                for p in (self.weight_g, self.bias_g, self.weight_b, self.bias_c):
                    uniform_(p)

    def linear_parameters(self) -> list[nn.Parameter]:
        """``[weight_r, bias_r]``: the conventional part of the neuron."""
        return [self.weight_r, self.bias_r]

    def g_parameters(self) -> list[nn.Parameter]:
        """``[weight_g, bias_g]``: the second factor of the product term."""
        return [self.weight_g, self.bias_g]

    def b_parameters(self) -> list[nn.Parameter]:
        """``[weight_b, bias_c]``: the power term and its offset."""
        return [self.weight_b, self.bias_c]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quadratic_forward(
            x, self.weight_r, self.bias_r, self.weight_g, self.bias_g, self.weight_b, self.bias_c
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, init={self.init}"


def _check_widths(widths: Any) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(
            f"widths must be a sequence of layer sizes [in, hidden..., out], got "
            f"{type(widths).__name__}"
        )
    if len(widths) < 2:
        raise ValueError(f"widths must name at least [in, out], got {list(widths)}")
    return [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]


class QuadraticNet(nn.Module):
    """A fully connected network of quadratic layers (:class:`QuadraticLinear`).

    Args:
        widths: ``[in, hidden..., out]`` (every entry ``>= 1``).
        activation: ``"relu"`` (default), ``"tanh"``, ``"sigmoid"`` or ``"identity"``, applied
            after every layer but the last.
        init: ``"relinear"`` or ``"random"`` (see :class:`QuadraticLinear`).
        quadratic_output: whether the last layer is quadratic too (default True); False makes it
            a conventional ``nn.Linear``.
        seed: int or ``torch.Generator`` for the initialization.

    Input ``[B, in]`` -> output ``[B, out]``.
    """

    def __init__(
        self,
        widths: Sequence[int],
        *,
        activation: str = "relu",
        init: str = "relinear",
        quadratic_output: bool = True,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.widths = _check_widths(widths)
        check_choice("activation", activation, _ACTIVATIONS)
        check_choice("init", init, _INITS)
        check_type("quadratic_output", quadratic_output, bool)
        gen = torch_generator(seed)
        layers: list[nn.Module] = []
        n = len(self.widths) - 1
        for i in range(n):
            a, b = self.widths[i], self.widths[i + 1]
            if i == n - 1 and not quadratic_output:
                lin = nn.Linear(a, b)
                bound = 1.0 / math.sqrt(a)
                with torch.no_grad():
                    lin.weight.uniform_(-bound, bound, generator=gen)
                    lin.bias.uniform_(-bound, bound, generator=gen)
                layers.append(lin)
            else:
                layers.append(QuadraticLinear(a, b, init=init, seed=gen))
            if i < n - 1:
                layers.append(_ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_dtype("x", x, next(self.parameters()).dtype)
        return self.layers(x)


def conventional_net(
    widths: Sequence[int],
    *,
    activation: str = "relu",
    seed: int | torch.Generator | None = None,
) -> nn.Sequential:
    """A conventional MLP ``nn.Sequential`` with the same layout as :class:`QuadraticNet`.

    Args:
        widths: ``[in, hidden..., out]``; activation as in :class:`QuadraticNet`; seed for the
            (``nn.Linear``-default) initialization.
    """
    ws = _check_widths(widths)
    check_choice("activation", activation, _ACTIVATIONS)
    gen = torch_generator(seed)
    layers: list[nn.Module] = []
    for i in range(len(ws) - 1):
        # with a seed, the default init (overwritten below) leaves the global RNG alone
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            lin = nn.Linear(ws[i], ws[i + 1])
        bound = 1.0 / math.sqrt(ws[i])
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers.append(lin)
        if i < len(ws) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def quadratic_net_size(widths: Sequence[int], *, quadratic_output: bool = True) -> int:
    """Parameter count of ``QuadraticNet(widths, quadratic_output=...)`` without building it."""
    ws = _check_widths(widths)
    total = 0
    for i in range(len(ws) - 1):
        a, b = ws[i], ws[i + 1]
        last = i == len(ws) - 2
        total += (a * b + b) if (last and not quadratic_output) else 3 * (a * b + b)
    return total


def relinear_param_groups(
    model: nn.Module,
    lr: float,
    *,
    gamma_g: float = 1e-4,
    gamma_b: float = 1e-4,
    beta_g: float = 0.0,
    beta_b: float = 0.0,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups implementing ReLinear's regularization of quadratic terms.

    Every :class:`QuadraticLinear` in ``model`` contributes ``weight_g, bias_g`` to a group with
    learning rate ``gamma_g * lr`` and weight decay ``beta_g``, and ``weight_b, bias_c`` to a
    group with ``gamma_b * lr`` and ``beta_b``; all other parameters (the linear branch
    ``weight_r, bias_r`` and any conventional layers) use ``lr`` and ``weight_decay``.
    ``gamma = 1, beta = 0`` recovers plain training; ``gamma = 0`` freezes the quadratic terms
    (with the ReLinear initialization, a conventional network). The defaults ``gamma_g = gamma_b
    = 1e-4`` are the authors' (FengleiFan/ReLinear, TrainQuadraticNetworksViaReLinear/
    qtrainer_10_5.py: ``--lr 0.1``, ``--lr_gb 1e-5`` for both the g and the b group); their
    ReLinear+ReZero script uses ``1e-2``. As with ``torch.optim`` groups, a group's weight decay
    is applied at that group's (shrunk) learning rate, as in the authors' code.

    Returns:
        a list of dicts for ``torch.optim.SGD/Adam(groups, lr=lr)``; empty groups are dropped.
    """
    check_type("model", model, nn.Module)
    check_number("lr", lr, gt=0)
    for name, value in (
        ("gamma_g", gamma_g),
        ("gamma_b", gamma_b),
        ("beta_g", beta_g),
        ("beta_b", beta_b),
        ("weight_decay", weight_decay),
    ):
        check_number(name, value, ge=0)
    g_params: list[nn.Parameter] = []
    b_params: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, QuadraticLinear):
            g_params += module.g_parameters()
            b_params += module.b_parameters()
    special = {id(p) for p in g_params + b_params}
    rest = [p for p in model.parameters() if id(p) not in special]
    groups = [
        {"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "linear"},
        {"params": g_params, "lr": gamma_g * lr, "weight_decay": beta_g, "name": "quadratic_g"},
        {"params": b_params, "lr": gamma_b * lr, "weight_decay": beta_b, "name": "quadratic_b"},
    ]
    return [g for g in groups if g["params"]]
