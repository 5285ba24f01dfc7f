"""Issue 11, items 5 and 11: the data's identity on resume, and the dataset check.

Every input is built in ``tmp_path`` from real Fashion-MNIST test images: a CSV + folder of
PNGs, or raw IDX files. Each case goes through ``fmnist-tui`` (``main`` in-process, or a
fresh interpreter where imports are what is tested), and through the app where it shows.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycle_helpers import write_raw_data
from pane_helpers import Notifications, shown, wait_for
from PIL import Image
from textual.widgets import Static

from engine.config import TrainConfig
from engine.custom import load_custom
from engine.data import ImageData, Split
from engine.runs import Run
from tui.cli import main

TINY = ["--hidden-sizes", "16", "--batch-size", "16", "--device", "cpu", "--log-every", "50"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own cache (decoded images, check results) and no FMNIST_DATA."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FMNIST_DATA", raising=False)


def write_dataset(
    folder: Path,
    images: np.ndarray,
    labels: list[int] | np.ndarray,
    *,
    names: list[str] | None = None,
    csv_name: str = "labels.csv",
) -> tuple[Path, Path]:
    """``images`` (N x 28 x 28 uint8) as PNGs in ``folder/images`` and a CSV of
    ``filename,label`` rows naming them; returns (CSV, image folder)."""
    pics = folder / "images"
    pics.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i}.png" for i in range(len(images))]
    for name, pixels in zip(names, images, strict=True):
        if not (pics / name).exists():
            Image.fromarray(pixels).save(pics / name)
    csv = folder / csv_name
    rows = [f"{name},{int(label)}" for name, label in zip(names, labels, strict=True)]
    csv.write_text("filename,label\n" + "\n".join(rows) + "\n")
    return csv, pics


def custom_flags(csv: Path, pics: Path, runs: Path) -> list[str]:
    return [
        "--data",
        "custom",
        "--custom-csv",
        str(csv),
        "--custom-images",
        str(pics),
        "--runs-dir",
        str(runs),
    ]


def the_run(runs: Path) -> Run:
    [path] = [p for p in runs.iterdir() if p.is_dir()]
    return Run(path)


def events(run: Run, kind: str) -> list[dict[str, Any]]:
    lines = run.metrics_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fmnist-tui: error: "), err
    assert "Traceback" not in err and "site-packages" not in err
    return lines[0]


# --- item 5: the data's identity, on resume ---------------------------------------------


def test_resume_on_a_csv_grown_by_20_rows_is_refused_saying_what_changed(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images[:60], fashion.test.labels[:60]
    csv, pics = write_dataset(tmp_path, images[:40], labels[:40])
    runs = tmp_path / "runs"
    assert main(["train", *custom_flags(csv, pics, runs), "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    capsys.readouterr()

    write_dataset(tmp_path, images, labels)  # 20 more rows, the first 40 as they were
    code = main(["train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2"])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"run {run.id} cannot be resumed: its data changed since it was trained" in line
    assert "test images: 8 then, 12 now" in line
    assert "CSV labels.csv:" in line and "bytes then" in line
    assert "--allow-data-change" in line
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
    recorded = run.read_status()["data"]  # the identity the run recorded
    assert recorded["counts"]["test"] == 8  # a fifth of 40 held out
    assert recorded["split"] == {"seed": 0, "test_fraction": 0.2, "version": 3}
    assert recorded["files"]["custom_csv"]["name"] == "labels.csv"


def test_a_run_made_with_relative_paths_resumes_from_another_folder(
    tmp_path: Path, fashion: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "project", fashion.test.images[:40], fashion.test.labels[:40])
    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path / "project")
    flags = custom_flags(Path("labels.csv"), Path("images"), runs)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *flags, "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    assert Path(run.config().custom_csv) == tmp_path / "project" / "labels.csv"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--resume", str(run.path), "--epochs", "2"]) == 0
    assert run.read_status()["epochs_completed"] == 2


def test_allow_data_change_goes_on_and_records_the_difference(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images[:60], fashion.test.labels[:60]
    csv, pics = write_dataset(tmp_path, images[:40], labels[:40])
    runs = tmp_path / "runs"
    assert main(["train", *custom_flags(csv, pics, runs), "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    write_dataset(tmp_path, images, labels)

    resume = ["train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2"]
    code = main([*resume, "--allow-data-change", "--json"])

    assert code == 0, capsys.readouterr().err
    status = run.read_status()
    assert status["state"] == "finished" and status["epochs_completed"] == 2
    [change] = status["data_changes"]
    assert change["at_epoch"] == 1
    assert "test images: 8 then, 12 now" in change["changes"]
    assert status["data"]["counts"]["test"] == 12
    resumed = [e for e in events(run, "run_started") if e["resumed"]]
    [note] = [n for n in resumed[0]["notes"] if "the data changed" in n]
    assert "test images: 8 then, 12 now" in note and "--allow-data-change" in note
    # The next resume holds the data against the new identity: nothing changed since.
    assert main(["train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "3"]) == 0


async def test_the_app_says_what_changed_and_asks_before_going_on(
    tmp_path: Path, fashion: ImageData
) -> None:
    from tui.app import FmnistApp
    from tui.screens.confirm import ConfirmScreen
    from tui.screens.extend import ExtendScreen
    from tui.widgets.event_log import EventLog
    from tui.widgets.runs_table import RunsTable

    images, labels = fashion.test.images[:60], fashion.test.labels[:60]
    csv, pics = write_dataset(tmp_path, images[:40], labels[:40])
    runs = tmp_path / "runs"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *custom_flags(csv, pics, runs), "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    write_dataset(tmp_path, images, labels)  # 20 more rows
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    config = TrainConfig(epochs=1, device="cpu", runs_dir=str(runs))
    app = FmnistApp(config, runs_dir=str(runs), data=fashion.subset(100, 50))
    app.image_mode = "blocks"
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:

        async def resume(key: str = "r") -> ConfirmScreen:
            """``r`` (or ``R``, detached) on the finished run, its new total taken: the
            question that follows."""
            await pilot.press("4")
            table = app.query_one(RunsTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ExtendScreen))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 60)
            assert isinstance(app.screen, ConfirmScreen)
            return app.screen

        question = await resume()
        words = " ".join(shown(question.query_one("#confirm-question")).split())
        assert f"The data of run {run.id} changed since it was trained (" in words
        assert "test images: 8 then, 12 now" in words
        assert "Go on with the data as it is now?" in words
        said = [t for t in app.query_one(EventLog).entry_texts if t.startswith("Not resumed")]
        assert len(said) == 1 and f"the data of run {run.id} changed" in said[0]
        assert "test images: 8 then, 12 now" in said[0] and "nothing in the run" in said[0]
        assert "Put back the data it trained on, start a new run, or go on" in said[0]
        await pilot.press("n")  # left as it is: nothing failed, nothing changed
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.monitor.progress.state == "idle"
        assert not [n for n in notes if "Traceback" in n or "failed" in n.lower()], list(notes)
        assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before

        await resume()
        await pilot.press("y")  # go on with the data as it is now
        await wait_for(
            pilot,
            lambda: run.read_status().get("state") == "finished" and not app.session.busy,
            60,
        )
        status = run.read_status()
        assert status["epochs_completed"] == 6
        [change] = status["data_changes"]
        assert "test images: 8 then, 12 now" in change["changes"]

        # R (resume in a process of its own) asks the same question before it starts one.
        more_images = np.concatenate([images, fashion.test.images[200:220]])
        write_dataset(tmp_path, more_images, np.concatenate([labels, fashion.test.labels[200:220]]))
        question = await resume("R")
        words = " ".join(shown(question.query_one("#confirm-question")).split())
        assert "test images: 12 then, 16 now" in words
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: (
                len(run.read_status().get("data_changes", [])) == 2
                and run.read_status().get("state") == "finished"
                and not app.session.busy
            ),
            90,
        )
    status = run.read_status()
    assert status["epochs_completed"] > 6
    assert "test images: 12 then, 16 now" in status["data_changes"][1]["changes"]


def test_resume_after_fmnist_data_moves_from_a_small_set_to_another_is_refused(
    tmp_path: Path, fashion: ImageData, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    sample = write_raw_data(tmp_path / "sample", fashion, 300, 100)
    full = write_raw_data(tmp_path / "full", fashion, 500, 200)
    runs = tmp_path / "runs"
    monkeypatch.setenv("FMNIST_DATA", str(sample))
    assert main(["train", "--runs-dir", str(runs), "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    capsys.readouterr()

    monkeypatch.setenv("FMNIST_DATA", str(full))
    code = main(["train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2"])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "its data changed since it was trained" in line
    assert "test images: 100 then, 200 now" in line
    assert f"FMNIST_DATA: {sample} then, FMNIST_DATA: {full} now" in line
    assert run.read_status()["epochs_completed"] == 1


def duplicated_set(fashion: ImageData, distinct: int = 40, copies: int = 20) -> tuple:
    """``distinct`` real test images and ``copies`` more rows that repeat some of them
    (as files of their own), labelled as the originals."""
    images = fashion.test.images[:distinct]
    labels = fashion.test.labels[:distinct]
    picks = np.arange(copies) * 2 % distinct
    return (
        np.concatenate([images, images[picks]]),
        np.concatenate([labels, labels[picks]]),
    )


def test_a_run_made_before_identities_resumes_on_its_old_split(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = duplicated_set(fashion)
    csv, pics = write_dataset(tmp_path, images, labels)
    runs = tmp_path / "runs"
    assert main(["train", *custom_flags(csv, pics, runs), "--epochs", "1", *TINY]) == 0
    run = the_run(runs)
    # As a run made before identities were recorded: no "data" in its checkpoint or status.
    checkpoint = run.load_checkpoint("last")
    checkpoint.pop("data", None)
    run.save_checkpoint(checkpoint)
    status = json.loads(run.status_path.read_text())
    status.pop("data", None)
    run.status_path.write_text(json.dumps(status))

    code = main(["train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "2"])

    assert code == 0, capsys.readouterr().err
    resumed = [e for e in events(run, "run_started") if e["resumed"]]
    assert any("recorded no identity of its data" in n for n in resumed[0]["notes"])
    recorded = run.read_status()["data"]
    assert recorded["split"]["version"] == 1
    old = load_custom(csv, pics, split_version=1)
    new = load_custom(csv, pics)
    assert recorded["counts"]["test"] == len(old.test)
    assert not np.array_equal(old.test.labels, new.test.labels) or len(old.test) != len(new.test)


# --- item 11: the dataset check ---------------------------------------------------------


def test_every_image_labelled_0_is_refused_by_check_data_and_train(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, pics = write_dataset(tmp_path, fashion.test.images[:40], [0] * 40)
    runs = tmp_path / "runs"
    flags = custom_flags(csv, pics, runs)

    assert main(["check-data", *flags]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert "every training image is of one class, '0' (" in line
    assert "a classifier needs two or more classes" in line
    assert "every training image is of one class" in out  # the findings, before the error

    assert main(["train", *flags, "--epochs", "1", *TINY]) == 2
    assert "every training image is of one class" in one_error_line(capsys.readouterr().err)
    assert not runs.exists() or not any(runs.iterdir())


def test_a_class_only_in_training_is_not_said_to_be_missing_everywhere(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    # 40 training images with class 5 among them, a test CSV without any class 5.
    train_labels = np.array(fashion.test.labels[:40])
    train_labels[:5] = 5
    train_labels[5:][train_labels[5:] == 5] = 6
    test_labels = np.array(fashion.test.labels[40:60])
    test_labels[test_labels == 5] = 6
    csv, pics = write_dataset(tmp_path, fashion.test.images[:40], train_labels)
    names = [f"t{i}.png" for i in range(20)]
    test_csv, _ = write_dataset(
        tmp_path, fashion.test.images[40:60], test_labels, names=names, csv_name="test.csv"
    )
    flags = custom_flags(csv, pics, tmp_path / "runs")
    flags += ["--custom-test-csv", str(test_csv), "--val-fraction", "0"]
    assert main(["check-data", *flags]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "no images in" in line]
    assert "5" in line and line.endswith("no images in the test split: its accuracy there is n/a")
    assert "no images in any split" not in out, out


def test_labels_1_to_10_without_classes_file_show_class_0_as_n_a(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images[:100], fashion.test.labels[:100] + 1
    csv, pics = write_dataset(tmp_path, images, labels)
    runs = tmp_path / "runs"
    flags = custom_flags(csv, pics, runs)

    assert main(["check-data", *flags]) == 0
    out = capsys.readouterr().out
    assert (
        "check: class 0 has no images in any split: accuracy n/a; if the labels count from 1" in out
    )

    assert main(["train", *flags, "--epochs", "1", "--json", *TINY]) == 0
    [epoch] = [
        e for e in map(json.loads, capsys.readouterr().out.splitlines()) if e["event"] == "epoch"
    ]
    assert epoch["per_class_accuracy"][0] is None  # n/a, not 0.0
    assert all(isinstance(a, float) for a in epoch["per_class_accuracy"][1:])


def test_duplicates_conflicting_labels_and_test_copies_of_training_images(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    real, real_labels = fashion.test.images[:30], fashion.test.labels[:30]
    # Train: 30 images, then 3 copies of images 0-2 (one of them labelled otherwise).
    train_images = np.concatenate([real, real[:3]])
    train_labels = np.concatenate([real_labels, real_labels[:3]])
    train_labels[31] = (train_labels[31] + 1) % 10
    write_dataset(tmp_path, train_images, train_labels, csv_name="train.csv")
    # Test: 10 new images and 4 copies of training images 10-13.
    test_images = np.concatenate([fashion.test.images[100:110], real[10:14]])
    test_labels = np.concatenate([fashion.test.labels[100:110], real_labels[10:14]])
    names = [f"t{i}.png" for i in range(len(test_images))]
    write_dataset(tmp_path, test_images, test_labels, names=names, csv_name="test.csv")
    flags = custom_flags(tmp_path / "train.csv", tmp_path / "images", tmp_path / "runs")
    # No validation split: every training image stays a training image (the split of the
    # copies' originals is the subject of test_validation_split).
    flags += ["--custom-test-csv", str(tmp_path / "test.csv"), "--val-fraction", "0"]

    assert main(["check-data", *flags, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"] is True
    assert report["duplicates"] == 3 + 4 and report["duplicate_groups"] == 3 + 4
    assert report["conflicting"] == 1
    assert report["leaked"]["test"] == 4
    assert main(["check-data", *flags]) == 0
    out = capsys.readouterr().out
    assert "check: 7 images repeat another image exactly (same pixels; 7 sets of copies)" in out
    assert "check: 1 set of identical images carries different labels" in out
    assert "check: 4 images of the test split are copies of training images" in out


def test_a_split_made_here_keeps_identical_images_on_one_side(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = duplicated_set(fashion)
    csv, pics = write_dataset(tmp_path, images, labels)

    data = load_custom(csv, pics)

    train = {row.tobytes() for row in data.train.images}
    assert not [row for row in data.test.images if row.tobytes() in train]
    assert main(["check-data", *custom_flags(csv, pics, tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicates"] == 20 and report["leaked"]["test"] == 0


def test_the_check_is_cached_by_the_datas_identity(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, pics = write_dataset(tmp_path, fashion.test.images[:50], fashion.test.labels[:50])
    flags = [*custom_flags(csv, pics, tmp_path / "runs"), "--json"]
    assert main(["check-data", *flags]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["check-data", *flags]) == 0
    second = json.loads(capsys.readouterr().out)
    assert not first["cached"] and second["cached"]
    assert second["check_seconds"] < 0.1
    # A changed label is other data: checked again.
    write_dataset(tmp_path, fashion.test.images[:50], [*fashion.test.labels[:49], 3])
    assert main(["check-data", *flags]) == 0
    assert not json.loads(capsys.readouterr().out)["cached"]


def test_check_data_reports_the_alpha_rule_counts(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = fashion.test.images[:20], fashion.test.labels[:20]
    csv, pics = write_dataset(tmp_path, images, labels)
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 3] = images[0]  # colour all 0, the garment in alpha
    Image.fromarray(rgba, "RGBA").save(pics / "0.png")

    assert main(["check-data", *custom_flags(csv, pics, tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "note: 1 image with transparency (alpha=auto): 1 " in out


CHILD = """
import json, sys
from tui.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules,
                  "torchvision": "torchvision" in sys.modules}))
