from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

import engine.optim
from engine.config import TrainConfig
from engine.errors import TrainingError
from engine.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    Failed,
    Finished,
    RunStarted,
    event_from_dict,
)
from engine.inference import Predictor
from engine.runs import Run
from engine.trainer import Trainer, learning_rate
from helpers import cfg, synthetic


def test_fit_learns_and_emits_events_in_order(tmp_path) -> None:
    events = []
    # No validation split: all 512 images train, in 16 batches of 32.
    config = cfg(tmp_path, val_fraction=0.0)
    result = Trainer(config, data=synthetic(), listeners=(events.append,)).fit()
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is Finished
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert result.final_accuracy > 0.9
    last = epochs[-1]
    assert len(last.per_class_accuracy) == 10
    assert sum(map(sum, last.confusion_matrix)) == 128
    assert math.isclose(
        sum(last.confusion_matrix[i][i] for i in range(10)) / 128, last.test_accuracy
    )
    assert last.samples_per_second > 0 and last.grad_norm > 0 and last.memory_bytes > 0
    batches = [e for e in events if isinstance(e, BatchEnd)]
    # 512 / 32 = 16 batches per epoch, an event every 4: the periodic sync, not every batch.
    assert [e.batch for e in batches[:4]] == [4, 8, 12, 16]
    assert all(e.samples_per_second > 0 and e.eta >= 0 for e in batches)
    assert any(isinstance(e, CheckpointSaved) for e in events)
    run = Run(result.run_dir)
    assert run.state() == "finished"
    assert [e.epoch for e in run.read_metrics().epochs] == [1, 2]


def _stop_when(trainer: Trainer, predicate) -> None:
    def listen(event) -> None:
        if predicate(event):
            trainer.stop()

    trainer.add_listener(listen)


def _metrics(history: list[EpochEnd]) -> list[tuple]:
    return [
        (e.epoch, e.test_loss, e.test_accuracy, e.train_accuracy, e.confusion_matrix)
        for e in history
    ]


@pytest.mark.parametrize(
    ("stop_at", "description"),
    [
        (lambda e: isinstance(e, EpochEnd) and e.epoch == 2, "after epoch 2"),
        (lambda e: isinstance(e, BatchEnd) and e.epoch == 2 and e.batch == 8, "mid epoch 2"),
    ],
)
def test_stopped_and_resumed_equals_uninterrupted(tmp_path, stop_at, description) -> None:
    # Dropout, augmentation and shuffling all draw random numbers: every stream must resume.
    config = cfg(tmp_path, epochs=5, dropout=0.2, augment=True, schedule="onecycle")
    data = synthetic()
    whole = Trainer(config, data=data).fit()

    first = Trainer(config, data=data)
    _stop_when(first, stop_at)
    stopped = first.fit()
    assert stopped.status == "stopped"
    assert Run(stopped.run_dir).state() == "interrupted"
    resumed = Trainer.resume(stopped.run_dir, data=data).fit()

    assert resumed.status == "finished"
    assert _metrics(resumed.history) == _metrics(whole.history), description
    for a, b in zip(resumed.history, whole.history, strict=True):
        assert math.isclose(a.train_loss, b.train_loss, rel_tol=1e-6)
    # The log on disk holds each epoch once, as if the run had never stopped.
    assert [e.epoch for e in Run(stopped.run_dir).read_metrics().epochs] == [1, 2, 3, 4, 5]


def test_resume_can_extend_a_finished_run(tmp_path) -> None:
    data = synthetic()
    done = Trainer(cfg(tmp_path, epochs=1), data=data).fit()
    more = Trainer.resume(done.run_dir, data=data, epochs=2).fit()
    assert [e.epoch for e in more.history] == [1, 2]
    assert Run(done.run_dir).config().epochs == 2


def test_pause_and_resume_from_another_thread(tmp_path) -> None:
    trainer = Trainer(cfg(tmp_path, epochs=1), data=synthetic())
    paused = threading.Event()
    states = []

    def listen(event) -> None:
        if isinstance(event, BatchEnd) and event.batch == 4 and not states:
            trainer.pause()
        if type(event).__name__ == "StateChanged":
            states.append(event.state)
            if event.state == "paused":
                paused.set()

    trainer.add_listener(listen)
    releaser = threading.Thread(target=lambda: (paused.wait(10), trainer.resume_training()))
    releaser.start()
    result = trainer.fit()
    releaser.join()
    assert states == ["paused", "running"]
    assert result.status == "finished"


