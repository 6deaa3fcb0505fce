"""KAN layers with selectable activation spaces, and S-KAN.

* :class:`KANLayer`: a Kolmogorov-Arnold layer (Liu et al., "KAN: Kolmogorov-Arnold Networks")
  whose edge ``(i -> o)`` activation is ``phi_oi(x_i) = w^base_oi silu(x_i) + sum_m c_oim
  B_m(x_i)`` with ``B_m`` the basis of one activation space (B-spline by default). It uses the
  efficient formulation: the features ``[silu(x_i), B_1(x_i), ...]`` are evaluated once,
  vectorised, and the whole layer is one matrix product with its single weight tensor (bias,
  then per input the coefficients and the base weight). B-splines on
  the uniform grid evaluate only the ``k + 1`` nonzero functions per input in closed form and
  backpropagate through them alone (:func:`~neuronkit.theory.kan.basis.bspline_linear`).
* :class:`SKANLayer` (Activation Space Selectable KAN, S-KAN): every input node ``i`` carries all
  candidate spaces ``s = 1..S`` with its own coefficients, mixed by selection weights
  ``alpha_i = softmax(theta_i)`` learned with the network (*full training*).
  :meth:`SKANLayer.select` keeps, per node, the ``top_k`` spaces with the largest weights
  (*selective training*, then *pruning* with ``top_k = 1``), and the network is fine-tuned with
  the one-hot choice; a pruned S-KAN has the parameter count of a single-space KAN with the same
  basis size. B-spline spaces use the closed-form fast path of
  :func:`~neuronkit.theory.kan.basis.bspline_linear` / ``uniform_bspline_basis``.
* :class:`KAN`, :class:`SKAN`: stacks of these layers; :func:`matched_mlp` builds an MLP with
  (about) a given parameter count for equal-parameter comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import check_choice, check_finite, check_interval, check_number, check_type

from .._utils import check_input_dtype, check_positive_int, torch_generator, traced
from .basis import (
    SPACES,
    _bspline_features,
    _bspline_layer,
    basis_values,
    extended_grid,
)

__all__ = ["KAN", "SKAN", "KANLayer", "SKANLayer", "matched_mlp", "mlp_parameter_count"]


def _check_x(x: torch.Tensor, in_features: int, dtype: torch.dtype) -> None:
    """The input checks of every KAN / S-KAN layer, whatever its spaces: a finite floating
    ``[batch, in_features]`` tensor in the layer's ``dtype`` (any float under autocast).
    Skipped while ``torch.fx`` or ``torch.jit.trace`` (ONNX's legacy exporter) traces: sizes
    read there would become constants of the trace."""
    if traced(x) or torch.jit.is_tracing():
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [batch, in], got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != in_features:
        raise ValueError(
            f"x must have shape [batch, {in_features}] (in_features), got {tuple(x.shape)}"
        )
    check_input_dtype("x", x, dtype, owner="layer")
    if not torch.compiler.is_compiling():  # a host read: a graph break under torch.compile
        check_finite("x", x)


class _BasisMixin(nn.Module):
    """Shared basis set-up: grid, order and per-space basis evaluation."""

    in_features: int
    grid: int
    k: int
    n_basis: int
    grid_range: tuple[float, float]
    knots: torch.Tensor

    def _setup_basis(self, in_features: int, grid: int, k: int, grid_range) -> None:
        self.grid = check_positive_int("grid", grid)
        self.k = check_positive_int("k", k, minimum=0)
        self.grid_range = check_interval("grid_range", grid_range)
        self.n_basis = self.grid + self.k
        self.register_buffer(
            "knots", extended_grid(in_features, self.grid, self.k, self.grid_range)
        )

    def _basis(self, space: str, x: torch.Tensor, base: bool = False) -> torch.Tensor:
        """Basis values ``[batch, in, G+k]`` (``[batch, in, 1+G+k]`` with ``silu(x)`` first if
        ``base``)."""
        if space == "bspline":
            lo, hi = self.grid_range  # x is checked by the layers (_check_x)
            b = _bspline_features(x, lo, (hi - lo) / self.grid, self.grid, self.k, False)
        else:
            b = self._basis_values(space, x)
        return torch.cat([F.silu(x).unsqueeze(-1), b], dim=-1) if base else b

    def _basis_values(self, space: str, x: torch.Tensor) -> torch.Tensor:
        return basis_values(
            space, x, self.n_basis, knots=self.knots, k=self.k, grid_range=self.grid_range
        )


class KANLayer(_BasisMixin):
    """One KAN layer with a single activation space (efficient, vectorised formulation).

    Args:
        in_features, out_features: sizes (``>= 1``).
        space: activation space, one of :data:`~neuronkit.theory.kan.basis.SPACES`
            (default ``"bspline"``).
        grid: grid intervals G (``>= 1``); k: spline order (``>= 0``, default 3). Every space uses
            ``G + k`` basis functions per edge, so spaces have equal parameter counts.
        grid_range: the input interval the basis covers (default ``(-1, 1)``).
        noise_scale: std of the initial basis coefficients (default 0.1).
        base: include the base branch ``w_base silu(x)`` (default True, as pykan).
        seed: int or ``torch.Generator``.

    Parameters: one tensor ``weight [out, 1 + in * (G+k+1)]`` (``G+k`` per input without
    base): the bias, then per input edge the basis coefficients and the base weight, i.e. the
    layer's matmul weight (an optimizer steps one tensor per layer). The views :attr:`coef`
    ``[out, in, G+k]``, :attr:`base_weight` ``[out, in]`` (None without base) and
    :attr:`bias` ``[out]`` read and write into ``weight``; state dicts with separate ``coef``,
    ``base_weight`` and ``bias`` (neuronkit-theory <= 0.5) still load.
    Input ``[batch, in]`` -> ``[batch, out]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        space: str = "bspline",
        grid: int = 5,
        k: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base: bool = True,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.space = check_choice("space", space, SPACES)
        check_number("noise_scale", noise_scale, ge=0)
        check_type("base", base, bool)
        self._setup_basis(self.in_features, grid, k, grid_range)
        gen = torch_generator(seed)
        shape = (self.out_features, self.in_features, self.n_basis)
        coef = torch.randn(shape, generator=gen) * noise_scale
        bound = 1.0 / math.sqrt(self.in_features)
        self.has_base = base
        if base:
            base_w = torch.rand(self.out_features, self.in_features, generator=gen)
            base_w = (2 * base_w - 1) * bound
            coef = torch.cat([coef, base_w.unsqueeze(-1)], dim=-1)
        bias = torch.zeros(self.out_features, 1)
        # one tensor: the layer's matmul weight (the bias, then per input the coefficients and
        # the base weight), so an optimizer steps one tensor per layer
        self.weight = nn.Parameter(torch.cat([bias, coef.reshape(self.out_features, -1)], dim=1))

    def _blocks(self) -> torch.Tensor:
        """``[out, in, G+k+base]`` view of :attr:`weight` without the bias."""
        return self.weight[:, 1:].view(self.out_features, self.in_features, -1)

    @property
    def coef(self) -> torch.Tensor:
        """Basis coefficients ``[out, in, G+k]`` (a view of :attr:`weight`)."""
        return self._blocks()[..., : self.n_basis]

    @property
    def base_weight(self) -> torch.Tensor | None:
        """Base-branch weights ``[out, in]`` (a view of :attr:`weight`), None without base."""
        return self._blocks()[..., self.n_basis] if self.has_base else None

    @property
    def bias(self) -> torch.Tensor:
        """Bias ``[out]`` (a view of :attr:`weight`)."""
        return self.weight[:, 0]

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # neuronkit-theory <= 0.5 stored coef, base_weight and bias as separate parameters
        coef = state_dict.get(prefix + "coef")
        if coef is not None and prefix + "weight" not in state_dict:
            del state_dict[prefix + "coef"]
            base_w = state_dict.pop(prefix + "base_weight", None)
            bias = state_dict.pop(prefix + "bias", None)
            if base_w is not None:
                coef = torch.cat([coef, base_w.unsqueeze(-1)], dim=-1)
            if bias is None:
                bias = coef.new_zeros(coef.shape[0])
            state_dict[prefix + "weight"] = torch.cat(
                [bias.unsqueeze(-1), coef.reshape(coef.shape[0], -1)], dim=1
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """Basis values ``[batch, in, G+k]`` of this layer's space."""
        _check_x(x, self.in_features, self.weight.dtype)
        return self._basis(self.space, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.in_features, self.weight.dtype)
        weight: torch.Tensor = self.weight
        if not self.has_base:  # zero weight for the (zero) silu feature column
            blocks = F.pad(self._blocks(), (0, 1)).reshape(self.out_features, -1)
            weight = torch.cat([weight[:, :1], blocks], dim=1)
        # bias, basis and base branch in one matmul: features 1, then [B_1(x_i), ...,
        # silu(x_i)] per input (B-splines: only the k+1 nonzero ones are evaluated, closed-form
        # backward)
        if self.space == "bspline":
            lo, hi = self.grid_range
            h = (hi - lo) / self.grid
            return _bspline_layer(x, weight, lo, h, self.grid, self.k, self.has_base)
        b = self._basis(self.space, x)
        silu = F.silu(x) if self.has_base else torch.zeros_like(x)
        feats = torch.cat([b, silu.unsqueeze(-1)], dim=-1).flatten(1)  # a view; [0, ...] too
        return torch.addmm(weight[:, 0], feats, weight[:, 1:].T)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"space={self.space}, grid={self.grid}, k={self.k}"
        )


class SKANLayer(_BasisMixin):
    """An S-KAN layer: every input node chooses its activation space among ``spaces``.

    Each input node ``i`` carries one set of coefficients per candidate space ``s`` and its
    edge activations are ``sum_s alpha_is phi^s_oi(x_i) + w^base_oi silu(x_i)``, with selection
    weights ``alpha_i = softmax(theta_i / temperature)`` over the node's *active* spaces and
    ``theta`` learned with the network. S-KAN's three training stages (Yang et al., "Activation
    Space Selectable Kolmogorov-Arnold Networks"):

    1. *full training*: all spaces active (the default state);
    2. *selective training*: :meth:`select` with ``top_k > 1`` keeps, per node, the ``top_k``
       spaces with the largest weights and training continues on them;
    3. *pruning*: :meth:`select` with ``top_k = 1`` keeps only the largest-weight space per node
       (one-hot, ``theta`` frozen); the pruned layer has a single-space KAN layer's parameter
       count and is fine-tuned.

    Selection folds the kept weights into the coefficients (``c_s <- c_s alpha_s / alpha'_s``
    with ``alpha'`` the renormalised weights), so the network function only loses the dropped
    spaces' contributions.

    Args:
        in_features, out_features, grid, k, grid_range, noise_scale, base, seed: as in
            :class:`KANLayer`.
        spaces: candidate activation spaces (distinct names from ``SPACES``; default all).
        temperature: softmax temperature of the selection weights (``> 0``).

    Parameters: ``coef [out, in, S, G+k]``, ``theta [in, S]``, ``base_weight [out, in]``,
    ``bias [out]``; buffer ``active [in, S]`` (bool). Input ``[batch, in]`` ->
    ``[batch, out]``.
    """

    active: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        spaces: Sequence[str] = SPACES,
        grid: int = 5,
        k: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base: bool = True,
        temperature: float = 1.0,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if isinstance(spaces, str) or not isinstance(spaces, Sequence) or not spaces:
            raise TypeError(
                f"spaces must be a non-empty sequence of space names, got {spaces!r:.80}"
            )
        for s in spaces:
            check_choice("spaces", s, SPACES)
        if len(set(spaces)) != len(spaces):
            raise ValueError(f"spaces must be distinct, got {list(spaces)}")
        self.spaces = tuple(spaces)
        check_number("noise_scale", noise_scale, ge=0)
        check_number("temperature", temperature, gt=0)
        check_type("base", base, bool)
        self.temperature = float(temperature)
        self._setup_basis(self.in_features, grid, k, grid_range)
        gen = torch_generator(seed)
        n_spaces = len(self.spaces)
        shape = (self.out_features, self.in_features, n_spaces, self.n_basis)
        self.coef = nn.Parameter(torch.randn(shape, generator=gen) * noise_scale)
        self.theta = nn.Parameter(torch.zeros(self.in_features, n_spaces))
        bound = 1.0 / math.sqrt(self.in_features)
        self.base_weight: nn.Parameter | None = None
        if base:
            self.base_weight = nn.Parameter(
                (2 * torch.rand(self.out_features, self.in_features, generator=gen) - 1) * bound
            )
        self.bias = nn.Parameter(torch.zeros(self.out_features))
        self.register_buffer("active", torch.ones(self.in_features, n_spaces, dtype=torch.bool))

    @property
    def is_selected(self) -> bool:
        """Whether every node keeps exactly one space (the pruned state)."""
        return bool((self.active.sum(dim=1) == 1).all())

    def selection_weights(self) -> torch.Tensor:
        """``alpha [in, S]``: softmax of ``theta / temperature`` over each node's active
        spaces (0 on inactive ones; one-hot once pruned)."""
        logits = (self.theta / self.temperature).masked_fill(~self.active, float("-inf"))
        return torch.softmax(logits, dim=1)

    @torch.no_grad()
    def select(self, top_k: int = 1) -> list[str]:
        """Keep, per input node, the ``top_k`` active spaces with the largest selection weights.

        ``top_k = 1`` prunes to one space per node (and freezes ``theta``); ``top_k > 1`` is
        S-KAN's selective-training stage. Returns each node's largest-weight space.
        """
        top_k = check_positive_int("top_k", top_k)
        if top_k > len(self.spaces):
            raise ValueError(
                f"top_k must be at most the number of spaces ({len(self.spaces)}), got {top_k}"
            )
        alpha = self.selection_weights()
        keep_idx = alpha.topk(min(top_k, len(self.spaces)), dim=1).indices
        keep = torch.zeros_like(self.active).scatter_(1, keep_idx, True) & self.active
        self.active.copy_(keep)
        new_alpha = self.selection_weights()
        # fold alpha_s / alpha'_s into the kept coefficients: alpha' c' = alpha c on kept spaces
        ratio = torch.where(keep, alpha / new_alpha.clamp_min(1e-30), torch.zeros_like(alpha))
        self.coef.mul_(ratio[None, :, :, None])
        if self.is_selected:
            self.theta.requires_grad_(False)
        return self.chosen_spaces()

    def chosen_spaces(self) -> list[str]:
        """The largest-weight active space of every input node."""
        return [self.spaces[int(i)] for i in self.selection_weights().argmax(dim=1)]

    def selected_parameter_count(self) -> int:
        """Parameters used after pruning: one space's ``G+k`` coefficients per edge, base
        weights and bias (equal to the matching :class:`KANLayer`'s count)."""
        n = self.out_features * self.in_features * self.n_basis + self.out_features
        if self.base_weight is not None:
            n += self.out_features * self.in_features
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.in_features, self.coef.dtype)
        alpha = self.selection_weights()  # [in, S], 0 on every inactive (node, space)
        if torch.compiler.is_compiling() or torch.jit.is_tracing() or traced(x):
            # torch.compile / torch.export, torch.jit.trace and torch.fx cannot choose spaces by
            # the values of ``active`` (a data-dependent branch): every space is evaluated and
            # the inactive ones masked out, the same output as below for any ``active``
            parts = [self._basis(space, x) for space in self.spaces]
            b = torch.stack(parts, dim=2) * alpha[None, :, :, None]  # [B, in, S, G+k]
            b = torch.where(self.active[None, :, :, None], b, 0.0)
        else:
            used = self.active.any(dim=0).tolist()
            # spaces that no node keeps any more (after selection) are not evaluated
            parts = [
                self._basis(space, x)
                if used[s]
                else x.new_zeros(x.shape[0], self.in_features, self.n_basis)
                for s, space in enumerate(self.spaces)
            ]
            b = torch.stack(parts, dim=2) * alpha[None, :, :, None]  # [B, in, S, G+k]
        out = torch.addmm(self.bias, b.flatten(1), self.coef.reshape(self.out_features, -1).T)
        if self.base_weight is not None:
            out = out + F.silu(x) @ self.base_weight.T
        return out


