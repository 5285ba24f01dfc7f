"""``CurveOverlay``: labelled series on one plotext chart, with a legend (runs compared).

It draws when given new series and when resized, never on a timer: past runs do not
change often. Long series are thinned to about two points per column first. The axes'
ticks are round numbers (1, 2 or 5 times a power of ten apart: ``round_ticks``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from tui.throttle import downsample
from tui.widgets.lean import LeanLines


def round_ticks(low: float, high: float, most: int = 5, integer: bool = False) -> list[float]:
    """Evenly spaced round values inside ``[low, high]``, a step of 1, 2 or 5 times a
    power of ten apart (0.1, 0.2, 0.5, 1, 2, 5, 10, ...): at most ``most`` (at least 2)
    where a step gives two or more, else the fewest over two a smaller step gives (a
    narrow range between round values: 78-84 in 3 gives 78, 80, 82, 84); [low] when
    the range is empty or not finite. ``integer``: a step of 1 or more (epochs)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    most = max(most, 2)
    power = 10.0 ** math.floor(math.log10((high - low) / most))
    if integer:
        power = max(power, 1.0)
    ticks: list[float] = []
    for factor in (1, 2, 5, 10, 20, 50):
        step = factor * power
        first = math.ceil(low / step - 1e-9)
        last = math.floor(high / step + 1e-9)
        if last - first + 1 < 2 and ticks:
            break  # the range holds fewer than two at this step: the step before is kept
        # Rounded to the step's own digits, so 0.30000000000000004 reads 0.3.
        digits = max(0, -math.floor(math.log10(step)))
        ticks = [round(n * step, digits) for n in range(first, last + 1)]
        if len(ticks) <= most:
            break
    return ticks


