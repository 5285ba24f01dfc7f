"""Detached runs: training in a process of its own that outlives the terminal that asked.

``spawn_detached(config)`` creates the run folder and starts ``python -m engine.detach``
in a new session; ``spawn_detached(run)`` resumes (or, with ``epochs``, extends) a run
the same way. The child takes the run's lock itself and records its pid in
``status.json`` before anything slow (importing torch, loading data), and
``spawn_detached`` returns once the status shows it, or raises with the child's reason.
No lock descriptor, environment variable or scraped output passes between them: the
run folder is the only link. The child writes plain lines to ``output.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import files
from engine.config import TrainConfig
from engine.control import stop_on_signals
from engine.device import training_device
from engine.distributed import join, leave, torchrun_world_size
from engine.environment import launched_as
from engine.errors import CheckpointError, EngineError, TrainingError
from engine.events import Event
from engine.runs import Run
from engine.state import RunState
from engine.tensorboard import check_tensorboard

# Seconds the child may take to take the run and record its pid.
START_TIMEOUT = 30.0
POLL_SECONDS = 0.05


class LaunchError(EngineError):
    """The detached run could not be started; the message says why."""


@dataclass(frozen=True)
class Detached:
    """A run training in its own process: the run and that process's pid."""

    run: Run
    pid: int

    @property
    def run_dir(self) -> Path:
        """The run's folder."""
        return self.run.path


