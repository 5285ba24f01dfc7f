"""The Runs pane by its keys, on real runs trained in the test set-up, and the export.

Three runs are trained once per module (finished, interrupted, failed) on 2,000 real
images; each test works on its own copy of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pane_helpers import Notifications, copy_runs, make_app, make_runs, press_now, shown, wait_for
from textual.pilot import Pilot

from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import EpochEnd, RunStarted
from engine.export import export_model
from engine.inference import Predictor
from engine.models import build_model
from engine.runs import Run
from tui.run_curves import short_id
from tui.screens.confirm import ConfirmScreen
from tui.screens.extend import ExtendScreen
from tui.screens.runs import RunsPane
from tui.widgets.curve_overlay import CurveOverlay
from tui.widgets.runs_table import RunsTable


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, small: ImageData) -> dict[str, Run]:
    return make_runs(tmp_path_factory.mktemp("template") / "runs", small)


@pytest.fixture
def runs(template: dict[str, Run], tmp_path: Path) -> dict[str, Run]:
    return copy_runs(template, tmp_path / "runs")


async def show_runs(pilot: Pilot, count: int) -> RunsTable:
    await pilot.press("4")
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == count)
    return table


async def go_to(pilot: Pilot, table: RunsTable, run: Run) -> None:
    """Move the cursor to ``run``'s row with the arrow keys."""
    target = [info.id for info in table.infos].index(run.id)
    while table.cursor_row != target:
        await pilot.press("down" if table.cursor_row < target else "up")
    assert table.highlighted is not None and table.highlighted.id == run.id


def row(table: RunsTable, run: Run) -> list[str]:
    return [str(cell) for cell in table.get_row(run.id)]


async def test_table_shows_each_run_its_state_and_a_failed_runs_reason(
    runs: dict[str, Run], tmp_path: Path, small: ImageData
) -> None:
    app = make_app(tmp_path / "runs", small)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await show_runs(pilot, 3)
        assert app.current_pane == "runs"
        assert [key for key, _ in table.columns_shown] == [
            "mark",
            "run",
            "started",
            "model",
            "data",
            "settings",
            "epochs",
            "best",
            "test",
            "f1",
            "state",
        ]
        finished = row(table, runs["finished"])
        assert finished[1] == runs["finished"].id and finished[3] == "mlp"
        assert finished[4:6] == ["all", "adamw 0.001 b64"]
        status = runs["finished"].read_status()
        best, test = status["best_accuracy"], status["best_test_accuracy"]
        f1 = status["best_macro_f1"]  # the best epoch's macro F1 on the test split
        assert finished[6:] == ["2/2", f"{best:.1%} val", f"{test:.1%}", f"{f1:.1%}", "finished"]
        assert row(table, runs["interrupted"])[6::4] == ["1/2", "interrupted"]
        assert row(table, runs["failed"])[6::4] == ["0/1", "failed"]
        assert "3 runs in" in str(app.query_one("#runs-header").render())

        await go_to(pilot, table, runs["failed"])
        detail = shown(app.query_one("#runs-detail"))
        assert "failed: RuntimeError: the disk caught fire" in detail
        await go_to(pilot, table, runs["interrupted"])
        assert "r resumes it here" in shown(app.query_one("#runs-detail"))

        # A run that appears on disk shows up at the next refresh, without a key.
        Run.create(TrainConfig(epochs=3, runs_dir=str(tmp_path / "runs")))
        await wait_for(pilot, lambda: table.row_count == 4, timeout=5)

        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: table.narrow)
        assert [key for key, _ in table.columns_shown] == [
            "mark",
            "run",
            "data",
            "epochs",
            "best",
            "test",
            "f1",
            "state",
        ]


