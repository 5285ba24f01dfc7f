"""The Monitor at 80x24 and 120x40: two charts of at least 8 rows, one line of figures,
the lower area's views cycled by ``v``, the event log wrapped to its width (also what
it was told while hidden), the accuracy chart's train series and legend, a one-epoch
run's points apart.

The run is made of fixed events posted as the training worker posts them: the
layout is what is tested, and no training makes the test wait.
"""

from __future__ import annotations

import pytest
from pane_helpers import make_app, shown, wait_for
from rich.text import Text

from engine.classification import class_scores
from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import BatchEnd, EpochEnd, RunStarted
from tui import messages
from tui.app import FmnistApp
from tui.widgets.charts import (
    LOSS_MARK,
    TEST_MARK,
    TRAIN_MARK,
    VAL_MARK,
    EpochChart,
    LearningRateChart,
    LossChart,
    ThrottledPlot,
)
from tui.widgets.event_log import EventLog, wrap_entry
from tui.widgets.stats import RunStats, TrainingRate, fitted_line

RUN_ID = "20260101-120000-mlp-abcd"
# A run folder as deep as a user's can be: longer than the log is wide at 80 columns.
RUN_DIR = f"/home/someone/experiments/fashion/runs/{RUN_ID}"


def one_epoch_run(classes: list[str]) -> list[object]:
    """A one-epoch run with a validation split, as the training worker posts it."""
    started = RunStarted(
        run_id=RUN_ID,
        run_dir=RUN_DIR,
        config=TrainConfig(epochs=1).to_dict(),
        device="cuda:0 (NVIDIA H200, 139 GiB)",
        data_source="Debian dataset-fashion-mnist",
        train_size=1600,
        val_size=400,
        test_size=500,
        classes=classes,
        start_epoch=1,
        batches_per_epoch=25,
        parameters=669_706,
    )
    buffer = messages.BatchBuffer()
    for batch in range(5, 26, 5):
        buffer.add(
            BatchEnd(
                epoch=1,
                batch=batch,
                batches=25,
                step=batch,
                loss=2.0 / batch,
                smoothed_loss=2.0 / batch,
                samples_per_second=123_456.0,
                lr=0.1 * (1 - batch / 25) + 1e-3,
                elapsed=1234.0 + batch,
                eta=4000.0 - batch,
            )
        )
    matrix = [[40 if i == j else (i + 2 * j) % 3 for j in range(10)] for i in range(10)]
    scores = class_scores(matrix)
    epoch = EpochEnd(
        epoch=1,
        epochs=1,
        train_loss=0.7,
        train_accuracy=0.712,
        test_loss=0.55,
        test_accuracy=0.786,
        per_class_accuracy=[0.8] * 10,
        confusion_matrix=matrix,
        lr=1e-3,
        grad_norm=1.5,
        samples_per_second=123_456.0,
        epoch_seconds=12.0,
        memory_bytes=3 * 2**30,
        best_accuracy=0.788,
        is_best=True,
        val_loss=0.54,
        val_accuracy=0.788,
        best_test_accuracy=0.786,
        per_class_precision=scores.precision,
        per_class_recall=scores.recall,
        per_class_f1=scores.f1,
        macro_precision=scores.macro_precision,
        macro_recall=scores.macro_recall,
        macro_f1=scores.macro_f1,
    )
    return [messages.TrainingStarted(started), messages.BatchProgress(buffer), epoch]


def charts_on_screen(app: FmnistApp) -> list[ThrottledPlot]:
    return [c for c in app.monitor.query(ThrottledPlot) if c.display and c.region.area]


def plot_lines(chart: ThrottledPlot) -> list[str]:
    """The chart's lines below its title (which names the markers)."""
    return shown(chart).splitlines()[1:]


def plot_rows(chart: ThrottledPlot) -> int:
    """The rows of plot: the chart's lines between its title and its lower frame."""
    lines = plot_lines(chart)
    return next(i for i, line in enumerate(lines) if "└" in line)


