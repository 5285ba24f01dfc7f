"""``RunPicker``: choose one run from a list (the Inspect pane's other runs).

The runs are shown as a table of fixed-width columns (run, state, epochs, best accuracy,
test images: those Inspect shows), under a header line: each column starts at the same
place on every line. A run id too long for the dialog keeps its end, where ids differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.runs import RunInfo
from tui.output import printable

HEADINGS = ("run", "state", "epochs", "best", "test")
COLUMN_GAP = 2
# The id column's narrowest, when the dialog is narrow.
MIN_ID_WIDTH = 12
# The dialog's width (as app.tcss sizes #run-picker-box), and what its border and
# padding, the list's, and the list's scrollbar take of it.
BOX_WIDTH = 90
BOX_FRAME = 2 + 4 + 2 + 2 + 2


def run_cells(info: RunInfo) -> tuple[str, ...]:
    """One run's cells under ``HEADINGS``: its id, state, epochs done of planned, best
    accuracy (a percentage with one decimal, "-" before the first epoch) and how many
    test images it was evaluated on, the ones Inspect shows ("all", or a subset's size)."""
    best = f"{info.best_accuracy:.1%}" if info.best_accuracy is not None else "-"
    subset = info.config.test_subset if info.config is not None else 0
    images = f"{subset:,}" if subset else "all"
    return (
        printable(info.id),
        str(info.state),
        f"{info.epochs_completed}/{info.epochs}",
        best,
        images,
    )


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` cells: its end kept after "…" when it is longer."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def picker_lines(runs: Sequence[RunInfo], width: int) -> list[str]:
    """The header and one line per run, in columns that line up, at most ``width``
    characters where the id column can give way (down to ``MIN_ID_WIDTH``); the run
    column left-aligned, the figures right-aligned."""
    rows = [HEADINGS, *(run_cells(info) for info in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS))]
    others = sum(widths[1:]) + COLUMN_GAP * (len(HEADINGS) - 1)
    widths[0] = max(min(widths[0], width - others), MIN_ID_WIDTH)
    gap = " " * COLUMN_GAP
    lines = []
    for row in rows:
        cells = [_fit(row[0], widths[0]).ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        lines.append(gap.join(cells).rstrip())
    return lines


class RunPicker(ModalScreen[Path | None]):
    """Returns the chosen run's folder (enter), or None (escape)."""

    DEFAULT_CSS = """
    RunPicker #run-picker-columns {
        padding: 0 2;  /* as the list's border and padding: over its columns */
        text-style: bold;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, runs: Sequence[RunInfo], current: Path | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.runs = list(runs)
        self.current = current
        self._width = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="run-picker-box", classes="dialog"):
            yield Static(self.title_text, id="run-picker-title")
            yield Static("", id="run-picker-columns")
            yield OptionList(id="run-picker-list")
            yield Static("enter: choose · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill(self._room(self.app.size.width))
        options = self.query_one(OptionList)
        paths = [info.path for info in self.runs]
        if self.current in paths:
            options.highlighted = paths.index(self.current)
        options.focus()

    def on_resize(self, event: Resize) -> None:
        self._fill(self._room(event.size.width))

    @staticmethod
    def _room(screen_width: int) -> int:
        """The columns a line has in the list on a screen ``screen_width`` wide: the
        dialog's width (app.tcss: ``BOX_WIDTH``, at most 95% of the screen) less its
        border and padding, the list's, and a scrollbar's (a wider line wraps)."""
        return min(BOX_WIDTH, screen_width * 95 // 100) - BOX_FRAME

    def _fill(self, width: int) -> bool:
        """Lay the lines out for ``width`` columns; whether they changed."""
        columns = next(iter(self.query("#run-picker-columns").results(Static)), None)
        if columns is None or width <= 0 or width == self._width:
            return False  # not composed yet (a resize comes first), or as it is
        self._width = width
        header, *lines = picker_lines(self.runs, width)
        columns.update(Text(header))
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options(
            Option(Text(line), id=str(info.path))
            for line, info in zip(lines, self.runs, strict=True)
        )
        if highlighted is not None:
            options.highlighted = highlighted
        return True

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id) if event.option.id else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
