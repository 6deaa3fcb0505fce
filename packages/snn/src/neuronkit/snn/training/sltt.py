"""Spatial learning through time (SLTT) and SLTT-K, and a saved-tensor memory meter.

Meng, Xiao, Yan, Wang, Lin & Luo, "Towards Memory- and Time-Efficient Backpropagation for
Training Spiking Neural Networks", ICCV 2023 (reference code: qymeng94/SLTT).

SLTT drops the temporal part of the BPTT gradient, which the paper shows contributes little:
the membrane's dependence on its own past is detached, ``v_t = lam * v_{t-1}.detach() + x_t``
(``lam = 1 - 1 / tau``), so the gradient of the step-``t`` loss only flows through the
spatial path of step ``t``. That makes training **online**: at every step the per-step loss
``loss_t / T`` is backpropagated at once and its graph freed, the gradients accumulate in
``.grad``, and the optimizer steps once per batch. The memory held for backward no longer
grows with T. SLTT-K backpropagates at only ``K`` steps drawn at random per batch
(``torch.randperm(T)[:K]``) and runs the other steps without a graph, cutting the time too.

The reference setting (all in :func:`sltt_neuron` and :func:`sltt_loss`): LIF with ``tau =
1.1``, no input decay (``v = lam * v + x``), soft reset (subtract), threshold 1, triangle
surrogate ``max(0, 1 - |v - 1|)`` (SpikingJelly's ``PiecewiseQuadratic`` with alpha 1), and
the per-step loss ``(1 - lamb) * CE(out_t, y) + lamb * MSE(out_t, 1)`` with ``lamb = 0.05``
(the reference's default ``mse_n_reg=False``: the MSE pulls every output towards the constant
``loss_means = 1``). The network's last layer is a non-spiking linear readout; the prediction
is ``argmax(sum_t out_t)``.

A model is written as a per-step module ``model(x_t, state) -> (out_t, state)`` (see
:class:`~neuronkit.snn.training.StepSequential`); detaching the whole state between steps is
exactly SLTT's detached membrane (every temporal path runs through the state).

:class:`SavedTensorMeter` measures what the claim is about: the bytes of the tensors autograd
holds for the backward pass, live (released ones are subtracted), with their peak.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuronkit.common import (
    check_class_labels,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    grad_enabled,
    torch_generator,
)

from ..neurons import LIF
from ..surrogate import Triangle
from .bptt import (
    EpochStats,
    StepLoss,
    StepModel,
    _accumulate,
    _check_trainer_args,
    _step_loss,
    _unpack_batch,
    detach_state,
    step_inputs,
)

__all__ = ["SavedTensorMeter", "sltt_loss", "sltt_neuron", "sltt_train_epoch"]


def sltt_neuron(tau: float = 1.1, threshold: float = 1.0, *, surrogate_alpha: float = 1.0) -> LIF:
    """The SLTT reference neuron as a :class:`~neuronkit.snn.LIF` module.

    ``tau = 1.1`` (``lam = 1 - 1 / tau ~ 0.09``), ``decay_input=False`` (``h = lam * v + x``),
    soft reset, ``detach_reset=False``, :class:`~neuronkit.snn.Triangle` surrogate. Use its
    ``step`` inside a :class:`~neuronkit.snn.training.StepSequential`; the SLTT trainer
    supplies the detach of the membrane.
    """
    check_number("tau", tau, ge=1.0)
    check_number("threshold", threshold, gt=0)
    check_number("surrogate_alpha", surrogate_alpha, gt=0)
    return LIF(
        tau=tau,
        threshold=threshold,
        reset="subtract",
        decay_input=False,
        surrogate=Triangle(alpha=surrogate_alpha),
    )


def sltt_loss(out: Tensor, target: Tensor, *, lamb: float = 0.05, phi: float = 1.0) -> Tensor:
    """SLTT's per-step loss ``(1 - lamb) * CE(out, target) + lamb * MSE(out, phi)``.

    Args:
        out: one step's outputs ``[B, C]`` (floating, finite).
        target: class indices ``[B]`` (int64).
        lamb: weight of the MSE term, in [0, 1] (0.05 in the paper).
        phi: the constant every output is pulled towards (the reference's ``loss_means = 1``).

    Returns:
        a scalar. The trainers divide it by T.
    """
    check_type("out", out, Tensor)
    if not out.is_floating_point() or out.ndim != 2:
        raise ValueError(
            f"out must be a floating tensor [B, C], got dtype {out.dtype} and shape "
            f"{tuple(out.shape)}"
        )
    check_type("target", target, Tensor)
    if target.dtype != torch.long or target.shape != out.shape[:1]:
        raise ValueError(
            f"target must be int64 class indices of shape [{out.shape[0]}], got dtype "
            f"{target.dtype} and shape {tuple(target.shape)}"
        )
    if out.shape[0] == 0 or out.shape[1] == 0:  # a mean over nothing is NaN, not a loss
        raise ValueError(
            f"out must have a non-empty batch B >= 1 and C >= 1 classes [B, C], got shape "
            f"{tuple(out.shape)}"
        )
    check_number("lamb", lamb, ge=0, le=1)
    check_number("phi", phi)
    try:
        ce = F.cross_entropy(out, target)
    except (IndexError, RuntimeError):  # checked only here: the trainers call it every step
        check_class_labels("target", target, out.shape[1])  # the usual cause
        raise
    if lamb == 0:
        return ce
    return (1 - lamb) * ce + lamb * F.mse_loss(out, torch.full_like(out, phi))


@grad_enabled("sltt_train_epoch")
def sltt_train_epoch(
    model: StepModel,
    loader: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    T: int,
    *,
    k: int | None = None,
    loss_fn: StepLoss = sltt_loss,
    encoder: Any = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> EpochStats:
    """One epoch of SLTT (``k=None``) or SLTT-K training.

    Per batch: ``optimizer.zero_grad()``; for each step ``t``: the state is detached, the
    step runs, and (SLTT, or SLTT-K at one of the ``k`` drawn steps) ``loss_fn(out_t, y) / T``
    is backpropagated immediately, accumulating into ``.grad`` and freeing the step's graph;
    the other SLTT-K steps run under ``torch.no_grad()``. Then one ``optimizer.step()``.

    Args:
        model: ``model(x_t [B, ...], state) -> (out_t [B, C], state)``, e.g. a
            :class:`~neuronkit.snn.training.StepSequential` of :func:`sltt_neuron` layers.
        loader: iterable of ``(x [B, ...], y [B])`` batches.
        optimizer: optimizer over the model's parameters.
        T: time steps (>= 1).
        k: SLTT-K's number of trained steps per batch, in [1, T]; ``None`` trains every step.
        loss_fn: per-step loss ``(out_t, y) -> scalar`` (:func:`sltt_loss` by default).
        encoder: see :func:`~neuronkit.snn.training.step_inputs` (``None``: direct encoding).
        seed / generator: randomness of SLTT-K's step choice (one of them is required when
            ``k < T``; never torch's global RNG).

    Returns:
        :class:`~neuronkit.snn.training.EpochStats`; ``loss`` sums the backpropagated
        per-step losses (``/ T``) only, as the reference reports it.
    """
    _check_trainer_args(model, optimizer, T, loss_fn)
    if k is not None:
        check_number("k", k, ge=1, le=T, integer=True)
    gen: torch.Generator | None = None
    if k is not None and k < T:
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both (got both)")
        if generator is not None:
            check_type("generator", generator, torch.Generator)
            gen = generator
        elif seed is not None:
            check_seed(seed)
            gen = torch_generator(seed)
        else:
            raise ValueError("seed or generator is required for SLTT-K (k < T), got neither")
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for batch in loader:
        x, y = _unpack_batch(batch)
        x = detached_input(x)  # neither fill the caller's x.grad nor go through its graph
        if gen is None:
            trained = set(range(T))
        else:
            trained = {int(t) for t in torch.randperm(T, generator=gen)[:k]}
        optimizer.zero_grad(set_to_none=True)
        state: Any = None
        acc_out: Tensor | None = None
        batch_loss = 0.0
        for t, x_t in enumerate(step_inputs(x, T, encoder)):
            if t in trained:
                out, new_state = model(x_t, detach_state(state))
                state = detach_state(new_state)  # nothing of step t outlives its backward
                loss = _step_loss(loss_fn, out, y) / T
                loss.backward()
                batch_loss += float(loss.detach())
            else:
                with torch.no_grad():
                    out, state = model(x_t, state)
            acc_out = _accumulate(acc_out, out.detach())
        optimizer.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        assert acc_out is not None
        total_loss += batch_loss * y.shape[0]
        correct += int(correct_predictions(acc_out, y).sum())
        seen += y.shape[0]
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got none")
    return EpochStats(total_loss / seen, correct / seen, seconds, seen)


class _Packed:
    """What autograd stores in place of a saved tensor while the meter is active."""

    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


class SavedTensorMeter:
    """Live and peak bytes of the tensors autograd saves for backward (a deterministic count).

    A context manager installing ``torch.autograd.graph.saved_tensors_hooks``: every tensor a
    graph node saves is wrapped in a small object; its bytes are added when it is packed and
    subtracted (through a ``weakref.finalize`` on the wrapper) when autograd releases it,
    i.e. when the backward pass frees the graph or the graph is dropped. ``live_bytes`` is
    what is held now and ``peak_bytes`` its maximum: the memory that backpropagation keeps
    alive, independent of the allocator (no RSS, no CUDA statistics).

    A tensor saved several times (the same view of the same storage, e.g. a weight used at
    every step or a direct-encoded input) counts once while any graph holds it. Bytes are the
    logical size of the saved view (``numel * element_size``); parameters saved by layers
    (weights used in the backward) are included. Tensors created under ``torch.no_grad()``
    are never saved, so they never count.

    >>> x = torch.randn(8, 4, requires_grad=True)
    >>> with SavedTensorMeter() as meter:
    ...     y = (x * x).sum()
    ...     held = meter.live_bytes
    ...     y.backward()
    >>> held, meter.live_bytes, meter.peak_bytes
    (128, 0, 128)
    """

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak_bytes = 0
        self.packed_bytes = 0
        self.packed_count = 0
        self._refs: dict[tuple[Any, ...], int] = {}
        self._hooks: Any = None

    def reset_peak(self) -> None:
        """Start a new peak from the bytes held now."""
        self.peak_bytes = self.live_bytes

    def _release(self, key: tuple[Any, ...], nbytes: int) -> None:
        n = self._refs[key] - 1
        if n:
            self._refs[key] = n
        else:
            del self._refs[key]
            self.live_bytes -= nbytes

    def _pack(self, tensor: Tensor) -> _Packed:
        nbytes = tensor.numel() * tensor.element_size()
        if tensor.layout == torch.strided and tensor.device.type != "meta":
            ptr: Any = tensor.data_ptr()
        else:  # no address to share: count each one on its own
            ptr = ("id", id(tensor))
        key = (ptr, tensor.dtype, str(tensor.device), tuple(tensor.shape), tuple(tensor.stride()))
        handle = _Packed(tensor)
        count = self._refs.get(key, 0)
        self._refs[key] = count + 1
        if count == 0:
            self.live_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self.packed_bytes += nbytes
        self.packed_count += 1
        weakref.finalize(handle, self._release, key, nbytes)
        return handle

    @staticmethod
    def _unpack(handle: _Packed) -> Tensor:
        return handle.tensor

    def __enter__(self) -> SavedTensorMeter:
        if self._hooks is not None:
            raise RuntimeError("this SavedTensorMeter is already active (contexts do not nest)")
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        hooks, self._hooks = self._hooks, None
        hooks.__exit__(*exc)

    def __repr__(self) -> str:
        return (
            f"SavedTensorMeter(live_bytes={self.live_bytes}, peak_bytes={self.peak_bytes}, "
            f"packed_count={self.packed_count})"
        )
