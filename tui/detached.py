"""Watching and steering a run that trains in another process (``fmnist-tui attach``).

The run folder is the only link: its ``metrics.jsonl`` carries the engine's events
(read with ``MetricsFollower``) and its control file carries pause, resume and stop
(written with ``Run.request``), which the training process acts on within a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from engine.events import Event
from engine.runs import MetricsFollower, Run

# How often the run's log is read, in seconds.
FOLLOW_POLL_SECONDS = 0.25


class DetachedRun:
    """The controls a ``Trainer`` offers, for a run training elsewhere."""

    def __init__(self, path: str | Path) -> None:
        self.run = Run(Path(path))

    def pause(self) -> None:
        self.run.request("pause")

    def resume_training(self) -> None:
        self.run.request("resume")

    def stop(self, reason: str = "stop") -> None:
        self.run.request("stop")


def follow(run: Run, listener: Callable[[Event], None], cancelled: Callable[[], bool]) -> None:
    """Feed ``run``'s events, past and new, to ``listener`` until the run ends.

    It ends when no process trains the run any more (finished, stopped, crashed, or
    never started) or when ``cancelled()``. A Finished event alone does not end it: a
    resumed run's log still holds the Finished of the session it resumes, until the
    trainer truncates it.
    """
    follower = MetricsFollower(run)
    while not cancelled():
        for event in follower.poll():
            listener(event)
        if not run.is_locked():
            # One last read: the trainer may have written its last events and let go.
            for event in follower.poll():
                listener(event)
            return
        time.sleep(FOLLOW_POLL_SECONDS)
