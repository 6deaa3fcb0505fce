"""Seeding of every random number generator a run touches."""

from __future__ import annotations

import contextlib
import importlib.util
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .validation import check_number, check_seed, check_type

if TYPE_CHECKING:
    import numpy as np
    import torch


def seed_everything(seed: int, *, deterministic: bool = False) -> np.random.Generator:
    """Seed ``random``, numpy and (when installed) torch; return a numpy ``Generator``.

    Args:
        seed: integer in ``[0, 2**32)`` (numpy's global seed takes no more); numpy integers too.
        deterministic: also ask torch for deterministic algorithms (slower on some ops).
    """
    import numpy as np

    check_number("seed", seed, ge=0, lt=2**32, integer=True)
    check_type("deterministic", deterministic, bool)
    seed = int(seed)  # random.seed refuses numpy integers
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global state used by third-party code
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def torch_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU torch ``Generator`` from an int seed in ``[0, 2**64)``, an existing ``Generator``
    (used as is) or ``None`` (seeded by a draw from torch's global generator, so
    :func:`seed_everything` / ``torch.manual_seed`` make it repeatable). Needs torch."""
    import torch

    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, (1,), device="cpu")))  # any default device
    else:
        check_seed(seed)
        gen.manual_seed(int(seed))
    return gen


@contextlib.contextmanager
def forked_manual_seed(seed: int | None) -> Iterator[None]:
    """``torch.manual_seed(seed)`` for the block only (building modules with a seeded init):
    torch's CPU generator, and each CUDA device's once CUDA is initialized, follow ``seed``
    inside and are restored afterwards. An uninitialized CUDA is left alone: the usual
    ``torch.manual_seed`` inside ``fork_rng(devices=[])`` queues a reseed of every GPU for
    when CUDA starts, replacing the caller's CUDA seed. ``None``: the block runs on the global
    RNG as it is (it advances). Needs torch."""
    import torch

    if seed is None:
        yield
        return
    check_seed(seed)
    with torch_rngs_forked():
        torch.default_generator.manual_seed(int(seed))  # the CPU part of torch.manual_seed
        if torch.cuda.is_initialized():
            for d in range(torch.cuda.device_count()):
                torch.cuda.default_generators[d].manual_seed(int(seed))
        yield


@contextlib.contextmanager
def torch_rngs_forked() -> Iterator[None]:
    """torch's global RNGs are put back as they were when the block ends: the CPU's, and each
    CUDA device's once CUDA is initialized. ``torch.random.fork_rng()``'s default forks every
    visible GPU, which starts CUDA (seconds, and memory on each GPU) in CPU-only work; the
    draws of a block that starts CUDA itself are not undone. Needs torch."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextlib.contextmanager
def torch_rng_seeded(seed: int) -> Iterator[None]:
    """Within the block torch's global RNGs (the CPU's, and each CUDA device's once CUDA is
    initialized: see :func:`forked_manual_seed`) follow ``seed``, for the draws that take no
    generator (dropout in a training loop); the caller's RNG state is restored afterwards. The
    global seed is drawn from ``seed``, not ``seed`` itself, so it differs from a
    ``torch.Generator`` seeded with ``seed`` for the batch order. Needs torch.
    """
    import torch

    check_seed(seed)
    value = int(torch.randint(0, 2**62, (2,), generator=torch_generator(seed), device="cpu")[1])
    with forked_manual_seed(value):
        yield


@contextlib.contextmanager
def global_rngs_restored() -> Iterator[None]:
    """The global RNGs of ``random``, numpy and (when installed) torch (see
    :func:`torch_rngs_forked`) are put back as they were when the block ends, however it ends."""
    import numpy as np

    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    with contextlib.ExitStack() as stack:
        if importlib.util.find_spec("torch") is not None:
            stack.enter_context(torch_rngs_forked())
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)  # noqa: NPY002
