"""Rich versus lazy learning in a recurrent network: the RNN experiment of Liu et al. (2024).

Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie, "How connectivity structure shapes rich
and lazy learning in neural circuits" (ICLR 2024), Fig. 1, as their code
(``Helena-Yuhan-Liu/BioRNN_RichLazy``, ``main.py``) runs it: a ReLU RNN
``h_t = relu(W_ih x_t + W_hh h_{t-1})``, ``h_0 = 0``, readout ``y_t = W_ho h_t`` (no biases;
their continuous-time RNN with ``dt = tau``) learns the two-alternative perceptual decision task
(neurogym ``PerceptualDecisionMaking-v0``, 7 stimulus steps and 1 decision step of 100 ms) by
SGD with momentum on the cross-entropy of every time step. The initial recurrent weights are
the rank-``r`` truncation of one Gaussian matrix rescaled to its Frobenius norm
(:func:`~neuronkit.theory.lazy_rich.truncated_rank_weight`). Richness: the change of ``W_hh``
and the alignment ``<K_0, K_T>_F / (||K_0||_F ||K_T||_F)`` between the initial and final tangent
kernels of ``W_hh``, resolved over trials, time steps and outputs (lower alignment: richer).
Shapes are batch-first: inputs ``[B, T, 3]``, labels ``[B, T]``, outputs ``[B, T, 3]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from neuronkit.common import check_number, correct_predictions, grad_enabled, progress

from .._recurrence import recurrence
from .._utils import as_float_tensor, check_layout, check_positive_int, torch_generator
from ..measures import effective_rank, empirical_ntk, kernel_alignment, relative_change

__all__ = [
    "RecurrentRichLazyResult",
    "ReluRNN",
    "perceptual_decision_trials",
    "train_recurrent_rich_lazy",
]

_COHERENCES = (0.0, 6.4, 12.8, 25.6, 51.2)


def perceptual_decision_trials(
    n: int,
    *,
    stimulus_steps: int = 7,
    decision_steps: int = 1,
    coherences: Sequence[float] = _COHERENCES,
    sigma: float = 0.1,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Trials of the two-alternative perceptual decision task (neurogym's generator).

    Input channels: fixation (1 until the decision period), then the two stimulus channels
    ``cos(theta_k - theta_choice) * coh / 200 + 0.5 + sigma * noise`` (``theta = 0, pi``) during
    the stimulus period, 0 in the decision period. Labels: 0 (fixate) before the decision
    period, ``1 + choice`` during it. ``coh`` is drawn from ``coherences`` and the choice from
    {0, 1}, per trial. ``sigma = 0.1`` is neurogym's ``1 / sqrt(dt)`` at ``dt = 100``.

    Returns:
        inputs ``[n, T, 3]`` and labels ``[n, T]`` (int64), ``T = stimulus_steps +
        decision_steps``.
    """
    n = check_positive_int("n", n)
    stim = check_positive_int("stimulus_steps", stimulus_steps)
    dec = check_positive_int("decision_steps", decision_steps)
    check_number("sigma", sigma, ge=0)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    cohs = as_float_tensor("coherences", list(coherences), 1, "[K]")
    if cohs.numel() == 0:
        raise ValueError("coherences must hold at least one value, got none")
    gen = torch_generator(seed)
    choice = torch.randint(0, 2, (n,), generator=gen)
    coh = cohs[torch.randint(0, cohs.numel(), (n,), generator=gen)]
    theta = torch.tensor([0.0, math.pi], dtype=torch.float64)
    mean = torch.cos(theta[None, :] - theta[choice][:, None]) * (coh[:, None] / 200.0) + 0.5
    noise = torch.randn(n, stim, 2, generator=gen, dtype=torch.float64)
    x = torch.zeros(n, stim + dec, 3, dtype=torch.float64)
    x[:, :stim, 0] = 1.0
    x[:, :stim, 1:] = mean[:, None, :] + sigma * noise
    labels = torch.zeros(n, stim + dec, dtype=torch.int64)
    labels[:, stim:] = choice[:, None] + 1
    return x.to(dtype), labels


class ReluRNN(torch.nn.Module):
    """``h_t = relu(W_ih x_t + W_hh h_{t-1})``, ``h_0 = 0``, ``y_t = W_ho h_t``; no biases.

    ``weight_ih [h, I]``, ``weight_hh [h, h]`` and ``weight_ho [O, h]`` are given (copied, cast
    to ``dtype``, float32 or float64). ``x [B, T, I] -> [B, T, O]``, ``x`` in that dtype.
    """

    def __init__(
        self,
        weight_ih: Any,
        weight_hh: Any,
        weight_ho: Any,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        w_ih = as_float_tensor("weight_ih", weight_ih, 2, "[h, I]")
        w_hh = as_float_tensor("weight_hh", weight_hh, 2, "[h, h]")
        w_ho = as_float_tensor("weight_ho", weight_ho, 2, "[O, h]")
        h = w_hh.shape[0]
        if w_hh.shape[1] != h:
            raise ValueError(f"weight_hh must be square [h, h], got shape {tuple(w_hh.shape)}")
        if w_ih.shape[0] != h:
            raise ValueError(
                f"weight_ih must have {h} rows (units of weight_hh), got {w_ih.shape[0]}"
            )
        if w_ho.shape[1] != h:
            raise ValueError(
                f"weight_ho must have {h} columns (units of weight_hh), got {w_ho.shape[1]}"
            )
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.weight_ih = torch.nn.Parameter(w_ih.to(dtype, copy=True))
        self.weight_hh = torch.nn.Parameter(w_hh.to(dtype, copy=True))
        self.weight_ho = torch.nn.Parameter(w_ho.to(dtype, copy=True))

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, T, h]`` for inputs ``x [B, T, I]`` in the weights' dtype (the
        theory package's shared recurrence with ``b' = 0``: a hand-written backward in
        training, plain ops under ``torch.func``)."""
        inputs = self.weight_ih.shape[1]
        check_layout("x", x, 3, f"[B, T, {inputs}]", inputs, self.weight_ih.dtype)
        units = self.weight_hh.shape[0]
        h0 = x.new_zeros(x.shape[0], units)
        terms = (self.weight_ih.T, h0.new_zeros(units), self.weight_hh.T)
        return recurrence(x.transpose(0, 1), h0, terms, "relu")[1:].transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``[B, T, O]`` for inputs ``x [B, T, I]`` (the weights' dtype)."""
        return self.hidden_states(x) @ self.weight_ho.T


