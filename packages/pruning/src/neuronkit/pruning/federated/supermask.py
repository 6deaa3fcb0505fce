"""Supermasks over frozen random weights: the sign supermask of HideNseek and a {0,1} baseline.

Vallapuram et al. (2022), "HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign
Supermask": the weights of a pruned, randomly initialized network are frozen and only a sign
supermask ``sigma in {-1, +1}`` is learned, ``W_eff = m * |W_0| * sigma`` with ``m`` the
(SynFlow) pruning mask and ``sigma = sign(s)`` of real-valued scores ``s`` trained through the
straight-through estimator (``d sign(s) / ds := 1``). The binary baseline is edge-popup's {0,1}
supermask (Ramanujan et al., 2020): ``W_eff = W_0 * top_k(|s|)`` with each layer keeping its
top-``k`` scores (gradients pass straight through the top-k). Zhou et al.'s (2019) original
supermask samples the mask from ``Bernoulli(sigmoid(s))`` instead, so its density is not fixed;
that rule is not implemented here.

Both wrap any ``nn.Module`` whose prunable weights are Conv/Linear ``weight`` tensors; the
wrapped network is called with :func:`torch.func.functional_call`, so the architecture is not
rewritten. Every parameter of the wrapped network is frozen (buffers of the wrapper); the only
trainable parameters are the scores, one per masked weight, exposed as ``wrapper.scores``
(an ``nn.ParameterDict`` keyed by the weight name with ``.`` replaced by ``__``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from neuronkit.common import (
    check_finite,
    check_number,
    check_seed,
    check_type,
    eager_twin,
    function_for_mode,
    under_torch_func,
)
from neuronkit.pruning.lottery import prunable_weights

__all__ = [
    "BinarySupermask",
    "SignSupermask",
    "sign_ste",
    "topk_mask_ste",
]

Masks = dict[str, torch.Tensor]


class _SignSTE(torch.autograd.Function):
    """``sign`` forward, straight-through (identity) backward and forward-mode rule; the
    new-style form (``setup_context``, generated vmap rule, ``jvp``) runs under ``torch.func``
    transforms (``grad``, ``vmap``, ``jacrev``, ``jvp``...)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(scores: torch.Tensor) -> torch.Tensor:
        # 2 * [s >= 0] - 1, exact: the same values as torch.where(s >= 0, 1.0, -1.0) (NaN
        # gives -1) at a fraction of its CPU cost, which uses a slow path for a bool condition
        return (scores >= 0).to(torch.uint8).to(scores.dtype) * 2 - 1

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass  # the straight-through rules need nothing saved

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        return tangent


class _CompiledSignSTE(_SignSTE):
    """:class:`_SignSTE` as ``torch.compile`` traces it: dynamo refuses a custom ``jvp``."""

    jvp = torch.autograd.Function.jvp  # type: ignore[assignment]  # the base method, restored


_EagerSignSTE = eager_twin(_SignSTE)  # plain eager autograd: no per-call signature binding


def _topk_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    """0/1 mask (``flat``'s dtype) of the ``k`` largest entries of the 1-D ``flat``
    (``1 <= k <= flat.numel()``).

    When the ``k`` largest values are strictly above all others the set is unique; then a
    linear-time ``numpy.partition`` (introselect) finds the ``k``-th largest value and the mask
    is ``flat >= it``, several times faster than ``torch.topk`` on the CPU for large ``k``
    (edge-popup keeps about half of each layer). With a tie at the boundary, non-finite values,
    a non-CPU tensor or a dtype numpy lacks, ``torch.topk`` decides, so the chosen set is always
    the one ``torch.topk`` would pick.
    """
    n = flat.numel()
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64) and k < n:
        a = flat.numpy()
        kth = np.partition(a, n - k)[n - k]  # the k-th largest value
        keep = a >= kth
        # unique top-k set: exactly k entries reach the k-th largest value and all n - k others
        # are below it (a NaN is neither, so it falls back to torch.topk as well)
        if np.count_nonzero(keep) == k and np.count_nonzero(a < kth) == n - k:
            return torch.from_numpy(keep.view(np.uint8)).to(flat.dtype)
    out = torch.zeros_like(flat)
    out[torch.topk(flat, k, sorted=False).indices] = 1.0
    return out


