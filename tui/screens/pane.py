"""``Pane``: what every pane shares, and ``PaneSpec``: how the app lists them.

Adding a pane is adding its module and one ``PaneSpec`` to ``tui.app.PANES``: its key
switches to it, the pane bar names it and the command palette offers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.containers import Container
from textual.widget import Widget

if TYPE_CHECKING:
    from tui.app import FmnistApp


# Columns from which panes use their wide layout (the screen gets class "-wide"), and
# from which there is room for help beside each field of the form ("-widest").
WIDE = 100
WIDEST = 160


@dataclass(frozen=True)
class PaneSpec:
    key: str  # the key that shows it: "1" to "5"
    id: str
    title: str
    build: Callable[[FmnistApp], Pane]


class Pane(Container):
    """A full-size view of the app; one is shown at a time."""

    # The widget that takes the keys when the pane is shown; the pane itself if None.
    DEFAULT_FOCUS: str | None = None

    def focus_default(self) -> None:
        target: Widget = self.query_one(self.DEFAULT_FOCUS) if self.DEFAULT_FOCUS else self
        target.focus()
