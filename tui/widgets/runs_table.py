"""``RunsTable``: one row per run folder, keyed by run id, the cursor kept across refreshes.

The columns are fitted to the table's width (``fit_columns``) whenever the table is shown,
resized or given new rows, so the table never scrolls sideways: the settings columns give
way first, and the run id, the best accuracy, the F1 and the state always show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.events import Resize, Show
from textual.widgets import DataTable

from engine.fields import model_label
from engine.runs import RunInfo
from tui.plain import plain

STATE_STYLES = {
    "running": "bold green",
    "paused": "yellow",
    "starting": "yellow",
    "finished": "",
    "failed": "bold red",
    "interrupted": "yellow",
}
SELECTED_MARK = "●"
ELLIPSIS = "…"

# (key, header), in the order shown.
WIDE_COLUMNS = [
    ("mark", " "),
    ("run", "run"),
    ("started", "started"),
    ("model", "model"),
    ("settings", "optimizer lr batch"),
    ("epochs", "epochs"),
    ("best", "best"),
    ("test", "test"),
    ("f1", "F1"),
    ("state", "state"),
]
# What gives way, in this order, while the columns are wider than the table: the settings
# ("settings" is on the line under the table for the highlighted run; the id holds the start
# time and the model), then the id's head (its date, down to ID_TAIL cells), the epochs and
# the test accuracy, and last the id down to the shortest tail that tells the runs apart.
ID_TAIL = 16
GIVE_WAY = ("settings", "started", "model", "id-tail", "epochs", "test", "id-shortest")


def started_text(stamp: str) -> str:
    """``2026-01-01T12:00:05+01:00`` -> ``01-01 12:00``; the text itself if unreadable."""
    try:
        return dt.datetime.fromisoformat(stamp).strftime("%m-%d %H:%M")
    except ValueError:
        return stamp[:11]


def settings_text(info: RunInfo) -> str:
    config = info.config
    if config is None:
        return "(config unreadable)"
    return f"{config.optimizer} {config.lr:g} b{config.batch_size}"


def row_cells(info: RunInfo, mark_color: str | None) -> dict[str, str | Text]:
    """The table's cells for ``info``, as ``Text``: a DataTable parses a ``str`` as markup,
    and the id (a folder name) and the start time (from ``status.json``) may hold
    anything, ``[/]`` included."""
    # The best epoch's accuracy on the split that chose it, "val" when that is the
    # validation split; "test" is the same epoch's test accuracy.
    best = "—"
    if info.best_accuracy is not None:
        best = f"{info.best_accuracy:.1%}" + (" val" if info.chosen_on == "validation" else "")
    test = f"{info.best_test_accuracy:.1%}" if info.best_test_accuracy is not None else "—"
    # The same epoch's macro-averaged F1 on the test split.
    f1 = f"{info.macro_f1:.1%}" if info.macro_f1 is not None else "—"
    return {
        "mark": Text(SELECTED_MARK, style=f"bold {mark_color}") if mark_color else Text(" "),
        "run": plain(info.id),
        "started": plain(started_text(info.started)),
        # A factory of the user's own code shows as its name (``nets.py:tiny``: tiny).
        "model": plain(model_label(info.config.model) if info.config else "?"),
        "settings": plain(settings_text(info)),
        "epochs": Text(f"{info.epochs_completed}/{info.epochs}", justify="right"),
        "best": Text(best, justify="right"),
        "test": Text(test, justify="right"),
        "f1": Text(f1, justify="right"),
        "state": plain(info.state, STATE_STYLES.get(info.state, "")),
    }


def id_tail(run_id: str, width: int) -> str:
    """``run_id`` in at most ``width`` cells: whole if it fits, else ``…`` and its end
    (``20260101-120000-mlp-abcd`` in 16 -> ``…-120000-mlp-abcd``)."""
    if cell_len(run_id) <= width:
        return run_id
    tail = ""
    for char in reversed(run_id):
        if cell_len(char + tail) > width - 1:
            break
        tail = char + tail
    return ELLIPSIS + tail


def shortest_tail(ids: Sequence[str]) -> int:
    """The fewest cells (at least 4) in which ``id_tail`` still tells every id apart."""
    longest = max((cell_len(i) for i in ids), default=0)
    for width in range(4, longest):
        if len({id_tail(i, width) for i in ids}) == len(set(ids)):
            return width
    return max(longest, 4)


@dataclass(frozen=True)
class ColumnLayout:
    """The columns shown, as ``(key, header, width in cells)``, and the run id's width."""

    columns: tuple[tuple[str, str, int], ...]
    id_width: int

    @property
    def keys(self) -> list[str]:
        return [key for key, _header, _width in self.columns]

    def width(self, padding: int) -> int:
        """Cells the columns take, ``padding`` on each side of every cell."""
        return sum(width + 2 * padding for _key, _header, width in self.columns)


