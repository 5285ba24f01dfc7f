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


class TrainingRate:
    """Samples a second over training time only, from the engine's events: pauses and
    evaluation are outside it (``BatchEnd.elapsed`` is training time, and an epoch's
    figure starts after the evaluation before it). Within an epoch, the samples of every
    logging window since its first (each window's rate times its seconds) over those
    seconds, not one short window's; at an epoch's end the epoch's own figure; at the
    run's end (``finish``) its epochs' samples over their seconds."""

    def __init__(self) -> None:
        self.value = 0.0  # samples/s; 0.0: not known yet
        self._epoch = -1
        self._last = math.nan  # the last event's elapsed seconds
        self._samples = self._seconds = 0.0  # this epoch's, after its first window
        self._run_samples = self._run_seconds = 0.0

    def add(self, epoch: int, elapsed: float, samples_per_second: float) -> float:
        """One ``BatchEnd``: its epoch (1-based), training seconds and window's rate."""
        if epoch != self._epoch or not elapsed > self._last:
            # An epoch's first window (or a new session's): its own figure for now.
            self._epoch, self._samples, self._seconds = epoch, 0.0, 0.0
            self.value = samples_per_second
        else:
            seconds = elapsed - self._last
            self._samples += samples_per_second * seconds
            self._seconds += seconds
            self.value = self._samples / self._seconds
        self._last = elapsed
        return self.value

    def end_epoch(self, samples_per_second: float, epoch_seconds: float) -> float:
        """One ``EpochEnd``: the epoch's figure, counted into the run's."""
        if epoch_seconds > 0 and math.isfinite(samples_per_second):
            self._run_samples += samples_per_second * epoch_seconds
            self._run_seconds += epoch_seconds
        self.value = samples_per_second
        self._epoch = -1  # the next window follows an evaluation
        return self.value

    def finish(self) -> float:
        """The run's figure: its epochs' samples over their training seconds (the last
        figure when no epoch ended here)."""
        if self._run_seconds > 0:
            self.value = self._run_samples / self._run_seconds
        return self.value


class RunStats(ChangedCells, Widget):
    """One line of figures that never wraps; set the attributes, then ``show_figures()``.

    Where the line is too narrow for every figure in full, figures give way in a fixed
    order (``fitted_line``): the macro averages first (the per-class views show them),
    then the device's details, the memory, the words of throughput and time, the
    device, the best epoch's test figure beside its validation one."""

    DEFAULT_CSS = """
    RunStats {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown_figures = ("", 0)  # the text last shown, and its width
        self.clear()

    def show_figures(self) -> None:
        """Repaint after the attributes changed: the figures that changed."""
        width = max(self.content_region.width, 1)
        text = self.render()
        if (text.plain, width) == self._shown_figures:
            return  # nothing to send
        self._shown_figures = (text.plain, width)
        self.repaint()

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

    def _best(self) -> list[str]:
        """``best 85.1%``, or ``best val 85.1% test 84.0%`` with a validation split, then
        its shorter forms."""
        if not math.isfinite(self.best_accuracy):
            return ["best —"]
        if not math.isfinite(self.best_test_accuracy):
            return [f"best {self.best_accuracy:.1%}"]
        val, test = f"{self.best_accuracy:.1%}", f"{self.best_test_accuracy:.1%}"
        return [f"best val {val} test {test}", f"best val {val}"]

    def macro(self) -> str:
        """``epoch 6: macro P 81.2% R 80.4% F1 80.6%`` (the latest epoch's), or "" before
        an epoch gives them."""
        figures = (self.macro_precision, self.macro_recall, self.macro_f1)
        if not all(math.isfinite(v) for v in figures):
            return ""
        p, r, f1 = figures
        epoch = f"epoch {self.macro_epoch}: " if self.macro_epoch else ""
        return f"{epoch}macro P {p:.1%} R {r:.1%} F1 {f1:.1%}"

    def render(self) -> Text:
        rate = f"{self.samples_per_second:,.0f}" if self.samples_per_second else "—"
        device = self.device or "—"
        # Each figure's forms, longest first; "" leaves it out.
        figures = {
            "rate": [f"{rate} samples/s", f"{rate}/s"],
            "elapsed": [duration(self.elapsed) + " elapsed", duration(self.elapsed)],
            "eta": ["ETA " + duration(self.eta)],
            "device": [device, device.partition(" (")[0], ""],
            "mem": ["mem " + size_in_bytes(self.memory_bytes), ""],
            "lr": ["lr " + (f"{self.lr:.2g}" if math.isfinite(self.lr) else "—")],
            "best": self._best(),
            "macro": [self.macro(), ""],
        }
        order = ("macro", "device", "mem", "rate", "device", "elapsed", "best")
        width = max(self.content_region.width, 20)
        # One style for the whole line: each change of style costs bytes on every repaint.
        return Text(fitted_line(figures, order, width), no_wrap=True, overflow="ellipsis")


def fitted_line(figures: dict[str, list[str]], order: tuple[str, ...], width: int) -> str:
    """The figures joined by `` · `` on one line of at most ``width`` cells where that
    can be: each name in ``order`` in turn moves its figure to its next shorter form
    (``""``: left out) until the line fits. ``figures``: each figure's forms, longest
    first, in the order they are shown."""
    form = dict.fromkeys(figures, 0)

    def line() -> str:
        return " · ".join(f for name, forms in figures.items() if (f := forms[form[name]]))

    for name in order:
        if len(line()) <= width:
            break
        form[name] = min(form[name] + 1, len(figures[name]) - 1)
    return line()
