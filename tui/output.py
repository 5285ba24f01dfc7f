"""What the ``fmnist-tui`` commands print: text from files made safe for a terminal, and
standard streams that may go away.

Run ids are folder names, reasons come from ``status.json``, class names from a
classes file: any of them may hold escape sequences, so everything a command prints is
passed through ``printable`` first, which shows control characters as ``?`` (as ``ls``
does on a terminal).

A reader can leave at any time: ``train | head -1`` closes the pipe (EPIPE), a
terminal that hangs up fails every write (EIO), ``>&-`` leaves no stdout at all
(EBADF). ``LossyStream`` turns the first such failure into silence: it drops what is
written to it from then on and points the descriptor at ``/dev/null``, so that no other
writer (Rich's refresh thread, the interpreter's final flush) fails on it either.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

# C0 controls (tab and newline included), DEL, C1 controls, and the Unicode line
# separators and bidirectional overrides that can make a line read other than it is;
# and lone surrogates U+DC80..U+DCFF, which is how Python decodes the bytes of a
# non-UTF-8 file name (0x9b, the 8-bit CSI, becomes '\udc9b') and how surrogateescape
# would write them back to the terminal as raw bytes.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(value: object) -> str:
    """``value`` as one line of JSON that strict parsers accept: each lone surrogate in
    its strings (an undecodable byte of a file name, such as 0x9b) becomes U+FFFD."""
    return json.dumps(_json_safe(value))


def _json_safe(value: object) -> object:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with each control character shown as ``?``; with ``lines``, newlines are kept
    (each line is cleaned on its own), so a multi-line message stays multi-line."""
    if lines:
        return "\n".join(_CONTROL.sub("?", line) for line in text.split("\n"))
    return _CONTROL.sub("?", text)


def columns(
    rows: list[list[str]], right: frozenset[int] = frozenset(), gap: str = " "
) -> list[str]:
    """``rows`` of cells as lines of aligned columns: each column as wide as its widest
    cell in terminal cells (a wide character counts two), left-aligned unless its index
    is in ``right``; the last column is not padded. Cells are shown with ``printable``."""
    from rich.cells import cell_len  # rich only: no Textual here

    shown_rows = [[printable(cell) for cell in row] for row in rows]
    widths = [
        max((cell_len(r[i]) for r in shown_rows if i < len(r)), default=0)
        for i in range(max((len(r) for r in shown_rows), default=0))
    ]
    lines = []
    for row in shown_rows:
        cells = []
        for i, cell in enumerate(row):
            fill = " " * (widths[i] - cell_len(cell))
            if i in right:
                cells.append(fill + cell)
            else:
                cells.append(cell if i == len(row) - 1 else cell + fill)
        lines.append(gap.join(cells))
    return lines


def fit_columns(
    rows: list[list[str]],
    width: int,
    right: frozenset[int] = frozenset(),
    gap: str = " ",
    cut_left: int = 0,
) -> list[str]:
    """``columns(rows, right, gap)`` fitted to ``width`` terminal cells: the last column
    cut with ``…`` to the room left of the line (its cells kept whole), or dropped when
    under 10 cells are left; then, if still too wide, column ``cut_left``'s cells cut from
    their start to ``…`` and their end (not under 8 cells). Lines that fit are as
    ``columns`` makes them; a table that cannot fit (``width`` too small) stays wider."""
    from rich.cells import cell_len

    shown_rows = [[printable(cell) for cell in row] for row in rows]
    lines = columns(shown_rows, right, gap)
    if max((cell_len(line) for line in lines), default=0) <= width:
        return lines
    heads = columns([row[:-1] for row in shown_rows], right, gap)
    head_width = max((cell_len(line) for line in heads), default=0)
    room = width - head_width - cell_len(gap)
    if room >= 10:
        return [
            head + " " * (head_width - cell_len(head)) + gap + _cut_end(row[-1], room)
            for head, row in zip(heads, shown_rows, strict=True)
        ]
    kept = [row[:-1] for row in shown_rows]
    excess = head_width - width
    if excess > 0 and kept and cut_left < len(kept[0]):
        widest = max(cell_len(row[cut_left]) for row in kept if cut_left < len(row))
        keep = max(8, widest - excess)
        for row in kept:
            if cut_left < len(row):
                row[cut_left] = _cut_start(row[cut_left], keep)
    return columns(kept, right, gap)


