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
    """Appends one entry per event, wrapped so nothing is cut off at 80 columns.

    RichLog wraps an entry once, at the width it has when written; the entries are
    kept so a new width (a resized terminal, a pane first shown) wraps them again.
    Each write repaints the whole log, so entries arriving in a burst (fast epochs)
    are written together, at most ``WRITES_PER_SECOND``, and scrolled in the same
    repaint.
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
            wrap=True,
            markup=False,
            highlight=False,
            auto_scroll=True,
            id=id,
            classes=classes,
        )
        self._entries: deque[Text] = deque(maxlen=MAX_ENTRIES)
        self._pending: list[Text] = []
        self._limiter = RateLimiter(1 / WRITES_PER_SECOND)
        self._wrapped_at = 0

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

    def clear_entries(self) -> None:
        """Forget every entry (a new story begins, e.g. attaching to a run)."""
        self._entries.clear()
        self._pending.clear()
        self.clear()

    def _flush(self) -> None:
        if self._pending and self._limiter.ready():
            # Scrolled now, in the same repaint as the new lines: RichLog's own scroll
            # comes after the next refresh, and every repaint resends the whole log. A
            # log with no width yet (not laid out, or hidden) defers its writes, so it
            # keeps RichLog's own scroll for them.
            sized = self.scrollable_content_region.width > 0
            for entry in self._pending:
                self.write(entry, scroll_end=False if sized else None)
            self._pending.clear()
            if sized:
                self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            self._wrapped_at = width
            self.clear()
            self._pending.clear()
            for entry in self._entries:
                self.write(entry)
