"""``PaneBar``: the top line, naming each pane with its key and the run's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.widget import Widget


class PaneBar(Widget):
    """Pane names with their keys (the current one highlighted) and a status on the right.

    ``status`` is shown in full where it fits; where it does not (80 columns, a long
    reason), ``short_status`` (the state alone) is shown instead, and failing that the
    status cut with an ellipsis: the state is never left blank."""

    DEFAULT_CSS = """
    PaneBar {
        height: 1;
        width: 1fr;
        background: $panel;
    }
    PaneBar > .pane-bar--current {
        background: $accent;
        color: $text;
        text-style: bold;
    }
    PaneBar > .pane-bar--key {
        color: $text-accent;
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"pane-bar--current", "pane-bar--key"}

    def __init__(self, panes: Sequence[tuple[str, str, str]], *, id: str | None = None) -> None:
        """``panes``: (key, pane id, title) in order."""
        super().__init__(id=id)
        self.panes = list(panes)
        self.current = self.panes[0][1] if self.panes else ""
        self.status = ""
        self.short_status = ""

    def render(self) -> Text:
        key_style = self.get_component_rich_style("pane-bar--key")
        current_style = self.get_component_rich_style("pane-bar--current")
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, pane_id, title in self.panes:
            click = Style(meta={"@click": f"app.show_pane('{pane_id}')"})
            if pane_id == self.current:
                text.append(f" {key} {title} ", current_style + click)
            else:
                text.append(f" {key}", key_style + click)
                text.append(f" {title} ", click)
        room = self.size.width - text.cell_len - 1  # one space between titles and status
        shown = self.status
        if len(shown) + 1 > room and self.short_status:
            shown = self.short_status
        if len(shown) + 1 > room:
            shown = shown[: max(room - 2, 0)] + "…" if room > 2 else ""
        status = Text(shown + " ")
        gap = self.size.width - text.cell_len - status.cell_len
        if shown and gap > 0:
            text.append(" " * gap)
            text.append_text(status)
        return text
