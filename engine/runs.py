"""Run folders: one per training run, written so a kill at any moment leaves it usable.

A run folder holds ``config.json``, ``metrics.jsonl`` (one event per line, appended and
flushed as it goes), ``status.json``, and the ``last.pt`` / ``best.pt`` checkpoints.
Every file but the metrics log is replaced atomically (``engine.files``), with the
mode the umask gives. The process training a run holds an exclusive ``flock`` on the
run's folder itself (which no one can delete from under it, unlike a lock file), so
a run whose trainer died (lock free, status still "running") is told apart from a
live one, by anyone who can read the folder. Files are read without following
symlinks, blocking on FIFOs, or reading past a size cap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import secrets
import shutil
import socket
import stat
import sys
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from engine import files
from engine.checkpoint import encode_checkpoint, load_checkpoint
from engine.config import TrainConfig
from engine.errors import CheckpointError
from engine.events import Event
from engine.fields import model_label, shown
from engine.metrics import MetricsFollower, MetricsLog, parse_events
from engine.own_model import SOURCE_FILE
from engine.state import DISK_STATES, RunState
from engine.textlog import command_for

# MetricsFollower, MetricsLog and parse_events live in engine.metrics; imported from here too.
__all__ = [
    "MetricsFollower",
    "MetricsLog",
    "Run",
    "RunInfo",
    "RunListing",
    "list_runs",
    "load_checkpoint",
    "parse_events",
    "runs_folder_problem",
]

_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _not_a_folder(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be made a folder: the first part of it that is a broken symbolic
    link or a file (mkdir only says "File exists" or "Not a directory"), else ``exc``."""
    return _bad_part(path) or str(exc.strerror or exc)


def runs_folder_problem(runs_dir: str | Path) -> str | None:
    """Why ``runs_dir`` cannot be a runs folder (``it is a symbolic link to T, which does not
    exist; ...``, ``it is a file, not a folder; ...``), or None when it is a folder or does
    not exist yet (a runs folder with no runs in it)."""
    path = Path(runs_dir).expanduser()
    return None if path.is_dir() else _bad_part(path)


