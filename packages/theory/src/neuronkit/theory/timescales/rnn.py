"""Leaky RNN with a trainable timescale per neuron and several readout heads.

Khajehabdollahi, Zeraati, Giannakakis, Schaefer, Martius & Levina, "Emergent mechanisms for long
timescales depend on training curriculum and affect performance in memory tasks" (ICLR 2024).
Every hidden neuron ``i`` has its own single-neuron timescale ``tau_i >= 1`` trained together with
the weights. With the drive ``u_t = W_rec h_{t-1} + W_in x_t + b`` the update is

* ``placement="outside"`` (the paper's model, the default): the nonlinearity acts on the leaky sum,
  ``h_t = f((1 - 1/tau) * h_{t-1} + u_t / tau)``;
* ``placement="inside"`` (the authors' "modified" model): the leak acts on the rectified drive,
  ``h_t = (1 - 1/tau) * h_{t-1} + f(u_t) / tau``.

``f`` is LeakyReLU (slope 0.01) by default, ``tau`` is the stored parameter clamped at 1 in the
forward pass (as in the reference code: a neuron whose raw parameter falls below 1 is a plain,
memoryless RNN unit and gets no gradient on ``tau``), ``tau`` starts uniform on ``[1, 2)``, the
recurrent matrix has no self-connections (its diagonal is masked, so single-neuron memory lives
only in ``tau``), and each readout head is a linear map of the last hidden state. ``tau = 1``
everywhere gives a vanilla RNN.

Shapes are time-major: inputs ``[T, B, I]``, hidden trajectories ``[T + 1, B, H]`` (including the
initial state), logits ``[K, B, C]`` for ``K`` heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from neuronkit.common import (
    check_choice,
    check_finite,
    check_number,
    check_type,
    plain_tensor,
    under_torch_func,
)

from .._utils import check_input_dtype, check_positive_int, torch_generator, traced

__all__ = ["ACTIVATIONS", "PLACEMENTS", "TimescaleRNN", "timescale_rnn_step"]

ACTIVATIONS = ("leaky_relu", "relu", "tanh", "sigmoid")
#: the outside placement's update terms ``(w' [I, H], b' [H], M [H, H])`` (see ``_run``)
Terms = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
PLACEMENTS = ("outside", "inside")


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.01)
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    return torch.sigmoid(x)


def _activation_(name: str, x: torch.Tensor) -> None:
    """:func:`_activation` in place."""
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
        h = _activation(activation, torch.addmm(drive, h, m))
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


def _step(
    h: torch.Tensor,
    drive: torch.Tensor,
    inv_tau: torch.Tensor,
    activation: str,
    placement: str,
) -> torch.Tensor:
    if placement == "outside":
        return _activation(activation, h + inv_tau * (drive - h))
    return h + inv_tau * (_activation(activation, drive) - h)


def timescale_rnn_step(
    h: torch.Tensor,
    x_in: torch.Tensor,
    w_rec: torch.Tensor,
    bias: torch.Tensor,
    tau: torch.Tensor,
    *,
    activation: str = "leaky_relu",
    placement: str = "outside",
) -> torch.Tensor:
    """One step of the leaky RNN with per-neuron timescales (functional core of the model).

    Args:
        h: previous hidden state ``[B, H]``.
        x_in: projected input ``W_in x_t`` ``[B, H]``.
        w_rec: recurrent weights ``[H, H]`` (used as given; mask the diagonal beforehand to
            exclude self-connections).
        bias: ``[H]``.
        tau: timescales ``[H]``, all ``>= 1``.
        activation: one of :data:`ACTIVATIONS`.
        placement: ``"outside"`` (``f`` of the leaky sum) or ``"inside"`` (leaky sum of ``f``).

    Returns:
        The new hidden state ``[B, H]``.
    """
    for name, t in (("h", h), ("x_in", x_in), ("w_rec", w_rec), ("bias", bias), ("tau", tau)):
        check_type(name, t, torch.Tensor)
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("placement", placement, PLACEMENTS)
    if h.ndim != 2:
        raise ValueError(f"h must have shape [B, H], got {tuple(h.shape)}")
    n = h.shape[1]
    if x_in.shape != h.shape:
        raise ValueError(f"x_in must have the shape of h {tuple(h.shape)}, got {tuple(x_in.shape)}")
    if w_rec.shape != (n, n):
        raise ValueError(f"w_rec must have shape [{n}, {n}], got {tuple(w_rec.shape)}")
    for name, t in (("bias", bias), ("tau", tau)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape [{n}], got {tuple(t.shape)}")
    values = plain_tensor(tau)  # readable under torch.func transforms
    if bool((values < 1).any()) or not bool(torch.isfinite(values).all()):
        raise ValueError(f"tau must be finite and >= 1, got min {float(values.min()):g}")
    drive = h @ w_rec.T + x_in + bias
    return _step(h, drive, 1.0 / tau, activation, placement)


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2.0 - 1.0) * bound


class TimescaleRNN(nn.Module):
    """Recurrent network whose neurons each have a trainable timescale ``tau >= 1``.

    The model of Khajehabdollahi et al. (ICLR 2024), see the module docstring for the update.
    Weights start like ``nn.Linear`` (uniform ``+-1/sqrt(fan_in)``), drawn from ``seed``.

    Args:
        input_size: input features ``I`` (1 for the binary tasks).
        hidden_size: neurons ``H``.
        num_heads: readout heads ``K`` (one per task ``N`` in the multi-head curriculum).
        num_classes: classes per head ``C``.
        train_tau: train the timescales (``False``: they stay at ``tau_init``).
        tau_init: ``None`` draws ``tau ~ U[1, 2)`` per neuron (the paper's init); a number
            ``>= 1`` sets every ``tau`` to it.
        activation: one of :data:`ACTIVATIONS` (default LeakyReLU, as in the paper).
        placement: ``"outside"`` (paper) or ``"inside"`` (see module docstring).
        self_connections: keep the recurrent diagonal (the paper masks it: ``False``).
        seed: int seed or ``torch.Generator`` for the initial weights.

    Example:
        >>> rnn = TimescaleRNN(1, 16, num_heads=3, seed=0)
        >>> logits = rnn(torch.zeros(10, 4, 1))
        >>> tuple(logits.shape)
        (3, 4, 2)
    """

    rec_mask: torch.Tensor

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 64,
        *,
        num_heads: int = 1,
        num_classes: int = 2,
        train_tau: bool = True,
        tau_init: float | None = None,
        activation: str = "leaky_relu",
        placement: str = "outside",
        self_connections: bool = False,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        check_type("train_tau", train_tau, bool)
        check_type("self_connections", self_connections, bool)
        if tau_init is not None:
            check_number("tau_init", tau_init, ge=1.0)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.placement = check_choice("placement", placement, PLACEMENTS)
        self.self_connections = self_connections
        gen = torch_generator(seed)
        h, i = self.hidden_size, self.input_size
        b_in, b_rec = 1.0 / math.sqrt(i), 1.0 / math.sqrt(h)
        self.w_in = nn.Parameter(_uniform((h, i), b_in, gen))
        self.b_in = nn.Parameter(_uniform((h,), b_in, gen))
        self.w_rec = nn.Parameter(_uniform((h, h), b_rec, gen))
        self.b_rec = nn.Parameter(_uniform((h,), b_rec, gen))
        if tau_init is None:
            tau = 1.0 + torch.rand(h, generator=gen)
        else:
            tau = torch.full((h,), float(tau_init))
        self.tau = nn.Parameter(tau, requires_grad=train_tau)
        self.heads = nn.ModuleList()
        for _ in range(self.num_heads):
            # with a seed, the default init (overwritten below) leaves the global RNG alone
            with torch.random.fork_rng(devices=[], enabled=seed is not None):
                head = nn.Linear(h, self.num_classes)
            with torch.no_grad():
                head.weight.copy_(_uniform((self.num_classes, h), b_rec, gen))
                head.bias.copy_(_uniform((self.num_classes,), b_rec, gen))
            self.heads.append(head)
        mask = torch.ones(h, h) if self_connections else 1.0 - torch.eye(h)
        self.register_buffer("rec_mask", mask, persistent=False)

    @property
    def train_tau(self) -> bool:
        """Whether the timescales are trained."""
        return bool(self.tau.requires_grad)

    def effective_tau(self) -> torch.Tensor:
        """The timescales used in the forward pass, ``clamp(tau, min=1)`` ``[H]``."""
        return torch.clamp(self.tau, min=1.0)

    def recurrent_weight(self) -> torch.Tensor:
        """Recurrent weights as used (self-connections masked unless kept) ``[H, H]``."""
        return self.w_rec * self.rec_mask

    def _check_heads(self, heads: Sequence[int] | None) -> list[int]:
        if heads is None:
            return list(range(self.num_heads))
        if isinstance(heads, (str, bytes)) or not isinstance(heads, Sequence):
            raise TypeError(f"heads must be a sequence of head indices, got {type(heads).__name__}")
        if heads and all(type(k) is int and 0 <= k < self.num_heads for k in heads):
            return list(heads)  # the common case, without a check_number per head
        out = []
        for k in heads:
            check_number("heads[k]", k, ge=0, lt=self.num_heads, integer=True)
            out.append(int(k))
        if not out:
            raise ValueError("heads must name at least one head, got an empty sequence")
        return out

    def _initial_state(self, x: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        """Validate ``x`` ``[T, B, I]`` and ``h0`` ``[B, H]``; return the initial state."""
        check_type("x", x, torch.Tensor)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must have shape [T, B, {self.input_size}], got {tuple(x.shape)}")
        check_input_dtype("x", x, self.w_in.dtype)
        check_finite("x", x)
        batch = x.shape[1]
        if h0 is None:
            return x.new_zeros(batch, self.hidden_size)
        check_type("h0", h0, torch.Tensor)
        if h0.shape != (batch, self.hidden_size):
            raise ValueError(
                f"h0 must have shape [{batch}, {self.hidden_size}], got {tuple(h0.shape)}"
            )
        check_input_dtype("h0", h0, self.w_in.dtype)
        check_finite("h0", h0)
        return h0

    def _outside_terms(self) -> Terms:
        """``w' [I, H]``, ``b' [H]`` and ``M [H, H]`` of the outside placement's update
        ``h_t = f(b' + x_t w' + h_{t-1} M)`` (see :meth:`_run`)."""
        inv_tau = 1.0 / self.effective_tau()
        m = torch.diag(1.0 - inv_tau) + self.recurrent_weight().T * inv_tau
        return self.w_in.T * inv_tau, (self.b_in + self.b_rec) * inv_tau, m

    def _check_lengths(self, lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``lengths`` as int64 on ``x``'s device, checked: ``[B]``, each in ``[0, T]``."""
        check_type("lengths", lengths, torch.Tensor)
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
        if lengths.shape != (x.shape[1],):
            raise ValueError(
                f"lengths must have shape [{x.shape[1]}] (one per sequence of x), got "
                f"{tuple(lengths.shape)}"
            )
        if (
            not traced(x)
            and lengths.numel()
            and not (int(lengths.min()) >= 0 and int(lengths.max()) <= x.shape[0])
        ):
            raise ValueError(
                f"lengths must lie in [0, {x.shape[0]}] (the steps of x), got "
                f"[{int(lengths.min())}, {int(lengths.max())}]"
            )
        return lengths.to(device=x.device, dtype=torch.long)

    def _run(self, x: torch.Tensor, h: torch.Tensor, keep_states: bool) -> torch.Tensor:
        """Run the recurrence from ``h``: all states ``[T + 1, B, H]`` or the last ``[B, H]``.

        ``placement="outside"``: ``f((1 - 1/tau) h + (W h + u) / tau) = f(b' + x w' + h M)``
        with ``w' = W_in^T diag(1/tau)``, ``b' = (b_in + b_rec) / tau`` and
        ``M = diag(1 - 1/tau) + W^T diag(1/tau)``, evaluated in preallocated buffers with a
        hand-written backward (:class:`_Recurrence`; the same values with or without autograd)
        or, under transforms, tracers and autocast, in plain ops (:func:`_plain_recurrence`).
        ``placement="inside"``: the step-by-step autograd graph; its drives are taken with
        ``unbind`` and, without autograd, the bias enters step by step (the same values).
        """
        if self.placement == "outside":
            terms = self._outside_terms()
            if not _buffered(x):
                states = _plain_recurrence(x, h, terms, self.activation)
            elif torch.is_grad_enabled():
                return _Recurrence.apply(x, h, *terms, self.activation, not keep_states)
            else:
                states = _run_recurrence(x, h, terms, self.activation)
            return states if keep_states else states[-1]
        inv_tau = 1.0 / self.effective_tau()
        w_rec_t = self.recurrent_weight().T
        graph = torch.is_grad_enabled()
        if graph:
            drive_in = x @ self.w_in.T + (self.b_in + self.b_rec)  # [T, B, H]
        else:
            drive_in, bias = x @ self.w_in.T, self.b_in + self.b_rec
        keep = 1.0 - inv_tau
        states_list = [h]
        drives = drive_in.unbind(0) if graph else (d + bias for d in drive_in.unbind(0))
        for drive in drives:
            act = _activation(self.activation, torch.addmm(drive, h, w_rec_t))
            h = torch.addcmul(h * keep, act, inv_tau)
            if keep_states:
                states_list.append(h)
        return torch.stack(states_list) if keep_states else h

    def simulate(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden trajectory ``[T + 1, B, H]`` (row 0 is the initial state) for inputs ``x``.

        Args:
            x: ``[T, B, I]`` inputs (time-major).
            h0: initial state ``[B, H]`` (default zeros).
        """
        return self._run(x, self._initial_state(x, h0), keep_states=True)

    def readout(self, h: torch.Tensor, heads: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``[K, B, C]`` of the chosen heads (default all) for hidden states ``[B, H]``."""
        check_type("h", h, torch.Tensor)
        if h.ndim != 2 or h.shape[1] != self.hidden_size:
            raise ValueError(f"h must have shape [B, {self.hidden_size}], got {tuple(h.shape)}")
        idx = self._check_heads(heads)
        return torch.stack([self.heads[k](h) for k in idx])

    def forward(
        self,
        x: torch.Tensor,
        h0: torch.Tensor | None = None,
        heads: Sequence[int] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[K, B, C]`` of the chosen heads read from the last hidden state.

        Args:
            x: ``[T, B, I]`` inputs.
            h0: initial state ``[B, H]`` (default zeros).
            heads: indices of the heads to evaluate (default all ``num_heads``).
            lengths: ``[B]`` integers in ``[0, T]``: sequences of their own lengths, padded to
                ``T``; each is read after its own ``lengths[b]`` steps (default: all ``T``).
                Without autograd only the running sequences are stepped.
        """
        idx = self._check_heads(heads)
        h = self._initial_state(x, h0)
        if lengths is None:  # the last state: the values of ``simulate(x, h0)[-1]``, no stack
            return self.readout(self._run(x, h, keep_states=False), idx)
        lengths = self._check_lengths(lengths, x)
        if self.placement == "outside" and not torch.is_grad_enabled() and _buffered(x):
            last = _ragged_recurrence(x, h, self._outside_terms(), self.activation, lengths)
        else:
            states = self._run(x, h, keep_states=True)
            last = states[lengths, torch.arange(x.shape[1], device=x.device)]
        return self.readout(last, idx)
