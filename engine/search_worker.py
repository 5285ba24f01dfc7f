"""A search worker: loads the data once, then runs trials in this process until the study
has enough, each an ordinary run folder in RUNS.

``Worker`` runs in the search's own process when there is one worker, and as
``python -m engine.search_worker`` (one process each, its settings as JSON on standard
input) when there are more. A trial is a ``Trainer`` run of the base config with the
sampled parameters, named ``STUDY-t007``; a listener reports each epoch's validation
accuracy to the trial and stops the trainer at a batch boundary when the pruner says so.
A pruned trial keeps its config, metrics and status (which says where it was pruned), not
its checkpoints. A diverged trial (the loss stopped being finite) is pruned where it
diverged. A trial that early stopping ends (the config's ``early_stopping``) is complete,
its value the best epoch's; its reason says why it ended early. A stop asked for by a
signal (``Worker.stop``) ends the trial as failed, its run resumable, and queues a trial
with the same parameters that resumes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from engine.config import TrainConfig
from engine.control import stop_on_signals
from engine.errors import ConfigError, DivergedError, EngineError
from engine.events import EpochEnd, Event, RunStarted
from engine.runs import Run
from engine.search_common import (
    HOST,
    SearchError,
    SearchOptions,
    load_study,
    open_storage,
    quiet_optuna,
    study_lock,
)
from engine.search_space import SearchSpace
from engine.search_trials import fail_dead_trials, note_on_run, run_of
from engine.state import RunState

if TYPE_CHECKING:
    import optuna

    from engine.data import ImageData
    from engine.trainer import Trainer

# Trials in a row that may fail before a worker gives up (a space that never trains).
FAILURES_IN_A_ROW = 3


class _TrialFailed(Exception):
    """A trial that could not train; its user attribute ``reason`` says why."""


class _Interrupted(Exception):
    """A trial stopped by ``Worker.stop``: failed, its run resumable, and queued again."""


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs: the base config (its own data paths and device), the space,
    the options, its index (its sampler's seed is the base seed + index), a device to
    train on (None: the config's), torch threads (None: torch's default) and a wall-clock
    deadline (Unix seconds; None: none); ``session`` counts the searches of this study
    before this one (see ``seed``); ``command`` is the command that asked for the search
    (its storage password hidden), recorded in each trial's run."""

    base: TrainConfig
    space: SearchSpace
    options: SearchOptions
    index: int = 0
    device: str | None = None
    threads: int | None = None
    deadline: float | None = None
    session: int = 0
    command: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The settings as one JSON object (a worker process reads it on standard input)."""
        return json.dumps(
            {
                "base": self.base.to_dict(),
                "space": self.space.to_dict(),
                "options": self.options.to_dict(),
                "index": self.index,
                "device": self.device,
                "threads": self.threads,
                "deadline": self.deadline,
                "session": self.session,
                "command": list(self.command),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        """``to_json``'s form back; ``ValueError``/``KeyError``/``TypeError`` if malformed,
        ``ConfigError`` if the config or space is refused."""
        data = json.loads(text)
        return cls(
            base=TrainConfig.from_stored(data["base"]),
            space=SearchSpace.from_table(data["space"]),
            options=SearchOptions.from_dict(data["options"]),
            index=int(data["index"]),
            device=data.get("device"),
            threads=data.get("threads"),
            deadline=data.get("deadline"),
            session=int(data.get("session", 0)),
            command=tuple(str(word) for word in data.get("command") or ()),
        )

    @property
    def seed(self) -> int:
        """The sampler's seed: the base seed + the worker's index in the study's first
        session; later sessions (a continued study) shift it by 1000 each, so that they do
        not repeat the first one's random start-up trials. The grid sampler's seed orders
        the grid, which every worker and session must see alike: the base seed."""
        if self.options.sampler == "grid":
            return self.base.seed
        return self.base.seed + self.index + 1000 * self.session

    @property
    def epochs(self) -> int:
        """Each trial's length in epochs."""
        return self.options.epochs or self.base.epochs

    @property
    def trials(self) -> int:
        """Finished trials that end the study (capped at the grid's size for grid)."""
        if self.options.sampler == "grid":
            size = 1
            for values in self.space.grid().values():
                size *= len(values)
            return min(self.options.trials, size)
        return self.options.trials


