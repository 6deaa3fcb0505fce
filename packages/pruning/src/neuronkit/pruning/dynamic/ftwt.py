"""Fire Together Wire Together (FTWT): dynamic filter pruning with self-supervised mask prediction.

Elkerdawy, Elhoushi, Zhang & Ray (CVPR 2022), "Fire Together Wire Together: A Dynamic Pruning
Approach with Self-Supervised Mask Prediction".

Every gated conv-BN-activation layer ``l`` gets a small *mask predictor*: the global-average
pooled input of the layer (a softmax over its channels, as in the authors' default) goes through
one linear map to one logit per output filter. Its self-supervised target is the *heatmap
mass* rule: per sample, the filters' activation masses (max of ``|activation|`` over space, the
authors' criterion; ``"mean"`` is offered too) are normalized to sum to one, sorted in
decreasing order, and the filters whose cumulative mass does not exceed ``r`` are kept (the
authors' ``k = index(cumsum > r)``: the filter that crosses ``r`` is dropped), so the number of
kept filters ``k`` varies from input to input. The predictors are trained with a binary
cross-entropy that is *decoupled* from the task loss (their input is detached, the task loss
never reaches them), while the backbone keeps learning the task with the predicted binary masks
applied (threshold 0.5 on the sigmoid, straight-through estimator in the ``"joint"`` variant).

Because the target rule depends only on ``r`` and the activations, the FLOPs of the pruned
network can be *estimated before training* from a pretrained dense network: apply the mass rule
to its activations on the training data and propagate the kept output filters of a layer to the
kept input channels of the next (:func:`estimate_flops`). At inference the measured per-sample
cost counts every gated convolution with the actual kept input and output channels of that
sample (:attr:`FTWTOutput.macs`), plus the predictors and the dense head.

A static baseline (same kept counts for every input, filters ranked by the L1 norm of their
weights) is given by :func:`l1_filter_masks` and :func:`static_keep_counts` at a MAC budget.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_ndim,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    eager_twin,
    eval_mode,
    forked_manual_seed,
    function_for_mode,
    grad_enabled,
    integer_dtype,
    named_input_dtypes,
    progress,
)

from ..lottery.rewind import _check_classes
from ..macs import count_macs

__all__ = [
    "CRITERIA",
    "GATINGS",
    "DynamicCNN",
    "FTWTConfig",
    "FTWTOutput",
    "FlopsEstimate",
    "GatedConv",
    "MaskPredictor",
    "binarize_ste",
    "estimate_flops",
    "heatmap_mass",
    "l1_filter_masks",
    "mask_loss",
    "mass_targets",
    "select_ratio",
    "static_keep_counts",
    "train_ftwt",
]

#: activation-mass criteria of :func:`heatmap_mass`.
CRITERIA = ("max", "mean")
#: how :class:`DynamicCNN` gates its filters.
GATINGS = ("dense", "dynamic", "oracle", "static")
_MODES = ("decoupled", "joint")


def _check_activation(name: str, activation: Any) -> None:
    check_type(name, activation, torch.Tensor)
    check_ndim(name, activation, 4, "[B, C, H, W]")
    check_floating(name, activation)
    check_finite(name, activation)


def _check_ratio(ratio: Any) -> None:
    check_number("ratio", ratio, gt=0.0, le=1.0)


def heatmap_mass(activation: torch.Tensor, criterion: str = "max") -> torch.Tensor:
    """Per-sample, per-filter activation mass of a layer's output heatmaps.

    Args:
        activation: ``[B, C, H, W]`` output of a layer.
        criterion: ``"max"`` (max of ``|a|`` over space, the FTWT reference criterion) or
            ``"mean"`` (mean of ``|a|`` over space).

    Returns:
        ``[B, C]`` non-negative masses.
    """
    _check_activation("activation", activation)
    check_choice("criterion", criterion, CRITERIA)
    a = activation.abs().flatten(2)
    return a.amax(dim=2) if criterion == "max" else a.mean(dim=2)


def mass_targets(activation: torch.Tensor, ratio: float, criterion: str = "max") -> torch.Tensor:
    """FTWT's self-supervised mask targets: keep the top filters whose cumulative mass is <= ``r``.

    Per sample, the masses of :func:`heatmap_mass` are normalized to sum to one and sorted in
    decreasing order; the filters whose cumulative normalized mass (their own included) does not
    exceed ``ratio`` are kept (1), the rest is pruned (0). This is the authors' rule
    (``k = index(cumsum > r)``; reference ``utils/layers.py::get_gt_mask_ratio`` prunes where
    ``cumsum - r > 1e-5``, the slack used here): the filter whose mass crosses ``r`` is pruned,
    so a sample whose top filter alone holds more than ``r`` keeps nothing in that layer.
    Filters with zero mass are never kept (a sample whose whole layer is silent keeps nothing).
    ``ratio = 1`` keeps exactly the non-silent filters (the authors' "r = 1 drops the filters
    that activate no pixel").

    Args:
        activation: ``[B, C, H, W]`` output of a layer (before masking).
        ratio: the heatmap-mass threshold ``r`` in ``(0, 1]``.
        criterion: see :func:`heatmap_mass`.

    Returns:
        ``[B, C]`` float tensor of 0/1 targets (no gradient).
    """
    _check_ratio(ratio)
    with torch.no_grad():
        mass = heatmap_mass(activation, criterion)
        total = mass.sum(dim=1, keepdim=True)
        norm = mass / total.clamp_min(torch.finfo(mass.dtype).tiny)
        sorted_mass, order = torch.sort(norm, dim=1, descending=True)
        cumulative = torch.cumsum(sorted_mass, dim=1)  # mass of this filter and the better ones
        # the reference's slack (1e-5) absorbs the cumulative sum's rounding; r = 1 keeps every
        # non-silent filter
        limit = float(ratio) + 1e-5 if ratio < 1 else math.inf
        keep_sorted = (cumulative <= limit) & (sorted_mass > 0)
        keep = torch.zeros_like(norm).scatter(1, order, keep_sorted.to(norm.dtype))
    return keep


class _BinarizeSTE(torch.autograd.Function):
    """``probs > threshold`` forward, straight-through (identity) backward and forward-mode
    rule; the new-style form (``setup_context``, generated vmap rule, ``jvp``) runs under
    ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``, ``jvp``...)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(probs: torch.Tensor, threshold: float) -> torch.Tensor:
        return (probs > threshold).to(probs.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass  # the straight-through rules need nothing saved

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, _: None) -> torch.Tensor:
        return tangent


