"""Typed events a ``Trainer`` sends to its listeners while it runs.

Plain dataclasses of Python numbers and lists (never tensors), so a listener on
another thread, a JSON log line and a message to the app can all carry them as they
are. ``to_dict`` / ``event_from_dict`` round-trip them through ``metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """The base of every event. ``time`` is when it happened (Unix seconds; 0 if unknown)."""

    kind: ClassVar[str] = "event"
    time: float = field(default=0.0, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    run_dir: str
    config: dict[str, Any]
    device: str
    data_source: str
    train_size: int  # the validation split's images not included
    test_size: int
    classes: list[str]
    start_epoch: int  # 1 for a new run; later when resuming
    batches_per_epoch: int
    parameters: int
    resumed: bool = False
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0  # seconds the run had trained before this session, pauses excluded
    environment: dict[str, Any] = field(default_factory=dict)  # host, device, versions, argv
    val_size: int = 0  # images held out of training to choose the best epoch on; 0: none


@dataclass(frozen=True)
class BatchEnd(Event):
    """Sent every ``log_every`` batches (and at each epoch's last batch)."""

    kind: ClassVar[str] = "batch"
    epoch: int
    batch: int  # 1-based, within the epoch
    batches: int  # per epoch
    step: int  # batches since the run began
    loss: float  # mean loss over the batches since the previous event
    smoothed_loss: float  # exponential moving average of ``loss``
    samples_per_second: float
    lr: float
    elapsed: float  # seconds of training in the whole run, pauses excluded
    eta: float  # seconds left, estimated from the current speed


@dataclass(frozen=True)
class EpochEnd(Event):
    """An epoch evaluated. Accuracies are fractions (0..1). With a validation split the
    best epoch is the one of highest ``val_accuracy``, else of highest ``test_accuracy``:
    ``best_accuracy`` is that figure and ``best_test_accuracy`` the test accuracy of the
    same epoch. ``val_loss`` and ``val_accuracy`` are None without a validation split."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    per_class_accuracy: list[float | None]  # None: the class has no test images (n/a)
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    lr: float
    grad_norm: float
    samples_per_second: float
    epoch_seconds: float
    memory_bytes: int
    best_accuracy: float
    is_best: bool
    val_loss: float | None = None
    val_accuracy: float | None = None
    best_test_accuracy: float | None = None  # None in logs written before it was kept
    # The test split's precision, recall and F1 per class (None: n/a, for a class with
    # no true and no predicted test images, and in recall for one with no true images)
    # and their macro averages over the figures not n/a (``engine.classification.
    # class_scores`` of ``confusion_matrix``); None in logs written before they were kept.
    per_class_precision: list[float | None] | None = None
    per_class_recall: list[float | None] | None = None
    per_class_f1: list[float | None] | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None


@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    path: str
    epoch: int  # epochs completed
    batch: int  # batches completed within the next epoch (0 at an epoch boundary)
    reason: str  # "epoch", "best", "start", "stop", "interrupt", "quit" (the app quit)


@dataclass(frozen=True)
class StateChanged(Event):
    """Paused, resumed or stopping, as asked through ``pause()``/``resume()``/``stop()``."""

    kind: ClassVar[str] = "state"
    state: str  # "paused", "running", "stopping"


@dataclass(frozen=True)
class Finished(Event):
    kind: ClassVar[str] = "finished"
    status: str  # "finished" (all epochs, or early stopping) or "stopped" (resumable)
    epochs_completed: int
    # 0..1, None when no epoch has ended (nothing measured): the best epoch's validation
    # accuracy (its test accuracy without a validation split), and the last epoch's test
    # accuracy.
    best_accuracy: float | None
    final_accuracy: float | None
    elapsed: float  # seconds of training in the whole run, pauses excluded
    # Why it stopped: "stop", "interrupt", "quit", "detach"; for "finished", early stopping's
    # reason when it ended the run ("" when every epoch was trained).
    reason: str = ""
    best_test_accuracy: float | None = None  # None in logs written before it was kept


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "failed"
    reason: str
    epoch: int
    batch: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (RunStarted, BatchEnd, EpochEnd, CheckpointSaved, StateChanged, Finished, Failed)
}


def _fits(value: object, hint: Any) -> bool:
    """Whether a value read from JSON has the type a field is annotated with (an int is
    no bool, a float may be written as an int; lists and dicts are checked item by item)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # float | None
        return any(value is None if a is type(None) else _fits(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    return False


_FIELD_TYPES: dict[str, dict[str, Any]] = {}


def _field_types(cls: type[Event]) -> dict[str, Any]:
    """Each field of ``cls`` and its type (resolved once per event kind)."""
    if cls.kind not in _FIELD_TYPES:
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls.kind] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _FIELD_TYPES[cls.kind]


def event_from_dict(data: object) -> Event | None:
    """Rebuild an event from its ``to_dict`` form; None for an unknown or malformed one:
    not a JSON object, an unknown ``event``, a field missing, or a field of the wrong
    type (``"test_accuracy": "xx"``). Keys that are not fields are ignored."""
    if not isinstance(data, dict):
        return None
    cls = EVENT_TYPES.get(str(data.get("event")))
    if cls is None:
        return None
    types = _field_types(cls)
    values = {k: v for k, v in data.items() if k in types}
    if not all(_fits(v, types[k]) for k, v in values.items()):
        return None
    try:
        return cls(**values)
    except TypeError:  # a field without a default is missing
        return None
