"""The Data pane fills its area with images, marks the filtered class, and previews
augmentation on the train split only (issue 15, item 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pane_helpers import Notifications, make_app, shown, wait_for

from engine.data import ImageData
from tui.widgets.class_bars import MARK, ClassBars
from tui.widgets.image import shrink_image
from tui.widgets.image_grid import ImageGrid, grid_layout


def test_grid_layout_shows_the_most_images_each_as_large_as_that_allows() -> None:
    # 58 x 19 cells (the grid at 80x24): three 16-pixel images across, two rows.
    layout = grid_layout(58, 19, (28, 28))
    assert (layout.columns, layout.rows, layout.image_size) == (3, 2, (16, 16))
    # Room for one image, whatever its size: at its own size.
    full = grid_layout(30, 16, (28, 28))
    assert (full.columns, full.rows, full.image_size) == (1, 1, (28, 28))
    # Never below 16 of 28 pixels, and always one image.
    assert grid_layout(5, 3, (28, 28)).capacity == 1
    assert all(grid_layout(w, 40, (28, 28)).image_size >= (16, 16) for w in range(20, 400))


def test_shrink_image_averages_areas() -> None:
    image = np.zeros((4, 4), dtype=np.uint8)
    image[:2, :2] = 200  # the top-left quarter
    assert shrink_image(image, 2, 2).tolist() == [[200, 0], [0, 0]]
    assert shrink_image(np.full((28, 28), 77, np.uint8), 16, 16).tolist() == [[77] * 16] * 16
    assert shrink_image(image, 4, 4) is image


def blank_rows_below(grid: ImageGrid) -> int:
    lines = shown(grid).split("\n")
    return len(lines) - len("\n".join(lines).rstrip().split("\n"))


async def test_data_pane_fills_its_area_marks_the_class_and_refuses_test_augmentation(
    tmp_path: Path, small: ImageData
) -> None:
    app = make_app(tmp_path / "runs", small)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        grid = app.query_one(ImageGrid)
        status = app.query_one("#data-status")
        await wait_for(pilot, lambda: len(grid.tiles) == grid.capacity > 1)
        await pilot.pause()
        # Two images showed here, above empty rows: now three across, two rows.
        assert (grid.columns, grid.rows) == (3, 2) and len(grid.tiles) == 6
        assert blank_rows_below(grid) < grid.cell_size[1]
        labels = shown(grid)
        assert all(tile.label[:6] in labels for tile in grid.tiles)
        assert f"page 1/{-(-len(small.train) // 6):,}" in shown(status)

        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: grid.capacity > 6 and len(grid.tiles) == grid.capacity)
        await pilot.pause()
        assert grid.capacity >= 15  # six showed at 120x40
        assert blank_rows_below(grid) < grid.cell_size[1]
        pages = -(-len(small.train) // grid.capacity)
        assert f"page 1/{pages:,}" in shown(status)  # the page follows the grid

        balance = shown(app.query_one(ClassBars))
        assert MARK not in balance
        await pilot.press("f", "f")  # all -> T-shirt/top -> Trouser
        balance = shown(app.query_one(ClassBars))
        marked = [line for line in balance.split("\n") if MARK in line]
        assert len(marked) == 1 and marked[0].lstrip().startswith(f"{MARK}Trouser")

        await pilot.press("a")
        assert "augmentation on" in shown(status)
        await pilot.press("t")  # to the test split: the preview goes off, the status says so
        assert shown(status).strip().startswith("test") and "never augmented" in shown(status)
        assert not [n for n in notes if "augment" in n]  # no toast to cover the zoom's hint
        original = [tile.pixels.copy() for tile in grid.tiles]
        await pilot.press("a")  # refused, with the reason
        assert "never augmented" in shown(status)
        assert any("The test split is never augmented" in note for note in notes)
        assert all((a == t.pixels).all() for a, t in zip(original, grid.tiles, strict=True))

        # At 80x24 the status fits one line, captions start with the image's number, and
        # the grid follows the check's height when c shows its findings in full.
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: grid.capacity == 6 and len(grid.tiles) == 6)
        await pilot.pause()
        assert status.size.height == 1 and "never augmented" in shown(status)
        captions = shown(grid)
        for tile in grid.tiles:
            number, name = tile.label.split(" ", 1)
            assert name in small.classes and f"{number} {name[:3]}" in captions
        check = app.query_one("#data-check")
        await wait_for(pilot, lambda: "Check" in shown(check))
        for _ in range(2):
            await pilot.press("c")
            await pilot.pause()
            await pilot.pause()
            width, height = grid.size
            best = grid_layout(width, height, grid.image_shape)
            assert (grid.columns, grid.rows) == (best.columns, best.rows)
            assert len(grid.tiles) == grid.capacity
            assert grid.region.bottom == status.region.y  # the grid fills down to the status
