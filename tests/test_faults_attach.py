"""Attach and the app when things go wrong (issue 10, items 7, 8 and 11).

An app attached to a run whose trainer is killed, stopped with SIGSTOP, or whose folder
is deleted; a stop followed at once by a pause; ``control.json`` that cannot be
written; a run acted on from the Runs pane after another process deleted it; and the
exit code of an app that ends on an error nothing handled.

Trainers that must be killed or stopped are real processes, forked from one warm
interpreter that has imported torch (and run no torch operation), so each starts in
a fraction of a second; each test kills its own in a ``finally``. Every wait polls a
state against a deadline.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lifecycle_helpers import ROOT, wait_until, write_raw_data
from pane_helpers import press_now, wait_for
from textual.message import Message
from textual.notifications import Notify

from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import BatchEnd, StateChanged
from engine.runs import Run, list_runs
from engine.trainer import Trainer
from tui.app import FmnistApp
from tui.screens.runs import RunsPane
from tui.widgets.pane_bar import PaneBar
from tui.widgets.runs_table import RunsTable

TIMEOUT = 60.0  # seconds: a wait that takes longer has hung
SMALL = {"hidden_sizes": (16,), "batch_size": 16, "log_every": 1, "device": "cpu"}
# A trainer that outlasts any test: 1000 epochs of 512 images, 32 batches each.
TRAIN = ["--epochs", "1000", "--batch-size", "16", "--hidden-sizes", "16"]
TRAIN += ["--device", "cpu", "--log-every", "8"]

# Forks `fmnist-tui train ARGV` for each JSON argv read from stdin and prints the pid;
# at the end of stdin it kills every child still alive.
SERVER = r"""
import json, os, signal, sys
import torch, torch._dynamo  # warm: what `train` would import, without running an op
import engine.data, engine.device, engine.models, engine.trainer, tui.progress
from tui.cli import main
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
children = []
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        code = 99
        try:
            code = main(json.loads(line))
        finally:
            os._exit(code)
    children.append(pid)
    print(pid, flush=True)
for pid in children:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
os._exit(0)  # no interpreter teardown: torch's takes a second
"""


# The app with a bug: a handler that raises, nothing catching it.
FAULTY_APP = """
import sys
from tui.app import FmnistApp
from tui.cli import main

mounted = FmnistApp.on_mount

def on_mount(self):
    mounted(self)
    self.call_later(fault)

def fault():
    raise RuntimeError("a bug nothing handles")

FmnistApp.on_mount = on_mount
sys.exit(main(sys.argv[1:]))
"""


class Notes:
    """A message hook for ``run_test``: the text of every notification the app shows."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.texts.append(message.notification.message)

    def saying(self, text: str) -> list[str]:
        return [t for t in self.texts if text in t]


@pytest.fixture(scope="module")
def tiny(fashion: ImageData) -> ImageData:
    """256 train and 64 test images of the real set."""
    return fashion.subset(256, 64, seed=0)


