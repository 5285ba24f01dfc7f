"""Measure the Runs pane on a runs folder of thousands of runs.

    python scripts/bench_runs.py [--counts 1000,5000,10000] [--repeats 3] [--limit 20]

For each count N, a runs folder of N run folders is made once: one run's files (its
``config.json``, ``status.json`` and a ``metrics.jsonl`` of a few events) copied with
a different id, learning rate, train subset, state and figures each. Then, ``--repeats``
times each, medians printed:

1. ``fmnist-tui runs`` on that folder (a fresh process, its output read and dropped).
2. The app (``FmnistApp.run_test`` at 120x40, on small synthetic data so that no data
   is loaded; after one session not timed, as the first in a process imports and
   styles the pane's widgets): from the key that shows the Runs pane to the first rows in its table
   ("first rows"; target: under 0.5 s at 10,000 runs), and to every run in the table
   ("all rows"). A figure past ``--limit`` seconds reads "> limit" (the pane never
   showed them). Then the share of one CPU the process takes while the pane shows
   and nothing changes, over ``--idle`` seconds ("idle CPU": the background re-reads);
   then one refresh with nothing changed on disk ("refresh"), and one after one run's
   status changed, timed to its new figure in the table.

Idle CPU at 10,000 runs (20 s, 2 shared cores, 2026-12-03): 23% of one core while the
pane re-read every 2 s; 2% with the next refresh waiting five times the last listing's
wall time (the first full read of 10,000 folders is the long one it waits after). In a
long steady state the re-reads take at most a sixth of the wall time.

Run it from the repository with the project's environment; to compare with another
version of the code, run this same file with ``PYTHONPATH`` set to that version's
checkout (the refresh figures then need this version's ``RunsPane.listing``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from textual import events

from engine.config import TrainConfig
from engine.data import DataSource, ImageData, Split
from tui.app import FmnistApp
from tui.screens.runs import RunsPane
from tui.widgets.runs_table import RunsTable

SIZE = (120, 40)
TARGET_FIRST_ROWS = 0.5  # seconds, at 10,000 runs
COMMAND = str(Path(sys.executable).parent / "fmnist-tui")


def make_runs(runs: Path, count: int) -> None:
    """``count`` run folders in ``runs``, ids newest last, states and figures varied."""
    runs.mkdir(parents=True)
    metrics = "".join(
        json.dumps({"event": "epoch", "epoch": e, "test_accuracy": 0.8 + e / 100}) + "\n"
        for e in (1, 2, 3)
    )
    states = ("finished", "finished", "interrupted", "failed")
    for n in range(count):
        run_id = f"2026{1 + n // 100_000:04d}-{n % 100_000:06d}-mlp-{n:05x}"
        path = runs / run_id
        path.mkdir()
        config = TrainConfig(
            epochs=3,
            lr=0.001 * (1 + n % 7),
            train_subset=5000 if n % 3 == 0 else 0,
            runs_dir=str(runs),
        )
        (path / "config.json").write_text(config.to_json())
        accuracy = 0.80 + (n % 97) / 1000
        status = {
            "state": states[n % len(states)],
            "epochs": 3,
            "epochs_completed": 3,
            "best_accuracy": accuracy,
            "best_test_accuracy": accuracy - 0.01,
            "best_macro_f1": accuracy - 0.02,
            "started": "2026-01-01T12:00:00",
            "reason": "quit" if n % 4 == 2 else "",
        }
        (path / "status.json").write_text(json.dumps(status))
        (path / "metrics.jsonl").write_text(metrics)


def tiny_data() -> ImageData:
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 255, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n))

    return ImageData(
        split(64), split(32), tuple(str(i) for i in range(10)), DataSource("custom", Path("."))
    )


def time_cli(runs: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [COMMAND, "runs", "--runs-dir", str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


async def wait(condition: Callable[[], object], limit: float) -> float | None:
    """Seconds until ``condition`` holds, polling the app; None past ``limit``."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > limit:
            return None
        # Not pilot.pause: it waits on every widget, which would be most of what is timed.
        await asyncio.sleep(0.002)
    return time.perf_counter() - start


