"""What ``fmnist-tui train`` prints while it trains: three reporters for three audiences.

- a terminal: a Rich progress display (epoch and batch bars, loss, speed, ETA) with one
  line per finished epoch above it;
- a log file or pipe: one plain line per epoch, no progress-bar floods;
- ``--json``: one JSON object per engine event on stdout and nothing else there.

Lines are made printable (``tui.output.printable``): a run id is a folder name, a
reason may quote a file, and neither may send escape sequences to the terminal. Give
them a ``tui.output.LossyStream`` and a reader that goes away costs only the output.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from engine.config import TrainConfig
from engine.events import (
    BatchEnd,
    EpochEnd,
    Event,
    RunStarted,
)
from engine.textlog import TextLog
from tui.output import json_line, printable


class Reporter:
    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def on_event(self, event: Event) -> None:
        raise NotImplementedError


class JsonReporter(Reporter):
    """One JSON object per event; the stream is flushed so a pipe sees it at once."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def on_event(self, event: Event) -> None:
        self.out.write(json_line(event.to_dict()) + "\n")
        self.out.flush()


class PlainReporter(Reporter):
    """A line at start, one per epoch, and one at the end."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self._text = TextLog()

    def _say(self, text: str) -> None:
        self.out.write(printable(text) + "\n")
        self.out.flush()

    def on_event(self, event: Event) -> None:
        for line in self._text.lines(event):
            self._say(line)


class RichReporter(PlainReporter):
    """Live progress bars on a terminal; epoch lines scroll above them."""

    def __init__(self, config: TrainConfig, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._text = TextLog()
        self.console = Console(file=out or sys.stdout)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.epochs = self.progress.add_task("epochs", total=config.epochs, info="")
        self.batches = self.progress.add_task("batches", total=None, info="")
        self.progress.start()

    def _say(self, text: str) -> None:
        self.progress.console.print(printable(text), highlight=False, markup=False)

    def close(self) -> None:
        self.progress.stop()

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.progress.update(self.epochs, completed=event.start_epoch - 1)
            self.progress.update(self.batches, total=event.batches_per_epoch, completed=0)
        elif isinstance(event, BatchEnd):
            eta = _duration(event.eta)
            self.progress.update(
                self.batches,
                completed=event.batch,
                description=f"epoch {event.epoch}",
                info=f"loss {event.smoothed_loss:.4f}  {event.samples_per_second:,.0f}/s  "
                f"ETA {eta}",
            )
        elif isinstance(event, EpochEnd):
            self.progress.update(
                self.epochs,
                completed=event.epoch,
                info=(
                    f"val acc {event.val_accuracy:.4f} · " if event.val_accuracy is not None else ""
                )
                + f"test acc {event.test_accuracy:.4f} (best {event.best_accuracy:.4f})",
            )
        super().on_event(event)


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN before the first estimate
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def make_reporter(config: TrainConfig, *, json_lines: bool, out: Any = None) -> Reporter:
    out = out or sys.stdout
    if json_lines:
        return JsonReporter(out)
    if out.isatty():
        return RichReporter(config, out)
    return PlainReporter(out)
