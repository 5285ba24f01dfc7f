"""``RunRecorder``: the listener that turns a run's events into its folder's files.

It appends every event to ``metrics.jsonl``, keeps ``status.json`` in step (running,
paused, finished, interrupted, failed, with the epochs done and the best epoch's
accuracy, validation and test, as of the last checkpoint), and writes the checkpoints
the trainer hands it. A run without a folder (``record=False``) simply has no recorder.

A write that fails (a full or read-only disk) becomes a ``TrainingError`` that says
what could not be written and which checkpoint is intact.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import files
from engine.checkpoint import encode_checkpoint
from engine.config import TrainConfig
from engine.errors import CheckpointError, TrainingError
from engine.events import (
    CheckpointSaved,
    EpochEnd,
    Event,
    Failed,
    Finished,
    RunStarted,
    StateChanged,
)
from engine.fields import SHOWN_LIMIT, clip, epochs_text
from engine.runs import Run
from engine.state import RunState, TrainState

KEPT_PATTERN = re.compile(r"best-e(\d+)\.pt")

# Settings that may differ between a run's config.json and its last.pt: the total of
# epochs (a resume extends it before the next checkpoint), and where the run trains and
# finds its files (a run moved to another machine or folder).
RESUME_MAY_DIFFER = frozenset(
    {
        "epochs",
        "device",
        "runs_dir",
        "data_dir",
        "custom_csv",
        "custom_images",
        "custom_test_csv",
        "classes_file",
        "tensorboard",
    }
)


def config_differences(stored: object, config: TrainConfig) -> list[str]:
    """How the config a checkpoint stores differs from ``config``, outside
    ``RESUME_MAY_DIFFER``: one ``"NAME: X in last.pt, Y in config.json"`` per setting
    (values as JSON); ``["it holds no settings"]`` when ``stored`` is not a mapping."""
    if not isinstance(stored, dict):
        return ["it holds no settings"]
    try:  # as config.json is read: settings it lacks take their defaults
        saved = TrainConfig.from_stored(stored).to_dict()
    except (ValueError, TypeError):  # ConfigError is a ValueError
        saved = dict(stored)
    current = config.to_dict()
    names = [*current, *(k for k in saved if k not in current)]
    missing = object()
    return [
        f"{name}: {_shown(saved.get(name, missing))} in last.pt, "
        f"{_shown(current.get(name, missing))} in config.json"
        for name in names
        if name not in RESUME_MAY_DIFFER and saved.get(name, missing) != current.get(name, missing)
    ]


def kept_checkpoint(run: Run, epoch: int) -> Path:
    """Where a run with ``save_top_k`` above 1 keeps the checkpoint of epoch ``epoch``
    (1-based) while it ranks among the best: ``best-e07.pt`` (two digits at least)."""
    return run.path / f"best-e{epoch:02d}.pt"


def kept_checkpoints(run: Run) -> dict[int, Path]:
    """The ``best-eNN.pt`` files in ``run``'s folder, by epoch (whatever the list in its
    ``last.pt`` says)."""
    found = {}
    for path in run.path.glob("best-e*.pt"):
        match = KEPT_PATTERN.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _kept_entry(run: Run, epoch: int, accuracy: float) -> dict[str, Any]:
    return {"epoch": epoch, "accuracy": accuracy, "file": kept_checkpoint(run, epoch).name}


def _shown(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return "(none)"
    return clip(text, SHOWN_LIMIT)


class RunRecorder:
    """Records one run into ``run``'s folder; call it with each event, in order."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.saved: tuple[int, int] | None = None  # (epoch, batch) of the last checkpoint
        self.best_known = False  # whether any epoch has been evaluated
        self.pending: dict[str, Any] = {}  # status fields for the next status write

    def check_resume(
        self, checkpoint: dict[str, Any], state: TrainState, config: TrainConfig
    ) -> None:
        """Refuse to continue from ``checkpoint`` (read from ``last.pt`` as ``state``) with
        ``config`` unless the checkpoint is this run's own, and writes nothing.

        Raises ``CheckpointError`` saying what differs and what to do when the checkpoint
        was saved with other settings than ``config.json`` (beyond ``RESUME_MAY_DIFFER``),
        when the metrics log is shorter than it was when the checkpoint was saved (cut
        short, or the checkpoint is another run's), or when ``config.epochs`` would undo
        epochs already trained.
        """
        run = self.run
        last = run.last_path.name
        differences = config_differences(checkpoint.get("config"), config)
        if differences:
            shown = "; ".join(differences[:3])
            more = f"; and {len(differences) - 3} more" if len(differences) > 3 else ""
            raise CheckpointError(
                f"run {run.id} cannot be resumed: its {last} was saved with other settings "
                f"than its config.json ({shown}{more}): either config.json was edited (put "
                f"back the settings {last} holds) or {last} is another run's (put back this "
                f"run's own {last}), or start a new run"
            )
        try:
            size = files.regular_size(run.metrics_path)
        except FileNotFoundError:
            size = 0
        except OSError as exc:
            raise CheckpointError(
                f"cannot resume run {run.id}: {run.metrics_path}: {exc.strerror or exc}"
            ) from None
        if state.metrics_offset > size:
            raise CheckpointError(
                f"run {run.id} cannot be resumed: its {last} was saved when "
                f"{run.metrics_path.name} held {state.metrics_offset:,} bytes, but the log "
                f"holds {size:,} (it was cut short, or {last} comes from another run); put "
                f"back the run's own {run.metrics_path.name} and {last}, or start a new run"
            )
        begun = state.epoch + (1 if state.batch else 0)
        if config.epochs < begun:
            done = epochs_text(state.epoch)
            if state.batch:
                done += f" and {state.batch} batches of epoch {state.epoch + 1}"
            raise CheckpointError(
                f"run {run.id} cannot be cut back to {epochs_text(config.epochs)}: it has "
                f"trained {done} already; give a total of {begun} or more"
            )

    def resume(
        self, state: TrainState, config: TrainConfig, checkpoint: dict[str, Any]
    ) -> list[str]:
        """The run continues from ``state``, loaded from ``checkpoint`` (its ``last.pt``,
        passed by ``check_resume``), with ``config`` (its own, or with more epochs): drop
        what was logged after the checkpoint.

        The log is cut at its last complete line at or before the checkpoint's offset,
        never extended; when that is earlier than the offset (the log was edited),
        ``last.pt`` is saved again with the new offset, so that the folder agrees with
        itself. Returns notes for the user (a torn or edited log, lines that are not
        events). Raises ``CheckpointError`` when the folder cannot be brought in line.
        """
        run = self.run
        name, last = run.metrics_path.name, run.last_path.name
        self.saved = (state.epoch, state.batch)
        self.best_known = state.epoch > 0
        notes = []
        before = run.read_metrics()
        if before.torn_line:
            notes.append(
                f"{name} ended in a partly written line (the process was "
                "killed while writing it); it was dropped with the events after the checkpoint"
            )
        run.remove_temp_files()
        offset = state.metrics_offset
        kept = [epoch for epoch, _ in state.top_k] if config.save_top_k > 1 else []
        try:
            cut = run.truncate_metrics(offset)
            if cut != offset:
                state.metrics_offset = cut
                run.save_checkpoint({**checkpoint, "metrics_offset": cut})
            if run.config() != config:
                files.atomic_write(run.config_path, config.to_json().encode())
            self.drop_unkept(kept)  # an epoch's, written after the checkpoint it resumes
        except OSError as exc:
            raise CheckpointError(f"cannot resume run {run.id}: {exc.strerror or exc}") from None
        after = run.read_metrics()
        if cut != offset:
            epochs = len(after.epochs)
            count = (
                f"; it holds the results of {epochs_text(epochs)}, and {last} is at epoch "
                f"{state.epoch}"
                if epochs != state.epoch
                else ""
            )
            notes.append(
                f"{name} had changed since {last} was saved: byte {offset:,}, where the log "
                "ended then, is inside a line; it was cut back to its last complete line "
                f"before that (byte {cut:,}){count}"
            )
        dropped = before.bad_lines - after.bad_lines
        if after.bad_lines:
            notes.append(
                f"{name} has {after.bad_lines} lines that are not events (not a JSON "
                "object, or a field of the wrong type); they are kept, and skipped when read"
            )
        if dropped > 0:
            notes.append(
                f"{name} had {dropped} lines that are not events after the checkpoint; "
                "they were dropped with the events after it"
            )
        return notes

    def drop_unkept(self, kept: list[int]) -> None:
        """Delete the ``best-eNN.pt`` files of epochs not in ``kept``; ``OSError`` if one
        cannot be deleted (one already gone is fine)."""
        for epoch, path in kept_checkpoints(self.run).items():
            if epoch not in kept:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    @contextlib.contextmanager
    def writing(self, action: str) -> Iterator[None]:
        """Turn a failed write to the run folder into a ``TrainingError`` saying what is kept."""
        try:
            yield
        except OSError as exc:
            if self.saved is None:
                kept = "no checkpoint was saved yet"
            else:
                epoch, batch = self.saved
                at = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
                kept = (
                    f"the checkpoint from {at if epoch or batch else 'the start'} is intact "
                    "and the run can be resumed"
                )
            # A run file that is not a regular file (a FIFO put in place of metrics.jsonl
            # while the run trains, say) is named: the cause is that file, not the disk.
            which = f"{exc.filename}: " if isinstance(exc, files.UnsafeFileError) else ""
            raise TrainingError(
                f"cannot {action} in {self.run.path}: {which}{exc.strerror or exc}; {kept}"
            ) from None

    def __call__(self, event: Event) -> None:
        """Log ``event`` and update ``status.json``; ``TrainingError`` if a write fails
        (a ``Failed`` event is recorded as far as the disk allows, never raising)."""
        if isinstance(event, Failed):
            self._failed(event)
            return
        with self.writing("write the metrics log"):
            self.run.append_event(event)
        with self.writing("update status.json"):
            if isinstance(event, RunStarted):
                started = {
                    "epochs": int(event.config.get("epochs", 0)),
                    "reason": "",
                    "paused": False,
                    "environment": event.environment,
                }
                if event.resumed:  # running again now, not at its next checkpoint
                    self.run.write_status(RunState.RUNNING, **{**self.pending, **started})
                    self.pending = {}
                else:  # a new run's start checkpoint comes next: one write for both
                    self.pending = {**self.pending, **started}
            elif isinstance(event, EpochEnd) and event.is_best:
                # Written with the epoch's checkpoint, as best_accuracy is: the Runs
                # pane and ``runs --json`` read it without reading the metrics log.
                self.pending["best_macro_f1"] = event.macro_f1
            elif isinstance(event, StateChanged) and event.state in ("paused", "running"):
                self.run.write_status(RunState.RUNNING, paused=event.state == "paused")
            elif isinstance(event, Finished):
                self._finished(event)

    def _finished(self, event: Finished) -> None:
        if event.status == RunState.FINISHED:
            self.run.write_status(
                RunState.FINISHED,
                paused=False,
                reason=event.reason,  # early stopping's, or "": it trained every epoch
                epochs_completed=event.epochs_completed,
                best_accuracy=event.best_accuracy,
                best_test_accuracy=event.best_test_accuracy,
                final_accuracy=event.final_accuracy,
                elapsed=event.elapsed,
            )
        else:
            self.run.write_status(
                RunState.INTERRUPTED, paused=False, reason=event.reason, elapsed=event.elapsed
            )

    def _failed(self, event: Failed) -> None:
        # The log may be what failed; the status must still say so, if the disk lets us.
        with contextlib.suppress(OSError):
            self.run.append_event(event)
        self.fail(event.reason)

    def fail(self, reason: str) -> None:
        """Mark the run failed on disk with the progress of its last checkpoint (best effort)."""
        with contextlib.suppress(OSError):
            self.run.write_status(
                RunState.FAILED,
                reason=reason,
                paused=False,
                epochs_completed=self.saved[0] if self.saved else 0,
            )

    def checkpoint(
        self,
        payload: dict[str, Any],
        state: TrainState,
        *,
        reason: str,
        best: bool,
        keep: int = 1,
    ) -> CheckpointSaved:
        """Write ``last.pt`` (and ``best.pt`` when ``best``) from the trainer's payload.

        ``state.metrics_offset`` is set to the log's durable length first, so a resume
        drops exactly the events logged after this checkpoint. With ``keep`` (the run's
        ``save_top_k``) above 1, the checkpoint of each epoch in ``state.top_k`` is kept
        as ``best-eNN.pt`` (``kept_checkpoint``): an epoch's end (``reason`` "epoch" or
        "best") that ranks among them is written there before ``last.pt``, and the files
        of epochs that fell out are deleted after it, so that a kill at any moment leaves
        every file ``last.pt``'s list names (a resume deletes the others). Returns the
        event to emit, naming ``best.pt`` when ``best`` and ``last.pt`` otherwise.
        """
        kept = [epoch for epoch, _ in state.top_k] if keep > 1 else []
        with self.writing("save a checkpoint"):
            state.metrics_offset = self.run.sync_metrics()
            checkpoint = {**payload, **state.to_checkpoint()}
            if reason in ("epoch", "best") and state.batch == 0 and state.epoch in kept:
                data = encode_checkpoint(checkpoint)
                files.atomic_write(kept_checkpoint(self.run, state.epoch), data)
            path = self.run.save_checkpoint(checkpoint, best=best)
            self.drop_unkept(kept)
        self.saved = (state.epoch, state.batch)
        self.best_known = self.best_known or state.epoch > 0
        listed = (
            {"top_k": [_kept_entry(self.run, e, a) for e, a in state.top_k]} if keep > 1 else {}
        )
        with self.writing("update status.json"):
            self.run.write_status(
                RunState.RUNNING,
                **self.pending,
                **listed,
                epochs_completed=state.epoch,
                best_accuracy=state.best_accuracy if self.best_known else None,
                best_test_accuracy=state.best_test_accuracy if self.best_known else None,
                elapsed=state.elapsed,
            )
        self.pending = {}
        # The event names the file its reason is about: best.pt for a new best (written
        # first; last.pt holds the same bytes), last.pt for the others.
        named = self.run.best_path if best else path
        return CheckpointSaved(str(named), state.epoch, state.batch, reason, time=time.time())
