"""ENAS search and random search with weight sharing, and the final evaluation of a cell.

Pham et al. (2018), "Efficient Neural Architecture Search via Parameter Sharing" (ENAS);
Li & Talwalkar (2019), "Random Search and Reproducibility for Neural Architecture Search";
Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438), who find that ENAS does no better than random search with weight sharing.

Both searches share one loop. Every epoch:

1. shared phase: ``shared_steps`` SGD steps on the supernet's weights, each on a training
   minibatch with a cell drawn from the controller (ENAS) or uniformly (random search);
2. controller phase (ENAS only): ``controller_steps`` REINFORCE steps, each on
   ``controller_batch`` sampled cells rewarded by their accuracy with the shared weights on a
   validation minibatch; with a memory buffer, the rewarded cells are offered to the buffer
   from ``memory_fill_epoch`` on and a reconstruction loss on ``memory_batch`` buffered cells
   is added from ``memory_start_epoch`` on.

Derivation (both): ``num_candidates`` cells are drawn (from the trained controller, or
uniformly), scored with the shared weights on the whole validation set, and the best is
chosen. :func:`final_evaluation` retrains the chosen cell from scratch with fresh weights and
returns its test accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_number,
    check_seed,
    check_type,
    detached_input,
    grad_enabled,
    integer_dtype,
    progress,
)

from ..lottery import TrainConfig, accuracy, train
from .controller import ENASController, MemoryBuffer, ReinforceConfig, ReinforceTrainer
from .space import Architecture, CellSpace, random_architectures
from .supernet import FixedCellNet, WeightSharingSupernet, evaluate_architectures

__all__ = [
    "SearchConfig",
    "SearchResult",
    "enas_search",
    "final_evaluation",
    "random_search",
]


@dataclass(frozen=True)
class SearchConfig:
    """The schedule of a weight-sharing search (ENAS or random).

    Attributes:
        epochs: search epochs.
        shared_steps: supernet SGD steps per epoch.
        batch_size: supernet minibatch size.
        shared_lr: supernet SGD learning rate (momentum 0.9, cosine decay over the search).
        shared_grad_clip: clip of the supernet gradient norm.
        hidden: supernet node width.
        controller_hidden: controller LSTM width.
        controller_steps: REINFORCE steps per epoch (ENAS).
        controller_batch: cells sampled per REINFORCE step.
        reward_batch: validation samples per reward minibatch.
        reinforce: the controller's :class:`ReinforceConfig`.
        memory_policy: ``None`` (vanilla ENAS), ``"best"`` or ``"random"`` (see
            :class:`MemoryBuffer`).
        memory_capacity: buffer size.
        memory_batch: buffered cells reconstructed per controller step.
        memory_fill_epoch: first epoch (0-based) whose rewarded cells enter the buffer.
        memory_start_epoch: first epoch whose controller steps add the reconstruction loss.
        num_candidates: cells scored at derivation.
    """

    epochs: int = 10
    shared_steps: int = 50
    batch_size: int = 64
    shared_lr: float = 0.05
    shared_grad_clip: float = 5.0
    hidden: int = 32
    controller_hidden: int = 64
    controller_steps: int = 20
    controller_batch: int = 8
    reward_batch: int = 128
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)
    memory_policy: str | None = None
    memory_capacity: int = 32
    memory_batch: int = 16
    memory_fill_epoch: int = 2
    memory_start_epoch: int = 4
    num_candidates: int = 20

    def __post_init__(self) -> None:
        for name in (
            "epochs",
            "shared_steps",
            "batch_size",
            "hidden",
            "controller_hidden",
            "controller_batch",
            "reward_batch",
            "memory_capacity",
            "memory_batch",
            "num_candidates",
        ):
            check_number(name, getattr(self, name), ge=1, integer=True)
        check_number("controller_steps", self.controller_steps, ge=0, integer=True)
        check_number("memory_fill_epoch", self.memory_fill_epoch, ge=0, integer=True)
        check_number(
            "memory_start_epoch", self.memory_start_epoch, ge=self.memory_fill_epoch, integer=True
        )
        check_number("shared_lr", self.shared_lr, gt=0.0)
        check_number("shared_grad_clip", self.shared_grad_clip, gt=0.0)
        check_type("reinforce", self.reinforce, ReinforceConfig)
        if self.memory_policy is not None:
            check_choice("memory_policy", self.memory_policy, ("best", "random"))


@dataclass
class SearchResult:
    """What a search returns.

    Attributes:
        method: ``"enas"``, ``"enas+memory"`` or ``"random"``.
        best: the chosen cell.
        best_score: its accuracy with the shared weights on the validation set.
        candidates: the cells scored at derivation.
        scores: ``[num_candidates]`` their validation accuracies with the shared weights.
        supernet: the trained shared weights.
        controller: the trained controller (``None`` for random search).
        buffer: the memory buffer (``None`` without one).
        history: per-epoch ``shared_loss``, ``reward``, ``entropy``, ``memory_loss``.
    """

    method: str
    best: Architecture
    best_score: float
    candidates: list[Architecture]
    scores: torch.Tensor
    supernet: WeightSharingSupernet
    controller: ENASController | None
    buffer: MemoryBuffer | None
    history: dict[str, list[float]]


def _check_split(x: Any, y: Any, xname: str, yname: str) -> torch.Tensor:
    """Check ``x [N, ...]`` and ``y [N]``; returns the labels as int64 (class indices of any
    integer dtype are taken)."""
    check_type(xname, x, torch.Tensor)
    check_type(yname, y, torch.Tensor)
    if not x.is_floating_point():
        raise TypeError(f"{xname} must be a floating-point tensor, got {x.dtype}")
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{xname} must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    if y.shape != (len(x),) or not integer_dtype(y):
        raise ValueError(
            f"{yname} must be integer labels of shape ({len(x)},), got {tuple(y.shape)} {y.dtype}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{xname} must be finite, got NaN or inf")
    return y if y.dtype == torch.long else y.long()


def _check_same_kind(x: torch.Tensor, ref: torch.Tensor, name: str, ref_name: str) -> None:
    """``x`` must share ``ref``'s dtype and device (the network is built in them)."""
    if x.dtype != ref.dtype or x.device != ref.device:
        raise TypeError(
            f"{name} must have {ref_name}'s dtype and device ({ref.dtype}, {ref.device}), "
            f"got {x.dtype}, {x.device}"
        )


