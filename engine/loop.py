"""The train and test loops, as functions a reader can hold in their head.

``prepare`` builds what a run trains with (``Parts``: device data, model, optimiser,
loss, random generators); ``train_epoch`` runs the rest of one epoch from the batch a
``TrainState`` says, ``close_epoch`` evaluates it (on the validation split, which
chooses the best epoch when there is one, and on the test split), and ``evaluate``
measures a split. They report through ``emit`` (typed events) and obey a ``RunControl`` at every
batch boundary. In the style of pytorch/examples' ``train()``/``test()`` and nanoGPT:
the loss is read on the host only every ``log_every`` batches (the one host-device
sync), never per batch.

All torch work happens on the thread that calls these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import optim
from engine.classification import ClassScores, class_scores
from engine.config import TrainConfig
from engine.control import RunControl
from engine.data import Augment, DeviceData, ImageData
from engine.errors import CheckpointError, DivergedError
from engine.events import BatchEnd, EpochEnd, Event, RunStarted, StateChanged
from engine.fields import clip
from engine.state import EpochMeters, RunState, TrainState, ranked

if TYPE_CHECKING:
    import torch

    from engine.distributed import SharedControl, World
    from engine.runs import Run

# On CUDA, ``FMNIST_SYNC_CHECK=1`` trains under ``torch.cuda.set_sync_debug_mode("error")``
# outside logging steps and epoch ends: a host sync in the hot loop then fails the run.
SYNC_CHECK_VARIABLE = "FMNIST_SYNC_CHECK"
# ``FMNIST_DETERMINISTIC=1``: ``torch.use_deterministic_algorithms(True)`` for the run (on
# CUDA with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``), for bitwise checks of exact resume.
DETERMINISTIC_VARIABLE = "FMNIST_DETERMINISTIC"
# A data-parallel run's ranks agree on pause and stop at every logging step, and at
# least every this many batches.
CONTROL_EVERY = 32
# Seed offsets of the per-rank random streams (dropout, augmentation) of rank r > 0.
RANK_SEED_STRIDE = 1_000_003

Emit = Callable[[Event], None]


class Stopwatch:
    """Seconds of training: counts from ``offset`` while running, not while paused."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._since: float | None = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds counted so far (``offset`` included), read from ``time.perf_counter``."""
        running = time.perf_counter() - self._since if self._since is not None else 0.0
        return self._offset + running

    def pause(self) -> None:
        """Stop counting (a no-op while paused)."""
        if self._since is not None:
            self._offset, self._since = self.seconds, None

    def resume(self) -> None:
        """Count again from now (a no-op while running)."""
        if self._since is None:
            self._since = time.perf_counter()


