"""Benchmark what ``--tensorboard DIR`` costs a run: the time of ``Trainer.fit`` with
TensorBoard event files against without, and the time spent inside the TensorBoard
writer as a share of the fit.

In one process: the real Fashion-MNIST is loaded once (``FMNIST_DATA`` or the usual
places), one fit without TensorBoard warms up (torch's one-time imports and caches, some
seconds, and the dataset check's cache), then pairs of ``Trainer(TrainConfig(epochs=2,
tensorboard=...)).fit()`` with the default config, into a temporary runs folder, one
with ``tensorboard`` and one without, alternating which goes first. The figure is the
median of the pairs' ratios of fit time (with / without, ``time.perf_counter``). The
share is ``TensorBoardWriter.seconds`` (everything the writer does on the training
thread) over that fit's time, the median over the runs that write. The writer's one-time
import of ``torch.utils.tensorboard`` (about 0.1 s, on a background thread while the run
prepares) falls in the first run that writes. Targets: a ratio of at most 1.03, a share
of at most 1%.

Run from the repository root, alone on the machine:
``python -m scripts.bench_tensorboard [--pairs 5] [--epochs 2]`` (``--json`` for one
object).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def measure(data: Any, runs_dir: Path, epochs: int, tensorboard: bool) -> dict[str, Any]:
    """One fit: its seconds (wall), the epochs' own seconds (training and evaluation,
    from the epoch events) and, with ``tensorboard``, the seconds inside its writer."""
    from engine.config import TrainConfig
    from engine.trainer import Trainer

    folder = str(runs_dir / "tb") if tensorboard else ""
    config = TrainConfig(epochs=epochs, runs_dir=str(runs_dir), tensorboard=folder)
    trainer = Trainer(config, data=data)
    started = time.perf_counter()
    result = trainer.fit()
    fit = time.perf_counter() - started
    board = trainer.tensorboard
    return {
        "fit_seconds": fit,
        "epoch_seconds": sum(e.epoch_seconds for e in result.history),
        "listener_seconds": board.seconds if board is not None else None,
        "test_accuracy": result.final_accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from engine.data import load_fashion_mnist

    data = load_fashion_mnist(download=False)
    ratios, shares, pairs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-tensorboard-") as tmp:
        measure(data, Path(tmp), args.epochs, False)  # the warm-up
        for index in range(args.pairs):
            first_with = index % 2 == 0
            runs = {}
            for with_board in (first_with, not first_with):
                runs[with_board] = measure(data, Path(tmp), args.epochs, with_board)
            with_run, without = runs[True], runs[False]
            ratio = with_run["fit_seconds"] / without["fit_seconds"]
            share = with_run["listener_seconds"] / with_run["fit_seconds"]
            ratios.append(ratio)
            shares.append(share)
            pairs.append(
                {
                    "first": "with" if first_with else "without",
                    "with_seconds": with_run["fit_seconds"],
                    "without_seconds": without["fit_seconds"],
                    "with_epoch_seconds": with_run["epoch_seconds"],
                    "without_epoch_seconds": without["epoch_seconds"],
                    "listener_seconds": with_run["listener_seconds"],
                    "ratio": ratio,
                }
            )
            if not args.json:
                print(
                    f"pair {index + 1} ({pairs[-1]['first']} first): with "
                    f"{with_run['fit_seconds']:.2f} s, without {without['fit_seconds']:.2f} s, "
                    f"ratio {ratio:.3f} (epochs alone: {with_run['epoch_seconds']:.2f} s and "
                    f"{without['epoch_seconds']:.2f} s); in the writer "
                    f"{with_run['listener_seconds']:.3f} s ({share:.2%})",
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
