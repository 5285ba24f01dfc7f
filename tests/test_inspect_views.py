"""The Inspect pane's orders, grid and run picker, and a subset run's image numbers
(issue 15, item 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pane_helpers import QUICK, make_app, shown, wait_for
from textual.geometry import Region
from textual.widgets import OptionList

from engine.config import TrainConfig
from engine.data import ImageData
from engine.runs import Run, RunInfo
from engine.state import RunState
from engine.trainer import Trainer
from tui.screens.inspect import InspectPane, pair_label
from tui.screens.run_picker import RunPicker
from tui.widgets.curve_overlay import Series, distinct_marks
from tui.widgets.image_grid import ImageGrid, fit_caption


async def test_a_subset_run_sorted_by_confidence_and_its_mistakes_as_a_grid(
    tmp_path: Path, small: ImageData
) -> None:
    runs_dir = tmp_path / "runs"
    config = TrainConfig(epochs=1, test_subset=100, runs_dir=str(runs_dir), **QUICK)
    run = Run(Trainer(config, data=small).fit().run_dir)
    app = make_app(runs_dir, small)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        pane = app.query_one(InspectPane)
        await wait_for(pilot, lambda: pane.result is not None and pane.result.run.path == run.path)
        result = pane.result
        assert result is not None and len(result.labels) == 100

        # Each image is named by its index in the whole test split, not in the subset.
        named = []
        for _ in range(3):
            caption = shown(app.query_one("#inspect-caption"))
            number = int(caption.split("test image #")[1].split()[0].replace(",", ""))
            i = pane.current_index
            assert i is not None
            assert (small.test.images[number] == result.images[i]).all()
            assert small.test.labels[number] == result.labels[i]
            named.append(number)
            await pilot.press("n")
        assert named != [0, 1, 2] and named == sorted(named)

        # Mistakes, the most confident first; o again: the dataset's order.
        header = app.query_one("#inspect-header")
        await pilot.press("m")
        assert shown(header).split("\n")[1].strip().startswith("dataset order")
        mistakes = np.flatnonzero(result.labels != result.predicted)
        await pilot.press("o")
        assert shown(header).split("\n")[1].strip().startswith("most confident first")
        confidence = result.probabilities[pane.indices, result.predicted[pane.indices]]
        assert sorted(pane.indices) == list(mistakes)
        assert list(confidence) == sorted(confidence, reverse=True)
        assert confidence[0] > confidence[-1]
        most_sure = int(pane.indices[0])
        assert pane.current_index == most_sure
        await pilot.press("o")
        assert list(pane.indices) == list(mistakes)
        await pilot.press("o")

        # g: the mistakes as thumbnails, labelled true→predicted; enter opens one.
        await pilot.press("g")
        grid = app.query_one("#inspect-grid", ImageGrid)
        await wait_for(pilot, lambda: grid.display and grid.capacity > 1 and grid.tiles)
        await wait_for(pilot, lambda: len(grid.tiles) == min(grid.capacity, len(mistakes)))
        assert grid.capacity >= 6
        names = result.classes
        expected = [
            pair_label(names[result.labels[i]], names[result.predicted[i]], grid.cell_size[0])
            for i in pane.indices[: len(grid.tiles)]
        ]
        assert [tile.label for tile in grid.tiles] == expected
        assert all("→" in label for label in expected)
        assert all(label.split("→")[0][:3] in shown(grid) for label in expected)
        status = shown(app.query_one("#inspect-status"))
        assert status.strip().startswith(f"page 1/{-(-len(mistakes) // grid.capacity)}")
        await pilot.press("right", "enter")
        assert not grid.display
        assert pane.current_index == int(pane.indices[1])
        assert "✗ wrong" in shown(app.query_one("#inspect-caption"))

        # c shows the matrix with its hint; escape goes back and the hint with it.
        await pilot.press("c")
        hint = app.query_one("#inspect-status")
        assert "enter: browse its images" in shown(hint)
        await pilot.press("escape")
        assert "enter: browse its images" not in shown(hint)
        assert "c: matrix" in shown(hint)


def info(
    run_id: str,
    state: RunState,
    best: float | None,
    epochs: tuple[int, int],
    config: TrainConfig | None = None,
) -> RunInfo:
    done, planned = epochs
    path = Path("runs") / run_id
    return RunInfo(run_id, path, "", state, config, done, planned, best, "", True)


async def test_run_picker_lines_its_columns_up(tmp_path: Path, small: ImageData) -> None:
    runs = [
        info("20260101-120000-mlp-0001", RunState.FINISHED, 0.9037, (20, 20)),
        info("20260101-120500-cnn-lr-sweep-wide-00ff", RunState.INTERRUPTED, 0.5, (3, 12)),
        info("x", RunState.FAILED, None, (0, 1)),
        # The test images Inspect shows (1,000), not the training subset (5,000).
        info(
            "subset-0002",
            RunState.FINISHED,
            0.8,
            (1, 1),
            TrainConfig(train_subset=5000, test_subset=1000),
        ),
    ]
    app = make_app(tmp_path / "runs", small)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(RunPicker("Inspect which run?", runs))
        await wait_for(pilot, lambda: bool(app.screen.query("#run-picker-list")))
        picker = app.screen
        assert isinstance(picker, RunPicker)
        options = picker.query_one(OptionList)
        heading = picker.query_one("#run-picker-columns")

        def rows() -> list[str]:
            # The list as drawn, its border included.
            strips = options.render_lines(Region(0, 0, *options.outer_size))
            return [strip.text for strip in strips if "all" in strip.text]

        for size in ((80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            await wait_for(pilot, lambda: len(rows()) == 3)
            await pilot.pause()
            header, lines = shown(heading), rows()
            # Header and rows on one screen line each, every column starting where its
            # heading does (names left-aligned, figures right-aligned to the heading's end).
            left = options.region.x - heading.region.x
            columns = {word: header.index(word) for word in ("state", "epochs", "best", "test")}
            strips = options.render_lines(Region(0, 0, *options.outer_size))
            subset = next(strip.text for strip in strips if "subset-0002" in strip.text)
            row = (" " * left + subset).rstrip(" │▁▇█▊▎▌▐▔")
            assert "5,000" not in row and row.endswith("1,000")
            assert len(row) == columns["test"] + len("test")
            states = ("finished", "interrupted", "failed")
            for line, state in zip(lines, states, strict=True):
                row = " " * left + line
                assert row.index(state) == columns["state"]
                end = columns["best"] + len("best")
                assert row[end - 1] != " " and row[end : end + 2] == "  "
                end = columns["epochs"] + len("epochs")
                assert row[end - 1] != " " and row[end : end + 2] == "  "
            assert "90.4%" in lines[0] and "20/20" in lines[0] and "all" in lines[0]
        # Wide enough at 120x40 for every id whole.
        assert "20260101-120500-cnn-lr-sweep-wide-00ff" in lines[1]


def test_captions_cut_alike_and_compared_runs_marked_apart() -> None:
    # Captions of one class cut at the same place whatever their index's length.
    assert fit_caption("#14,455 T-shirt/top", 16) == "#14,455 T-shirt…"
    assert fit_caption("#1,640 T-shirt/top", 16) == "#1,640 T-shirt…"
    assert fit_caption("#1,640 T-shirt/top", 18) == "#1,640 T-shirt/top"
    # Two runs compared: a mark each, readable without colour; single lines kept.
    runs = [Series("run-a", [1], [1], "red", "hd"), Series("run-b", [1], [2], "blue", "hd")]
    assert distinct_marks([Series("", [1], [1], "red"), *runs]) == ["braille", "•", "x"]
    single = [Series("train", [1], [1], "cyan"), Series("test", [1], [1], "orange", "hd")]
    assert distinct_marks(single) == ["braille", "hd"]
