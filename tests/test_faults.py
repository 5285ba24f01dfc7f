"""Faults and bad input: kills, signals, a full or read-only disk, out of memory, broken
data and config files, and hostile files. Nothing may be lost and nothing may crash.

Every test is seeded and bounded: subprocesses have timeouts and training runs are tiny
(600 images, a 32-unit hidden layer, 3 epochs). docs/faults.md lists what each covers.
"""

from __future__ import annotations

import errno
import gzip
import json
import math
import os
import pickle
import pty
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lifecycle_helpers import cli_process
from test_config import bad_texts

import engine.files
import engine.optim
from engine.config import FIELDS, TrainConfig, parse_text
from engine.data import FILES, ImageData, write_idx
from engine.errors import CheckpointError, ConfigError
from engine.events import CheckpointSaved, EpochEnd
from engine.files import atomic_write
from engine.runs import Run, list_runs, load_checkpoint
from engine.trainer import Trainer
from helpers import cfg, synthetic
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261127
TIMEOUT = 120  # seconds: any subprocess here that takes longer has hung
EPOCHS = 3

# The run every kill trial makes: tiny, on CPU, with every random stream in play
# (dropout, augmentation, shuffling) so an inexact resume would show in the numbers. The
# step schedule halves the rate each epoch whatever the run's length, so the first
# epochs of a longer run are those of a shorter one.
TRAIN_FLAGS = [
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "32",
    "--hidden-sizes",
    "32",
    "--dropout",
    "0.2",
    "--augment",
    "--schedule",
    "step",
    "--step-size",
    "1",
    "--gamma",
    "0.5",
    "--log-every",
    "5",
    "--device",
    "cpu",
    "--seed",
    "3",
]

# Compared exactly (CPU, fixed seed); the float sums within a relative 1e-6.
EXACT = (
    "epoch",
    "epochs",
    "test_loss",
    "test_accuracy",
    "train_accuracy",
    "per_class_accuracy",
    "confusion_matrix",
    "lr",
    "best_accuracy",
    "is_best",
)
CLOSE = ("train_loss", "grad_norm")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """600 train and 200 test images of the real set, as the four raw IDX files."""
    folder = tmp_path_factory.mktemp("tiny-fashion")
    data = fashion.subset(600, 200, seed=0)
    for split, prefix in ((data.train, "train"), (data.test, "test")):
        write_idx(folder / FILES[f"{prefix}_images"], split.images)
        write_idx(folder / FILES[f"{prefix}_labels"], split.labels.astype(np.uint8))
    return folder


def train_argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data), "--runs-dir", str(runs), *TRAIN_FLAGS, *extra]


def cli(*args: str) -> subprocess.Popen[str]:
    return cli_process(*args)