def check_log_wrapped(log: EventLog) -> None:
    """Every line within the log's width; no line of a character or two; the run
    folder's names whole, and the folder whole again once the lines are joined."""
    width = log.scrollable_content_region.width
    lines = log.wrapped_lines
    assert lines and all(len(line) <= width for line in lines), (width, lines)
    assert all(len(line.strip()) > 2 for line in lines), lines
    words = {word for line in lines for word in line.replace("/", " ").split()}
    assert {"home", "someone", "experiments", "fashion", "runs", RUN_ID} <= words, lines
    joined = "".join(line.strip() for line in lines)
    assert f"in{RUN_DIR}" in joined, lines


async def test_the_monitor_at_80x24_and_120x40(tmp_path, small: ImageData) -> None:
    app = make_app(tmp_path / "runs", small)
    async with app.run_test(size=(80, 24)) as pilot:
        monitor = app.monitor
        log = app.query_one(EventLog)
        # Told while another pane shows (the Hyperparameters pane, as after s).
        await pilot.press("2")
        started, batches, epoch = one_epoch_run(list(small.classes))
        monitor.post_message(started)
        monitor.post_message(batches)
        await wait_for(pilot, lambda: RUN_DIR in " ".join(log.entry_texts))
        await pilot.press("3")
        await pilot.pause()

        # Two charts, each with at least 8 rows of plot, over the lower area's first view.
        assert monitor.views_shown == ["confusion"]
        charts = charts_on_screen(app)
        assert [type(c) for c in charts] == [LossChart, EpochChart]
        for c in charts:
            c.redraw_now()
        await pilot.pause()
        assert all(plot_rows(c) >= 8 for c in charts), [shown(c) for c in charts]
        # The loss drawn from its first point (batch 5 of 25), not from 0.
        loss_axis = shown(charts[0]).splitlines()[-1].split()
        assert loss_axis[0] == "0.20", loss_axis

        # v cycles the lower area: confusion, per-class figures, log, learning rate.
        seen = []
        for _ in range(4):
            await pilot.press("v")
            await pilot.pause()
            seen.append(monitor.views_shown)
        assert seen == [["classes"], ["log"], ["lr"], ["confusion"]]
        # Named in the footer, whichever view has the keys.
        binding = app.screen.active_bindings["v"]
        assert binding.binding.description == "View" and binding.binding.show

        # The lines told while hidden, wrapped to the width the log has now.
        await pilot.press("v", "v")
        await wait_for(pilot, lambda: log.wrapped_lines)
        check_log_wrapped(log)

        # The learning-rate chart, reached by v: its own chart, in the lower area (at
        # 80x24 its 7 rows, the charts above taking the rest).
        await pilot.press("v")
        await pilot.pause()
        lr = app.query_one(LearningRateChart)
        lr.redraw_now()
        await pilot.pause()
        assert lr in charts_on_screen(app) and plot_rows(lr) >= 4, shown(lr)
        # Titled with the schedule and its peak, which the rates plotted stay below.
        assert lr.title == "learning rate (cosine, peak 0.001) by epoch"
        assert len(lr.rates) == 5 and lr.rates[0] > lr.rates[-1]
        await pilot.press("v")

        # One epoch: a train series beside the test and validation accuracy, each
        # series drawn with its own marker (named in the title), the loss apart from
        # the accuracies.
        monitor.post_message(messages.EpochFinished(epoch))
        chart = app.query_one(EpochChart)
        await wait_for(pilot, lambda: chart.epochs == [1])
        assert chart.train_accuracies == [pytest.approx(71.2)]
        chart.redraw_now()
        await pilot.pause()
        title = shown(chart).splitlines()[0]
        for mark, name in ((LOSS_MARK, "test loss"), (TEST_MARK, "test"), (VAL_MARK, "val")):
            assert f"{mark} {name}" in title, title
        assert f"{TRAIN_MARK} train" in title, title
        plotted = "\n".join(plot_lines(chart))
        # The test accuracy is drawn last, over the validation accuracy next to it.
        assert all(mark in plotted for mark in (LOSS_MARK, TEST_MARK, TRAIN_MARK)), plotted
        loss_rows = [i for i, line in enumerate(plot_lines(chart)) if LOSS_MARK in line]
        test_rows = [i for i, line in enumerate(plot_lines(chart)) if TEST_MARK in line]
        assert set(loss_rows).isdisjoint(test_rows), plotted

        # The figures on one line at 80 columns: the best epoch's validation figure
        # kept whole; the macro figures with the confusion matrix instead.
        stats = app.query_one(RunStats)
        await wait_for(pilot, lambda: "best val 78.8%" in shown(stats))
        assert stats.region.height == 1
        line = shown(stats).rstrip()
        assert len(line) <= stats.content_region.width and "…" not in line, line
        assert "123,456" in line and "ETA" in line, line
        confusion = app.query_one("#confusion")
        await wait_for(pilot, lambda: "macro P" in shown(confusion).splitlines()[0])

        # 120x40: the log beside the view, its lines wrapped again to its new width.
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: monitor.views_shown == ["confusion", "log"])
        await wait_for(pilot, lambda: any("Epoch 1/1" in line for line in log.wrapped_lines))
        check_log_wrapped(log)
        assert all(c.region.height >= 8 for c in charts_on_screen(app))
        line = shown(stats).rstrip()
        assert "best val 78.8% test 78.6%" in line and "…" not in line, line