class _CompiledBinarizeSTE(_BinarizeSTE):
    """:class:`_BinarizeSTE` as ``torch.compile`` traces it: dynamo refuses a custom ``jvp``."""

    jvp = torch.autograd.Function.jvp  # type: ignore[assignment]  # the base method, restored


_EagerBinarizeSTE = eager_twin(_BinarizeSTE)  # plain eager autograd: no signature binding


def binarize_ste(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binarize ``probs > threshold`` to {0, 1} with a straight-through (identity) gradient.

    Args:
        probs: any-shape tensor of mask probabilities (sigmoid of the predictor logits).
        threshold: the cut in ``[0, 1)`` (0.5 in FTWT).

    Returns:
        a 0/1 tensor shaped like ``probs``; its gradient w.r.t. ``probs`` is the identity.
    """
    check_type("probs", probs, torch.Tensor)
    check_floating("probs", probs)
    check_number("threshold", threshold, ge=0.0, lt=1.0)
    fn = function_for_mode(_BinarizeSTE, _EagerBinarizeSTE, _CompiledBinarizeSTE)
    out: torch.Tensor = fn.apply(probs, float(threshold))
    return out


class MaskPredictor(nn.Module):
    """FTWT mask predictor: pooled layer input -> one logit per output filter.

    ``x [B, C_in, H, W] -> adaptive average pool to s x s -> flatten [B, C_in s^2] -> softmax
    (if softmax and more than one feature) -> Linear -> logits [B, C_out]``. With
    ``embedding=None`` ``s = 1`` (global average pooling, the reference default); otherwise
    ``s = max(1, round(sqrt(embedding / C_in)))`` so every layer gets about ``embedding``
    features (the reference's ``--embedding`` option). The softmax is the reference's default.

    Args:
        in_channels: channels of the gated layer's input.
        out_channels: filters of the gated layer.
        softmax: apply the softmax to the pooled features.
        embedding: wanted number of pooled features, or ``None`` for global average pooling.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        softmax: bool = True,
        embedding: int | None = None,
    ) -> None:
        super().__init__()
        check_number("in_channels", in_channels, ge=1, integer=True)
        check_number("out_channels", out_channels, ge=1, integer=True)
        check_type("softmax", softmax, bool)
        if embedding is not None:
            check_number("embedding", embedding, ge=1, integer=True)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.pool_size = (
            1 if embedding is None else max(1, round(math.sqrt(embedding / in_channels)))
        )
        self.features = self.in_channels * self.pool_size**2
        self.softmax = bool(softmax) and self.features > 1
        self.linear = nn.Linear(self.features, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C_in, H, W]`` -> logits ``[B, C_out]``."""
        check_ndim("x", x, 4, "[B, C, H, W]")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        if self.pool_size == 1:
            z = x.mean(dim=(2, 3))
        else:
            z = nn.functional.adaptive_avg_pool2d(x, self.pool_size).flatten(1)
        if self.softmax:
            z = torch.softmax(z, dim=1)
        out: torch.Tensor = self.linear(z)
        return out

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one prediction (the linear map; pooling is not counted)."""
        return self.features * self.out_channels


#: layers that mix channels or features: not an elementwise activation of :class:`GatedConv`
_NOT_ELEMENTWISE = (
    nn.modules.conv._ConvNd,
    nn.Linear,
    nn.modules.batchnorm._BatchNorm,
)


class GatedConv(nn.Module):
    """A conv-BN-activation layer whose output filters are gated per sample by a predictor.

    Args:
        conv: ``nn.Conv2d`` with ``groups == 1``.
        bn: ``nn.BatchNorm2d`` over ``conv.out_channels`` (or ``nn.Identity``).
        act: elementwise activation (``nn.ReLU`` ...).
        softmax, embedding: see :class:`MaskPredictor`.

    The static mask buffer ``static_mask [C_out]`` is used by the ``"static"`` gating.
    """

    static_mask: torch.Tensor

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.Module,
        act: nn.Module,
        *,
        softmax: bool = True,
        embedding: int | None = None,
    ):
        super().__init__()
        check_type("conv", conv, nn.Conv2d)
        check_type("bn", bn, (nn.BatchNorm2d, nn.Identity))
        check_type("act", act, nn.Module)
        if isinstance(act, _NOT_ELEMENTWISE):  # would be gated and MAC-counted as the conv
            raise ValueError(
                "act must be an elementwise activation (the module after the conv's "
                f"BatchNorm2d), got {type(act).__name__}"
            )
        if conv.groups != 1:
            raise ValueError(f"conv must have groups == 1, got groups={conv.groups}")
        if isinstance(bn, nn.BatchNorm2d) and bn.num_features != conv.out_channels:
            raise ValueError(
                f"bn must normalize {conv.out_channels} channels, got {bn.num_features}"
            )
        self.conv, self.bn, self.act = conv, bn, act
        # on the conv's device and in its dtype, like the layer it gates
        w = conv.weight
        self.predictor = MaskPredictor(
            conv.in_channels, conv.out_channels, softmax=softmax, embedding=embedding
        ).to(w.device, w.dtype)
        self.register_buffer("static_mask", w.new_ones(conv.out_channels))

    @property
    def in_channels(self) -> int:
        return int(self.conv.in_channels)

    @property
    def out_channels(self) -> int:
        return int(self.conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense forward: x ``[B, C_in, H, W]`` -> ``[B, C_out, H', W']`` (no gating)."""
        out: torch.Tensor = self.act(self.bn(self.conv(x)))
        return out


@dataclass
class FTWTOutput:
    """Everything one :meth:`DynamicCNN.run` computes.

    Attributes:
        logits: ``[B, num_classes]``.
        mask_logits: per gated layer, predictor logits ``[B, C_l]``.
        targets: per gated layer, heatmap-mass targets ``[B, C_l]`` of the layer's (unmasked)
            output in this forward pass.
        masks: per gated layer, the 0/1 masks applied ``[B, C_l]``.
        macs: ``[B]`` measured multiply-accumulates per sample (gated convs with the kept
            input/output channels, the predictors when used, and the dense head).
        kept_in: per gated layer, ``[B]`` number of non-zero input channels.
        geometry: per gated layer, ``H_out * W_out * k_h * k_w`` (MACs per kept in/out pair).
        head_macs: MACs of the head per sample.
        predictor_macs: MACs of all predictors per sample (counted in ``macs`` only when the
            predictors were used to gate, i.e. ``"dynamic"`` gating).
    """

    logits: torch.Tensor
    mask_logits: list[torch.Tensor]
    targets: list[torch.Tensor]
    masks: list[torch.Tensor]
    macs: torch.Tensor
    kept_in: list[torch.Tensor]
    geometry: list[int]
    head_macs: int
    predictor_macs: int
    first_in: int = field(default=0)


class DynamicCNN(nn.Module):
    """A CNN whose conv-BN-activation layers are gated per sample by FTWT mask predictors.

    Build it from a trained network with :meth:`from_sequential`. ``x [B, C, H, W] -> logits
    [B, num_classes]``; how filters are gated is the ``gating`` attribute:

    - ``"dense"``: no gating (the original network);
    - ``"dynamic"``: FTWT inference, mask = ``sigmoid(predictor(x_l)) > 0.5`` per sample;
    - ``"oracle"``: the heatmap-mass targets themselves (needs the dense layer output);
    - ``"static"``: the fixed per-layer ``static_mask`` buffers (static filter pruning).

    Args:
        layers: sequence of :class:`GatedConv` and channel-preserving modules (pooling, dropout)
            applied in order.
        head: the module mapping the last feature map to logits (e.g. GAP + linear).
        ratio: the heatmap-mass threshold ``r`` in ``(0, 1]``.
        criterion: the mass criterion (:data:`CRITERIA`).
        mode: ``"decoupled"`` (the predictors see a detached input and the binary mask is a
            constant for the backbone) or ``"joint"`` (straight-through gradients flow through
            the masks into the predictors and the backbone).
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        head: nn.Module,
        *,
        ratio: float = 0.9,
        criterion: str = "max",
        mode: str = "decoupled",
    ) -> None:
        super().__init__()
        layers = list(layers)
        if not any(isinstance(m, GatedConv) for m in layers):
            raise ValueError("layers must hold at least one GatedConv, got none")
        for i, m in enumerate(layers):
            check_type(f"layers[{i}]", m, nn.Module)
        check_type("head", head, nn.Module)
        _check_ratio(ratio)
        check_choice("criterion", criterion, CRITERIA)
        check_choice("mode", mode, _MODES)
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.ratio = float(ratio)
        self.criterion = criterion
        self.mode = mode
        self._gating = "dynamic"
        self._head_cache: dict[tuple[Any, ...], int] = {}

    def _head_macs(self, h: torch.Tensor) -> int:
        # the head is dense: its cost depends on its structure (layer types, settings such as
        # strides, parameter shapes) and the input's shape only, so those are the key; a head
        # object's id would be reused by a different head once the first one is freed
        structure = tuple(
            (type(m), m.extra_repr(), *(tuple(p.shape) for p in m.parameters(recurse=False)))
            for m in self.head.modules()
        )
        key = (structure, tuple(h.shape[1:]))
        if key not in self._head_cache:
            if len(self._head_cache) >= 64:  # bounded: many input sizes or replaced heads
                self._head_cache.clear()
            self._head_cache[key] = count_macs(self.head, h[:1].detach())
        return self._head_cache[key]

    @classmethod
    def from_sequential(
        cls,
        features: nn.Sequential,
        head: nn.Module,
        *,
        ratio: float = 0.9,
        criterion: str = "max",
        mode: str = "decoupled",
        softmax: bool = True,
        embedding: int | None = None,
        seed: int = 0,
    ) -> DynamicCNN:
        """Attach predictors to every ``Conv2d -> BatchNorm2d -> activation`` run of ``features``.

        ``features`` may hold the three modules directly or nested ``nn.Sequential`` blocks of
        exactly them (the package's ``DigitsCNN`` / ``VGGStyle`` layout); any other module must
        keep the channels (pooling, dropout). Nothing is modified: the modules are deep copies.

        Args:
            features: the convolutional trunk ``[B, C, H, W] -> [B, C', H', W']``.
            head: ``[B, C', H', W'] -> [B, num_classes]`` (copied).
            ratio, criterion, mode: see :class:`DynamicCNN`.
            softmax, embedding: see :class:`MaskPredictor`.
            seed: seed of the predictors' initialization.
        """
        check_type("features", features, nn.Sequential)
        check_type("head", head, nn.Module)
        check_seed(seed)
        flat: list[nn.Module] = []
        for m in copy.deepcopy(features):
            if isinstance(m, nn.Sequential):
                flat.extend(m)
            else:
                flat.append(m)
        layers: list[nn.Module] = []
        with forked_manual_seed(seed):
            i = 0
            while i < len(flat):
                m = flat[i]
                if isinstance(m, nn.Conv2d):
                    if i + 2 >= len(flat) or not isinstance(flat[i + 1], nn.BatchNorm2d):
                        raise ValueError(
                            f"features must follow each Conv2d with BatchNorm2d and an "
                            f"activation, got {flat[i : i + 3]!r}"
                        )
                    bn, act = flat[i + 1], flat[i + 2]
                    assert isinstance(bn, nn.BatchNorm2d)
                    layers.append(GatedConv(m, bn, act, softmax=softmax, embedding=embedding))
                    i += 3
                elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv3d, nn.BatchNorm2d)):
                    raise ValueError(
                        f"features must hold conv-BN-activation runs and channel-preserving "
                        f"modules, got {type(m).__name__}"
                    )
                else:
                    layers.append(m)
                    i += 1
        return cls(layers, copy.deepcopy(head), ratio=ratio, criterion=criterion, mode=mode)

    @property
    def gating(self) -> str:
        """How :meth:`forward` gates filters (one of :data:`GATINGS`)."""
        return self._gating

    @gating.setter
    def gating(self, value: str) -> None:
        check_choice("gating", value, GATINGS)
        self._gating = value

    def set_ratio(self, ratio: float) -> None:
        """Set the heatmap-mass threshold ``r`` in ``(0, 1]``."""
        _check_ratio(ratio)
        self.ratio = float(ratio)

    @property
    def gated(self) -> list[GatedConv]:
        """The gated layers in order."""
        return [m for m in self.layers if isinstance(m, GatedConv)]

    def predictor_parameters(self) -> list[nn.Parameter]:
        """Parameters of the mask predictors."""
        return [p for g in self.gated for p in g.predictor.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not a mask predictor's."""
        ids = {id(p) for p in self.predictor_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def set_static_masks(self, masks: Sequence[torch.Tensor]) -> None:
        """Set the ``"static"`` gating's fixed masks, one ``[C_l]`` 0/1 tensor per gated layer."""
        gated = self.gated
        if not isinstance(masks, Sequence) or len(masks) != len(gated):
            got = len(masks) if isinstance(masks, Sequence) else type(masks).__name__
            raise ValueError(f"masks must hold {len(gated)} tensors, got {got}")
        for i, (g, m) in enumerate(zip(gated, masks)):
            check_type(f"masks[{i}]", m, torch.Tensor)
            check_ndim(f"masks[{i}]", m, 1, "[C]")
            if m.shape[0] != g.out_channels:
                raise ValueError(
                    f"masks[{i}] must have {g.out_channels} entries, got shape {tuple(m.shape)}"
                )
            if not bool(((m == 0) | (m == 1)).all()):
                raise ValueError(f"masks[{i}] must hold only 0 and 1")
        for g, m in zip(gated, masks):
            g.static_mask.copy_(m.to(g.static_mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> logits ``[B, num_classes]`` under :attr:`gating`."""
        return self.run(x).logits

    def run(self, x: torch.Tensor, gating: str | None = None) -> FTWTOutput:
        """Forward pass that also returns logits, targets, masks and per-sample MACs.

        Args:
            x: ``[B, C, H, W]`` inputs.
            gating: overrides :attr:`gating` for this call.

        Returns:
            :class:`FTWTOutput`.
        """
        check_type("x", x, torch.Tensor)
        check_ndim("x", x, 4, "[B, C, H, W]")
        check_finite("x", x)
        gating = self._gating if gating is None else check_choice("gating", gating, GATINGS)
        b = x.shape[0]
        # counts in the inputs' precision, at least float32 (not torch's default dtype)
        count_dtype = torch.promote_types(x.dtype, torch.float32)
        kept = torch.full((b,), float(x.shape[1]), dtype=count_dtype, device=x.device)
        first_in = int(x.shape[1])
        mask_logits, targets, masks, kept_in, geometry = [], [], [], [], []
        macs = torch.zeros(b, dtype=count_dtype, device=x.device)
        pred_macs = 0
        # float64 inputs of a float32 network: a TypeError naming x (torch's deep RuntimeError)
        with named_input_dtypes(self, ("x", x)):
            h = x
            for layer in self.layers:
                if not isinstance(layer, GatedConv):
                    h = layer(h)
                    continue
                z = layer(h)
                logit = layer.predictor(h.detach() if self.mode == "decoupled" else h)
                target = mass_targets(z.detach(), self.ratio, self.criterion)
                if gating == "dense":
                    mask = torch.ones_like(target)
                elif gating == "oracle":
                    mask = target
                elif gating == "static":
                    mask = layer.static_mask.to(z.dtype).expand(b, -1)
                elif self.mode == "decoupled":
                    with torch.no_grad():
                        mask = binarize_ste(torch.sigmoid(logit.detach()))
                else:
                    mask = binarize_ste(torch.sigmoid(logit))
                h = z * mask[:, :, None, None]
                kh, kw = layer.conv.kernel_size
                geo = int(z.shape[2] * z.shape[3] * kh * kw)
                kept_out = mask.detach().sum(dim=1, dtype=count_dtype)  # bfloat16 stops at 256
                macs = macs + kept.to(macs) * kept_out.to(macs) * geo
                pred_macs += layer.predictor.macs
                mask_logits.append(logit)
                targets.append(target)
                masks.append(mask)
                kept_in.append(kept)
                geometry.append(geo)
                kept = kept_out
            logits = self.head(h)
        head_macs = self._head_macs(h) if b else 0
        macs = macs + head_macs + (pred_macs if gating == "dynamic" else 0)
        return FTWTOutput(
            logits=logits,
            mask_logits=mask_logits,
            targets=targets,
            masks=masks,
            macs=macs,
            kept_in=kept_in,
            geometry=geometry,
            head_macs=int(head_macs),
            predictor_macs=int(pred_macs),
            first_in=first_in,
        )

    @torch.no_grad()
    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, *, gating: str | None = None, batch_size: int = 512
    ) -> dict[str, Any]:
        """Accuracy and per-sample cost on ``x [N, C, H, W]``, ``y [N]`` in eval mode.

        Returns:
            ``{"accuracy": float in [0, 1], "macs": [N] tensor, "kept": list of [N, ] kept
            filter counts per gated layer, "mask_accuracy": per-layer agreement of the applied
            masks with the mass targets}``.
        """
        check_type("y", y, torch.Tensor)
        check_ndim("y", y, 1, "[N]")
        check_type("x", x, torch.Tensor)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        check_number("batch_size", batch_size, ge=1, integer=True)
        correct, macs, kept, agree = 0, [], [], []
        with eval_mode(self):
            for i in range(0, len(y), batch_size):
                out = self.run(x[i : i + batch_size], gating)
                if i == 0:
                    _check_classes(out.logits, y)
                correct += int(correct_predictions(out.logits, y[i : i + batch_size]).sum())
                macs.append(out.macs)
                kept.append(torch.stack([m.sum(1, dtype=out.macs.dtype) for m in out.masks], 1))
                agree.append(
                    torch.stack(
                        [(m == t).float().mean(1) for m, t in zip(out.masks, out.targets)], 1
                    )
                )
        k = torch.cat(kept)
        return {
            "accuracy": correct / max(1, len(y)),
            "macs": torch.cat(macs),
            "kept": [k[:, j] for j in range(k.shape[1])],
            "mask_accuracy": torch.cat(agree).mean(0).tolist(),
        }


def mask_loss(mask_logits: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """FTWT's mask loss: binary cross-entropy of each predictor against its mass targets.

    Per layer the BCE is averaged over the batch and summed over filters; layers are averaged
    (the reference implementation's reduction).

    Args:
        mask_logits: per layer ``[B, C_l]`` predictor logits.
        targets: per layer ``[B, C_l]`` 0/1 targets.

    Returns:
        a scalar tensor.
    """
    for name, seq in (("mask_logits", mask_logits), ("targets", targets)):
        if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
            raise TypeError(
                f"{name} must be a sequence of [B, C] tensors, got {type(seq).__name__}"
            )
        for i, item in enumerate(seq):
            check_type(f"{name}[{i}]", item, torch.Tensor)
    if len(mask_logits) != len(targets) or not mask_logits:
        raise ValueError(
            f"mask_logits and targets must be non-empty and of equal length, got "
            f"{len(mask_logits)} and {len(targets)}"
        )
    # the logits' precision, at least float32 (not torch's default dtype)
    loss_dtype = torch.promote_types(mask_logits[0].dtype, torch.float32)
    total = torch.zeros((), dtype=loss_dtype, device=mask_logits[0].device)
    for i, (p, t) in enumerate(zip(mask_logits, targets)):
        if p.shape != t.shape:
            raise ValueError(
                f"mask_logits[{i}] and targets[{i}] must have the same shape, got "
                f"{tuple(p.shape)} and {tuple(t.shape)}"
            )
        bce = nn.functional.binary_cross_entropy_with_logits(p, t, reduction="none")
        total = total + bce.mean(0).sum()
    return total / len(mask_logits)


@dataclass(frozen=True)
class FTWTConfig:
    """The decoupled FTWT training recipe (backbone fine-tuning plus predictor learning).

    Attributes:
        epochs: passes over the training data.
        batch_size: minibatch size (a fresh seeded permutation every epoch).
        lr: backbone SGD learning rate (reference: 1e-2 from a pretrained network).
        mask_lr: predictor SGD learning rate (reference: 1e-1, no weight decay).
        momentum: SGD momentum of both optimizers.
        weight_decay: backbone weight decay (reference 5e-4).
        warmup_epochs: first epochs in which only the predictors learn (backbone weights
            frozen; BatchNorm running statistics still update in training mode). The
            reference trains both from the first epoch (its ``--warmup`` option is never read),
            hence the default 0.
        cooldown: fraction of ``epochs`` after which the predictors stop learning (the
            reference's mask-loss weight goes to 0 from epoch ``int(cooldown * epochs)`` on,
            0.5 by default) while the backbone keeps adapting to the predicted masks.
        milestones: epochs at which the backbone learning rate is multiplied by 0.1.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-2
    mask_lr: float = 1e-1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    cooldown: float = 0.5
    milestones: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_number("epochs", self.epochs, ge=1, integer=True)
        check_number("batch_size", self.batch_size, ge=1, integer=True)
        check_number("lr", self.lr, gt=0.0)
        check_number("mask_lr", self.mask_lr, gt=0.0)
        check_number("momentum", self.momentum, ge=0.0, lt=1.0)
        check_number("weight_decay", self.weight_decay, ge=0.0)
        check_number("warmup_epochs", self.warmup_epochs, ge=0, le=self.epochs, integer=True)
        check_number("cooldown", self.cooldown, gt=0.0, le=1.0)
        check_type("milestones", self.milestones, tuple)
        for m in self.milestones:
            check_number("milestones[i]", m, ge=1, integer=True)


def _check_xy(x: Any, y: Any) -> torch.Tensor:
    """Check ``x [N, C, H, W]`` and ``y [N]``; returns the labels as int64 (class indices of
    any integer dtype are taken)."""
    check_type("x", x, torch.Tensor)
    check_ndim("x", x, 4, "[N, C, H, W]")
    check_finite("x", x)
    check_type("y", y, torch.Tensor)
    check_ndim("y", y, 1, "[N]")
    if not integer_dtype(y):
        raise TypeError(f"y must be an integer tensor of class labels, got dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    return y if y.dtype == torch.long else y.long()


@grad_enabled("train_ftwt")
def train_ftwt(
    net: DynamicCNN,
    x: torch.Tensor,
    y: torch.Tensor,
    config: FTWTConfig,
    *,
    seed: int = 0,
    show_progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train ``net`` in place with FTWT's decoupled task and mask losses (dynamic gating).

    Each step runs the network with the *predicted* binary masks applied; the cross-entropy
    updates the backbone (SGD ``lr``, after ``warmup_epochs``), the mask BCE against the
    heatmap-mass targets of the same pass updates the predictors (SGD ``mask_lr``, until
    ``cooldown * epochs``). In ``"decoupled"`` mode the two losses touch disjoint parameters.

    Args:
        net: the :class:`DynamicCNN` (its ``gating`` is set to ``"dynamic"``).
        x: training images ``[N, C, H, W]``.
        y: labels ``[N]``: class indices of any integer dtype.
        config: :class:`FTWTConfig`.
        seed: seed of the data order.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        per-epoch history ``{"task_loss", "mask_loss", "mask_accuracy", "kept_fraction"}``.
    """
    check_type("net", net, DynamicCNN)
    y = _check_xy(x, y)
    x, y = detached_input(x), detached_input(y)  # the caller's x.grad stays as it is
    check_type("config", config, FTWTConfig)
    check_seed(seed)
    net.gating = "dynamic"
    opt_b = torch.optim.SGD(
        net.backbone_parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    opt_m = torch.optim.SGD(net.predictor_parameters(), lr=config.mask_lr, momentum=config.momentum)
    # the reference zeroes the mask loss from epoch int(cooldown * epochs) on (cifar.py, train)
    stop_masks = max(config.warmup_epochs + 1, int(config.cooldown * config.epochs))
    gen = torch.Generator().manual_seed(int(seed))
    hist: dict[str, list[float]] = {
        "task_loss": [],
        "mask_loss": [],
        "mask_accuracy": [],
        "kept_fraction": [],
    }
    net.train()
    n = len(y)
    for epoch in progress(range(config.epochs), show_progress=show_progress, desc="train_ftwt"):
        decays = sum(1 for m in config.milestones if epoch >= m)
        for group in opt_b.param_groups:
            group["lr"] = config.lr * 0.1**decays
        learn_backbone = epoch >= config.warmup_epochs
        learn_masks = epoch < stop_masks
        sums = [0.0, 0.0, 0.0, 0.0]
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            out = net.run(x[idx])
            if epoch == 0 and i == 0:
                _check_classes(out.logits, y)
            task = nn.functional.cross_entropy(out.logits, y[idx])
            mloss = mask_loss(out.mask_logits, out.targets)
            opt_b.zero_grad(set_to_none=True)
            opt_m.zero_grad(set_to_none=True)
            (task + mloss if learn_masks else task).backward()
            if not (torch.isfinite(task) and torch.isfinite(mloss)):
                raise FloatingPointError(f"training diverged in epoch {epoch}")
            if learn_backbone:
                opt_b.step()
            if learn_masks:
                opt_m.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            w = len(idx)
            with torch.no_grad():
                acc = torch.stack(
                    [(m == t).float().mean() for m, t in zip(out.masks, out.targets)]
                ).mean()
                frac = torch.stack([m.mean() for m in out.masks]).mean()
            for j, v in enumerate((task.item(), mloss.item(), acc.item(), frac.item())):
                sums[j] += v * w
        for key, s in zip(hist, sums):
            hist[key].append(s / n)
    net.eval()
    return hist


@dataclass(frozen=True)
class FlopsEstimate:
    """FTWT's FLOPs estimate of a ratio ``r`` before training.

    Attributes:
        ratio: the heatmap-mass threshold ``r``.
        keep_fractions: per gated layer, mean fraction of filters the mass rule keeps.
        macs: estimated mean MACs per sample (kept output filters of a layer propagated to the
            next layer's input channels, predictors and head included).
        dense_macs: MACs per sample of the dense network.
    """

    ratio: float
    keep_fractions: tuple[float, ...]
    macs: float
    dense_macs: float

    @property
    def reduction(self) -> float:
        """Estimated FLOPs reduction in percent."""
        return 100.0 * (1.0 - self.macs / self.dense_macs)


@torch.no_grad()
def estimate_flops(
    net: DynamicCNN, x: torch.Tensor, ratio: float | None = None, *, batch_size: int = 512
) -> FlopsEstimate:
    """Estimate the FLOPs of FTWT at ratio ``r`` before training (from the dense network).

    Runs the *dense* network (eval mode) on ``x``, applies the heatmap-mass rule to every gated
    layer's output, and counts per sample each gated conv with the kept output filters of its
    own layer and the kept filters of the previous gated layer as input channels; the
    predictors' and the head's MACs are added.

    Args:
        net: the :class:`DynamicCNN` built from the pretrained network.
        x: ``[N, C, H, W]`` (training) inputs.
        ratio: ``r`` in ``(0, 1]``; ``None`` uses ``net.ratio``.
        batch_size: evaluation batch size.

    Returns:
        :class:`FlopsEstimate`.
    """
    check_type("net", net, DynamicCNN)
    check_type("x", x, torch.Tensor)
    check_ndim("x", x, 4, "[N, C, H, W]")
    check_number("batch_size", batch_size, ge=1, integer=True)
    old_ratio = net.ratio
    if ratio is not None:
        net.set_ratio(ratio)
    macs_sum, dense_sum, n = 0.0, 0.0, 0
    frac_sum: torch.Tensor | None = None
    try:
        with eval_mode(net):
            for i in range(0, len(x), batch_size):
                out = net.run(x[i : i + batch_size], "dense")
                b = out.logits.shape[0]
                kept_prev = torch.full((b,), float(out.first_in), dtype=torch.float64)
                est = torch.zeros(b, dtype=torch.float64)
                for t, geo in zip(out.targets, out.geometry):
                    k = t.cpu().sum(1, dtype=torch.float64)  # exact counts (not bfloat16)
                    est += kept_prev * k * geo
                    kept_prev = k
                est += out.head_macs + out.predictor_macs
                macs_sum += float(est.sum())
                dense_sum += float(out.macs.sum())
                fr = torch.stack([t.cpu().mean(1, dtype=torch.float64).sum() for t in out.targets])
                frac_sum = fr if frac_sum is None else frac_sum + fr
                n += b
    finally:
        net.ratio = old_ratio
    if n == 0 or frac_sum is None:
        raise ValueError("x must hold at least one sample, got 0")
    return FlopsEstimate(
        ratio=float(net.ratio if ratio is None else ratio),
        keep_fractions=tuple(float(f) / n for f in frac_sum),
        macs=macs_sum / n,
        dense_macs=dense_sum / n,
    )


def select_ratio(
    net: DynamicCNN, x: torch.Tensor, target_reduction: float, candidates: Sequence[float]
) -> tuple[float, list[FlopsEstimate]]:
    """Pick ``r`` before training: the largest candidate whose estimate meets the budget.

    Args:
        net: the :class:`DynamicCNN` built from the pretrained network.
        x: ``[N, C, H, W]`` training inputs.
        target_reduction: wanted FLOPs reduction in percent, in ``(0, 100)``.
        candidates: ratios in ``(0, 1]`` to consider.

    Returns:
        ``(ratio, estimates)``: the chosen ``r`` (the smallest candidate when none meets the
        budget) and the estimate of every candidate, in the given order.
    """
    check_number("target_reduction", target_reduction, gt=0.0, lt=100.0)
    if not candidates:
        raise ValueError("candidates must hold at least one ratio, got none")
    for r in candidates:
        _check_ratio(r)
    estimates = [estimate_flops(net, x, float(r)) for r in candidates]
    ok = [e.ratio for e in estimates if e.reduction >= target_reduction]
    return (max(ok) if ok else min(float(r) for r in candidates)), estimates


def l1_filter_masks(net: DynamicCNN, keep_counts: Sequence[int]) -> list[torch.Tensor]:
    """Static filter pruning: per gated layer keep the ``k_l`` filters of largest L1 norm.

    Args:
        net: the :class:`DynamicCNN`.
        keep_counts: one ``k_l`` in ``[1, C_l]`` per gated layer.

    Returns:
        one ``[C_l]`` 0/1 mask per gated layer, on the layer's device (use with
        :meth:`DynamicCNN.set_static_masks`).
    """
    check_type("net", net, DynamicCNN)
    gated = net.gated
    check_type("keep_counts", keep_counts, Sequence)
    if len(keep_counts) != len(gated):
        raise ValueError(f"keep_counts must hold {len(gated)} counts, got {len(keep_counts)}")
    masks = []
    for i, (g, k) in enumerate(zip(gated, keep_counts)):
        check_number(f"keep_counts[{i}]", k, ge=1, le=g.out_channels, integer=True)
        w = g.conv.weight.detach()
        # float16 sums overflow above 65504 (ties at inf), bfloat16 ones round
        norms = w.abs().flatten(1).sum(1, dtype=torch.promote_types(w.dtype, torch.float32))
        m = torch.zeros(g.out_channels, device=norms.device)  # topk's indices live there
        m[torch.topk(norms, int(k)).indices] = 1.0
        masks.append(m)
    return masks


def static_keep_counts(
    net: DynamicCNN, x: torch.Tensor, target_macs: float
) -> tuple[list[int], float]:
    """Uniform static keep counts whose MACs first reach ``target_macs`` (equal-FLOPs baseline).

    The same keep fraction ``q`` is used in every gated layer (``k_l = max(1, round(q C_l))``);
    the smallest ``q`` on a fine grid whose per-sample MACs are ``>= target_macs`` is returned,
    so the static network never gets fewer MACs than the budget (the dense counts when the
    budget exceeds the dense network's MACs).

    Args:
        net: the :class:`DynamicCNN`.
        x: one or more inputs ``[B, C, H, W]`` (only the shapes matter).
        target_macs: the MAC budget per sample (> 0).

    Returns:
        ``(keep_counts, macs)``.
    """
    check_type("net", net, DynamicCNN)
    check_number("target_macs", target_macs, gt=0.0)
    with torch.no_grad(), eval_mode(net):
        out = net.run(x[:1], "dense")
    chans = [g.out_channels for g in net.gated]
    best: tuple[list[int], float] | None = None
    for q in torch.linspace(0.0, 1.0, 401).tolist():
        counts = [max(1, min(c, round(q * c))) for c in chans]
        macs = float(out.head_macs)
        prev = float(out.first_in)
        for k, geo in zip(counts, out.geometry):
            macs += prev * k * geo
            prev = k
        best = (counts, macs)
        if macs >= target_macs:
            break
    assert best is not None
    return best
