"""Snapshots of each pane at 80x24 and 120x40 (``pytest --snapshot-update`` to redo).

Made deterministic: injected data with a fixed seed, half-block images forced, the
event log's clock fixed, and the Monitor's run made of fixed events rather than a
timed training run. Each waits for the state it shows, never for a time: a busy CPU
only makes it wait longer.
"""

from __future__ import annotations

import pytest
from fake_nvml import FakeNvml
from pane_helpers import shown, wait_for
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from engine.classification import class_scores
from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import BatchEnd, EpochEnd, RunStarted
from engine.gpu import GpuTelemetry
from tui import messages
from tui.app import FmnistApp
from tui.screens.help import HelpScreen
from tui.widgets import event_log
from tui.widgets.charts import EpochChart, LossChart
from tui.widgets.event_log import EventLog
from tui.widgets.model_summary import ModelSummaryView

SIZES = [(80, 24), (120, 40)]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_log, "timestamp", lambda at=None: "12:00:00")


def make_app(data: ImageData) -> FmnistApp:
    # A relative runs folder that is never created: snapshots train nothing.
    config = TrainConfig(epochs=2, batch_size=64, device="cpu", runs_dir="snapshot-runs")
    # No GPU, whatever the machine has: the log says so, as it does on this one.
    no_gpu = GpuTelemetry(FakeNvml([], absent=True))
    app = FmnistApp(config, data=data, gpu_telemetry=no_gpu)
    app.image_mode = "blocks"
    return app


async def summary_shown(pilot: Pilot) -> None:
    """The model summary drawn, and the Data pane's dataset check (a worker) shown."""
    view = pilot.app.query_one(ModelSummaryView)
    await wait_for(pilot, lambda: view.summary is not None)
    check = pilot.app.query_one("#data-check", Static)  # its text, shown or not
    await wait_for(pilot, lambda: str(check.render()).startswith("Check "))
    await pilot.pause()


def text(widget: Widget) -> str:
    """The words a widget shows, wrapped lines joined again."""
    return " ".join(shown(widget).split())


def logged(pilot: Pilot) -> str:
    """Every entry the Monitor's event log has written, wrapped lines joined again."""
    return " ".join(" ".join(line.text.split()) for line in pilot.app.query_one(EventLog).lines)


async def log_told(pilot: Pilot, words: str) -> None:
    """The Monitor's log told ``words``, and showing them where it is shown (at 80
    columns it is one of the lower area's views, hidden at first)."""
    log = pilot.app.query_one(EventLog)
    await wait_for(pilot, lambda: words in " ".join(log.entry_texts))
    if log.display:
        await wait_for(pilot, lambda: words in logged(pilot))


def progress(events: list[BatchEnd]) -> messages.BatchProgress:
    """A batch-progress message whose buffer holds ``events``, as the bridge would post."""
    buffer = messages.BatchBuffer()
    for event in events:
        buffer.add(event)
    return messages.BatchProgress(buffer)


