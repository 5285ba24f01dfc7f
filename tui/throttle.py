"""Rate limiting and downsampling for the live views: pure Python, no Textual.

Updating the UI every batch costs most of the training throughput (the UI thread
competes for the GIL), and every chart redraw resends the chart's whole area to the
terminal. So batch progress is gathered on the training thread and handed over at
most ``interval`` seconds apart, and charts plot about two points per column.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]


class RateLimiter:
    """Says yes at most once per ``interval`` seconds."""

    def __init__(self, interval: float, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")

    def ready(self) -> bool:
        """True (and the interval starts again) when ``interval`` has passed since the last yes."""
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


def downsample(
    xs: Sequence[float], ys: Sequence[float], buckets: int
) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points that keep the shape of a long series.

    The x range is cut into ``buckets`` equal slices; each slice keeps its lowest
    and highest point, in x order, so spikes survive the thinning. Plotting cost
    grows with the number of points, so a chart asks for about its width in buckets.
    """
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"xs and ys differ in length ({n} vs {len(ys)})")
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    if n <= 2 * buckets:
        return list(xs), list(ys)
    low, high = xs[0], xs[-1]
    span = (high - low) or 1.0
    out_x: list[float] = []
    out_y: list[float] = []
    start = 0
    for b in range(buckets):
        edge = low + span * (b + 1) / buckets
        end = start
        while end < n and (xs[end] < edge or b == buckets - 1):
            end += 1
        if end > start:
            lo = min(range(start, end), key=ys.__getitem__)
            hi = max(range(start, end), key=ys.__getitem__)
            for i in sorted({lo, hi}):
                out_x.append(xs[i])
                out_y.append(ys[i])
        start = end
    return out_x, out_y
