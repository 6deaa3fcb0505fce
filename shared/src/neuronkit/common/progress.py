"""Progress bars for long work: one convention for every package (tqdm on stderr)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from .validation import check_type

T = TypeVar("T")

# what show_progress=None means for library calls: None (a bar only on a terminal), or False
# while a reproduction runs (it shows its own bars; see run_reproduction)
_LIBRARY_DEFAULT: ContextVar[bool | None] = ContextVar("neuronkit_progress", default=None)


def progress(
    iterable: Iterable[T],
    *,
    show_progress: bool | None = None,
    desc: str | None = None,
    total: int | None = None,
) -> Iterator[T]:
    """``iterable`` with a progress bar on stderr.

    Args:
        show_progress: ``True`` / ``False`` force the bar on or off; ``None`` (the default
            everywhere) shows it only when stderr is a terminal, so logs and CI output stay
            clean, and not inside a reproduction run, which shows its own bars.
        desc: the bar's label.
        total: the number of items when ``iterable`` has no length.

    The bar closes when the loop ends, also when it raises (or the generator is dropped).
    """
    if show_progress is None:
        show_progress = _LIBRARY_DEFAULT.get()
    else:
        check_type("show_progress", show_progress, bool)
    return _bar(iterable, show_progress, desc, total)


def _bar(
    iterable: Iterable[T], show: bool | None, desc: str | None, total: int | None
) -> Iterator[T]:
    """The bar itself (``show=None``: only on a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(
        iterable,
        desc=desc,
        total=total,
        disable=None if show is None else not show,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        yield from bar
    finally:
        bar.close()


@contextlib.contextmanager
def _library_bars(show: bool | None) -> Iterator[None]:
    """Within the block, library calls' ``progress(show_progress=None)`` mean ``show``."""
    token = _LIBRARY_DEFAULT.set(show)
    try:
        yield
    finally:
        _LIBRARY_DEFAULT.reset(token)


def progress_write(message: str) -> None:
    """Print ``message`` on stderr without breaking an open progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)
