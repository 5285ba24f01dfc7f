"""``ZoomScreen``: one image as large as the terminal allows, with what it is."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets.image import HalfBlockImage, RenderMode


class ZoomScreen(ModalScreen[None]):
    """Shows ``pixels`` enlarged by the largest whole factor that fits."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,z,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, pixels: np.ndarray, label: str, detail: str, mode: RenderMode) -> None:
        super().__init__()
        self.pixels = pixels
        self.label = label
        self.detail = detail
        self.mode = mode

    def compose(self) -> ComposeResult:
        image, caption = self._picture(self.app.size)
        with Vertical(id="zoom-box"):
            yield Static(image, id="zoom-image")
            yield Static(caption, id="zoom-caption")

    def on_resize(self, event: Resize) -> None:
        image, caption = self._picture(event.size)
        self.query_one("#zoom-image", Static).update(image)
        self.query_one("#zoom-caption", Static).update(caption)

    def _picture(self, room: Size) -> tuple[HalfBlockImage, Text]:
        height, width = self.pixels.shape
        # Room left by the box's border and padding and the two caption lines.
        scale = max(1, min((room.width - 6) // width, (room.height - 6) * 2 // height))
        caption = Text.assemble(
            (self.label, "bold"),
            f"  {self.detail}  ×{scale}\n",
            ("esc or z: close", "dim"),
        )
        return HalfBlockImage(self.pixels, self.mode, scale), caption
