"""Iterative magnitude pruning with rewinding, and its controls.

Frankle, Dziugaite, Roy & Carbin (2019), "Stabilizing the Lottery Ticket Hypothesis"
(arXiv:1903.01611), and (2020) "Linear Mode Connectivity and the Lottery Ticket Hypothesis"
(ICML). Building on Frankle & Carbin (2019), "The Lottery Ticket Hypothesis".

IMP with rewinding to iteration ``k``:

1. Initialize ``W_0``; train the dense network for ``T`` iterations, saving ``W_k`` on the way.
2. Prune ``fraction`` (20%) of the *remaining* prunable weights with the smallest magnitude,
   ranked globally across layers.
3. Reset the surviving weights to ``W_k`` (biases and BatchNorm too, as in open_lth, which
   rewinds the whole state) and train them from iteration ``k`` to ``T`` (the learning-rate
   schedule and the data order resume at ``k``; the optimizer starts fresh).
4. Repeat 2-3 for the requested number of rounds. ``k = 0`` is the original lottery ticket.

Controls: the same mask on a random re-initialization drawn with the model's own initializer
(:func:`reinitialize`; open_lth's ``randomly_reinitialize`` branch trains it from iteration
``k`` by default, from 0 on request), and a random mask with the same per-layer sparsity
rewound to ``W_k`` (:func:`~neuronkit.pruning.lottery.masks.random_masks_like`). Training is
plain minibatch SGD (or Adam) over in-memory tensors with a seeded data order, so two runs differ
only by what is asked to differ (e.g. the data order of the two copies in the stability analysis).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_class_labels,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    eval_mode,
    forked_manual_seed,
    grad_enabled,
    integer_dtype,
    named_input_dtypes,
    progress,
)

from .masks import (
    DEFAULT_PRUNABLE,
    Masks,
    apply_masks,
    attach_masks,
    global_magnitude_prune,
    ones_masks,
)
from .masks import sparsity as _sparsity

__all__ = [
    "IMPResult",
    "TrainConfig",
    "accuracy",
    "clone_state",
    "iterative_magnitude_pruning",
    "reinitialize",
    "train",
    "train_from",
]

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained (the same recipe for every round and control).

    Attributes:
        iterations: total number of optimizer steps ``T``.
        batch_size: minibatch size; the data order is a fresh seeded permutation every epoch.
        lr: peak learning rate.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        momentum: SGD momentum.
        weight_decay: L2 penalty (coupled, as in ``torch.optim.SGD``).
        warmup: linear learning-rate warmup over the first ``warmup`` iterations.
        milestones: iterations at which the learning rate is multiplied by ``gamma``.
        gamma: step decay factor.
    """

    iterations: int
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_number("iterations", self.iterations, ge=1, integer=True)
        check_number("batch_size", self.batch_size, ge=1, integer=True)
        check_number("lr", self.lr, gt=0.0)
        check_choice("optimizer", self.optimizer, ("sgd", "adam"))
        check_number("momentum", self.momentum, ge=0.0, lt=1.0)
        check_number("weight_decay", self.weight_decay, ge=0.0)
        check_number("warmup", self.warmup, ge=0, integer=True)
        check_type("milestones", self.milestones, tuple)
        for m in self.milestones:
            check_number("milestones[i]", m, ge=1, integer=True)
        check_number("gamma", self.gamma, gt=0.0, le=1.0)

    def lr_at(self, iteration: int) -> float:
        """The learning rate used by the step that starts at ``iteration`` (0-based)."""
        scale = min(1.0, (iteration + 1) / self.warmup) if self.warmup else 1.0
        decays = sum(1 for m in self.milestones if iteration >= m)
        return self.lr * scale * self.gamma**decays


