"""Measure the app against its targets: throughput, first screen, bytes on the wire.

    python scripts/bench_app.py [--pairs 3] [--starts 5] [--epochs N]

Everything runs as a user runs it: the ``fmnist-tui`` command, each time a fresh process
on a pseudo-terminal of 120x40 columns and lines with ``TERM=xterm-256color`` and
``COLORTERM=truecolor``, in a session of its own whose controlling terminal is that
pty (as under ssh), with the default configuration (the full Fashion-MNIST as found,
the default preset, not the settings the app remembers: an empty XDG config folder) on
``--device cpu`` and a fresh runs folder. What the command writes
is read as it comes (a terminal that is not read would block it) and counted.

1. Throughput: ``fmnist-tui train`` (headless, its progress bars on the pty) and the app
   (``fmnist-tui``, which starts training as soon as its data is loaded, with
   ``FMNIST_TUI_AUTOSTART=1``, and shows the Monitor while it trains), one after the
   other, ``--pairs`` times. A run's samples/s is the mean of its epochs' figures in its
   ``metrics.jsonl`` (the engine's own, evaluation excluded), so both are measured
   alike. Each pair ran back to back, so the median of the pairs' ratios (app /
   headless) is the figure least disturbed by other load. Target: at least 0.95x.
2. Bytes written to the terminal per second while training, in each app run of 1.:
   from the first "running" on screen to the first "finished" (start-up and the last
   screen excluded). Median of the runs. Target: at most 12 KB/s.
3. First screen: the app started ``--starts`` times (after one start not timed), each
   timed from just before its process starts to the first screen (the pane bar) and to
   the first samples drawn (the data loaded), then quit. Median of the starts. Target:
   under 0.4 s.

Python caches compiled modules as a user's installation does (``PYTHONDONTWRITEBYTECODE``
is dropped, the cache kept in a folder of the benchmark's own, ``PYTHONPYCACHEPREFIX``);
``--no-bytecode-cache`` compiles the project's modules at every start instead, as where
that variable is set.

Run it alone on the machine (no other benchmark, training or test run).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "fmnist-tui")
SIZE = (120, 40)
TARGET_RATIO = 0.95
TARGET_FIRST_SCREEN = 0.4  # seconds
TARGET_KB_PER_SECOND = 12.0
PYCACHE = ""  # where the commands cache compiled modules; "": as the environment says
CONFIG_HOME = ""  # an empty XDG config folder of the benchmark's own (no last settings)


def _take_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (as under ssh)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A command on a pseudo-terminal of ``SIZE``; records what it writes, and when."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        columns, lines = SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        environ = {
            key: value
            for key, value in os.environ.items()
            if key not in ("NO_COLOR", "FORCE_COLOR", "TEXTUAL", "COLUMNS", "LINES")
        }
        environ.update(TERM="xterm-256color", COLORTERM="truecolor", **(env or {}))
        if PYCACHE:
            environ.pop("PYTHONDONTWRITEBYTECODE", None)
            environ["PYTHONPYCACHEPREFIX"] = PYCACHE
        if CONFIG_HOME:  # the default configuration, not the settings the app remembers
            environ["XDG_CONFIG_HOME"] = CONFIG_HOME
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [COMMAND, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=environ,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self.text = b""

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout`` s); False once the pty is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return False
            if not data:
                return False
            self.chunks.append((time.perf_counter() - self.started, data))
            self.text += data
        return True

    def read_until(self, marker: bytes, timeout: float) -> float:
        """Seconds from start to the chunk in which ``marker`` first appeared."""
        deadline = time.perf_counter() + timeout
        while marker not in self.text:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{marker!r} did not appear within {timeout} s")
            if not self._read(0.02):
                tail = self.text.decode(errors="replace")[-2000:]
                raise RuntimeError(f"the command exited; it wrote last:\n{tail}")
        end = self.text.find(marker) + len(marker)
        written = 0
        for t, chunk in self.chunks:
            written += len(chunk)
            if written >= end:
                return t
        raise AssertionError("unreachable: the marker is in the text")

    def bytes_between(self, start: float, end: float) -> int:
        """Bytes written after ``start`` up to ``end`` (seconds from start)."""
        return sum(len(chunk) for t, chunk in self.chunks if start < t <= end)

    def wait(self, timeout: float) -> int:
        """Read on until the command exits; its exit code."""
        deadline = time.perf_counter() + timeout
        try:
            while self.process.poll() is None:
                if time.perf_counter() > deadline:
                    self.process.kill()
                    raise TimeoutError(f"the command did not end within {timeout} s")
                if not self._read(0.05):
                    break
            return self.process.wait(timeout=30)
        finally:
            os.close(self.master)

    def quit(self) -> int:
        """Press ctrl+q and read on (a full pty would block the app) until it exits."""
        os.write(self.master, b"\x11")
        return self.wait(30)


def run_flags(runs: str, epochs: int | None) -> list[str]:
    flags = ["--device", "cpu", "--runs-dir", runs]
    return [*flags, "--epochs", str(epochs)] if epochs else flags


def run_figures(runs: str) -> dict[str, Any]:
    """The one run in ``runs``: its epochs' mean samples/s, training images and precision."""
    [run] = list(Path(runs).iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    [started] = [e for e in events if e.get("event") == "run_started"]
    rates = [e["samples_per_second"] for e in events if e.get("event") == "epoch"]
    return {
        "samples_per_second": statistics.mean(rates),
        "epochs": len(rates),
        "train_size": started["train_size"],
        "precision": started["config"].get("precision"),
    }


def headless(epochs: int | None) -> dict[str, Any]:
    """``fmnist-tui train`` on the pty, to its end."""
    with tempfile.TemporaryDirectory() as runs:
        term = Terminal(["train", *run_flags(runs, epochs)])
        code = term.wait(900)
        if code != 0:
            tail = term.text.decode(errors="replace")[-2000:]
            raise RuntimeError(f"fmnist-tui train exited {code}:\n{tail}")
        return run_figures(runs)


def app(epochs: int | None) -> dict[str, Any]:
    """The app on the pty, training at once with the Monitor showing, to the end."""
    with tempfile.TemporaryDirectory() as runs:
        term = Terminal(run_flags(runs, epochs), {"FMNIST_TUI_AUTOSTART": "1"})
        start = term.read_until(b"running", 120)
        end = term.read_until(b"finished", 900)
        written = term.bytes_between(start, end)
        term.quit()
        figures = run_figures(runs)
    seconds = end - start
    return {**figures, "seconds": seconds, "bytes": written, "bytes_per_second": written / seconds}


def first_screen() -> dict[str, float]:
    """One start of the app: seconds to the first screen and to the first samples."""
    with tempfile.TemporaryDirectory() as runs:
        term = Terminal(run_flags(runs, None))
        screen = term.read_until(b"Hyperparameters", 60)
        samples = term.read_until(b"class balance", 60)
        term.quit()
    return {"first_screen": screen, "samples_drawn": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="headless/app pairs (default 3; 0: only the first screen)",
    )
    parser.add_argument("--starts", type=int, default=5, help="app starts timed (default 5)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per run (default: the config's)"
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the environment's PYTHONDONTWRITEBYTECODE (compile at every start)",
    )
    args = parser.parse_args()
    global PYCACHE
    global CONFIG_HOME
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as config:
        PYCACHE = "" if args.no_bytecode_cache else cache
        CONFIG_HOME = config
        run(args)


def run(args: argparse.Namespace) -> None:
    """The three measurements, as the module's docstring says."""
    columns, lines = SIZE
    cache = "compiled modules cached" if PYCACHE else "modules compiled at every start"
    print(f"fmnist-tui in a {columns}x{lines} pty, truecolor, default configuration, cpu; {cache}")

    ratios, rates, kb = [], {"headless": [], "app": []}, []
    for pair in range(args.pairs):
        h = headless(args.epochs)
        a = app(args.epochs)
        rates["headless"].append(h["samples_per_second"])
        rates["app"].append(a["samples_per_second"])
        ratios.append(a["samples_per_second"] / h["samples_per_second"])
        kb.append(a["bytes_per_second"] / 1024)
        print(
            f"  pair {pair + 1}: headless {h['samples_per_second']:,.0f}, app "
            f"{a['samples_per_second']:,.0f} samples/s ({ratios[-1]:.3f}x); "
            f"{h['epochs']} epochs of {h['train_size']:,} images, precision "
            f"{h['precision']}; app wrote {a['bytes']:,} bytes in {a['seconds']:.1f} s "
            f"({kb[-1]:.1f} KB/s)",
            flush=True,
        )
    if args.pairs < 1:  # --pairs 0: the first screen alone
        ratios, rates, kb = [math.nan], {"headless": [math.nan], "app": [math.nan]}, [math.nan]
    ratio = statistics.median(ratios)
    print(
        f"1. throughput: median headless {statistics.median(rates['headless']):,.0f}, app "
        f"{statistics.median(rates['app']):,.0f} samples/s; median ratio of the pairs "
        f"{ratio:.3f}x (target >= {TARGET_RATIO}x): {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
    )
    rate = statistics.median(kb)
    print(
        f"2. bytes to the terminal while training: median {rate:.1f} KB/s "
        f"(target <= {TARGET_KB_PER_SECOND:g} KB/s): "
        f"{'met' if rate <= TARGET_KB_PER_SECOND else 'NOT met'}"
    )
    first_screen()  # not timed: Python's caches (and the disk's) warm
    starts = [first_screen() for _ in range(args.starts)]
    screen = statistics.median(s["first_screen"] for s in starts)
    samples = statistics.median(s["samples_drawn"] for s in starts)
    each = ", ".join(f"{s['first_screen']:.3f}" for s in starts)
    print(
        f"3. first screen: median {screen:.3f} s from process start "
        f"({each}; target < "
        f"{TARGET_FIRST_SCREEN} s): {'met' if screen < TARGET_FIRST_SCREEN else 'NOT met'}; "
        f"samples drawn {samples:.3f} s"
    )


if __name__ == "__main__":
    main()
