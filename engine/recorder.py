"""``RunRecorder``: the listener that turns a run's events into its folder's files.

It appends every event to ``metrics.jsonl``, keeps ``status.json`` in step (running,
paused, finished, interrupted, failed, with the epochs done and the best accuracy
as of the last checkpoint), and writes the checkpoints the trainer hands it. A run
without a folder (``record=False``) simply has no recorder.

A write that fails (a full or read-only disk) becomes a ``TrainingError`` that says
what could not be written and which checkpoint is intact.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from engine import files
from engine.config import TrainConfig
from engine.errors import CheckpointError, TrainingError
from engine.events import CheckpointSaved, Event, Failed, Finished, RunStarted, StateChanged
from engine.runs import Run
from engine.state import RunState, TrainState


class RunRecorder:
    """Records one run into ``run``'s folder; call it with each event, in order."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.saved: tuple[int, int] | None = None  # (epoch, batch) of the last checkpoint
        self.best_known = False  # whether any epoch has been evaluated
        self.pending: dict[str, Any] = {}  # status fields for the next status write

    def resume(self, state: TrainState, config: TrainConfig) -> list[str]:
        """The run continues from ``state``, loaded from its last checkpoint, with ``config``
        (its own, or with more epochs): drop what was logged after the checkpoint.

        Returns notes for the user (a torn or shortened log). Raises ``CheckpointError``
        when the folder cannot be brought in line.
        """
        run = self.run
        self.saved = (state.epoch, state.batch)
        self.best_known = state.epoch > 0
        notes = []
        if run.read_metrics().torn_line:
            notes.append(
                f"{run.metrics_path.name} ended in a partly written line (the process was "
                "killed while writing it); it was dropped with the events after the checkpoint"
            )
        run.remove_temp_files()
        try:
            cut = run.truncate_metrics(state.metrics_offset)
            if run.config() != config:
                files.atomic_write(run.config_path, config.to_json().encode())
        except OSError as exc:
            raise CheckpointError(f"cannot resume run {run.id}: {exc.strerror or exc}") from None
        if cut < state.metrics_offset:
            notes.append(
                f"{run.metrics_path.name} was shorter than the checkpoint expected "
                f"({cut:,} of {state.metrics_offset:,} bytes); kept its complete lines"
            )
        return notes

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
            raise TrainingError(
                f"cannot {action} in {self.run.path}: {exc.strerror or exc}; {kept}"
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
                    self.run.write_status(RunState.RUNNING, **started)
                else:  # a new run's start checkpoint comes next: one write for both
                    self.pending = started
            elif isinstance(event, StateChanged) and event.state in ("paused", "running"):
                self.run.write_status(RunState.RUNNING, paused=event.state == "paused")
            elif isinstance(event, Finished):
                self._finished(event)

    def _finished(self, event: Finished) -> None:
        if event.status == RunState.FINISHED:
            self.run.write_status(
                RunState.FINISHED,
                paused=False,
                epochs_completed=event.epochs_completed,
                best_accuracy=event.best_accuracy,
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
        self, payload: dict[str, Any], state: TrainState, *, reason: str, best: bool
    ) -> CheckpointSaved:
        """Write ``last.pt`` (and ``best.pt`` when ``best``) from the trainer's payload.

        ``state.metrics_offset`` is set to the log's durable length first, so a resume
        drops exactly the events logged after this checkpoint. Returns the event to emit.
        """
        with self.writing("save a checkpoint"):
            state.metrics_offset = self.run.sync_metrics()
            path = self.run.save_checkpoint({**payload, **state.to_checkpoint()}, best=best)
        self.saved = (state.epoch, state.batch)
        self.best_known = self.best_known or state.epoch > 0
        with self.writing("update status.json"):
            self.run.write_status(
                RunState.RUNNING,
                **self.pending,
                epochs_completed=state.epoch,
                best_accuracy=state.best_accuracy if self.best_known else None,
                elapsed=state.elapsed,
            )
        self.pending = {}
        return CheckpointSaved(str(path), state.epoch, state.batch, reason, time=time.time())