def _check_widths(widths: Sequence[int]) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence [in, hidden..., out], got {widths!r:.80}")
    if len(widths) < 2:
        raise ValueError(f"widths must name at least [in, out], got {list(widths)}")
    return [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]


class _LayerStack(nn.Module):
    """Layers applied in order: ``[batch, in] -> [batch, out]``."""

    layers: nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class KAN(_LayerStack):
    """A stack of :class:`KANLayer` with widths ``[in, hidden..., out]`` (one space throughout).

    Keyword arguments go to every layer (``space``, ``grid``, ``k``, ``grid_range``, ...);
    ``seed`` seeds the whole stack. Input ``[batch, in]`` -> ``[batch, out]``.
    """

    def __init__(
        self,
        widths: Sequence[int],
        *,
        space: str = "bspline",
        grid: int = 5,
        k: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base: bool = True,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.widths = _check_widths(widths)
        gen = torch_generator(seed)
        self.layers = nn.ModuleList(
            KANLayer(
                a,
                b,
                space=space,
                grid=grid,
                k=k,
                grid_range=grid_range,
                noise_scale=noise_scale,
                base=base,
                seed=gen,
            )
            for a, b in zip(self.widths[:-1], self.widths[1:])
        )


class SKAN(_LayerStack):
    """A stack of :class:`SKANLayer` (S-KAN). Train it with
    :func:`~neuronkit.theory.kan.train.train_skan` (full training, selective training,
    pruning), or drive the stages by hand with :meth:`select`.

    Args as :class:`KAN`, with ``spaces`` (candidates) and ``temperature`` instead of ``space``.
    """

    def __init__(
        self,
        widths: Sequence[int],
        *,
        spaces: Sequence[str] = SPACES,
        grid: int = 5,
        k: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base: bool = True,
        temperature: float = 1.0,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.widths = _check_widths(widths)
        gen = torch_generator(seed)
        self.layers = nn.ModuleList(
            SKANLayer(
                a,
                b,
                spaces=spaces,
                grid=grid,
                k=k,
                grid_range=grid_range,
                noise_scale=noise_scale,
                base=base,
                temperature=temperature,
                seed=gen,
            )
            for a, b in zip(self.widths[:-1], self.widths[1:])
        )

    def select(self, top_k: int = 1) -> list[list[str]]:
        """Keep the ``top_k`` largest-weight spaces of every node in every layer (see
        :meth:`SKANLayer.select`); ``top_k = 1`` prunes. Returns each layer's node choices."""
        return [layer.select(top_k) for layer in self.skan_layers()]

    def chosen_spaces(self) -> list[list[str]]:
        """Every layer's largest-weight space per input node."""
        return [layer.chosen_spaces() for layer in self.skan_layers()]

    def skan_layers(self) -> list[SKANLayer]:
        """The layers, typed."""
        return [layer for layer in self.layers if isinstance(layer, SKANLayer)]

    def selected_parameter_count(self) -> int:
        """Parameter count of the selected network (sum of the layers' counts)."""
        return sum(layer.selected_parameter_count() for layer in self.skan_layers())


def mlp_parameter_count(in_features: int, hidden: int, out_features: int, depth: int) -> int:
    """Parameters of an MLP with ``depth`` hidden layers of width ``hidden``."""
    return _mlp_parameter_count(
        check_positive_int("in_features", in_features),
        check_positive_int("hidden", hidden),
        check_positive_int("out_features", out_features),
        check_positive_int("depth", depth),
    )


def _mlp_parameter_count(in_features: int, hidden: int, out_features: int, depth: int) -> int:
    n = (in_features + 1) * hidden + (depth - 1) * (hidden + 1) * hidden
    return n + (hidden + 1) * out_features


def matched_mlp(
    in_features: int,
    out_features: int,
    n_params: int,
    *,
    depth: int = 2,
    activation: str = "silu",
    seed: int | torch.Generator | None = None,
) -> nn.Sequential:
    """An MLP with ``depth`` equal hidden layers whose parameter count is closest to
    ``n_params`` (at least one hidden unit). ``activation``: ``"silu"``, ``"relu"`` or ``"tanh"``.
    """
    in_features = check_positive_int("in_features", in_features)
    out_features = check_positive_int("out_features", out_features)
    n_params = check_positive_int("n_params", n_params)
    depth = check_positive_int("depth", depth)
    acts = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}
    check_choice("activation", activation, acts)
    # the count grows with the width: (depth - 1) h^2 + (in + depth + out) h + out; the closest
    # width is a neighbour of the positive root (a search of widths below 4096 stopped there,
    # far from a larger n_params)
    a, b, c = depth - 1, in_features + depth + out_features, out_features - n_params
    root = -c / b if a == 0 else (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    candidates = {max(1, math.floor(root) + d) for d in (-1, 0, 1, 2)}
    hidden = min(
        sorted(candidates),
        key=lambda h: abs(_mlp_parameter_count(in_features, h, out_features, depth) - n_params),
    )
    if seed is not None:
        gen = torch_generator(seed)
    layers: list[nn.Module] = []
    a = in_features
    # with a seed, the default init (overwritten below) leaves the global RNG alone
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        for _ in range(depth):
            layers += [nn.Linear(a, hidden), acts[activation]()]
            a = hidden
        layers.append(nn.Linear(a, out_features))
    model = nn.Sequential(*layers)
    if seed is not None:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    bound = 1.0 / math.sqrt(m.in_features)
                    m.weight.uniform_(-bound, bound, generator=gen)
                    m.bias.uniform_(-bound, bound, generator=gen)
    return model