def test_stop_through_the_run_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("engine.trainer.CONTROL_POLL_SECONDS", 0.0)
    trainer = Trainer(cfg(tmp_path, epochs=3), data=synthetic())

    def listen(event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            trainer.run.request("stop")  # as `fmnist-tui attach` does from another process

    trainer.add_listener(listen)
    result = trainer.fit()
    assert result.status == "stopped"
    assert result.epochs_completed == 1


def test_nan_loss_fails_the_run_with_a_reason(tmp_path, monkeypatch) -> None:
    # A diverging run, injected: the loss turns NaN from the 6th batch on.
    original = engine.optim.build_loss
    calls = []

    def diverging(config):
        loss_fn = original(config)

        def loss(outputs, target):
            calls.append(1)
            value = loss_fn(outputs, target)
            return value * float("nan") if len(calls) > 5 else value

        return loss

    monkeypatch.setattr(engine.optim, "build_loss", diverging)
    events = []
    trainer = Trainer(cfg(tmp_path), data=synthetic(), listeners=(events.append,))
    with pytest.raises(TrainingError, match="loss became"):
        trainer.fit()
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and "lower the learning rate" in failed[0].reason
    assert trainer.run.state() == "failed"
    assert "loss became" in trainer.run.read_status()["reason"]


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "mse"])
def test_every_loss_trains_and_predicts_probabilities(tmp_path, loss: str) -> None:
    data = synthetic()
    trainer = Trainer(cfg(tmp_path, loss=loss, epochs=2, lr=3e-3), data=data, record=False)
    result = trainer.fit()
    assert result.final_accuracy > 0.8
    prediction = trainer.predict(data.test.images[:16])
    assert prediction.probabilities.shape == (16, 10)
    np.testing.assert_allclose(prediction.probabilities.sum(1), 1.0, atol=1e-5)
    assert (prediction.classes == prediction.probabilities.argmax(1)).all()


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_reduces_the_loss(tmp_path, optimizer: str) -> None:
    lr = {"sgd": 0.05, "rmsprop": 1e-3}.get(optimizer, 3e-3)
    result = Trainer(
        cfg(tmp_path, optimizer=optimizer, lr=lr, epochs=2, schedule="step", step_size=1),
        data=synthetic(),
        record=False,
    ).fit()
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_cnn_and_bf16_autocast_paths_run_on_cpu(tmp_path) -> None:
    # bf16 autocast is the code path a GPU uses for mixed precision; CPU exercises it here.
    result = Trainer(
        cfg(tmp_path, model="cnn", conv_channels=(8, 16), precision="bf16", epochs=1),
        data=synthetic(),
        record=False,
    ).fit()
    assert result.final_accuracy > 0.5


def test_predictor_from_run_matches_trainer(tmp_path) -> None:
    data = synthetic()
    trainer = Trainer(cfg(tmp_path, epochs=1), data=data)
    result = trainer.fit()
    from_disk = Predictor.from_run(result.run_dir, which="best").predict(data.test.images)
    in_memory = trainer.predict(data.test.images)
    np.testing.assert_allclose(from_disk.probabilities, in_memory.probabilities, atol=1e-6)


def test_learning_rate_schedules() -> None:
    c = TrainConfig(lr=1.0, schedule="cosine")
    assert learning_rate(c, 0, 100, 10) == 1.0
    assert learning_rate(c, 50, 100, 10) == pytest.approx(0.5)
    assert learning_rate(c, 100, 100, 10) == pytest.approx(0.0)
    s = TrainConfig(lr=1.0, schedule="step", step_size=2, gamma=0.1)
    assert [learning_rate(s, step, 100, 10) for step in (0, 19, 20, 40)] == pytest.approx(
        [1, 1, 0.1, 0.01]
    )
    o = TrainConfig(lr=1.0, schedule="onecycle")
    assert learning_rate(o, 0, 100, 10) == pytest.approx(0.04)
    assert learning_rate(o, 30, 100, 10) == pytest.approx(1.0)
    assert learning_rate(o, 100, 100, 10) < 1e-3
    assert learning_rate(TrainConfig(lr=0.3, schedule="none"), 77, 100, 10) == 0.3


def test_real_set_one_epoch_learns(tmp_path, fashion) -> None:
    config = cfg(
        tmp_path,
        epochs=1,
        hidden_sizes=(512, 512),
        batch_size=256,
        train_subset=20000,
        test_subset=2000,
        log_every=20,
    )
    result = Trainer(config, data=fashion).fit()
    assert result.final_accuracy > 0.78


def test_no_torch_threads_leak_across_runs(tmp_path) -> None:
    # torch's thread count is process-wide: a run must leave it as it found it. Start
    # from a count no trainer would pick by itself (one more than torch's default), so
    # a trainer that set its own (every core, say) and kept it shows here.
    default = torch.get_num_threads()
    torch.set_num_threads(default + 1)
    try:
        Trainer(cfg(tmp_path, epochs=1), data=synthetic(), record=False).fit()
        assert torch.get_num_threads() == default + 1
    finally:
        torch.set_num_threads(default)


def test_a_stop_before_the_first_epoch_ends_reports_no_accuracy_not_zero(tmp_path) -> None:
    events: list = []
    trainer = Trainer(cfg(tmp_path), data=synthetic(), listeners=(events.append,))
    _stop_when(trainer, lambda e: isinstance(e, BatchEnd))
    trainer.fit()
    [finished] = [e for e in events if isinstance(e, Finished)]
    line = finished.to_dict()
    assert (line["status"], line["epochs_completed"]) == ("stopped", 0)
    # Nothing was measured: JSON null, never an accuracy of 0.0 that reads as a result.
    assert line["best_accuracy"] is None and line["final_accuracy"] is None
    assert event_from_dict(line) == finished  # and a reader takes it as an event, not junk
