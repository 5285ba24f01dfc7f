"""The modes of a run folder's files: what the umask gives (teammates may read a run under
umask 0022, nobody else under 0077), in a detached run and in the foreground, and a mode
someone set by hand kept across the checkpoints that replace the file.

The umask is set in the subprocess that trains, never in the test process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lifecycle_helpers import cli, file_modes, kill_trainer, wait_until, write_raw_data

from engine.data import ImageData
from engine.runs import Run
from engine.state import RunState

TINY = ["--epochs", "1", "--batch-size", "32", "--hidden-sizes", "16", "--device", "cpu"]
RUN_FILES = ("best.pt", "config.json", "last.pt", "metrics.jsonl", "status.json")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """600 train and 100 test images of the real set, as raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("tiny-fashion"), fashion, 600, 100)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_a_finished_detached_runs_files_have_the_mode_the_umask_gives(
    umask: int, mode: int, tmp_path: Path, tiny_data: Path
) -> None:
    runs = tmp_path / "runs"
    argv = ["train", "--detach", "--json", "--data-dir", str(tiny_data), "--runs-dir", str(runs)]
    done = cli(*argv, *TINY, umask=umask)
    assert done.returncode == 0, done.stderr
    run = Run(Path(json.loads(done.stdout)["run_dir"]))
    try:
        wait_until(lambda: not run.is_locked(), "the detached run to end")
    finally:
        kill_trainer(run)
    assert run.state() == RunState.FINISHED, run.read_status()
    assert file_modes(run.path) == dict.fromkeys((*RUN_FILES, "output.log"), mode)
    assert run.path.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_mode_set_on_last_pt_survives_the_next_checkpoint(
    tmp_path: Path, tiny_data: Path
) -> None:
    runs = tmp_path / "runs"
    flags = ["--data-dir", str(tiny_data), "--runs-dir", str(runs)]
    first = cli("train", *flags, *TINY, umask=0o077)
    assert first.returncode == 0, first.stderr
    [run] = [Run(p) for p in runs.iterdir()]
    assert file_modes(run.path) == dict.fromkeys(RUN_FILES, 0o600)
    run.last_path.chmod(0o640)  # the group may read it, though the umask would not allow it
    inode = run.last_path.stat().st_ino

    done = cli("train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2", umask=0o077)

    assert done.returncode == 0, done.stderr
    assert run.read_status()["epochs_completed"] == 2
    assert run.last_path.stat().st_ino != inode  # replaced by a new file, not written over
    assert run.last_path.stat().st_mode & 0o777 == 0o640
