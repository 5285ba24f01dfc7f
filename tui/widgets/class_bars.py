"""``ClassBars``: one labelled horizontal bar per class (class balance, per-class accuracy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from tui.widgets.lean import ChangedCells

EIGHTHS = " ▏▎▍▌▋▊▉"
MARK = "▶"  # the highlighted class, readable without colour


def bar(fraction: float, width: int) -> str:
    """A bar ``width`` cells long filled to ``fraction``, in eighths of a cell."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)


class ClassBars(ChangedCells, Widget):
    """Bars for values given per class, scaled to ``scale`` (or the largest value).

    With ``marks`` a column before the names holds ``MARK`` beside the highlighted class
    (``show(..., highlight=)``), whose line is also bold and its name reversed.
    """

    DEFAULT_CSS = """
    ClassBars {
        height: auto;
        width: 1fr;
    }
    ClassBars > .class-bars--bar {
        color: $accent;
    }
    ClassBars > .class-bars--title {
        text-style: bold;
    }
    ClassBars > .class-bars--highlight {
        text-style: bold reverse;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "class-bars--bar",
        "class-bars--title",
        "class-bars--highlight",
    }

    def __init__(
        self,
        title: str,
        *,
        placeholder: str = "",
        marks: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.placeholder = placeholder
        self.marks = marks
        self.highlight: int | None = None
        self._names: list[str] = []
        self._values: list[float] = []
        self._labels: list[str] = []
        self._scale: float | None = None

    def show(
        self,
        names: Sequence[str],
        values: Sequence[float],
        labels: Sequence[str],
        *,
        scale: float | None = None,
        highlight: int | None = None,
    ) -> None:
        """Display ``values`` with their printed ``labels``; ``scale`` is a full bar;
        ``highlight`` the index of a class to mark (None: none). Only the cells that
        changed are sent, unless the number of classes did."""
        resized = len(names) != len(self._names)
        self._names, self._values, self._labels = list(names), list(values), list(labels)
        self._scale = scale
        self.highlight = highlight
        if resized:
            self.refresh(layout=True)
        else:
            self.repaint()

    def clear(self) -> None:
        self._names, self._values, self._labels = [], [], []
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1 + max(len(self._names), 1 if self.placeholder else 0)

    def render(self) -> Text:
        title_style = self.get_component_rich_style("class-bars--title")
        text = Text(self.title, style=title_style, no_wrap=True, overflow="ellipsis")
        if not self._names:
            if self.placeholder:
                text.append("\n" + self.placeholder, style="dim")
            return text
        name_width = max(len(name) for name in self._names)
        label_width = max(len(label) for label in self._labels)
        mark_width = len(MARK) if self.marks else 0
        bar_width = max(self.size.width - mark_width - name_width - label_width - 2, 1)
        top = self._scale or max(self._values) or 1.0
        bar_style = self.get_component_rich_style("class-bars--bar")
        highlight_style = self.get_component_rich_style("class-bars--highlight")
        rows = zip(self._names, self._values, self._labels, strict=True)
        for index, (name, value, label) in enumerate(rows):
            marked = index == self.highlight
            text.append("\n")
            if self.marks:
                text.append(MARK if marked else " ", style="bold" if marked else "")
            text.append(name.ljust(name_width), style=highlight_style if marked else "")
            text.append(" ")
            text.append(bar(value / top, bar_width), style=bar_style)
            text.append(" " + label.rjust(label_width), style="bold" if marked else "")
        return text
