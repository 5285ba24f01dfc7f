"""``fmnist-tui train`` at the edges of a run's life: a resume refused before torch loads,
Ctrl+C before the first epoch ends, and ``--detach --json`` naming the trainer's pid.

Each command runs in a subprocess of its own, as a user would run it.
"""

from __future__ import annotations

import json
import queue
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lifecycle_helpers import ROOT, TIMEOUT, cli, kill_trainer, write_raw_data

from engine.data import ImageData
from engine.runs import Run, list_runs
from engine.state import RunState
from engine.trainer import Trainer
from helpers import cfg

TINY = ["--batch-size", "32", "--hidden-sizes", "16", "--log-every", "5", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """600 train and 100 test images of the real set, as raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("tiny-fashion"), fashion, 600, 100)


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory, fashion: ImageData) -> Path:
    """3,000 train images: at one image a batch the first epoch lasts seconds, so a
    Ctrl+C sent once training has begun always lands inside it."""
    return write_raw_data(tmp_path_factory.mktemp("slow-fashion"), fashion, 3000, 100)


def folder_bytes(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_data: Path) -> Run:
    """A run that trained all of its one epoch."""
    folder = tmp_path_factory.mktemp("finished")
    result = Trainer(cfg(folder, epochs=1, data_dir=str(tiny_data))).fit()
    assert result.run_dir is not None
    return Run(result.run_dir)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--detach"]])
def test_resume_of_a_finished_run_without_epochs_is_refused_before_torch_loads(
    extra: list[str], tmp_path: Path, finished_run: Run
) -> None:
    run = finished_run
    assert run.state() == RunState.FINISHED
    status = run.status_path.read_bytes()
    before = folder_bytes(run.path)
    torch_flag = tmp_path / "torch-imported"

    done = cli(
        "train",
        "--resume",
        run.id,
        "--runs-dir",
        str(run.path.parent),
        *extra,
        torch_flag=torch_flag,
    )

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"fmnist-tui: error: run {run.id} has finished all its epochs (1)")
    assert "--epochs" in line
    assert torch_flag.read_text() == "False"
    assert run.status_path.read_bytes() == status
    assert folder_bytes(run.path) == before


def test_resume_to_fewer_epochs_than_trained_is_refused(tmp_path: Path, tiny_data: Path) -> None:
    result = Trainer(cfg(tmp_path, epochs=2, data_dir=str(tiny_data))).fit()
    assert result.run_dir is not None
    run = Run(result.run_dir)
    before = folder_bytes(run.path)
    done = cli("train", "--resume", run.id, "--runs-dir", str(run.path.parent), "--epochs", "1")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line == (
        f"fmnist-tui: error: --epochs 1 is fewer than the 2 epochs run {run.id} has "
        "trained already; give 2 or more"
    )
    assert folder_bytes(run.path) == before


def test_resume_of_a_finished_run_to_its_own_total_says_there_is_nothing_to_do(
    finished_run: Run,
) -> None:
    run = finished_run
    before = folder_bytes(run.path)
    done = cli("train", "--resume", run.id, "--runs-dir", str(run.path.parent), "--epochs", "1")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "has trained 1 epoch already: nothing to do" in line
    assert folder_bytes(run.path) == before


def test_an_empty_resume_is_refused_not_a_new_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = cli("train", "--resume", "", "--runs-dir", str(runs))
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("fmnist-tui: error: --resume needs a run: its id or its folder")
    assert not runs.exists()


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """``proc``'s stdout, line by line, readable with a timeout (None at its end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_ctrl_c_before_the_first_epoch_ends_names_the_run_and_no_accuracy(
    tmp_path: Path, slow_data: Path
) -> None:
    runs = tmp_path / "runs"
    argv = ["train", "--data-dir", str(slow_data), "--runs-dir", str(runs), "--epochs", "1"]
    one_image = ["--batch-size", "1", "--hidden-sizes", "16", "--log-every", "100"]
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err_file:  # a file, so a chatty stderr can never block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *argv, *one_image, "--device", "cpu"],
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
            cwd=ROOT,
        )
    try:
        lines = lines_of(proc)
        # The first line is printed as training begins, with Ctrl+C already handled.
        first = lines.get(timeout=TIMEOUT)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = [first]
    while (line := lines.get(timeout=TIMEOUT)) is not None:
        out.append(line)
    err = err_path.read_text()
    [info] = list_runs(runs)
    assert first == f"run {info.id}", (out, err)
    assert not any(line.startswith("epoch ") for line in out), out
    # The best epoch would be chosen on the validation split (val_fraction 0.1).
    assert out[-1].startswith("stopped: 0 epochs, best val accuracy —, final test —, "), out
    # The runs folder is not the default one: the command says where it is.
    resume = f"fmnist-tui train --resume {info.id} --runs-dir {shlex.quote(str(runs))}"
    assert out[-1].endswith(f"; resume with `{resume}`"), out
    assert "0.0000" not in "\n".join(out)
    assert "Traceback" not in err
    assert info.state == RunState.INTERRUPTED and info.resumable


def test_detach_json_names_the_trainers_pid_the_moment_it_returns(
    tmp_path: Path, tiny_data: Path
) -> None:
    runs = tmp_path / "runs"
    argv = ["train", "--detach", "--json", "--data-dir", str(tiny_data), "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *argv, "--epochs", "1000", *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    out, err = proc.communicate(timeout=TIMEOUT)
    [info] = list_runs(runs)
    run = Run(info.path)
    try:
        status = run.read_status()  # before anything else: no moment may name another pid
        assert proc.returncode == 0, err
        [line] = out.splitlines()
        report = json.loads(line)
        assert report["event"] == "detached"
        assert (report["run_id"], Path(report["run_dir"])) == (run.id, run.path)
        assert status["state"] == "running"
        assert status["pid"] == report["pid"] != proc.pid
        assert run.is_locked()
        cmdline = Path(f"/proc/{report['pid']}/cmdline").read_bytes().split(b"\0")
        assert b"engine.detach" in cmdline and str(run.path.resolve()).encode() in cmdline
    finally:
        kill_trainer(run)
