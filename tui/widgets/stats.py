"""``RunStats``: throughput, time, device and optimiser numbers of the current run."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from tui.widgets.lean import ChangedCells


def duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``; a dash when not known yet."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size_in_bytes(count: int) -> str:
    if count <= 0:
        return "—"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}" if unit == "GB" else f"{count // scale} {unit}"
    return f"{count} B"


class RunStats(ChangedCells, Widget):
    """One wrapped line of figures; set the attributes, then ``show_figures()``."""

    DEFAULT_CSS = """
    RunStats {
        height: auto;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines = 1
        self._shown_figures = ("", 0)  # the text last shown, and its width
        self.clear()

    def show_figures(self) -> None:
        """Repaint after the attributes changed: the figures that changed, or all of it,
        laid out again, if its height did."""
        width = max(self.content_region.width, 1)
        text = self.render()
        if (text.plain, width) == self._shown_figures:
            return  # nothing to send
        self._shown_figures = (text.plain, width)
        lines = len(text.wrap(self.app.console, width))
        if lines != self._lines:
            self.refresh(layout=True)
        else:
            self.repaint()
        self._lines = lines

    def clear(self) -> None:
        self.samples_per_second = 0.0
        self.elapsed = float("nan")
        self.eta = float("nan")
        self.device = ""
        self.memory_bytes = 0
        self.lr = float("nan")
        self.best_accuracy = float("nan")
        # The best epoch's test accuracy, shown beside its validation accuracy (NaN: the
        # run has no validation split, and ``best_accuracy`` is a test accuracy itself).
        self.best_test_accuracy = float("nan")
        # The latest epoch's macro-averaged precision, recall and F1 on the test split
        # (fractions; NaN until an epoch gives them), labelled with that epoch: the best
        # figures beside them are the best epoch's, the Runs pane's F1 too.
        self.macro_epoch = 0
        self.macro_precision = float("nan")
        self.macro_recall = float("nan")
        self.macro_f1 = float("nan")

    def _best(self) -> str:
        """``best 85.1%``, or ``best val 85.1% test 84.0%`` with a validation split."""
        if not math.isfinite(self.best_accuracy):
            return "best —"
        if not math.isfinite(self.best_test_accuracy):
            return f"best {self.best_accuracy:.1%}"
        return f"best val {self.best_accuracy:.1%} test {self.best_test_accuracy:.1%}"

    def _macro(self) -> list[str]:
        """``epoch 6: macro P 81.2% R 80.4% F1 80.6%`` (the latest epoch's), or nothing
        before an epoch gives them."""
        figures = (self.macro_precision, self.macro_recall, self.macro_f1)
        if not all(math.isfinite(v) for v in figures):
            return []
        p, r, f1 = figures
        epoch = f"epoch {self.macro_epoch}: " if self.macro_epoch else ""
        return [f"{epoch}macro P {p:.1%} R {r:.1%} F1 {f1:.1%}"]

    def render(self) -> Text:
        parts = [
            (f"{self.samples_per_second:,.0f}" if self.samples_per_second else "—") + " samples/s",
            duration(self.elapsed) + " elapsed",
            "ETA " + duration(self.eta),
            self.device or "—",
            "mem " + size_in_bytes(self.memory_bytes),
            "lr " + (f"{self.lr:.2g}" if math.isfinite(self.lr) else "—"),
            self._best(),
            *self._macro(),
        ]
        # Break between figures, never inside one ("lr" on one line, its value on the next).
        width = max(self.content_region.width, 20)
        text, line = Text(), 0
        for part in parts:
            if line and line + 3 + len(part) > width:
                text.append("\n")
                line = 0
            elif line:
                # One style for the whole line: each change of style costs bytes on
                # every repaint.
                text.append(" · ")
                line += 3
            text.append(part)
            line += len(part)
        return text
