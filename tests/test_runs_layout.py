"""The Runs table's layout: its columns fit the width, the highlighted row stays in view,
and the table takes the pane's height, at 80x24 and 120x40.

The run folders are written by hand (no training), with long names, so that the full
columns are wider than either terminal; what is checked is what the table draws.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pane_helpers import make_app, shown, wait_for
from test_app_snapshots_runs import write_run
from textual.pilot import Pilot

from engine.config import TrainConfig
from engine.runs import RunInfo
from helpers import synthetic
from tui.screens.runs import HINT, RunsPane
from tui.widgets.curve_overlay import CurveOverlay
from tui.widgets.runs_table import (
    CURSOR_MARK,
    SORT_COLUMNS,
    WIDE_COLUMNS,
    RunsTable,
    fit_columns,
    id_tail,
    row_cells,
)

STATES = ("finished", "interrupted", "failed")


def write_runs(runs: Path, count: int, name: str = "baseline-wide") -> list[str]:
    """``count`` runs named ``name``, one minute apart, their states in turn; their ids."""
    ids = []
    for n in range(count):
        run_id = f"20260101-12{n:02d}00-mlp-{name}-{n:04x}"
        config = TrainConfig(epochs=3, name=name, runs_dir=str(runs), batch_size=64)
        state = STATES[n % len(STATES)]
        accuracies = [0.7 + n / 200] if state != "failed" else []
        write_run(runs, run_id, config, accuracies, state=state)
        ids.append(run_id)
    return ids


def set_state(runs: Path, run_id: str, state: str) -> None:
    path = runs / run_id / "status.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "state": state}))


async def listed(pilot: Pilot, count: int) -> RunsTable:
    await pilot.press("4")
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == count)
    await pilot.pause()
    return table


def visible_rows(table: RunsTable) -> dict[int, str]:
    """Row index -> the line the table draws for it, for the rows above its bottom edge
    (a horizontal scrollbar would take the last line)."""
    lines = shown(table).splitlines()
    header = table.header_height if table.show_header else 0
    first = round(table.scroll_offset.y)
    height = table.scrollable_content_region.height - header
    return {
        first + n: lines[header + n]
        for n in range(height)
        if first + n < table.row_count and header + n < len(lines)
    }


def check_fits(table: RunsTable) -> None:
    """Nothing is past the right edge and every drawn row shows its run's id (or a tail
    that tells it apart), best accuracy, F1 and state in full."""
    assert table.max_scroll_x == 0, "the columns are wider than the table"
    assert table.scrollable_content_region.height == table.size.height, "a horizontal scrollbar"
    keys = [key for key, _ in table.columns_shown]
    assert {"run", "best", "f1", "state"} <= set(keys), keys
    if not {"epochs", "test"} <= set(keys):  # the settings columns gave way first
        assert not {"started", "model", "settings"} & set(keys), keys
    shown_ids = [str(table.get_row(info.id)[1]) for info in table.infos]
    assert len(set(shown_ids)) == len(shown_ids), shown_ids
    rows = visible_rows(table)
    assert rows
    for index, line in rows.items():
        info: RunInfo = table.infos[index]
        cells = row_cells(info, None)
        assert shown_ids[index] == info.id or (
            shown_ids[index].startswith("…") and info.id.endswith(shown_ids[index][1:])
        ), shown_ids[index]
        for text in (shown_ids[index], str(cells["best"]), str(cells["f1"])):
            assert text in line, (text, line)
        assert line.rstrip().endswith(f"  {info.state}"), line


def ids_shown(table: RunsTable) -> list[str]:
    return [info.id for info in table.infos]


def check_cursor_in_view(table: RunsTable) -> None:
    row = table.cursor_row
    rows = visible_rows(table)
    assert row in rows, (row, sorted(rows))
    highlighted = table.highlighted
    assert highlighted is not None
    assert str(table.get_row(highlighted.id)[1]) in rows[row]
    # The cursor's row is told by a mark, not by its shade alone (NO_COLOR).
    assert rows[row].lstrip().startswith(CURSOR_MARK), rows[row]
    assert [r for r, line in rows.items() if CURSOR_MARK in line] == [row]


def check_chart(chart: CurveOverlay) -> None:
    """Two y labels or more, none on the title's row; whole epochs on the x axis."""
    lines = shown(chart).splitlines()
    y_labels = [m.group(1) for line in lines if (m := re.match(r"\s*(-?[\d.]+)┤", line))]
    assert len(y_labels) >= 2, lines
    # The title's row: no number standing alone before it (the title's id starts "1209…").
    assert "┤" not in lines[0] and not re.match(r"\s*-?[\d.]+\s", lines[0]), lines[0]
    bottom = next(n for n, line in enumerate(lines) if "└" in line)
    x_labels = lines[bottom + 1].split()
    assert len(x_labels) >= 2 and all(label.isdigit() for label in x_labels), x_labels


