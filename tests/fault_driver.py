"""Kill trials for ``tests/test_faults.py``: train through the CLI and SIGKILL it.

Run as ``python tests/fault_driver.py PLAN.json RESULTS.json``. Each trial runs
``fmnist-tui train`` (``tui.cli.main``) in a forked child, kills it with SIGKILL at the
moment the plan names, looks at the run folder the way a user would (``Run.state``,
``list_runs``, the metrics log), then resumes it with ``fmnist-tui train --resume`` in
another child. The results go to RESULTS.json for the test to judge.

Forking from one warm interpreter makes a trial cost a fraction of a second instead of
a four-second start. The parent imports torch but never runs a torch operation, so no
OpenMP thread team exists to be broken by ``fork``.

Moments, each given as ``u`` in [0, 1) of the calls an uninterrupted run makes:
- ``atomic_write``: inside the n-th atomic file replacement (config, status, checkpoints;
  or only those of ``file``), with half the temporary file written (``temp``), the
  temporary file complete but not yet renamed (``before_rename``), or just after the
  rename (``after_rename``);
- ``append``: inside the n-th metrics line, after ``fraction`` of its bytes;
- ``step``: at the start of the n-th training batch;
- ``timed``: from outside, ``u`` of the reference run's wall time after it started.

Stop trials (the plan's ``stops``) stop a run the ways the product is stopped instead of
killing it: SIGINT, SIGTERM or SIGHUP to ``fmnist-tui train`` or to a detached trainer
(``python -m engine.detach``), or a stop written to ``control.json`` (what ``x`` in the
app and in ``attach`` does). Each is sent the moment the planned batch's event (or an
epoch's end) is logged, so the stop lands at that batch; the run is then resumed with
``fmnist-tui train --resume``. Needs ``--log-every 1``: every batch logs an event.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import engine.trainer
from engine.runs import Run, list_runs
from tui.cli import main

KINDS = ("atomic_write", "append", "step")

# What ``fmnist-tui train`` imports lazily: imported once here, so children start warm.
WARM = (
    "torch",
    "torch._dynamo",
    "engine.models",
    "engine.device",
    "engine.inference",
    "tui.progress",
)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Counter:
    """Counts calls; ``hit()`` is true on the call numbered ``target`` (1-based)."""

    def __init__(self, target: int = 0) -> None:
        self.calls = 0
        self.target = target

    def hit(self) -> bool:
        self.calls += 1
        return self.calls == self.target


class _TornFile:
    """A file that writes the first ``fraction`` of what it is given, then dies."""

    def __init__(self, file: Any, fraction: float) -> None:
        self.file = file
        self.fraction = fraction

    def __enter__(self) -> _TornFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        self.file.write(data[: int(len(data) * self.fraction)])
        self.file.flush()
        _die()
        return 0  # never reached


def install(kill: dict[str, Any] | None, counters: dict[str, _Counter]) -> None:
    """Wrap the three places a kill can land; count calls, and die at the planned one."""
    import engine.files
    import engine.loop

    kill = kill or {}
    for kind in KINDS:
        counters[kind] = _Counter(kill["call"] if kill.get("kind") == kind else 0)
    only = kill.get("file")
    real_write = engine.files.atomic_write
    real_append = Run.append_event
    real_step = engine.loop.train_step

    def atomic_write(path: Path, data: bytes) -> None:
        counters.setdefault(path.name, _Counter()).hit()
        if only not in (None, path.name) or not counters["atomic_write"].hit():
            return real_write(path, data)
        phase = kill["phase"]
        if phase == "temp":
            real_fdopen = os.fdopen
            os.fdopen = lambda fd, mode: _TornFile(real_fdopen(fd, mode), 0.5)
        elif phase == "before_rename":
            os.replace = lambda *_args: _die()
        real_write(path, data)
        _die()

    def append_event(self: Run, event: Any) -> None:
        if counters["append"].hit():
            line = (json.dumps(event.to_dict()) + "\n").encode()
            with open(self.metrics_path, "ab") as f:
                _TornFile(f, kill["fraction"]).write(line)
        real_append(self, event)

    def train_step(*args: Any, **kwargs: Any) -> Any:
        if counters["step"].hit():
            _die()
        return real_step(*args, **kwargs)

    engine.files.atomic_write = atomic_write
    Run.append_event = append_event
    engine.loop.train_step = train_step


def spawn(
    argv: list[str],
    out: Path,
    kill: dict[str, Any] | None,
    stop: dict[str, Any] | None = None,
    *,
    count: bool = True,
) -> int:
    """Fork a child that runs ``fmnist-tui ARGV`` with stdout in OUT.out, stderr in OUT.err,
    counting the calls a kill can land in (in OUT.counts) unless ``count`` is false; with
    ``stop``, one that is stopped as the stop trial says (see ``install_stop``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 99
    try:
        for fd, suffix in ((1, ".out"), (2, ".err")):
            target = os.open(f"{out}{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        if stop is not None:
            install_stop(stop)
            code = detached(argv) if stop["how"] == "detached" else main(argv)
        elif count:
            counters: dict[str, _Counter] = {}
            install(kill, counters)
            code = main(argv)
            Path(f"{out}.counts").write_text(json.dumps({k: c.calls for k, c in counters.items()}))
        else:
            code = main(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --- stop trials ---------------------------------------------------------------------


def install_stop(stop: dict[str, Any]) -> None:
    """Stop this process's run, once, right after the event ``stop["at"]`` names is logged.

    ``at`` is ``{"event": "batch", "epoch": E, "batch": B}`` (B 1-based) or
    ``{"event": "epoch", "epoch": E}`` (the end of epoch E, before its checkpoint);
    ``by`` is a signal's name, sent to this process, or ``control`` for a stop written to
    ``control.json``, which the trainer then reads at every batch boundary.
    """
    at, by = stop["at"], stop["by"]
    real_append = Run.append_event
    sent = []
    # Read at every batch boundary, so a stop written there is obeyed at that boundary.
    engine.trainer.CONTROL_POLL_SECONDS = 0.0

    def due(event: Any) -> bool:
        if event.kind != at["event"] or event.epoch != at["epoch"]:
            return False
        return at["event"] != "batch" or event.batch == at["batch"]

    def append_event(self: Run, event: Any) -> None:
        real_append(self, event)
        if not sent and due(event):
            sent.append(event)
            if by == "control":
                self.request("stop")
            else:
                os.kill(os.getpid(), getattr(signal, by))

    Run.append_event = append_event


def detached(argv: list[str]) -> int:
    """What ``fmnist-tui train --detach ARGV`` starts: the run folder made as the parent
    makes it, then the detached trainer (``engine.detach.main``) in this process."""
    from engine.detach import main as trainer_main
    from engine.state import RunState
    from tui.cli import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(argv))
    run = Run.create(config, state=RunState.STARTING)
    return trainer_main([str(run.path), "--new"])


def last_checkpoint(run: Run) -> dict[str, Any] | None:
    """The last ``checkpoint`` event in the run's log: where its ``last.pt`` stands."""
    saved = [e.to_dict() for e in run.read_metrics().events if e.kind == "checkpoint"]
    return saved[-1] if saved else None


def run_stop(stop: dict[str, Any], train: list[str], work: Path) -> dict[str, Any]:
    """One stop trial: train until stopped, look, resume with the CLI, look again."""
    runs_dir = work / stop["id"]
    out = work / f"{stop['id']}-stop"
    argv = ["train", *train, "--runs-dir", str(runs_dir)]
    if stop["how"] == "cli":
        argv.insert(1, "--json")
    result: dict[str, Any] = {"id": stop["id"]}
    result["ended"] = wait(spawn(argv, out, None, stop, count=False))
    result["stderr"] = Path(f"{out}.err").read_text()
    result["after"] = look(runs_dir)
    folders = result["after"]["folders"]
    result["checkpoint"] = last_checkpoint(Run(Path(folders[0]))) if folders else None
    out = work / f"{stop['id']}-resume"
    ref = _run_ref(runs_dir)
    argv = ["train", "--json", "--resume", ref, "--runs-dir", str(runs_dir)]
    ended = wait(spawn(argv, out, None, count=False))
    result["resume"] = {
        "ended": ended,
        "stdout": Path(f"{out}.out").read_text(),
        "stderr": Path(f"{out}.err").read_text(),
        "after": look(runs_dir),
    }
    return result


def wait(pid: int, kill_after: float | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Wait for a child (SIGKILLing it after ``kill_after`` seconds); how did it end?"""
    deadline = time.monotonic() + timeout
    killed_at = None if kill_after is None else time.monotonic() + kill_after
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if killed_at is not None and now >= killed_at:
            os.kill(pid, signal.SIGKILL)
            killed_at = None
        if now > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"exit": None, "signal": None, "hung": True}
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        return {"exit": None, "signal": os.WTERMSIG(status), "hung": False}
    return {"exit": os.WEXITSTATUS(status), "signal": None, "hung": False}


def look(runs_dir: Path) -> dict[str, Any]:
    """What a user finds in the runs folder: the listing, and the run's state and log."""
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    seen: dict[str, Any] = {"folders": [str(p) for p in folders]}
    try:
        infos = list_runs(runs_dir)
    except Exception as exc:  # the test reports any crash, with its type
        seen["list_error"] = f"{type(exc).__name__}: {exc}"
        return seen
    seen["listed"] = [
        {"id": i.id, "path": str(i.path), "state": i.state, "resumable": i.resumable} for i in infos
    ]
    for folder in folders:
        run = Run(folder)
        log = run.read_metrics()
        seen.setdefault("runs", []).append(
            {
                "path": str(folder),
                "state": run.state(),
                "torn_line": log.torn_line,
                "bad_lines": log.bad_lines,
                "epochs": [e.to_dict() for e in log.epochs],
                "temp_files": sorted(p.name for p in folder.iterdir() if p.suffix == ".tmp"),
            }
        )
    return seen


def resolve(kill: dict[str, Any], counts: dict[str, int], seconds: float) -> dict[str, Any]:
    """Turn the plan's ``u`` into a call number (or a delay) for this build of the engine."""
    kill = dict(kill)
    if kill["kind"] == "timed":
        kill["delay"] = kill["u"] * seconds
    else:
        calls = counts[kill.get("file") or kill["kind"]]
        kill["call"] = 1 + min(int(kill["u"] * calls), calls - 1)
    return kill


def run_trial(
    trial: dict[str, Any], train: list[str], work: Path, counts: dict[str, int], seconds: float
) -> dict[str, Any]:
    runs_dir = work / trial["id"]
    result: dict[str, Any] = {"id": trial["id"], "steps": []}
    for i, planned in enumerate(trial["kills"]):
        kill = resolve(planned, counts, seconds)
        if i == 0:
            argv = ["train", "--json", *train, "--runs-dir", str(runs_dir)]
        else:
            argv = ["train", "--json", "--resume", _run_ref(runs_dir), "--runs-dir", str(runs_dir)]
        out = work / f"{trial['id']}-{i}"
        timed = kill["kind"] == "timed"
        pid = spawn(argv, out, None if timed else kill)
        ended = wait(pid, kill.get("delay") if timed else None)
        result["steps"].append({"kill": kill, "ended": ended, "after": look(runs_dir)})
    out = work / f"{trial['id']}-resume"
    ref = _run_ref(runs_dir)
    ended = wait(
        spawn(["train", "--json", "--resume", ref, "--runs-dir", str(runs_dir)], out, None)
    )
    result["resume"] = {
        "ref": ref,
        "ended": ended,
        "stdout": Path(f"{out}.out").read_text(),
        "stderr": Path(f"{out}.err").read_text(),
        "after": look(runs_dir),
    }
    return result


def _run_ref(runs_dir: Path) -> str:
    """The run to resume: its id when listed, else its bare folder (killed while created)."""
    infos = list_runs(runs_dir)
    if infos:
        return infos[0].id
    folders = [p for p in runs_dir.iterdir() if p.is_dir()] if runs_dir.is_dir() else []
    return str(folders[0]) if folders else "none"


def drive(plan: dict[str, Any]) -> dict[str, Any]:
    work = Path(plan["work"])
    train = plan["train"]
    reference = work / "reference"
    started = time.monotonic()
    trials = plan.get("trials", [])
    argv = ["train", "--json", *train, "--runs-dir", str(reference)]
    ended = wait(spawn(argv, work / "reference", None, count=bool(trials)))
    seconds = time.monotonic() - started
    counts = json.loads((work / "reference.counts").read_text()) if trials else {}
    results: dict[str, Any] = {
        "reference": {
            "ended": ended,
            "seconds": seconds,
            "counts": counts,
            "after": look(reference),
        }
    }
    results["trials"] = [run_trial(t, train, work, counts, seconds) for t in trials]
    results["stops"] = [run_stop(s, train, work) for s in plan.get("stops", [])]
    return results


if __name__ == "__main__":
    for name in WARM:
        importlib.import_module(name)
    plan_path, results_path = sys.argv[1:3]
    results = drive(json.loads(Path(plan_path).read_text()))
    Path(results_path).write_text(json.dumps(results, indent=1))
