"""A study's trials as rows (``TrialRow``), as headless lines, and dead trials failed.

``engine.search`` re-exports the public names; import them from there.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CheckpointError
from engine.runs import Run, pid_alive
from engine.search_common import HOST
from engine.state import RunState

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

# Seconds: a running trial that never said which worker runs it is dead after this long
# (its worker died between asking for it and recording itself).
UNCLAIMED_SECONDS = 60.0


@dataclass(frozen=True)
class TrialRow:
    """One trial, as the trials table, the headless lines and ``--json`` show it.

    ``state`` is "running", "complete", "pruned", "failed" or "waiting" (queued, not yet
    started); ``params`` the sampled values as Optuna stores them (a list field's value as
    text, ``"256-256"``); ``value`` the best validation accuracy (0..1) of its epochs,
    None before its first; ``epochs`` the epochs it reported; ``pruned_at`` the epoch it
    was pruned at (None unless pruned); ``run_id`` its run folder's name in RUNS;
    ``values_by_epoch`` its validation accuracy after each epoch (0..1); ``test_accuracy``
    the test accuracy of its best epoch, when it finished; ``reason`` why it failed or was
    pruned, in words ("" when it has none)."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    epochs: int
    pruned_at: int | None
    run_id: str | None
    values_by_epoch: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return {
            "number": self.number,
            "state": self.state,
            "params": dict(self.params),
            "value": self.value,
            "epochs": self.epochs,
            "pruned_at": self.pruned_at,
            "run_id": self.run_id,
            "values_by_epoch": list(self.values_by_epoch),
            "test_accuracy": self.test_accuracy,
            "reason": self.reason,
        }


