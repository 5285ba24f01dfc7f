"""The Runs pane with many runs: incremental and coalesced listing, sorting, filtering,
the data size, the app's own run, the stop reasons in words, and comparing runs (train
loss, round ticks, the settings that differ).

The run folders are written by hand (no training) except the app's own run; the figure
at thousands of runs is ``scripts/bench_runs.py``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

from pane_helpers import Notifications, make_app, press_now, shown, wait_for
from test_app_snapshots_runs import write_run
from textual.pilot import Pilot
from textual.widgets import Input

from engine.config import TrainConfig
from engine.runs import RunListing, data_size
from helpers import synthetic
from tui.run_curves import differing_settings, short_id
from tui.screens.runs import RunsPane
from tui.widgets.curve_overlay import CurveOverlay, enclosing_ticks, round_ticks
from tui.widgets.model_summary import ModelSummaryView
from tui.widgets.runs_table import RunsTable

FULL = "20260101-120000-mlp-aaaa"
STOPPED = "20260101-130000-mlp-bbbb"
QUICK = "20260102-090000-mlp-cccc"
FAILED = "20260102-100000-cnn-dddd"


def write_runs(runs: Path) -> None:
    small = {"hidden_sizes": (32,), "batch_size": 64, "runs_dir": str(runs), "epochs": 3}
    write_run(runs, FULL, TrainConfig(**small), [0.78, 0.84], state="finished")
    write_run(runs, STOPPED, TrainConfig(optimizer="sgd", lr=0.05, **small), [0.71],
              state="interrupted", reason="quit")  # fmt: skip
    write_run(runs, QUICK, TrainConfig(train_subset=5000, **small), [0.80], state="finished")
    write_run(runs, FAILED, TrainConfig(**{**small, "model": "cnn"}), [], state="failed",
              reason="out of memory")  # fmt: skip


def ids(table: RunsTable) -> list[str]:
    return [info.id for info in table.infos]


async def go_to(pilot: Pilot, table: RunsTable, run_id: str) -> None:
    target = ids(table).index(run_id)
    while table.cursor_row != target:
        await pilot.press("down" if table.cursor_row < target else "up")


def test_round_ticks_and_data_sizes() -> None:
    assert round_ticks(0.23, 0.91, 5) == [0.4, 0.6, 0.8]
    assert round_ticks(0, 100, 5) == [0, 50, 100]
    assert round_ticks(1, 3, 4) == [1, 2, 3]
    assert round_ticks(83.2, 84.9, 5) == [83.5, 84, 84.5]
    assert round_ticks(2, 2) == [2]
    assert round_ticks(1, 2, 5, integer=True) == [1, 2]  # epochs: never 1.5
    assert round_ticks(0, 30, 4, integer=True) == [0, 10, 20, 30]
    # A fitted range widened to round ends: a label on its bottom and top rows.
    assert enclosing_ticks(0.31, 2.9, 2) == [0, 5]
    assert enclosing_ticks(0.31, 2.9, 4) == [0, 1, 2, 3]
    assert enclosing_ticks(83.2, 84.9, 5) == [83, 83.5, 84, 84.5, 85]
    assert [data_size(TrainConfig(train_subset=n)) for n in (0, 800, 1500, 5000)] == [
        "all", "800", "1.5k", "5k"
    ]  # fmt: skip
    a, b = TrainConfig().to_dict(), TrainConfig(lr=0.05, hidden_sizes=(64, 32)).to_dict()
    assert differing_settings([a, b]) == [("hidden_sizes", ["512-512", "64-32"]),
                                          ("lr", ["0.001", "0.05"])]  # fmt: skip
    assert differing_settings([a, None])[0][1][1] == "?"


def test_listing_reads_only_what_changed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_runs(runs)
    listing = RunListing(runs)
    first = {i.id: i for i in listing.read()}
    assert list(first) == [FAILED, QUICK, STOPPED, FULL] and listing.reads == 4
    assert listing.last_seconds > 0  # the pane waits five times as long before the next
    again = {i.id: i for i in listing.read()}
    assert listing.reads == 0 and all(again[k] is first[k] for k in first)
    status = runs / QUICK / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "best_accuracy": 0.9}))
    batches = list(RunListing(runs).batches(first=2, size=1))
    assert [len(b) for b in batches] == [2, 3, 4, 4]
    changed = {i.id: i for i in listing.read()}
    assert listing.reads == 1 and changed[QUICK].best_accuracy == 0.9
    assert all(changed[k] is first[k] for k in first if k != QUICK)


async def test_sort_filter_refresh_and_compare(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_runs(runs)
    app = make_app(runs, synthetic(64, 32))
    notes = Notifications()
    async with app.run_test(size=(120, 40), message_hook=notes) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        pane = app.query_one(RunsPane)
        await wait_for(pilot, lambda: table.row_count == 4)
        header = app.query_one("#runs-header")
        assert ids(table) == [FAILED, QUICK, STOPPED, FULL] and "by run ↓" in shown(header)

        # The data size: the quick run's 5,000 images, the others' whole split.
        data = [key for key, _ in table.columns_shown].index("data")
        assert [str(table.get_row(i)[data]) for i in ids(table)] == ["all", "5k", "all", "all"]

        # Sorted by the best accuracy (> goes through the columns), best first, then reversed.
        while pane.sort_column != "best":
            await pilot.press("greater_than_sign")
        assert ids(table) == [FULL, QUICK, STOPPED, FAILED] and "by best ↓" in shown(header)
        await pilot.press("minus")
        assert ids(table) == [STOPPED, QUICK, FULL, FAILED] and "by best ↑" in shown(header)
        await pilot.press("less_than_sign")  # back to the epochs: fewest first
        assert pane.sort_column == "epochs" and ids(table)[0] == FAILED

        # Filtered by words and by state; escape shows every run again.
        await pilot.press("slash", *"sgd")
        assert ids(table) == [STOPPED] and "1 match “sgd”" in shown(header)
        box = app.query_one("#runs-filter", Input)
        box.value = "sgd xyz"
        await pilot.pause()
        assert ids(table) == [] and "No run matches" in shown(app.query_one("#runs-detail"))
        box.value = "state:fin"
        await pilot.pause()
        assert sorted(ids(table)) == [FULL, QUICK]
        box.value = "state:nope"
        await pilot.pause()
        assert "no state 'nope'" in shown(header) and table.row_count == 4
        await pilot.press("escape")
        assert table.row_count == 4 and pane.filter_text == "" and table.has_focus

        # The stop reason in words.
        await go_to(pilot, table, STOPPED)
        assert "interrupted: stopped when the app quit" in shown(app.query_one("#runs-detail"))

        # Refreshes asked for while a listing runs make one more listing, not one each.
        listing = pane.listing
        await wait_for(pilot, lambda: listing.in_flight == 0)
        before = {i.id: i for i in pane.infos}
        passes = listing.passes
        status = runs / QUICK / "status.json"
        status.write_text(json.dumps({**json.loads(status.read_text()), "best_accuracy": 0.95}))
        for _ in range(5):
            pane.refresh_runs()
        await wait_for(pilot, lambda: listing.passes >= passes + 2 and listing.in_flight == 0)
        await wait_for(pilot, lambda: any(i.best_accuracy == 0.95 for i in pane.infos))
        assert listing.passes - passes in (2, 3)  # 3 if the two-second refresh came too
        assert listing.most_in_flight == 1
        # Only the changed folder was read again; the others keep their rows' objects.
        after = {i.id: i for i in pane.infos}
        assert after[QUICK] is not before[QUICK]
        assert all(after[k] is before[k] for k in before if k != QUICK)
        assert "95.0% val" in [str(c) for c in table.get_row(QUICK)]

        # Compare: each run's train loss too, and the settings that differ, run by run.
        await go_to(pilot, table, FULL)
        await pilot.press("space")
        await go_to(pilot, table, STOPPED)
        await pilot.press("space", "c")
        loss = app.query_one("#runs-loss", CurveOverlay)
        await wait_for(pilot, lambda: len(loss.series) == 4)
        colours = list(pane.marked.values())
        train = [s for s in loss.series if s.marker != "hd"]
        assert [s.color for s in train] == colours and all(len(s.xs) > 2 for s in train)
        assert "train loss" in shown(loss) and "test loss" in shown(loss)
        diff = shown(app.query_one("#runs-diff")).splitlines()
        assert diff[0].split() == ["setting", short_id(FULL), short_id(STOPPED)]
        assert [line.split() for line in diff[1:] if line.strip()] == [
            ["optimizer", "adamw", "sgd"],
            ["lr", "0.001", "0.05"],
        ]
        assert not [n for n in notes if "busy" in n]


async def test_the_apps_own_run_shows_in_the_monitor(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = make_app(runs, synthetic(64, 32), epochs=50)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await wait_for(pilot, lambda: app.query_one(ModelSummaryView).summary is not None)
        await press_now(pilot, "s", "p")
        await wait_for(pilot, lambda: app.monitor.progress.state == "paused")
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1 and table.infos[0].state.live)
        detail = app.query_one("#runs-detail")
        await wait_for(pilot, lambda: "a shows it in the Monitor" in shown(detail))
        await pilot.press("a")
        assert app.current_pane == "monitor"
        assert not [n for n in notes if "busy" in n]
        await press_now(pilot, "x")
        await wait_for(pilot, lambda: not app.run_state.live)
