"""TensorBoard event files for a run, written as it trains (``--tensorboard DIR``).

``TensorBoardWriter`` is a listener: ``Trainer.fit`` attaches one when
``config.tensorboard`` names a folder, so the CLI, the app, detached runs and search
trials all write the same files, through ``torch.utils.tensorboard.SummaryWriter``,
into ``DIR/<run id>/``: many runs share one ``DIR``, and ``tensorboard --logdir DIR``
compares them. What it writes, every value at the run's global step (batches since the
run began, as PyTorch Lightning's ``TensorBoardLogger`` does):

- ``batch/loss``, ``batch/smoothed_loss``, ``batch/lr``, ``batch/samples_per_second``
  at each progress event (``BatchEnd``);
- ``epoch/NAME`` for every number an ``EpochEnd`` carries (``train_loss``,
  ``test_accuracy``, ``val_loss``, ``lr``, ``samples_per_second``, ``epoch_seconds``,
  ``macro_f1``, ...) and ``NAME/CLASS`` for each of its per-class lists
  (``per_class_accuracy/Bag``, ``per_class_f1/T-shirt_top``: ``class_tags``), at the
  step of the epoch's last batch; a field added to the event later is written without a
  change here;
- ``confusion_matrix``: the epoch's confusion matrix as an RGB heat map (rows: true
  class, normalised per row; ``confusion_image``);
- at the end (``Finished``), the hparams plugin's summaries (the config's settings) with
  ``hparams/NAME`` for the run's final figures, in the same folder.

A resumed run appends to its folder and purges what the earlier session wrote after its
checkpoint (``SummaryWriter(purge_step=...)``), so no step is written twice. Event files
are append-only logs, not written atomically: a kill may cut the last record short, and
TensorBoard's reader stops at a short record. The ``tensorboard`` package (the
``[tensorboard]`` extra) is needed; ``tensorboard_problems`` says what stops a folder
from being used before a run starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import files
from engine.errors import ConfigError, TrainingError
from engine.events import BatchEnd, EpochEnd, Event, Failed, Finished, RunStarted

__all__ = [
    "INSTALL",
    "TensorBoardWriter",
    "check_tensorboard",
    "class_tags",
    "confusion_image",
    "preload",
    "tensorboard_available",
    "tensorboard_problems",
]

INSTALL = "pip install 'fmnist-tui[tensorboard]'"

# The progress figures written at each BatchEnd; the rest of it is bookkeeping.
BATCH_FIELDS = ("loss", "smoothed_loss", "lr", "samples_per_second")

# Settings that say where the run's files go, not how it trains: no hparams.
_NOT_HPARAMS = frozenset({"tensorboard", "runs_dir"})

# Pixels of one cell's side in the confusion image, and the image's side it aims at.
_MIN_CELL = 4
_IMAGE_SIDE = 256


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package can be imported (it is looked up, not
    imported). ``sys.modules["tensorboard"] = None`` hides it, as Python's import system
    does for any module."""
    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # a broken install, or a module without a spec
        return False


def tensorboard_problems(folder: str) -> list[str]:
    """What stops ``folder`` from taking a run's TensorBoard files: [] when nothing does
    or ``folder`` is "" (off). Each problem reads ``tensorboard: ...``, saying what is
    wrong and what to do: the package missing (with the pip command), ``folder`` (or a
    folder above it) being a file, or a folder that cannot be written in. Writes nothing;
    a folder that does not exist yet is made when the run starts."""
    if not folder:
        return []
    if not tensorboard_available():
        return [
            "tensorboard: the tensorboard package is not installed, and writing event "
            f"files needs it; install the [tensorboard] extra ({INSTALL}) or leave "
            "tensorboard empty"
        ]
    path = Path(os.path.abspath(folder))
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, a file"
        return [f"tensorboard: {folder} {what}; give a folder (it is made if missing)"]
    why = files.write_problem(existing)
    if why:
        return [f"tensorboard: cannot write in {existing} ({why}); give a folder you can write to"]
    return []


def check_tensorboard(folder: str, *, make: bool = False) -> None:
    """Raise ``ConfigError`` with ``tensorboard_problems(folder)``, if there are any.

    ``make`` also makes the folder (and those above it), as a run that is starting does:
    a folder the checks above cannot see is unwritable (a read-only or special file
    system, seen by root) is then refused before training, not after."""
    problems = tensorboard_problems(folder)
    if not problems and folder and make:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            problems = [
                f"tensorboard: cannot make the folder {folder} ({exc.strerror or exc}); "
                "give a folder you can write to"
            ]
    if problems:
        raise ConfigError(problems)


_preloading: list[threading.Thread] = []


def _import_writer() -> None:
    # An ImportError shows again, with its reason, where the writer is made.
    with contextlib.suppress(ImportError):
        import torch.utils.tensorboard  # noqa: F401


def preload() -> None:
    """Start importing ``torch.utils.tensorboard`` (about 0.1 s: tensorboard, protobuf)
    on a background thread, once per process: ``Trainer.fit`` calls it before it loads
    the data, so the import overlaps the load instead of delaying the first batch. A
    ``TensorBoardWriter`` waits for it to end."""
    if not _preloading:
        thread = threading.Thread(target=_import_writer, name="tensorboard-import", daemon=True)
        _preloading.append(thread)
        thread.start()