def assert_same_epochs(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [e["epoch"] for e in got] == [e["epoch"] for e in want]
    for a, b in zip(got, want, strict=True):
        for key in EXACT:
            assert a.get(key) == b.get(key), (a["epoch"], key)
        for key in CLOSE:
            assert math.isclose(a[key], b[key], rel_tol=1e-6), (a["epoch"], key)


def assert_same_weights(run: Path, reference: Path) -> None:
    for name in ("last.pt", "best.pt"):
        got, want = load_checkpoint(run / name), load_checkpoint(reference / name)
        assert got["epoch"] == want["epoch"], name
        for key, tensor in want["model"].items():
            assert torch.equal(got["model"][key], tensor), (name, key)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --- kills ---------------------------------------------------------------------------


def kill_plan() -> list[dict[str, Any]]:
    """At least 20 seeded kill trials; see tests/fault_driver.py for what each moment is."""
    rng = random.Random(SEED)
    phases = ("temp", "before_rename", "after_rename")

    def trial(name: str, *kills: dict[str, Any]) -> dict[str, Any]:
        return {"id": name, "kills": list(kills)}

    trials = [
        # Where a run is born: writing its config.json, with each phase of the write.
        *(trial(f"create-{p}", {"kind": "atomic_write", "u": 0.0, "phase": p}) for p in phases),
        # Writing the very last file (status "finished") and the first and last log lines.
        trial("last-write", {"kind": "atomic_write", "u": 0.999, "phase": "temp"}),
        trial("first-line", {"kind": "append", "u": 0.0, "fraction": 0.5}),
        # Between the two checkpoints of the last epoch, which is the best one: the files
        # must not disagree afterwards.
        trial(
            "last-best",
            {"kind": "atomic_write", "file": "best.pt", "u": 0.999, "phase": "before_rename"},
        ),
        trial("last-line", {"kind": "append", "u": 0.999, "fraction": 0.5}),
    ]
    for i in range(6):
        phase = rng.choice(phases)
        trials.append(
            trial(f"write-{i}", {"kind": "atomic_write", "u": rng.random(), "phase": phase})
        )
    for i in range(4):
        fraction = round(rng.uniform(0.05, 0.95), 3)
        trials.append(
            trial(f"line-{i}", {"kind": "append", "u": rng.random(), "fraction": fraction})
        )
    for i in range(4):
        trials.append(trial(f"batch-{i}", {"kind": "step", "u": rng.random()}))
    for i in range(3):
        trials.append(trial(f"timed-{i}", {"kind": "timed", "u": rng.uniform(0.1, 0.9)}))
    # Killed again while resuming: right after the log was cut back, and in the first batch.
    trials.append(
        trial(
            "twice-log",
            {"kind": "step", "u": 0.3},
            {"kind": "append", "u": 0.0, "fraction": 0.5},
        )
    )
    trials.append(
        trial(
            "twice-batch",
            {"kind": "atomic_write", "u": 0.4, "phase": "after_rename"},
            {"kind": "step", "u": 0.0},
        )
    )
    return trials


PLAN = kill_plan()


@pytest.fixture(scope="module")
def kills(tmp_path_factory, tiny_data: Path) -> dict[str, Any]:
    """Run every kill trial in one driver process (about 20 s); the tests judge each."""
    work = tmp_path_factory.mktemp("kills")
    flags = ["--data-dir", str(tiny_data), *TRAIN_FLAGS]
    plan = work / "plan.json"
    plan.write_text(json.dumps({"work": str(work), "train": flags, "trials": PLAN}))
    results = work / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fault_driver.py"), str(plan), str(results)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's engine, as in pytest
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(results.read_text())
    reference = out["reference"]
    assert reference["ended"]["exit"] == 0
    [run] = reference["after"]["runs"]
    assert run["state"] == "finished" and len(run["epochs"]) == EPOCHS
    assert run["epochs"][-1]["is_best"]  # what the "last-best" trial needs
    out["trials"] = {t["id"]: t for t in out["trials"]}
    return out


def test_kill_plan_has_twenty_trials_covering_every_kind_of_moment() -> None:
    kinds = {(k["kind"], k.get("phase")) for t in PLAN for k in t["kills"]}
    assert len(PLAN) >= 20
    assert {("atomic_write", p) for p in ("temp", "before_rename", "after_rename")} <= kinds
    assert {("append", None), ("step", None), ("timed", None)} <= kinds


@pytest.mark.parametrize("trial_id", [t["id"] for t in PLAN])
def test_killed_run_resumes_to_the_same_metrics_or_says_it_cannot(
    kills: dict[str, Any], trial_id: str
) -> None:
    trial = kills["trials"][trial_id]
    for step in trial["steps"]:
        kill, ended, after = step["kill"], step["ended"], step["after"]
        assert not ended["hung"]
        if kill["kind"] == "timed":  # from outside: it may have finished first
            assert ended["signal"] == signal.SIGKILL or ended["exit"] == 0, ended
        else:
            assert ended["signal"] == signal.SIGKILL, f"the planned kill never came: {ended}"
        assert "list_error" not in after, after.get("list_error")
        for run in after.get("runs", []):
            # Never "running" once dead; "finished" only if killed after saying so.
            if ended["signal"]:
                assert run["state"] in ("interrupted", "finished")
            if run["state"] == "finished":
                assert len(run["epochs"]) == EPOCHS
            assert run["bad_lines"] == 0
            if kill["kind"] == "append":  # killed mid-line: the torn line is reported
                assert run["torn_line"]
        listed = {row["path"]: row for row in after["listed"]}
        for run in after.get("runs", []):
            if run["path"] in listed:
                assert listed[run["path"]]["state"] == run["state"]
    resume = trial["resume"]
    assert not resume["ended"]["hung"]
    before = trial["steps"][-1]["after"]
    resumable = bool(before["listed"]) and before["listed"][0]["resumable"]
    if resumable and before["listed"][0]["state"] == "finished":
        # A timed kill that came after the end: a finished run resumes only with --epochs.
        assert resume["ended"]["exit"] == 2, resume
        assert "has finished all its epochs" in one_line(resume["stderr"])
    elif resumable:
        assert resume["ended"]["exit"] == 0, resume["stderr"]
        [run] = resume["after"]["runs"]
        assert run["state"] == "finished"
        assert not run["torn_line"] and run["bad_lines"] == 0
        assert run["temp_files"] == []
        [reference] = kills["reference"]["after"]["runs"]
        assert_same_epochs(run["epochs"], reference["epochs"])
        assert_same_weights(Path(run["path"]), Path(reference["path"]))
    else:
        # Killed before its first checkpoint: nothing to resume, and it says so.
        assert resume["ended"]["exit"] == 2, resume
        line = one_line(resume["stderr"])
        assert line.startswith("fmnist-tui: error: ")
        assert "cannot be resumed" in line or "is not a run folder" in line or "no run" in line
        assert resume["stdout"] == ""


def test_killed_cli_process_resumes_to_the_same_metrics(
    kills: dict[str, Any], tiny_data: Path, tmp_path: Path
) -> None:
    # The real command in its own process, killed from outside after a seeded number of
    # its events. It is asked for 20 epochs so that the kill surely lands while it trains;
    # resumed as a 3-epoch run, it must match the reference's 3 epochs.
    [reference] = kills["reference"]["after"]["runs"]
    lines = Path(reference["path"], "metrics.jsonl").read_text().splitlines()
    after = random.Random(SEED).randrange(3, len(lines))
    proc = cli(*train_argv(tiny_data, tmp_path, "--epochs", "20"), "--json")
    try:
        assert proc.stdout is not None
        for events, _line in enumerate(proc.stdout, 1):
            if events == after:
                proc.kill()
                break
        proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    [info] = list_runs(tmp_path)
    assert info.state == "interrupted" and info.resumable
    argv = ["train", "--json", "--resume", info.id, "--runs-dir", str(tmp_path), "--epochs", "3"]
    assert main(argv) == 0
    logged = [e.to_dict() for e in Run(info.path).read_metrics().epochs][:EPOCHS]

    def but_epochs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "epochs"} for e in events]  # 20 or 3

    assert_same_epochs(but_epochs(logged), but_epochs(reference["epochs"]))


