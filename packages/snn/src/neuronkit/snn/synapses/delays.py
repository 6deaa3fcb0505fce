"""Learnable synaptic delays with dilated convolutions with learnable spacings (DCLS).

Hammouamri, Khalfaoui-Hassani & Masquelier, "Learning Delays in Spiking Neural Networks using
Dilated Convolutions with Learnable Spacings" (ICLR 2024; reference code Thvnvtos/SNN-delays on
top of the DCLS library).

A fully connected layer whose every synapse ``(o, i)`` has a weight ``w[o, i]`` and a delay
``d[o, i]`` (in steps) is a 1D convolution over time with a kernel ``[C_out, C_in, max_delay]``
holding one non-zero tap per synapse, at the position of its delay:

    ``y[t, b, o] = sum_i w[o, i] * x[t - d[o, i], b, i]``  (zeros before ``t = 0``: causal).

During training a delay is a real number and its tap is spread over the integer taps by a
normalized Gaussian (DCLS "gauss" version), which makes the position differentiable:

    ``g[o, i, k] = exp(-(k - d[o, i])^2 / (2 s^2)) / (sum_k' exp(...) + 1e-7)``,
    ``s = |sigma| + sigma_floor``

(``k`` = delay of tap ``k``, ``sigma_floor = 0.27`` as in DCLS). ``sigma`` starts at
``max_delay / 2`` and decays exponentially to ``0.23`` over the first quarter of training
(:class:`SigmaSchedule`, called once per epoch), so the taps go from a broad blur to nearly one
step. For inference the delays are rounded (:meth:`DelayedLinear.round_delays`) and each
synapse becomes a single integer tap. The dense kernel is built once per forward and the whole
sequence goes through one ``conv1d`` (as DCLS does), so the cost does not grow with the number
of taps kept.

Positions learn with a larger learning rate than the weights (the reference uses 100x with
Adam): :func:`delay_parameters` and :func:`weight_parameters` split any model's parameters
into the two groups (:func:`delay_param_groups` builds the optimizer groups directly).

Variants at the same layer API (``delays=``): ``"learned"`` (positions are parameters),
``"fixed"`` (random integer delays drawn once, a buffer: the paper's "fixed random delays"
control) and ``"none"`` (every delay 0: a plain linear layer applied per step).

>>> layer = DelayedLinear(4, 3, max_delay=5, seed=0)
>>> layer(torch.rand(10, 2, 4)).shape
torch.Size([10, 2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuronkit.common import check_choice, check_finite, check_number, check_type, torch_generator

from ..encoding import _generator

__all__ = [
    "DELAY_MODES",
    "DelayedLinear",
    "SigmaSchedule",
    "clamp_delays",
    "count_parameters",
    "delay_kernel",
    "delay_param_groups",
    "delay_parameters",
    "delayed_layers",
    "delayed_linear",
    "gaussian_delay_taps",
    "hard_delay_kernel",
    "round_delays",
    "weight_parameters",
]

DELAY_MODES = ("learned", "fixed", "none")
SIGMA_FLOOR = 0.27  # DCLS "gauss": the Gaussian's std is |sigma| + 0.27
_EPS = 1e-7


def _check_delays(delays: Any) -> None:
    check_type("delays", delays, Tensor)
    if delays.dtype == torch.bool or delays.is_complex():
        raise TypeError(f"delays must be a real (float or int) tensor, got dtype {delays.dtype}")


def _check_weight_delays(weight: Any, delays: Any, max_delay: Any) -> None:
    check_number("max_delay", max_delay, ge=1, integer=True)
    check_type("weight", weight, Tensor)
    _check_delays(delays)
    if weight.ndim != 2 or not weight.is_floating_point():
        raise ValueError(
            f"weight must be a floating-point tensor [C_out, C_in], got shape "
            f"{tuple(weight.shape)} and dtype {weight.dtype}"
        )
    if delays.shape != weight.shape:
        raise ValueError(
            f"delays must have weight's shape {tuple(weight.shape)} (one delay per synapse), "
            f"got {tuple(delays.shape)}"
        )


def gaussian_delay_taps(
    delays: Tensor, max_delay: int, sigma: float | Tensor, *, sigma_floor: float = SIGMA_FLOOR
) -> Tensor:
    """Normalized Gaussian interpolation of real ``delays [...]`` over the integer taps.

    Returns ``g [..., max_delay]`` where ``g[..., k]`` weighs delay ``k`` steps:
    ``exp(-(k - d)^2 / (2 s^2))`` normalized over ``k`` (``+1e-7`` in the denominator, as
    DCLS), ``s = |sigma| + sigma_floor``. Differentiable in ``delays`` (and ``sigma``).
    """
    _check_delays(delays)
    check_number("max_delay", max_delay, ge=1, integer=True)
    check_number("sigma_floor", sigma_floor, ge=0)
    if not isinstance(sigma, Tensor):
        check_number("sigma", sigma)
    s = (sigma.abs() if isinstance(sigma, Tensor) else abs(float(sigma))) + sigma_floor
    if not isinstance(s, Tensor) and s <= 0:
        raise ValueError(f"sigma + sigma_floor must be > 0, got {s!r}")
    # a tensor sigma can reach 0 only without a floor (one host read, then: s = 0 gives 0 / 0)
    if isinstance(s, Tensor) and sigma_floor == 0 and not bool((s > 0).all()):
        raise ValueError(f"sigma + sigma_floor must be > 0, got sigma {sigma!r:.80}")
    k = torch.arange(max_delay, device=delays.device, dtype=delays.dtype)
    g = torch.exp(-0.5 * ((k - delays.unsqueeze(-1)) / s) ** 2)
    return g / (g.sum(-1, keepdim=True) + _EPS)


def delay_kernel(
    weight: Tensor,
    delays: Tensor,
    *,
    max_delay: int,
    sigma: float | Tensor,
    sigma_floor: float = SIGMA_FLOOR,
) -> Tensor:
    """The dense DCLS kernel ``[C_out, C_in, max_delay]`` in ``conv1d`` orientation.

    ``kernel[o, i, max_delay - 1 - k] = weight[o, i] * g[o, i, k]`` with ``g`` the Gaussian
    taps of :func:`gaussian_delay_taps` (tap ``k`` = delay ``k``; the flip turns PyTorch's
    cross-correlation into a causal delay). ``weight, delays: [C_out, C_in]``.
    """
    _check_weight_delays(weight, delays, max_delay)
    g = gaussian_delay_taps(delays, max_delay, sigma, sigma_floor=sigma_floor)
    return (weight.unsqueeze(-1) * g).flip(-1)


def hard_delay_kernel(weight: Tensor, delays: Tensor, *, max_delay: int) -> Tensor:
    """One integer tap per synapse: ``kernel[o, i, max_delay - 1 - round(d)] = weight[o, i]``.

    ``weight, delays: [C_out, C_in]``, delays rounded (half to even, as ``torch.round``) and
    clamped to ``[0, max_delay - 1]``; returns ``[C_out, C_in, max_delay]``. The gradient
    flows to ``weight`` only.
    """
    _check_weight_delays(weight, delays, max_delay)
    check_finite("delays", delays)  # a NaN delay has no tap (.long() makes it INT64_MIN)
    idx = delays.detach().round().clamp(0, max_delay - 1).long()
    onehot = F.one_hot(max_delay - 1 - idx, max_delay).to(weight.dtype)
    return weight.unsqueeze(-1) * onehot


def delayed_linear(x: Tensor, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
    """Causal delayed synapses: ``x [T, B, C_in]`` -> ``[T, B, C_out]`` (one ``conv1d``).

    ``kernel: [C_out, C_in, D]`` in ``conv1d`` orientation (tap ``D - 1 - k`` carries delay
    ``k``, see :func:`delay_kernel`); the input is left-padded with ``D - 1`` zeros, so output
    step ``t`` sees only inputs at steps ``<= t``. ``bias: [C_out]`` or None.
    """
    check_type("x", x, Tensor)
    check_type("kernel", kernel, Tensor)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"x must have 3 dimensions [T >= 1, B, C_in], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor [T, B, C_in], got dtype {x.dtype}")
    if kernel.ndim != 3 or kernel.shape[1] != x.shape[2]:
        raise ValueError(
            f"kernel must have shape [C_out, C_in={x.shape[2]}, D], got {tuple(kernel.shape)}"
        )
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != kernel.shape[:1]):
        raise ValueError(
            f"bias must be None or a tensor of shape [{kernel.shape[0]}], got "
            f"{getattr(bias, 'shape', bias)!r}"
        )
    if not torch.is_autocast_enabled(x.device.type):  # autocast casts them itself
        for name, t in (("kernel", kernel), ("bias", bias)):
            if t is not None and t.dtype != x.dtype:
                raise TypeError(f"{name} must have x's dtype {x.dtype}, got {t.dtype}")
    D = kernel.shape[2]
    if D == 1:  # no delays: a per-step matmul
        return F.linear(x, kernel[..., 0], bias)
    u = F.pad(x.permute(1, 2, 0), (D - 1, 0))  # [B, C_in, T + D - 1]
    return F.conv1d(u, kernel, bias).permute(2, 0, 1)


class DelayedLinear(nn.Module):
    """Fully connected synapses with one delay each: ``[T, B, C_in] -> [T, B, C_out]``.

    Args:
        in_features, out_features: ``C_in``, ``C_out``.
        max_delay: number of taps ``D``; delays live in ``[0, D - 1]`` steps (the reference's
            ``max_delay`` is the same kernel size; it centres positions on ``D // 2`` and pads
            ``D - 1`` steps on the left, which is this layer's delay ``D // 2 - P``).
        delays: ``"learned"`` (DCLS, Gaussian taps whose positions are parameters),
            ``"fixed"`` (random integer delays, a buffer) or ``"none"`` (all delays 0).
        bias: add a learnable bias (the reference uses none).
        sigma: initial Gaussian spread (``max_delay / 2`` by default, the reference's
            ``max_delay // 2``); only used for ``"learned"``.
        sigma_floor: added to ``|sigma|`` (DCLS uses 0.27).
        init_delays: ``"uniform"`` over ``[0, D - 1]`` (the reference's uniform init) or
            ``"zero"``.
        seed / generator: source of the initial weights and delays (at most one; neither uses
            torch's global RNG). Weights: Kaiming-uniform for ReLU (the reference's init).

    Attributes:
        weight: ``[C_out, C_in]`` parameter.
        positions: ``[C_out, C_in]`` delays in steps (a parameter for ``"learned"``, else a
            buffer).
        sigma: 0-d buffer, set by :class:`SigmaSchedule`.
        hard: True after :meth:`round_delays` (or for ``"fixed"``/``"none"``): integer taps.
            Part of the state dict (its extra state), so a reloaded layer runs the same taps.
    """

    sigma: Tensor
    positions: Tensor
    # declared for tools that map channels by module (neuronkit-pruning keeps it whole and
    # its channels as they are): every output mixes every input, over several steps
    channel_local: ClassVar[bool] = False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        *,
        delays: str = "learned",
        bias: bool = False,
        sigma: float | None = None,
        sigma_floor: float = SIGMA_FLOOR,
        init_delays: str = "uniform",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_number("in_features", in_features, ge=1, integer=True)
        check_number("out_features", out_features, ge=1, integer=True)
        check_number("max_delay", max_delay, ge=1, integer=True)
        check_choice("delays", delays, DELAY_MODES)
        check_type("bias", bias, bool)
        if sigma is not None:
            check_number("sigma", sigma, ge=0)
        check_number("sigma_floor", sigma_floor, ge=0)
        check_choice("init_delays", init_delays, ("uniform", "zero"))
        gen = _generator(seed, generator, torch.device("cpu"))
        if gen is None:  # draw from torch's global RNG, like nn.Linear's init
            gen = torch_generator(None)
        self.in_features, self.out_features = in_features, out_features
        self.max_delay, self.mode, self.sigma_floor = max_delay, delays, sigma_floor

        bound = math.sqrt(6.0 / in_features)  # kaiming_uniform_(nonlinearity="relu")
        w = (torch.rand(out_features, in_features, generator=gen) * 2 - 1) * bound
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        shape = (out_features, in_features)
        if delays == "none" or init_delays == "zero":
            d = torch.zeros(shape)
        elif delays == "fixed":
            d = torch.randint(0, max_delay, shape, generator=gen).float()
        else:
            d = torch.rand(shape, generator=gen) * (max_delay - 1)
        if delays == "learned":
            self.positions = nn.Parameter(d)
        else:
            self.register_buffer("positions", d.round())
        s0 = max_delay / 2 if sigma is None else float(sigma)
        if delays == "learned" and s0 + sigma_floor <= 0:
            raise ValueError("sigma + sigma_floor must be > 0 for learned delays, got 0")
        self.register_buffer("sigma", torch.tensor(s0))
        self.sigma_start = s0
        self.hard = delays != "learned"

    # ---- parameter groups ----------------------------------------------------------------

    def delay_parameters(self) -> list[nn.Parameter]:
        """The learnable positions (empty unless ``delays="learned"``)."""
        return [self.positions] if isinstance(self.positions, nn.Parameter) else []

    def weight_parameters(self) -> list[nn.Parameter]:
        """Weight (and bias)."""
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    # ---- kernel and forward --------------------------------------------------------------

    def kernel(self) -> Tensor:
        """The dense kernel ``[C_out, C_in, max_delay]`` used by :meth:`forward`."""
        if self.mode == "none":
            return self.weight.unsqueeze(-1)
        if self.hard:
            return hard_delay_kernel(self.weight, self.positions, max_delay=self.max_delay)
        # no clamp here (its gradient is 0 at the bounds): clamp_delays() after each step
        return delay_kernel(
            self.weight,
            self.positions,
            max_delay=self.max_delay,
            sigma=self.sigma,
            sigma_floor=self.sigma_floor,
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x: [T, B, C_in]`` -> ``[T, B, C_out]``, causal (zeros before the first step)."""
        check_type("x", x, Tensor)
        if x.ndim != 3 or x.shape[2] != self.in_features or x.shape[0] == 0:
            raise ValueError(
                f"x must have shape [T >= 1, B, {self.in_features}] (time-major), got "
                f"{tuple(x.shape)}"
            )
        if not x.is_floating_point():  # the kernel is cast to x's dtype
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return delayed_linear(x, self.kernel().to(x.dtype), bias)

    # ---- delay bookkeeping ---------------------------------------------------------------

    @torch.no_grad()
    def clamp_delays(self) -> None:
        """Clamp the positions in place to ``[0, max_delay - 1]`` (call after each step)."""
        self.positions.clamp_(0, self.max_delay - 1)

    @torch.no_grad()
    def round_delays(self) -> None:
        """Round the positions to integers in place and switch to integer taps (inference).
        Integer taps pass no gradient to the positions, so learned positions stop requiring
        one (training the weights alone, e.g. under DDP, then finds no unused parameter)."""
        self.positions.clamp_(0, self.max_delay - 1).round_()
        self._set_hard(True)

    def soft_delays(self) -> None:
        """Go back to Gaussian taps (e.g. to fine-tune after :meth:`round_delays`); learned
        positions require a gradient again."""
        if self.mode != "learned":
            raise ValueError(f"soft delays need delays='learned', this layer has {self.mode!r}")
        self._set_hard(False)

    def _set_hard(self, hard: bool) -> None:
        self.hard = hard or self.mode != "learned"
        if isinstance(self.positions, nn.Parameter):
            self.positions.requires_grad_(not self.hard)

    def get_extra_state(self) -> dict[str, bool]:
        """The tap mode, saved in the state dict with the positions it applies to."""
        return {"hard": self.hard}

    def set_extra_state(self, state: Any) -> None:
        """Restore the tap mode (a ``"fixed"`` or ``"none"`` layer stays hard)."""
        if not (isinstance(state, dict) and isinstance(state.get("hard"), bool)):
            raise ValueError(f"state must be a dict {{'hard': bool}}, got {state!r:.80}")
        self._set_hard(state["hard"])

    def set_sigma(self, sigma: float) -> None:
        """Set the Gaussian spread (>= 0) of the taps."""
        check_number("sigma", sigma, ge=0)
        if sigma + self.sigma_floor <= 0:
            raise ValueError(f"sigma + sigma_floor must be > 0, got {sigma + self.sigma_floor}")
        self.sigma.fill_(float(sigma))

    def delays(self) -> Tensor:
        """The delays in steps ``[C_out, C_in]`` as the forward uses them (a detached copy)."""
        d = self.positions.detach().clamp(0, self.max_delay - 1)
        return d.round() if self.hard else d.clone()

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, "
            f"delays={self.mode!r}, bias={self.bias is not None}, hard={self.hard}"
        )


# ---- model-level helpers -----------------------------------------------------------------------


def delayed_layers(model: nn.Module) -> list[DelayedLinear]:
    """Every :class:`DelayedLinear` inside ``model`` (itself included), in module order."""
    check_type("model", model, nn.Module)
    return [m for m in model.modules() if isinstance(m, DelayedLinear)]


def delay_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The learnable delay positions of ``model`` (for the larger-learning-rate group)."""
    check_type("model", model, nn.Module)
    return _delay_parameters(model)


def _delay_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    for layer in delayed_layers(model):
        yield from layer.delay_parameters()


def weight_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter of ``model`` except the delay positions."""
    check_type("model", model, nn.Module)
    return _weight_parameters(model)


def _weight_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    skip = {id(p) for p in _delay_parameters(model)}
    for p in model.parameters():
        if id(p) not in skip:
            yield p


def delay_param_groups(
    model: nn.Module, *, lr: float, lr_delays: float | None = None, **weight_options: Any
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weights at ``lr``, delay positions at ``lr_delays``.

    ``lr_delays`` defaults to ``100 * lr`` (the reference: ``lr_pos = 100 * lr_w``). Extra
    keyword options (e.g. ``weight_decay``) apply to the weight group only. Groups without
    parameters are left out.

    >>> opt = torch.optim.Adam(delay_param_groups(model, lr=1e-3))  # doctest: +SKIP
    """
    check_number("lr", lr, gt=0)
    lr_delays = 100.0 * lr if lr_delays is None else lr_delays
    check_number("lr_delays", lr_delays, ge=0)
    groups = [
        {"params": list(weight_parameters(model)), "lr": lr, **weight_options},
        {"params": list(delay_parameters(model)), "lr": lr_delays, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def clamp_delays(model: nn.Module) -> None:
    """Clamp every learnable delay of ``model`` to its range (after each optimizer step)."""
    for layer in delayed_layers(model):
        layer.clamp_delays()


def round_delays(model: nn.Module) -> None:
    """Round every delay of ``model`` to integer taps (for inference)."""
    for layer in delayed_layers(model):
        layer.round_delays()


class SigmaSchedule:
    """Exponential decay of the Gaussian spread over the first part of training.

    After ``e`` completed epochs every learned layer's ``sigma`` is
    ``sigma_start * (sigma_end / sigma_start) ** (min(e, E) / E)`` with
    ``E = max(1, floor(fraction * epochs))`` (the reference: ``sigInit = max_delay // 2``
    multiplied by ``(0.23 / sigInit) ** (1 / E)`` per epoch for the first quarter, then kept).
    ``sigma_start`` is each layer's initial ``sigma``; a layer starting at or below
    ``sigma_end`` keeps its ``sigma`` (the spread never grows). Call :meth:`step` once per
    epoch.

    Args:
        model: a module holding :class:`DelayedLinear` layers (or one such layer).
        epochs: total training epochs.
        sigma_end: final spread (0.23).
        fraction: fraction of ``epochs`` over which sigma decays (0.25).
    """

    def __init__(
        self, model: nn.Module, epochs: int, *, sigma_end: float = 0.23, fraction: float = 0.25
    ) -> None:
        check_number("epochs", epochs, ge=1, integer=True)
        check_number("sigma_end", sigma_end, ge=0)
        check_number("fraction", fraction, gt=0, le=1)
        self.layers = [m for m in delayed_layers(model) if m.mode == "learned"]
        self.epochs, self.sigma_end, self.fraction = epochs, sigma_end, fraction
        self.final_epoch = max(1, int(fraction * epochs))
        self.epoch = 0
        self._apply()

    def sigma_at(self, epoch: int, sigma_start: float) -> float:
        """The spread after ``epoch`` completed epochs for a layer starting at ``sigma_start``."""
        check_number("epoch", epoch, ge=0, integer=True)
        check_number("sigma_start", sigma_start, ge=0)
        if sigma_start <= self.sigma_end or sigma_start == 0:
            return float(sigma_start)
        frac = min(epoch, self.final_epoch) / self.final_epoch
        return float(sigma_start * (self.sigma_end / sigma_start) ** frac)

    def _apply(self) -> None:
        for layer in self.layers:
            layer.set_sigma(self.sigma_at(self.epoch, layer.sigma_start))

    def step(self) -> None:
        """Advance one epoch and update every layer's sigma."""
        self.epoch += 1
        self._apply()

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        check_number("epoch", state.get("epoch"), ge=0, integer=True)
        self.epoch = int(state["epoch"])
        self._apply()


def count_parameters(model_or_params: nn.Module | Iterable[nn.Parameter]) -> int:
    """Number of trainable scalars of a module (or in an iterable of parameters).

    Buffers (fixed delays, ``sigma``) do not count; learned delay positions do.
    """
    if isinstance(model_or_params, nn.Module):
        params: Iterable[nn.Parameter] = model_or_params.parameters()
    else:
        if isinstance(model_or_params, (str, bytes)) or not isinstance(model_or_params, Iterable):
            raise TypeError(
                "model_or_params must be an nn.Module or an iterable of parameters, got "
                f"{type(model_or_params).__name__} ({model_or_params!r:.80})"
            )
        params = list(model_or_params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    "model_or_params must be an nn.Module or an iterable of parameters, got an "
                    f"element of type {type(p).__name__} ({p!r:.80})"
                )
    return sum(p.numel() for p in params if p.requires_grad)
