"""Activation maximization: synthesize inputs that drive a unit, channel or class.

Erhan, Bengio, Courville & Vincent (2009); Simonyan, Vedaldi & Zisserman (2014); Yosinski,
Clune, Nguyen, Fuchs & Lipson (2015); Nguyen, Yosinski & Clune (2016, "Multifaceted Feature
Visualization"); Olah, Mordvintsev & Schubert (2017, "Feature Visualization").

:func:`maximize_activation` runs gradient ascent on an image parameterization
(:mod:`.params`) so that ``objective(model(transform(image)))`` grows, while regularizers
(:mod:`.regularizers`) keep the image natural::

    from neuronkit.interpretability.visualization import (
        CenterBias, L2, TotalVariation, class_logit, maximize_activation, standard_transforms)

    result = maximize_activation(
        model, class_logit(3), shape=(1, 1, 20, 20), param="fourier",
        transforms=standard_transforms(), regularizers=[L2(0.1), TotalVariation(0.5)],
        steps=256, lr=0.05, seed=0)
    result.image          # [1, 1, 20, 20]
    result.activation     # [1] objective of the final image (no transform)

Objectives name a layer by its ``named_modules`` path (``None`` is the model's output) and
reduce its activation to one number per batch item; they add, subtract and scale
(``channel("conv2", 3) - 0.5 * channel("conv2", 5)``). Intermediate activations are read
with :class:`~neuronkit.interpretability.hooks.LayerRecorder`, whose hooks are removed when
the call returns *or raises* (a stale hook left by a failed visualization silently changes
every later forward pass: a known pitfall of Lucent). The model's parameters never receive
gradients (``.grad`` is untouched) and its train/eval mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_number,
    check_seed,
    check_type,
    eval_mode,
    grad_enabled,
    parameter_dtype,
    progress,
)

from ..hooks import (
    LayerRecorder,
    call_model,
    get_layer,
    model_device,
    unit_axis,
)
from .params import ImageParam, image_param
from .regularizers import Regularizer
from .transforms import Compose, check_transform

__all__ = [
    "ActivationMaximization",
    "Objective",
    "channel",
    "class_logit",
    "maximize_activation",
    "objective_values",
    "unit",
]

Activations = Mapping[str | None, torch.Tensor]
TransformFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class _MissingActivation(KeyError):
    """A layer an :class:`Objective` reads is missing from its activations (a ``KeyError``, as
    the lookup raised before, whose message is printed as is rather than quoted)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Objective:
    """A scalar per batch item computed from the activations of some layers.

    Args:
        fn: ``fn(activations) -> [B]`` where ``activations[layer]`` is the output of each
            layer in ``layers`` (``None``: the model's output) for the batch.
        layers: the layers ``fn`` reads.
        description: a readable name (``repr``).

    Objectives combine: ``a + b``, ``a - b``, ``2.0 * a``, ``-a``.
    """

    def __init__(
        self,
        fn: Callable[[Activations], torch.Tensor],
        layers: Sequence[str | None],
        description: str = "objective",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(
                "layers must be a non-empty sequence of layer names (None: output), got "
                f"{layers!r:.80}"
            )
        for i, layer in enumerate(layers):
            if layer is not None:
                check_type(f"layers[{i}]", layer, str)
        self.fn = fn
        self.layers: tuple[str | None, ...] = tuple(dict.fromkeys(layers))
        self.description = str(description)

    def __call__(self, activations: Activations) -> torch.Tensor:
        if not isinstance(activations, Mapping):
            raise TypeError(
                "activations must be a mapping of layer name (None: the model's output) to "
                f"its activation tensor, got {type(activations).__name__}"
            )
        missing = [layer for layer in self.layers if layer not in activations]
        if missing:
            raise _MissingActivation(
                f"activations must hold every layer that {self.description} reads: missing "
                f"{_layer_names(missing)} (available: {_layer_names(list(activations))})"
            )
        for layer in self.layers:
            if not isinstance(activations[layer], torch.Tensor):
                raise TypeError(
                    f"activations[{layer!r}] must be a Tensor, got "
                    f"{type(activations[layer]).__name__}"
                )
        value = self.fn(activations)
        if not isinstance(value, torch.Tensor) or value.ndim != 1:
            raise ValueError(
                f"objective {self.description!r} must return one value per batch item [B], got "
                f"{getattr(value, 'shape', type(value).__name__)}"
            )
        return value

    def __add__(self, other: Objective) -> Objective:
        check_type("other", other, Objective)
        return Objective(
            lambda a: self(a) + other(a),
            [*self.layers, *other.layers],
            f"({self.description} + {other.description})",
        )

    def __sub__(self, other: Objective) -> Objective:
        check_type("other", other, Objective)
        return Objective(
            lambda a: self(a) - other(a),
            [*self.layers, *other.layers],
            f"({self.description} - {other.description})",
        )

    def __mul__(self, factor: float) -> Objective:
        check_number("factor", factor)
        return Objective(
            lambda a: float(factor) * self(a), self.layers, f"{factor:g} * {self.description}"
        )

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __repr__(self) -> str:
        return f"Objective({self.description})"


def _scalar(value: Any) -> Any:
    """A 0-d array or tensor as its Python number (``x.argmax()`` as an index); anything else
    as it is."""
    return value.item() if getattr(value, "ndim", None) == 0 and hasattr(value, "item") else value


def _layer_label(layer: str | None) -> str:
    return "output" if layer is None else repr(layer)


def _layer_names(layers: Sequence[Any]) -> str:
    """``['conv', output]``: layer names with ``None`` as the model's output."""
    return "[" + ", ".join(_layer_label(layer) for layer in layers) + "]"


def unit(layer: str | None, index: int | Sequence[int]) -> Objective:
    """The activation of one unit of ``layer`` (``None``: the model's output).

    Args:
        layer: submodule name (as in ``model.named_modules()``) or ``None``.
        index: index into one item's activation: an int (a feature of a ``[B, F]`` output, or
            a flat index into ``[C, H, W]``) or a tuple such as ``(channel, y, x)``.
    """
    if layer is not None:
        check_type("layer", layer, str)
    index = _scalar(index)
    if isinstance(index, numbers.Integral) and not isinstance(index, bool):  # np.int64 too
        idx: tuple[int, ...] = (int(index),)
    elif isinstance(index, Sequence) and index and not isinstance(index, (str, bytes)):
        values = [_scalar(v) for v in index]
        for i, v in enumerate(values):
            check_number(f"index[{i}]", v, integer=True)
        idx = tuple(int(v) for v in values)
    else:
        raise TypeError(f"index must be an int or a non-empty tuple of ints, got {index!r:.80}")

    def fn(acts: Activations) -> torch.Tensor:
        a = acts[layer]
        item_shape = tuple(a.shape[1:])
        if len(idx) == 1 and a.ndim > 2:
            flat = a.reshape(a.shape[0], -1)
            if not -flat.shape[1] <= idx[0] < flat.shape[1]:
                raise ValueError(
                    f"index must be < {flat.shape[1]} (flat index into {_layer_label(layer)} "
                    f"of item shape {item_shape}), got {idx[0]}"
                )
            return flat[:, idx[0]]
        if len(idx) != len(item_shape) or any(not -s <= i < s for i, s in zip(idx, item_shape)):
            raise ValueError(
                f"index must address one unit of {_layer_label(layer)} with item shape "
                f"{item_shape}, got {idx}"
            )
        key: tuple[slice | int, ...] = (slice(None), *idx)
        return a[key]

    return Objective(fn, [layer], f"unit({_layer_label(layer)}, {idx if len(idx) > 1 else idx[0]})")


def channel(layer: str | None, index: int, *, dim: int = 1) -> Objective:
    """Mean activation of channel ``index`` of ``layer`` over its spatial positions.

    ``dim`` is the channel axis of the ``[B, ...]`` activation: ``1`` for ``[B, C, H, W]``
    or ``[B, F]`` (the default), ``-1`` for channels-last ``[B, H, W, C]`` (ConvNeXt blocks)
    or tokens ``[B, T, D]`` (ViT). The mean runs over every other non-batch dimension; for
    ``[B, F]`` it is the feature ``index`` itself.
    """
    if layer is not None:
        check_type("layer", layer, str)
    index = _scalar(index)
    check_number("index", index, ge=0, integer=True)
    unit_axis(dim)
    c = int(index)

    def fn(acts: Activations) -> torch.Tensor:
        a = acts[layer]
        shape = tuple(a.shape)
        axis = unit_axis(dim, a.ndim, f"{_layer_label(layer)} of shape {shape}")
        if c >= a.shape[axis]:
            raise ValueError(
                f"index must be a channel of {_layer_label(layer)} (size {a.shape[axis]} along "
                f"dim {dim}, shape {shape}), got {c}"
            )
        sel = a.select(axis, c)
        if not (sel.is_floating_point() or sel.is_complex()):  # an integer or bool layer
            sel = sel.to(torch.get_default_dtype())  # mean() takes no integer tensor
        return sel.reshape(sel.shape[0], -1).mean(1)

    on = "" if dim == 1 else f", dim={dim}"
    return Objective(fn, [layer], f"channel({_layer_label(layer)}, {c}{on})")


def class_logit(index: int, layer: str | None = None) -> Objective:
    """The logit (pre-softmax score) of class ``index``: the paper's output-neuron objective.

    ``layer`` defaults to the model's output; name the logit layer if the model ends with a
    softmax.
    """
    index = _scalar(index)
    check_number("index", index, ge=0, integer=True)
    obj = unit(layer, int(index))
    obj.description = f"class_logit({int(index)})"
    return obj


@dataclass
class ActivationMaximization:
    """Result of :func:`maximize_activation`.

    Attributes:
        image: ``[B, C, H, W]`` the optimized images (detached).
        activation: ``[B]`` objective of each final image, without transforms.
        initial_activation: ``[B]`` objective of the starting images, without transforms.
        history: mean (over the batch) objective of the transformed image at each step.
        snapshots: ``[(step, image)]`` every ``record_every`` steps (empty if 0).
        param: the optimized parameterization (a copy; the one passed in is not modified).
    """

    image: torch.Tensor
    activation: torch.Tensor
    initial_activation: torch.Tensor
    history: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    param: ImageParam | None = None


@contextlib.contextmanager
def _recording(model: nn.Module, layers: Sequence[str | None]) -> Iterator[LayerRecorder | None]:
    names = [layer for layer in layers if layer is not None]
    if not names:
        yield None
        return
    with LayerRecorder(model, names, detach=False) as rec:
        yield rec


def _forward(
    model: nn.Module, x: torch.Tensor, rec: LayerRecorder | None, objective: Objective
) -> torch.Tensor:
    out = call_model(model, x)
    acts: dict[str | None, torch.Tensor] = {}
    if None in objective.layers:
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"model must return a tensor to use an objective on its output, got "
                f"{type(out).__name__}; name a layer instead"
            )
        acts[None] = out
    if rec is not None:
        for name in rec.layers:
            if name not in rec.activations:
                raise RuntimeError(f"layer {name!r} did not run in the model's forward pass")
            acts[name] = rec.activations[name]
    return objective(acts)