@pytest.fixture(scope="module", autouse=True)
def server() -> Iterator[subprocess.Popen[str]]:
    """The warm trainer server (``SERVER``), started with the module's first test: it
    imports torch while the tests that need no trainer process run."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # it kills the trainers still alive, and ends
        try:
            proc.wait(TIMEOUT)
        finally:
            proc.kill()


@pytest.fixture(scope="module")
def trainers(
    server: subprocess.Popen[str], tmp_path_factory: pytest.TempPathFactory, fashion: ImageData
) -> Callable[[Path], tuple[int, Run]]:
    """``start(runs)``: a trainer process training a new run in ``runs`` on 512 raw images.

    Returns its pid and the run once the run is running and has logged a batch, with
    the trainer stopped (SIGSTOP): it holds the run's lock but takes no CPU from the app
    under test until the test sends SIGCONT.
    """
    data = write_raw_data(tmp_path_factory.mktemp("raw"), fashion, 512, 64)
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    def line() -> str:
        ready, _, _ = select.select([stdout], [], [], TIMEOUT)
        assert ready, "the trainer server did not answer"
        return stdout.readline().strip()

    assert line() == "ready"

    def start(runs: Path) -> tuple[int, Run]:
        stdin.write(json.dumps(["train", "--runs-dir", str(runs), "--data-dir", str(data), *TRAIN]))
        stdin.write("\n")
        stdin.flush()
        pid = int(line())

        def started() -> bool:
            infos = list_runs(runs)
            if not infos or infos[0].state != "running":
                return False
            return any(isinstance(e, BatchEnd) for e in Run(infos[0].path).read_metrics().events)

        try:
            wait_until(started, "the trainer to start", TIMEOUT)
        finally:
            os.kill(pid, signal.SIGSTOP)
        return pid, Run(list_runs(runs)[0].path)

    return start


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid: int) -> None:
    """Kill a trainer (stopped or not) and wait until it is gone."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    wait_until(lambda: not alive(pid), f"trainer {pid} to die", TIMEOUT)


def attached(run: Run, runs: Path) -> FmnistApp:
    app = FmnistApp(run.config(), runs_dir=str(runs), attach=run.path)
    app.image_mode = "blocks"
    return app


def bar(app: FmnistApp) -> str:
    """The run's state as the pane bar shows it."""
    return app.query_one(PaneBar).status


def footer(app: FmnistApp) -> set[str]:
    """The actions of the keys the footer offers."""
    return {b.binding.action for b in app.screen.active_bindings.values()}


# --- in this process: a stop then a pause, writers at once, a deleted run, a bug ---


@pytest.mark.parametrize("after", [["pause"], ["pause", "resume"]], ids=lambda a: "-".join(a))
def test_a_stop_then_a_pause_within_one_poll_stops_the_run(
    tmp_path: Path, tiny: ImageData, after: list[str]
) -> None:
    trainer = Trainer(TrainConfig(epochs=50, runs_dir=str(tmp_path), **SMALL), data=tiny)

    def ask(event: object) -> None:
        # On the training thread, between two batches: the trainer's next look at the
        # folder finds only the last of these requests.
        if isinstance(event, BatchEnd) and event.batch == 2 and trainer.run is not None:
            for command in ["stop", *after]:
                trainer.run.request(command)

    trainer.add_listener(ask)
    with ThreadPoolExecutor(1) as pool:
        fitting = pool.submit(trainer.fit)
        try:
            wait_until(
                lambda: (
                    fitting.done()
                    or (trainer.run is not None and trainer.run.read_status().get("paused") is True)
                ),
                "the run to stop (or pause)",
                TIMEOUT,
            )
            paused = not fitting.done()
        finally:
            trainer.stop()  # frees a trainer that paused instead
        result = fitting.result(TIMEOUT)
    assert not paused, "the pause won over the stop asked just before it"
    assert result.status == "stopped"
    assert trainer.run is not None
    states = [e.state for e in trainer.run.read_metrics().events if isinstance(e, StateChanged)]
    assert "paused" not in states
    assert trainer.run.read_status()["reason"] == "stop"


def ask_at_once(run: Run, gate: threading.Barrier, command: str) -> None:
    gate.wait()
    run.request(command)


