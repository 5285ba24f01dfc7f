"""``--tensorboard DIR``: event files read back with TensorBoard's own reader match the run's
metrics.jsonl step for step; a resumed run appends without writing a step twice; a missing
package or an unusable folder is refused before anything trains (exit 2 on the CLI, the
reason under the form's field in the app).

The [tensorboard] extra is required here: without it these tests fail, never skip.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    TENSORS,
    EventAccumulator,
)
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from engine.data import CLASSES
from engine.events import BatchEnd, EpochEnd
from engine.runs import Run
from engine.tensorboard import INSTALL, class_tags, confusion_image
from engine.trainer import Trainer
from helpers import cfg, synthetic
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent


def read_back(folder: Path) -> EventAccumulator:
    """Every event in ``folder``, as TensorBoard loads a run (no sampling)."""
    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0, IMAGES: 0, TENSORS: 0})
    return accumulator.Reload()


def scalars(board: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(s.step, s.value) for s in board.Scalars(tag)]


def epoch_steps(run: Run) -> list[tuple[int, EpochEnd]]:
    """Each EpochEnd in metrics.jsonl with the global step of its epoch's last batch."""
    out, step = [], 0
    for event in run.read_metrics().events:
        if isinstance(event, BatchEnd):
            step = event.step
        elif isinstance(event, EpochEnd):
            out.append((step, event))
    return out


def test_event_files_hold_the_runs_metrics_step_for_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative folder is recorded absolutely
    config = cfg(tmp_path, tensorboard="tb")
    # Fashion-MNIST's class names: "T-shirt/top" holds a slash.
    trainer = Trainer(config, data=dataclasses.replace(synthetic(), classes=CLASSES))
    result = trainer.fit()
    run = Run(result.run_dir)
    assert run.config().tensorboard == str(tmp_path / "tb")
    folder = tmp_path / "tb" / run.id
    assert trainer.tensorboard is not None and trainer.tensorboard.path == folder
    assert 0 < trainer.tensorboard.seconds < 5
    # One run, one folder of event files: hparams did not make a folder of their own.
    assert [p.name for p in (tmp_path / "tb").iterdir()] == [run.id]
    assert all(p.is_file() and p.name.startswith("events.out.tfevents") for p in folder.iterdir())
    board = read_back(folder)

    batches = [e for e in run.read_metrics().events if isinstance(e, BatchEnd)]
    assert len(batches) > 4
    for name in ("loss", "smoothed_loss", "lr", "samples_per_second"):
        expected = [(e.step, getattr(e, name)) for e in batches]
        assert scalars(board, f"batch/{name}") == [
            (step, pytest.approx(value, rel=1e-6)) for step, value in expected
        ]

    epochs = epoch_steps(run)
    assert [e.epoch for _, e in epochs] == [1, 2]
    # One tag per class, none a group of its own: the slash became "_".
    classes = ["T-shirt_top", *CLASSES[1:]]
    assert "/" not in "".join(classes)
    checked = set()
    for field in dataclasses.fields(EpochEnd):
        values = [(step, getattr(e, field.name)) for step, e in epochs]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in values):
            if field.name != "time":
                tag = f"epoch/{field.name}"
                assert scalars(board, tag) == [(s, pytest.approx(v, rel=1e-6)) for s, v in values]
                checked.add(field.name)
        elif field.name.startswith("per_class_"):
            for index, name in enumerate(classes):
                tag = f"{field.name}/{name}"
                expected = [(s, v[index]) for s, v in values if v[index] is not None]
                assert scalars(board, tag) == [(s, pytest.approx(v, rel=1e-6)) for s, v in expected]
            checked.add(field.name)
    assert {"train_loss", "test_accuracy", "val_loss", "val_accuracy", "lr"} <= checked
    assert {"samples_per_second", "epoch_seconds", "per_class_accuracy"} <= checked
    tags = board.Tags()[SCALARS]
    assert not [tag for tag in tags if tag.startswith("per_class_") and tag.count("/") != 1]

    images = board.Images("confusion_matrix")
    assert [i.step for i in images] == [step for step, _ in epochs]
    for image, (_, event) in zip(images, epochs, strict=True):
        decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
        assert np.array_equal(decoded, confusion_image(event.confusion_matrix))

    final = epochs[-1][0]
    assert scalars(board, "hparams/best_accuracy") == [
        (final, pytest.approx(result.best_accuracy, rel=1e-6))
    ]
    assert scalars(board, "hparams/epochs_completed") == [(final, 2)]
    content = board.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == pytest.approx(config.lr)
    assert hparams["optimizer"].string_value == config.optimizer
    assert hparams["hidden_sizes"].string_value == "64"
    assert "tensorboard" not in hparams and "runs_dir" not in hparams


