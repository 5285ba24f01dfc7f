"""``EventLog``: a time-stamped log of what the run did, wrapped to the widget's width."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import RichLog


def timestamp() -> str:
    return time.strftime("%H:%M:%S")


class EventLog(RichLog):
    """Appends one entry per event, wrapped so nothing is cut off at 80 columns."""

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
            max_lines=500,
            min_width=20,
            wrap=True,
            markup=False,
            highlight=False,
            auto_scroll=True,
            id=id,
            classes=classes,
        )

    def add(self, text: str) -> None:
        self.write(Text.assemble((timestamp(), "dim"), " ", text))
