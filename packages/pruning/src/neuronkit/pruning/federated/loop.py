"""The federated rounds of HideNseek, the {0,1}-supermask baseline and dense FedAvg.

Vallapuram et al. (2022), "HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign
Supermask". One round: the server broadcasts the global scores; each client copies them into
its local network, trains them for a few local epochs (straight-through estimator, the frozen
weights never change) and uploads only its mask, one bit per masked weight; the server
aggregates the masks by a sample-weighted vote and turns the vote into the next global scores.

- HideNseek (:func:`run_hidenseek`): sign supermask over the SynFlow subnetwork; the vote
  ``v = sum_k n_k sigma_k / sum_k n_k in [-1, 1]`` per unpruned weight gives the global sign
  ``sign(v)`` (a majority vote) and the next scores ``v``, so weights the clients agree
  on are harder to flip than contested ones (a tie keeps the previous sign).
- {0,1} supermask (:func:`run_binary_supermask`): edge-popup top-k masks with the same per-layer
  density; the vote is the fraction of clients keeping each weight.
- Dense FedAvg (:func:`run_fedavg`, McMahan et al., 2017): every weight is trained and sent as a
  float32; the server averages them weighted by sample counts.

The client and server steps are public functions (``*_client_update``, ``aggregate_*``) so the
Flower deployment (:mod:`neuronkit.pruning.federated.flower`) runs exactly the same code; this
in-process loop serves the reproduction and the tests.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_number,
    check_seed,
    check_type,
    grad_enabled,
    integer_dtype,
    progress,
)
from neuronkit.pruning.lottery import TrainConfig, clone_state, train
from neuronkit.pruning.lottery.rewind import _accuracy, _check_data

from .comm import dense_uplink_bits, pack_signs, payload_bits, sign_uplink_bits
from .supermask import BinarySupermask, SignSupermask

__all__ = [
    "ClientData",
    "FederatedHistory",
    "LocalConfig",
    "aggregate_mask_votes",
    "aggregate_sign_votes",
    "binary_client_update",
    "check_clients",
    "fedavg_aggregate",
    "fedavg_client_update",
    "hidenseek_client_update",
    "run_binary_supermask",
    "run_fedavg",
    "run_hidenseek",
]

ClientData = tuple[torch.Tensor, torch.Tensor]
Scores = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LocalConfig:
    """A client's local training in one round.

    Attributes:
        epochs: local epochs over the client's data per round.
        batch_size: minibatch size (a fresh seeded permutation every epoch).
        lr: learning rate of the scores (supermasks) or of the weights (FedAvg).
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``; a fresh optimizer each round.
        momentum: SGD momentum.
        weight_decay: L2 penalty on the trained tensors.
    """

    epochs: int = 2
    batch_size: int = 16
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_number("epochs", self.epochs, ge=1, integer=True)
        check_number("batch_size", self.batch_size, ge=1, integer=True)
        check_number("lr", self.lr, gt=0.0)
        check_choice("optimizer", self.optimizer, ("sgd", "adam"))
        check_number("momentum", self.momentum, ge=0.0, lt=1.0)
        check_number("weight_decay", self.weight_decay, ge=0.0)

    def train_config(self, n_samples: int) -> TrainConfig:
        """The :class:`~neuronkit.pruning.lottery.TrainConfig` for ``n_samples`` local samples."""
        check_number("n_samples", n_samples, ge=1, integer=True)
        steps = self.epochs * math.ceil(n_samples / self.batch_size)
        return TrainConfig(
            iterations=steps,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )


@dataclass
class FederatedHistory:
    """What a federated run returns.

    Attributes:
        method: ``"hidenseek"``, ``"binary_supermask"`` or ``"fedavg"``.
        accuracy: global-model test accuracy after each round (``[rounds]``, in ``[0, 1]``).
        uplink_bits: total bits uploaded by all clients in each round (``[rounds]``), by the
            method's formula (1 bit per masked weight, 32 bits per FedAvg parameter).
        payload_bits: bits the uploaded messages actually occupied in each round (packed
            bits rounded up to whole bytes per client; float32 arrays for FedAvg).
        flips: fraction of global mask entries that changed in each round (supermasks only).
        model: the final global network as a plain ``nn.Module`` with effective weights.
        scores: the final global scores (supermasks) or ``state_dict`` (FedAvg).
    """

    method: str
    accuracy: list[float] = field(default_factory=list)
    uplink_bits: list[int] = field(default_factory=list)
    payload_bits: list[int] = field(default_factory=list)
    flips: list[float] = field(default_factory=list)
    model: nn.Module | None = None
    scores: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        """Accuracy after the last round."""
        if not self.accuracy:
            raise ValueError("history has no rounds")
        return self.accuracy[-1]


def check_clients(clients: Sequence[ClientData], name: str = "clients") -> list[int]:
    """Validate client datasets; return their sizes.

    Every client is an ``(x [N_k, ...] float, y [N_k] integer)`` pair with ``N_k >= 1`` and
    finite inputs in the model's dtype (class indices of any integer dtype). An empty client
    raises ``ValueError`` naming it (before anything is trained).
    """
    if isinstance(clients, (str, bytes)) or not isinstance(clients, Sequence):
        raise TypeError(f"{name} must be a sequence of (x, y) pairs, got {type(clients).__name__}")
    if len(clients) == 0:
        raise ValueError(f"{name} must hold at least one client, got 0")
    sizes = []
    for k, c in enumerate(clients):
        if not isinstance(c, (tuple, list)) or len(c) != 2:
            raise TypeError(f"{name}[{k}] must be an (x, y) pair, got {type(c).__name__}")
        x, y = c
        _check_xy(x, y, f"{name}[{k}]")
        sizes.append(int(x.shape[0]))
    return sizes


def _check_xy(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    check_type(f"{name} x", x, torch.Tensor)
    check_type(f"{name} y", y, torch.Tensor)
    if x.ndim < 2:
        raise ValueError(f"{name} x must be a batch [N, ...], got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has an empty dataset (0 samples); every client needs >= 1 sample")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{name} y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if not integer_dtype(y):
        raise TypeError(f"{name} y must be integer class labels (e.g. int64), got {y.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} x must be finite, got NaN or inf")


def _check_weights(weights: Sequence[float], n: int) -> np.ndarray:
    if isinstance(weights, (str, bytes)):
        raise TypeError(f"weights must be a sequence of numbers, got {type(weights).__name__}")
    try:
        w = np.asarray(list(weights), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"weights must be a sequence of numbers, got {type(weights).__name__} ({err})"
        ) from err
    if w.shape != (n,):
        raise ValueError(f"weights must have one entry per client ({n}), got {w.shape[0]}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


# --------------------------------------------------------------------------- HideNseek


def _check_run(
    clients: Sequence[ClientData],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    rounds: int,
    local: LocalConfig,
    seed: int,
    callback: Any,
) -> list[int]:
    """Validate the arguments shared by the ``run_*`` loops; returns the client sizes."""
    sizes = check_clients(clients)
    _check_data(x_test, y_test, "x_test", "y_test")
    check_number("rounds", rounds, ge=1, integer=True)
    check_type("local", local, LocalConfig)
    check_seed(seed)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be a callable fn(round, accuracy) or None, got "
            f"{type(callback).__name__}"
        )
    return sizes


def _client_seed(seed: int, round_index: int, client: int) -> int:
    """Seed of client ``client``'s data order in round ``round_index`` (distinct per pair)."""
    return int(seed) * 1_000_003 + round_index * 1009 + client


