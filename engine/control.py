"""Pause, resume and stop a run: from any thread of its process, or from another process.

``RunControl`` is the trainer's side. Its methods may be called from any thread; the
loop calls ``poll()`` at every batch boundary, which also reads the run folder's
``control.json`` (at most every ``poll_seconds``) for requests another process wrote
there with ``RemoteControl`` (``fmnist-tui attach``, the app's Runs pane). There is
no network port: the folder is the only link.

A stop is never lost. ``control.json`` holds the latest command and, beside it, the
nonce of any stop ever asked for; a pause or resume written after a stop carries the
stop along, so the trainer still stops. Writers take turns (an ``flock`` on the file
they replace), so two processes asking at once cannot drop each other's stop either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files

if TYPE_CHECKING:
    from engine.runs import Run

# How often the loop looks at the run folder for a request, in seconds.
CONTROL_POLL_SECONDS = 0.25
COMMANDS = ("pause", "resume", "stop")


def read_request(run: Run) -> dict[str, str]:
    """The run's control file as ``{"command", "nonce", "stop"}`` strings; {} if none or junk.

    Reads without following a symlink or blocking on a FIFO, and at most
    ``files.SMALL_FILE_LIMIT`` bytes.
    """
    try:
        payload = json.loads(files.read_bytes(run.control_path))
    except (OSError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return {}
    if not isinstance(payload, dict):
        return {}
    return {
        key: str(payload[key])
        for key in ("command", "nonce", "stop")
        if isinstance(payload.get(key), (str, int))
    }


@contextlib.contextmanager
def _one_writer(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file now at ``path`` (made, empty, if missing).

    The file is replaced while the lock is held, so a writer that waited for the lock
    on the old file opens the new one and waits again. Something else at ``path`` (a
    FIFO, a device) is not opened: it is replaced without a lock. Raises ``OSError`` if
    the file cannot be opened (a symlink, a folder, a folder that cannot be written).
    """
    flags = os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    while True:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG  # made below
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
            yield
            return
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise files.UnsafeFileError(path, "a symbolic link, not followed") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                yield
                return
        finally:
            os.close(fd)  # lets go of the lock


class RemoteControl:
    """Steer a run trained by another process, through its folder."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def request(self, command: str) -> None:
        """Ask for ``pause``, ``resume`` or ``stop``; the trainer acts within a batch.

        Raises ``ValueError`` for another command and ``OSError`` if the folder cannot
        be written (full or read-only).
        """
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
        nonce = secrets.token_hex(4)
        payload: dict[str, Any] = {
            "command": command,
            "nonce": nonce,
            "at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        with _one_writer(self.run.control_path):
            # Read and replaced under the lock: a stop another process is writing now
            # is either seen here and carried along, or written after this request.
            stop = nonce if command == "stop" else read_request(self.run).get("stop")
            if stop:
                payload["stop"] = stop
            files.atomic_write(self.run.control_path, json.dumps(payload).encode())

    def pause(self) -> None:
        """``request("pause")``; ``OSError`` if the folder cannot be written."""
        self.request("pause")

    def resume(self) -> None:
        """``request("resume")``; ``OSError`` if the folder cannot be written."""
        self.request("resume")

    def stop(self, reason: str = "stop") -> None:
        """``request("stop")``; ``OSError`` if the folder cannot be written. ``reason`` is
        accepted to match ``RunControl.stop`` and not sent: the trainer records "stop"."""
        self.request("stop")


class RunControl:
    """The trainer's pause/resume/stop flags, set in-process or read from the run folder."""

    def __init__(self, poll_seconds: float = CONTROL_POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._stop_reason = "stop"
        self._run: Run | None = None
        self._seen: dict[str, str] = {}
        self._signature: tuple[int, int, int] | None = None
        self._next_poll = 0.0

    # --- in-process (any thread) -----------------------------------------------------

    def pause(self) -> None:
        """Pause at the next batch boundary (ignored once a stop is asked for)."""
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        """Go on after a pause."""
        self._running.set()

    def stop(self, reason: str = "stop") -> None:
        """Stop at the next batch boundary (a paused run wakes to stop)."""
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        """True while asked to pause (and not to stop)."""
        # The stop test closes a race: a pause() that checked for a stop just before
        # stop() ran clears the flag stop() had set.
        return not self._running.is_set() and not self._stop.is_set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for, here or through the run folder."""
        return self._stop.is_set()

    @property
    def stop_reason(self) -> str:
        """The reason given with the first stop ("stop", "interrupt", "detach")."""
        return self._stop_reason

    # --- the run folder (the training thread) -----------------------------------------

    def watch(self, run: Run) -> None:
        """Obey requests written to ``run``'s folder from now on (older ones are done with)."""
        if self._run is not None and self._run.path == run.path:
            return  # already watching: requests since the first look still count
        self._run = run
        self._seen = read_request(run)
        self._signature = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        assert self._run is not None
        try:
            info = os.lstat(self._run.control_path)
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def poll(self, *, force: bool = False) -> None:
        """Act on a request another process wrote since the last look (if one is due)."""
        if self._run is None:
            return
        now = time.monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + self.poll_seconds
        signature = self._stat()
        if signature == self._signature:
            return  # unchanged: not even opened
        self._signature = signature
        request = read_request(self._run)
        if request.get("stop") and request.get("stop") != self._seen.get("stop"):
            self.stop("stop")
        elif request.get("nonce") and request.get("nonce") != self._seen.get("nonce"):
            command = request.get("command")
            if command == "pause":
                self.pause()
            elif command == "resume":
                self.resume()
            elif command == "stop":
                self.stop("stop")
        self._seen = request

    def wait_while_paused(self, timeout: float | None = None) -> None:
        """Block until resumed or stopped, looking at the run folder meanwhile; with
        ``timeout`` (seconds), return after that long at most even if still paused."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._running.wait(self.poll_seconds) and not self._stop.is_set():
            self.poll(force=True)
            if deadline is not None and time.monotonic() >= deadline:
                return


# The signals that stop training where they can: Ctrl+C, kill, a lost terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGINT, SIGTERM and SIGHUP call ``stop()`` (the previous handlers
    return after); only in the main thread, where Python delivers signals (elsewhere a
    no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