async def test_open_a_run_and_compare_marked_runs(
    runs: dict[str, Run], tmp_path: Path, small: ImageData
) -> None:
    app = make_app(tmp_path / "runs", small)
    notes = Notifications()
    async with app.run_test(size=(120, 40), message_hook=notes) as pilot:
        table = await show_runs(pilot, 3)
        loss = app.query_one("#runs-loss", CurveOverlay)
        accuracy = app.query_one("#runs-accuracy", CurveOverlay)
        assert not app.query_one("#runs-charts").display  # the keys are shown instead

        await go_to(pilot, table, runs["finished"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: loss.series and loss.series[0].xs)
        events = runs["finished"].read_metrics().events
        train, test = loss.series
        assert len(train.xs) == sum(type(e).__name__ == "BatchEnd" for e in events)
        assert list(test.xs) == [1, 2]
        assert list(accuracy.series[0].ys) == [
            e.test_accuracy * 100 for e in events if isinstance(e, EpochEnd)
        ]
        assert app.query_one("#runs-charts").display

        await go_to(pilot, table, runs["interrupted"])
        await pilot.press("o")
        await wait_for(pilot, lambda: list(loss.series[1].xs) == [1])
        assert loss.title.startswith(short_id(runs["interrupted"].id))

        await pilot.press("c")  # nothing marked yet
        assert any("Mark two or more runs" in n for n in notes)

        await go_to(pilot, table, runs["finished"])
        await pilot.press("space")
        await go_to(pilot, table, runs["interrupted"])
        await pilot.press("space")
        pane = app.query_one(RunsPane)
        assert list(pane.marked) == [runs["finished"].id, runs["interrupted"].id]
        assert row(table, runs["finished"])[0].endswith("●")  # after the cursor's cell
        await pilot.press("c")
        await wait_for(pilot, lambda: len(accuracy.series) == 2)
        labels = [s.label for s in accuracy.series]
        assert labels == [short_id(runs["finished"].id), short_id(runs["interrupted"].id)]
        colours = [s.color for s in accuracy.series]
        assert colours == list(pane.marked.values()) and colours[0] != colours[1]
        # Each run's train loss (a line, per logged batch) and test loss (marks, per epoch).
        assert [len(s.xs) for s in loss.series if s.marker == "hd"] == [2, 1]
        assert [len(s.xs) > 2 for s in loss.series if s.marker != "hd"] == [True, True]
        assert "test loss" in shown(loss) and "train loss" in shown(loss)

        await go_to(pilot, table, runs["finished"])
        await pilot.press("space")  # unmark
        assert list(pane.marked) == [runs["interrupted"].id]


async def test_delete_asks_first_and_refuses_a_running_run(
    runs: dict[str, Run], tmp_path: Path, small: ImageData
) -> None:
    live = Run.create(TrainConfig(epochs=3, runs_dir=str(tmp_path / "runs")))
    live.acquire()  # as a training process would: the run is "running"
    try:
        app = make_app(tmp_path / "runs", small)
        notes = Notifications()
        async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
            table = await show_runs(pilot, 4)
            await go_to(pilot, table, live)
            assert row(table, live)[-1] == "running"
            await pilot.press("d")
            assert not isinstance(app.screen, ConfirmScreen)
            assert any("is training: stop it before deleting" in n for n in notes)
            assert live.path.exists()

            await go_to(pilot, table, runs["finished"])
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert runs["finished"].path.exists()
            await pilot.press("d", "y")
            await wait_for(pilot, lambda: not runs["finished"].path.exists())
            await wait_for(pilot, lambda: table.row_count == 3)
            assert any(f"Deleted run {runs['finished'].id}" in n for n in notes)
    finally:
        live.release()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exported_model_predicts_as_the_best_checkpoint(
    runs: dict[str, Run], small: ImageData
) -> None:
    import torch

    from engine.data import model_input
    from engine.device import autocast

    run = runs["finished"]
    state_path, script_path, _info = export_model(
        run, "best", run.path / "out", formats=("state_dict", "torchscript")
    )
    images = small.test.images[:200]
    expected = Predictor.from_run(run, "best").predict(images).classes
    x = model_input(torch.as_tensor(images), run.config().normalize)

    # The run predicts in the precision it trained in (bf16 where auto chose it): the
    # exported model, run in that precision, gives the same classes.
    precision = autocast(torch.device("cpu"), run.config().precision)
    scripted = torch.jit.load(str(script_path))
    with torch.inference_mode(), precision:
        assert np.array_equal(scripted(x).argmax(1).numpy(), expected)

    model = build_model(run.config(), (28, 28), 10)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    model.eval()
    precision = autocast(torch.device("cpu"), run.config().precision)
    with torch.inference_mode(), precision:
        assert np.array_equal(model(x).argmax(1).numpy(), expected)
    assert len(set(expected.tolist())) > 3  # a trained model, not a constant


async def test_resume_an_interrupted_run_in_the_app(
    runs: dict[str, Run], tmp_path: Path, small: ImageData
) -> None:
    app = make_app(tmp_path / "runs", small)
    notes = Notifications()
    async with app.run_test(size=(120, 40), message_hook=notes) as pilot:
        table = await show_runs(pilot, 3)
        await go_to(pilot, table, runs["finished"])
        await pilot.press("r")  # a finished run: asks for a new total of epochs
        assert isinstance(app.screen, ExtendScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, ExtendScreen) and app.run_state == "idle"

        await go_to(pilot, table, runs["interrupted"])
        await pilot.press("r")
        assert app.current_pane == "monitor"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.monitor.progress.state == "finished"
        assert app.run_state == "idle"
    run = runs["interrupted"]
    assert run.state() == "finished"
    events = run.read_metrics().events
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert [e.resumed for e in events if isinstance(e, RunStarted)] == [False, True]


async def test_attach_from_the_table_watches_a_live_run(
    runs: dict[str, Run], tmp_path: Path, small: ImageData
) -> None:
    # A run another process trains: its folder is locked and its log grows.
    live = Run.create(TrainConfig(epochs=3, runs_dir=str(tmp_path / "runs")))
    live.acquire()
    for event in runs["finished"].read_metrics().events[:-2]:  # up to epoch 2's end
        live.append_event(event)
    try:
        app = make_app(tmp_path / "runs", small)
        notes = Notifications()
        async with app.run_test(size=(120, 40), message_hook=notes) as pilot:
            table = await show_runs(pilot, 4)
            await go_to(pilot, table, runs["interrupted"])
            await pilot.press("a")
            assert any("is not training (interrupted); r resumes it" in n for n in notes)
            assert app.current_pane == "runs"

            await go_to(pilot, table, live)
            await pilot.press("a")
            assert app.current_pane == "monitor"
            await wait_for(pilot, lambda: app.monitor.progress.epoch == 2)
            assert app.check_action("start", ()) is False  # taken: hidden while attached
            await press_now(pilot, "p")
            assert live.read_request() is not None and live.read_request()[0] == "pause"
            live.release()  # the training process ends: the Monitor lets go
            await wait_for(pilot, lambda: app.run_state == "idle", timeout=10)
    finally:
        live.release()
