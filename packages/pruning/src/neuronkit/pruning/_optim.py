"""Checks shared by the trainers that step torch's Adam / AdamW."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def check_adam_dtype(arg: str, named: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Raise ``TypeError`` naming ``arg`` when a trained parameter of ``named`` (``(name,
    parameter)`` pairs) is float16.

    Adam's ``eps`` (1e-8) is 0 in float16, so ``m / (sqrt(v) + eps)`` is ``0 / 0 = NaN``
    wherever a gradient is 0: the weights turn NaN after one step.
    """
    half = [n for n, p in named if p.requires_grad and p.dtype == torch.float16]
    if half:
        raise TypeError(
            f"{arg}: Adam cannot train float16 parameters ({half[0]!r} and {len(half) - 1} "
            "more): its eps is 0 in float16 and the weights turn NaN after a step; train in "
            "float32 or bfloat16 (e.g. model.to(torch.bfloat16))"
        )
