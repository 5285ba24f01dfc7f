"""The training listener: engine events in, app messages out, at a bounded rate.

It runs on the training thread. Batch events are gathered and posted at most every
``interval`` seconds (each message carries all of them, so charts lose nothing);
every other event is posted at once, after any batches still held, so the order
is kept and an epoch's result is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from engine.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    Event,
    Failed,
    Finished,
    RunStarted,
    StateChanged,
)
from tui import messages
from tui.throttle import Clock, Coalescer

# At most this many batch updates a second reach the UI thread.
BATCH_UPDATES_PER_SECOND = 10


class EventBridge:
    """Turns engine events into messages for ``post`` (e.g. ``App.post_message``)."""

    def __init__(
        self,
        post: Callable[[Message], object],
        *,
        interval: float = 1 / BATCH_UPDATES_PER_SECOND,
        clock: Clock | None = None,
    ) -> None:
        self._post = post
        self._batches: Coalescer[BatchEnd] = (
            Coalescer(interval) if clock is None else Coalescer(interval, clock)
        )

    def __call__(self, event: Event) -> None:
        if isinstance(event, BatchEnd):
            ready = self._batches.add(event)
            if ready:
                self._post(messages.BatchProgress(ready))
            return
        held = self._batches.drain()
        if held:
            self._post(messages.BatchProgress(held))
        message = _message_for(event)
        if message is not None:
            self._post(message)


def _message_for(event: Event) -> Message | None:
    if isinstance(event, RunStarted):
        return messages.TrainingStarted(event)
    if isinstance(event, EpochEnd):
        return messages.EpochFinished(event)
    if isinstance(event, CheckpointSaved):
        return messages.CheckpointWritten(event)
    if isinstance(event, StateChanged):
        return messages.TrainingStateChanged(event.state)
    if isinstance(event, Finished):
        return messages.TrainingFinished(event)
    if isinstance(event, Failed):
        return messages.TrainingFailed(event.reason)
    return None
