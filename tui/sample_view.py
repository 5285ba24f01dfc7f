"""Which images the Data pane shows: a class filter, a shuffled order, a page.

Pure numpy, so browsing a split never loads torch. ``augment_preview`` mirrors the
engine's batched augmentation (random horizontal flip, random crop of a zero-padded
image) on uint8 arrays, for the same reason: the real one is a torch operation, and
torch belongs to the training thread.
"""

from __future__ import annotations

import numpy as np


class SampleBrowser:
    """A shuffled, optionally filtered order of one split's images, shown a page at a time."""

    def __init__(self, labels: np.ndarray, seed: int = 0) -> None:
        self._labels = np.asarray(labels)
        self._rng = np.random.default_rng(seed)
        self.class_filter: int | None = None
        self.page = 0
        self.capacity = 1
        self._order = self._draw()

    def _draw(self) -> np.ndarray:
        if self.class_filter is None:
            candidates = np.arange(len(self._labels))
        else:
            candidates = np.flatnonzero(self._labels == self.class_filter)
        return candidates[self._rng.permutation(len(candidates))]

    @property
    def count(self) -> int:
        """Images that pass the filter."""
        return len(self._order)

    @property
    def pages(self) -> int:
        """Pages of ``capacity`` images the filtered images fill (at least one)."""
        return max(1, -(-self.count // self.capacity))

    def shuffle(self) -> None:
        """Draw a new order and go back to the first page."""
        self._order = self._draw()
        self.page = 0

    def set_filter(self, class_index: int | None) -> None:
        """Show only images of label ``class_index`` (None: all), in a new order."""
        self.class_filter = class_index
        self.shuffle()

    def set_capacity(self, capacity: int) -> None:
        """Images per page; keeps the first image shown on screen."""
        first = self.page * self.capacity
        self.capacity = max(1, capacity)
        self.page = min(first // self.capacity, self.pages - 1)

    def turn(self, pages: int) -> None:
        """Move ``pages`` forward (negative: back), wrapping at either end."""
        self.page = (self.page + pages) % self.pages

    def visible(self) -> np.ndarray:
        """Indices into the split of the images on the current page."""
        start = self.page * self.capacity
        return self._order[start : start + self.capacity]


def augment_preview(
    images: np.ndarray, rng: np.random.Generator, *, flip: bool = True, crop_padding: int = 2
) -> np.ndarray:
    """Randomly flip and crop uint8 N x H x W images as training would (zero padding)."""
    images = np.asarray(images, dtype=np.uint8)
    n, h, w = (int(size) for size in images.shape)
    out = images.copy()
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped, :, ::-1]
    p = crop_padding
    if p > 0:
        padded = np.pad(out, ((0, 0), (p, p), (p, p)))
        dy = rng.integers(0, 2 * p + 1, n)
        dx = rng.integers(0, 2 * p + 1, n)
        for i in range(n):
            out[i] = padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
    return out
