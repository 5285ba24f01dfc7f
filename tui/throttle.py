"""Rate limiting and downsampling for the live views: pure Python, no Textual.

Updating the UI every batch costs most of the training throughput (the UI thread
competes for the GIL), and every chart redraw resends the chart's whole area to the
terminal. So batch progress is gathered on the training thread and handed over at
most ``interval`` seconds apart, and charts plot about two points per column.
"""

from __future__ import annotations

import math
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
    xs: Sequence[float],
    ys: Sequence[float],
    buckets: int,
    x_range: tuple[float, float] | None = None,
) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points that keep the shape of a long series.

    The x range (``x_range``, or the series' own first to last x) is cut into
    ``buckets`` equal slices; each slice keeps its lowest and highest point, in x
    order, so spikes survive the thinning. Plotting cost grows with the number of
    points, so a chart asks for about its width in buckets. With a fixed ``x_range``
    the slices stay put as points are added: only the last slices' points change.
    """
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"xs and ys differ in length ({n} vs {len(ys)})")
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    if n <= 2 * buckets:
        return list(xs), list(ys)
    low, high = x_range if x_range is not None else (xs[0], xs[-1])
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


def axis_span(last: float, total: float = 0.0) -> float:
    """Where a chart's x axis (from 0) should end to show points up to ``last`` of a run
    ``total`` long: ``total`` halved while the points still fit (so they fill at least
    half the width), or, past ``total`` or with none known, a power of two. The end moves
    seldom, so the chart's axes and ticks stay put between redraws."""
    span = total if total > 0 and last <= total else 2.0 ** math.ceil(math.log2(max(last, 1.0)))
    smallest = (total if total > 0 else 1.0) / 64
    while span / 2 >= max(last, smallest):
        span /= 2
    return span


def nice_bounds(low: float, high: float, steps: int = 5) -> tuple[float, float]:
    """An axis range holding ``low``-``high``, its ends on multiples of a 1-2-5 step about
    a ``steps``-th of the range: the ends stay put while the values move within them."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return low, high
    spread = high - low or abs(high) or 1.0
    raw = spread / steps
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    bottom, top = math.floor(low / step) * step, math.ceil(high / step) * step
    return bottom, top if top > bottom else bottom + step
