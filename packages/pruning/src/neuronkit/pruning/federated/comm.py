"""Uplink accounting and the 1-bit wire format of sign supermasks.

Vallapuram et al. (2022), "HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign
Supermask": a HideNseek client uploads one bit per unpruned weight (its sign), while a dense
FedAvg client uploads every parameter as a 32-bit float. :func:`pack_signs` and
:func:`unpack_signs` are the wire format (``numpy.packbits``, most significant bit first, bit 1
= ``+1``); :func:`payload_bits` measures what a message actually occupies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neuronkit.common import check_number, check_type

__all__ = [
    "dense_uplink_bits",
    "pack_signs",
    "payload_bits",
    "sign_uplink_bits",
    "unpack_signs",
]


def sign_uplink_bits(masks: Mapping[str, torch.Tensor]) -> int:
    """HideNseek's uplink per client and round: 1 bit per unpruned weight.

    Args:
        masks: pruning masks ``{name: bool tensor}`` (``True`` = unpruned).

    Returns:
        The number of unpruned weights (= bits).
    """
    check_type("masks", masks, Mapping)
    if not masks:
        raise ValueError("masks must name at least one weight, got {}")
    total = 0
    for n, m in masks.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"masks[{n!r}] must be a bool tensor, got {type(m).__name__}")
        total += int(m.sum())
    return total


def dense_uplink_bits(model: nn.Module, *, bits_per_value: int = 32) -> int:
    """Dense FedAvg's uplink per client and round: every trainable parameter as a float.

    Args:
        model: the network whose parameters a FedAvg client sends.
        bits_per_value: bits per parameter (32 for float32).

    Returns:
        ``bits_per_value * (number of trainable parameters)``.
    """
    check_type("model", model, nn.Module)
    check_number("bits_per_value", bits_per_value, ge=1, integer=True)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(bits_per_value) * int(n)


def pack_signs(signs: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> np.ndarray:
    """Pack sign vectors (-1/+1, in order) into bytes: 1 bit per sign, ``+1`` -> bit 1.

    Args:
        signs: ``{name: [n_l] tensor of -1/+1}`` (dict order is kept) or a sequence of them.

    Returns:
        ``uint8 [ceil(sum n_l / 8)]`` (the last byte zero-padded).
    """
    values = list(signs.values()) if isinstance(signs, Mapping) else list(signs)
    if not values:
        raise ValueError("signs must hold at least one tensor, got none")
    flat = []
    for i, s in enumerate(values):
        check_type(f"signs[{i}]", s, torch.Tensor)
        v = s.detach().flatten().cpu()
        if not bool(((v == 1) | (v == -1)).all()):
            raise ValueError(f"signs[{i}] must hold only -1 and +1, got other values")
        flat.append((v > 0).numpy())  # bool first: .numpy() has no bfloat16
    return np.packbits(np.concatenate(flat))


def unpack_signs(packed: Any, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Inverse of :func:`pack_signs`.

    Args:
        packed: ``uint8 [n_bytes]`` from :func:`pack_signs`.
        sizes: the lengths ``n_l`` of the packed sign vectors, in order.

    Returns:
        One int8 tensor ``[n_l]`` of -1/+1 per size.
    """
    arr = np.asarray(packed)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise TypeError(f"packed must be a 1-D uint8 array, got {arr.dtype} {arr.shape}")
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"sizes must be a sequence of lengths, got {type(sizes).__name__}")
    sizes = list(sizes)
    for i, s in enumerate(sizes):  # before int(), which would truncate 2.5 to 2
        check_number(f"sizes[{i}]", s, ge=0, integer=True)
    sizes = [int(s) for s in sizes]
    total = sum(sizes)
    if arr.size != -(-total // 8):
        raise ValueError(
            f"packed must have ceil({total} / 8) = {-(-total // 8)} bytes for sizes {sizes}, "
            f"got {arr.size}"
        )
    bits = np.unpackbits(arr)[:total]
    out, offset = [], 0
    for s in sizes:
        chunk = bits[offset : offset + s].astype(np.int8) * 2 - 1
        out.append(torch.from_numpy(chunk.astype(np.int8)))
        offset += s
    return out


def payload_bits(arrays: Iterable[Any]) -> int:
    """Bits a message of numpy arrays / tensors occupies (``8 * nbytes``, no framing)."""
    if not isinstance(arrays, Iterable):
        raise TypeError(f"arrays must be an iterable of arrays, got {type(arrays).__name__}")
    total = 0
    for i, a in enumerate(arrays):
        if isinstance(a, torch.Tensor):
            total += a.numel() * a.element_size() * 8
        elif isinstance(a, np.ndarray):
            total += int(a.nbytes) * 8
        else:
            raise TypeError(f"arrays[{i}] must be a numpy array or tensor, got {type(a).__name__}")
    return total
