"""A run's metrics log, read back: ``metrics.jsonl`` as a whole or as it grows.

``metrics.jsonl`` holds one JSON event per line, appended and flushed by the process
training the run. ``Run.read_metrics`` returns it whole as a ``MetricsLog``;
``MetricsFollower`` reads what was appended since its last look, for a monitor in
another process. Both keep complete lines only: a line being written (or torn by a
kill) is never parsed, and a line that is not an event is counted, never raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import files
from engine.events import EpochEnd, Event, event_from_dict

if TYPE_CHECKING:
    from engine.runs import Run


@dataclass(frozen=True)
class MetricsLog:
    """What ``metrics.jsonl`` holds: its events in order, whether its last line was torn
    (a kill mid-write; that line is not among the events), and how many complete lines
    were not events (junk, or valid JSON of the wrong shape)."""

    events: list[Event]
    torn_line: bool
    bad_lines: int

    @property
    def epochs(self) -> list[EpochEnd]:
        """The ``EpochEnd`` events, in order."""
        return [e for e in self.events if isinstance(e, EpochEnd)]


def parse_events(chunk: bytes) -> tuple[list[Event], int]:
    """The events in ``chunk`` (UTF-8 JSON, one per line; blank lines skipped) and the
    count of lines that are not events (not JSON, not an object, an unknown event, or a
    field of the wrong type: see ``event_from_dict``). Never raises for bad content."""
    events: list[Event] = []
    bad = 0
    for line in chunk.split(b"\n"):
        if not line.strip():
            continue
        try:
            event = event_from_dict(json.loads(line))
        # Bad JSON or UTF-8 is a ValueError; absurdly nested JSON a RecursionError.
        except (ValueError, RecursionError):
            event = None
        if event is None:
            bad += 1
        else:
            events.append(event)
    return events, bad


class MetricsFollower:
    """Reads a run's ``metrics.jsonl`` as it grows, for a monitor in another process.

    ``poll()`` returns the events appended since the last call (complete lines only; a
    line being written is picked up next time). If the log shrinks, as when a run is
    resumed from an earlier checkpoint, it starts again from the top. ``bad_lines``
    counts the complete lines read so far that were not events (since that start).
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.offset = 0  # bytes of the log already returned as events
        self.bad_lines = 0

    def poll(self) -> list[Event]:
        """The events in the complete lines appended since the last call; [] when there
        are none or the log cannot be read (missing, not a regular file)."""
        try:
            size = files.regular_size(self.run.metrics_path)
        except OSError:
            return []
        if size < self.offset:
            self.offset = self.bad_lines = 0
        if size == self.offset:
            return []
        try:
            chunk = files.read_range(self.run.metrics_path, self.offset, size - self.offset)
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events, bad = parse_events(chunk[:end])
        self.bad_lines += bad
        return events
