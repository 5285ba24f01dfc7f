"""Snapshots of the Runs and Inspect panes at 80x24 and 120x40 (``--snapshot-update``).

Deterministic: the run folders are written by hand with fixed ids, times and
numbers (no training), under a relative runs folder in a temporary working folder;
the Inspect pane is given fixed predictions for real test images instead of running
a model. Each waits for the state it shows, never for a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import shown, wait_for
from textual.pilot import Pilot

from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import BatchEnd, EpochEnd, Event, RunStarted
from engine.runs import Run, RunInfo, run_info
from tui.app import FmnistApp
from tui.screens.inspect import InspectPane, Predictions
from tui.widgets.confusion_picker import ConfusionPicker
from tui.widgets.curve_overlay import CurveOverlay
from tui.widgets.runs_table import RunsTable

SIZES = [(80, 24), (120, 40)]
FINISHED = "20260101-120000-mlp-aaaa"
INTERRUPTED = "20260101-130000-mlp-bbbb"
FAILED = "20260102-090000-cnn-cccc"
VAL_ABOVE_TEST = 0.015  # each epoch's validation accuracy is above its test accuracy


def epoch(number: int, epochs: int, accuracy: float, loss: float) -> EpochEnd:
    return EpochEnd(
        epoch=number,
        epochs=epochs,
        train_loss=loss + 0.05,
        train_accuracy=accuracy + 0.01,
        test_loss=loss,
        test_accuracy=accuracy,
        per_class_accuracy=[accuracy] * 10,
        confusion_matrix=[[0] * 10 for _ in range(10)],
        lr=1e-3,
        grad_norm=1.0,
        samples_per_second=20_000.0,
        epoch_seconds=2.0,
        memory_bytes=0,
        best_accuracy=accuracy + VAL_ABOVE_TEST,
        is_best=True,
        val_loss=loss - 0.01,
        val_accuracy=accuracy + VAL_ABOVE_TEST,
        best_test_accuracy=accuracy,
    )


def events(run_id: str, config: TrainConfig, accuracies: list[float]) -> list[Event]:
    out: list[Event] = [
        RunStarted(run_id, f"runs/{run_id}", config.to_dict(), "cpu", "test", 2000, 500,
                   [str(i) for i in range(10)], 1, 32, 25_818)
    ]  # fmt: skip
    for e, accuracy in enumerate(accuracies, start=1):
        for b in range(4, 33, 4):
            step = (e - 1) * 32 + b
            loss = 2.0 / (1 + step / 12)
            out.append(BatchEnd(e, b, 32, step, loss, loss, 20_000.0, 1e-3, step * 0.05, 1.0))
        out.append(epoch(e, config.epochs, accuracy, 0.9 - accuracy / 2))
    return out


def write_run(
    runs: Path, run_id: str, config: TrainConfig, accuracies: list[float], **status: object
) -> Path:
    path = runs / run_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json())
    fields = {
        "epochs": config.epochs,
        "epochs_completed": len(accuracies),
        # The best epoch is chosen on the validation split (val_fraction 0.1, the default).
        "best_accuracy": max(accuracies) + VAL_ABOVE_TEST if accuracies else None,
        "best_test_accuracy": max(accuracies) if accuracies else None,
        "best_macro_f1": max(accuracies) - 0.004 if accuracies else None,
        "started": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:00",
        **status,
    }
    (path / "status.json").write_text(json.dumps(fields))
    lines = [json.dumps(e.to_dict()) for e in events(run_id, config, accuracies)]
    (path / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    runs = Path("runs")
    small = {"hidden_sizes": (32,), "batch_size": 64, "runs_dir": "runs"}
    write_run(runs, FINISHED, TrainConfig(epochs=3, **small), [0.78, 0.82, 0.84],
              state="finished")  # fmt: skip
    write_run(runs, INTERRUPTED, TrainConfig(epochs=3, optimizer="sgd", lr=0.05, **small),
              [0.71], state="interrupted", reason="stop")  # fmt: skip
    write_run(runs, FAILED, TrainConfig(model="cnn", epochs=5, runs_dir="runs"), [],
              state="failed", reason="out of memory on cuda:0 with batch size 4096; "
              "try a smaller batch size")  # fmt: skip
    return runs


@pytest.fixture
def many_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sixteen runs of a named sweep: their ids are too long for every column to fit."""
    monkeypatch.chdir(tmp_path)
    runs = Path("runs")
    states = ("finished", "interrupted", "failed", "finished")
    for n in range(16):
        config = TrainConfig(epochs=3, name="lr-sweep-wide", lr=0.001 * (n + 1), runs_dir="runs")
        state = states[n % len(states)]
        accuracies = [0.70 + n / 100, 0.72 + n / 100] if state != "failed" else []
        write_run(runs, f"20260103-10{n:02d}00-mlp-lr-sweep-wide-{n:04x}", config, accuracies,
                  state=state)  # fmt: skip
    return runs


def make_app(data: ImageData) -> FmnistApp:
    app = FmnistApp(TrainConfig(epochs=2, device="cpu", runs_dir="runs"), data=data)
    app.image_mode = "blocks"
    return app


