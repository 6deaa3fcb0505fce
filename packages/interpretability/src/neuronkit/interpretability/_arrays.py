"""Reading user tensors as numpy arrays in their own dtype (labels, features, scores), without
importing torch, so numpy-only modules stay light; float64 arrays come from
:func:`neuronkit.common.as_float_array`, which reads bfloat16 tensors too.

numpy has no bfloat16, so ``tensor.numpy()`` fails on one; low-precision floats (bfloat16,
float16) are upcast to float32, which holds each of their values exactly, so a bfloat16
tensor gives the same numbers as a float32 tensor of the same values.
"""

from __future__ import annotations

from typing import Any


def host_array(x: Any) -> Any:
    """A torch tensor (any device, also one in an autograd graph) as a CPU numpy array of the
    same shape, bfloat16 / float16 upcast to float32; anything else is returned unchanged."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.numpy()
    return x