"""


@pytest.mark.parametrize("kind", ["idx", "csv-pixels"])
def test_check_data_imports_neither_torch_nor_torchvision(
    kind: str, tmp_path: Path, fashion: ImageData
) -> None:
    if kind == "idx":
        flags = ["--data-dir", str(write_raw_data(tmp_path / "idx", fashion, 300, 100))]
    else:
        images, labels = fashion.test.images[:100], fashion.test.labels[:100]
        header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
        rows = [
            f"{y}," + ",".join(map(str, x.ravel())) for x, y in zip(images, labels, strict=True)
        ]
        (tmp_path / "train.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
        flags = ["--data", "csv-pixels", "--custom-csv", str(tmp_path / "train.csv")]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "check-data", *flags],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        cwd=Path(__file__).parent.parent,
        timeout=60,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "torch": False, "torchvision": False}, done.stderr
    assert "check: no duplicate images" in done.stdout


async def test_the_data_pane_shows_the_checks_findings(tmp_path: Path, fashion: ImageData) -> None:
    from engine.check import check_data
    from engine.identity import data_identity
    from tui.app import FmnistApp
    from tui.widgets.model_summary import ModelSummaryView

    images, labels = duplicated_set(fashion)
    data = ImageData(
        train=Split(images[:50], labels[:50]),
        test=Split(images[50:], labels[50:]),
        classes=fashion.classes,
        source=fashion.source,
    )
    config = TrainConfig(epochs=1, device="cpu", runs_dir=str(tmp_path / "runs"))
    app = FmnistApp(config, runs_dir=str(tmp_path / "runs"), data=data)
    app.image_mode = "blocks"
    async with app.run_test(size=(80, 24)) as pilot:

        def text() -> str:
            check = app.query("#data-check")
            return " ".join(shown(check.first()).split()) if check else ""  # wrapped: as words

        # At 80 columns, one line: a count of each kind of finding, the rest on a key.
        await wait_for(pilot, lambda: text().startswith("Check "))
        check = app.query_one("#data-check", Static)
        [line] = shown(check).splitlines()
        assert text() == "Check 3 empty classes · 20 duplicates · +1 more (c)"
        assert len(line.rstrip()) <= 80
        await pilot.press("c")
        await wait_for(pilot, lambda: "repeat another image" in text())
        assert shown(check).splitlines()[0].startswith(" Check ")
        # They have training images: it is the test split that has none of them.
        assert "5 (Sandal) have no images in the" in text()
        assert "split: its accuracy there is n/a" in text() and "any split" not in text()
        assert "20 images repeat another image exactly" in text()
        assert "10 images of the test split are copies of training images" in text()
        # Cached by the data's identity: the check is not done again for this data.
        assert check_data(data, data_identity(app.config, data)).cached
        # The app settles (its model summary) before it closes.
        await pilot.press("2")
        summary = app.query_one(ModelSummaryView)
        await wait_for(pilot, lambda: "401,920" in shown(summary))
