"""Private: the recurrence ``h_t = f(b' + x_t w' + h_{t-1} M)`` of the theory package's RNNs.

Used by :class:`~neuronkit.theory.timescales.TimescaleRNN` (the leaky update folded into ``w'``,
``b'`` and ``M``) and :class:`~neuronkit.theory.lazy_rich.ReluRNN` (``b' = 0``). Three
evaluations with the same values: plain autograd ops (under ``torch.func`` transforms, tracers,
export and autocast; differentiable any number of times), one preallocated buffer without
autograd, and the buffer with a hand-written backpropagation through time
(:class:`_Recurrence`). Shapes are time-major: ``x [T, B, I]``, states ``[T + 1, B, H]``
(row 0 the initial state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from neuronkit.common import under_torch_func

# Internal: the RNN modules import Terms, apply_activation, recurrence and last_states by name
# (their callers validate the arguments); no public callables.
__all__: list[str] = []

#: the update terms ``(w' [I, H], b' [H], M [H, H])``
Terms = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def apply_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.01)
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    return torch.sigmoid(x)


def _activation_(name: str, x: torch.Tensor) -> None:
    """:func:`apply_activation` in place."""
    if name == "leaky_relu":
        F.leaky_relu(x, 0.01, inplace=True)
    elif name == "relu":
        x.relu_()
    elif name == "tanh":
        x.tanh_()
    else:
        x.sigmoid_()


def _activation_backward(name: str) -> Callable[..., torch.Tensor]:
    """``(grad, out, buffer) -> grad_z``: the gradient at the pre-activation from ``grad`` at the
    output ``out = f(z)``, written into ``buffer`` by autograd's own backward kernel of ``f``."""
    aten = torch.ops.aten
    if name == "leaky_relu":
        kernel = aten.leaky_relu_backward.grad_input
        return lambda g, out, buf: kernel(g, out, 0.01, True, grad_input=buf)
    if name == "relu":
        kernel = aten.threshold_backward.grad_input
        return lambda g, out, buf: kernel(g, out, 0, grad_input=buf)
    kernel = aten.tanh_backward.grad_input if name == "tanh" else aten.sigmoid_backward.grad_input
    return lambda g, out, buf: kernel(g, out, grad_input=buf)


