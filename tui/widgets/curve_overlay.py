"""``CurveOverlay``: labelled series on one plotext chart, with a legend (runs compared).

It draws when given new series and when resized, never on a timer: past runs do not
change often. Long series are thinned to about two points per column first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from tui.throttle import downsample
from tui.widgets.lean import LeanLines


@dataclass(frozen=True)
class Series:
    label: str  # "" for no legend entry
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    marker: str = "braille"


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
        plt.ylim(*(self.ylim or self._room_for_legend()))
        columns = max(self.size.width, 10)
        for s in self.series:
            if not len(s.xs):
                continue
            xs, ys = downsample(list(s.xs), list(s.ys), columns)
            if len(xs) == 1:
                # plotext draws nothing of a one-point line: show the point itself.
                plt.scatter(xs, ys, marker="dot", color=s.color, label=s.label or None)
            else:
                plt.plot(xs, ys, marker=s.marker, color=s.color, label=s.label or None)
        self.refresh()

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
