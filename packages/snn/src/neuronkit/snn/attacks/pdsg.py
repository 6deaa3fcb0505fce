"""Potential-dependent surrogate gradient (PDSG) for attacking SNNs whose surrogate is unknown.

Lun et al., "Towards Effective and Sparse Adversarial Attack on Spiking Neural Networks via
Breaking Invisible Surrogate Gradients" (CVPR 2025).

An inference-only SNN never reveals the surrogate it was trained with, and a gradient attack
run with a mismatched surrogate can see vanishing or misleading gradients. PDSG ties the
surrogate to the model itself: at every step it replaces the Dirac delta of the spike by a
Gaussian in ``x = v - threshold`` whose width is the running per-channel standard deviation of
the membrane potential ``v``::

    g'(x) = exp(-(x - shift * sigma)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma),   sigma = alpha * std_c

``std_c`` is the (unbiased) standard deviation of the pre-spike membrane of channel ``c``
pooled over the batch, the spatial positions and the time steps ``1..t`` seen so far in the
current sequence (time-accumulated, as in the authors' code following TAB normalisation); a
channel with zero or undefined spread (a single value) uses ``sigma = alpha``. ``shift = 0.5``
centres the Gaussian half a sigma above threshold, as the reference implementation does
(``shift = 0`` gives a Gaussian centred on the threshold). The forward pass is the usual
Heaviside, so a model's predictions never change.

Use it on any model built from this package's neurons with
:func:`neuronkit.snn.swap_surrogate`::

    with swap_surrogate(model, PDSG()):
        x_adv = pgd(model, x, y, eps=0.1, T=4)

Each neuron module gets its own copy (:meth:`PDSG.for_module`); multi-step runs restart the
statistics at every call (:meth:`PDSG.begin`), and the fused LIF path falls back to the
step-by-step recurrence when a gradient is needed so each step sees its statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from neuronkit.common import (
    check_floating,
    check_number,
    check_type,
    eager_twin,
    function_for_mode,
    under_torch_func,
)

from ..surrogate import Surrogate, _floating, _heaviside

__all__ = ["PDSG", "RunningChannelStd"]


class RunningChannelStd:
    """Running per-channel mean and variance (Chan et al.'s parallel update, numerically stable).

    ``update(v)`` pools ``v: [B, C, ...]`` (channel axis ``channel_dim``) over every other axis
    and over all previous updates since :meth:`clear`. ``std()`` is the unbiased standard
    deviation ``[C]``, NaN for channels with fewer than two values.
    """

    def __init__(self, channel_dim: int = 1) -> None:
        check_number("channel_dim", channel_dim, ge=0, integer=True)
        self.channel_dim = channel_dim
        self.clear()

    def clear(self) -> None:
        """Forget everything seen so far."""
        self.count = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None
        self.dtype: torch.dtype | None = None  # the dtype of the values seen: std()'s dtype

    def update(self, v: Tensor) -> None:
        """Add the values of ``v: [B, C, ...]`` (detached) to the statistics."""
        check_type("v", v, Tensor)
        check_floating("v", v)  # the mean below fails in torch for integer or bool tensors
        if v.ndim <= self.channel_dim:
            raise ValueError(
                f"v must have a channel axis {self.channel_dim} ([B, C, ...]), got shape "
                f"{tuple(v.shape)}"
            )
        dtype = v.dtype
        # the statistics in float32 or wider: in half precision the sum of squares overflows
        # (float16, past 65504) and the running m2 stops growing once an update is below its
        # rounding (bfloat16: a std of 3 read as 2 after 1000 updates)
        wide = torch.promote_types(dtype, torch.float32)
        v = v.detach().movedim(self.channel_dim, 0).flatten(1).to(wide)  # [C, n]
        n_b = v.shape[1]
        if n_b == 0:
            return
        mean_b = v.mean(1)
        m2_b = (v - mean_b[:, None]).square().sum(1)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2, self.dtype = n_b, mean_b, m2_b, dtype
            return
        if self.mean.shape != mean_b.shape:
            raise ValueError(
                f"v must keep {self.mean.shape[0]} channels within a sequence, got "
                f"{mean_b.shape[0]} (give every layer its own surrogate: for_module(), or "
                "call begin() between sequences)"
            )
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta.square() * (self.count * n_b / n)
        self.count = n
        self.dtype = torch.promote_types(self.dtype or dtype, dtype)

    def std(self) -> Tensor | None:
        """Unbiased per-channel standard deviation ``[C]`` in the dtype of the values seen (of
        their promotion, across updates of several dtypes; None before any update)."""
        if self.m2 is None:
            return None
        dtype = self.dtype or self.m2.dtype
        if self.count < 2:
            return torch.full_like(self.m2, math.nan, dtype=dtype)
        return (self.m2 / (self.count - 1)).clamp_min(0).sqrt().to(dtype)


class _PDSGSpike(torch.autograd.Function):
    """Heaviside forward; backward ``grad * N(x; shift * sigma, sigma^2)`` with the sigma of
    the forward step (saved, since the running statistics move on), and the same Gaussian in
    forward mode (``jvp``)."""

    @staticmethod
    def forward(x: Tensor, sigma: Tensor, shift: float) -> Tensor:
        return _heaviside(x)  # neurons skip the NaN pass (inputs checked upstream)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, sigma, shift = inputs
        ctx.shift = shift
        ctx.save_for_backward(x, sigma)
        ctx.save_for_forward(x, sigma)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        x, sigma = ctx.saved_tensors
        return grad * _gaussian(x, sigma, ctx.shift), None, None

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor, _sigma: Any, _shift: Any) -> Tensor:
        x, sigma = ctx.saved_tensors
        return tangent * _gaussian(x, sigma, ctx.shift)


_EagerPDSGSpike = eager_twin(_PDSGSpike)  # plain eager autograd: no signature binding


def _under_vmap() -> bool:
    """Whether a ``torch.func.vmap`` is among the running transforms."""
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

    vmap = torch._C._functorch.TransformType.Vmap
    return any(i.key() == vmap for i in retrieve_all_functorch_interpreters())


def _gaussian(x: Tensor, sigma: Tensor, shift: float) -> Tensor:
    z = (x - shift * sigma) / sigma
    return torch.exp(-0.5 * z.square()) / (math.sqrt(2 * math.pi) * sigma)


@dataclass(frozen=True)
class PDSG(Surrogate):
    """Potential-dependent surrogate gradient (Lun et al. 2025): a Gaussian in ``v - threshold``
    of width ``alpha`` times the running per-channel std of the membrane (module docstring).

    Args:
        alpha: width multiplier (``sigma = alpha * std``; 1 in the paper).
        shift: centre of the Gaussian in units of sigma above threshold (0.5 in the authors'
            code; 0 centres it on the threshold).
        channel_dim: channel axis of one step's membrane ``[B, C, ...]`` (1: features of a
            linear layer, channels of a convolution).

    Stateful: it holds running statistics (not part of equality or hashing). Neurons call
    :meth:`fire` with the membrane; ``pdsg(x)`` alone uses the statistics of ``x`` itself,
    which equal the membrane's when the threshold is constant per channel. Every call adds
    to them, so ``torch.utils.checkpoint`` around single steps (its recomputation fires
    again) counts those steps twice; multi-step runs restart the statistics per sequence
    (:meth:`begin`). Under ``torch.func.vmap`` it raises (the statistics pool the batch).
    """

    alpha: float = 1.0
    shift: float = 0.5
    channel_dim: int = 1
    name: ClassVar[str] = "pdsg"
    needs_potential: ClassVar[bool] = True
    stats: RunningChannelStd = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("shift", self.shift)
        check_number("channel_dim", self.channel_dim, ge=0, integer=True)
        object.__setattr__(self, "stats", RunningChannelStd(self.channel_dim))

    def __call__(self, x: Tensor) -> Tensor:
        """Spikes ``H(x)``; the statistics are taken from ``x`` itself (see the class doc)."""
        x = _floating(x)
        if x.ndim <= self.channel_dim:
            raise ValueError(
                f"x must have a channel axis {self.channel_dim} ([B, C, ...]), got shape "
                f"{tuple(x.shape)}"
            )
        seen = self.stats.mean
        if seen is not None and x.shape[self.channel_dim] != seen.shape[0]:  # else named v
            raise ValueError(
                f"x must keep {seen.shape[0]} channels (axis {self.channel_dim}) within a "
                f"sequence, got shape {tuple(x.shape)} (give every layer its own surrogate: "
                "for_module(), or call begin() between sequences)"
            )
        return self.fire(x, x)

    def fire(self, x: Tensor, v: Tensor) -> Tensor:
        """Add ``v: [B, C, ...]`` (this step's membrane) to the statistics, then spike ``H(x)``
        with the Gaussian gradient of the current sigma (``x = v - threshold``, same shape)."""
        check_type("x", x, Tensor)
        check_type("v", v, Tensor)
        if under_torch_func() and _under_vmap():
            raise RuntimeError(
                "PDSG cannot run under torch.func.vmap: its sigma pools the membrane "
                "statistics over the whole batch (and keeps them between calls), which a "
                "per-example map cannot see; swap in a stateless surrogate (e.g. ATan) for "
                "per-example gradients"
            )
        self.stats.update(v)
        fn = function_for_mode(_PDSGSpike, _EagerPDSGSpike)
        out: Tensor = fn.apply(x, self.sigma(v), self.shift)
        return out

    def sigma(self, like: Tensor) -> Tensor:
        """The current per-channel sigma shaped to broadcast against ``like: [B, C, ...]``
        (``alpha`` where the std is zero, undefined, or nothing was seen yet)."""
        std = self.stats.std()
        shape = [1] * like.ndim
        if (
            std is None
            or like.ndim <= self.channel_dim
            or std.numel() != like.shape[self.channel_dim]
        ):
            return torch.full(shape, self.alpha, dtype=like.dtype, device=like.device)
        std = torch.where(torch.isfinite(std) & (std > 0), std, torch.ones_like(std))
        shape[self.channel_dim] = std.numel()
        return (self.alpha * std).to(like.dtype).reshape(shape)

    def derivative(self, x: Tensor) -> Tensor:
        """The Gaussian ``g'(x)`` with the current sigma (``x: [B, C, ...]``)."""
        x = _floating(x)  # as every surrogate's derivative
        return _gaussian(x, self.sigma(x), self.shift)

    def begin(self) -> None:
        """Restart the running statistics (a new sequence)."""
        self.stats.clear()

    def for_module(self) -> PDSG:
        """A fresh copy with the same settings and its own, empty statistics."""
        return PDSG(alpha=self.alpha, shift=self.shift, channel_dim=self.channel_dim)
