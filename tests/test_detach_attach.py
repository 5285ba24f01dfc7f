"""Runs that train in a process of their own (``train --detach``, ``S``, ``R``), watched
and steered by an app attached through the run folder; and several at once.

Every detached trainer is killed in a ``finally``, whatever happens to the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pane_helpers import Notifications, make_app, press_now, wait_for

from engine.data import ImageData
from engine.events import EpochEnd, RunStarted, StateChanged
from engine.runs import Run, list_runs
from engine.trainer import Trainer
from tui.app import FmnistApp
from tui.widgets.charts import EpochChart
from tui.widgets.runs_table import RunsTable

TIMEOUT = 60
# Long enough to be still training while the test acts; it is stopped well before.
LONG = ["--epochs", "1000", "--train-subset", "2000", "--test-subset", "500"]
SMALL = ["--batch-size", "32", "--hidden-sizes", "64", "--device", "cpu", "--log-every", "5"]


def detach(runs: Path, *flags: str) -> tuple[Run, int]:
    """``fmnist-tui train --detach --json``: the run it started and its trainer's pid."""
    argv = [sys.executable, "-m", "tui.cli", "train", "--detach", "--json"]
    done = subprocess.run(
        [*argv, "--runs-dir", str(runs), *flags],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["event"] == "detached"
    return Run(Path(report["run_dir"])), int(report["pid"])


def kill(run: Run, pid: int) -> None:
    """Kill ``run``'s trainer if it still trains (a pid alone could be reused)."""
    if run.is_locked():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_trainers(runs: Path) -> None:
    """Kill every trainer still training in ``runs``, by the pid in its status.json."""
    for info in list_runs(runs):
        run = Run(info.path)
        kill(run, int(run.read_status().get("pid", 0)))


def wait_unlocked(run: Run, timeout: float = TIMEOUT) -> None:
    """Until no process trains ``run`` (its trainer exited and let go of the lock)."""
    deadline = time.monotonic() + timeout
    while run.is_locked():
        assert time.monotonic() < deadline, f"{run.id} still training"
        time.sleep(0.05)


def states(run: Run) -> list[str]:
    return [e.state for e in run.read_metrics().events if isinstance(e, StateChanged)]


async def test_detached_run_is_paused_resumed_and_stopped_from_an_attached_app(
    tmp_path: Path, fashion: ImageData
) -> None:
    runs = tmp_path / "runs"
    run, pid = detach(runs, *LONG, *SMALL)
    try:
        assert os.getsid(pid) == pid != os.getsid(0)  # a session of its own
        app = FmnistApp(run.config(), runs_dir=str(runs), attach=run.path)
        async with app.run_test(size=(100, 30)) as pilot:
            assert app.current_pane == "monitor"
            chart = app.query_one(EpochChart)
            await wait_for(pilot, lambda: chart.epochs, TIMEOUT)
            assert app.monitor.progress.state == "running"

            await press_now(pilot, "p")
            await wait_for(pilot, lambda: app.monitor.progress.state == "paused", 10)
            assert states(run) == ["paused"]
            assert run.read_status()["paused"] is True

            await press_now(pilot, "p")
            await wait_for(pilot, lambda: app.monitor.progress.state == "running", 10)
            assert states(run) == ["paused", "running"]
            # Nothing was trained while paused: the log goes from one straight to the other.
            events = run.read_metrics().events
            paused = next(i for i, e in enumerate(events) if isinstance(e, StateChanged))
            resumed = events[paused + 1]
            assert isinstance(resumed, StateChanged) and resumed.state == "running"
            epochs = len(chart.epochs)
            await wait_for(pilot, lambda: len(chart.epochs) > epochs, TIMEOUT)

            await press_now(pilot, "x")
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
            assert app.monitor.progress.state == "stopped"
        wait_unlocked(run)
        assert run.state() == "interrupted" and run.read_status()["reason"] == "stop"
        assert run.has_checkpoint()
        done = run.read_status()["epochs_completed"]
        assert 2 <= done < 1000
        assert "stopped" in run.log_path.read_text()
    finally:
        kill(run, pid)
    # It resumes from the checkpoint, here, for one more epoch.
    result = Trainer.resume(run, data=fashion, epochs=done + 1).fit()
    assert result.status == "finished" and result.epochs_completed == done + 1
    assert [e.epoch for e in run.read_metrics().epochs] == list(range(1, done + 2))


def test_two_detached_runs_in_one_runs_folder_keep_to_their_own(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    flags = ["--epochs", "2", "--train-subset", "1000", "--test-subset", "200", *SMALL]
    argv = [sys.executable, "-m", "tui.cli", "train", "--detach", "--json"]
    launchers = [
        subprocess.Popen(
            [*argv, "--runs-dir", str(runs), "--name", name, "--seed", seed, *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, seed in (("first", "1"), ("second", "2"))
    ]
    try:
        for launcher in launchers:
            out, _ = launcher.communicate(timeout=TIMEOUT)
            assert json.loads(out.strip().splitlines()[-1])["event"] == "detached"
        infos = list_runs(runs)
        assert len(infos) == 2 and infos[0].path != infos[1].path
        for info in infos:
            wait_unlocked(Run(info.path))
    finally:
        kill_trainers(runs)
    for info in list_runs(runs):
        run = Run(info.path)
        config = run.config()
        assert info.state == "finished" and config.name in info.id
        assert config.seed == {"first": 1, "second": 2}[config.name]
        log = run.read_metrics()
        assert not log.torn_line and log.bad_lines == 0
        [started] = [e for e in log.events if isinstance(e, RunStarted)]
        assert started.run_id == run.id and started.run_dir == str(run.path)
        assert [e.epoch for e in log.events if isinstance(e, EpochEnd)] == [1, 2]
        assert run.load_checkpoint("last")["epoch"] == 2
        assert "finished" in run.log_path.read_text()
        assert not list(run.path.glob(".*.tmp"))


async def test_start_detached_from_the_app_then_resume_it_detached(
    tmp_path: Path, small: ImageData
) -> None:
    runs = tmp_path / "runs"
    settings = dict(epochs=1000, train_subset=2000, test_subset=500, batch_size=32)
    app = make_app(runs, small, hidden_sizes=(64,), **settings)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("S")
            assert app.current_pane == "monitor" and app.run_state == "starting"
            chart = app.query_one(EpochChart)
            await wait_for(pilot, lambda: chart.epochs, TIMEOUT)
            [info] = list_runs(runs)
            run = Run(info.path)
            assert info.state == "running" and run.log_path.exists()
            await press_now(pilot, "x")
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
            wait_unlocked(run)
            assert run.state() == "interrupted"

            await pilot.press("4")
            table = app.query_one(RunsTable)
            await wait_for(pilot, lambda: table.row_count == 1 and table.infos[0].resumable)
            await pilot.press("R")
            assert app.current_pane == "monitor"
            await wait_for(pilot, lambda: app.monitor.progress.state == "running", TIMEOUT)
            await wait_for(pilot, lambda: run.is_locked() and chart.epochs, TIMEOUT)
            await press_now(pilot, "x")
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        wait_unlocked(run)
    finally:
        kill_trainers(runs)
    assert run.state() == "interrupted"
    started = [e for e in run.read_metrics().events if isinstance(e, RunStarted)]
    assert [e.resumed for e in started] == [False, True]


async def test_a_detached_start_that_cannot_start_says_why(
    tmp_path: Path, small: ImageData
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a CUDA GPU")
    runs = tmp_path / "runs"
    app = make_app(runs, small, device="cuda")
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("S")
        await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
        assert any("cuda is not available here" in n for n in notes)
        assert app.monitor.progress.state == "failed"
        assert app.check_action("start_detached", ()) is True  # ready to try again
    assert not runs.exists() or not list_runs(runs)
