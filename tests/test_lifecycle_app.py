"""A run's life in the app, by its keys: resume, pause, attach, detach and quit, extend.

Runs trained here use 6,000 train and 500 test images of the real data; runs trained
in a process of their own (detached) read 3,000 train and 200 test images of it from a
folder of raw files. Epochs that long outlast the moment between a start and the key
that pauses it. Every wait polls the app's or the run folder's state against a
deadline, and every detached trainer is killed in a ``finally``, whatever happens.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lifecycle_helpers import kill_trainer, wait_until, write_raw_data
from pane_helpers import QUICK, make_app, press_now, wait_for
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Static

from engine.config import TrainConfig
from engine.control import read_request
from engine.data import ImageData
from engine.detach import spawn_detached
from engine.events import EpochEnd, Finished, RunStarted, StateChanged
from engine.runs import Run, list_runs
from engine.trainer import Trainer
from tui import messages
from tui.app import FmnistApp
from tui.screens.extend import ExtendScreen
from tui.screens.quit import QuitScreen
from tui.widgets.charts import EpochChart
from tui.widgets.confusion import ConfusionTable
from tui.widgets.event_log import EventLog
from tui.widgets.runs_table import RunsTable

TIMEOUT = 90  # seconds: a detached trainer imports torch while another process trains
# EpochEnd fields that depend on the clock or the process, not on the numbers trained.
UNTIMED = ("time", "samples_per_second", "epoch_seconds", "memory_bytes")
# Sums over an epoch's batches: a stop mid-epoch groups the float additions differently.
CLOSE = ("train_loss", "grad_norm")


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory, fashion: ImageData) -> Path:
    """3,000 train and 200 test images of the real set as raw IDX files (``data_dir``)."""
    return write_raw_data(tmp_path_factory.mktemp("fashion"), fashion, 3000, 200)


@pytest.fixture(scope="module")
def medium(fashion: ImageData) -> ImageData:
    """6,000 train and 500 test images of the real set."""
    return fashion.subset(6000, 500, seed=0)


class ChartOnArrival:
    """A message hook: the Monitor's epoch chart as each live epoch's result arrives."""

    def __init__(self, app: FmnistApp) -> None:
        self.app = app
        self.before: dict[int, list[int]] = {}

    def __call__(self, message: Message) -> None:
        if isinstance(message, messages.EpochFinished):
            chart = self.app.query_one(EpochChart)
            self.before.setdefault(message.event.epoch, list(chart.epochs))


async def resume_the_only_run(pilot: Pilot) -> None:
    """Runs pane (4), then ``r`` on its one run."""
    await pilot.press("4")
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == 1 and table.highlighted is not None)
    await press_now(pilot, "r")


def lines(app: FmnistApp) -> list[str]:
    return app.query_one(EventLog).entry_texts


def assert_same_epochs(got: list[EpochEnd], want: list[EpochEnd]) -> None:
    """The same numbers, epoch by epoch (``CLOSE`` ones to a relative 1e-6)."""
    assert [e.epoch for e in got] == [e.epoch for e in want]
    for a, b in zip(got, want, strict=True):
        exact = [k for k in a.to_dict() if k not in UNTIMED + CLOSE]
        assert {k: a.to_dict()[k] for k in exact} == {k: b.to_dict()[k] for k in exact}
        for key in CLOSE:
            assert math.isclose(getattr(a, key), getattr(b, key), rel_tol=1e-6), (a.epoch, key)


async def test_resume_shows_the_runs_whole_history_before_its_next_epoch(
    tmp_path: Path, medium: ImageData
) -> None:
    runs = tmp_path / "runs"
    first = Trainer(TrainConfig(epochs=3, runs_dir=str(runs), **QUICK), data=medium)
    first.add_listener(lambda e: first.stop("stop") if isinstance(e, EpochEnd) else None)
    result = first.fit()
    assert result.run_dir is not None and result.epochs_completed == 1
    run = Run(result.run_dir)
    # The run's training time so far: it resumes from the stop checkpoint's. Its status
    # says a little more: the session's Finished also counts the checkpoint's writing.
    resumes_from = run.load_checkpoint("last")["elapsed"]
    first_elapsed = run.read_status()["elapsed"]
    assert 0 < resumes_from <= first_elapsed

    app = make_app(runs, medium)
    chart_at = ChartOnArrival(app)
    async with app.run_test(size=(120, 40), message_hook=chart_at) as pilot:
        await resume_the_only_run(pilot)
        # Paused before it trains much: what the Monitor shows is the first session's.
        await wait_for(pilot, lambda: app.check_action("pause", ()), TIMEOUT)
        await press_now(pilot, "p")
        await wait_for(pilot, lambda: app.run_state == "paused", TIMEOUT)
        chart, stats = app.query_one(EpochChart), app.monitor.stats
        confusion = app.query_one(ConfusionTable)
        assert chart.epochs[:1] == [1]
        await wait_for(pilot, lambda: sum(map(sum, confusion.matrix)) == len(medium.test))
        assert math.isfinite(stats.best_accuracy)
        assert "best —" not in str(stats.render())
        assert stats.elapsed >= resumes_from

        await press_now(pilot, "p")
        await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        assert app.monitor.progress.state == "finished"
        assert chart.epochs == [1, 2, 3]
        assert chart_at.before[2] == [1]  # the first epoch was on the chart before the second
        assert stats.elapsed >= first_elapsed
    status = run.read_status()
    assert status["state"] == "finished" and status["epochs_completed"] == 3


async def test_a_pause_is_not_training_time_and_a_stopped_run_has_no_eta(
    tmp_path: Path, medium: ImageData, small: ImageData
) -> None:
    app = make_app(tmp_path / "paused", medium, epochs=2)
    async with app.run_test(size=(120, 40)) as pilot:
        pressed = time.monotonic()
        await press_now(pilot, "s")
        await wait_for(pilot, lambda: app.check_action("pause", ()), TIMEOUT)
        await press_now(pilot, "p")

        def paused_on_disk() -> bool:
            run = app.session.run
            return run is not None and run.read_status().get("paused") is True

        await wait_for(pilot, paused_on_disk, TIMEOUT)
        # The one wait on time itself: the pause is what is measured.
        paused_at = time.monotonic()
        await wait_for(pilot, lambda: time.monotonic() - paused_at >= 1.5)
        assert app.run_state == "paused"
        await press_now(pilot, "p")
        await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        wall = time.monotonic() - pressed
        assert app.monitor.progress.state == "finished"
        shown_elapsed = app.monitor.stats.elapsed
    run = app.session.run
    assert run is not None
    events = run.read_metrics().events
    [started] = [e for e in events if isinstance(e, RunStarted)]
    [finished] = [e for e in events if isinstance(e, Finished)]
    assert [e.state for e in events if isinstance(e, StateChanged)] == ["paused", "running"]
    assert finished.status == "finished"
    assert shown_elapsed == finished.elapsed == run.read_status()["elapsed"]
    # Training time excludes the pause, measured on the run's own clock and on ours.
    assert finished.elapsed < (finished.time - started.time) - 1.0
    assert finished.elapsed < wall - 1.0

    app = make_app(tmp_path / "stopped", small, epochs=50)
    async with app.run_test(size=(120, 40)) as pilot:
        await press_now(pilot, "s")
        stats = app.monitor.stats
        await wait_for(pilot, lambda: math.isfinite(stats.eta) and stats.eta > 0, TIMEOUT)
        assert "ETA —" not in str(stats.render())
        await press_now(pilot, "x")
        await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        assert app.monitor.progress.state == "stopped"
        assert math.isnan(stats.eta) and "ETA —" in str(stats.render())


async def test_attach_tells_the_runs_story_once_and_steers_it(
    tmp_path: Path, raw_data: Path
) -> None:
    runs = tmp_path / "runs"
    config = TrainConfig(epochs=1000, data_dir=str(raw_data), runs_dir=str(runs), **QUICK)
    run = spawn_detached(config).run
    try:
        started = dt.datetime.fromisoformat(run.read_status()["started"]).strftime("%H:%M")
        app = FmnistApp(run.config(), runs_dir=str(runs), attach=run.path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.monitor.progress.state == "running", TIMEOUT)
            log = lines(app)
            assert log[0] == f"Attached to {run.id} (started {started})", log
            assert not any(line.startswith(("No run yet", "Starting")) for line in log), log
            assert sum(line.startswith(f"Run {run.id} started on ") for line in log) == 1, log
            # Only the keys that act on this run: no start while attached.
            assert not app.check_action("start", ())
            assert not app.check_action("start_detached", ())
            footer = {b.binding.action for b in app.screen.active_bindings.values()}
            assert "start" not in footer and "pause" in footer

            def states() -> list[str]:
                return [e.state for e in run.read_metrics().events if isinstance(e, StateChanged)]

            await press_now(pilot, "p")
            await wait_for(pilot, lambda: run.read_status().get("paused") is True, TIMEOUT)
            await wait_for(pilot, lambda: app.monitor.progress.state == "paused", TIMEOUT)
            await press_now(pilot, "p")
            await wait_for(pilot, lambda: states() == ["paused", "running"], TIMEOUT)
            # status.json follows the log's event (the recorder appends, then updates it).
            await wait_for(pilot, lambda: run.read_status().get("paused") is False, TIMEOUT)
            await press_now(pilot, "x")
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
            assert app.monitor.progress.state == "stopped"
        wait_until(lambda: not run.is_locked(), "the trainer to let go", TIMEOUT)
        status = run.read_status()
        assert status["state"] == "interrupted" and status["reason"] == "stop"

        # Resumed in a process of its own and attached to as it starts, before it cuts the
        # log back to its checkpoint: one story, not two, and the run is seen training.
        with ThreadPoolExecutor(1) as pool:
            resuming = pool.submit(spawn_detached, run)
            wait_until(run.is_locked, "the resumed trainer to take the run", TIMEOUT)
            app = FmnistApp(run.config(), runs_dir=str(runs), attach=run.path)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for(
                    pilot,
                    lambda: any(line.startswith("Resumed at") for line in lines(app)),
                    TIMEOUT,
                )
                resuming.result(TIMEOUT)
                await wait_for(pilot, lambda: app.run_state == "running", TIMEOUT)
                [again] = [e for e in run.read_metrics().events if isinstance(e, RunStarted)][1:]
                assert again.resumed
                log = lines(app)
                assert log[0].startswith(f"Attached to {run.id} (started ")
                assert sum(line.startswith(f"Run {run.id} ") for line in log) == 1, log
                assert sum(line.startswith("Resumed at") for line in log) == 1, log
                assert any(
                    line.startswith(f"Resumed at epoch {again.start_epoch} on ") for line in log
                )
                requests = read_request(run)
                await press_now(pilot, "q")  # leaves it training, without a question
                await wait_for(pilot, lambda: not app.is_running, TIMEOUT)
            assert run.is_locked() and read_request(run) == requests  # nothing asked of it
    finally:
        kill_trainer(run)


async def test_detach_and_quit_trains_on_exactly_as_if_never_interrupted(
    tmp_path: Path, raw_data: Path
) -> None:
    settings = {**QUICK, "epochs": 2, "batch_size": 32, "data_dir": str(raw_data)}
    reference = Trainer(TrainConfig(runs_dir=str(tmp_path / "reference"), **settings)).fit()
    runs = tmp_path / "runs"
    app = FmnistApp(TrainConfig(**settings), runs_dir=str(runs))
    app.image_mode = "blocks"
    run: Run | None = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await press_now(pilot, "s")
            # Paused mid-run, so it detaches in the middle of an epoch, not after it all.
            await wait_for(pilot, lambda: app.monitor.progress.batch_done > 0, TIMEOUT)
            await press_now(pilot, "p")
            await wait_for(pilot, lambda: app.run_state == "paused", TIMEOUT)
            await press_now(pilot, "q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
            await press_now(pilot, "d")
            await wait_for(pilot, lambda: not app.is_running, TIMEOUT)
        assert app.return_code == 0
        [info] = list_runs(runs)
        run = Run(info.path)
        status = run.read_status()
        assert status["state"] == "running" and status["pid"] != os.getpid()
        assert run.is_locked()
        assert "stop" not in read_request(run)  # leaving, the app did not stop it
        wait_until(lambda: not run.is_locked(), "the detached run to finish", TIMEOUT)
    finally:
        if run is not None:
            kill_trainer(run)
    status = run.read_status()
    assert status["state"] == "finished" and status["epochs_completed"] == 2
    assert status["final_accuracy"] == reference.final_accuracy
    events = run.read_metrics().events
    # One run, started here and resumed by the detached trainer (the resume cut the log
    # back to the detach's checkpoint).
    assert [e.resumed for e in events if isinstance(e, RunStarted)] == [False, True]
    assert_same_epochs([e for e in events if isinstance(e, EpochEnd)], reference.history)


async def test_extend_a_finished_run_to_a_new_total_in_the_app(
    tmp_path: Path, small: ImageData
) -> None:
    runs = tmp_path / "runs"
    result = Trainer(TrainConfig(epochs=1, runs_dir=str(runs), **QUICK), data=small).fit()
    assert result.run_dir is not None
    run = Run(result.run_dir)
    app = make_app(runs, small)
    chart_at = ChartOnArrival(app)
    async with app.run_test(size=(120, 40), message_hook=chart_at) as pilot:
        await resume_the_only_run(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, ExtendScreen))
        screen = app.screen
        problem = screen.query_one("#extend-problem", Static)
        for total in ("1", "0"):
            await pilot.press("ctrl+u", *total, "enter")
            assert "give more than 1" in str(problem.render())
            assert app.screen is screen and app.run_state == "idle"
        await pilot.press("ctrl+u", "3")
        assert str(problem.render()) == ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.monitor.progress.state == "finished", TIMEOUT)
        await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        assert not isinstance(app.screen, ExtendScreen)
        assert app.query_one(EpochChart).epochs == [1, 2, 3]
        assert chart_at.before[2] == [1]
    status = run.read_status()
    assert status["state"] == "finished" and status["epochs_completed"] == 3
    assert run.config().epochs == 3
    assert [e.epoch for e in run.read_metrics().epochs] == [1, 2, 3]
