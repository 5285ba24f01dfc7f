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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import own_model
from engine.config import MODELS, TrainConfig
from engine.control import CONTROL_POLL_SECONDS, RunControl
from engine.data import ImageData, load_fashion_mnist
from engine.errors import (
    CheckpointError,
    ConfigError,
    DataChangedError,
    DataError,
    EngineError,
    TrainingError,
)
from engine.events import EpochEnd, Event, Failed, Finished
from engine.identity import SPLIT_VERSION, VALIDATION_BY_PIXELS
from engine.loop import (
    Emit,
    Evaluation,
    Parts,
    Stopwatch,
    close_epoch,
    evaluate,
    prepare,
    run_started,
    train_epoch,
)
from engine.optim import learning_rate
from engine.recorder import RunRecorder, config_differences
from engine.runs import Run
from engine.state import RunState, TrainState
from engine.tensorboard import TensorBoardWriter, check_tensorboard
from engine.tensorboard import preload as preload_tensorboard

if TYPE_CHECKING:
    import numpy as np
    import torch

    from engine.check import DataCheck
    from engine.distributed import SharedControl, World
    from engine.inference import Prediction

__all__ = ["CONTROL_POLL_SECONDS", "Evaluation", "FitResult", "Trainer", "learning_rate"]

Listener = Callable[[Event], None]


def data_settings(config: TrainConfig) -> tuple[tuple[str, object], ...]:
    """The settings that decide which dataset ``load_dataset`` loads for ``config``, as
    (name, value) pairs: configs with equal settings load the same images and splits.

    For Fashion-MNIST, ``data`` and ``data_dir``; for the other kinds every setting of the
    "data" group but ``data_dir``, and ``seed`` (it draws their test split). Subsets and
    the validation split are cut later, and are not among them.
    """
    from engine.config import FIELDS

    if config.data == "fashion-mnist":
        names = ["data", "data_dir"]
    else:
        names = [n for n, spec in FIELDS.items() if spec.group == "data" and n != "data_dir"]
        names.append("seed")
    return tuple((name, getattr(config, name)) for name in names)


def load_dataset(
    config: TrainConfig, *, test_only: bool = False, split_version: int = SPLIT_VERSION
) -> ImageData:
    """The whole dataset ``config`` names (Fashion-MNIST, custom, csv-pixels or
    image-folder), before any subset or validation split: uint8 N x H x W images, int64 N
    labels. numpy (and Pillow, for image files) only: no torch or torchvision.

    ``test_only`` reads the test split's files alone: for Fashion-MNIST the two t10k
    files; for a CSV + folder or a folder per class the test rows' images (the CSVs and
    the folder listing are still read, to split as a full load does); for csv-pixels the
    test CSV, if there is one. The train split is then empty (0 x H x W). It is for
    looking at a model's test results (Inspect, ``predict``), never for training.
    ``split_version`` says how a split made here is made (``engine.identity``; a run keeps
    the version it was made with).

    Raises ``DataError`` naming the file when the data is missing or malformed.
    """
    if config.data == "custom":
        from engine.custom import load_custom

        return load_custom(
            config.custom_csv,
            config.custom_images or None,
            test_csv=config.custom_test_csv or None,
            test_fraction=config.test_fraction,
            seed=config.seed,
            size=config.image_size,
            resize=config.resize,
            color=config.color,
            alpha=config.alpha,
            classes_file=config.classes_file or None,
            test_only=test_only,
            split_version=split_version,
        )
    if config.data == "csv-pixels":
        from engine.pixel_csv import load_csv_pixels

        return load_csv_pixels(
            config.custom_csv,
            test_csv=config.custom_test_csv or None,
            test_fraction=config.test_fraction,
            seed=config.seed,
            size=config.image_size,
            classes_file=config.classes_file or None,
            test_only=test_only,
            split_version=split_version,
        )
    if config.data == "image-folder":
        from engine.image_folder import load_image_folder

        return load_image_folder(
            config.custom_images,
            test_fraction=config.test_fraction,
            seed=config.seed,
            size=config.image_size,
            resize=config.resize,
            color=config.color,
            alpha=config.alpha,
            test_only=test_only,
            split_version=split_version,
        )
    return load_fashion_mnist(config.data_dir or None, test_only=test_only)