def clone_state(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> State:
    """A detached deep copy of a model's ``state_dict`` (or of a state mapping)."""
    if isinstance(model_or_state, nn.Module):
        state: Mapping[str, torch.Tensor] = model_or_state.state_dict()
    elif isinstance(model_or_state, Mapping):
        state = model_or_state
    else:
        raise TypeError(
            f"model_or_state must be an nn.Module or a state mapping, "
            f"got {type(model_or_state).__name__}"
        )
    for key, value in state.items():
        check_type(f"model_or_state[{key!r}]", value, torch.Tensor)
    return {k: v.detach().clone() for k, v in state.items()}


def _load_state(model: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """``model.load_state_dict(state)``; a state that does not fit raises a ``ValueError``
    naming the argument ``name`` (torch's ``RuntimeError`` lists the keys and shapes)."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{name} must be a state_dict of the model: {err}") from None


def _check_data(x: Any, y: Any, xname: str = "x", yname: str = "y") -> torch.Tensor:
    """Check a batch ``x [N, ...]``, ``y [N]``; returns the labels as int64 (class indices of
    any integer dtype are taken, as the cross-entropy and an accuracy read them)."""
    check_type(xname, x, torch.Tensor)
    check_type(yname, y, torch.Tensor)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{xname} must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{yname} must be labels of shape ({x.shape[0]},) matching {xname}, "
            f"got {tuple(y.shape)}"
        )
    if not integer_dtype(y):
        raise TypeError(f"{yname} must be integer class labels (e.g. int64), got {y.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{xname} must be finite, got NaN or inf")
    return y if y.dtype == torch.long else y.long()


def _logits(model: nn.Module, x: torch.Tensor, xname: str) -> Any:
    """``model(x)``; torch's dtype mismatch (float64 inputs of a float32 model) named as
    ``xname`` (a ``TypeError``)."""
    with named_input_dtypes(model, (xname, x)):
        return model(x)


def _check_classes(logits: Any, y: torch.Tensor, yname: str = "y") -> None:
    """Raise unless the model's output of one batch is a tensor of logits ``[B, C]`` and every
    label of ``y [N]`` indexes one of its classes: out-of-range labels fail deep inside the
    loss in training and silently count as errors in an accuracy."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"model must return a tensor of class logits [B, C], got {type(logits).__name__}"
        )
    if logits.ndim != 2:
        raise ValueError(
            f"model must return class logits [B, C] for {yname}, got shape {tuple(logits.shape)}"
        )
    check_class_labels(yname, y, logits.shape[1])


def _batches(n: int, batch_size: int, seed: int, start: int, stop: int) -> Iterator[torch.Tensor]:
    """Index batches for iterations ``start..stop-1`` of the seeded data order."""
    per_epoch = -(-n // batch_size)
    gen = torch.Generator().manual_seed(int(seed))
    epoch = -1
    perm = torch.empty(0, dtype=torch.long)
    for it in range(stop):
        e, j = divmod(it, per_epoch)
        while epoch < e:  # draw every epoch's permutation, so the order does not depend on start
            perm = torch.randperm(n, generator=gen)
            epoch += 1
        if it >= start:
            yield perm[j * batch_size : (j + 1) * batch_size]


def _seed_step(seed: int, device: torch.device) -> None:
    """``torch.manual_seed(seed)`` for the generators a training step on ``device`` draws from.

    On the CPU only the CPU generator is seeded: ``torch.manual_seed`` also queues a reseed of
    every accelerator not yet started, recording a stack trace for each (several times the cost
    of a small network's training step), and the caller's ``fork_rng`` would not restore those.
    """
    torch.default_generator.manual_seed(seed)
    if device.type != "cpu":
        torch.manual_seed(seed)


@grad_enabled("train")
def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    masks: Masks | None = None,
    data_seed: int = 0,
    start_iteration: int = 0,
    checkpoints: Iterable[int] = (),
    callback: Callable[[int, nn.Module], None] | None = None,
) -> dict[int, State]:
    """Train ``model`` in place from ``start_iteration`` to ``config.iterations`` (cross-entropy).

    Args:
        model: classifier ``[B, ...] -> [B, C]``; trained in place.
        x: training inputs ``[N, ...]`` in the model's dtype (float64 data for a float32
            model is a ``TypeError`` naming ``x``; convert it, e.g. ``x.float()``).
        y: training labels ``[N]``: class indices of any integer dtype.
        config: the recipe (:class:`TrainConfig`).
        masks: pruning masks enforced during training (see
            :func:`~neuronkit.pruning.lottery.masks.attach_masks`); the hook is removed after.
        data_seed: seed of the data order and of dropout: iteration ``t`` always sees the same
            minibatch and dropout masks for a given seed, whatever ``start_iteration`` is (the
            global RNG is seeded per step inside a fork; the caller's state is restored).
        start_iteration: resume the schedule and the data order here (rewinding to ``k``).
        checkpoints: iterations ``t`` (``start_iteration <= t <= T``) whose state (after ``t``
            steps) to return; the point of the first run of IMP is ``W_k``.
        callback: called as ``callback(t, model)`` after each step ``t`` (1-based count).

    Returns:
        ``{t: state_dict copy}`` for every requested checkpoint. The model is left in eval
        mode.
    """
    check_type("model", model, nn.Module)
    y = _check_data(x, y)
    x, y = detached_input(x), detached_input(y)  # the caller's x.grad stays as it is
    check_type("config", config, TrainConfig)
    check_number("data_seed", data_seed, ge=0, integer=True)
    check_number("start_iteration", start_iteration, ge=0, le=config.iterations, integer=True)
    if not isinstance(checkpoints, Iterable):
        raise TypeError(f"checkpoints must be an iterable of iterations, got {checkpoints!r:.80}")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be a callable fn(t, model) or None, got {type(callback).__name__}"
        )
    wanted = set()
    for c in checkpoints:
        check_number("checkpoints[i]", c, ge=start_iteration, le=config.iterations, integer=True)
        wanted.add(int(c))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters (every requires_grad is False)")
    # the optimizer first: a failure here leaves the model without the masks' hook
    opt: torch.optim.Optimizer
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:
        # the fused kernel on the CPU: torch's unfused Adam takes the square root of exp_avg_sq
        # with a vector-math routine that is ~25x slower on exact zeros (a masked weight's)
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        opt = torch.optim.Adam(
            params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None
        )
    device = params[0].device
    handle = attach_masks(model, masks) if masks is not None else None
    # the masks were just applied in place: drop an outer autocast's cached copies of the weights
    torch.clear_autocast_cache()
    saved: dict[int, State] = {}
    try:
        if start_iteration in wanted:
            saved[start_iteration] = clone_state(model)
        model.train()
        batches = _batches(len(y), config.batch_size, data_seed, start_iteration, config.iterations)
        # the caller's global RNG state comes back afterwards (on the CPU, where only the CPU
        # generator is seeded, without asking for the CUDA devices: a driver query per call)
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else None):
            for it, idx in enumerate(batches, start=start_iteration):
                # dropout (any draw on the global RNG) at step t: from (data_seed, t) only
                _seed_step((int(data_seed) * 2**32 + it) % 2**63, device)
                for group in opt.param_groups:
                    group["lr"] = config.lr_at(it)
                xb, yb = x[idx].to(device), y[idx].to(device)
                logits = _logits(model, xb, "x")
                if it == start_iteration:
                    _check_classes(logits, y)
                loss = nn.functional.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # drop an outer autocast's cached low-precision copies of the updated weights
                torch.clear_autocast_cache()
                value = loss.item()  # one read of the loss (cheaper than torch.isfinite)
                if not math.isfinite(value):
                    raise FloatingPointError(f"training diverged at iteration {it} (loss {value})")
                if callback is not None:
                    callback(it + 1, model)
                if it + 1 in wanted:
                    if masks is not None:  # the state the masked network computes with
                        apply_masks(model, masks)
                    saved[it + 1] = clone_state(model)
    finally:
        if handle is not None:
            handle.remove()
            apply_masks(model, handle.masks)
        model.eval()
    return saved


