"""The training listener: engine events in, app messages out, at a bounded rate.

It runs on the training (or following) thread. Batch events are gathered into a
``BatchBuffer`` and announced at most every ``interval`` seconds by a
``BatchProgress`` message whose ``can_replace`` lets a busy UI fold several into one
(the buffer keeps every event, so charts lose nothing). Every other event is posted
at once, after announcing any batches still held, and later batches go to a new
buffer, so the order is kept and an epoch's result is never dropped.
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
from tui.session import Replayed
from tui.throttle import Clock, RateLimiter

# At most this many batch updates a second reach the UI thread.
BATCH_UPDATES_PER_SECOND = 10


class EventBridge:
    """Turns engine events into messages for ``post`` (e.g. ``MonitorPane.post_message``)."""

    def __init__(
        self,
        post: Callable[[Message], object],
        *,
        interval: float = 1 / BATCH_UPDATES_PER_SECOND,
        clock: Clock | None = None,
    ) -> None:
        self._post = post
        self._limiter = RateLimiter(interval) if clock is None else RateLimiter(interval, clock)
        self._buffer = messages.BatchBuffer()
        self._held = 0

    def __call__(self, event: Event | Replayed) -> None:
        if isinstance(event, BatchEnd):
            self._buffer.add(event)
            self._held += 1
            if self._limiter.ready():
                self._announce()
            return
        self._announce()
        # Batches after this event go in a new buffer: drained with the old one, a
        # replayed run's later batches would be shown before the event between them.
        self._buffer = messages.BatchBuffer()
        message = _message_for(event)
        if message is not None:
            self._post(message)

    def _announce(self) -> None:
        if self._held:
            self._held = 0
            self._post(messages.BatchProgress(self._buffer))


def _message_for(event: Event | Replayed) -> Message | None:
    if isinstance(event, Replayed):
        return messages.HistoryReplayed(event.events)
    if isinstance(event, RunStarted):
        return messages.TrainingStarted(event)
    if isinstance(event, EpochEnd):
        return messages.EpochFinished(event)
    if isinstance(event, CheckpointSaved):
        return messages.CheckpointWritten(event)
    if isinstance(event, StateChanged):
        return messages.TrainingStateChanged(event.state, event.time)
    if isinstance(event, Finished):
        return messages.TrainingFinished(event)
    if isinstance(event, Failed):
        return messages.TrainingFailed(event.reason, event.time)
    return None