def run_events(classes: tuple[str, ...]) -> list[object]:
    """A two-epoch run as the engine would report it, with fixed numbers."""
    started = RunStarted(
        run_id="20260101-120000-mlp-abcd",
        run_dir="runs/20260101-120000-mlp-abcd",
        config=TrainConfig(epochs=2).to_dict(),
        device="cpu (2 threads)",
        data_source="Debian dataset-fashion-mnist",
        train_size=2000,
        test_size=500,
        classes=list(classes),
        start_epoch=1,
        batches_per_epoch=32,
        parameters=669_706,
    )
    batches = [
        BatchEnd(
            epoch=e,
            batch=b,
            batches=32,
            step=(e - 1) * 32 + b,
            loss=2.0 / (1 + s / 8),
            smoothed_loss=2.0 / (1 + s / 10),
            samples_per_second=25_000.0,
            lr=1e-3,
            elapsed=s * 0.05,
            eta=(64 - s) * 0.05,
        )
        for e in (1, 2)
        for b in range(4, 33, 4)
        for s in [(e - 1) * 32 + b]
    ]

    def epoch(number: int, accuracy: float) -> EpochEnd:
        per_class = [min(1.0, accuracy + (i % 4 - 1.5) / 20) for i in range(10)]
        matrix = [[40 if i == j else (i + 2 * j) % 3 for j in range(10)] for i in range(10)]
        scores = class_scores(matrix)
        return EpochEnd(
            epoch=number,
            epochs=2,
            train_loss=0.9 / number,
            train_accuracy=accuracy - 0.02,
            test_loss=0.8 / number,
            test_accuracy=accuracy,
            per_class_accuracy=per_class,
            confusion_matrix=matrix,
            lr=1e-3,
            grad_norm=1.5,
            samples_per_second=24_000.0,
            epoch_seconds=1.6,
            memory_bytes=612 * 2**20,
            best_accuracy=accuracy,
            is_best=True,
            per_class_precision=scores.precision,
            per_class_recall=scores.recall,
            per_class_f1=scores.f1,
            macro_precision=scores.macro_precision,
            macro_recall=scores.macro_recall,
            macro_f1=scores.macro_f1,
        )

    return [
        messages.TrainingStarted(started),
        progress(batches[:8]),
        messages.EpochFinished(epoch(1, 0.78)),
        progress(batches[8:]),
        messages.EpochFinished(epoch(2, 0.83)),
    ]


async def replay_run(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, FmnistApp)
    await summary_shown(pilot)
    await pilot.press("3")
    for message in run_events(app.data.classes if app.data else ()):
        app.monitor.post_message(message)
    # The Monitor handles its messages in order: the last epoch's means all of them.
    epochs = app.query_one(EpochChart)
    await wait_for(pilot, lambda: len(epochs.epochs) == 2)
    app.monitor.set_state("running")
    for chart in app.query(LossChart).results():
        chart.redraw_now()
    for chart in app.query(EpochChart).results():
        chart.redraw_now()
    # The event log writes what it has at most twice a second.
    await log_told(pilot, "Epoch 2/2:")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_data_pane(snap_compare, small: ImageData, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(small), terminal_size=size, run_before=summary_shown)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_data_pane_filtered_augmented(
    snap_compare, small: ImageData, size: tuple[int, int]
) -> None:
    """T-shirt/top marked in the class balance; augmentation on (the train split)."""

    async def run_before(pilot: Pilot) -> None:
        await summary_shown(pilot)
        await pilot.press("f", "a")
        status = pilot.app.query_one("#data-status")
        await wait_for(pilot, lambda: "train · T-shirt/top" in text(status))
        await wait_for(pilot, lambda: "augmentation on" in text(status))

    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_hyperparameters_pane(snap_compare, small: ImageData, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await summary_shown(pilot)
        await pilot.press("2")
        await summary_shown(pilot)

    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_hyperparameters_pane_with_a_bad_value(
    snap_compare, small: ImageData, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot) -> None:
        await summary_shown(pilot)
        await pilot.press("2", "tab")
        for _ in range(10):
            if pilot.app.focused is not None and pilot.app.focused.id == "field-lr":
                break
            await pilot.press("tab")
        await pilot.press("minus", "1", "escape")
        reason = pilot.app.query_one("#error-lr", Static)
        view = pilot.app.query_one(ModelSummaryView)
        # The reason's own text: at 80x24 it is cut to fit (the snapshot shows what fits).
        await wait_for(pilot, lambda: "got -1" in str(reason.render()))
        # lr does not shape the model: its summary stays up.
        await wait_for(pilot, lambda: view.summary is not None)

    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_monitor_pane_idle(snap_compare, small: ImageData, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await summary_shown(pilot)
        await pilot.press("3")
        await log_told(pilot, "No run yet")

    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_monitor_pane_during_a_run(snap_compare, small: ImageData, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(small), terminal_size=size, run_before=replay_run)


def test_help_screen(snap_compare, small: ImageData) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(make_app(small), terminal_size=(80, 24), run_before=run_before)
