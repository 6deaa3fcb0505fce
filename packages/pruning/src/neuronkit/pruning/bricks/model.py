"""A tiny transformer whose feed-forward neurons are exposed, gated and analysable.

Substrate of :mod:`neuronkit.pruning.bricks` (Xiao et al. 2024, "Configurable Foundation
Models: Building LLMs from a Modular Perspective"): *emergent bricks* are partitions of the
neurons of the feed-forward (FFN) layers, so every FFN here returns its hidden activations
``h = relu(x W_in^T + b_in)`` and accepts a *gate*, a multiplicative neuron mask that is either
a fixed tensor (ablating a brick) or a function of the FFN input (routing to bricks per token,
MoEfication). A gated neuron contributes nothing, exactly as if it were not computed.

Layout: token + learned position embeddings, ``n_layers`` pre-LayerNorm blocks (bidirectional
multi-head self-attention, then the FFN, each residual), a final LayerNorm and a linear head
predicting one token per position. Shapes: tokens ``[B, T]``, logits ``[B, T, V]``, FFN input
``[B, T, d_model]``, FFN hidden ``[B, T, d_ff]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import (
    check_adam_dtype,
    check_finite,
    check_ndim,
    check_number,
    check_seed,
    check_type,
    correct_predictions,
    detached_input,
    eval_mode,
    grad_enabled,
    progress,
    values_hidden,
)

from .tasks import IGNORE_INDEX, TaskData

__all__ = [
    "FFN",
    "Block",
    "BrickTransformer",
    "Gate",
    "SelfAttention",
    "TrainResult",
    "task_accuracy",
    "train_multitask",
]

#: a gate of one FFN: ``None`` (dense), a mask tensor broadcastable to ``[B, T, d_ff]``, or a
#: function ``ffn_input [B, T, d_model] -> mask [B, T, d_ff]``.
Gate = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


def _apply_gate(gate: Gate, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    if gate is None:
        return h
    mask = gate(x) if callable(gate) and not isinstance(gate, torch.Tensor) else gate
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"gate must give a torch.Tensor mask, got {type(mask).__name__}")
    try:
        return h * mask.to(device=h.device, dtype=h.dtype)
    except RuntimeError as err:
        raise ValueError(
            f"gate mask of shape {tuple(mask.shape)} must broadcast to the hidden shape "
            f"{tuple(h.shape)}"
        ) from err


class FFN(nn.Module):
    """Position-wise feed-forward layer ``x -> relu(x W_in^T + b_in) W_out^T + b_out``.

    Args:
        d_model: width of the residual stream.
        d_ff: number of hidden neurons.

    Attributes:
        w_in: ``Linear(d_model, d_ff)``; row ``i`` of its weight is neuron ``i``'s *key*.
        w_out: ``Linear(d_ff, d_model)``; column ``i`` of its weight is neuron ``i``'s *value*.
    """

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        check_number("d_model", d_model, ge=1, integer=True)
        check_number("d_ff", d_ff, ge=1, integer=True)
        self.w_in = nn.Linear(d_model, d_ff)
        self.w_out = nn.Linear(d_ff, d_model)

    @property
    def d_model(self) -> int:
        return int(self.w_in.in_features)

    @property
    def d_ff(self) -> int:
        return int(self.w_in.out_features)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations ``[..., d_ff]`` of an input ``[..., d_model]`` (before any gate)."""
        return F.relu(self.w_in(x))

    def forward(self, x: torch.Tensor, gate: Gate = None) -> torch.Tensor:
        """``[..., d_model] -> [..., d_model]``, hidden neurons multiplied by ``gate``."""
        return self.w_out(_apply_gate(gate, x, self.hidden(x)))

    def forward_with_hidden(
        self, x: torch.Tensor, gate: Gate = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output [..., d_model], hidden [..., d_ff])``; the hidden is taken before the gate."""
        h = self.hidden(x)
        return self.w_out(_apply_gate(gate, x, h)), h


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention ``[B, T, d] -> [B, T, d]`` (no mask, no dropout).

    Written with plain batched matmuls: for the few-token sequences used here this is several
    times faster on CPU than the fused kernels of ``nn.MultiheadAttention``.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        check_number("d_model", d_model, ge=1, integer=True)
        check_number("n_heads", n_heads, ge=1, integer=True)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model={d_model}, got {n_heads}")
        super().__init__()
        self.n_heads = int(n_heads)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln1(x))``, then ``x + ffn(ln2(x))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        check_number("d_model", d_model, ge=1, integer=True)
        check_number("n_heads", n_heads, ge=1, integer=True)
        check_number("d_ff", d_ff, ge=1, integer=True)
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = FFN(d_model, d_ff)

    def forward(
        self, x: torch.Tensor, gate: Gate = None, cache: dict[str, list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        f = self.ln2(x)
        if cache is None:
            return x + self.ffn(f, gate)
        out, h = self.ffn.forward_with_hidden(f, gate)
        cache["ffn_input"].append(f)
        cache["ffn_hidden"].append(h)
        return x + out


class BrickTransformer(nn.Module):
    """Tiny bidirectional transformer predicting one token per position.

    Args:
        vocab_size: number of token ids (``V``).
        seq_len: maximal sequence length ``T`` (learned position embeddings).
        d_model: residual width.
        n_heads: attention heads (must divide ``d_model``).
        n_layers: number of blocks (each has one :class:`FFN`).
        d_ff: hidden neurons per FFN.

    ``forward(tokens [B, T], gates=None) -> logits [B, T, V]``; ``gates`` is ``None`` or one
    :data:`Gate` per layer.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        *,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 256,
    ) -> None:
        super().__init__()
        for name, v in (
            ("vocab_size", vocab_size),
            ("seq_len", seq_len),
            ("d_model", d_model),
            ("n_heads", n_heads),
            ("n_layers", n_layers),
            ("d_ff", d_ff),
        ):
            check_number(name, v, ge=1, integer=True)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model={d_model}, got {n_heads}")
        self.vocab_size = int(vocab_size)
        self.seq_len = int(seq_len)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, d_model) / math.sqrt(d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    @property
    def ffns(self) -> list[FFN]:
        """The FFN layers, in depth order."""
        return [b.ffn for b in self.blocks if isinstance(b, Block) and isinstance(b.ffn, FFN)]

    def _check_tokens(self, tokens: Any) -> None:
        check_type("tokens", tokens, torch.Tensor)
        check_ndim("tokens", tokens, 2, "[B, T]")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be an int64 tensor, got dtype {tokens.dtype}")
        if tokens.shape[1] > self.seq_len:
            raise ValueError(
                f"tokens must have at most {self.seq_len} positions, got {tokens.shape[1]}"
            )
        if (
            tokens.numel()
            and not values_hidden(tokens)
            and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size)
        ):
            raise ValueError(
                f"tokens must be ids in [0, {self.vocab_size}), got range "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )

    def _gates(self, gates: Sequence[Gate] | None) -> list[Gate]:
        if gates is None:
            return [None] * len(self.blocks)
        if isinstance(gates, torch.Tensor) or not isinstance(gates, Sequence):
            raise TypeError(
                f"gates must be None or a sequence of per-layer gates, got {type(gates).__name__}"
            )
        if len(gates) != len(self.blocks):
            raise ValueError(
                f"gates must have one entry per layer ({len(self.blocks)}), got {len(gates)}"
            )
        return list(gates)

    def _run(
        self, tokens: torch.Tensor, gates: Sequence[Gate] | None, cache: dict | None
    ) -> torch.Tensor:
        self._check_tokens(tokens)
        gs = self._gates(gates)
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block, g in zip(self.blocks, gs):
            x = block(x, g, cache)
        return self.head(self.ln_f(x))

    def forward(self, tokens: torch.Tensor, gates: Sequence[Gate] | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]`` of ``tokens [B, T]`` with optional per-layer FFN ``gates``."""
        return self._run(tokens, gates, None)

    def run_with_cache(
        self, tokens: torch.Tensor, gates: Sequence[Gate] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Logits plus every FFN's input ``[B, T, d_model]`` and ungated hidden ``[B, T, d_ff]``.

        With gates, layer ``l``'s input already reflects the gated layers before it; its hidden
        activations are those *before* its own gate.
        """
        cache: dict[str, list[torch.Tensor]] = {"ffn_input": [], "ffn_hidden": []}
        logits = self._run(tokens, gates, cache)
        return logits, cache["ffn_input"], cache["ffn_hidden"]


