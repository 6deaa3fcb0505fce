"""Brick growing: add neurons (a new partition) to an FFN without changing its function.

Xiao et al. (2024), "Configurable Foundation Models: Building LLMs from a Modular Perspective"
(brick operation *growing*): capacity for new abilities is added as new neurons / bricks while
the model's current function is preserved at initialisation, so growing costs nothing before
the new brick is trained. Two function-preserving initialisations:

- ``"zero"``: new key vectors (rows of ``W_in``) random, new value vectors (columns of
  ``W_out``) zero: the new neurons fire but contribute nothing until trained; gradients reach
  their values immediately.
- ``"split"`` (Net2WiderNet, Chen, Goodfellow & Shlens 2016): copy existing neurons and halve
  the value vectors of each original and its copy, so their summed contribution is unchanged.
"""

from __future__ import annotations

import copy

import torch

from neuronkit.common import check_choice, check_number, check_seed, check_type

from .model import FFN, BrickTransformer

__all__ = ["GROW_METHODS", "grow_ffn", "grow_model"]

#: initialisations of the new neurons in :func:`grow_ffn`.
GROW_METHODS = ("zero", "split")


def grow_ffn(
    ffn: FFN,
    n_new: int,
    *,
    method: str = "zero",
    init_std: float | None = None,
    seed: int = 0,
) -> tuple[FFN, torch.Tensor]:
    """A copy of ``ffn`` with ``n_new`` more hidden neurons computing the same function.

    Args:
        ffn: the :class:`FFN` (``d_ff`` neurons); not modified.
        n_new: neurons to add (>= 1; at most ``d_ff`` for ``"split"``).
        method: ``"zero"`` or ``"split"`` (see the module docstring).
        init_std: ``"zero"``: std of the new keys (default: the std of the existing keys).
        seed: seed of the new keys (``"zero"``) or of the neurons to split (``"split"``).

    Returns:
        ``(grown, new_index)``: the grown :class:`FFN` (``d_ff + n_new`` neurons; new neurons
        last) and ``[n_new]`` the indices of the new neurons (the new brick).
    """
    check_type("ffn", ffn, FFN)
    check_number("n_new", n_new, ge=1, integer=True)
    check_choice("method", method, GROW_METHODS)
    check_seed(seed)
    if init_std is not None:
        check_number("init_std", init_std, ge=0.0)
    h, d = ffn.d_ff, ffn.d_model
    if method == "split" and n_new > h:
        raise ValueError(f"n_new must be <= d_ff={h} for method='split', got {n_new}")
    gen = torch.Generator().manual_seed(int(seed))
    w_in = ffn.w_in.weight.detach()
    b_in = ffn.w_in.bias.detach()
    w_out = ffn.w_out.weight.detach()
    if method == "zero":
        std = float(w_in.std()) if init_std is None else float(init_std)
        # drawn on the CPU generator, then moved: the same keys on every device
        new_w_in = torch.randn(n_new, d, generator=gen, dtype=w_in.dtype).to(w_in.device) * std
        new_b_in = torch.zeros(n_new, dtype=b_in.dtype, device=b_in.device)
        new_w_out = torch.zeros(d, n_new, dtype=w_out.dtype, device=w_out.device)
        old_w_out = w_out.clone()
    else:
        src = torch.randperm(h, generator=gen)[:n_new]
        new_w_in = w_in[src].clone()
        new_b_in = b_in[src].clone()
        old_w_out = w_out.clone()
        old_w_out[:, src] = w_out[:, src] / 2
        new_w_out = w_out[:, src] / 2
    with torch.random.fork_rng(devices=[]):  # default init, overwritten below
        grown = FFN(d, h + n_new).to(device=w_in.device, dtype=w_in.dtype)
    with torch.no_grad():
        grown.w_in.weight.copy_(torch.cat([w_in, new_w_in], 0))
        grown.w_in.bias.copy_(torch.cat([b_in, new_b_in]))
        grown.w_out.weight.copy_(torch.cat([old_w_out, new_w_out], 1))
        grown.w_out.bias.copy_(ffn.w_out.bias.detach())
    return grown, torch.arange(h, h + n_new)


def grow_model(
    model: BrickTransformer,
    layer: int,
    n_new: int,
    *,
    method: str = "zero",
    init_std: float | None = None,
    seed: int = 0,
) -> tuple[BrickTransformer, torch.Tensor]:
    """A copy of ``model`` whose FFN at ``layer`` grew by ``n_new`` neurons (:func:`grow_ffn`).

    Returns:
        ``(grown_model, new_index)``; ``model`` is not modified.
    """
    check_type("model", model, BrickTransformer)
    check_number("layer", layer, ge=0, lt=len(model.blocks), integer=True)
    grown_ffn, idx = grow_ffn(model.ffns[layer], n_new, method=method, init_std=init_std, seed=seed)
    out = copy.deepcopy(model)
    out.blocks[layer].ffn = grown_ffn
    return out, idx
