"""Measure the app against its targets: throughput, first paint, bytes on the wire.

    python scripts/bench_app.py [--train 30000] [--epochs 2] [--rounds 3]
                                [--wire-train 60000] [--wire-epochs 3]

1. Throughput: the same training (CPU, the default MLP, ``--train`` images,
   ``--epochs`` epochs) headless (``Trainer.fit()`` on the main thread, as
   ``fmnist-tui train`` runs it) and inside the running app (``App.run_test`` at
   120x40, Monitor pane showing, charts redrawing), alternated ``--rounds`` times,
   each in a fresh process so one's torch threads cannot slow the other. Samples/s
   are the engine's per-epoch figures (evaluation excluded). Target: app >= 0.9x.
2. First paint: the app started in a pseudo-terminal (120x40, truecolor), timed from
   just before the process starts to the first screen (the pane bar) and to the
   first samples drawn (the data loaded). Target: under 2 s.
3. Bytes written to the terminal per second while training (``--wire-train`` images,
   ``--wire-epochs`` epochs, long enough to include steady batches and epoch ends),
   through the same pseudo-terminal at 120x40, counted from the first "running" on
   screen to the first "finished" (start-up excluded). Target: under 32 KB/s. The
   run's own samples/s (from its metrics.jsonl) is reported as a third throughput
   figure.

The app is started with ``FMNIST_TUI_AUTOSTART=1``, which makes it start training as
soon as the data is loaded (see ``tui.app.AUTOSTART_ENV``).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
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

ROOT = Path(__file__).resolve().parent.parent
TEST_IMAGES = 2000


def config_dict(train: int, epochs: int, runs_dir: str) -> dict[str, object]:
    return {
        "epochs": epochs,
        "train_subset": train,
        "test_subset": TEST_IMAGES,
        "device": "cpu",
        "runs_dir": runs_dir,
    }


# --- 1. throughput, one measurement per process -------------------------------------


def measure_headless(train: int, epochs: int) -> float:
    from engine.config import TrainConfig
    from engine.data import load_fashion_mnist
    from engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as runs:
        config = TrainConfig.from_dict(config_dict(train, epochs, runs))
        result = Trainer(config, data=load_fashion_mnist()).fit()
    return statistics.mean(e.samples_per_second for e in result.history)


def measure_app(train: int, epochs: int) -> float:
    from engine.config import TrainConfig
    from engine.data import load_fashion_mnist
    from tui import messages
    from tui.app import FmnistApp

    epochs_seen: list[float] = []

    def hook(message: object) -> None:
        if isinstance(message, messages.EpochFinished):
            epochs_seen.append(message.event.samples_per_second)

    async def run(runs: str) -> None:
        config = TrainConfig.from_dict(config_dict(train, epochs, runs))
        app = FmnistApp(config, data=load_fashion_mnist())
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            await pilot.pause(0.5)
            app.action_start()
            await app.workers.wait_for_complete()

    with tempfile.TemporaryDirectory() as runs:
        asyncio.run(run(runs))
    # Each EpochFinished is seen twice (by the Monitor pane, then the app).
    return statistics.mean(epochs_seen)


def throughput(train: int, epochs: int, rounds: int) -> dict[str, object]:
    results: dict[str, list[float]] = {"headless": [], "app": []}
    for _ in range(rounds):
        for mode in ("headless", "app"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    mode,
                    "--train",
                    str(train),
                    "--epochs",
                    str(epochs),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            results[mode].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"  {mode:8} {results[mode][-1]:10,.0f} samples/s", flush=True)
    headless = statistics.median(results["headless"])
    app = statistics.median(results["app"])
    # Each pair ran back to back, so its ratio is the least disturbed by other load.
    ratios = [a / h for h, a in zip(results["headless"], results["app"], strict=True)]
    return {"headless": headless, "app": app, "ratio": statistics.median(ratios), "runs": results}


# --- 2 and 3: the app in a pseudo-terminal --------------------------------------------


def launcher(settings: dict[str, object]) -> list[str]:
    code = (
        "from engine.config import TrainConfig; from tui.app import FmnistApp; "
        f"FmnistApp(TrainConfig.from_dict({settings!r})).run()"
    )
    return [sys.executable, "-c", code]


def _take_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (as under ssh)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The app on a pseudo-terminal of a given size; records what it writes, and when."""

    def __init__(self, command: list[str], size: tuple[int, int], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        columns, lines = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env={**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", **env},
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self.text = b""

    def read_until(self, marker: bytes, timeout: float) -> float:
        """Seconds from start to the chunk in which ``marker`` first appeared."""
        deadline = time.perf_counter() + timeout
        while marker not in self.text:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{marker!r} did not appear within {timeout} s")
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    tail = self.text.decode(errors="replace")[-2000:]
                    raise RuntimeError(f"the app exited; it wrote last:\n{tail}") from None
                self.chunks.append((time.perf_counter() - self.started, data))
                self.text += data
        end = self.text.find(marker) + len(marker)
        written = 0
        for t, chunk in self.chunks:
            written += len(chunk)
            if written >= end:
                return t
        raise AssertionError("unreachable: the marker is in the text")

    def bytes_between(self, start: float, end: float) -> int:
        return sum(len(chunk) for t, chunk in self.chunks if start < t <= end)

    def quit(self) -> None:
        """Press ctrl+q and keep reading (a full pty would block the app) until it exits."""
        os.write(self.master, b"\x11")
        deadline = time.perf_counter() + 30
        try:
            while self.process.poll() is None:
                if time.perf_counter() > deadline:
                    self.process.kill()
                    raise TimeoutError("the app did not quit within 30 s")
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if ready:
                    try:
                        os.read(self.master, 65536)
                    except OSError:
                        break
            self.process.wait(timeout=10)
        finally:
            os.close(self.master)


def first_paint() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as runs:
        term = Terminal(launcher({"runs_dir": runs}), (120, 40), {})
        screen = term.read_until(b"Hyperparameters", 30)
        samples = term.read_until(b"class balance", 30)
        term.quit()
    return {"first_screen": screen, "samples_drawn": samples}


def bytes_while_training(train: int, epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as runs:
        settings = config_dict(train, epochs, runs)
        term = Terminal(launcher(settings), (120, 40), {"FMNIST_TUI_AUTOSTART": "1"})
        start = term.read_until(b"running", 120)
        end = term.read_until(b"finished", 600)
        total = term.bytes_between(start, end)
        term.quit()
        [run] = list(Path(runs).iterdir())
        rates = [
            event["samples_per_second"]
            for event in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if event.get("event") == "epoch"
        ]
    return {
        "seconds": end - start,
        "bytes": total,
        "bytes_per_second": total / (end - start),
        "app_in_pty_samples_per_second": statistics.mean(rates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=30000, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="headless/app pairs")
    parser.add_argument("--wire-train", type=int, default=60000, help="images, bytes run")
    parser.add_argument("--wire-epochs", type=int, default=3, help="epochs, bytes run")
    parser.add_argument("--one", choices=("headless", "app"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure = measure_headless if args.one == "headless" else measure_app
        print(measure(args.train, args.epochs))
        return

    print(f"1. throughput: {args.train:,} images x {args.epochs} epochs, CPU, default MLP")
    tp = throughput(args.train, args.epochs, args.rounds)
    print(
        f"   median headless {tp['headless']:,.0f} samples/s, app {tp['app']:,.0f} "
        f"samples/s; median ratio of the pairs {tp['ratio']:.2f} (target >= 0.9)"
    )
    fp = first_paint()
    print(
        f"2. first paint in a 120x40 pty: first screen {fp['first_screen']:.2f} s, "
        f"samples drawn {fp['samples_drawn']:.2f} s (target < 2 s)"
    )
    wire = bytes_while_training(args.wire_train, args.wire_epochs)
    print(
        f"3. bytes to the terminal while training at 120x40: {wire['bytes']:,} bytes in "
        f"{wire['seconds']:.1f} s = {wire['bytes_per_second'] / 1024:.1f} KB/s "
        f"(target < 32 KB/s); that run trained at "
        f"{wire['app_in_pty_samples_per_second']:,.0f} samples/s"
    )


if __name__ == "__main__":
    main()