def load_data(
    config: TrainConfig,
    data: ImageData | None = None,
    *,
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """The dataset ``config`` names (Fashion-MNIST, custom, csv-pixels or image-folder), or
    ``data`` when given, cut to the config's subsets (``train_subset``/``test_subset``
    images, seeded), with ``val_fraction`` of its training images held out as the
    validation split (seeded; see ``ImageData.with_validation``).

    ``test_only`` loads the test split alone (``load_dataset``; no validation split), the
    test subset drawn as a full load draws it; where that draw needs the train split's
    size (``train_subset`` and ``test_subset`` both set), both splits are loaded.
    ``split_version`` as for ``load_dataset``; from ``engine.identity.VALIDATION_BY_PIXELS``
    on, the validation split also keeps each set of identical images on one side.

    Raises ``DataError`` naming the file when the data is missing or malformed.
    """
    # A seeded test subset is drawn after the train subset, from one generator.
    test_only = test_only and not (config.train_subset and config.test_subset)
    if data is None:
        data = load_dataset(config, test_only=test_only, split_version=split_version)
    if test_only:
        return data.subset(config.train_subset, config.test_subset, config.seed)
    data = data.subset(config.train_subset, config.test_subset, config.seed)
    if data.val is not None:
        return data
    together = split_version >= VALIDATION_BY_PIXELS
    return data.with_validation(config.val_fraction, config.seed, keep_copies_together=together)


def _data_changed(run: Run, changes: list[str]) -> str:
    """Why a resume on changed data is refused, and what to do."""
    return (
        f"run {run.id} cannot be resumed: its data changed since it was trained ("
        + "; ".join(changes)
        + "), so images it trained on could be tested on, or the reverse; put back the "
        "data it trained on, start a new run, or give --allow-data-change to go on "
        "with the data as it is now (the change is recorded in its status.json and log)"
    )


def _count(checkpoint: dict[str, Any] | None, key: str) -> int | None:
    value = (checkpoint or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _reason(exc: BaseException) -> str:
    """What a failure says: an engine error's own message, else its type and message."""
    return str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class FitResult:
    """How ``fit()`` ended: ``status`` is ``RunState.FINISHED`` (every epoch trained, or
    early stopping ended it) or ``RunState.STOPPED`` (``reason``: the stop's, or early
    stopping's; "" for a run that trained every epoch); accuracies are fractions (0..1),
    0.0 before any epoch ends: ``best_accuracy`` the best epoch's on the validation split
    (on the test split without one), ``best_test_accuracy`` that epoch's on the test
    split, ``final_accuracy`` the last epoch's on the test split."""

    run_dir: Path | None
    status: RunState
    epochs_completed: int
    best_accuracy: float
    final_accuracy: float
    history: list[EpochEnd]
    best_test_accuracy: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class _Session:
    """One call of ``fit()`` once training begins: what it trains, where its events go,
    who writes its folder (None: not recorded) and its clock."""

    parts: Parts
    state: TrainState
    emit: Emit
    recorder: RunRecorder | None
    clock: Stopwatch


class Trainer:
    """Trains one model on one dataset, into one run folder.

    ``Trainer(config)`` starts a new run; ``Trainer.resume(run_dir)`` continues one.
    Pass ``data`` to reuse an already loaded ``ImageData`` (it is still cut to the
    config's subsets). ``record=False`` trains without a run folder (and so writes no
    TensorBoard files, which go under the run's id); ``run`` trains into a folder made
    beforehand with ``Run.create`` (as a detached run does).
    A ``config.model`` that names a factory in the user's code is imported only when
    ``model_factory`` names it too (the ``--model`` flag); otherwise the constructor
    raises ``ModelError`` (``engine.own_model``).
    ``pause()``, ``resume_training()`` and ``stop()`` may be called from any thread.

    ``world`` makes this process one rank of a data-parallel run (``engine.distributed``,
    launched by torchrun): rank 0 records the run as above, the other ranks train beside
    it and write nothing (they read a resumed run's folder); every rank calls ``fit()``.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        data: ImageData | None = None,
        record: bool = True,
        run: Run | None = None,
        listeners: tuple[Listener, ...] = (),
        model_factory: str | None = None,
        world: World | None = None,
    ) -> None:
        self.world = world
        # Rank 0 of a data-parallel run (or the one process) writes the run folder.
        self._main = world is None or world.is_main
        # A new run records where its data is absolutely: it resumes from any folder.
        self.config = config if run is not None else config.with_absolute_paths()
        if self.config.model not in MODELS:
            subject = f"run {run.id} trains" if run is not None else "the settings name"
            own_model.require_trust(self.config.model, model_factory, subject)
        self._model_factory = model_factory
        self._model_source: own_model.ModelSource | None = None
        self.control = RunControl(CONTROL_POLL_SECONDS)
        self.run: Run | None = run
        self.history: list[EpochEnd] = []
        self.parts: Parts | None = None
        self.state = TrainState()
        self._data = data
        self._record = record and self._main
        self._shared: SharedControl | None = None
        self._resuming = False
        self._extended = False  # resumed with a new total of epochs (Trainer.resume's epochs)
        self._listeners: list[Listener] = list(listeners)
        self._notes: list[str] = []
        self._allow_data_change = False
        self._loaded: ImageData | None = None
        self._identity: dict[str, Any] | None = None
        self._resume_checkpoint: dict[str, Any] | None = None
        self.data_check: DataCheck | None = None  # the dataset check, once the data is loaded
        self._status_fields: dict[str, Any] = {}
        # Writes TensorBoard event files while fit() runs (config.tensorboard); its
        # ``seconds`` is the time the run spent in it.
        self.tensorboard: TensorBoardWriter | None = None

    @classmethod
    def resume(
        cls,
        run: Run | str | Path,
        *,
        data: ImageData | None = None,
        epochs: int | None = None,
        listeners: tuple[Listener, ...] = (),
        allow_data_change: bool = False,
        model_factory: str | None = None,
        world: World | None = None,
    ) -> Trainer:
        """Continue a run from its last checkpoint; ``epochs`` may extend it (a new total).

        A run early stopping ended is finished: without ``epochs`` it trains no more; with
        them it goes on, its patience counted afresh (against the best figure it had).

        The data must be what the run recorded (``engine.identity``), or ``fit()`` and
        ``prepare_data()`` refuse it (``DataChangedError`` saying what changed); with
        ``allow_data_change`` the run goes on with the data as it is, and the difference
        is recorded in ``status.json`` and the log. A run of a model from the user's code
        resumes only when ``model_factory`` names its factory again (``ModelError``
        otherwise, before anything is imported or changed); a file that changed since is
        said in the run's notes. Raises ``CheckpointError`` if there is no such run or its
        config is unusable, and ``ConfigError`` for an ``epochs`` out of bounds.
        """
        if not isinstance(run, Run):
            run = Run.open(run)
        config = run.config()
        if epochs is not None:
            config = TrainConfig.from_dict({"epochs": epochs}, base=config)
        trainer = cls(
            config,
            data=data,
            run=run,
            listeners=listeners,
            model_factory=model_factory,
            world=world,
        )
        trainer._resuming = True
        trainer._extended = epochs is not None
        trainer._allow_data_change = allow_data_change
        return trainer

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event from now on (on the training thread)."""
        self._listeners.append(listener)

    def pause(self) -> None:
        """Pause at the next batch boundary (the training clock stops too)."""
        self.control.pause()

    def resume_training(self) -> None:
        """Go on after ``pause()``."""
        self.control.resume()

    def stop(self, reason: str = "stop") -> None:
        """Stop at the next batch boundary, saving a resumable checkpoint first."""
        self.control.stop(reason)

    @property
    def paused(self) -> bool:
        """True while asked to pause (the loop waits at a batch boundary)."""
        return self.control.paused

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for; ``fit()`` returns at the next batch boundary."""
        return self.control.stopping

    # --- the run --------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train to the configured number of epochs, until early stopping ends the run
        (``early_stopping``; ``FINISHED`` with its reason), or until stopped; returns a
        summary.

        Raises ``TrainingError`` (after a ``Failed`` event and a "failed" status on
        disk) if training cannot go on, and other ``EngineError`` subclasses for bad
        input found before training starts (a resumed run's state is then left as is):
        ``ConfigError`` first of all for a ``tensorboard`` folder that cannot be used
        (``engine.tensorboard``).
        """
        # The event files go under the run's id: a run not recorded writes none.
        if self.config.tensorboard and (self._record or self.run is not None):
            # Refused before anything loads, not after.
            check_tensorboard(self.config.tensorboard, make=True)
            preload_tensorboard()
        import torch

        run = self.run
        main = self._main  # other ranks only read the run's folder
        if run is not None and main:
            run.acquire()
        recorder = RunRecorder(run) if run is not None and main else None
        try:
            if self._resuming and run is not None and not run.has_checkpoint():
                raise CheckpointError(
                    f"run {run.id} cannot be resumed: it stopped before its first "
                    f"checkpoint was saved (no {run.last_path.name} in {run.path}); "
                    "start a new run instead"
                )
            requested = self.config.precision
            parts = self._ready_parts()
            if run is not None and main and parts.config.precision != requested:
                # A folder made beforehand (a detached run) records what auto chose.
                try:
                    run.write_config(parts.config)
                except OSError as exc:
                    raise CheckpointError(
                        f"cannot record the precision in {run.config_path}: {exc.strerror or exc}"
                    ) from None
            if self._resuming and run is not None:
                self._restore(run, parts, recorder)
        except BaseException as exc:
            if recorder is not None and not self._resuming and isinstance(exc, Exception):
                recorder.fail(_reason(exc))
            if run is not None and main:
                run.release()
            raise
        if run is None and self._record:
            self.run = run = Run.create(self.config)
            run.acquire()
            recorder = RunRecorder(run)
        if run is not None and main and self._model_source is not None:
            try:
                own_model.record_source(run.path, self._model_source, epoch=self.state.epoch)
            except OSError as exc:
                run.release()
                raise CheckpointError(
                    f"cannot write {run.path / own_model.SOURCE_FILE}: {exc.strerror or exc}"
                ) from None
        if run is not None and main:
            self.control.watch(run)
        if recorder is not None:  # status.json gets the data's identity with the start
            recorder.pending.update(self._status_fields)
            if self.world is not None:  # and a data-parallel run's shape
                recorder.pending.update(
                    world_size=parts.world_size, global_batch=parts.global_batch
                )
        board = self._open_tensorboard(run if main else None, recorder)

        def emit(event: Event) -> None:
            if recorder is not None:
                recorder(event)
            for listener in list(self._listeners):
                listener(event)
            if board is not None:
                board(event)

        try:
            return self._train(parts, emit, recorder)
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
            self._fail(emit, _reason(exc))
            raise TrainingError(_reason(exc)) from exc
        finally:
            if board is not None:
                board.close()
            if run is not None and main:
                run.release()

    def _open_tensorboard(
        self, run: Run | None, recorder: RunRecorder | None
    ) -> TensorBoardWriter | None:
        """The run's TensorBoard writer (``self.tensorboard``) when ``config.tensorboard``
        names a folder and the run is recorded (its id names its folder there), else None.
        A folder that cannot be made is a ``ConfigError``; the run is released first (a new
        run's status says it failed)."""
        self.tensorboard = None
        if run is None or not self.config.tensorboard:
            return None
        try:
            self.tensorboard = TensorBoardWriter(
                self.config.tensorboard, run.id, step=self.state.step, resumed=self._resuming
            )
        except ConfigError as exc:
            if recorder is not None and not self._resuming:
                recorder.fail(str(exc))
            run.release()
            raise
        return self.tensorboard

    def _restore(self, run: Run, parts: Parts, recorder: RunRecorder | None) -> None:
        """Load the last checkpoint into ``parts`` and ``self.state``; cut the log to match
        (``recorder``: None on a rank that does not record, which changes nothing).

        Nothing in the folder changes unless the checkpoint is the run's own and loads.
        """
        checkpoint = self._resume_checkpoint or run.load_checkpoint("last")
        self.state = TrainState.from_checkpoint(checkpoint, str(run.last_path))
        try:
            if recorder is not None:
                recorder.check_resume(checkpoint, self.state, self.config)
            parts.load(checkpoint, self.state, str(run.last_path))
        except CheckpointError as exc:  # say what is left to use
            from engine.inference import best_checkpoint_note

            note = best_checkpoint_note(run, model_factory=self._model_factory)
            source = self._model_source  # weights that do not fit: a changed file, likely
            change = own_model.source_change(run.path, run.id, source) if source else ""
            likely = f"; {change}, the likely cause" if change else ""
            raise CheckpointError(f"{exc}{likely}; nothing was changed; {note}") from None
        if recorder is not None:
            self._notes += recorder.resume(self.state, self.config, checkpoint)
        self.history = run.read_metrics().epochs

    def _train(self, parts: Parts, emit: Emit, recorder: RunRecorder | None) -> FitResult:
        state = self.state
        notes = list(self._notes)
        control: RunControl | SharedControl = self.control
        if self.world is not None:
            from engine.distributed import SharedControl

            control = self._shared = SharedControl(self.control, self.world)
            left_out = len(parts.train_data) - parts.batches_per_epoch * parts.global_batch
            notes.append(
                self.world.describe(self.config.batch_size)
                + (
                    f"; each epoch leaves out {left_out} images (a partial global batch)"
                    if left_out
                    else ""
                )
            )
        emit(run_started(parts, state, self.run, resumed=self._resuming, notes=notes))
        session = _Session(parts, state, emit, recorder, Stopwatch(state.elapsed))
        clock = session.clock
        if not self._resuming:
            self._checkpoint(session, "start")
        if state.early_stopping.reason and self._extended and state.epoch < self.config.epochs:
            # Given more epochs, a run early stopping ended goes on: its patience counts
            # afresh from here, against the best figure it had.
            state.early_stopping = replace(state.early_stopping, wait=0, reason="")
        while state.epoch < self.config.epochs and not state.early_stopping.reason:
            started, start_batch = clock.seconds, state.batch
            if not train_epoch(parts, state, emit=emit, control=control, clock=clock):
                return self._end(session, RunState.STOPPED)
            event = close_epoch(
                parts,
                state,
                epoch_seconds=clock.seconds - started,
                batches=state.batch - start_batch,
            )
            self.history.append(event)
            emit(event)
            self._checkpoint(session, "best" if event.is_best else "epoch", best=event.is_best)
        return self._end(session, RunState.FINISHED)

    def _checkpoint(self, session: _Session, reason: str, *, best: bool = False) -> None:
        recorder, state, parts = session.recorder, session.state, session.parts
        # Every rank's own random streams, gathered on rank 0 (all ranks take part).
        ranks = parts.world.gather(parts.local_rng()) if parts.world is not None else None
        if recorder is None:
            return
        state.elapsed = session.clock.seconds
        parts.capture_rng(state)
        payload = parts.checkpoint_payload()
        if ranks is not None:
            payload["rank_rng"] = ranks
        if self._identity is not None:  # what a resume holds the data against
            payload["data"] = self._identity
        session.emit(
            recorder.checkpoint(
                payload, state, reason=reason, best=best, keep=self.config.save_top_k
            )
        )

    def _end(self, session: _Session, status: RunState) -> FitResult:
        stopped = status == RunState.STOPPED
        control = self._shared or self.control
        reason = control.stop_reason if stopped else session.state.early_stopping.reason
        if stopped:
            self._checkpoint(session, reason)
        epochs, best = session.state.epoch, session.state.best_accuracy
        final = self.history[-1].test_accuracy if self.history else 0.0
        measured = epochs > 0  # before the first epoch ends there is no accuracy to give
        # A stopped run's time is its checkpoint's, which a resume counts on from.
        elapsed = session.state.elapsed if stopped else session.clock.seconds
        session.emit(
            Finished(
                status.value,
                epochs,
                best if measured else None,
                final if measured else None,
                elapsed,
                reason=reason,
                best_test_accuracy=session.state.best_test_accuracy if measured else None,
                time=time.time(),
            )
        )
        run_dir = self.run.path if self.run else None
        return FitResult(
            run_dir,
            status,
            epochs,
            best,
            final,
            list(self.history),
            best_test_accuracy=session.state.best_test_accuracy,
            reason=reason,
        )

    def _fail(self, emit: Emit, reason: str) -> None:
        emit(Failed(reason, self.state.epoch + 1, self.state.batch, time=time.time()))

    # --- evaluation and prediction ---------------------------------------------------

    def _ready_parts(self) -> Parts:
        if self.parts is None:
            data = self.prepare_data()
            if self.config.model not in MODELS:
                # Hashed before it is imported: the run records the code it ran.
                self._model_source = own_model.locate(self.config.model)
                if self._resuming and self.run is not None:
                    note = own_model.source_note(self.run.path, self.run.id, self._model_source)
                    self._notes += [note] if note else []
            self.parts, self.state = prepare(
                self.config, data, model_factory=self._model_factory, world=self.world
            )
            # precision auto is resolved once, in prepare: the run records the result.
            self.config = self.parts.config
        return self.parts

    def prepare_data(self) -> ImageData:
        """Load the data (once), check it (``engine.check``, cached) and, when resuming,
        hold it against the identity the run recorded; returns it as the run trains on it.

        A resumed run is split as it was made (its recorded split version; version 1
        for a run that recorded none). Raises ``DataError`` when the check refuses the
        data (fewer than two classes), ``DataChangedError`` (a ``DataError``) when a
        resumed run's data changed and ``allow_data_change`` was not given (nothing in the
        run changes then), and ``CheckpointError`` when a resumed run's ``last.pt`` cannot
        be read.
        """
        if self._loaded is not None:
            return self._loaded
        from engine.check import check_data
        from engine.identity import data_identity, differences, same_test_split, split_version

        run, recorded, version = self.run, None, SPLIT_VERSION
        if self._resuming and run is not None and run.has_checkpoint():
            self._resume_checkpoint = run.load_checkpoint("last")
            recorded = self._resume_checkpoint.get("data")
            recorded = recorded if isinstance(recorded, dict) else None
            version = split_version(recorded)
        given = self._data
        if (
            given is not None
            and not same_test_split(version, SPLIT_VERSION)
            and given.source.kind == "custom"
        ):
            given = None  # split by today's rule: the run's own split is loaded instead
        data = load_data(self.config, given, split_version=version)
        identity = data_identity(self.config, data, version)
        check = check_data(data, identity)
        if check.refusal:
            raise DataError(check.refusal)
        notes = check.problems()
        status: dict[str, Any] = {"data": identity}
        if self._resuming and run is not None and recorded is None:
            notes.append(
                f"run {run.id} recorded no identity of its data (it was made before runs "
                f"recorded one): it goes on with the data as it is now, split as it was "
                f"made (split version {version}); the identity is recorded from now on"
            )
        elif self._resuming and run is not None and recorded is not None:
            # Another run's checkpoint is refused as such when it is restored, not here.
            foreign = config_differences((self._resume_checkpoint or {}).get("config"), self.config)
            changes = [] if foreign else differences(recorded, identity)
            if changes and not self._allow_data_change:
                raise DataChangedError(_data_changed(run, changes), run.id, changes)
            if changes:
                notes.append(
                    f"the data changed since run {run.id} last trained ("
                    + "; ".join(changes)
                    + "); it goes on with the data as it is now (--allow-data-change)"
                )
                earlier = run.read_status().get("data_changes")
                earlier = earlier if isinstance(earlier, list) else []
                status["data_changes"] = [
                    *earlier,
                    {"at_epoch": _count(self._resume_checkpoint, "epoch"), "changes": changes},
                ]
        self._notes += notes
        self._status_fields = status
        self._identity, self.data_check, self._loaded = identity, check, data
        return data

    def evaluate(self) -> Evaluation:
        """Loss, accuracy (0..1), per-class accuracy and confusion matrix on the test split.

        Loads the data and builds the model first if ``fit()`` has not: ``DataError`` or
        ``DeviceError`` then as for ``fit()``.
        """
        return evaluate(self._ready_parts())

    def predict(self, images: np.ndarray | torch.Tensor) -> Prediction:
        """Softmax probabilities (``N x C`` float32) and argmax classes (``N``) for
        ``N x H x W`` (or one ``H x W``) uint8 images; ``ValueError`` for another rank."""
        from engine.inference import Predictor

        parts = self._ready_parts()
        predictor = Predictor(
            parts.model, self.config, parts.data.classes, parts.device, parts.data.image_shape
        )
        try:
            return predictor.predict(images)
        finally:
            parts.model.train()