class _TopKSTE(torch.autograd.Function):
    """Top-``k`` 0/1 mask forward, straight-through backward and forward-mode rule. Under a
    ``torch.func`` transform (or a forward-mode AD level) the mask comes from ``torch.topk``
    and ``scatter`` alone, which ``vmap`` batches; the numpy fast path of
    :func:`_topk_mask` (which picks the same set) runs only on plain tensors."""

    generate_vmap_rule = True

    @staticmethod
    def forward(scores: torch.Tensor, k: int) -> torch.Tensor:
        flat = scores.detach().flatten()
        if k == 0:
            out = torch.zeros_like(flat)
        # wrapped tensors have no host values for numpy; dynamo cannot trace np.partition
        elif under_torch_func() or torch.compiler.is_compiling():
            idx = torch.topk(flat, k, sorted=False).indices
            out = torch.zeros_like(flat).scatter(0, idx, 1.0)
        else:
            out = _topk_mask(flat, k)
        return out.reshape(scores.shape)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass  # the straight-through rules need nothing saved

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, _: None) -> torch.Tensor:
        return tangent


class _CompiledTopKSTE(_TopKSTE):
    """:class:`_TopKSTE` as ``torch.compile`` traces it: dynamo refuses a custom ``jvp``."""

    jvp = torch.autograd.Function.jvp  # type: ignore[assignment]  # the base method, restored


_EagerTopKSTE = eager_twin(_TopKSTE)


def sign_ste(scores: torch.Tensor) -> torch.Tensor:
    """``sign(scores)`` in ``{-1, +1}`` (0 maps to +1) with a straight-through gradient.

    Args:
        scores: any real tensor.

    Returns:
        A tensor of the same shape and dtype holding only -1 and +1; its gradient with respect
        to ``scores`` is the identity (Bengio et al., 2013).
    """
    check_type("scores", scores, torch.Tensor)
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got {scores.dtype}")
    fn = function_for_mode(_SignSTE, _EagerSignSTE, _CompiledSignSTE)
    out: torch.Tensor = fn.apply(scores)
    return out