async def runs_listed(pilot: Pilot) -> RunsTable:
    await pilot.press("4")
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == 3)
    return table


async def open_finished(pilot: Pilot) -> None:
    table = await runs_listed(pilot)
    await pilot.press("down", "down", "enter")
    assert table.highlighted is not None and table.highlighted.id == FINISHED
    accuracy = pilot.app.query_one("#runs-accuracy", CurveOverlay)
    await wait_for(pilot, lambda: [len(s.xs) for s in accuracy.series] == [3])
    await pilot.pause()


async def compare_two(pilot: Pilot) -> None:
    await runs_listed(pilot)
    await pilot.press("down", "space", "space", "c")
    accuracy = pilot.app.query_one("#runs-accuracy", CurveOverlay)
    await wait_for(pilot, lambda: [len(s.xs) for s in accuracy.series] == [1, 3])
    await pilot.pause()


async def on_the_last_run(pilot: Pilot) -> None:
    await pilot.press("4")
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == 16)
    await pilot.press("ctrl+end")
    await wait_for(pilot, lambda: table.cursor_row == 15)
    await pilot.pause()


def fixed_predictions(path: Path, data: ImageData) -> Predictions:
    """Every seventh test image wrong (one class on), 82% sure of each answer."""
    labels = data.test.labels.astype(np.int64)
    predicted = labels.copy()
    predicted[::7] = (labels[::7] + 1) % 10
    probabilities = np.full((len(labels), 10), 0.02, dtype=np.float32)
    probabilities[np.arange(len(labels)), predicted] = 0.82
    info: RunInfo = run_info(Run(path))
    return Predictions(info, data.test.images, labels, predicted, probabilities, data.classes)


def inspect_with(*keys: str, shows: Callable[[Pilot, Predictions], bool]):
    """Give the Inspect pane fixed predictions, press ``keys`` there, and wait until it
    ``shows`` what the snapshot is of."""

    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, FmnistApp) and app.data is not None
        pane = app.query_one(InspectPane)
        result = fixed_predictions(Path("runs") / FINISHED, app.data)
        pane.post_message(InspectPane.Predicted(result.run.path, result))
        # Given before it is shown, or showing it would predict with the newest run.
        await wait_for(pilot, lambda: pane.result is result)
        await pilot.press("5", *keys)
        await wait_for(pilot, lambda: shows(pilot, result))
        await pilot.pause()

    return run_before


def second_mistake(pilot: Pilot, result: Predictions) -> bool:
    status = " ".join(shown(pilot.app.query_one("#inspect-status")).split())
    return status.startswith(f"2 of {result.mistakes:,} · mistakes only")


def mistakes_grid(pilot: Pilot, result: Predictions) -> bool:
    status = " ".join(shown(pilot.app.query_one("#inspect-status")).split())
    grid = pilot.app.query_one("#inspect-grid")
    return grid.display and status.startswith("page 1/") and "mistakes only" in status


def cell_below_commonest_mistake(pilot: Pilot, result: Predictions) -> bool:
    picker = pilot.app.query_one(ConfusionPicker)
    true_class, predicted = result.commonest_mistake()
    below = ((true_class + 1) % len(result.classes), predicted)
    return pilot.app.focused is picker and picker.cell == below


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_runs_pane_with_a_run_open(
    snap_compare, runs_folder: Path, small: ImageData, size: tuple[int, int]
) -> None:
    assert snap_compare(make_app(small), terminal_size=size, run_before=open_finished)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_runs_pane_fits_many_long_ids(
    snap_compare, many_runs: Path, small: ImageData, size: tuple[int, int]
) -> None:
    """The columns fit the width (the settings give way, then the ids' heads), the table
    takes the pane's height and the highlighted last row is on screen."""
    assert snap_compare(make_app(small), terminal_size=size, run_before=on_the_last_run)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_runs_pane_comparing_two_runs(
    snap_compare, runs_folder: Path, small: ImageData, size: tuple[int, int]
) -> None:
    """Each run's train and test loss, the accuracies, and the settings that differ."""
    assert snap_compare(make_app(small), terminal_size=size, run_before=compare_two)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_inspect_pane_on_a_mistake(
    snap_compare, runs_folder: Path, small: ImageData, size: tuple[int, int]
) -> None:
    run_before = inspect_with("m", "n", shows=second_mistake)
    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_inspect_pane_mistakes_grid(
    snap_compare, runs_folder: Path, small: ImageData, size: tuple[int, int]
) -> None:
    """The mistakes as thumbnails labelled true→predicted, most confident first."""
    run_before = inspect_with("o", "g", shows=mistakes_grid)
    assert snap_compare(make_app(small), terminal_size=size, run_before=run_before)


def test_inspect_pane_confusion_matrix(snap_compare, runs_folder: Path, small: ImageData) -> None:
    run_before = inspect_with("c", "down", shows=cell_below_commonest_mistake)
    assert snap_compare(make_app(small), terminal_size=(80, 24), run_before=run_before)
