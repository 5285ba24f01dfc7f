"""Shared by the run-lifecycle tests: waiting on a condition, a small raw dataset on disk,
``fmnist-tui`` run in a subprocess under a chosen umask, and killing detached trainers.

Every wait polls a condition against a deadline; nothing sleeps a fixed time and hopes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.data import FILES, ImageData, write_idx
from engine.runs import Run

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0  # seconds: anything here that takes longer has hung

# Runs `fmnist-tui` as `main(argv)` under the umask in argv[1] (octal), then writes
# whether torch was imported to the file in argv[2] (stdout stays the command's own).
DRIVER = (
    "import os, sys; os.umask(int(sys.argv[1], 8)); from tui.cli import main; "
    "code = main(sys.argv[3:]); "
    "open(sys.argv[2], 'w').write(str('torch' in sys.modules)); sys.exit(code)"
)


def wait_until(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def write_raw_data(folder: Path, data: ImageData, n_train: int, n_test: int) -> Path:
    """``n_train`` and ``n_test`` images of ``data`` as the four raw IDX files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cut = data.subset(n_train, n_test, seed=0)
    for split, prefix in ((cut.train, "train"), (cut.test, "test")):
        write_idx(folder / FILES[f"{prefix}_images"], split.images)
        write_idx(folder / FILES[f"{prefix}_labels"], split.labels.astype(np.uint8))
    return folder


def cli(
    *argv: str, umask: int = 0o022, torch_flag: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``fmnist-tui ARGV`` in a fresh interpreter under ``umask``; ``torch_flag`` (a file)
    receives "True" or "False": whether the command imported torch."""
    flag = torch_flag or Path(os.devnull)
    return subprocess.run(
        [sys.executable, "-c", DRIVER, f"{umask:o}", str(flag), *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
    )


def cli_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``fmnist-tui ARGV`` started in a fresh interpreter, its output piped as text; ``env``
    replaces the environment when given."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def kill_trainer(run: Run) -> None:
    """Kill the process training ``run``, if any, by the pid in its status, and wait until
    it has let go (the lock is checked first: a pid alone could have been reused)."""
    if run.is_locked():
        pid = run.read_status().get("pid")
        if isinstance(pid, int) and pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not run.is_locked(), f"run {run.id} to be let go")


def file_modes(folder: Path) -> dict[str, int]:
    """Permission bits of every entry in ``folder``, by name."""
    return {p.name: p.lstat().st_mode & 0o7777 for p in sorted(folder.iterdir())}
