"""``TrialsTable``: one row per trial of a study, newest first, repainting only what changed.

The parameters column is cut to the room the table has (``param_text``); the line under
the table gives the highlighted trial's parameters in full (``trial_detail``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.events import Resize
from textual.widgets import DataTable

from tui.plain import plain

if TYPE_CHECKING:
    from engine.search import TrialRow

STATE_STYLES = {
    "running": "bold green",
    "waiting": "yellow",
    "complete": "",
    "pruned": "yellow",
    "failed": "bold red",
}
BEST_MARK = "*"  # after the best trial's number: readable without colour (NO_COLOR)

# Short names in the parameters column; "" shows the value alone (its own word).
SHORT_NAMES = {
    "model": "",
    "activation": "",
    "optimizer": "",
    "loss": "",
    "lr": "lr",
    "batch_size": "b",
    "dropout": "drop",
    "weight_decay": "wd",
    "momentum": "mom",
    "label_smoothing": "ls",
    "hidden_sizes": "h",
    "conv_channels": "ch",
    "schedule": "sched",
    "grad_clip": "clip",
    "crop_padding": "pad",
}

# Written without a space: b128, h256-256, ch16-32.
JOINED = {"batch_size", "hidden_sizes", "conv_channels"}

# (key, header). The parameters column takes the room the others leave.
COLUMNS = [
    ("number", "#"),
    ("state", "state"),
    ("params", "parameters"),
    ("value", "val acc"),
    ("epochs", "ep"),
    ("pruned", "pruned"),
]
# Each cell's padding (one either side), and the vertical scrollbar.
CELL_PADDING = 2
SCROLLBAR = 1
MIN_PARAMS_WIDTH = 12


def short_number(value: float) -> str:
    """A number in few characters: ``0.00321`` -> ``3.2e-3``, ``0.25`` -> ``0.25``,
    ``128`` -> ``128``, ``1.2e-05`` -> ``1.2e-5``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (
        math.isfinite(value) and value == int(value) and abs(value) < 1e6
    ):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def value_text(value: Any) -> str:
    """A parameter's value as the detail line shows it (lists as ``256-256``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def param_text(params: Mapping[str, Any], width: int | None = None) -> str:
    """``params`` in a line: ``lr 3.2e-3 b128 drop 0.21 wd 1.2e-5 adamw``, cut to ``width``
    cells with an ellipsis when given."""
    parts = []
    for name, value in params.items():
        short = SHORT_NAMES.get(name, name)
        if isinstance(value, bool):
            parts.append(("+" if value else "-") + name)
            continue
        if isinstance(value, (list, tuple)):
            shown = "-".join(str(v) for v in value)
        elif isinstance(value, (int, float)):
            shown = short_number(value)
        else:
            shown = str(value)
        if not short:
            parts.append(shown)
        elif name in JOINED:
            parts.append(f"{short}{shown}")  # b128, h256-256
        else:
            parts.append(f"{short} {shown}")
    text = " ".join(parts)
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text


def accuracy_text(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.1%}"


def best_trial(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The complete trial with the highest validation accuracy (the lowest number of
    those tied), or None when none is complete."""
    done = [r for r in rows if r.state == "complete" and r.value is not None]
    return max(done, key=lambda r: (r.value, -r.number)) if done else None


def trial_detail(row: TrialRow) -> str:
    """The highlighted trial in full: its state, every parameter, accuracy and run."""
    params = " · ".join(f"{name} {value_text(v)}" for name, v in row.params.items())
    state = row.state
    if row.state == "pruned" and row.pruned_at is not None:
        state = f"pruned after epoch {row.pruned_at}"
    parts = [f"#{row.number} {state}"]
    if params:
        parts.append(params)
    if row.value is not None:
        parts.append(f"val {accuracy_text(row.value)}")
    if row.run_id:
        parts.append(f"run {row.run_id}")
    return " · ".join(parts)


def row_cells(row: TrialRow, best: bool, params_width: int) -> dict[str, Text]:
    """The table's cells for ``row`` as ``Text`` (a DataTable would parse a ``str`` as
    markup, and parameter values are the study's, which may hold anything)."""
    mark = BEST_MARK if best else " "
    return {
        "number": Text(f"{row.number}{mark}", justify="right"),
        "state": plain(row.state, STATE_STYLES.get(row.state, "")),
        "params": plain(param_text(row.params, params_width)),
        "value": Text(accuracy_text(row.value), justify="right", style="bold" if best else ""),
        "epochs": Text(str(row.epochs), justify="right"),
        "pruned": Text("—" if row.pruned_at is None else str(row.pruned_at), justify="right"),
    }


def _look(cell: Text | None) -> tuple[str, str]:
    return (str(cell), str(cell.style) if cell is not None else "")


class TrialsTable(DataTable):
    """A study's trials, newest first. ``show`` repaints only the cells that changed; the
    cursor stays on its trial across refreshes."""

    DEFAULT_CSS = """
    TrialsTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id, classes=classes)
        self.rows_shown: list[TrialRow] = []
        self.best_number: int | None = None
        self.params_width = 40
        self._shown: dict[int, dict[str, Text]] = {}

    def on_mount(self) -> None:
        for key, header in COLUMNS:
            self.add_column(header, key=key)

    def on_resize(self, event: Resize) -> None:
        width = self._params_width(event.size.width)
        if width != self.params_width:
            self.params_width = width
            self.show(self.rows_shown)

    def _params_width(self, total: int) -> int:
        others = {"number": 4, "state": 8, "value": 7, "epochs": 3, "pruned": 6}
        used = sum(others.values()) + CELL_PADDING * len(COLUMNS) + SCROLLBAR
        return max(total - used, MIN_PARAMS_WIDTH)

    @property
    def highlighted(self) -> TrialRow | None:
        if not self.rows_shown or not 0 <= self.cursor_row < len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row]

    def show(self, rows: Sequence[TrialRow]) -> None:
        """Show ``rows`` newest first. The cursor stays on the trial it was on, or, on
        the newest, goes on to the trials that start (it follows the search)."""
        ordered = sorted(rows, key=lambda r: r.number, reverse=True)
        best = best_trial(ordered)
        self.best_number = best.number if best is not None else None
        current = self.highlighted
        same = [r.number for r in ordered] == [r.number for r in self.rows_shown]
        if same and self.row_count == len(ordered):
            self.rows_shown = ordered
            for row in ordered:
                cells = row_cells(row, row.number == self.best_number, self.params_width)
                before = self._shown.get(row.number, {})
                for key, _header in COLUMNS:
                    if _look(cells[key]) != _look(before.get(key)):
                        self.update_cell(str(row.number), key, cells[key], update_width=True)
                self._shown[row.number] = cells
            return
        follow = current is None or self.cursor_row == 0
        keep = ordered[0].number if follow and ordered else current.number if current else None
        self._fill(ordered, keep)

    def _fill(self, rows: list[TrialRow], keep: int | None) -> None:
        self.rows_shown = rows
        self.clear()
        self._shown = {}
        for row in rows:
            cells = row_cells(row, row.number == self.best_number, self.params_width)
            self._shown[row.number] = cells
            self.add_row(*(cells[key] for key, _h in COLUMNS), key=str(row.number))
        numbers = [r.number for r in rows]
        if keep in numbers:
            self.move_cursor(row=numbers.index(keep), animate=False)

    def select_number(self, number: int) -> bool:
        """Put the cursor on trial ``number``; False when the table has no such trial."""
        numbers = [r.number for r in self.rows_shown]
        if number not in numbers:
            return False
        self.move_cursor(row=numbers.index(number), animate=False)
        return True