def test_an_entry_wraps_at_spaces_then_at_a_paths_slashes() -> None:
    entry = Text(f"12:00:00 Run {RUN_ID} started, in {RUN_DIR}")
    lines = [line.plain for line in wrap_entry(entry, 40)]
    assert lines == [
        f"12:00:00 Run {RUN_ID}",
        "         started, in",
        "         /home/someone/experiments/",
        "         fashion/runs/",
        f"         {RUN_ID}",
    ]
    # Narrower than the time stamp's indent is worth: no indent, words cut only if wider.
    assert [line.plain for line in wrap_entry(Text("ab cdefgh"), 4)] == ["ab", "cdef", "gh"]
    assert [line.plain for line in wrap_entry(Text("one\ntwo"), 20)] == ["one", "two"]


def test_figures_give_way_in_order_until_the_line_fits() -> None:
    figures = {"a": ["aaaa", "a"], "b": ["bbbb", ""], "c": ["cccc"]}
    assert fitted_line(figures, ("b", "a"), 20) == "aaaa · bbbb · cccc"
    assert fitted_line(figures, ("b", "a"), 12) == "aaaa · cccc"
    assert fitted_line(figures, ("b", "a"), 8) == "a · cccc"
    # Nothing left to give: the line as short as it gets, longer than the width.
    assert fitted_line(figures, ("b", "a"), 3) == "a · cccc"


def test_samples_per_second_is_over_training_time_not_one_window() -> None:
    # Fixed events: windows of 1,000 samples/s for 2 s and 3,000/s for 1 s are 5,000
    # samples in 3 s; a pause (training time stands still) adds nothing.
    rate = TrainingRate()
    assert rate.add(1, 10.0, 800.0) == 800.0  # the epoch's first window: its own figure
    assert rate.add(1, 12.0, 1000.0) == 1000.0
    assert rate.add(1, 13.0, 3000.0) == 5000 / 3
    # After the epoch: its figure, and the next epoch starts afresh after evaluation.
    assert rate.end_epoch(1600.0, 4.0) == 1600.0
    assert rate.add(2, 20.0, 900.0) == 900.0
    assert rate.add(2, 21.0, 1100.0) == 1100.0
    assert rate.end_epoch(1000.0, 2.0) == 1000.0
    # The run's figure: (1,600 x 4 + 1,000 x 2) samples over 6 s.
    assert rate.finish() == 8400 / 6
