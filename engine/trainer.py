"""``Trainer``: the train and test loops, their events, checkpoints and exact resume.

The data lives on the device as uint8 and is batched by index (``DeviceData``). The
loop reads a loss value only every ``log_every`` batches and at epoch ends, so on a
GPU there is no host sync per batch. ``pause()``, ``resume()`` and ``stop()`` may be
called from any thread and take effect within one batch. A run stopped at any batch
and resumed gives the same numbers as one never stopped: every random stream
(weights and dropout, shuffling, augmentation) is saved with the checkpoint.

All torch work happens on the thread that calls ``fit()``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import TrainConfig
from engine.data import Augment, DeviceData, ImageData, load_fashion_mnist
from engine.errors import CheckpointError, DataError, DeviceError, EngineError, TrainingError
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
from engine.inference import Prediction, Predictor
from engine.runs import Run

if TYPE_CHECKING:
    import numpy as np
    import torch

Listener = Callable[[Event], None]

# How often the loop looks for a pause/resume/stop written to the run folder by
# another process (``fmnist-tui attach``), in seconds.
CONTROL_POLL_SECONDS = 0.25


def load_data(config: TrainConfig) -> ImageData:
    """The dataset ``config`` names, cut to its subsets."""
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


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate for optimiser step ``step`` (0-based) under the config's schedule."""
    base = config.lr
    progress = min(step / max(total_steps, 1), 1.0)
    if config.schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return base * config.gamma ** ((step // max(steps_per_epoch, 1)) // config.step_size)
    if config.schedule == "onecycle":
        warm = 0.3
        low, floor = base / 25.0, base / 1e4
        if progress < warm:
            return low + (base - low) * 0.5 * (1 - math.cos(math.pi * progress / warm))
        rest = (progress - warm) / (1 - warm)
        return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * rest))
    return base


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]


@dataclass(frozen=True)
class FitResult:
    run_dir: Path | None
    status: str  # "finished" or "stopped"
    epochs_completed: int
    best_accuracy: float
    final_accuracy: float
    history: list[EpochEnd]


