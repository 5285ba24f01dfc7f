"""The Monitor pane: a run's progress, live charts, per-class results and its events.

The app's training worker posts its messages here; each handler hands the numbers
to the widgets that show them, and the messages bubble on to the app, which keeps
the run's state.

Each repaint costs the UI thread time that training would use (the GIL, and one of
the CPU's cores), and sends the cells that changed, so repaints are paced below the
message rate: progress and figures at most ``FIGURES_PER_SECOND``, the per-class
tables at most ``TABLES_PER_SECOND`` (the charts pace themselves). A change of state
(paused, finished) is shown at once.

Two charts sit under the figures, as tall as the pane allows; the area below them shows
one view at a time, which ``v`` cycles through (``VIEWS``): the confusion matrix with
the per-class figures as its last columns, the per-class table by name, the event log
and the learning-rate chart. From ``WIDE`` columns the log is shown beside the others.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.events import Resize
from textual.message import Message

from engine.classification import ClassScores, class_scores
from engine.events import BatchEnd, EpochEnd, Finished, RunStarted
from engine.fields import epochs_text
from engine.gpu import GpuSnapshot
from tui import messages
from tui.screens.pane import WIDE, Pane
from tui.session import FOLDER_GONE
from tui.throttle import RateLimiter
from tui.widgets.charts import EpochChart, LearningRateChart, LossChart
from tui.widgets.class_scores import ClassScoresTable
from tui.widgets.confusion import CONFUSION_TITLE, ConfusionTable
from tui.widgets.event_log import EventLog
from tui.widgets.gpu_lines import GpuLines
from tui.widgets.progress import RunProgress
from tui.widgets.stats import RunStats, TrainingRate, duration

FIGURES_PER_SECOND = 2
# Below this many rows the lower area gives rows to the charts.
SHORT = 30
TABLES_PER_SECOND = 1

# The lower area's views, in the order ``v`` shows them: each view's widget id.
VIEWS = {
    "confusion": "confusion",
    "classes": "class-scores",
    "log": "event-log",
    "lr": "lr-chart",
}


class MonitorPane(Pane):
    """Everything about the current (or last) run."""

    # The pane takes the keys while the log (which scrolls by keys) is hidden.
    can_focus = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "next_view", "View"),
        Binding("g", "toggle_gpus", "GPUs"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = "confusion"  # the lower area's view: a key of VIEWS
        self._wide = False  # whether the log is shown beside the other views
        self.classes_names: list[str] = []
        self._figures_changed = False
        self._latest_epoch: EpochEnd | None = None  # waiting to be shown in the tables
        self.rate = TrainingRate()  # the samples/s figure, over training time only
        self._tables_limiter = RateLimiter(1 / TABLES_PER_SECOND)
        self._started_here = False  # whether the log has said how this run started
        self._validated = False  # whether the run has a validation split, which chooses
        self._gpus_said = False  # whether the log has said there is no GPU telemetry

    def compose(self) -> ComposeResult:
        yield RunProgress(id="run-progress")
        yield RunStats(id="run-stats")
        yield GpuLines(id="gpu-lines")
        with Horizontal(id="charts"):
            yield LossChart(id="loss-chart")
            yield EpochChart(id="epoch-chart")
        with Horizontal(id="details"):
            confusion = ConfusionTable(columns=("P%", "R%", "F1%"), id="confusion")
            # Four columns a cell: counts reach three digits on the full test set, and
            # without colour (NO_COLOR) only a space tells neighbours apart.
            confusion.cell_width = 4
            confusion.show_columns = True
            yield confusion
            yield ClassScoresTable(placeholder="after the first epoch", id="class-scores")
            yield LearningRateChart(id="lr-chart")
            yield EventLog(id="event-log")

    def on_mount(self) -> None:
        self._show_view()
        self.set_interval(1 / FIGURES_PER_SECOND, self._repaint)
        if not self._started_here:
            self.log_event("No run yet: press s to train with the Hyperparameters pane's settings.")

    def on_resize(self, event: Resize) -> None:
        # A short terminal (80x24) gives the charts the rows: the lower area takes 7
        # (the confusion matrix scrolls), leaving each chart 8 rows of plot.
        self.query_one("#details").styles.height = 12 if event.size.height >= SHORT else 7
        wide = event.size.width >= WIDE
        if wide != self._wide:
            self._wide = wide
            self._show_view()

    def focus_default(self) -> None:
        """The log takes the keys where it shows (it scrolls by them); else the pane."""
        log = self.query_one(EventLog)
        (log if log.display else self).focus()

    def action_next_view(self) -> None:
        """Show the lower area's next view (``VIEWS``, round)."""
        views = list(VIEWS)
        self.view = views[(views.index(self.view) + 1) % len(views)]
        self._show_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # g only where there are GPU lines to expand: the footer names it only then.
        if action == "toggle_gpus":
            return self.query_one(GpuLines).display
        return True

    def action_toggle_gpus(self) -> None:
        """GPUs: one short item each (at most two lines), or a line each with processes."""
        lines = self.query_one(GpuLines)
        lines.expanded = not lines.expanded

    def show_gpus(self, snapshot: GpuSnapshot) -> None:
        """The GPUs' latest readings, the run's own first; without NVML, the log says so
        once and no GPU line is shown."""
        lines = self.query_one(GpuLines)
        shown = lines.display
        if not snapshot.available:
            if not self._gpus_said:
                self._gpus_said = True
                self.log_event(snapshot.reason[:1].upper() + snapshot.reason[1:])
            lines.show([], None)
        else:
            match = re.match(r"cuda:(\d+)", self.stats.device)
            lines.show(snapshot.gpus, int(match.group(1)) if match else None)
        if lines.display != shown:
            self.refresh_bindings()

    @property
    def views_shown(self) -> list[str]:
        """The lower area's views on screen now, left to right: keys of ``VIEWS``."""
        return [view for view, id in VIEWS.items() if self.query_one(f"#{id}").display]

    def _show_view(self) -> None:
        for view, id in VIEWS.items():
            shown = view == self.view or (view == "log" and self._wide)
            self.query_one(f"#{id}").display = shown
        log = self.query_one(EventLog)
        if not log.display and self.screen.focused is log:
            self.focus()
        elif log.display and self.screen.focused is self:
            log.focus()

    @property
    def progress(self) -> RunProgress:
        return self.query_one(RunProgress)

    @property
    def stats(self) -> RunStats:
        return self.query_one(RunStats)

    def log_event(self, text: str, at: float | None = None) -> None:
        """Add a line to the log, stamped with ``at`` (Unix seconds) or now."""
        self.query_one(EventLog).add(text, at)

    def _repaint(self, *, now: bool = False) -> None:
        """Show what changed since the last repaint (all of it when ``now``)."""
        if self._figures_changed:
            self._figures_changed = False
            self.progress.repaint()
            self.stats.show_figures()
        event = self._latest_epoch
        if event is not None and (now or self._tables_limiter.ready()):
            self._latest_epoch = None
            names = self.classes_names or [str(i) for i in range(len(event.per_class_accuracy))]
            scores = epoch_scores(event)
            self.query_one(ClassScoresTable).show(
                [f"{i} {name}" for i, name in enumerate(names)],
                scores.precision,
                scores.recall,
                scores.f1,
                macro=(scores.macro_precision, scores.macro_recall, scores.macro_f1),
            )
            confusion = self.query_one(ConfusionTable)
            # The macro figures with the table, as the line above may not have room.
            confusion.set_title(f"{CONFUSION_TITLE}  {self.stats.macro()}".rstrip())
            confusion.show(event.confusion_matrix, [scores.precision, scores.recall, scores.f1])

    # --- attributes down (from the app) -------------------------------------------------

    def begin(self, epochs: int, note: str = "") -> None:
        """A run was asked for: clear the last one's numbers, and log ``note``."""
        progress = self.progress
        progress.state, progress.epoch, progress.epochs = "starting", 0, epochs
        progress.batch_done = progress.batches = 0
        self.stats.clear()
        self.rate = TrainingRate()
        self._latest_epoch = None
        self._started_here = False
        self._figures_changed = True
        self._repaint(now=True)
        for chart in self._charts():
            chart.reset()
            chart.set_epochs(epochs)
        self.query_one(ClassScoresTable).clear()
        confusion = self.query_one(ConfusionTable)
        confusion.set_title(CONFUSION_TITLE)
        confusion.clear()
        if note:
            self.log_event(note)

    def _charts(self) -> tuple[LossChart, EpochChart, LearningRateChart]:
        return (
            self.query_one(LossChart),
            self.query_one(EpochChart),
            self.query_one(LearningRateChart),
        )

    def begin_attached(self, run_id: str, started: str) -> None:
        """Watching a run trained by another process: its history arrives as events."""
        self.begin(0)
        self.query_one(EventLog).clear_entries()
        when = f" (started {_clock(started)})" if started else ""
        self.log_event(f"Attached to {run_id}{when}")

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
        for chart in self._charts():
            chart.set_epochs(progress.epochs)
        self.query_one(LearningRateChart).set_schedule(
            str(event.config.get("schedule", "?")), float(event.config.get("lr", math.nan))
        )
        self.stats.device = event.device
        # The run's training time so far: a resumed session starts from its checkpoint's,
        # which is later than the last batch its history logged.
        self.stats.elapsed = event.elapsed
        self._figures_changed = True
        self._repaint(now=True)
        if event.resumed and self._started_here:
            self.log_event(f"Resumed at epoch {event.start_epoch} on {event.device}", event.time)
        else:
            verb = "resumed" if event.resumed else "started"
            self.log_event(
                f"Run {event.run_id} {verb} on {event.device}, in {event.run_dir}", event.time
            )
            val = f"{event.val_size:,} validation, " if event.val_size else ""
            self.log_event(
                f"{event.train_size:,} train, {val}{event.test_size:,} test images; "
                f"{event.parameters:,} parameters",
                event.time,
            )
        self._started_here = True
        self._validated = event.val_size > 0
        for note in event.notes:
            self.log_event(note, event.time)

    @on(messages.HistoryReplayed)
    def _history(self, message: messages.HistoryReplayed) -> None:
        """A resumed run's past, logged before this session: its curves and its story."""
        batches: list[BatchEnd] = []
        for event in message.events:
            if isinstance(event, BatchEnd):
                batches.append(event)
                continue
            self._add_batches(batches)
            batches = []
            if isinstance(event, RunStarted):
                self._post_to_self(messages.TrainingStarted(event))
            elif isinstance(event, EpochEnd):
                self._post_to_self(messages.EpochFinished(event))
            elif isinstance(event, Finished) and event.status != "finished":
                self.log_event(f"Stopped after {epochs_text(event.epochs_completed)}", event.time)
        self._add_batches(batches)

    def _post_to_self(self, message: Message) -> None:
        # Handled now, in order, by the same code as live events.
        handler = {messages.TrainingStarted: self._started, messages.EpochFinished: self._epoch}
        handler[type(message)](message)  # type: ignore[operator]

    def _add_batches(self, events: list[BatchEnd]) -> None:
        if not events:
            return
        latest = events[-1]
        progress = self.progress
        progress.epoch, progress.batch_done, progress.batches = (
            latest.epoch,
            latest.batch,
            latest.batches,
        )
        stats = self.stats
        for event in events:
            stats.samples_per_second = self.rate.add(
                event.epoch, event.elapsed, event.samples_per_second
            )
        stats.elapsed, stats.eta, stats.lr = latest.elapsed, latest.eta, latest.lr
        self._figures_changed = True
        epochs = [e.epoch - 1 + e.batch / e.batches for e in events]
        self.query_one(LossChart).add_points(epochs, [e.smoothed_loss for e in events])
        self.query_one(LearningRateChart).add_points(epochs, [e.lr for e in events])

    @on(messages.BatchProgress)
    def _batches(self, message: messages.BatchProgress) -> None:
        self._add_batches(message.buffer.drain())

    @on(messages.EpochFinished)
    def _epoch(self, message: messages.EpochFinished) -> None:
        event = message.event
        self.query_one(EpochChart).add_epoch(
            event.epoch,
            event.test_loss,
            event.test_accuracy,
            event.val_accuracy,
            train_accuracy=event.train_accuracy,
        )
        self._latest_epoch = event
        stats = self.stats
        stats.memory_bytes = event.memory_bytes
        stats.samples_per_second = self.rate.end_epoch(
            event.samples_per_second, event.epoch_seconds
        )
        stats.best_accuracy = event.best_accuracy
        scores = epoch_scores(event)
        stats.macro_epoch = event.epoch
        stats.macro_precision, stats.macro_recall, stats.macro_f1 = (
            math.nan if v is None else v
            for v in (scores.macro_precision, scores.macro_recall, scores.macro_f1)
        )
        validated = event.val_accuracy is not None
        stats.best_test_accuracy = (
            event.best_test_accuracy
            if validated and event.best_test_accuracy is not None
            else math.nan
        )
        self._figures_changed = True
        best = " (best)" if event.is_best else ""
        # With a validation split, it chose the best epoch: "(best)" follows its figure.
        val = f"val {event.val_accuracy:.1%}{best}, " if validated else ""
        self.log_event(
            f"Epoch {event.epoch}/{event.epochs}: {val}test {event.test_accuracy:.1%}"
            f"{'' if validated else best}, loss {event.test_loss:.3f}; "
            f"train {event.train_accuracy:.1%} in {duration(event.epoch_seconds)}",
            event.time,
        )

    @on(messages.CheckpointWritten)
    def _checkpoint(self, message: messages.CheckpointWritten) -> None:
        event = message.event
        # Epoch and best checkpoints are routine (the epoch line says "best"); a stop's
        # is the one a person needs to find again.
        if event.reason not in ("start", "epoch", "best"):
            self.log_event(f"Resumable checkpoint saved: {event.path}", event.time)

    @on(messages.TrainingStateChanged)
    def _state(self, message: messages.TrainingStateChanged) -> None:
        self.set_state(message.state)
        self.log_event(
            {"paused": "Paused", "running": "Resumed"}.get(message.state, message.state.title()),
            message.at,
        )

    @on(messages.TrainingFinished)
    def _finished(self, message: messages.TrainingFinished) -> None:
        event = message.event
        # A stopped run has no time left to estimate: ETA "—".
        finished = event.status == "finished"
        self.stats.elapsed, self.stats.eta = event.elapsed, 0.0 if finished else math.nan
        self.stats.samples_per_second = self.rate.finish()
        self.set_state("finished" if finished else "stopped")
        epochs = epochs_text(event.epochs_completed)
        if event.status == "finished":
            test = event.best_test_accuracy
            if event.best_accuracy is None:
                best = "best —"
            elif self._validated and test is not None:
                best = f"best val {event.best_accuracy:.1%}, test {test:.1%}"
            else:
                best = f"best {event.best_accuracy:.1%}"
            ended = f"; {event.reason}" if event.reason else ""  # early stopping's
            self.log_event(
                f"Finished {epochs} in {duration(event.elapsed)}: {best}{ended}", event.time
            )
        else:
            self.log_event(
                f"Stopped after {epochs}; resume it with r in the Runs pane (4)",
                event.time,
            )

    def show_gone(self, why: str) -> None:
        """The attached run ended unseen: ``why`` (its trainer let go without a last word,
        or its folder was deleted)."""
        self.stats.eta = math.nan
        self.set_state("interrupted")
        if why == FOLDER_GONE:
            self.log_event(f"Interrupted: {why} (deleted by another process?)")
        else:
            self.log_event(f"Interrupted: {why}; resume it with r in the Runs pane (4)")

    @on(messages.TrainingFailed)
    def _failed(self, message: messages.TrainingFailed) -> None:
        self.set_state("failed")
        self.log_event(f"Failed: {message.reason}", message.at)


def epoch_scores(event: EpochEnd) -> ClassScores:
    """The test split's precision, recall and F1 of ``event``: as it carries them, or,
    from a log written before events carried them, computed from its confusion matrix."""
    if (
        event.per_class_precision is None
        or event.per_class_recall is None
        or event.per_class_f1 is None
    ):
        return class_scores(event.confusion_matrix)
    return ClassScores(
        precision=event.per_class_precision,
        recall=event.per_class_recall,
        f1=event.per_class_f1,
        macro_precision=event.macro_precision,
        macro_recall=event.macro_recall,
        macro_f1=event.macro_f1,
    )


def _clock(iso: str) -> str:
    """``HH:MM`` of an ISO time from ``status.json`` (the text itself if it is not one)."""
    try:
        return dt.datetime.fromisoformat(iso).strftime("%H:%M")
    except ValueError:
        return iso[:40]
