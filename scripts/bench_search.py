"""Benchmark a search's overhead per trial: what a trial costs beyond training and evaluating.

For each finished trial (complete or pruned): its wall time is Optuna's, from the trial's
start to its end (``datetime_start`` .. ``datetime_complete``, the ask to the tell);
its time in training and evaluation comes from its run's events: for each epoch, from the
checkpoint logged before the epoch's first batch (the start checkpoint, or the previous
epoch's) to the epoch's ``EpochEnd``, that is the epoch's batches and its evaluation on the
validation and test splits. The overhead is the difference: asking and telling the
storage, sampling, making the run folder, cutting the data to the trial's subsets and
checking it, building the model, checkpoints and status writes, and for a pruned trial
deleting its checkpoints. Each worker's first trial is left out (its one-time start-up:
torch's first optimizer imports ``torch._dynamo``, the data check's first pass); the data
each worker loads before its first trial is outside every trial already.

By default it runs ``fmnist-tui search`` (as a user would, in a new process) on a fresh
study in a temporary runs folder, then prints the medians; ``--study NAME --runs-dir DIR``
with ``--no-run`` only measures a study that exists. Target: a median overhead under 0.5 s.

Run from the repository root: ``python -m scripts.bench_search [--trials 12] [--workers 2]``.
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


def trial_times(runs_dir: Path, study: str) -> list[dict[str, Any]]:
    """Each finished trial: number, worker pid, wall seconds, training+evaluation seconds,
    overhead seconds, and whether it was its worker's first."""
    import optuna

    from engine.events import CheckpointSaved, EpochEnd
    from engine.runs import Run
    from engine.search import open_storage

    storage = open_storage(None, runs_dir, study, create=False)
    found = optuna.load_study(study_name=study, storage=storage)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = sorted(found.get_trials(states=states), key=lambda t: t.datetime_start)
    seen: set[int] = set()
    out = []
    for trial in trials:
        run_id = trial.user_attrs.get("run_id")
        if not run_id or trial.datetime_start is None or trial.datetime_complete is None:
            continue
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        events = Run(runs_dir / run_id).read_metrics().events
        working, since = 0.0, None
        for event in events:
            if isinstance(event, CheckpointSaved):
                since = event.time
            elif isinstance(event, EpochEnd) and since is not None:
                working += event.time - since
                since = None
        pid = trial.user_attrs.get("worker", {}).get("pid")
        first = pid not in seen
        seen.add(pid)
        out.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "pid": pid,
                "wall": wall,
                "working": working,
                "overhead": wall - working,
                "first": first,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_search", description=__doc__)
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--study", default="bench")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=10000)
    parser.add_argument("--no-run", action="store_true", help="measure an existing study only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as temp:
        runs = args.runs_dir or Path(temp) / "runs"
        if not args.no_run:
            command = [
                sys.executable,
                "-m",
                "tui.cli",
                "search",
                "--runs-dir",
                str(runs),
                "--study",
                args.study,
                "--trials",
                str(args.trials),
                "--workers",
                str(args.workers),
                "--epochs",
                str(args.epochs),
                "--train-subset",
                str(args.train_subset),
            ]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return done.returncode
            if not args.json:
                print(done.stdout.rstrip())
        times = trial_times(runs, args.study)
    steady = [t for t in times if not t["first"]]
    if not steady:
        print("no trial after each worker's first: run more trials", file=sys.stderr)
        return 1

    def median(key: str, rows: list[dict[str, Any]]) -> float:
        return statistics.median(t[key] for t in rows)

    report = {
        "trials": len(times),
        "measured": len(steady),
        "overhead_median_s": round(median("overhead", steady), 3),
        "overhead_max_s": round(max(t["overhead"] for t in steady), 3),
        "wall_median_s": round(median("wall", steady), 3),
        "working_median_s": round(median("working", steady), 3),
        "first_trial_overhead_median_s": round(
            median("overhead", [t for t in times if t["first"]]), 3
        ),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print()
    print(f"{'trial':>5} {'state':<9} {'wall s':>7} {'train+eval s':>12} {'overhead s':>10}")
    for t in times:
        mark = "  (worker's first, left out)" if t["first"] else ""
        print(
            f"{t['number']:>5} {t['state']:<9} {t['wall']:>7.3f} {t['working']:>12.3f} "
            f"{t['overhead']:>10.3f}{mark}"
        )
    print(
        f"\noverhead per trial, median of {report['measured']}: "
        f"{report['overhead_median_s']:.3f} s (max {report['overhead_max_s']:.3f} s; "
        f"trial wall time {report['wall_median_s']:.3f} s, training and evaluation "
        f"{report['working_median_s']:.3f} s; a worker's first trial "
        f"{report['first_trial_overhead_median_s']:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