@torch.no_grad()
def accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024
) -> float:
    """Top-1 accuracy in ``[0, 1]`` of ``model`` (in eval mode) on ``x [N, ...]`` (in the
    model's dtype), ``y [N]`` (class indices of any integer dtype)."""
    return _accuracy(model, x, y, batch_size)


def _accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    xname: str = "x",
    yname: str = "y",
) -> float:
    """:func:`accuracy`, its errors naming ``x`` and ``y`` as the caller's arguments."""
    check_type("model", model, nn.Module)
    y = _check_data(x, y, xname, yname)
    check_number("batch_size", batch_size, ge=1, integer=True)
    correct = 0
    with eval_mode(model):
        for i in range(0, len(y), batch_size):
            logits = _logits(model, x[i : i + batch_size], xname)
            if i == 0:
                _check_classes(logits, y, yname)
            correct += int(correct_predictions(logits, y[i : i + batch_size]).sum())
    return correct / len(y)


def reinitialize(
    model: nn.Module, *, seed: int, init: Callable[[nn.Module], None] | None = None
) -> nn.Module:
    """A copy of ``model`` with every layer re-drawn by its ``reset_parameters`` (or
    ``_reset_parameters``, e.g. ``nn.MultiheadAttention``) and then by ``init``, seeded.

    The "random reinitialization" control: the ticket's mask on a fresh ``W_0'`` drawn from
    the distribution ``W_0`` came from. open_lth (``lottery/branch/randomly_reinitialize.py``)
    builds a new model with the experiment's own initializer (e.g. ``kaiming_normal``), so a
    model that was not initialized by PyTorch's defaults must pass that initializer as
    ``init``: it is applied to every submodule (``fresh.apply(init)``) after the reset, as
    ``model.apply(initializer)`` is in open_lth's models. The global RNG is forked, so calling
    this does not change other random streams. Raises a ``ValueError`` naming any parameter no
    ``reset_parameters`` re-draws (e.g. a positional embedding held directly by a model): its
    initial distribution is the model's own choice.

    Args:
        model: the network (not modified).
        seed: seed of the fresh draw.
        init: optional per-module initializer (``fn(module)``), applied after the reset.
    """
    check_type("model", model, nn.Module)
    check_seed(seed)
    if init is not None and not callable(init):
        raise TypeError(f"init must be a callable fn(module) or None, got {type(init).__name__}")
    fresh = copy.deepcopy(model)
    redrawn: set[int] = set()
    with forked_manual_seed(seed):
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
            if callable(reset):
                reset()
                redrawn.update(id(p) for p in m.parameters(recurse=False))
        if init is not None:
            fresh.apply(init)
    left = [name for name, p in fresh.named_parameters() if id(p) not in redrawn]
    if left:
        raise ValueError(
            f"model: no reset_parameters re-draws {left}; re-draw them yourself (the control "
            "needs a fresh W_0' everywhere)"
        )
    return fresh