def test_fit_columns_gives_way_in_order() -> None:
    rows = [
        {
            "mark": " ",
            "run": f"20260101-12{n:02d}00-mlp-baseline-wide-{n:04x}",
            "started": "01-01 12:00",
            "model": "mlp",
            "data": "all",
            "settings": "adamw 0.001 b64",
            "epochs": "3/3",
            "best": "71.5% val",
            "test": "70.0%",
            "f1": "69.6%",
            "state": "interrupted",
        }
        for n in range(12)
    ]
    id_width = len(str(rows[0]["run"]))
    full = fit_columns(rows, 1000)
    assert full.keys == [key for key, _ in WIDE_COLUMNS] and full.id_width == id_width
    everything = full.width(padding=1)
    assert fit_columns(rows, everything) == full
    # The settings (17 cells with padding), the start time (13) and the model (7) go first.
    assert fit_columns(rows, everything - 1).keys == [
        "mark", "run", "started", "model", "data", "epochs", "best", "test", "f1", "state"
    ]  # fmt: skip
    narrow = ["mark", "run", "data", "epochs", "best", "test", "f1", "state"]
    assert fit_columns(rows, everything - 17 - 13 - 7).keys == narrow
    # Then the id's head, down to 16 cells, before the epochs and the test accuracy: whole
    # parts of it (the date, the time), the column as wide as the longest cut id.
    layout = fit_columns(rows, everything - 37 - 10)
    assert layout.keys == narrow and layout.id_width == len("…mlp-baseline-wide-0000")
    assert layout.width(padding=1) <= everything - 37 - 10
    assert id_tail("20261203-070756-cnn-a053", 22) == "…070756-cnn-a053"
    assert id_tail("20261203-070756-cnn-a053", 15) == "…cnn-a053"
    assert id_tail("20261203-070756-cnn-a053", 24) == "20261203-070756-cnn-a053"
    assert id_tail("my-experiment_without_dashes", 8) == "…_dashes"  # no part fits whole
    # The column the runs are sorted by never gives way: others go in its place.
    by_started = fit_columns(rows, everything - 37, keep="started")
    assert "started" in by_started.keys and "model" not in by_started.keys
    assert by_started.width(padding=1) <= everything - 37
    assert "settings" in fit_columns(rows, 80, keep="settings").keys
    assert fit_columns(rows, everything - 37 - (id_width - 16) - 1).keys == [
        "mark", "run", "data", "best", "test", "f1", "state"
    ]  # fmt: skip
    # Last, the id down to the shortest tail that still tells the runs apart ("…00b").
    tiny = fit_columns(rows, 30)
    assert tiny.keys == ["mark", "run", "best", "f1", "state"] and tiny.id_width == 4
    assert len({id_tail(str(row["run"]), tiny.id_width) for row in rows}) == len(rows)
    assert id_tail("20260101-120b00-mlp-baseline-wide-000b", 4) == "…00b"


NARROW = ["mark", "run", "data", "epochs", "best", "test", "f1", "state"]


async def test_columns_fit_and_the_highlighted_row_stays_in_view(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    ids = write_runs(runs, 10)
    app = make_app(runs, synthetic(64, 32))
    async with app.run_test(size=(80, 24)) as pilot:
        table = await listed(pilot, len(ids))
        check_fits(table)
        assert [k for k, _ in table.columns_shown] == NARROW
        # The table takes the pane's height: the keys' hint keeps only its own lines.
        hint = app.query_one("#runs-hint")
        assert hint.outer_size.height == len(HINT.splitlines()) + 2  # and its padding
        assert table.size.height >= 13

        # With the charts open the table is lower than its rows: moving down scrolls it.
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one("#runs-charts").display)
        assert table.size.height < len(ids)
        for _ in range(len(ids) - 1):
            await pilot.press("down")
            check_cursor_in_view(table)
        assert table.highlighted is not None and table.highlighted.id == ids[0]
        check_fits(table)

        # While the pane is hidden: the terminal widens, a run with a long name appears and
        # a state widens. Shown again, the columns fit the new width and the new cells.
        await pilot.press("1")
        await pilot.resize_terminal(120, 40)
        longest = write_runs(runs, 1, name="a-much-longer-name-for-this-sweep")[0]
        set_state(runs, ids[2], "interrupted")  # was failed
        table = await listed(pilot, len(ids) + 1)
        await wait_for(
            pilot, lambda: table.infos[ids_shown(table).index(ids[2])].state == "interrupted"
        )
        await pilot.pause()
        check_fits(table)
        check_cursor_in_view(table)
        assert longest in ids_shown(table)
        # Beside that long id the settings, the start time and the model give way at 120
        # columns (the data size stays).
        assert [k for k, _ in table.columns_shown] == NARROW

        # Resized while shown.
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: table.narrow)
        await pilot.pause()
        check_fits(table)
        check_cursor_in_view(table)
        await wait_for(pilot, lambda: app.query_one("#runs-loss", CurveOverlay).series)
        check_chart(app.query_one("#runs-loss", CurveOverlay))

        # Sorted by any column at 80 columns, that column shows; cut ids lose whole parts.
        pane = app.query_one(RunsPane)
        for _ in SORT_COLUMNS:
            await pilot.press("greater_than_sign")
            await pilot.pause()
            keys = [k for k, _ in table.columns_shown]
            assert pane.sort_column in keys and table.max_scroll_x == 0, keys
            for info in table.infos:
                cut = str(table.get_row(info.id)[1])
                assert cut == info.id or info.id.endswith("-" + cut.removeprefix("…")), cut
            check_cursor_in_view(table)
