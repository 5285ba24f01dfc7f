"""Hyperparameter search with Optuna: a study of trials, each an ordinary run folder.

``run_search(base, space, options)`` creates the study (once, before any worker starts),
fails trials whose worker died, and runs trials until the study has ``options.trials``
finished ones (complete and pruned, across every worker and restart): in this process
with one worker, else in ``workers`` processes (``python -m engine.search_worker``), or
one per device, that share the storage. Trials are judged on their validation accuracy,
reported every epoch, which the pruner acts on. ``spawn_search`` runs the whole search in
a session of its own (``python -m engine.search``, its output in RUNS/studies/NAME.log).

The study keeps what it was made with as user attributes (``base_config``, ``space``,
``epochs``, ``sampler``, ``pruner``), so ``study_rows``, ``best_config`` and ``importance``
need nothing but its name and storage. The storage is the journal RUNS/studies/NAME.journal unless a
``postgresql://`` URL is given (``engine.search_common``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files
from engine.config import FIELDS, TrainConfig
from engine.control import stop_on_signals
from engine.errors import CheckpointError, ConfigError, EngineError
from engine.fields import MODELS, SHOWN_LIMIT, clip, epochs_text, is_model_reference
from engine.runs import Run, pid_alive
from engine.search_common import (
    HOST,
    PRUNERS,
    SAMPLERS,
    STUDIES,
    SearchError,
    SearchOptions,
    check_study_name,
    default_study_name,
    forget_journal,
    hide_password,
    journal_path,
    list_study_names,
    load_study,
    lock_path,
    log_path,
    now_text,
    open_storage,
    process_path,
    read_process,
    study_lock,
    write_process,
)
from engine.search_space import Choices, SearchSpace, decode_params
from engine.search_trials import TrialRow, fail_dead_trials, run_of, trial_line, trial_row
from engine.search_worker import Worker, WorkerSettings
from engine.tensorboard import check_tensorboard

if TYPE_CHECKING:
    import optuna

__all__ = [
    "STUDIES",
    "SearchError",
    "SearchOptions",
    "SearchResult",
    "StudySettings",
    "TrialRow",
    "best_config",
    "best_config_path",
    "check_search",
    "check_study_name",
    "create_study",
    "default_study_name",
    "delete_study",
    "fail_dead_trials",
    "importance",
    "journal_path",
    "list_studies",
    "log_path",
    "open_storage",
    "run_search",
    "search_process",
    "spawn_search",
    "stop_search",
    "study_rows",
    "study_settings",
    "summary_line",
    "trial_line",
    "write_best_config",
]

# Settings that may differ between a study and a process that joins it: where it computes,
# finds its files and writes its TensorBoard files (another machine), and the base's
# length and name (the search's --epochs sets a trial's length; trials are named after the
# study).
MAY_DIFFER = frozenset(
    {
        "device",
        "runs_dir",
        "name",
        "data_dir",
        "custom_csv",
        "custom_images",
        "custom_test_csv",
        "classes_file",
        "tensorboard",
    }
)
POLL_SECONDS = 0.25  # how often the search looks at its workers and the storage
DEAD_CHECK_SECONDS = 2.0  # how often it looks for trials whose worker died


@dataclass(frozen=True)
class StudySettings:
    """What a study was made with: the base config, the space, each trial's epochs, and
    its sampler and pruner (None for a study made before they were recorded)."""

    base: TrainConfig
    space: SearchSpace
    epochs: int
    sampler: str | None = None
    pruner: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """How a search ended. ``rows`` are every trial of the study; ``best`` the complete
    trial of highest validation accuracy (None without one); ``wall_seconds`` this call's
    wall time; ``interrupted`` True when a signal stopped it; ``error`` why workers gave up
    ("" when none did)."""

    study: str
    rows: list[TrialRow]
    best: TrialRow | None
    wall_seconds: float
    interrupted: bool = False
    error: str = ""
    reported: list[int] = field(default_factory=list)  # trials this call finished

    def count(self, state: str) -> int:
        """How many trials are in ``state`` ("complete", "pruned", "failed", ...)."""
        return sum(1 for row in self.rows if row.state == state)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        best = self.best
        return {
            "study": self.study,
            "best_trial": best.number if best else None,
            "best_value": best.value if best else None,
            "best_test_accuracy": best.test_accuracy if best else None,
            "best_params": dict(best.params) if best else None,
            "best_run_id": best.run_id if best else None,
            "complete": self.count("complete"),
            "pruned": self.count("pruned"),
            "failed": self.count("failed"),
            "wall_seconds": round(self.wall_seconds, 3),
            "interrupted": self.interrupted,
            "error": self.error,
        }


def summary_line(result: SearchResult) -> str:
    """The closing line of a headless search."""
    best = result.best
    if best is not None:
        test = "-" if best.test_accuracy is None else f"{100 * best.test_accuracy:.2f}%"
        head = (
            f"best: trial {best.number}, validation {100 * (best.value or 0):.2f}%, test "
            f"{test} (run {best.run_id})"
        )
    else:
        head = "no trial completed"
    minutes, seconds = divmod(result.wall_seconds, 60)
    wall = f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.1f}s"
    counts = (
        f"{result.count('complete')} complete, {result.count('pruned')} pruned, "
        f"{result.count('failed')} failed"
    )
    return f"study {result.study}: {head}; {counts}; wall time {wall}"


# --- the study ---------------------------------------------------------------------------


def check_search(base: TrainConfig, space: SearchSpace, options: SearchOptions) -> None:
    """Refuse a search that cannot run, before anything starts: ``SearchError`` for a bad
    study name, sampler, pruner, trial count, worker count or timeout, a config without a
    validation split (trials are judged on it), or a grid over ranges; ``ConfigError`` for
    a ``tensorboard`` folder the trials cannot write their event files in."""
    check_study_name(options.study)
    check_tensorboard(base.tensorboard)
    _check_devices(base, options)
    if options.sampler not in SAMPLERS:
        raise SearchError(f"--sampler {options.sampler}: use one of {', '.join(SAMPLERS)}")
    if options.pruner not in PRUNERS:
        raise SearchError(f"--pruner {options.pruner}: use one of {', '.join(PRUNERS)}")
    if options.trials < 1:
        raise SearchError(f"--trials {options.trials}: give 1 or more")
    if options.workers < 1:
        raise SearchError(f"--workers {options.workers}: give 1 or more")
    if options.timeout is not None and options.timeout <= 0:
        raise SearchError(f"--timeout {options.timeout:g}: give a number of seconds above 0")
    if options.epochs is not None:
        try:
            TrainConfig.from_dict({"epochs": options.epochs}, base=base)
        except ConfigError as exc:
            raise SearchError(f"--epochs: {exc}") from None
    _check_models(base, space)
    if base.val_fraction <= 0:
        raise SearchError(
            "val_fraction 0: trials are judged on their validation accuracy, and with "
            "val_fraction 0 there is no validation split; give --val-fraction between 0 "
            "and 0.9 (default 0.1)"
        )
    if options.sampler == "grid":
        try:
            space.grid()
        except ConfigError as exc:
            raise SearchError(f"--sampler grid: {'; '.join(exc.problems)}") from None


def _check_models(base: TrainConfig, space: SearchSpace) -> None:
    """``SearchError`` when the base config or the space's ``model`` list names a factory
    of the user's own code (``package.module:factory``, ``file.py:factory``): a search's
    workers import no user code, so its trials train the registry's models only."""
    named = [base.model]
    param = space.params.get("model")
    if isinstance(param, Choices):
        named += [str(value) for value in param.values]
    references = [name for name in dict.fromkeys(named) if is_model_reference(name)]
    if references:
        raise SearchError(
            f"model {', '.join(references)}: a search trains the registry's models "
            f"({', '.join(MODELS)}) only, since its workers import none of your own code; "
            f"train your own model with `fmnist-tui train --model {references[0]}`"
        )


