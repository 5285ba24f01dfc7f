from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import pytest
import torch

from engine.config import TrainConfig
from engine.errors import CheckpointError
from engine.events import BatchEnd, EpochEnd
from engine.inference import Predictor
from engine.runs import Run, list_runs, load_checkpoint
from engine.trainer import Trainer
from helpers import cfg, synthetic


class RunsCode:
    """Pickled, this would call os.system when loaded without weights_only."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_crafted_to_run_code_is_refused_and_runs_nothing(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "last.pt"
    torch.save({"format": "fmnist-tui-checkpoint", "version": 1, "x": RunsCode(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="refused: the file holds objects that could run"):
        load_checkpoint(evil)
    assert not marker.exists()

    # The same file planted in a run folder: resuming and predicting refuse it too.
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    run.last_path.write_bytes(evil.read_bytes())
    run.best_path.write_bytes(evil.read_bytes())
    with pytest.raises(CheckpointError):
        Trainer.resume(run, data=synthetic()).fit()
    with pytest.raises(CheckpointError):
        Predictor.from_run(run)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable checkpoint"),
        (b"garbage" * 100, "not a readable checkpoint"),
        (None, "not an fmnist-tui checkpoint"),
    ],
)
def test_corrupt_or_foreign_checkpoints_are_clear_errors(tmp_path, content, message) -> None:
    path = tmp_path / "c.pt"
    if content is None:
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)  # someone else's checkpoint
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_checkpoint_is_a_clear_error(tmp_path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    path = Run(result.run_dir).last_path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_checkpoint_holds_everything_needed_to_resume(tmp_path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    state = load_checkpoint(Run(result.run_dir).last_path)
    assert {"model", "optimizer", "rng", "epoch", "batch", "config", "classes"} <= set(state)
    assert set(state["rng"]) >= {"torch", "shuffle", "augment"}
    assert state["epoch"] == 1 and TrainConfig.from_dict(state["config"]).epochs == 1
    # Written atomically: no temporary files left behind.
    assert not [p for p in Run(result.run_dir).path.iterdir() if p.name.endswith(".tmp")]


def test_run_folder_layout_and_listing(tmp_path) -> None:
    config = cfg(tmp_path, epochs=2, name="try1")
    result = Trainer(config, data=synthetic()).fit()
    run = Run(result.run_dir)
    assert run.id.split("-")[2:4] == ["mlp", "try1"]
    names = {p.name for p in run.path.iterdir()}
    assert {"config.json", "metrics.jsonl", "status.json", "last.pt", "best.pt"} <= names
    recorded = TrainConfig.load(run.config_path)
    assert recorded.precision in ("fp32", "bf16")  # precision auto, as it was resolved
    assert dataclasses.replace(recorded, precision=config.precision) == config
    lines = run.metrics_path.read_text().splitlines()
    assert all(json.loads(line)["event"] for line in lines)
    [info] = list_runs(config.runs_dir)
    assert (info.state, info.epochs_completed, info.epochs) == ("finished", 2, 2)
    assert info.best_accuracy == max(e.test_accuracy for e in result.history)
    assert Run.open(run.id[:20], config.runs_dir).path == run.path


def test_torn_metrics_line_is_tolerated_and_reported(tmp_path) -> None:
    result = Trainer(cfg(tmp_path, epochs=2), data=synthetic()).fit()
    run = Run(result.run_dir)
    with open(run.metrics_path, "a") as f:
        f.write('{"event": "batch", "epoch": 3, "los')
    log = run.read_metrics()
    assert log.torn_line and log.bad_lines == 0
    assert [e.epoch for e in log.epochs] == [1, 2]
    assert any(isinstance(e, BatchEnd) for e in log.events)


def test_killed_run_is_interrupted_not_running(tmp_path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    run = Run(result.run_dir)
    run.write_status("running")  # as a process killed with -9 leaves it
    assert run.state() == "interrupted"
    run.acquire()
    try:
        assert run.state() == "running"
        with pytest.raises(CheckpointError, match="being trained by another process"):
            Run(run.path).acquire()
        run.write_status("running", paused=True)  # as a paused trainer says
        assert run.state() == "paused" and list_runs(run.path.parent)[0].state == "paused"
    finally:
        run.release()
    assert run.state() == "interrupted"  # a paused trainer that died is no longer paused


def test_two_runs_at_once_never_share_a_folder(tmp_path) -> None:
    config = cfg(tmp_path)
    folders = {Run.create(config).path for _ in range(20)}
    assert len(folders) == 20


def test_unknown_run_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no run 'nope'"):
        Run.open("nope", tmp_path)


def test_zip_with_evil_pickle_inside_is_refused(tmp_path) -> None:
    # A torch zip whose data.pkl was swapped for one that imports a callable.
    marker = tmp_path / "ran"
    good = tmp_path / "good.pt"
    torch.save({"format": "fmnist-tui-checkpoint", "version": 1}, good)
    payload = io.BytesIO()
    import pickle

    pickle.dump({"x": RunsCode(str(marker))}, payload, protocol=2)
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = payload.getvalue() if item.filename.endswith("data.pkl") else src.read(item)
            dst.writestr(item, data)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not marker.exists()


def test_epoch_events_round_trip_through_the_log(tmp_path) -> None:
    result = Trainer(cfg(tmp_path, epochs=1), data=synthetic()).fit()
    [logged] = Run(result.run_dir).read_metrics().epochs
    assert isinstance(logged, EpochEnd)
    assert logged == result.history[0]