def make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` (tpe, random, grid) seeded with ``seed``."""
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: a worker treats the others' running trials as bad ones, so parallel
    # workers do not all try the same promising point.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner ``name`` (median, hyperband, none) for trials of ``epochs`` epochs."""
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


class Worker:
    """Runs the study's trials in this process until it has ``trials`` finished ones (or
    the deadline passes, or ``stop()``). ``stop()`` may be called from a signal handler
    or another thread."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.stopping = False
        self.error = ""  # why the worker gave up early ("" when it did not)
        self.trials_run = 0
        self._trainer: Trainer | None = None
        self._data: ImageData | None = None
        self._lock: contextlib.ExitStack | None = None
        self._study: optuna.Study | None = None
        self._base = settings.base  # with its precision resolved, once run() starts

    def stop(self) -> None:
        """Start no more trials, and stop the one training at its next batch boundary."""
        self.stopping = True
        trainer = self._trainer
        if trainer is not None:
            trainer.stop("interrupt")

    def run(self, on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None) -> None:
        """Load the data, then run trials; ``on_trial`` is called with each trial this
        worker finishes. Raises ``SearchError`` for a storage or study problem and
        ``EngineError`` (``DataError``, ``DeviceError``) when the data or device is
        refused; sets ``error`` when it gives up after failing trials in a row."""
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState

        from engine.trainer import load_dataset

        settings, options = self.settings, self.settings.options
        quiet_optuna()
        if settings.command:
            from engine.environment import launched_as

            launched_as(list(settings.command))
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        runs_dir = settings.base.runs_dir
        storage = open_storage(options.storage, runs_dir, options.study)
        study = load_study(
            storage,
            options.study,
            sampler=make_sampler(options.sampler, settings.space, settings.seed),
            pruner=make_pruner(options.pruner, settings.epochs),
        )
        self._study = study
        self._data = load_dataset(settings.base)
        self._base = _resolved(settings.base, settings.device)
        enough = MaxTrialsCallback(settings.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
        told: list[optuna.trial.FrozenTrial] = []

        def finished(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            told.append(trial)
            self.trials_run += 1
            if on_trial is not None:
                on_trial(trial)

        failures: list[str] = []
        while not self.stopping:
            if settings.deadline is not None and time.time() >= settings.deadline:
                break
            with self._locked(runs_dir) as lock:
                fail_dead_trials(study, runs_dir, requeue=options.sampler != "grid")
                if self._has_enough(study):
                    break
                self._lock = lock
                told.clear()
                study.optimize(
                    self._objective,
                    n_trials=1,
                    catch=(_TrialFailed, _Interrupted),
                    callbacks=[enough, finished],
                )
            trial = told[-1] if told else None
            if trial is not None and trial.state == TrialState.FAIL and not self.stopping:
                failures.append(str(trial.user_attrs.get("reason", "no reason given")))
            elif trial is not None:
                failures.clear()
            if len(failures) >= FAILURES_IN_A_ROW:
                self.error = (
                    f"{len(failures)} trials in a row failed, so this worker stopped; "
                    f"the last: {failures[-1]}"
                )
                break

    @contextlib.contextmanager
    def _locked(self, runs_dir: str) -> Iterator[contextlib.ExitStack]:
        """The study lock, held until the objective starts (``_lock.close()``) or the end."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(study_lock(runs_dir, self.settings.options.study))
            try:
                yield stack
            finally:
                self._lock = None

    def _has_enough(self, study: optuna.Study) -> bool:
        """Whether finished and running trials already make the study's number."""
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return len(study.get_trials(deepcopy=False, states=states)) >= self.settings.trials

    # --- one trial --------------------------------------------------------------------

    def _objective(self, trial: optuna.Trial) -> float:
        import optuna

        settings = self.settings
        trial.set_user_attr("worker", {"host": HOST, "pid": os.getpid(), "index": settings.index})
        if self._lock is not None:  # the trial is ours: others may decide now
            self._lock.close()
        values = settings.space.suggest(trial)
        if self.stopping:
            trial.set_user_attr("reason", "interrupted before it started")
            raise _Interrupted("interrupted before it started")
        try:
            run, trainer = self._start(trial, values)
        except (EngineError, OSError) as exc:
            reason = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
            trial.set_user_attr("reason", reason)
            raise _TrialFailed(reason) from None
        pruned: dict[str, Any] = {}
        trainer.add_listener(self._listener(trial, trainer, run, pruned))
        self._trainer = trainer
        if self.stopping:
            trainer.stop("interrupt")
        try:
            result = trainer.fit()
        except DivergedError as exc:
            epoch = trainer.state.epoch + 1
            self._prune(trial, run, epoch, f"diverged: {exc}")
            raise optuna.TrialPruned(f"diverged at epoch {epoch}") from None
        except EngineError as exc:
            trial.set_user_attr("reason", str(exc))
            raise _TrialFailed(str(exc)) from None
        finally:
            self._trainer = None
        if result.status == RunState.STOPPED:
            why = trainer.control.stop_reason
            if why == "pruned":
                epoch = int(pruned["epoch"])
                value = float(pruned["value"])
                self._prune(trial, run, epoch, f"validation accuracy {100 * value:.2f}% after it")
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            self._interrupted(trial, run, why)
        trial.set_user_attr("test_accuracy", result.best_test_accuracy)
        if result.reason:  # early stopping ended it: complete all the same
            trial.set_user_attr("reason", result.reason)
        return result.best_accuracy

    def _start(self, trial: optuna.Trial, values: dict[str, Any]) -> tuple[Run, Trainer]:
        """The trial's run (new, or the one it resumes) and its trainer; ``ConfigError``
        for parameters the config refuses together, ``CheckpointError`` or ``OSError``
        when the run cannot be made or taken."""
        from engine.trainer import Trainer

        settings = self.settings
        study = settings.options.study
        resumed = self._resumable(trial.user_attrs.get("resume_run"))
        if resumed is not None:
            trial.set_user_attr("run_id", resumed.id)
            if settings.device and resumed.config().device != settings.device:
                # This worker's device (a run's device may change when it resumes).
                resumed.write_config(replace(resumed.config(), device=settings.device))
            trainer = Trainer.resume(resumed, data=self._data, epochs=settings.epochs)
            return resumed, trainer
        changes: dict[str, Any] = {
            **values,
            "epochs": settings.epochs,
            "name": f"{study}-t{trial.number:03d}",
        }
        config = TrainConfig.from_dict(changes, base=self._base).with_absolute_paths()
        run = Run.create(config)
        run.acquire()  # until fit() is done with it
        run.write_status(RunState.RUNNING, study=study, trial=trial.number)
        trial.set_user_attr("run_id", run.id)
        return run, Trainer(config, data=self._data, run=run)

    def _resumable(self, run_id: Any) -> Run | None:
        """The run a queued trial resumes, when it is here, idle and has a checkpoint."""
        run = run_of(self.settings.base.runs_dir, run_id)
        if run is None or run.is_locked() or not run.has_checkpoint():
            return None
        if run.state() == RunState.FINISHED:
            return None
        return run

    def _listener(
        self, trial: optuna.Trial, trainer: Trainer, run: Run, pruned: dict[str, Any]
    ) -> Callable[[Event], None]:
        """Reports each epoch's validation accuracy; stops the trainer when pruned."""
        study = self.settings.options.study
        reported: set[int] = set()

        def report(epoch: EpochEnd) -> None:
            value = epoch.val_accuracy if epoch.val_accuracy is not None else epoch.test_accuracy
            if epoch.epoch not in reported:
                trial.report(value, epoch.epoch)
                reported.add(epoch.epoch)

        def on_event(event: Event) -> None:
            if isinstance(event, RunStarted):
                with contextlib.suppress(OSError):
                    run.write_status(RunState.RUNNING, study=study, trial=trial.number)
                for earlier in trainer.history:  # a resumed run's epochs so far
                    report(earlier)
            elif isinstance(event, EpochEnd):
                report(event)
                if event.epoch < event.epochs and not pruned and trial.should_prune():
                    pruned.update(epoch=event.epoch, value=event.val_accuracy or 0.0)
                    trainer.stop("pruned")

        return on_event

    def _prune(self, trial: optuna.Trial, run: Run, epoch: int, why: str) -> None:
        """Keep the pruned run's config, metrics and status (state "pruned", with why),
        not its checkpoints."""
        from engine.recorder import kept_checkpoints

        for path in (run.last_path, run.best_path, *kept_checkpoints(run).values()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        study = self.settings.options.study
        reason = f"pruned at epoch {epoch} ({why}); trial {trial.number} of study {study}"
        note_on_run(run, reason, state=RunState.PRUNED, pruned_at=epoch)
        trial.set_user_attr("pruned_at", epoch)
        trial.set_user_attr("reason", reason)

    def _interrupted(self, trial: optuna.Trial, run: Run, why: str) -> None:
        """A trial stopped from outside fails; a signal's stop queues it again to resume."""
        assert self._study is not None
        if why == "interrupt" and self.settings.options.sampler != "grid":
            reason = "interrupted; its run is resumable and a queued trial resumes it"
            self._study.enqueue_trial(
                dict(trial.params), user_attrs={"resume_run": run.id, "retry_of": trial.number}
            )
        else:
            reason = f"stopped ({why}) from outside the search; its run is resumable"
        trial.set_user_attr("reason", reason)
        note_on_run(run, f"trial {trial.number} of study {self.settings.options.study}: {reason}")
        raise _Interrupted(reason)


def _resolved(base: TrainConfig, device: str | None) -> TrainConfig:
    """``base`` with precision auto resolved for the device this worker trains on, once
    (on a CPU, auto times bf16 against fp32, about 0.1 s: not once a trial). Raises
    ``DeviceError`` for a device this machine does not have."""
    from engine.device import resolve_precision, training_device

    if device is not None:
        base = replace(base, device=device)
    where = training_device(base.device, base.precision)
    if base.precision != "auto":
        return base
    return replace(base, precision=resolve_precision("auto", where)[0])


def main() -> int:
    """A worker process: settings as JSON on standard input; on a problem one JSON line
    ``{"error": ...}`` on standard output. Exit status: 0 done (or stopped), 1 it gave up
    after trials failed in a row, 2 it could not start (storage, data, device)."""
    try:
        settings = WorkerSettings.from_json(sys.stdin.read())
    except (ValueError, KeyError, TypeError) as exc:
        print(json.dumps({"error": f"bad worker settings: {exc}"}), flush=True)
        return 2
    worker = Worker(settings)
    with stop_on_signals(worker.stop):
        try:
            worker.run()
        except (SearchError, EngineError, OSError) as exc:
            print(json.dumps({"error": str(exc)}), flush=True)
            return 2
    if worker.error:
        print(json.dumps({"error": worker.error}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
