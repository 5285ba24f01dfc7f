"""Reading and writing the files of a run folder safely.

A run folder is shared ground: teammates read it, other processes steer it, and its
files may be damaged or hostile. So every write here replaces a file atomically
(temporary file, fsync, rename) with the mode the user's umask gives (or the mode the
file already had, so a ``chmod g+r`` survives the next checkpoint), and every read
opens without following a symlink or blocking on a FIFO, refuses anything that is not
a regular file, and reads at most a capped number of bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

# Caps on what is read from a run folder, in bytes.
SMALL_FILE_LIMIT = 1 << 20  # status.json, control.json, config.json
LOG_FILE_LIMIT = 512 << 20  # metrics.jsonl
# Caps on the user's input files, in bytes: config files, CSVs and classes files; IDX files.
INPUT_FILE_LIMIT = 64 << 20
DATA_FILE_LIMIT = 1 << 30

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafeFileError(OSError):
    """A run file that is a symlink, a FIFO, a device, a folder, or too large to read.

    ``strerror`` says which, ``filename`` names the file.
    """

    def __init__(self, path: Path | str, what: str) -> None:
        super().__init__(errno.EINVAL, what, str(path))


def _check_regular(fd: int, path: Path | str, limit: int | None) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(path, "not a regular file")
    if limit is not None and info.st_size > limit:
        raise UnsafeFileError(path, f"larger than {limit:,} bytes")
    return info


def _open(path: Path | str, flags: int, mode: int = 0o666, *, follow: bool = False) -> int:
    try:
        return os.open(path, flags | (0 if follow else _NOFOLLOW) | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symlink
            raise UnsafeFileError(path, "a symbolic link, not followed") from None
        raise


def read_bytes(
    path: str | Path, limit: int = SMALL_FILE_LIMIT, *, follow_symlinks: bool = False
) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit`` bytes).

    Raises ``FileNotFoundError`` if it is missing, ``UnsafeFileError`` if it is a
    symlink (unless ``follow_symlinks``: a file the user named, such as an image to
    classify), not a regular file or larger than ``limit``, and ``OSError`` otherwise.
    Never blocks on a FIFO, never reads a device.
    """
    fd = _open(path, os.O_RDONLY | _NONBLOCK, follow=follow_symlinks)
    try:
        size = _check_regular(fd, path, limit).st_size
        # One read of the size it has now; a short read of a regular file is its end.
        # A file that grew since is read on, up to the limit.
        data = os.read(fd, min(size, limit) + 1)
        if len(data) <= size:
            return data
        chunks = [data]
        left = limit + 1 - len(data)
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise UnsafeFileError(path, f"larger than {limit:,} bytes")
        return data
    finally:
        os.close(fd)


def read_range(path: str | Path, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes of the regular file ``path`` from byte ``offset`` (capped at
    ``LOG_FILE_LIMIT``); the same refusals as ``read_bytes``."""
    path = Path(path)
    fd = _open(path, os.O_RDONLY | _NONBLOCK)
    try:
        _check_regular(fd, path, None)
        return os.pread(fd, min(length, LOG_FILE_LIMIT), offset)
    finally:
        os.close(fd)


def read_text(path: str | Path, limit: int = SMALL_FILE_LIMIT) -> str:
    """``read_bytes`` decoded as UTF-8 (undecodable bytes replaced)."""
    return read_bytes(path, limit).decode("utf-8", errors="replace")


def read_input_text(path: str | Path, limit: int = INPUT_FILE_LIMIT) -> str:
    """A text file the user named (a CSV, a classes file, a config file), decoded as UTF-8
    with an optional byte-order mark; at most ``limit`` bytes. A symlink is followed (the
    user chose the path); a FIFO, device or folder is refused at once (never blocks).

    Raises ``UnicodeDecodeError`` for text that is not UTF-8, ``UnsafeFileError`` for a
    file that is not regular or too large, and ``OSError`` otherwise.
    """
    return read_bytes(path, limit, follow_symlinks=True).decode("utf-8-sig")


def read_input_head(path: str | Path, length: int) -> bytes:
    """Up to ``length`` bytes from the start of a file the user named (a CSV's first line).
    A symlink is followed (the user chose the path); a FIFO, device or folder is refused at
    once with ``UnsafeFileError`` (never blocks); ``OSError`` otherwise."""
    path = Path(path)
    fd = _open(path, os.O_RDONLY | _NONBLOCK, follow=True)
    try:
        _check_regular(fd, path, None)
        return os.pread(fd, length, 0)
    finally:
        os.close(fd)


def regular_size(path: str | Path) -> int:
    """The size in bytes of the regular file ``path``; ``UnsafeFileError`` for anything else."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(path, "not a regular file")
    return info.st_size


def open_append(path: str | Path) -> BinaryIO:
    """``path`` opened to append bytes, created if missing; never through a symlink."""
    path = Path(path)
    fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NONBLOCK)
    try:
        _check_regular(fd, path, None)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def truncate(path: str | Path, size: int) -> None:
    """Cut the regular file ``path`` to ``size`` bytes (never extends it, never follows a link)."""
    path = Path(path)
    fd = _open(path, os.O_RDWR | _NONBLOCK)
    try:
        info = _check_regular(fd, path, None)
        if size < info.st_size:
            os.ftruncate(fd, size)
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new, never a mix.

    The new file gets the mode of the file it replaces (a regular one), else the mode
    the umask gives (0644 under umask 0022). A symlink at ``path`` is replaced, never
    written through. Raises ``OSError`` (the disk is full, the folder read-only).
    """
    path = Path(path)
    keep_mode: int | None = None
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            keep_mode = stat.S_IMODE(info.st_mode)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    fd = _open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        if keep_mode is not None:
            os.fchmod(fd, keep_mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_problem(folder: str | Path) -> str:
    """Why this process cannot make files in ``folder``: "Read-only file system" (a
    read-only mount or view), "Permission denied", another ``strerror``; "" when it can.
    Writes nothing."""
    if os.access(folder, os.W_OK | os.X_OK):
        return ""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError as exc:
        return exc.strerror or str(exc)
    return os.strerror(errno.EROFS if read_only else errno.EACCES)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