def test_torn_line_is_reported_when_resuming(tmp_path: Path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    with open(run.metrics_path, "a") as f:
        f.write('{"event": "batch", "epo')  # as a kill mid-append leaves it
    events: list[Any] = []
    Trainer.resume(run, data=synthetic(), epochs=2, listeners=(events.append,)).fit()
    [note] = events[0].notes
    assert "partly written line" in note
    log = run.read_metrics()
    assert not log.torn_line and [e.epoch for e in log.epochs] == [1, 2]


def test_leftover_status_junk_never_breaks_the_listing(tmp_path: Path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    for junk in ('{"epochs_completed": "x", "epochs": [1], "best_accuracy": "hi"}', "[]", "\0"):
        run.status_path.write_text(junk)
        [info] = list_runs(tmp_path / "runs")
        assert info.resumable and info.epochs_completed == 0


# --- signals -------------------------------------------------------------------------


def inet_sockets(pid: int) -> list[str]:
    """The process's TCP and UDP sockets (any state), from /proc: none may exist."""
    fd_dir = Path(f"/proc/{pid}/fd")
    inodes = set()
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{proto}")
        for row in table.read_text().splitlines()[1:]:
            fields = row.split()
            if fields[9] in inodes:
                found.append(f"{proto} {fields[1]} state {fields[3]}")
    return found


def wait_for_epoch(runs: Path, deadline: float) -> Run:
    """The run under ``runs`` once its log holds a finished epoch (training is under way)."""
    while time.monotonic() < deadline:
        for run in engine.runs.iter_runs(runs):
            if run.read_metrics().epochs:
                return run
        time.sleep(0.05)
    raise AssertionError(f"no epoch finished in {runs}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_checkpoints_exits_130_and_resumes(
    sig: signal.Signals, tiny_data: Path, tmp_path: Path
) -> None:
    # SIGINT is tests/test_cli.py::test_sigint_saves_a_resumable_checkpoint_and_exits_130.
    proc = cli(*train_argv(tiny_data, tmp_path, "--epochs", "500"), "--json")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "epoch":
                break
        # While it trains, it holds no network socket at all, let alone a listening one.
        assert inet_sockets(proc.pid) == []
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-2]["event"] == "checkpoint" and events[-2]["reason"] == "interrupt"
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "stopped"
    [info] = list_runs(tmp_path)
    assert info.state == "interrupted" and info.resumable
    epochs = str(info.epochs_completed + 1)
    args = ["train", "--resume", info.id, "--runs-dir", str(tmp_path), "--epochs", epochs]
    assert main(args) == 0
    assert Run(info.path).state() == "finished"


def run_in_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    """Start ``argv`` as the session leader of a new pseudo-terminal: (pid, master fd)."""
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes the command at once
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, *argv], env)
    return pid, master


