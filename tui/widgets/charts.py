"""Live charts drawn by plotext: training loss per batch, test loss and accuracy per epoch.

Each chart keeps its points and redraws on a timer, at most ``redraws_per_second``
and only when a point arrived since the last redraw: a redraw costs the UI thread
milliseconds (plotext's ``build``) and resends the chart's whole area to the terminal.
Long series are thinned to about two points per column before plotting.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tui.throttle import downsample
from tui.widgets.lean import LeanLines


class ThrottledPlot(LeanLines, PlotextPlot):
    """A plotext chart that redraws on a timer, when it has new points and is on screen."""

    # PlotextPlot's own sizing is not inherited past the LeanLines mix-in.
    DEFAULT_CSS = """
    ThrottledPlot {
        width: 1fr;
        height: 1fr;
    }
    """
    redraws_per_second = 2.0

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
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
        self.refresh()

    def plot_series(self, columns: int) -> None:
        """Plot the points on ``self.plt``, about two per column of ``columns``."""
        raise NotImplementedError


class LossChart(ThrottledPlot):
    """Smoothed training loss, one point per batch event, against the epoch."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("train loss (smoothed)", id=id, classes=classes)
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
        plt = self.plt
        plt.xlabel("epoch")
        if self.epochs:
            xs, ys = downsample(self.epochs, self.losses, columns)
            plt.plot(xs, ys, marker="braille", color="cyan")


TITLE = "test loss (left) · accuracy % (right)"
# Test accuracy in green, validation accuracy in blue.
VAL_TITLE = "test loss · accuracy % (test, val)"


class EpochChart(ThrottledPlot):
    """Test loss (left axis), and test and validation accuracy (right axis), after each
    epoch."""

    # Epochs can end several times a second on a GPU; once a second is plenty to see.
    redraws_per_second = 1.0

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(TITLE, id=id, classes=classes)
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.val_accuracies: list[float] = []  # empty for a run without a validation split

    def reset(self) -> None:
        self.epochs.clear()
        self.losses.clear()
        self.accuracies.clear()
        self.val_accuracies.clear()
        self.title = TITLE
        self.mark_changed()

    def add_epoch(
        self, epoch: int, loss: float, accuracy: float, val_accuracy: float | None = None
    ) -> None:
        """Append an epoch's test loss and accuracy, and its validation accuracy when the
        run has a validation split (fractions, 0-1; plotted in percent)."""
        self.epochs.append(epoch)
        self.losses.append(loss)
        self.accuracies.append(accuracy * 100)
        if val_accuracy is not None:
            self.val_accuracies.append(val_accuracy * 100)
        self.title = VAL_TITLE if self.val_accuracies else TITLE
        self.mark_changed()

    def plot_series(self, columns: int) -> None:
        plt = self.plt
        plt.xlabel("epoch")
        if self.epochs:
            plt.plot(self.epochs, self.losses, marker="hd", color="orange")
            plt.plot(self.epochs, self.accuracies, marker="hd", color="green", yside="right")
            if len(self.val_accuracies) == len(self.epochs):
                plt.plot(self.epochs, self.val_accuracies, marker="hd", color="blue", yside="right")
            if len(self.epochs) == 1:
                # plotext spreads a lone point's axis far either side (an accuracy axis
                # up to 130%); keep both axes in range.
                loss, accuracies = self.losses[0], self.accuracies + self.val_accuracies
                plt.ylim(loss * 0.9, loss * 1.1 + 1e-9)
                # The stub types yside as a float; plotext takes "left" or "right".
                plt.ylim(
                    max(0.0, min(accuracies) - 5),
                    min(100.0, max(accuracies) + 5),
                    yside="right",  # type: ignore[arg-type]
                )
            plt.xticks(list(self.epochs))
