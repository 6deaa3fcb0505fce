"""Timing shared by the interpretability benchmarks: a library's calls alternate with the
floor's in one process, so that "x floor" compares the two under the same machine state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def time_alternating(
    call: Callable[[], Any], floor: Callable[[], Any] | None, count: int
) -> tuple[list[float], list[float]]:
    """Seconds of ``count`` calls of ``call`` and of ``floor`` (none when it is None), the
    two alternating, the order swapped every repeat."""
    times: list[float] = []
    floor_times: list[float] = []
    calls = [(call, times)] + ([(floor, floor_times)] if floor is not None else [])
    for i in range(count):
        for fn, acc in calls if i % 2 == 0 else calls[::-1]:
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return times, floor_times
