"""Progress bars for long work: one convention for every package (tqdm on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from .validation import check_type

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    *,
    show: bool | None = None,
    desc: str | None = None,
    total: int | None = None,
) -> Iterator[T]:
    """``iterable`` with a progress bar on stderr.

    Args:
        show: ``True`` / ``False`` force the bar on or off; ``None`` (the default everywhere)
            shows it only when stderr is a terminal, so logs and CI output stay clean.
        desc: the bar's label.
        total: the number of items when ``iterable`` has no length.

    The bar closes when the loop ends, also when it raises (or the generator is dropped).
    """
    if show is not None:
        check_type("show", show, bool)
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


def progress_write(message: str) -> None:
    """Print ``message`` on stderr without breaking an open progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)
