"""Plain-text lines for a run's events: what ``fmnist-tui train`` prints to a pipe or a
log file, and what a detached run writes to its ``output.log``.

No terminal styling: one line per epoch, a few at the start and at the end.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.events import (
    CheckpointSaved,
    EpochEnd,
    Event,
    Failed,
    Finished,
    RunStarted,
    StateChanged,
)

UNMEASURED = "—"


def epoch_line(e: EpochEnd) -> str:
    """``epoch 3/5  train loss … acc …  val loss … acc … best  test loss … acc …  N
    samples/s  T s  lr …``; without a validation split, ``best`` follows the test figures."""
    best = " best" if e.is_best else ""
    val = ""
    if e.val_loss is not None and e.val_accuracy is not None:
        val = f"val loss {e.val_loss:.4f} acc {e.val_accuracy:.4f}{best}  "
        best = ""
    return (
        f"epoch {e.epoch}/{e.epochs}  train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f}  "
        f"{val}test loss {e.test_loss:.4f} acc {e.test_accuracy:.4f}{best}  "
        f"{e.samples_per_second:,.0f} samples/s  {e.epoch_seconds:.1f} s  lr {e.lr:.2e}"
    )


def started_lines(e: RunStarted) -> list[str]:
    """The run's id, its data, its device and precision, and any notes (e.g. "this is the
    sample", what precision auto chose and why)."""
    resumed = f" (resumed at epoch {e.start_epoch})" if e.resumed else ""
    val = f"{e.val_size:,} validation / " if e.val_size else ""
    lines = [
        f"run {e.run_id or '(not recorded)'}{resumed}",
        f"data: {e.data_source}; {e.train_size:,} train / {val}{e.test_size:,} test images",
        f"device: {e.device}, precision {e.config.get('precision', 'fp32')}; "
        f"{e.parameters:,} parameters",
    ]
    return lines + [f"note: {n}" for n in e.notes]


def runs_dir_flag(run_dir: str | Path) -> str:
    """`` --runs-dir DIR`` when ``run_dir`` is not in the default ``runs`` folder, else ""."""
    if not str(run_dir):
        return ""
    parent = Path(run_dir).parent
    if parent.resolve() == Path("runs").resolve():
        return ""
    return f" --runs-dir {shlex.quote(str(parent))}"


def command_for(verb: str, run_id: str, run_dir: str | Path) -> str:
    """The command that acts on a run from here, e.g. ``fmnist-tui attach ID --runs-dir D``."""
    return f"fmnist-tui {verb} {shlex.quote(run_id)}{runs_dir_flag(run_dir)}"


class TextLog:
    """Turns each event into the lines to print (it remembers the run's id for the end)."""

    def __init__(self) -> None:
        self.run_id = ""
        self.run_dir = ""
        self.validated = False  # whether the run has a validation split, which chooses

    def lines(self, event: Event) -> list[str]:
        """The lines to print for ``event``; [] for those not worth a line (batches)."""
        if isinstance(event, RunStarted):
            self.run_id, self.run_dir = event.run_id, event.run_dir
            self.validated = event.val_size > 0
            return started_lines(event)
        if isinstance(event, EpochEnd):
            return [epoch_line(event)]
        if isinstance(event, StateChanged) and event.state == "paused":
            return ["paused"]
        if isinstance(event, Finished):
            return [self._finished(event)]
        if isinstance(event, Failed):
            return [f"failed: {event.reason}"]
        if isinstance(event, CheckpointSaved) and event.reason not in ("start", "epoch", "best"):
            return [f"checkpoint saved: {event.path}"]
        return []

    def _finished(self, e: Finished) -> str:
        best = UNMEASURED if e.best_accuracy is None else f"{e.best_accuracy:.4f}"
        final = UNMEASURED if e.final_accuracy is None else f"{e.final_accuracy:.4f}"
        epochs = f"{e.epochs_completed} epoch" + ("" if e.epochs_completed == 1 else "s")
        if self.validated:
            test = f"{e.best_test_accuracy:.4f}" if e.best_test_accuracy is not None else ""
            best = f"{best} (test {test or UNMEASURED})" if e.best_accuracy is not None else best
            line = f"{e.status}: {epochs}, best val accuracy {best}, final test {final}"
        else:
            line = f"{e.status}: {epochs}, best test accuracy {best}, final {final}"
        line += f", {e.elapsed:.1f} s"
        if e.status == "finished" and e.reason:  # early stopping ended it
            line += f"; {e.reason}"
        if e.status == "stopped" and self.run_id:
            line += f"; resume with `{command_for('train --resume', self.run_id, self.run_dir)}`"
        return line
