"""Atomic file output: every file the project writes appears whole or not at all.

The content goes into a temp file beside the target, is fsync'ed, gets the usual file
mode, and is renamed over the target; on any failure the temp file is removed and the
old target (if any) is untouched, so a kill at any moment never leaves a half-written
output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import SketchRNNError

__all__ = ["atomic_write"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], None],
                 error: type[SketchRNNError] = SketchRNNError) -> None:
    """Write ``content`` (bytes, or a function writing to a binary file object) to ``path``
    atomically. OS errors become ``error`` with one line naming the path."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(parent))
    except OSError as e:
        raise error(f"cannot write {p}: {e.strerror or e}; choose a writable output path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, p)
        _fsync_dir(parent)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise error(f"cannot write {p}: {e.strerror or e}; choose a writable output path") from None
        raise
