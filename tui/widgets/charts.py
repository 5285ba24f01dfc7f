"""Live charts drawn by plotext: training loss and learning rate per batch, test loss and
accuracies per epoch.

Each chart keeps its points and redraws on a timer, at most ``redraws_per_second``
and only when a point arrived since the last redraw: a redraw costs the UI thread
milliseconds (plotext's ``build``). Long series are thinned to about two points per
column before plotting. A redraw sends only the lines that changed
(``tui.widgets.lean.ChangedCells``), so the axes move in steps: x runs from 0 to
``axis_span`` of the run's epochs, y between ``nice_bounds`` of the values, and new
points change only the lines they fall on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from tui.throttle import axis_span, downsample, nice_bounds
from tui.widgets.lean import ChangedCells


class ThrottledPlot(ChangedCells, PlotextPlot):
    """A plotext chart that redraws on a timer, when it has new points and is on screen."""

    # PlotextPlot's own sizing is not inherited past the ChangedCells mix-in.
    DEFAULT_CSS = """
    ThrottledPlot {
        width: 1fr;
        height: 1fr;
    }
    """
    redraws_per_second = 1.0

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.total_epochs = 0  # the run's epochs, where the x axis can end; 0: not known
        self._dirty = True

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1 / self.redraws_per_second, self._redraw_if_needed)
        self._draw()

    def on_resize(self) -> None:
        self._dirty = True

    def on_show(self) -> None:
        self._redraw_if_needed()

    def mark_changed(self) -> None:
        """Redraw at the next tick of the timer (the points changed)."""
        self._dirty = True

    def set_epochs(self, total: int) -> None:
        """The run's length in epochs (0: not known), which the x axis grows towards."""
        if total != self.total_epochs:
            self.total_epochs = total
            self.mark_changed()

    def redraw_now(self) -> None:
        """Redraw at once (for tests and snapshots, which cannot wait for the timer)."""
        self._draw()

    def _redraw_if_needed(self) -> None:
        # Hidden in another pane: wait until shown rather than build for nobody.
        if self._dirty and self.is_mounted and self.region.area:
            self._draw()

    def _draw(self) -> None:
        self._dirty = False
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        self.plot_series(max(self.size.width, 10))
        self.repaint()

    def plot_series(self, columns: int) -> None:
        """Plot the points on ``self.plt``, about two per column of ``columns``."""
        raise NotImplementedError


class LossChart(ThrottledPlot):
    """Smoothed training loss, one point per batch event, against the epoch."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("train loss (smoothed) by epoch", id=id, classes=classes)
        self.epochs: list[float] = []
        self.losses: list[float] = []

    def reset(self) -> None:
        self.epochs.clear()
        self.losses.clear()
        self.mark_changed()

    def add_points(self, epochs: list[float], losses: list[float]) -> None:
        """Append points: x in epochs (fractional, 0.5 is half of the first), y the loss."""
        self.epochs.extend(epochs)
        self.losses.extend(losses)
        self.mark_changed()

    def plot_series(self, columns: int) -> None:
        plot_by_batch(self.plt, self.epochs, self.losses, columns, self.total_epochs)


class LearningRateChart(ThrottledPlot):
    """The learning rate the optimiser used, one point per batch event, against the epoch."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("learning rate by epoch", id=id, classes=classes)
        self.epochs: list[float] = []
        self.rates: list[float] = []

    def set_schedule(self, schedule: str, lr: float) -> None:
        """Name the run's schedule and its peak rate ``lr`` in the title: the rate
        plotted is the one the schedule set at each logged batch, below the peak on
        its warm-up and decay."""
        self.title = f"learning rate ({schedule}, peak {lr:g}) by epoch"
        self.mark_changed()

    def reset(self) -> None:
        self.epochs.clear()
        self.rates.clear()
        self.mark_changed()

    def add_points(self, epochs: list[float], rates: list[float]) -> None:
        """Append points: x in epochs (fractional), y the learning rate."""
        self.epochs.extend(epochs)
        self.rates.extend(rates)
        self.mark_changed()

    def plot_series(self, columns: int) -> None:
        plot_by_batch(self.plt, self.epochs, self.rates, columns, self.total_epochs)


def plot_by_batch(plt: Plot, xs: list[float], ys: list[float], columns: int, total: int) -> None:
    """Plot a per-batch series (x in fractional epochs) on ``plt``, thinned to about two
    points a column of ``columns``; x runs up to ``axis_span`` of ``total`` epochs."""
    if xs:
        end = axis_span(xs[-1], total)
        # From the first point: a run logging every 20 of 36 batches starts past half
        # of its epoch, and an axis from 0 would leave that half empty.
        start = xs[0] if xs[0] < end else 0.0
        xs, ys = downsample(*finite_points(xs, ys), columns, (start, end))
        if xs:
            plt.plot(xs, ys, marker="braille", color="cyan")
            plt.ylim(*nice_bounds(min(ys), max(ys)))
        plt.xlim(start, end)


SHOWN_WHOLE = 20
# Each series' marker, which the title names: the lines tell apart without colour
# (NO_COLOR) too. The loss is on the left axis, the accuracies (%) on the right.
LOSS_MARK, TEST_MARK, VAL_MARK, TRAIN_MARK = "x", "•", "o", "+"
SERIES_COLOURS = {LOSS_MARK: "orange", TEST_MARK: "green", VAL_MARK: "blue", TRAIN_MARK: "magenta"}


