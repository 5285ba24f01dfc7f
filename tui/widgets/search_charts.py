"""A study's charts: the best validation accuracy so far by trial, and validation accuracy
against one searched parameter (on a log axis where the space samples it so).

Both are plotext charts that redraw when their trials change and they are on screen
(``ThrottledPlot``), sending only the lines that changed. The axes stay put while trials
arrive: x runs to ``axis_span`` of the trials (the best-so-far curve) or over the
parameter's range in the space, y between ``nice_bounds`` of the accuracies. Complete
trials are drawn ``o`` and pruned ones ``x`` (their best accuracy before they were
stopped), so the chart reads without colour (NO_COLOR).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.search_space import Choices, Range, SearchSpace
from tui.throttle import axis_span, nice_bounds
from tui.widgets.charts import ThrottledPlot
from tui.widgets.search_table import short_number, value_text

if TYPE_CHECKING:
    from engine.search import TrialRow

COMPLETE_MARK = "o"
PRUNED_MARK = "x"
KEY = f"{COMPLETE_MARK} complete, {PRUNED_MARK} pruned"


def scored(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """The complete and pruned trials that have a finite validation accuracy."""
    return [
        r
        for r in rows
        if r.state in ("complete", "pruned") and r.value is not None and math.isfinite(r.value)
    ]


def best_so_far(rows: Sequence[TrialRow]) -> tuple[list[float], list[float]]:
    """The best validation accuracy (percent) among the complete trials up to each trial
    number, as a step line: a corner at each complete trial that did better, and on to
    the last trial (by number)."""
    xs: list[float] = []
    ys: list[float] = []
    best = -math.inf
    for row in sorted(scored(rows), key=lambda r: r.number):
        if row.state != "complete" or row.value is None or row.value * 100 <= best:
            continue
        if xs:
            xs.append(row.number)
            ys.append(best)
        best = row.value * 100
        xs.append(row.number)
        ys.append(best)
    last = max((r.number for r in rows), default=None)
    if xs and last is not None and last > xs[-1]:
        xs.append(last)
        ys.append(best)
    return xs, ys


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Ticks on multiples of a 1-2-5 step between ``low`` and ``high``, at most about
    ``most`` of them."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return [low]
    raw = span / most
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [round(first + i * step, 12) for i in range(count)]


def decade_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from ``low`` to ``high`` (both > 0); the ends when fewer than two."""
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    ticks = [10.0**e for e in range(first, last + 1)]
    if len(ticks) > 6:
        step = math.ceil(len(ticks) / 6)
        ticks = ticks[::step]
    return ticks if len(ticks) >= 2 else [low, high]


def trial_ticks(end: float, most: int = 8) -> list[int]:
    """Whole trial numbers from 0 to ``end`` to label: at most about ``most``."""
    step = max(1, math.ceil(end / most))
    return list(range(0, int(end) + 1, step))


def _same(a: Any, b: Any) -> bool:
    return value_text(a) == value_text(b)


class TrialsPlot(ThrottledPlot):
    """The best-so-far curve (``param`` None), or accuracy against ``param``."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.rows: list[TrialRow] = []
        self.param: str | None = None
        self.space: SearchSpace | None = None
        self.log_x = False  # whether the last drawing's x axis was logarithmic

    def show(
        self,
        rows: Sequence[TrialRow],
        *,
        param: str | None = None,
        space: SearchSpace | None = None,
    ) -> None:
        """Plot ``rows``: against ``param`` (None: best so far by trial number), its axis
        from ``space`` (None: from the values)."""
        rows = list(rows)
        if rows != self.rows or param != self.param or space != self.space:
            self.rows, self.param, self.space = rows, param, space
            self.mark_changed()

    def plot_series(self, columns: int) -> None:
        plt = self.plt
        plt.clear_figure()
        self.log_x = False
        if self.param is None:
            self._plot_best()
        else:
            self._plot_param(self.param)

    def _y_axis(self, values: list[float]) -> None:
        low, high = nice_bounds(min(values), max(values))
        low, high = max(0.0, low), min(100.0, high) if min(values) < 100 else high
        if high <= low:
            high = low + 1.0
        plt = self.plt
        plt.ylim(low, high)
        ticks = nice_ticks(low, high, 4)
        plt.yticks(ticks, [f"{t:g}" for t in ticks])

    def _plot_best(self) -> None:
        plt = self.plt
        rows = scored(self.rows)
        plt.title(f"best val accuracy % by trial · {KEY}")
        plt.xlabel("trial")
        if not rows:
            plt.title("best val accuracy % by trial: after the first trial ends")
            return
        complete = [r for r in rows if r.state == "complete"]
        pruned = [r for r in rows if r.state == "pruned"]
        xs, ys = best_so_far(rows)
        if len(xs) >= 2:
            plt.plot(xs, ys, marker="braille", color="green")
        for group, mark, colour in (
            (complete, COMPLETE_MARK, "cyan"),
            (pruned, PRUNED_MARK, "orange"),
        ):
            if group:
                plt.scatter(
                    [r.number for r in group],
                    [(r.value or 0.0) * 100 for r in group],
                    marker=mark,
                    color=colour,
                )
        self._y_axis([(r.value or 0.0) * 100 for r in rows])
        end = max(axis_span(max(r.number for r in self.rows) + 1), 4.0)
        plt.xlim(0, end)
        ticks = trial_ticks(end)
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])

    def _plot_param(self, param: str) -> None:
        plt = self.plt
        spec = self.space.params.get(param) if self.space is not None else None
        rows = [r for r in scored(self.rows) if param in r.params]
        log = isinstance(spec, Range) and spec.log
        plt.title(f"val accuracy % by {param}{' (log)' if log else ''} · {KEY}")
        plt.xlabel(param)
        if not rows:
            plt.title(f"val accuracy % by {param}: after the first trial ends")
            return
        values = [r.params[param] for r in rows]
        if isinstance(spec, Choices) or not all(_is_number(v) for v in values):
            choices = list(spec.values) if isinstance(spec, Choices) else []
            for v in values:
                if not any(_same(v, c) for c in choices):
                    choices.append(v)
            position = {value_text(c): float(i) for i, c in enumerate(choices)}
            xs = [position[value_text(v)] for v in values]
            plt.xlim(-0.5, len(choices) - 0.5)
            plt.xticks(list(position.values()), list(position))
        else:
            xs = [float(v) for v in values]
            low = spec.low if isinstance(spec, Range) else min(xs)
            high = spec.high if isinstance(spec, Range) else max(xs)
            low, high = min([low, *xs]), max([high, *xs])
            if spec is None and low > 0 and high / low >= 100:
                log = True  # a space not recorded: values over decades read best so
            if log and low > 0:
                plt.title(f"val accuracy % by {param} (log) · {KEY}")
                plt.xscale("log")
                self.log_x = True
                plt.xlim(math.log10(low), math.log10(high))
                ticks = decade_ticks(low, high)
            else:
                if high <= low:
                    low, high = low - 1.0, high + 1.0
                plt.xlim(low, high)
                ticks = nice_ticks(low, high, 5)
            plt.xticks(ticks, [short_number(t) for t in ticks])
        for state, mark, colour in (
            ("complete", COMPLETE_MARK, "cyan"),
            ("pruned", PRUNED_MARK, "orange"),
        ):
            pairs = [
                (x, (r.value or 0.0) * 100)
                for x, r in zip(xs, rows, strict=True)
                if r.state == state
            ]
            if pairs:
                plt.scatter([p[0] for p in pairs], [p[1] for p in pairs], marker=mark, color=colour)
        self._y_axis([(r.value or 0.0) * 100 for r in rows])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