@dataclass(frozen=True)
class RecurrentRichLazyResult:
    """Richness measures of one RNN training run.

    Attributes:
        weight_change: ``||W_hh,T - W_hh,0||_F / ||W_hh,0||_F``.
        kernel_alignment: ``<K_0, K_T>_F / (||K_0||_F ||K_T||_F)`` of the tangent kernels of
            ``W_hh`` (output-resolved, uncentred), the reference's "tangent kernel alignment".
        kernel_distance: ``1 - kernel_alignment``.
        ntk_change: ``||K_T - K_0||_F / ||K_0||_F`` of the NTK over all three weight matrices.
        representation_alignment: the same alignment between the Gram matrices of the hidden
            states at the last time step, before and after training.
        effective_rank_init: effective rank of ``W_hh,0``.
        final_loss, accuracy: cross-entropy over all steps and decision accuracy (last step)
            on held-out trials after training.
    """

    weight_change: float
    kernel_alignment: float
    kernel_distance: float
    ntk_change: float
    representation_alignment: float
    effective_rank_init: float
    final_loss: float
    accuracy: float


def _resolved(kernel: torch.Tensor) -> torch.Tensor:
    """``[N, N, O, O] -> [N O, N O]``: the kernel over (trial, output) pairs."""
    n, _, o, _ = kernel.shape
    return kernel.permute(0, 2, 1, 3).reshape(n * o, n * o)


def _kernels(model: ReluRNN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rec = _resolved(empirical_ntk(model, x, params={"weight_hh": model.weight_hh}, output="full"))
    rest = {"weight_ih": model.weight_ih, "weight_ho": model.weight_ho}
    return rec, rec + _resolved(empirical_ntk(model, x, params=rest, output="full"))


@grad_enabled("train_recurrent_rich_lazy")
def train_recurrent_rich_lazy(
    model: ReluRNN,
    *,
    iterations: int = 10000,
    batch_size: int = 32,
    lr: float = 0.003,
    momentum: float = 0.9,
    kernel_trials: int = 32,
    eval_trials: int = 512,
    seed: int | torch.Generator | None = None,
    show_progress: bool | None = None,
) -> RecurrentRichLazyResult:
    """SGD (with momentum) on the perceptual decision task, in place, with richness measures.

    Defaults are the reference's (``main.py``: 10000 iterations of 32 fresh trials, lr 0.003,
    momentum 0.9, kernels on 32 trials drawn before training). Every parameter is trained.
    The model must take 3 inputs and give 3 outputs.

    Args:
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.
    """
    if not isinstance(model, ReluRNN):
        raise TypeError(f"model must be a ReluRNN, got {type(model).__name__}")
    if model.weight_ih.shape[1] != 3 or model.weight_ho.shape[0] != 3:
        raise ValueError(
            "model must have 3 inputs and 3 outputs for the decision task, got "
            f"{model.weight_ih.shape[1]} and {model.weight_ho.shape[0]}"
        )
    iterations = check_positive_int("iterations", iterations)
    batch_size = check_positive_int("batch_size", batch_size)
    check_number("lr", lr, gt=0)
    check_number("momentum", momentum, ge=0, lt=1)
    kernel_trials = check_positive_int("kernel_trials", kernel_trials)
    eval_trials = check_positive_int("eval_trials", eval_trials)
    gen = torch_generator(seed)
    p = model.weight_hh
    dev, dt = p.device, p.dtype
    xk, _ = perceptual_decision_trials(kernel_trials, seed=gen, dtype=dt)
    xk = xk.to(dev)
    w0 = p.detach().clone()
    k0_rec, k0_full = _kernels(model, xk)
    with torch.no_grad():
        r0 = model.hidden_states(xk)[:, -1]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for _ in progress(
        range(iterations), show_progress=show_progress, desc="train_recurrent_rich_lazy"
    ):
        x, y = perceptual_decision_trials(batch_size, seed=gen, dtype=dt)
        x, y = x.to(dev), y.to(dev)
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 3), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
    kt_rec, kt_full = _kernels(model, xk)
    xe, ye = perceptual_decision_trials(eval_trials, seed=gen, dtype=dt)
    xe, ye = xe.to(dev), ye.to(dev)
    with torch.no_grad():
        rt = model.hidden_states(xk)[:, -1]
        out = model(xe)
        final = float(torch.nn.functional.cross_entropy(out.reshape(-1, 3), ye.reshape(-1)))
        acc = float(correct_predictions(out[:, -1], ye[:, -1]).double().mean())
    ka = kernel_alignment(k0_rec, kt_rec)
    return RecurrentRichLazyResult(
        weight_change=relative_change(p, w0),
        kernel_alignment=ka,
        kernel_distance=1.0 - ka,
        ntk_change=relative_change(kt_full, k0_full),
        representation_alignment=kernel_alignment(r0 @ r0.T, rt @ rt.T),
        effective_rank_init=effective_rank(w0),
        final_loss=final,
        accuracy=acc,
    )
