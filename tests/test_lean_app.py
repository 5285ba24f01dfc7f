"""The lean app's parts: repainting only the cells that changed (``ChangedCells``,
``changed_span``), chart axes that stay put (``axis_span``, ``nice_bounds``,
``epoch_ticks``) and the progress line made of small widgets."""

from __future__ import annotations

import math

import pytest
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tests.pane_helpers import shown
from tui.throttle import axis_span, nice_bounds
from tui.widgets.charts import EpochChart, LossChart, epoch_ticks
from tui.widgets.lean import ChangedCells, changed_span
from tui.widgets.progress import RunProgress

RED, BLUE = Style(color="red"), Style(color="blue")


def strip(*parts: tuple[str, Style | None]) -> Strip:
    return Strip([Segment(text, style) for text, style in parts])


# --- changed_span --------------------------------------------------------------------


def test_equal_lines_have_no_changed_span_however_they_are_cut() -> None:
    assert changed_span(strip(("abcdef", RED)), strip(("abcdef", RED))) is None
    # The same cells, cut into other segments, are the same line.
    assert changed_span(strip(("abcdef", RED)), strip(("abc", RED), ("def", RED))) is None


def test_the_changed_span_runs_from_the_first_to_the_last_changed_cell() -> None:
    before = strip(("epoch 1/5  batch  9/100", None))
    after = strip(("epoch 1/5  batch 10/100", None))
    assert changed_span(before, after) == (17, 19)
    # Two changes far apart: one span over both.
    assert changed_span(strip(("a....b", None)), strip(("x....y", None))) == (0, 6)


def test_a_change_of_style_alone_is_a_change() -> None:
    assert changed_span(strip(("ab", RED), ("cd", RED)), strip(("ab", RED), ("cd", BLUE))) == (
        2,
        4,
    )


def test_a_line_that_grew_or_shrank_differs_to_its_longer_end() -> None:
    assert changed_span(strip(("abc", None)), strip(("abcde", None))) == (3, 5)
    assert changed_span(strip(("abcde", None)), strip(("abX", None))) == (2, 5)


def test_wide_characters_take_two_cells() -> None:
    # 日 takes columns 0-1, so the change at the third character is at column 3.
    assert changed_span(strip(("日ab", None)), strip(("日aX", None))) == (3, 4)


# --- axes that stay put --------------------------------------------------------------


def test_axis_span_holds_the_last_point_in_at_least_half_the_width() -> None:
    for total in (0.0, 1.0, 5.0, 30.0):
        for last in (0.01, 0.2, 0.9, 1.0, 2.5, 4.99, 5.0, 17.0, 60.0):
            span = axis_span(last, total)
            assert span >= last, (last, total, span)
            if total > 0 and last <= total:
                assert span <= total
            # Points fill at least half the width, unless the axis is at its shortest.
            shortest = (total if total > 0 else 1.0) / 64
            assert last >= span / 2 or span <= 2 * shortest, (last, total, span)


def test_axis_span_moves_seldom_as_a_run_goes_on() -> None:
    # A 10-epoch run with a point every 1/100 epoch: the end moves a handful of times.
    ends = [axis_span(step / 100, 10.0) for step in range(1, 1001)]
    assert len(set(ends)) <= 8
    assert ends[-1] == 10.0
    # Without a known length, powers of two.
    assert axis_span(3.2) == 4.0 and axis_span(4.0) == 4.0 and axis_span(4.1) == 8.0
    # Past the run's length (extended), it grows in powers of two too.
    assert axis_span(12.0, 10.0) == 16.0


def test_nice_bounds_hold_the_values_on_round_steps() -> None:
    assert nice_bounds(0.27, 1.43) == (0.0, 1.5)  # steps of 0.5: a fifth of 1.16 is 0.23
    low, high = nice_bounds(78.0, 83.0)
    assert low <= 78.0 and high >= 83.0 and (low, high) == (78.0, 83.0)
    for low_value, high_value in [(0.0123, 0.0456), (-3.0, 7.0), (250.0, 251.0), (5.0, 5.0)]:
        low, high = nice_bounds(low_value, high_value)
        assert low <= low_value and high >= high_value and high > low


def test_nice_bounds_stay_put_while_values_move_a_little() -> None:
    bounds = {nice_bounds(0.3 - i * 0.001, 1.4) for i in range(50)}
    assert len(bounds) <= 2


def test_nice_bounds_leave_non_finite_values_alone() -> None:
    low, high = nice_bounds(math.nan, 1.0)
    assert math.isnan(low) and high == 1.0