def _input_drives(
    x: torch.Tensor, w_in: torch.Tensor, bias: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``bias + x_t w_in`` for every step, ``[T, B, H]`` (into ``out`` when given)."""
    hidden = w_in.shape[1]
    flat = torch.addmm(bias, x.reshape(-1, x.shape[2]), w_in, out=out)
    return flat.view(x.shape[0], x.shape[1], hidden)


def _plain_recurrence(
    x: torch.Tensor, h: torch.Tensor, terms: Terms, activation: str
) -> torch.Tensor:
    """States ``[T + 1, B, H]`` of ``h_t = f((b' + x_t w') + h_{t-1} M)`` from ``x [T, B, I]``,
    ``h [B, H]`` and ``terms = (w' [I, H], b' [H], M [H, H])``, in plain ops (any transform,
    tracer or autocast; differentiable any number of times)."""
    w_in, bias, m = terms
    states = [h]
    for drive in _input_drives(x, w_in, bias).unbind(0):
        h = apply_activation(activation, torch.addmm(drive, h, m))
        states.append(h)
    return torch.stack(states)


def _run_recurrence(
    x: torch.Tensor, h: torch.Tensor, terms: Terms, activation: str
) -> torch.Tensor:
    """:func:`_plain_recurrence`'s states ``[T + 1, B, H]``, bit for bit, computed in one
    buffer: the input drives in one matmul, then per step an in-place matmul and activation."""
    w_in, bias, m = terms
    states = h.new_empty((x.shape[0] + 1, *h.shape))
    states[0] = h
    _input_drives(x, w_in, bias, out=states[1:].view(-1, h.shape[1]))
    rows = states.unbind(0)
    for t in range(x.shape[0]):
        _activation_(activation, rows[t + 1].addmm_(rows[t], m))
    return states


def _ragged_recurrence(
    x: torch.Tensor, h: torch.Tensor, terms: Terms, activation: str, lengths: torch.Tensor
) -> torch.Tensor:
    """The state ``[B, H]`` of each sequence after its own ``lengths[b]`` steps of
    :func:`_run_recurrence`'s update, computed on the sequences still running only: sorted by
    length, step ``t`` updates the first ``n_t`` rows (those longer than ``t``)."""
    w_in, bias, m = terms
    order = torch.argsort(lengths, descending=True, stable=True)
    running = (lengths[order] > torch.arange(x.shape[0], device=x.device).unsqueeze(1)).sum(1)
    x, state = x[:, order], h[order]
    buffer = torch.empty_like(state)
    for t, n in enumerate(running.tolist()):
        if n == 0:
            break
        out = torch.addmm(bias, x[t, :n], w_in, out=buffer[:n])
        _activation_(activation, out.addmm_(state[:n], m))
        state[:n] = out
    return state.index_copy(0, order, state)


class _Recurrence(torch.autograd.Function):
    """States ``[T + 1, B, H]`` (or, with ``last_only``, the last one ``[B, H]``) of
    :func:`_plain_recurrence` from ``x [T, B, I]``, ``h0 [B, H]``, ``w_in [I, H]``,
    ``bias [H]`` and ``m [H, H]``, with a hand-written backpropagation through time. The
    step-by-step autograd graph costs several nodes per step and ``[T, B, H]`` temporaries;
    here a step backward is the activation's backward kernel and one matmul, and the weight
    gradients are one matmul over all steps (the same values up to the order of the sums).
    Asked for a graph of its backward (``create_graph=True``) it differentiates
    :func:`_plain_recurrence` instead."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        h0: torch.Tensor,
        w_in: torch.Tensor,
        bias: torch.Tensor,
        m: torch.Tensor,
        activation: str,
        last_only: bool,
    ) -> torch.Tensor:
        states = _run_recurrence(x, h0, (w_in, bias, m), activation)
        ctx.activation, ctx.last_only = activation, last_only
        ctx.save_for_backward(x, h0, w_in, bias, m, states)
        return states[-1].clone() if last_only else states

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, h0, w_in, bias, m, states = ctx.saved_tensors
        needs = ctx.needs_input_grad[:5]
        if torch.is_grad_enabled():  # autograd runs backward with grad mode = create_graph
            inputs = [t for t, need in zip((x, h0, w_in, bias, m), needs) if need]
            plain = _plain_recurrence(x, h0, (w_in, bias, m), ctx.activation)
            found = iter(
                torch.autograd.grad(
                    plain[-1] if ctx.last_only else plain, inputs, grad, create_graph=True
                )
            )
            return (*(next(found) if need else None for need in needs), None, None)
        steps, hidden = x.shape[0], h0.shape[1]
        grad_z = torch.empty_like(states[1:])  # [T, B, H]: the gradient at each pre-activation
        kernel, m_t = _activation_backward(ctx.activation), m.T
        rows, grad_rows = states.unbind(0), grad_z.unbind(0)
        upstream = None if ctx.last_only else grad.unbind(0)  # gradients on every state
        g = grad if upstream is None else upstream[steps]
        for t in range(steps, 0, -1):
            dz = kernel(g, rows[t], grad_rows[t - 1])
            if t > 1 or needs[1]:
                g = dz.mm(m_t) if upstream is None else torch.addmm(upstream[t - 1], dz, m_t)
        flat = grad_z.view(-1, hidden)
        return (
            (flat @ w_in.T).view_as(x) if needs[0] else None,
            g if needs[1] else None,
            x.reshape(-1, x.shape[2]).T @ flat if needs[2] else None,
            flat.sum(0) if needs[3] else None,
            states[:-1].reshape(-1, hidden).T @ flat if needs[4] else None,
            None,
            None,
        )


def _buffered(x: torch.Tensor) -> bool:
    """Whether the buffered recurrence (:func:`_run_recurrence`, :class:`_Recurrence`) may run:
    ``x`` is a plain tensor in eager mode, outside ``torch.func`` transforms, forward-mode AD,
    tracing, export, dispatch modes and autocast (where :func:`_plain_recurrence` runs)."""
    return (
        type(x) is torch.Tensor
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not is_in_torch_dispatch_mode()
        and not under_torch_func()
        and not torch.is_autocast_enabled(x.device.type)
    )


def recurrence(
    x: torch.Tensor, h: torch.Tensor, terms: Terms, activation: str, *, keep_states: bool = True
) -> torch.Tensor:
    """States ``[T + 1, B, H]`` (or only the last ``[B, H]``) of ``h_t = f(b' + x_t w' +
    h_{t-1} M)`` from ``x [T, B, I]``, ``h [B, H]`` and ``terms = (w', b', M)``: buffered
    with the hand-written backward where it may run (:func:`_buffered`), else plain ops."""
    if not _buffered(x):
        states = _plain_recurrence(x, h, terms, activation)
    elif torch.is_grad_enabled():
        out: torch.Tensor = _Recurrence.apply(x, h, *terms, activation, not keep_states)
        return out
    else:
        states = _run_recurrence(x, h, terms, activation)
    return states if keep_states else states[-1]


def last_states(
    x: torch.Tensor, h: torch.Tensor, terms: Terms, activation: str, lengths: torch.Tensor
) -> torch.Tensor:
    """The state ``[B, H]`` of each sequence after its own ``lengths[b]`` steps (``lengths``:
    int64 ``[B]`` in ``[0, T]`` on ``x``'s device); without autograd only the running sequences
    are stepped (:func:`_ragged_recurrence`)."""
    if not torch.is_grad_enabled() and _buffered(x):
        return _ragged_recurrence(x, h, terms, activation, lengths)
    states = recurrence(x, h, terms, activation)
    return states[lengths, torch.arange(x.shape[1], device=x.device)]
