"""Simulated neuron populations with known functional cell types (differentiable models).

Ground truth for clustering by Most Discriminative Stimuli (Burg et al., "Most discriminative
stimuli for functional cell type clustering", ICLR 2024): each population is a
linear-nonlinear (LN) model ``f(stimulus) -> [neurons]``, a stand-in for the deep predictive
models of retina / V1 / V4 the paper clusters, with per-neuron heterogeneity (receptive-field
position, size, orientation and phase jitter, filter noise, gains and thresholds) inside each
type.

* :func:`on_off_population`: 1D stimuli, ON cells (Gaussian receptive field of positive sign)
  and OFF cells (negative sign), as in the paper's toy example of retinal ON/OFF types.
* :func:`orientation_population`: 2D stimuli, ``n_types`` orientation-tuned types (Gabor
  receptive fields whose preferred orientation is set by the type), energy-model complex cells
  by default (phase invariant) or rectified simple cells.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import check_choice, check_number, check_seed, check_type

__all__ = ["LNPopulation", "on_off_population", "orientation_population"]


class LNPopulation(nn.Module):
    """A population of linear-nonlinear neurons with known types.

    ``r_i(x) = softplus(gain_i * drive_i(x) + bias_i)`` where ``drive_i(x) = <w_i, x>`` (simple
    cells) or ``sqrt(<w_i, x>^2 + <q_i, x>^2)`` when a quadrature filter ``q_i`` is given
    (energy-model complex cells).

    Args:
        filters: ``[N, *stimulus_shape]`` receptive fields.
        gain: ``[N]`` positive gains.
        bias: ``[N]`` offsets (negative values act as thresholds).
        labels: ``[N]`` true type of each neuron (integers ``0..n_types-1``).
        quadrature: optional ``[N, *stimulus_shape]`` quadrature filters (complex cells).

    The filters, gains and biases are stored in the default dtype
    (``torch.get_default_dtype()`` when the population is built).

    Forward: ``x [B, *stimulus_shape] -> [B, N]`` (differentiable in ``x``), computed and
    returned in ``x``'s floating dtype (the buffers are cast to it; a non-floating ``x`` is
    cast to the buffers' dtype).
    """

    filters: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor
    labels: torch.Tensor
    quadrature: torch.Tensor | None

    def __init__(
        self,
        filters: torch.Tensor,
        gain: torch.Tensor,
        bias: torch.Tensor,
        labels: torch.Tensor,
        quadrature: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, t in (("filters", filters), ("gain", gain), ("bias", bias), ("labels", labels)):
            check_type(name, t, torch.Tensor)
        if filters.ndim < 2:
            raise ValueError(
                f"filters must be [N, *stimulus_shape], got shape {tuple(filters.shape)}"
            )
        n = filters.shape[0]
        for name, t in (("gain", gain), ("bias", bias), ("labels", labels)):
            if t.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
        if not torch.isfinite(filters).all() or not torch.isfinite(gain).all():
            raise ValueError("filters and gain must be finite, got NaN or infinity")
        if (gain <= 0).any():
            raise ValueError("gain must be > 0 for every neuron")
        if quadrature is not None:
            check_type("quadrature", quadrature, torch.Tensor)
            if quadrature.shape != filters.shape:
                raise ValueError(
                    f"quadrature must have the shape of filters {tuple(filters.shape)}, "
                    f"got {tuple(quadrature.shape)}"
                )
        dtype = torch.get_default_dtype()
        self.register_buffer("filters", filters.detach().clone().to(dtype))
        self.register_buffer("gain", gain.detach().clone().to(dtype))
        self.register_buffer("bias", bias.detach().clone().to(dtype))
        self.register_buffer("labels", labels.detach().clone().long())
        self.register_buffer(
            "quadrature", None if quadrature is None else quadrature.detach().clone().to(dtype)
        )

    @property
    def stimulus_shape(self) -> tuple[int, ...]:
        """Shape of one stimulus."""
        return tuple(self.filters.shape[1:])

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``N``."""
        return int(self.filters.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Responses ``[B, N]`` to stimuli ``x [B, *stimulus_shape]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != self.stimulus_shape:
            raise ValueError(
                f"x must be [B, {', '.join(map(str, self.stimulus_shape))}], "
                f"got shape {tuple(x.shape)}"
            )
        dtype = x.dtype if x.is_floating_point() else self.filters.dtype
        flat = x.reshape(x.shape[0], -1).to(dtype)
        drive = flat @ self.filters.reshape(self.n_neurons, -1).to(dtype).T
        if self.quadrature is not None:
            q = flat @ self.quadrature.reshape(self.n_neurons, -1).to(dtype).T
            drive = torch.sqrt(drive**2 + q**2 + 1e-8)
        return F.softplus(self.gain.to(dtype) * drive + self.bias.to(dtype))


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    check_seed(seed)
    return torch.Generator().manual_seed(int(seed))


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def on_off_population(
    n_per_type: int = 50,
    size: int = 20,
    *,
    rf_width: float = 3.0,
    center_jitter: float = 0.5,
    width_jitter: float = 0.1,
    filter_noise: float = 0.05,
    gain_range: tuple[float, float] = (1.0, 3.0),
    bias_range: tuple[float, float] = (-1.0, 0.0),
    seed: int | torch.Generator = 0,
) -> LNPopulation:
    """A toy retina of ON and OFF cells responding to 1D stimuli.

    Each cell has a unit-norm Gaussian receptive field (centre ``size / 2 + U(-j, j)``, width
    ``rf_width * (1 + U(-width_jitter, width_jitter))``), with sign +1 for ON (label 0) and -1
    for OFF (label 1), plus i.i.d. Gaussian filter noise of relative size ``filter_noise``;
    gains and biases are drawn uniformly from ``gain_range`` / ``bias_range``.

    Args:
        n_per_type: cells per type (total ``N = 2 * n_per_type``, ON first).
        size: stimulus length ``D`` (stimuli are ``[B, D]``).
        rf_width, center_jitter, width_jitter, filter_noise, gain_range, bias_range: see above.
        seed: seed or ``torch.Generator``.

    Returns:
        :class:`LNPopulation` with ``labels`` (0 = ON, 1 = OFF) and stimulus shape ``(size,)``.
    """
    check_number("n_per_type", n_per_type, ge=1, integer=True)
    check_number("size", size, ge=2, integer=True)
    check_number("rf_width", rf_width, gt=0)
    check_number("center_jitter", center_jitter, ge=0)
    check_number("width_jitter", width_jitter, ge=0, lt=1)
    check_number("filter_noise", filter_noise, ge=0)
    _check_range("gain_range", gain_range, positive=True)
    _check_range("bias_range", bias_range)
    gen = _generator(seed)
    n = 2 * n_per_type
    dtype = torch.get_default_dtype()
    pos = torch.arange(size, dtype=dtype)
    centers = size / 2 - 0.5 + _uniform(n, -center_jitter, center_jitter, gen)
    widths = rf_width * (1 + _uniform(n, -width_jitter, width_jitter, gen))
    rf = torch.exp(-0.5 * ((pos[None, :] - centers[:, None]) / widths[:, None]) ** 2)
    rf = rf / rf.norm(dim=1, keepdim=True)
    rf = rf + filter_noise * torch.randn(n, size, generator=gen) / math.sqrt(size)
    rf = rf / rf.norm(dim=1, keepdim=True)
    labels = torch.cat([torch.zeros(n_per_type), torch.ones(n_per_type)]).long()
    sign = 1.0 - 2.0 * labels.to(dtype)
    gain = _uniform(n, *gain_range, gen)
    bias = _uniform(n, *bias_range, gen)
    return LNPopulation(sign[:, None] * rf, gain, bias, labels)


def orientation_population(
    n_per_type: int = 50,
    size: int = 16,
    n_types: int = 4,
    *,
    spatial_frequency: float = 0.15,
    envelope_sigma: float = 3.0,
    orientation_jitter: float = math.radians(5.0),
    position_jitter: float = 1.5,
    phase_jitter: float = math.pi,
    cell_model: str = "complex",
    gain_range: tuple[float, float] = (1.0, 3.0),
    bias_range: tuple[float, float] = (-1.0, 0.0),
    seed: int | torch.Generator = 0,
) -> LNPopulation:
    """A V1-like population of ``n_types`` orientation-tuned types responding to 2D images.

    Type ``k`` prefers orientation ``k * pi / n_types``. Each cell's receptive field is a
    unit-norm Gabor (carrier ``spatial_frequency`` cycles/pixel, Gaussian envelope
    ``envelope_sigma`` pixels) with orientation ``theta_k + U(-orientation_jitter,
    orientation_jitter)``, centre ``image centre + U(-position_jitter, position_jitter)`` in
    each axis and phase ``U(-phase_jitter, phase_jitter)``. ``cell_model="complex"``: energy
    model over the Gabor and its quadrature pair (phase invariant); ``"simple"``: the linear
    Gabor alone (only sensible with a small ``phase_jitter``).

    Args:
        n_per_type: cells per type (``N = n_types * n_per_type``, sorted by type).
        size: image side ``S`` (stimuli are ``[B, S, S]``).
        n_types: number of orientation types (>= 2).
        spatial_frequency, envelope_sigma, orientation_jitter, position_jitter, phase_jitter,
        cell_model, gain_range, bias_range: see above (angles in radians).
        seed: seed or ``torch.Generator``.

    Returns:
        :class:`LNPopulation` with ``labels`` in ``0..n_types-1``, stimulus shape
        ``(size, size)``.
    """
    check_number("n_per_type", n_per_type, ge=1, integer=True)
    check_number("size", size, ge=4, integer=True)
    check_number("n_types", n_types, ge=2, integer=True)
    check_number("spatial_frequency", spatial_frequency, gt=0, le=0.5)
    check_number("envelope_sigma", envelope_sigma, gt=0)
    check_number("orientation_jitter", orientation_jitter, ge=0)
    check_number("position_jitter", position_jitter, ge=0)
    check_number("phase_jitter", phase_jitter, ge=0)
    check_choice("cell_model", cell_model, ("complex", "simple"))
    _check_range("gain_range", gain_range, positive=True)
    _check_range("bias_range", bias_range)
    gen = _generator(seed)
    n = n_types * n_per_type
    labels = torch.arange(n_types).repeat_interleave(n_per_type)
    dtype = torch.get_default_dtype()
    theta = labels.to(dtype) * math.pi / n_types + _uniform(
        n, -orientation_jitter, orientation_jitter, gen
    )
    c = (size - 1) / 2
    cx = c + _uniform(n, -position_jitter, position_jitter, gen)
    cy = c + _uniform(n, -position_jitter, position_jitter, gen)
    phase = _uniform(n, -phase_jitter, phase_jitter, gen)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=dtype),
        torch.arange(size, dtype=dtype),
        indexing="ij",
    )
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    # carrier along the direction perpendicular to the preferred (bar) orientation
    u = dx * torch.cos(theta)[:, None, None] + dy * torch.sin(theta)[:, None, None]
    envelope = torch.exp(-(dx**2 + dy**2) / (2 * envelope_sigma**2))
    arg = 2 * math.pi * spatial_frequency * u + phase[:, None, None]
    even = envelope * torch.cos(arg)
    odd = envelope * torch.sin(arg)
    even = even / even.flatten(1).norm(dim=1)[:, None, None]
    odd = odd / odd.flatten(1).norm(dim=1)[:, None, None]
    gain = _uniform(n, *gain_range, gen)
    bias = _uniform(n, *bias_range, gen)
    quad = odd if cell_model == "complex" else None
    return LNPopulation(even, gain, bias, labels, quadrature=quad)


def _check_range(name: str, value: object, positive: bool = False) -> None:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a (low, high) pair, got {value!r:.80}")
    for v in value:
        check_number(name, v, gt=0) if positive else check_number(name, v)
    if value[0] > value[1]:
        raise ValueError(f"{name} must have low <= high, got {value!r:.80}")