@dataclass(frozen=True)
class Evaluation:
    """One split's figures (the test split's unless said): mean loss, accuracy (0..1),
    per-class accuracy (C floats) and the ``C x C`` confusion matrix (rows: true class,
    columns: predicted class)."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float | None]  # None: no images of that class in the split
    confusion_matrix: list[list[int]]

    @property
    def scores(self) -> ClassScores:
        """Per-class and macro precision, recall and F1 of ``confusion_matrix``
        (``engine.classification.class_scores``: its rules for empty classes)."""
        return class_scores(self.confusion_matrix)


@dataclass
class Parts:
    """What one run trains with, built by ``prepare`` on the training thread: the data on
    ``device`` (uint8 images, int64 labels; ``val_data`` None without a validation
    split), the model, optimiser, loss and random generators (``shuffle_generator`` on
    the CPU, ``augment_generator`` on ``device``)."""

    config: TrainConfig
    device: torch.device
    data: ImageData
    train_data: DeviceData
    test_data: DeviceData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: optim.LossFunction
    scaler: torch.amp.GradScaler | None  # fp16 only
    augment: Augment | None
    shuffle_generator: torch.Generator
    augment_generator: torch.Generator
    batches_per_epoch: int
    val_data: DeviceData | None = None
    precision_reason: str = ""  # why auto chose the precision; "" when not auto
    # The plateau schedule's torch ReduceLROnPlateau (None for the other schedules).
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
    # A data-parallel run's place (None: one process) and the DistributedDataParallel
    # wrapper the training steps call (``model`` is the module it wraps).
    world: World | None = None
    ddp_model: torch.nn.Module | None = None
    sync_check: bool = False  # FMNIST_SYNC_CHECK on CUDA

    @property
    def world_size(self) -> int:
        """Processes training the run together (1 without torch.distributed)."""
        return self.world.world_size if self.world is not None else 1

    @property
    def global_batch(self) -> int:
        """Images per optimiser step over every rank: ``batch_size * world_size``."""
        return self.config.batch_size * self.world_size

    @property
    def train_model(self) -> torch.nn.Module:
        """The module the training steps call: the DDP wrapper, or the model itself."""
        return self.ddp_model if self.ddp_model is not None else self.model

    @property
    def total_steps(self) -> int:
        """Optimiser steps in the whole run: epochs times batches per epoch."""
        return self.config.epochs * self.batches_per_epoch

    def learning_rate(self, step: int) -> float:
        """The rate for optimiser step ``step`` (0-based): ``optim.learning_rate`` over
        this run's steps, with the rate the plateau schedule has reached."""
        reached = float(self.plateau.get_last_lr()[0]) if self.plateau is not None else None
        return optim.learning_rate(
            self.config, step, self.total_steps, self.batches_per_epoch, plateau_lr=reached
        )

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The mixed-precision context the config asks for: bf16 or fp16 autocast on CUDA
        and CPU, a no-op in fp32 (and on other devices)."""
        from engine.device import autocast

        return autocast(self.device, self.config.precision)

    def capture_rng(self, state: TrainState) -> None:
        """Store every random stream's state in ``state.rng`` (before a checkpoint)."""
        state.rng.update(self.local_rng())
        state.rng["shuffle"] = self.shuffle_generator.get_state()

    def local_rng(self) -> dict[str, torch.Tensor]:
        """This process's own random streams (uint8 CPU tensors): ``torch`` (dropout),
        ``augment`` and, on CUDA, ``cuda``; each rank of a data-parallel run has its own.
        (The shuffle is one stream, the same on every rank.)"""
        import torch

        streams = {
            "torch": torch.get_rng_state(),
            "augment": self.augment_generator.get_state().cpu(),
        }
        if self.device.type == "cuda":
            streams["cuda"] = torch.cuda.get_rng_state(self.device)
        return streams

    def set_local_rng(self, streams: dict[str, Any]) -> None:
        """Set the streams ``local_rng`` returned (a checkpoint's, for this rank)."""
        import torch

        torch.set_rng_state(streams["torch"])
        self.augment_generator.set_state(streams["augment"])
        if self.device.type == "cuda" and "cuda" in streams:
            torch.cuda.set_rng_state(streams["cuda"], self.device)

    def checkpoint_payload(self) -> dict[str, Any]:
        """The checkpoint keys the parts own: config, class names, image shape
        (``[H, W]`` pixels), and the model's, optimiser's and scaler's ``state_dict``, and
        the plateau schedule's (``plateau``: plain numbers; only with that schedule), and
        a data-parallel run's ``world_size`` and ``global_batch``."""
        payload: dict[str, Any] = {
            "config": self.config.to_dict(),
            "classes": list(self.data.classes),
            "image_shape": list(self.data.image_shape),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
        }
        if self.plateau is not None:
            payload["plateau"] = self.plateau.state_dict()
        if self.world is not None:  # a single-process run's checkpoint has neither
            payload["world_size"] = self.world.world_size
            payload["global_batch"] = self.global_batch
        return payload

    def load(self, checkpoint: dict[str, Any], state: TrainState, where: str) -> None:
        """Set the model, optimiser, scaler and every random stream from a checkpoint.

        Raises ``CheckpointError`` naming ``where`` when they do not fit (another
        architecture, a damaged state), with the first line of torch's reason.
        """

        from engine.models import weights_mismatch

        mismatch = weights_mismatch(self.model, checkpoint.get("model"))
        if mismatch:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint: {mismatch}")
        recorded = checkpoint.get("world_size", 1)
        if recorded != self.world_size:
            raise CheckpointError(
                f"{where}: cannot resume with {_processes(self.world_size)}: the run was "
                f"trained by {_processes(recorded)} (global batch "
                f"{checkpoint.get('global_batch', self.config.batch_size)}), and goes on "
                f"exactly only with as many; resume it with --nproc-per-node {recorded}"
            )
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scaler is not None and checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            if self.plateau is not None and isinstance(checkpoint.get("plateau"), dict):
                self.plateau.load_state_dict(checkpoint["plateau"])
            rng = state.rng
            self.shuffle_generator.set_state(rng["shuffle"])
            if self.world is not None:
                self.set_local_rng(checkpoint["rank_rng"][self.world.rank])
            else:
                self.set_local_rng(rng)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(
                f"{where}: cannot resume from this checkpoint ({clip(first)})"
            ) from None


