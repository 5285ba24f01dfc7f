"""Widget mixins that keep repaints small on the wire: ``LeanLines`` and ``ChangedCells``.

Textual writes every segment with its full colour codes (30-40 bytes). Each segment
of a widget's line also carries its own mouse offset, so segments that look the same
are never joined, and renderers such as plotext's split a line into many of them.
Dropping the offsets (these widgets take no clicks) and joining what then matches
halves the bytes of a repaint, which matters over a slow SSH link.

Textual also resends a widget's whole area on ``refresh()``, however little changed:
a progress line whose counter moved, a chart that gained a point at its right end.
``ChangedCells.repaint()`` renders the widget at once, compares it with what it showed,
and marks only the lines that differ for Textual to send. Textual sends a marked line
from the widget's left edge to the last marked cell, so a line's cells after its last
change are not sent either; a widget whose changes come at the right of long lines
gains most from being cut into narrower widgets.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget


class LeanLines(Widget):
    """Mix in before a widget class that needs no mouse: ``class Chart(LeanLines, Plot)``."""

    def render_lines(self, crop: Region) -> list[Strip]:
        return [lean(strip) for strip in super().render_lines(crop)]


def lean(strip: Strip) -> Strip:
    """``strip`` without mouse offsets, neighbouring segments of one look joined."""
    # ``clear_meta_and_links`` (unlike ``Strip.discard_meta``) also forgets the cached
    # hash, without which equal-looking styles do not compare equal.
    plain = [
        Segment(text, style.clear_meta_and_links() if style else style, control)
        for text, style, control in strip
    ]
    return Strip(Segment.simplify(plain), strip.cell_length)


class ChangedCells(LeanLines):
    """Mix in before a widget class whose content changes a little at a time:
    ``class Progress(ChangedCells, Widget)``; then call ``repaint()`` where it called
    ``refresh()``.

    The widget draws its content through ``render_line`` (Textual's line API) from the
    lines ``repaint()`` rendered. A plain ``refresh()`` (a new size, new styles, the
    pane shown again) still renders and sends everything.
    """

    _shown: list[Strip] | None = None  # the content as last rendered, one Strip a line
    _shown_size: tuple[int, int] = (0, 0)

    def repaint(self) -> None:
        """Render now; have Textual send only the lines that differ from what was shown,
        each up to its last changed cell. A widget not mounted yet, or whose number of
        lines changed, is repainted whole."""
        old = self._shown
        new = self._render_content_lines()
        if old is None or len(old) != len(new) or not self.is_mounted:
            self.refresh()  # forgets what was shown: set it after
            self._shown, self._shown_size = new, self.size
            return
        self._shown, self._shown_size = new, self.size
        regions = [
            Region(span[0], y, span[1] - span[0], 1)
            for y, (before, after) in enumerate(zip(old, new, strict=True))
            if (span := changed_span(before, after)) is not None
        ]
        if regions:
            self.refresh(*regions)

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> ChangedCells:
        """As ``Widget.refresh``; a whole repaint also renders the content again."""
        if repaint and not regions:
            self._shown = None
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._shown is None or self._shown_size != (width, height):
            self._shown, self._shown_size = self._render_content_lines(), self.size
        if y < len(self._shown):
            return self._shown[y]
        return Strip.blank(width, self.visual_style.rich_style)

    def _render_content_lines(self) -> list[Strip]:
        """The content area's lines, as Textual would render them from ``render()``."""
        width, height = self.size
        if not width or not height:
            return []
        visual = visualize(self, self.render(), markup=False)
        strips = Visual.to_strips(self, visual, width, height, self.visual_style)
        return [lean(strip) for strip in strips]


def cells(strip: Strip) -> list[tuple[str, Style | None]]:
    """Each cell of ``strip``: its character and style (a wide character's second cell is
    ``""``). Control segments take no cells."""
    out: list[tuple[str, Style | None]] = []
    for text, style, control in strip:
        if control:
            continue
        for char in text:
            out.append((char, style))
            if cell_len(char) == 2:
                out.append(("", style))
    return out


def changed_span(before: Strip, after: Strip) -> tuple[int, int] | None:
    """The columns ``[start, end)`` from the first to the last cell in which two lines
    differ (a line that grew or shrank differs to its end), or None if they are equal."""
    if before.cell_length == after.cell_length and list(before) == list(after):
        return None
    old, new = cells(before), cells(after)
    if old == new:
        return None
    common = min(len(old), len(new))
    start = next((x for x in range(common) if old[x] != new[x]), common)
    if len(old) != len(new):
        return start, max(len(old), len(new))
    end = next(x for x in range(len(old), start, -1) if old[x - 1] != new[x - 1])
    return start, end