@grad_enabled("train_from")
def train_from(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    masks: Masks | None = None,
    start_iteration: int = 0,
    data_seed: int = 0,
) -> nn.Module:
    """Train a copy of ``model`` loaded with ``state`` (``W_k``) from ``start_iteration`` to ``T``.

    The building block of every branch: a rewound ticket (IMP mask, ``W_k``, ``k``), the
    random-mask control (random mask, ``W_k``, ``k``), the reinit control (IMP mask, fresh
    ``W_0'``, ``k`` as in open_lth, or 0). ``model`` and ``state`` are not modified.

    Returns:
        The trained copy (eval mode, masks applied).
    """
    check_type("model", model, nn.Module)
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a state_dict mapping, got {type(state).__name__}")
    net = copy.deepcopy(model)
    _load_state(net, clone_state(state), "state")
    train(
        net,
        x,
        y,
        config,
        masks=masks,
        data_seed=data_seed,
        start_iteration=start_iteration,
    )
    return net


@dataclass
class IMPResult:
    """What :func:`iterative_magnitude_pruning` found.

    Attributes:
        rewind_iteration: ``k``.
        masks: ``masks[r]`` is the mask trained in round ``r`` (round 0 is dense: all True).
        sparsities: fraction of prunable weights removed in each round.
        accuracies: evaluation accuracy after training in each round (empty without eval data).
        init_state: ``W_0``.
        rewind_state: ``W_k``.
        trained_states: the trained state of each round (round 0: the dense network).
    """

    rewind_iteration: int
    masks: list[Masks] = field(default_factory=list)
    sparsities: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    init_state: State = field(default_factory=dict)
    rewind_state: State = field(default_factory=dict)
    trained_states: list[State] = field(default_factory=list)

    @property
    def final_masks(self) -> Masks:
        """The masks of the last round (the sparsest ticket)."""
        return self.masks[-1]