def _processes(count: object) -> str:
    return "1 process" if count == 1 else f"{count} processes"


def prepare(
    config: TrainConfig,
    data: ImageData,
    *,
    model_factory: str | None = None,
    world: World | None = None,
) -> tuple[Parts, TrainState]:
    """Put ``data`` on the config's device and build the model, optimiser and loss.

    With ``world`` (a data-parallel run, ``engine.distributed``) the data goes on the
    rank's device, whole; the model is wrapped in ``DistributedDataParallel``, and each
    epoch has ``len(train) // global_batch`` batches (the last partial global batch is
    dropped). Dropout and augmentation draw from streams of each rank's own.

    ``precision = "auto"`` is resolved here, once (``engine.device.resolve_precision``):
    ``parts.config`` holds the result and ``parts.precision_reason`` why. Returns the
    parts and the state of a run at its start. Raises ``DeviceError`` for an absent
    device or a precision it cannot train in (fp16 off CUDA), and ``ModelError`` for a
    model from the user's code that ``model_factory`` does not name or that cannot be
    built (``engine.models.build_model``).
    """
    import torch

    from engine.device import precision_problem, resolve_precision, training_device
    from engine.errors import DeviceError
    from engine.models import build_model

    if world is not None:
        device = world.device
        problem = precision_problem(config.precision, device)
        if problem:
            raise DeviceError(problem)
    else:
        device = training_device(config.device, config.precision)
    if os.environ.get(DETERMINISTIC_VARIABLE) == "1":
        torch.use_deterministic_algorithms(True)
    precision, precision_reason = resolve_precision(config.precision, device)
    if precision != config.precision:  # auto, resolved once: the run records the result
        config = dataclasses.replace(config, precision=precision)
    classes = data.num_classes
    train_data = DeviceData(data.train, device, num_classes=classes, normalize=config.normalize)
    test_data = DeviceData(data.test, device, num_classes=classes, normalize=config.normalize)
    val_data = (
        DeviceData(data.val, device, num_classes=classes, normalize=config.normalize)
        if data.val is not None
        else None
    )
    # Without augmentation a batch is a gather from the float input held on the device
    # (as a bare loop's); evaluation always is.
    for split in (train_data, test_data, val_data):
        if split is not None and (split is not train_data or not config.augment):
            split.hold_inputs()
    torch.manual_seed(config.seed)
    model = build_model(config, data.image_shape, classes, model_factory=model_factory).to(device)
    rank = world.rank if world is not None else 0
    if rank:  # the same weights on every rank; dropout streams of its own
        torch.manual_seed(config.seed + RANK_SEED_STRIDE * rank)
    optimizer = optim.build_optimizer(config, model.parameters())
    ddp_model = None
    if world is not None:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        ddp_model = DistributedDataParallel(model, device_ids=ids)
    global_batch = config.batch_size * (world.world_size if world is not None else 1)
    batches = (
        len(train_data) // global_batch
        if world is not None
        else train_data.num_batches(config.batch_size)
    )
    if batches < 1:
        raise DeviceError(
            f"{len(train_data)} training images make no global batch of {global_batch} "
            f"({world.world_size if world else 1} processes x batch {config.batch_size}); "
            "use fewer processes or a smaller batch size"
        )
    parts = Parts(
        config=config,
        device=device,
        data=data,
        train_data=train_data,
        test_data=test_data,
        model=model,
        optimizer=optimizer,
        loss_fn=optim.build_loss(config),
        scaler=torch.amp.GradScaler("cuda") if config.precision == "fp16" else None,
        augment=Augment(flip=True, crop_padding=config.crop_padding) if config.augment else None,
        shuffle_generator=torch.Generator().manual_seed(config.seed + 1),
        augment_generator=torch.Generator(device=device).manual_seed(
            config.seed + 2 + RANK_SEED_STRIDE * rank
        ),
        batches_per_epoch=batches,
        val_data=val_data,
        precision_reason=precision_reason,
        plateau=optim.plateau_scheduler(config, optimizer),
        world=world,
        ddp_model=ddp_model,
        sync_check=device.type == "cuda" and os.environ.get(SYNC_CHECK_VARIABLE) == "1",
    )
    state = TrainState()
    state.rng["epoch_start_shuffle"] = parts.shuffle_generator.get_state()
    return parts, state


