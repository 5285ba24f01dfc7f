"""Issue 11, item 12: a validation split chooses the best epoch; the test split only measures.

Every dataset is built in ``tmp_path`` from real Fashion-MNIST test images. The test split
of the main case is labelled one class off ((label + 1) mod 10), so its accuracy falls as
the model learns while the validation accuracy rises: an epoch chosen on the test split
would be another than the one chosen on the validation split.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import make_app, wait_for

from engine.config import TrainConfig, preset
from engine.data import FILES, DataSource, ImageData, Split, write_idx
from engine.identity import SPLIT_VERSION, data_identity
from engine.runs import Run
from engine.trainer import Trainer, load_data
from tui.cli import main
from tui.widgets.charts import EpochChart
from tui.widgets.event_log import EventLog
from tui.widgets.runs_table import RunsTable

QUICK = ["--hidden-sizes", "32", "--batch-size", "100", "--device", "cpu", "--log-every", "5"]


def write_folder(folder: Path, train: Split, test: Split) -> Path:
    """The two splits as the four raw IDX files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, prefix in ((train, "train"), (test, "test")):
        write_idx(folder / FILES[f"{prefix}_images"], split.images)
        write_idx(folder / FILES[f"{prefix}_labels"], split.labels.astype(np.uint8))
    return folder


def off_by_one_folder(folder: Path, fashion: ImageData) -> Path:
    """1,000 real images to train on, and 300 others as a test split labelled one class off."""
    images, labels = fashion.test.images, fashion.test.labels
    train = Split(images[:1000], labels[:1000])
    test = Split(images[1000:1300], (labels[1000:1300] + 1) % 10)
    return write_folder(folder, train, test)


