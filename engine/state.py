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
from engine.fields import epochs_text


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
class EarlyStopping:
    """Early stopping's counters, with the rule of Lightning's ``EarlyStopping`` and Keras's
    callback: an epoch improves when its figure beats the last improving figure by more
    than ``min_delta`` (higher accuracy, lower loss); after ``patience`` epochs in a row
    without improvement the run stops. ``best`` is that last improving figure (not always
    the run's best one: an epoch that beats it by ``min_delta`` or less does not move it),
    None before the first epoch; ``best_epoch`` is its epoch, 1-based; ``wait`` counts the
    epochs since (afresh after a resume that extends a run early stopping ended);
    ``reason`` is set (and kept) once it has stopped the run. The run's last epoch never
    sets it: a run that trains all its epochs simply finished."""

    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    reason: str = ""

    def update(
        self,
        watch: str,
        value: float,
        epoch: int,
        *,
        min_delta: float,
        patience: int,
        name: str,
        last: bool = False,
    ) -> bool:
        """Count epoch ``epoch`` (1-based) whose figure ``watch`` ("val_accuracy" or
        "val_loss", as ``TrainConfig.early_stopping``) is ``value``; ``name`` is how the
        reason calls the figure; ``last``: it is the run's last epoch, which the run ends
        after anyway. Returns True, with ``reason`` set, when it stops the run here (never
        on the ``last`` epoch). A NaN figure never improves.

        The reason reads ``early stopping: val_accuracy has not improved by more than 0.01
        on 0.802 (epoch 1) for 2 epochs``: the figure it was held against, and the epochs
        since that figure's (which exceed ``patience`` after a resume that extended a run
        early stopping ended: the count starts afresh there)."""
        higher = watch == "val_accuracy"
        if self.best is None:
            improved = value == value  # not NaN
        elif higher:
            improved = value - min_delta > self.best
        else:
            improved = value + min_delta < self.best
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return False
        self.wait += 1
        if self.wait < patience or last:
            return False
        since = epochs_text(epoch - self.best_epoch)
        if self.best is None:  # NaN from the first epoch on
            self.reason = f"early stopping: {name} has been NaN for {since}"
            return True
        by = f" by more than {min_delta:g}" if min_delta > 0 else ""
        self.reason = (
            f"early stopping: {name} has not improved{by} on {self.best:.4g} "
            f"(epoch {self.best_epoch}) for {since}"
        )
        return True

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``early_stopping`` entry (plain numbers and a string)."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: object) -> EarlyStopping:
        """Read ``to_dict``'s form back (a fresh one for a checkpoint without it);
        ``KeyError``, ``TypeError`` or ``ValueError`` if an entry is malformed."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise TypeError("early_stopping is not a mapping")
        best = data["best"]
        return cls(
            best=None if best is None else float(best),
            best_epoch=int(data["best_epoch"]),
            wait=int(data["wait"]),
            reason=str(data["reason"]),
        )


def ranked(
    kept: list[tuple[int, float]], epoch: int, accuracy: float, k: int
) -> list[tuple[int, float]]:
    """The best ``k`` of ``kept`` and (``epoch``, ``accuracy``), as (epoch, accuracy) pairs,
    best first: higher accuracy first, the earlier epoch first on a tie (as ``best.pt``
    keeps the first epoch of its accuracy)."""
    return sorted([*kept, (epoch, accuracy)], key=lambda e: (-e[1], e[0]))[:k]


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
    ``best_test_accuracy`` that epoch's test accuracy. ``early_stopping`` holds early
    stopping's counters, and ``top_k`` the (epoch, selection accuracy) pairs of the best
    ``save_top_k`` epochs so far, best first, whose checkpoints are kept.
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
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    top_k: list[tuple[int, float]] = field(default_factory=list)

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint keys this state owns (the format of ``last.pt``, version 1;
        ``early_stopping`` and ``top_k`` added since, read as fresh when absent)."""
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
            "early_stopping": self.early_stopping.to_dict(),
            "top_k": [[epoch, accuracy] for epoch, accuracy in self.top_k],
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
                # Checkpoints from before early stopping and top-k have neither.
                early_stopping=EarlyStopping.from_dict(checkpoint.get("early_stopping")),
                top_k=[(int(e), float(a)) for e, a in checkpoint.get("top_k", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint ({exc})") from None
        if min(state.epoch, state.batch, state.step, state.metrics_offset) < 0:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint (negative count)")
        return state
