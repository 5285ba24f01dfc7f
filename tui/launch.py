"""Starting a detached run from the app, through the CLI's own ``train --detach``.

The app runs ``python -m tui.cli train --detach --json ...`` and reads the run folder
from its one line of output. That process starts the trainer in a session of its
own and exits at once, so the run outlives the app and its terminal, and the app
has no child to wait for. Blocking (it imports torch to check the device): call it
from a worker thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.runs import Run

# Seconds the launching process may take (it imports torch and creates the run folder).
LAUNCH_TIMEOUT = 120.0
RESUME_POLL_SECONDS = 0.1


class LaunchError(EngineError):
    """The detached run could not be started; the message says why."""


@dataclass(frozen=True)
class Detached:
    run_dir: Path
    pid: int


def start_detached(config: TrainConfig) -> Detached:
    """Start a new run with ``config`` in the background."""
    fd, name = tempfile.mkstemp(prefix="fmnist-tui-", suffix=".json")
    os.close(fd)
    try:
        config.save(name)
        return _launch(["--config", name])
    finally:
        Path(name).unlink(missing_ok=True)


def resume_detached(run_dir: str | Path, timeout: float = LAUNCH_TIMEOUT) -> Detached:
    """Continue an interrupted run from its last checkpoint, in the background.

    Returns once the trainer has taken the run up again: until then its log still
    ends where it stopped, and a monitor reading it would see the run end.
    """
    detached = _launch(["--resume", str(Path(run_dir).resolve())])
    run = Run(detached.run_dir)
    deadline = time.monotonic() + timeout
    while run.read_status().get("state") != "running":
        if not run.is_locked():
            reason = run.read_status().get("reason") or _last_line(run.log_path)
            raise LaunchError(f"the run did not resume: {reason}")
        if time.monotonic() > deadline:
            raise LaunchError(f"the run did not resume within {timeout:.0f} s")
        time.sleep(RESUME_POLL_SECONDS)
    return detached


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no reason given"
    return lines[-1] if lines else "no reason given"


def _launch(args: list[str]) -> Detached:
    argv = [sys.executable, "-m", "tui.cli", "train", "--detach", "--json", *args]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"could not start the detached run: {exc}") from None
    for line in done.stdout.splitlines():
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and report.get("event") == "detached":
            return Detached(Path(report["run_dir"]), int(report["pid"]))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    reason = lines[-1].removeprefix("fmnist-tui: error: ") if lines else "no reason given"
    raise LaunchError(f"could not start the detached run: {reason}")
