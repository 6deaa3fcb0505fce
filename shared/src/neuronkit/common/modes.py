"""Module modes: run models in eval mode and give every submodule its own mode back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def eval_mode(*models: Any) -> Iterator[None]:
    """Every submodule of each ``nn.Module`` in ``models`` in eval mode inside the block; each
    one's own training flag is restored afterwards, also on an exception (a BatchNorm frozen in
    eval inside a training model stays in eval). Anything that is not a module, e.g. a plain
    function, is left alone.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    >>> _ = net[1].eval()
    >>> with eval_mode(net):
    ...     net.training, net[1].training
    (False, False)
    >>> net.training, net[1].training
    (True, False)
    """
    training = [
        m
        for model in models
        if callable(getattr(model, "modules", None))  # an nn.Module, without importing torch
        for m in model.modules()
        if m.training
    ]
    for m in training:
        m.training = False
    try:
        yield
    finally:
        for m in training:
            m.training = True
