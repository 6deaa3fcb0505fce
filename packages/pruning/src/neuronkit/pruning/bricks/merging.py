"""Brick merging: weight averaging and task arithmetic of customized bricks.

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective"
(brick operation *merging*): customized bricks are parameter deltas obtained by post-training a
shared base model on a task. They are combined by

- weight averaging (Wortsman et al. 2022, "Model soups"): ``theta = sum_i w_i theta_i / sum w``;
- task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic"): a task vector
  is ``tau_i = theta_i - theta_base`` and ``theta = theta_base + sum_i lambda_i tau_i``
  (``lambda < 0`` removes an ability).

States are ``{name: tensor}`` mappings (``state_dict()``); inputs are never modified.
:func:`customize_brick` builds a brick by fine-tuning a copy of a model on one task with only
the selected parameters trainable.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import torch

from neuronkit.common import check_finite, check_number, check_type, grad_enabled

from .model import BrickTransformer, train_multitask
from .tasks import TaskData

__all__ = [
    "State",
    "average_weights",
    "customize_brick",
    "task_arithmetic",
    "task_vector",
]

#: a model's parameters and buffers by name.
State = Mapping[str, torch.Tensor]


def _check_state(name: str, state: object) -> None:
    check_type(name, state, Mapping)
    assert isinstance(state, Mapping)
    for key, value in state.items():
        check_type(f"{name}[{key!r}]", value, torch.Tensor)


def _check_same_keys(ref_name: str, ref: State, name: str, other: State) -> None:
    if set(ref) != set(other):
        missing = sorted(set(ref) ^ set(other))[:5]
        raise ValueError(f"{name} must have the same keys as {ref_name}, differing: {missing}")
    for key in ref:
        if ref[key].shape != other[key].shape:
            raise ValueError(
                f"{name}[{key!r}] must have shape {tuple(ref[key].shape)} like {ref_name}, got "
                f"{tuple(other[key].shape)}"
            )


def task_vector(base: State, finetuned: State) -> dict[str, torch.Tensor]:
    """``tau = finetuned - base`` for every floating-point entry (others are left out).

    Args:
        base: the shared starting state.
        finetuned: the state after post-training (same keys and shapes).

    Returns:
        ``{name: delta}`` for the floating-point tensors.
    """
    _check_state("base", base)
    _check_state("finetuned", finetuned)
    _check_same_keys("base", base, "finetuned", finetuned)
    out = {}
    for key, b in base.items():
        if b.is_floating_point():
            out[key] = finetuned[key].detach().clone() - b.detach()
    return out


def task_arithmetic(
    base: State, vectors: Sequence[State], scales: float | Sequence[float] = 1.0
) -> dict[str, torch.Tensor]:
    """``theta = base + sum_i lambda_i tau_i`` (task arithmetic).

    Args:
        base: the shared starting state.
        vectors: task vectors (:func:`task_vector`); a key absent from a vector means a zero
            delta, a key absent from ``base`` is an error.
        scales: one ``lambda`` for all vectors or one per vector.

    Returns:
        a new state with ``base``'s keys (non-float entries copied unchanged).
    """
    _check_state("base", base)
    check_type("vectors", vectors, Sequence)
    one = isinstance(scales, numbers.Real)  # numpy scalars too
    lambdas = [cast(float, scales)] * len(vectors) if one else list(cast(Sequence[float], scales))
    if len(lambdas) != len(vectors):
        raise ValueError(
            f"scales must be one number or one per vector ({len(vectors)}), got {len(lambdas)}"
        )
    for i, lam in enumerate(lambdas):
        check_number(f"scales[{i}]", lam)
    out = {k: v.detach().clone() for k, v in base.items()}
    for i, (vec, lam) in enumerate(zip(vectors, lambdas)):
        _check_state(f"vectors[{i}]", vec)
        for key, delta in vec.items():
            if key not in out:
                raise ValueError(f"vectors[{i}] has key {key!r} that base lacks")
            if delta.shape != out[key].shape:
                raise ValueError(
                    f"vectors[{i}][{key!r}] must have shape {tuple(out[key].shape)}, got "
                    f"{tuple(delta.shape)}"
                )
            if not out[key].is_floating_point():
                raise ValueError(f"vectors[{i}][{key!r}] targets a non-float entry of base")
            check_finite(f"vectors[{i}][{key!r}]", delta)
            out[key] = out[key] + float(lam) * delta.to(out[key].dtype)
    return out


def average_weights(
    states: Sequence[State], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Weighted average ``sum_i w_i theta_i / sum_i w_i`` of states with identical layout.

    Args:
        states: one or more states (same keys and shapes; one state is returned as a copy).
        weights: non-negative weights with a positive sum (default: uniform).

    Returns:
        the averaged state (non-float entries are taken from ``states[0]``).
    """
    check_type("states", states, Sequence)
    if len(states) < 1:
        raise ValueError("states must hold at least one state, got 0")
    for i, s in enumerate(states):
        _check_state(f"states[{i}]", s)
        if i:
            _check_same_keys("states[0]", states[0], f"states[{i}]", s)
    w = [1.0] * len(states) if weights is None else list(weights)
    if len(w) != len(states):
        raise ValueError(f"weights must have one entry per state ({len(states)}), got {len(w)}")
    for i, wi in enumerate(w):
        check_number(f"weights[{i}]", wi, ge=0.0)
    total = float(sum(w))
    if total <= 0:
        raise ValueError(f"weights must have a positive sum, got {total}")
    out = {}
    for key, ref in states[0].items():
        if not ref.is_floating_point():
            out[key] = ref.detach().clone()
            continue
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for s, wi in zip(states, w):
            acc += float(wi) * s[key].detach().double()
        out[key] = (acc / total).to(ref.dtype)
    return out


@grad_enabled("customize_brick")
def customize_brick(
    model: BrickTransformer,
    data: TaskData,
    *,
    trainable: Callable[[str], bool] = lambda name: ".ffn." in name,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    show_progress: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Post-train a copy of ``model`` on ``data`` and return the brick as a task vector.

    Only parameters whose name satisfies ``trainable`` are updated (default: the FFN layers),
    so the brick is a delta on those parameters; ``model`` is not modified.

    Args:
        model: the base :class:`BrickTransformer`.
        data: the customization task's :class:`TaskData`.
        trainable: predicate on parameter names.
        steps, batch_size, lr, seed, show_progress: see
            :func:`~neuronkit.pruning.bricks.model.train_multitask` (no weight decay, warm-up of
            ``steps // 10``).

    Returns:
        ``{name: delta}`` over the trainable parameters.
    """
    check_type("model", model, BrickTransformer)
    if not callable(trainable):
        raise TypeError(
            f"trainable must be callable on parameter names, got {type(trainable).__name__}"
        )
    tuned = copy.deepcopy(model)
    names = [n for n, _ in tuned.named_parameters() if trainable(n)]
    if not names:
        raise ValueError("trainable must select at least one parameter, selected none")
    named = dict(tuned.named_parameters())
    for n, p in named.items():
        p.requires_grad_(n in names)
    train_multitask(
        tuned,
        data,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=0.0,
        warmup=max(1, steps // 10),
        seed=seed,
        parameters=[named[n] for n in names],
        show_progress=show_progress,
    )
    base = dict(model.named_parameters())
    return {n: named[n].detach().clone() - base[n].detach() for n in names}