def _check_devices(base: TrainConfig, options: SearchOptions) -> None:
    """``SearchError`` when a device the workers would train on is not on this machine
    (or cannot train in the base's precision): each of ``options.devices``, else the
    base's ``device``."""
    from engine.device import training_device
    from engine.errors import DeviceError

    flag = "--devices" if options.devices else "--device"
    for device in options.devices or (base.device,):
        try:
            training_device(device, base.precision)
        except DeviceError as exc:
            raise SearchError(f"{flag}: {exc}") from None


def _text(value: object) -> str:
    return clip(json.dumps(value), SHOWN_LIMIT)


def _differences(
    stored: StudySettings,
    base: TrainConfig,
    space: SearchSpace,
    epochs: int,
    options: SearchOptions,
) -> str:
    before, now = stored.base.to_dict(), base.to_dict()
    changed = [
        f"{name} {_text(before.get(name))} there, {_text(now[name])} here"
        for name in FIELDS
        if name not in MAY_DIFFER and before.get(name) != now[name]
    ]
    if stored.space.to_dict() != space.to_dict():
        changed.append("another search space")
    if stored.epochs != epochs:
        changed.append(f"trials of {epochs_text(stored.epochs)} there, {epochs} here")
    if stored.sampler is not None and stored.sampler != options.sampler:
        changed.append(f"sampler {stored.sampler} there, {options.sampler} here")
    if stored.pruner is not None and stored.pruner != options.pruner:
        changed.append(f"pruner {stored.pruner} there, {options.pruner} here")
    return "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")


