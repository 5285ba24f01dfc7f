"""The state of a run: ``RunState`` names where it is, ``TrainState`` is what resumes it.

``RunState`` is the one list of state names: events, ``status.json``, the CLI and the
app all use it (its values are the strings written to disk). ``TrainState`` holds the
loop's counters, running meters and random streams; ``to_checkpoint`` and
``from_checkpoint`` turn it into the plain dict a checkpoint stores, so a run stopped
at any batch continues exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engine.errors import CheckpointError


class RunState(str, Enum):
    """Where a run is. The values are what ``status.json`` and the events say."""

    IDLE = "idle"  # the app has no run
    STARTING = "starting"  # asked for; the trainer has not begun yet
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # asked to stop; it will at the next batch boundary
    STOPPED = "stopped"  # stopped as asked, with a resumable checkpoint
    FINISHED = "finished"  # trained every epoch
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # on disk: stopped, or its trainer died, resumable
    PRUNED = "pruned"  # a search's pruner ended it early; it keeps no checkpoint
    UNREADABLE = "unreadable"  # status.json cannot be read here (another user's, not a file)

    def __str__(self) -> str:
        return self.value

    @property
    def live(self) -> bool:
        """True while a trainer works on the run (or is about to)."""
        return self in (RunState.STARTING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING)

    @classmethod
    def parse(cls, value: object, default: RunState) -> RunState:
        """The state named by ``value`` (from a file a person may have edited), else ``default``."""
        try:
            return cls(value)
        except ValueError:
            return default


# The states a run folder's status.json may hold.
DISK_STATES = (
    RunState.STARTING,
    RunState.RUNNING,
    RunState.FINISHED,
    RunState.FAILED,
    RunState.INTERRUPTED,
    RunState.PRUNED,
)


@dataclass
class EpochMeters:
    """Sums over the batches of the epoch in progress (host numbers, not tensors)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0  # samples
    grad_norm_sum: float = 0.0
    grad_norms: int = 0  # batches whose gradient norm was measured

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``partial`` entry: these five numbers by name."""
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "seen": self.seen,
            "grad_norm_sum": self.grad_norm_sum,
            "grad_norms": self.grad_norms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochMeters:
        """Read ``to_dict``'s form back; ``KeyError``, ``TypeError`` or ``ValueError`` if
        an entry is missing or not a number."""
        return cls(
            loss_sum=float(data["loss_sum"]),
            correct=int(data["correct"]),
            seen=int(data["seen"]),
            grad_norm_sum=float(data["grad_norm_sum"]),
            grad_norms=int(data["grad_norms"]),
        )


@dataclass
class TrainState:
    """Everything the loop needs, beside the model and optimiser, to continue a run.

    ``epoch`` counts completed epochs and ``batch`` the batches completed in the next
    one (``batch`` may equal the batches per epoch: stopped after an epoch's last batch,
    before its evaluation). ``elapsed`` is seconds of training over every session of
    the run, pauses excluded. ``rng`` holds the random streams' states as uint8 tensors:
    ``torch`` (weights, dropout), ``shuffle``, ``epoch_start_shuffle``, ``augment``
    and, on CUDA, ``cuda``. ``metrics_offset`` is the length in bytes of
    ``metrics.jsonl`` when the checkpoint was written. ``best_accuracy`` is the best
    epoch's selection accuracy (validation, or test without a validation split) and
    ``best_test_accuracy`` that epoch's test accuracy.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_accuracy: float = 0.0
    best_test_accuracy: float = 0.0
    smoothed_loss: float = math.nan
    meters: EpochMeters = field(default_factory=EpochMeters)
    elapsed: float = 0.0
    rng: dict[str, Any] = field(default_factory=dict)
    metrics_offset: int = 0

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint keys this state owns (the format of ``last.pt``, version 1)."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "best_accuracy": self.best_accuracy,
            "best_test_accuracy": self.best_test_accuracy,
            "smoothed_loss": self.smoothed_loss,
            "partial": self.meters.to_dict(),
            "elapsed": self.elapsed,
            "rng": dict(self.rng),
            "metrics_offset": self.metrics_offset,
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], where: str = "checkpoint") -> TrainState:
        """Read the state back; ``CheckpointError`` naming ``where`` if a key is missing or bad."""
        try:
            rng = checkpoint["rng"]
            if not isinstance(rng, dict):
                raise TypeError("rng is not a mapping")
            state = cls(
                epoch=int(checkpoint["epoch"]),
                batch=int(checkpoint["batch"]),
                step=int(checkpoint["step"]),
                best_accuracy=float(checkpoint["best_accuracy"]),
                # Checkpoints from before validation splits chose on the test accuracy.
                best_test_accuracy=float(
                    checkpoint.get("best_test_accuracy", checkpoint["best_accuracy"])
                ),
                smoothed_loss=float(checkpoint["smoothed_loss"]),
                meters=EpochMeters.from_dict(checkpoint["partial"]),
                elapsed=float(checkpoint.get("elapsed", 0.0)),
                rng=dict(rng),
                metrics_offset=int(checkpoint["metrics_offset"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint ({exc})") from None
        if min(state.epoch, state.batch, state.step, state.metrics_offset) < 0:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint (negative count)")
        return state
