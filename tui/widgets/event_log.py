"""``EventLog``: a time-stamped log of what the run did, wrapped to the widget's width."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from tui.output import printable
from tui.throttle import RateLimiter

MAX_ENTRIES = 500
WRITES_PER_SECOND = 2


def timestamp(at: float | None = None) -> str:
    """``HH:MM:SS`` local time of ``at`` (Unix seconds), or of now."""
    return time.strftime("%H:%M:%S", time.localtime(at) if at else time.localtime())


class EventLog(RichLog):
    """Appends one entry per event, wrapped to the log's width so nothing is cut off.

    RichLog wraps a line once, at the width it has when written; the entries are kept
    and wrapped here (``wrap_entry``), at word boundaries and after a path's ``/``, to
    the width the log has: a log with no width (hidden, not laid out yet) writes
    nothing until it has one, and a new width (a resized terminal, the pane or the
    lower area first shown) wraps every entry again. Each write repaints the whole
    log, so entries arriving in a burst (fast epochs) are written together, at most
    ``WRITES_PER_SECOND``, and scrolled in the same repaint.
    """

    DEFAULT_CSS = """
    EventLog {
        height: 1fr;
        width: 1fr;
        background: $surface;
        overflow-x: hidden;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            max_lines=MAX_ENTRIES * 4,
            min_width=1,
            wrap=False,
            markup=False,
            highlight=False,
            auto_scroll=True,
            id=id,
            classes=classes,
        )
        self._entries: deque[Text] = deque(maxlen=MAX_ENTRIES)
        # Told but not written yet; a log long hidden rewraps ``_entries`` instead.
        self._pending: deque[Text] = deque(maxlen=MAX_ENTRIES)
        self._limiter = RateLimiter(1 / WRITES_PER_SECOND)
        self._wrapped_at = 0  # the width the written lines were wrapped to; 0: none yet
        self._flush_due = False  # a flush is timed for when the limiter allows it

    def on_mount(self) -> None:
        self.set_interval(1 / WRITES_PER_SECOND, self._flush)

    def add(self, text: str, at: float | None = None) -> None:
        """Log ``text``, stamped with the time ``at`` (Unix seconds; now if None or 0).

        ``text`` is shown as written, control characters as ``?``: it quotes run ids,
        folders and reasons, which come from files."""
        stamp = timestamp(at) if at else timestamp()
        entry = Text.assemble((stamp, "dim"), " ", printable(text, lines=True))
        self._entries.append(entry)
        self._pending.append(entry)
        self._flush()

    @property
    def entry_texts(self) -> list[str]:
        """The entries' texts, oldest first, without their time stamps."""
        # A stamp is HH:MM:SS, with no space in it: the text follows the first space.
        return [entry.plain.partition(" ")[2] for entry in self._entries]

    @property
    def wrapped_lines(self) -> list[str]:
        """The lines the log holds now, as wrapped to its width (empty while it has no
        width: nothing is written until it has one)."""
        return [line.text.rstrip() for line in self.lines]

    def clear_entries(self) -> None:
        """Forget every entry (a new story begins, e.g. attaching to a run)."""
        self._entries.clear()
        self._pending.clear()
        self.clear()

    def _width(self) -> int:
        return self.scrollable_content_region.width if self.display else 0

    def _flush(self) -> None:
        width = self._width()
        if not width:
            return  # hidden or not laid out: wrapped when it has a width
        if width != self._wrapped_at:
            self._rewrap(width)
        elif self._pending and self._limiter.ready():
            # Scrolled now, in the same repaint as the new lines: RichLog's own scroll
            # comes after the next refresh, and every repaint resends the whole log.
            for entry in self._pending:
                self._write_entry(entry, width)
            self._pending.clear()
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif self._pending and not self._flush_due:
            # Written as soon as the limiter allows, not at the timer's next tick after.
            self._flush_due = True
            self.set_timer(1 / WRITES_PER_SECOND, self._due_flush)

    def _due_flush(self) -> None:
        self._flush_due = False
        self._flush()

    def _rewrap(self, width: int) -> None:
        self._wrapped_at = width
        self.clear()
        self._pending.clear()
        for entry in self._entries:
            self._write_entry(entry, width)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _write_entry(self, entry: Text, width: int) -> None:
        for line in wrap_entry(entry, width):
            self.write(line, width=width, scroll_end=False)

    def on_resize(self, event: Resize) -> None:
        width = self._width()
        if width and width != self._wrapped_at:
            self._rewrap(width)

    def on_show(self) -> None:
        self._flush()


# Continuation lines start under the entry's text, past its time stamp, where there
# is room for that.
INDENT = len("HH:MM:SS ")
INDENTED_FROM = 30


def wrap_entry(entry: Text, width: int) -> list[Text]:
    """``entry`` cut into lines of at most ``width`` cells (``width`` >= 1).

    Lines break at spaces (dropped at the break); a word wider than the line by itself
    breaks after a ``/`` or ``-`` (a path keeps whole folder names), else where it must.
    From ``INDENTED_FROM`` columns on, continuation lines are indented past the time
    stamp. A newline in ``entry`` always starts a line."""
    indent = INDENT if width >= INDENTED_FROM else 0
    lines: list[Text] = []
    offset = 0
    for part in entry.plain.split("\n"):
        text = entry[offset : offset + len(part)]
        offset += len(part) + 1
        first = True
        while True:
            room = width - (0 if first else indent)
            plain = text.plain
            if len(plain) <= room:
                cut, rest = len(plain), len(plain)
            else:
                cut = _break_at(plain, room)
                rest = cut
                while rest < len(plain) and plain[rest] == " ":
                    rest += 1
            line = text[:cut]
            line.rstrip()
            if not first:
                line = Text(" " * indent) + line
            lines.append(line)
            text, first = text[rest:], False
            if not text.plain:
                break
    return lines


def _break_at(plain: str, room: int) -> int:
    """Where to end a line of ``plain`` that is wider than ``room``: at the last space
    that fits, else after the last ``/`` inside a word, or ``-`` (a path's folder, a run
    id's part), else at ``room`` (a word wider than the line)."""
    for at in range(room, 0, -1):
        if plain[at] == " ":
            return at
    for mark in "/-":
        for at in range(room, 1, -1):
            if plain[at - 1] == mark and plain[at - 2] != " ":
                return at
    return room