def test_a_resumed_run_appends_and_writes_no_step_twice(tmp_path: Path) -> None:
    # No validation split: 16 batches of 32 an epoch, a progress event every 4.
    config = cfg(tmp_path, tensorboard=str(tmp_path / "tb"), val_fraction=0.0)
    data = synthetic()
    first = Trainer(config, data=data)

    def crash(event: object) -> None:  # ends the process's training as a kill would
        if isinstance(event, BatchEnd) and event.epoch == 2 and event.batch == 12:
            raise KeyboardInterrupt

    first.add_listener(crash)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert first.run is not None
    folder = tmp_path / "tb" / first.run.id
    before = read_back(folder)
    # Epoch 2's first progress events were written after the checkpoint of epoch 1.
    assert [s for s, _ in scalars(before, "batch/loss")] == [4, 8, 12, 16, 20, 24]

    resumed = Trainer.resume(first.run.path, data=data).fit()
    assert resumed.status == "finished"
    assert len(list(folder.iterdir())) == 2  # the resumed session's file beside the first
    board = read_back(folder)
    run = Run(first.run.path)
    batches = [e for e in run.read_metrics().events if isinstance(e, BatchEnd)]
    assert [s for s, _ in scalars(board, "batch/loss")] == [e.step for e in batches]
    assert [e.step for e in batches] == [4, 8, 12, 16, 20, 24, 28, 32]
    for tag in board.Tags()["scalars"]:
        steps = [s for s, _ in scalars(board, tag)]
        assert steps == sorted(set(steps)), tag
    expected = [(step, e.test_accuracy) for step, e in epoch_steps(run)]
    assert scalars(board, "epoch/test_accuracy") == [
        (s, pytest.approx(v, rel=1e-6)) for s, v in expected
    ]
    assert [i.step for i in board.Images("confusion_matrix")] == [16, 32]


def test_class_tags_keep_one_tag_per_class_without_slashes() -> None:
    assert class_tags(CLASSES)[0] == "T-shirt_top" and class_tags(CLASSES)[1:] == list(CLASSES[1:])
    # Stable, distinct, never empty: a name the replacement would repeat gets its index.
    assert class_tags(["a/b", "a_b", "", "x y"]) == ["a_b", "a_b_1", "2", "x y"]