def confusion_image(matrix: list[list[int]] | np.ndarray) -> np.ndarray:
    """A K x K confusion matrix (rows: true class, columns: predicted) as an RGB heat map:
    uint8, (K*s) x (K*s) x 3 (HWC), each cell a square of s pixels (s is 256 // K, at
    least 4). Each row is divided by its total, so a cell shows the share of that class's
    images (0 white, 1 dark blue, as scikit-learn's ``Blues``); a row with no images is
    grey. numpy only. Raises ``ValueError`` for a matrix that is not square."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"a confusion matrix is K x K, got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    white = np.array([247.0, 251.0, 255.0])
    blue = np.array([8.0, 48.0, 107.0])
    cells = white + share[..., None] * (blue - white)
    cells[totals[:, 0] == 0] = 160.0
    cell = max(_MIN_CELL, _IMAGE_SIDE // counts.shape[0])
    pixels = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)
    return np.ascontiguousarray(np.rint(pixels).astype(np.uint8))


def class_tags(classes: list[str] | tuple[str, ...]) -> list[str]:
    """Each class's name as the last part of its per-class tags (``per_class_f1/NAME``):
    TensorBoard groups tags by "/", so a "/" in a name becomes "_" (``T-shirt/top`` gives
    ``T-shirt_top``, one scalar, not a group ``T-shirt`` of its own); an empty name is its
    index, and a name that would repeat an earlier one gets ``_INDEX`` after it, so each
    class keeps a tag of its own, the same in every run of the same classes."""
    tags: list[str] = []
    for index, name in enumerate(classes):
        tag = name.replace("/", "_") or str(index)
        tags.append(f"{tag}_{index}" if tag in tags else tag)
    return tags


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hparam(value: Any) -> Any:
    """A setting as the hparams plugin takes it: lists joined by commas."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


class TensorBoardWriter:
    """Writes one run's events into ``folder/run_id/`` (see the module's docstring); call
    it with each event, in order, on the training thread, and ``close()`` it at the end.

    ``step`` is the run's global step when this session starts (0 for a new run, the
    checkpoint's for a resumed one); ``resumed`` purges what an earlier session wrote
    after that step. ``seconds`` is the time spent inside this writer
    (``time.perf_counter``): creating it, every call and ``close()``. The event files
    are flushed at each epoch's end and at ``close()``.

    Raises ``ConfigError`` when the package is missing or the folder cannot be made, and
    ``TrainingError`` (from a call) when the files cannot be written.
    """

    def __init__(
        self, folder: str | Path, run_id: str, *, step: int = 0, resumed: bool = False
    ) -> None:
        started = time.perf_counter()
        for thread in _preloading:
            thread.join()
        self.seconds = 0.0
        self.path = Path(os.path.abspath(folder)) / run_id
        self.step = step
        self._classes: list[str] = []
        self._config: dict[str, Any] = {}
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                tensorboard_problems(str(folder))
                or [f"tensorboard: torch.utils.tensorboard cannot be imported; {INSTALL}"]
            ) from None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # Flushed at each epoch's end: TensorBoard sees every epoch as it ends.
            self._writer: Any = SummaryWriter(
                str(self.path), purge_step=step + 1 if resumed else None, flush_secs=3600
            )
        except OSError as exc:
            raise ConfigError(
                [f"tensorboard: cannot write in {self.path} ({exc.strerror or exc})"]
            ) from None
        self.seconds += time.perf_counter() - started

    def __call__(self, event: Event) -> None:
        started = time.perf_counter()
        try:
            if isinstance(event, BatchEnd):
                self.step = event.step
                for name in BATCH_FIELDS:
                    self._writer.add_scalar(f"batch/{name}", getattr(event, name), self.step)
            elif isinstance(event, EpochEnd):
                self._epoch(event)
            elif isinstance(event, RunStarted):
                self._classes = class_tags(event.classes)
                self._config = dict(event.config)
            elif isinstance(event, Finished):
                self._finished(event)
            elif isinstance(event, Failed):
                self.close()
        except OSError as exc:
            raise TrainingError(
                f"cannot write TensorBoard event files in {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            self.seconds += time.perf_counter() - started

    def _epoch(self, event: EpochEnd) -> None:
        writer, step = self._writer, self.step
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            if field.name == "time":
                continue
            if _is_number(value):
                writer.add_scalar(f"epoch/{field.name}", value, step)
            elif field.name == "confusion_matrix":
                writer.add_image(field.name, confusion_image(value), step, dataformats="HWC")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if _is_number(item):
                        label = self._classes[index] if index < len(self._classes) else index
                        writer.add_scalar(f"{field.name}/{label}", item, step)
        writer.flush()

    def _finished(self, event: Finished) -> None:
        from torch.utils.tensorboard.summary import hparams

        from engine.config import FIELDS

        settings = {
            name: _hparam(value)
            for name, value in self._config.items()
            if name in FIELDS and name not in _NOT_HPARAMS
        }
        domains = {
            name: list(FIELDS[name].choices)
            for name, value in settings.items()
            if FIELDS[name].kind == "choice" and value in FIELDS[name].choices
        }
        metrics = {
            f"hparams/{field.name}": getattr(event, field.name)
            for field in dataclasses.fields(event)
            if field.name != "time" and _is_number(getattr(event, field.name))
        }
        for summary in hparams(settings, metrics, domains):  # type: ignore[no-untyped-call]
            self._writer.file_writer.add_summary(summary, self.step)
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, value, self.step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (once; later calls do nothing). It is called
        when the run's outcome is settled (``Finished`` has flushed everything, or the run
        is failing for its own reason), so a write error here is not raised."""
        started = time.perf_counter()
        try:
            self._writer.close()
        except OSError:  # the run has ended, or is failing for its own reason
            pass
        finally:
            self.seconds += time.perf_counter() - started