def _train_copy(
    net: nn.Module,
    load: Callable[[Any], object],
    x: torch.Tensor,
    y: torch.Tensor,
    config: LocalConfig,
    seed: int,
    workspace: Any = None,
) -> Any:
    """A client's local round: a deep copy of ``net``, ``load(copy)`` the broadcast state,
    train it on ``(x, y)`` with ``config``; ``net`` itself is not modified.

    ``workspace``: a deep copy of ``net`` made once by a ``run_*`` loop and reused by every
    client instead of a fresh copy each time. ``load`` overwrites everything that training
    changes (the scores of a supermask, every parameter and buffer of a dense model), the
    optimizer is new for each call and gradients are cleared before every backward pass, so
    the result is the same as training a fresh copy.
    """
    _check_xy(x, y, "client")
    check_type("config", config, LocalConfig)
    check_seed(seed)
    local = copy.deepcopy(net) if workspace is None else workspace
    load(local)
    train(local, x, y, config.train_config(len(y)), data_seed=int(seed))
    return local


def _set_scores(scores: Mapping[str, torch.Tensor]) -> Callable[[Any], object]:
    """``load`` for :func:`_train_copy`: copy the broadcast scores into a supermask."""
    return lambda m: m.set_scores(scores)


def _load_state(state: Mapping[str, torch.Tensor]) -> Callable[[Any], object]:
    """``load`` for :func:`_train_copy`: load the broadcast ``state_dict`` into a model."""
    return lambda m: m.load_state_dict(dict(state))


def _signs(local: Any) -> Any:
    return local.signs()


