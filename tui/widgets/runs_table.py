"""``RunsTable``: one row per run folder, keyed by run id, the cursor kept across refreshes.

The columns are fitted to the table's width (``fit_columns``) whenever the table is shown,
resized or given new rows, so the table never scrolls sideways: the settings columns give
way first, and the run id, the best accuracy, the F1 and the state always show.

A DataTable measures every cell it is given (about 0.3 ms a row), so thousands of runs are
added a screenful first and then in chunks, one chunk per turn of the event loop: the first
rows show at once and keys are answered while the rest arrive. Each run's cells are made
once per ``RunInfo`` object (the listing keeps the object of a folder that did not change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.events import Resize, Show
from textual.widgets import DataTable

from engine.fields import model_label
from engine.runs import RunInfo, data_size
from engine.state import RunState
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
# On the highlighted row, in the first column before the mark: the cursor without colour
# (NO_COLOR, a plain capture), where the row's shade alone would not tell it.
CURSOR_MARK = "▶"
ELLIPSIS = "…"

# (key, header), in the order shown.
WIDE_COLUMNS = [
    ("mark", " "),
    ("run", "run"),
    ("started", "started"),
    ("model", "model"),
    ("data", "data"),
    ("settings", "opt lr batch"),
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
# The data size ("5k" for a quick run, "all") stays while the epochs give way.
ID_TAIL = 16
GIVE_WAY = ("settings", "started", "model", "id-tail", "epochs", "data", "test", "id-shortest")
# Rows added at once before the table shows (a screenful), then per turn of the event loop.
FIRST_ROWS = 60
CHUNK_ROWS = 400


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
        # Two cells: the cursor's (``RunsTable`` puts ``CURSOR_MARK`` there), the mark.
        "mark": Text.assemble(" ", (SELECTED_MARK, f"bold {mark_color}") if mark_color else " "),
        "run": plain(info.id),
        "started": plain(started_text(info.started)),
        # A factory of the user's own code shows as its name (``nets.py:tiny``: tiny).
        "model": plain(model_label(info.config.model) if info.config else "?"),
        # Training images: a quick run's "5k" beside a full run's "all".
        "data": Text(data_size(info.config), justify="right"),
        "settings": plain(settings_text(info)),
        "epochs": Text(f"{info.epochs_completed}/{info.epochs}", justify="right"),
        "best": Text(best, justify="right"),
        "test": Text(test, justify="right"),
        "f1": Text(f1, justify="right"),
        "state": plain(info.state, STATE_STYLES.get(info.state, "")),
    }


def id_tail(run_id: str, width: int) -> str:
    """``run_id`` in at most ``width`` cells: whole if it fits, else ``…`` and as many of
    its last ``-``-separated parts as fit, whole (``20260101-120000-mlp-abcd`` in 20 ->
    ``…120000-mlp-abcd``: the date goes first, never half of it); an end cut by the
    character only when not even its last part fits (a folder name without ``-``)."""
    if cell_len(run_id) <= width:
        return run_id
    parts = run_id.split("-")
    for first in range(1, len(parts)):
        tail = "-".join(parts[first:])
        if cell_len(tail) <= width - 1:
            return ELLIPSIS + tail
    if run_id.isascii() and run_id.isprintable():  # one cell a character: a slice
        return ELLIPSIS + run_id[len(run_id) - width + 1 :] if width > 1 else ELLIPSIS
    tail = ""
    for char in reversed(run_id):
        if cell_len(char + tail) > width - 1:
            break
        tail = char + tail
    return ELLIPSIS + tail


def shortest_tail(ids: Sequence[str]) -> int:
    """The fewest cells (at least 4) in which ``id_tail`` still tells every id apart."""
    longest = max((cell_len(i) for i in ids), default=0)
    distinct = len(set(ids))
    low, high = 4, max(longest, 4)
    # Longer tails never tell fewer ids apart: the fewest cells is found by bisection.
    while low < high:
        width = (low + high) // 2
        if len({id_tail(i, width) for i in ids}) == distinct:
            high = width
        else:
            low = width + 1
    return low


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


def cell_widths(row: Mapping[str, str | Text]) -> dict[str, int]:
    """Cells each of ``row``'s cells takes (``row_cells``' keys)."""
    return {key: cell_len(str(row[key])) for key, _header in WIDE_COLUMNS}


def fit_columns(
    rows: Sequence[Mapping[str, str | Text]],
    width: int,
    padding: int = 1,
    widths: Sequence[Mapping[str, int]] | None = None,
    keep: str | None = None,
) -> ColumnLayout:
    """The columns of ``WIDE_COLUMNS`` that fit in ``width`` cells, each as wide as its
    widest cell (or its header); what gives way follows ``GIVE_WAY``, except the column
    ``keep`` (the one the runs are sorted by), which never does. If even the last layout
    is too wide it is returned as is (the table then cuts the right-hand columns). A cut
    id column is as wide as its widest cut id (``id_tail`` cuts whole parts).

    ``rows``: ``row_cells`` of every run; ``padding``: the table's ``cell_padding``;
    ``widths``: the rows' ``cell_widths`` when already measured.
    """
    measured = widths if widths is not None else [cell_widths(row) for row in rows]
    natural = {
        key: max([cell_len(header), *(w[key] for w in measured)]) for key, header in WIDE_COLUMNS
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
        if step == keep:
            continue
        if step in shown:
            shown.remove(step)
            continue
        floor = shortest_tail(ids) if step == "id-shortest" else max(shortest_tail(ids), ID_TAIL)
        id_width = max(cell_len("run"), min(id_width, max(floor, id_width - excess)))
    if id_width < natural["run"]:
        id_width = max([cell_len("run"), *(cell_len(id_tail(i, id_width)) for i in ids)])
    return layout()


# The columns the runs sort by, in the order ``<`` and ``>`` go through them; the
# figures sort best first and the ids and start times newest first, until reversed.
SORT_COLUMNS = ("run", "started", "model", "data", "settings", "epochs", "best", "test", "f1",
                "state")  # fmt: skip
DESCENDING = frozenset({"run", "started", "best", "test", "f1"})


def _sort_value(info: RunInfo, column: str) -> object:
    """What ``column`` sorts ``info`` by; None for a run with no such figure (last)."""
    config = info.config
    if column == "run":
        return info.id
    if column == "started":
        return info.started or None
    if column == "model":
        return model_label(config.model) if config else None
    if column == "data":
        return (config.train_subset or 10**12) if config else None
    if column == "settings":
        return (config.optimizer, config.lr, config.batch_size) if config else None
    if column == "epochs":
        return (info.epochs_completed, info.epochs)
    if column == "best":
        return info.best_accuracy
    if column == "test":
        return info.best_test_accuracy
    if column == "f1":
        return info.macro_f1
    if column == "state":
        return info.state.value
    raise ValueError(f"no column {column!r} to sort by; columns: {', '.join(SORT_COLUMNS)}")


def sort_runs(infos: Sequence[RunInfo], column: str, reverse: bool = False) -> list[RunInfo]:
    """``infos`` by ``column`` (one of ``SORT_COLUMNS``): in its natural direction (the
    figures best first, ids and times newest first), the other way when ``reverse``;
    ties by id, newest first; runs without the figure last. ``ValueError`` for another
    column."""
    descending = (column in DESCENDING) != reverse
    by_id = sorted(infos, key=lambda i: i.id, reverse=True)
    values = [(_sort_value(i, column), i) for i in by_id]
    known = [(v, i) for v, i in values if v is not None]
    known.sort(key=lambda pair: pair[0], reverse=descending)  # type: ignore[arg-type,return-value]
    return [i for _v, i in known] + [i for v, i in values if v is None]


def filter_problem(text: str) -> str:
    """Why ``text`` is not a filter (an unknown ``state:``), or "" when it is."""
    states = sorted({s.value for s in RunState})
    for word in text.lower().split():
        if word.startswith("state:"):
            wanted = word.removeprefix("state:")
            if not any(s.startswith(wanted) for s in states):
                return f"no state {wanted!r}; states: {', '.join(states)}"
    return ""


def run_text(info: RunInfo) -> str:
    """What a filter's words are looked for in (lower case): the id, the model, the data
    size, the settings and the state."""
    config = info.config
    summary = config.summary() if config else "config unreadable"
    data = f"data {data_size(config)}"
    return f"{info.id} {summary} {settings_text(info)} {data} {info.state.value}".lower()


def filter_runs(
    infos: Sequence[RunInfo], text: str, texts: Mapping[str, str] | None = None
) -> list[RunInfo]:
    """The runs every word of ``text`` is found in (``run_text``, any case); a word
    ``state:NAME`` keeps the runs whose state begins with NAME (``state:fin``).
    ``texts``: run id -> ``run_text``, when already made."""
    words = text.lower().split()
    states = [w.removeprefix("state:") for w in words if w.startswith("state:")]
    words = [w for w in words if not w.startswith("state:")]
    kept = []
    for info in infos:
        if states and not any(info.state.value.startswith(s) for s in states):
            continue
        haystack = texts[info.id] if texts is not None and info.id in texts else run_text(info)
        if all(w in haystack for w in words):
            kept.append(info)
    return kept


def _look(cell: str | Text | None) -> tuple[str, str]:
    if isinstance(cell, Text):
        return (str(cell), f"{cell.style} {cell.spans}")
    return (str(cell), "")


class RunsTable(DataTable):
    """Runs, in the order given. ``show`` repaints only the rows that changed.

    The columns are fitted to the width (``fit_columns``) when the table is shown or
    resized and when its runs change; the cursor's row is kept in view. ``infos`` are
    the runs shown (all of them, though the last rows may still be on their way in:
    ``filling`` is True until every row is in the table).
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
        self._shown_from: dict[str, tuple[RunInfo, str | None]] = {}  # what made _shown
        self._layout: ColumnLayout | None = None
        # run id -> (the RunInfo its cells were made from, its mark, cells, their widths)
        self._made: dict[str, tuple[RunInfo, str | None, dict[str, str | Text], dict[str, int]]]
        self._made = {}
        self._fill_turn = 0  # a newer fill ends the chunks of an older one
        self._wanted: str | None = None  # the run to put the cursor on once its row is in
        self._cursor_id: str | None = None  # the run whose row shows CURSOR_MARK
        self.sorted_by: str | None = None
        """The column the runs are sorted by: it never gives way to the width."""

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
    def filling(self) -> bool:
        """True while rows of ``infos`` are still to be added (a chunk a turn)."""
        return self.row_count < len(self.infos)

    @property
    def highlighted(self) -> RunInfo | None:
        if not self.infos or not 0 <= self.cursor_row < min(len(self.infos), self.row_count):
            return None
        return self.infos[self.cursor_row]

    def select(self, run_id: str) -> bool:
        """Put the cursor on ``run_id``'s row (once it is in, if it is still on its way);
        False if no such run is shown."""
        ids = [i.id for i in self.infos]
        if run_id not in ids:
            return False
        row = ids.index(run_id)
        if row < self.row_count:
            self.move_cursor(row=row, animate=False)
        else:
            self._wanted = run_id
        return True

    # --- fitting to the width -----------------------------------------------------------

    def on_mount(self) -> None:
        self._refit()

    def on_show(self, _event: Show) -> None:
        self._refit()

    def on_resize(self, _event: Resize) -> None:
        self._refit()
        if self.row_count:  # a lower table may have left the cursor's row below its bottom
            self.move_cursor(row=self.cursor_row, animate=False)

    def _made_cells(self, info: RunInfo) -> tuple[dict[str, str | Text], dict[str, int]]:
        mark = self._marks.get(info.id)
        made = self._made.get(info.id)
        if made is None or made[0] is not info or made[1] != mark:
            cells = row_cells(info, mark)
            made = (info, mark, cells, cell_widths(cells))
            self._made[info.id] = made
        return made[2], made[3]

    def _cells(self, info: RunInfo) -> dict[str, str | Text]:
        return self._made_cells(info)[0]

    def _fitted(self, infos: Sequence[RunInfo]) -> ColumnLayout:
        # One cell is kept for the vertical scrollbar, shown or not, so that a new row
        # never pushes the last column out.
        width = self.size.width - self.styles.scrollbar_size_vertical
        if self.size.width <= 0 and self._layout is not None:
            return self._layout  # hidden: fitted again when shown
        made = [self._made_cells(i) for i in infos]
        return fit_columns(
            [cells for cells, _ in made],
            max(width, 0),
            self.cell_padding,
            widths=[widths for _, widths in made],
            keep=self.sorted_by,
        )

    def _refit(self) -> None:
        layout = self._fitted(self.infos)
        if layout != self._layout:
            current = self.highlighted
            self._layout = layout
            self._fill(self.infos, current.id if current else None, columns=True)

    # --- rows ---------------------------------------------------------------------------

    def show(self, infos: Sequence[RunInfo], marks: Mapping[str, str]) -> None:
        """Show ``infos`` in this order; ``marks``: run id -> colour of the runs selected
        for comparing. Rows already shown are updated cell by cell; runs added after the
        ones shown are appended."""
        self._marks = dict(marks)
        current = self.highlighted
        keep = self._wanted or (current.id if current else None)
        layout = self._fitted(infos)
        self._made = {i.id: self._made[i.id] for i in infos if i.id in self._made}
        if layout != self._layout:
            self._layout = layout
            self._fill(infos, keep, columns=True)
            return
        old = [i.id for i in self.infos]
        new = [i.id for i in infos]
        if new[: len(old)] == old:
            filling = self.filling
            added = self.row_count
            self.infos = list(infos)
            for info in self.infos[:added]:
                before_from = self._shown_from.get(info.id)
                mark = self._marks.get(info.id)
                if before_from is not None and before_from[0] is info and before_from[1] == mark:
                    continue  # the same RunInfo object, the same mark: the same cells
                self._shown_from[info.id] = (info, self._marks.get(info.id))
                cells = self._shown_cells(info)
                before = self._shown.get(info.id, {})
                for key in layout.keys:
                    if _look(cells[key]) != _look(before.get(key)):
                        self.update_cell(info.id, key, cells[key])
                self._shown[info.id] = cells
            if not filling and self.filling:
                self._add_rows(self._fill_turn, keep)
            self._mark_cursor()
            return
        self._fill(infos, keep)

    def _shown_cells(self, info: RunInfo) -> dict[str, str | Text]:
        """``row_cells`` with the id cut to the column's width, and ``CURSOR_MARK`` on
        the highlighted run's row."""
        cells = dict(self._cells(info))
        if self._layout is not None:
            cells["run"] = plain(id_tail(info.id, self._layout.id_width))
        if info.id == self._cursor_id:
            mark = cells["mark"]
            assert isinstance(mark, Text)
            cells["mark"] = Text.assemble((CURSOR_MARK, "bold"), mark[1:])
        return cells

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._mark_cursor()  # the message goes on to the pane

    def _mark_cursor(self) -> None:
        """Move ``CURSOR_MARK`` to the highlighted run's row."""
        info = self.highlighted
        old, self._cursor_id = self._cursor_id, info.id if info is not None else None
        for run_id in (old, self._cursor_id):
            made = self._shown_from.get(run_id) if run_id is not None else None
            if run_id is None or made is None or run_id not in self._shown:
                continue
            mark = self._shown_cells(made[0])["mark"]
            if _look(mark) != _look(self._shown[run_id].get("mark")):
                self.update_cell(run_id, "mark", mark)
                self._shown[run_id]["mark"] = mark

    def _fill(self, infos: Sequence[RunInfo], keep: str | None, columns: bool = False) -> None:
        self.infos = list(infos)
        self.clear(columns=columns)
        if columns and self._layout is not None:
            for key, header, width in self._layout.columns:
                self.add_column(header, width=width, key=key)
        self._shown = {}
        self._shown_from = {}
        self._fill_turn += 1
        self._add_rows(self._fill_turn, keep, FIRST_ROWS)

    def _add_rows(self, turn: int, keep: str | None, count: int = CHUNK_ROWS) -> None:
        """Add the next ``count`` rows of ``infos``, then the next chunk at the next turn
        of the event loop, until every row is in (or a newer fill began)."""
        if turn != self._fill_turn or self._layout is None:
            return
        keys = self._layout.keys
        start = self.row_count
        for info in self.infos[start : start + count]:
            self._shown_from[info.id] = (info, self._marks.get(info.id))
            cells = self._shown_cells(info)
            self._shown[info.id] = cells
            self.add_row(*(cells[key] for key in keys), key=info.id)
        if keep is not None and keep in self._shown:
            self._wanted = None
            self.move_cursor(row=self.get_row_index(keep), animate=False)
            keep = None
        if self.filling:
            self._wanted = keep
            self.call_after_refresh(self._add_rows, turn, keep)
        else:
            self._wanted = None
        self._mark_cursor()