def topk_mask_ste(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Edge-popup's {0,1} mask: 1 at the ``k`` largest ``|scores|``, straight-through gradient.

    Args:
        scores: real tensor of any shape (one layer's scores).
        k: number of entries kept, ``0 <= k <= scores.numel()`` (ties are broken by ``torch.topk``).

    Returns:
        A 0/1 tensor shaped like ``scores``; its gradient is the straight-through identity
        taken through ``|scores|``: ``sign(scores) * grad``.
    """
    check_type("scores", scores, torch.Tensor)
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got {scores.dtype}")
    check_number("k", k, ge=0, le=scores.numel(), integer=True)
    # rank |s|; the gradient flows through abs() (edge-popup's clamped scores)
    fn = function_for_mode(_TopKSTE, _EagerTopKSTE, _CompiledTopKSTE)
    out: torch.Tensor = fn.apply(scores.abs(), int(k))
    return out


def _key(name: str) -> str:
    return name.replace(".", "__")


class _FrozenWrapper(nn.Module):
    """Holds a frozen copy of ``model`` and runs it with substituted weights."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        check_type("model", model, nn.Module)
        self.net = copy.deepcopy(model)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.names = list(names)
        self.scores = nn.ParameterDict()

    def effective_weights(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the wrapped network ``[B, ...] -> [B, C]`` with the supermasked weights."""
        out: torch.Tensor = functional_call(self.net, self.effective_weights(), (x,))
        return out

    def get_scores(self) -> dict[str, torch.Tensor]:
        """Detached copies of the scores, ``{weight name: tensor shaped like the weight}``."""
        return {n: self.scores[_key(n)].detach().clone() for n in self.names}

    def set_scores(self, scores: Mapping[str, torch.Tensor]) -> None:
        """Copy ``scores`` (``{weight name: tensor shaped like the weight}``) into the wrapper."""
        check_type("scores", scores, Mapping)
        missing = [n for n in self.names if n not in scores]
        if missing or len(scores) != len(self.names):
            raise ValueError(
                f"scores must have exactly the keys {self.names}, got {sorted(scores)}"
            )
        for n in self.names:
            s = scores[n]
            check_type(f"scores[{n!r}]", s, torch.Tensor)
            target = self.scores[_key(n)]
            if s.shape != target.shape:
                raise ValueError(
                    f"scores[{n!r}] must have shape {tuple(target.shape)}, got {tuple(s.shape)}"
                )
            check_finite(f"scores[{n!r}]", s)
        with torch.no_grad():
            for n in self.names:
                self.scores[_key(n)].copy_(scores[n])

    def materialize(self) -> nn.Module:
        """A plain copy of the wrapped network with the effective weights written in."""
        net = copy.deepcopy(self.net)
        params = dict(net.named_parameters())
        with torch.no_grad():
            for n, w in self.effective_weights().items():
                params[n].copy_(w)
        return net


class SignSupermask(_FrozenWrapper):
    """HideNseek's network: ``W_eff = m * |W_0| * sign(s)`` over frozen magnitudes ``|W_0|``.

    Args:
        model: the randomly initialized network ``[B, ...] -> [B, C]`` (copied, not modified).
        masks: the pruning masks ``{weight name: bool tensor}`` (e.g. from
            :func:`~neuronkit.pruning.federated.synflow.synflow_prune`); only these weights get
            signs and scores, everything else stays frozen at ``model``'s values.
        rescale: multiply each layer's magnitudes by ``1 / sqrt(layer density)`` so a sparse
            layer keeps the dense layer's activation scale (the scaled initialization of
            Ramanujan et al., 2020); ``False`` keeps ``|W_0|`` unchanged.

    The scores are unitless: they start at ``sign(W_0)`` (``+-1``: the pruned network as
    initialized) and the server sets them to the clients' vote in ``[-1, 1]``.
    ``forward``: ``x [B, ...] -> [B, C]``.
    """

    def __init__(self, model: nn.Module, masks: Masks, *, rescale: bool = False) -> None:
        check_type("model", model, nn.Module)
        check_type("masks", masks, dict)
        check_type("rescale", rescale, bool)
        if not masks:
            raise ValueError("masks must name at least one weight, got {}")
        params = dict(model.named_parameters())
        for n, m in masks.items():
            if n not in params:
                raise ValueError(
                    f"masks names {n!r}, which is not a parameter of the model "
                    f"(prunable: {prunable_weights(model)})"
                )
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise TypeError(f"masks[{n!r}] must be a bool tensor, got {type(m).__name__}")
            if m.shape != params[n].shape:
                raise ValueError(
                    f"masks[{n!r}] must have shape {tuple(params[n].shape)}, got {tuple(m.shape)}"
                )
        order = [n for n, _ in model.named_parameters() if n in masks]
        super().__init__(model, order)
        self.rescale = rescale
        for n in order:
            w0 = params[n].detach()
            m = masks[n].to(w0.device)
            density = float(m.float().mean())
            scale = (1.0 / density) ** 0.5 if rescale and density > 0 else 1.0
            self.register_buffer(f"mask__{_key(n)}", m.clone())
            self.register_buffer(f"magnitude__{_key(n)}", (w0.abs() * m * scale).clone())
            self.scores[_key(n)] = nn.Parameter(torch.where(w0 >= 0, 1.0, -1.0).to(w0.dtype))

    def mask(self, name: str) -> torch.Tensor:
        """The bool pruning mask of weight ``name``."""
        out: torch.Tensor = getattr(self, f"mask__{_key(name)}")
        return out

    def magnitude(self, name: str) -> torch.Tensor:
        """The frozen magnitudes ``m * |W_0|`` (rescaled if asked) of weight ``name``."""
        out: torch.Tensor = getattr(self, f"magnitude__{_key(name)}")
        return out

    def effective_weights(self) -> dict[str, torch.Tensor]:
        """``{name: m * |W_0| * sign_ste(s)}``, differentiable in the scores."""
        return {n: self.magnitude(n) * sign_ste(self.scores[_key(n)]) for n in self.names}

    def signs(self) -> dict[str, torch.Tensor]:
        """The current sign supermask on the unpruned weights.

        Returns:
            ``{name: int8 tensor [n_kept]}`` of -1/+1, the kept entries in row-major order (the
            1-bit-per-unpruned-weight message a client uploads).
        """
        with torch.no_grad():
            return {
                n: torch.where(self.scores[_key(n)][self.mask(n)] >= 0, 1, -1).to(torch.int8)
                for n in self.names
            }

    def num_unpruned(self) -> int:
        """The number of unpruned (sign-carrying) weights."""
        return int(sum(int(self.mask(n).sum()) for n in self.names))


class BinarySupermask(_FrozenWrapper):
    """The {0,1} supermask baseline (edge-popup): ``W_eff = W_0 * top_k(|s|)`` per layer.

    Args:
        model: the randomly initialized network (copied, not modified); its weights are frozen.
        densities: ``{weight name: fraction of that layer kept, in (0, 1]}``; pass the
            per-layer densities of a SynFlow mask to compare at exactly the same sparsity.
        seed: seed of the initial scores, uniform in ``+-1 / sqrt(fan_in)`` (edge-popup's
            ``kaiming_uniform_(scores, a=sqrt(5))``).
        rescale: multiply each layer's weights by ``1 / sqrt(layer density)`` (see
            :class:`SignSupermask`).

    ``forward``: ``x [B, ...] -> [B, C]``.
    """

    def __init__(
        self,
        model: nn.Module,
        densities: Mapping[str, float],
        *,
        seed: int = 0,
        rescale: bool = False,
    ) -> None:
        check_type("model", model, nn.Module)
        check_type("densities", densities, Mapping)
        check_seed(seed)
        check_type("rescale", rescale, bool)
        if not densities:
            raise ValueError("densities must name at least one weight, got {}")
        params = dict(model.named_parameters())
        for n, d in densities.items():
            if n not in params:
                raise ValueError(
                    f"densities names {n!r}, which is not a parameter of the model "
                    f"(prunable: {prunable_weights(model)})"
                )
            check_number(f"densities[{n!r}]", d, gt=0.0, le=1.0)
        order = [n for n, _ in model.named_parameters() if n in densities]
        super().__init__(model, order)
        self.rescale = rescale
        gen = torch.Generator().manual_seed(int(seed))
        self.k: dict[str, int] = {}
        for n in order:
            w0 = params[n].detach()
            d = float(densities[n])
            self.k[n] = max(1, round(d * w0.numel()))
            scale = (1.0 / d) ** 0.5 if rescale else 1.0
            self.register_buffer(f"weight__{_key(n)}", (w0 * scale).clone())
            fan_in = w0[0].numel() if w0.ndim > 1 else w0.numel()
            # edge-popup's SubnetConv: kaiming_uniform_(scores, a=sqrt(5)), bound 1 / sqrt(fan_in)
            bound = fan_in**-0.5
            s = (torch.rand(w0.shape, generator=gen, dtype=w0.dtype) * 2 - 1) * bound
            self.scores[_key(n)] = nn.Parameter(s.to(w0.device))

    def weight(self, name: str) -> torch.Tensor:
        """The frozen weights of layer ``name`` (rescaled if asked)."""
        out: torch.Tensor = getattr(self, f"weight__{_key(name)}")
        return out

    def effective_weights(self) -> dict[str, torch.Tensor]:
        """``{name: W_0 * top_k(|s|)}``, differentiable in the scores."""
        return {
            n: self.weight(n) * topk_mask_ste(self.scores[_key(n)], self.k[n]) for n in self.names
        }

    def binary_masks(self) -> dict[str, torch.Tensor]:
        """The current {0,1} supermask: ``{name: bool tensor shaped like the weight}``."""
        with torch.no_grad():
            return {
                n: topk_mask_ste(self.scores[_key(n)].detach(), self.k[n]).bool()
                for n in self.names
            }

    def num_weights(self) -> int:
        """The number of maskable weights (each carries one mask bit)."""
        return int(sum(self.weight(n).numel() for n in self.names))
