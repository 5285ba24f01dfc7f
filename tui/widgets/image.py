"""Grey images drawn in a terminal: half blocks where there is colour, an ASCII ramp where not.

``▀`` with the foreground set to the upper pixel and the background to the lower one
shows two pixels per cell, so a 28x28 image takes 28 columns by 14 rows with square
pixels. Without 256 or true colour (``NO_COLOR``, a basic terminal) each cell shows
the mean of its two pixels as a character of ``RAMP``. Everything here works on uint8
numpy arrays: no torch on the UI thread.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from textual.app import App

RenderMode = Literal["blocks", "ascii"]
RENDER_MODES: tuple[RenderMode, ...] = ("blocks", "ascii")
RAMP = " .:-=+*#%@"
UPPER_HALF = "▀"
# Forces a render mode ("blocks" or "ascii"), e.g. for stable snapshots or a terminal
# that claims more colours than it shows.
MODE_ENV = "FMNIST_TUI_IMAGES"


def render_mode(app: App, forced: str | None = None) -> RenderMode:
    """The mode for ``app``'s terminal: ``forced``, then the environment, then detection."""
    for choice in (forced, os.environ.get(MODE_ENV)):
        if choice in RENDER_MODES:
            return choice
    if app.no_color:
        return "ascii"
    return "blocks" if app.console.color_system in ("truecolor", "256") else "ascii"


@lru_cache(maxsize=65536)
def _style(top: int, bottom: int) -> Style:
    return Style(
        color=Color.from_rgb(top, top, top), bgcolor=Color.from_rgb(bottom, bottom, bottom)
    )


def scale_image(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor (1 returns the image itself)."""
    if scale <= 1:
        return pixels
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


@lru_cache(maxsize=64)
def _area_weights(source: int, target: int) -> np.ndarray:
    """``target`` x ``source``: how much of each source pixel falls in each target pixel."""
    edges = np.arange(target + 1) * (source / target)
    pixel = np.arange(source)[None, :]
    overlap = np.minimum(edges[1:, None], pixel + 1) - np.maximum(edges[:-1, None], pixel)
    weights = np.clip(overlap, 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def shrink_image(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 H x W image resampled to ``height`` x ``width`` pixels by area averaging
    (each new pixel the mean of the old ones it covers); the image itself when the size
    is its own. Raises ``ValueError`` for a size under one pixel."""
    if height < 1 or width < 1:
        raise ValueError(f"an image needs at least 1 x 1 pixels, not {height} x {width}")
    image = np.asarray(pixels, dtype=np.uint8)
    if image.shape == (height, width):
        return image
    rows = _area_weights(image.shape[0], height)
    columns = _area_weights(image.shape[1], width)
    resampled = rows @ image.astype(np.float64) @ columns.T
    return np.clip(np.rint(resampled), 0, 255).astype(np.uint8)


class HalfBlockImage:
    """A Rich renderable of one uint8 H x W image, ``scale`` times its size."""

    def __init__(self, pixels: np.ndarray, mode: RenderMode = "blocks", scale: int = 1) -> None:
        image = np.asarray(pixels, dtype=np.uint8)
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {image.shape}")
        image = scale_image(image, scale)
        if image.shape[0] % 2:
            # An odd last row pairs with black, the background of these images.
            image = np.vstack([image, np.zeros((1, image.shape[1]), dtype=np.uint8)])
        self.pixels = image
        self.mode = mode

    @property
    def width(self) -> int:
        """Columns of text: one pixel per column."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Rows of text: two pixel rows per row."""
        return int(self.pixels.shape[0]) // 2

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines():
            yield from line
            yield Segment.line()

    def lines(self) -> list[list[Segment]]:
        """One list of segments per text row; runs of equal cells share one segment."""
        if self.mode == "ascii":
            return [[Segment(text)] for text in self.ascii_rows()]
        rows: list[list[Segment]] = []
        pixels = self.pixels.tolist()
        for y in range(0, len(pixels), 2):
            top, bottom = pixels[y], pixels[y + 1]
            segments: list[Segment] = []
            run_start = 0
            for x in range(1, len(top) + 1):
                if x == len(top) or top[x] != top[run_start] or bottom[x] != bottom[run_start]:
                    style = _style(top[run_start], bottom[run_start])
                    segments.append(Segment(UPPER_HALF * (x - run_start), style))
                    run_start = x
            rows.append(segments)
        return rows

    def ascii_rows(self) -> list[str]:
        """The image as characters of ``RAMP``, each the mean of two pixel rows."""
        pairs = self.pixels.reshape(-1, 2, self.pixels.shape[1]).astype(np.uint16)
        means = pairs.sum(axis=1) // 2
        indices = (means * len(RAMP)) // 256
        return ["".join(RAMP[i] for i in row) for row in indices.tolist()]