def _cut_end(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` terminal cells: its start and ``…`` when longer."""
    from rich.cells import cell_len

    if cell_len(text) <= cells:
        return text
    while text and cell_len(text) > cells - 1:
        text = text[:-1]
    return text.rstrip() + "…"


def _cut_start(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` terminal cells: ``…`` and its end when longer (as the
    Runs pane shows a long run id)."""
    from rich.cells import cell_len

    if cell_len(text) <= cells:
        return text
    while text and cell_len(text) > cells - 1:
        text = text[1:]
    return "…" + text


class LossyStream(io.TextIOBase):
    """A text stream that carries on without its reader.

    Writes and flushes go to ``stream`` until one fails (an ``OSError`` such as EPIPE,
    EIO or EBADF, or a ``ValueError`` for a closed file); from then on ``lost`` holds
    the reason ("Broken pipe") and everything is dropped. The stream's descriptor, if
    it has one, is pointed at ``/dev/null`` so later writes and flushes by others
    succeed too. ``on_lost`` callbacks run once, with the reason; they must not raise.
    A ``stream`` of None (no stdout at all) counts as lost from the start.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self.stream = stream
        self.lost: str | None = None if stream is not None else "closed"
        self.error: BaseException | None = None  # what made it lost
        self.on_lost: list[Callable[[str], None]] = []

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The wrapped stream's encoding (UTF-8 when it has none)."""
        return getattr(self.stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        """Always: a lost stream takes writes and drops them."""
        return True

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal now (False once lost)."""
        if self.lost is not None or self.stream is None:
            return False
        try:
            return self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        """The wrapped stream's descriptor; ``OSError`` (UnsupportedOperation) if none."""
        if self.stream is None:
            raise io.UnsupportedOperation("no stream")
        return self.stream.fileno()

    def write(self, text: str) -> int:
        """Write ``text`` (dropped once the stream is lost); returns its length."""
        if self.lost is None and self.stream is not None:
            try:
                self.stream.write(text)
            except (OSError, ValueError) as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        """Flush the wrapped stream; a failure makes the stream lost, never raises."""
        if self.lost is None and self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as exc:
                self._lose(exc)

    @property
    def reader_left(self) -> bool:
        """Whether the stream was lost because its reader closed the pipe (EPIPE): the
        ``| head`` case, which is no failure of the command."""
        return isinstance(self.error, BrokenPipeError)

    def drop(self, reason: str) -> None:
        """Count the stream as lost from now on, for ``reason`` (no callbacks run)."""
        self.lost = self.lost or reason

    def _lose(self, exc: BaseException) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.lost = reason or type(exc).__name__
        self.error = exc
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                to_null(self.stream.fileno())
            # What is still buffered now goes to /dev/null, so the interpreter's last
            # flush cannot fail (and turn the exit status into 120).
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()
        for callback in self.on_lost:
            callback(self.lost)


def to_null(fd: int) -> None:
    """Point descriptor ``fd`` at ``/dev/null`` (reads see end of file, writes vanish)."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        if null != fd:
            os.dup2(null, fd)
    finally:
        if null != fd:
            os.close(null)


def reopen_closed_std_streams() -> tuple[int, ...]:
    """Give a closed stdin, stdout or stderr (``>&-``) ``/dev/null`` instead; returns the
    descriptors that were closed.

    Without this the next file opened takes descriptor 1 or 2, and anything printed
    lands in it (a checkpoint, the metrics log); and ``sys.stdout`` is None, which
    ``print`` cannot write to. Open descriptors are left alone.
    """
    closed = []
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
            to_null(fd)
            if getattr(sys, name) is None:
                setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8"))  # noqa: SIM115
    return tuple(closed)


@contextlib.contextmanager
def lossy_std_streams() -> Iterator[tuple[LossyStream, LossyStream]]:
    """``sys.stdout`` and ``sys.stderr`` as ``LossyStream``s for the block; the real ones
    come back afterwards, flushed (a failure there makes the stream lost, not an error)."""
    out, err = LossyStream(sys.stdout), LossyStream(sys.stderr)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        yield out, err
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = out.stream, err.stream  # type: ignore[assignment]