def train_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    capsys.readouterr()
    assert main(["train", "--json", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def runs_listing(capsys: pytest.CaptureFixture[str], runs: Path) -> tuple[str, list[dict]]:
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    text = capsys.readouterr().out
    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    return text, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_best_epoch_is_chosen_on_validation_with_test_accuracy_beside_it(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = off_by_one_folder(tmp_path / "data", fashion)
    runs = tmp_path / "runs"
    events = train_json(
        capsys,
        "--data-dir", str(data_dir), "--runs-dir", str(runs), "--epochs", "4",
        "--val-fraction", "0.2", "--optimizer", "sgd", "--lr", "0.02", "--momentum", "0",
        "--schedule", "none", *QUICK,
    )  # fmt: skip
    started = events[0]
    assert (started["train_size"], started["val_size"], started["test_size"]) == (800, 200, 300)
    epochs = [e for e in events if e["event"] == "epoch"]
    val = [e["val_accuracy"] for e in epochs]
    test = [e["test_accuracy"] for e in epochs]
    assert all(isinstance(a, float) for a in val + test)
    assert all(isinstance(e["val_loss"], float) for e in epochs)
    # Chosen on validation: an epoch is the best when its validation accuracy beats every
    # earlier one's, whatever its test accuracy.
    assert [e["is_best"] for e in epochs] == [
        v > max(val[:i], default=-1) for i, v in enumerate(val)
    ]
    best = val.index(max(val))
    # The case tells the two apart: on the test split another epoch would have won.
    assert test.index(max(test)) != best, (val, test)
    assert [e["best_accuracy"] for e in epochs][-1] == val[best]
    assert epochs[-1]["best_test_accuracy"] == test[best]
    finished = events[-1]
    assert finished["event"] == "finished"
    assert (finished["best_accuracy"], finished["best_test_accuracy"]) == (val[best], test[best])
    assert finished["final_accuracy"] == test[-1]

    run = Run(Path(started["run_dir"]))
    assert run.load_checkpoint("best")["epoch"] == best + 1
    status = run.read_status()
    assert (status["best_accuracy"], status["best_test_accuracy"]) == (val[best], test[best])

    text, rows = runs_listing(capsys, runs)
    assert rows[0]["chosen_on"] == "validation"
    assert (rows[0]["best_accuracy"], rows[0]["best_test_accuracy"]) == (val[best], test[best])
    header, line = text.splitlines()[:2]
    assert "best acc" in header and "test acc" in header
    assert f"{val[best]:.1%} val" in line
    assert line.split(" val", 1)[1].split()[0] == f"{test[best]:.1%}"


def test_validation_split_is_seeded_stratified_and_carved_from_training(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images, fashion.test.labels
    data_dir = write_folder(
        tmp_path / "data",
        Split(images[:1000], labels[:1000]),
        Split(images[1000:1200], labels[1000:1200]),
    )

    def split(seed: int, fraction: float = 0.25) -> ImageData:
        return load_data(TrainConfig(data_dir=str(data_dir), seed=seed, val_fraction=fraction))

    first = split(7)
    assert first.val is not None
    assert (len(first.train), len(first.val), len(first.test)) == (750, 250, 200)

    # Carved from the training images: together they are those images, each once.
    def items(*parts: Split) -> Counter[tuple[bytes, int]]:
        return Counter(
            (img.tobytes(), int(lab))
            for p in parts
            for img, lab in zip(p.images, p.labels, strict=True)
        )

    assert items(first.train, first.val) == items(Split(images[:1000], labels[:1000]))
    assert np.array_equal(first.test.images, images[1000:1200])  # the test split is untouched
    # Stratified: each class gives its share.
    shares = np.bincount(labels[:1000], minlength=10) * 0.25
    assert np.all(np.abs(np.bincount(first.val.labels, minlength=10) - shares) <= 1)
    # Seeded: the same seed gives the same split, another seed another.
    again, other = split(7), split(8)
    assert again.val is not None and other.val is not None
    assert np.array_equal(again.val.images, first.val.images)
    assert not np.array_equal(other.val.images, first.val.images)
    assert split(7, fraction=0.0).val is None

    # The CLI trains on what is left: its sizes, and the setting in the run's config.
    events = train_json(
        capsys, "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
        "--epochs", "1", "--val-fraction", "0.25", "--seed", "7", *QUICK,
    )  # fmt: skip
    assert (events[0]["train_size"], events[0]["val_size"]) == (750, 250)
    assert events[0]["config"]["val_fraction"] == 0.25

    # Bad values are refused in one line, saying what is allowed.
    for bad in ("0.95", "-0.1", "half"):
        capsys.readouterr()
        assert main(["train", "--val-fraction", bad, "--data-dir", str(data_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("fmnist-tui: error: ") and "val_fraction" in err, err
        assert "expected a number at least 0 and at most 0.9" in err and len(err.splitlines()) == 1


def test_tutorial_preset_has_no_validation_split_and_chooses_on_test(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TrainConfig().val_fraction == 0.1
    assert preset("tutorial").val_fraction == 0.0
    images, labels = fashion.test.images, fashion.test.labels
    data_dir = write_folder(
        tmp_path / "data",
        Split(images[:640], labels[:640]),
        Split(images[640:840], labels[640:840]),
    )
    runs = tmp_path / "runs"
    events = train_json(
        capsys, "--preset", "tutorial", "--epochs", "1", "--data-dir", str(data_dir),
        "--runs-dir", str(runs), "--device", "cpu",
    )  # fmt: skip
    started, epoch = events[0], next(e for e in events if e["event"] == "epoch")
    assert started["config"]["val_fraction"] == 0.0
    assert (started["train_size"], started["val_size"]) == (640, 0)
    assert epoch["val_accuracy"] is None and epoch["is_best"]
    assert epoch["best_accuracy"] == epoch["best_test_accuracy"] == epoch["test_accuracy"]
    text, rows = runs_listing(capsys, runs)
    assert rows[0]["chosen_on"] == "test"
    assert f"{epoch['test_accuracy']:.1%} test" in text.splitlines()[1]


def test_resume_is_exact_with_a_validation_split(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images, fashion.test.labels
    data_dir = write_folder(
        tmp_path / "data",
        Split(images[:600], labels[:600]),
        Split(images[600:800], labels[600:800]),
    )
    config = TrainConfig(
        data_dir=str(data_dir), runs_dir=str(tmp_path / "runs"), epochs=2, hidden_sizes=(32,),
        batch_size=50, device="cpu", val_fraction=0.2, dropout=0.2, augment=True, log_every=3,
    )  # fmt: skip
    whole = Trainer(config).fit()

    stopped = Trainer(config)
    # Stopped in the middle of the second epoch, after the first was evaluated.
    stopped.add_listener(
        lambda e: (
            stopped.stop() if getattr(e, "epoch", 0) == 2 and getattr(e, "batch", 0) >= 5 else None
        )
    )
    first = stopped.fit()
    assert first.status == "stopped" and first.epochs_completed == 1
    assert first.run_dir is not None
    events = train_json(
        capsys, "--resume", first.run_dir.name, "--runs-dir", str(tmp_path / "runs")
    )
    assert events[0]["resumed"] and events[0]["val_size"] == 120
    resumed = [e for e in Run(first.run_dir).read_metrics().epochs]
    assert [e.val_accuracy for e in resumed] == [e.val_accuracy for e in whole.history]
    assert [e.val_loss for e in resumed] == [e.val_loss for e in whole.history]
    assert [e.test_accuracy for e in resumed] == [e.test_accuracy for e in whole.history]
    assert all(e.val_accuracy is not None for e in resumed)
    best_whole = Run(whole.run_dir).load_checkpoint("best")
    best_resumed = Run(first.run_dir).load_checkpoint("best")
    assert best_resumed["epoch"] == best_whole["epoch"]
    for name, tensor in best_whole["model"].items():
        assert tensor.equal(best_resumed["model"][name]), name


def test_a_run_recorded_before_validation_splits_resumes_without_one(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images, fashion.test.labels
    data_dir = write_folder(
        tmp_path / "data",
        Split(images[:500], labels[:500]),
        Split(images[500:700], labels[500:700]),
    )
    runs = tmp_path / "runs"
    events = train_json(
        capsys, "--data-dir", str(data_dir), "--runs-dir", str(runs), "--epochs", "1",
        "--val-fraction", "0", *QUICK,
    )  # fmt: skip
    run = Run(Path(events[0]["run_dir"]))
    # As the run folder of an earlier version holds it: no val_fraction in config.json,
    # no best test accuracy in status.json.
    config = json.loads(run.config_path.read_text())
    del config["val_fraction"]
    run.config_path.write_text(json.dumps(config))
    status = json.loads(run.status_path.read_text())
    del status["best_test_accuracy"]
    run.status_path.write_text(json.dumps(status))
    _text, rows = runs_listing(capsys, runs)
    assert rows[0]["chosen_on"] == "test"
    assert rows[0]["best_test_accuracy"] == rows[0]["best_accuracy"] == status["best_accuracy"]

    events = train_json(capsys, "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2")
    assert events[0]["resumed"] and (events[0]["train_size"], events[0]["val_size"]) == (500, 0)
    assert [e["val_accuracy"] for e in events if e["event"] == "epoch"] == [None]


def test_the_validation_split_keeps_identical_images_on_one_side(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the check's own cache
    images, labels = fashion.test.images, fashion.test.labels
    # 160 real images to train on, the first 40 of them twice more: 40 sets of 3 copies.
    picks = np.r_[0:160, 0:40, 0:40]
    data_dir = write_folder(
        tmp_path / "data",
        Split(images[picks], labels[picks]),
        Split(images[160:220], labels[160:220]),
    )
    flags = ["--data-dir", str(data_dir), "--val-fraction", "0.25"]

    def copies_across(data: ImageData) -> int:
        """Validation images whose pixels a training image has too."""
        assert data.val is not None
        trained = {image.tobytes() for image in data.train.images}
        return sum(image.tobytes() in trained for image in data.val.images)

    data = load_data(TrainConfig(data_dir=str(data_dir), val_fraction=0.25))
    assert data.val is not None and (len(data.train), len(data.val)) == (180, 60)
    assert copies_across(data) == 0  # every set of identical images on one side
    shares = np.bincount(labels[picks], minlength=10) * 0.25
    assert np.all(np.abs(np.bincount(data.val.labels, minlength=10) - shares) <= 3)
    # The split version before this one cut row by row: copies landed on both sides.
    old = load_data(TrainConfig(data_dir=str(data_dir), val_fraction=0.25), split_version=2)
    assert copies_across(old) > 0

    # Through the CLI: the check finds no validation image copied from a training image.
    capsys.readouterr()
    assert main(["check-data", *flags, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicates"] == 80 and report["leaked"].get("val", 0) == 0, report

    # A run made with the older split version resumes on exactly its own, older split.
    runs = tmp_path / "runs"
    events = train_json(capsys, *flags, "--runs-dir", str(runs), "--epochs", "1", *QUICK)
    run = Run(Path(events[0]["run_dir"]))
    assert run.read_status()["data"]["split"]["version"] == SPLIT_VERSION
    then = data_identity(run.config(), old, 2)  # what the run would have recorded then
    checkpoint = run.load_checkpoint("last")
    checkpoint["data"] = then
    run.save_checkpoint(checkpoint)
    status = json.loads(run.status_path.read_text())
    status["data"] = then
    run.status_path.write_text(json.dumps(status))
    events = train_json(capsys, "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2")
    assert old.val is not None and events[0]["resumed"] and events[0]["val_size"] == len(old.val)
    # Split as then, pixel for pixel: the identity is the one recorded, unchanged.
    assert run.read_status()["data"] == then
    assert "data_changes" not in run.read_status()


async def test_app_shows_validation_beside_test_in_the_monitor_and_runs_pane(
    tmp_path: Path, fashion: ImageData
) -> None:
    data = ImageData(
        Split(fashion.test.images[:1000], fashion.test.labels[:1000]),
        Split(fashion.test.images[1000:1300], fashion.test.labels[1000:1300]),
        fashion.classes,
        DataSource("flag", tmp_path),
    )
    app = make_app(tmp_path / "runs", data, epochs=2, val_fraction=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.monitor.progress.state == "finished")
        run = Run(next((tmp_path / "runs").iterdir()))
        epochs = run.read_metrics().epochs
        best = max(epochs, key=lambda e: (e.val_accuracy, -e.epoch))
        assert all(e.val_accuracy is not None for e in epochs)

        stats = str(app.monitor.stats.render())
        assert f"best val {best.val_accuracy:.1%} test {best.test_accuracy:.1%}" in stats
        log = app.query_one(EventLog).entry_texts
        assert any("800 train, 200 validation, 300 test images" in t for t in log), log
        first = epochs[0]
        assert any(
            t.startswith(
                f"Epoch 1/2: val {first.val_accuracy:.1%} (best), test {first.test_accuracy:.1%}"
            )
            for t in log
        ), log
        chart = app.query_one(EpochChart)
        assert chart.val_accuracies == [e.val_accuracy * 100 for e in epochs]

        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        cells = dict(
            zip([k for k, _ in table.columns_shown], map(str, table.get_row(run.id)), strict=True)
        )
        assert cells["best"] == f"{best.val_accuracy:.1%} val"
        assert cells["test"] == f"{best.test_accuracy:.1%}"
        assert best.macro_f1 is not None and cells["f1"] == f"{best.macro_f1:.1%}"
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: table.narrow)
        assert [k for k, _ in table.columns_shown][-4:] == ["best", "test", "f1", "state"]