def drain(master: int, until: Any, timeout: float) -> None:
    """Read what the program writes to its terminal, so it never blocks, until ``until()``."""
    deadline = time.monotonic() + timeout
    os.set_blocking(master, False)
    while not until():
        assert time.monotonic() < deadline, "timed out"
        try:
            os.read(master, 65536)
        except OSError:  # nothing to read yet
            time.sleep(0.05)


def training_run(pid: int, master: int, runs: Path) -> Run:
    """The run under ``runs`` once it has logged an epoch; it may hold no network socket."""
    found: list[Run] = []

    def training() -> bool:
        found.extend(r for r in engine.runs.iter_runs(runs) if r.read_metrics().epochs)
        return bool(found)

    drain(master, training, TIMEOUT)
    assert inet_sockets(pid) == []
    return found[0]


def exit_status(pid: int, master: int | None, timeout: float) -> int | None:
    """How ``pid`` ended, or None (and it is killed) if it was still running at ``timeout``."""
    ended: list[int] = []

    def done() -> bool:
        pid_done, status = os.waitpid(pid, os.WNOHANG)
        ended.extend([status] if pid_done else [])
        return bool(ended)

    try:
        if master is None:  # the terminal is gone: nothing to drain
            deadline = time.monotonic() + timeout
            while not done() and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            drain(master, done, timeout)
    except AssertionError:
        pass
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return ended[0] if ended else None


def stopped_at_a_batch(run: Run) -> bool:
    """Whether the run's last checkpoint is the one a stop request saves (not an epoch's)."""
    saved = [e for e in run.read_metrics().events if isinstance(e, CheckpointSaved)]
    return run.state() == "interrupted" and saved[-1].reason == "interrupt"


def test_lost_terminal_stops_headless_training_resumably(tiny_data: Path, tmp_path: Path) -> None:
    # A terminal (so the live progress bars are on) that goes away mid-run, as over SSH.
    argv = ["-m", "tui.cli", *train_argv(tiny_data, tmp_path, "--epochs", "500")]
    pid, master = run_in_terminal(argv, {**os.environ, "TERM": "xterm-256color"})
    try:
        run = training_run(pid, master, tmp_path)
    finally:
        os.close(master)  # the kernel sends SIGHUP
    status = exit_status(pid, None, TIMEOUT)
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 130
    assert stopped_at_a_batch(run) and run.has_checkpoint()


def start_app(runs: Path, data: Path) -> tuple[int, int]:
    """The app in a terminal of its own, training at once (FMNIST_TUI_AUTOSTART)."""
    argv = ["-m", "tui.cli", *train_argv(data, runs, "--epochs", "500")[1:]]
    env = {**os.environ, "TERM": "xterm-256color", "FMNIST_TUI_AUTOSTART": "1"}
    return run_in_terminal(argv, env)


@pytest.fixture(scope="module")
def app_hung_up(tiny_data: Path, tmp_path_factory) -> tuple[Run, int | None]:
    """The app loses its terminal mid-run. Gives the run, once its training has stopped,
    and how the app ended (None: still running 10 s later, and killed)."""
    runs = tmp_path_factory.mktemp("app-runs")
    pid, master = start_app(runs, tiny_data)
    try:
        run = training_run(pid, master, runs)
    finally:
        os.close(master)
    try:
        deadline = time.monotonic() + TIMEOUT
        while run.is_locked():  # the trainer holds the lock until fit() has returned
            assert time.monotonic() < deadline, "training went on after the hang-up"
            time.sleep(0.05)
    finally:
        status = exit_status(pid, None, 10)
    return run, status


def test_lost_terminal_stops_the_app_resumably(app_hung_up: tuple[Run, int | None]) -> None:
    run, _status = app_hung_up
    assert stopped_at_a_batch(run) and run.has_checkpoint()
    [info] = list_runs(run.path.parent)
    epochs = str(info.epochs_completed + 1)
    argv = ["train", "--resume", run.id, "--runs-dir", str(run.path.parent), "--epochs", epochs]
    assert main(argv) == 0
    assert run.state() == "finished"


