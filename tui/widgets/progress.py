"""``RunProgress``: the run's state with epoch and batch progress bars, on one line."""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from tui.widgets.lean import LeanLines

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


class RunProgress(LeanLines, Widget):
    """Shows ``state``, ``epoch``/``epochs`` and ``batch``/``batches``; set them, then refresh."""

    DEFAULT_CSS = """
    RunProgress {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.state = "idle"
        self.epoch = 0
        self.epochs = 0
        self.batch_done = 0
        self.batches = 0

    def render(self) -> Table:
        mark, style = STATE_MARKS.get(self.state, ("?", ""))
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True, justify="right")
        digits = len(str(self.batches)) if self.batches else 1
        epochs = max(self.epochs, 1)
        batches = max(self.batches, 1)
        done = (self.epoch - 1 + self.batch_done / batches) / epochs if self.epoch else 0.0
        grid.add_row(
            Text(f"{mark} {self.state:<8}", style=style),
            Text(f"epoch {self.epoch}/{self.epochs}"),
            ProgressBar(total=epochs * batches, completed=done * epochs * batches),
            Text(f"batch {self.batch_done:>{digits}}/{self.batches}"),
            ProgressBar(total=batches, completed=self.batch_done),
            Text(f"{done:>4.0%}"),
        )
        return grid
