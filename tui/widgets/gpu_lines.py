"""``GpuLines``: the Monitor's GPU readings, compact (at most two lines) or one line per
GPU with its processes. Hidden while there is no reading (no NVIDIA GPU)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget

from engine.gpu import GpuReading
from tui.gpu_text import compact_item, expanded_line, run_first
from tui.output import printable

COMPACT_LINES = 2
SEPARATOR = "  │  "


def compact_lines(gpus: Sequence[GpuReading], width: int) -> list[str]:
    """The GPUs in at most ``COMPACT_LINES`` lines of ``width`` cells: one GPU in full
    (``GPU0 H200  87%  40.1/139.8 GiB  54°C  310 W``); several as one short item each
    (label, utilisation, memory; the first in full where it fits), filled line by line,
    ending ``+N more`` where they do not all fit. ``gpus``' first is the run's own."""
    if not gpus:
        return []
    items = [compact_item(gpu, short=len(gpus) > 1 and i > 0) for i, gpu in enumerate(gpus)]
    if len(gpus) > 1 and cell_len(items[0]) + cell_len(SEPARATOR) + cell_len(items[1]) > width:
        items[0] = compact_item(gpus[0], short=True)
    lines: list[str] = []
    for i, item in enumerate(items):
        left = len(items) - i
        if lines and cell_len(lines[-1]) + cell_len(SEPARATOR) + cell_len(item) <= width:
            lines[-1] += SEPARATOR + item
            continue
        if len(lines) == COMPACT_LINES:
            # No room left: the last line ends with how many are not shown.
            more = f"+{left} more (g)"
            while lines[-1] and cell_len(lines[-1]) + cell_len(SEPARATOR + more) > width:
                cut = lines[-1].rfind(SEPARATOR)
                if cut < 0:
                    lines[-1] = ""
                    break
                lines[-1] = lines[-1][:cut]
                left += 1
                more = f"+{left} more (g)"
            lines[-1] = (lines[-1] + SEPARATOR if lines[-1] else "") + more
            break
        lines.append(item)
    return lines


class GpuLines(Widget):
    """Set ``show(gpus, run_cuda)``; ``expanded`` shows a line per GPU with processes."""

    DEFAULT_CSS = """
    GpuLines {
        height: auto;
        max-height: 2;
        width: 1fr;
        padding: 0 1;
        display: none;
    }
    GpuLines.-expanded {
        max-height: 16;
    }
    """

    expanded: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._gpus: list[GpuReading] = []

    @property
    def lines(self) -> list[str]:
        """What the widget shows now, line by line."""
        if not self._gpus:
            return []
        if self.expanded:
            return [expanded_line(gpu) for gpu in self._gpus]
        return compact_lines(self._gpus, max(self.content_region.width, 20))

    def show(self, gpus: Sequence[GpuReading], run_cuda: int | None) -> None:
        """The latest readings; ``run_cuda``: the run's ``cuda:N`` (its GPU first)."""
        self._gpus = run_first(gpus, run_cuda)
        self.display = bool(self._gpus)
        self.refresh(layout=True)

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")
        self.refresh(layout=True)

    def on_resize(self, event: Resize) -> None:
        self.refresh()

    def render(self) -> Text:
        return Text(printable("\n".join(self.lines), lines=True), no_wrap=True, overflow="ellipsis")
