"""``Trainer``: one run from start (or resume) to finish, put together from the engine's parts.

The loop is in ``engine.loop`` (``train_epoch``, ``close_epoch``, ``evaluate``), the
run folder's files are written by a ``RunRecorder`` listening to the events, pause
and stop go through a ``RunControl``, and a ``TrainState`` is what a checkpoint
resumes. A run stopped at any batch and resumed gives the same numbers as one never
stopped: every random stream (weights and dropout, shuffling, augmentation) is saved
with the checkpoint.

All torch work happens on the thread that calls ``fit()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import TrainConfig
from engine.control import CONTROL_POLL_SECONDS, RunControl
from engine.data import ImageData, load_fashion_mnist
from engine.errors import CheckpointError, EngineError, TrainingError
from engine.events import EpochEnd, Event, Failed, Finished, RunStarted
from engine.loop import (
    Emit,
    Evaluation,
    Parts,
    Stopwatch,
    close_epoch,
    evaluate,
    prepare,
    train_epoch,
)
from engine.optim import learning_rate
from engine.recorder import RunRecorder
from engine.runs import Run
from engine.state import RunState, TrainState

if TYPE_CHECKING:
    import numpy as np
    import torch

    from engine.inference import Prediction

__all__ = ["CONTROL_POLL_SECONDS", "Evaluation", "FitResult", "Trainer", "learning_rate"]

Listener = Callable[[Event], None]


def load_data(config: TrainConfig) -> ImageData:
    """The dataset ``config`` names (Fashion-MNIST or a custom one), cut to its subsets.

    Raises ``DataError`` naming the file when the data is missing or malformed.
    """
    if config.data == "custom":
        from engine.custom import load_custom

        data = load_custom(
            config.custom_csv,
            config.custom_images,
            test_csv=config.custom_test_csv or None,
            test_fraction=config.test_fraction,
            seed=config.seed,
            size=config.image_size,
            resize=config.resize,
            color=config.color,
            classes_file=config.classes_file or None,
        )
    else:
        data = load_fashion_mnist(config.data_dir or None)
    return data.subset(config.train_subset, config.test_subset, config.seed)


@dataclass(frozen=True)
class FitResult:
    """How ``fit()`` ended: ``status`` is ``RunState.FINISHED`` or ``RunState.STOPPED``;
    accuracies are fractions (0..1) of the test split."""

    run_dir: Path | None
    status: RunState
    epochs_completed: int
    best_accuracy: float
    final_accuracy: float
    history: list[EpochEnd]


class Trainer:
    """Trains one model on one dataset, into one run folder.

    ``Trainer(config)`` starts a new run; ``Trainer.resume(run_dir)`` continues one.
    Pass ``data`` to reuse an already loaded ``ImageData`` (it is still cut to the
    config's subsets). ``record=False`` trains without a run folder; ``run`` trains
    into a folder made beforehand with ``Run.create`` (as a detached run does).
    ``pause()``, ``resume_training()`` and ``stop()`` may be called from any thread.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        data: ImageData | None = None,
        record: bool = True,
        run: Run | None = None,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.config = config
        self.control = RunControl(CONTROL_POLL_SECONDS)
        self.run: Run | None = run
        self.history: list[EpochEnd] = []
        self.parts: Parts | None = None
        self.state = TrainState()
        self._data = data
        self._record = record
        self._resuming = False
        self._listeners: list[Listener] = list(listeners)
        self._notes: list[str] = []

    @classmethod
    def resume(
        cls,
        run: Run | str | Path,
        *,
        data: ImageData | None = None,
        epochs: int | None = None,
        listeners: tuple[Listener, ...] = (),
    ) -> Trainer:
        """Continue a run from its last checkpoint; ``epochs`` may extend it (a new total)."""
        if not isinstance(run, Run):
            run = Run.open(run)
        config = run.config()
        if epochs is not None:
            config = TrainConfig.from_dict({"epochs": epochs}, base=config)
        trainer = cls(config, data=data, run=run, listeners=listeners)
        trainer._resuming = True
        return trainer

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event from now on (on the training thread)."""
        self._listeners.append(listener)

    def pause(self) -> None:
        self.control.pause()

    def resume_training(self) -> None:
        self.control.resume()

    def stop(self, reason: str = "stop") -> None:
        """Stop at the next batch boundary, saving a resumable checkpoint first."""
        self.control.stop(reason)

    @property
    def paused(self) -> bool:
        return self.control.paused

    @property
    def stopping(self) -> bool:
        return self.control.stopping

    # --- the run --------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train to the configured number of epochs, or until stopped; returns a summary.

        Raises ``TrainingError`` (after a ``Failed`` event and a "failed" status on
        disk) if training cannot go on, and other ``EngineError`` subclasses for bad
        input found before training starts (a resumed run's state is then left as is).
        """
        import torch

        run = self.run
        if run is not None:
            run.acquire()
        recorder = RunRecorder(run) if run is not None else None
        try:
            if self._resuming and run is not None and not run.has_checkpoint():
                raise CheckpointError(
                    f"run {run.id} cannot be resumed: it stopped before its first "
                    f"checkpoint was saved (no {run.last_path.name} in {run.path}); "
                    "start a new run instead"
                )
            parts = self._ready_parts()
            if self._resuming and run is not None and recorder is not None:
                self._restore(run, parts, recorder)
        except EngineError as exc:
            if recorder is not None and not self._resuming:
                recorder.fail(str(exc))
            if run is not None:
                run.release()
            raise
        if run is None and self._record:
            self.run = run = Run.create(self.config)
            run.acquire()
            recorder = RunRecorder(run)
        if run is not None:
            self.control.watch(run)
        listeners = [recorder, *self._listeners] if recorder is not None else self._listeners

        def emit(event: Event) -> None:
            for listener in list(listeners):
                listener(event)

        try:
            return self._train(parts, self.state, emit, recorder)
        except TrainingError as exc:
            self._fail(emit, str(exc))
            raise
        except torch.OutOfMemoryError:
            reason = (
                f"out of memory on {parts.device} with batch size {self.config.batch_size}; "
                "try a smaller batch size (or eval_batch_size), a smaller model, or bf16"
            )
            self._fail(emit, reason)
            raise TrainingError(reason) from None
        except EngineError as exc:
            if recorder is not None:
                recorder.fail(str(exc))
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._fail(emit, reason)
            raise TrainingError(reason) from exc
        finally:
            if run is not None:
                run.release()

    def _restore(self, run: Run, parts: Parts, recorder: RunRecorder) -> None:
        """Load the last checkpoint into ``parts`` and ``self.state``; cut the log to match."""
        checkpoint = run.load_checkpoint("last")
        self.state = TrainState.from_checkpoint(checkpoint, str(run.last_path))
        parts.load(checkpoint, self.state, str(run.last_path))
        self._notes += recorder.resume(self.state, self.config)
        self.history = run.read_metrics().epochs

    def _train(
        self,
        parts: Parts,
        state: TrainState,
        emit: Emit,
        recorder: RunRecorder | None,
    ) -> FitResult:
        from engine.device import describe_device
        from engine.environment import describe_environment

        run, config = self.run, self.config
        emit(
            RunStarted(
                run_id=run.id if run else "",
                run_dir=str(run.path) if run else "",
                config=config.to_dict(),
                device=describe_device(parts.device),
                data_source=parts.data.source.describe(),
                train_size=len(parts.train_data),
                test_size=len(parts.test_data),
                classes=list(parts.data.classes),
                start_epoch=state.epoch + 1,
                batches_per_epoch=parts.batches_per_epoch,
                parameters=sum(p.numel() for p in parts.model.parameters()),
                resumed=self._resuming,
                notes=[*parts.data.notes, *self._notes],
                elapsed=state.elapsed,
                environment=describe_environment(parts.device),
                time=time.time(),
            )
        )
        clock = Stopwatch(state.elapsed)
        if not self._resuming:
            self._checkpoint(emit, recorder, parts, state, clock, "start")
        while state.epoch < config.epochs:
            started, start_batch = clock.seconds, state.batch
            if not train_epoch(parts, state, emit=emit, control=self.control, clock=clock):
                return self._end(emit, recorder, parts, state, clock, RunState.STOPPED)
            event = close_epoch(
                parts,
                state,
                epoch_seconds=clock.seconds - started,
                batches=state.batch - start_batch,
            )
            self.history.append(event)
            emit(event)
            reason = "best" if event.is_best else "epoch"
            self._checkpoint(emit, recorder, parts, state, clock, reason, best=event.is_best)
        return self._end(emit, recorder, parts, state, clock, RunState.FINISHED)

    def _checkpoint(
        self,
        emit: Emit,
        recorder: RunRecorder | None,
        parts: Parts,
        state: TrainState,
        clock: Stopwatch,
        reason: str,
        *,
        best: bool = False,
    ) -> None:
        if recorder is None:
            return
        state.elapsed = clock.seconds
        parts.capture_rng(state)
        payload: dict[str, Any] = {
            "config": self.config.to_dict(),
            "classes": list(parts.data.classes),
            "image_shape": list(parts.data.image_shape),
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scaler": parts.scaler.state_dict() if parts.scaler is not None else {},
        }
        emit(recorder.checkpoint(payload, state, reason=reason, best=best))

    def _end(
        self,
        emit: Emit,
        recorder: RunRecorder | None,
        parts: Parts,
        state: TrainState,
        clock: Stopwatch,
        status: RunState,
    ) -> FitResult:
        reason = self.control.stop_reason if status == RunState.STOPPED else ""
        if status == RunState.STOPPED:
            self._checkpoint(emit, recorder, parts, state, clock, reason)
        final = self.history[-1].test_accuracy if self.history else 0.0
        emit(
            Finished(
                status.value,
                state.epoch,
                state.best_accuracy,
                final,
                clock.seconds,
                reason=reason,
                time=time.time(),
            )
        )
        run_dir = self.run.path if self.run else None
        return FitResult(
            run_dir, status, state.epoch, state.best_accuracy, final, list(self.history)
        )

    def _fail(self, emit: Emit, reason: str) -> None:
        emit(Failed(reason, self.state.epoch + 1, self.state.batch, time=time.time()))

    # --- evaluation and prediction ---------------------------------------------------

    def _ready_parts(self) -> Parts:
        if self.parts is None:
            data = self._data if self._data is not None else load_data(self.config)
            if self._data is not None:
                data = data.subset(
                    self.config.train_subset, self.config.test_subset, self.config.seed
                )
            self.parts, self.state = prepare(self.config, data)
        return self.parts

    def evaluate(self) -> Evaluation:
        """Loss, accuracy, per-class accuracy and confusion matrix on the test split."""
        return evaluate(self._ready_parts())

    def predict(self, images: np.ndarray | torch.Tensor) -> Prediction:
        """Softmax probabilities and argmax classes for ``N x H x W`` uint8 images."""
        from engine.inference import Predictor

        parts = self._ready_parts()
        predictor = Predictor(parts.model, self.config, parts.data.classes, parts.device)
        try:
            return predictor.predict(images)
        finally:
            parts.model.train()