def enclosing_ticks(low: float, high: float, most: int) -> list[float]:
    """Round ticks (a step of 1, 2 or 5 times a power of ten) from one at or below ``low``
    to one at or above ``high``: at most ``most`` of them (at least 2), so that a chart
    whose y range runs from the first to the last shows a label at its bottom and its top
    row. ``[low]`` when the range is empty or not finite."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    most = max(most, 2)
    power = 10.0 ** math.floor(math.log10((high - low) / most))
    while True:
        for factor in (1, 2, 5):
            step = factor * power
            first = math.floor(low / step + 1e-9)
            last = math.ceil(high / step - 1e-9)
            if last - first + 1 <= most:
                digits = max(0, -math.floor(math.log10(step)))
                return [round(n * step, digits) for n in range(first, last + 1)]
        power *= 10


def tick_label(value: float) -> str:
    """``2.0`` -> ``2``, ``0.25`` -> ``0.25``, ``20000.0`` -> ``20000``."""
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0e}"


@dataclass(frozen=True)
class Series:
    label: str  # "" for no legend entry
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    marker: str = "braille"


# A character a run where several labelled series share one marker (runs compared): each
# curve and its legend entry read apart without colour (NO_COLOR), not by shade alone.
RUN_MARKS = ("•", "x", "+", "o", "◆", "*", "#", "@")


def distinct_marks(series: Sequence[Series]) -> list[str]:
    """The marker each series is drawn with: its own, except where two labelled series
    or more share one (the runs of a comparison), which get a character each from
    ``RUN_MARKS`` in order, so their curves and legend entries differ by more than
    colour. Unlabelled series keep their marker."""
    labelled = [s.marker for s in series if s.label]
    shared = {m for m in labelled if labelled.count(m) > 1}
    marks: list[str] = []
    given = 0
    for s in series:
        if s.label and s.marker in shared:
            marks.append(RUN_MARKS[given % len(RUN_MARKS)])
            given += 1
        else:
            marks.append(s.marker)
    return marks


class CurveOverlay(LeanLines, PlotextPlot):
    """Plots every ``Series`` given to ``show``; a placeholder line when there are none."""

    DEFAULT_CSS = """
    CurveOverlay {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(
        self, title: str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.xlabel = "epoch"
        self.series: list[Series] = []
        self.placeholder = ""
        self.ylim: tuple[float, float] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def show(
        self,
        title: str,
        series: Sequence[Series],
        *,
        xlabel: str = "epoch",
        placeholder: str = "",
        ylim: tuple[float, float] | None = None,
    ) -> None:
        """``ylim``: the y range to show (None: fit the points)."""
        self.title = title
        self.ylim = ylim
        self.series = list(series)
        self.xlabel = xlabel
        self.placeholder = placeholder
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        title = self.title
        if not any(len(s.xs) for s in self.series) and self.placeholder:
            title = f"{title}: {self.placeholder}" if title else self.placeholder
        plt.title(title)
        plt.xlabel(self.xlabel)
        low, high = self.ylim or self._room_for_legend()
        low, high = self._ticks(low, high)
        plt.ylim(low, high)
        columns = max(self.size.width, 10)
        for s, mark in zip(self.series, distinct_marks(self.series), strict=True):
            if not len(s.xs):
                continue
            xs, ys = downsample(list(s.xs), list(s.ys), columns)
            if len(xs) == 1:
                # plotext draws nothing of a one-point line: show the point itself.
                dot = "dot" if mark == s.marker else mark
                plt.scatter(xs, ys, marker=dot, color=s.color, label=s.label or None)
            else:
                plt.plot(xs, ys, marker=mark, color=s.color, label=s.label or None)
        self.refresh()

    def _ticks(self, low: float | None, high: float | None) -> tuple[float | None, float | None]:
        """Round ticks on both axes, as many as the size leaves room for; the y range
        to show. A range fitted to the points (no ``ylim`` given) is widened to round
        ticks at its bottom and top rows, so two labels or more always show, inside
        the frame (never on the title's row). Epochs are whole: the epoch axis has
        whole ticks, its range from a whole epoch to a whole epoch."""
        xs = [float(x) for s in self.series for x in s.xs]
        ys = [float(y) for s in self.series for y in s.ys]
        if not xs:
            return low, high
        epochs = self.xlabel == "epoch"
        x_low, x_high = min(xs), max(xs)
        if epochs and x_high > x_low:
            x_low, x_high = math.floor(x_low), math.ceil(x_high)
            self.plt.xlim(x_low, x_high)
        spacing = 8 if epochs else 12  # cells a label: an epoch's is short
        x_ticks = round_ticks(x_low, x_high, max(self.size.width // spacing, 2), integer=epochs)
        if len(x_ticks) > 1:
            self.plt.xticks(x_ticks, [tick_label(t) for t in x_ticks])
        rows = self.size.height - 5  # less the title, the frame, the x ticks and label
        most = max(rows // 2 + 1, 2)
        if self.ylim is None:
            y_ticks = enclosing_ticks(
                low if low is not None else min(ys), high if high is not None else max(ys), most
            )
            if len(y_ticks) > 1:
                low, high = y_ticks[0], y_ticks[-1]
        else:
            y_ticks = round_ticks(self.ylim[0], self.ylim[1], most)
        if len(y_ticks) > 1:
            self.plt.yticks(y_ticks, [tick_label(t) for t in y_ticks])
        return low, high

    def _room_for_legend(self) -> tuple[float | None, float | None]:
        """A y range with the legend's rows free above the points (plotext puts the
        legend in the top-left corner, where a loss curve starts)."""
        legend = sum(1 for s in self.series if s.label and len(s.xs))
        ys = [float(y) for s in self.series for y in s.ys]
        if not legend or not ys:
            return None, None
        low, high = min(ys), max(ys)
        span = (high - low) or abs(high) or 1.0
        rows = max(self.size.height - 5, legend + 2)  # less the title, axes and labels
        return low, high + span * (legend + 0.5) / (rows - legend)