def _settings_of(study: optuna.Study) -> StudySettings | None:
    attrs = study.user_attrs
    sampler, pruner = attrs.get("sampler"), attrs.get("pruner")
    try:
        return StudySettings(
            base=TrainConfig.from_stored(attrs["base_config"]),
            space=SearchSpace.from_table(attrs["space"]),
            epochs=int(attrs["epochs"]),
            sampler=sampler if sampler in SAMPLERS else None,
            pruner=pruner if pruner in PRUNERS else None,
        )
    except (KeyError, TypeError, ValueError):  # ConfigError is a ValueError
        return None


def create_study(base: TrainConfig, space: SearchSpace, options: SearchOptions) -> optuna.Study:
    """Create the study (or open it, when it exists) in its storage, recording ``base``,
    ``space``, the trials' epochs, the sampler and the pruner as its user attributes. An
    existing study must have been made with the same settings (beyond ``MAY_DIFFER``),
    space, epochs, sampler and pruner, else
    ``SearchError`` says what differs. Held under the study's lock, so concurrent first
    creations on one machine do not race."""
    import optuna

    name = check_study_name(options.study)
    epochs = options.epochs or base.epochs
    storage = open_storage(options.storage, base.runs_dir, name)
    with study_lock(base.runs_dir, name):
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            study = optuna.create_study(
                study_name=name, storage=storage, direction="maximize", load_if_exists=True
            )
            study.set_user_attr("base_config", base.with_absolute_paths().to_dict())
            study.set_user_attr("space", space.to_dict())
            study.set_user_attr("epochs", epochs)
            study.set_user_attr("sampler", options.sampler)
            study.set_user_attr("pruner", options.pruner)
            study.set_user_attr("created", now_text())
            return study
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {name} is not one of fmnist-tui's (it minimises)")
    stored = _settings_of(study)
    if stored is None:
        raise SearchError(f"study {name} is not one of fmnist-tui's (it records no settings)")
    differ = _differences(stored, base, space, epochs, options)
    if differ:
        raise SearchError(
            f"study {name} was made with other settings ({differ}); continue it without "
            "config flags, --config, --epochs, --sampler or --pruner (its own are used), or "
            "give another --study"
        )
    return study


def study_settings(
    runs_dir: str | Path, study: str, storage: str | None = None
) -> StudySettings | None:
    """What ``study`` was made with, or None when there is no such study (``SearchError``
    for a storage problem or a study that is not one of fmnist-tui's)."""
    import optuna

    if storage is None and not journal_path(runs_dir, study).is_file():
        return None
    opened = open_storage(storage, runs_dir, study, create=False)
    try:
        found = optuna.load_study(study_name=study, storage=opened)
    except KeyError:  # no such study (yet)
        return None
    settings = _settings_of(found)
    if settings is None:
        raise SearchError(f"study {study} is not one of fmnist-tui's (it records no settings)")
    return settings