def test_app_exits_after_losing_its_terminal(app_hung_up: tuple[Run, int | None]) -> None:
    # Textual's output thread dies on the first write to a lost terminal; the app must
    # not then block for ever on its next screen update.
    _run, status = app_hung_up
    assert status is not None and os.WIFEXITED(status), status


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_app_at_a_batch_resumably(
    sig: signal.Signals, tiny_data: Path, tmp_path: Path
) -> None:
    pid, master = start_app(tmp_path, tiny_data)
    try:
        run = training_run(pid, master, tmp_path)
        os.kill(pid, sig)
        status = exit_status(pid, master, TIMEOUT)
    finally:
        os.close(master)
    assert status is not None and os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) == 130  # interrupted, as `fmnist-tui train` says it
    assert stopped_at_a_batch(run) and run.has_checkpoint()


# --- storage -------------------------------------------------------------------------


def fail_writes(monkeypatch, code: int, *, name: str, nth: int) -> None:
    """The ``nth`` atomic write of file ``name`` fails with ``code`` (say ENOSPC)."""
    real = engine.files.atomic_write
    seen = {"n": 0}

    def atomic_write(path: Path, data: bytes) -> None:
        if path.name == name:
            seen["n"] += 1
            if seen["n"] == nth:
                raise OSError(code, os.strerror(code), str(path))
        real(path, data)

    monkeypatch.setattr(engine.files, "atomic_write", atomic_write)


def fail_epoch_line(monkeypatch, code: int, epoch: int) -> None:
    """Appending epoch ``epoch``'s line to metrics.jsonl fails with ``code``."""
    real = Run.append_event

    def append_event(self: Run, event: Any) -> None:
        if isinstance(event, EpochEnd) and event.epoch == epoch:
            raise OSError(code, os.strerror(code), str(self.metrics_path))
        real(self, event)

    monkeypatch.setattr(Run, "append_event", append_event)


STORAGE_FAULTS = {
    # what fails: (how to break it, what the message says failed, the checkpoint kept)
    "checkpoint": (lambda mp, code: fail_writes(mp, code, name="last.pt", nth=3), "save", 1),
    "best-checkpoint": (lambda mp, code: fail_writes(mp, code, name="best.pt", nth=2), "save", 1),
    "metrics": (lambda mp, code: fail_epoch_line(mp, code, 2), "write the metrics log", 1),
    "status": (lambda mp, code: fail_writes(mp, code, name="status.json", nth=4), "update", 2),
}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])
@pytest.mark.parametrize("where", list(STORAGE_FAULTS))
def test_disk_fault_mid_run_is_one_clear_line_and_the_run_resumes(
    where: str, code: int, tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    breaks, action, kept = STORAGE_FAULTS[where]
    with monkeypatch.context() as patch:
        breaks(patch, code)
        assert main(train_argv(tiny_data, tmp_path)) == 1
    out, err = capsys.readouterr()
    assert err == ""
    line = out.strip().splitlines()[-1]
    assert line.startswith("failed: cannot " + action)
    assert os.strerror(code) in line
    assert f"the checkpoint from epoch {kept} is intact and the run can be resumed" in line
    [info] = list_runs(tmp_path)
    assert info.resumable and info.state in ("failed", "interrupted")
    assert load_checkpoint(info.path / "last.pt")["epoch"] == kept
    assert not list(info.path.glob(".*.tmp"))
    # The disk is fine again: the run resumes and completes.
    assert main(["train", "--resume", info.id, "--runs-dir", str(tmp_path)]) == 0
    assert [e.epoch for e in Run(info.path).read_metrics().epochs] == [1, 2, 3]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])
@pytest.mark.parametrize("name", ["config.json", "status.json"])
def test_disk_fault_creating_a_run_is_one_line_and_leaves_nothing(
    name: str, code: int, tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    fail_writes(monkeypatch, code, name=name, nth=1)
    assert main(train_argv(tiny_data, tmp_path)) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"fmnist-tui: error: cannot create a run folder in {tmp_path}: " + os.strerror(
        code
    )
    assert list(tmp_path.iterdir()) == []


def test_read_only_runs_folder_is_one_clear_line(
    tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o555)
    if os.geteuid() == 0:
        # Root ignores the mode bits (as in CI): make mkdir say what it says to a user.
        real_mkdir = Path.mkdir

        def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
            if self.parent == runs:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    try:
        assert main(train_argv(tiny_data, runs)) == 2
    finally:
        runs.chmod(0o755)
    line = one_line(capsys.readouterr().err)
    assert line == f"fmnist-tui: error: cannot create a run folder in {runs}: Permission denied"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])
