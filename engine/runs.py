"""Run folders: one per training run, written so a kill at any moment leaves it usable.

A run folder holds ``config.json``, ``metrics.jsonl`` (one event per line, appended and
flushed as it goes), ``status.json``, and the ``last.pt`` / ``best.pt`` checkpoints.
Every file but the metrics log is replaced atomically (temporary file, fsync, rename).
A process training a run holds an exclusive lock on ``lock`` in its folder, so a
crashed run (lock free, status still "running") is told apart from a live one.
Checkpoints are loaded with ``weights_only=True``: a checkpoint can never run code.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import TrainConfig
from engine.errors import CheckpointError, ConfigError
from engine.events import EpochEnd, Event, event_from_dict

CHECKPOINT_FORMAT = "fmnist-tui-checkpoint"
CHECKPOINT_VERSION = 1
STATES = ("running", "finished", "failed", "interrupted")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class MetricsLog:
    """What ``metrics.jsonl`` holds: its events, and whether its last line was torn."""

    events: list[Event]
    torn_line: bool
    bad_lines: int

    @property
    def epochs(self) -> list[EpochEnd]:
        return [e for e in self.events if isinstance(e, EpochEnd)]


class Run:
    """One run folder. Create with ``Run.create``; open an existing one with ``Run.open``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._metrics_file: Any = None
        self._lock_fd: int | None = None

    @property
    def id(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    status_path = property(lambda self: self.path / "status.json")
    last_path = property(lambda self: self.path / "last.pt")
    best_path = property(lambda self: self.path / "best.pt")
    control_path = property(lambda self: self.path / "control.json")
    log_path = property(lambda self: self.path / "output.log")

    # --- creating and opening -----------------------------------------------------

    @classmethod
    def create(cls, config: TrainConfig) -> Run:
        """Make a new, uniquely named folder under ``config.runs_dir`` and write the config."""
        runs_dir = Path(config.runs_dir).expanduser()
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create runs folder {runs_dir}: {exc.strerror or exc}"
            ) from None
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        label = f"-{config.name}" if config.name else ""
        for _ in range(100):
            path = runs_dir / f"{stamp}-{config.model}{label}-{secrets.token_hex(2)}"
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
            atomic_write(run.config_path, config.to_json().encode())
            run.write_status("running", epochs=config.epochs, epochs_completed=0)
        except OSError as exc:
            # A folder without its config is no run at all: leave nothing behind.
            shutil.rmtree(path, ignore_errors=True)
            raise CheckpointError(
                f"cannot create a run folder in {runs_dir}: {exc.strerror or exc}"
            ) from None
        return run

    @classmethod
    def open(cls, ref: str | Path, runs_dir: str | Path = "runs") -> Run:
        """A run by folder path, by id under ``runs_dir``, or by a unique id prefix.

        An id or prefix names a folder directly inside ``runs_dir``: one holding a path
        separator or ``..`` is only ever taken as the path it spells, so an id can never
        reach outside the runs folder.
        """
        path = Path(ref).expanduser()
        if (path / "config.json").is_file():
            return cls(path)
        base = Path(runs_dir).expanduser()
        text = str(ref)
        if not text or "/" in text or os.sep in text or text in (".", ".."):
            if path.is_dir():
                raise CheckpointError(f"{path} is not a run folder: it has no config.json")
            raise CheckpointError(f"no run {text!r}: no such folder")
        matches = [run for run in iter_runs(base) if run.id.startswith(text)]
        exact = [run for run in matches if run.id == text]
        if exact or len(matches) == 1:
            return (exact or matches)[0]
        if matches:
            names = ", ".join(r.id for r in matches[:5])
            raise CheckpointError(f"run {text!r} is ambiguous in {base}: {names}")
        raise CheckpointError(f"no run {text!r} in {base}")

    def config(self) -> TrainConfig:
        try:
            return TrainConfig.load(self.config_path)
        except ConfigError as exc:
            raise CheckpointError(f"{self.path}: its config.json is unusable: {exc}") from None

    # --- the lock -------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the run's lock for this process; ``CheckpointError`` if another holds it."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointError(f"run {self.id} is being trained by another process") from None
        self._lock_fd = fd

    def remove_temp_files(self) -> None:
        """Delete what a kill inside ``atomic_write`` left; call only holding the lock."""
        for name in ("config.json", "status.json", "last.pt", "best.pt"):
            for leftover in self.path.glob(f".{name}.*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    @property
    def lock_fd(self) -> int:
        """The descriptor holding the lock (for handing it to a child process)."""
        if self._lock_fd is None:
            raise CheckpointError(f"run {self.id} is not locked by this process")
        return self._lock_fd

    def adopt_lock(self, fd: int) -> None:
        """Hold the lock through ``fd``, inherited from the process that took it."""
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.close_metrics()

    def is_locked(self) -> bool:
        """True while some process trains this run."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.path / "lock", os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # --- status ---------------------------------------------------------------------

    def write_status(self, state: str, **fields: Any) -> None:
        status = self.read_status()
        status.update(fields)
        status.update(state=state, pid=os.getpid(), host=socket.gethostname(), updated=_now())
        status.setdefault("started", _now())
        atomic_write(self.status_path, (json.dumps(status, indent=2) + "\n").encode())

    def read_status(self) -> dict[str, Any]:
        try:
            status = json.loads(self.status_path.read_text())
            return status if isinstance(status, dict) else {}
        except (OSError, ValueError):
            return {}

    def state(self) -> str:
        """running, finished, failed or interrupted (a dead "running" run is interrupted)."""
        status = self.read_status()
        state = status.get("state", "interrupted")
        if state == "running" and not self.is_locked():
            return "interrupted"
        return state if state in STATES else "interrupted"

    # --- metrics --------------------------------------------------------------------

    def append_event(self, event: Event) -> None:
        if self._metrics_file is None:
            self._metrics_file = open(self.metrics_path, "a", encoding="utf-8")  # noqa: SIM115
        self._metrics_file.write(json.dumps(event.to_dict()) + "\n")
        self._metrics_file.flush()

    def sync_metrics(self) -> int:
        """Make the log durable; returns its length in bytes (the resume point)."""
        if self._metrics_file is not None:
            self._metrics_file.flush()
            os.fsync(self._metrics_file.fileno())
        try:
            return self.metrics_path.stat().st_size
        except FileNotFoundError:
            return 0

    def truncate_metrics(self, size: int) -> None:
        """Drop events logged after the checkpoint being resumed from."""
        self.close_metrics()
        with contextlib.suppress(FileNotFoundError), open(self.metrics_path, "r+b") as f:
            f.truncate(size)

    def close_metrics(self) -> None:
        if self._metrics_file is not None:
            with contextlib.suppress(OSError):
                self._metrics_file.close()
            self._metrics_file = None

    def read_metrics(self) -> MetricsLog:
        """Every event in the log; a torn last line (a kill mid-write) is skipped and reported."""
        try:
            raw = self.metrics_path.read_bytes()
        except FileNotFoundError:
            return MetricsLog([], False, 0)
        lines = raw.split(b"\n")
        torn = bool(lines and lines[-1])  # a complete log ends with a newline
        events, bad = [], 0
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                event = event_from_dict(json.loads(line))
            except ValueError:
                event = None
            if event is None:
                if not (torn and i == len(lines) - 1):
                    bad += 1
                continue
            events.append(event)
        return MetricsLog(events, torn, bad)

    # --- checkpoints ----------------------------------------------------------------

    def save_checkpoint(self, state: dict[str, Any], *, best: bool = False) -> Path:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buffer)
        data = buffer.getvalue()
        # best.pt first: a kill between the two leaves the older last.pt, and resuming
        # from it redoes the epoch and writes best.pt again, so the two never disagree.
        if best:
            atomic_write(self.best_path, data)
        atomic_write(self.last_path, data)
        return self.last_path

    def has_checkpoint(self) -> bool:
        return self.last_path.is_file()

    def load_checkpoint(self, which: str = "last") -> dict[str, Any]:
        path = self.best_path if which == "best" else self.last_path
        if which == "best" and not path.is_file():
            path = self.last_path
        return load_checkpoint(path)

    # --- cross-process control ------------------------------------------------------

    def request(self, command: str) -> None:
        """Ask the process training this run to pause, resume or stop."""
        if command not in ("pause", "resume", "stop"):
            raise ValueError(f"unknown command {command!r}")
        payload = {"command": command, "at": _now(), "nonce": secrets.token_hex(4)}
        atomic_write(self.control_path, json.dumps(payload).encode())

    def read_request(self) -> tuple[str, str] | None:
        """The latest (command, nonce) written by ``request``, if any."""
        try:
            payload = json.loads(self.control_path.read_text())
            return str(payload["command"]), str(payload["nonce"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def delete(self) -> None:
        if self.is_locked():
            raise CheckpointError(f"run {self.id} is training now; stop it before deleting")
        shutil.rmtree(self.path)


class MetricsFollower:
    """Reads a run's ``metrics.jsonl`` as it grows, for a monitor in another process.

    ``poll()`` returns the events appended since the last call (complete lines only; a
    line being written is picked up next time). If the log shrinks, as when a run is
    resumed from an earlier checkpoint, it starts again from the top and ``reset`` is
    set so the reader can clear what it showed.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.offset = 0
        self.reset = False

    def poll(self) -> list[Event]:
        self.reset = False
        try:
            size = self.run.metrics_path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self.reset = 0, True
        if size == self.offset:
            return []
        with open(self.run.metrics_path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in chunk[:end].split(b"\n"):
            try:
                event = event_from_dict(json.loads(line))
            except ValueError:
                continue
            if event is not None:
                events.append(event)
        return events


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; anything else is a ``CheckpointError``."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        match = re.search(r"GLOBAL ([\w.]+)", text)
        if match:
            raise CheckpointError(
                f"{path}: refused: the file holds objects that could run code when loaded "
                f"(it asks for {match.group(1)}); only tensors and plain data are accepted"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (damaged or not a torch checkpoint)"
        ) from None
    except Exception as exc:  # torch raises several types for a damaged zip or pickle
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:160]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an fmnist-tui checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')} is not supported "
            f"(this fmnist-tui reads version {CHECKPOINT_VERSION})"
        )
    return state