def _open(runs_dir: str | Path, study: str, storage: str | None) -> optuna.Study:
    check_study_name(study)
    return load_study(open_storage(storage, runs_dir, study, create=False), study)


def study_rows(runs_dir: str | Path, study: str, storage: str | None = None) -> list[TrialRow]:
    """Every trial of ``study``, by number; ``SearchError`` if there is no such study."""
    found = _open(runs_dir, study, storage)
    return [trial_row(t, runs_dir) for t in found.get_trials(deepcopy=False)]


def list_studies(runs_dir: str | Path) -> list[str]:
    """The studies with a journal in RUNS/studies, the most recently written first."""
    return list_study_names(runs_dir)


def best_config(runs_dir: str | Path, study: str, storage: str | None = None) -> TrainConfig:
    """The base config with the best complete trial's parameters, for the base config's
    epochs (not the trials'), named ``STUDY-best``; ``SearchError`` when the study has no
    complete trial."""
    import optuna

    found = _open(runs_dir, study, storage)
    settings = _settings_of(found)
    if settings is None:
        raise SearchError(f"study {study} is not one of fmnist-tui's (it records no settings)")
    complete = found.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise SearchError(f"study {study} has no complete trial yet")
    best = max(complete, key=lambda t: (t.value if t.value is not None else -1.0, -t.number))
    values = decode_params(best.params)
    name = f"{study}-best"[:64]
    return TrainConfig.from_dict({**values, "name": name}, base=settings.base)


def best_config_path(runs_dir: str | Path, study: str) -> Path:
    """``RUNS/studies/STUDY.best.toml``: where ``write_best_config`` puts the best
    configuration."""
    return journal_path(runs_dir, study).parent / f"{study}.best.toml"