def _bad_part(path: Path) -> str | None:
    for part in [*reversed(path.parents), path]:
        if part.is_symlink() and not part.exists():
            where = "it" if part == path else str(part)
            return (
                f"{where} is a symbolic link to {os.readlink(part)}, which does not exist; "
                "create that folder, or give another runs folder"
            )
        if part.exists() and not part.is_dir():
            where = "it" if part == path else str(part)
            return f"{where} is a file, not a folder; give another runs folder"
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Run:
    """One run folder. Create with ``Run.create``; open an existing one with ``Run.open``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._metrics_file: BinaryIO | None = None
        self._lock_fd: int | None = None

    @property
    def id(self) -> str:
        """The folder's name (``YYYYmmdd-HHMMSS-model[-name]-xxxx`` when made here)."""
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def last_path(self) -> Path:
        return self.path / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.path / "best.pt"

    @property
    def control_path(self) -> Path:
        return self.path / "control.json"

    @property
    def log_path(self) -> Path:
        return self.path / "output.log"

    # --- creating and opening -----------------------------------------------------

    @classmethod
    def create(cls, config: TrainConfig, state: RunState = RunState.RUNNING) -> Run:
        """Make a new, uniquely named folder under ``config.runs_dir`` and write the config.

        Raises ``CheckpointError`` if the folder cannot be made or written.
        """
        runs_dir = Path(config.runs_dir).expanduser()
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create runs folder {runs_dir}: {_not_a_folder(runs_dir, exc)}"
            ) from None
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        label = f"-{config.name}" if config.name else ""
        for _ in range(100):
            model = model_label(config.model)  # a factory reference: the factory's name
            path = runs_dir / f"{stamp}-{model}{label}-{secrets.token_hex(2)}"
            try:
                path.mkdir()  # exclusive: two processes can never share a folder
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise CheckpointError(
                    f"cannot create a run folder in {runs_dir}: {exc.strerror or exc}"
                ) from None
        else:  # pragma: no cover - needs 100 collisions of a random suffix
            raise CheckpointError(f"could not find a free run name in {runs_dir}")
        run = cls(path)
        try:
            files.atomic_write(run.config_path, config.to_json().encode())
            run.write_status(state, epochs=config.epochs, epochs_completed=0)
        except OSError as exc:
            # A folder without its config is no run at all: leave nothing behind.
            shutil.rmtree(path, ignore_errors=True)
            raise CheckpointError(
                f"cannot create a run folder in {runs_dir}: {exc.strerror or exc}"
            ) from None
        return run

    def write_config(self, config: TrainConfig) -> None:
        """Replace ``config.json`` with ``config`` (atomically; ``OSError`` if it cannot)."""
        files.atomic_write(self.config_path, config.to_json().encode())

    @classmethod
    def open(cls, ref: str | Path, runs_dir: str | Path = "runs") -> Run:
        """A run by folder path, by id under ``runs_dir``, or by a unique start or end of
        an id (``20261203-075411``, ``075411-mlp-de7b``, ``de7b``; a leading ``…`` or
        ``...``, as a cut id is shown, is dropped).

        An id, start or end names a folder directly inside ``runs_dir``: one holding a path
        separator or ``..`` is only ever taken as the path it spells, so an id can never
        reach outside the runs folder. Raises ``CheckpointError`` if there is no such run,
        or if the text starts or ends several ids (naming a few of them).
        """
        path = Path(ref).expanduser()
        base = Path(runs_dir).expanduser()
        text = str(ref)
        # A run folder is a real folder: a symbolic link, as a path or as an id in the
        # runs folder, would lead writes (and a delete) to wherever it points.
        _refuse_link(path, base)
        if os.path.lexists(path / "config.json"):
            return cls(path)
        if not text or "/" in text or os.sep in text or text in (".", ".."):
            if path.is_dir():
                raise CheckpointError(f"{path} is not a run folder: it has no config.json")
            raise CheckpointError(f"no run {shown(text)}: no such folder")
        part = _uncut(text)
        if part != text and (not part or part in (".", "..")):
            raise CheckpointError(f"no run {shown(text)}: give a run id or the end of one")
        _refuse_link(base / part, base)
        matches = [r for r in iter_runs(base) if r.id.startswith(part) or r.id.endswith(part)]
        exact = [run for run in matches if run.id == part]
        if exact or len(matches) == 1:
            return (exact or matches)[0]
        if matches:
            names = ", ".join(r.id for r in matches[:5])
            more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
            raise CheckpointError(
                f"run {shown(text)} is ambiguous in {base}: it could be {names}{more}; "
                "give more of the id"
            )
        raise CheckpointError(f"no run {shown(text)} in {base}")

    def config(self) -> TrainConfig:
        """The run's settings; ``CheckpointError`` if ``config.json`` is missing or unusable."""
        try:
            text = files.read_text(self.config_path)
        except files.UnsafeFileError as exc:
            with contextlib.suppress(OSError):
                mode = os.lstat(self.config_path).st_mode
                if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
                    raise CheckpointError(
                        f"{self.path}: cannot read its config.json: {self.config_path} is "
                        f"{_file_kind(mode)}, and a run only reads and writes regular files "
                        "inside its folder; remove it or put the real file there"
                    ) from None
            raise CheckpointError(
                f"{self.path}: cannot read its config.json ({exc.strerror or exc})"
            ) from None
        except OSError as exc:
            raise CheckpointError(
                f"{self.path}: cannot read its config.json ({exc.strerror or exc})"
            ) from None
        try:
            return TrainConfig.from_stored(json.loads(text))
        # ConfigError is a ValueError, as is bad JSON; absurd nesting is a RecursionError.
        except (ValueError, RecursionError) as exc:
            raise CheckpointError(f"{self.path}: its config.json is unusable: {exc}") from None

    # --- the lock -------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the run's lock for this process; ``CheckpointError`` if another holds it."""
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | _DIRECTORY)
        except OSError as exc:
            raise CheckpointError(f"cannot open run {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            status = self.read_status()
            pid = status.get("pid")
            who = f" (pid {pid})" if isinstance(pid, int) and not isinstance(pid, bool) else ""
            attach = command_for("attach", self.id, self.path)
            if status.get("paused") is True:
                raise CheckpointError(
                    f"run {self.id} is paused in another process{who}; resume it with `{attach}`"
                ) from None
            raise CheckpointError(
                f"run {self.id} is being trained by another process{who}; `{attach}` watches it"
            ) from None
        try:
            self.check_writable()
            self.check_files()
        except CheckpointError:
            os.close(fd)
            raise
        self._lock_fd = fd

    def check_files(self) -> None:
        """Raise ``CheckpointError`` if any file this run writes or reads (``config.json``,
        ``status.json``, ``metrics.jsonl``, the checkpoints, ``control.json``,
        ``output.log``) is there but not a regular file: a symlink (which could lead a
        write out of the folder), a FIFO, a folder or a device. Missing files are fine."""
        for path in self.file_paths:
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CheckpointError(
                    f"run {self.id} cannot be trained: {path}: {exc.strerror or exc}"
                ) from None
            if not stat.S_ISREG(mode):
                raise CheckpointError(
                    f"run {self.id} cannot be trained: {path} is {_file_kind(mode)}, and a "
                    "run only reads and writes regular files inside its folder; remove it "
                    "or put the real file there"
                )

    @property
    def file_paths(self) -> tuple[Path, ...]:
        """Every file a run folder may hold, by path (whether it exists or not)."""
        return (
            self.config_path,
            self.status_path,
            self.metrics_path,
            self.last_path,
            self.best_path,
            self.control_path,
            self.log_path,
            self.path / SOURCE_FILE,
        )

    def check_writable(self) -> None:
        """Raise ``CheckpointError`` ("cannot write in DIR: Read-only file system", or
        "Permission denied") if this process cannot write in the run's folder: a
        read-only mount or view of it, or another user's folder. Writes nothing."""
        problem = files.write_problem(self.path)
        if problem:
            raise CheckpointError(f"cannot write in {self.path}: {problem}")

    def release(self) -> None:
        """Let go of the lock (if held) and close the metrics log."""
        self.close_metrics()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def is_locked(self) -> bool:
        """True while some process trains this run (probed read-only: anyone may ask)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | _DIRECTORY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def remove_temp_files(self) -> None:
        """Delete what a kill inside ``atomic_write`` left; call only holding the lock."""
        for leftover in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    # --- status ---------------------------------------------------------------------

    def write_status(self, state: RunState | str, **fields: Any) -> None:
        """Update ``status.json``: ``state``, this process's pid and host, and ``fields``.

        ``ValueError`` for a state not in ``RunState``; ``OSError`` if it cannot be written.
        """
        state = RunState(state)
        status = self.read_status()
        status.update(fields)
        status.update(state=state.value, host=socket.gethostname(), updated=_now())
        status.setdefault("pid", os.getpid())
        if state != RunState.STARTING:
            status["pid"] = os.getpid()
        status.setdefault("started", _now())
        files.atomic_write(self.status_path, (json.dumps(status, indent=2) + "\n").encode())

    def read_status(self) -> dict[str, Any]:
        """``status.json`` as a dict; {} when missing, unreadable, not JSON or not an object."""
        return self._status()[0]

    def status_problem(self) -> str:
        """Why ``status.json`` cannot be read here ("status.json: Permission denied", "...:
        not a regular file"), or "" when it can, or is simply missing or junk."""
        return self._status()[1]

    def _status(self) -> tuple[dict[str, Any], str]:
        try:
            raw = files.read_bytes(self.status_path)
        except FileNotFoundError:
            return {}, ""
        except OSError as exc:  # another user's 0600 file, a FIFO, a symlink, a device
            return {}, f"{self.status_path.name}: {exc.strerror or exc}"
        try:
            status = json.loads(raw)
        except (ValueError, RecursionError):
            return {}, ""
        return (status, "") if isinstance(status, dict) else ({}, "")

    def state(self) -> RunState:
        """The run's state on disk; a "running" or "starting" run whose trainer is gone is
        interrupted. A run whose ``status.json`` cannot be read here (another user's, a
        FIFO) is ``RUNNING`` while its lock is held (the lock is probed read-only, so
        anyone may ask), else ``UNREADABLE``, never interrupted."""
        status, problem = self._status()
        if problem or not status:  # unreadable here, or missing: the lock still tells
            if self.is_locked():
                return RunState.RUNNING
            return RunState.UNREADABLE if problem else RunState.INTERRUPTED
        state = RunState.parse(status.get("state"), RunState.INTERRUPTED)
        if state not in DISK_STATES:
            return RunState.INTERRUPTED
        if state == RunState.RUNNING:
            if not self.is_locked():
                return RunState.INTERRUPTED
            return RunState.PAUSED if status.get("paused") is True else state
        if state == RunState.STARTING and not self.is_locked():
            # Not yet locked: the process that asked for it must still be alive, here.
            pid = _count(status.get("pid"), 0)
            here = status.get("host") == socket.gethostname()
            return RunState.STARTING if here and pid_alive(pid) else RunState.INTERRUPTED
        return state

    # --- metrics --------------------------------------------------------------------

    def append_event(self, event: Event) -> None:
        """Append ``event`` as one JSON line to ``metrics.jsonl`` and flush it (not fsync);
        ``OSError`` (``UnsafeFileError`` if the log is a symlink or not a file)."""
        if self._metrics_file is None:
            self._metrics_file = files.open_append(self.metrics_path)
        self._metrics_file.write((json.dumps(event.to_dict()) + "\n").encode())
        self._metrics_file.flush()

    def sync_metrics(self) -> int:
        """Make the log durable; returns its length in bytes (the resume point); ``OSError``."""
        if self._metrics_file is not None:
            self._metrics_file.flush()
            os.fsync(self._metrics_file.fileno())
        try:
            return files.regular_size(self.metrics_path)
        except FileNotFoundError:
            return 0

    def truncate_metrics(self, size: int) -> int:
        """Drop events logged after the checkpoint being resumed from.

        Cuts at the last complete line at or before ``size`` bytes and never extends
        the file; returns where it cut (less than ``size`` when the log had changed).
        Raises ``OSError`` (``UnsafeFileError`` for a symlink, a non-file or a log over
        ``files.LOG_FILE_LIMIT`` bytes).
        """
        self.close_metrics()
        try:
            raw = files.read_bytes(self.metrics_path, files.LOG_FILE_LIMIT)
        except FileNotFoundError:
            return 0
        head = raw[: max(size, 0)]
        cut = head.rfind(b"\n") + 1
        if cut < len(raw):
            files.truncate(self.metrics_path, cut)
        return cut

    def close_metrics(self) -> None:
        """Close the log if this object has it open for appending (errors ignored)."""
        if self._metrics_file is not None:
            with contextlib.suppress(OSError):
                self._metrics_file.close()
            self._metrics_file = None

    def read_metrics(self) -> MetricsLog:
        """Every event in the log; a torn last line (a kill mid-write) is skipped and reported,
        and lines that are not events are counted."""
        try:
            raw = files.read_bytes(self.metrics_path, files.LOG_FILE_LIMIT)
        except OSError:
            return MetricsLog([], False, 0)
        torn = bool(raw) and not raw.endswith(b"\n")  # a complete log ends with a newline
        whole = raw[: raw.rfind(b"\n") + 1] if torn else raw
        events, bad = parse_events(whole)
        return MetricsLog(events, torn, bad)

    # --- checkpoints ----------------------------------------------------------------

    def save_checkpoint(self, state: dict[str, Any], *, best: bool = False) -> Path:
        """Write ``state`` (tensors and plain data) to ``last.pt``, and first to ``best.pt``
        when ``best``, atomically; returns last.pt's path. ``OSError`` if the disk refuses."""
        data = encode_checkpoint(state)
        # best.pt first: a kill between the two leaves the older last.pt, and resuming
        # from it redoes the epoch and writes best.pt again, so the two never disagree.
        if best:
            files.atomic_write(self.best_path, data)
        files.atomic_write(self.last_path, data)
        return self.last_path

    def has_checkpoint(self) -> bool:
        """Whether ``last.pt`` exists as a regular file (not a symlink): resumable."""
        return self.last_path.is_file() and not self.last_path.is_symlink()

    def load_checkpoint(self, which: str = "last") -> dict[str, Any]:
        """The ``best`` (falling back to ``last``) or ``last`` checkpoint; ``CheckpointError``."""
        return load_checkpoint(self.checkpoint_path(which)[0])

    def checkpoint_path(self, which: str = "best") -> tuple[Path, str]:
        """The checkpoint ``which`` ("best" or "last") names, and why ``best.pt`` was passed
        over ("" when it was not): for "best", ``last.pt`` stands in when ``best.pt`` is
        missing, or a FIFO, folder, symbolic link or device (never read), and ``last.pt``
        is a regular file; the reason says which ("is a FIFO", "is missing")."""
        if which != "best":
            return self.last_path, ""
        try:
            mode = os.lstat(self.best_path).st_mode
        except FileNotFoundError:
            why = "is missing"
        else:
            if stat.S_ISREG(mode):
                return self.best_path, ""
            why = f"is {_file_kind(mode)}, not a regular file"
        if not self.has_checkpoint():
            return self.best_path, ""  # nothing to stand in: the error names best.pt
        return self.last_path, why

    # --- cross-process control ------------------------------------------------------

    def request(self, command: str) -> None:
        """Ask the process training this run to pause, resume or stop (``RemoteControl``);
        ``ValueError`` for another command, ``OSError`` if it cannot be written."""
        from engine.control import RemoteControl

        RemoteControl(self).request(command)

    def read_request(self) -> tuple[str, str] | None:
        """The latest (command, nonce) written by ``request``, if any."""
        from engine.control import read_request

        request = read_request(self)
        if "command" in request and "nonce" in request:
            return request["command"], request["nonce"]
        return None

    def delete(self) -> None:
        """Remove the folder; ``CheckpointError`` while a process trains it, ``OSError``
        if it cannot be removed."""
        if self.path.is_symlink():
            raise CheckpointError(
                f"cannot delete {self.path}: it is a symbolic link to "
                f"{os.readlink(self.path)}, not a run folder; nothing was deleted"
            )
        if self.is_locked():
            raise CheckpointError(f"run {self.id} is training now; stop it before deleting")
        shutil.rmtree(self.path)


@dataclass(frozen=True)
class RunInfo:
    """A row of the runs table: ``state`` as ``Run.state`` tells it, ``config`` None when
    unusable. Accuracies are fractions (0..1), None before any epoch ends (or, for
    ``best_test_accuracy``, in a status written before it was kept): ``best_accuracy``
    is the best epoch's on the split that chose it (``chosen_on``: "validation", or
    "test" for a run without a validation split), ``best_test_accuracy`` that epoch's
    on the test split, and ``macro_f1`` that epoch's macro-averaged F1 on the test split
    (``engine.classification``; None in a status written before it was kept)."""

    id: str
    path: Path
    started: str
    state: RunState
    config: TrainConfig | None
    epochs_completed: int
    epochs: int
    best_accuracy: float | None
    reason: str
    resumable: bool
    best_test_accuracy: float | None = None
    chosen_on: str = "test"
    macro_f1: float | None = None


# Why a run stopped, as status.json records it, in words for the runs table.
STOP_REASONS = {
    "stop": "stopped by hand",
    "quit": "stopped when the app quit",
    "interrupt": "stopped by Ctrl-C or a signal",
    "detach": "stopped to detach",
}


def reason_text(reason: str) -> str:
    """``status.json``'s reason in words ("quit" -> "stopped when the app quit"); any
    other reason (early stopping's, a failure's) as it is."""
    return STOP_REASONS.get(reason, reason)


def data_size(config: TrainConfig | None) -> str:
    """How many training images a run used, short: "5k" for ``train_subset`` 5,000,
    "1.5k", "800", "all" for the whole split, "?" when the config is unreadable."""
    if config is None:
        return "?"
    count = config.train_subset
    if count <= 0:
        return "all"
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}".removesuffix(".0") + "k"
    return f"{count / 1_000_000:.1f}".removesuffix(".0") + "M"


def run_info(run: Run, config: TrainConfig | None = None, *, read_config: bool = True) -> RunInfo:
    """``run``'s row, from its status and config; junk in either reads as unknown.
    With ``read_config`` False, ``config`` is the run's settings already read (None:
    unreadable) and ``config.json`` is not read again."""
    status = run.read_status()
    problem = run.status_problem()
    if read_config:
        try:
            config = run.config()
        except CheckpointError:
            config = None
    best = status.get("best_accuracy")
    best_test = status.get("best_test_accuracy")
    chosen_on = "validation" if config is not None and config.val_fraction > 0 else "test"
    if chosen_on == "test" and best_test is None:  # recorded before it was kept: the same
        best_test = best
    return RunInfo(
        id=run.id,
        path=run.path,
        started=str(status.get("started", "")),
        state=run.state(),
        config=config,
        epochs_completed=_count(status.get("epochs_completed"), 0),
        epochs=_count(status.get("epochs"), config.epochs if config else 0),
        best_accuracy=_fraction(best),
        reason=f"status unreadable ({problem})" if problem else str(status.get("reason", "")),
        resumable=run.has_checkpoint() and config is not None and not problem,
        best_test_accuracy=_fraction(best_test),
        chosen_on=chosen_on,
        macro_f1=_fraction(status.get("best_macro_f1")),
    )


def _refuse_link(path: Path, runs_dir: Path) -> None:
    """``CheckpointError`` if ``path`` (a run named by path or by id) is a symbolic link."""
    if path.is_symlink():
        raise CheckpointError(
            f"{path} is a symbolic link to {os.readlink(path)}, and a run folder must be "
            f"a real folder inside the runs folder ({runs_dir}); "
            "give the path of the folder it points to, or move that folder into the runs folder"
        )


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words ("a symbolic link", "a FIFO", ...)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _fraction(value: Any) -> float | None:
    """An accuracy from status.json, which a person may have edited: junk reads as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _count(value: Any, default: int) -> int:
    """A count from status.json, which a person may have edited: junk reads as the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _uncut(text: str) -> str:
    """``text`` without the leading ``…`` (or ``...``) that marks an id cut to fit."""
    for mark in ("…", "..."):
        if text.startswith(mark):
            return text[len(mark) :]
    return text


def iter_runs(runs_dir: str | Path) -> Iterator[Run]:
    """The run folders (those with a ``config.json``) directly in ``runs_dir``, by name;
    none if it is missing."""
    base = Path(runs_dir).expanduser()
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        # Never a symbolic link (a run listed twice, or one written outside the runs
        # folder); a config.json that is not a regular file is still a run, said so.
        if path.is_dir() and not path.is_symlink() and os.path.lexists(path / "config.json"):
            yield Run(path)


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run under ``runs_dir``, newest first."""
    return sorted((run_info(r) for r in iter_runs(runs_dir)), key=lambda r: r.id, reverse=True)


# A file's identity and change marks: (inode, size, mtime in ns); None when missing.
_Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class _Cached:
    config_stamp: _Stamp
    config: TrainConfig | None
    stamps: tuple[_Stamp, _Stamp]  # status.json, last.pt
    info: RunInfo


class RunListing:
    """The runs under ``runs_dir``, read again incrementally: a folder's files are read
    only when its ``config.json``, ``status.json`` or ``last.pt`` changed (inode, size
    or mtime) since the last pass; otherwise its row is the same ``RunInfo`` object
    as before. A run that status.json says is training has its lock probed every pass
    (a trainer that died changes no file). Safe to call from one thread at a time per
    listing; the counters may be read from any thread.

    ``reads``: folders read on the last pass; ``passes``: passes begun;
    ``in_flight`` / ``most_in_flight``: passes running now / at most at once;
    ``last_seconds``: the wall time of the last pass run to its end.
    """

    def __init__(self, runs_dir: str | Path) -> None:
        self.runs_dir = Path(runs_dir).expanduser()
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.reads = 0
        self.passes = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.last_seconds = 0.0

    def batches(self, first: int = 50, size: int = 1000) -> Generator[list[RunInfo], None, None]:
        """Every run, newest first (by id), as growing lists: the first ``first`` runs,
        then ``size`` more each time; the last list yielded holds them all (an empty one
        for no runs). ``OSError`` if the runs folder exists but cannot be listed. A
        caller that stops early leaves the cache as it was for the folders not read."""
        with self._lock:
            self.passes += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        start = time.perf_counter()
        try:
            self.reads = 0
            names = self._names()
            infos: list[RunInfo] = []
            cache: dict[str, _Cached] = {}
            step = first
            for name in names:
                entry = self._entry(name)
                if entry is None:
                    continue
                cache[name] = entry
                infos.append(entry.info)
                if len(infos) >= step:
                    yield list(infos)
                    step = len(infos) + size
            self._cache = cache
            self.last_seconds = time.perf_counter() - start
            yield infos
        finally:
            with self._lock:
                self.in_flight -= 1

    def read(self) -> list[RunInfo]:
        """Every run, newest first, at once (``batches``' last list)."""
        *_, infos = self.batches(first=sys.maxsize)
        return infos

    def _names(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        with os.scandir(self.runs_dir) as entries:
            # Never a symbolic link (a run listed twice, or one written outside the folder).
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        return sorted(names, reverse=True)

    def _entry(self, name: str) -> _Cached | None:
        run = Run(self.runs_dir / name)
        config_stamp = _stamp(run.config_path)
        if config_stamp is None and not os.path.lexists(run.config_path):
            return None  # not a run folder
        stamps = (_stamp(run.status_path), _stamp(run.last_path))
        cached = self._cache.get(name)
        if cached is not None and cached.config_stamp == config_stamp and cached.stamps == stamps:
            info = cached.info
            if info.state.live or info.state == RunState.STARTING:
                state = run.state()  # the lock tells whether its trainer still lives
                if state != info.state:
                    info = replace(info, state=state)
                    return replace(cached, info=info)
            return cached
        self.reads += 1
        if cached is not None and cached.config_stamp == config_stamp:
            config = cached.config
        else:
            try:
                config = run.config()
            except CheckpointError:
                config = None
        info = run_info(run, config, read_config=False)
        return _Cached(config_stamp, config, stamps, info)
