"""Messages that carry results up to the app: from worker threads and from panes.

Workers never touch widgets; they post one of these and the app's handlers pass
the data down to the panes. Each is a dataclass: the generated ``__init__`` calls
``Message.__post_init__``, which does what ``Message.__init__`` would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from engine import (
        BatchEnd,
        CheckpointSaved,
        EpochEnd,
        Event,
        Finished,
        ImageData,
        ModelSummary,
        RunStarted,
        RunState,
        TrainConfig,
    )
    from engine.gpu import GpuSnapshot


class BatchBuffer:
    """Batch events handed from the training thread to the UI thread, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[BatchEnd] = []

    def add(self, event: BatchEnd) -> None:
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[BatchEnd]:
        """Every event added since the last drain (possibly none)."""
        with self._lock:
            events, self._events = self._events, []
        return events


@dataclass
class DataLoaded(Message):
    data: ImageData
    # The settings it was loaded with (``engine.trainer.data_settings``).
    settings: tuple[tuple[str, object], ...] = ()


@dataclass
class DataFailed(Message):
    reason: str
    settings: tuple[tuple[str, object], ...] = ()


@dataclass
class SummaryReady(Message):
    config: TrainConfig
    summary: ModelSummary


@dataclass
class SummaryFailed(Message):
    config: TrainConfig
    reason: str


@dataclass
class GpusRead(Message):
    """The GPUs' readings (``engine.gpu``), or why there are none."""

    snapshot: GpuSnapshot


@dataclass
class TrainingStarted(Message):
    event: RunStarted


@dataclass
class BatchProgress(Message):
    """New batch events wait in ``buffer``. A later one for the same buffer replaces a
    pending one: a busy UI drains the buffer once for both, losing nothing."""

    buffer: BatchBuffer

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BatchProgress) and message.buffer is self.buffer


@dataclass
class HistoryReplayed(Message):
    """What a resumed run logged before this session: shown as history."""

    events: list[Event]


@dataclass
class EpochFinished(Message):
    event: EpochEnd


@dataclass
class CheckpointWritten(Message):
    event: CheckpointSaved


@dataclass
class TrainingStateChanged(Message):
    state: str  # "paused", "running", "stopping"
    at: float = 0.0  # when (Unix seconds; 0 if unknown; Message.time is Textual's own)


@dataclass
class TrainingFinished(Message):
    event: Finished


@dataclass
class TrainingFailed(Message):
    reason: str
    at: float = 0.0  # when (Unix seconds)


@dataclass
class SessionState(Message):
    """The session's run changed state (posted from any thread)."""

    state: RunState


@dataclass
class WorkDone(Message):
    """A run's worker has ended: training here, following, or starting detached."""

    error: str = ""  # why it failed, if it did
    title: str = ""


@dataclass
class DataChanged(Message):
    """A resume was refused: the run's data changed since it was trained (its folder
    ``run_dir``, ``epochs`` the total asked for, each change a short phrase; ``detached``
    when it was to train in a process of its own, ``R``)."""

    run_dir: Path
    epochs: int
    changes: list[str]
    detached: bool = False


@dataclass
class DetachedStarted(Message):
    """A run now trains in a process of its own (pid), and the session follows it."""

    run_dir: Path
    pid: int