def test_a_stop_is_never_lost_to_a_pause_written_at_the_same_moment(tmp_path: Path) -> None:
    # Two processes (here threads) asking at once: the pause must not replace the file
    # with one that no longer carries the stop.
    run = Run(tmp_path)
    for _ in range(50):
        with contextlib.suppress(FileNotFoundError):
            run.control_path.unlink()
        run.request("pause")
        gate = threading.Barrier(3)
        threads = [
            threading.Thread(target=ask_at_once, args=(run, gate, c))
            for c in ("stop", "pause", "resume")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert json.loads(run.control_path.read_text()).get("stop"), "the stop was lost"


async def test_acting_on_a_run_another_process_deleted_is_a_notification(
    tmp_path: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    trainer = Trainer(TrainConfig(epochs=2, runs_dir=str(runs), **SMALL), data=tiny)
    trainer.add_listener(lambda e: trainer.stop() if isinstance(e, BatchEnd) else None)
    trainer.fit()
    [info] = list_runs(runs)
    assert info.state == "interrupted" and info.resumable
    listed: list[object] = []
    notes = Notes()

    def hook(message: Message) -> None:
        notes(message)
        if isinstance(message, RunsPane.Listed):
            listed.append(message)

    app = FmnistApp(TrainConfig(epochs=1, runs_dir=str(runs), **SMALL), data=tiny)
    app.image_mode = "blocks"
    async with app.run_test(size=(120, 30), message_hook=hook) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1, TIMEOUT)
        # Just after a listing, so the next one (2 s on) is far off: the row stays.
        seen = len(listed)
        await wait_for(pilot, lambda: len(listed) > seen, TIMEOUT)
        shutil.rmtree(info.path)
        keys = ["r", "R", "a", "e", "d", "i", "enter"]
        await press_now(pilot, *keys)
        gone = f"Run {info.id} is gone"
        await wait_for(
            pilot, lambda: len(notes.saying(gone)) >= len(keys) or not app.is_running, TIMEOUT
        )
        assert app.is_running, "the app ended"
        # Asked of the app itself (the pane's check passed just before the folder went).
        for message in (
            RunsPane.ResumeRequested(info, False),
            RunsPane.ResumeRequested(info, True),
            RunsPane.AttachRequested(info),
        ):
            app.post_message(message)
        await wait_for(pilot, lambda: len(notes.saying(gone)) >= len(keys) + 3, TIMEOUT)
        assert app.is_running and app.run_state == "idle"
        assert app.current_pane == "runs"
    assert not runs.exists() or not list(runs.iterdir())


def test_the_app_never_exits_0_after_an_error_nothing_handled(
    tmp_path: Path, tiny: ImageData
) -> None:
    data = write_raw_data(tmp_path / "data", tiny, 64, 16)
    argv = ["-c", FAULTY_APP, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data)]
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes the app at once
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, *argv], {**os.environ, "TERM": "xterm"})
    shown = bytearray()
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # read what it draws (so it never blocks) until it ends
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):  # EIO once it has ended
                    shown += os.read(master, 65536)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the app did not end"
    finally:
        os.close(master)
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    text = shown.decode(errors="replace")
    assert "RuntimeError" in text  # Textual's traceback
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1, text[-2000:]
    assert "fmnist-tui: error: the app ended on an unexpected error" in text


# --- attached to a trainer process ---------------------------------------------------
# Two scenes, one app each (an app takes a second or two to start): a trainer that does
# not answer (SIGSTOP) and then dies (SIGKILL); a folder that cannot be written and
# then is deleted.


