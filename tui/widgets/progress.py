"""``RunProgress``: the run's state with epoch and batch progress bars, on one line.

The line is six small widgets side by side (state, epoch, its bar, batch, its bar,
percent done), each sending only what changed: Textual resends a widget's line from
its left edge to its last change, so the batch counter moving costs a few cells, not
the whole line.
"""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget

from tui.widgets.lean import ChangedCells

STATE_MARKS = {
    "idle": ("○", "dim"),
    "starting": ("◌", "yellow"),
    "running": ("●", "green"),
    "paused": ("‖", "yellow"),
    "stopping": ("◌", "yellow"),
    # Asked of a run in another process, not yet answered by its trainer.
    "pausing…": ("◌", "yellow"),
    "resuming…": ("◌", "yellow"),
    "stopping…": ("◌", "yellow"),
    "finished": ("✓", "green"),
    "stopped": ("■", "yellow"),
    "failed": ("✗", "red"),
    "interrupted": ("■", "red"),
}


class RunProgressText(ChangedCells, Widget):
    """One piece of text of the progress line, as wide as it is."""

    DEFAULT_CSS = """
    RunProgressText {
        width: auto;
        height: 1;
        margin-left: 1;
    }
    """

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.text = Text()

    def show(self, text: Text) -> None:
        """Show ``text``: its changed cells, or all of it, laid out again, if its width
        changed."""
        if text == self.text and text.style == self.text.style:
            return  # nothing to send
        resized = text.cell_len != self.text.cell_len
        self.text = text
        if resized:
            self.refresh(layout=True)
        else:
            self.repaint()

    def render(self) -> Text:
        return self.text


class RunProgressBar(ChangedCells, Widget):
    """A progress bar sharing the line's width with the other."""

    DEFAULT_CSS = """
    RunProgressBar {
        width: 1fr;
        height: 1;
        margin-left: 1;
    }
    """

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.total = 1.0
        self.completed = 0.0
        self._shown_halves: int | None = None

    def show(self, total: float, completed: float) -> None:
        """``completed`` of ``total`` done: repaint the cells that changed (none, and
        no rendering, while the bar's end stays in the same half cell)."""
        halves = self._halves(total, completed)
        self.total, self.completed = total, completed
        if halves is None or halves != self._shown_halves:
            self._shown_halves = halves
            self.repaint()

    def _halves(self, total: float, completed: float) -> int | None:
        """Half cells the bar fills (as Rich draws it) at this width; None if unknown."""
        width = self.content_region.width
        if not width or total <= 0:
            return None
        return int(width * 2 * min(max(completed, 0.0), total) / total)

    def on_resize(self) -> None:
        self._shown_halves = None

    def render(self) -> ProgressBar:
        return ProgressBar(total=self.total, completed=self.completed)


class RunProgress(Widget):
    """Shows ``state``, ``epoch``/``epochs`` and ``batch``/``batches``; set them, then
    ``repaint()`` (only the cells that changed are sent)."""

    DEFAULT_CSS = """
    RunProgress {
        layout: horizontal;
        height: 1;
        width: 1fr;
    }
    RunProgress > .-state {
        margin-left: 0;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.state = "idle"
        self.epoch = 0
        self.epochs = 0
        self.batch_done = 0
        self.batches = 0

    def compose(self) -> ComposeResult:
        yield RunProgressText(classes="-state")
        yield RunProgressText(classes="-epoch")
        yield RunProgressBar(classes="-epochs")
        yield RunProgressText(classes="-batch")
        yield RunProgressBar(classes="-batches")
        yield RunProgressText(classes="-done")

    def on_mount(self) -> None:
        self.repaint()

    def repaint(self) -> None:
        """Show the attributes as they are now, sending only what changed."""
        if not self.children:
            return  # not composed yet: on_mount shows them
        state, epoch, epochs_bar, batch, batches_bar, done_text = self.children
        assert isinstance(state, RunProgressText) and isinstance(epoch, RunProgressText)
        assert isinstance(batch, RunProgressText) and isinstance(done_text, RunProgressText)
        assert isinstance(epochs_bar, RunProgressBar) and isinstance(batches_bar, RunProgressBar)
        mark, style = STATE_MARKS.get(self.state, ("?", ""))
        digits = len(str(self.batches)) if self.batches else 1
        epochs = max(self.epochs, 1)
        batches = max(self.batches, 1)
        done = (self.epoch - 1 + self.batch_done / batches) / epochs if self.epoch else 0.0
        state.show(Text(f"{mark} {self.state:<8}", style=style))
        epoch.show(Text(f"epoch {self.epoch}/{self.epochs}"))
        epochs_bar.show(epochs * batches, done * epochs * batches)
        batch.show(Text(f"batch {self.batch_done:>{digits}}/{self.batches}"))
        batches_bar.show(batches, self.batch_done)
        done_text.show(Text(f"{done:>4.0%}"))