def spawn_detached(
    source: TrainConfig | Run | str | Path,
    *,
    epochs: int | None = None,
    timeout: float = START_TIMEOUT,
    allow_data_change: bool = False,
    model_factory: str | None = None,
) -> Detached:
    """Start a new run (``source`` a config) or resume one (a run or its folder), detached.

    ``epochs`` sets a resumed run's new total; ``allow_data_change`` lets a resumed run go
    on with data that changed since it was trained (``Trainer.resume``); ``model_factory``
    lets the child import a model from the user's code (``Trainer``). Returns once the
    child holds the run and ``status.json`` names it as running, within ``timeout``
    seconds. Raises
    ``CheckpointError`` for a run that is training already, cannot be created or cannot
    be written here ("cannot write in DIR: Read-only file system"), and ``LaunchError``
    with the child's reason if it fails or does not start in time (or ``output.log`` is
    a symlink or not a regular file: never written through). A new run's unusable
    ``tensorboard`` folder (or the package missing) is a ``ConfigError``, before its run
    folder is made.
    """
    if isinstance(source, TrainConfig):
        check_tensorboard(source.tensorboard)  # before a run folder is made
        # Where its data is, absolutely: the run resumes from any folder.
        source = source.with_absolute_paths()
        run = Run.create(source, state=RunState.STARTING)
        args = ["--new"]
    else:
        run = source if isinstance(source, Run) else Run(Path(source))
        if run.is_locked():
            raise CheckpointError(f"run {run.id} is already training")
        # A read-only view, a symlinked output.log: said here, before a child is started.
        run.check_writable()
        run.check_files()
        args = ["--resume"] + (["--epochs", str(epochs)] if epochs is not None else [])
        args += ["--allow-data-change"] if allow_data_change else []
    args += ["--model-factory", model_factory] if model_factory is not None else []
    try:
        log = files.open_append(run.log_path)
    except OSError as exc:
        raise LaunchError(f"cannot write {run.log_path}: {exc.strerror or exc}") from None
    with log:
        try:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "engine.detach",
                    str(run.path.resolve()),
                    *args,
                    "--command",
                    json.dumps(sys.argv),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LaunchError(f"could not start the detached run: {exc}") from None
    # Reap the child when it ends, so a long-lived caller (the app) keeps no zombie.
    threading.Thread(target=child.wait, daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            status = run.read_status()
            # A data-parallel run's status is its rank 0's, the child's child.
            if child.pid in (status.get("pid"), status.get("launcher_pid")):
                if status.get("state") == RunState.RUNNING.value:
                    return Detached(run, child.pid)
                if status.get("state") == RunState.FAILED.value:
                    reason = status.get("reason") or "no reason"
                    raise LaunchError(f"the run did not start: {reason}")
            if child.poll() is not None:
                raise LaunchError(f"the run did not start: {_last_line(run.log_path)}")
            if time.monotonic() > deadline:
                raise LaunchError(f"the run did not start within {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
    except LaunchError:
        if isinstance(source, TrainConfig) and not run.has_checkpoint():
            # A new run that never started is no run at all: leave nothing behind.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            if child.poll() is not None:
                shutil.rmtree(run.path, ignore_errors=True)
        raise


def _last_line(path: Path) -> str:
    try:
        text = files.read_text(path, files.SMALL_FILE_LIMIT)
    except OSError:
        return "no reason given"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else "no reason given"


def main(argv: Sequence[str] | None = None) -> int:
    """The detached child: take the run, record this pid, train, log plain lines.

    Returns the exit status: 0 finished or stopped, 130 stopped by a signal, 1 training
    failed, 2 the run could not be taken, read or started (the reason is logged).
    """
    from engine.textlog import TextLog
    from engine.trainer import Trainer

    parser = argparse.ArgumentParser(prog="python -m engine.detach")
    parser.add_argument("run_dir")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--new", action="store_true")
    mode.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--allow-data-change", action="store_true")
    parser.add_argument("--model-factory", help="the factory reference the user named")
    parser.add_argument("--command", help="the command that asked for the run (JSON argv)")
    args = parser.parse_args(argv)
    if args.command:
        with contextlib.suppress(ValueError, TypeError):
            launched_as([str(word) for word in json.loads(args.command)])
    run = Run(Path(args.run_dir))
    ranked = torchrun_world_size() > 1  # one rank of a data-parallel run
    if not ranked:
        try:
            processes = run.config().nproc_per_node
        except CheckpointError:
            processes = 1  # said below, as for any run
        if processes > 1:  # this process launches the ranks and waits for them
            return _launch_ranks(run, processes, sys.argv[1:] if argv is None else argv)
    elif int(os.environ.get("RANK", "0")) != 0:
        return _other_rank(run, args)
    try:
        run.acquire()
    except CheckpointError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    before = run.read_status()
    claimed = False
    text = TextLog()

    def say(event: Event) -> None:
        for line in text.lines(event):
            with contextlib.suppress(OSError):
                print(line, flush=True)

    started = threading.Event()
    try:
        config = run.config()  # first: a run it cannot read is never marked running
        # The pid at once; then what can fail before training (the device, the data,
        # an --epochs out of bounds) fails here, as the parent's answer, not a log line.
        # A rank's parent is the launcher spawn_detached started and waits on.
        launcher = {"launcher_pid": os.getppid()} if ranked else {}
        run.write_status(RunState.STARTING, pid=os.getpid(), reason="", **launcher)
        claimed = True
        world = join(config.device) if ranked else None
        if world is None:
            training_device(config.device, config.precision)
        if args.resume:
            trainer = Trainer.resume(
                run,
                epochs=args.epochs,
                listeners=(say,),
                allow_data_change=args.allow_data_change,
                model_factory=args.model_factory,
                world=world,
            )
        else:
            trainer = Trainer(
                config,
                run=run,
                listeners=(say,),
                model_factory=args.model_factory,
                world=world,
            )
        # The data, its check and (resuming) its identity against the run's record.
        trainer.prepare_data()
        # Requests written from here on are obeyed, even a stop sent the moment the
        # parent returns, before training begins.
        trainer.control.watch(run)
        trainer.add_listener(lambda _e: started.set())
        run.write_status(RunState.RUNNING, reason="")
    except (OSError, EngineError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"error: {reason}", flush=True)
        with contextlib.suppress(OSError):
            if args.new:
                run.write_status(RunState.FAILED, reason=reason)
            elif claimed:
                _restore_status(run, before)
        return 2
    try:
        with stop_on_signals(lambda: trainer.stop("interrupt")):
            result = trainer.fit()
    except TrainingError as exc:
        print(f"training failed: {exc}", flush=True)
        return 1
    except EngineError as exc:
        print(f"error: {exc}", flush=True)
        if args.resume and not started.is_set():
            _restore_status(run, before)
        return 2
    finally:
        leave()
    interrupted = trainer.control.stop_reason == "interrupt"
    return 130 if result.status == RunState.STOPPED and interrupted else 0


def _launch_ranks(run: Run, processes: int, argv: Sequence[str]) -> int:
    """Start ``processes`` ranks of this same command under torchrun's agent and wait;
    when one dies, the run's status and log say which (``engine.launch``)."""
    from engine.launch import launch

    code = launch(run, nproc_per_node=processes, module="engine.detach", args=list(argv))
    status = run.read_status()
    if "failed_rank" in status and status.get("state") == RunState.FAILED.value:
        print(f"training failed: {status.get('reason', '')}", flush=True)
    return code


def _other_rank(run: Run, args: argparse.Namespace) -> int:
    """A rank other than 0: trains beside rank 0 and writes nothing (rank 0 reports)."""
    from engine.trainer import Trainer

    try:
        config = run.config()
        world = join(config.device)
        if args.resume:
            trainer = Trainer.resume(
                run,
                epochs=args.epochs,
                allow_data_change=args.allow_data_change,
                model_factory=args.model_factory,
                world=world,
            )
        else:
            trainer = Trainer(config, run=run, model_factory=args.model_factory, world=world)
        with stop_on_signals(lambda: trainer.stop("interrupt")):
            trainer.fit()
    except EngineError:
        return 1
    finally:
        leave()
    return 0


def _restore_status(run: Run, before: dict[str, object]) -> None:
    """A resume that never started leaves the run's status as it was."""
    state = RunState.parse(before.get("state"), RunState.INTERRUPTED)
    if state.live:
        state = RunState.INTERRUPTED
    fields = {k: v for k, v in before.items() if k not in ("state", "pid", "host", "updated")}
    with contextlib.suppress(OSError):
        run.write_status(state, **fields)


if __name__ == "__main__":
    sys.exit(main())
