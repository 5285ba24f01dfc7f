"""``ConfusionPicker``: a confusion matrix with a cell cursor, to choose (true, predicted).

Arrow keys move the cursor; enter posts ``ConfusionPicker.Chosen`` for the cell under
it. Right answers are green, mistakes red, shaded by their share of the row; the
cursor cell is drawn reversed and bold, its count in brackets ("[12]"), so it shows
without colour and as plain text too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget

from tui.widgets.confusion import compact_count, heat_style, merge_runs
from tui.widgets.lean import LeanLines

CELL = 5


class ConfusionPicker(LeanLines, Widget, can_focus=True):
    """A square matrix of counts (true class rows, predicted columns) with a cell cursor."""

    DEFAULT_CSS = """
    ConfusionPicker {
        height: auto;
        width: 1fr;
    }
    ConfusionPicker > .confusion-picker--header {
        color: $text-muted;
    }
    ConfusionPicker > .confusion-picker--title {
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "confusion-picker--header",
        "confusion-picker--title",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        # Named in the pane's hint line ("enter: browse its images"), not in the footer.
        Binding("enter", "choose", "Browse cell", show=False),
    ]

    @dataclass
    class Chosen(Message):
        """Enter was pressed on the cell (``true_class``, ``predicted``)."""

        true_class: int
        predicted: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.matrix: list[list[int]] = []
        self.names: list[str] = []
        self.row = 0
        self.column = 0

    def show(self, matrix: Sequence[Sequence[int]], names: Sequence[str]) -> None:
        """Show a classes x classes ``matrix`` of counts; ``names``: the class names."""
        resized = len(matrix) != len(self.matrix)
        self.matrix = [list(r) for r in matrix]
        self.names = list(names)
        n = len(self.matrix)
        self.row, self.column = min(self.row, max(n - 1, 0)), min(self.column, max(n - 1, 0))
        self.refresh(layout=resized)

    @property
    def cell(self) -> tuple[int, int]:
        """The cursor's (true class, predicted class)."""
        return self.row, self.column

    def move_to(self, row: int, column: int) -> None:
        """Put the cursor on (``row``, ``column``), wrapping at the edges."""
        n = len(self.matrix)
        if n:
            self.row, self.column = row % n, column % n
            self.refresh()

    def action_move(self, rows: int, columns: int) -> None:
        self.move_to(self.row + rows, self.column + columns)

    def action_choose(self) -> None:
        if self.matrix:
            self.post_message(self.Chosen(self.row, self.column))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 3 + len(self.matrix)

    def render(self) -> Text:
        header = self.get_component_rich_style("confusion-picker--header")
        text = Text(
            "confusion (true ↓ predicted →)",
            style=self.get_component_rich_style("confusion-picker--title"),
            no_wrap=True,
        )
        n = len(self.matrix)
        if not n:
            text.append("\nno predictions yet", style="dim")
            return text
        text.append("\n  " + "".join(str(j).rjust(CELL) for j in range(n)), style=header)
        background = self.styles.background if self.styles.background.a else Color(0, 0, 0)
        for i, row in enumerate(self.matrix):
            text.append(f"\n{i} ", style=header)
            total = sum(row) or 1
            cells: list[tuple[str, Style]] = []
            for j, count in enumerate(row):
                at_cursor = (i, j) == self.cell
                shown = "·" if count == 0 else compact_count(count, CELL - 1 - 2 * at_cursor)
                cell = (f"[{shown}]" if at_cursor else shown).rjust(CELL)
                style = header if count == 0 else heat_style(count, total, i == j, background)
                if at_cursor:
                    style = style + Style(reverse=True, bold=True, underline=True)
                cells.append((cell, style))
            for cell, style in merge_runs(cells):
                text.append(cell, style=style)
            if i < len(self.names):
                text.append(f"  {self.names[i]}", style=header)
        t, p = self.cell
        count = self.matrix[t][p]
        name = self.names if len(self.names) == n else [str(k) for k in range(n)]
        images = f"{count:,} image{'s' * (count != 1)}" + (" (right)" if t == p else "")
        text.append(f"\ntrue {name[t]} → predicted {name[p]}: {images}", style="bold")
        return text
