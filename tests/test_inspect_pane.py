"""The Inspect pane by its keys: predictions on a real run's test images, checked
against what the trainer itself measured on them (its confusion matrix)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import QUICK, Notifications, make_app, shown, wait_for
from textual.pilot import Pilot

from engine.config import TrainConfig
from engine.data import ImageData
from engine.events import EpochEnd
from engine.runs import Run, list_runs
from engine.trainer import Trainer
from tui.screens.inspect import InspectPane, Predictions
from tui.screens.run_picker import RunPicker
from tui.widgets.confusion_picker import ConfusionPicker
from tui.widgets.prob_bars import ProbBars
from tui.widgets.runs_table import RunsTable


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, small: ImageData) -> list[Run]:
    """Two finished runs (one epoch of SGD, two of Adam), in the order the app lists
    them, newest last (made in the same second, their ids decide)."""
    runs_dir = tmp_path_factory.mktemp("inspect") / "runs"
    first = TrainConfig(epochs=1, optimizer="sgd", lr=0.01, runs_dir=str(runs_dir), **QUICK)
    second = TrainConfig(epochs=2, runs_dir=str(runs_dir), **QUICK)
    for config in (first, second):
        Trainer(config, data=small).fit()
    return [Run(info.path) for info in reversed(list_runs(runs_dir))]


def best_confusion(run: Run) -> list[list[int]]:
    """The confusion matrix the trainer measured for the checkpoint saved as best."""
    best = [e for e in run.read_metrics().events if isinstance(e, EpochEnd) and e.is_best]
    return best[-1].confusion_matrix


async def predicted(pilot: Pilot, run: Run) -> Predictions:
    pane = pilot.app.query_one(InspectPane)
    await wait_for(pilot, lambda: pane.result is not None and pane.result.run.path == run.path)
    assert pane.result is not None
    return pane.result


def status(pilot: Pilot) -> str:
    return shown(pilot.app.query_one("#inspect-status")).strip()


async def test_steps_through_images_and_mistakes(
    two_runs: list[Run], small: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Torch must never run on the UI thread: record which threads predict.
    from engine.inference import Predictor

    threads: list[str] = []
    real_predict = Predictor.predict

    def predict(self: Predictor, images: np.ndarray, batch_size: int = 1000) -> object:
        threads.append(threading.current_thread().name)
        return real_predict(self, images, batch_size)

    monkeypatch.setattr(Predictor, "predict", predict)
    newest = two_runs[-1]
    app = make_app(newest.path.parent, small)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        assert app.current_pane == "inspect"
        result = await predicted(pilot, newest)  # the newest run by default
        assert threads and threading.main_thread().name not in threads
        pane = app.query_one(InspectPane)
        assert len(result.labels) == len(small.test)
        assert result.confusion_matrix() == best_confusion(newest)
        header = shown(app.query_one("#inspect-header"))
        assert newest.id in header and f"{result.mistakes:,} wrong" in header
        assert status(pilot).startswith(f"1 of {len(small.test):,} · all images")

        bars = app.query_one(ProbBars)
        index = pane.current_index
        assert index == 0
        assert bars.true_class == int(small.test.labels[0])
        assert bars.predicted == int(np.argmax(bars.probabilities))
        assert sum(bars.probabilities) == pytest.approx(1.0, abs=1e-4)
        caption = shown(app.query_one("#inspect-caption"))
        assert small.classes[bars.true_class] in caption

        await pilot.press("n", "right")
        assert pane.current_index == 2 and status(pilot).startswith("3 of")
        await pilot.press("b")
        assert pane.current_index == 1
        await pilot.press("left", "left")  # wraps round to the last image
        assert pane.current_index == len(small.test) - 1

        await pilot.press("m")
        assert status(pilot).startswith(f"1 of {result.mistakes:,} · mistakes only")
        mistakes = np.flatnonzero(result.labels != result.predicted)
        assert list(pane.indices) == list(mistakes)  # every mistake, in order
        for step in range(8):
            i = pane.current_index
            assert i == mistakes[step] and result.labels[i] != result.predicted[i]
            assert "✗ wrong" in shown(app.query_one("#inspect-caption"))
            await pilot.press("n")
        await pilot.press("b")
        assert pane.current_index == mistakes[7]
        await pilot.press("m")
        assert status(pilot).startswith(f"1 of {len(small.test):,} · all images")


async def test_confusion_cell_browses_exactly_its_images(
    two_runs: list[Run], small: ImageData
) -> None:
    newest = two_runs[-1]
    app = make_app(newest.path.parent, small)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        result = await predicted(pilot, newest)
        matrix = best_confusion(newest)
        await pilot.press("c")
        picker = app.query_one(ConfusionPicker)
        assert picker.display and app.focused is picker
        assert picker.matrix == matrix
        # It opens on the commonest mistake.
        off = [(matrix[t][p], t, p) for t in range(10) for p in range(10) if t != p]
        assert matrix[picker.row][picker.column] == max(off)[0]

        await pilot.press("up", "left")
        t, p = picker.cell
        if matrix[t][p] == 0:  # make sure the chosen cell has images
            t, p = max(off)[1:]
            picker.move_to(t, p)
        assert f"{matrix[t][p]:,} image" in shown(picker)
        await pilot.press("enter")
        assert app.focused is app.query_one(InspectPane)
        pane = app.query_one(InspectPane)
        n = matrix[t][p]
        assert status(pilot).startswith(f"1 of {n:,} · true {small.classes[t]}")
        for _ in range(min(n, 6)):
            i = pane.current_index
            assert i is not None and (result.labels[i], result.predicted[i]) == (t, p)
            await pilot.press("n")
        assert list(pane.indices) == list(result.select((t, p)))

        await pilot.press("escape")  # back to every image
        assert status(pilot).startswith(f"1 of {len(small.test):,} · all images")
        await pilot.press("c", "escape")
        assert app.focused is pane


async def test_choose_another_run_here_or_in_the_runs_pane(
    two_runs: list[Run], small: ImageData
) -> None:
    oldest, newest = two_runs
    app = make_app(newest.path.parent, small)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        await predicted(pilot, newest)
        await pilot.press("c", "r")  # r from the confusion matrix
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        assert [str(i.path) for i in app.screen.runs] == [str(newest.path), str(oldest.path)]
        await pilot.press("down", "enter")
        result = await predicted(pilot, oldest)
        assert result.confusion_matrix() == best_confusion(oldest)
        # The pane has its keys again once the picker closes: n steps, c opens the matrix.
        pane = app.query_one(InspectPane)
        await pilot.pause()
        assert app.focused is pane
        await pilot.press("n")
        assert status(pilot).startswith("2 of ")
        await pilot.press("c")
        assert app.focused is app.query_one(ConfusionPicker)
        # Escape closes the picker with the matrix still open and its keys working.
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunPicker))
        assert app.focused is app.query_one(ConfusionPicker)
        await pilot.press("escape", "m")
        assert app.focused is pane and "mistakes only" in status(pilot)

        # The Runs pane: the highlighted run is what Inspect shows; i goes there at once.
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert table.highlighted is not None and table.highlighted.path == newest.path
        await pilot.press("5")
        await predicted(pilot, newest)
        await pilot.press("4", "down", "i")
        assert app.current_pane == "inspect"
        await predicted(pilot, oldest)


async def test_no_run_yet_says_what_to_do(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path / "runs", small)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("5")
        header = app.query_one("#inspect-header")
        await wait_for(pilot, lambda: "No run with a checkpoint" in shown(header))
        await pilot.press("m", "n", "c")  # nothing to browse: nothing happens
        assert app.query_one(InspectPane).result is None
        await pilot.press("r")
        await wait_for(pilot, lambda: any("No run with a checkpoint" in n for n in notes))
