"""``engine.detach.spawn_detached``, the engine's own way to train in a process of its own:
what holds when it returns, how a stop ends the run, and how a start that fails reports.

No CLI here: these call the engine as the app does. Every trainer a test starts is
killed in a ``finally``, whatever happens to the test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lifecycle_helpers import kill_trainer, wait_until, write_raw_data

from engine.config import TrainConfig
from engine.control import RemoteControl
from engine.data import ImageData
from engine.detach import START_TIMEOUT, LaunchError, spawn_detached
from engine.errors import CheckpointError
from engine.events import RunStarted
from engine.runs import Run, list_runs, run_info
from engine.state import RunState
from helpers import cfg


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """600 train and 100 test images of the real set, as raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("tiny-fashion"), fashion, 600, 100)


def tiny(tmp_path: Path, data: Path, epochs: int) -> TrainConfig:
    return cfg(tmp_path, epochs=epochs, data_dir=str(data), hidden_sizes=(16,))


def kill_all(runs: Path) -> None:
    for info in list_runs(runs):
        kill_trainer(Run(info.path))


def trainer_watches(run: Run) -> bool:
    """Whether the trainer has begun (it obeys the run folder's requests from then on)."""
    return any(isinstance(e, RunStarted) for e in run.read_metrics().events)


def test_spawn_returns_with_the_child_running_and_a_stop_ends_it_resumably(
    tmp_path: Path, tiny_data: Path
) -> None:
    started = spawn_detached(tiny(tmp_path, tiny_data, epochs=1000))
    status = started.run.read_status()  # as it is the moment spawn_detached returns
    run = Run(started.run_dir)
    try:
        assert status["pid"] == started.pid and status["state"] == "running"
        assert run.is_locked() and run.state() == RunState.RUNNING
        environ = Path(f"/proc/{started.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"FMNIST_TUI_LOCK_FD=")]

        with pytest.raises(CheckpointError, match="already training"):
            spawn_detached(Run(run.path))
        assert run.read_status()["pid"] == started.pid

        wait_until(lambda: trainer_watches(run), "the trainer to begin")
        RemoteControl(run).stop()
        wait_until(lambda: not run.is_locked(), "the trainer to stop and let go of the run")
    finally:
        kill_trainer(run)
    info = run_info(run)
    assert info.state == RunState.INTERRUPTED and info.resumable
    assert info.epochs_completed < 1000
    assert run.read_status()["pid"] == started.pid


def test_a_stop_asked_the_moment_spawn_returns_is_obeyed(tmp_path: Path, tiny_data: Path) -> None:
    started = spawn_detached(tiny(tmp_path, tiny_data, epochs=1))
    run = Run(started.run_dir)
    try:
        RemoteControl(run).stop()
        wait_until(lambda: not run.is_locked(), "the trainer to let go of the run")
    finally:
        kill_trainer(run)
    assert run.state() == RunState.INTERRUPTED


def test_a_child_whose_device_is_absent_raises_launch_error_at_once(tmp_path: Path) -> None:
    began = time.monotonic()
    try:
        with pytest.raises(LaunchError, match=r"cuda:99 (is not available|does not exist)"):
            spawn_detached(cfg(tmp_path, device="cuda:99"))
        assert time.monotonic() - began < START_TIMEOUT / 2
    finally:
        kill_all(tmp_path / "runs")
    assert list_runs(tmp_path / "runs") == []  # a run that never started leaves no folder


def test_a_resume_that_cannot_read_its_run_raises_launch_error_and_keeps_its_state(
    tmp_path: Path,
) -> None:
    run = Run.create(cfg(tmp_path), state=RunState.INTERRUPTED)
    run.config_path.write_text("{not json")
    before = run.read_status()
    began = time.monotonic()
    try:
        with pytest.raises(LaunchError, match=r"config\.json is unusable"):
            spawn_detached(run)
        assert time.monotonic() - began < START_TIMEOUT / 2
    finally:
        kill_trainer(run)
    assert run.state() == RunState.INTERRUPTED  # never left marked running by the child
    assert settled(run.read_status()) == settled(before)


def settled(status: dict[str, object]) -> dict[str, object]:
    """A status without who wrote it last and when."""
    return {k: v for k, v in status.items() if k not in ("pid", "host", "updated")}