async def test_attach_shows_what_the_trainer_answers_and_a_killed_trainer_as_gone(
    tmp_path: Path, trainers: Callable[[Path], tuple[int, Run]]
) -> None:
    runs = tmp_path / "runs"
    pid, run = trainers(runs)
    notes = Notes()
    try:
        app = attached(run, runs)
        app.response_seconds = 0.5
        async with app.run_test(size=(120, 30), message_hook=notes) as pilot:
            progress, stats = app.monitor.progress, app.monitor.stats
            await wait_for(pilot, lambda: app.run_state == "running", TIMEOUT)
            await wait_for(pilot, lambda: math.isfinite(stats.eta), TIMEOUT)

            # 8. A pause asked of a trainer stopped by SIGSTOP (see `trainers`) is shown
            # as asked, not as done, and after response_seconds it is said to be silent.
            await press_now(pilot, "p")
            await wait_for(
                pilot, lambda: progress.state != "running" or app.run_state != "running", TIMEOUT
            )
            assert app.run_state == "running", "shown as paused before the trainer said so"
            assert progress.state == "pausing…" and bar(app).endswith("pausing…")
            silent = f"the trainer (pid {pid}) does not respond"
            await wait_for(pilot, lambda: notes.saying(silent), TIMEOUT)
            assert app.run_state == "running" and progress.state == "pausing…"
            assert run.read_status().get("paused") is False
            assert bar(app).endswith("pausing… (no answer)")
            # Until it answers, the footer offers no second pause (a stop, yes: it wins).
            assert not app.check_action("pause", ()) and app.check_action("stop", ())
            os.kill(pid, signal.SIGCONT)  # it answers
            await wait_for(pilot, lambda: app.run_state == "paused", TIMEOUT)
            assert progress.state == "paused" and bar(app).endswith("paused")
            await wait_for(pilot, lambda: run.read_status().get("paused") is True, TIMEOUT)

            # A stop asked of it, stopped again: asked; and a stop wins over a resume.
            os.kill(pid, signal.SIGSTOP)
            await press_now(pilot, "x")
            await wait_for(
                pilot, lambda: progress.state != "paused" or app.run_state != "paused", TIMEOUT
            )
            assert app.run_state == "paused", "shown as stopping before the trainer said so"
            assert progress.state == "stopping…" and bar(app).endswith("stopping…")
            assert not app.check_action("resume", ())

            # 7. Killed without a last word: interrupted, not running, no ETA, and the
            # footer offers no key for a run that is gone.
            os.kill(pid, signal.SIGKILL)
            await wait_for(pilot, lambda: progress.state not in ("stopping…", "paused"), TIMEOUT)
            assert progress.state == "interrupted"
            assert bar(app).endswith("interrupted (the training process is gone)")
            assert math.isnan(stats.eta) and "ETA —" in str(stats.render())
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
            keys = footer(app)
            assert not {"pause", "resume", "stop"} & keys and "start" in keys
            assert app.check_action("start", ()) is True
            assert bar(app).endswith("interrupted (the training process is gone)")
    finally:
        kill(pid)
    assert run.state() == "interrupted"


async def test_attach_survives_a_control_file_it_cannot_write_and_a_deleted_folder(
    tmp_path: Path, trainers: Callable[[Path], tuple[int, Run]]
) -> None:
    runs = tmp_path / "runs"
    pid, run = trainers(runs)
    notes = Notes()
    try:
        app = attached(run, runs)
        async with app.run_test(size=(120, 30), message_hook=notes) as pilot:
            await wait_for(pilot, lambda: app.run_state == "running", TIMEOUT)

            # 11. A folder where control.json goes: replacing it fails, as on a full
            # disk. Each key says so; the app stays up and the run as it was.
            run.control_path.mkdir()
            for key in ("p", "x"):
                await press_now(pilot, key)
            await wait_for(
                pilot,
                lambda: len(notes.saying("cannot write")) == 2 or not app.is_running,
                TIMEOUT,
            )
            assert app.is_running, "the app ended"
            assert all(str(run.control_path) in n for n in notes.saying("cannot write"))
            assert app.is_running and app.run_state == "running"
            assert app.monitor.progress.state == "running"
            run.control_path.rmdir()  # space again
            await press_now(pilot, "p")
            os.kill(pid, signal.SIGCONT)
            await wait_for(pilot, lambda: app.run_state == "paused", TIMEOUT)

            # 7. The run's folder deleted by another process (its trainer stopped, so
            # it writes nothing meanwhile): the app says so, and stays up.
            os.kill(pid, signal.SIGSTOP)
            shutil.rmtree(run.path)
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
            assert app.monitor.progress.state == "interrupted"
            assert bar(app).endswith("interrupted (the run's folder is gone)")
            assert "ETA —" in str(app.monitor.stats.render())
            assert app.is_running
    finally:
        kill(pid)
