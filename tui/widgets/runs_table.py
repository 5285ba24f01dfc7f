"""``RunsTable``: one row per run folder, keyed by run id, the cursor kept across refreshes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from rich.text import Text
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

# (key, header); "started" and "model" are left out when narrow: the id holds both; so is
# "settings", which the line under the table shows for the highlighted run.
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
NARROW_COLUMNS = [c for c in WIDE_COLUMNS if c[0] not in ("started", "model", "settings")]


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


def _look(cell: str | Text | None) -> tuple[str, str]:
    return (str(cell), str(cell.style) if isinstance(cell, Text) else "")


class RunsTable(DataTable):
    """Runs, newest first. ``show`` repaints only the rows that changed."""

    DEFAULT_CSS = """
    RunsTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id, classes=classes)
        self.narrow = False
        self.infos: list[RunInfo] = []
        self._marks: dict[str, str] = {}
        self._shown: dict[str, dict[str, str | Text]] = {}

    def on_mount(self) -> None:
        self._set_columns()

    @property
    def columns_shown(self) -> list[tuple[str, str]]:
        return NARROW_COLUMNS if self.narrow else WIDE_COLUMNS

    def _set_columns(self) -> None:
        self.clear(columns=True)
        self._shown = {}
        for key, header in self.columns_shown:
            self.add_column(header, key=key)

    def set_narrow(self, narrow: bool) -> None:
        if narrow != self.narrow:
            self.narrow = narrow
            current = self.highlighted
            self._set_columns()
            self._fill(self.infos, current.id if current else None)

    @property
    def highlighted(self) -> RunInfo | None:
        if not self.infos or not 0 <= self.cursor_row < len(self.infos):
            return None
        return self.infos[self.cursor_row]

    def show(self, infos: Sequence[RunInfo], marks: Mapping[str, str]) -> None:
        """``marks``: run id -> colour of the runs selected for comparing."""
        self._marks = dict(marks)
        current = self.highlighted
        if [i.id for i in infos] == [i.id for i in self.infos] and self.row_count == len(infos):
            self.infos = list(infos)
            for info in infos:
                cells = row_cells(info, self._marks.get(info.id))
                before = self._shown.get(info.id, {})
                for key, _header in self.columns_shown:
                    if _look(cells[key]) != _look(before.get(key)):
                        self.update_cell(info.id, key, cells[key])
                self._shown[info.id] = cells
            return
        self._fill(infos, current.id if current else None)

    def _fill(self, infos: Sequence[RunInfo], keep: str | None) -> None:
        self.infos = list(infos)
        self.clear()
        self._shown = {}
        for info in infos:
            cells = row_cells(info, self._marks.get(info.id))
            self._shown[info.id] = cells
            self.add_row(*(cells[key] for key, _h in self.columns_shown), key=info.id)
        ids = [i.id for i in infos]
        if keep in ids:
            self.move_cursor(row=ids.index(keep), animate=False)