def _masks(local: Any) -> Any:
    return local.binary_masks()


def _round(
    server: Any,
    load: Callable[[Any], object],
    clients: Sequence[tuple[torch.Tensor, torch.Tensor]],
    local: LocalConfig,
    seed: int,
    r: int,
    workspace: Any,
    message: Callable[[Any], Any],
) -> list[Any]:
    """One in-process round: every client trains ``workspace`` from the broadcast (``load``)
    and ``message`` reads its uplink before the next client reuses the network."""
    return [
        message(_train_copy(server, load, x, y, local, _client_seed(seed, r, k), workspace))
        for k, (x, y) in enumerate(clients)
    ]


@grad_enabled("hidenseek_client_update")
def hidenseek_client_update(
    net: SignSupermask,
    global_scores: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    config: LocalConfig,
    *,
    seed: int,
) -> dict[str, torch.Tensor]:
    """One HideNseek client round: train the sign scores locally, return the sign supermask.

    Args:
        net: the shared :class:`SignSupermask` (not modified: a copy is trained).
        global_scores: the broadcast scores ``{name: tensor shaped like the weight}``.
        x: the client's inputs ``[N_k, ...]`` (``N_k >= 1``).
        y: the client's labels ``[N_k]`` (class indices of any integer dtype).
        config: local training recipe.
        seed: seed of the local data order.

    Returns:
        ``{name: int8 [n_kept] of -1/+1}``: the uploaded 1-bit-per-unpruned-weight message.
    """
    check_type("net", net, SignSupermask)
    local = _train_copy(net, lambda m: m.set_scores(global_scores), x, y, config, seed)
    return local.signs()


