"""A search survives its workers dying and being stopped.

A worker is killed (SIGKILL) mid-epoch, while its trial's ``status.json`` says running:
Optuna's journal has no heartbeat, so the trial stays RUNNING until ``search --study NAME``
runs again, fails it (the reason in its run's ``status.json``) and queues a trial that
resumes its run, and that search brings the study to its number. With two workers, the
search itself notices and the other worker goes on. Ctrl+C stops every worker at a batch
boundary, their runs resumable and their trials queued again.

Everything is seen through public seams: the run folders a user sees, the pid a run's
status records, the study's rows, the process's exit code. Epochs are made long enough
(small batches, a wider MLP) that a kill lands inside one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from lifecycle_helpers import ROOT, TIMEOUT, wait_until

from engine.events import RunStarted
from engine.runs import Run, iter_runs
from engine.search import study_rows

SLOW = [
    "--train-subset",
    "2000",
    "--test-subset",
    "200",
    "--hidden-sizes",
    "512,512",
    "--batch-size",
    "16",
    "--log-every",
    "10",
    "--device",
    "cpu",
    "--epochs",
    "1",
    "--sampler",
    "random",
]
# The space leaves the batch size alone: small batches make an epoch long enough to kill.
SPACE = "[search]\nlr = [0.0005, 0.001, 0.002]\ndropout = { low = 0.0, high = 0.3 }\n"


def slow(tmp_path: Path) -> list[str]:
    """``SLOW`` with a config file holding ``SPACE``."""
    config = tmp_path / "space.toml"
    config.write_text(SPACE)
    return [*SLOW, "--config", str(config)]


def start(runs: Path, *argv: str) -> subprocess.Popen[str]:
    """``fmnist-tui search --runs-dir RUNS ARGV`` in a fresh interpreter, not waited for."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "search", "--runs-dir", str(runs), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=3 * TIMEOUT)
    return process.returncode, out, err


def training_mid_epoch(runs: Path) -> Run | None:
    """A run whose status says running and whose log has a batch of its first epoch and no
    epoch's end yet."""
    for run in iter_runs(runs):
        if run.read_status().get("state") != "running":
            continue
        kinds = [e.kind for e in run.read_metrics().events]
        if "batch" in kinds and "epoch" not in kinds:
            return run
    return None


def kill_mid_epoch(runs: Path) -> tuple[Run, int]:
    """SIGKILL the process training a run mid-epoch (the pid its status records); the run
    and the pid killed."""
    found: list[Run] = []

    def ready() -> bool:
        run = training_mid_epoch(runs)
        if run is not None:
            found.append(run)
        return run is not None

    wait_until(ready, "a trial mid-epoch")
    run = found[-1]
    pid = run.read_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not run.is_locked(), "the killed worker's run to be let go")
    return run, pid


def starts(run: Run) -> list[RunStarted]:
    return [e for e in run.read_metrics().events if isinstance(e, RunStarted)]


def test_a_worker_killed_mid_epoch_is_failed_by_the_next_search_which_reaches_the_number(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    first = start(runs, *slow(tmp_path), "--study", "killed", "--trials", "1")
    run, pid = kill_mid_epoch(runs)
    assert pid == first.pid  # one worker: the search trains in its own process
    first.communicate(timeout=TIMEOUT)
    rows = study_rows(runs, "killed")
    assert [(r.number, r.state, r.run_id) for r in rows] == [(0, "running", run.id)]
    # Again, as a user would: the study's own settings, the same number.
    code, out, err = finish(start(runs, "--study", "killed", "--trials", "1"))
    assert code == 0, err
    rows = study_rows(runs, "killed")
    assert sum(r.state in ("complete", "pruned") for r in rows) == 1
    assert rows[0].state == "failed"
    status = run.read_status()
    assert any(f"pid {pid}" in note and "died" in note for note in status["search_notes"])
    # The trial queued in its place resumed the killed run from its last checkpoint.
    retry = [r for r in rows if r.number > 0 and r.run_id == run.id]
    assert len(retry) == 1 and retry[0].state in ("complete", "pruned")
    assert [e.resumed for e in starts(run)] == [False, True]
    assert status["state"] == "finished" and status["trial"] == retry[0].number
    assert f"trial {retry[0].number:>3}" in out


def test_two_workers_one_killed_then_ctrl_c_then_the_study_is_finished(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    search = start(runs, *slow(tmp_path), "--study", "pair", "--trials", "3", "--workers", "2")
    killed, pid = kill_mid_epoch(runs)
    assert pid != search.pid
    # The search fails the dead worker's trial while it runs, and the other worker takes
    # up the trial queued to resume its run.
    wait_until(
        lambda: any(r.state == "failed" for r in study_rows(runs, "pair")),
        "the search to fail the killed worker's trial",
    )

    def resumed_mid_epoch() -> bool:
        events = killed.read_metrics().events
        again = [i for i, e in enumerate(events) if isinstance(e, RunStarted)][1:]
        after = [e.kind for e in events[again[0] :]] if again else []
        return killed.read_status().get("state") == "running" and after[-1:] == ["batch"]

    wait_until(resumed_mid_epoch, "another worker to resume the killed run")
    # Ctrl+C: every worker stops at a batch boundary.
    search.send_signal(signal.SIGINT)
    code, out, err = finish(search)
    assert code == 130, err
    assert "stopped; continue with: fmnist-tui search --study pair --trials 3" in out
    rows = study_rows(runs, "pair")
    assert not [r for r in rows if r.state == "running"]
    interrupted = [r for r in rows if r.state == "failed" and "interrupted" in r.reason]
    assert interrupted
    waiting = [r for r in rows if r.state == "waiting"]
    for row in interrupted:
        run = Run(runs / (row.run_id or ""))
        assert run.has_checkpoint() and run.read_status()["state"] == "interrupted"
        assert any(w.params == row.params for w in waiting)
    # Continued: the queued trials resume their runs and the study reaches its number.
    code, out, err = finish(start(runs, "--study", "pair", "--trials", "3"))
    assert code == 0, err
    rows = study_rows(runs, "pair")
    assert sum(r.state in ("complete", "pruned") for r in rows) == 3
    assert not [r for r in rows if r.state in ("running", "waiting")]
    ids = {r.run_id for r in rows if r.state in ("complete", "pruned")}
    assert len(ids) == 3  # each finished trial has its own run
    for run in iter_runs(runs):
        assert run.read_status()["state"] in ("finished", "interrupted"), json.dumps(
            run.read_status()
        )