def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(
    code: int, tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def fsync(_fd: int) -> None:  # the data did not fit: the write fails before the rename
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# --- memory --------------------------------------------------------------------------


def run_out_of_memory(monkeypatch, where: str) -> None:
    """Raise the device's out-of-memory error in the training forward or the evaluation."""
    real = engine.optim.build_loss

    def build_loss(config: TrainConfig):
        loss_fn = real(config)

        def loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            # Evaluation runs under inference mode; a training step records gradients.
            if torch.is_grad_enabled() == (where == "train"):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 48.00 GiB")
            return loss_fn(outputs, target)

        return loss

    monkeypatch.setattr(engine.optim, "build_loss", build_loss)


@pytest.mark.parametrize("where", ["train", "eval"])
def test_out_of_memory_fails_the_run_suggesting_a_smaller_batch(
    where: str, tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    run_out_of_memory(monkeypatch, where)
    argv = train_argv(tiny_data, tmp_path, "--batch-size", "4096", "--eval-batch-size", "8192")
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err == ""
    line = out.strip().splitlines()[-1]
    assert line.startswith("failed: out of memory on cpu with batch size 4096")
    assert "try a smaller batch size (or eval_batch_size)" in line
    [info] = list_runs(tmp_path)
    assert info.state == "failed" and "out of memory" in info.reason


async def test_out_of_memory_in_the_app_is_a_notification_and_the_app_stays_up(
    tmp_path: Path, monkeypatch
) -> None:
    from pane_helpers import Notifications, wait_for

    from tui.app import FmnistApp

    run_out_of_memory(monkeypatch, "train")
    app = FmnistApp(cfg(tmp_path, batch_size=512), data=synthetic(256, 64))
    notes = Notifications()
    async with app.run_test(size=(100, 32), message_hook=notes) as pilot:
        await pilot.pause()
        app.action_start()

        def failed() -> bool:  # idle before the worker starts too: wait for the failure
            return any("out of memory" in m and "smaller batch size" in m for m in notes)

        await wait_for(pilot, lambda: failed() and app.run_state == "idle")
        assert app.is_running
        await pilot.press("1")  # still answering keys
        assert app.current_pane == "data"
    [info] = list_runs(tmp_path / "runs")
    assert info.state == "failed"


async def test_bad_values_in_the_form_show_the_reason_and_block_start(tmp_path: Path) -> None:
    # Every typed-in field gets the bad text the CLI flags are tested with (tests/test_cli.py)
    # and must show the engine's reason under itself and disable Start.
    from textual.widgets import Button, Input, Static

    from tui.app import FmnistApp
    from tui.widgets.config_form import ConfigForm, field_text

    config = cfg(tmp_path)
    app = FmnistApp(config, data=synthetic(256, 64))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        form = app.query_one(ConfigForm)
        start = app.query_one("#start", Button)

        def reason(name: str) -> str:
            return str(app.query_one(f"#error-{name}", Static).render())

        form.editor("lr").focus()
        await pilot.press("ctrl+u", *"nan")  # typed, as a person would
        assert reason("lr").startswith("✗ got nan; expected a number greater than 0")
        assert start.disabled
        # A switch or a list of choices cannot hold a bad value; every other field can.
        typed = [name for name in FIELDS if isinstance(form.editor(name), Input)]
        bad = {name: bad_texts(name)[:4] + bad_texts(name)[-2:] for name in typed}
        for attempt in range(6):  # every field wrong at once, six times over
            for name in typed:
                form.editor(name).value = bad[name][attempt % len(bad[name])]
            await pilot.pause()
            assert start.disabled
            for name in typed:
                with pytest.raises(ConfigError) as expected:
                    parse_text(name, form.editor(name).value)
                problem = expected.value.problems[0].split(":", 1)[1].strip()
                assert reason(name) == "✗ " + problem, name
        for name in typed:
            form.editor(name).value = field_text(FIELDS[name], getattr(config, name))
        await pilot.pause()
        assert all(reason(name) == "" for name in typed)
        assert not start.disabled and app.config == config


# --- bad data through the CLI --------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _images(d: Path) -> Path:
    return d / FILES["train_images"]


def _labels(d: Path) -> Path:
    return d / FILES["train_labels"]


DAMAGE = {
    "truncated": (lambda d: _images(d).write_bytes(_images(d).read_bytes()[:-100]), _images),
    "empty": (lambda d: _images(d).write_bytes(b""), _images),
    "wrong-magic": (lambda d: shutil.copy(_labels(d), _images(d)), _images),
    "trailing-bytes": (
        lambda d: _labels(d).write_bytes(_labels(d).read_bytes() + b"\0"),
        _labels,
    ),
    "counts-differ": (lambda d: write_idx(_labels(d), np.zeros(599, np.uint8)), _images),
    "label-out-of-range": (lambda d: write_idx(_labels(d), np.full(600, 12, np.uint8)), _labels),
    "wrong-size": (lambda d: write_idx(_images(d), np.zeros((600, 32, 32), np.uint8)), _images),
    # Four dimensions of 65536: their product overflows a 64-bit count to 0.
    "huge-header": (
        lambda d: _images(d).write_bytes(bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big") * 4),
        _images,
    ),
    "corrupt-gzip": (
        lambda d: (
            Path(f"{_images(d)}.gz").write_bytes(gzip.compress(_images(d).read_bytes())[:500]),
            _images(d).unlink(),
        ),
        lambda d: Path(f"{_images(d)}.gz"),
    ),
    "not-gzip": (
        lambda d: (Path(f"{_images(d)}.gz").write_bytes(b"plain"), _images(d).unlink()),
        lambda d: Path(f"{_images(d)}.gz"),
    ),
    "missing": (lambda d: _labels(d).unlink(), lambda d: d),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_dataset_through_the_cli_is_one_line_naming_the_file(
    damage: str, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    folder = _copy(tiny_data, tmp_path / "data")
    breaks, named = DAMAGE[damage]
    breaks(folder)
    assert main(train_argv(folder, tmp_path / "runs")) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("fmnist-tui: error: ")
    assert str(named(folder)) in line
    assert not (tmp_path / "runs").exists()  # no run folder for a run that never started


def test_broken_custom_csv_through_the_cli_is_a_headline_and_the_list(
    tmp_path: Path, capsys
) -> None:
    # More in tests/test_custom_data.py; here, what the command prints.
    images = tmp_path / "images"
    images.mkdir()
    (images / "junk.png").write_bytes(b"not an image")
    csv = tmp_path / "labels.csv"
    csv.write_text("filename,label\nmissing.png,0\njunk.png,x\n../../etc/passwd,1\nlonely\n")
    argv = ["train", "--data", "custom", "--custom-csv", str(csv), "--custom-images", str(images)]
    assert main([*argv, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    head, *problems = err.strip().splitlines()
    assert head == f"fmnist-tui: error: custom dataset {csv}: 4 problems:"
    assert [p.split(":")[0] for p in problems] == [f"  - labels.csv row {n}" for n in (2, 3, 4, 5)]
    assert "outside the image folder" in problems[2]


# --- bad values through a config file --------------------------------------------------

CONFIG_FILES = [
    # (suffix, content, what the message must name)
    (".json", '{"epochs": "3"}', "epochs: got '3'"),
    (".json", '{"lr": NaN}', "lr: got nan"),
    (".json", '{"lr": Infinity}', "lr: got inf"),
    (".json", '{"lr": -Infinity}', "lr: got -inf"),
    (".json", '{"batch_size": 1e400}', "batch_size: got inf"),
    (".json", '{"batch_size": 123456789012345678901234567890}', "batch_size"),
    (".json", '{"hidden_sizes": []}', "hidden_sizes"),
    (".json", '{"runs_dir": ""}', "runs_dir"),
    (".json", '{"model": "\\u001b[31mmlp"}', "model"),
    (".json", '{"augment": "yes please"}', "augment"),
    (".json", '{"optimizer": null}', "optimizer"),
    (".json", '{"lr": {"value": 1}}', "lr"),
    (".json", '["lr", 1]', "expected a table of settings"),
    (".json", "", "not valid JSON"),
    (".json", "lr: 0.1", "not valid JSON"),
    (".toml", 'epochs = "3"', "epochs: got '3'"),
    (".toml", "lr = nan", "lr: got nan"),
    (".toml", "lr = -inf", "lr: got -inf"),
    (".toml", "epochs = 99999999999999999", "epochs"),
    (".toml", "hidden_sizes = []", "hidden_sizes"),
    (".toml", 'device = ""', "device"),
    (".toml", "dropout = 2024-01-01", "dropout"),
    (".toml", "[model]\nname = 'mlp'", "model"),
    (".toml", "lr = 0.1\nlr = 0.2", "not valid TOML"),
    (".toml", "this is not toml", "not valid TOML"),
    (".toml", "learning_rate = 0.1", "unknown setting 'learning_rate'"),
]


@pytest.mark.parametrize(("suffix", "content", "named"), CONFIG_FILES)
def test_bad_config_file_through_the_cli_is_one_line_naming_file_and_field(
    suffix: str, content: str, named: str, tmp_path: Path, capsys
) -> None:
    # Field-by-field checks of TrainConfig.load are in tests/test_config.py.
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    assert main(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"fmnist-tui: error: {path}: ")
    assert named in line
    assert not (tmp_path / "runs").exists()


# --- security --------------------------------------------------------------------------


class _Marker:
    """Pickled, this would create ``path`` when loaded by a reader that runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml", ".pkl", ""])
@pytest.mark.parametrize("payload", ["pickle-binary", "pickle-ascii", "yaml-tag"])
def test_config_file_can_never_run_code(payload: str, suffix: str, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / f"config{suffix}"
    if payload == "yaml-tag":
        path.write_text(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    else:
        path.write_bytes(pickle.dumps(_Marker(marker), protocol=0 if "ascii" in payload else 4))
    assert main(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(path) in line
    if payload == "pickle-binary":
        assert line.endswith(": not a text file")
    elif suffix not in (".json", ".toml"):
        assert line.endswith("; config files are JSON or .toml")
    assert not marker.exists()


def test_checkpoint_that_would_run_code_is_refused_by_every_command(tmp_path: Path, capsys) -> None:
    # Loading such a file is tests/test_runs.py; here, what each command says.
    marker = tmp_path / "ran"
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    evil = {"format": "fmnist-tui-checkpoint", "version": 1, "x": _Marker(marker)}
    for path in (run.last_path, run.best_path):
        torch.save(evil, path)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    for argv in (
        ["train", "--resume", run.id, "--epochs", "2"],
        ["predict", run.id, "--count", "2"],
        ["export", run.id, "--out", str(tmp_path / "out")],
    ):
        assert main([*argv, *runs]) == 2, argv
        assert "refused: the file holds objects that could run code" in one_line(
            capsys.readouterr().err
        )
    assert not marker.exists()


def test_run_ids_never_reach_outside_the_runs_folder(tmp_path: Path, monkeypatch) -> None:
    runs = tmp_path / "runs"
    inside = Run.create(cfg(tmp_path, runs_dir=str(runs)))
    outside = Run.create(cfg(tmp_path, runs_dir=str(tmp_path / "elsewhere")))
    # From here these refs spell no folder; joined to the runs folder, the first would
    # reach the run outside it (it did, before ids were kept to the runs folder).
    (tmp_path / "cwd" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd" / "deep")
    for ref in [
        f"../elsewhere/{outside.id}",
        f"{inside.id}/../../elsewhere/{outside.id}",
        "..",
        ".",
        "",
        "*",
        "[0-9]*",
    ]:
        with pytest.raises(CheckpointError):
            Run.open(ref, runs)
    # An id or its prefix finds the run inside; a path the user spells is theirs to give.
    assert Run.open(inside.id[:-3], runs).path == inside.path
    assert Run.open(str(outside.path), runs).path == outside.path


def test_resume_by_a_folder_that_is_not_a_run_is_one_clear_line(tmp_path: Path, capsys) -> None:
    # As a kill while a run was being created leaves it: a folder with no config.json.
    folder = tmp_path / "20260101-000000-mlp-dead"
    folder.mkdir()
    assert main(["train", "--resume", str(folder), "--runs-dir", str(tmp_path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"fmnist-tui: error: {folder} is not a run folder: it has no config.json"


def test_resume_without_a_checkpoint_says_it_cannot(tmp_path: Path) -> None:
    run = Run.create(cfg(tmp_path))
    with pytest.raises(CheckpointError, match="cannot be resumed: it stopped before its first"):
        Trainer.resume(run, data=synthetic()).fit()
    [info] = list_runs(tmp_path / "runs")
    assert not info.resumable


def test_resume_with_missing_data_leaves_the_run_as_it_was(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    argv = ["train", "--resume", run.id, "--runs-dir", str(tmp_path / "runs")]
    config = json.loads(run.config_path.read_text())
    config["data_dir"] = str(data)  # a data folder that has gone away
    run.config_path.write_text(json.dumps(config))
    assert main([*argv, "--epochs", "2"]) == 2
    assert str(data) in one_line(capsys.readouterr().err)
    assert run.state() == "finished"


def test_fp16_on_a_machine_without_cuda_is_one_clear_line(
    tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    # Valid as a config (auto may mean cuda); refused once auto turns out to mean cpu.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    argv = train_argv(tiny_data, tmp_path, "--precision", "fp16", "--device", "auto")
    assert main(argv) == 2
    assert "fp16 needs a cuda device" in one_line(capsys.readouterr().err)