def aggregate_sign_votes(
    net: SignSupermask,
    signs: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    previous: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """HideNseek server step: sample-weighted sign vote -> next global scores.

    Args:
        net: the shared :class:`SignSupermask` (gives masks and magnitudes; not modified).
        signs: one ``{name: int8 [n_kept]}`` message per client.
        weights: per-client weights (sample counts), ``>= 0``, not all 0.
        previous: the current global scores (breaks exact ties and fills pruned entries).

    Returns:
        ``{name: v}`` over unpruned entries with ``v in [-1, 1]`` the weighted vote; where
        ``v == 0`` the previous sign is kept with a magnitude of ``1e-3``.
    """
    check_type("net", net, SignSupermask)
    if len(signs) == 0:
        raise ValueError("signs must hold at least one client's message, got 0")
    w = _check_weights(weights, len(signs))
    out = {}
    for name in net.names:
        mask = net.mask(name)
        n_kept = int(mask.sum())
        vote = torch.zeros(n_kept, dtype=torch.float64)
        for k, msg in enumerate(signs):
            if name not in msg:
                raise ValueError(f"signs[{k}] lacks the weight {name!r}")
            s = msg[name]
            if s.shape != (n_kept,):
                raise ValueError(
                    f"signs[{k}][{name!r}] must have shape ({n_kept},), got {tuple(s.shape)}"
                )
            s = s.to(torch.float64).cpu()
            if not bool((s.abs() == 1).all()):
                raise ValueError(f"signs[{k}][{name!r}] must hold only -1 and +1")
            vote += float(w[k]) * s
        if name not in previous:
            raise ValueError(f"previous lacks the scores of {name!r}")
        prev = previous[name].detach()
        prev_sign = torch.where(prev[mask] >= 0, 1.0, -1.0).to(torch.float64).cpu()  # as the vote
        vote = torch.where(vote == 0, 1e-3 * prev_sign, vote)
        new = prev.clone()
        new[mask] = vote.to(prev.dtype).to(prev.device)
        out[name] = new
    return out


def _flip_fraction(net: SignSupermask, a: Scores, b: Scores) -> float:
    changed = total = 0
    for n in net.names:
        m = net.mask(n)
        changed += int(((a[n][m] >= 0) != (b[n][m] >= 0)).sum())
        total += int(m.sum())
    return changed / max(total, 1)


@grad_enabled("run_hidenseek")
def run_hidenseek(
    net: SignSupermask,
    clients: Sequence[ClientData],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    rounds: int,
    local: LocalConfig,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
    show_progress: bool | None = None,
) -> FederatedHistory:
    """HideNseek federated training in-process (all clients every round).

    Args:
        net: the server's :class:`SignSupermask` (SynFlow masks over the initial network);
            not modified.
        clients: one ``(x [N_k, ...], y [N_k])`` pair per client, every ``N_k >= 1``.
        x_test: global test inputs ``[M, ...]``.
        y_test: global test labels ``[M]``.
        rounds: communication rounds.
        local: the clients' local training recipe.
        seed: seed of the clients' data orders.
        callback: called as ``callback(round, accuracy)`` after every round (1-based).
        show_progress: a bar over the rounds (``None``: only on a terminal).

    Returns:
        :class:`FederatedHistory` (uplink: ``clients * n_unpruned`` bits per round).
    """
    check_type("net", net, SignSupermask)
    sizes = _check_run(clients, x_test, y_test, rounds, local, seed, callback)
    server = copy.deepcopy(net)
    scores = server.get_scores()
    hist = FederatedHistory("hidenseek")
    bits = sign_uplink_bits({n: server.mask(n) for n in server.names})
    workspace = copy.deepcopy(server)  # one local network for all clients (see _train_copy)
    for r in progress(range(int(rounds)), show_progress=show_progress, desc="run_hidenseek"):
        msgs = _round(server, _set_scores(scores), clients, local, seed, r, workspace, _signs)
        new = aggregate_sign_votes(server, msgs, sizes, scores)
        hist.flips.append(_flip_fraction(server, scores, new))
        scores = new
        server.set_scores(scores)
        hist.accuracy.append(_accuracy(server, x_test, y_test, 1024, "x_test", "y_test"))
        hist.uplink_bits.append(bits * len(clients))
        hist.payload_bits.append(sum(payload_bits([pack_signs(m)]) for m in msgs))
        if callback is not None:
            callback(r + 1, hist.accuracy[-1])
    hist.model = server.materialize()
    hist.scores = scores
    return hist


# ------------------------------------------------------------------ {0,1} supermask


@grad_enabled("binary_client_update")
def binary_client_update(
    net: BinarySupermask,
    global_scores: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    config: LocalConfig,
    *,
    seed: int,
) -> dict[str, torch.Tensor]:
    """One {0,1}-supermask client round; returns ``{name: bool mask shaped like the weight}``.

    Args and behaviour as :func:`hidenseek_client_update` (``net`` is not modified).
    """
    check_type("net", net, BinarySupermask)
    local = _train_copy(net, lambda m: m.set_scores(global_scores), x, y, config, seed)
    return local.binary_masks()


def aggregate_mask_votes(
    net: BinarySupermask,
    masks: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    initial: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """{0,1}-supermask server step: the weighted keep-vote becomes the next scores.

    Args:
        net: the shared :class:`BinarySupermask` (not modified).
        masks: one ``{name: bool tensor}`` message per client.
        weights: per-client weights (sample counts).
        initial: the initial scores; ``1e-3 |s_0|`` breaks ties between equal votes.

    Returns:
        ``{name: c * v + 1e-3 |s_0|}`` with ``v in [0, 1]`` the fraction of (weighted) clients
        keeping each weight and ``c = max |s_0|`` of the layer; the global mask is the top-k.
    """
    check_type("net", net, BinarySupermask)
    if len(masks) == 0:
        raise ValueError("masks must hold at least one client's message, got 0")
    w = _check_weights(weights, len(masks))
    out = {}
    for name in net.names:
        if name not in initial:
            raise ValueError(f"initial lacks the scores of {name!r}")
        s0 = initial[name].detach()
        vote = torch.zeros(s0.shape, dtype=torch.float64)
        for k, msg in enumerate(masks):
            if name not in msg:
                raise ValueError(f"masks[{k}] lacks the weight {name!r}")
            m = msg[name]
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:  # else v leaves [0, 1]
                raise TypeError(
                    f"masks[{k}][{name!r}] must be a bool tensor, got "
                    f"{getattr(m, 'dtype', type(m).__name__)}"
                )
            if m.shape != s0.shape:
                raise ValueError(
                    f"masks[{k}][{name!r}] must have shape {tuple(s0.shape)}, got {tuple(m.shape)}"
                )
            vote += float(w[k]) * m.to(torch.float64).cpu()
        c = float(s0.abs().max())
        out[name] = (c * vote + 1e-3 * s0.abs().to(torch.float64).cpu()).to(s0.device, s0.dtype)
    return out


@grad_enabled("run_binary_supermask")
def run_binary_supermask(
    net: BinarySupermask,
    clients: Sequence[ClientData],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    rounds: int,
    local: LocalConfig,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
    show_progress: bool | None = None,
) -> FederatedHistory:
    """The {0,1}-supermask baseline federated in-process (arguments as :func:`run_hidenseek`).

    Uplink: one bit per maskable weight (the whole layer's mask) per client and round.
    """
    check_type("net", net, BinarySupermask)
    sizes = _check_run(clients, x_test, y_test, rounds, local, seed, callback)
    server = copy.deepcopy(net)
    initial = server.get_scores()
    scores = initial
    hist = FederatedHistory("binary_supermask")
    before = server.binary_masks()
    workspace = copy.deepcopy(server)  # one local network for all clients (see _train_copy)
    for r in progress(range(int(rounds)), show_progress=show_progress, desc="run_binary_supermask"):
        msgs = _round(server, _set_scores(scores), clients, local, seed, r, workspace, _masks)
        scores = aggregate_mask_votes(server, msgs, sizes, initial)
        server.set_scores(scores)
        after = server.binary_masks()
        total = sum(m.numel() for m in after.values())
        hist.flips.append(sum(int((after[n] != before[n]).sum()) for n in after) / total)
        before = after
        hist.accuracy.append(_accuracy(server, x_test, y_test, 1024, "x_test", "y_test"))
        hist.uplink_bits.append(server.num_weights() * len(clients))
        hist.payload_bits.append(
            sum(
                payload_bits(
                    [np.packbits(np.concatenate([v.flatten().cpu().numpy() for v in m.values()]))]
                )
                for m in msgs
            )
        )
        if callback is not None:
            callback(r + 1, hist.accuracy[-1])
    hist.model = server.materialize()
    hist.scores = scores
    return hist


# -------------------------------------------------------------------------- FedAvg


@grad_enabled("fedavg_client_update")
def fedavg_client_update(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    config: LocalConfig,
    *,
    seed: int,
) -> dict[str, torch.Tensor]:
    """One dense FedAvg client round; returns the trained ``state_dict`` (``model`` unchanged).

    Args:
        model: the architecture (a copy is loaded with ``state`` and trained).
        state: the broadcast global ``state_dict``.
        x: client inputs ``[N_k, ...]``; y: labels ``[N_k]``.
        config: local training recipe.
        seed: seed of the local data order.
    """
    check_type("model", model, nn.Module)
    local = _train_copy(model, lambda m: m.load_state_dict(dict(state)), x, y, config, seed)
    return clone_state(local)


def fedavg_aggregate(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Sample-weighted average of client ``state_dict`` s (McMahan et al., 2017)."""
    if isinstance(states, (str, bytes)) or not isinstance(states, Sequence):
        raise TypeError(f"states must be a sequence of state dicts, got {type(states).__name__}")
    for k, s in enumerate(states):
        check_type(f"states[{k}]", s, Mapping)
    if len(states) == 0:
        raise ValueError("states must hold at least one client's state, got 0")
    w = _check_weights(weights, len(states))
    keys = list(states[0])
    out = {}
    for key in keys:
        ref = states[0][key]
        check_type(f"states[0][{key!r}]", ref, torch.Tensor)
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for k, s in enumerate(states):
            if key in s:
                check_type(f"states[{k}][{key!r}]", s[key], torch.Tensor)
            if key not in s or s[key].shape != ref.shape:
                raise ValueError(f"states[{k}] must have {key!r} of shape {tuple(ref.shape)}")
            acc += float(w[k]) * s[key].detach().to(torch.float64)
        out[key] = acc.to(ref.dtype)
    return out


@grad_enabled("run_fedavg")
def run_fedavg(
    model: nn.Module,
    clients: Sequence[ClientData],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    rounds: int,
    local: LocalConfig,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
    show_progress: bool | None = None,
) -> FederatedHistory:
    """Dense FedAvg in-process (arguments as :func:`run_hidenseek`; ``model`` not modified).

    Uplink: 32 bits per trainable parameter per client and round.
    """
    check_type("model", model, nn.Module)
    sizes = _check_run(clients, x_test, y_test, rounds, local, seed, callback)
    server = copy.deepcopy(model)
    state = clone_state(server)
    hist = FederatedHistory("fedavg")
    bits = dense_uplink_bits(server)
    workspace = copy.deepcopy(server)  # one local network for all clients (see _train_copy)
    for r in progress(range(int(rounds)), show_progress=show_progress, desc="run_fedavg"):
        states = _round(server, _load_state(state), clients, local, seed, r, workspace, clone_state)
        state = fedavg_aggregate(states, sizes)
        server.load_state_dict(state)
        hist.accuracy.append(_accuracy(server, x_test, y_test, 1024, "x_test", "y_test"))
        hist.uplink_bits.append(bits * len(clients))
        hist.payload_bits.append(sum(payload_bits([p.float() for p in s.values()]) for s in states))
        if callback is not None:
            callback(r + 1, hist.accuracy[-1])
    hist.model = server
    hist.scores = state
    return hist