def fit_columns(
    rows: Sequence[Mapping[str, str | Text]], width: int, padding: int = 1
) -> ColumnLayout:
    """The columns of ``WIDE_COLUMNS`` that fit in ``width`` cells, each as wide as its
    widest cell (or its header); what gives way follows ``GIVE_WAY``. If even the last
    layout is too wide it is returned as is (the table then cuts the right-hand columns).

    ``rows``: ``row_cells`` of every run; ``padding``: the table's ``cell_padding``.
    """
    natural = {
        key: max([cell_len(header), *(cell_len(str(row[key])) for row in rows)])
        for key, header in WIDE_COLUMNS
    }
    ids = [str(row["run"]) for row in rows]
    shown = [key for key, _header in WIDE_COLUMNS]
    id_width = natural["run"]

    def layout() -> ColumnLayout:
        widths = {**natural, "run": id_width}
        return ColumnLayout(
            tuple((k, h, widths[k]) for k, h in WIDE_COLUMNS if k in shown), id_width
        )

    for step in GIVE_WAY:
        excess = layout().width(padding) - width
        if excess <= 0:
            break
        if step in shown:
            shown.remove(step)
            continue
        floor = shortest_tail(ids) if step == "id-shortest" else max(shortest_tail(ids), ID_TAIL)
        id_width = max(cell_len("run"), min(id_width, max(floor, id_width - excess)))
    return layout()


def _look(cell: str | Text | None) -> tuple[str, str]:
    return (str(cell), str(cell.style) if isinstance(cell, Text) else "")


class RunsTable(DataTable):
    """Runs, newest first. ``show`` repaints only the rows that changed.

    The columns are fitted to the width (``fit_columns``) when the table is shown or
    resized and when its runs change; the cursor's row is kept in view.
    """

    DEFAULT_CSS = """
    RunsTable {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id, classes=classes)
        self.infos: list[RunInfo] = []
        self._marks: dict[str, str] = {}
        self._shown: dict[str, dict[str, str | Text]] = {}
        self._layout: ColumnLayout | None = None

    @property
    def columns_shown(self) -> list[tuple[str, str]]:
        """``(key, header)`` of the columns shown now."""
        if self._layout is None:
            return []
        return [(key, header) for key, header, _width in self._layout.columns]

    @property
    def narrow(self) -> bool:
        """True when some columns have given way to the width (the settings first)."""
        return self._layout is not None and len(self._layout.columns) < len(WIDE_COLUMNS)

    @property
    def highlighted(self) -> RunInfo | None:
        if not self.infos or not 0 <= self.cursor_row < len(self.infos):
            return None
        return self.infos[self.cursor_row]

    # --- fitting to the width -----------------------------------------------------------

    def on_mount(self) -> None:
        self._refit()

    def on_show(self, _event: Show) -> None:
        self._refit()

    def on_resize(self, _event: Resize) -> None:
        self._refit()
        if self.row_count:  # a lower table may have left the cursor's row below its bottom
            self.move_cursor(row=self.cursor_row, animate=False)

    def _cells(self, info: RunInfo) -> dict[str, str | Text]:
        return row_cells(info, self._marks.get(info.id))

    def _fitted(self, rows: Sequence[Mapping[str, str | Text]]) -> ColumnLayout:
        # One cell is kept for the vertical scrollbar, shown or not, so that a new row
        # never pushes the last column out.
        width = self.size.width - self.styles.scrollbar_size_vertical
        if self.size.width <= 0 and self._layout is not None:
            return self._layout  # hidden: fitted again when shown
        return fit_columns(rows, max(width, 0), self.cell_padding)

    def _refit(self) -> None:
        layout = self._fitted([self._cells(i) for i in self.infos])
        if layout != self._layout:
            current = self.highlighted
            self._layout = layout
            self._fill(self.infos, current.id if current else None, columns=True)

    # --- rows ---------------------------------------------------------------------------

    def show(self, infos: Sequence[RunInfo], marks: Mapping[str, str]) -> None:
        """``marks``: run id -> colour of the runs selected for comparing."""
        self._marks = dict(marks)
        current = self.highlighted
        layout = self._fitted([self._cells(i) for i in infos])
        if layout != self._layout:
            self._layout = layout
            self._fill(infos, current.id if current else None, columns=True)
            return
        if [i.id for i in infos] == [i.id for i in self.infos] and self.row_count == len(infos):
            self.infos = list(infos)
            for info in infos:
                cells = self._shown_cells(info)
                before = self._shown.get(info.id, {})
                for key in layout.keys:
                    if _look(cells[key]) != _look(before.get(key)):
                        self.update_cell(info.id, key, cells[key])
                self._shown[info.id] = cells
            return
        self._fill(infos, current.id if current else None)

    def _shown_cells(self, info: RunInfo) -> dict[str, str | Text]:
        """``row_cells`` with the id cut to the column's width."""
        cells = self._cells(info)
        if self._layout is not None:
            cells["run"] = plain(id_tail(info.id, self._layout.id_width))
        return cells

    def _fill(self, infos: Sequence[RunInfo], keep: str | None, columns: bool = False) -> None:
        self.infos = list(infos)
        self.clear(columns=columns)
        if columns and self._layout is not None:
            for key, header, width in self._layout.columns:
                self.add_column(header, width=width, key=key)
        self._shown = {}
        keys = self._layout.keys if self._layout is not None else []
        for info in infos:
            cells = self._shown_cells(info)
            self._shown[info.id] = cells
            self.add_row(*(cells[key] for key in keys), key=info.id)
        ids = [i.id for i in infos]
        if keep in ids:
            self.move_cursor(row=ids.index(keep), animate=False)