def run_started(
    parts: Parts, state: TrainState, run: Run | None, *, resumed: bool, notes: list[str]
) -> RunStarted:
    """The event that opens a session of ``run`` (None: not recorded) at ``state``:
    config, device and environment, data sizes, parameter count, where it starts, and
    ``notes`` for the user after the data's own."""
    from engine.device import describe_device
    from engine.environment import describe_environment

    precision_note = (
        [f"precision auto: {parts.config.precision}, as {parts.precision_reason}"]
        if parts.precision_reason
        else []
    )
    return RunStarted(
        run_id=run.id if run else "",
        run_dir=str(run.path) if run else "",
        config=parts.config.to_dict(),
        device=describe_device(parts.device),
        data_source=parts.data.source.describe(),
        train_size=len(parts.train_data),
        test_size=len(parts.test_data),
        classes=list(parts.data.classes),
        start_epoch=state.epoch + 1,
        batches_per_epoch=parts.batches_per_epoch,
        parameters=sum(p.numel() for p in parts.model.parameters()),
        resumed=resumed,
        notes=[*parts.data.notes, *precision_note, *notes],
        elapsed=state.elapsed,
        environment=describe_environment(parts.device),
        time=time.time(),
        val_size=len(parts.val_data) if parts.val_data is not None else 0,
    )


