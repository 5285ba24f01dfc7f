"""Time to accuracy over seeds: ``fmnist-tui bench --to ACC`` once per seed, each in a
fresh process (its start-up counts, as a user's would), and the median over the seeds.

Run it alone on the machine (2 cores: anything else running skews the figures)::

    .venv/bin/python scripts/bench_to.py --to 0.88 --preset fast
    .venv/bin/python scripts/bench_to.py --to 0.92 --preset cnn --seeds 0,1,2
    .venv/bin/python scripts/bench_to.py --to 0.93 --preset resnet -- --epochs 6

Flags after ``--`` go to ``bench`` as they are (any ``train`` setting). Prints one line per
seed (seconds from process start to the first epoch at ACC test accuracy, split into
start-up, data load and training; the epoch and its accuracy), then the median seconds
and whether every seed reached ACC. ``--json`` prints one object instead. Exits 1 if a
seed did not reach ACC.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def one_seed(target: float, preset: str, seed: int, extra: list[str]) -> dict[str, Any]:
    """One ``bench --to`` in a fresh interpreter; its JSON object (``seconds`` etc.)."""
    argv = [sys.executable, "-m", "tui.cli", "bench", "--to", str(target), "--preset", preset]
    argv += ["--seed", str(seed), "--json", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"bench --to failed (exit {done.returncode}): {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "seed": seed}


def main() -> int:
    """Parse the flags, run each seed, print the figures; 1 if a seed missed ACC."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", type=float, required=True, help="test accuracy, 0..1")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("extra", nargs="*", help="bench flags, after --")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results = []
    for seed in seeds:
        result = one_seed(args.to, args.preset, seed, args.extra)
        results.append(result)
        if not args.json:
            print(
                f"seed {seed}: {'reached' if result['reached'] else 'NOT reached'} "
                f"{result['accuracy']:.2%} at epoch {result['epoch']} in "
                f"{result['seconds']:.2f} s (start-up {result['startup_seconds']:.2f}, "
                f"load {result['load_seconds']:.2f}, training {result['train_seconds']:.2f}; "
                f"{result['precision']})",
                flush=True,
            )
    median = statistics.median(r["seconds"] for r in results)
    reached = all(r["reached"] for r in results)
    if args.json:
        print(
            json.dumps(
                {
                    "target": args.to,
                    "preset": args.preset,
                    "median_seconds": median,
                    "all_reached": reached,
                    "seeds": results,
                }
            )
        )
    else:
        print(
            f"{args.preset} to {args.to:.1%}: median {median:.2f} s over seeds "
            f"{','.join(map(str, seeds))}; "
            + ("every seed reached it" if reached else "NOT every seed reached it")
        )
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
