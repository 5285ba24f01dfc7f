"""The Monitor pane: a run's progress, live charts, per-class results and its events.

The app's training worker posts its messages here; each handler hands the numbers
to the widgets that show them, and the messages bubble on to the app, which keeps
the run's state.

Every repaint resends a widget's whole area to the terminal, so repaints are paced
below the message rate: progress and figures at most ``FIGURES_PER_SECOND``, the
per-class tables at most ``TABLES_PER_SECOND`` (the charts pace themselves). A
change of state (paused, finished) is shown at once.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize

from engine.events import EpochEnd
from tui import messages
from tui.screens.pane import WIDE, Pane
from tui.throttle import RateLimiter
from tui.widgets.charts import EpochChart, LossChart
from tui.widgets.class_bars import ClassBars
from tui.widgets.confusion import ConfusionTable
from tui.widgets.event_log import EventLog
from tui.widgets.progress import RunProgress
from tui.widgets.stats import RunStats, duration

FIGURES_PER_SECOND = 4
TABLES_PER_SECOND = 1


class MonitorPane(Pane):
    """Everything about the current (or last) run."""

    DEFAULT_FOCUS = "#event-log"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.classes_names: list[str] = []
        self._figures_changed = False
        self._latest_epoch: EpochEnd | None = None  # waiting to be shown in the tables
        self._tables_limiter = RateLimiter(1 / TABLES_PER_SECOND)

    def compose(self) -> ComposeResult:
        yield RunProgress(id="run-progress")
        yield RunStats(id="run-stats")
        with Horizontal(id="charts"):
            yield LossChart(id="loss-chart")
            yield EpochChart(id="epoch-chart")
        with Horizontal(id="details"):
            yield ClassBars(
                "per-class accuracy", placeholder="after the first epoch", id="class-accuracy"
            )
            yield ConfusionTable(id="confusion")
            yield EventLog(id="event-log")

    def on_mount(self) -> None:
        self.set_interval(1 / FIGURES_PER_SECOND, self._repaint)
        self.log_event("No run yet: press s to train with the Hyperparameters pane's settings.")

    def on_resize(self, event: Resize) -> None:
        # Below WIDE columns the per-class accuracy moves into the confusion table, so
        # the event log keeps room to be read.
        narrow = event.size.width < WIDE
        self.query_one("#class-accuracy", ClassBars).display = not narrow
        confusion = self.query_one(ConfusionTable)
        # Four columns a cell even when narrow: counts reach three digits on the full test
        # set, and without colour (NO_COLOR) only a space tells neighbours apart.
        confusion.cell_width = 4
        confusion.show_accuracy = narrow
        confusion.refresh(layout=True)

    @property
    def progress(self) -> RunProgress:
        return self.query_one(RunProgress)

    @property
    def stats(self) -> RunStats:
        return self.query_one(RunStats)

    def log_event(self, text: str) -> None:
        self.query_one(EventLog).add(text)

    def _repaint(self, *, now: bool = False) -> None:
        """Show what changed since the last repaint (all of it when ``now``)."""
        if self._figures_changed:
            self._figures_changed = False
            self.progress.refresh()
            self.stats.show_figures()
        event = self._latest_epoch
        if event is not None and (now or self._tables_limiter.ready()):
            self._latest_epoch = None
            names = self.classes_names or [str(i) for i in range(len(event.per_class_accuracy))]
            self.query_one("#class-accuracy", ClassBars).show(
                [f"{i} {name}" for i, name in enumerate(names)],
                event.per_class_accuracy,
                [f"{a:.0%}" for a in event.per_class_accuracy],
                scale=1.0,
            )
            self.query_one(ConfusionTable).show(event.confusion_matrix, event.per_class_accuracy)

    # --- attributes down (from the app) -------------------------------------------------

    def begin(self, epochs: int) -> None:
        """A run was asked for: clear the last one's numbers."""
        progress = self.progress
        progress.state, progress.epoch, progress.epochs = "starting", 0, epochs
        progress.batch = progress.batches = 0
        self.stats.clear()
        self._latest_epoch = None
        self._figures_changed = True
        self._repaint(now=True)
        self.query_one(LossChart).reset()
        self.query_one(EpochChart).reset()
        self.query_one("#class-accuracy", ClassBars).clear()
        self.query_one(ConfusionTable).clear()
        self.log_event("Starting: loading torch and the data…")

    def set_state(self, state: str) -> None:
        self.progress.state = state
        self._figures_changed = True
        self._repaint(now=True)

    # --- messages from the training worker --------------------------------------------

    @on(messages.TrainingStarted)
    def _started(self, message: messages.TrainingStarted) -> None:
        event = message.event
        self.classes_names = list(event.classes)
        progress = self.progress
        progress.state = "running"
        progress.epoch = event.start_epoch
        progress.epochs = int(event.config["epochs"])
        progress.batches = event.batches_per_epoch
        self.stats.device = event.device
        self._figures_changed = True
        self._repaint(now=True)
        verb = "resumed" if event.resumed else "started"
        self.log_event(f"Run {event.run_id} {verb} on {event.device}, in {event.run_dir}")
        self.log_event(
            f"{event.train_size:,} train, {event.test_size:,} test images; "
            f"{event.parameters:,} parameters"
        )
        for note in event.notes:
            self.log_event(note)

    @on(messages.BatchProgress)
    def _batches(self, message: messages.BatchProgress) -> None:
        latest = message.events[-1]
        progress = self.progress
        progress.epoch, progress.batch, progress.batches = (
            latest.epoch,
            latest.batch,
            latest.batches,
        )
        stats = self.stats
        stats.samples_per_second = latest.samples_per_second
        stats.elapsed, stats.eta, stats.lr = latest.elapsed, latest.eta, latest.lr
        self._figures_changed = True
        self.query_one(LossChart).add_points(
            [e.epoch - 1 + e.batch / e.batches for e in message.events],
            [e.smoothed_loss for e in message.events],
        )

    @on(messages.EpochFinished)
    def _epoch(self, message: messages.EpochFinished) -> None:
        event = message.event
        self.query_one(EpochChart).add_epoch(event.epoch, event.test_loss, event.test_accuracy)
        self._latest_epoch = event
        stats = self.stats
        stats.memory_bytes = event.memory_bytes
        stats.best_accuracy = event.best_accuracy
        self._figures_changed = True
        best = " (best)" if event.is_best else ""
        self.log_event(
            f"Epoch {event.epoch}/{event.epochs}: test {event.test_accuracy:.1%}{best}, "
            f"loss {event.test_loss:.3f}; train {event.train_accuracy:.1%} "
            f"in {duration(event.epoch_seconds)}"
        )

    @on(messages.CheckpointWritten)
    def _checkpoint(self, message: messages.CheckpointWritten) -> None:
        event = message.event
        # Epoch and best checkpoints are routine (the epoch line says "best"); a stop's
        # is the one a person needs to find again.
        if event.reason not in ("start", "epoch", "best"):
            self.log_event(f"Resumable checkpoint saved: {event.path}")

    @on(messages.TrainingStateChanged)
    def _state(self, message: messages.TrainingStateChanged) -> None:
        self.set_state(message.state)
        self.log_event(
            {"paused": "Paused", "running": "Resumed"}.get(message.state, message.state.title())
        )

    @on(messages.TrainingFinished)
    def _finished(self, message: messages.TrainingFinished) -> None:
        event = message.event
        self.stats.elapsed, self.stats.eta = event.elapsed, 0.0
        self.set_state("finished" if event.status == "finished" else "stopped")
        if event.status == "finished":
            epochs = f"{event.epochs_completed} epoch" + (
                "" if event.epochs_completed == 1 else "s"
            )
            self.log_event(
                f"Finished {epochs} in {duration(event.elapsed)}: best {event.best_accuracy:.1%}"
            )
        else:
            self.log_event(f"Stopped after {event.epochs_completed} epochs; the run can be resumed")

    @on(messages.TrainingFailed)
    def _failed(self, message: messages.TrainingFailed) -> None:
        self.set_state("failed")
        self.log_event(f"Failed: {message.reason}")
