"""Benchmark what ``--tensorboard DIR`` costs a run: the time of ``Trainer.fit`` with
TensorBoard event files against without, and the time spent inside the TensorBoard
writer as a share of the fit.

Each measurement is one new Python process (as each run of ``fmnist-tui train`` is): it
loads the real Fashion-MNIST (``FMNIST_DATA`` or the usual places; outside the timing),
then times ``Trainer(TrainConfig(epochs=2, ...)).fit()`` with the default config, into a
temporary runs folder, with or without ``tensorboard``. So the writer's one-time costs
(importing ``torch.utils.tensorboard``, making its folder) are in every run that writes,
and torch's own one-time costs in every run. Runs come in pairs, one with and one
without, alternating which goes first; the figure is the median of the pairs' ratios
(with / without). The share is ``TensorBoardWriter.seconds`` over the fit's time, the
median over the runs that write. Targets: a ratio of at most 1.03, a share of at most 1%.

Run from the repository root, alone on the machine:
``python -m scripts.bench_tensorboard [--pairs 5] [--epochs 2]`` (``--json`` for one
object).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure(runs_dir: str, epochs: int, tensorboard: str) -> dict[str, Any]:
    """One run in this process: fit seconds (wall, ``time.perf_counter``) and, with
    ``tensorboard``, the seconds inside its writer."""
    import time

    from engine.config import TrainConfig
    from engine.data import load_fashion_mnist
    from engine.trainer import Trainer

    data = load_fashion_mnist(download=False)
    config = TrainConfig(epochs=epochs, runs_dir=runs_dir, tensorboard=tensorboard)
    trainer = Trainer(config, data=data)
    started = time.perf_counter()
    result = trainer.fit()
    fit = time.perf_counter() - started
    board = trainer.tensorboard
    return {
        "fit_seconds": fit,
        "listener_seconds": board.seconds if board is not None else None,
        "test_accuracy": result.final_accuracy,
    }


def child(runs_dir: str, epochs: int, tensorboard: bool) -> dict[str, Any]:
    """``measure`` in a new process."""
    folder = str(Path(runs_dir) / "tb") if tensorboard else ""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench_tensorboard",
            "--child",
            runs_dir,
            "--epochs",
            str(epochs),
            "--tensorboard",
            folder,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", metavar="RUNS_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--tensorboard", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, args.tensorboard)))
        return 0
    ratios, shares, pairs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-tensorboard-") as tmp:
        for index in range(args.pairs):
            first_with = index % 2 == 0
            runs = {}
            for with_board in (first_with, not first_with):
                runs[with_board] = child(tmp, args.epochs, with_board)
            with_run, without = runs[True], runs[False]
            ratio = with_run["fit_seconds"] / without["fit_seconds"]
            share = with_run["listener_seconds"] / with_run["fit_seconds"]
            ratios.append(ratio)
            shares.append(share)
            pairs.append(
                {
                    "first": "with" if first_with else "without",
                    **{
                        "with_seconds": with_run["fit_seconds"],
                        "without_seconds": without["fit_seconds"],
                        "listener_seconds": with_run["listener_seconds"],
                        "ratio": ratio,
                    },
                }
            )
            if not args.json:
                print(
                    f"pair {index + 1} ({pairs[-1]['first']} first): with "
                    f"{with_run['fit_seconds']:.2f} s, without {without['fit_seconds']:.2f} s, "
                    f"ratio {ratio:.3f}; in the writer {with_run['listener_seconds']:.3f} s "
                    f"({share:.2%})",
                    flush=True,
                )
    report = {
        "pairs": pairs,
        "epochs": args.epochs,
        "median_ratio": statistics.median(ratios),
        "median_listener_share": statistics.median(shares),
        "max_listener_share": max(shares),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"median ratio (with / without): {report['median_ratio']:.3f} (target <= 1.03); "
            f"time in the writer: median {report['median_listener_share']:.2%} of fit, "
            f"max {report['max_listener_share']:.2%} (target <= 1%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