def _search(
    space: CellSpace,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: SearchConfig | None,
    seed: int,
    use_controller: bool,
    show_progress: bool | None = None,
) -> SearchResult:
    config = SearchConfig() if config is None else config
    check_type("space", space, CellSpace)
    y_train = _check_split(x_train, y_train, "x_train", "y_train")
    y_val = _check_split(x_val, y_val, "x_val", "y_val")
    if x_train[0].numel() != x_val[0].numel():
        raise ValueError(
            f"x_val must have x_train's {x_train[0].numel()} features per sample, "
            f"got {x_val[0].numel()}"
        )
    _check_same_kind(x_val, x_train, "x_val", "x_train")
    # the caller's x_train.grad stays as it is
    x_train, y_train = detached_input(x_train), detached_input(y_train)
    x_val, y_val = detached_input(x_val), detached_input(y_val)
    check_type("config", config, SearchConfig)
    check_seed(seed)
    num_classes = int(max(int(y_train.max()), int(y_val.max())) + 1)
    seeds = torch.randint(0, 2**31 - 1, (4,), generator=torch.Generator().manual_seed(int(seed)))
    s_net, s_ctrl, s_sample, s_data = (int(s) for s in seeds)
    supernet = WeightSharingSupernet(
        space, x_train[0].numel(), hidden=config.hidden, num_classes=num_classes, seed=s_net
    ).to(device=x_train.device, dtype=x_train.dtype)
    gen = torch.Generator().manual_seed(s_sample)
    data_gen = torch.Generator().manual_seed(s_data)
    controller = trainer = buffer = None
    memory = use_controller and config.memory_policy is not None
    if use_controller:
        controller = ENASController(space, hidden=config.controller_hidden, seed=s_ctrl)
        trainer = ReinforceTrainer(controller, config.reinforce)
        if memory:
            assert config.memory_policy is not None
            buffer = MemoryBuffer(config.memory_capacity, policy=config.memory_policy, seed=s_ctrl)
    total = config.epochs * config.shared_steps
    opt = torch.optim.SGD(supernet.parameters(), lr=config.shared_lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    history: dict[str, list[float]] = {
        "shared_loss": [],
        "reward": [],
        "entropy": [],
        "memory_loss": [],
    }
    n_tr, n_val = len(y_train), len(y_val)
    desc = "enas_search" if use_controller else "random_search"
    for epoch in progress(range(config.epochs), show_progress=show_progress, desc=desc):
        supernet.train()
        if controller is not None:
            controller.eval()
            with torch.no_grad():
                archs = controller.sample(config.shared_steps, generator=gen).architectures
        else:
            archs = random_architectures(space, config.shared_steps, generator=gen)
        losses = []
        for arch in archs:
            idx = torch.randint(0, n_tr, (config.batch_size,), generator=data_gen)
            loss = nn.functional.cross_entropy(supernet(x_train[idx], arch), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(supernet.parameters(), config.shared_grad_clip)
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            sched.step()
            losses.append(float(loss.detach()))
        history["shared_loss"].append(sum(losses) / len(losses))
        if controller is None or trainer is None:
            continue
        controller.train()
        stats: dict[str, list[float]] = {"reward": [], "entropy": [], "memory_loss": []}
        for _ in range(config.controller_steps):
            sample = controller.sample(config.controller_batch, generator=gen)
            idx = torch.randint(0, n_val, (min(config.reward_batch, n_val),), generator=data_gen)
            rewards = evaluate_architectures(supernet, sample.architectures, x_val[idx], y_val[idx])
            replay = None
            if buffer is not None:
                if epoch >= config.memory_fill_epoch:
                    buffer.add(sample.architectures, rewards)
                if epoch >= config.memory_start_epoch and len(buffer):
                    replay = buffer.sample(config.memory_batch)
            out = trainer.step(sample, rewards, replay)
            for k in stats:
                stats[k].append(out[k])
        for k, v in stats.items():
            history[k].append(sum(v) / len(v) if v else float("nan"))
    supernet.eval()
    if controller is not None:
        controller.eval()
        with torch.no_grad():
            candidates = controller.sample(config.num_candidates, generator=gen).architectures
    else:
        candidates = random_architectures(space, config.num_candidates, generator=gen)
    scores = evaluate_architectures(supernet, candidates, x_val, y_val)
    best = int(scores.argmax())
    method = "random" if controller is None else ("enas+memory" if memory else "enas")
    return SearchResult(
        method=method,
        best=candidates[best],
        best_score=float(scores[best]),
        candidates=candidates,
        scores=scores,
        supernet=supernet,
        controller=controller,
        buffer=buffer,
        history=history,
    )


@grad_enabled("enas_search")
def enas_search(
    space: CellSpace,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: SearchConfig | None = None,
    *,
    seed: int = 0,
    show_progress: bool | None = None,
) -> SearchResult:
    """ENAS: alternate supernet training on controller-sampled cells and REINFORCE.

    Args:
        space: the cell search space.
        x_train: ``[N, ...]`` inputs that train the shared weights; ``y_train``: ``[N]`` labels.
        x_val: ``[M, ...]`` inputs whose accuracy is the controller's reward and the derivation
            score; ``y_val``: ``[M]`` labels.
        config: the schedule; ``config.memory_policy`` switches memory-buffer training on.
        seed: seed of every random choice (weights, controller, sampling, minibatches).
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        :class:`SearchResult` with the trained controller.
    """
    return _search(
        space,
        x_train,
        y_train,
        x_val,
        y_val,
        config,
        seed,
        use_controller=True,
        show_progress=show_progress,
    )


@grad_enabled("random_search")
def random_search(
    space: CellSpace,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: SearchConfig | None = None,
    *,
    seed: int = 0,
    show_progress: bool | None = None,
) -> SearchResult:
    """Random search with weight sharing: the ENAS loop with uniform cells and no controller.

    Same arguments as :func:`enas_search` (the controller settings are ignored). The supernet
    sees as many steps as ENAS's; derivation scores ``num_candidates`` uniform cells.

    Args:
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    return _search(
        space,
        x_train,
        y_train,
        x_val,
        y_val,
        config,
        seed,
        use_controller=False,
        show_progress=show_progress,
    )


@grad_enabled("final_evaluation")
def final_evaluation(
    space: CellSpace,
    architecture: Architecture,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    hidden: int = 32,
    train_config: TrainConfig | None = None,
    seed: int = 0,
) -> float:
    """Retrain ``architecture`` from scratch (fresh weights) and return its test accuracy.

    Args:
        space: the search space of the cell.
        architecture: the chosen cell.
        x_train: ``[N, ...]`` training inputs; ``y_train``: ``[N]`` labels.
        x_test: ``[M, ...]`` held-out inputs; ``y_test``: ``[M]`` labels.
        hidden: node width of the stand-alone network.
        train_config: the training recipe (default: 1500 SGD steps, lr 0.05, cosine-free
            step decay at 60% and 85%).
        seed: seed of the weights and of the data order.

    Returns:
        Test accuracy in ``[0, 1]``.
    """
    check_type("space", space, CellSpace)
    check_type("architecture", architecture, Architecture)
    architecture.validate(space)
    y_train = _check_split(x_train, y_train, "x_train", "y_train")
    y_test = _check_split(x_test, y_test, "x_test", "y_test")
    _check_same_kind(x_test, x_train, "x_test", "x_train")
    check_number("hidden", hidden, ge=1, integer=True)
    check_seed(seed)
    if train_config is None:
        train_config = TrainConfig(iterations=1500, batch_size=64, lr=0.05, milestones=(900, 1275))
    check_type("train_config", train_config, TrainConfig)
    num_classes = int(max(int(y_train.max()), int(y_test.max())) + 1)
    net = FixedCellNet(
        WeightSharingSupernet(
            space, x_train[0].numel(), hidden=hidden, num_classes=num_classes, seed=int(seed)
        ),
        architecture,
    ).to(device=x_train.device, dtype=x_train.dtype)
    train(net, x_train, y_train, train_config, data_seed=int(seed))
    return accuracy(net, x_test, y_test)