def _check_model_objective(model: nn.Module, objective: Objective) -> None:
    check_type("model", model, nn.Module)
    check_type("objective", objective, Objective)
    for layer in objective.layers:
        if layer is not None:
            get_layer(model, layer)  # raises a ValueError naming close matches


def objective_values(
    model: nn.Module,
    inputs: torch.Tensor,
    objective: Objective,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """``objective`` of every input, ``[N]`` (eval mode, no gradients, hooks removed).

    Args:
        model: the network.
        inputs: ``[N, ...]`` inputs.
        objective: what to measure (e.g. :func:`class_logit`).
        batch_size: inputs per forward pass.
    """
    _check_model_objective(model, objective)
    check_type("inputs", inputs, torch.Tensor)
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty batch [N, ...], got {tuple(inputs.shape)}")
    check_finite("inputs", inputs)
    check_number("batch_size", batch_size, ge=1, integer=True)
    values = []
    with eval_mode(model), torch.no_grad(), _recording(model, objective.layers) as rec:
        for start in range(0, inputs.shape[0], batch_size):
            values.append(_forward(model, inputs[start : start + batch_size], rec, objective))
    return torch.cat(values).detach()


@grad_enabled("maximize_activation")
def maximize_activation(
    model: nn.Module,
    objective: Objective,
    *,
    param: ImageParam | Literal["pixel", "fourier"] = "pixel",
    shape: Sequence[int] | None = None,
    init: torch.Tensor | None = None,
    transforms: TransformFn | Sequence[TransformFn] | None = None,
    regularizers: Sequence[Regularizer] = (),
    steps: int = 256,
    lr: float = 0.05,
    optimizer: Literal["adam", "sgd"] = "adam",
    seed: int = 0,
    record_every: int = 0,
    show_progress: bool | None = None,
) -> ActivationMaximization:
    """Gradient ascent on an image parameterization to maximize ``objective``.

    Every step renders the image ``x = param()`` (``[B, C, H, W]``), applies the random
    ``transforms`` (fresh draws each step), runs the model, and descends on
    ``-objective(x_t).sum() + sum_r penalty_r(x).sum()``; each regularizer's
    ``filter_gradient`` transforms ``d loss / d x`` on its way back to the parameters (the
    center bias). Batch items are optimized independently (the model must not mix them, e.g.
    batch norm is used in eval mode).

    Args:
        model: any ``nn.Module`` taking ``[B, C, H, W]``; switched to eval mode during the call
            and restored afterwards; its parameters' ``.grad`` are not touched.
        objective: what to maximize (:func:`unit`, :func:`channel`, :func:`class_logit`, or a
            combination).
        param: an :class:`ImageParam` (copied, not modified) or ``"pixel"`` / ``"fourier"``
            (built from ``shape`` or ``init``, values in ``[0, 1]``). The image is optimized
            on the device of the model's first parameter (or buffer).
        shape: ``[B, C, H, W]`` when ``param`` is a name and ``init`` is not given.
        init: start image(s) ``[B, C, H, W]`` when ``param`` is a name (facet-initialized
            optimization starts from a facet's mean image).
        transforms: a transform ``(x, generator) -> x`` or a sequence of them (composed).
        regularizers: :class:`~.regularizers.Regularizer` objects.
        steps: optimization steps.
        lr: learning rate.
        optimizer: ``"adam"`` (default) or ``"sgd"`` (plain gradient ascent).
        seed: seeds the random start and every transform draw.
        record_every: keep a snapshot of the image every this many steps (0: none).
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        :class:`ActivationMaximization`.

    Raises:
        RuntimeError: the objective became NaN or infinite.
    """
    _check_model_objective(model, objective)
    check_number("steps", steps, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_choice("optimizer", optimizer, ["adam", "sgd"])
    check_seed(seed)
    check_number("record_every", record_every, ge=0, integer=True)
    if isinstance(regularizers, Regularizer) or not isinstance(regularizers, Sequence):
        raise TypeError(
            f"regularizers must be a sequence of Regularizer objects, got {regularizers!r:.80}"
        )
    for i, reg in enumerate(regularizers):
        check_type(f"regularizers[{i}]", reg, Regularizer)
    if transforms is None:
        transform: TransformFn | None = None
    elif callable(transforms):
        check_transform("transforms", transforms)
        transform = transforms
    else:
        transform = Compose(list(transforms))  # type: ignore[arg-type]

    gen = torch.Generator().manual_seed(int(seed))
    if isinstance(param, ImageParam):
        if shape is not None or init is not None:
            raise ValueError("shape and init must be None when param is an ImageParam instance")
        image_module = copy.deepcopy(param)
    elif isinstance(param, str):
        check_choice("param", param, ["pixel", "fourier"])
        if init is not None:
            check_type("init", init, torch.Tensor)
            if init.ndim != 4:
                raise ValueError(f"init must be [B, C, H, W], got shape {tuple(init.shape)}")
            shape = tuple(init.shape)
        elif shape is None:
            raise ValueError("shape must be given ([B, C, H, W]) when param is a name and no init")
        image_module = image_param(param, shape, init=init, seed=gen)
    else:
        raise TypeError(
            f"param must be an ImageParam or 'pixel' / 'fourier', got {type(param).__name__}"
        )
    # on the model's device and in its dtype (float64 models too; None: left as it is); for a
    # bfloat16 / float16 model the image is optimized in float32 (Adam's state underflows, and
    # the Fourier spectrum has no complex type, in half precision) and rendered in its dtype
    dtype = parameter_dtype(model)
    low = dtype is not None and dtype.itemsize < 4
    image_module = image_module.to(
        device=model_device(model), dtype=torch.float32 if low else dtype
    )

    def render() -> torch.Tensor:
        image = image_module()
        return image.to(dtype) if low else image

    params = [p for p in image_module.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)

    filters = [
        r for r in regularizers if type(r).filter_gradient is not Regularizer.filter_gradient
    ]
    history: list[float] = []
    snapshots: list[tuple[int, torch.Tensor]] = []
    with eval_mode(model), _recording(model, objective.layers) as rec:
        with torch.no_grad():
            initial = _forward(model, render(), rec, objective).detach()
        for step in progress(
            range(int(steps)), show_progress=show_progress, desc="maximize_activation"
        ):
            fraction = step / int(steps)
            image = render()
            if filters:

                def hook(grad: torch.Tensor, fraction: float = fraction) -> torch.Tensor:
                    out = grad
                    for r in filters:
                        out = r.filter_gradient(out, fraction)
                        if not isinstance(out, torch.Tensor) or out.shape != grad.shape:
                            got = getattr(out, "shape", type(out).__name__)
                            raise ValueError(
                                f"regularizers: {type(r).__name__}.filter_gradient must return "
                                f"a tensor shaped like the gradient {tuple(grad.shape)}, got "
                                f"{got}"
                            )
                    # the gradient's own dtype: a filter run under autocast returns bfloat16
                    return out.to(grad.dtype)

                # a hook on a leaf (PixelImage(value_range=None) renders its parameter
                # itself) would stay for every later step: hook this step's view instead
                if image.is_leaf:
                    image = image.view_as(image)
                image.register_hook(hook)
            x = transform(image, gen) if transform is not None else image
            value = _forward(model, x, rec, objective)
            if value.shape[0] != image.shape[0]:
                raise ValueError(
                    f"objective must give one value per image ({image.shape[0]}), "
                    f"got {value.shape[0]}"
                )
            loss = -value.sum()
            for i, reg in enumerate(regularizers):
                pen = reg.penalty(image, fraction)
                if pen is None:
                    continue
                if not isinstance(pen, torch.Tensor):
                    raise TypeError(
                        f"regularizers[{i}] ({type(reg).__name__}) penalty must return a tensor "
                        f"(a per-image penalty [B]) or None, got {type(pen).__name__}"
                    )
                loss = loss + pen.sum()
            if not bool(torch.isfinite(loss)):
                raise RuntimeError(
                    f"objective became non-finite at step {step} (try a smaller lr or a "
                    "value_range)"
                )
            grads = torch.autograd.grad(loss, params)
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated parameters
            torch.clear_autocast_cache()
            opt.zero_grad(set_to_none=True)
            history.append(float(value.detach().mean()))
            if record_every and (step + 1) % record_every == 0:
                snapshots.append((step + 1, render().detach().clone()))
        with torch.no_grad():
            final_image = render().detach()
            final = _forward(model, final_image, rec, objective).detach()
    return ActivationMaximization(
        image=final_image,
        activation=final,
        initial_activation=initial,
        history=history,
        snapshots=snapshots,
        param=image_module,
    )