def _check_data(data: Any) -> None:
    check_type("data", data, TaskData)
    if len(data) == 0:
        raise ValueError("data must hold at least one sequence, got 0")


def task_accuracy(
    model: BrickTransformer,
    data: TaskData,
    gates: Sequence[Gate] | None = None,
    *,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Per-task token accuracy (labelled positions only) of ``model`` on ``data``.

    Args:
        model: a :class:`BrickTransformer` (evaluated in eval mode, no gradient; its mode is
            restored).
        data: the evaluation :class:`TaskData`.
        gates: optional per-layer FFN gates (ablation masks or routers).
        batch_size: sequences per forward pass.

    Returns:
        ``[n_tasks]`` float tensor in ``[0, 1]`` (NaN for a task with no sequence).
    """
    check_type("model", model, BrickTransformer)
    _check_data(data)
    check_number("batch_size", batch_size, ge=1, integer=True)
    n = len(data.tasks)
    correct = torch.zeros(n, dtype=torch.float64)
    total = torch.zeros(n, dtype=torch.float64)
    with eval_mode(model), torch.no_grad():
        for s in range(0, len(data), batch_size):
            tok = data.tokens[s : s + batch_size]
            tgt = data.targets[s : s + batch_size]
            tid = data.task_ids[s : s + batch_size]
            valid = tgt != IGNORE_INDEX
            hit = (correct_predictions(model(tok, gates), tgt) & valid).sum(1).double()
            # the per-task tallies stay on the CPU (a small result)
            correct.index_add_(0, tid.cpu(), hit.cpu())
            total.index_add_(0, tid.cpu(), valid.sum(1).double().cpu())
    return (correct / total).float()


@dataclass(frozen=True)
class TrainResult:
    """History of :func:`train_multitask`: the loss of every ``log_every``-th step."""

    steps: list[int]
    loss: list[float]


@grad_enabled("train_multitask")
def train_multitask(
    model: BrickTransformer,
    data: TaskData,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 0.01,
    warmup: int = 50,
    seed: int = 0,
    log_every: int = 50,
    parameters: Sequence[nn.Parameter] | None = None,
    gates: Sequence[Gate] | None = None,
    activation_l1: float = 0.0,
    show_progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` in place with AdamW on the token cross-entropy of all tasks mixed; it
    is left in eval mode.

    Learning rate: linear warm-up for ``warmup`` steps, then cosine decay to zero. With
    ``activation_l1 > 0`` the loss adds ``activation_l1 * sum_l mean(h_l)``, an L1 penalty on
    the (non-negative) FFN activations that drives them to the sparse-activation regime of
    large models (the ProSparse recipe discussed by Xiao et al. 2024; Song et al. 2024).

    Args:
        model: the :class:`BrickTransformer` to train (in place).
        data: training :class:`TaskData`; minibatches are drawn uniformly with replacement.
        steps: optimizer steps (>= 1).
        batch_size: sequences per step.
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        warmup: warm-up steps (>= 0).
        seed: seed of the minibatch sampling.
        log_every: record the loss every this many steps.
        parameters: train only these parameters (a customized brick); default all.
        gates: optional per-layer FFN gates applied during training.
        activation_l1: weight of the FFN activation L1 penalty (>= 0).
        show_progress: a bar over the steps (``None``: only on a terminal).

    Returns:
        the :class:`TrainResult` loss history (cross-entropy only).
    """
    check_type("model", model, BrickTransformer)
    _check_data(data)
    check_number("steps", steps, ge=1, integer=True)
    check_number("batch_size", batch_size, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_number("weight_decay", weight_decay, ge=0.0)
    check_number("warmup", warmup, ge=0, integer=True)
    check_seed(seed)
    check_number("log_every", log_every, ge=1, integer=True)
    check_number("activation_l1", activation_l1, ge=0.0)
    params = list(model.parameters()) if parameters is None else list(parameters)
    if not params:
        raise ValueError("parameters must hold at least one parameter, got none")
    for p in params:
        check_type("parameters[i]", p, nn.Parameter)
        check_finite("parameters[i]", p.detach())
    if parameters is None:
        check_adam_dtype("model", model.named_parameters())
    else:
        check_adam_dtype("parameters", ((f"parameters[{i}]", p) for i, p in enumerate(params)))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)

    def schedule(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    gen = torch.Generator().manual_seed(int(seed))
    hist_steps: list[int] = []
    hist_loss: list[float] = []
    # inference tensors (made under torch.inference_mode) cannot be saved for backward
    tokens, targets = detached_input(data.tokens), detached_input(data.targets)
    model.train()
    for t in progress(range(steps), show_progress=show_progress, desc="train_multitask"):
        idx = torch.randint(0, len(data), (batch_size,), generator=gen)
        if activation_l1 > 0:
            logits, _, hidden = model.run_with_cache(tokens[idx], gates)
        else:
            logits, hidden = model(tokens[idx], gates), []
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets[idx].reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
        total = loss
        if hidden:
            total = loss + activation_l1 * sum(h.mean() for h in hidden)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        sched.step()
        if (t + 1) % log_every == 0 or t + 1 == steps:
            hist_steps.append(t + 1)
            hist_loss.append(float(loss.detach()))
    model.eval()
    return TrainResult(hist_steps, hist_loss)
