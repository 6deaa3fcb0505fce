"""Contextual fusion: late fusion of object and context streams for robustness.

Akumalla, Haney & Bazhenov, "Contextual Fusion For Adversarial Robustness" (arXiv 2011.09526,
2020; extended as "Contextual fusion enhances robustness to image blurring", 2024). Foreground
features from an object network (ImageNet-CNN) and background features from a scene network
(Places-CNN) are extracted in parallel from frozen backbones, concatenated (late fusion) and
read out by a linear classifier. Three classifiers share the backbones: foreground-only,
background-only and joint. With a known adversary on the foreground, the joint classifier is
trained with ``CE + alpha * ||theta_fg||^2``, an L2 penalty on the fusion weights that read the
foreground features, which biases the decision towards the context.

* :class:`StreamCNN`: a small convolutional feature extractor (one stream's backbone).
* :class:`StreamClassifier`: one stream (optionally on a crop of the scene) plus a linear head.
* :class:`LateFusionClassifier`: object stream on the object box of the scene, context stream on
  the whole scene, concatenated features, one linear head. Its input is the scene alone, so an
  attack on the fused model perturbs what both streams see (gradients flow through both).
* :func:`stream_penalty`: the adversary-aware regularizer ``||W_stream||^2``.
* :func:`train_head`: trains the linear head(s) on frozen backbone features, with the
  regularizer.
* :func:`gaussian_blur` and :func:`robustness_curves`: accuracy under FGSM, PGD (reusing
  :func:`neuronkit.interpretability.robustness.pgd_attack`) and Gaussian blur.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_class_labels,
    check_finite,
    check_floating,
    check_interval,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    eval_mode,
    grad_enabled,
    integer_dtype,
    named_input_dtypes,
    progress,
)

from ..robustness import accuracy, fgsm_attack, pgd_attack

__all__ = [
    "LateFusionClassifier",
    "RobustnessCurves",
    "StreamCNN",
    "StreamClassifier",
    "crop_box",
    "gaussian_blur",
    "robustness_curves",
    "stream_penalty",
    "train_head",
]

Box = tuple[int, int, int, int]


def _check_images(name: str, x: object) -> torch.Tensor:
    check_type(name, x, torch.Tensor)
    assert isinstance(x, torch.Tensor)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a batch of images [N, C, H, W], got {tuple(x.shape)}")
    check_floating(name, x)
    return x


def _check_box(box: object) -> Box:
    # numpy integers and 0-d integer arrays / tensors (e.g. from a box tensor) count as ints
    values = (
        [v.item() if getattr(v, "ndim", None) == 0 and hasattr(v, "item") else v for v in box]
        if isinstance(box, (tuple, list))
        else []
    )
    if len(values) != 4 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"box must be a (top, left, height, width) tuple of ints, got {box!r:.80}")
    top, left, h, w = (int(v) for v in values)
    if top < 0 or left < 0 or h < 1 or w < 1:
        raise ValueError(
            f"box must have top, left >= 0 and height, width >= 1, got {(top, left, h, w)}"
        )
    return (top, left, h, w)


def crop_box(x: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    """The ``box = (top, left, height, width)`` region of every image: ``[N, C, H, W] ->
    [N, C, height, width]`` (a differentiable view)."""
    _check_images("x", x)
    top, left, h, w = _check_box(tuple(box))
    if top + h > x.shape[2] or left + w > x.shape[3]:
        raise ValueError(f"box {tuple(box)} does not fit in images of size {tuple(x.shape[2:])}")
    return x[:, :, top : top + h, left : left + w]


class StreamCNN(nn.Module):
    """A small CNN feature extractor: two 3x3 conv + ReLU layers, adaptive average pooling to
    4x4 and a linear + ReLU layer to ``n_features`` (the paper's ResNet18 backbones, scaled
    down to 8x8 objects and small scenes).

    Args:
        in_channels: image channels.
        width: channels of the first conv layer (the second has ``2 * width``).
        n_features: output feature dimension.
        stride: stride of the first conv layer (2 halves the resolution of larger scenes).
        seed: seeds the initialization.

    Shapes: ``x: [N, in_channels, H, W]`` (``H, W >= 4``) ``-> [N, n_features]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 16,
        n_features: int = 64,
        *,
        stride: int = 1,
        seed: int = 0,
    ) -> None:
        check_number("in_channels", in_channels, ge=1, integer=True)
        check_number("stride", stride, ge=1, integer=True)
        check_number("width", width, ge=1, integer=True)
        check_number("n_features", n_features, ge=1, integer=True)
        check_seed(seed)
        super().__init__()
        self.in_channels = int(in_channels)
        self.n_features = int(n_features)
        # the default init (overwritten below) leaves the global RNG alone
        with torch.random.fork_rng(devices=[]):
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=stride, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
            )
            self.fc = nn.Linear(2 * width * 16, n_features)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    fan_in = module.weight[0].numel()
                    bound = math.sqrt(6.0 / fan_in)  # He-uniform for ReLU
                    module.weight.copy_(
                        (torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound
                    )
                    assert module.bias is not None
                    module.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, n_features]``."""
        return F.relu(self.fc(self.conv(x)))


def _features_dim(backbone: nn.Module, name: str) -> int:
    dim = getattr(backbone, "n_features", None)
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(
            f"{name} must expose its output size as an int attribute n_features, got {dim!r:.80}"
        )
    return dim


class StreamClassifier(nn.Module):
    """One stream: ``backbone`` on the scene (or on its ``box`` crop) and a linear head.

    With ``box`` set, the model takes the whole scene and reads only the box, so attacks and
    corruptions of the scene reach it exactly as they reach the object stream of a
    :class:`LateFusionClassifier` (an L-inf attack's gradient is zero outside the box, so FGSM on
    the scene equals FGSM on the crop).

    Args:
        backbone: module ``[N, C, h, w] -> [N, F]`` exposing ``n_features = F``.
        n_classes: classes of the head.
        box: ``(top, left, height, width)`` crop of the input, or ``None`` for the whole input.

    Shapes: ``x: [N, C, H, W] -> logits [N, n_classes]``.
    """

    def __init__(self, backbone: nn.Module, n_classes: int, *, box: Sequence[int] | None = None):
        check_type("backbone", backbone, nn.Module)
        check_number("n_classes", n_classes, ge=2, integer=True)
        super().__init__()
        self.backbone = backbone
        self.box: Box | None = None if box is None else _check_box(tuple(box))
        self.head = nn.Linear(_features_dim(backbone, "backbone"), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``[N, F]`` of the (cropped) input."""
        _check_images("x", x)
        if self.box is not None:
            x = crop_box(x, self.box)
        out: torch.Tensor = self.backbone(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, n_classes]`` logits."""
        out: torch.Tensor = self.head(self.features(x))
        return out


class LateFusionClassifier(nn.Module):
    """Two-stream late fusion (the paper's joint classifier).

    ``logits = W_o f_o(crop(scene)) + W_c f_c(scene) + b``: the object backbone reads the object
    box, the context backbone the whole scene, and one linear head reads the concatenated
    features ``[f_o, f_c]``.

    Args:
        object_backbone: ``[N, C, h, w] -> [N, F_o]`` with ``n_features = F_o``.
        context_backbone: ``[N, C, H, W] -> [N, F_c]`` with ``n_features = F_c``.
        n_classes: classes.
        box: ``(top, left, height, width)`` of the object in the scene.

    Shapes: ``scene: [N, C, H, W] -> logits [N, n_classes]``.
    """

    def __init__(
        self,
        object_backbone: nn.Module,
        context_backbone: nn.Module,
        n_classes: int,
        *,
        box: Sequence[int],
    ) -> None:
        check_type("object_backbone", object_backbone, nn.Module)
        check_type("context_backbone", context_backbone, nn.Module)
        check_number("n_classes", n_classes, ge=2, integer=True)
        super().__init__()
        self.object_backbone = object_backbone
        self.context_backbone = context_backbone
        self.box: Box = _check_box(tuple(box))
        self.object_dim = _features_dim(object_backbone, "object_backbone")
        self.context_dim = _features_dim(context_backbone, "context_backbone")
        self.head = nn.Linear(self.object_dim + self.context_dim, n_classes)

    def features(self, scene: torch.Tensor) -> torch.Tensor:
        """Concatenated features ``[N, F_o + F_c]`` (object first)."""
        _check_images("scene", scene)
        f_o = self.object_backbone(crop_box(scene, self.box))
        f_c = self.context_backbone(scene)
        return torch.cat([f_o, f_c], dim=1)

    def forward(self, scene: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, n_classes]`` logits."""
        out: torch.Tensor = self.head(self.features(scene))
        return out

    def stream_weight(self, stream: Literal["object", "context"]) -> torch.Tensor:
        """The fusion weights ``[n_classes, F_stream]`` that read one stream's features."""
        check_choice("stream", stream, ["object", "context"])
        w = self.head.weight
        return w[:, : self.object_dim] if stream == "object" else w[:, self.object_dim :]

    def stream_logits(self, scene: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each stream's additive share of the logits, ``(W_o f_o, W_c f_c)``, each
        ``[N, n_classes]`` (the bias is left out); their sum plus the bias is ``forward``."""
        feats = self.features(scene)
        f_o, f_c = feats[:, : self.object_dim], feats[:, self.object_dim :]
        return f_o @ self.stream_weight("object").T, f_c @ self.stream_weight("context").T


def stream_penalty(
    model: LateFusionClassifier, stream: Literal["object", "context"] = "object"
) -> torch.Tensor:
    """The adversary-aware regularizer ``||theta_stream||^2``: squared L2 norm of the fusion
    weights on the stream a known adversary targets (the paper penalizes the foreground,
    ``L = CE + alpha * ||theta_fg||^2``). Differentiable scalar."""
    check_type("model", model, LateFusionClassifier)
    return model.stream_weight(stream).pow(2).sum()


@grad_enabled("train_head")
def train_head(
    model: StreamClassifier | LateFusionClassifier,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    alpha: float = 0.0,
    penalized_stream: Literal["object", "context"] = "object",
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[float]:
    """Train the linear head of ``model`` on its frozen backbones' features (in place).

    Minimizes ``CE + alpha * ||W_{penalized_stream}||^2`` with Adam; the features are computed
    once (the backbones are not updated, as in the paper's frozen ImageNet/Places CNNs).

    Args:
        model: a :class:`StreamClassifier` or :class:`LateFusionClassifier`.
        inputs: ``[N, C, H, W]`` scenes; ``labels``: ``[N]`` classes.
        epochs, lr, batch_size, weight_decay: the optimization (Adam).
        alpha: weight of the adversary-aware penalty (``>= 0``; fused models only when > 0).
        penalized_stream: the stream whose fusion weights are penalized.
        seed: seeds the batch order.
        show_progress: a bar over the epochs (``None``: only on a terminal).

    Returns:
        The per-epoch mean training objective.
    """
    check_type("model", model, (StreamClassifier, LateFusionClassifier))
    _check_images("inputs", inputs)
    check_type("labels", labels, torch.Tensor)
    if labels.shape != (inputs.shape[0],) or not integer_dtype(labels):
        raise ValueError(
            f"labels must be an integer tensor of shape [{inputs.shape[0]}], got "
            f"{tuple(labels.shape)} ({labels.dtype})"
        )
    check_class_labels("labels", labels, model.head.out_features)
    labels = labels.long()  # int32 / uint8 classes, which the cross-entropy refuses, as int64
    check_finite("inputs", inputs)
    check_number("epochs", epochs, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("weight_decay", weight_decay, ge=0.0)
    check_number("alpha", alpha, ge=0.0)
    check_choice("penalized_stream", penalized_stream, ["object", "context"])
    check_seed(seed)
    if alpha > 0 and not isinstance(model, LateFusionClassifier):
        raise ValueError(
            f"alpha > 0 needs a LateFusionClassifier (a stream to penalize), got alpha={alpha} "
            f"with {type(model).__name__}"
        )
    # frozen backbones in eval mode (training flags restored after): in training mode a
    # BatchNorm normalized each chunk of 1024 by its own statistics and updated its running
    # ones; scenes of another dtype than the model's are named (a TypeError)
    with torch.no_grad(), eval_mode(model), named_input_dtypes(model, ("inputs", inputs)):
        feats = torch.cat(
            [model.features(inputs[i : i + 1024]) for i in range(0, len(inputs), 1024)]
        )
    check_adam_dtype("model", ((f"head.{n}", p) for n, p in model.head.named_parameters()))
    opt = torch.optim.Adam(model.head.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    n = feats.shape[0]
    history: list[float] = []
    for _ in progress(range(epochs), show_progress=show_progress, desc="train_head"):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model.head(feats[idx]), labels[idx])
            if alpha > 0:
                assert isinstance(model, LateFusionClassifier)
                loss = loss + alpha * stream_penalty(model, penalized_stream)
            opt.zero_grad()
            loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
    return history


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of every channel of every image (separable, replicate padding).

    Args:
        x: ``[N, C, H, W]`` images (not modified).
        sigma: standard deviation in pixels (``>= 0``; 0 returns a copy). The kernel spans
            ``+-ceil(3 sigma)`` pixels.

    Returns:
        ``[N, C, H, W]`` blurred images.
    """
    _check_images("x", x)
    check_number("sigma", sigma, ge=0.0)
    check_finite("x", x)
    if sigma == 0:
        return x.clone()
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.reshape(1, 1, 1, -1))
    flat = F.conv2d(flat, kernel.reshape(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


@dataclass
class RobustnessCurves:
    """Accuracy of one model under FGSM, PGD and Gaussian blur.

    Attributes:
        clean: clean accuracy.
        fgsm_eps, fgsm: FGSM radii and accuracies.
        pgd_eps, pgd: PGD radii and accuracies.
        blur_sigmas, blur: blur sigmas and accuracies.
    """

    clean: float
    fgsm_eps: list[float] = field(default_factory=list)
    fgsm: list[float] = field(default_factory=list)
    pgd_eps: list[float] = field(default_factory=list)
    pgd: list[float] = field(default_factory=list)
    blur_sigmas: list[float] = field(default_factory=list)
    blur: list[float] = field(default_factory=list)

    def at(self, kind: Literal["fgsm", "pgd", "blur"], level: float) -> float:
        """Accuracy under ``kind`` at the given eps / sigma (which must have been evaluated)."""
        check_choice("kind", kind, ["fgsm", "pgd", "blur"])
        levels = {"fgsm": self.fgsm_eps, "pgd": self.pgd_eps, "blur": self.blur_sigmas}[kind]
        values = {"fgsm": self.fgsm, "pgd": self.pgd, "blur": self.blur}[kind]
        for lv, v in zip(levels, values, strict=True):
            if math.isclose(lv, level, abs_tol=1e-9):
                return v
        raise ValueError(f"level {level} was not evaluated for {kind}; evaluated: {levels}")


def _levels(name: str, values: Sequence[float]) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(
            f"{name} must be a sequence of numbers, got {type(values).__name__} ({values!r:.80})"
        )
    out = []
    for i, v in enumerate(values):
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # 0-d tensor or array
            v = v.item()
        check_number(f"{name}[{i}]", v, ge=0.0)
        out.append(float(v))
    return out


def robustness_curves(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    fgsm_eps: Sequence[float] = (),
    pgd_eps: Sequence[float] = (),
    blur_sigmas: Sequence[float] = (),
    pgd_steps: int = 10,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    batch_size: int = 512,
) -> RobustnessCurves:
    """Accuracy of ``model`` on ``inputs`` under white-box L-inf FGSM / PGD (gradients taken
    through the whole model, so a fused model's attack perturbs what every stream sees) and
    under Gaussian blur of the whole input.

    Args:
        model: classifier ``[N, C, H, W] -> [N, K]``; attacked and evaluated in eval mode,
            its modes restored afterwards.
        inputs: ``[N, C, H, W]`` clean inputs; ``labels``: ``[N]``.
        fgsm_eps, pgd_eps: L-inf radii.
        blur_sigmas: Gaussian blur sigmas in pixels.
        pgd_steps: PGD iterations (step ``2.5 eps / steps``, no random start).
        clamp: valid input range enforced on adversarial and blurred inputs; ``inputs`` must
            lie in it (``None`` for inputs without one, e.g. normalized images), else even the
            smallest attack or blur would be scored on clamped, not perturbed, inputs.
        batch_size: examples per attack batch.
    """
    check_type("model", model, nn.Module)
    _check_images("inputs", inputs)
    check_number("pgd_steps", pgd_steps, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    f_eps = _levels("fgsm_eps", fgsm_eps)
    p_eps = _levels("pgd_eps", pgd_eps)
    sigmas = _levels("blur_sigmas", blur_sigmas)
    if clamp is not None:
        clamp = check_interval("clamp", clamp)
        if inputs.numel() and not bool(((inputs >= clamp[0]) & (inputs <= clamp[1])).all()):
            raise ValueError(
                f"inputs must lie in clamp {clamp}, got values in "
                f"[{inputs.min().item():.4g}, {inputs.max().item():.4g}]; pass clamp=None "
                "(or the inputs' valid range) for inputs without one"
            )

    def attacked(attack: str, eps: float) -> float:
        correct = 0
        for s in range(0, inputs.shape[0], batch_size):
            xb, yb = inputs[s : s + batch_size], labels[s : s + batch_size]
            with grad_enabled("robustness_curves"):  # the attacks; blur needs no autograd
                if attack == "fgsm":
                    adv = fgsm_attack(model, xb, yb, eps=eps, clamp=clamp)
                else:
                    adv = pgd_attack(model, xb, yb, eps=eps, n_steps=pgd_steps, clamp=clamp)
            with eval_mode(model), torch.no_grad():  # as clean and blurred accuracy are
                correct += int(correct_predictions(model(adv), yb).sum())
        return correct / inputs.shape[0]

    def blurred(sigma: float) -> float:
        xb = gaussian_blur(inputs, sigma)
        if clamp is not None:
            xb = xb.clamp(*clamp)
        return accuracy(model, xb, labels)

    return RobustnessCurves(
        clean=accuracy(model, inputs, labels),
        fgsm_eps=f_eps,
        fgsm=[attacked("fgsm", e) for e in f_eps],
        pgd_eps=p_eps,
        pgd=[attacked("pgd", e) for e in p_eps],
        blur_sigmas=sigmas,
        blur=[blurred(s) for s in sigmas],
    )