def write_best_config(runs_dir: str | Path, study: str, storage: str | None = None) -> Path:
    """Write ``best_config`` (its ``runs_dir`` set to ``runs_dir``) atomically as TOML to
    ``best_config_path`` and return that path, for ``train --config PATH``. Raises
    ``SearchError`` as ``best_config`` does, and when the file cannot be written."""
    config = best_config(runs_dir, study, storage)
    config = TrainConfig.from_dict({"runs_dir": str(runs_dir)}, base=config)
    path = best_config_path(runs_dir, study)
    try:
        files.atomic_write(path, config.to_toml().encode())
    except OSError as exc:
        raise SearchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def importance(runs_dir: str | Path, study: str, storage: str | None = None) -> dict[str, float]:
    """Each searched parameter's importance to the validation accuracy (PED-ANOVA, numpy
    only; fractions summing to 1, largest first); {} while too few trials are complete
    (PED-ANOVA needs a few, and at least two distinct values)."""
    import optuna

    found = _open(runs_dir, study, storage)
    complete = found.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        values = optuna.importance.get_param_importances(found, evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {name: float(value) for name, value in values.items()}


def delete_study(runs_dir: str | Path, study: str, storage: str | None = None) -> list[Path]:
    """Remove ``study``: its trials' run folders in ``runs_dir``, the study in its storage,
    and its journal, lock, process record, log and best configuration; returns what was
    removed. Raises ``SearchError`` while a search of it runs, or a trial's run trains, and
    for an unknown study; nothing is removed then."""
    import optuna

    found = _open(runs_dir, study, storage)
    pid = search_process(runs_dir, study)
    if pid is not None:
        raise SearchError(f"study {study} is being searched (pid {pid}); stop it before deleting")
    runs: dict[str, Run] = {}
    for trial in found.get_trials(deepcopy=False):
        for key in ("run_id", "resume_run"):
            run = run_of(runs_dir, trial.user_attrs.get(key))
            if run is not None:
                runs[run.id] = run
    busy = [run.id for run in runs.values() if run.is_locked()]
    if busy:
        raise SearchError(f"study {study}'s run {busy[0]} is training; stop it before deleting")
    removed: list[Path] = []
    for run in runs.values():
        try:
            run.delete()
        except (CheckpointError, OSError) as exc:
            raise SearchError(f"cannot delete run {run.id}: {exc}") from None
        removed.append(run.path)
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=study, storage=open_storage(storage, runs_dir, study))
    journal = journal_path(runs_dir, study)
    forget_journal(journal)
    for path in (journal, lock_path(runs_dir, study), process_path(runs_dir, study)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    for path in (log_path(runs_dir, study), best_config_path(runs_dir, study)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def search_process(runs_dir: str | Path, study: str) -> int | None:
    """The pid of the process searching ``study`` on this host now, else None."""
    record = read_process(runs_dir, study)
    pid = record.get("pid")
    if record.get("host") != HOST or not isinstance(pid, int) or record.get("ended"):
        return None
    return pid if pid_alive(pid) else None


def stop_search(runs_dir: str | Path, study: str) -> bool:
    """Ask the search of ``study`` on this host to stop (SIGTERM: its trials stop at a batch
    boundary, resumable, and are queued again); False when none runs."""
    pid = search_process(runs_dir, study)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return True


# --- running it --------------------------------------------------------------------------


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_settings(
    base: TrainConfig,
    space: SearchSpace,
    options: SearchOptions,
    deadline: float | None,
    session: int,
    command: tuple[str, ...],
) -> list[WorkerSettings]:
    count = options.worker_count
    on_cpu = not options.devices and base.device in ("cpu", "auto")
    threads = max(1, _cores() // count) if on_cpu and count > 1 else None
    return [
        WorkerSettings(
            base=base,
            space=space,
            options=options,
            index=k,
            device=options.devices[k] if options.devices else None,
            threads=threads,
            deadline=deadline,
            session=session,
            command=command,
        )
        for k in range(count)
    ]


def run_search(
    base: TrainConfig,
    space: SearchSpace,
    options: SearchOptions,
    *,
    on_trial: Callable[[TrialRow], None] | None = None,
    command: Sequence[str] | None = None,
) -> SearchResult:
    """Search until the study has ``options.trials`` finished trials (or the timeout, or a
    signal: SIGINT, SIGTERM or SIGHUP stop every worker at a batch boundary, their trials
    failed and queued again to resume). ``on_trial`` is called with each trial finished
    during this call; ``command`` is recorded in each trial's run as the command that asked
    for it (default: this process's ``sys.argv``; a storage password is hidden). Raises
    ``SearchError`` (see ``check_search``, ``create_study``, ``open_storage``) and, with one
    worker, ``EngineError`` for data or device problems."""
    started = time.monotonic()
    check_search(base, space, options)
    study = create_study(base, space, options)
    deadline = time.time() + options.timeout if options.timeout else None
    with study_lock(base.runs_dir, options.study):
        session = study.user_attrs.get("sessions", 0)
        session = session if isinstance(session, int) else 0
        study.set_user_attr("sessions", session + 1)
    asked = tuple(hide_password(word) for word in (sys.argv if command is None else command))
    settings = _worker_settings(base, space, options, deadline, session, asked)
    write_process(
        base.runs_dir, options.study, started=now_text(), workers=len(settings), ended=None
    )
    reported: list[int] = []

    def told(trial: optuna.trial.FrozenTrial) -> None:
        reported.append(trial.number)
        if on_trial is not None:
            on_trial(trial_row(trial, base.runs_dir))

    interrupted, error = False, ""
    try:
        if len(settings) == 1:
            worker = Worker(settings[0])
            with stop_on_signals(worker.stop):
                worker.run(told)
            interrupted, error = worker.stopping, worker.error
        else:
            interrupted, error = _run_workers(study, settings, told)
    finally:
        write_process(base.runs_dir, options.study, ended=now_text())
    rows = [trial_row(t, base.runs_dir) for t in study.get_trials(deepcopy=False)]
    complete = [r for r in rows if r.state == "complete" and r.value is not None]
    best = max(complete, key=lambda r: (r.value or 0.0, -r.number)) if complete else None
    return SearchResult(
        options.study,
        rows,
        best,
        time.monotonic() - started,
        interrupted=interrupted,
        error=error,
        reported=reported,
    )


def _run_workers(
    study: optuna.Study,
    settings: list[WorkerSettings],
    told: Callable[[optuna.trial.FrozenTrial], None],
) -> tuple[bool, str]:
    """Run one worker process per settings; report trials as they finish. Returns whether
    a signal stopped them and why workers failed ("" when none did)."""
    from optuna.trial import TrialState

    runs_dir = settings[0].base.runs_dir
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    seen = {t.number for t in study.get_trials(deepcopy=False, states=finished)}
    stopping = threading.Event()
    procs: list[subprocess.Popen[str]] = []
    outputs: list[str] = []

    def stop() -> None:
        stopping.set()
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    reported_any = [False]

    def report() -> None:
        for trial in study.get_trials(deepcopy=False, states=finished):
            if trial.number not in seen:
                seen.add(trial.number)
                reported_any[0] = True
                told(trial)

    with stop_on_signals(stop):
        for one in settings:
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine.search_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                close_fds=True,
            )
            procs.append(proc)
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(one.to_json())
                proc.stdin.close()
        if stopping.is_set():
            stop()
        checked = time.monotonic()
        # Every worker polled each time: a dead one is reaped (a zombie's pid is "alive").
        while [proc for proc in procs if proc.poll() is None]:
            time.sleep(POLL_SECONDS)
            report()
            if time.monotonic() - checked > DEAD_CHECK_SECONDS:
                checked = time.monotonic()
                with study_lock(runs_dir, study.study_name):
                    fail_dead_trials(study, runs_dir, requeue=settings[0].options.sampler != "grid")
        report()
    for proc in procs:
        out = proc.stdout.read() if proc.stdout is not None else ""
        for line in out.splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(line).get("error")
                if message and message not in outputs:
                    outputs.append(str(message))
    # Every worker refused to start (data, device, storage): the search could not start.
    if outputs and all(proc.returncode == 2 for proc in procs) and not reported_any[0]:
        raise SearchError(outputs[0])
    return stopping.is_set(), "; ".join(outputs)


def spawn_search(base: TrainConfig, space: SearchSpace, options: SearchOptions) -> int:
    """Start the whole search in a session of its own (``python -m engine.search``), which
    outlives the terminal; its output goes to RUNS/studies/NAME.log. The study exists
    before this returns (``create_study`` runs here first), so a watcher can open it at
    once. Returns the pid. Raises ``SearchError`` as ``check_search`` and
    ``create_study`` do, and when the process cannot be started."""
    check_search(base, space, options)
    create_study(base, space, options)
    path = log_path(base.runs_dir, options.study)
    try:
        log = files.open_append(path)
    except OSError as exc:
        raise SearchError(f"cannot write {path}: {exc.strerror or exc}") from None
    settings = {
        "base": base.to_dict(),
        "space": space.to_dict(),
        "options": options.to_dict(),
        "command": [hide_password(word) for word in sys.argv],
    }
    with log:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "engine.search"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                text=True,
            )
        except OSError as exc:
            raise SearchError(f"could not start the search: {exc}") from None
    assert child.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        child.stdin.write(json.dumps(settings))
        child.stdin.close()
    # Recorded now: a watcher sees the search running from the moment this returns.
    write_process(base.runs_dir, options.study, pid=child.pid, started=now_text(), ended=None)
    # Reap it when it ends, so a long-lived caller (the app) keeps no zombie.
    threading.Thread(target=child.wait, daemon=True).start()
    return child.pid


def main() -> int:
    """A detached search (``spawn_search``): settings as JSON on standard input, one line
    per finished trial and a summary on standard output. Exit status: 0 done, 1 trials
    kept failing, 2 it could not start, 130 stopped by a signal."""
    try:
        data = json.loads(sys.stdin.read())
        base = TrainConfig.from_stored(data["base"])
        space = SearchSpace.from_table(data["space"])
        options = SearchOptions.from_dict(data["options"])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"error: bad search settings: {exc}", flush=True)
        return 2
    print(f"{now_text()} search of study {options.study} started (pid {os.getpid()})", flush=True)
    try:
        command = [str(word) for word in data.get("command") or ()]
        result = run_search(
            base,
            space,
            options,
            on_trial=lambda row: print(trial_line(row), flush=True),
            command=command or None,
        )
    except EngineError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print(summary_line(result), flush=True)
    if result.error:
        print(f"error: {result.error}", flush=True)
    if result.interrupted:
        return 130
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