@grad_enabled("iterative_magnitude_pruning")
def iterative_magnitude_pruning(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    rounds: int,
    rewind_iteration: int = 0,
    fraction: float = 0.2,
    data_seed: int = 0,
    x_eval: torch.Tensor | None = None,
    y_eval: torch.Tensor | None = None,
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_PRUNABLE,
    ignore: Iterable[str] = (),
    dense: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    show_progress: bool | None = None,
) -> IMPResult:
    """Iterative magnitude pruning with rewinding to iteration ``k`` (global, 20% per round).

    Args:
        model: the network at initialization (``W_0``); not modified.
        x: training inputs ``[N, ...]``; y: labels ``[N]``.
        config: training recipe for every round (``T = config.iterations``).
        rounds: pruning rounds after the dense run (sparsity ``1 - (1 - fraction) ** rounds``).
        rewind_iteration: ``k`` in ``[0, T]``; 0 is the original lottery-ticket reset to
            ``W_0``.
        fraction: fraction of the remaining weights pruned per round, in ``(0, 1)``.
        data_seed: the data order (the same in every round).
        x_eval, y_eval: optional evaluation split; accuracies are recorded when given.
        layer_types, ignore: which weights are prunable (see
            :func:`~neuronkit.pruning.lottery.masks.prunable_weights`).
        dense: optional ``(trained_state, W_k)`` of a dense run already made with the same
            ``W_0``, config and data order (shares round 0 between IMP runs with different
            ``k``).
        show_progress: a bar over the pruning rounds on stderr: ``None`` (default) only on a
            terminal, or ``True`` / ``False``.

    Returns:
        :class:`IMPResult` with ``rounds + 1`` entries per list.
    """
    check_type("model", model, nn.Module)
    y = _check_data(x, y)
    x, y = detached_input(x), detached_input(y)  # once, not in every round's train
    check_type("config", config, TrainConfig)
    check_number("rounds", rounds, ge=0, integer=True)
    check_number("rewind_iteration", rewind_iteration, ge=0, le=config.iterations, integer=True)
    check_number("fraction", fraction, gt=0.0, lt=1.0)
    if (x_eval is None) != (y_eval is None):
        raise ValueError("x_eval and y_eval must be given together, got only one of them")
    if x_eval is not None:
        y_eval = _check_data(x_eval, y_eval, "x_eval", "y_eval")
    k = int(rewind_iteration)
    result = IMPResult(rewind_iteration=k, init_state=clone_state(model))
    masks = ones_masks(model, layer_types=layer_types, ignore=ignore)
    if not masks:
        raise ValueError(
            f"layer_types: the model has no prunable weight of {[t.__name__ for t in layer_types]}"
            " outside ignore"
        )
    net = copy.deepcopy(model)
    if dense is not None:
        if len(dense) != 2:
            raise ValueError(f"dense must be (trained_state, rewind_state), got {len(dense)} items")
        _load_state(net, clone_state(dense[0]), "dense[0]")
        result.rewind_state = clone_state(dense[1])
    else:
        saved = train(net, x, y, config, data_seed=data_seed, checkpoints=(k,))
        result.rewind_state = saved[k]
    result.masks.append(masks)
    result.sparsities.append(0.0)
    result.trained_states.append(clone_state(net))
    if x_eval is not None and y_eval is not None:
        result.accuracies.append(_accuracy(net, x_eval, y_eval, 1024, "x_eval", "y_eval"))
    for _ in progress(range(int(rounds)), show_progress=show_progress, desc="imp_rounds"):
        masks = global_magnitude_prune(net, masks, fraction)
        net = train_from(
            model,
            result.rewind_state,
            x,
            y,
            config,
            masks=masks,
            start_iteration=k,
            data_seed=data_seed,
        )
        result.masks.append(masks)
        result.sparsities.append(_sparsity(masks))
        result.trained_states.append(clone_state(net))
        if x_eval is not None and y_eval is not None:
            result.accuracies.append(_accuracy(net, x_eval, y_eval, 1024, "x_eval", "y_eval"))
    return result
