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


CONFUSION_TITLE = "confusion (true ↓ predicted →)"


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
        title: str = CONFUSION_TITLE,
        *,
        cell_width: int = 4,
        columns: Sequence[str] = (),
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.cell_width = cell_width
        # Headers of per-class figures shown as last columns while ``show_columns``:
        # where there is no room for a separate per-class table.
        self.columns = list(columns)
        self.show_columns = False
        self.matrix: list[list[int]] = []
        self._figures: list[list[float | None]] = []
        self._count = 10

    def show(
        self, matrix: Sequence[Sequence[int]], figures: Sequence[Sequence[float | None]] = ()
    ) -> None:
        """Show a classes x classes ``matrix`` of counts (true rows, predicted columns).

        ``figures``: for each of ``columns`` (the optional last columns), one fraction
        (0-1) a class, shown as a whole percentage without its sign (None: n/a).
        """
        resized = len(matrix) != self._count
        self.matrix = [list(row) for row in matrix]
        self._figures = [list(values) for values in figures]
        self._count = len(self.matrix)
        if resized:
            self.refresh(layout=True)
        else:
            self.repaint()  # only the cells that changed

    def set_title(self, title: str) -> None:
        """Show ``title`` on the first line (laid out again if its length changed)."""
        if title != self.title:
            resized = len(title) != len(self.title)
            self.title = title
            self.refresh(layout=resized)

    def clear(self) -> None:
        """Show the empty grid (dots) until the next ``show``."""
        self.matrix = []
        self._figures = []
        self.refresh(layout=True)

    def _column_widths(self) -> list[int]:
        """Each last column's width: four cells (`` 100``), more for a longer header."""
        if not self.show_columns:
            return []
        return [max(4, len(header) + 1) for header in self.columns]

    def get_content_width(self, container: Size, viewport: Size) -> int:
        extra = sum(self._column_widths())
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
        widths = self._column_widths()
        for title, width in zip(self.columns, widths, strict=False):
            text.append(title.rjust(width), style=header)
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
            for k, width in enumerate(widths):
                values = self._figures[k] if k < len(self._figures) else []
                figure = _percent(values[i]) if i < len(values) else "·"
                text.append(figure.rjust(width))
        return text


def _percent(value: float | None) -> str:
    """A per-class figure as the table shows it: ``87`` (percent), or ``n/a`` for a class
    not measured."""
    return "n/a" if value is None else f"{value * 100:.0f}"
