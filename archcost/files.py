"""Writing files atomically, with the mode the user's umask gives: the one writer of every file archcost writes."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from archcost.errors import InputError

#: ``O_BINARY`` matters on Windows only (no newline translation); 0 elsewhere.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _folder(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(
            f"cannot write {path}: the folder {folder} does not exist", "create it first, or choose another --output"
        )
    return folder


def _create_temp(path: Path, folder: Path, suffix: str = "") -> tuple[int, Path]:
    """A new, empty file beside ``path``, created with mode 0o666 so that the kernel applies the umask
    (0644 under umask 022, 0600 under 077), as ``open(path, "w")`` would. ``tempfile.mkstemp`` makes
    0600 whatever the umask, which left published reports unreadable to others."""
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # 100 collisions of 32 random bits


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a folder that cannot be opened (Windows) is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` so that a reader sees the old file or the new one,
    never half of one: a temp file in the same folder, flushed and fsynced, then ``os.replace``.

    The file gets the mode the umask gives (like ``open(path, "w")``). Returns ``path``.
    Raises ``InputError`` when the folder does not exist; ``OSError`` when it cannot be written.
    """
    path = Path(path)
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """For writers that need a file name (``torch.onnx.export``): yields an empty temp file beside ``path``
    (mode from the umask) to write; on a clean exit it is fsynced and moved onto ``path``, on an error or
    Ctrl-C it is removed and ``path`` is left as it was. ``suffix`` ends the temp name (some writers look at it).
    """
    path = Path(path)
    folder = _folder(path)
    fd, tmp = _create_temp(path, folder, suffix)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_BINARY", 0))  # Windows fsyncs only a writable handle
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _sync_folder(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_text(path: str | Path, what: str, error: type[InputError], hint: str) -> str:
    """The UTF-8 text of the ``what`` file at ``path`` (``"bench file"``, ``"device profile"``): the one reader
    of archcost's own files. Raises ``error`` (an ``InputError``: exit 2) saying "no such WHAT: PATH" (with
    ``hint``: how to make one) or "cannot read WHAT PATH: why"."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"no such {what}: {path}", hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise error(f"cannot read {what} {path}: {reason}", "check the path and its permissions") from None