async def time_app(
    runs: Path, count: int, limit: float, figure: float = 0.5, idle: float = 0.0
) -> dict[str, float | None]:
    """The app's figures on ``runs`` (``count`` runs); ``figure``: the best accuracy
    written into one run's status to time a refresh that finds one change."""
    config = TrainConfig(epochs=1, hidden_sizes=(32,), device="cpu", runs_dir=str(runs))
    app = FmnistApp(config, runs_dir=str(runs), data=tiny_data())
    figures: dict[str, float | None] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(RunsTable)
        start = time.perf_counter()
        # The key is posted, not pressed: Pilot.press waits for every widget to be idle,
        # which would wait for the last rows too.
        app.post_message(events.Key("4", "4"))
        first = await wait(lambda: table.row_count > 0, limit)
        figures["first rows"] = None if first is None else time.perf_counter() - start
        every = await wait(lambda: table.row_count == count, limit)
        figures["all rows"] = None if every is None else time.perf_counter() - start
        pane = app.query_one(RunsPane)
        if idle > 0 and every is not None:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle)  # the app's loop runs: its timers refresh the pane
            figures["idle CPU"] = (time.process_time() - cpu) / (time.perf_counter() - wall)
        listing = getattr(pane, "listing", None)
        if every is None or listing is None:
            return figures
        passes = listing.passes
        start = time.perf_counter()
        pane.refresh_runs()
        await wait(lambda: listing.passes > passes and listing.in_flight == 0, limit)
        await pilot.pause()
        figures["refresh"] = time.perf_counter() - start
        figures["folders read"] = listing.reads
        newest = table.infos[0]
        status = newest.path / "status.json"
        status.write_text(json.dumps({**json.loads(status.read_text()), "best_accuracy": figure}))
        start = time.perf_counter()
        pane.refresh_runs()
        figures["one changed"] = await wait(
            lambda: any(i.id == newest.id and i.best_accuracy == figure for i in pane.infos),
            limit,
        )
        figures["folders read, one changed"] = listing.reads
    return figures


def shown(values: list[float | None], limit: float, unit: str = " s") -> str:
    if any(v is None for v in values):
        return f"> {limit:g}{unit}"
    return f"{statistics.median([v for v in values if v is not None]):.3f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,5000,10000", help="runs per folder, by commas")
    parser.add_argument("--repeats", type=int, default=3, help="times each figure is measured")
    parser.add_argument("--limit", type=float, default=20.0, help="seconds a wait may take")
    parser.add_argument(
        "--idle", type=float, default=20.0, help="seconds the idle CPU share is measured over"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    try:
        # The first Runs pane a process shows imports and styles what it needs (about
        # as long again as showing 1,000 runs): one session first, on 10 runs, untimed.
        make_runs(root / "warm-up", 10)
        asyncio.run(time_app(root / "warm-up", 10, args.limit))
        for count in counts:
            runs = root / f"runs-{count}"
            make_runs(runs, count)
            cli = [time_cli(runs) for _ in range(args.repeats)]
            apps = [
                asyncio.run(time_app(runs, count, args.limit, 0.5 + n / 100, args.idle))
                for n in range(args.repeats)
            ]
            print(f"{count:,} runs")
            print(f"  fmnist-tui runs:            {shown(list(cli), args.limit)}")
            for key in ("first rows", "all rows", "refresh", "one changed"):
                values = [a.get(key) for a in apps if key in a]
                if values:
                    print(f"  app, {key + ':':23}{shown(values, args.limit)}")
            shares = [a.get("idle CPU") for a in apps if "idle CPU" in a]
            if shares:
                share = statistics.median([s for s in shares if s is not None])
                print(f"  app, idle CPU (one core):   {share:.0%}")
            for key in ("folders read", "folders read, one changed"):
                values = [a.get(key) for a in apps if key in a]
                if values:
                    print(f"  {key + ':':28}{shown(values, args.limit, '')}")
            if count >= 10_000:
                firsts = [a.get("first rows") for a in apps]
                ok = all(f is not None and f < TARGET_FIRST_ROWS for f in firsts)
                print(f"  first rows under {TARGET_FIRST_ROWS} s: {'yes' if ok else 'NO'}")
            sys.stdout.flush()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