class Trainer:
    """Trains one model on one dataset, into one run folder.

    ``Trainer(config)`` starts a new run; ``Trainer.resume(run_dir)`` continues one.
    Pass ``data`` to reuse an already loaded ``ImageData`` (it is still cut to the
    config's subsets). ``record=False`` trains without a run folder; ``run`` trains
    into a folder made beforehand with ``Run.create`` (as ``train --detach`` does).
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
        self._given_run = run
        self._data = data
        self._record = record
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_reason = "stop"
        self._running = threading.Event()
        self._running.set()
        self._resume_from: Run | None = None
        self._resume_epochs: int | None = None
        self.run: Run | None = None
        self._ready = False
        self._saved: tuple[int, int] | None = None  # (epoch, batch) of the last checkpoint
        self._notes: list[str] = []  # said with RunStarted, beside the data's notes
        self.history: list[EpochEnd] = []

    @classmethod
    def resume(
        cls,
        run: Run | str | Path,
        *,
        data: ImageData | None = None,
        epochs: int | None = None,
        listeners: tuple[Listener, ...] = (),
    ) -> Trainer:
        """Continue a run from its last checkpoint; ``epochs`` may extend it."""
        if not isinstance(run, Run):
            run = Run.open(run)
        config = run.config()
        if epochs is not None:
            config = TrainConfig.from_dict({"epochs": epochs}, base=config)
        trainer = cls(config, data=data, listeners=listeners)
        trainer._resume_from = run
        trainer._resume_epochs = epochs
        return trainer

    # --- listeners and control (any thread) ------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def pause(self) -> None:
        self._running.clear()

    def resume_training(self) -> None:
        self._running.set()

    def stop(self, reason: str = "stop") -> None:
        """Stop at the next batch boundary, saving a resumable checkpoint first."""
        self._stop_reason = reason
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _emit(self, event: Event) -> None:
        if self.run is not None:
            with self._writing("write the metrics log"):
                self.run.append_event(event)
        self._notify(event)

    def _notify(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    @contextlib.contextmanager
    def _writing(self, action: str) -> Iterator[None]:
        """Turn a failed write to the run folder (disk full, read-only) into a clear error."""
        try:
            yield
        except OSError as exc:
            assert self.run is not None
            if self._saved is None:
                kept = "no checkpoint was saved yet"
            else:
                epoch, batch = self._saved
                at = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
                kept = (
                    f"the checkpoint from {at if epoch or batch else 'the start'} is intact "
                    "and the run can be resumed"
                )
            raise TrainingError(
                f"cannot {action} in {self.run.path}: {exc.strerror or exc}; {kept}"
            ) from None

    # --- set-up (on the training thread) ---------------------------------------------

    def _setup(self) -> None:
        if self._ready:
            return
        import torch

        from engine.device import select_device
        from engine.models import build_model

        config = self.config
        self.device = select_device(config.device)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise DeviceError(
                f"precision fp16 needs a cuda device, but training would run on {self.device}; "
                "use bf16 or fp32"
            )
        data = self._data if self._data is not None else load_data(config)
        if self._data is not None:
            data = data.subset(config.train_subset, config.test_subset, config.seed)
        self.data = data
        self.classes = data.classes
        self.train_data = DeviceData(
            data.train, self.device, num_classes=data.num_classes, normalize=config.normalize
        )
        self.test_data = DeviceData(
            data.test, self.device, num_classes=data.num_classes, normalize=config.normalize
        )
        torch.manual_seed(config.seed)
        self.model = build_model(config, data.image_shape, data.num_classes).to(self.device)
        self.optimizer = self._build_optimizer()
        self.loss_fn = self._build_loss()
        self.shuffle_generator = torch.Generator().manual_seed(config.seed + 1)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(config.seed + 2)
        self.augment = (
            Augment(flip=True, crop_padding=config.crop_padding) if config.augment else None
        )
        use_amp = config.precision != "fp32"
        self.autocast_dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
        self.use_autocast = use_amp and self.device.type in ("cuda", "cpu")
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.batches_per_epoch = self.train_data.num_batches(config.batch_size)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches completed in the current epoch
        self.step = 0
        self.best_accuracy = 0.0
        self.smoothed_loss = float("nan")
        self.partial = {
            "loss_sum": 0.0,
            "correct": 0,
            "seen": 0,
            "grad_norm_sum": 0.0,
            "grad_norms": 0,
        }
        self.epoch_start_shuffle_state = self.shuffle_generator.get_state()
        self._ready = True

    def _build_optimizer(self) -> torch.optim.Optimizer:
        import torch

        c = self.config
        params = self.model.parameters()
        if c.optimizer == "sgd":
            return torch.optim.SGD(
                params,
                lr=c.lr,
                momentum=c.momentum,
                nesterov=c.nesterov,
                weight_decay=c.weight_decay,
            )
        if c.optimizer == "adam":
            return torch.optim.Adam(
                params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay
            )
        if c.optimizer == "adamw":
            return torch.optim.AdamW(
                params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay
            )
        return torch.optim.RMSprop(
            params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )

    def _build_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        from torch import nn

        if self.config.loss == "nll":
            return nn.NLLLoss()
        if self.config.loss == "mse":
            return nn.MSELoss()
        return nn.CrossEntropyLoss(label_smoothing=self.config.label_smoothing)

    def _autocast(self) -> Any:
        import torch

        if not self.use_autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # --- checkpoints -----------------------------------------------------------------

    def _state(self, metrics_offset: int) -> dict[str, Any]:
        import torch

        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "shuffle": self.shuffle_generator.get_state(),
            "epoch_start_shuffle": self.epoch_start_shuffle_state,
            "augment": self.augment_generator.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "config": self.config.to_dict(),
            "classes": list(self.classes),
            "image_shape": list(self.data.image_shape),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rng,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "best_accuracy": self.best_accuracy,
            "smoothed_loss": self.smoothed_loss,
            "partial": dict(self.partial),
            "metrics_offset": metrics_offset,
        }

    def _checkpoint(self, reason: str, *, best: bool = False) -> None:
        if self.run is None:
            return
        with self._writing("save a checkpoint"):
            offset = self.run.sync_metrics()
            path = self.run.save_checkpoint(self._state(offset), best=best)
        self._saved = (self.epoch, self.batch)
        with self._writing("update status.json"):
            self.run.write_status(
                "running",
                epochs=self.config.epochs,
                epochs_completed=self.epoch,
                best_accuracy=self.best_accuracy if self.history else None,
            )
        self._emit(CheckpointSaved(str(path), self.epoch, self.batch, reason))

    def _restore(self, run: Run) -> None:
        import torch

        state = run.load_checkpoint("last")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            rng = state["rng"]
            torch.set_rng_state(rng["torch"])
            self.shuffle_generator.set_state(rng["shuffle"])
            self.epoch_start_shuffle_state = rng["epoch_start_shuffle"]
            self.augment_generator.set_state(rng["augment"])
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            self.epoch = int(state["epoch"])
            self.batch = int(state["batch"])
            self.step = int(state["step"])
            self.best_accuracy = float(state["best_accuracy"])
            self.smoothed_loss = float(state["smoothed_loss"])
            self.partial = dict(state["partial"])
            offset = int(state["metrics_offset"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise TrainingError(
                f"{run.last_path}: cannot resume from this checkpoint ({exc})"
            ) from None
        self._saved = (self.epoch, self.batch)
        if run.read_metrics().torn_line:
            self._notes.append(
                f"{run.metrics_path.name} ended in a partly written line (the process was "
                "killed while writing it); it was dropped with the events after the checkpoint"
            )
        run.remove_temp_files()
        run.truncate_metrics(offset)
        self.history = run.read_metrics().epochs

    # --- the loops -------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train to the configured number of epochs, or until stopped; returns a summary.

        Raises ``TrainingError`` (after a ``Failed`` event and a "failed" status on
        disk) if training cannot go on, and ``EngineError`` subclasses for bad input
        found before training starts.
        """
        import torch

        resumed = self._resume_from is not None
        self.run = self._resume_from or self._given_run
        if self.run is not None:
            self.run.acquire()
        try:
            if resumed and not self.run.has_checkpoint():
                raise CheckpointError(
                    f"run {self.run.id} cannot be resumed: it stopped before its first "
                    f"checkpoint was saved (no {self.run.last_path.name} in {self.run.path}); "
                    "start a new run instead"
                )
            self._setup()
            if resumed:
                self._restore(self.run)
                with self._writing("update status.json"):
                    self.run.write_status("running", epochs=self.config.epochs, reason="")
                if self._resume_epochs is not None:
                    from engine.runs import atomic_write

                    with self._writing("update config.json"):
                        atomic_write(self.run.config_path, self.config.to_json().encode())
        except EngineError as exc:
            if self.run is not None:
                # Missing data or device today says nothing about a run being resumed: it
                # keeps its state. A new run, or one whose checkpoint is unusable, failed.
                if not (resumed and isinstance(exc, (DataError, DeviceError))):
                    self._fail_quietly(str(exc))
                self.run.release()
            raise
        if self.run is None and self._record:
            self.run = Run.create(self.config)
            self.run.acquire()
        try:
            return self._fit(resumed)
        except TrainingError as exc:
            self._fail(str(exc))
            raise
        except torch.OutOfMemoryError:
            self._fail(
                f"out of memory on {self.device} with batch size {self.config.batch_size}; "
                "try a smaller batch size (or eval_batch_size), a smaller model, or bf16"
            )
            raise TrainingError(self._failure) from None
        except EngineError as exc:
            self._fail_quietly(str(exc))
            raise
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            raise TrainingError(self._failure) from exc
        finally:
            if self.run is not None:
                self.run.release()

    def _fail(self, reason: str) -> None:
        self._failure = reason
        failed = Failed(reason, getattr(self, "epoch", 0) + 1, getattr(self, "batch", 0))
        if self.run is not None:
            # The log may be what failed; listeners must still hear of it.
            with contextlib.suppress(OSError):
                self.run.append_event(failed)
        self._notify(failed)
        self._fail_quietly(reason)

    def _fail_quietly(self, reason: str) -> None:
        """Mark the run failed on disk, if the disk still lets us."""
        if self.run is not None:
            with contextlib.suppress(OSError):
                self.run.write_status(
                    "failed", reason=reason, epochs_completed=getattr(self, "epoch", 0)
                )

    def _fit(self, resumed: bool) -> FitResult:
        import torch

        from engine.device import describe_device

        config = self.config
        run_id = self.run.id if self.run else ""
        self._emit(
            RunStarted(
                run_id=run_id,
                run_dir=str(self.run.path) if self.run else "",
                config=config.to_dict(),
                device=describe_device(self.device),
                data_source=self.data.source.describe(),
                train_size=len(self.train_data),
                test_size=len(self.test_data),
                classes=list(self.classes),
                start_epoch=self.epoch + 1,
                batches_per_epoch=self.batches_per_epoch,
                parameters=sum(p.numel() for p in self.model.parameters()),
                resumed=resumed,
                notes=[*self.data.notes, *self._notes],
            )
        )
        if not resumed:
            self._checkpoint("start")
        total_steps = config.epochs * self.batches_per_epoch
        started = time.perf_counter()
        seconds_per_batch = float("nan")
        last_poll, seen_nonce = 0.0, self._current_nonce()
        while self.epoch < config.epochs:
            epoch_number = self.epoch + 1
            # Drawn from the state saved for this epoch's start, so a run resumed at any
            # batch redraws the same order and continues after the saved batch.
            self.shuffle_generator.set_state(self.epoch_start_shuffle_state)
            order = self.train_data.permutation(self.shuffle_generator)
            self.model.train()
            epoch_start = time.perf_counter()
            epoch_start_batch = self.batch
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), dtype=torch.long, device=self.device)
            grad_norm_sum = torch.zeros((), device=self.device)
            window_loss = torch.zeros((), device=self.device)
            window_batches, window_samples = 0, 0
            window_start = time.perf_counter()
            seen = 0
            batches = self.train_data.batches(
                config.batch_size,
                order=order,
                start=self.batch,
                augment=self.augment,
                generator=self.augment_generator,
            )
            while True:
                # Checked before the next batch is drawn: drawing one advances the
                # augmentation RNG, which the checkpoint must not include.
                now = time.monotonic()
                if now - last_poll > CONTROL_POLL_SECONDS:
                    last_poll = now
                    seen_nonce = self._poll_control(seen_nonce)
                if not self._running.is_set():
                    self._wait_while_paused()
                if self._stop.is_set():
                    self._absorb(loss_sum, correct, grad_norm_sum, seen)
                    return self._stopped(started)
                batch = next(batches, None)
                if batch is None:
                    break
                x, y = batch
                lr = learning_rate(config, self.step, total_steps, self.batches_per_epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                log_now = (self.batch + 1) % config.log_every == 0 or (
                    self.batch + 1 == self.batches_per_epoch
                )
                loss, outputs = self._train_step(
                    x, y, measure_grad=log_now, grad_norm_sum=grad_norm_sum
                )
                loss_sum += loss
                window_loss += loss
                correct += (outputs.argmax(1) == y).sum()
                n = y.shape[0]
                seen += n
                window_samples += n
                window_batches += 1
                self.batch += 1
                self.step += 1
                if log_now:
                    mean_loss = window_loss.item() / window_batches  # the periodic host sync
                    if not math.isfinite(mean_loss):
                        raise TrainingError(
                            f"the loss became {mean_loss} at epoch {epoch_number}, batch "
                            f"{self.batch}; lower the learning rate (now {config.lr:g}) "
                            "or enable grad_clip"
                        )
                    elapsed_window = time.perf_counter() - window_start
                    rate = window_samples / elapsed_window if elapsed_window > 0 else 0.0
                    per_batch = elapsed_window / window_batches
                    seconds_per_batch = (
                        per_batch
                        if math.isnan(seconds_per_batch)
                        else 0.7 * seconds_per_batch + 0.3 * per_batch
                    )
                    self.smoothed_loss = (
                        mean_loss
                        if math.isnan(self.smoothed_loss)
                        else 0.9 * self.smoothed_loss + 0.1 * mean_loss
                    )
                    remaining = total_steps - self.step
                    self._emit(
                        BatchEnd(
                            epoch=epoch_number,
                            batch=self.batch,
                            batches=self.batches_per_epoch,
                            step=self.step,
                            loss=mean_loss,
                            smoothed_loss=self.smoothed_loss,
                            samples_per_second=rate,
                            lr=lr,
                            elapsed=time.perf_counter() - started,
                            eta=remaining * seconds_per_batch,
                        )
                    )
                    window_loss.zero_()
                    window_batches, window_samples = 0, 0
                    window_start = time.perf_counter()
            self._absorb(loss_sum, correct, grad_norm_sum, seen)
            epoch_seconds = time.perf_counter() - epoch_start
            self._end_epoch(epoch_number, lr, epoch_seconds, self.batch - epoch_start_batch)
        return self._finished(started)

    def _train_step(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        measure_grad: bool,
        grad_norm_sum: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        config = self.config
        target = (
            torch.nn.functional.one_hot(labels, self.data.num_classes).float()
            if config.loss == "mse"
            else labels
        )
        with self._autocast():
            outputs = self.model(x)
            loss = self.loss_fn(outputs.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if config.grad_clip > 0 or measure_grad:
                self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if config.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            if measure_grad:
                grad_norm_sum += norm
                self.partial["grad_norms"] += 1
        elif measure_grad:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float("inf"))
            grad_norm_sum += norm
            self.partial["grad_norms"] += 1
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss.detach(), outputs.detach()

    def _absorb(
        self, loss_sum: torch.Tensor, correct: torch.Tensor, grad_norm_sum: torch.Tensor, seen: int
    ) -> None:
        """Fold this stretch of the epoch into the running totals (one host sync)."""
        self.partial["loss_sum"] += float(loss_sum.item())
        self.partial["correct"] += int(correct.item())
        self.partial["grad_norm_sum"] += float(grad_norm_sum.item())
        self.partial["seen"] += seen

    def _end_epoch(self, epoch_number: int, lr: float, epoch_seconds: float, batches: int) -> None:
        from engine.device import memory_in_use

        evaluation = self.evaluate()
        p = self.partial
        train_loss = p["loss_sum"] / max(self.batches_per_epoch, 1)
        train_accuracy = p["correct"] / max(p["seen"], 1)
        grad_norm = p["grad_norm_sum"] / max(p["grad_norms"], 1)
        is_best = evaluation.accuracy > self.best_accuracy or not self.history
        if is_best:
            self.best_accuracy = evaluation.accuracy
        samples = batches * self.config.batch_size
        self.epoch = epoch_number
        self.batch = 0
        self.epoch_start_shuffle_state = self.shuffle_generator.get_state()
        self.partial = {
            "loss_sum": 0.0,
            "correct": 0,
            "seen": 0,
            "grad_norm_sum": 0.0,
            "grad_norms": 0,
        }
        event = EpochEnd(
            epoch=epoch_number,
            epochs=self.config.epochs,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            test_loss=evaluation.loss,
            test_accuracy=evaluation.accuracy,
            per_class_accuracy=evaluation.per_class_accuracy,
            confusion_matrix=evaluation.confusion_matrix,
            lr=lr,
            grad_norm=grad_norm,
            samples_per_second=min(samples, len(self.train_data)) / max(epoch_seconds, 1e-9),
            epoch_seconds=epoch_seconds,
            memory_bytes=memory_in_use(self.device),
            best_accuracy=self.best_accuracy,
            is_best=is_best,
        )
        self.history.append(event)
        self._emit(event)
        self._checkpoint("best" if is_best else "epoch", best=is_best)

    def _stopped(self, started: float) -> FitResult:
        self._checkpoint(self._stop_reason)
        if self.run is not None:
            with self._writing("update status.json"):
                self.run.write_status("interrupted", reason=self._stop_reason)
        final = self.history[-1].test_accuracy if self.history else 0.0
        self._emit(
            Finished(
                "stopped", self.epoch, self.best_accuracy, final, time.perf_counter() - started
            )
        )
        return self._result("stopped")

    def _finished(self, started: float) -> FitResult:
        final = self.history[-1].test_accuracy if self.history else 0.0
        if self.run is not None:
            with self._writing("update status.json"):
                self.run.write_status(
                    "finished",
                    epochs_completed=self.epoch,
                    best_accuracy=self.best_accuracy,
                    final_accuracy=final,
                )
        self._emit(
            Finished(
                "finished", self.epoch, self.best_accuracy, final, time.perf_counter() - started
            )
        )
        return self._result("finished")

    def _result(self, status: str) -> FitResult:
        final = self.history[-1].test_accuracy if self.history else 0.0
        return FitResult(
            self.run.path if self.run else None,
            status,
            self.epoch,
            self.best_accuracy,
            final,
            list(self.history),
        )

    def _wait_while_paused(self) -> None:
        self._emit(StateChanged("paused"))
        if self.run is not None:
            with self._writing("update status.json"):
                self.run.write_status("running", paused=True)
        seen_nonce = self._current_nonce()
        while not self._running.wait(CONTROL_POLL_SECONDS):
            seen_nonce = self._poll_control(seen_nonce)
        if self.run is not None:
            with self._writing("update status.json"):
                self.run.write_status("running", paused=False)
        if not self._stop.is_set():
            self._emit(StateChanged("running"))

    def _current_nonce(self) -> str | None:
        if self.run is None:
            return None
        request = self.run.read_request()
        return request[1] if request else None

    def _poll_control(self, seen_nonce: str | None) -> str | None:
        """Act on a command another process wrote to the run folder since we last looked."""
        if self.run is None:
            return seen_nonce
        request = self.run.read_request()
        if request is None or request[1] == seen_nonce:
            return seen_nonce
        command = request[0]
        if command == "pause":
            self.pause()
        elif command == "resume":
            self.resume_training()
        elif command == "stop":
            self.stop("stop")
        return request[1]

    # --- evaluation and prediction ---------------------------------------------------

    def evaluate(self) -> Evaluation:
        """Loss, accuracy, per-class accuracy and confusion matrix on the test split."""
        import torch

        self._setup()
        config = self.config
        c = self.data.num_classes
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        confusion = torch.zeros(c * c, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            for x, labels in self.test_data.batches(config.eval_batch_size):
                with self._autocast():
                    outputs = self.model(x)
                target = (
                    torch.nn.functional.one_hot(labels, c).float()
                    if config.loss == "mse"
                    else labels
                )
                loss_sum += self.loss_fn(outputs.float(), target) * labels.shape[0]
                predicted = outputs.argmax(1)
                confusion += torch.bincount(labels * c + predicted, minlength=c * c)
        self.model.train()
        matrix = confusion.view(c, c).cpu()
        total = int(matrix.sum())
        correct = int(matrix.diagonal().sum())
        per_class_total = matrix.sum(1).clamp(min=1)
        per_class = (matrix.diagonal().double() / per_class_total.double()).tolist()
        return Evaluation(
            loss=float(loss_sum.item()) / max(total, 1),
            accuracy=correct / max(total, 1),
            per_class_accuracy=[float(v) for v in per_class],
            confusion_matrix=matrix.tolist(),
        )

    def predict(self, images: np.ndarray | torch.Tensor) -> Prediction:
        """Softmax probabilities and argmax classes for uint8 images, with this model."""
        self._setup()
        predictor = Predictor(self.model, self.config, self.classes, self.device)
        try:
            return predictor.predict(images)
        finally:
            self.model.train()
