"""An event-driven Linear layer for spike inputs: each output sums the weights of the inputs
that spiked, instead of multiplying by every 0.

The saving of event-driven hardware (and of Loihi's and SpiNNaker's synaptic updates), on the
CPU: for binary ``x``, ``x @ W^T`` is, per row, the sum of the columns of ``W`` at the row's
spikes, so a layer whose inputs fire at rate ``r`` does about ``r`` of a dense product's
additions and no multiplications. :class:`SpikeLinear` is an ``nn.Linear`` (same constructor,
parameters, state-dict keys; tools that look for ``nn.Linear`` find it) whose forward takes this
path when the input is binary on the CPU (float32/float64) and the compiled loops are available
(:func:`neuronkit.snn.native_status`); otherwise (also under CPU autocast), and for any input
with a value other than 0 or 1, it is ``nn.Linear``'s product. The result is the same sum in
another order: the weights are added in input order, in the input's dtype, where a dense
product rounds in the order of its BLAS (differences of a few ulp; the same bits from run to run
and for any thread count). The forward keeps the input's spikes (int32 indices, one per spike)
instead of the input; the weight gradient sums, per input, the output gradient's rows at its
spikes; the input gradient ``grad @ W`` is the dense product (the surrogate gradient is not
sparse).

>>> import torch
>>> layer = SpikeLinear(256, 128)
>>> spikes = (torch.rand(16, 32, 256) < 0.2).float()  # [T, B, in]
>>> layer(spikes).shape
torch.Size([16, 32, 128])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuronkit.common import check_number, check_type, under_torch_func

from . import _native
from ._native import Spikes

__all__ = ["SpikeLinear"]


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Spikes | None]:
    """``x [N, in] @ weight.T + bias`` and ``x``'s spikes by row where it was event-driven
    (None where it was the dense product)."""
    result = _native.spike_linear(x, weight, bias)
    return (F.linear(x, weight, bias), None) if result is None else result


class _EventLinear(torch.autograd.Function):
    """:func:`_forward` and its gradients: ``grad @ W`` (dense), ``grad^T @ x`` (after an
    event-driven forward: from ``x``'s spikes, kept instead of ``x``) and ``grad``'s column
    sums. Once differentiable."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        out, spikes = _forward(x, weight, bias)
        needs_x, needs_w = ctx.needs_input_grad[:2]  # keep only what the gradients read
        start, cols = spikes if spikes is not None and needs_w else (None, None)
        dense_x = x if spikes is None and needs_w else None
        ctx.save_for_backward(weight if needs_x else None, dense_x, start, cols)
        ctx.has_bias, ctx.n_in = bias is not None, x.shape[1]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, x, start, cols = ctx.saved_tensors
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        grad_x = grad @ weight if needs_x else None
        grad_w = None
        if needs_w and x is not None:  # after the dense product
            grad_w = grad.t() @ x
        elif needs_w:
            grad_w = _native.spike_weight_grad((start, cols), ctx.n_in, grad)
        grad_b = grad.sum(0) if ctx.has_bias and needs_b else None
        return grad_x, grad_w, grad_b


class SpikeLinear(nn.Linear):
    """``nn.Linear`` with an event-driven forward for spike inputs (module docstring).

    Input ``[..., in_features]``, output ``[..., out_features]``, as ``nn.Linear``; e.g. a
    time-major spike train ``[T, B, in]``. Where the inputs are not binary (analog currents, a
    first layer fed with pixel values) every call scans its input before the dense product:
    use ``nn.Linear`` there. The backward is once differentiable (no double backward)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
        dtype: Any = None,
    ) -> None:  # fmt: skip
        check_number("in_features", in_features, ge=0, integer=True)
        check_number("out_features", out_features, ge=0, integer=True)
        check_type("bias", bias, bool)
        super().__init__(in_features, out_features, bias, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, (Tensor, torch.fx.Proxy)):  # a Proxy meets fx's own error below
            raise TypeError(f"x must be Tensor, got {type(x).__name__}")
        if (
            x.device.type != "cpu"
            or x.dim() == 0
            or x.shape[-1] != self.in_features
            or torch.compiler.is_compiling()
            or under_torch_func()
            or torch.is_autocast_enabled("cpu")  # autocast's dtype for the product
        ):
            return F.linear(x, self.weight, self.bias)  # nn.Linear's errors, devices, transforms
        rows = x.reshape(x.shape[:-1].numel(), self.in_features)  # not -1: in_features may be 0
        params = (self.weight, self.bias)
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, *params)):
            out = _EventLinear.apply(rows, *params)
        else:
            out = _forward(rows, *params)[0]
        return out.reshape(*x.shape[:-1], self.out_features)
