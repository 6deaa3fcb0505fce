"""One MAC counter for every model (used by tests, the reproduction and the benchmark).

Counts multiply-accumulates of every matrix multiply and convolution the model runs on the
given inputs, through a ``TorchFunctionMode`` at the ``torch`` function level. So
``nn.Linear`` and ``F.linear``, convolutions, ``torch.matmul`` / ``@`` / ``mm`` / ``bmm`` /
``mv`` / ``dot`` / ``inner`` / ``tensordot`` and their ``add*`` forms (``addmm``: Hugging
Face ``Conv1D``), ``multi_dot`` / ``chain_matmul`` (cheapest order), ``torch.einsum``
(pairwise, left to right: torch's order without opt_einsum), ``nn.Bilinear``, recurrent
layers and cells (RNN, LSTM with projections, GRU; every weight matrix once per token, layer
and direction), scaled-dot-product attention and ``nn.MultiheadAttention`` (projections and
both attention products) all count, whatever module wraps them. Elementwise ops,
normalization and pooling are not counted. Unlike ``torch.utils.flop_counter`` it needs no
sympy/dynamo import and it counts the attention products.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from neuronkit.common import eval_mode, named_input_dtypes

from ._inputs import named_values
from .tracing import call_model, split_inputs

__all__ = ["count_macs", "count_params"]


def _numel(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _mha_macs(q: Any, k: Any, qkv_w: Any, proj_w: Any, batch_first: bool) -> int:
    e, e_in = qkv_w.shape[0] // 3, qkv_w.shape[1]
    if q.ndim == 2:
        b, lq, ls = 1, q.shape[0], k.shape[0]
    elif batch_first:
        b, lq, ls = q.shape[0], q.shape[1], k.shape[1]
    else:
        b, lq, ls = q.shape[1], q.shape[0], k.shape[0]
    return int(b * (lq + 2 * ls) * e * e_in + 2 * b * lq * ls * e + b * lq * proj_w.shape[0] * e)


def _separate_mha_macs(q: Any, k: Any, weights: tuple[Any, Any, Any], proj_w: Any) -> int:
    """Like :func:`_mha_macs` for separate query / key / value projections (``kdim`` /
    ``vdim``); ``q``, ``k`` sequence-first ``[L, B, E]`` or unbatched ``[L, E]``."""
    q_w, k_w, v_w = weights
    b = 1 if q.ndim == 2 else q.shape[1]
    lq, ls, e = q.shape[0], k.shape[0], q_w.shape[0]
    proj = lq * e * q_w.shape[1] + ls * e * (k_w.shape[1] + v_w.shape[1])
    return int(b * (proj + 2 * lq * ls * e + lq * proj_w.shape[0] * e))


def _einsum_macs(equation: str, operands: Any) -> int:
    """MACs of ``torch.einsum(equation, *operands)`` contracted pairwise from the left."""
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands) or len(terms) < 2:
        return 0
    n_ell = max((op.ndim - len(t) + 3 for t, op in zip(terms, operands) if "..." in t), default=0)
    ell = "".join(chr(0x100 + i) for i in range(n_ell))  # one symbol per broadcast dimension
    sizes: dict[str, int] = {}
    expanded: list[set[str]] = []
    for term, op in zip(terms, operands, strict=True):
        if "..." in term:
            head, _, tail = term.partition("...")
            term = head + ell[n_ell - (op.ndim - len(head) - len(tail)) :] + tail
        for letter, size in zip(term, op.shape, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), int(size))
        expanded.append(set(term))
    out = set(rhs.replace("...", ell)) if "->" in equation else set()
    if "->" not in equation:  # implicit output: the letters used once (and the ellipsis)
        counts = [letter for term in expanded for letter in term]
        out = {x for x in counts if counts.count(x) == 1} | set(ell)
    macs, current = 0, expanded[0]
    for i, letters in enumerate(expanded[1:], start=1):
        joint = current | letters
        macs += _numel(sizes[letter] for letter in joint)
        later = set().union(out, *expanded[i + 1 :])
        current = joint & later
    return macs


_RNNS = {torch.rnn_tanh, torch.rnn_relu, torch.lstm, torch.gru}
_RNN_CELLS = {torch.rnn_tanh_cell, torch.rnn_relu_cell, torch.lstm_cell, torch.gru_cell}


def _rnn_macs(args: Any) -> int:
    """Every weight matrix of every layer and direction times the tokens (packed or padded)."""
    packed = isinstance(args[1], torch.Tensor) and args[1].ndim == 1
    params = args[3] if packed else args[2]
    tokens = int(args[0].shape[0]) if packed else _numel(args[0].shape[:2])
    return tokens * sum(int(w.numel()) for w in params if w.ndim == 2)


_F = torch.nn.functional
# products whose MACs are the output's size times the first operand's last axis
_MATMULS = {
    torch.matmul,
    torch.Tensor.__matmul__,
    torch.linalg.matmul,
    torch.mm,
    torch.bmm,
    torch.mv,
    torch.dot,
    torch.vdot,
    torch.inner,
    torch.Tensor.matmul,
    torch.Tensor.mm,
    torch.Tensor.bmm,
    torch.Tensor.mv,
    torch.Tensor.dot,
    torch.Tensor.vdot,
    torch.Tensor.inner,
}
# the same with a leading summand: (input, mat1 / batch1 / mat, mat2 / batch2 / vec)
_ADDMMS = {
    torch.addmm,
    torch.baddbmm,
    torch.addmv,
    torch.Tensor.addmm,
    torch.Tensor.baddbmm,
    torch.Tensor.addmv,
}
_ADDBMMS = {torch.addbmm, torch.Tensor.addbmm}  # sums the batch of products: no batch axis out
_CHAINS = {torch.linalg.multi_dot, torch.chain_matmul}
_CONVS = {_F.conv1d, _F.conv2d, _F.conv3d}
_CONV_TRANSPOSES = {_F.conv_transpose1d, _F.conv_transpose2d, _F.conv_transpose3d}


def _chain_macs(matrices: Any) -> int:
    """MACs of a matrix chain in the cheapest order (what ``torch.linalg.multi_dot`` runs); a
    1-D first / last operand is a row / column vector."""
    first, last = matrices[0], matrices[-1]
    dims = [int(first.shape[0]) if first.ndim == 2 else 1]
    dims += [int(m.shape[-1]) for m in matrices[:-1]]
    dims.append(int(last.shape[-1]) if last.ndim == 2 else 1)
    n = len(matrices)
    cost = [[0] * n for _ in range(n)]
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            cost[i][j] = min(
                cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                for k in range(i, j)
            )
    return cost[0][n - 1]


def _arg(args: Any, kwargs: dict[str, Any], i: int, *names: str) -> Any:
    """Argument ``i`` of a call, given by position or by one of its keyword ``names``."""
    if len(args) > i:
        return args[i]
    return next(kwargs[n] for n in names if n in kwargs)


class _MacCounter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is _F.linear:
            w = _arg(args, kwargs, 1, "weight")
            # rows x weight size (a division by in_features would fail for in_features = 0)
            self.macs += _numel(args[0].shape[:-1]) * _numel(w.shape)
        elif func in _MATMULS:
            a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other", "mat2")
            self.macs += _numel(out.shape) * int(a.shape[-1]) if a.ndim and b.ndim else 0
        elif func in _ADDMMS:  # BLOOM: alibi.baddbmm(batch1=q, batch2=k, ...)
            a = _arg(args, kwargs, 1, "mat1", "batch1", "mat")
            self.macs += _numel(out.shape) * int(a.shape[-1])
        elif func in _ADDBMMS:
            a, b = _arg(args, kwargs, 1, "batch1"), _arg(args, kwargs, 2, "batch2")
            self.macs += _numel(a.shape) * int(b.shape[-1])
        elif func is torch.tensordot:  # out = free_a x free_b; a = free_a x c, b = c x free_b
            a, b = _arg(args, kwargs, 0, "a"), _arg(args, kwargs, 1, "b")
            if out.numel():
                self.macs += round((_numel(a.shape) * _numel(b.shape) * out.numel()) ** 0.5)
        elif func in _CHAINS:
            matrices = _arg(args, kwargs, 0, "tensors", "matrices")
            if func is torch.chain_matmul and isinstance(matrices, torch.Tensor):
                matrices = args  # chain_matmul(*matrices)
            self.macs += _chain_macs(list(matrices))
        elif func is torch.einsum:
            ops = args[1:] if len(args) > 2 or isinstance(args[1], torch.Tensor) else args[1]
            self.macs += _einsum_macs(args[0], ops)
        elif func is _F.bilinear:  # out[n, o] = sum_ij x1[n, i] W[o, i, j] x2[n, j]
            w = _arg(args, kwargs, 2, "weight")
            self.macs += _numel(args[0].shape[:-1]) * _numel(w.shape)
        elif func in _RNNS:
            self.macs += _rnn_macs(args)
        elif func in _RNN_CELLS:  # (input, hx, w_ih, w_hh, ...)
            self.macs += _numel(args[0].shape[:-1]) * (args[2].numel() + args[3].numel())
        elif func in _CONVS:
            w = _arg(args, kwargs, 1, "weight")
            self.macs += _numel(out.shape) * _numel(w.shape[1:])
        elif func in _CONV_TRANSPOSES:  # every input element feeds out/groups x kernel outputs
            w = _arg(args, kwargs, 1, "weight")
            self.macs += _numel(args[0].shape) * _numel(w.shape[1:])
        elif func is _F.scaled_dot_product_attention:
            q, k = _arg(args, kwargs, 0, "query"), _arg(args, kwargs, 1, "key")
            v = _arg(args, kwargs, 2, "value")  # its head size may differ from q's (MLA)
            # q @ k^T: [..., L, E] x [..., E, S]; attn @ v: [..., L, S] x [..., S, Ev]
            head = int(q.shape[-1]) + int(v.shape[-1])
            self.macs += _numel(q.shape[:-1]) * int(k.shape[-2]) * head
        elif func is _F.multi_head_attention_forward:
            if args[5] is None:  # kdim / vdim: separate projection weights
                weights = tuple(kwargs[f"{n}_proj_weight"] for n in ("q", "k", "v"))
                self.macs += _separate_mha_macs(args[0], args[1], weights, args[11])
            else:
                self.macs += _mha_macs(args[0], args[1], args[5], args[11], False)
        elif func is torch._native_multi_head_attention:
            self.macs += _mha_macs(args[0], args[1], args[5], args[7], True)
        return out


def count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on ``example_inputs``.

    Args:
        model: any ``nn.Module``; run in eval mode under ``torch.no_grad`` (state restored).
        example_inputs: a tensor, a tuple of positional inputs or a dict of keyword inputs
            (the batch size counts).

    Returns:
        the MAC count (int).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    values, names = split_inputs(example_inputs)
    counter = _MacCounter()
    named = named_values("example_inputs", values, names)
    with torch.no_grad(), eval_mode(model), named_input_dtypes(model, *named), counter:
        call_model(model, values, names)
    return counter.macs


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters())
