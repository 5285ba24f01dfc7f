"""Messages that carry results up to the app: from worker threads and from panes.

Workers never touch widgets; they post one of these and the app's handlers pass
the data down to the panes. Each is a dataclass: the generated ``__init__`` calls
``Message.__post_init__``, which does what ``Message.__init__`` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from engine import (
        BatchEnd,
        CheckpointSaved,
        EpochEnd,
        Finished,
        ImageData,
        ModelSummary,
        RunStarted,
        TrainConfig,
    )


@dataclass
class DataLoaded(Message):
    data: ImageData


@dataclass
class DataFailed(Message):
    reason: str


@dataclass
class SummaryReady(Message):
    config: TrainConfig
    summary: ModelSummary


@dataclass
class SummaryFailed(Message):
    config: TrainConfig
    reason: str


@dataclass
class TrainingStarted(Message):
    event: RunStarted


@dataclass
class BatchProgress(Message):
    """Every batch event since the previous message, oldest first (never empty)."""

    events: list[BatchEnd]


@dataclass
class EpochFinished(Message):
    event: EpochEnd


@dataclass
class CheckpointWritten(Message):
    event: CheckpointSaved


@dataclass
class TrainingStateChanged(Message):
    state: str  # "paused", "running", "stopping"


@dataclass
class TrainingFinished(Message):
    event: Finished


@dataclass
class TrainingFailed(Message):
    reason: str


@dataclass
class DetachedStarted(Message):
    """A run now trains in a process of its own: the Monitor attaches to it."""

    run_dir: Path
    epochs: int


@dataclass
class DetachFailed(Message):
    reason: str