def train_step(
    parts: Parts,
    x: torch.Tensor,
    labels: torch.Tensor,
    meters: EpochMeters,
    grad_norm_sum: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch (``x``: ``N x 1 x H x W`` float, ``labels``: ``N`` int64).

    Returns the detached loss (a 0-d tensor) and outputs (``N x C``). When
    ``grad_norm_sum`` is given, the gradient's norm is added to it (no host sync).
    """
    import torch

    config = parts.config
    target = optim.targets(config, labels, parts.data.num_classes)
    with parts.autocast():
        outputs = parts.train_model(x)
        loss = parts.loss_fn(outputs.float(), target)
    parts.optimizer.zero_grad(set_to_none=True)
    scaler = parts.scaler
    # torch leaves Tensor.backward unannotated, hence the two ignores.
    if scaler is not None:
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if config.grad_clip > 0 or grad_norm_sum is not None:
            scaler.unscale_(parts.optimizer)
    else:
        loss.backward()  # type: ignore[no-untyped-call]
    if config.grad_clip > 0 or grad_norm_sum is not None:
        limit = config.grad_clip if config.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(parts.model.parameters(), limit)
        if grad_norm_sum is not None:
            grad_norm_sum += norm
            meters.grad_norms += 1
    if scaler is not None:
        scaler.step(parts.optimizer)
        scaler.update()
    else:
        parts.optimizer.step()
    return loss.detach(), outputs.detach()


def train_epoch(
    parts: Parts,
    state: TrainState,
    *,
    emit: Emit,
    control: RunControl | SharedControl,
    clock: Stopwatch,
) -> bool:
    """Train epoch ``state.epoch + 1`` from batch ``state.batch`` to its end.

    Returns True when every batch is done (``close_epoch`` comes next), False when
    ``control`` asked to stop: ``state`` then says exactly where, ready to checkpoint.
    ``control`` is obeyed at every batch boundary; in a data-parallel run (a
    ``SharedControl``) at every ``min(log_every, CONTROL_EVERY)`` batches, the same
    boundaries on every rank. Raises ``DivergedError`` (a ``TrainingError``) if the loss
    stops being finite.
    """
    import torch

    config, device = parts.config, parts.device
    epoch_number = state.epoch + 1
    # Drawn from the state saved for this epoch's start, so a run resumed at any batch
    # redraws the same order and continues after the saved batch.
    parts.shuffle_generator.set_state(state.rng["epoch_start_shuffle"])
    order = parts.train_data.permutation(parts.shuffle_generator)
    world = parts.world
    if world is not None:  # this rank's share of each global batch
        from engine.distributed import rank_order

        order = rank_order(
            order, world_size=world.world_size, rank=world.rank, batch_size=config.batch_size
        )
    parts.model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    grad_norm_sum = torch.zeros((), device=device)
    window_loss = torch.zeros((), device=device)
    window_batches = window_samples = seen = 0
    window_start = clock.seconds
    batches = parts.train_data.batches(
        config.batch_size,
        order=order,
        start=state.batch,
        augment=parts.augment,
        generator=parts.augment_generator,
    )

    current_lr = float("nan")

    def absorb() -> None:
        """Fold this stretch of the epoch into the state's meters (one host sync; on
        every rank of a data-parallel run, the sums over all ranks)."""
        sync_mode("default")
        if world is not None:
            totals = torch.stack(
                [window_loss.double(), correct.double(), torch.tensor(seen, device=device).double()]
            )
            world.sum_(totals)
            tail, right, count = totals.tolist()
            state.meters.loss_sum += float(loss_sum.item()) + tail / world.world_size
            state.meters.correct += round(right)
            state.meters.seen += round(count)
        else:
            state.meters.loss_sum += float((loss_sum + window_loss).item())
            state.meters.correct += int(correct.item())
            state.meters.seen += seen
        state.meters.grad_norm_sum += float(grad_norm_sum.item())

    def sync_mode(mode: str) -> None:
        if parts.sync_check:
            torch.cuda.set_sync_debug_mode(mode)

    sync_mode("error")

    # Ranks agree on pause and stop every few batches, not every batch: one gloo
    # broadcast costs about 0.2 ms (TECH-NOTES), a batch on a GPU well under 1 ms.
    control_every = min(config.log_every, CONTROL_EVERY) if world is not None else 1
    while True:
        # Checked before the next batch is drawn: drawing one advances the
        # augmentation RNG, which the checkpoint must not include.
        if state.batch % control_every == 0:
            control.poll()
            if control.paused:
                clock.pause()
                emit(StateChanged(RunState.PAUSED.value, time=time.time()))
                control.wait_while_paused()
                clock.resume()
                if not control.stopping:
                    emit(StateChanged(RunState.RUNNING.value, time=time.time()))
            if control.stopping:
                absorb()
                return False
        batch = next(batches, None)
        if batch is None:
            absorb()
            return True
        x, y = batch
        lr = parts.learning_rate(state.step)
        if lr != current_lr:  # a schedule of none sets it once
            optim.set_learning_rate(parts.optimizer, lr)
            current_lr = lr
        log_now = (state.batch + 1) % config.log_every == 0 or (
            state.batch + 1 == parts.batches_per_epoch
        )
        loss, outputs = train_step(parts, x, y, state.meters, grad_norm_sum if log_now else None)
        window_loss += loss
        correct += (outputs.argmax(1) == y).sum()
        seen += y.shape[0]
        window_samples += y.shape[0]
        window_batches += 1
        state.batch += 1
        state.step += 1
        if not log_now:
            continue
        sync_mode("default")
        if world is not None:  # the mean over every rank's share of the window
            world.sum_(window_loss).div_(world.world_size)
        loss_sum += window_loss
        mean_loss = window_loss.item() / window_batches  # the periodic host sync
        if not math.isfinite(mean_loss):
            raise DivergedError(
                f"the loss became {mean_loss} at epoch {epoch_number}, batch {state.batch}; "
                f"lower the learning rate (now {config.lr:g}) or enable grad_clip"
            )
        now = clock.seconds
        window_seconds = max(now - window_start, 1e-9)
        state.smoothed_loss = (
            mean_loss
            if math.isnan(state.smoothed_loss)
            else 0.9 * state.smoothed_loss + 0.1 * mean_loss
        )
        emit(
            BatchEnd(
                epoch=epoch_number,
                batch=state.batch,
                batches=parts.batches_per_epoch,
                step=state.step,
                loss=mean_loss,
                smoothed_loss=state.smoothed_loss,
                samples_per_second=window_samples * parts.world_size / window_seconds,
                lr=lr,
                elapsed=now,
                eta=(parts.total_steps - state.step) * window_seconds / window_batches,
                time=time.time(),
            )
        )
        window_loss.zero_()
        window_batches = window_samples = 0
        window_start = now
        sync_mode("error")


def close_epoch(parts: Parts, state: TrainState, *, epoch_seconds: float, batches: int) -> EpochEnd:
    """Evaluate the epoch whose batches are done, and move ``state`` to the next one.

    ``epoch_seconds`` and ``batches`` are this session's share of the epoch (a resumed
    epoch counts only what it trained), for the samples/s figure. The best epoch is
    chosen on the validation split when there is one, never on the test split then.

    The same split's figures (the test split's without a validation split) rank the
    epoch among the best ``save_top_k`` (``state.top_k``), step the plateau schedule
    (its loss) and feed early stopping (``state.early_stopping``: once it fires, its
    ``reason`` says why, and the trainer ends the run).
    """
    from engine.device import memory_in_use

    evaluation = evaluate(parts)
    validation = evaluate(parts, parts.val_data) if parts.val_data is not None else None
    config, meters = parts.config, state.meters
    chosen_on = evaluation if validation is None else validation
    is_best = chosen_on.accuracy > state.best_accuracy or state.epoch == 0
    if is_best:
        state.best_accuracy = chosen_on.accuracy
        state.best_test_accuracy = evaluation.accuracy
    last_step = max(state.step - 1, 0)
    scores = evaluation.scores
    event = EpochEnd(
        epoch=state.epoch + 1,
        epochs=config.epochs,
        train_loss=meters.loss_sum / max(parts.batches_per_epoch, 1),
        train_accuracy=meters.correct / max(meters.seen, 1),
        test_loss=evaluation.loss,
        test_accuracy=evaluation.accuracy,
        per_class_accuracy=evaluation.per_class_accuracy,
        confusion_matrix=evaluation.confusion_matrix,
        lr=parts.learning_rate(last_step),
        grad_norm=meters.grad_norm_sum / max(meters.grad_norms, 1),
        samples_per_second=min(batches * parts.global_batch, len(parts.train_data))
        / max(epoch_seconds, 1e-9),
        epoch_seconds=epoch_seconds,
        memory_bytes=memory_in_use(parts.device),
        best_accuracy=state.best_accuracy,
        is_best=is_best,
        val_loss=validation.loss if validation is not None else None,
        val_accuracy=validation.accuracy if validation is not None else None,
        best_test_accuracy=state.best_test_accuracy,
        per_class_precision=scores.precision,
        per_class_recall=scores.recall,
        per_class_f1=scores.f1,
        macro_precision=scores.macro_precision,
        macro_recall=scores.macro_recall,
        macro_f1=scores.macro_f1,
        time=time.time(),
    )
    epoch = state.epoch + 1
    state.top_k = ranked(state.top_k, epoch, chosen_on.accuracy, config.save_top_k)
    if parts.plateau is not None:  # after the event: it shows the rate the epoch used
        parts.plateau.step(chosen_on.loss)
    if config.early_stopping != "none" and not state.early_stopping.reason:
        watched = config.early_stopping
        value = chosen_on.accuracy if watched == "val_accuracy" else chosen_on.loss
        name = watched
        if validation is None:
            name = watched.replace("val_", "test_", 1) + " (no validation split)"
        state.early_stopping.update(
            watched,
            value,
            epoch,
            min_delta=config.min_delta,
            patience=config.patience,
            name=name,
            last=epoch >= config.epochs,  # the run ends there anyway: it simply finished
        )
    state.epoch += 1
    state.batch = 0
    state.meters = EpochMeters()
    state.rng["epoch_start_shuffle"] = parts.shuffle_generator.get_state()
    return event


def evaluate(parts: Parts, split: DeviceData | None = None) -> Evaluation:
    """Loss, accuracy, per-class accuracy and confusion matrix on ``split`` (default: the
    test split), in batches of ``eval_batch_size`` without gradients, with flip-TTA when
    the config asks (``engine.models.predict_logits``); leaves the model in train mode."""
    import torch

    from engine.models import predict_logits

    config = parts.config
    c = parts.data.num_classes
    parts.model.eval()
    loss_sum = torch.zeros((), device=parts.device)
    confusion = torch.zeros(c * c, dtype=torch.long, device=parts.device)
    with torch.inference_mode():
        for x, labels in (parts.test_data if split is None else split).batches(
            config.eval_batch_size
        ):
            with parts.autocast():
                outputs = predict_logits(parts.model, x, tta=config.tta)
            target = optim.targets(config, labels, c)
            loss_sum += parts.loss_fn(outputs.float(), target) * labels.shape[0]
            confusion += torch.bincount(labels * c + outputs.argmax(1), minlength=c * c)
    parts.model.train()
    matrix = confusion.view(c, c).cpu()
    total = int(matrix.sum())
    correct = int(matrix.diagonal().sum())
    per_class = matrix.diagonal().double() / matrix.sum(1).clamp(min=1).double()
    return Evaluation(
        loss=float(loss_sum.item()) / max(total, 1),
        accuracy=correct / max(total, 1),
        # A class with no images in the split has no accuracy (n/a), not 0%.
        per_class_accuracy=[
            float(v) if n else None
            for v, n in zip(per_class.tolist(), matrix.sum(1).tolist(), strict=True)
        ],
        confusion_matrix=matrix.tolist(),
    )