def _state_names() -> dict[Any, str]:
    from optuna.trial import TrialState

    return {
        TrialState.RUNNING: "running",
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.WAITING: "waiting",
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def trial_row(trial: FrozenTrial, runs_dir: str | Path | None = None) -> TrialRow:
    """``trial`` as a row (see ``TrialRow``). With ``runs_dir``, a trial failed by another
    process (``fail_dead_trials``) gets its reason from its run's ``status.json``."""
    steps = sorted(trial.intermediate_values)
    values = [float(trial.intermediate_values[step]) for step in steps]
    state = _state_names().get(trial.state, str(trial.state.name).lower())
    value = max(values) if values else None
    if state == "complete" and trial.value is not None:
        value = float(trial.value)
    attrs = trial.user_attrs
    pruned_at = None
    if state == "pruned":
        at = attrs.get("pruned_at")
        pruned_at = at if isinstance(at, int) else (steps[-1] if steps else 0)
    run_id = attrs.get("run_id")
    reason = str(attrs.get("reason", ""))
    if state == "failed" and not reason and runs_dir is not None:
        reason = _noted_reason(runs_dir, run_id, trial.number)
    params = dict(trial.params)
    if state == "waiting" and not params:  # queued with its parameters fixed
        fixed = trial.system_attrs.get("fixed_params")
        params = dict(fixed) if isinstance(fixed, dict) else {}
    return TrialRow(
        number=trial.number,
        state=state,
        params=params,
        value=value,
        epochs=len(values),
        pruned_at=pruned_at,
        run_id=run_id if isinstance(run_id, str) else None,
        values_by_epoch=values,
        test_accuracy=_number(attrs.get("test_accuracy")),
        reason=reason,
    )


def _noted_reason(runs_dir: str | Path, run_id: Any, number: int) -> str:
    """What ``fail_dead_trials`` noted in the run's status about trial ``number``."""
    run = run_of(runs_dir, run_id)
    notes = run.read_status().get("search_notes") if run is not None else None
    if not isinstance(notes, list):
        return ""
    mine = [n for n in notes if isinstance(n, str) and f"trial {number} of study" in n]
    return mine[-1] if mine else ""


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def param_text(value: Any) -> str:
    """A parameter's value, short: floats to 3 significant digits."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def trial_line(row: TrialRow) -> str:
    """One plain line for a finished trial: number, state, params, best validation accuracy,
    epochs, where it was pruned and why it failed."""
    params = " ".join(f"{k}={param_text(v)}" for k, v in row.params.items())
    line = f"trial {row.number:>3}  {row.state:<8}  val {_percent(row.value):>7}  "
    line += f"epochs {row.epochs}"
    if row.pruned_at is not None:
        line += f"  pruned at {row.pruned_at}"
    line += f"  {params}"
    if row.state == "failed" and row.reason:
        line += f"  ({row.reason})"
    return line


def run_of(runs_dir: str | Path, run_id: Any) -> Run | None:
    """The run folder ``run_id`` names directly in ``runs_dir``, if it is there."""
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id in (".", ".."):
        return None
    path = Path(runs_dir).expanduser() / run_id
    if path.is_symlink() or not (path / "config.json").is_file():
        return None
    return Run(path)


def _dead_reason(trial: FrozenTrial, runs_dir: str | Path) -> str | None:
    """Why a running ``trial`` is dead, or None while it may be alive (or runs elsewhere)."""
    worker = trial.user_attrs.get("worker")
    if not isinstance(worker, dict):
        started = trial.datetime_start
        if started is None:
            return None
        age = (_dt.datetime.now() - started).total_seconds()
        if age < UNCLAIMED_SECONDS:
            return None
        return f"no worker took it up within {UNCLAIMED_SECONDS:.0f} s of its start"
    pid = worker.get("pid")
    if worker.get("host") != HOST or not isinstance(pid, int):
        return None  # another machine's: its storage's heartbeat decides
    run = run_of(runs_dir, trial.user_attrs.get("run_id"))
    if run is not None and run.is_locked():
        return None
    if pid_alive(pid):
        return None
    return f"its search worker (pid {pid} on {HOST}) died while it ran"


def fail_dead_trials(
    study: optuna.Study, runs_dir: str | Path, *, requeue: bool = True
) -> list[int]:
    """Fail the study's running trials whose worker is dead; returns their numbers.

    Optuna's journal storage has no heartbeat, so a trial whose worker was killed stays
    RUNNING. A trial is dead when its worker ran on this host and that process is gone,
    and its run folder (if it made one) is not locked; trials run by other machines are
    left to the RDB storage's heartbeat. Each is ended with ``study.tell(number,
    state=FAIL)``, the reason is written in its run's ``status.json`` (state failed; the
    run keeps its checkpoints and stays resumable), and with ``requeue`` a trial with the
    same parameters is queued that resumes that run from its last checkpoint. Call it
    holding ``study_lock``, so two processes never fail one trial twice.
    """
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = _dead_reason(trial, runs_dir)
        if why is None:
            continue
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        failed.append(trial.number)
        run = run_of(runs_dir, trial.user_attrs.get("run_id"))
        reason = f"{why}; trial {trial.number} of study {study.study_name} failed"
        resumable = run is not None and run.has_checkpoint()
        if requeue and run is not None and resumable:
            reason += "; a new trial resumes this run"
            study.enqueue_trial(
                dict(trial.params),
                user_attrs={"resume_run": run.id, "retry_of": trial.number},
            )
        if run is not None:
            note_on_run(run, reason, state=RunState.FAILED)
    return failed


def note_on_run(run: Run, reason: str, *, state: RunState | None = None, **fields: Any) -> None:
    """Write ``reason`` in ``run``'s ``status.json`` (and append it to its
    ``search_notes``, which a resume keeps), with ``state`` (default: as it is on disk);
    a failure to write is ignored."""
    status = run.read_status()
    notes = status.get("search_notes")
    notes = notes if isinstance(notes, list) else []
    on_disk = RunState.parse(status.get("state"), RunState.INTERRUPTED)
    with contextlib.suppress(OSError, CheckpointError, ValueError):
        run.write_status(
            state or on_disk, reason=reason, search_notes=[*notes, reason][-20:], **fields
        )
