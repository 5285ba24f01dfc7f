"""``ImageGrid``: as many labelled images as fit, one of them selected."""

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

from tui.widgets.image import HalfBlockImage, RenderMode

GAP = 2  # columns between images


@dataclass(frozen=True)
class Tile:
    pixels: np.ndarray  # uint8 H x W
    label: str


class ImageGrid(Widget, can_focus=True):
    """Lays out ``tiles`` in rows; arrow keys move the selection."""

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
        self.columns = 1
        self.rows = 1

    @property
    def cell_size(self) -> tuple[int, int]:
        """Columns and rows one tile takes: the image and its label line."""
        height, width = self.image_shape
        return width, (height + 1) // 2 + 1

    @property
    def capacity(self) -> int:
        return self.columns * self.rows

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
        cell_width, cell_height = self.cell_size
        columns = max(1, (event.size.width + GAP) // (cell_width + GAP))
        rows = max(1, event.size.height // cell_height)
        if (columns, rows) != (self.columns, self.rows):
            self.columns, self.rows = columns, rows
            self.post_message(self.CapacityChanged(self, self.capacity))

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
        grid = Table.grid(padding=(0, GAP), collapse_padding=True, pad_edge=False)
        for _ in range(min(self.columns, len(self.tiles))):
            grid.add_column(width=self.cell_size[0], no_wrap=True)
        for start in range(0, len(self.tiles), self.columns):
            cells = []
            for index, tile in enumerate(self.tiles[start : start + self.columns], start):
                label = Text(tile.label[: self.cell_size[0]], no_wrap=True, overflow="ellipsis")
                if index == self.selected:
                    label.stylize(selected_style)
                cells.append(Group(HalfBlockImage(tile.pixels, self.mode), label))
            grid.add_row(*cells)
        return grid