def legend(validated: bool) -> str:
    """The epoch chart's title: each series' marker and name."""
    val = f" {VAL_MARK} val" if validated else ""
    return f"{LOSS_MARK} test loss · {TEST_MARK} test{val} {TRAIN_MARK} train acc %"


class EpochChart(ThrottledPlot):
    """Test loss (left axis), and test, validation and train accuracy (right axis),
    after each epoch; each series drawn with its own marker, named in the title."""

    # Epochs can end several times a second on a GPU; once a second is plenty to see.
    redraws_per_second = 1.0

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(legend(False), id=id, classes=classes)
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.val_accuracies: list[float] = []  # empty for a run without a validation split
        self.train_accuracies: list[float] = []  # empty when the events gave none

    def reset(self) -> None:
        self.epochs.clear()
        self.losses.clear()
        self.accuracies.clear()
        self.val_accuracies.clear()
        self.train_accuracies.clear()
        self.title = legend(False)
        self.mark_changed()

    def add_epoch(
        self,
        epoch: int,
        loss: float,
        accuracy: float,
        val_accuracy: float | None = None,
        train_accuracy: float | None = None,
    ) -> None:
        """Append an epoch's test loss and accuracy, its validation accuracy when the run
        has a validation split and its train accuracy (fractions, 0-1; plotted in
        percent)."""
        self.epochs.append(epoch)
        self.losses.append(loss)
        self.accuracies.append(accuracy * 100)
        if val_accuracy is not None:
            self.val_accuracies.append(val_accuracy * 100)
        if train_accuracy is not None:
            self.train_accuracies.append(train_accuracy * 100)
        self.title = legend(bool(self.val_accuracies))
        self.mark_changed()

    @property
    def series(self) -> dict[str, list[float]]:
        """The series drawn, by their marker (``LOSS_MARK`` ...), in the order drawn: the
        lists of values of the epochs (a series that lacks an epoch's value is left out)."""
        drawn = {LOSS_MARK: self.losses}
        for mark, values in ((TRAIN_MARK, self.train_accuracies), (VAL_MARK, self.val_accuracies)):
            if len(values) == len(self.epochs):
                drawn[mark] = values
        # Last, so drawn over the others where they meet: the figure the run is judged by.
        drawn[TEST_MARK] = self.accuracies
        return drawn

    def plot_series(self, columns: int) -> None:
        plt = self.plt
        if not self.epochs:
            return
        accuracies: list[float] = []
        for mark, values in self.series.items():
            # A diverged run's nan or inf losses are left out: plotext cannot place them.
            xs, ys = finite_points(self.epochs, values)
            side = "left" if mark == LOSS_MARK else "right"
            if side == "right":
                accuracies += ys
            # The stub types yside as a float; plotext takes "left" or "right".
            plt.plot(xs, ys, marker=mark, color=SERIES_COLOURS[mark], yside=side)  # type: ignore[arg-type]
        # Both y axes in steps (plotext would spread a lone point's axis far either
        # side, an accuracy axis up to 130%), and x from epoch 1 to where the run
        # ends: the axes stay put while epochs are added.
        loss_bounds = finite_bounds(self.losses)
        accuracy_bounds = finite_bounds(accuracies)
        if len(self.epochs) == 1:
            # One epoch: its points share one column. The loss is drawn at the top and
            # the accuracies in the lower half, so neither hides the other.
            loss_bounds, accuracy_bounds = lone_bounds(self.losses, accuracies)
        if loss_bounds:
            plt.ylim(max(0.0, loss_bounds[0]), loss_bounds[1])
        if accuracy_bounds:
            low, high = accuracy_bounds
            plt.ylim(
                max(0.0, low),
                min(100.0, high) if low < 100.0 and high - low < 100 else high,
                yside="right",  # type: ignore[arg-type]
            )
        last, total = self.epochs[-1], self.total_epochs
        # A run of up to SHOWN_WHOLE epochs is shown whole from its first epoch on.
        whole = 0 < total <= SHOWN_WHOLE and last <= total
        end = max(2, total if whole else math.ceil(axis_span(last, total)))
        plt.xlim(1, end)
        ticks = epoch_ticks(end)
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])


def lone_bounds(
    losses: list[float], accuracies: list[float]
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Axis ranges for a single epoch's points: the loss's top is the loss (it is drawn
    on the top row), the accuracies (%) take the lower half of theirs."""
    loss = finite_bounds(losses)
    if loss is not None:
        top = max(v for v in losses if math.isfinite(v))
        loss = (0.0, top) if top > 0 else loss
    accuracy = finite_bounds(accuracies)
    if accuracy is not None:
        low, high = accuracy
        accuracy = (low, high + (high - low) + 1e-9)
    return loss, accuracy


def finite_points(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """The points of ``xs``, ``ys`` whose y is finite (not nan or inf), as two lists."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def finite_bounds(values: list[float]) -> tuple[float, float] | None:
    """``nice_bounds`` of the finite ``values`` (a diverged run logs nan or inf losses),
    or None when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return nice_bounds(min(finite), max(finite)) if finite else None


def epoch_ticks(end: int, most: int = 10) -> list[int]:
    """Whole epochs from 1 to ``end`` to label on the x axis: at most about ``most``."""
    step = max(1, math.ceil(end / most))
    return list(range(1, end + 1, step))
