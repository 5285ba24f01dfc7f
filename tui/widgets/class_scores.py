"""``ClassScoresTable``: per-class precision, recall and F1 as a table of percentages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from tui.widgets.lean import ChangedCells

HEADERS = ("P", "R", "F1")
CELL = 5  # " 100%": a space, then the widest figure


def percent(value: float | None) -> str:
    """A fraction (0..1) as a whole percentage, ``n/a`` for None (a class not measured)."""
    return "n/a" if value is None else f"{value:.0%}"


class ClassScoresTable(ChangedCells, Widget):
    """One row a class: its name, then precision, recall and F1 in percent, and the macro
    averages' row when given. The title line heads the columns. Names longer than the
    room left are cut with an ellipsis."""

    DEFAULT_CSS = """
    ClassScoresTable {
        height: auto;
        width: 1fr;
    }
    ClassScoresTable > .class-scores--title {
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"class-scores--title"}

    def __init__(
        self,
        title: str = "per class",
        *,
        placeholder: str = "",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.placeholder = placeholder
        self.names: list[str] = []
        self.rows: list[tuple[float | None, float | None, float | None]] = []
        self.macro: tuple[float | None, float | None, float | None] | None = None

    def show(
        self,
        names: Sequence[str],
        precision: Sequence[float | None],
        recall: Sequence[float | None],
        f1: Sequence[float | None],
        macro: tuple[float | None, float | None, float | None] | None = None,
    ) -> None:
        """Show one row per name: its precision, recall and F1 (fractions 0..1, None for
        n/a), and a last row of their ``macro`` averages when given. Only the cells that
        changed are sent, unless the number of rows did."""
        resized = len(names) != len(self.names) or (macro is None) != (self.macro is None)
        self.names = list(names)
        self.rows = list(zip(precision, recall, f1, strict=True))
        self.macro = macro
        if resized:
            self.refresh(layout=True)
        else:
            self.repaint()

    def clear(self) -> None:
        self.names, self.rows, self.macro = [], [], None
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        rows = len(self.names) + (self.macro is not None)
        return 1 + max(rows, 1 if self.placeholder else 0)

    def render(self) -> Text:
        figures = CELL * len(HEADERS)
        longest = max((len(name) for name in self.names), default=0)
        name_width = max(min(longest, self.size.width - figures), len(self.title), 1)
        title = self.title.ljust(name_width) + "".join(h.rjust(CELL) for h in HEADERS)
        text = Text(title, style=self.get_component_rich_style("class-scores--title"))
        if not self.names:
            if self.placeholder:
                text.append("\n" + self.placeholder, style="dim")
            return text
        rows = list(zip(self.names, self.rows, strict=True))
        if self.macro is not None:
            rows.append(("macro", self.macro))
        for name, row in rows:
            if len(name) > name_width:
                name = name[: name_width - 1] + "…"
            text.append("\n" + name.ljust(name_width))
            text.append("".join(percent(value).rjust(CELL) for value in row))
        return text
