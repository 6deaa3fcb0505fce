"""Reading user tensors as numpy arrays: the one conversion every numpy-based analysis of this
package uses (without importing torch, so numpy-only modules stay light).

numpy has no bfloat16, so ``tensor.numpy()`` fails on one; low-precision floats (bfloat16,
float16) are upcast to float32, which holds each of their values exactly, so a bfloat16
tensor gives the same numbers as a float32 tensor of the same values.
"""

from __future__ import annotations

from typing import Any

from neuronkit.common import as_float_array


def host_array(x: Any) -> Any:
    """A torch tensor (any device, also one in an autograd graph) as a CPU numpy array of the
    same shape, bfloat16 / float16 upcast to float32; anything else is returned unchanged."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.numpy()
    return x


def float_array(name: str, x: Any, layout: str = "") -> Any:
    """:func:`neuronkit.common.as_float_array` (a float64 array; ``TypeError`` naming ``name``
    for anything that is not real numbers) of :func:`host_array` ``(x)``, so bfloat16 and
    float16 tensors are read too."""
    return as_float_array(name, host_array(x), layout)
