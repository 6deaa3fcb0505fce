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
from collections.abc import Sequence

import torch
import torch.nn as nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_number,
    check_type,
    integer_dtype,
    plain_tensor,
)

from .._recurrence import Terms, apply_activation, last_states, recurrence
from .._utils import check_input_dtype, check_positive_int, torch_generator, traced

__all__ = ["ACTIVATIONS", "PLACEMENTS", "TimescaleRNN", "timescale_rnn_step"]

ACTIVATIONS = ("leaky_relu", "relu", "tanh", "sigmoid")
PLACEMENTS = ("outside", "inside")


def _step(
    h: torch.Tensor,
    drive: torch.Tensor,
    inv_tau: torch.Tensor,
    activation: str,
    placement: str,
) -> torch.Tensor:
    if placement == "outside":
        return apply_activation(activation, h + inv_tau * (drive - h))
    return h + inv_tau * (apply_activation(activation, drive) - h)


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
            exclude self-connections); ``h``, ``x_in`` and ``bias`` in its (floating) dtype.
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
    if not w_rec.is_floating_point():  # torch's bare matmul dtype error otherwise
        raise TypeError(f"w_rec must be a floating tensor, got dtype {w_rec.dtype}")
    for name, t in (("h", h), ("x_in", x_in), ("bias", bias)):
        check_input_dtype(name, t, w_rec.dtype, owner="w_rec")
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
        if not integer_dtype(lengths):
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
        ``M = diag(1 - 1/tau) + W^T diag(1/tau)``, evaluated by :mod:`.._recurrence` (in
        preallocated buffers with a hand-written backward, or in plain ops under transforms,
        tracers and autocast; the same values).
        ``placement="inside"``: the step-by-step autograd graph; its drives are taken with
        ``unbind`` and, without autograd, the bias enters step by step (the same values).
        """
        if self.placement == "outside":
            return recurrence(x, h, self._outside_terms(), self.activation, keep_states=keep_states)
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
            act = apply_activation(self.activation, torch.addmm(drive, h, w_rec_t))
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
        """Logits ``[K, B, C]`` of the chosen heads (default all) for hidden states ``[B, H]``
        (the model's dtype)."""
        check_type("h", h, torch.Tensor)
        if h.ndim != 2 or h.shape[1] != self.hidden_size:
            raise ValueError(f"h must have shape [B, {self.hidden_size}], got {tuple(h.shape)}")
        check_input_dtype("h", h, self.w_in.dtype)
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
        if self.placement == "outside":
            last = last_states(x, h, self._outside_terms(), self.activation, lengths)
        else:
            states = self._run(x, h, keep_states=True)
            last = states[lengths, torch.arange(x.shape[1], device=x.device)]
        return self.readout(last, idx)