@dataclass(frozen=True)
class RunInfo:
    """A row of the runs table."""

    id: str
    path: Path
    started: str
    state: str
    config: TrainConfig | None
    epochs_completed: int
    epochs: int
    best_accuracy: float | None
    reason: str
    resumable: bool


def run_info(run: Run) -> RunInfo:
    status = run.read_status()
    try:
        config: TrainConfig | None = run.config()
    except CheckpointError:
        config = None
    best = status.get("best_accuracy")
    return RunInfo(
        id=run.id,
        path=run.path,
        started=str(status.get("started", "")),
        state=run.state(),
        config=config,
        epochs_completed=_count(status.get("epochs_completed"), 0),
        epochs=_count(status.get("epochs"), config.epochs if config else 0),
        best_accuracy=float(best) if isinstance(best, (int, float)) else None,
        reason=str(status.get("reason", "")),
        resumable=run.has_checkpoint() and config is not None,
    )


def _count(value: Any, default: int) -> int:
    """A count from status.json, which a person may have edited: junk reads as the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def iter_runs(runs_dir: str | Path) -> Iterator[Run]:
    base = Path(runs_dir).expanduser()
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        if path.is_dir() and (path / "config.json").is_file():
            yield Run(path)


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run under ``runs_dir``, newest first."""
    return sorted((run_info(r) for r in iter_runs(runs_dir)), key=lambda r: r.id, reverse=True)