@pytest.mark.parametrize("end", [2, 5, 9, 10, 11, 37, 200])
def test_epoch_ticks_label_at_most_about_ten_whole_epochs_from_one(end: int) -> None:
    ticks = epoch_ticks(end)
    assert ticks[0] == 1 and ticks[-1] <= end and len(ticks) <= 10
    assert ticks == sorted(set(ticks))


# --- ChangedCells in an app ------------------------------------------------------------


class Lines(ChangedCells, Widget):
    """Five lines of text; records the regions it asked Textual to repaint."""

    DEFAULT_CSS = "Lines { height: 5; width: 30; }"

    def __init__(self) -> None:
        super().__init__()
        self.lines = [f"line {i}" for i in range(5)]
        self.asked: list[tuple[Region, ...]] = []

    def render(self) -> Text:
        return Text("\n".join(self.lines))

    def refresh(self, *regions: Region, **options: bool) -> Lines:
        self.asked.append(regions)
        super().refresh(*regions, **options)
        return self


class LinesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Lines()


async def test_a_repaint_asks_for_the_changed_cells_only_and_shows_them() -> None:
    async with LinesApp().run_test(size=(40, 8)) as pilot:
        widget = pilot.app.query_one(Lines)
        await pilot.pause()
        assert shown(widget).splitlines()[2].startswith("line 2")
        widget.asked.clear()

        widget.lines[2] = "line 2 changed"
        widget.repaint()
        assert widget.asked == [(Region(6, 2, 8, 1),)]
        await pilot.pause()
        lines = shown(widget).splitlines()
        assert lines[2].rstrip() == "line 2 changed"
        assert [line.rstrip() for line in lines[:2]] == ["line 0", "line 1"]

        widget.asked.clear()
        widget.repaint()  # nothing changed: nothing asked
        assert widget.asked == []

        # A plain refresh renders everything again (new styles, say).
        widget.lines[0] = "line zero"
        widget.refresh()
        await pilot.pause()
        assert shown(widget).splitlines()[0].rstrip() == "line zero"


async def test_changed_cells_follow_a_new_size() -> None:
    async with LinesApp().run_test(size=(40, 8)) as pilot:
        widget = pilot.app.query_one(Lines)
        widget.lines[4] = "x" * 30
        widget.repaint()
        await pilot.pause()
        assert shown(widget).splitlines()[4] == "x" * 30
        widget.styles.width = 10
        await pilot.pause()
        assert shown(widget).splitlines()[4] == "x" * 10
        widget.lines[4] = "y" * 30
        widget.repaint()
        await pilot.pause()
        assert shown(widget).splitlines()[4] == "y" * 10


class ProgressApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunProgress()


def line_of(widget: Widget) -> str:
    """The one line a row of widgets shows, as on the screen."""
    cells = [" "] * widget.size.width
    for child in widget.children:
        x = child.region.x - widget.region.x
        text = shown(child)
        cells[x : x + len(text)] = text
    return "".join(cells).rstrip()


async def test_the_progress_line_shows_the_run_as_it_goes() -> None:
    async with ProgressApp().run_test(size=(80, 3)) as pilot:
        progress = pilot.app.query_one(RunProgress)
        await pilot.pause()
        assert line_of(progress).startswith("○ idle")
        progress.state, progress.epoch, progress.epochs = "running", 2, 4
        progress.batch_done, progress.batches = 50, 100
        progress.repaint()
        await pilot.pause()
        line = line_of(progress)
        assert line.startswith("● running")
        assert "epoch 2/4" in line and "batch  50/100" in line
        assert line.endswith("38%")
        progress.batch_done = 100
        progress.repaint()
        await pilot.pause()
        assert "batch 100/100" in line_of(progress) and line_of(progress).endswith("50%")


class ChartsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossChart()
        yield EpochChart()


async def test_charts_draw_diverged_runs_without_failing() -> None:
    async with ChartsApp().run_test(size=(100, 40)) as pilot:
        loss, epochs = pilot.app.query_one(LossChart), pilot.app.query_one(EpochChart)
        loss.set_epochs(3)
        epochs.set_epochs(3)
        loss.add_points([0.5, 1.0, 1.5], [1.0, math.nan, math.inf])
        epochs.add_epoch(1, 0.5, 1.0)
        epochs.add_epoch(2, math.nan, 1.0)
        loss.redraw_now()
        epochs.redraw_now()
        await pilot.pause()
        assert "train loss" in shown(loss) and "test loss" in shown(epochs)
