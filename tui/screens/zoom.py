"""``ZoomScreen``: one image as large as the terminal allows, with what it is."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
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
        with Vertical(id="zoom-box"):
            yield Static(id="zoom-image")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        height, width = self.pixels.shape
        # Room left by the box's border and padding and the two caption lines.
        room_w, room_h = self.size.width - 6, (self.size.height - 6) * 2
        scale = max(1, min(room_w // width, room_h // height))
        caption = Text.assemble(
            (self.label, "bold"),
            f"  {self.detail}  ×{scale}\n",
            ("esc or z: close", "dim"),
        )
        self.query_one("#zoom-image", Static).update(
            Group(HalfBlockImage(self.pixels, self.mode, scale), caption)
        )