def test_confusion_image_is_a_row_normalised_heat_map() -> None:
    matrix = [[3, 1, 0], [0, 0, 0], [0, 2, 2]]
    image = confusion_image(matrix)
    cell = 256 // 3
    assert image.dtype == np.uint8 and image.shape == (3 * cell, 3 * cell, 3)

    def colour(row: int, column: int) -> list[int]:
        return image[row * cell + cell // 2, column * cell + cell // 2].tolist()

    assert colour(0, 2) == [247, 251, 255]  # none of the row's images: white
    assert colour(1, 1) == [160, 160, 160]  # a class with no images: grey
    assert colour(2, 1) == colour(2, 2)  # half each
    assert sum(colour(0, 0)) < sum(colour(2, 2)) < sum(colour(0, 1))  # 3/4 > 1/2 > 1/4
    assert confusion_image(np.eye(100, dtype=int)).shape == (400, 400, 3)  # cells of 4
    with pytest.raises(ValueError, match="K x K"):
        confusion_image([[1, 2, 3]])


# Imports as if the tensorboard package were not installed (Python's own rule: a module
# whose sys.modules entry is None cannot be imported), then runs the CLI on each argv.
HIDDEN = """
import json, sys
sys.modules["tensorboard"] = None
from tui.cli import main
print(json.dumps([main(argv) for argv in json.loads(sys.argv[1])]))
"""


def test_without_the_package_every_way_in_exits_2_with_the_pip_command(tmp_path: Path) -> None:
    board, runs = tmp_path / "tb", tmp_path / "runs"
    config_file = tmp_path / "with-board.toml"
    config_file.write_text(f'tensorboard = "{board}"\n')
    common = ["--runs-dir", str(runs), "--device", "cpu"]
    argvs = [
        ["train", "--tensorboard", str(board), *common],
        ["train", "--config", str(config_file), *common],
        ["train", "--detach", "--tensorboard", str(board), *common],
    ]
    done = subprocess.run(
        [sys.executable, "-c", HIDDEN, json.dumps(argvs)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, 2, 2], done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3, done.stderr
    for line in lines:
        assert line.startswith("fmnist-tui: error: tensorboard: the tensorboard package is not")
        assert INSTALL in line
    assert not runs.exists() and not board.exists()  # refused before anything was made


@pytest.mark.parametrize("where", ["a file", "inside a file", "unwritable"])
def test_a_folder_that_cannot_take_event_files_exits_2_with_the_reason(
    where: str, tmp_path: Path, capsys
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder\n")
    # /sys refuses a new folder to every user, root included (EPERM, or EACCES).
    folder = {"a file": afile, "inside a file": afile / "tb", "unwritable": Path("/sys/fmnist")}
    argv = ["train", "--tensorboard", str(folder[where]), "--runs-dir", str(tmp_path / "runs")]
    assert main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fmnist-tui: error: tensorboard: ")
    reason = {
        "a file": "is a file; give a folder",
        "inside a file": f"is inside {afile}, a file",
        "unwritable": "give a folder you can write to",
    }
    assert reason[where] in err
    assert not (tmp_path / "runs").exists()


async def test_the_form_shows_a_missing_package_and_a_bad_folder_under_the_field(
    tmp_path: Path, monkeypatch
) -> None:
    import tensorboard
    from textual.widgets import Button, Static

    from tui.app import FmnistApp
    from tui.widgets.config_form import ConfigForm

    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder\n")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    app = FmnistApp(cfg(tmp_path, tensorboard=str(tmp_path / "tb")), data=synthetic(256, 64))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        form = app.query_one(ConfigForm)
        start = app.query_one("#start", Button)

        def reason() -> str:
            return str(app.query_one("#error-tensorboard", Static).render())

        assert reason().startswith("✗ the tensorboard package is not installed")
        assert INSTALL in reason() and start.disabled
        monkeypatch.setitem(sys.modules, "tensorboard", tensorboard)  # installed now
        form.editor("tensorboard").value = str(afile)
        await pilot.pause()
        assert reason() == f"✗ {afile} is a file; give a folder (it is made if missing)"
        assert start.disabled
        form.editor("tensorboard").value = str(tmp_path / "tb")
        await pilot.pause()
        assert reason() == "" and not start.disabled


def test_a_searchs_trials_write_beside_each_other_in_one_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative folder: the study records it absolutely
    small = ["--train-subset", "1000", "--test-subset", "200", "--hidden-sizes", "32"]
    argv = ["search", "--study", "s", "--trials", "2", "--epochs", "1", "--tensorboard", "tb"]
    assert main([*argv, *small, "--runs-dir", "runs", "--device", "cpu"]) == 0, capsys.readouterr()
    trials = sorted(p.name for p in (tmp_path / "runs").iterdir() if "-s-t" in p.name)
    assert len(trials) == 2
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == trials
    for trial in trials:
        board = read_back(tmp_path / "tb" / trial)
        assert len(board.Scalars("epoch/val_accuracy")) == 1
