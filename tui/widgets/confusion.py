"""``ConfusionTable``: the confusion matrix as a heat table, true classes down, predicted across."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.geometry import Size
from textual.widget import Widget

from tui.widgets.lean import ChangedCells


def compact_count(count: int, width: int) -> str:
    """``count`` in at most ``width`` characters (1234 -> "1k" when it does not fit)."""
    text = str(count)
    if len(text) <= width:
        return text
    for divisor, suffix in ((1000, "k"), (1_000_000, "M")):
        short = f"{count // divisor}{suffix}"
        if len(short) <= width:
            return short
    return "+" * width


# Shades of green and red a cell can take.
SHADES = 6
RIGHT = Color.parse("#2e9b4f")
WRONG = Color.parse("#c0392b")


def heat_style(count: int, row_total: int, right: bool, background: Color) -> Style:
    """A non-zero cell's style: green when ``right`` (on the diagonal), red when not.

    The colour is stronger as ``count`` takes more of its row's ``row_total``, and
    blended into ``background``.
    """
    share = count / row_total
    # Mistakes are rarer than right answers: stretch their scale so a 10% confusion
    # already shows strongly. A few shades only: neighbours of one shade share one
    # style, which keeps each repaint small.
    strength = share if right else min(1.0, share * 4)
    shade = round(strength * SHADES) / SHADES
    tint = background.blend(RIGHT if right else WRONG, 0.15 + 0.85 * shade)
    return Style(bgcolor=tint.rich_color, bold=right)


def merge_runs(cells: list[tuple[str, Style]]) -> list[tuple[str, Style]]:
    """Join neighbouring cells of one style: each style change costs bytes on the wire."""
    merged: list[tuple[str, Style]] = []
    for cell, style in cells:
        if merged and merged[-1][1] == style:
            merged[-1] = (merged[-1][0] + cell, style)
        else:
            merged.append((cell, style))
    return merged


class ConfusionTable(ChangedCells, Widget):
    """Counts coloured by their share of the row: right answers green, mistakes red."""

    DEFAULT_CSS = """
    ConfusionTable {
        height: auto;
        width: auto;
    }
    ConfusionTable > .confusion--title {
        text-style: bold;
    }
    ConfusionTable > .confusion--header {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"confusion--title", "confusion--header"}

    def __init__(
        self,
        title: str = "confusion (true ↓ predicted →)",
        *,
        cell_width: int = 4,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.cell_width = cell_width
        # Where there is no room for separate per-class bars, a last column shows them.
        self.show_accuracy = False
        self.matrix: list[list[int]] = []
        self._accuracy: list[float | None] = []
        self._count = 10

    def show(self, matrix: Sequence[Sequence[int]], accuracy: Sequence[float | None] = ()) -> None:
        """Show a classes x classes ``matrix`` of counts (true rows, predicted columns).

        ``accuracy``: per-class accuracy (fractions, 0-1; None for a class with no images,
        shown n/a), for the optional last column.
        """
        resized = len(matrix) != self._count
        self.matrix = [list(row) for row in matrix]
        self._accuracy = list(accuracy)
        self._count = len(self.matrix)
        if resized:
            self.refresh(layout=True)
        else:
            self.repaint()  # only the cells that changed

    def clear(self) -> None:
        """Show the empty grid (dots) until the next ``show``."""
        self.matrix = []
        self._accuracy = []
        self.refresh(layout=True)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        extra = 5 if self.show_accuracy else 0
        return max(2 + self._count * self.cell_width + extra, len(self.title))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 2 + self._count

    def render(self) -> Text:
        w = self.cell_width
        n = self._count
        text = Text(
            self.title, style=self.get_component_rich_style("confusion--title"), no_wrap=True
        )
        header = self.get_component_rich_style("confusion--header")
        text.append("\n  " + "".join(str(j).rjust(w) for j in range(n)), style=header)
        if self.show_accuracy:
            text.append("  acc", style=header)
        background = self.styles.background if self.styles.background.a else Color(0, 0, 0)
        for i in range(n):
            text.append(f"\n{i} ", style=header)
            row = self.matrix[i] if self.matrix else [0] * n
            total = sum(row) or 1
            cells: list[tuple[str, Style]] = []
            for j, count in enumerate(row):
                if not self.matrix or count == 0:
                    cells.append(("·".rjust(w), header))
                    continue
                # A space before the number where it fits; where not, the cell's colour
                # still sets it apart from its neighbours.
                digits = str(count)
                cell = (digits if len(digits) < w else compact_count(count, w)).rjust(w)
                cells.append((cell, heat_style(count, total, i == j, background)))
            for cell, style in merge_runs(cells):
                text.append(cell, style=style)
            if self.show_accuracy:
                value = self._accuracy[i] if i < len(self._accuracy) else "·"
                accuracy = value if isinstance(value, str) else _percent(value)
                text.append(accuracy.rjust(5))
        return text


def _percent(value: float | None) -> str:
    """A per-class accuracy as the table shows it: ``87%``, or ``n/a`` for a class with no
    images in the split."""
    return "n/a" if value is None else f"{value:.0%}"
