"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .validation import check_type


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The file is flushed to disk before the rename (a crash leaves the old file or the whole
    new one) and gets the usual ``rw-r--r--`` permissions (``mkstemp`` creates it owner-only).
    On error the temporary file is removed and ``path`` is left as it was, as are its folders
    (those created for it are removed again).
    """
    target = Path(path)
    if target.is_dir() and not target.is_symlink():  # a link to a folder is replaced itself
        raise IsADirectoryError(errno.EISDIR, "path must name a file, not a folder", str(target))
    created = []  # the missing folders, deepest first
    for folder in (target.parent, *target.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "path's folder is a file", str(folder))
            break
        created.append(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):  # not empty: something else wrote there since
                folder.rmdir()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    try:
        memoryview(data)  # what write_bytes takes: bytes, bytearray, any buffer
    except TypeError:
        raise TypeError(f"data must be bytes, got {type(data).__name__} ({data!r:.80})") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    check_type("text", text, str)
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """``obj`` as indented, strict JSON: numpy and torch values as plain numbers and lists,
    NaN and infinities as ``null`` (what :func:`atomic_write_json` writes)."""
    return json.dumps(_json_safe(obj), indent=2, allow_nan=False)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN is written as ``null``)."""
    return atomic_write_text(path, json_text(obj) + "\n")


def replace_dir(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``src`` to ``dst``, replacing any older ``dst``; if the move
    fails (or is interrupted) the older ``dst`` is put back.

    Safe against other processes replacing ``dst`` at the same time: the last one to move its
    folder in wins, and no one fails or leaves a set-aside folder behind.
    """
    src_path, dst_path = Path(src), Path(dst)
    old = dst_path.with_name(f".{dst_path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    for _ in range(1000):
        if dst_path.exists() or dst_path.is_symlink():
            try:
                os.replace(dst_path, old)
            except FileNotFoundError:  # another process set it aside first
                continue
        try:
            os.replace(src_path, dst_path)
        except OSError as err:
            # another process's folder landed in between: set that one aside on the next try
            # (it may already be set aside again, by its writer's next move or another's: dst
            # need not exist now)
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                _put_back(old, dst_path)
                raise
            _remove(old)
            continue
        except BaseException:
            _put_back(old, dst_path)
            raise
        _remove(old)
        return dst_path
    raise RuntimeError(f"dst {str(dst_path)!r} kept being replaced by other processes")


def _put_back(old: Path, dst: Path) -> None:
    if (old.exists() or old.is_symlink()) and not (dst.exists() or dst.is_symlink()):
        os.replace(old, dst)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _json_safe(obj: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, torch tensors
        return _json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj
