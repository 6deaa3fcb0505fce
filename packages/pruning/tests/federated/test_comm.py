"""Uplink accounting and the 1-bit wire format (neuronkit.pruning.federated.comm)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.pruning.federated.comm import (
    dense_uplink_bits,
    pack_signs,
    payload_bits,
    sign_uplink_bits,
    unpack_signs,
)


@pytest.mark.parametrize("sizes", [[1], [8], [7, 9], [13, 0, 30]])
def test_pack_unpack_roundtrip_and_size(sizes: list[int]) -> None:
    gen = torch.Generator().manual_seed(sum(sizes))
    signs = {
        f"l{i}": (torch.randint(0, 2, (n,), generator=gen) * 2 - 1).to(torch.int8)
        for i, n in enumerate(sizes)
    }
    packed = pack_signs(signs)
    assert packed.dtype == np.uint8
    assert packed.size == math.ceil(sum(sizes) / 8)
    assert payload_bits([packed]) == 8 * math.ceil(sum(sizes) / 8)
    back = unpack_signs(packed, sizes)
    for a, b in zip(signs.values(), back, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.int8])
def test_pack_signs_any_dtype(dtype: torch.dtype) -> None:
    # bfloat16 has no numpy dtype: the comparison runs in torch before .numpy()
    signs = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0]).to(dtype)
    packed = pack_signs([signs])
    assert torch.equal(unpack_signs(packed, [5])[0], signs.to(torch.int8))


def test_bit_formulas() -> None:
    masks = {"a": torch.tensor([True, False, True]), "b": torch.ones(2, 2, dtype=torch.bool)}
    assert sign_uplink_bits(masks) == 6
    net = nn.Linear(4, 3)  # 12 weights + 3 biases
    assert dense_uplink_bits(net) == 32 * 15
    assert payload_bits([p.detach() for p in net.parameters()]) == 32 * 15
    net.bias.requires_grad_(False)
    assert dense_uplink_bits(net, bits_per_value=16) == 16 * 12


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="-1 and \\+1"):
        pack_signs([torch.tensor([0, 1])])
    with pytest.raises(ValueError, match="at least one"):
        pack_signs([])
    with pytest.raises(ValueError, match="bytes"):
        unpack_signs(np.zeros(3, dtype=np.uint8), [8])
    with pytest.raises(TypeError, match="uint8"):
        unpack_signs(np.zeros(1, dtype=np.int64), [8])
    with pytest.raises(TypeError, match="bool"):
        sign_uplink_bits({"a": torch.ones(3)})
    with pytest.raises(TypeError, match="arrays"):
        payload_bits([[1, 2]])
    # were "'int' object is not iterable", and a size of 2.5 was read as 2
    with pytest.raises(TypeError, match="sizes must be a sequence of lengths, got int"):
        unpack_signs(np.zeros(1, dtype=np.uint8), 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sizes\[1\] must be an integer"):
        unpack_signs(np.zeros(1, dtype=np.uint8), [4, 2.5])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="arrays must be an iterable of arrays, got int"):
        payload_bits(3)  # type: ignore[arg-type]
