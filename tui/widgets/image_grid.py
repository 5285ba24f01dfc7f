"""``ImageGrid``: as many labelled images as fit, one of them selected.

The images are drawn at their own size or smaller, down to half of it: the size that
fits the most of them in the grid's area (``grid_layout``), so a small terminal shows a
page of smaller images rather than two large ones above empty rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.message import Message
from textual.widget import Widget

from tui.widgets.image import HalfBlockImage, RenderMode, shrink_image

GAP = 2  # columns between images, at least
# The smallest an image is drawn, as a fraction of its own size: 16 of Fashion-MNIST's
# 28 pixels, where a sandal still reads as a sandal.
SMALLEST = 16 / 28


def fit_caption(label: str, width: int) -> str:
    """``label`` in ``width`` cells: whole when it fits; else a class name of two parts
    ("T-shirt/top") cut at its "/" with "…", so captions that differ in length are cut at
    the same place ("#14,455 T-shirt…", "#1,640 T-shirt…"); else its start and "…".
    Labels with "→" (true→predicted pairs) are cut at the end only."""
    if len(label) <= width:
        return label
    if "/" in label and "→" not in label:
        head = label[: label.index("/")]
        if len(head) + 1 <= width:
            return head + "…"
    return label[: max(width - 1, 0)] + "…"


@dataclass(frozen=True)
class GridLayout:
    """How ``ImageGrid`` lays out its images: ``columns`` x ``rows`` of them, each
    drawn ``image_size`` (height, width) pixels large above its one-line label."""

    columns: int
    rows: int
    image_size: tuple[int, int]

    @property
    def cell_size(self) -> tuple[int, int]:
        """Columns and rows of text one tile takes: the image and its label line."""
        height, width = self.image_size
        return width, (height + 1) // 2 + 1

    @property
    def capacity(self) -> int:
        """Images on one page."""
        return self.columns * self.rows


def grid_layout(width: int, height: int, image_shape: tuple[int, int]) -> GridLayout:
    """The layout that shows the most images of ``image_shape`` (height, width pixels) in
    ``width`` x ``height`` cells of text, with ``GAP`` columns between images; each is
    drawn at its own size or smaller, down to ``SMALLEST`` of it, and of the sizes that
    show as many, the largest. At least one image, however small the area."""
    image_height, image_width = image_shape
    best: GridLayout | None = None
    smallest = max(1, round(image_width * SMALLEST))
    for drawn_width in range(image_width, smallest - 1, -1):
        drawn_height = max(1, round(image_height * drawn_width / image_width))
        layout = GridLayout(1, 1, (drawn_height, drawn_width))
        cell_width, cell_height = layout.cell_size
        columns = max(1, (width + GAP) // (cell_width + GAP))
        rows = max(1, height // cell_height)
        if best is None or columns * rows > best.capacity:
            best = GridLayout(columns, rows, (drawn_height, drawn_width))
    assert best is not None
    return best


@dataclass(frozen=True)
class Tile:
    pixels: np.ndarray  # uint8 H x W
    label: str


class ImageGrid(Widget, can_focus=True):
    """Lays out ``tiles`` in rows, as many as fit (``grid_layout``, redone on every
    resize); arrow keys move the selection."""

    DEFAULT_CSS = """
    ImageGrid {
        width: 1fr;
        height: 1fr;
    }
    ImageGrid > .image-grid--selected {
        text-style: reverse;
    }
    ImageGrid:focus > .image-grid--selected {
        color: $accent;
        text-style: reverse bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"image-grid--selected"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
    ]

    @dataclass
    class CapacityChanged(Message):
        """How many images fit, after a resize."""

        grid: ImageGrid
        capacity: int

    def __init__(
        self,
        image_shape: tuple[int, int] = (28, 28),
        *,
        mode: RenderMode = "blocks",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.image_shape = image_shape
        self.mode = mode
        self.tiles: list[Tile] = []
        self.selected = 0
        self.message = ""
        self.arrangement = GridLayout(1, 1, image_shape)

    @property
    def columns(self) -> int:
        """Images across."""
        return self.arrangement.columns

    @property
    def rows(self) -> int:
        """Rows of images."""
        return self.arrangement.rows

    @property
    def cell_size(self) -> tuple[int, int]:
        """Columns and rows of text one tile takes: the image as drawn and its label."""
        return self.arrangement.cell_size

    @property
    def capacity(self) -> int:
        """Images on one page."""
        return self.arrangement.capacity

    def set_image_shape(self, image_shape: tuple[int, int]) -> None:
        """The (height, width) in pixels of the images to come; lays the grid out again."""
        self.image_shape = image_shape
        self._lay_out()

    def show(self, tiles: list[Tile]) -> None:
        self.tiles = tiles
        self.message = ""
        self.selected = min(self.selected, max(len(tiles) - 1, 0))
        self.refresh()

    def show_message(self, message: str) -> None:
        """Text in place of the images (loading, an error, nothing to show)."""
        self.message = message
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        self._lay_out()

    def _lay_out(self) -> None:
        width, height = self.size
        if not width or not height:
            return
        layout = grid_layout(width, height, self.image_shape)
        if layout != self.arrangement:
            capacity = self.capacity
            self.arrangement = layout
            self.refresh()
            if layout.capacity != capacity:
                self.post_message(self.CapacityChanged(self, layout.capacity))

    def action_move(self, dx: int, dy: int) -> None:
        if not self.tiles:
            return
        target = self.selected + dx + dy * self.columns
        if 0 <= target < len(self.tiles):
            self.selected = target
            self.refresh()

    def render(self) -> Group | Text | Table:
        if self.message or not self.tiles:
            return Text(self.message, style="dim")
        selected_style = self.get_component_rich_style("image-grid--selected")
        height, width = self.arrangement.image_size
        # The room a whole tile does not fill is shared out between the rows and columns.
        columns, rows = self.columns, self.rows
        cell_width, cell_height = self.cell_size
        spare_width = self.size.width - columns * cell_width - (columns - 1) * GAP
        gap = GAP + max(spare_width, 0) // (columns - 1) if columns > 1 else GAP
        spare_height = self.size.height - rows * cell_height
        between = max(spare_height, 0) // (rows - 1) if rows > 1 else 0
        grid = Table.grid(padding=(between, gap), collapse_padding=True, pad_edge=False)
        for _ in range(min(columns, len(self.tiles))):
            grid.add_column(width=cell_width, no_wrap=True)
        for start in range(0, len(self.tiles), columns):
            cells = []
            for index, tile in enumerate(self.tiles[start : start + columns], start):
                label = Text(fit_caption(tile.label, cell_width), no_wrap=True)
                label.truncate(cell_width, overflow="ellipsis")
                if index == self.selected:
                    label.stylize(selected_style)
                pixels = shrink_image(tile.pixels, height, width)
                cells.append(Group(HalfBlockImage(pixels, self.mode), label))
            grid.add_row(*cells)
        return grid
