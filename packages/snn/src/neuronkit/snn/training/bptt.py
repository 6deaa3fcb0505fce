"""Step-by-step spiking networks and plain backpropagation through time (BPTT).

The online trainers of this package (:mod:`neuronkit.snn.training.sltt`) need a network that
runs **one time step per call** with explicit state, so that a loss can be formed and
backpropagated at every step. This module provides that network shape and the BPTT reference
trainer the online methods are compared against:

* :class:`StepSequential`: plain (stateless) torch layers (``nn.Linear``, ``nn.Conv2d``,
  pooling, ``nn.Flatten``, ...) interleaved with neuron modules that have a ``step(x_t,
  state) -> (spikes, state)`` method (:class:`~neuronkit.snn.LIF`, :class:`~neuronkit.snn.IF`,
  :class:`~neuronkit.snn.PLIF`, ...). ``model(x_t, state) -> (out_t, state)`` with ``x_t:
  [B, ...]``; the state is a tuple with one entry per neuron module (``None`` at rest).
* :func:`detach_state`: the state with every tensor detached (cuts the temporal gradient path).
* :func:`bptt_train_epoch`: one epoch of BPTT: all T steps forward with the state attached,
  one backward of the time-averaged loss, one optimizer step per batch.
* :func:`evaluate_steps`: accuracy of the summed per-step outputs.
* :func:`minibatches`: a seeded mini-batch iterator over in-memory tensors.

Any model with the call signature ``model(x_t, state) -> (out_t, state)`` works with the
trainers, not only :class:`StepSequential`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuronkit.common import (
    check_class_labels,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    eval_mode,
    grad_enabled,
    integer_dtype,
)

from .._core import begin

__all__ = [
    "EpochStats",
    "StepSequential",
    "bptt_train_epoch",
    "detach_state",
    "evaluate_steps",
    "minibatches",
    "step_inputs",
]

StepModel = Callable[[Tensor, Any], tuple[Tensor, Any]]
StepLoss = Callable[[Tensor, Tensor], Tensor]
Encoder = Callable[[Tensor, int], Tensor]


class EpochStats(NamedTuple):
    """One training epoch: mean loss per sample (the sum over steps of the per-step losses
    divided by T), training accuracy of the summed outputs, wall-clock seconds, samples seen."""

    loss: float
    accuracy: float
    seconds: float
    samples: int


class StepSequential(nn.Module):
    """A feed-forward spiking network run one time step per call.

    ``layers`` are applied in order to ``x_t: [B, ...]``. A layer with a ``step`` method (the
    neuron modules of :mod:`neuronkit.snn`) is called as ``layer.step(h, state_i) -> (spikes,
    state_i)``; any other module is stateless and called as ``layer(h)``. The last layer is
    usually a plain ``nn.Linear`` (a non-spiking readout whose per-step output feeds the loss,
    as in the SLTT and OTTT reference networks).

    ``forward(x_t [B, ...], state=None) -> (out_t [B, ...], state)`` where ``state`` is a tuple
    with one entry per neuron module, in order (``None``, or a tuple of Nones, starts every
    neuron at rest: a new sequence, so a stateful surrogate such as PDSG restarts its
    statistics, as in the neurons' multi-step ``forward``).

    Layers inside a nested ``nn.Sequential`` are stepped in order too. Any other module that
    holds neuron modules (a residual block with its own ``forward``) must have a ``step(x_t,
    state) -> (out_t, state)`` method; otherwise it is refused (its neurons would read the
    batch axis as time).

    Hooks: ``layer.step`` and the children of a nested ``nn.Sequential`` are called directly,
    so forward hooks on neuron modules and on nested ``nn.Sequential`` containers do not fire
    (as for any method other than ``forward``); hooks on the stateless layers and on this
    module do (a neuron's spikes are the input of the layer after it, e.g. a pre-hook there).

    >>> from neuronkit.snn import LIF
    >>> net = StepSequential(nn.Linear(4, 8), LIF(), nn.Linear(8, 3))
    >>> out, state = net(torch.rand(2, 4))
    >>> out.shape, len(state)
    (torch.Size([2, 3]), 1)
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        if not layers:
            raise ValueError("layers must hold at least one module, got none")
        for i, layer in enumerate(layers):
            check_type(f"layers[{i}]", layer, nn.Module)
        self.layers = nn.ModuleList(layers)
        self._order()  # refuses what cannot run one step at a time, now rather than at forward

    def _order(self) -> list[tuple[str, nn.Module]]:
        """The ``(name, module)`` pairs run in order, read from the registered ``layers`` on
        every call (so replaced layers, ``convert_sync_batchnorm`` and ``DataParallel``
        replicas run what is registered), nested ``nn.Sequential`` flattened."""
        return [
            p for i, layer in enumerate(self.layers) for p in _step_order(layer, f"layers[{i}]")
        ]

    @property
    def num_states(self) -> int:
        """Number of neuron modules (entries of the state tuple)."""
        return sum(_steps_itself(m) for _, m in self._order())

    def forward(self, x: Tensor, state: tuple[Any, ...] | None = None) -> tuple[Tensor, Any]:
        """One step: ``x: [B, ...]`` -> ``(out [B, ...], state)``."""
        check_type("x", x, Tensor)
        order = self._order()
        n = sum(_steps_itself(m) for _, m in order)
        if state is None:
            state = (None,) * n
        if not isinstance(state, tuple) or len(state) != n:
            got = f"a tuple of length {len(state)}" if isinstance(state, tuple) else type(state)
            raise ValueError(
                f"state must be None or a tuple of {n} neuron states (one per neuron module), "
                f"got {got}"
            )
        if all(s is None for s in state):  # a new sequence: stateful surrogates (PDSG)
            # restart, as in forward; a nested module's neurons too
            _begin_sequence(layer for _, layer in order if _steps_itself(layer))
        new: list[Any] = []
        h = x
        i = 0
        for name, layer in order:
            if _steps_itself(layer):
                out = getattr(layer, "step")(h, state[i])  # noqa: B009
                if not (isinstance(out, tuple) and len(out) == 2):
                    got = (
                        f"a tuple of length {len(out)}"
                        if isinstance(out, tuple)
                        else type(out).__name__
                    )
                    raise TypeError(
                        f"{name} ({type(layer).__name__}).step must return "
                        f"(output, state), got {got}"
                    )
                h, s = out
                new.append(s)
                i += 1
            else:
                h = layer(h)
        return h, tuple(new)


def _begin_sequence(layers: Iterable[nn.Module]) -> None:
    """``begin`` the surrogate of every neuron in ``layers`` (nested ones included), as a
    multi-step ``forward`` does at the start of its sequence."""
    for layer in layers:
        for m in layer.modules():
            begin(getattr(m, "surrogate", None))


def _steps_itself(module: nn.Module) -> bool:
    return callable(getattr(module, "step", None))


def _time_major(module: nn.Module) -> bool:
    """Declared to take whole sequences ``[T, B, ...]`` (``Seq*`` layers, delays, dropout over
    time, IIR neurons): one step ``[B, ...]`` would be read with the batch as time."""
    return hasattr(type(module), "channel_local") or getattr(type(module), "leading_dims", 0) > 0


def _step_order(layer: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """``layer`` as the ``(name, module)`` pairs :class:`StepSequential` calls in order: a
    nested ``nn.Sequential`` is flattened; a module that holds neurons without a ``step``, or
    takes whole sequences, is refused."""
    if _steps_itself(layer):
        return [(name, layer)]
    if isinstance(layer, nn.Sequential):
        return [p for j, sub in enumerate(layer) for p in _step_order(sub, f"{name}[{j}]")]
    if _time_major(layer):
        raise ValueError(
            f"{name} ({type(layer).__name__}) takes whole sequences [T, B, ...] and has no "
            "step(x_t, state) method, so StepSequential would feed it one step [B, ...] with "
            "the batch read as time; run it in a sequence model, or use its step counterpart"
        )
    inner = [n for n, m in layer.named_modules() if n and _steps_itself(m)]
    if inner:
        raise ValueError(
            f"{name} ({type(layer).__name__}) holds neuron modules {inner[:3]} but has no "
            "step(x_t, state) -> (out_t, state) method, so StepSequential cannot run it one "
            "time step at a time (its neurons would read the batch axis as time); pass its "
            "layers flat, or give it a step method"
        )
    return [(name, layer)]


def detach_state(state: Any) -> Any:
    """``state`` with every tensor detached: tensors, ``None`` and (named) tuples, lists and
    dicts of them, to any depth. The input is not modified.

    Detaching the state between steps removes the temporal gradient path of the membrane
    (SLTT's ``v = v.detach() * decay + x``) while keeping the spatial path within a step.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    raise TypeError(
        f"state must be a tensor, None, or a tuple/list/dict of them, got {type(state).__name__}"
    )


def minibatches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """Split ``x: [N, ...]`` and ``y: [N]`` into mini-batches (the last may be smaller).

    Args:
        batch_size: samples per batch (>= 1).
        shuffle: permute the samples first (with ``seed`` or ``generator``; one of them is
            required when shuffling, so the order is reproducible). The permutation is drawn
            on the generator's device (``seed``: a CPU generator, so the order does not
            depend on the data's device).

    Returns:
        a list of ``(x_b [b, ...], y_b [b])`` (views when not shuffled, copies otherwise), cut
        from the autograd graph of ``x`` (each batch's backward then neither goes through a
        shared graph nor fills ``x.grad``).
    """
    check_type("x", x, Tensor)
    check_type("y", y, Tensor)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must share their first dimension N, got shapes {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_type("shuffle", shuffle, bool)
    x = detached_input(x)
    n = x.shape[0]
    if shuffle:
        if seed is None and generator is None:
            raise ValueError("seed or generator is required when shuffle=True, got neither")
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both (got both)")
        if generator is not None:
            check_type("generator", generator, torch.Generator)
        else:
            check_seed(seed)
        gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))  # type: ignore[arg-type]
        order = torch.randperm(n, generator=gen, device=gen.device)
        x, y = x[order.to(x.device)], y[order.to(y.device)]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]


def step_inputs(x: Tensor, T: int, encoder: Encoder | None = None) -> Iterator[Tensor]:
    """The T per-step inputs of a batch ``x: [B, ...]``.

    With ``encoder=None`` the same ``x`` is fed at every step (direct encoding, no copy);
    otherwise ``encoder(x, T)`` must return ``[T, B, ...]`` and step ``t`` gets its ``t``-th
    slice (e.g. ``neuronkit.snn.poisson_encode``).
    """
    check_type("x", x, Tensor)
    check_number("T", T, ge=1, integer=True)
    if encoder is not None and not callable(encoder):
        raise TypeError(
            f"encoder must be None or callable as encoder(x, T), got {type(encoder).__name__}"
        )
    return _step_inputs(x, T, encoder)


def _step_inputs(x: Tensor, T: int, encoder: Encoder | None) -> Iterator[Tensor]:
    if encoder is None:
        for _ in range(T):
            yield x
        return
    seq = encoder(x, T)
    if not isinstance(seq, Tensor) or seq.ndim < 2 or seq.shape[0] != T:
        got = tuple(seq.shape) if isinstance(seq, Tensor) else type(seq).__name__
        raise ValueError(f"encoder(x, T) must return a tensor [T={T}, B, ...], got {got}")
    yield from seq


def _default_loss(out: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(out, target.long())  # int32 labels too (checked integer upstream)


def _check_trainer_args(model: Any, optimizer: Any, T: Any, loss_fn: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, state), got {type(model).__name__}")
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    check_number("T", T, ge=1, integer=True)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(out_t, target), got {loss_fn!r:.80}")


def _unpack_batch(batch: Any) -> tuple[Tensor, Tensor]:
    """One loader item as a checked ``(x, y)`` pair (a dict batch would unpack as its keys)."""
    if isinstance(batch, Mapping):
        raise TypeError(
            f"loader must yield (x, y) pairs, got a dict with keys {list(batch)[:8]}; wrap it, "
            "e.g. ((b['x'], b['y']) for b in loader)"
        )
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        got = (
            f"a {type(batch).__name__} of length {len(batch)}"
            if isinstance(batch, tuple | list)
            else type(batch).__name__
        )
        raise TypeError(f"loader must yield (x, y) pairs, got {got}")
    x, y = batch
    _check_batch(x, y)
    return x, y


def _step_loss(loss_fn: StepLoss, out: Tensor, y: Tensor) -> Tensor:
    """``loss_fn(out, y)``, checked to be a 0-d tensor (what ``backward()`` needs)."""
    try:
        loss = loss_fn(out, y)
    except (IndexError, RuntimeError, ValueError):
        # the usual cause (checked only now, not at every step): a label of the loader's y
        # outside the model's classes, which cross-entropy reports as an index error
        if isinstance(out, Tensor) and out.ndim == 2:
            check_class_labels("y", y, out.shape[1])
        raise
    if not isinstance(loss, Tensor) or loss.ndim != 0:
        if not isinstance(loss, Tensor):
            raise TypeError(
                f"loss_fn(out_t, y) must return a scalar (0-d) tensor, got {type(loss).__name__}"
            )
        raise ValueError(
            f"loss_fn(out_t, y) must return a scalar (0-d) tensor, got shape "
            f"{tuple(loss.shape)}; reduce it, e.g. with reduction='mean'"
        )
    return loss


def _accumulate(total: Tensor | None, out: Tensor) -> Tensor:
    """``total + out``, the running ``sum_t out_t`` of a step model's outputs, kept in float32 or
    wider: a half-precision running sum stalls (in bfloat16 ``256 + 1`` rounds back to 256) or
    overflows (float16 past 65504), tying the classes the accuracy is read from."""
    if total is None:
        wide = torch.promote_types(out.dtype, torch.float32) if out.is_floating_point() else None
        return out if wide is None else out.to(wide)
    return total + out


def _check_batch(x: Any, y: Any) -> None:
    check_type("x", x, Tensor)
    check_type("y", y, Tensor)
    if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"each batch must be (x [B, ...], y [B]) with matching B, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not integer_dtype(y):
        raise TypeError(f"y must hold integer class indices [B], got dtype {y.dtype}")
    if y.shape[0] == 0:
        raise ValueError("each batch must hold at least one sample (B >= 1), got an empty one")


@grad_enabled("bptt_train_epoch")
def bptt_train_epoch(
    model: StepModel,
    loader: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    T: int,
    *,
    loss_fn: StepLoss | None = None,
    encoder: Encoder | None = None,
) -> EpochStats:
    """One epoch of backpropagation through time for a step model.

    Per batch: ``T`` forward steps with the state kept in the graph, the loss ``sum_t
    loss_fn(out_t, y) / T``, **one** backward through the whole unrolled graph (memory grows
    with T), one optimizer step.

    Args:
        model: ``model(x_t [B, ...], state) -> (out_t [B, C], state)``, e.g. a
            :class:`StepSequential`; ``state=None`` at the first step.
        loader: iterable of ``(x [B, ...], y [B])`` batches (e.g. :func:`minibatches`).
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        T: time steps per sample (>= 1).
        loss_fn: per-step loss ``(out_t, y) -> scalar`` (cross-entropy by default; pass
            :func:`neuronkit.snn.training.sltt_loss` for the SLTT paper's loss).
        encoder: see :func:`step_inputs` (``None``: direct encoding).

    Returns:
        :class:`EpochStats` (train accuracy from ``sum_t out_t``).
    """
    loss_fn = _default_loss if loss_fn is None else loss_fn
    _check_trainer_args(model, optimizer, T, loss_fn)
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for batch in loader:
        x, y = _unpack_batch(batch)
        x = detached_input(x)  # neither fill the caller's x.grad nor go through its graph
        optimizer.zero_grad(set_to_none=True)
        state = None
        loss: Tensor | None = None
        acc_out: Tensor | None = None
        for x_t in step_inputs(x, T, encoder):
            out, state = model(x_t, state)
            step_loss = _step_loss(loss_fn, out, y) / T
            loss = step_loss if loss is None else loss + step_loss
            acc_out = _accumulate(acc_out, out.detach())
        if loss is None or acc_out is None:  # T >= 1 is checked: unreachable
            raise RuntimeError("no time step was run")
        loss.backward()
        optimizer.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        total_loss += float(loss.detach()) * y.shape[0]
        correct += int(correct_predictions(acc_out, y).sum())
        seen += y.shape[0]
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got none")
    return EpochStats(total_loss / seen, correct / seen, seconds, seen)


@torch.no_grad()
def evaluate_steps(
    model: StepModel,
    x: Tensor,
    y: Tensor,
    T: int,
    *,
    batch_size: int = 512,
    encoder: Encoder | None = None,
) -> float:
    """Accuracy of ``argmax(sum_t out_t)`` of a step model over ``x: [N, ...]``, ``y: [N]``.

    Runs without gradient; the model is put in eval mode and restored afterwards.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, state), got {type(model).__name__}")
    _check_batch(x, y)
    check_number("T", T, ge=1, integer=True)
    correct = 0
    with eval_mode(model):
        for n, (xb, yb) in enumerate(minibatches(x, y, batch_size, shuffle=False)):
            state = None
            total: Tensor | None = None
            for x_t in step_inputs(xb, T, encoder):
                out, state = model(x_t, state)
                total = _accumulate(total, out)
            assert total is not None
            if n == 0:
                check_class_labels("y", y, total.shape[-1])
            correct += int(correct_predictions(total, yb).sum())
    return correct / max(int(y.shape[0]), 1)
